import Foundation

/// Loads a Hugging Face `tokenizer.json` (the format the `tokenizers` library saves).
public enum TokenizerLoader {
    public static func byteLevelBPE(path: String) throws -> ByteLevelBPETokenizer {
        let j = try JSONConfig(path: path)
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
        var added: [ByteLevelBPETokenizer.AddedToken] = []
        for (i, a) in ((j.raw["added_tokens"] as? [Any]) ?? []).enumerated() {
            guard let d = a as? [String: Any], let id = (d["id"] as? NSNumber)?.intValue, let content = d["content"] as? String else {
                throw FoveaError.invalidConfig(path: path, field: "added_tokens[\(i)]", reason: "expected {id, content}")
            }
            added.append(.init(id: id, content: content, special: (d["special"] as? Bool) ?? false))
        }
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
