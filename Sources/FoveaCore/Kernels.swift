import Foundation
import CQuant

/// Element-wise and row-wise kernels on contiguous float32 buffers.
/// Shapes are given as sizes; every kernel writes to an explicit output
/// (which may alias the input where noted). Accumulation is float32 unless said.
public enum Kernels {
    // MARK: Linear

    /// y[rows×outDim] = x[rows×inDim] · Wᵀ + b, with W stored [outDim×inDim] (PyTorch `nn.Linear` layout).
    public static func linear(
        _ x: UnsafePointer<Float>, rows: Int, inDim: Int,
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outDim: Int,
        into y: UnsafeMutablePointer<Float>
    ) {
        if rows == 1 {
            BLAS.gemv(m: outDim, n: inDim, a: weight, lda: inDim, x: x, y: y)
        } else {
            BLAS.gemm(transB: true, m: rows, n: outDim, k: inDim, a: x, lda: inDim, b: weight, ldb: inDim, c: y, ldc: outDim)
        }
        if let bias { addBias(bias, to: y, rows: rows, outDim: outDim) }
    }

    /// y[r, j] += bias[j] for every row, the rows split over the cores.
    public static func addBias(_ bias: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, rows: Int, outDim: Int) {
        Parallel.forEachChunk(rows, grain: max(1, 16_384 / max(outDim, 1))) { range in
            for r in range {
                let yr = y + r * outDim
                for j in 0..<outDim { yr[j] += bias[j] }
            }
        }
    }

    // MARK: Norms

    /// LayerNorm over the last dimension: (x − mean) / sqrt(var + eps) · γ + β.
    /// Mean and variance accumulate in Double: rows of 1024+ floats lose digits in float32.
    /// `out` may alias `x`.
    public static func layerNorm(
        _ x: UnsafePointer<Float>, rows: Int, dim: Int,
        gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>?, eps: Float,
        into out: UnsafeMutablePointer<Float>
    ) {
        Parallel.forEachChunk(rows, grain: max(1, 8192 / max(dim, 1))) { range in
            for r in range {
                let xr = x + r * dim, o = out + r * dim
                var sum = 0.0
                for j in 0..<dim { sum += Double(xr[j]) }
                let mean = sum / Double(dim)
                var sq = 0.0
                for j in 0..<dim { let d = Double(xr[j]) - mean; sq += d * d }
                let inv = Float(1.0 / (sq / Double(dim) + Double(eps)).squareRoot())
                let m = Float(mean)
                if let beta {
                    for j in 0..<dim { o[j] = (xr[j] - m) * inv * gamma[j] + beta[j] }
                } else {
                    for j in 0..<dim { o[j] = (xr[j] - m) * inv * gamma[j] }
                }
            }
        }
    }

    /// RMSNorm as Llama defines it: x / sqrt(mean(x²) + eps) · γ. `out` may alias `x`.
    public static func rmsNorm(
        _ x: UnsafePointer<Float>, rows: Int, dim: Int,
        gamma: UnsafePointer<Float>, eps: Float,
        into out: UnsafeMutablePointer<Float>
    ) {
        Parallel.forEachChunk(rows, grain: max(1, 8192 / max(dim, 1))) { range in
            for r in range {
                let xr = x + r * dim, o = out + r * dim
                var sq = 0.0
                for j in 0..<dim { sq += Double(xr[j]) * Double(xr[j]) }
                let inv = Float(1.0 / (sq / Double(dim) + Double(eps)).squareRoot())
                for j in 0..<dim { o[j] = gamma[j] * (xr[j] * inv) }
            }
        }
    }

    // MARK: Activations

    /// Applies `activation` in place to `count` floats.
    public static func activate(_ activation: Activation, _ x: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forEachChunk(count, grain: 32_768) { range in
            switch activation {
            case .gelu:
                for i in range { let v = x[i]; x[i] = 0.5 * v * (1 + erff(v * 0.70710678118654752)) }
            case .geluTanh:
                for i in range {
                    let v = x[i]
                    x[i] = 0.5 * v * (1 + tanhf(0.79788456080286536 * (v + 0.044715 * v * v * v)))
                }
            case .quickGelu:
                fovea_swish(x + range.lowerBound, nil, Int32(range.count), 1.702, -1)
            case .silu:
                fovea_swish(x + range.lowerBound, nil, Int32(range.count), 1, -1)
            case .relu:
                for i in range { x[i] = max(x[i], 0) }
            }
        }
    }

    /// SwiGLU's gate: gate[i] = silu(gate[i]) · up[i].
    public static func siluMul(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
        Parallel.forEachChunk(count, grain: 32_768) { range in
            fovea_swish(gate + range.lowerBound, up + range.lowerBound, Int32(range.count), 1, -1)
        }
    }

    /// y[i] += x[i].
    public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forEachChunk(count, grain: 65_536) { range in
            for i in range { y[i] += x[i] }
        }
    }

    // MARK: Softmax

    /// Softmax of one row in place. The max is subtracted first so exp never overflows;
    /// the sum accumulates in float32 (rows here are at most a few thousand keys).
    @inline(__always)
    public static func softmaxRow(_ x: UnsafeMutablePointer<Float>, count: Int) {
        // Vector exp (CQuant/vexp.c); a row of −inf, every key masked, becomes zeros, not NaN.
        fovea_softmax_row(x, Int32(count), -1)
    }

    /// Row-wise softmax of a [rows×cols] matrix in place.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        Parallel.forEachChunk(rows, grain: max(1, 8192 / max(cols, 1))) { range in
            for r in range { softmaxRow(x + r * cols, count: cols) }
        }
    }
}

/// Activation functions by their Hugging Face `hidden_act` names.
public enum Activation: String, Sendable, CaseIterable {
    case gelu                      // exact, erf form
    case geluTanh = "gelu_pytorch_tanh"
    case quickGelu = "quick_gelu"
    case silu
    case relu

    /// Accepts the spellings configs use (`gelu_new` and `gelu_fast` are the tanh form; `swish` is SiLU).
    public init?(huggingFace name: String) {
        switch name {
        case "gelu": self = .gelu
        case "gelu_pytorch_tanh", "gelu_new", "gelu_fast", "gelu_tanh": self = .geluTanh
        case "quick_gelu": self = .quickGelu
        case "silu", "swish": self = .silu
        case "relu": self = .relu
        default: return nil
        }
    }
}
