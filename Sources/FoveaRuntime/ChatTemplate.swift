import Foundation

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable {
    public enum Role: String, Sendable { case system, user, assistant }
    public var role: Role
    public var content: String
    public init(_ role: Role, _ content: String) {
        self.role = role
        self.content = content
    }
}

/// The prompt formats the supported checkpoints were trained with. Rendered in Swift, not by a
/// Jinja engine: each is a few lines, and picking one by the checkpoint's template text keeps
/// what the model saw in training.
public enum ChatTemplate: Sendable, Equatable {
    /// `<|im_start|>role\ncontent<|im_end|>\n` (SmolLM2, Qwen2). `defaultSystem` is inserted
    /// when the conversation does not open with a system turn, as SmolLM2's template does.
    case chatml(defaultSystem: String?)
    /// LLaVA-1.5 (Vicuna): `USER: <image>\n… ASSISTANT:`; turns separated by `</s>`.
    case vicuna
    /// LLaVA-NeXT Mistral: `[INST] <image>\n… [/INST]`.
    case mistral

    public static let names = ["chatml", "vicuna", "mistral"]

    public init?(name: String) {
        switch name {
        case "chatml": self = .chatml(defaultSystem: nil)
        case "vicuna": self = .vicuna
        case "mistral": self = .mistral
        default: return nil
        }
    }

    /// Picks the format a checkpoint's Jinja `chat_template` text describes.
    public static func detect(jinja: String?, modelType: String) -> ChatTemplate {
        if let t = jinja {
            if t.contains("<|im_start|>") {
                // SmolLM2's template opens with a fixed system turn when none is given.
                var system: String? = nil
                // The newline may be a real one or a Jinja "\n" escape.
                if t.contains("messages[0]['role'] != 'system'"),
                   let re = try? NSRegularExpression(pattern: #"<\|im_start\|>system(?:\n|\\n)(.*?)<\|im_end\|>"#, options: [.dotMatchesLineSeparators]),
                   let m = re.firstMatch(in: t, range: NSRange(t.startIndex..., in: t)), let r = Range(m.range(at: 1), in: t) {
                    system = String(t[r])
                }
                return .chatml(defaultSystem: system)
            }
            if t.contains("[INST]") { return .mistral }
            if t.contains("USER:") { return .vicuna }
        }
        return modelType == "mistral" ? .mistral : .vicuna
    }

    /// The prompt text, ending where the assistant's answer begins. `imageToken` is placed at
    /// the start of the first user turn when `images` > 0 (one per image).
    public func render(_ messages: [ChatMessage], images: Int = 0, imageToken: String = "<image>") -> String {
        let imagePrefix = String(repeating: imageToken + "\n", count: images)
        var firstUser = true
        func userText(_ m: ChatMessage) -> String {
            defer { firstUser = false }
            return firstUser ? imagePrefix + m.content : m.content
        }
        var out = ""
        switch self {
        case .chatml(let defaultSystem):
            if let defaultSystem, messages.first?.role != .system {
                out += "<|im_start|>system\n\(defaultSystem)<|im_end|>\n"
            }
            for m in messages {
                out += "<|im_start|>\(m.role.rawValue)\n\(m.role == .user ? userText(m) : m.content)<|im_end|>\n"
            }
            out += "<|im_start|>assistant\n"
        case .vicuna:
            for m in messages {
                switch m.role {
                case .system: out += m.content + " "
                case .user: out += "USER: \(userText(m)) "
                case .assistant: out += "ASSISTANT: \(m.content)</s>"
                }
            }
            out += "ASSISTANT:"
        case .mistral:
            for m in messages {
                switch m.role {
                case .system: out += m.content + "\n\n"
                case .user: out += "[INST] \(userText(m)) [/INST]"
                case .assistant: out += " \(m.content)</s>"
                }
            }
        }
        return out
    }
}
