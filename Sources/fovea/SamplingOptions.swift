import Foundation
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

    /// The requested template, or the checkpoint's; says on stderr which was picked, and warns
    /// when the checkpoint's own could not be recognised.
    func chatTemplate(for loaded: LoadedModel) -> ChatTemplate {
        if let chosen = template.flatMap({ ChatTemplate(name: $0) }) {
            note("chat template: \(chosen.name) (--template)")
            return chosen
        }
        announceTemplate(loaded)
        return loaded.template
    }
}

/// Which chat format a checkpoint's prompts get, on stderr; a warning when it was guessed.
func announceTemplate(_ loaded: LoadedModel) {
    if loaded.templateGuessed {
        note("warning: no chat template Fovea recognises in the checkpoint; guessed \(loaded.template.name) from model_type "
             + "'\(loaded.model.config.text.modelType)'. Pass --template (\(ChatTemplate.names.joined(separator: ", "))) to choose.")
    } else {
        note("chat template: \(loaded.template.name) (from the checkpoint)")
    }
}

func note(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
