import ArgumentParser
import FoveaPruning

/// `--prune SPEC`, shared by every command that runs images through a model.
struct PruningOptions: ParsableArguments {
    @Option(name: .customLong("prune"), help: ArgumentHelp(
        "Visual-token pruning, name:key=value,... (default: full). Methods:",
        discussion: PruningRegistry.help + "\nBefore-LLM methods also take pos=orig|renumber and newline=on|off."))
    var spec: String = "full"

    func validate() throws {
        do { _ = try PruningPlan(parsing: spec) } catch { throw ValidationError("--prune: \(error.localizedDescription)") }
    }

    var plan: PruningPlan {
        get throws { try PruningPlan(parsing: spec) }
    }
}
