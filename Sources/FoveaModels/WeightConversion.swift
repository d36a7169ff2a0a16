import FoveaCore
import FoveaIO

/// Any checkpoint's matrices converted at load into a stored format Fovea multiplies directly
/// (`--weights bf16|f16|q8_0|q4_0|q4_1`), so safetensors users get the smaller-weights path that
/// GGUF files bring. Matrices the source already stores in such a format are kept as they are;
/// vectors, and matrices whose rows are not a multiple of 32 wide (CLIP's patch embedding), stay
/// float32. Each matrix is read, converted and released in turn, so a lazily built source (the
/// bench shapes' random weights) never holds the float32 model.
public final class ConvertedWeights: TensorSource, @unchecked Sendable {
    public let base: any TensorSource
    public let target: QuantType
    let activations: QuantizedMatrix.Activations

    public init(_ base: any TensorSource, to target: QuantType, activations: QuantizedMatrix.Activations = .float) throws {
        guard target.canQuantize else {
            throw FoveaError.invalidArgument(name: "--weights", value: "\(target)", reason: "Fovea converts float weights at load to bf16, f16, q8_0, q4_0 or q4_1; the k-quants and Q5 are read as llama-quantize wrote them")
        }
        self.base = base
        self.target = target
        self.activations = activations
    }

    public func contains(_ name: String) -> Bool { base.contains(name) }
    public func tensor(_ name: String, shape: [Int]) throws -> Tensor { try base.tensor(name, shape: shape) }

    public func quantized(_ name: String, shape: [Int]) throws -> QuantizedMatrix? {
        if let kept = try base.quantized(name, shape: shape) { return kept }
        guard shape.count == 2, shape[1] % 32 == 0, shape[0] > 0 else { return nil }
        let t = try base.tensor(name, shape: shape)
        return QuantizedMatrix(type: target, rows: shape[0], cols: shape[1], quantizing: t.data, activations: activations)
    }
}
