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
    /// The one-row kernel families this CPU runs (scalar, AVX2, AVX-512 VNNI, AVX-VNNI, and the
    /// AVX-VNNI kernels over a modelled vpdpbusd wherever AVX2 is): the others cannot be exercised here.
    static let variants: [Int32] = (0...4).map(Int32.init).filter { fovea_q_variant_available($0) != 0 }

    static func matrix(_ type: QuantType, rows: Int, cols: Int, seed: UInt64) -> (QuantizedMatrix, [Float]) {
        var rng = SplitMix64(seed: seed)
        let rb = cols / type.blockValues * type.blockBytes
        var bytes = [UInt8](repeating: 0, count: rows * rb)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
        if type == .f16 || type == .bf16 {
            // f16 / bf16: every 16-bit value finite, magnitudes 2⁻⁵…2³ with random sign and mantissa.
            for i in stride(from: 0, to: bytes.count, by: 2) {
                let r = rng.next(), sign = UInt16(r & 1) << 15
                let bits = type == .f16 ? sign | UInt16(0x0A + (r >> 1) % 9) << 10 | UInt16((r >> 8) & 0x3FF)
                                        : sign | UInt16(122 + (r >> 1) % 9) << 7 | UInt16((r >> 8) & 0x7F)
                bytes[i] = UInt8(bits & 0xFF); bytes[i + 1] = UInt8(bits >> 8)
            }
        }
        // Scales: fp16 in [2⁻¹⁰, 2⁻⁵] (and a negative min for Q4_1), so values stay finite and realistic.
        for b in stride(from: 0, to: bytes.count, by: type.blockBytes) where type.hasIntegerProduct || type == .q5_0 || type == .q5_1 {
            bytes[b] = UInt8(truncatingIfNeeded: rng.next()); bytes[b + 1] = UInt8(0x14 + rng.next() % 6)
            if type == .q4_1 || type == .q5_1 { bytes[b + 2] = UInt8(truncatingIfNeeded: rng.next()); bytes[b + 3] = UInt8(0x94 + rng.next() % 6) }
        }
        // k-quant super-scales (Q4_K: d and dmin first; Q6_K: d last) as fp16 in [2⁻¹⁰, 2⁻⁵]; the
        // 6- and 8-bit sub-block scales stay random, every bit pattern being valid.
        for b in stride(from: 0, to: bytes.count, by: type.blockBytes) where type == .q4_k || type == .q6_k {
            for at in type == .q4_k ? [0, 2] : [208] {
                bytes[b + at] = UInt8(truncatingIfNeeded: rng.next()); bytes[b + at + 1] = UInt8(0x14 + rng.next() % 6)
            }
        }
        let q = bytes.withUnsafeBytes { QuantizedMatrix(type: type, rows: rows, cols: cols, copying: $0.baseAddress!, order: Array(0..<rows)) }
        var dense = [Float](repeating: 0, count: rows * cols)
        dense.withUnsafeMutableBufferPointer { d in for r in 0..<rows { q.dequantize(row: r, into: d.baseAddress! + r * cols) } }
        return (q, dense)
    }

    /// `n` rounded up to a whole number of `type`'s blocks (256 values for the k-quants).
    static func width(_ n: Int, _ type: QuantType) -> Int { (n + type.blockValues - 1) / type.blockValues * type.blockValues }

    static func activations(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { i in Float(Int(rng.next() % 2001) - 1000) / 500 * (i % 97 == 0 ? 20 : 1) }   // a few outliers, as LLMs have
    }

    static func reference(_ dense: [Float], _ x: [Float], rows: Int, cols: Int) -> [Float] {
        (0..<rows).map { r in Float((0..<cols).reduce(0.0) { $0 + Double(dense[r * cols + $1]) * Double(x[$1]) }) }
    }

    @Test("a GGUF tensor read whole (chunked across threads) equals the stored matrix row by row", arguments: QuantType.allCases)
    func dequantize(_ type: QuantType) {
        let cols = Self.width(64, type)
        let (q, dense) = Self.matrix(type, rows: 3, cols: cols, seed: 1)
        let ggml: GGUFFile.TensorType = [.q8_0: .q8_0, .q4_0: .q4_0, .q4_1: .q4_1, .f16: .f16, .bf16: .bf16, .q4_k: .q4_k, .q6_k: .q6_k, .q5_0: .q5_0, .q5_1: .q5_1][type]!
        #expect(ggml.storedType == type)
        var out = [Float](repeating: 0, count: 3 * cols)
        GGUFDequantize.toFloat(q.data, type: ggml, count: 3 * cols, into: &out)
        #expect(out == dense)
    }

    @Test("float activations: every variant equals float64 arithmetic on the dequantised weights", arguments: QuantType.allCases)
    func floatActivations(_ type: QuantType) {
        let (rows, cols) = (67, Self.width(576, type))
        let (q, dense) = Self.matrix(type, rows: rows, cols: cols, seed: 2)
        let x = Self.activations(cols, seed: 3)
        let want = Self.reference(dense, x, rows: rows, cols: cols)
        for variant in Self.variants {
            var y = [Float](repeating: 0, count: rows)
            q.gemv(x, into: &y, activations: .float, variant: variant)
            #expect(Compare.relativeError(y, want) < 1e-5, "\(type) variant \(variant)")
        }
    }

    @Test("rows wider than 16,384 values (Q4_1's and Q4_K's block sums leave the stack) still match float64",
          arguments: [QuantType.q4_1, .q4_k])
    func wideRows(_ type: QuantType) {
        let (rows, cols) = (3, 256 * 65)
        let (q, dense) = Self.matrix(type, rows: rows, cols: cols, seed: 8)
        let x = Self.activations(cols, seed: 9)
        for variant in Self.variants {
            var y = [Float](repeating: 0, count: rows)
            q.gemv(x, into: &y, activations: .float, variant: variant)
            #expect(Compare.relativeError(y, Self.reference(dense, x, rows: rows, cols: cols)) < 1e-5, "\(type) variant \(variant)")
        }
    }

    /// The dequantiser itself against values worked by hand from ggml's layout: a Q4_K super-block
    /// whose sub-block j has scale 7j+14 and min 60−5j (6-bit fields packed as get_scale_min_k4
    /// reads them), and a Q6_K one whose 16-value group g has scale g−8.
    @Test("k-quant layouts: scales, mins and the 6-bit split decode as ggml's get_scale_min_k4 and dequantize_row_q6_K")
    func kQuantLayout() {
        // Q4_K: d = 1 (0x3C00), dmin = 0.5 (0x3800); scales and mins above 15 use their top two bits.
        var q4k = [UInt8](repeating: 0, count: 144)
        q4k[0] = 0x00; q4k[1] = 0x3C; q4k[2] = 0x00; q4k[3] = 0x38
        let sc = (0..<8).map { UInt8(7 * $0 + 14) }, mn = (0..<8).map { UInt8(60 - 5 * $0) }
        for j in 0..<4 {
            q4k[4 + j] = sc[j] | (sc[j + 4] >> 4) << 6
            q4k[8 + j] = mn[j] | (mn[j + 4] >> 4) << 6
            q4k[12 + j] = (sc[j + 4] & 0xF) | (mn[j + 4] & 0xF) << 4
        }
        for i in 0..<128 { q4k[16 + i] = UInt8(i % 16) | UInt8(15 - i % 16) << 4 }
        var out = [Float](repeating: 0, count: 256)
        QuantType.q4_k.dequantize(q4k, count: 256, into: &out)
        for v in 0..<256 {
            let chunk = v / 64, sub = v / 32, l = v % 32, byte = UInt8((32 * chunk + l) % 16)
            let nibble = sub % 2 == 0 ? byte : 15 - byte
            #expect(out[v] == Float(sc[sub]) * Float(nibble) - 0.5 * Float(mn[sub]), "Q4_K value \(v)")
        }
        // Q6_K: d = 0.25 (0x3400); q = (v % 64) so every 6-bit code appears; group scales g − 8.
        var q6k = [UInt8](repeating: 0, count: 210)
        q6k[208] = 0x00; q6k[209] = 0x34
        for g in 0..<16 { q6k[192 + g] = UInt8(bitPattern: Int8(g - 8)) }
        func code(_ v: Int) -> UInt8 { UInt8(v % 64) }
        for h in 0..<2 {
            for l in 0..<32 {
                let base = 128 * h, (c1, c2, c3, c4) = (code(base + l), code(base + l + 32), code(base + l + 64), code(base + l + 96))
                q6k[64 * h + l] = (c1 & 0xF) | (c3 & 0xF) << 4
                q6k[64 * h + l + 32] = (c2 & 0xF) | (c4 & 0xF) << 4
                q6k[128 + 32 * h + l] = (c1 >> 4) | (c2 >> 4) << 2 | (c3 >> 4) << 4 | (c4 >> 4) << 6
            }
        }
        QuantType.q6_k.dequantize(q6k, count: 256, into: &out)
        for v in 0..<256 {
            #expect(out[v] == 0.25 * Float(v / 16 - 8) * Float(Int(code(v)) - 32), "Q6_K value \(v)")
        }
    }

    @Test("int8 activations: the vector variants equal the scalar twin; the error against float is the block rounding's",
          arguments: QuantType.allCases.filter(\.hasIntegerProduct))
    func int8Activations(_ type: QuantType) {
        let (rows, cols) = (67, Self.width(576, type))
        let (q, dense) = Self.matrix(type, rows: rows, cols: cols, seed: 4)
        let x = Self.activations(cols, seed: 5)
        var twin = [Float](repeating: 0, count: rows)
        q.gemv(x, into: &twin, activations: .int8, variant: 0)
        for variant in Self.variants where variant != 0 {
            var y = [Float](repeating: 0, count: rows)
            q.gemv(x, into: &y, activations: .int8, variant: variant)
            #expect(Compare.relativeError(y, twin) < 1e-5, "\(type) variant \(variant) (\(String(cString: fovea_q_variant_name(variant))))")
        }
        // The AVX-VNNI body runs wherever AVX2 does, through the model, so it is checked here on any x86 CI machine.
        if CPUFeatures.avx2 { #expect(Self.variants.contains(Int32(FOVEA_V_AVXVNNI_MODEL.rawValue))) }
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

    @Test("the one-row kernel family is the best the CPU's flags allow, and a variant the CPU lacks resolves to it")
    func kernelChoice() {
        let flags = CPUFeatures.flags
        let want = flags.isSuperset(of: ["avx512vl", "avx512bw", "avx512_vnni"]) && CPUFeatures.avx2 ? "AVX-512 VNNI"
            : flags.contains("avx_vnni") && CPUFeatures.avx2 && ProcessInfo.processInfo.environment["FOVEA_AVXVNNI"] != "0" ? "AVX-VNNI"
            : CPUFeatures.avx2 ? "AVX2" : "scalar"
        #expect(QuantizedMatrix.kernelName == want, "flags \(flags.sorted())")
        #expect((fovea_q_variant_available(Int32(FOVEA_V_AVXVNNI.rawValue)) != 0) == (flags.contains("avx_vnni") && CPUFeatures.avx2))
        // A kernel family this CPU lacks falls back to the best it has: the same values as variant -1.
        let (q, _) = Self.matrix(.q4_1, rows: 5, cols: 64, seed: 12)
        let x = Self.activations(64, seed: 13)
        var best = [Float](repeating: 0, count: 5)
        q.gemv(x, into: &best, activations: .int8)
        for variant: Int32 in 1...4 where fovea_q_variant_available(variant) == 0 {
            var y = [Float](repeating: .nan, count: 5)
            q.gemv(x, into: &y, activations: .int8, variant: variant)
            #expect(y == best, "variant \(variant)")
        }
    }

    @Test("several matrices in one region (Q, K, V) give each one's own product, bit for bit; mixed types are refused",
          arguments: [QuantType.q4_1, .q8_0, .q4_k])
    func fused(_ type: QuantType) {
        let cols = Self.width(576, type)
        let x = Self.activations(cols, seed: 21)
        for activations in [QuantizedMatrix.Activations.float, .int8] where activations == .float || type.hasIntegerProduct {
            // Row counts that split unevenly over the chunks, so some chunk spans two matrices.
            let ms = [67, 19, 19].enumerated().map { i, rows in
                let (q, _) = Self.matrix(type, rows: rows, cols: cols, seed: 30 + UInt64(i))
                return QuantizedMatrix(type: type, rows: rows, cols: cols, copying: q.data, order: Array(0..<rows), activations: activations)
            }
            // One buffer for the three outputs, as Q, K and V are three buffers the caller owns.
            var out = [Float](repeating: .nan, count: 67 + 19 + 19)
            let ok = out.withUnsafeMutableBufferPointer { y in
                QuantizedMatrix.gemv([(ms[0], y.baseAddress!), (ms[1], y.baseAddress! + 67), (ms[2], y.baseAddress! + 86)], x: x)
            }
            #expect(ok)
            for (m, y) in zip(ms, [Array(out[0..<67]), Array(out[67..<86]), Array(out[86...])]) {
                var alone = [Float](repeating: 0, count: m.rows)
                m.gemv(x, into: &alone)
                #expect(y == alone, "\(type) \(activations), \(m.rows) rows")
            }
        }
        let (other, _) = Self.matrix(type == .q8_0 ? .q4_0 : .q8_0, rows: 4, cols: cols, seed: 40)
        let (same, _) = Self.matrix(type, rows: 4, cols: cols, seed: 41)
        var y = [Float](repeating: .nan, count: 8)
        let mixed = y.withUnsafeMutableBufferPointer { QuantizedMatrix.gemv([(same, $0.baseAddress!), (other, $0.baseAddress! + 4)], x: x) }
        #expect(!mixed && y.allSatisfy(\.isNaN), "mixed types must be refused before anything is written")
    }

    @Test("f16 and bf16 rows take float activations even when int8 is asked for: exact against float64")
    func halfPrecisionIgnoresInt8() {
        for type in QuantType.allCases where !type.hasIntegerProduct {
            let cols = Self.width(96, type)
            let (q, dense) = Self.matrix(type, rows: 9, cols: cols, seed: 10)
            let x = Self.activations(cols, seed: 11)
            var y = [Float](repeating: 0, count: 9)
            q.gemv(x, into: &y, activations: .int8)
            #expect(Compare.relativeError(y, Self.reference(dense, x, rows: 9, cols: cols)) < 1e-5, "\(type)")
        }
    }

    @Test("many-row products through BLAS bands equal the dense product", arguments: QuantType.allCases)
    func gemm(_ type: QuantType) {
        let (rows, cols, n) = (300, Self.width(64, type), 5)
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

/// F16/BF16 weights × float32 activations, many rows: the register-blocked kernel against its
/// scalar twin (same fused multiply-adds in the same order: the same bits), on partial panels.
@Suite("F16/BF16 × float32 matrix products")
struct HalfProductTests {
    @Test("vector kernel = scalar twin", arguments: [QuantType.f16, .bf16])
    func twin(_ type: QuantType) throws {
        let (rows, cols, n) = (70, 96, 13)
        let dense = QuantizedKernelTests.activations(rows * cols, seed: 41).map { $0 * 0.05 }
        let x = QuantizedKernelTests.activations(n * cols, seed: 42)
        let q = try #require(dense.withUnsafeBufferPointer { QuantizedMatrix(type: type, rows: rows, cols: cols, quantizing: $0.baseAddress!) })
        var vector = [Float](repeating: .nan, count: n * rows), scalar = vector
        x.withUnsafeBufferPointer { xp in
            q.gemmHalf(xp.baseAddress!, rows: n, into: &vector)
            q.gemmHalf(xp.baseAddress!, rows: n, into: &scalar, variant: 0)
        }
        #expect(vector == scalar)
        #expect(!vector.contains { $0.isNaN })
    }
}

/// Weights converted at load (`--weights bf16|f16|q8_0|q4_0|q4_1`): each format's rounding stays
/// within its step, and a value that a format holds exactly comes back unchanged.
@Suite("Converting float weights into stored formats")
struct WeightConversionTests {
    static func converted(_ type: QuantType, _ x: [Float], cols: Int) -> [Float] {
        let rows = x.count / cols
        let q = x.withUnsafeBufferPointer { QuantizedMatrix(type: type, rows: rows, cols: cols, quantizing: $0.baseAddress!)! }
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

    @Test("formats read but not written (k-quants, Q5) and rows not whole blocks give no matrix, not zeros")
    func refused() {
        let x = QuantizedKernelTests.activations(512, seed: 5)
        x.withUnsafeBufferPointer { p in
            for type in [QuantType.q4_k, .q6_k, .q5_0, .q5_1] {
                #expect(!type.canQuantize)
                #expect(QuantizedMatrix(type: type, rows: 2, cols: 256, quantizing: p.baseAddress!) == nil)
            }
            #expect(QuantizedMatrix(type: .q8_0, rows: 2, cols: 48, quantizing: p.baseAddress!) == nil)
            #expect(QuantizedMatrix(type: .bf16, rows: 2, cols: 64, quantizing: p.baseAddress!) != nil)
        }
    }
}

/// The bf16 × bf16 many-row product (`--activations bf16`): the vector kernel, its scalar twin,
/// the AMX kernel (on the tiles where the CPU has them, always through the software model of the
/// tiles) and the fallback for CPUs without the instruction, against float64 sums of the same
/// bf16-rounded operands, on shapes that leave partial activation panels (12 and 32 rows),
/// and weight panels (32 rows).
@Suite("bf16 × bf16 matrix products")
struct BF16ProductTests {
    static func rounded(_ x: [Float]) -> [Float] {
        var out = x
        x.withUnsafeBufferPointer { i in out.withUnsafeMutableBufferPointer { fovea_bf16_round(i.baseAddress!, $0.baseAddress!, Int32(x.count)) } }
        return out
    }

    @Test("rounding to bf16: nearest, ties to even, exact values unchanged")
    func rounding() {
        // 1 + 2⁻⁸ lies halfway between 1 and 1 + 2⁻⁷: ties go to the even mantissa (1).
        #expect(Self.rounded([1, 1 + 1.0 / 256, 1 + 3.0 / 256, 1.5, -2.25, 0]) == [1, 1, 1 + 4.0 / 256, 1.5, -2.25, 0])
        #expect(Self.rounded([1 + 1.0 / 200]) == [1 + 1.0 / 128])
    }

    @Test("vector kernel = scalar twin = float64 sums of the rounded operands", arguments: [(1, 64), (13, 96), (25, 1024), (12, 160), (45, 96)])
    func product(_ shape: (Int, Int)) throws {
        let (n, cols) = shape
        let rows = 70   // two whole 32-row panels and a partial one
        let dense = QuantizedKernelTests.activations(rows * cols, seed: 21).map { $0 * 0.05 }
        let x = QuantizedKernelTests.activations(n * cols, seed: 22)
        let q = try #require(dense.withUnsafeBufferPointer { QuantizedMatrix(type: .bf16, rows: rows, cols: cols, quantizing: $0.baseAddress!, activations: .bf16) })
        #expect(q.usesBF16Product)
        var w = [Float](repeating: 0, count: rows * cols)
        w.withUnsafeMutableBufferPointer { o in for r in 0..<rows { q.dequantize(row: r, into: o.baseAddress! + r * cols) } }
        let xr = Self.rounded(x)
        var vector = [Float](repeating: .nan, count: n * rows), scalar = vector, dispatched = vector
        var fallback = vector, banded = vector   // CPUs without AVX-512 BF16: with and without AVX-512F
        var tiles = vector, tileModel = vector   // AMX: the tiles where present, and their software model
        x.withUnsafeBufferPointer { xp in
            q.gemmAMX(xp.baseAddress!, rows: n, into: &tiles)
            q.gemmAMX(xp.baseAddress!, rows: n, into: &tileModel, variant: 0)
            q.gemmBF16(xp.baseAddress!, rows: n, into: &vector)
            q.gemmBF16(xp.baseAddress!, rows: n, into: &scalar, variant: 0)
            q.gemm(xp.baseAddress!, rows: n, into: &dispatched)
            q.gemmRoundedBF16(xp.baseAddress!, rows: n, into: &fallback)
            q.gemmRoundedBF16(xp.baseAddress!, rows: n, into: &banded, band: 32)
        }
        for m in 0..<n {
            let want = QuantizedKernelTests.reference(w, Array(xr[m * cols..<(m + 1) * cols]), rows: rows, cols: cols)
            for r in 0..<rows {
                let scale = (0..<cols).reduce(Float(0)) { $0 + abs(w[r * cols + $1] * xr[m * cols + $1]) }
                let bound = 1e-6 * scale + 1e-30
                let i = m * rows + r
                #expect(abs(vector[i] - want[r]) <= bound, "vector [\(m), \(r)]: \(vector[i]) against \(want[r])")
                #expect(abs(scalar[i] - want[r]) <= bound, "scalar [\(m), \(r)]")
                #expect(abs(dispatched[i] - want[r]) <= bound, "gemm [\(m), \(r)]")
                #expect(abs(fallback[i] - want[r]) <= bound, "rounded operands, float kernel [\(m), \(r)]")
                #expect(abs(banded[i] - want[r]) <= bound, "rounded operands, sgemm [\(m), \(r)]")
                #expect(abs(tiles[i] - want[r]) <= bound, "AMX [\(m), \(r)]")
                #expect(abs(tileModel[i] - want[r]) <= bound, "AMX tile model [\(m), \(r)]")
            }
        }
    }
}

/// The Q8_0 × Q8_0 many-row product (`--activations int8` prefill): the VNNI kernel against its
/// scalar twin (the same integer block sums and scale products, so the same bits) and against
/// the one-row int8 product decode uses, on shapes with partial 6-row and 32-row panels.
@Suite("Q8_0 × Q8_0 matrix products")
struct Q8ProductTests {
    @Test("vector kernel = scalar twin; each row = the one-row int8 product", arguments: [(1, 64), (7, 96), (13, 1024)])
    func product(_ shape: (Int, Int)) throws {
        let (n, cols) = shape
        let rows = 70
        let dense = QuantizedKernelTests.activations(rows * cols, seed: 31).map { $0 * 0.05 }
        let x = QuantizedKernelTests.activations(n * cols, seed: 32)
        let q = try #require(dense.withUnsafeBufferPointer { QuantizedMatrix(type: .q8_0, rows: rows, cols: cols, quantizing: $0.baseAddress!, activations: .int8) })
        var vector = [Float](repeating: .nan, count: n * rows), scalar = vector, dispatched = vector
        x.withUnsafeBufferPointer { xp in
            q.gemmQ8(xp.baseAddress!, rows: n, into: &vector)
            q.gemmQ8(xp.baseAddress!, rows: n, into: &scalar, variant: 0)
            q.gemm(xp.baseAddress!, rows: n, into: &dispatched)
        }
        #expect(vector == scalar)
        if QuantizedMatrix.q8KernelAvailable { #expect(dispatched == vector) }
        var w = [Float](repeating: 0, count: rows * cols)
        w.withUnsafeMutableBufferPointer { o in for r in 0..<rows { q.dequantize(row: r, into: o.baseAddress! + r * cols) } }
        for m in 0..<n {
            var one = [Float](repeating: 0, count: rows)
            x.withUnsafeBufferPointer { q.gemv($0.baseAddress! + m * cols, into: &one, activations: .int8) }
            for r in 0..<rows {
                let scale = (0..<cols).reduce(Float(0)) { $0 + abs(w[r * cols + $1] * x[m * cols + $1]) }
                #expect(abs(vector[m * rows + r] - one[r]) <= 1e-6 * scale + 1e-30, "[\(m), \(r)]: \(vector[m * rows + r]) against \(one[r])")
            }
        }
    }
}
