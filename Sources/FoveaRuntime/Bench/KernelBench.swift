import Foundation
import FoveaCore
import FoveaKV
import CQuant

/// The ceilings the model figures are read against: sgemm on this CPU, converting half-precision
/// weights at load, and the selective decode-attention kernel's cost against the rows it reads.
public enum KernelBench {
    public static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// GFLOP/s of a square float32 product of side `n` (median of `runs` after one warm-up).
    public static func sgemm(n: Int = 2048, runs: Int) -> Double {
        var rng = SplitMix64(seed: 1)
        let a = Tensor(zeros: [n, n]), b = Tensor(zeros: [n, n]), c = Tensor(zeros: [n, n])
        for i in 0..<(n * n) { a.data[i] = Float(rng.next() % 1000) / 1000; b.data[i] = Float(rng.next() % 1000) / 1000 }
        BLAS.gemm(m: n, n: n, k: n, a: a.data, lda: n, b: b.data, ldb: n, c: c.data, ldc: n)
        var times: [Double] = []
        for _ in 0..<max(runs, 3) {
            let t = now()
            BLAS.gemm(m: n, n: n, k: n, a: a.data, lda: n, b: b.data, ldb: n, c: c.data, ldc: n)
            times.append(now() - t)
        }
        return 2 * pow(Double(n), 3) / median(times) / 1e9
    }

    /// GFLOP/s of the bf16 × bf16 many-row product (`--activations bf16`) on a 2048-row activation
    /// block against a 2048² bf16 matrix, packing included; nil without AVX-512 BF16.
    public static func bf16Product(n: Int = 2048, runs: Int) -> Double? {
        guard QuantizedMatrix.bf16KernelAvailable else { return nil }
        var rng = SplitMix64(seed: 2)
        let w = (0..<(n * n)).map { _ in Float(rng.next() % 1000) / 1000 - 0.5 }
        let x = Tensor(zeros: [n, n]), y = Tensor(zeros: [n, n])
        for i in 0..<(n * n) { x.data[i] = Float(rng.next() % 1000) / 1000 }
        guard let q = w.withUnsafeBufferPointer({ QuantizedMatrix(type: .bf16, rows: n, cols: n, quantizing: $0.baseAddress!, activations: .bf16) }) else { return nil }
        q.gemm(x.data, rows: n, into: y.data)
        var times: [Double] = []
        for _ in 0..<max(runs, 3) {
            let t = now()
            q.gemm(x.data, rows: n, into: y.data)
            times.append(now() - t)
        }
        return 2 * pow(Double(n), 3) / median(times) / 1e9
    }

    /// Decode's roofline: GB/s reading a 512 MB buffer over the cores, and GB/s of the one-row
    /// products decode runs (F16 weights over a 256 MB matrix; Q4_1 with int8 activations over
    /// 512 MB, and over SmolLM2's 1536 × 576 MLP matrix, which stays in cache), medians of `runs`.
    /// A token that reads B bytes of weights cannot take less than B ÷ the first figure; where
    /// the Q4_1 product runs much faster in cache than streamed, the stream bounds it, not its
    /// instructions.
    public static func memoryRead(runs: Int) -> (read: Double, f16Product: Double, q4_1Stream: Double, q4_1Cached: Double) {
        let bytes = 512 << 20, piece = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt16.self, repeating: 0x3C00, count: bytes / 2)   // 1.0 in fp16
        var sink: UInt64 = 0
        func timed(_ body: () -> Void) -> Double {
            body()
            var times: [Double] = []
            for _ in 0..<max(runs, 3) {
                let t = now()
                body()
                times.append(now() - t)
            }
            return median(times)
        }
        let read = timed {
            let sums = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: bytes / piece)
            defer { sums.deallocate() }
            Parallel.forEachChunk(bytes / piece, grain: 8, spin: true) { range in
                sums[range.lowerBound] = fovea_stream_read(buffer + range.lowerBound * piece, range.count * piece)
            }
            for s in sums { sink ^= s }
        }
        let rows = 8192, cols = 16384
        let matrix = QuantizedMatrix(type: .f16, rows: rows, cols: cols, data: buffer, owner: nil)
        let x = [Float](repeating: 0.5, count: cols)
        var y = [Float](repeating: 0, count: rows)
        let product = timed { x.withUnsafeBufferPointer { matrix.gemv($0.baseAddress!, into: &y) } }
        // Q4_1 blocks of this buffer: d = m = 1, nibbles 0 and 3: finite sums.
        let q4Rows = bytes / (cols / 32 * 20)
        let q4 = QuantizedMatrix(type: .q4_1, rows: q4Rows, cols: cols, data: buffer, owner: nil)
        var yq = [Float](repeating: 0, count: q4Rows)
        let stream = timed { x.withUnsafeBufferPointer { q4.gemv($0.baseAddress!, into: &yq, activations: .int8) } }
        let small = QuantizedMatrix(type: .q4_1, rows: 1536, cols: 576, data: buffer, owner: nil)
        let xs = [Float](repeating: 0.5, count: 576)
        let repeats = 200
        let cached = timed {
            xs.withUnsafeBufferPointer { for _ in 0..<repeats { small.gemv($0.baseAddress!, into: &yq, activations: .int8) } }
        }
        if sink == 1 && y[0] == 0 && yq[0] == 0 { print("") }   // keeps the reads observable
        return (Double(bytes) / read / 1e9, Double(rows * cols * 2) / product / 1e9,
                Double(q4.byteCount) / stream / 1e9, Double(small.byteCount * repeats) / cached / 1e9)
    }

    /// G elements/s converting bf16 to float32, what a bf16 checkpoint costs at load.
    public static func bf16Conversion() -> Double {
        let count = 128 << 20
        let half = UnsafeMutableRawPointer.allocate(byteCount: count * 2, alignment: 64)
        defer { half.deallocate() }
        half.initializeMemory(as: UInt16.self, repeating: 0x3F80, count: count)
        let converted = Tensor(zeros: [count])
        var times: [Double] = []
        for _ in 0..<3 {
            let t = now()
            Convert.toFloat(half, dtype: .bf16, count: count, into: converted.data)
            times.append(now() - t)
        }
        return Double(count) / median(times) / 1e9
    }

    /// One decode query on TinyLlama's attention shapes (32 heads, 4 KV heads, head dim 64) over
    /// `rows` cached rows, attending 100%, 75%, 50%, 30% and 10% of them: (share, rows, seconds).
    public static func selective(rows n: Int, runs: Int) -> [(share: Double, rows: Int, seconds: Double)] {
        let heads = 32, kvHeads = 4, hd = 64
        let cache = KVCache(layers: 1, kvHeads: kvHeads, headDim: hd, capacity: n)
        var rng = SplitMix64(seed: 5)
        let k = (0..<(n * kvHeads * hd)).map { _ in Float(rng.next() % 2000) / 1000 - 1 }
        cache.layers[0].append(keys: k, values: k, rows: n, positions: (0..<Int32(n)).map { $0 }, origins: Array(repeating: .image, count: n)[...])
        let q = (0..<(heads * hd)).map { _ in Float(rng.next() % 2000) / 1000 - 1 }
        var out = [Float](repeating: 0, count: heads * hd), scratch = [Float](repeating: 0, count: heads * n)
        var results: [(Double, Int, Double)] = []
        for share in [1.0, 0.75, 0.5, 0.3, 0.1] {
            let m = Int(Double(n) * share)
            let list = (0..<m).map { $0 * n / max(m, 1) }
            cache.layers[0].apply(KVLayerDecision(keep: Array(repeating: nil, count: kvHeads), attend: Array(repeating: share == 1 ? nil : list, count: kvHeads)),
                                  rope: RotaryEmbedding(headDim: hd, theta: 10000))
            var times: [Double] = []
            for _ in 0..<(runs * 20 + 5) {
                let t = now()
                Kernels.decodeAttention(q: q, layer: cache.layers[0], heads: heads, output: &out, scale: 0.125, queryPosition: Int32(n),
                                        window: nil, scratch: &scratch)
                times.append(now() - t)
            }
            results.append((share, m, median(Array(times.dropFirst(5)))))
        }
        return results
    }
}
