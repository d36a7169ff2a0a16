import Foundation
import Testing
@testable import FoveaIO
import FoveaCore
import FoveaTestSupport

/// One handcrafted file per failure category (as llama.cpp's test-gguf does), each expecting its error.
@Suite("safetensors reader")
struct SafeTensorsTests {
    let dir = Fixtures.temporaryDirectory("st")

    func file(_ name: String) -> String { dir + "/" + name }

    func floats(_ v: [Float]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }

    @Test("reads float32, float16 and bfloat16 tensors and metadata")
    func readsValid() throws {
        let f32 = floats([1, -2, 3.5, 4])
        let f16: [UInt8] = [0x00, 0x3C, 0x00, 0xC0]          // 1, -2
        let bf16: [UInt8] = [0x80, 0x3F, 0xA0, 0xC0]         // 1, -5
        let header = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"#
            + #""b":{"dtype":"F16","shape":[2],"data_offsets":[16,20]},"c":{"dtype":"BF16","shape":[2],"data_offsets":[20,24]}}"#
        writeSafetensors(file("ok.safetensors"), header: header, data: f32 + f16 + bf16)
        let st = try SafeTensorsFile(path: file("ok.safetensors"))
        #expect(st.metadata["format"] == "pt")
        let a = try st.load("a")
        #expect(a.shape == [2, 2] && a.toArray() == [1, -2, 3.5, 4])
        #expect(try st.load("b").toArray() == [1, -2])
        #expect(try st.load("c").toArray() == [1, -5])
    }

    @Test("a file shorter than the 8-byte length prefix is truncated")
    func tooShort() {
        _ = FileManager.default.createFile(atPath: file("short.safetensors"), contents: Data([1, 2, 3]))
        #expect(throws: FoveaError.truncated(path: file("short.safetensors"), expectedBytes: 8, actualBytes: 3)) {
            try SafeTensorsFile(path: file("short.safetensors"))
        }
    }

    @Test("a header length past the end of the file is reported as truncation")
    func headerPastEnd() {
        writeSafetensors(file("h.safetensors"), header: "{}", data: [], declaredLength: 4096)
        #expect(throws: FoveaError.truncated(path: file("h.safetensors"), expectedBytes: 8 + 4096, actualBytes: 16)) {
            try SafeTensorsFile(path: file("h.safetensors"))
        }
    }

    @Test("an absurd header length is refused before reading")
    func hugeHeader() throws {
        writeSafetensors(file("huge.safetensors"), header: "{}", data: [], declaredLength: UInt64.max)
        let e = #expect(throws: FoveaError.self) { try SafeTensorsFile(path: file("huge.safetensors")) }
        guard case .badHeader(_, let reason) = e else { Issue.record("wrong error \(String(describing: e))"); return }
        #expect(reason.contains("exceeds"))
    }

    @Test("a header that is not JSON")
    func badJSON() {
        writeSafetensors(file("j.safetensors"), header: #"{"a": {"dtype": "F32", "#, data: [])
        #expect(throws: FoveaError.badJSON(path: file("j.safetensors"), reason: "header is not valid JSON (24 bytes)")) {
            try SafeTensorsFile(path: file("j.safetensors"))
        }
    }

    @Test("an unknown dtype names the tensor and the dtype")
    func unknownDType() {
        writeSafetensors(file("d.safetensors"), header: #"{"w":{"dtype":"F8_E9","shape":[1],"data_offsets":[0,1]}}"#, data: [0])
        #expect(throws: FoveaError.unknownDType(path: file("d.safetensors"), tensor: "w", dtype: "F8_E9")) {
            try SafeTensorsFile(path: file("d.safetensors"))
        }
    }

    @Test("a span past the data section names the tensor")
    func outOfRange() throws {
        writeSafetensors(file("r.safetensors"), header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: floats([1, 2]))
        let e = #expect(throws: FoveaError.self) { try SafeTensorsFile(path: file("r.safetensors")) }
        guard case .badTensorSpan(_, "w", let reason) = e else { Issue.record("wrong error \(String(describing: e))"); return }
        #expect(reason.contains("past the data section"))
    }

    @Test("shape × element size must equal the span")
    func sizeMismatch() throws {
        writeSafetensors(file("s.safetensors"), header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}"#, data: floats([1, 2, 3, 4]))
        let e = #expect(throws: FoveaError.self) { try SafeTensorsFile(path: file("s.safetensors")) }
        guard case .badTensorSpan(_, "w", let reason) = e else { Issue.record("wrong error \(String(describing: e))"); return }
        #expect(reason.contains("12 bytes") && reason.contains("span 16"))
    }

    @Test("a shape whose byte size overflows is refused, not trapped on")
    func overflowingShape() throws {
        // 2⁶² elements fit in an Int; 2⁶² × 4 bytes do not.
        writeSafetensors(file("x.safetensors"), header: #"{"w":{"dtype":"F32","shape":[2147483648,2147483648],"data_offsets":[0,4]}}"#, data: floats([1]))
        let e = #expect(throws: FoveaError.self) { try SafeTensorsFile(path: file("x.safetensors")) }
        guard case .badTensorSpan(_, "w", let reason) = e else { Issue.record("wrong error \(String(describing: e))"); return }
        #expect(reason.contains("overflows"))
    }

    @Test("overlapping spans are refused")
    func overlap() throws {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        writeSafetensors(file("o.safetensors"), header: header, data: floats([1, 2, 3]))
        let e = #expect(throws: FoveaError.self) { try SafeTensorsFile(path: file("o.safetensors")) }
        guard case .overlappingTensors(_, let a, let b) = e else { Issue.record("wrong error \(String(describing: e))"); return }
        #expect(Set([a, b]) == ["a", "b"])
    }

    @Test("decreasing offsets and negative dimensions are refused")
    func badOffsets() {
        writeSafetensors(file("n.safetensors"), header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, data: floats([1, 2, 3]))
        #expect(throws: FoveaError.self) { try SafeTensorsFile(path: file("n.safetensors")) }
        writeSafetensors(file("m.safetensors"), header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: floats([1]))
        #expect(throws: FoveaError.self) { try SafeTensorsFile(path: file("m.safetensors")) }
    }

    @Test("a missing file and a missing tensor are named")
    func missing() throws {
        #expect(throws: FoveaError.fileNotFound(path: file("nope.safetensors"))) { try SafeTensorsFile(path: file("nope.safetensors")) }
        writeSafetensors(file("one.safetensors"), header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: floats([1]))
        let store = try WeightStore(directory: dir)
        #expect(throws: FoveaError.missingTensor(name: "b", searched: [dir])) { try store.tensor("b", shape: [1]) }
        #expect(throws: FoveaError.shapeMismatch(tensor: "a", expected: [2], actual: [1])) { try store.tensor("a", shape: [2]) }
    }

    @Test("error messages name the file, tensor, and expected versus actual")
    func messages() {
        let m = FoveaError.shapeMismatch(tensor: "x.weight", expected: [4, 2], actual: [2, 4]).localizedDescription
        #expect(m == "tensor 'x.weight': expected shape [4, 2], found [2, 4]")
        let t = FoveaError.truncated(path: "/m/model.safetensors", expectedBytes: 100, actualBytes: 10).localizedDescription
        #expect(t == "/m/model.safetensors: file is truncated: needs at least 100 bytes, has 10")
    }
}

@Suite("JSON config reader")
struct JSONConfigTests {
    func config(_ text: String) throws -> JSONConfig { try JSONConfig(data: Data(text.utf8), path: "config.json") }

    @Test("typed fields, defaults, and errors naming the field path")
    func fields() throws {
        let c = try config(#"{"a": 3, "b": true, "t": {"x": 1.5, "s": "hi"}, "l": [1, 2], "bad": "7"}"#)
        #expect(try c.int("a", default: 0) == 3)
        #expect(try c.int("missing", default: 9) == 9)
        #expect(try c.bool("b", default: false))
        let t = try #require(try c.object("t"))
        #expect(try t.double("x") == 1.5 && t.string("s") == "hi")
        #expect(try c.intList("l") == [1, 2])
        #expect(throws: FoveaError.invalidConfig(path: "config.json", field: "bad", reason: "expected an integer, found 7")) { try c.int("bad") }
        #expect(throws: FoveaError.self) { try c.int("b") }          // true is not an integer
        #expect(throws: FoveaError.self) { try t.int("s") }
    }

    @Test("malformed JSON is a clear error")
    func malformed() {
        #expect(throws: FoveaError.badJSON(path: "config.json", reason: "not valid JSON")) { try config("{\"a\": ") }
        #expect(throws: FoveaError.badJSON(path: "config.json", reason: "top level is not an object")) { try config("[1, 2]") }
    }
}
