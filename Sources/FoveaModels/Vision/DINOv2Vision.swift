import FoveaCore
import FoveaIO

// Port of transformers' Dinov2Model (models/dinov2/modeling_dinov2.py, v5.23.0) as LLaVA reads
// it: patch embedding (with bias) + CLS + learned positions, pre-norm blocks with LayerScale,
// exact GELU, LayerNorm ε 1e-6, no pre-norm. The final `layernorm` applies only to
// `last_hidden_state`, which LLaVA never reads, so it is not loaded. No registers, no SwiGLU
// MLP (the -reg and giant variants are refused by name).
//
// Position embeddings must be stored for the tile grid (`image_size / patch_size` squared,
// + CLS): that is the table's shape in transformers too, which sizes it from `image_size` and
// interpolates only when an input's grid differs — LLaVA's tiles never do. The Hub's DINOv2
// tables (37×37, for 518 px) are resampled once when a checkpoint is assembled
// (scripts/realparts/convert_dinov2.py, bicubic as transformers does).

public struct DINOv2VisionTower: VisionTower {
    public static let family = VisionTowerFamily(
        modelType: "dinov2", name: "DINOv2 ViT", probe: "embeddings.cls_token",
        parse: { try DINOv2VisionTower.configuration(json: $0) },
        load: { try DINOv2VisionTower($0, config: $1, blocks: $2) })

    public let config: VisionConfiguration
    public let blocks: [ViTBlock]  // key: encoder.layer.N
    let patchEmbedding: Linear     // key: embeddings.patch_embeddings.projection, conv [D, C, p, p] flattened
    let clsToken: Tensor           // key: embeddings.cls_token, [1, 1, D]
    let positionEmbedding: Tensor  // key: embeddings.position_embeddings, [1, 1 + patches, D]

    /// `dinov2`, with transformers' `Dinov2Config` defaults for omitted fields.
    static func configuration(json j: JSONConfig) throws -> VisionConfiguration {
        var c = VisionConfiguration()
        c.modelType = "dinov2"
        c.hiddenSize = try j.int("hidden_size", default: 768)
        c.layers = try j.int("num_hidden_layers", default: 12)
        c.heads = try j.int("num_attention_heads", default: 12)
        let ratio = try j.double("mlp_ratio", default: 4)
        try j.check(ratio > 0 && ratio <= 64, "mlp_ratio", "must be in (0, 64], found \(ratio)")
        c.intermediateSize = Int(Double(c.hiddenSize) * ratio)
        c.channels = try j.int("num_channels", default: 3)
        c.imageSize = try j.int("image_size", default: 224)
        c.patchSize = try j.int("patch_size", default: 14)
        let act = try j.string("hidden_act", default: "gelu")
        guard let a = Activation(huggingFace: act) else { throw FoveaError.unsupportedModel(path: j.path, field: "\(j.keyPath).hidden_act", value: act) }
        c.activation = a
        c.layerNormEps = Float(try j.double("layer_norm_eps", default: 1e-6))
        if try j.bool("use_swiglu_ffn", default: false) {
            throw FoveaError.unsupportedModel(path: j.path, field: "\(j.keyPath).use_swiglu_ffn", value: "true (DINOv2-giant's SwiGLU MLP)")
        }
        if let registers = try j.int("num_register_tokens"), registers > 0 {
            throw FoveaError.unsupportedModel(path: j.path, field: "\(j.keyPath).num_register_tokens", value: "\(registers) (DINOv2 with registers)")
        }
        try c.validate(j)
        return c
    }

    public init(_ s: WeightScope, config c: VisionConfiguration, blocks n: Int) throws {
        config = c
        let p = c.patchSize, d = c.hiddenSize, m = c.intermediateSize
        let conv = try s.tensor("embeddings.patch_embeddings.projection.weight", [d, c.channels, p, p])
        patchEmbedding = Linear(weight: conv.reshaped([d, c.channels * p * p]),
                                bias: try s.tensor("embeddings.patch_embeddings.projection.bias", [d]))
        clsToken = try s.tensor("embeddings.cls_token", [1, 1, d])
        positionEmbedding = try s.tensor("embeddings.position_embeddings", [1, c.patches + 1, d])
        blocks = try (0..<n).map { i in
            let b = s.scoped("encoder.layer.\(i).")
            // The Hub's checkpoints name attention as BERT did; transformers 5 renames on load and saves the new names.
            let published = b.contains("attention.attention.query.weight")
            func linear(_ old: String, _ new: String, _ inDim: Int, _ outDim: Int) throws -> Linear {
                try Linear(b, published ? old : new, inDim: inDim, outDim: outDim, bias: true)
            }
            return ViTBlock(
                norm1: try LayerNorm(b, "norm1", dim: d, eps: c.layerNormEps),
                wq: try linear("attention.attention.query", "attention.q_proj", d, d),
                wk: try linear("attention.attention.key", "attention.k_proj", d, d),
                wv: try linear("attention.attention.value", "attention.v_proj", d, d),
                wo: try linear("attention.output.dense", "attention.o_proj", d, d),
                scale1: try b.tensor("layer_scale1.lambda1", [d]),
                norm2: try LayerNorm(b, "norm2", dim: d, eps: c.layerNormEps),
                fc1: try Linear(b, "mlp.fc1", inDim: d, outDim: m, bias: true),
                fc2: try Linear(b, "mlp.fc2", inDim: m, outDim: d, bias: true),
                scale2: try b.tensor("layer_scale2.lambda1", [d]))
        }
    }

    public var embeddingParameterCount: Int { patchEmbedding.parameterCount + clsToken.count + positionEmbedding.count }

    public func embed(pixels: UnsafePointer<Float>, partitions P: Int, into x: UnsafeMutablePointer<Float>) {
        let c = config
        let d = c.hiddenSize, np = c.patches, T = np + 1, side = c.imageSize, ps = c.patchSize
        let unfolded = Tensor(zeros: [np, c.channels * ps * ps])
        for p in 0..<P {
            PatchEmbedding.unfold(pixels + p * c.channels * side * side, channels: c.channels, height: side, width: side,
                                  patch: ps, into: unfolded.data)
            let xp = x + p * T * d
            xp.update(from: clsToken.data, count: d)
            patchEmbedding(unfolded.data, rows: np, into: xp + d)
            Kernels.add(positionEmbedding.data, into: xp, count: T * d)
        }
    }
}
