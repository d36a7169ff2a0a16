import FoveaCore

// MARK: Projector

/// LLaVA's multimodal projector: Linear → activation → Linear, per token.
public struct MultimodalProjector: Sendable {
    let linear1: Linear            // key: linear_1
    let linear2: Linear            // key: linear_2
    let activation: Activation

    public init(_ s: WeightScope, inDim: Int, outDim: Int, activation: Activation, bias: Bool) throws {
        linear1 = try Linear(s, "linear_1", inDim: inDim, outDim: outDim, bias: bias)
        linear2 = try Linear(s, "linear_2", inDim: outDim, outDim: outDim, bias: bias)
        self.activation = activation
    }

    public var parameterCount: Int { linear1.parameterCount + linear2.parameterCount }
    public var outDim: Int { linear2.outDim }

    /// [rows, inDim] → [rows, outDim], keeping `x` alive for the call.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        withExtendedLifetime(x) { self(x.data, rows: x.shape[0]) }
    }

    /// [rows, inDim] → [rows, outDim]
    public func callAsFunction(_ x: UnsafePointer<Float>, rows: Int) -> Tensor {
        let mid = Tensor(zeros: [rows, linear1.outDim])
        linear1(x, rows: rows, into: mid.data)
        Kernels.activate(activation, mid.data, count: mid.count)
        let out = Tensor(zeros: [rows, linear2.outDim])
        linear2(mid.data, rows: rows, into: out.data)
        return out
    }
}
