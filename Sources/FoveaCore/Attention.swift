import Foundation
/// Which keys each query may see.
public enum AttentionMask: Sendable, Equatable {
    /// Every query sees every key (vision encoders).
    case bidirectional
    /// Query i sits at key index `queryOffset + i` and sees keys 0…queryOffset+i;
    /// with `window`, only the last `window` of those (Mistral's sliding window) — counted in
    /// positions when the kernel is given them, in rows otherwise.
    case causal(queryOffset: Int, window: Int? = nil)
}

/// Sizes and strides of one attention call. Q, K, V and the output are row-major
/// [rows, heads·headDim]-style buffers; strides are in floats between consecutive rows,
/// so a head is the column block [h·headDim, (h+1)·headDim) of each row.
public struct AttentionGeometry: Sendable {
    public var queries: Int
    public var keys: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var queryStride: Int
    public var keyStride: Int
    public var valueStride: Int
    public var outputStride: Int

    public init(queries: Int, keys: Int, heads: Int, kvHeads: Int, headDim: Int,
                queryStride: Int? = nil, keyStride: Int? = nil, valueStride: Int? = nil, outputStride: Int? = nil) {
        precondition(heads % kvHeads == 0, "heads (\(heads)) must be a multiple of kvHeads (\(kvHeads))")
        self.queries = queries
        self.keys = keys
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.queryStride = queryStride ?? heads * headDim
        self.keyStride = keyStride ?? kvHeads * headDim
        self.valueStride = valueStride ?? kvHeads * headDim
        self.outputStride = outputStride ?? heads * headDim
    }
}

public struct AttentionRowOutOfRange: Error, LocalizedError, Equatable {
    public let row: Int
    public let queries: Int
    public init(row: Int, queries: Int) { self.row = row; self.queries = queries }
    public var errorDescription: String? { "attention row \(row) was requested from \(queries) query rows" }
}

/// What a caller wants back besides the attention output. Methods read these
/// (HiRED: the CLS row; A-VL, FastV: the last row; H2O: column sums).
public struct AttentionRequest: Sendable, Equatable {
    /// Query rows whose probabilities to hand back.
    public var rows: [Int]
    /// Whether to hand back, per head, the sum over all queries of each key's probability.
    public var columnSums: Bool

    public init(rows: [Int] = [], columnSums: Bool = false) {
        self.rows = rows
        self.columnSums = columnSums
    }

    public static let none = AttentionRequest()
    public var isEmpty: Bool { rows.isEmpty && !columnSums }
}

public struct AttentionReadout: Sendable {
    /// [requested row, head, key] probabilities; masked keys read 0.
    public var rowProbabilities: [Float]
    /// [head, key]: Σ over queries of P[query, key]; empty unless requested.
    public var columnSums: [Float]
    public let heads: Int
    public let keys: Int

    /// Probabilities of the `n`-th requested row, head `h`.
    public func row(_ n: Int, head h: Int) -> ArraySlice<Float> {
        let start = (n * heads + h) * keys
        return rowProbabilities[start..<(start + keys)]
    }

    /// Head-mean probabilities of the `n`-th requested row.
    public func headMean(row n: Int) -> [Float] {
        var out = [Float](repeating: 0, count: keys)
        for h in 0..<heads {
            let base = (n * heads + h) * keys
            for j in 0..<keys { out[j] += rowProbabilities[base + j] }
        }
        let inv = 1 / Float(heads)
        for j in 0..<keys { out[j] *= inv }
        return out
    }
}

extension Kernels {
    /// Scaled dot-product attention, multi-head or grouped-query (query head h reads
    /// KV head h / (heads / kvHeads)).
    ///
    /// Queries are processed in blocks of `blockRows`: for each head and block, the score
    /// block Q·Kᵀ is one BLAS product into a scratch of blockRows × keys floats, softmaxed
    /// in place and multiplied by V. The full [queries × keys] matrix never exists; the
    /// requested rows and column sums are read off each block as it passes.
    /// Under a causal mask a block only multiplies the keys its last row can see.
    /// Throws `AttentionRowOutOfRange` when a requested row is not a query row: handing back zeros
    /// for it would let a method rank tokens on nothing.
    /// With OpenBLAS on one thread (the bf16 products' setting) heads run in parallel instead of
    /// each block's softmax: the same arithmetic per head, so the same results.
    @discardableResult
    public static func attention(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        output: UnsafeMutablePointer<Float>,
        geometry g: AttentionGeometry, mask: AttentionMask, scale: Float,
        request: AttentionRequest = .none,
        blockRows: Int = 128,
        scratch reusable: ScratchProvider? = nil,
        positions: (queries: UnsafePointer<Int32>, keys: UnsafePointer<Int32>)? = nil,
        splitHeads: Bool? = nil
    ) throws -> AttentionReadout {
        if let bad = request.rows.first(where: { $0 < 0 || $0 >= g.queries }) {
            throw AttentionRowOutOfRange(row: bad, queries: g.queries)
        }
        let hd = g.headDim
        let group = g.heads / g.kvHeads
        let block = max(1, min(blockRows, g.queries))
        var rowProbs = [Float](repeating: 0, count: request.rows.count * g.heads * g.keys)
        var colSums = [Float](repeating: 0, count: request.columnSums ? g.heads * g.keys : 0)
        let owned: UnsafeMutablePointer<Float>? = reusable == nil ? .allocate(capacity: max(1, block * g.keys)) : nil
        defer { owned?.deallocate() }
        let scratch = owned ?? reusable!.buffer(block * g.keys)

        let offset: Int, window: Int?
        switch mask {
        case .bidirectional: offset = 0; window = nil
        case .causal(let o, let w): offset = o; window = w
        }
        let causal = mask != .bidirectional
        // Heads go to different cores when OpenBLAS runs one thread (`splitHeads` forces it either way).
        // Not for decode's single query: handing its heads to threads costs more than they take.
        let headsInParallel = splitHeads ?? (BLAS.threads == 1 && Parallel.cores > 1 && g.heads > 1 && g.queries >= 8)

        rowProbs.withUnsafeMutableBufferPointer { rowOut in
            colSums.withUnsafeMutableBufferPointer { colOut in
                // One head: score blocks into `scratch`; `inner` splits each block's softmax and
                // column sums over the cores (when heads run one after another).
                func head(_ h: Int, _ scratch: UnsafeMutablePointer<Float>, inner: Bool) {
                    let kvh = h / group
                    let qh = q + h * hd, kh = k + kvh * hd, vh = v + kvh * hd, oh = output + h * hd
                    var q0 = 0
                    while q0 < g.queries {
                        let nb = min(block, g.queries - q0)
                        // Key range [k0, k1) any row of this block can see.
                        var k0 = 0, k1 = g.keys
                        if causal {
                            k1 = min(g.keys, offset + q0 + nb)
                            if let window, let positions {
                                // Rows need not be one position apart (pruned sequences): skip the keys
                                // the block's first query cannot see (positions are non-decreasing);
                                // each row's own window is applied by position below.
                                let oldest = positions.queries[q0] - Int32(window)
                                var lo = 0, hi = k1
                                while lo < hi {
                                    let mid = (lo + hi) / 2
                                    if positions.keys[mid] <= oldest { lo = mid + 1 } else { hi = mid }
                                }
                                k0 = lo
                            } else if let window {
                                k0 = max(0, offset + q0 - window + 1)
                            }
                        }
                        let span = k1 - k0
                        if span <= 0 {
                            for r in 0..<nb { (oh + (q0 + r) * g.outputStride).update(repeating: 0, count: hd) }
                            q0 += nb
                            continue
                        }
                        BLAS.gemm(transB: true, m: nb, n: span, k: hd, alpha: scale,
                                  a: qh + q0 * g.queryStride, lda: g.queryStride,
                                  b: kh + k0 * g.keyStride, ldb: g.keyStride,
                                  c: scratch, ldc: span)
                        Parallel.forEachChunk(inner ? nb : 1, grain: max(1, 4096 / span)) { chunk in
                            let rows = inner ? chunk : 0..<nb
                            for r in rows {
                                let row = scratch + r * span
                                if causal {
                                    let last = offset + q0 + r          // last visible key index
                                    let lo = last + 1 - k0
                                    if lo < span { for j in max(lo, 0)..<span { row[j] = -.infinity } }
                                    if let window, let positions {
                                        let qp = positions.queries[q0 + r]
                                        for j in 0..<span where positions.keys[k0 + j] <= qp - Int32(window) { row[j] = -.infinity }
                                    } else if let window {
                                        let first = last - window + 1 - k0
                                        if first > 0 { for j in 0..<min(first, span) { row[j] = -.infinity } }
                                    }
                                }
                                softmaxRow(row, count: span)
                            }
                        }
                        if request.columnSums {
                            let col = colOut.baseAddress! + h * g.keys + k0
                            Parallel.forEachChunk(inner ? span : 1, grain: max(1, 8192 / nb)) { chunk in
                                let cols = inner ? chunk : 0..<span
                                for r in 0..<nb {
                                    let row = scratch + r * span
                                    for j in cols { col[j] += row[j] }
                                }
                            }
                        }
                        for (n, qi) in request.rows.enumerated() where qi >= q0 && qi < q0 + nb {
                            let dst = rowOut.baseAddress! + (n * g.heads + h) * g.keys + k0
                            dst.update(from: scratch + (qi - q0) * span, count: span)
                        }
                        BLAS.gemm(m: nb, n: hd, k: span,
                                  a: scratch, lda: span,
                                  b: vh + k0 * g.valueStride, ldb: g.valueStride,
                                  c: oh + q0 * g.outputStride, ldc: g.outputStride)
                        q0 += nb
                    }
                }
                if headsInParallel {
                    // OpenBLAS runs one thread here (the big products are Fovea's own), so the
                    // heads are split over the cores, each with its own score block.
                    Parallel.forEachChunk(g.heads) { heads in
                        let own = UnsafeMutablePointer<Float>.allocate(capacity: block * g.keys)
                        defer { own.deallocate() }
                        for h in heads { head(h, own, inner: false) }
                    }
                } else {
                    for h in 0..<g.heads { head(h, scratch, inner: true) }
                }
            }
        }
        return AttentionReadout(rowProbabilities: rowProbs, columnSums: colSums, heads: g.heads, keys: g.keys)
    }
}

/// Something that lends a float buffer of at least the asked size (reused between calls).
public protocol ScratchProvider: AnyObject {
    func buffer(_ count: Int) -> UnsafeMutablePointer<Float>
}
