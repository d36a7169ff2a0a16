import ArgumentParser
import Foundation
import FoveaCore

@main
struct Fovea: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fovea",
        abstract: "Run LLaVA-family vision-language models on the CPU, looking only at what matters.",
        subcommands: [Inspect.self, Generate.self, Chat.self, Serve.self, Explain.self, Eval.self, BenchCommand.self]
    )

    static func main() async {
        KernelRouting.ensureDeservedBLAS()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// No silent slow path: OpenBLAS picks its kernels when it is loaded, before `main`, from the CPU it
/// recognises; where it picked a slower family than the CPU supports (0.3.21 on Sapphire Rapids runs
/// SSE3 kernels), Fovea restarts itself once with `OPENBLAS_CORETYPE` set to the right one.
/// `FOVEA_KEEP_BLAS_CORE=1` keeps OpenBLAS's own choice (to measure it).
enum KernelRouting {
    static let marker = BLAS.correctionMarker

    static func ensureDeservedBLAS() {
        let env = ProcessInfo.processInfo.environment
        guard env["FOVEA_KEEP_BLAS_CORE"] != "1", env[marker] == nil,
              let better = BLAS.betterCore(chosen: BLAS.coreName, flags: CPUFeatures.flags) else { return }
        setenv("OPENBLAS_CORETYPE", better, 1)
        setenv(marker, BLAS.coreName, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Only reached when exec failed: go on with the slow kernels, but say so.
        FileHandle.standardError.write(Data("warning: OpenBLAS chose its \(BLAS.coreName) kernels on a CPU that supports \(better); set OPENBLAS_CORETYPE=\(better)\n".utf8))
    }
}
