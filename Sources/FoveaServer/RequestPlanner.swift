import Crypto
import Foundation
import FoveaCore
import FoveaIO
import FoveaKV
import FoveaPruning
import FoveaRuntime

/// The methods a request runs under, as text: a method cell's three fields.
public struct MethodChoice: Sendable, Equatable {
    public var prune = "full"
    public var kv = "full"
    public var kvDtype = "f32"

    public init(prune: String = "full", kv: String = "full", kvDtype: String = "f32") {
        self.prune = prune
        self.kv = kv
        self.kvDtype = kvDtype
    }

    /// `prune=SPEC;kv=SPEC;dtype=T` (as `--alias` takes it; spaces separate too), over `base`.
    public init(alias text: String, over base: MethodChoice) throws {
        self = base
        for part in text.split(whereSeparator: { $0 == ";" || $0 == " " }) where !part.isEmpty {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else {
                throw FoveaError.invalidArgument(name: "--alias", value: text, reason: "'\(part)' is not key=value (keys: prune, kv, dtype)")
            }
            switch kv[0] {
            case "prune": prune = kv[1]
            case "kv": self.kv = kv[1]
            case "dtype", "kv_dtype": kvDtype = kv[1]
            default: throw FoveaError.invalidArgument(name: "--alias", value: text, reason: "unknown key '\(kv[0])' (keys: prune, kv, dtype)")
            }
        }
    }

    public var label: String { "prune=\(prune) kv=\(kv) dtype=\(kvDtype)" }

    public static let foveaKeys = ["prune", "kv", "kv_dtype"]

    /// This choice with a request's `fovea` object laid over it; an unknown key or a value that
    /// is not a string is refused, never ignored.
    public func applying(fovea: JSONValue) throws -> MethodChoice {
        guard case .object(let fields) = fovea else {
            throw APIError.badRequest("fovea must be an object with keys \(Self.foveaKeys.joined(separator: ", "))", param: "fovea")
        }
        var choice = self
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            guard Self.foveaKeys.contains(key) else {
                throw APIError.badRequest("fovea: unknown key '\(key)'; valid keys: \(Self.foveaKeys.joined(separator: ", "))",
                                          param: "fovea.\(key)", code: "invalid_method")
            }
            guard case .string(let text) = value else {
                throw APIError.badRequest("fovea.\(key) must be a string, not \(value.typeName)", param: "fovea.\(key)")
            }
            switch key {
            case "prune": choice.prune = text
            case "kv": choice.kv = text
            default: choice.kvDtype = text
            }
        }
        return choice
    }

    /// The parsed plans, through the same registries as the CLI.
    public func plans() throws -> (PruningPlan, KVPlan) {
        guard let storage = KVStorageType(rawValue: kvDtype) else {
            throw APIError.badRequest("kv_dtype '\(kvDtype)' is not one of \(KVStorageType.allCases.map(\.rawValue).joined(separator: ", "))",
                                      param: "fovea.kv_dtype", code: "invalid_method")
        }
        return (try PruningPlan(parsing: prune), try KVPlan(parsing: kv, storage: storage))
    }
}

/// Turns an OpenAI chat request into a job: the methods (server defaults, then the model alias,
/// then the request's `fovea` object), the messages through the chat template, the images'
/// bytes, and the sampling settings, refusing what Fovea cannot honour.
public struct RequestPlanner: Sendable {
    public let loaded: LoadedModel
    /// The name `GET /v1/models` lists first and requests may send.
    public let modelName: String
    public let defaults: MethodChoice
    public let aliases: [String: MethodChoice]
    public let media: MediaLoader
    public let defaultMaxTokens: Int
    public let maxImages: Int

    public init(loaded: LoadedModel, modelName: String, defaults: MethodChoice, aliases: [String: MethodChoice],
                media: MediaLoader, defaultMaxTokens: Int, maxImages: Int = 8) throws {
        self.loaded = loaded
        self.modelName = modelName
        self.defaults = defaults
        self.aliases = aliases
        self.media = media
        self.defaultMaxTokens = defaultMaxTokens
        self.maxImages = maxImages
        // A bad default or alias is the operator's error: refuse it at start-up, not per request.
        _ = try defaults.plans()
        for (name, choice) in aliases {
            do { _ = try choice.plans() } catch {
                throw FoveaError.invalidArgument(name: "--alias", value: name, reason: APIError.from(error).message)
            }
        }
    }

    public func plan(_ r: ChatCompletionRequest) throws -> (job: InferenceJob, stream: Bool, includeUsage: Bool, model: String) {
        // The model name picks the methods: the served name gets the defaults, an alias its cell.
        let model = r.model ?? modelName
        var choice: MethodChoice
        if model == modelName { choice = defaults } else if let alias = aliases[model] { choice = alias } else {
            throw APIError(status: 404, "model '\(model)' is not served here; models: \(([modelName] + aliases.keys.sorted()).joined(separator: ", "))",
                           param: "model", code: "model_not_found")
        }
        if let fovea = r.fovea { choice = try choice.applying(fovea: fovea) }
        let (pruning, kv) = try choice.plans()

        guard r.n == nil || r.n == 1 else { throw APIError.badRequest("n must be 1: Fovea returns one choice", param: "n") }
        if r.logprobs == true { throw APIError.badRequest("logprobs are not supported", param: "logprobs") }
        if let tools = r.tools, !tools.isEmpty { throw APIError.badRequest("tools are not supported", param: "tools") }
        for (name, value) in [("frequency_penalty", r.frequencyPenalty), ("presence_penalty", r.presencePenalty)] {
            if let value, value != 0 { throw APIError.badRequest("\(name) is not supported (only 0)", param: name) }
        }
        if let format = r.responseFormat, format != .object(["type": .string("text")]) {
            throw APIError.badRequest("response_format other than {\"type\": \"text\"} is not supported", param: "response_format")
        }
        let temperature = r.temperature ?? 0
        guard temperature.isFinite, temperature >= 0, temperature <= 2 else {
            throw APIError.badRequest("temperature must be in [0, 2]", param: "temperature")
        }
        let topP = r.topP ?? 1
        guard topP.isFinite, topP > 0, topP <= 1 else { throw APIError.badRequest("top_p must be in (0, 1]", param: "top_p") }
        let sampling = try SamplingParameters(temperature: Float(temperature), topP: Float(topP), seed: UInt64(bitPattern: r.seed ?? 0))
        let maxTokens = r.maxCompletionTokens ?? r.maxTokens ?? defaultMaxTokens
        guard maxTokens >= 1 else {
            throw APIError.badRequest("max_tokens must be at least 1", param: r.maxCompletionTokens != nil ? "max_completion_tokens" : "max_tokens")
        }
        let stop = r.stop?.values ?? []
        guard stop.count <= 4 else { throw APIError.badRequest("stop takes at most 4 sequences", param: "stop") }

        let (messages, images) = try conversation(r.messages)
        guard loaded.tokenizer != nil else {
            throw APIError(status: 500, "the model has no tokenizer", type: "server_error")
        }
        var request = try loaded.request(messages, maxNewTokens: min(maxTokens, loaded.model.config.text.maxPositions),
                                         sampling: sampling, pruning: pruning, kv: kv)
        // A follow-up question (the same image, the conversation so far) runs only its new rows.
        request.reusePrefix = true
        let job = InferenceJob(request: request, images: images, stop: stop, method: choice.label)
        return (job, r.stream ?? false, r.streamOptions?.includeUsage ?? false, model)
    }

    /// The messages as the chat template takes them, with each image's bytes in order.
    func conversation(_ wire: [WireMessage]) throws -> ([ChatMessage], [ImageRef]) {
        guard !wire.isEmpty else { throw APIError.badRequest("messages must not be empty", param: "messages") }
        var messages: [ChatMessage] = []
        var images: [ImageRef] = []
        for (i, m) in wire.enumerated() {
            let role: ChatMessage.Role
            switch m.role {
            case "system", "developer": role = .system
            case "user": role = .user
            case "assistant": role = .assistant
            default: throw APIError.badRequest("messages[\(i)].role '\(m.role)' is not one of system, developer, user, assistant", param: "messages[\(i)].role")
            }
            var parts: [ChatMessage.Part] = []
            switch m.content {
            case .none: break
            case .text(let t): parts = [.text(t)]
            case .parts(let wireParts):
                for (j, p) in wireParts.enumerated() {
                    let param = "messages[\(i)].content[\(j)]"
                    switch p.type {
                    case "text":
                        guard let t = p.text else { throw APIError.badRequest("\(param): a text part needs 'text'", param: param) }
                        parts.append(.text(t))
                    case "image_url":
                        guard role == .user else { throw APIError.badRequest("\(param): images go in user messages", param: param) }
                        guard let url = p.imageURL else { throw APIError.badRequest("\(param): an image_url part needs 'image_url.url'", param: param) }
                        guard loaded.model.config.vision != nil else {
                            throw APIError.badRequest("the model is text-only; it takes no images", param: param, code: "images_not_supported")
                        }
                        guard images.count < maxImages else {
                            throw APIError.badRequest("too many images: at most \(maxImages) a request", param: param, code: "too_many_images")
                        }
                        let (bytes, name) = try media.load(url, param: "\(param).image_url")
                        images.append(ImageRef(bytes: bytes, digest: Self.digest(bytes), name: name))
                        parts.append(.image)
                    default:
                        throw APIError.badRequest("\(param): part type '\(p.type)' is not one of text, image_url", param: param)
                    }
                }
            }
            messages.append(ChatMessage(role, parts: parts))
        }
        guard messages.last?.role == .user else {
            throw APIError.badRequest("the last message must be the user's", param: "messages")
        }
        return (messages, images)
    }

    static func digest(_ bytes: Data) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
}
