import FoveaCore
import FoveaKV

/// What one layer's attention hands on: the readout an in-LLM hook asked for, and the view a
/// KV policy decides on.
struct LayerAttention {
    var readout: AttentionReadout?
    var policyView: KVLayerView?
}

extension LlamaDecoder {
    /// Appends this forward's rows to the layer's cache and attends.
    ///
    /// Decode (one row) runs the paged selective kernel over the rows the policy left to
    /// attend. A prefill on an empty cache attends over the contiguous rows just projected, in
    /// one blocked call that also reads off what the hook and the policy asked for. A prefill
    /// on a cache that already holds rows (rare: a continued prompt) gathers each KV head's rows
    /// and attends per head; it hands the policy no readout.
    func attend(layer li: Int, cache lc: LayerCache, q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>,
                v: UnsafeMutablePointer<Float>, rows L: Int, request: AttentionRequest, policy: (any KVCachePolicy)?,
                phase: KVPhase, promptLength: Int, output attn: UnsafeMutablePointer<Float>,
                workspace ws: DecoderWorkspace) throws -> LayerAttention {
        let c = config, hd = c.headDim, group = c.heads / c.kvHeads, qd = c.heads * hd
        let scale = 1 / Float(hd).squareRoot()
        let needs = policy?.needs ?? KVPolicyNeeds()
        if needs.accumulate { lc.trackScores() }
        let before = lc.count
        ws.positions.withUnsafeBufferPointer { pos in
            lc.append(keys: k, values: v, rows: L, positions: pos.baseAddress!, origins: ws.origins[...])
        }
        func view(lastRow: [[Float]]?, window: [[Float]]?) -> KVLayerView? {
            policy == nil ? nil : KVLayerView(layer: li, phase: phase, cache: lc, group: group, promptLength: promptLength,
                                              lastRow: lastRow, window: window)
        }

        if L == 1 {
            var last = [[Float]](repeating: [], count: needs.lastRow ? c.kvHeads : 0)
            let scratch = ws.scores.buffer(c.heads * lc.count)
            last.withUnsafeMutableBufferPointer { lb in
                Kernels.decodeAttention(q: q, layer: lc, heads: c.heads, output: attn, scale: scale, queryPosition: ws.positions[0],
                                        window: c.slidingWindow, scratch: scratch, lastRow: needs.lastRow ? lb.baseAddress : nil,
                                        accumulate: needs.accumulate)
            }
            return LayerAttention(readout: nil, policyView: view(lastRow: needs.lastRow ? last : nil, window: nil))
        }

        guard before == 0 else {
            for g in 0..<c.kvHeads {
                let n = lc.heads[g].count
                let kv = ws.gathered.buffer(2 * n * hd)
                lc.gather(head: g, values: false, into: kv)
                lc.gather(head: g, values: true, into: kv + n * hd)
                let keyPositions = lc.heads[g].positions
                try ws.positions.withUnsafeBufferPointer { qp in
                    try keyPositions.withUnsafeBufferPointer { kp in
                        _ = try Kernels.attention(
                            q: q + g * group * hd, k: kv, v: kv + n * hd, output: attn + g * group * hd,
                            geometry: AttentionGeometry(queries: L, keys: n, heads: group, kvHeads: 1, headDim: hd,
                                                        queryStride: qd, keyStride: hd, valueStride: hd, outputStride: qd),
                            mask: .causal(queryOffset: n - L, window: c.slidingWindow), scale: scale, scratch: ws.scores,
                            positions: (qp.baseAddress!, kp.baseAddress!))
                    }
                }
            }
            return LayerAttention(readout: nil, policyView: view(lastRow: nil, window: nil))
        }

        // Fresh prefill: the policy's rows first, the hook's last (the hook reads the last one).
        var req = AttentionRequest(rows: [], columnSums: request.columnSums || needs.accumulate)
        if needs.lastRow { req.rows.append(L - 1) }
        let w = min(needs.window, L)
        req.rows += Array((L - w)..<L)
        req.rows += request.rows
        let readout = try ws.positions.withUnsafeBufferPointer { pos in
            try Kernels.attention(
                q: q, k: k, v: v, output: attn,
                geometry: AttentionGeometry(queries: L, keys: L, heads: c.heads, kvHeads: c.kvHeads, headDim: hd),
                mask: .causal(queryOffset: 0, window: c.slidingWindow), scale: scale, request: req, scratch: ws.scores,
                positions: (pos.baseAddress!, pos.baseAddress!))
        }
        guard policy != nil else { return LayerAttention(readout: readout, policyView: nil) }

        // Per KV head: sums over the query heads of its group.
        func perHead(_ base: (Int) -> Int, source: [Float], scaleBy: Float) -> [[Float]] {
            (0..<c.kvHeads).map { g in
                var out = [Float](repeating: 0, count: L)
                for j in 0..<group {
                    let b = base(g * group + j)
                    for i in 0..<L { out[i] += source[b + i] }
                }
                return scaleBy == 1 ? out : out.map { $0 * scaleBy }
            }
        }
        if needs.accumulate {
            let sums = perHead({ $0 * L }, source: readout.columnSums, scaleBy: 1)
            for (g, head) in lc.heads.enumerated() { head.addScores(sums[g], from: 0) }
        }
        let last = needs.lastRow ? perHead({ $0 * L }, source: readout.rowProbabilities, scaleBy: 1 / Float(group)) : nil
        var window: [[Float]]?
        if w > 0 {
            let first = needs.lastRow ? 1 : 0
            var sums = [[Float]](repeating: [Float](repeating: 0, count: L), count: c.kvHeads)
            for r in 0..<w {
                let rowBase = (first + r) * c.heads * L
                let part = perHead({ rowBase + $0 * L }, source: readout.rowProbabilities, scaleBy: 1)
                for g in 0..<c.kvHeads { for i in 0..<L { sums[g][i] += part[g][i] } }
            }
            window = sums
        }
        return LayerAttention(readout: readout, policyView: view(lastRow: last, window: window))
    }
}
