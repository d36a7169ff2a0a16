import Foundation

/// Everything that can go wrong reading a user's files. Each case names the file and,
/// where there is one, the tensor or field, with what was expected and what was found.
public enum FoveaError: Error, LocalizedError, Equatable, Sendable {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    case truncated(path: String, expectedBytes: Int, actualBytes: Int)
    case badHeader(path: String, reason: String)
    case badJSON(path: String, reason: String)
    case unknownDType(path: String, tensor: String, dtype: String)
    /// A GGUF tensor in a ggml type Fovea does not multiply (k-quants and the like).
    case unsupportedTensorType(path: String, tensor: String, type: String)
    case badTensorSpan(path: String, tensor: String, reason: String)
    case overlappingTensors(path: String, first: String, second: String)
    case missingTensor(name: String, searched: [String])
    case shapeMismatch(tensor: String, expected: [Int], actual: [Int])
    case unsupportedModel(path: String, field: String, value: String)
    case invalidConfig(path: String, field: String, reason: String)
    case invalidInput(reason: String)
    /// An image file that cannot be decoded, or an image the preprocessing refuses.
    case invalidImage(name: String, reason: String)
    /// A user-supplied argument (CLI option, method spec, request field) with a value it cannot take.
    case invalidArgument(name: String, value: String, reason: String)
    /// A method (pruner, KV policy) this model or this combination cannot run.
    case incompatibleMethod(method: String, reason: String)
    /// Image tokens in the prompt that do not match the images given.
    case imageTokenMismatch(reason: String)
    /// A prompt token id outside the vocabulary.
    case tokenOutOfVocabulary(id: Int, index: Int, vocabularySize: Int)
    /// A user's data file (questions, a method grid), with the line at fault when there is one.
    case invalidFile(path: String, line: Int?, reason: String)
    /// A prompt with no tokens, or more than the model's context holds.
    case emptyPrompt
    case promptTooLong(tokens: Int, context: Int)
    /// What a run would need against what the machine has, in bytes.
    case insufficientMemory(what: String, neededBytes: Int, availableBytes: Int)
    /// Characters a tokenizer's vocabulary cannot spell (no byte for them, no unknown token).
    case unencodableText(symbols: [String])

    public var errorDescription: String? {
        switch self {
        case .fileNotFound(let p): "\(p): file not found"
        case .unreadable(let p, let r): "\(p): cannot read: \(r)"
        case .truncated(let p, let e, let a): "\(p): file is truncated: needs at least \(e) bytes, has \(a)"
        case .badHeader(let p, let r): "\(p): bad header: \(r)"
        case .badJSON(let p, let r): "\(p): invalid JSON: \(r)"
        case .unknownDType(let p, let t, let d): "\(p): tensor '\(t)' has unknown dtype '\(d)' (known: \(DTypeNames.all))"
        case .unsupportedTensorType(let p, let t, let d):
            "\(p): tensor '\(t)' has type \(d); Fovea reads GGUF F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K and Q6_K (Q4_K_M files; re-quantise others with llama-quantize)"
        case .badTensorSpan(let p, let t, let r): "\(p): tensor '\(t)': \(r)"
        case .overlappingTensors(let p, let a, let b): "\(p): tensors '\(a)' and '\(b)' overlap in the data section"
        case .missingTensor(let n, let s): "missing tensor '\(n)' (looked for: \(s.joined(separator: ", ")))"
        case .shapeMismatch(let t, let e, let a): "tensor '\(t)': expected shape \(e), found \(a)"
        case .unsupportedModel(let p, let f, let v): "\(p): unsupported \(f) '\(v)'"
        case .invalidConfig(let p, let f, let r): "\(p): field '\(f)': \(r)"
        case .invalidInput(let r): r
        case .invalidImage(let n, let r): "\(n): \(r)"
        case .invalidArgument(let n, let v, let r): "\(n) \(v.debugDescription): \(r)"
        case .incompatibleMethod(let m, let r): "\(m): \(r)"
        case .imageTokenMismatch(let r): "image tokens: \(r)"
        case .tokenOutOfVocabulary(let id, let i, let v): "token id \(id) at index \(i) is outside the vocabulary (0..<\(v))"
        case .invalidFile(let p, let l, let r): "\(p)\(l.map { ":\($0)" } ?? ""): \(r)"
        case .emptyPrompt: "the prompt has no tokens"
        case .promptTooLong(let t, let c): "the prompt has \(t) tokens but the model's context holds \(c) (max_position_embeddings)"
        case .insufficientMemory(let w, let n, let a):
            String(format: "%@ needs about %.2f GB but this machine has %.2f GB", w, Double(n) / 1e9, Double(a) / 1e9)
        case .unencodableText(let s):
            "the tokenizer cannot encode \(s.count) character(s) of the text (its vocabulary has no symbol for them and no unknown token): "
                + s.prefix(5).map { $0.unicodeScalars.map { String(format: "U+%04X", $0.value) }.joined(separator: " ") }.joined(separator: ", ")
        }
    }
}

enum DTypeNames {
    static let all = "F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL"
}
