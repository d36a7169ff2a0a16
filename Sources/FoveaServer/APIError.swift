import Foundation
import FoveaCore
import FoveaIO

/// A request the server refuses, with the HTTP status and OpenAI's error fields. Every refusal
/// a client can cause is one of these: never a crash, never a 500.
public struct APIError: Error, Sendable {
    public let status: Int
    public let message: String
    public let type: String
    public let param: String?
    public let code: String?

    public init(status: Int, _ message: String, type: String = "invalid_request_error", param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    public static func badRequest(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: 400, message, param: param, code: code)
    }

    public var body: APIErrorBody {
        APIErrorBody(error: .init(message: message, type: type, param: param, code: code))
    }

    /// A failure inside a request (its prompt, its image, its method) as the client's error.
    static func from(_ error: any Error) -> APIError {
        switch error {
        case let e as APIError: return e
        case let e as MethodSpecError: return .badRequest(e.localizedDescription, param: "fovea", code: "invalid_method")
        case FoveaError.promptTooLong(let tokens, let context):
            return .badRequest("the prompt needs \(tokens) positions; the model's context is \(context)", param: "messages",
                               code: "context_length_exceeded")
        case FoveaError.insufficientMemory(let what, let needed, let available):
            return APIError(status: 503, String(format: "not enough memory for %@: needs %.2f GB, %.2f GB free", what,
                                                Double(needed) / 1e9, Double(available) / 1e9), type: "server_error", code: "insufficient_memory")
        case FoveaError.incompatibleMethod: return .badRequest(error.localizedDescription, param: "fovea", code: "invalid_method")
        case let e as FoveaError: return .badRequest(e.localizedDescription)
        case let e as DecodingError: return .badRequest("invalid request body: \(describe(e))")
        default: return APIError(status: 500, "internal error: \(error.localizedDescription)", type: "server_error")
        }
    }

    /// A decoding error as a client reads it: where in the body, and what was wrong.
    static func describe(_ e: DecodingError) -> String {
        func path(_ c: [any CodingKey]) -> String {
            let p = c.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return p.isEmpty ? "the body" : String(p.drop { $0 == "." })
        }
        switch e {
        case .typeMismatch(let type, let ctx): return "\(path(ctx.codingPath)): expected \(typeName(type)); \(ctx.debugDescription)"
        case .valueNotFound(let type, let ctx): return "\(path(ctx.codingPath)): expected \(typeName(type)), found null"
        case .keyNotFound(let key, let ctx): return "\(path(ctx.codingPath + [key])): required field missing"
        case .dataCorrupted(let ctx):
            let underlying = (ctx.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return "\(path(ctx.codingPath)): \(underlying ?? ctx.debugDescription)"
        @unknown default: return "\(e)"
        }
    }

    static func typeName(_ t: Any.Type) -> String {
        switch t {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int.Type, is Int64.Type: "an integer"
        case is Double.Type: "a number"
        default: "\(t)"
        }
    }
}
