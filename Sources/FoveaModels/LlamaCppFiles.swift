import Foundation
import FoveaCore
import FoveaIO

// llama.cpp runs LLaVA from two GGUF files: the language model (`llama` architecture) and an
// "mmproj" file (`clip` architecture) with the vision tower and projector. The names and keys
// below are those tools/mtmd/legacy-models/convert_image_encoder_to_gguf.py writes and
// tools/mtmd/clip.cpp reads (llama.cpp of 2026-10); they are mapped back to Hugging Face names
// so the one LLaVA implementation serves both.

/// An mmproj file's tensors under Hugging Face LLaVA names (`vision_tower.vision_model.*`,
/// `multi_modal_projector.*`, `image_newline`); matrices kept as stored unless asked otherwise.
public final class ClipProjectorWeights: TensorSource, @unchecked Sendable {
    public let file: GGUFFile
    /// Per block: (fc1, fc2) GGUF names. The legacy converter writes fc1 as `ffn_down` and fc2 as
    /// `ffn_up`; newer files name them the other way round. Which is which is read off the shapes,
    /// as clip.cpp does: when `ffn_down`'s input width is the tower's width, it is fc1.
    private var mlp: [Int: (fc1: String, fc2: String)] = [:]

    /// False: every matrix becomes float32 at load (`--weights f32`).
    let keepStored: Bool

    public init(file: GGUFFile, hiddenSize: Int, keepStored: Bool = true) {
        self.file = file
        self.keepStored = keepStored
        for name in file.tensorOrder where name.hasPrefix("v.blk.") && name.hasSuffix(".ffn_down.weight") {
            guard let block = Int(name.dropFirst("v.blk.".count).prefix { $0 != "." }) else { continue }
            let down = "v.blk.\(block).ffn_down", up = "v.blk.\(block).ffn_up"
            let legacy = file.tensors[name]?.shape.last == hiddenSize
            mlp[block] = legacy ? (down, up) : (up, down)
        }
    }

    static let visionPrefix = "vision_tower.vision_model."
    static let blockNames = [
        "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
        "self_attn.out_proj": "attn_out", "layer_norm1": "ln1", "layer_norm2": "ln2",
    ]

    /// HF name → GGUF name, nil for names this file does not hold.
    func ggufName(_ hf: String) -> String? {
        if hf == "image_newline" { return ["v.image_newline", "model.image_newline"].first { file.tensors[$0] != nil } ?? "v.image_newline" }
        if hf.hasPrefix("multi_modal_projector.") {
            let rest = hf.dropFirst("multi_modal_projector.".count)
            if rest.hasPrefix("linear_1.") { return "mm.0." + rest.dropFirst("linear_1.".count) }
            if rest.hasPrefix("linear_2.") { return "mm.2." + rest.dropFirst("linear_2.".count) }
            return nil
        }
        guard hf.hasPrefix(Self.visionPrefix) else { return nil }
        let rest = String(hf.dropFirst(Self.visionPrefix.count))
        switch rest {
        case "embeddings.class_embedding": return "v.class_embd"
        case "embeddings.patch_embedding.weight": return "v.patch_embd.weight"
        case "embeddings.position_embedding.weight": return "v.position_embd.weight"
        case "pre_layrnorm.weight": return "v.pre_ln.weight"
        case "pre_layrnorm.bias": return "v.pre_ln.bias"
        default: break
        }
        guard rest.hasPrefix("encoder.layers.") else { return nil }
        let tail = rest.dropFirst("encoder.layers.".count)
        guard let dot = tail.firstIndex(of: "."), let block = Int(tail[..<dot]) else { return nil }
        let leaf = String(tail[tail.index(after: dot)...])
        guard let cut = leaf.lastIndex(of: ".") else { return nil }
        let (module, kind) = (String(leaf[..<cut]), String(leaf[leaf.index(after: cut)...]))
        if let g = Self.blockNames[module] { return "v.blk.\(block).\(g).\(kind)" }
        if module == "mlp.fc1" || module == "mlp.fc2" {
            let pair = mlp[block] ?? ("v.blk.\(block).ffn_down", "v.blk.\(block).ffn_up")
            return (module == "mlp.fc1" ? pair.fc1 : pair.fc2) + "." + kind
        }
        return nil
    }

    public func contains(_ name: String) -> Bool { ggufName(name).map { file.tensors[$0] != nil } ?? false }

    /// 2-D matrices in a block or half format stay as stored (the tower's products are all many-row:
    /// bands are widened to float32 for BLAS as they are used).
    public func quantized(_ name: String, shape: [Int]) throws -> QuantizedMatrix? {
        guard keepStored, let g = ggufName(name), let info = file.tensors[g], info.shape.count == 2, shape.count == 2,
              let type = info.type.storedType, info.shape[1] % type.blockValues == 0 else { return nil }
        guard info.shape == shape else { throw FoveaError.shapeMismatch(tensor: g, expected: shape, actual: info.shape) }
        return QuantizedMatrix(type: type, rows: shape[0], cols: shape[1], data: try file.rawData(g), owner: file)
    }

    public func tensor(_ name: String, shape: [Int]) throws -> Tensor {
        guard let g = ggufName(name), file.tensors[g] != nil else {
            throw FoveaError.missingTensor(name: ggufName(name) ?? name, searched: [file.path])
        }
        let t = try file.load(g)
        // The converter squeezes size-1 dimensions away; only the element count must agree.
        guard t.shape == shape || (t.count == shape.reduce(1, *) && t.shape.filter { $0 != 1 } == shape.filter { $0 != 1 }) else {
            throw FoveaError.shapeMismatch(tensor: g, expected: shape, actual: t.shape)
        }
        return t.shape == shape ? t : t.reshaped(shape)
    }
}

/// Language-model tensors from the text GGUF, vision and projector tensors from the mmproj.
public final class LlamaCppPair: TensorSource, @unchecked Sendable {
    public let text: GGUFWeights
    public let clip: ClipProjectorWeights

    public init(text: GGUFWeights, clip: ClipProjectorWeights) {
        self.text = text
        self.clip = clip
    }

    private func owner(_ name: String) -> any TensorSource { clip.ggufName(name) != nil ? clip : text }
    public func contains(_ name: String) -> Bool { owner(name).contains(name) }
    public func tensor(_ name: String, shape: [Int]) throws -> Tensor { try owner(name).tensor(name, shape: shape) }
    public func quantized(_ name: String, shape: [Int]) throws -> QuantizedMatrix? { try owner(name).quantized(name, shape: shape) }
}

extension ModelConfiguration {
    /// The LLaVA-1.5 (`llava`) or LLaVA-1.6 (`llava_next`, when the mmproj lists anyres
    /// pinpoints) configuration that a text GGUF and its mmproj describe together.
    public init(gguf text: GGUFFile, mmproj m: GGUFFile) throws {
        let arch = m.metadata["general.architecture"]?.string ?? "(missing)"
        guard arch == "clip" else {
            throw FoveaError.unsupportedModel(path: m.path, field: "general.architecture", value: "\(arch) (an mmproj file is 'clip')")
        }
        guard m.metadata["clip.has_vision_encoder"]?.bool ?? true else {
            throw FoveaError.invalidConfig(path: m.path, field: "clip.has_vision_encoder", reason: "the file has no vision encoder")
        }
        let projector = m.metadata["clip.projector_type"]?.string ?? m.metadata["clip.vision.projector_type"]?.string ?? "mlp"
        guard projector == "mlp" else {
            throw FoveaError.unsupportedModel(path: m.path, field: "clip.projector_type", value: "\(projector) (LLaVA's 'mlp' is supported)")
        }
        func int(_ key: String) throws -> Int {
            guard let v = m.metadata[key]?.int else {
                throw FoveaError.invalidConfig(path: m.path, field: key, reason: "required integer is missing")
            }
            return v
        }
        let blocks = try int("clip.vision.block_count")
        let hidden = try int("clip.vision.embedding_length")
        var vision: [String: Any] = [
            "model_type": "clip_vision_model",
            "hidden_size": hidden,
            "intermediate_size": try int("clip.vision.feed_forward_length"),
            "num_hidden_layers": blocks,
            "num_attention_heads": try int("clip.vision.attention.head_count"),
            "image_size": try int("clip.vision.image_size"),
            "patch_size": try int("clip.vision.patch_size"),
            "hidden_act": (m.metadata["clip.use_gelu"]?.bool ?? false) ? "gelu" : "quick_gelu",
        ]
        if let eps = m.metadata["clip.vision.attention.layer_norm_epsilon"]?.double { vision["layer_norm_eps"] = eps }
        // The converter keeps only the blocks up to the feature layer; without `feature_layer`,
        // clip.cpp reads the output of the last block kept.
        let featureLayers = m.metadata["clip.vision.feature_layer"]?.array?.compactMap(\.int) ?? [blocks]
        var json: [String: Any] = [
            "model_type": "llava",
            "text_config": try ModelConfiguration.textJSON(gguf: text),
            "vision_config": vision,
            "vision_feature_layer": featureLayers.count == 1 ? featureLayers[0] as Any : featureLayers as Any,
            "vision_feature_select_strategy": "default",
            "projector_hidden_act": "gelu",
            "multimodal_projector_bias": m.tensors["mm.0.bias"] != nil,
            "image_token_index": try Self.imageToken(text),
        ]
        if let flat = m.metadata["clip.vision.image_grid_pinpoints"]?.array?.compactMap(\.int), !flat.isEmpty {
            guard flat.count % 2 == 0 else {
                throw FoveaError.invalidConfig(path: m.path, field: "clip.vision.image_grid_pinpoints", reason: "an odd number of values (\(flat.count))")
            }
            json["model_type"] = "llava_next"
            json["image_grid_pinpoints"] = stride(from: 0, to: flat.count, by: 2).map { [flat[$0], flat[$0 + 1]] }
        }
        try self.init(json: JSONConfig(path: m.path, keyPath: "", raw: json))
    }

    /// The id of `<image>` in the text GGUF's vocabulary: the placeholder Fovea's prompts carry.
    /// Files converted from the original LLaVA checkpoints (llama.cpp's own LLaVA-1.5 and 1.6
    /// files) have no such token: the placeholder is then one past the vocabulary, an id the
    /// tokenizer gives `<image>` and the model replaces by visual tokens, never looks up.
    static func imageToken(_ f: GGUFFile) throws -> Int {
        guard let tokens = f.metadata["tokenizer.ggml.tokens"]?.array else {
            throw FoveaError.invalidConfig(path: f.path, field: "tokenizer.ggml.tokens", reason: "missing; the image token cannot be placed")
        }
        return tokens.firstIndex(where: { $0.string == "<image>" }) ?? tokens.count
    }
}

extension ImageProcessor {
    /// The preprocessing transformers' processor would do for this mmproj: CLIP's resize and
    /// centre crop to the tower's size (LLaVA-NeXT's anyres tiles when the file lists pinpoints),
    /// bicubic, with the file's mean and std.
    public init(mmproj m: GGUFFile) throws {
        let size = m.metadata["clip.vision.image_size"]?.int ?? 0
        var json: [String: Any] = [
            "image_processor_type": m.metadata["clip.vision.image_grid_pinpoints"] == nil ? "CLIPImageProcessor" : "LlavaNextImageProcessor",
            "size": ["shortest_edge": size],
            "crop_size": ["height": size, "width": size],
            "resample": 3,
        ]
        for key in ["image_mean", "image_std"] {
            if let v = m.metadata["clip.vision." + key]?.array?.compactMap(\.double) { json[key] = v }
        }
        if let flat = m.metadata["clip.vision.image_grid_pinpoints"]?.array?.compactMap(\.int), flat.count % 2 == 0 {
            json["image_grid_pinpoints"] = stride(from: 0, to: flat.count, by: 2).map { [flat[$0], flat[$0 + 1]] }
        }
        try self.init(json: JSONConfig(path: m.path, keyPath: "", raw: json))
    }
}
