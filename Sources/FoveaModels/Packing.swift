import FoveaCore
import FoveaPruning

/// Where one image row of the merged sequence came from.
public enum VisualSource: Sendable, Equatable {
    /// Patch `index` (raster order) of partition `partition` (0 = base, then tiles row-major).
    case patch(partition: Int, index: Int)
    /// A token a pruner built from these patches of one partition.
    case merged(partition: Int, patches: [Int])
    /// A partition's CLS token.
    case cls(partition: Int)
    /// LLaVA-NeXT's `image_newline` after row `row` of the unpadded grid (−1: single partition).
    case newline(row: Int)
}

/// The image's tokens in the order the LLM reads them, before projection.
struct PackedLayout {
    /// Per token: which projector row it is (−1 for a newline), its source, and its index in
    /// the unpruned packed sequence (its original place, for `pos=orig`).
    var rows: [Int] = []
    var sources: [VisualSource] = []
    var places: [Int] = []
    /// Tokens the unpruned image would give (what transformers produces).
    var fullCount = 0
    /// Kept tokens that fell into padding and were dropped by unpad.
    var lostToUnpad = 0

    mutating func emit(_ row: Int, _ source: VisualSource, _ place: Int) {
        rows.append(row)
        sources.append(source)
        places.append(place)
    }
}

/// LLaVA-NeXT packing generalised to kept subsets: base tokens first (raster order, then the
/// tokens the pruner built), then the tile grid in global raster order over the unpadded
/// region with an optional newline after each row that keeps something, then the tiles' built
/// tokens. With every patch kept and newlines on it is exactly transformers'
/// `pack_image_features` (v5.23.0); a single partition is base tokens (+ one newline).
enum Packing {
    /// - Parameters:
    ///   - rowOfKept: projector row of partition p's i-th kept patch is `rowOfKept[p] + i`;
    ///     of its m-th merged token `rowOfMerged[p] + m`.
    ///   - newline: whether the model has `image_newline` and the plan wants it.
    ///   - modelHasNewline: whether the unpruned sequence has newlines (for original places).
    ///   - perPartition: tokens one partition gives (patches, plus CLS under the `full` strategy).
    static func layout(decision: PruningDecision, grid: (rows: Int, cols: Int), side G: Int, perPartition n: Int, height: Int, width: Int,
                       rowOfKept: [Int], rowOfMerged: [Int], newline: Bool, modelHasNewline: Bool, tiled: Bool) -> PackedLayout {
        var out = PackedLayout()
        // Base (or the only partition): kept patches and anchored tokens in raster order, then the rest.
        let base = decision.partitions[0]
        emitPartition(0, base, rowOfKept[0], rowOfMerged[0], place: { $0 }, into: &out)
        if !tiled {
            out.fullCount = n + (modelHasNewline ? 1 : 0)
            if newline && modelHasNewline { out.emit(-1, .newline(row: -1), n) }
            return out
        }
        let region = Anyres.unpaddedRegion(height: height, width: width, gridHeight: grid.rows * G, gridWidth: grid.cols * G)
        let rowLen = region.cols + (modelHasNewline ? 1 : 0)
        out.fullCount = n + region.rows * rowLen
        // Per tile: patch → position in `kept`, and anchor patch → merged indices.
        var keptAt = [[Int32]](repeating: [], count: decision.partitions.count)
        var anchored = [[Int: [Int]]](repeating: [:], count: decision.partitions.count)
        for p in 1..<decision.partitions.count {
            let sel = decision.partitions[p]
            keptAt[p] = [Int32](repeating: -1, count: n)
            for (i, j) in sel.kept.enumerated() { keptAt[p][j] = Int32(i) }
            for (m, t) in sel.merged.enumerated() { if let a = t.anchor { anchored[p][a, default: []].append(m) } }
        }
        var inRegion = 0
        for gy in region.row..<(region.row + region.rows) {
            let (tr, y) = (gy / G, gy % G)
            var any = false
            let rowBase = n + (gy - region.row) * rowLen
            for gx in region.col..<(region.col + region.cols) {
                let (tc, x) = (gx / G, gx % G)
                let p = 1 + tr * grid.cols + tc, j = y * G + x
                let place = rowBase + gx - region.col
                if keptAt[p][j] >= 0 {
                    out.emit(rowOfKept[p] + Int(keptAt[p][j]), .patch(partition: p, index: j), place)
                    any = true
                    inRegion += 1
                }
                for m in anchored[p][j] ?? [] {
                    out.emit(rowOfMerged[p] + m, .merged(partition: p, patches: decision.partitions[p].merged[m].sources), place)
                    any = true
                    inRegion += 1
                }
            }
            if newline && modelHasNewline && any { out.emit(-1, .newline(row: gy - region.row), rowBase + region.cols) }
        }
        let tileTokens = decision.partitions.dropFirst().reduce(0) { $0 + $1.kept.count + $1.merged.filter { $0.anchor != nil }.count }
        out.lostToUnpad = tileTokens - inRegion
        // Tiles' unanchored tokens (CLS, contextual) follow the grid, sharing the last place.
        for p in 1..<decision.partitions.count {
            for (m, t) in decision.partitions[p].merged.enumerated() where t.anchor == nil {
                out.emit(rowOfMerged[p] + m, source(p, t), out.places.last ?? 0)
            }
        }
        return out
    }

    private static func source(_ p: Int, _ t: MergedToken) -> VisualSource {
        t.isCLS ? .cls(partition: p) : .merged(partition: p, patches: t.sources)
    }

    private static func emitPartition(_ p: Int, _ sel: PartitionSelection, _ keptRow: Int, _ mergedRow: Int,
                                      place: (Int) -> Int, into out: inout PackedLayout) {
        // (anchor patch, kind, index): kept patches before tokens anchored at the same patch.
        var placed: [(Int, Int, Int)] = sel.kept.enumerated().map { ($0.element, 0, $0.offset) }
        for (m, t) in sel.merged.enumerated() { if let a = t.anchor { placed.append((a, 1, m)) } }
        placed.sort { ($0.0, $0.1, $0.2) < ($1.0, $1.1, $1.2) }
        for (j, kind, i) in placed {
            if kind == 0 {
                out.emit(keptRow + i, .patch(partition: p, index: j), place(j))
            } else {
                out.emit(mergedRow + i, source(p, sel.merged[i]), place(j))
            }
        }
        for (m, t) in sel.merged.enumerated() where t.anchor == nil {
            out.emit(mergedRow + m, source(p, t), out.places.last ?? 0)
        }
    }
}
