import FoveaCore
import FoveaIO

// Port of transformers' CLIPVisionTransformer (models/clip/modeling_clip.py, v5.23.0):
// patch embedding (no bias) + CLS + learned positions, pre-layernorm, pre-norm blocks,
// quick-GELU. LLaVA reads hidden states before the post-layernorm, so that is not loaded.

public struct CLIPVisionTower: VisionTower {
    public static let family = VisionTowerFamily(
        modelType: "clip_vision_model", name: "CLIP ViT", probe: "embeddings.class_embedding",
        parse: { try CLIPVisionTower.configuration(json: $0) },
        load: { try CLIPVisionTower($0, config: $1, blocks: $2) })

    public let config: VisionConfiguration
    public let blocks: [ViTBlock]  // key: encoder.layers.N
    let patchEmbedding: Tensor     // key: embeddings.patch_embedding.weight, [D, C·p·p] (conv [D, C, p, p] flattened)
    let classEmbedding: Tensor     // key: embeddings.class_embedding, [D]
    let positionEmbedding: Tensor  // key: embeddings.position_embedding.weight, [1 + patches, D]
    let preLayerNorm: LayerNorm    // key: pre_layrnorm (sic)

    /// LLaVA's default tower (CLIP ViT-L/14-336), for LLaVA configs that omit `vision_config`.
    public static var llavaDefault: VisionConfiguration {
        var c = VisionConfiguration()
        c.hiddenSize = 1024; c.intermediateSize = 4096; c.layers = 24; c.heads = 16
        c.imageSize = 336; c.patchSize = 14
        return c
    }

    /// `clip_vision_model`, with transformers' `CLIPVisionConfig` defaults for omitted fields.
    static func configuration(json j: JSONConfig) throws -> VisionConfiguration {
        var c = VisionConfiguration()
        c.hiddenSize = try j.int("hidden_size", default: c.hiddenSize)
        c.intermediateSize = try j.int("intermediate_size", default: c.intermediateSize)
        c.layers = try j.int("num_hidden_layers", default: c.layers)
        c.heads = try j.int("num_attention_heads", default: c.heads)
        c.channels = try j.int("num_channels", default: c.channels)
        c.imageSize = try j.int("image_size", default: c.imageSize)
        c.patchSize = try j.int("patch_size", default: c.patchSize)
        let act = try j.string("hidden_act", default: c.activation.rawValue)
        guard let a = Activation(huggingFace: act) else { throw FoveaError.unsupportedModel(path: j.path, field: "\(j.keyPath).hidden_act", value: act) }
        c.activation = a
        c.layerNormEps = Float(try j.double("layer_norm_eps", default: Double(c.layerNormEps)))
        try c.validate(j)
        return c
    }

    public init(_ s: WeightScope, config c: VisionConfiguration, blocks n: Int) throws {
        config = c
        let p = c.patchSize, d = c.hiddenSize
        patchEmbedding = try s.tensor("embeddings.patch_embedding.weight", [d, c.channels, p, p]).reshaped([d, c.channels * p * p])
        classEmbedding = try s.tensor("embeddings.class_embedding", [d])
        positionEmbedding = try s.tensor("embeddings.position_embedding.weight", [c.patches + 1, d])
        preLayerNorm = try LayerNorm(s, "pre_layrnorm", dim: d, eps: c.layerNormEps)
        blocks = try (0..<n).map { i in
            let b = s.scoped("encoder.layers.\(i).")
            return ViTBlock(
                norm1: try LayerNorm(b, "layer_norm1", dim: d, eps: c.layerNormEps),
                wq: try Linear(b, "self_attn.q_proj", inDim: d, outDim: d, bias: true),
                wk: try Linear(b, "self_attn.k_proj", inDim: d, outDim: d, bias: true),
                wv: try Linear(b, "self_attn.v_proj", inDim: d, outDim: d, bias: true),
                wo: try Linear(b, "self_attn.out_proj", inDim: d, outDim: d, bias: true),
                norm2: try LayerNorm(b, "layer_norm2", dim: d, eps: c.layerNormEps),
                fc1: try Linear(b, "mlp.fc1", inDim: d, outDim: c.intermediateSize, bias: true),
                fc2: try Linear(b, "mlp.fc2", inDim: c.intermediateSize, outDim: d, bias: true))
        }
    }

    public var embeddingParameterCount: Int {
        patchEmbedding.count + classEmbedding.count + positionEmbedding.count + 2 * preLayerNorm.gamma.count
    }

    public func embed(pixels: UnsafePointer<Float>, partitions P: Int, into x: UnsafeMutablePointer<Float>) {
        let c = config
        let d = c.hiddenSize, np = c.patches, T = np + 1, side = c.imageSize, ps = c.patchSize
        let patchLen = c.channels * ps * ps
        let unfolded = Tensor(zeros: [np, patchLen])
        for p in 0..<P {
            PatchEmbedding.unfold(pixels + p * c.channels * side * side, channels: c.channels, height: side, width: side,
                                  patch: ps, into: unfolded.data)
            let xp = x + p * T * d
            xp.update(from: classEmbedding.data, count: d)
            Kernels.linear(unfolded.data, rows: np, inDim: patchLen, weight: patchEmbedding.data, bias: nil, outDim: d, into: xp + d)
            Kernels.add(positionEmbedding.data, into: xp, count: T * d)
        }
        preLayerNorm(x, rows: P * T, into: x)
    }
}
