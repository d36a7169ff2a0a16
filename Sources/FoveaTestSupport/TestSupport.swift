import Foundation
import FoveaCore
import FoveaIO

/// Finds committed fixtures from a test file's location.
public enum Fixtures {
    /// The repository's `Fixtures/` folder, found by walking up from `file`.
    public static func root(_ file: String = #filePath) -> String {
        var url = URL(fileURLWithPath: file).deletingLastPathComponent()
        while url.path != "/" {
            let candidate = url.appendingPathComponent("Fixtures")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("models").path) { return candidate.path }
            url.deleteLastPathComponent()
        }
        return "Fixtures"
    }

    public static func model(_ name: String, _ file: String = #filePath) -> String {
        root(file) + "/models/" + name
    }

    /// The `fovea` executable `swift build` put beside the test bundle (nil when not built).
    public static var executable: String? {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("fovea").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    /// A fresh empty folder under the system temp directory.
    public static func temporaryDirectory(_ tag: String = "fovea") -> String {
        let path = NSTemporaryDirectory() + "\(tag)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

/// Error measures used by parity tests.
public enum Compare {
    /// max |a − b| / max |b|: relative to the reference's scale, so near-zero entries
    /// do not blow the measure up the way element-wise relative error would.
    public static func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "relativeError: \(a.count) vs \(b.count) elements")
        var num: Float = 0, den: Float = 0
        for i in a.indices {
            num = max(num, abs(a[i] - b[i]))
            den = max(den, abs(b[i]))
        }
        return den == 0 ? num : num / den
    }

    /// Normalised mean squared error Σ(a − b)² / Σb² (llama.cpp's test-backend-ops measure).
    public static func nmse(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count, "nmse: \(a.count) vs \(b.count) elements")
        var num = 0.0, den = 0.0
        for i in a.indices {
            num += Double(a[i] - b[i]) * Double(a[i] - b[i])
            den += Double(b[i]) * Double(b[i])
        }
        return den == 0 ? num : num / den
    }
}

/// Deterministic test data.
public struct TestRandom {
    var state: UInt64
    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    public mutating func next() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(state >> 40) / Float(1 << 24) * 2 - 1
    }
    public mutating func array(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in next() * scale } }
}

/// Writes a safetensors file from raw header JSON and data bytes, for corrupt-file tests.
public func writeSafetensors(_ path: String, header: String, data: [UInt8], declaredLength: UInt64? = nil, pad: Bool = true) {
    var h = Array(header.utf8)
    if pad { while h.count % 8 != 0 { h.append(0x20) } }
    var bytes: [UInt8] = []
    var n = declaredLength ?? UInt64(h.count)
    for _ in 0..<8 { bytes.append(UInt8(n & 0xFF)); n >>= 8 }
    bytes += h + data
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
}

/// Builds GGUF files byte by byte, for reader tests (valid ones and deliberately broken ones).
public struct GGUFBuilder {
    public var bytes: [UInt8] = []
    public init() {}

    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    public mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
    public mutating func header(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) {
        bytes += Array("GGUF".utf8)
        u32(version); u64(tensors); u64(kvs)
    }
    public mutating func kvString(_ key: String, _ value: String) { string(key); u32(8); string(value) }
    public mutating func kvU32(_ key: String, _ value: UInt32) { string(key); u32(4); u32(value) }
    public mutating func kvF32(_ key: String, _ value: Float) { string(key); u32(6); u32(value.bitPattern) }
    /// dims fastest-varying first, as GGUF stores them.
    public mutating func tensorInfo(_ name: String, dims: [UInt64], type: UInt32, offset: UInt64) {
        string(name); u32(UInt32(dims.count)); dims.forEach { u64($0) }; u32(type); u64(offset)
    }
    public mutating func align(_ a: Int = 32) { while bytes.count % a != 0 { bytes.append(0) } }
    public mutating func floats(_ v: [Float]) { v.forEach { u32($0.bitPattern) } }

    public func write(_ path: String) { _ = FileManager.default.createFile(atPath: path, contents: Data(bytes)) }

    public mutating func kvStrings(_ key: String, _ values: [String]) {
        string(key); u32(9); u32(8); u64(UInt64(values.count)); values.forEach { string($0) }
    }

    /// A complete one-layer `llama` GGUF (hidden 8, 2 heads, MLP 16, vocabulary 16, F32 weights of
    /// small deterministic values) whose tokenizer is `tokenizerModel` (`gpt2`, or another kind to
    /// test what happens when Fovea cannot read it).
    public static func tinyLlama(tokenizerModel: String = "gpt2") -> GGUFBuilder {
        let (d, ff, vocab) = (8, 16, 16)
        var tensors: [(String, [Int])] = [("token_embd.weight", [d, vocab]), ("output_norm.weight", [d])]
        for name in ["attn_norm", "ffn_norm"] { tensors.append(("blk.0.\(name).weight", [d])) }
        for name in ["attn_q", "attn_k", "attn_v", "attn_output"] { tensors.append(("blk.0.\(name).weight", [d, d])) }
        tensors += [("blk.0.ffn_gate.weight", [d, ff]), ("blk.0.ffn_up.weight", [d, ff]), ("blk.0.ffn_down.weight", [ff, d])]
        var b = GGUFBuilder()
        b.header(tensors: UInt64(tensors.count), kvs: 8)
        b.kvString("general.architecture", "llama")
        b.kvU32("llama.block_count", 1)
        b.kvU32("llama.embedding_length", UInt32(d))
        b.kvU32("llama.feed_forward_length", UInt32(ff))
        b.kvU32("llama.attention.head_count", 2)
        b.kvU32("llama.context_length", 64)
        b.kvString("tokenizer.ggml.model", tokenizerModel)
        b.kvStrings("tokenizer.ggml.tokens", (0..<vocab).map { "t\($0)" })
        var offset = 0
        for (name, dims) in tensors {
            b.tensorInfo(name, dims: dims.map(UInt64.init), type: 0, offset: UInt64(offset))
            offset += (dims.reduce(1, *) * 4 + 31) / 32 * 32
        }
        b.align()
        for (i, (_, dims)) in tensors.enumerated() {
            let n = dims.reduce(1, *)
            b.floats((0..<n).map { j in dims.count == 1 ? 1 : Float((j * 7 + i * 3) % 11 - 5) / 20 })
            b.align()
        }
        return b
    }
}
