import FoveaCore

/// A dense layer with PyTorch's weight layout.
public struct Linear: Sendable {
    /// [outDim, inDim]
    public let weight: Tensor
    /// [outDim]
    public let bias: Tensor?
    public var inDim: Int { weight.shape[1] }
    public var outDim: Int { weight.shape[0] }

    public init(_ scope: WeightScope, _ name: String, inDim: Int, outDim: Int, bias: Bool) throws {
        weight = try scope.tensor("\(name).weight", [outDim, inDim])
        self.bias = bias ? try scope.tensor("\(name).bias", [outDim]) : nil
    }

    public init(weight: Tensor, bias: Tensor?) {
        self.weight = weight
        self.bias = bias
    }

    /// y[rows, outDim] = x[rows, inDim] · Wᵀ + b
    public func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        Kernels.linear(x, rows: rows, inDim: inDim, weight: weight.data, bias: bias?.data, outDim: outDim, into: y)
    }

    public var parameterCount: Int { weight.count + (bias?.count ?? 0) }
}

/// LayerNorm weights.
public struct LayerNorm: Sendable {
    public let gamma: Tensor
    public let beta: Tensor
    public let eps: Float

    public init(_ scope: WeightScope, _ name: String, dim: Int, eps: Float) throws {
        gamma = try scope.tensor("\(name).weight", [dim])
        beta = try scope.tensor("\(name).bias", [dim])
        self.eps = eps
    }

    public func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        Kernels.layerNorm(x, rows: rows, dim: gamma.count, gamma: gamma.data, beta: beta.data, eps: eps, into: y)
    }
}

/// RMSNorm weights.
public struct RMSNorm: Sendable {
    public let gamma: Tensor
    public let eps: Float

    public init(_ scope: WeightScope, _ name: String, dim: Int, eps: Float) throws {
        gamma = try scope.tensor("\(name).weight", [dim])
        self.eps = eps
    }

    public init(gamma: Tensor, eps: Float) {
        self.gamma = gamma
        self.eps = eps
    }

    public func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        Kernels.rmsNorm(x, rows: rows, dim: gamma.count, gamma: gamma.data, eps: eps, into: y)
    }
}

