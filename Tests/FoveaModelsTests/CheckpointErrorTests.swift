import Foundation
import Testing
import FoveaCore
import FoveaIO
@testable import FoveaModels
import FoveaTestSupport

/// Bad checkpoints: each must fail at load with an error naming what is wrong.
@Suite("Checkpoint errors")
struct CheckpointErrorTests {
    /// A copy of a fixture folder whose config and weights a test may edit.
    func copy(_ name: String) throws -> String {
        let dst = Fixtures.temporaryDirectory("ckpt")
        let src = Fixtures.model(name)
        for f in try FileManager.default.contentsOfDirectory(atPath: src) {
            try FileManager.default.copyItem(atPath: src + "/" + f, toPath: dst + "/" + f)
        }
        return dst
    }

    func editConfig(_ dir: String, _ edit: (inout [String: Any]) -> Void) throws {
        let path = dir + "/config.json"
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
    }

    /// Rewrites model.safetensors keeping the header but changing one tensor's entry.
    func rewriteTensor(_ dir: String, _ edit: (inout [String: Any]) -> Void) throws {
        let path = dir + "/model.safetensors"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = Int(bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        var header = try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + n))) as! [String: Any]
        edit(&header)
        writeSafetensors(path, header: String(data: try JSONSerialization.data(withJSONObject: header), encoding: .utf8)!,
                         data: Array(bytes.suffix(from: 8 + n)))
    }

    @Test("unknown model_type")
    func unknownType() throws {
        let dir = try copy("llava-full-tied")
        try editConfig(dir) { $0["model_type"] = "blip2" }
        let e = #expect(throws: FoveaError.self) { try VisionLanguageModel(directory: dir) }
        guard case .unsupportedModel(let path, "model_type", let v) = e else { Issue.record("wrong error \(String(describing: e))"); return }
        #expect(path.hasSuffix("config.json") && v.hasPrefix("blip2"))
    }

    @Test("unsupported text and vision model types name the nested field")
    func nestedTypes() throws {
        let dir = try copy("llava-full-tied")
        try editConfig(dir) { j in var t = j["text_config"] as! [String: Any]; t["model_type"] = "gemma"; j["text_config"] = t }
        #expect(throws: FoveaError.unsupportedModel(path: dir + "/config.json", field: "text_config.model_type", value: "gemma")) {
            try VisionLanguageModel(directory: dir)
        }
    }

    @Test("a vision_feature_layer outside the tower")
    func badFeatureLayer() throws {
        let dir = try copy("llava-full-tied")
        try editConfig(dir) { $0["vision_feature_layer"] = -9 }
        let e = #expect(throws: FoveaError.self) { try VisionLanguageModel(directory: dir) }
        guard case .invalidConfig(_, "vision_feature_layer", _) = e else { Issue.record("wrong error \(String(describing: e))"); return }
    }

    @Test("a missing tensor lists the names searched")
    func missingTensor() throws {
        let dir = try copy("llava-full-tied")
        try rewriteTensor(dir) { $0.removeValue(forKey: "language_model.model.layers.1.mlp.up_proj.weight") }
        #expect(throws: FoveaError.missingTensor(name: "language_model.model.layers.1.mlp.up_proj.weight", searched: [dir])) {
            try VisionLanguageModel(directory: dir)
        }
    }

    @Test("a tensor of the wrong shape gives expected versus actual")
    func wrongShape() throws {
        let dir = try copy("llava-full-tied")
        // Same byte count, transposed shape: only the shape check can catch it.
        try rewriteTensor(dir) { h in
            var e = h["multi_modal_projector.linear_1.weight"] as! [String: Any]
            e["shape"] = [32, 64]
            h["multi_modal_projector.linear_1.weight"] = e
        }
        #expect(throws: FoveaError.shapeMismatch(tensor: "multi_modal_projector.linear_1.weight", expected: [64, 32], actual: [32, 64])) {
            try VisionLanguageModel(directory: dir)
        }
    }

    @Test("a truncated weights file")
    func truncated() throws {
        let dir = try copy("llava-full-tied")
        let path = dir + "/model.safetensors"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: path))
        let e = #expect(throws: FoveaError.self) { try VisionLanguageModel(directory: dir) }
        guard case .badTensorSpan(let p, _, let reason) = e else { Issue.record("wrong error \(String(describing: e))"); return }
        #expect(p == path && reason.contains("truncated"))
    }

    @Test("a missing config.json and a folder without weights")
    func missingFiles() throws {
        let dir = Fixtures.temporaryDirectory("empty")
        #expect(throws: FoveaError.fileNotFound(path: dir + "/config.json")) { try VisionLanguageModel(directory: dir) }
        try FileManager.default.copyItem(atPath: Fixtures.model("llava-tiny") + "/config.json", toPath: dir + "/config.json")
        #expect(throws: FoveaError.fileNotFound(path: dir + "/model.safetensors")) { try VisionLanguageModel(directory: dir) }
    }

    @Test("wrong pixel shape and image-token mismatches are input errors, not crashes")
    func badInputs() throws {
        let m = try VisionLanguageModel(directory: Fixtures.model("llava-tiny"))
        let wrong = ImageInput(pixels: Tensor(zeros: [1, 3, 28, 28]), originalHeight: 28, originalWidth: 28)
        #expect(throws: FoveaError.shapeMismatch(tensor: "pixel_values", expected: [1, 3, 56, 56], actual: [1, 3, 28, 28])) {
            try m.encode(wrong)
        }
        let good = try m.encode(ImageInput(pixels: Tensor(zeros: [1, 3, 56, 56]), originalHeight: 56, originalWidth: 56))
        #expect(throws: FoveaError.self) { try m.embed(tokens: [1, 199, 199, 5], images: [good]) }   // 2 tokens, 16 features
        #expect(throws: FoveaError.self) { try m.embed(tokens: [1, 199, 5], images: []) }             // image token, no image
        #expect(throws: FoveaError.self) { try m.embed(tokens: [1, 5000], images: []) }               // outside the vocabulary
    }
}
