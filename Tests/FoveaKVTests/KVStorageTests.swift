import Foundation
import Testing
import FoveaCore
@testable import FoveaKV

func randomRows(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<n).map { _ in (Float(rng.next() % 20001) / 10000 - 1) * scale }
}

@Suite("KV storage: f32, f16, q8_0")
struct KVStorageTests {
    @Test("round trips within each format's rounding; dot and accumulate equal their decoded twins")
    func codecs() {
        for width in [16, 32, 64, 40] {          // 40: a short last q8_0 block
            let x = randomRows(width, seed: UInt64(width), scale: 3)
            let q = randomRows(width, seed: 99)
            for t in KVStorageType.allCases {
                var raw = [UInt8](repeating: 0, count: t.rowBytes(width))
                var back = [Float](repeating: 0, count: width)
                raw.withUnsafeMutableBytes { r in
                    t.encode(x, count: width, into: r.baseAddress!)
                    t.decode(UnsafeRawPointer(r.baseAddress!), count: width, into: &back)
                }
                let amax = x.map(abs).max()!
                for i in 0..<width {
                    // q8_0: half a quantisation step, plus up to 127 steps of the scale's own f16 rounding
                    // (d = amax/127 stored as f16: relative 2⁻¹¹); f16: 2⁻¹¹ relative.
                    let bound: Float = switch t { case .f32: 0; case .f16: abs(x[i]) * 0x1p-11; case .q8_0: amax / 127 * (0.5 + 127 * 0x1p-11) }
                    #expect(abs(back[i] - x[i]) <= bound, "\(t) width \(width) [\(i)]: \(back[i]) vs \(x[i])")
                }
                let twinDot = zip(back, q).map { $0 * $1 }.reduce(0, +)
                var acc = [Float](repeating: 1, count: width)
                let d = raw.withUnsafeBytes { r in t.dot(r.baseAddress!, q, count: width) }
                raw.withUnsafeBytes { r in t.accumulate(0.5, r.baseAddress!, into: &acc, count: width) }
                #expect(abs(d - twinDot) <= 1e-5 * max(1, abs(twinDot)), "\(t) dot")
                for i in 0..<width { #expect(abs(acc[i] - (1 + 0.5 * back[i])) <= 1e-6 * max(1, abs(acc[i]))) }
            }
        }
        #expect(KVStorageType.q8_0.rowBytes(64) == 68 && KVStorageType.f16.rowBytes(64) == 128)
    }
}

@Suite("KV block pool and paged cache")
struct KVPoolTests {
    func fill(_ cache: KVCache, rows: Int, seed: UInt64) {
        let w = cache.kvHeads * cache.headDim
        let k = randomRows(rows * w, seed: seed), v = randomRows(rows * w, seed: seed + 1)
        let pos = (0..<Int32(rows)).map { $0 + Int32(cache.nextPosition) }
        _ = cache.reserve(positions: pos)
        for l in cache.layers { l.append(keys: k, values: v, rows: rows, positions: pos, origins: Array(repeating: .textAfter, count: rows)[...]) }
    }

    @Test("eviction returns blocks: bytes allocated fall, and another sequence reuses them")
    func reuse() {
        let pool = KVBlockPool(rowWidth: 8, storage: .f32, rowsPerBlock: 16)
        let a = KVCache(layers: 2, kvHeads: 2, headDim: 8, capacity: 1000, pool: pool)
        let b = KVCache(layers: 2, kvHeads: 2, headDim: 8, capacity: 1000, pool: pool)
        fill(a, rows: 100, seed: 1)
        #expect(a.bytesAllocated == 2 * 2 * 7 * pool.blockBytes)        // ⌈100/16⌉ = 7 blocks per head
        let held = pool.bytesHeld
        // Keep 30 rows per head (different rows in each head): 2 blocks each, 5 back to the pool.
        for l in a.layers { l.heads[0].compact(keeping: Array(0..<30)); l.heads[1].compact(keeping: Array(stride(from: 0, to: 90, by: 3))) }
        #expect(a.bytesAllocated == 2 * 2 * 2 * pool.blockBytes)
        #expect(pool.freeBlocks == 20 && pool.bytesHeld == held)
        fill(b, rows: 80, seed: 5)                                     // 5 blocks per head: 20 taken from the free list
        #expect(pool.bytesHeld == held && pool.freeBlocks == 0)
        // Rows kept are the rows that were there: head 1 row 2 is the old row 6.
        let src = randomRows(100 * 16, seed: 1)
        var got = [Float](repeating: 0, count: 8)
        a.layers[0].heads[1].pool.storage.decode(a.layers[0].heads[1].key(2), count: 8, into: &got)
        #expect(got == Array(src[(6 * 16 + 8)..<(6 * 16 + 16)]))
        #expect(a.layers[0].heads[1].positions[2] == 6)
        a.reset()
        b.reset()
        #expect(pool.bytesInUse == 0)
        pool.releaseFree()
        #expect(pool.bytesHeld == 0)
    }
}
