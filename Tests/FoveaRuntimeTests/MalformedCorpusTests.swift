import Foundation
import Testing
import FoveaCore
import FoveaTestSupport

/// Every file in Tests/Corpus/malformed (scripts/corpus/make_malformed.py) run through the real CLI:
/// each must end in an error that names its problem — an exit status, never a signal, within a
/// time limit — the promise llama.cpp's and safetensors' readers make for hostile files.
@Suite("Malformed inputs get specific errors from the CLI")
struct MalformedCorpusTests {
    struct Case: Decodable, CustomStringConvertible {
        let name: String, command: String, expect: String, args: [String]
        let model: String?, base: String?, files: [String: String]?
        var description: String { name }
    }

    static let repo = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().path
    static let corpus = repo + "/Tests/Corpus/malformed"
    static let cases: [Case] = {
        guard let data = FileManager.default.contents(atPath: corpus + "/cases.json") else { return [] }
        return (try? JSONDecoder().decode([Case].self, from: data)) ?? []
    }()

    /// The `fovea` executable `swift build` put beside the test bundle.
    static var executable: String? { Fixtures.executable }

    @Test("the corpus holds at least 50 cases") func size() { #expect(Self.cases.count >= 50) }

    @Test("a specific error, not a crash", arguments: cases)
    func run(_ c: Case) throws {
        let exe = try #require(Self.executable, "build the fovea executable first (swift build --build-tests builds it)")
        var model = c.model.map { Self.corpus + "/" + $0 } ?? ""
        if let base = c.base {
            // A copy of the base model with the corpus files laid over it.
            let dir = Fixtures.temporaryDirectory("corpus-" + c.name)
            let fm = FileManager.default
            for f in try fm.contentsOfDirectory(atPath: Self.repo + "/" + base) where c.files?[f] == nil {
                try fm.createSymbolicLink(atPath: dir + "/" + f, withDestinationPath: Self.repo + "/" + base + "/" + f)
            }
            for (name, file) in c.files ?? [:] { try fm.copyItem(atPath: Self.corpus + "/" + file, toPath: dir + "/" + name) }
            model = dir
        }
        let args = c.args.map { $0.replacingOccurrences(of: "{corpus}", with: Self.corpus) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.currentDirectoryURL = URL(fileURLWithPath: Self.repo)
        p.arguments = [c.command] + (c.command == "inspect" ? [model] : ["--model", model]) + args
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(60)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        if p.isRunning { p.terminate(); Issue.record("\(c.name): still running after 60 s"); return }
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationReason == .exit, "\(c.name): killed by signal \(p.terminationStatus)\n\(message)")
        #expect(p.terminationStatus != 0, "\(c.name): accepted silently\n\(message)")
        #expect(message.contains(c.expect), "\(c.name): expected '\(c.expect)' in:\n\(message)")
    }
}

/// Issue 15's first rule: no silent slow path. OpenBLAS picks its kernels from the CPU it recognises;
/// where it picks a slower family than the CPU supports, the CLI restarts itself with the right one.
@Suite("The matrix kernels match the CPU")
struct KernelChoiceTests {
    @Test("which OpenBLAS cores count as too slow for which CPUs")
    func table() {
        let sapphireRapids: Set = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16", "amx_tile"]
        let skylake: Set = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq"]
        #expect(BLAS.betterCore(chosen: "Prescott", flags: sapphireRapids) == "COOPERLAKE")   // OpenBLAS 0.3.21 on SPR
        #expect(BLAS.betterCore(chosen: "Haswell", flags: skylake) == "SKYLAKEX")
        #expect(BLAS.betterCore(chosen: "Cooperlake", flags: sapphireRapids) == nil)
        #expect(BLAS.betterCore(chosen: "SkylakeX", flags: skylake) == nil)
        #expect(BLAS.betterCore(chosen: "Prescott", flags: ["avx2", "fma"]) == "HASWELL")
        #expect(BLAS.betterCore(chosen: "Zen", flags: ["avx2", "fma"]) == nil)
        #expect(BLAS.betterCore(chosen: "Prescott", flags: ["sse3"]) == nil)
    }

    func inspect(_ env: [String: String]) throws -> String {
        let exe = try #require(MalformedCorpusTests.executable)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["inspect", MalformedCorpusTests.repo + "/models/fovea-test-llava-small"]
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        p.waitUntilExit()
        return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    @Test("the CLI never runs a generic BLAS on a CPU with AVX2 or AVX-512, even when OpenBLAS is told to")
    func cli() throws {
        let line = try #require(try inspect([:]).split(separator: "\n").first { $0.hasPrefix("kernels:") })
        let core = try #require(line.split(separator: " ").dropFirst(2).first).description
        #expect(BLAS.betterCore(chosen: core, flags: CPUFeatures.flags) == nil, "\(line)")
        // Fovea's own kernels are chosen wherever the CPU has their instructions: one-row products
        // take vpdpbusd from AVX-512 VNNI or, without AVX-512, from AVX-VNNI (Alder Lake and later).
        let flags = CPUFeatures.flags
        let oneRow = flags.isSuperset(of: ["avx512vl", "avx512bw", "avx512_vnni"]) ? "AVX-512 VNNI"
            : flags.contains("avx_vnni") && ProcessInfo.processInfo.environment["FOVEA_AVXVNNI"] != "0" ? "AVX-VNNI"
            : CPUFeatures.avx2 ? "AVX2" : "scalar"
        #expect(line.contains("quantised one-row products: \(oneRow);"), "\(line)")
        if flags.contains("avx512f") { #expect(line.contains("F16/BF16 × f32 AVX-512"), "\(line)") }
        if flags.contains("avx512f") && flags.contains("avx512_vnni") { #expect(line.contains("Q8_0 × Q8_0 VNNI"), "\(line)") }
        // On an AMX CPU the tiles replace vdpbf16ps; a failed probe names itself in the line, and fails here.
        if flags.contains("amx_bf16") { #expect(line.contains("bf16 × bf16 AMX tiles"), "\(line)") }
        else if flags.contains("avx512f") && flags.contains("avx512_bf16") { #expect(line.contains("vdpbf16ps"), "\(line)") }
        let forced = try inspect(["OPENBLAS_CORETYPE": "Prescott", "FOVEA_KEEP_BLAS_CORE": "0"])
        if CPUFeatures.avx2 {
            #expect(forced.contains("OpenBLAS had chosen Prescott, corrected") && !forced.contains("OpenBLAS Prescott kernels"), "\(forced)")
        }
    }
}
