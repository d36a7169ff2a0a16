import Foundation
import Testing
import FoveaCore
import FoveaTestSupport
@testable import FoveaKV

@Suite("Selective attention kernel")
struct SelectiveAttentionTests {
    /// Dense reference in Double over exactly the listed rows.
    func reference(q: [Float], keys: [[Float]], values: [[Float]], rows: [Int], hd: Int, scale: Float) -> [Float] {
        let s = rows.map { r in Double(zip(q, keys[r]).map { $0 * $1 }.reduce(0, +)) * Double(scale) }
        let m = s.max() ?? 0
        let e = s.map { exp($0 - m) }
        let z = e.reduce(0, +)
        var out = [Double](repeating: 0, count: hd)
        for (i, r) in rows.enumerated() { for j in 0..<hd { out[j] += e[i] / z * Double(values[r][j]) } }
        return out.map(Float.init)
    }

    @Test("equals dense attention over the gathered rows (1e-6), random index sets, MHA, GQA and MQA", arguments: [(4, 4), (8, 2), (6, 1)])
    func dense(heads: Int, kvHeads: Int) {
        let hd = 16, n = 50, group = heads / kvHeads
        let pool = KVBlockPool(rowWidth: hd, rowsPerBlock: 8)
        let cache = KVCache(layers: 1, kvHeads: kvHeads, headDim: hd, capacity: 100, pool: pool)
        let lc = cache.layers[0]
        let k = randomRows(n * kvHeads * hd, seed: 3), v = randomRows(n * kvHeads * hd, seed: 4)
        lc.append(keys: k, values: v, rows: n, positions: (0..<Int32(n)).map { $0 }, origins: Array(repeating: .image, count: n)[...])
        var rng = SplitMix64(seed: 11)
        let lists: [[Int]?] = (0..<kvHeads).map { g in g == 0 && kvHeads > 1 ? nil : (0..<n).filter { _ in rng.next() % 3 == 0 } }
        lc.attend = lists
        lc.attendBase = Array(repeating: n - 5, count: kvHeads)      // the last 5 rows came after the lists: always attended
        let q = randomRows(heads * hd, seed: 7)
        var out = [Float](repeating: 0, count: heads * hd)
        var scratch = [Float](repeating: 0, count: heads * n)
        Kernels.decodeAttention(q: q, layer: lc, heads: heads, output: &out, scale: 0.25, queryPosition: Int32(n), window: nil, scratch: &scratch)
        for h in 0..<heads {
            let g = h / group
            let keys = (0..<n).map { r in Array(k[(r * kvHeads + g) * hd..<(r * kvHeads + g + 1) * hd]) }
            let values = (0..<n).map { r in Array(v[(r * kvHeads + g) * hd..<(r * kvHeads + g + 1) * hd]) }
            let rows = lists[g].map { Array(Set($0 + Array((n - 5)..<n))).sorted() } ?? Array(0..<n)
            let want = reference(q: Array(q[h * hd..<(h + 1) * hd]), keys: keys, values: values, rows: rows, hd: hd, scale: 0.25)
            let err = Compare.relativeError(Array(out[h * hd..<(h + 1) * hd]), want)
            #expect(err <= 1e-6, "head \(h): \(err)")
        }
    }

    @Test("the sliding window counts positions, not rows")
    func windowByPosition() {
        let hd = 4
        let cache = KVCache(layers: 1, kvHeads: 1, headDim: hd, capacity: 10)
        let lc = cache.layers[0]
        // Rows at positions 0, 10, 20, 21: a window of 5 at query position 22 sees only 20, 21.
        let k = randomRows(4 * hd, seed: 1), v = randomRows(4 * hd, seed: 2)
        lc.append(keys: k, values: v, rows: 4, positions: [0, 10, 20, 21], origins: Array(repeating: .textAfter, count: 4)[...])
        let q = randomRows(hd, seed: 3)
        var out = [Float](repeating: 0, count: hd), scratch = [Float](repeating: 0, count: 8)
        var last = [[Float]](repeating: [], count: 1)
        Kernels.decodeAttention(q: q, layer: lc, heads: 1, output: &out, scale: 1, queryPosition: 22, window: 5, scratch: &scratch, lastRow: &last)
        #expect(last[0][0] == 0 && last[0][1] == 0 && last[0][2] > 0 && last[0][3] > 0)
        #expect(abs(last[0][2] + last[0][3] - 1) < 1e-6)
    }
}
