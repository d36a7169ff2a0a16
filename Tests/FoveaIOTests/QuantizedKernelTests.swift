import Foundation
import Testing
import CQuant
import FoveaCore
import FoveaIO
import FoveaTestSupport

/// The block-quantised kernels against their scalar twins and against float32 arithmetic on the
/// dequantised weights. Weights are random blocks with realistic scales (fp16 d around 1e-2).
@Suite("Quantised matrix-vector kernels")
struct QuantizedKernelTests {
    static func matrix(_ type: QuantType, rows: Int, cols: Int, seed: UInt64) -> (QuantizedMatrix, [Float]) {
        var rng = SplitMix64(seed: seed)
        let rb = cols / 32 * type.blockBytes
        var bytes = [UInt8](repeating: 0, count: rows * rb)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
        if !type.hasIntegerProduct {
            // f16 / bf16: every 16-bit value finite, magnitudes 2⁻⁵…2³ with random sign and mantissa.
            for i in stride(from: 0, to: bytes.count, by: 2) {
                let r = rng.next(), sign = UInt16(r & 1) << 15
                let bits = type == .f16 ? sign | UInt16(0x0A + (r >> 1) % 9) << 10 | UInt16((r >> 8) & 0x3FF)
                                        : sign | UInt16(122 + (r >> 1) % 9) << 7 | UInt16((r >> 8) & 0x7F)
                bytes[i] = UInt8(bits & 0xFF); bytes[i + 1] = UInt8(bits >> 8)
            }
        }
        // Scales: fp16 in [2⁻¹⁰, 2⁻⁵] (and a negative min for Q4_1), so values stay finite and realistic.
        for b in stride(from: 0, to: bytes.count, by: type.blockBytes) where type.hasIntegerProduct {
            bytes[b] = UInt8(truncatingIfNeeded: rng.next()); bytes[b + 1] = UInt8(0x14 + rng.next() % 6)
            if type == .q4_1 { bytes[b + 2] = UInt8(truncatingIfNeeded: rng.next()); bytes[b + 3] = UInt8(0x94 + rng.next() % 6) }
        }
        let q = bytes.withUnsafeBytes { QuantizedMatrix(type: type, rows: rows, cols: cols, copying: $0.baseAddress!, order: Array(0..<rows)) }
        var dense = [Float](repeating: 0, count: rows * cols)
        dense.withUnsafeMutableBufferPointer { d in for r in 0..<rows { q.dequantize(row: r, into: d.baseAddress! + r * cols) } }
        return (q, dense)
    }

    static func activations(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { i in Float(Int(rng.next() % 2001) - 1000) / 500 * (i % 97 == 0 ? 20 : 1) }   // a few outliers, as LLMs have
    }

    static func reference(_ dense: [Float], _ x: [Float], rows: Int, cols: Int) -> [Float] {
        (0..<rows).map { r in Float((0..<cols).reduce(0.0) { $0 + Double(dense[r * cols + $1]) * Double(x[$1]) }) }
    }

    @Test("dequantisation equals the ggml dequantiser Fovea already checks GGUF files with", arguments: QuantType.allCases)
    func dequantize(_ type: QuantType) {
        let (q, dense) = Self.matrix(type, rows: 3, cols: 64, seed: 1)
        let ggml: GGUFFile.TensorType = [.q8_0: .q8_0, .q4_0: .q4_0, .q4_1: .q4_1, .f16: .f16, .bf16: .bf16][type]!
        var out = [Float](repeating: 0, count: 3 * 64)
        GGUFDequantize.toFloat(q.data, type: ggml, count: 3 * 64, into: &out)
        #expect(out == dense)
    }

    @Test("float activations: every variant equals float64 arithmetic on the dequantised weights", arguments: QuantType.allCases)
    func floatActivations(_ type: QuantType) {
        let (rows, cols) = (67, 576)
        let (q, dense) = Self.matrix(type, rows: rows, cols: cols, seed: 2)
        let x = Self.activations(cols, seed: 3)
        let want = Self.reference(dense, x, rows: rows, cols: cols)
        for variant: Int32 in [0, 1, 2] {
            var y = [Float](repeating: 0, count: rows)
            q.gemv(x, into: &y, activations: .float, variant: variant)
            #expect(Compare.relativeError(y, want) < 1e-5, "\(type) variant \(variant)")
        }
    }

    @Test("rows wider than 16,384 values (Q4_1's block sums leave the stack) still match float64")
    func wideRows() {
        let (rows, cols) = (3, 32 * 520)
        let (q, dense) = Self.matrix(.q4_1, rows: rows, cols: cols, seed: 8)
        let x = Self.activations(cols, seed: 9)
        var y = [Float](repeating: 0, count: rows)
        q.gemv(x, into: &y, activations: .float)
        #expect(Compare.relativeError(y, Self.reference(dense, x, rows: rows, cols: cols)) < 1e-5)
    }

    @Test("int8 activations: the vector variants equal the scalar twin; the error against float is the block rounding's",
          arguments: QuantType.allCases.filter(\.hasIntegerProduct))
    func int8Activations(_ type: QuantType) {
        let (rows, cols) = (67, 576)
        let (q, dense) = Self.matrix(type, rows: rows, cols: cols, seed: 4)
        let x = Self.activations(cols, seed: 5)
        var twin = [Float](repeating: 0, count: rows)
        q.gemv(x, into: &twin, activations: .int8, variant: 0)
        for variant: Int32 in [1, 2] {
            var y = [Float](repeating: 0, count: rows)
            q.gemv(x, into: &y, activations: .int8, variant: variant)
            #expect(Compare.relativeError(y, twin) < 1e-5, "\(type) variant \(variant) (\(String(cString: fovea_q_variant_name(variant))))")
        }
        // Each activation is off by at most half a step d_a/2 = amax/254 of its block: bound the row's error by it.
        let want = Self.reference(dense, x, rows: rows, cols: cols)
        for r in 0..<rows {
            var bound = 0.0
            for b in 0..<(cols / 32) {
                let amax = (0..<32).map { abs(Double(x[b * 32 + $0])) }.max() ?? 0
                let wsum = (0..<32).reduce(0.0) { $0 + abs(Double(dense[r * cols + b * 32 + $1])) }
                bound += wsum * amax / 254 * 1.01 + 1e-6
            }
            #expect(abs(Double(twin[r]) - Double(want[r])) <= bound, "\(type) row \(r)")
        }
    }

    @Test("f16 and bf16 rows take float activations even when int8 is asked for: exact against float64")
    func halfPrecisionIgnoresInt8() {
        for type in QuantType.allCases where !type.hasIntegerProduct {
            let (q, dense) = Self.matrix(type, rows: 9, cols: 96, seed: 10)
            let x = Self.activations(96, seed: 11)
            var y = [Float](repeating: 0, count: 9)
            q.gemv(x, into: &y, activations: .int8)
            #expect(Compare.relativeError(y, Self.reference(dense, x, rows: 9, cols: 96)) < 1e-5, "\(type)")
        }
    }

    @Test("many-row products through BLAS bands equal the dense product", arguments: QuantType.allCases)
    func gemm(_ type: QuantType) {
        let (rows, cols, n) = (300, 64, 5)
        let (q, dense) = Self.matrix(type, rows: rows, cols: cols, seed: 6)
        let x = Self.activations(n * cols, seed: 7)
        var want = [Float](repeating: 0, count: n * rows)
        Kernels.linear(x, rows: n, inDim: cols, weight: dense, bias: nil, outDim: rows, into: &want)
        for band in [nil, 256, 7] {   // one band; 300 rows as 256 + 44; many uneven bands
            var y = [Float](repeating: 0, count: n * rows)
            q.gemm(x, rows: n, into: &y, band: band)
            #expect(Compare.relativeError(y, want) < 1e-5, "\(type), band \(band.map(String.init) ?? "default")")
        }
    }
}

/// Weights converted at load (`--weights bf16|f16|q8_0|q4_0|q4_1`): each format's rounding stays
/// within its step, and a value that a format holds exactly comes back unchanged.
@Suite("Converting float weights into stored formats")
struct WeightConversionTests {
    static func converted(_ type: QuantType, _ x: [Float], cols: Int) -> [Float] {
        let rows = x.count / cols
        let q = x.withUnsafeBufferPointer { QuantizedMatrix(type: type, rows: rows, cols: cols, quantizing: $0.baseAddress!) }
        var out = [Float](repeating: 0, count: x.count)
        out.withUnsafeMutableBufferPointer { o in for r in 0..<rows { q.dequantize(row: r, into: o.baseAddress! + r * cols) } }
        return out
    }

    @Test("block formats: every value within half a quantisation step of its block", arguments: [QuantType.q8_0, .q4_0, .q4_1])
    func blocks(_ type: QuantType) {
        let cols = 128
        let x = QuantizedKernelTests.activations(4 * cols, seed: 12)
        let y = Self.converted(type, x, cols: cols)
        for b in 0..<(x.count / 32) {
            let block = Array(x[(b * 32)..<(b * 32 + 32)])
            let amax = block.map(abs).max() ?? 0, lo = block.min() ?? 0, hi = block.max() ?? 0
            // Step: Q8_0 amax/127, Q4_0 amax/8, Q4_1 (max−min)/15; plus the fp16 rounding of the scale.
            let step = type == .q8_0 ? amax / 127 : type == .q4_0 ? amax / 8 : (hi - lo) / 15
            for j in 0..<32 {
                let err = abs(y[b * 32 + j] - block[j])
                #expect(err <= step * 0.5 + step * 17 / 1024 + 1e-6 || (type == .q4_0 && err <= step * 1.01),
                        "\(type) block \(b) value \(j): error \(err), step \(step)")
            }
        }
    }

    @Test("f16 and bf16: round to nearest, exact where the format holds the value")
    func halves() {
        let exact: [Float] = (0..<64).map { Float($0 - 32) * 0.125 }
        #expect(Self.converted(.f16, exact, cols: 64) == exact)
        #expect(Self.converted(.bf16, exact, cols: 64) == exact)
        let x = QuantizedKernelTests.activations(256, seed: 13)
        for (type, rel) in [(QuantType.f16, Float(1) / 2048), (.bf16, Float(1) / 256)] {
            let y = Self.converted(type, x, cols: 128)
            for (a, b) in zip(x, y) where a != 0 { #expect(abs(a - b) <= abs(a) * rel, "\(type): \(a) → \(b)") }
        }
    }
}
