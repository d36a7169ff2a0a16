import ArgumentParser
import FoveaModels

@main
struct Fovea: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fovea",
        abstract: "Run LLaVA-family vision-language models on the CPU, looking only at what matters.",
        subcommands: [Inspect.self, Generate.self, Chat.self]
    )
}

/// A model folder (config.json + safetensors) or a `.gguf` file.
func loadModel(_ path: String) throws -> VisionLanguageModel {
    path.lowercased().hasSuffix(".gguf") ? try VisionLanguageModel(gguf: path) : try VisionLanguageModel(directory: path)
}
