import Foundation
import FoveaRuntime
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `fovea serve`'s HTTP side: OpenAI's chat-completions API, `/v1/models`, `/health` and
/// `/metrics`, on Hummingbird. Every error a client can cause answers in OpenAI's error shape.
public struct FoveaServer: Sendable {
    public let planner: RequestPlanner
    public let worker: InferenceWorker
    public let maxBodyBytes: Int
    public let apiKey: String?
    /// Renders the metrics registry in Prometheus's text format.
    public let renderMetrics: @Sendable () -> String

    public init(planner: RequestPlanner, worker: InferenceWorker, maxBodyBytes: Int, apiKey: String?,
                renderMetrics: @escaping @Sendable () -> String) {
        self.planner = planner
        self.worker = worker
        self.maxBodyBytes = maxBodyBytes
        self.apiKey = apiKey
        self.renderMetrics = renderMetrics
    }

    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("/health") { _, _ in Self.json(["status": "ok"]) }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: renderMetrics())))
        }
        router.get("/v1/models") { request, _ in
            if let refusal = authorise(request) { return refusal }
            let created = Int(Date().timeIntervalSince1970)
            var entries = [ModelList.Entry(id: planner.modelName, created: created, fovea: planner.defaults.label)]
            entries += planner.aliases.sorted { $0.key < $1.key }.map { ModelList.Entry(id: $0.key, created: created, fovea: $0.value.label) }
            return Self.json(ModelList(data: entries))
        }
        router.post("/v1/chat/completions") { request, context in
            if let refusal = authorise(request) { return refusal }
            return await chatCompletions(request)
        }
        return router
    }

    func authorise(_ request: Request) -> Response? {
        guard let apiKey else { return nil }
        if request.headers[.authorization] == "Bearer \(apiKey)" { return nil }
        return Self.error(APIError(status: 401, "invalid or missing API key (Authorization: Bearer KEY)", type: "invalid_request_error",
                                   code: "invalid_api_key"))
    }

    func chatCompletions(_ request: Request) async -> Response {
        let body: ByteBuffer
        do {
            if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
                throw APIError(status: 413, "request body of \(length) bytes exceeds the server's limit of \(maxBodyBytes) (--max-body)", code: "body_too_large")
            }
            var request = request
            body = try await request.collectBody(upTo: maxBodyBytes)
        } catch let e as APIError {
            return Self.error(e)
        } catch {
            return Self.error(APIError(status: 413, "request body exceeds the server's limit of \(maxBodyBytes) bytes (--max-body)", code: "body_too_large"))
        }
        let planned: (job: InferenceJob, stream: Bool, includeUsage: Bool, model: String)
        do {
            let wire = try Self.decode(body)
            planned = try planner.plan(wire)
        } catch {
            return Self.error(APIError.from(error))
        }
        let handle = worker.submit(planned.job)
        var iterator = handle.events.makeAsyncIterator()
        // Wait for prefill before answering, so a request that fails there (a prompt beyond the
        // context, an undecodable image) gets its 4xx instead of a stream that breaks off.
        guard let first = await iterator.next() else { return Self.error(APIError(status: 503, "the server is stopping", type: "server_error")) }
        if case .failed(let e) = first { return Self.error(e) }
        guard case .started(let promptTokens) = first else { return Self.error(APIError(status: 500, "no prefill", type: "server_error")) }
        let id = "chatcmpl-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let created = Int(Date().timeIntervalSince1970)
        if planned.stream {
            return streamResponse(id: id, created: created, model: planned.model, includeUsage: planned.includeUsage,
                                  promptTokens: promptTokens, events: UncheckedIterator(iterator), handle: handle)
        }
        defer { handle.cancel() }
        var text = ""
        while let event = await iterator.next() {
            switch event {
            case .delta(let d): text += d
            case .failed(let e): return Self.error(e)
            case .finished(let outcome):
                return Self.json(ChatCompletion(id: id, created: created, model: planned.model,
                                                choices: [.init(message: .init(content: text), finishReason: outcome.finishReason)],
                                                usage: Self.usage(outcome), timings: Self.timings(outcome)))
            case .started: break
            }
        }
        return Self.error(APIError(status: 500, "generation ended without a result", type: "server_error"))
    }

    func streamResponse(id: String, created: Int, model: String, includeUsage: Bool, promptTokens: Int,
                        events: UncheckedIterator, handle: InferenceHandle) -> Response {
        let body = ResponseBody { writer in
            // Whichever way this ends (a write failing because the client went away included),
            // the job stops at its next token and its KV blocks go back to the pool.
            defer { handle.cancel() }
            var iterator = events.iterator
            func send(_ chunk: ChatCompletionChunk) async throws {
                try await writer.write(ByteBuffer(string: "data: " + Self.encode(chunk) + "\n\n"))
            }
            let chunk = { (delta: ChatCompletionChunk.Delta, finish: String?) in
                ChatCompletionChunk(id: id, created: created, model: model, choices: [.init(delta: delta, finishReason: finish)])
            }
            try await send(chunk(.init(role: "assistant", content: ""), nil))
            while let event = await iterator.next() {
                switch event {
                case .delta(let d): try await send(chunk(.init(content: d), nil))
                case .failed(let e):
                    try await writer.write(ByteBuffer(string: "data: " + Self.encode(e.body) + "\n\n"))
                case .finished(let outcome):
                    try await send(chunk(.init(), outcome.finishReason))
                    if includeUsage {
                        var last = ChatCompletionChunk(id: id, created: created, model: model, choices: [])
                        last.usage = Self.usage(outcome)
                        last.timings = Self.timings(outcome)
                        try await send(last)
                    }
                case .started: break
                }
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    static func decode(_ body: ByteBuffer) throws -> ChatCompletionRequest {
        try decode(Data(buffer: body))
    }

    /// A request body, or the 400 that says what is wrong with it.
    public static func decode(_ data: Data) throws -> ChatCompletionRequest {
        // JSONDecoder's own messages for malformed JSON name no position a client can use.
        guard (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
            throw APIError.badRequest("the body is not a JSON object", code: "invalid_json")
        }
        return try JSONDecoder().decode(ChatCompletionRequest.self, from: data)
    }

    static func usage(_ o: InferenceOutcome) -> Usage {
        Usage(promptTokens: o.statistics.promptTokens, completionTokens: o.completionTokens,
              totalTokens: o.statistics.promptTokens + o.completionTokens,
              promptTokensDetails: ["cached_tokens": o.statistics.promptTokensReused])
    }

    static func timings(_ o: InferenceOutcome) -> Timings {
        let s = o.statistics
        let predictedMs = s.decodeSeconds * 1000
        return Timings(promptN: s.promptTokens, cacheN: s.promptTokensReused, promptMs: (s.imageLoadSeconds + s.timeToFirstToken) * 1000, predictedN: o.completionTokens,
                       predictedMs: predictedMs, predictedPerSecond: predictedMs > 0 ? Double(o.completionTokens) / (predictedMs / 1000) : 0,
                       visualTokensIn: s.visualTokensIn, visualTokensKept: s.visualTokensOut,
                       imageLoadMs: s.imageLoadSeconds * 1000, visionMs: s.visionSeconds * 1000,
                       visionCacheHit: o.visionCacheHit, kvBytes: s.kvBytesAllocated, method: o.method)
    }

    static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: encode(value))))
    }

    static func error(_ e: APIError) -> Response {
        json(e.body, status: HTTPResponse.Status(code: e.status))
    }
}

/// The stream's iterator handed to the response body's writer task; only that task uses it.
struct UncheckedIterator: @unchecked Sendable {
    var iterator: AsyncStream<InferenceEvent>.Iterator
    init(_ iterator: AsyncStream<InferenceEvent>.Iterator) { self.iterator = iterator }
}
