import Foundation
import FoveaCore
import FoveaIO
import FoveaModels

/// Published model shapes that `fovea bench --shape` builds with random weights, so speed and
/// memory can be measured at a real model's size without its multi-gigabyte file.
public struct BenchShape: Sendable {
    public struct Vision: Sendable { var hidden, intermediate, layers, heads, image, patch: Int }
    public struct Text: Sendable { var hidden, intermediate, layers, heads, kvHeads, vocab: Int }
    public let name: String
    public let summary: String
    let vision: Vision
    let text: Text
    /// LLaVA-NeXT (anyres) rather than LLaVA-1.5.
    let next: Bool
    /// The square image the benchmark feeds it, in pixels (anyres picks the grid from it).
    public let imageSide: Int

    var pinpoints: [[Int]] {
        let t = vision.image
        return [[t, 2 * t], [2 * t, t], [2 * t, 2 * t], [3 * t, t], [t, 3 * t]]
    }

    public func configuration() throws -> ModelConfiguration {
        let v = vision, t = text
        var c: [String: Any] = [
            "model_type": next ? "llava_next" : "llava",
            "vision_config": ["model_type": "clip_vision_model", "hidden_size": v.hidden, "intermediate_size": v.intermediate,
                              "num_hidden_layers": v.layers, "num_attention_heads": v.heads, "image_size": v.image, "patch_size": v.patch],
            "text_config": ["model_type": "llama", "hidden_size": t.hidden, "intermediate_size": t.intermediate, "num_hidden_layers": t.layers,
                            "num_attention_heads": t.heads, "num_key_value_heads": t.kvHeads, "vocab_size": t.vocab,
                            "max_position_embeddings": 4096],
            "vision_feature_layer": -2, "image_token_index": t.vocab - 1,
        ]
        if next { c["image_grid_pinpoints"] = pinpoints }
        return try ModelConfiguration(json: JSONConfig(path: "--shape \(name)", keyPath: "", raw: c))
    }

    public func imageProcessor() throws -> ImageProcessor {
        var p: [String: Any] = ["image_processor_type": next ? "LlavaNextImageProcessor" : "CLIPImageProcessor",
                                "size": ["shortest_edge": vision.image], "crop_size": ["height": vision.image, "width": vision.image]]
        if next { p["image_grid_pinpoints"] = pinpoints }
        return try ImageProcessor(json: JSONConfig(path: "--shape \(name)", keyPath: "", raw: p))
    }
}

public enum BenchShapes {
    /// The table `--shape` reads. CLIP ViT-L/14-336 is LLaVA-1.5's and LLaVA-NeXT's tower; TinyLlama
    /// 1.1B is TinyLLaVA's language model, Vicuna-7B LLaVA's; the LLaVA-NeXT shapes get a 672×672
    /// image (2×2 grid + base view → 2,928 visual tokens).
    public static let all: [BenchShape] = [
        BenchShape(name: "tiny", summary: "test-sized LLaVA-NeXT (CLIP 2 × 64 wide, Llama 2 × 64 wide): checks the benchmark itself",
                   vision: .init(hidden: 64, intermediate: 128, layers: 2, heads: 2, image: 56, patch: 14),
                   text: .init(hidden: 64, intermediate: 128, layers: 2, heads: 4, kvHeads: 2, vocab: 512), next: true, imageSide: 112),
        BenchShape(name: "tinyllava", summary: "LLaVA-1.5: CLIP ViT-L/14-336 + TinyLlama-1.1B (2048 wide, 22 layers, 32 heads, 4 KV heads); 336×336 → 576 visual tokens",
                   vision: clipL336, text: tinyLlama, next: false, imageSide: 336),
        BenchShape(name: "llava-next-tinyllama", summary: "LLaVA-NeXT: CLIP ViT-L/14-336 + TinyLlama-1.1B; 672×672 → 2×2 grid → 2,928 visual tokens",
                   vision: clipL336, text: tinyLlama, next: true, imageSide: 672),
        BenchShape(name: "llava-1.5-7b", summary: "LLaVA-1.5-7B: CLIP ViT-L/14-336 + Vicuna-7B (4096 wide, 32 layers, 32 heads); 336×336 → 576 visual tokens",
                   vision: clipL336, text: vicuna7B, next: false, imageSide: 336),
        BenchShape(name: "llava-next-7b", summary: "LLaVA-NeXT-Vicuna-7B: CLIP ViT-L/14-336 + Vicuna-7B; 672×672 → 2×2 grid → 2,928 visual tokens",
                   vision: clipL336, text: vicuna7B, next: true, imageSide: 672),
    ]

    public static func named(_ name: String) throws -> BenchShape {
        guard let s = all.first(where: { $0.name == name }) else {
            throw FoveaError.invalidArgument(name: "--shape", value: name, reason: "not a known shape (\(all.map(\.name).joined(separator: ", ")))")
        }
        return s
    }

    static let clipL336 = BenchShape.Vision(hidden: 1024, intermediate: 4096, layers: 24, heads: 16, image: 336, patch: 14)
    static let tinyLlama = BenchShape.Text(hidden: 2048, intermediate: 5632, layers: 22, heads: 32, kvHeads: 4, vocab: 32000)
    static let vicuna7B = BenchShape.Text(hidden: 4096, intermediate: 11008, layers: 32, heads: 32, kvHeads: 32, vocab: 32000)
}

extension ModelConfiguration {
    /// Parameters a model of this configuration holds once loaded (the vision layers up to the
    /// deepest one read, projector, image newline, language model), from the shapes alone: what a
    /// memory check needs before any weight exists.
    public var parameterEstimate: Int {
        let t = text
        let attention = t.hiddenSize * t.heads * t.headDim * 2 + t.hiddenSize * t.kvHeads * t.headDim * 2
        let layer = attention + 3 * t.hiddenSize * t.intermediateSize + 2 * t.hiddenSize
        var n = t.layers * layer + t.vocabSize * t.hiddenSize * (t.tieWordEmbeddings ? 1 : 2) + t.hiddenSize
        if let v = vision {
            let block = 4 * v.hiddenSize * v.hiddenSize + 2 * v.hiddenSize * v.intermediateSize + 9 * v.hiddenSize + v.intermediateSize
            let loaded = min(visionFeatureLayers.max() ?? v.layers, v.layers)
            n += loaded * block + v.channels * v.patchSize * v.patchSize * v.hiddenSize + (v.patches + 1) * v.hiddenSize + 3 * v.hiddenSize
            n += visionFeatureWidth * t.hiddenSize + t.hiddenSize * t.hiddenSize + 2 * t.hiddenSize
            if kind == .llavaNext { n += t.hiddenSize }
        }
        return n
    }
}
