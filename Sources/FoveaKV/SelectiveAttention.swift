import FoveaCore

extension Kernels {
    /// Decode attention for one query row against a layer's paged cache, over exactly the
    /// rows each KV head attends — A-VL's selective-attention operator on the CPU.
    ///
    /// Per KV head (threaded over KV heads): the rows are `layer.attend[g]` (all rows when nil)
    /// plus every row appended since that list was made, less keys outside the sliding window
    /// (by position). Each key row is read once for all `group` query heads that share it,
    /// scored, softmaxed per query head (max subtracted, float32 accumulation), and each value
    /// row read once to accumulate the outputs. Rows are read where they lie, through the
    /// block table: nothing is gathered, so the cost follows the number of attended rows.
    ///
    /// - Parameters:
    ///   - q: [heads·headDim], rotated. Query head h reads KV head h / group.
    ///   - output: [heads·headDim].
    ///   - scratch: at least heads × (rows of the fullest head) floats.
    ///   - lastRow: if given, [kvHeads][count of head g]: each row's probability averaged over the
    ///     group's query heads (0 for rows not attended).
    ///   - accumulate: add each row's probability, summed over the group, to the head's scores.
    public static func decodeAttention(
        q: UnsafePointer<Float>, layer: LayerCache, heads: Int, output: UnsafeMutablePointer<Float>,
        scale: Float, queryPosition: Int32, window: Int?, scratch: UnsafeMutablePointer<Float>,
        lastRow: UnsafeMutablePointer<[Float]>? = nil, accumulate: Bool = false
    ) {
        let kvHeads = layer.heads.count, hd = layer.headDim
        let group = heads / kvHeads
        let stride = layer.count
        Parallel.forEachChunk(kvHeads) { range in
            for g in range {
                let head = layer.heads[g]
                let storage = head.pool.storage
                let base = min(layer.attendBase[g], head.count)
                var rows = layer.attend[g].map { $0.filter { $0 < base } } ?? Array(0..<base)
                rows += Array(base..<head.count)
                if let window {
                    let first = queryPosition - Int32(window) + 1
                    rows.removeAll { head.positions[$0] < first }
                }
                let n = rows.count
                let s = scratch + g * group * stride
                for (i, r) in rows.enumerated() {
                    let k = head.key(r)
                    for j in 0..<group { s[j * stride + i] = storage.dot(k, q + (g * group + j) * hd, count: hd) * scale }
                }
                for j in 0..<group {
                    let row = s + j * stride
                    softmaxRow(row, count: n)
                    (output + (g * group + j) * hd).update(repeating: 0, count: hd)
                }
                for (i, r) in rows.enumerated() {
                    let v = head.value(r)
                    for j in 0..<group { storage.accumulate(s[j * stride + i], v, into: output + (g * group + j) * hd, count: hd) }
                }
                if accumulate && head.tracksScores {
                    for (i, r) in rows.enumerated() {
                        var p: Float = 0
                        for j in 0..<group { p += s[j * stride + i] }
                        head.scores[r] += p
                    }
                }
                if let lastRow {
                    var m = [Float](repeating: 0, count: head.count)
                    let inv = 1 / Float(group)
                    for (i, r) in rows.enumerated() {
                        var p: Float = 0
                        for j in 0..<group { p += s[j * stride + i] }
                        m[r] = p * inv
                    }
                    lastRow[g] = m
                }
            }
        }
    }
}
