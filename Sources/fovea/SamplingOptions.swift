import ArgumentParser
import FoveaRuntime

/// Flags every generating command shares: how tokens are chosen and which chat format wraps the prompt.
struct SamplingOptions: ParsableArguments {
    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(name: .customLong("top-p"), help: "Nucleus sampling mass in (0, 1].")
    var topP: Float = 1

    @Option(help: "Seed for sampling.")
    var seed: UInt64 = 0

    @Option(help: "Chat template: \(ChatTemplate.names.joined(separator: ", ")) (default: picked by the checkpoint).")
    var template: String?

    func validate() throws {
        guard temperature >= 0 else { throw ValidationError("--temperature must be ≥ 0") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        if let template, ChatTemplate(name: template) == nil {
            throw ValidationError("--template must be one of \(ChatTemplate.names.joined(separator: ", "))")
        }
    }

    var parameters: SamplingParameters {
        get throws { try SamplingParameters(temperature: temperature, topP: topP, seed: seed) }
    }

    /// The requested template, or the checkpoint's.
    func chatTemplate(default detected: ChatTemplate) -> ChatTemplate {
        template.flatMap { ChatTemplate(name: $0) } ?? detected
    }
}
