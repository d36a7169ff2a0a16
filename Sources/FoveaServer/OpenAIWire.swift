import Foundation

// OpenAI's chat-completions wire format, as clients send it and expect it back: the request's
// fields Fovea reads (the rest are accepted and ignored only where ignoring them cannot change
// the answer), the response, the stream chunk and the error body. Field names are the wire's.

/// `POST /v1/chat/completions`.
public struct ChatCompletionRequest: Decodable, Sendable {
    public var model: String?
    public var messages: [WireMessage]
    public var stream: Bool?
    public var streamOptions: StreamOptions?
    public var maxTokens: Int?
    public var maxCompletionTokens: Int?
    public var temperature: Double?
    public var topP: Double?
    public var seed: Int64?
    public var stop: StopSequences?
    public var n: Int?
    public var logprobs: Bool?
    public var frequencyPenalty: Double?
    public var presencePenalty: Double?
    public var tools: [JSONValue]?
    public var responseFormat: JSONValue?
    /// Fovea's per-request methods: `{"prune": SPEC, "kv": SPEC, "kv_dtype": T}`.
    public var fovea: JSONValue?

    enum CodingKeys: String, CodingKey {
        case model, messages, stream, temperature, seed, stop, n, logprobs, tools, fovea
        case streamOptions = "stream_options", maxTokens = "max_tokens", maxCompletionTokens = "max_completion_tokens"
        case topP = "top_p", frequencyPenalty = "frequency_penalty", presencePenalty = "presence_penalty"
        case responseFormat = "response_format"
    }
}

public struct StreamOptions: Decodable, Sendable {
    public var includeUsage: Bool?
    enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
}

/// `stop`: one string or a list of up to four.
public struct StopSequences: Decodable, Sendable {
    public var values: [String]
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { values = [] } else if let one = try? c.decode(String.self) { values = [one] } else {
            values = try c.decode([String].self)
        }
    }
}

public struct WireMessage: Decodable, Sendable {
    public var role: String
    public var content: WireContent?
}

/// A message's `content`: a string, or a list of text and image parts.
public enum WireContent: Decodable, Sendable {
    case text(String)
    case parts([WirePart])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { self = .text(s); return }
        guard let parts = try? c.decode([WirePart].self) else {
            // Decode again to surface the part's own error (which field, which type) when it is a list.
            if (try? c.decode([JSONValue].self)) != nil { self = .parts(try c.decode([WirePart].self)); return }
            throw DecodingError.typeMismatch(String.self, .init(codingPath: decoder.codingPath,
                                                                debugDescription: "content must be a string or a list of parts"))
        }
        self = .parts(parts)
    }
}

public struct WirePart: Decodable, Sendable {
    public var type: String
    public var text: String?
    public var imageURL: String?

    enum CodingKeys: String, CodingKey { case type, text, imageURL = "image_url" }
    struct URLObject: Decodable { var url: String }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decode(String.self, forKey: .type)
        text = try c.decodeIfPresent(String.self, forKey: .text)
        // `{"url": ...}` as OpenAI documents it; a bare string as some clients send.
        if let object = try? c.decodeIfPresent(URLObject.self, forKey: .imageURL) {
            imageURL = object.url
        } else {
            imageURL = try c.decodeIfPresent(String.self, forKey: .imageURL)
        }
    }
}

/// Any JSON value, for the fields Fovea checks key by key.
public enum JSONValue: Codable, Sendable, Equatable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null } else if let b = try? c.decode(Bool.self) { self = .bool(b) } else if let n = try? c.decode(Double.self) {
            self = .number(n)
        } else if let s = try? c.decode(String.self) { self = .string(s) } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n): try c.encode(n)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

// MARK: - Responses

public struct ChatCompletion: Codable, Sendable {
    public var id: String
    public var object = "chat.completion"
    public var created: Int
    public var model: String
    public var choices: [Choice]
    public var usage: Usage
    public var timings: Timings

    public struct Choice: Codable, Sendable {
        public var index = 0
        public var message: Message
        public var finishReason: String
        enum CodingKeys: String, CodingKey { case index, message, finishReason = "finish_reason" }
    }

    public struct Message: Codable, Sendable {
        public var role = "assistant"
        public var content: String
    }
}

public struct ChatCompletionChunk: Codable, Sendable {
    public var id: String
    public var object = "chat.completion.chunk"
    public var created: Int
    public var model: String
    public var choices: [Choice]
    /// Only on the last chunk, and only when the request asked with `stream_options.include_usage`.
    public var usage: Usage?
    public var timings: Timings?

    public struct Choice: Codable, Sendable {
        public var index = 0
        public var delta: Delta
        public var finishReason: String?
        enum CodingKeys: String, CodingKey { case index, delta, finishReason = "finish_reason" }
    }

    public struct Delta: Codable, Sendable {
        public var role: String?
        public var content: String?
    }
}

public struct Usage: Codable, Sendable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int
    /// `cached_tokens`: prompt rows whose KV came from the previous request's prefix.
    public var promptTokensDetails: [String: Int]?
    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
        case promptTokensDetails = "prompt_tokens_details"
    }
}

/// llama-server's `timings`, plus what Fovea's methods did to the request.
public struct Timings: Codable, Sendable {
    /// Prompt rows through the LLM (text and kept visual tokens), and the time to the first token
    /// (image decoding and vision included, as llama-server's multimodal prompt time includes
    /// encoding the image).
    public var promptN: Int
    /// Prompt rows reused from the previous request's KV (llama-server's `cache_n`).
    public var cacheN: Int
    public var promptMs: Double
    public var predictedN: Int
    public var predictedMs: Double
    public var predictedPerSecond: Double
    public var visualTokensIn: Int
    public var visualTokensKept: Int
    /// Decoding and preprocessing the image files (part of `prompt_ms`, not of `vision_ms`).
    public var imageLoadMs: Double
    public var visionMs: Double
    /// Whether the image features came from the vision-feature cache.
    public var visionCacheHit: Bool
    public var kvBytes: Int
    /// The methods the request ran under: `prune=… kv=… dtype=…`.
    public var method: String

    enum CodingKeys: String, CodingKey {
        case promptN = "prompt_n", cacheN = "cache_n", promptMs = "prompt_ms", predictedN = "predicted_n", predictedMs = "predicted_ms"
        case predictedPerSecond = "predicted_per_second", visualTokensIn = "visual_tokens_in", visualTokensKept = "visual_tokens_kept"
        case imageLoadMs = "image_load_ms", visionMs = "vision_ms", visionCacheHit = "vision_cache_hit", kvBytes = "kv_bytes", method
    }
}

/// `{"error": {"message", "type", "param", "code"}}`, OpenAI's error body.
public struct APIErrorBody: Codable, Sendable {
    public struct Detail: Codable, Sendable {
        public var message: String
        public var type: String
        public var param: String?
        public var code: String?
    }
    public var error: Detail
}

public struct ModelList: Codable, Sendable {
    public var object = "list"
    public var data: [Entry]
    public struct Entry: Codable, Sendable {
        public var id: String
        public var object = "model"
        public var created: Int
        public var ownedBy = "fovea"
        /// The methods this name selects (Fovea's addition).
        public var fovea: String
        enum CodingKeys: String, CodingKey { case id, object, created, ownedBy = "owned_by", fovea }
    }
}
