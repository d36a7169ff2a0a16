import Foundation
import Testing
import FoveaTestSupport

/// A `fovea serve` process on a free loopback port, driven by real clients (curl). Every test
/// that starts one stops it; each request is bounded by curl's --max-time.
final class ServerProcess: @unchecked Sendable {   // driven from one test at a time
    static let repo = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().path
    static let testModel = repo + "/models/fovea-test-llava-small"
    static let image = repo + "/data/eval/scenes/scene_0000.png"
    /// SmolLM2-135M-Instruct (text only, real weights): long answers, for what needs many tokens.
    static let smolLM = repo + "/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    static var smolLMAvailable: Bool { FileManager.default.fileExists(atPath: smolLM) }

    /// The `fovea` executable `swift build` put beside the test bundle.
    static var executable: String? { Fixtures.executable }

    let process = Process()
    let port: Int
    private let errors: Pipe
    var base: String { "http://127.0.0.1:\(port)" }

    init(model: String = ServerProcess.testModel, _ arguments: [String] = []) throws {
        let exe = try #require(Self.executable, "build the fovea executable first (swift build --build-tests builds it)")
        process.executableURL = URL(fileURLWithPath: exe)
        process.arguments = ["serve", "--model", model, "--port", "0"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: Self.repo)
        errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // The server names its port on stderr once it listens.
        var log = ""
        let deadline = Date().addingTimeInterval(60)
        var found: Int?
        while found == nil && Date() < deadline && process.isRunning {
            let chunk = errors.fileHandleForReading.availableData
            if chunk.isEmpty { continue }
            log += String(decoding: chunk, as: UTF8.self)
            if let r = log.range(of: #"on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                found = Int(log[r].split(separator: ":").last ?? "")
            }
        }
        guard let found else {
            process.terminate()
            throw ServerTestError.notStarted(log)
        }
        port = found
    }

    /// SIGTERM, then the exit status (nil if it did not exit within `timeout`).
    @discardableResult
    func stop(timeout: TimeInterval = 60) -> Int32? {
        if process.isRunning { process.terminate() }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL); return nil }
        return process.terminationStatus
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

    struct Reply {
        let status: Int
        let body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
        var errorMessage: String { (json["error"] as? [String: Any])?["message"] as? String ?? body }
        var content: String? {
            ((json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
        }
    }

    /// One request through curl: the status and the body.
    func curl(_ path: String, body: String? = nil, headers: [String] = [], maxTime: Double = 120, extra: [String] = []) throws -> Reply {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var args = ["curl", "-sS", "--max-time", "\(maxTime)", "-w", "\n%{http_code}", base + path]
        for h in headers { args += ["-H", h] }
        if let body {
            let file = NSTemporaryDirectory() + "fovea-body-\(UUID().uuidString).json"
            try Data(body.utf8).write(to: URL(fileURLWithPath: file))
            args += ["-H", "Content-Type: application/json", "--data-binary", "@" + file]
        }
        p.arguments = args + extra
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.last ?? "") ?? 0
        return Reply(status: status, body: lines.dropLast().joined(separator: "\n"))
    }

    /// A metric's value from /metrics (the unlabelled series).
    func metric(_ name: String) throws -> Double? {
        let text = try curl("/metrics").body
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }
}

enum ServerTestError: Error, CustomStringConvertible {
    case notStarted(String)
    var description: String {
        switch self { case .notStarted(let log): "fovea serve did not start: \(log)" }
    }
}

/// A chat request body.
func chatBody(_ text: String, image: String? = nil, maxTokens: Int = 8, stream: Bool = false, extra: String = "") -> String {
    let content: String
    if let image {
        let data = FileManager.default.contents(atPath: image)?.base64EncodedString() ?? ""
        content = #"[{"type":"image_url","image_url":{"url":"data:image/png;base64,\#(data)"}},{"type":"text","text":"\#(text)"}]"#
    } else {
        content = "\"\(text)\""
    }
    return #"{"messages":[{"role":"user","content":\#(content)}],"max_tokens":\#(maxTokens),"stream":\#(stream)\#(extra)}"#
}
