import ArgumentParser
import FoveaCore

/// `--mmproj`, `--weights` and `--activations`: llama.cpp's second file, and how a GGUF's
/// quantised matrices are held and multiplied.
struct WeightOptions: ParsableArguments {
    @Option(help: "llama.cpp's vision file for a .gguf --model (CLIP tower + LLaVA projector, 'clip' GGUF), as llama-mtmd-cli takes it.")
    var mmproj: String?

    @Option(help: "GGUF weights: 'stored' keeps Q8_0/Q4_0/Q4_1 blocks as the file holds them; 'f32' converts them at load (the old path, 4-8× the memory).")
    var weights = "stored"

    @Option(help: "Activations for quantised one-row products: 'float' (exact against float32 weights) or 'int8' (ggml's per-block quantisation, llama.cpp's arithmetic).")
    var activations = "float"

    func validate() throws {
        guard ["stored", "f32"].contains(weights) else { throw ValidationError("--weights must be stored or f32") }
        guard ["float", "int8"].contains(activations) else { throw ValidationError("--activations must be float or int8") }
    }

    var dequantize: Bool { weights == "f32" }
    var mode: QuantizedMatrix.Activations { activations == "int8" ? .int8 : .float }
}
