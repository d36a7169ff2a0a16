import Foundation
import Testing
import FoveaCore
@testable import FoveaKV

/// Each policy on a crafted pattern: what is kept, evicted and attended is worked out by hand.
@Suite("KV policies on crafted attention")
struct PolicyTests {
    static let rope = RotaryEmbedding(headDim: 4, theta: 10000)

    /// A one-layer cache of `origins.count` rows at positions 0…; keys along the first axis.
    func cache(_ origins: [TokenOrigin], kvHeads: Int = 1, keys: [Float]? = nil) -> KVCache {
        let n = origins.count, hd = 4
        let c = KVCache(layers: 1, kvHeads: kvHeads, headDim: hd, capacity: 64, pool: KVBlockPool(rowWidth: hd, rowsPerBlock: 4))
        var k = [Float](repeating: 0, count: n * kvHeads * hd)
        for r in 0..<n { for g in 0..<kvHeads { k[(r * kvHeads + g) * hd] = keys?[r] ?? 0 } }
        let pos = (0..<Int32(n)).map { $0 }
        _ = c.reserve(positions: pos)
        c.promptLength = n
        c.layers[0].append(keys: k, values: k, rows: n, positions: pos, origins: origins[...])
        return c
    }

    func view(_ c: KVCache, _ phase: KVPhase, lastRow: [[Float]]? = nil, window: [[Float]]? = nil, group: Int = 1) -> KVLayerView {
        KVLayerView(layer: 0, phase: phase, cache: c.layers[0], group: group, promptLength: c.promptLength, lastRow: lastRow, window: window)
    }

    @Test("H2O: per KV head, recent window + heavy hitters by accumulated attention, prefill and decode")
    func h2o() {
        let c = cache(Array(repeating: .textAfter, count: 20), kvHeads: 2)
        let lc = c.layers[0]
        lc.trackScores()
        var s0 = [Float](repeating: 0, count: 20), s1 = s0
        (s0[3], s0[7], s0[11], s0[15]) = (5, 4, 3, 2)
        (s1[0], s1[1], s1[2], s1[4]) = (5, 4, 3, 2)
        lc.heads[0].addScores(s0, from: 0)
        lc.heads[1].addScores(s1, from: 0)
        let policy = H2O(H2O.Config(heavy: .rows(4), recent: .rows(4)))
        let d = policy.decide(view(c, .prefill))
        #expect(d.keep[0] == [3, 7, 11, 15, 16, 17, 18, 19])
        #expect(d.keep[1] == [0, 1, 2, 4, 16, 17, 18, 19])
        lc.apply(d, rope: Self.rope)
        #expect(lc.heads[0].positions == [3, 7, 11, 15, 16, 17, 18, 19] && lc.heads[1].positions == [0, 1, 2, 4, 16, 17, 18, 19])
        // Decode step 1: the query points along the first axis; head 0's row 3 (position 15) has a huge key, so it takes
        // nearly all the attention and its score rises from 2 to ~3, above position 16's ~0.
        let k = [Float](repeating: 0, count: 8)
        lc.append(keys: k, values: k, rows: 1, positions: [20], origins: [.textAfter])
        UnsafeMutableRawPointer(mutating: lc.heads[0].key(3)).storeBytes(of: Float(50), as: Float.self)
        let q: [Float] = [1, 0, 0, 0, 1, 0, 0, 0]
        var out = [Float](repeating: 0, count: 8), scratch = [Float](repeating: 0, count: 2 * 9)
        Kernels.decodeAttention(q: q, layer: lc, heads: 2, output: &out, scale: 1, queryPosition: 20, window: nil, scratch: &scratch, accumulate: true)
        #expect(lc.heads[0].scores[3] > 2.99 && lc.heads[0].scores[4] < 0.01)
        let d1 = policy.decide(view(c, .decode(step: 1)))
        #expect(d1.keep[0] == [0, 1, 2, 3, 5, 6, 7, 8])          // position 16 (row 4) evicted
        lc.apply(d1, rope: Self.rope)
        #expect(lc.heads[0].positions == [3, 7, 11, 15, 17, 18, 19, 20])
    }

    @Test("StreamingLLM: sinks + window; positions re-assigned with keys re-rotated, or kept")
    func streaming() {
        let hd = 4, n = 10
        let raw = randomRows(n * hd, seed: 21)
        let c = KVCache(layers: 1, kvHeads: 1, headDim: hd, capacity: 32)
        var rotated = raw
        let pos = (0..<Int32(n)).map { $0 }
        Self.rope.apply(&rotated, rows: n, heads: 1, positions: pos)
        _ = c.reserve(positions: pos)
        c.promptLength = n
        c.layers[0].append(keys: rotated, values: raw, rows: n, positions: pos, origins: Array(repeating: .textAfter, count: n)[...])
        let d = StreamingLLM(StreamingLLM.Config(sink: 2, window: .rows(3))).decide(view(c, .prefill))
        #expect(d.keep[0] == [0, 1, 7, 8, 9] && d.positions == [0, 1, 2, 3, 4])
        c.layers[0].apply(d, rope: Self.rope)
        c.positionsReassigned()
        #expect(c.nextPosition == 5 && c.layers[0].positions == [0, 1, 2, 3, 4])
        // Row 2 held position 7's key; it must now be the raw key rotated at 2.
        var want = Array(raw[(7 * hd)..<(8 * hd)])
        var two: Int32 = 2
        Self.rope.apply(&want, rows: 1, heads: 1, positions: &two)
        var got = [Float](repeating: 0, count: hd)
        KVStorageType.f32.decode(c.layers[0].heads[0].key(2), count: hd, into: &got)
        for i in 0..<hd { #expect(abs(got[i] - want[i]) <= 1e-5) }
        let orig = StreamingLLM(StreamingLLM.Config(sink: 2, window: .rows(3), positions: .orig)).decide(view(cache(Array(repeating: .textAfter, count: 10)), .prefill))
        #expect(orig.keep[0] == [0, 1, 7, 8, 9] && orig.positions == nil)
    }

    @Test("SnapKV: window sums pooled, top (cap − w) of the prompt plus the window; decode keeps all")
    func snapkv() {
        let c = cache(Array(repeating: .textAfter, count: 12))
        let sums: [[Float]] = [[0, 0, 9, 0, 0, 0, 0, 1, 0, 5, 5, 5]]
        let p = SnapKV(SnapKV.Config(window: 3, kernel: 3, pool: .max, capacity: .rows(6)))
        // max-pool (k = 3) over the 9 prompt rows: [0, 9, 9, 9, 0, 0, 1, 1, 1] → rows 1, 2, 3; plus the window 9, 10, 11.
        #expect(p.decide(view(c, .prefill, window: sums)).keep[0] == [1, 2, 3, 9, 10, 11])
        let avg = SnapKV(SnapKV.Config(window: 3, kernel: 3, pool: .avg, capacity: .rows(5)))
        // avg-pool: [0, 3, 3, 3, 0, 1/3, 1/3, 1/3, 1/3] → rows 1, 2.
        #expect(avg.decide(view(c, .prefill, window: sums)).keep[0] == [1, 2, 9, 10, 11])
        #expect(p.decide(view(c, .decode(step: 1))).keep[0] == nil)
    }

    @Test("A-VL: secondary and core at prefill, selective steps, refresh re-picks the core; text budget; k = 0 never refreshes")
    func avl() {
        let origins: [TokenOrigin] = [.prefixText, .prefixText] + Array(repeating: .image, count: 10) + Array(repeating: .textAfter, count: 3)
        let imageScores: [Float] = [1, 9, 2, 8, 3, 7, 4, 6, 5, 0]
        let last = [[0, 0] + imageScores.map { $0 / 100 } + [0, 0, 0] as [Float]]
        for refresh in [2, 0] {
            let c = cache(origins)
            let lc = c.layers[0]
            lc.trackScores()
            let p = AVL(AVL.Config(secondary: 0.5, core: 0.2, refresh: refresh, text: 1, textFloor: 0))
            let d = p.decide(view(c, .prefill, lastRow: last))
            // Secondary: image 1, 3, 5, 7, 8 → rows 3, 5, 7, 9, 10; core: image 1, 3 → positions 3, 5.
            #expect(d.keep[0] == [0, 1, 3, 5, 7, 9, 10, 12, 13, 14])
            #expect(d.attend[0] == [0, 1, 2, 3, 7, 8, 9])
            lc.apply(d, rope: Self.rope)
            // Step 1: a generated token (row 10) arrives; step 2 is a refresh step when k = 2.
            lc.append(keys: [0, 0, 0, 0], values: [0, 0, 0, 0], rows: 1, positions: [15], origins: [.textAfter])
            let d1 = p.decide(view(c, .decode(step: 1), lastRow: [Array(repeating: 0.01, count: 11)]))
            #expect(d1.keep[0] == nil)
            #expect(d1.attend[0] == (refresh == 2 ? nil : [0, 1, 2, 3, 7, 8, 9, 10]))
            lc.apply(d1, rope: Self.rope)
            lc.append(keys: [0, 0, 0, 0], values: [0, 0, 0, 0], rows: 1, positions: [16], origins: [.textAfter])
            // Step 2: positions 7 and 9 (rows 4, 5) now draw the most attention.
            var scores = [Float](repeating: 0.01, count: 12)
            (scores[4], scores[5]) = (0.5, 0.4)
            let d2 = p.decide(view(c, .decode(step: 2), lastRow: [scores]))
            // k = 2: core re-picked → positions 7, 9 (rows 4, 5). k = 0: still positions 3, 5 (rows 2, 3).
            #expect(d2.attend[0] == (refresh == 2 ? [0, 1, 4, 5, 7, 8, 9, 10, 11] : [0, 1, 2, 3, 7, 8, 9, 10, 11]))
        }
    }

    @Test("A-VL text region: budget max(round(t·L), t0), heavy share h by accumulated score, the rest recent")
    func avlText() {
        let origins: [TokenOrigin] = [.prefixText] + Array(repeating: .textAfter, count: 5)
        let c = cache(origins)
        c.layers[0].trackScores()
        c.layers[0].heads[0].addScores([0, 9, 1, 8, 2, 0], from: 0)
        // budget max(round(0.6·5), 1) = 3; heavy ⌊0.7·3⌋ = 2 (rows 1, 3 by score among rows 1–4), recent 1 (row 5).
        let d = AVL(AVL.Config(secondary: 1, core: 1, refresh: 3, text: 0.6, textFloor: 1)).decide(view(c, .prefill, lastRow: [Array(repeating: 0, count: 6)]))
        #expect(d.keep[0] == [0, 1, 3, 5])
    }

    @Test("A-VL text budget counts every text token so far (L_text), not the ones still kept")
    func avlTextGrows() {
        let origins: [TokenOrigin] = [.prefixText] + Array(repeating: .textAfter, count: 10)
        let c = cache(origins)
        let lc = c.layers[0]
        lc.trackScores()
        let p = AVL(AVL.Config(secondary: 1, core: 1, refresh: 0, text: 0.5, textFloor: 1, heavyShare: 0))
        let zero = { (n: Int) in [Array(repeating: Float(0), count: n)] }
        lc.apply(p.decide(view(c, .prefill, lastRow: zero(11))), rope: Self.rope)
        #expect(lc.heads[0].count == 1 + 5)                     // round(0.5·10) = 5 text rows kept
        for t in 1...4 {
            lc.append(keys: [0, 0, 0, 0], values: [0, 0, 0, 0], rows: 1, positions: [Int32(10 + t)], origins: [.textAfter])
            lc.apply(p.decide(view(c, .decode(step: t), lastRow: zero(lc.heads[0].count))), rope: Self.rope)
        }
        // L_text = 14 → round(0.5·14) = 7 kept; counting only the kept rows would have shrunk it to 2.
        #expect(lc.heads[0].count == 1 + 7)
    }

    @Test("spec strings: every policy through one parser, errors name what is valid")
    func specs() throws {
        #expect(try KVPlan(parsing: "avl:s=0.5,c=0.3,k=3,t=0.6").description == "avl:s=0.5,c=0.3,k=3,t=0.6")
        #expect(try KVPlan(parsing: "streaming:sink=4,window=256", storage: .q8_0).description == "streaming:sink=4,window=256 [q8_0]")
        func message(_ s: String) -> String { do { _ = try KVPlan(parsing: s); return "" } catch { return error.localizedDescription } }
        #expect(message("lru").contains("valid: full, avl, h2o, streaming, snapkv"))
        #expect(message("h2o:heavy=2.5").contains("a fraction in [0, 1]"))
        #expect(message("h2o:heavy=-1").contains("heavy=-1 is invalid") && message("h2o:recent=abc").contains("recent=abc is invalid"))
        #expect(message("h2o:heavy=x,zz=1").contains("invalid") && message("h2o:zz=1").contains("valid keys: heavy, recent"))
        #expect(message("snapkv:w=0").contains("w=0 is invalid"))
        #expect(message("streaming:pos=left").contains("one of shift, orig"))
        #expect(message("avl:zzz=1").contains("valid keys: s, c, k, t, t0, h"))
    }
}
