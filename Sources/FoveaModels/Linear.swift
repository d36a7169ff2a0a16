import FoveaCore

/// A dense layer with PyTorch's weight layout, its weights float32 or kept in a stored block format.
public struct Linear: Sendable {
    public enum Weights: Sendable {
        /// [outDim, inDim]
        case dense(Tensor)
        case quantized(QuantizedMatrix)
    }
    public let weights: Weights
    /// [outDim]
    public let bias: Tensor?
    public let inDim: Int, outDim: Int

    public init(_ scope: WeightScope, _ name: String, inDim: Int, outDim: Int, bias: Bool) throws {
        if let q = try scope.quantized("\(name).weight", [outDim, inDim]) {
            weights = .quantized(q)
        } else {
            weights = .dense(try scope.tensor("\(name).weight", [outDim, inDim]))
        }
        self.inDim = inDim
        self.outDim = outDim
        self.bias = bias ? try scope.tensor("\(name).bias", [outDim]) : nil
    }

    public init(weight: Tensor, bias: Tensor?) {
        weights = .dense(weight)
        inDim = weight.shape[1]
        outDim = weight.shape[0]
        self.bias = bias
    }

    public init(quantized q: QuantizedMatrix) {
        weights = .quantized(q)
        inDim = q.cols
        outDim = q.rows
        bias = nil
    }

    /// y[rows, outDim] = x[rows, inDim] · Wᵀ + b
    public func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        switch weights {
        case .dense(let w):
            Kernels.linear(x, rows: rows, inDim: inDim, weight: w.data, bias: bias?.data, outDim: outDim, into: y)
        case .quantized(let q):
            if rows == 1 { q.gemv(x, into: y) } else { q.gemm(x, rows: rows, into: y) }
            if let bias { Kernels.addBias(bias.data, to: y, rows: rows, outDim: outDim) }
        }
    }

    /// Several layers over the same x (Q, K and V; gate and up). For one row of stored-format
    /// weights alike, one parallel region with x quantised once (`QuantizedMatrix.gemv(_:x:)`);
    /// otherwise each layer in turn. Same values either way: rows are independent.
    public static func apply(_ layers: [(layer: Linear, y: UnsafeMutablePointer<Float>)], _ x: UnsafePointer<Float>, rows: Int) {
        if rows == 1 {
            let parts = layers.compactMap { l -> (matrix: QuantizedMatrix, y: UnsafeMutablePointer<Float>)? in
                if case .quantized(let q) = l.layer.weights { (q, l.y) } else { nil }
            }
            if parts.count == layers.count, QuantizedMatrix.gemv(parts, x: x) {
                for l in layers { if let bias = l.layer.bias { Kernels.addBias(bias.data, to: l.y, rows: 1, outDim: l.layer.outDim) } }
                return
            }
        }
        for l in layers { l.layer(x, rows: rows, into: l.y) }
    }

    /// Whether many-row products run one of Fovea's own kernels on this CPU, not sgemm.
    public var usesOwnManyRowProduct: Bool {
        if case .quantized(let q) = weights { q.usesOwnManyRowProduct } else { false }
    }

    /// Row `r` of the weight as float32 (embedding lookups).
    public func row(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        switch weights {
        case .dense(let w): out.update(from: w.data + r * inDim, count: inDim)
        case .quantized(let q): q.dequantize(row: r, into: out)
        }
    }

    public var parameterCount: Int { inDim * outDim + (bias?.count ?? 0) }
    /// Bytes the weights hold in memory.
    public var weightBytes: Int {
        switch weights {
        case .dense(let w): w.count * 4
        case .quantized(let q): q.byteCount
        }
    }
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

