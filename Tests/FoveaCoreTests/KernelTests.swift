import Foundation
import Testing
import CQuant
@testable import FoveaCore
import FoveaTestSupport

// Every BLAS-backed or parallel kernel is compared with a naive twin written for clarity.
// Tolerance: NMSE ≤ 1e-10 — float32 products of length ≤ 512 carry ~1e-7 relative error per
// element, and NMSE squares it; anything structural (wrong index, missed row) lands far above.

func naiveLinear(_ x: [Float], rows: Int, inDim: Int, _ w: [Float], _ b: [Float]?, outDim: Int) -> [Float] {
    var y = [Float](repeating: 0, count: rows * outDim)
    for r in 0..<rows {
        for o in 0..<outDim {
            var s = 0.0
            for i in 0..<inDim { s += Double(x[r * inDim + i]) * Double(w[o * inDim + i]) }
            y[r * outDim + o] = Float(s) + (b?[o] ?? 0)
        }
    }
    return y
}

@Suite("Kernels")
struct KernelTests {
    @Test("linear equals the naive product, with and without bias")
    func linear() {
        var rng = TestRandom(seed: 1)
        for (rows, inDim, outDim) in [(1, 7, 5), (33, 64, 17), (128, 96, 200)] {
            let x = rng.array(rows * inDim), w = rng.array(outDim * inDim), b = rng.array(outDim)
            for bias in [nil, b] {
                var y = [Float](repeating: 0, count: rows * outDim)
                Kernels.linear(x, rows: rows, inDim: inDim, weight: w, bias: bias, outDim: outDim, into: &y)
                #expect(Compare.nmse(y, naiveLinear(x, rows: rows, inDim: inDim, w, bias, outDim: outDim)) < 1e-10)
            }
        }
    }

    @Test("layer norm and RMS norm match their definitions")
    func norms() {
        var rng = TestRandom(seed: 2)
        let rows = 9, dim = 48
        let x = rng.array(rows * dim, scale: 3).map { $0 + 5 }   // large mean: catches a missing centring
        let g = rng.array(dim), b = rng.array(dim)
        var ln = [Float](repeating: 0, count: rows * dim), rms = ln
        Kernels.layerNorm(x, rows: rows, dim: dim, gamma: g, beta: b, eps: 1e-5, into: &ln)
        Kernels.rmsNorm(x, rows: rows, dim: dim, gamma: g, eps: 1e-6, into: &rms)
        var refLN = ln, refRMS = rms
        for r in 0..<rows {
            let row = x[(r * dim)..<((r + 1) * dim)].map(Double.init)
            let mean = row.reduce(0, +) / Double(dim)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(dim)
            let ms = row.map { $0 * $0 }.reduce(0, +) / Double(dim)
            for j in 0..<dim {
                refLN[r * dim + j] = Float((row[j] - mean) / (variance + 1e-5).squareRoot()) * g[j] + b[j]
                refRMS[r * dim + j] = Float(row[j] / (ms + 1e-6).squareRoot()) * g[j]
            }
        }
        #expect(Compare.nmse(ln, refLN) < 1e-10)
        #expect(Compare.nmse(rms, refRMS) < 1e-10)
    }

    @Test("activations match reference values (PyTorch, float64)")
    func activations() {
        let x: [Float] = [-3, -1, -0.5, 0, 0.5, 1, 3]
        // torch 2.x float64: F.gelu(x), F.gelu(x, approximate='tanh'), x*torch.sigmoid(1.702*x), F.silu(x).
        let expected: [Activation: [Double]] = [
            .gelu: [-0.0040496941, -0.1586552539, -0.1542687694, 0, 0.3457312306, 0.8413447461, 2.9959503059],
            .geluTanh: [-0.0036373921, -0.1588080094, -0.1542859902, 0, 0.3457140098, 0.8411919906, 2.9963626079],
            .quickGelu: [-0.0180713097, -0.1542042341, -0.1496115634, 0, 0.3503884366, 0.8457957659, 2.9819286903],
            .silu: [-0.1422776195, -0.2689414214, -0.1887703344, 0, 0.3112296656, 0.7310585786, 2.8577223805],
        ]
        for (act, want) in expected {
            var y = x
            Kernels.activate(act, &y, count: y.count)
            for i in x.indices { #expect(abs(Double(y[i]) - want[i]) < 2e-6, "\(act) at \(x[i]): \(y[i]) vs \(want[i])") }
        }
    }

    @Test("softmax rows sum to one, survive large logits, and fully masked rows become zeros")
    func softmax() {
        var x: [Float] = [1000, 1001, 1002, -.infinity, -.infinity, -.infinity]
        Kernels.softmax(&x, rows: 2, cols: 3)
        #expect(abs(x[0] - 0.09003057) < 1e-6 && abs(x[2] - 0.66524096) < 1e-6)
        #expect(x[3...].allSatisfy { $0 == 0 })
    }

    @Test("RoPE rotates each half-pair by position × θ^(−2i/d)")
    func rope() {
        var rng = TestRandom(seed: 3)
        let heads = 3, hd = 8, rows = 4
        let x = rng.array(rows * heads * hd)
        var y = x
        let positions: [Int32] = [0, 1, 7, 300]
        RotaryEmbedding(headDim: hd, theta: 10_000).apply(&y, rows: rows, heads: heads, positions: positions)
        for r in 0..<rows {
            for h in 0..<heads {
                for i in 0..<(hd / 2) {
                    let angle = Double(positions[r]) * pow(10_000, -Double(2 * i) / Double(hd))
                    let a = Double(x[(r * heads + h) * hd + i]), b = Double(x[(r * heads + h) * hd + i + hd / 2])
                    #expect(abs(Double(y[(r * heads + h) * hd + i]) - (a * cos(angle) - b * sin(angle))) < 1e-4)
                    #expect(abs(Double(y[(r * heads + h) * hd + i + hd / 2]) - (b * cos(angle) + a * sin(angle))) < 1e-4)
                }
            }
        }
        #expect(y[0..<(heads * hd)] == x[0..<(heads * hd)])   // position 0 is the identity
    }

    @Test("patch unfolding orders rows (channel, ky, kx) like a conv weight")
    func unfold() {
        let c = 2, h = 4, w = 6, p = 2
        let img = (0..<(c * h * w)).map(Float.init)
        var out = [Float](repeating: -1, count: (h / p) * (w / p) * c * p * p)
        PatchEmbedding.unfold(img, channels: c, height: h, width: w, patch: p, into: &out)
        // Patch (row 1, col 2) = index 5: channel 0 rows 2–3, cols 4–5, then channel 1.
        let row = Array(out[(5 * 8)..<(6 * 8)])
        #expect(row == [16, 17, 22, 23, 40, 41, 46, 47])
    }

    @Test("float16 and bfloat16 decode exactly, including subnormals and infinities")
    func halfConversion() {
        #expect(Convert.halfToFloat(0x3C00) == 1)
        #expect(Convert.halfToFloat(0xC000) == -2)
        #expect(Convert.halfToFloat(0x7BFF) == 65504)
        #expect(Convert.halfToFloat(0x0001) == Float(5.9604645e-8))
        #expect(Convert.halfToFloat(0x7C00) == .infinity)
        #expect(Convert.halfToFloat(0xFE00).isNaN)
        #expect(Convert.bf16ToFloat(0x3F80) == 1)
        #expect(Convert.bf16ToFloat(0xC0A0) == -5)
    }
}

/// The vector exp behind softmax and the exp-based activations (CQuant/vexp.c): each SIMD kernel
/// this CPU runs gives the scalar twin's bits; the twin stays within 2 ulp of float64 exp over the
/// normal range, and saturates to 0 / +inf and keeps NaN beyond it.
@Suite("Vector exp")
struct VectorExpTests {
    /// Every 997th float bit pattern from −110 to 90 (about 2.2 million values), and the edges.
    static let inputs: [Float] = {
        var v: [Float] = [0, -0.0, 1, -1, .infinity, -.infinity, .nan, 88.72, 88.73, -87.33, -103.9, -104, -150, 200,
                          Float.leastNormalMagnitude, -Float.leastNormalMagnitude, 1e-30]
        for b in stride(from: UInt32(0), to: Float(110).bitPattern, by: 997) { v.append(-Float(bitPattern: b)) }
        for b in stride(from: UInt32(0), to: Float(90).bitPattern, by: 997) { v.append(Float(bitPattern: b)) }
        return v
    }()

    /// The SIMD variants this CPU runs (1 AVX2, 2 AVX-512); the others cannot be exercised here.
    static let simd: [Int32] = [1, 2].filter { fovea_exp_available($0) != 0 }

    @Test("AVX2 and AVX-512 kernels give the scalar twin's bits", arguments: simd)
    func twins(_ variant: Int32) {
        let x = Self.inputs
        var vector = [Float](repeating: 0, count: x.count), scalar = vector
        fovea_exp(x, &vector, Int32(x.count), variant)
        fovea_exp(x, &scalar, Int32(x.count), 0)
        for i in x.indices {
            #expect(vector[i].bitPattern == scalar[i].bitPattern || (vector[i].isNaN && scalar[i].isNaN), "exp(\(x[i])): \(vector[i]) vs \(scalar[i])")
        }
    }

    @Test("within 2 ulp of float64 exp; 0, +inf and NaN at the edges")
    func accuracy() {
        let x = Self.inputs
        var y = [Float](repeating: 0, count: x.count)
        fovea_exp(x, &y, Int32(x.count), 0)
        var worst: Float = 0
        for (a, e) in zip(x, y) {
            if a.isNaN { #expect(e.isNaN); continue }
            let want = Float(Foundation.exp(Double(a)))
            if want.isInfinite { #expect(e == .infinity, "exp(\(a)) = \(e)"); continue }
            if want < Float.leastNormalMagnitude {
                #expect(abs(e - want) <= Float.leastNormalMagnitude * 1e-6, "exp(\(a)) = \(e), want \(want)")
                continue
            }
            let ulps = abs(e - want) / want.ulp
            worst = max(worst, ulps)
            #expect(ulps <= 2, "exp(\(a)) = \(e), want \(want): \(ulps) ulp")
        }
        #expect(worst > 0)   // the polynomial is not libm: some inputs round differently
    }

    @Test("softmax and swish on every variant match float64 definitions", arguments: [0] + simd)
    func rows(_ variant: Int32) {
        for n in [1, 7, 16, 37, 577] {
            let x = (0..<n).map { Float(sin(Double($0) * 1.3) * 12) }
            var row = x
            fovea_softmax_row(&row, Int32(n), variant)
            let m = x.max()!, e = x.map { Foundation.exp(Double($0 - m)) }, s = e.reduce(0, +)
            // float32 sums of up to 577 terms: a few ×1e-7 relative, far below any wrong exp.
            for i in 0..<n { #expect(abs(Double(row[i]) - e[i] / s) <= 4e-6 * max(e[i] / s, 1e-3), "softmax n=\(n) [\(i)]") }
            var gate = x
            let up = x.map { $0 * 0.5 + 1 }
            fovea_swish(&gate, up, Int32(n), 1.702, variant)
            for i in 0..<n {
                let v = Double(x[i]), want = v / (1 + Foundation.exp(-1.702 * v)) * Double(up[i])
                // β·v is rounded to float first, which moves exp by up to |β·v| half-ulps.
                #expect(abs(Double(gate[i]) - want) <= (4e-7 + abs(1.702 * v) * 1.2e-7) * abs(want) + 1e-30, "swish n=\(n) [\(i)]")
            }
        }
        var masked: [Float] = [-.infinity, -.infinity, -.infinity, 2, 1, -.infinity]
        fovea_softmax_row(&masked, 3, variant)
        fovea_softmax_row(&masked[3], 3, variant)
        #expect(masked[0..<3].allSatisfy { $0 == 0 })
        #expect(masked[5] == 0 && abs(masked[3] - 0.7310586) < 1e-7)
    }
}
