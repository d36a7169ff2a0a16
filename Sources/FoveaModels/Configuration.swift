import Foundation
import FoveaCore
import FoveaIO

// MARK: Language

/// Llama / Mistral decoder config. Defaults are transformers' `LlamaConfig` / `MistralConfig`.
public struct TextConfiguration: Sendable, Equatable {
    public var modelType = "llama"
    public var vocabSize = 32000
    public var hiddenSize = 4096
    public var intermediateSize = 11008
    public var layers = 32
    public var heads = 32
    public var kvHeads = 32
    public var headDim = 128
    public var activation = Activation.silu
    public var rmsNormEps: Float = 1e-6
    public var ropeTheta: Float = 10_000
    public var ropeScaling: Float = 1
    public var attentionBias = false
    public var mlpBias = false
    public var slidingWindow: Int? = nil
    public var tieWordEmbeddings = false
    public var maxPositions = 2048
    public var bosTokenId: Int? = 1
    public var eosTokenIds: [Int] = [2]

    public init() {}

    public static let supportedTypes = ["llama", "mistral"]

    public init(json j: JSONConfig, tieDefault: Bool? = nil) throws {
        modelType = try j.string("model_type", default: "llama")
        guard Self.supportedTypes.contains(modelType) else {
            throw FoveaError.unsupportedModel(path: j.path, field: j.field("model_type"), value: modelType)
        }
        let mistral = modelType == "mistral"
        vocabSize = try j.int("vocab_size", default: 32000)
        hiddenSize = try j.int("hidden_size", default: 4096)
        intermediateSize = try j.int("intermediate_size", default: mistral ? 14336 : 11008)
        layers = try j.int("num_hidden_layers", default: 32)
        heads = try j.int("num_attention_heads", default: 32)
        kvHeads = try j.int("num_key_value_heads", default: mistral ? 8 : heads)
        for (key, v) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
                         ("num_hidden_layers", layers), ("num_attention_heads", heads), ("num_key_value_heads", kvHeads)] {
            try j.check(v > 0, key, "must be positive, found \(v)")
        }
        try j.check(heads % kvHeads == 0, "num_key_value_heads", "\(heads) attention heads are not a multiple of \(kvHeads) KV heads")
        headDim = try j.int("head_dim") ?? (hiddenSize / heads)
        try j.check(headDim > 0 && headDim % 2 == 0, "head_dim", "must be a positive even number, found \(headDim)")
        let act = try j.string("hidden_act", default: "silu")
        guard let a = Activation(huggingFace: act) else { throw FoveaError.unsupportedModel(path: j.path, field: j.field("hidden_act"), value: act) }
        activation = a
        rmsNormEps = Float(try j.double("rms_norm_eps", default: 1e-6))
        // transformers 5 nests RoPE settings in `rope_parameters`; 4.x keeps `rope_theta` and `rope_scaling` at top level.
        let rope = try j.object("rope_parameters") ?? j.object("rope_scaling")
        ropeTheta = Float(try rope?.double("rope_theta") ?? j.double("rope_theta", default: 10_000))
        if let rope {
            let type = try rope.string("rope_type") ?? rope.string("type") ?? "default"
            switch type {
            case "default": break
            case "linear": ropeScaling = Float(try rope.double("factor", default: 1))
            default: throw FoveaError.unsupportedModel(path: j.path, field: rope.keyPath + ".rope_type", value: type)
            }
        }
        attentionBias = try j.bool("attention_bias", default: false)
        mlpBias = try j.bool("mlp_bias", default: false)
        slidingWindow = mistral ? try j.int("sliding_window") : nil
        tieWordEmbeddings = try j.bool("tie_word_embeddings", default: tieDefault ?? false)
        maxPositions = try j.int("max_position_embeddings", default: mistral ? 4096 * 32 : 2048)
        bosTokenId = try j.int("bos_token_id") ?? 1
        // eos_token_id is an integer or a list of them.
        if j.raw["eos_token_id"] is [Any] { eosTokenIds = try j.intList("eos_token_id") ?? [2] } else { eosTokenIds = [try j.int("eos_token_id") ?? 2] }
    }
}

// MARK: Model

public enum FeatureSelectStrategy: String, Sendable {
    /// Drop the CLS token.
    case `default`
    /// Keep the CLS token.
    case full
}

public enum ArchitectureKind: String, Sendable {
    case llava
    case llavaNext = "llava_next"
    /// A text-only decoder checkpoint (model_type llama / mistral).
    case textOnly
}

/// A LLaVA-family config.json, with transformers' defaults for omitted fields.
public struct ModelConfiguration: Sendable, Equatable {
    public var kind: ArchitectureKind
    public var vision: VisionConfiguration?
    public var text: TextConfiguration
    public var imageTokenId: Int = 32000
    public var projectorActivation = Activation.gelu
    public var projectorBias = true
    /// Indices into the vision hidden-state list (0 = embeddings after pre-layernorm,
    /// i = output of layer i), already resolved from negative values; several are concatenated.
    public var visionFeatureLayers: [Int] = []
    public var featureStrategy = FeatureSelectStrategy.default
    /// (height, width) resolutions anyres may pick.
    public var gridPinpoints: [[Int]] = []

    public static let supportedTypes = ["llava", "llava_next", "llama", "mistral"]

    public init(directory: String) throws {
        try self.init(json: JSONConfig(path: (directory as NSString).appendingPathComponent("config.json")))
    }

    public init(json j: JSONConfig) throws {
        guard let type = try j.string("model_type") else {
            throw FoveaError.invalidConfig(path: j.path, field: "model_type", reason: "required field is missing")
        }
        switch type {
        case "llava": kind = .llava
        case "llava_next": kind = .llavaNext
        case "llama", "mistral":
            kind = .textOnly
            text = try TextConfiguration(json: j)
            return
        default:
            throw FoveaError.unsupportedModel(path: j.path, field: "model_type", value: "\(type) (supported: \(Self.supportedTypes.joined(separator: ", ")))")
        }
        let tie = try j.bool("tie_word_embeddings", default: false)
        let textJSON = try j.object("text_config") ?? JSONConfig(path: j.path, keyPath: "text_config", raw: [:])
        text = try TextConfiguration(json: textJSON, tieDefault: tie)
        if tie { text.tieWordEmbeddings = true }
        let visionJSON = try j.object("vision_config")
        let v = try visionJSON.map { try VisionTowers.configuration(json: $0) } ?? CLIPVisionTower.llavaDefault
        vision = v
        imageTokenId = try j.int("image_token_id") ?? j.int("image_token_index") ?? 32000
        let act = try j.string("projector_hidden_act", default: "gelu")
        guard let a = Activation(huggingFace: act) else { throw FoveaError.unsupportedModel(path: j.path, field: "projector_hidden_act", value: act) }
        projectorActivation = a
        projectorBias = try j.bool("multimodal_projector_bias", default: true)
        // An integer, or (newer configs) a list of layers whose states are concatenated.
        let rawLayers = j.raw["vision_feature_layer"] is [Any]
            ? try j.intList("vision_feature_layer") ?? [] : [try j.int("vision_feature_layer", default: -2)]
        visionFeatureLayers = try rawLayers.map { l in
            let resolved = l < 0 ? v.layers + 1 + l : l
            try j.check(resolved >= 0 && resolved <= v.layers, "vision_feature_layer",
                        "\(l) is outside the \(v.layers + 1) hidden states of a \(v.layers)-layer tower")
            return resolved
        }
        try j.check(!visionFeatureLayers.isEmpty, "vision_feature_layer", "empty list")
        let strategy = try j.string("vision_feature_select_strategy", default: "default")
        guard let s = FeatureSelectStrategy(rawValue: strategy) else {
            throw FoveaError.unsupportedModel(path: j.path, field: "vision_feature_select_strategy", value: strategy)
        }
        featureStrategy = s
        if kind == .llavaNext {
            gridPinpoints = try j.intPairs("image_grid_pinpoints") ?? [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
            try j.check(!gridPinpoints.isEmpty, "image_grid_pinpoints", "empty list")
            if let tile = vision?.imageSize {
                for p in gridPinpoints {
                    try j.check(p.count == 2 && p[0] > 0 && p[1] > 0 && p[0] % tile == 0 && p[1] % tile == 0 && (p[0] / tile) * (p[1] / tile) <= 64,
                                "image_grid_pinpoints", "\(p) is not a grid of at most 64 tiles of the vision tower's \(tile) pixels")
                }
            }
            // Packing reshapes each tile's tokens into a square grid: it needs CLS dropped.
            try j.check(featureStrategy == .default, "vision_feature_select_strategy",
                        "llava_next packs tiles into a patch grid and needs 'default' (CLS dropped), found '\(strategy)'")
        }
        // One past the vocabulary is allowed: the placeholder is replaced, never looked up (see
        // `ModelConfiguration(gguf:mmproj:)` for the files that need it).
        try j.check(imageTokenId >= 0 && imageTokenId <= text.vocabSize, "image_token_index",
                    "\(imageTokenId) is outside the vocabulary (\(text.vocabSize))")
    }

    /// Width of one vision token as the projector sees it (feature layers concatenated).
    public var visionFeatureWidth: Int { (vision?.hiddenSize ?? 0) * visionFeatureLayers.count }
}
