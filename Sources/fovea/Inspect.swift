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

    @Argument(help: "Model folder (config.json + *.safetensors) or a .gguf file.")
    var model: String

    @Option(help: "Context length for the KV-cache estimate.")
    var context: Int = 4096

    func validate() throws {
        guard context > 0 else { throw ValidationError("--context must be positive") }
    }

    func run() throws {
        let m = try loadWithProgress(model).model
        print(ModelReport.describe(m, context: context))
    }
}

