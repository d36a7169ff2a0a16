import Foundation
import FoveaCore
import FoveaIO

// The `llama` architecture of a GGUF file mapped onto the Llama decoder. Names and the Q/K
// row order follow llama.cpp's convert_hf_to_gguf.py (LlamaModel.modify_tensors), undone here
// the way transformers' GGUF loader does (integrations/ggml.py, reverse_permute).

/// Exposes a GGUF file's tensors under Hugging Face Llama names: float32 on request, or Q8_0 /
/// Q4_0 / Q4_1 / F16 / BF16 matrices as stored (`keepQuantized`, the default) for the kernels
/// that read them directly.
public final class GGUFWeights: TensorSource, @unchecked Sendable {
    public let file: GGUFFile
    let heads: Int
    let kvHeads: Int
    let keepQuantized: Bool
    let activations: QuantizedMatrix.Activations

    public init(file: GGUFFile, heads: Int, kvHeads: Int, keepQuantized: Bool = true, activations: QuantizedMatrix.Activations = .float) {
        self.file = file
        self.heads = heads
        self.kvHeads = kvHeads
        self.keepQuantized = keepQuantized
        self.activations = activations
    }

    public func quantized(_ name: String, shape: [Int]) throws -> QuantizedMatrix? {
        guard keepQuantized, let g = Self.ggufName(name), let info = file.tensors[g], info.shape.count == 2,
              let type = info.type.storedType, info.shape[1] % type.blockValues == 0 else { return nil }
        guard info.shape == shape else { throw FoveaError.shapeMismatch(tensor: g, expected: shape, actual: info.shape) }
        let data = try file.rawData(g)
        let (rows, cols) = (shape[0], shape[1])
        // Q and K rows are interleaved per head in the file (see `unpermute`): whole rows of blocks move.
        if g.hasSuffix("attn_q.weight") || g.hasSuffix("attn_k.weight") {
            let h = g.hasSuffix("attn_q.weight") ? heads : kvHeads
            return QuantizedMatrix(type: type, rows: rows, cols: cols, copying: data, order: Self.unpermutedOrder(rows: rows, heads: h),
                                   activations: activations)
        }
        return QuantizedMatrix(type: type, rows: rows, cols: cols, data: data, owner: file, activations: activations)
    }

    /// Row i of the Hugging Face layout is row order[i] of llama.cpp's.
    static func unpermutedOrder(rows: Int, heads: Int) -> [Int] {
        let hd = rows / heads, half = hd / 2
        var order = [Int](repeating: 0, count: rows)
        for h in 0..<heads { for i in 0..<half { for t in 0..<2 { order[h * hd + t * half + i] = h * hd + 2 * i + t } } }
        return order
    }

    /// HF name → GGUF name.
    static func ggufName(_ hf: String) -> String? {
        if hf == "model.embed_tokens.weight" { return "token_embd.weight" }
        if hf == "model.norm.weight" { return "output_norm.weight" }
        if hf == "lm_head.weight" { return "output.weight" }
        guard hf.hasPrefix("model.layers.") else { return nil }
        let rest = hf.dropFirst("model.layers.".count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return nil }
        let table = [
            "input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
            "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
            "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
            "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
        ]
        return table[String(rest[rest.index(after: dot)...])].map { "blk.\(layer).\($0)" }
    }

    public func contains(_ name: String) -> Bool { Self.ggufName(name).map { file.tensors[$0] != nil } ?? false }

    public func tensor(_ name: String, shape: [Int]) throws -> Tensor {
        guard let g = Self.ggufName(name), file.tensors[g] != nil else {
            throw FoveaError.missingTensor(name: Self.ggufName(name) ?? name, searched: [file.path])
        }
        let t = try file.load(g)
        guard t.shape == shape else { throw FoveaError.shapeMismatch(tensor: g, expected: shape, actual: t.shape) }
        if g.hasSuffix("attn_q.weight") { return Self.unpermute(t, heads: heads) }
        if g.hasSuffix("attn_k.weight") { return Self.unpermute(t, heads: kvHeads) }
        return t
    }

    /// llama.cpp stores each head's Q/K rows interleaved (pairs (i, i + d/2) adjacent) for its
    /// RoPE; Fovea's RoPE is the rotate-half form, so rows go back: hf[t·d/2 + i] = gguf[2i + t].
    static func unpermute(_ w: Tensor, heads: Int) -> Tensor {
        let rows = w.shape[0], cols = w.shape[1]
        let hd = rows / heads, half = hd / 2
        let out = Tensor(zeros: w.shape)
        for h in 0..<heads {
            for i in 0..<half {
                for t in 0..<2 {
                    (out.data + (h * hd + t * half + i) * cols).update(from: w.data + (h * hd + 2 * i + t) * cols, count: cols)
                }
            }
        }
        return out
    }
}

extension ModelConfiguration {
    /// The decoder configuration a GGUF `llama` file describes.
    public init(gguf f: GGUFFile) throws {
        try self.init(json: JSONConfig(path: f.path, keyPath: "", raw: try Self.textJSON(gguf: f)))
    }

    /// A GGUF `llama` file's hyper-parameters as a transformers `LlamaConfig` dictionary.
    static func textJSON(gguf f: GGUFFile) throws -> [String: Any] {
        let arch = f.metadata["general.architecture"]?.string ?? "(missing)"
        guard arch == "llama" else { throw FoveaError.unsupportedModel(path: f.path, field: "general.architecture", value: arch) }
        func int(_ key: String) throws -> Int {
            guard let v = f.metadata["llama." + key]?.int else {
                throw FoveaError.invalidConfig(path: f.path, field: "llama." + key, reason: "required integer is missing")
            }
            return v
        }
        guard let embed = f.tensors["token_embd.weight"] else { throw FoveaError.missingTensor(name: "token_embd.weight", searched: [f.path]) }
        let heads = try int("attention.head_count")
        var json: [String: Any] = [
            "model_type": "llama",
            "vocab_size": embed.shape[0],
            "hidden_size": try int("embedding_length"),
            "intermediate_size": try int("feed_forward_length"),
            "num_hidden_layers": try int("block_count"),
            "num_attention_heads": heads,
            "num_key_value_heads": f.metadata["llama.attention.head_count_kv"]?.int ?? heads,
            "rms_norm_eps": f.metadata["llama.attention.layer_norm_rms_epsilon"]?.double ?? 1e-5,
            "rope_theta": f.metadata["llama.rope.freq_base"]?.double ?? 10_000,
            "max_position_embeddings": f.metadata["llama.context_length"]?.int ?? 2048,
            "tie_word_embeddings": f.tensors["output.weight"] == nil,
        ]
        if let hd = f.metadata["llama.attention.key_length"]?.int { json["head_dim"] = hd }
        if let b = f.metadata["tokenizer.ggml.bos_token_id"]?.int { json["bos_token_id"] = b }
        if let e = f.metadata["tokenizer.ggml.eos_token_id"]?.int { json["eos_token_id"] = e }
        return json
    }
}

extension VisionLanguageModel {
    /// Loads a text-only `llama` GGUF file (weights dequantised to float32 at load).
    public convenience init(gguf path: String) throws {
        try self.init(gguf: GGUFFile(path: path))
    }

    public convenience init(gguf file: GGUFFile) throws {
        let config = try ModelConfiguration(gguf: file)
        try self.init(config: config, weights: GGUFWeights(file: file, heads: config.text.heads, kvHeads: config.text.kvHeads), name: file.path)
    }
}
