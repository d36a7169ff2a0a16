import Foundation
import Testing
@testable import FoveaIO
import FoveaCore
import FoveaTestSupport

@Suite("GGUF reader")
struct GGUFTests {
    let dir = Fixtures.temporaryDirectory("gguf")
    func file(_ n: String) -> String { dir + "/" + n }

    /// Two tensors: an F32 [2, 3] and a Q8_0 row of 32; metadata of three types.
    func valid() -> GGUFBuilder {
        var b = GGUFBuilder()
        b.header(tensors: 2, kvs: 3)
        b.kvString("general.architecture", "llama")
        b.kvU32("llama.block_count", 7)
        b.kvF32("llama.rope.freq_base", 10_000)
        b.tensorInfo("a", dims: [3, 2], type: 0, offset: 0)
        b.tensorInfo("q", dims: [32], type: 8, offset: 32)
        b.align()
        b.floats([1, 2, 3, 4, 5, 6])
        b.align()
        b.bytes += [0x00, 0x38]                                  // d = 0.5 (f16)
        b.bytes += (0..<32).map { UInt8(bitPattern: Int8($0 - 16)) }
        return b
    }

    @Test("reads metadata, shapes in PyTorch order, F32 and Q8_0 data")
    func reads() throws {
        valid().write(file("ok.gguf"))
        let g = try GGUFFile(path: file("ok.gguf"))
        #expect(g.version == 3)
        #expect(g.metadata["general.architecture"]?.string == "llama")
        #expect(g.metadata["llama.block_count"]?.int == 7)
        #expect(g.metadata["llama.rope.freq_base"]?.double == 10_000)
        let a = try g.load("a")
        #expect(a.shape == [2, 3] && a.toArray() == [1, 2, 3, 4, 5, 6])
        let wantQ: [Float] = (0..<32).map { Float($0 - 16) * 0.5 }
        #expect(try g.load("q").toArray() == wantQ)
    }

    @Test("Q4_0 and Q4_1 blocks dequantise as ggml does")
    func q4() {
        // One block: d = 2 (0x4000), m = -1 (0xBC00); byte j holds low nibble j % 16, high nibble 15 − j % 16.
        let qs: [UInt8] = (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        var q40: [UInt8] = [0x00, 0x40] + qs, q41: [UInt8] = [0x00, 0x40, 0x00, 0xBC] + qs
        var out = [Float](repeating: 0, count: 32)
        GGUFDequantize.toFloat(&q40, type: .q4_0, count: 32, into: &out)
        let want40: [Float] = (0..<32).map { j in Float((j < 16 ? j : 31 - j) - 8) * 2 }
        #expect(out == want40)
        GGUFDequantize.toFloat(&q41, type: .q4_1, count: 32, into: &out)
        let want41: [Float] = (0..<32).map { j in Float(j < 16 ? j : 31 - j) * 2 - 1 }
        #expect(out == want41)
    }

    @Test("wrong magic and unsupported version")
    func magicAndVersion() {
        var b = GGUFBuilder(); b.bytes = Array("GGML".utf8); b.u32(3); b.u64(0); b.u64(0)
        b.write(file("m.gguf"))
        #expect(throws: FoveaError.self) { try GGUFFile(path: file("m.gguf")) }
        var v = GGUFBuilder(); v.header(version: 1, tensors: 0, kvs: 0); v.write(file("v.gguf"))
        #expect(throws: FoveaError.badHeader(path: file("v.gguf"), reason: "GGUF version 1 is not supported (2 and 3 are)")) {
            try GGUFFile(path: file("v.gguf"))
        }
    }

    @Test("truncated anywhere: in the header, in metadata, in the tensor data")
    func truncated() {
        let full = valid().bytes
        for cut in [10, 40, full.count - 8] {
            var b = GGUFBuilder(); b.bytes = Array(full.prefix(cut)); b.write(file("t\(cut).gguf"))
            #expect(throws: FoveaError.self, "cut at \(cut)") { try GGUFFile(path: file("t\(cut).gguf")) }
        }
    }

    @Test("absurd counts and string lengths are refused before allocating")
    func absurd() {
        var b = GGUFBuilder(); b.header(tensors: 1 << 40, kvs: 0); b.write(file("c.gguf"))
        #expect(throws: FoveaError.self) { try GGUFFile(path: file("c.gguf")) }
        var s = GGUFBuilder(); s.header(tensors: 0, kvs: 1); s.u64(1 << 50); s.write(file("s.gguf"))
        #expect(throws: FoveaError.self) { try GGUFFile(path: file("s.gguf")) }
    }

    @Test("unknown tensor type names the tensor")
    func unknownType() {
        var b = GGUFBuilder(); b.header(tensors: 1, kvs: 0)
        b.tensorInfo("w", dims: [256], type: 13, offset: 0)   // Q5_K: not read
        b.align(); b.bytes += [UInt8](repeating: 0, count: 176)
        b.write(file("u.gguf"))
        let e = #expect(throws: FoveaError.self) { try GGUFFile(path: file("u.gguf")) }
        guard case .unsupportedTensorType(_, "w", let d) = e else { Issue.record("wrong error \(String(describing: e))"); return }
        #expect(d == "Q5_K (ggml type 13)")
    }

    @Test("misaligned, out-of-range and overlapping tensor data")
    func spans() {
        func one(_ name: String, offsets: [UInt64], dataBytes: Int) -> String {
            var b = GGUFBuilder(); b.header(tensors: UInt64(offsets.count), kvs: 0)
            for (i, o) in offsets.enumerated() { b.tensorInfo("t\(i)", dims: [8], type: 0, offset: o) }
            b.align(); b.bytes += [UInt8](repeating: 0, count: dataBytes)
            b.write(file(name)); return file(name)
        }
        let misaligned = one("a.gguf", offsets: [4], dataBytes: 64)
        #expect(throws: FoveaError.self) { try GGUFFile(path: misaligned) }
        let past = one("p.gguf", offsets: [0], dataBytes: 16)
        let e = #expect(throws: FoveaError.self) { try GGUFFile(path: past) }
        guard case .badTensorSpan(_, "t0", let reason) = e else { Issue.record("wrong error \(String(describing: e))"); return }
        #expect(reason.contains("past the end"))
        let overlap = one("o.gguf", offsets: [0, 0], dataBytes: 64)
        let o = #expect(throws: FoveaError.self) { try GGUFFile(path: overlap) }
        guard case .overlappingTensors = o else { Issue.record("wrong error \(String(describing: o))"); return }
    }

    @Test("dimensions whose product overflows are refused, not trapped on")
    func overflowingShape() {
        var b = GGUFBuilder(); b.header(tensors: 1, kvs: 0)
        b.tensorInfo("huge", dims: [1 << 31 - 32, 1 << 31 - 1, 1 << 31 - 1, 1 << 31 - 1], type: 8, offset: 0)
        b.align(); b.bytes += [UInt8](repeating: 0, count: 64)
        b.write(file("huge.gguf"))
        let e = #expect(throws: FoveaError.self) { try GGUFFile(path: file("huge.gguf")) }
        guard case .badTensorSpan(_, "huge", let reason) = e else { Issue.record("wrong error \(String(describing: e))"); return }
        #expect(reason.contains("larger than the whole file"))
    }
}
