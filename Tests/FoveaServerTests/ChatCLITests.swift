import Foundation
import Testing
import FoveaRuntime
import FoveaTestSupport

/// `fovea chat` on the session API, driven through its standard input.
@Suite("fovea chat")
struct ChatCLITests {
    func chat(_ input: String, _ arguments: [String] = []) throws -> (out: String, err: String, status: Int32) {
        let exe = try #require(ServerProcess.executable, "build the fovea executable first")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["chat", "--model", ServerProcess.testModel, "--max-tokens", "8"] + arguments
        p.currentDirectoryURL = URL(fileURLWithPath: ServerProcess.repo)
        let stdin = Pipe(), out = Pipe(), err = Pipe()
        p.standardInput = stdin
        p.standardOutput = out
        p.standardError = err
        try p.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self), p.terminationStatus)
    }

    @Test("/image adds an image at a later turn, under the chosen method; /stats, /reset, /quit")
    func imageAtLaterTurn() throws {
        let r = try chat("Hello\n/image \(ServerProcess.image)\nWhat is in the picture?\n/stats\n/reset\n/bogus\nHi again\n/quit\n",
                         ["--prune", "hired:r=0.2", "--kv", "avl"])
        #expect(r.status == 0, "\(r.err)")
        // HiRED at 20% of the test model's visual tokens, reported when the image is added.
        let added = try #require(r.err.split(separator: "\n").first { $0.hasPrefix("image ") }, "\(r.err)")
        let counts = added.split(separator: ":").last?.split(separator: " ").compactMap { Int($0) } ?? []
        #expect(counts.count == 2 && counts[0] < counts[1] / 2 && counts[0] > 0, "\(added)")
        // /stats reports the image turn: visual tokens in the prompt, the method.
        #expect(r.err.contains("nominal") && r.err.contains("hired:r=0.2"), "\(r.err)")
        #expect(r.err.contains("conversation and images forgotten"))
        #expect(r.err.contains("unknown command /bogus"))
        #expect(r.out.components(separatedBy: "> ").count >= 4)
    }

    @Test("the image turn answers as a one-shot session with the same prompt does")
    func sameAsSession() throws {
        let r = try chat("/image \(ServerProcess.image)\nWhat is in the picture?\n")
        #expect(r.status == 0, "\(r.err)")
        let expected = try referenceAnswer(model: ServerProcess.testModel, question: "What is in the picture?", image: ServerProcess.image,
                                           method: .init(), maxTokens: 8)
        let answer = r.out.components(separatedBy: "> ")[1].trimmingCharacters(in: .newlines)
        #expect(answer == expected.trimmingCharacters(in: .whitespaces), "\(r.out)")
    }

    @Test("a bad method is refused before the model loads")
    func badMethod() throws {
        let r = try chat("", ["--kv", "nope"])
        #expect(r.status != 0 && r.err.contains("unknown method 'nope'"), "\(r.err)")
    }
}
