import ArgumentParser
import Foundation
import FoveaCore
import FoveaIO
import FoveaModels
import FoveaRuntime

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Speed and memory of Full and each method cell on a model or a random-weight model of a named shape.",
        discussion: """
        Every cell runs on the same image and prompt, interleaved run by run after one warm-up run of Full; \
        the table gives medians and ratios to Full from this run. Build with `swift build -c release` first: \
        debug builds are not benchmarks.

        Shapes (--shape):
        \(BenchShapes.all.map { "  \($0.name): \($0.summary)" }.joined(separator: "\n"))
        """)

    @Option(help: "Model folder (config.json + *.safetensors) or a .gguf file (with --mmproj for images).")
    var model: String?

    @Option(help: "A named shape built with random float32 weights (see below).")
    var shape: String?

    @OptionGroup var weightOptions: WeightOptions

    @Option(help: "Method cells separated by ';', each 'prune=SPEC kv=SPEC dtype=T' (Full always runs first).")
    var methods: String = ""

    @Option(help: "Measured runs per cell (medians), after one warm-up run of Full.")
    var runs = 3

    @Option(help: "Decode steps measured after the first token.")
    var decode = 32

    @Option(name: .customLong("prompt-tokens"), help: "Text tokens in the prompt (the image's tokens come on top).")
    var promptTokens = 40

    @Option(help: "With --model: an image file to use instead of a noise image.")
    var image: String?

    @Option(name: .customLong("image-size"), help: "With --model: side in pixels of the square noise image.")
    var imageSize = 672

    @Option(help: "Also write the table as JSON to this file.")
    var json: String?

    @Flag(help: "Measure the ceilings instead: sgemm GFLOP/s, bf16 → f32 conversion, selective attention.")
    var kernels = false

    @Option(name: .customLong("selective-rows"), help: "With --kernels: cached rows for the selective-attention table.")
    var selectiveRows = 3000

    func validate() throws {
        guard runs > 0 else { throw ValidationError("--runs must be positive") }
        guard decode >= 0 else { throw ValidationError("--decode must be zero or more") }
        guard promptTokens > 0 && promptTokens <= 100_000 else { throw ValidationError("--prompt-tokens must be 1…100000") }
        guard imageSize > 0 && imageSize <= 8192 else { throw ValidationError("--image-size must be 1…8192") }
        guard selectiveRows > 0 && selectiveRows <= 1_000_000 else { throw ValidationError("--selective-rows must be 1…1000000") }
        if !kernels {
            guard (model == nil) != (shape == nil) else { throw ValidationError("give exactly one of --model and --shape (or --kernels)") }
        }
        if shape != nil && image != nil { throw ValidationError("--image goes with --model; a --shape has its own image size") }
    }

    func run() throws {
        #if DEBUG
        FileHandle.standardError.write(Data("warning: debug build; build with `swift build -c release` for real figures\n".utf8))
        #endif
        if kernels { return runKernels() }
        let cells = try methods.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            .map { try MethodCell($0) }
        let subject: BenchSubject
        if let shape {
            subject = try BenchSubject.shape(try BenchShapes.named(shape), textTokens: promptTokens, convert: weightOptions.convert,
                                             activations: weightOptions.mode)
        } else if let model {
            let loaded = try loadWithProgress(model, weights: weightOptions)
            let rgb = try image.map { try ImageDecoder.decode(path: $0) }
            subject = try BenchSubject.loaded(loaded, path: model, processor: loaded.processor,
                                              image: rgb, side: imageSize, textTokens: promptTokens)
        } else {
            throw ValidationError("give --model or --shape")
        }
        let report = try Bench.run(subject, cells: cells, runs: runs, decodeSteps: decode) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        print(report.markdown)
        if let json { try report.json().write(to: URL(fileURLWithPath: json)) }
    }

    func runKernels() {
        print("machine: \(Machine.description)  \nBLAS: \(BLAS.kernels) (\(BLAS.description))\n")
        print(String(format: "| sgemm 2048³ | %.1f GFLOP/s |", KernelBench.sgemm(runs: runs)))
        print("|---|---|")
        print(String(format: "| bf16 → f32 at load | %.2f G elements/s |", KernelBench.bf16Conversion()))
        let memory = KernelBench.memoryRead(runs: runs)
        print(String(format: "| memory read, 512 MB over the cores | %.1f GB/s |", memory.read))
        print(String(format: "| F16 one-row product, 256 MB matrix (decode's stream) | %.1f GB/s |", memory.f16Product))
        print(String(format: "| Q4_1 one-row product, int8 activations (%@), 512 MB matrix | %.1f GB/s |", QuantizedMatrix.kernelName, memory.q4_1Stream))
        print(String(format: "| the same, 1536 × 576 (SmolLM2's MLP) in cache, 200 times | %.1f GB/s |", memory.q4_1Cached))
        if let bf16 = KernelBench.bf16Product(runs: runs) {
            print(String(format: "| bf16 × bf16 2048³ (%@) | %.1f GFLOP/s |", QuantizedMatrix.bf16ProductName, bf16))
        }
        print("\nSelective decode attention (32 heads, 4 KV heads, head dim 64) over \(selectiveRows) cached rows:\n")
        print("| attended rows | share | attention time | × time at 100% |")
        print("|---|---|---|---|")
        let rows = KernelBench.selective(rows: selectiveRows, runs: runs)
        for r in rows {
            print(String(format: "| %d | %.0f%% | %.3f ms | %.2f |", r.rows, r.share * 100, r.seconds * 1000, r.seconds / rows[0].seconds))
        }
    }
}
