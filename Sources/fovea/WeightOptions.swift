import ArgumentParser
import FoveaCore

/// `--mmproj`, `--weights` and `--activations`: llama.cpp's second file, and how a GGUF's
/// quantised matrices are held and multiplied.
struct WeightOptions: ParsableArguments {
    @Option(help: "llama.cpp's vision file for a .gguf --model (CLIP tower + LLaVA projector, 'clip' GGUF), as llama-mtmd-cli takes it.")
    var mmproj: String?

    @Option(help: "Weights in memory: 'stored' keeps what the file holds (GGUF Q8_0/Q4_0/Q4_1/F16/BF16 as stored, safetensors as float32); 'f32' widens everything at load; 'bf16', 'f16', 'q8_0', 'q4_0', 'q4_1' convert float matrices at load (GGUF blocks stay as stored).")
    var weights = "stored"

    @Option(help: "Activations against stored weights: 'float' (exact against float32 weights); 'int8' (block formats' one-row products: ggml's per-block quantisation, llama.cpp's arithmetic); 'bf16' (bf16 weights' many-row products, prefill and vision: x rounded to bf16, AVX-512 BF16 dot products, as PyTorch's bf16 autocast).")
    var activations = "float"

    static let conversions: [String: QuantType] = ["bf16": .bf16, "f16": .f16, "q8_0": .q8_0, "q4_0": .q4_0, "q4_1": .q4_1]

    func validate() throws {
        guard weights == "stored" || weights == "f32" || Self.conversions[weights] != nil else {
            throw ValidationError("--weights must be stored, f32, bf16, f16, q8_0, q4_0 or q4_1")
        }
        guard ["float", "int8", "bf16"].contains(activations) else { throw ValidationError("--activations must be float, int8 or bf16") }
    }

    var dequantize: Bool { weights == "f32" }
    var convert: QuantType? { Self.conversions[weights] }
    var mode: QuantizedMatrix.Activations { activations == "int8" ? .int8 : activations == "bf16" ? .bf16 : .float }
}
