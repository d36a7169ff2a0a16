import ArgumentParser
import Foundation
import FoveaCore
import FoveaIO
import FoveaKV
import FoveaModels
import FoveaRuntime

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a checkpoint's architecture, parameters per component, dtypes, and memory needs.")

    @Argument(help: "Model folder (config.json + *.safetensors) or a .gguf file (with --mmproj for images).")
    var model: String

    @OptionGroup var weightOptions: WeightOptions

    @Option(help: "Context length for the KV-cache estimate (default: the model's whole context).")
    var context: Int?

    func validate() throws {
        if let context, context <= 0 { throw ValidationError("--context must be positive") }
    }

    func run() throws {
        let loaded = try loadWithProgress(model, weights: weightOptions)
        let limit = loaded.model.config.text.maxPositions
        let context = self.context ?? limit
        guard context <= limit else {
            throw FoveaError.invalidArgument(name: "--context", value: "\(context)", reason: "the model's context is \(limit) tokens (max_position_embeddings)")
        }
        print(ModelReport.describe(loaded.model, context: context))
        print("kernels: \(BLAS.kernels); CPU \(Machine.description)")
        if let tokenizer = loaded.tokenizer {
            print("tokenizer: \(type(of: tokenizer)); chat template: \(loaded.template.name)\(loaded.templateGuessed ? " (guessed)" : "")")
        } else {
            print("tokenizer: none\(loaded.tokenizerError.map { " (\($0.localizedDescription))" } ?? ""); prompts must be token ids")
        }
    }
}

