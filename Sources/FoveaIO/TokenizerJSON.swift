import Foundation

/// Loads a Hugging Face `tokenizer.json` (the format the `tokenizers` library saves).
public enum TokenizerLoader {
    /// Reads `tokenizer.json` and builds the tokenizer family it describes.
    public static func load(path: String) throws -> any TextTokenizer {
        let j = try JSONConfig(path: path)
        let pre = j.raw["pre_tokenizer"] as? [String: Any]
        let normalizer = j.raw["normalizer"] as? [String: Any]
        func mentions(_ obj: [String: Any]?, _ type: String) -> Bool {
            guard let obj else { return false }
            if obj["type"] as? String == type { return true }
            let children = (obj["pretokenizers"] as? [Any] ?? []) + (obj["normalizers"] as? [Any] ?? [])
            return children.contains { mentions($0 as? [String: Any], type) }
        }
        if mentions(pre, "ByteLevel") { return try byteLevelBPE(path: path) }
        if mentions(pre, "Metaspace") || mentions(normalizer, "Prepend") || mentions(normalizer, "Replace") {
            return try sentencePieceBPE(path: path)
        }
        throw FoveaError.unsupportedModel(path: path, field: "pre_tokenizer",
                                          value: "neither ByteLevel nor SentencePiece-style (Metaspace / Prepend + Replace)")
    }

    struct BPEParts {
        var vocab: [String: Int]
        var merges: [(String, String)]
        var added: [AddedToken]
        var model: JSONConfig
    }

    static func parts(_ j: JSONConfig) throws -> BPEParts {
        let path = j.path
        guard let model = try j.object("model") else {
            throw FoveaError.invalidConfig(path: path, field: "model", reason: "required object is missing")
        }
        let type = try model.string("type", default: "BPE")
        guard type == "BPE" else { throw FoveaError.unsupportedModel(path: path, field: "model.type", value: type) }
        guard let vocabAny = model.raw["vocab"] as? [String: Any] else {
            throw FoveaError.invalidConfig(path: path, field: "model.vocab", reason: "expected an object of token → id")
        }
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(vocabAny.count)
        for (k, v) in vocabAny {
            guard let n = v as? NSNumber else { throw FoveaError.invalidConfig(path: path, field: "model.vocab.\(k)", reason: "id is not a number") }
            try checkId(n.intValue, path: path, field: "model.vocab.\(k)")
            vocab[k] = n.intValue
        }
        guard let mergesAny = model.raw["merges"] as? [Any] else {
            throw FoveaError.invalidConfig(path: path, field: "model.merges", reason: "expected a list")
        }
        // Two spellings: ["a b", ...] (older) and [["a", "b"], ...] (tokenizers ≥ 0.20).
        let merges: [(String, String)] = try mergesAny.enumerated().map { i, m in
            if let s = m as? String, let sp = s.firstIndex(of: " ") { return (String(s[..<sp]), String(s[s.index(after: sp)...])) }
            if let p = m as? [String], p.count == 2 { return (p[0], p[1]) }
            throw FoveaError.invalidConfig(path: path, field: "model.merges[\(i)]", reason: "expected \"a b\" or [\"a\", \"b\"]")
        }
        var added: [AddedToken] = []
        for (i, a) in ((j.raw["added_tokens"] as? [Any]) ?? []).enumerated() {
            guard let d = a as? [String: Any], let id = (d["id"] as? NSNumber)?.intValue, let content = d["content"] as? String else {
                throw FoveaError.invalidConfig(path: path, field: "added_tokens[\(i)]", reason: "expected {id, content}")
            }
            try checkId(id, path: path, field: "added_tokens[\(i)].id")
            added.append(.init(id: id, content: content, special: (d["special"] as? Bool) ?? false))
        }
        // As `tokenizers` does at load (MergeTokenOutOfVocabulary): a merge whose parts or result are
        // not tokens would make encoding drop text silently.
        for (i, (a, b)) in merges.enumerated() {
            for t in [a, b, a + b] where vocab[t] == nil {
                throw FoveaError.invalidConfig(path: path, field: "model.merges[\(i)]", reason: "'\(a) \(b)': \(t.debugDescription) is not in the vocabulary")
            }
        }
        return BPEParts(vocab: vocab, merges: merges, added: added, model: model)
    }

    /// Token ids index tables sized by the largest id: a negative one would trap, a huge one
    /// would allocate the machine away. No published vocabulary comes near 2²⁴ entries.
    static let maxTokenId = 1 << 24
    static func checkId(_ id: Int, path: String, field: String) throws {
        guard id >= 0 && id < maxTokenId else {
            throw FoveaError.invalidConfig(path: path, field: field, reason: "token id \(id) is outside 0..<\(maxTokenId)")
        }
    }

    public static func byteLevelBPE(path: String) throws -> ByteLevelBPETokenizer {
        let j = try JSONConfig(path: path)
        let (vocab, merges, added) = try { let p = try parts(j); return (p.vocab, p.merges, p.added) }()
        // Pre-tokenizer: ByteLevel alone, or a Sequence with Digits and/or a Split regex before it.
        var splitDigits = false
        var pattern = ByteLevelBPETokenizer.gpt2Pattern
        var sawByteLevel = false
        func visit(_ p: [String: Any], _ field: String) throws {
            let t = p["type"] as? String ?? ""
            switch t {
            case "Sequence":
                for (i, sub) in ((p["pretokenizers"] as? [Any]) ?? []).enumerated() {
                    guard let s = sub as? [String: Any] else { continue }
                    try visit(s, "\(field).pretokenizers[\(i)]")
                }
            case "Digits": splitDigits = (p["individual_digits"] as? Bool) ?? false
            case "ByteLevel": sawByteLevel = true
            case "Split":
                if let pat = p["pattern"] as? [String: Any], let re = pat["Regex"] as? String { pattern = re }
            default: throw FoveaError.unsupportedModel(path: path, field: "\(field).type", value: t)
            }
        }
        if let pre = j.raw["pre_tokenizer"] as? [String: Any] { try visit(pre, "pre_tokenizer") }
        guard sawByteLevel else {
            throw FoveaError.unsupportedModel(path: path, field: "pre_tokenizer", value: "no ByteLevel step (not a byte-level BPE tokenizer)")
        }
        return try ByteLevelBPETokenizer(vocab: vocab, merges: merges, addedTokens: added, splitDigits: splitDigits, pattern: pattern, path: path)
    }
}

extension TokenizerLoader {
    /// SentencePiece-style BPE (Llama, Mistral): byte fallback, `▁` spaces, BOS from the post-processor.
    public static func sentencePieceBPE(path: String) throws -> SentencePieceBPETokenizer {
        let j = try JSONConfig(path: path)
        let p = try parts(j)
        var prepend = SentencePieceBPETokenizer.Prepend.never
        if let n = j.raw["normalizer"] as? [String: Any], "\(n)".contains("Prepend") { prepend = .everySpan }
        if let pre = j.raw["pre_tokenizer"] as? [String: Any], pre["type"] as? String == "Metaspace" {
            let scheme = pre["prepend_scheme"] as? String ?? ((pre["add_prefix_space"] as? Bool ?? true) ? "always" : "never")
            prepend = scheme == "first" ? .firstSpan : scheme == "always" ? .everySpan : .never
        }
        // The post-processor's single-sequence template: special tokens before `$A` become the prefix.
        var prefix: [Int] = []
        if let post = j.raw["post_processor"] as? [String: Any], let single = post["single"] as? [[String: Any]],
           let specials = post["special_tokens"] as? [String: Any] {
            for piece in single {
                if piece["Sequence"] != nil { break }
                if let st = piece["SpecialToken"] as? [String: Any], let name = st["id"] as? String,
                   let entry = specials[name] as? [String: Any], let ids = entry["ids"] as? [NSNumber] {
                    for id in ids { try checkId(id.intValue, path: path, field: "post_processor.special_tokens.\(name).ids") }
                    prefix += ids.map(\.intValue)
                }
            }
        }
        let unk = try p.model.string("unk_token"), byteFallback = try p.model.bool("byte_fallback", default: false)
        if byteFallback, let missing = (0..<256).first(where: { p.vocab[String(format: "<0x%02X>", $0)] == nil }), unk == nil {
            throw FoveaError.invalidConfig(path: path, field: "model.vocab", reason: String(
                format: "byte_fallback is on but the byte token <0x%02X> is missing, and there is no unk_token", missing))
        }
        guard byteFallback || unk != nil else {
            throw FoveaError.invalidConfig(path: path, field: "model", reason: "neither byte_fallback nor unk_token: text outside the vocabulary could not be encoded")
        }
        if let unk, p.vocab[unk] == nil, !p.added.contains(where: { $0.content == unk }) {
            throw FoveaError.invalidConfig(path: path, field: "model.unk_token", reason: "\(unk.debugDescription) is not a token")
        }
        return SentencePieceBPETokenizer(vocab: p.vocab, merges: p.merges, addedTokens: p.added, prepend: prepend, prefix: prefix,
                                         unkToken: unk, byteFallback: byteFallback)
    }

    /// The tokenizer a GGUF file carries in `tokenizer.ggml.*`: byte-level BPE ("gpt2": SmolLM2,
    /// Llama 3, Qwen) or SentencePiece ("llama": Llama 2, Vicuna, Mistral, the language models of
    /// llama.cpp's LLaVA-1.5 and 1.6 files).
    ///
    /// `imagePlaceholder`: the id a prompt's `<image>` takes where the vocabulary has no such token.
    /// llama.cpp's LLaVA files made from the original checkpoints have none (its mtmd splices image
    /// embeddings in by position); the id only marks where the visual tokens go and is never
    /// looked up in the embedding table.
    public static func load(gguf f: GGUFFile, imagePlaceholder: Int? = nil) throws -> any TextTokenizer {
        let model = f.metadata["tokenizer.ggml.model"]?.string ?? "(missing)"
        switch model {
        case "gpt2": return try byteLevelBPE(gguf: f, imagePlaceholder: imagePlaceholder)
        case "llama": return try sentencePiece(gguf: f, imagePlaceholder: imagePlaceholder)
        default:
            throw FoveaError.unsupportedModel(path: f.path, field: "tokenizer.ggml.model",
                                              value: "\(model) (byte-level BPE 'gpt2' and SentencePiece 'llama' are supported)")
        }
    }

    /// Tokens and llama.cpp token types (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
    /// 6 byte), and the added tokens: control ones special, user-defined ones not, plus `<image>`
    /// at `imagePlaceholder` where the vocabulary lacks it.
    static func ggufVocabulary(_ f: GGUFFile, imagePlaceholder: Int?) throws -> (tokens: [String], types: [Int], added: [AddedToken]) {
        guard let tokens = f.metadata["tokenizer.ggml.tokens"]?.array?.compactMap(\.string), !tokens.isEmpty else {
            throw FoveaError.invalidConfig(path: f.path, field: "tokenizer.ggml.tokens", reason: "missing or not a list of strings")
        }
        let listed = f.metadata["tokenizer.ggml.token_type"]?.array?.compactMap(\.int) ?? []
        let types = tokens.indices.map { $0 < listed.count ? listed[$0] : 1 }
        var added = tokens.indices.filter { types[$0] == 3 || types[$0] == 4 }.map { AddedToken(id: $0, content: tokens[$0], special: types[$0] == 3) }
        if let p = imagePlaceholder, !tokens.contains("<image>") {
            guard p >= tokens.count else {
                throw FoveaError.invalidConfig(path: f.path, field: "tokenizer.ggml.tokens", reason: "the image placeholder \(p) would shadow token \(p)")
            }
            added.append(AddedToken(id: p, content: "<image>", special: true))
        }
        return (tokens, types, added)
    }

    public static func byteLevelBPE(gguf f: GGUFFile, imagePlaceholder: Int? = nil) throws -> ByteLevelBPETokenizer {
        let model = f.metadata["tokenizer.ggml.model"]?.string ?? "(missing)"
        guard model == "gpt2" else {
            throw FoveaError.unsupportedModel(path: f.path, field: "tokenizer.ggml.model", value: "\(model) (byte-level BPE 'gpt2' is supported)")
        }
        let (tokens, types, added) = try ggufVocabulary(f, imagePlaceholder: imagePlaceholder)
        let merges: [(String, String)] = try (f.metadata["tokenizer.ggml.merges"]?.array ?? []).enumerated().map { i, v in
            guard let s = v.string, let sp = s.firstIndex(of: " ") else {
                throw FoveaError.invalidConfig(path: f.path, field: "tokenizer.ggml.merges[\(i)]", reason: "expected \"a b\"")
            }
            return (String(s[..<sp]), String(s[s.index(after: sp)...]))
        }
        var vocab: [String: Int] = [:]
        for (id, t) in tokens.enumerated() where types[id] != 3 && types[id] != 4 { vocab[t] = id }
        // llama.cpp's pre-tokenizer names; these split every digit before the GPT-2 regex.
        let pre = f.metadata["tokenizer.ggml.pre"]?.string ?? "default"
        let digitSplitting: Set<String> = ["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva"]
        return try ByteLevelBPETokenizer(vocab: vocab, merges: merges, addedTokens: added, splitDigits: digitSplitting.contains(pre), path: f.path)
    }

    /// SentencePiece from a "llama" GGUF vocabulary: pieces merged by score (`ScoredMerges`),
    /// a "▁" put before every text span as llama.cpp does after each special token (unless
    /// `tokenizer.ggml.add_space_prefix` is false), byte fallback, BOS unless `add_bos_token` is false.
    public static func sentencePiece(gguf f: GGUFFile, imagePlaceholder: Int? = nil) throws -> SentencePieceBPETokenizer {
        let (tokens, types, added) = try ggufVocabulary(f, imagePlaceholder: imagePlaceholder)
        guard let listed = f.metadata["tokenizer.ggml.scores"]?.array, listed.count == tokens.count else {
            throw FoveaError.invalidConfig(path: f.path, field: "tokenizer.ggml.scores",
                                           reason: "missing or not one per token: SentencePiece merges pieces in score order")
        }
        var vocab: [Piece: Int] = [:], scores: [Piece: Float] = [:]
        for (id, t) in tokens.enumerated() where types[id] != 3 && types[id] != 4 && types[id] != 5 {
            vocab[Piece(t)] = id
            if types[id] == 1, let s = listed[id].double { scores[Piece(t)] = Float(s) }
        }
        var prefix: [Int] = []
        if f.metadata["tokenizer.ggml.add_bos_token"]?.bool ?? true, let bos = f.metadata["tokenizer.ggml.bos_token_id"]?.int {
            guard tokens.indices.contains(bos) else {
                throw FoveaError.invalidConfig(path: f.path, field: "tokenizer.ggml.bos_token_id", reason: "\(bos) is outside the vocabulary (\(tokens.count))")
            }
            prefix = [bos]
        }
        var unk: String?
        if let u = f.metadata["tokenizer.ggml.unknown_token_id"]?.int, tokens.indices.contains(u) { unk = tokens[u] }
        let prepend: SentencePieceBPETokenizer.Prepend = f.metadata["tokenizer.ggml.add_space_prefix"]?.bool ?? true ? .everySpan : .never
        return SentencePieceBPETokenizer(pieces: vocab, merging: .scored(ScoredMerges(scores: scores)), addedTokens: added,
                                         prepend: prepend, prefix: prefix, unkToken: unk, byteFallback: true)
    }
}
