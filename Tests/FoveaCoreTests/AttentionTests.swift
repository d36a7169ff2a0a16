import Foundation
import Testing
@testable import FoveaCore
import FoveaTestSupport

/// The full attention matrix, computed the obvious way: P[h][i][j] and the output.
func naiveAttention(q: [Float], k: [Float], v: [Float], L: Int, S: Int, heads: Int, kvHeads: Int, hd: Int,
                    causalOffset: Int?, window: Int?, positions: [Int32]? = nil) -> (out: [Float], probs: [[[Float]]]) {
    let scale = 1 / Double(hd).squareRoot()
    var out = [Float](repeating: 0, count: L * heads * hd)
    var probs = Array(repeating: Array(repeating: [Float](repeating: 0, count: S), count: L), count: heads)
    for h in 0..<heads {
        let kvh = h / (heads / kvHeads)
        for i in 0..<L {
            var s = [Double](repeating: -.infinity, count: S)
            for j in 0..<S {
                if let off = causalOffset {
                    if j > off + i { continue }
                    if let window, let positions {
                        if positions[j] <= positions[off + i] - Int32(window) { continue }
                    } else if let window, j <= off + i - window { continue }
                }
                var dot = 0.0
                for e in 0..<hd { dot += Double(q[i * heads * hd + h * hd + e]) * Double(k[j * kvHeads * hd + kvh * hd + e]) }
                s[j] = dot * scale
            }
            let m = s.max()!
            let e = s.map { $0 == -.infinity ? 0 : exp($0 - m) }
            let z = e.reduce(0, +)
            for j in 0..<S {
                let p = e[j] / z
                probs[h][i][j] = Float(p)
                for d in 0..<hd { out[i * heads * hd + h * hd + d] += Float(p * Double(v[j * kvHeads * hd + kvh * hd + d])) }
            }
        }
    }
    return (out, probs)
}

@Suite("Attention kernel")
struct AttentionTests {
    @Test("a sliding window given positions counts positions, not rows (rows of a pruned sequence)")
    func windowByPosition() throws {
        let L = 6, heads = 2, hd = 4
        let positions: [Int32] = [0, 1, 10, 20, 21, 30]
        var rng = SplitMix64(seed: 4)
        let q = (0..<(L * heads * hd)).map { _ in Float(rng.next() % 2000) / 1000 - 1 }
        let k = (0..<(L * heads * hd)).map { _ in Float(rng.next() % 2000) / 1000 - 1 }
        let v = (0..<(L * heads * hd)).map { _ in Float(rng.next() % 2000) / 1000 - 1 }
        var out = [Float](repeating: 0, count: L * heads * hd)
        let r = try positions.withUnsafeBufferPointer { p in
            try Kernels.attention(q: q, k: k, v: v, output: &out, geometry: AttentionGeometry(queries: L, keys: L, heads: heads, kvHeads: heads, headDim: hd),
                              mask: .causal(queryOffset: 0, window: 5), scale: 1 / 2, request: AttentionRequest(rows: [4]),
                              blockRows: 2, positions: (p.baseAddress!, p.baseAddress!))
        }
        let want = naiveAttention(q: q, k: k, v: v, L: L, S: L, heads: heads, kvHeads: heads, hd: hd, causalOffset: 0, window: 5, positions: positions)
        #expect(Compare.relativeError(out, want.out) <= 1e-5)
        // Row 4 (position 21) sees positions 20 and 21 only; by rows it would also have seen 1 and 10.
        #expect(Array(r.row(0, head: 0)) .enumerated().allSatisfy { j, p in (j == 3 || j == 4) == (p > 0) })
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var L: Int, S: Int, heads: Int, kvHeads: Int, hd: Int, causal: Bool, window: Int?, block: Int
        var testDescription: String { "L\(L) S\(S) h\(heads)/\(kvHeads) d\(hd) causal=\(causal) window=\(window ?? 0) block=\(block)" }
    }

    static let cases: [Case] = [
        Case(L: 17, S: 17, heads: 4, kvHeads: 4, hd: 8, causal: false, window: nil, block: 5),    // vision: bidirectional MHA
        Case(L: 20, S: 20, heads: 6, kvHeads: 2, hd: 16, causal: true, window: nil, block: 7),    // prefill, GQA
        Case(L: 3, S: 30, heads: 4, kvHeads: 1, hd: 8, causal: true, window: nil, block: 128),    // chunk after a cached prefix
        Case(L: 1, S: 25, heads: 4, kvHeads: 2, hd: 8, causal: true, window: nil, block: 128),    // decode step
        Case(L: 24, S: 24, heads: 2, kvHeads: 2, hd: 8, causal: true, window: 5, block: 6),       // sliding window
    ]

    @Test("output, requested rows and column sums match the full-matrix reference", arguments: cases)
    func matchesReference(_ c: Case) throws {
        var rng = TestRandom(seed: UInt64(c.L * 31 + c.S))
        let q = rng.array(c.L * c.heads * c.hd, scale: 2)
        let k = rng.array(c.S * c.kvHeads * c.hd, scale: 2)
        let v = rng.array(c.S * c.kvHeads * c.hd)
        var out = [Float](repeating: 0, count: c.L * c.heads * c.hd)
        let offset = c.S - c.L
        let rows = [0, c.L - 1]
        let readout = try Kernels.attention(
            q: q, k: k, v: v, output: &out,
            geometry: AttentionGeometry(queries: c.L, keys: c.S, heads: c.heads, kvHeads: c.kvHeads, headDim: c.hd),
            mask: c.causal ? .causal(queryOffset: offset, window: c.window) : .bidirectional,
            scale: 1 / Float(c.hd).squareRoot(), request: AttentionRequest(rows: rows, columnSums: true), blockRows: c.block)
        let ref = naiveAttention(q: q, k: k, v: v, L: c.L, S: c.S, heads: c.heads, kvHeads: c.kvHeads, hd: c.hd,
                                 causalOffset: c.causal ? offset : nil, window: c.window)
        #expect(Compare.nmse(out, ref.out) < 1e-10)
        for (n, i) in rows.enumerated() {
            for h in 0..<c.heads {
                #expect(Compare.relativeError(Array(readout.row(n, head: h)), ref.probs[h][i]) < 1e-5)
            }
        }
        for h in 0..<c.heads {
            let colRef = (0..<c.S).map { j in (0..<c.L).reduce(Float(0)) { $0 + ref.probs[h][$1][j] } }
            #expect(Compare.relativeError(Array(readout.columnSums[(h * c.S)..<((h + 1) * c.S)]), colRef) < 1e-5)
            // Each query row is a distribution, so the column sums add up to the number of queries.
            #expect(abs(colRef.reduce(0, +) - Float(c.L)) < 1e-3)
        }
        // Heads split over the cores (as with OpenBLAS on one thread) and heads in turn give the
        // same bits: each head's arithmetic is unchanged.
        var outputs = [[Float]](repeating: out.map { _ in .nan }, count: 2)
        let modes = try [true, false].enumerated().map { i, heads in
            try Kernels.attention(
                q: q, k: k, v: v, output: &outputs[i],
                geometry: AttentionGeometry(queries: c.L, keys: c.S, heads: c.heads, kvHeads: c.kvHeads, headDim: c.hd),
                mask: c.causal ? .causal(queryOffset: offset, window: c.window) : .bidirectional,
                scale: 1 / Float(c.hd).squareRoot(), request: AttentionRequest(rows: rows, columnSums: true), blockRows: c.block,
                splitHeads: heads)
        }
        #expect(outputs[0] == outputs[1] && outputs[0] == out)
        #expect(modes[0].columnSums == modes[1].columnSums && modes[0].rowProbabilities == modes[1].rowProbabilities)
    }

    @Test("head-mean of a requested row averages the heads")
    func headMean() {
        let r = AttentionReadout(rowProbabilities: [0.2, 0.8, 0.6, 0.4], columnSums: [], heads: 2, keys: 2)
        #expect(r.headMean(row: 0) == [0.4, 0.6])
    }
}
