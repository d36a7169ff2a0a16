import Foundation

/// One turn of a conversation: text, or the VLM form of parts where images sit among the text
/// (`{"type": "image"}` / `{"type": "text"}` in transformers' messages).
public struct ChatMessage: Sendable, Equatable {
    public enum Role: String, Sendable { case system, user, assistant }
    public enum Part: Sendable, Equatable { case text(String), image }
    public var role: Role
    public var parts: [Part]
    public init(_ role: Role, _ content: String) {
        self.role = role
        parts = [.text(content)]
    }
    public init(_ role: Role, parts: [Part]) {
        self.role = role
        self.parts = parts
    }

    /// The text parts joined (images left out).
    public var content: String {
        parts.map { if case .text(let t) = $0 { t } else { "" } }.joined()
    }
    var hasImages: Bool { parts.contains(.image) }

    /// Text with each image part rendered as `imageToken` + newline, where it stands.
    func rendered(imageToken: String) -> String {
        parts.map { if case .text(let t) = $0 { t } else { imageToken + "\n" } }.joined()
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
    public static func detect(jinja: String?, modelType: String) -> ChatTemplate { detection(jinja: jinja, modelType: modelType).template }

    /// The format and how it was chosen; `guessed` when the checkpoint's template (if any) names
    /// none of the known formats and the model type decided.
    public static func detection(jinja: String?, modelType: String) -> (template: ChatTemplate, guessed: Bool) {
        if let t = jinja, let found = recognise(t) { return (found, false) }
        return (modelType == "mistral" ? .mistral : .vicuna, true)
    }

    public var name: String {
        switch self {
        case .chatml: "chatml"
        case .vicuna: "vicuna"
        case .mistral: "mistral"
        }
    }

    static func recognise(_ t: String) -> ChatTemplate? {
        do {
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
        return nil
    }

    /// The prompt text, ending where the assistant's answer begins. `imageToken` is placed at
    /// the start of the first user turn when `images` > 0 (one per image).
    /// Messages with image parts place them where they stand and `images` is not used.
    public func render(_ messages: [ChatMessage], images: Int = 0, imageToken: String = "<image>") -> String {
        let inline = messages.contains { $0.hasImages }
        let imagePrefix = inline ? "" : String(repeating: imageToken + "\n", count: images)
        var firstUser = true
        func userText(_ m: ChatMessage) -> String {
            defer { firstUser = false }
            return (firstUser ? imagePrefix : "") + m.rendered(imageToken: imageToken)
        }
        var out = ""
        switch self {
        case .chatml(let defaultSystem):
            if let defaultSystem, messages.first?.role != .system {
                out += "<|im_start|>system\n\(defaultSystem)<|im_end|>\n"
            }
            for m in messages {
                out += "<|im_start|>\(m.role.rawValue)\n\(m.role == .user ? userText(m) : m.rendered(imageToken: imageToken))<|im_end|>\n"
            }
            out += "<|im_start|>assistant\n"
        case .vicuna:
            for m in messages {
                switch m.role {
                case .system: out += m.rendered(imageToken: imageToken) + " "
                case .user: out += "USER: \(userText(m)) "
                case .assistant: out += "ASSISTANT: \(m.rendered(imageToken: imageToken))</s>"
                }
            }
            out += "ASSISTANT:"
        case .mistral:
            for m in messages {
                switch m.role {
                case .system: out += m.rendered(imageToken: imageToken) + "\n\n"
                case .user: out += "[INST] \(userText(m)) [/INST]"
                case .assistant: out += " \(m.rendered(imageToken: imageToken))</s>"
                }
            }
        }
        return out
    }
}
