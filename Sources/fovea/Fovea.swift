import ArgumentParser

@main
struct Fovea: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fovea",
        abstract: "Run LLaVA-family vision-language models on the CPU, looking only at what matters.",
        subcommands: [Inspect.self, Generate.self, Chat.self, Explain.self, Eval.self, BenchCommand.self]
    )
}

