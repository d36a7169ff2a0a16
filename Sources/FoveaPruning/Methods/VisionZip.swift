import FoveaCore

/// VisionZip: keep the patches the CLS token attends to most ("dominant"), merge the rest into
/// a few "contextual" tokens by key similarity. Yang et al., CVPR 2025, arXiv 2412.04467;
/// methods.md §5. Reference code: github.com/dvlab-research/VisionZip.
///
/// - `r` (default 0.111, the authors' 64 of 576) or `tokens`: per partition T = floor(r·n);
///   contextual = round(T·10/64) (`contextual` overrides the ratio), dominant = T − contextual
///   with the partition's CLS token counted among the dominant, as the authors count it.
/// - `cls` (on): keep each partition's CLS token; off, every dominant slot is a patch (so
///   `tokens=N,contextual=0,cls=off` at the full count keeps exactly the unpruned tokens).
/// Contextual token = target's feature row + the mean of the rows assigned to it (the authors
/// add rather than average, and so does Fovea). Similarity: the feature layer's keys averaged
/// over heads, L2-normalised; each remaining patch goes to its most similar target (ties to
/// the lower target). Dominant patches keep their places in the grid; CLS and contextual
/// tokens follow the partition (base) or the whole grid (tiles).
public struct VisionZip: VisualTokenPruner {
    public var budget: Budget
    public var contextual: Int?
    public var keepCLS: Bool

    public init(budget: Budget = .fraction(64.0 / 576.0), contextual: Int? = nil, keepCLS: Bool = true) {
        self.budget = budget
        self.contextual = contextual
        self.keepCLS = keepCLS
    }

    init(_ p: inout SpecParameters) throws {
        budget = try Budget.read(&p, defaultFraction: 64.0 / 576.0)
        contextual = try p.optionalInt("contextual", in: 0...1_000_000)
        keepCLS = try p.flag("cls", default: true)
    }

    public func needs(_ g: VisionGeometry) throws -> PrunerNeeds {
        guard g.hasCLS else { throw PruningError.unsupported(method: "visionzip", reason: "this vision tower has no CLS token") }
        return PrunerNeeds(clsAttentionLayers: [g.featureLayer], meanKeysLayer: g.featureLayer)
    }

    /// (dominant including CLS, contextual) for a per-partition budget T.
    public func split(_ T: Int) -> (dominant: Int, contextual: Int) {
        let ctx = min(T, contextual ?? Int((Double(T) * 10 / 64).rounded(.toNearestOrEven)))
        return (T - ctx, ctx)
    }

    public func select(_ c: PruningContext) throws -> PruningDecision {
        guard let keys = c.meanKeys else { throw PruningError.missingReadout("VisionZip needs the feature layer's keys") }
        let n = c.patches, hd = c.geometry.headDim, w = c.featureWidth
        let budgets = budget.perPartition(parts: c.partitions, n: n)
        var out: [PartitionSelection] = []
        for p in 0..<c.partitions {
            let T = budgets[p]
            let (dominant, ctxCount) = split(T)
            let F = try c.clsScores(layer: c.geometry.featureLayer, partition: p)
            let kept = TopK.keptAscending(F, k: max(0, dominant - (keepCLS ? 1 : 0)))
            var merged: [MergedToken] = []
            if dominant > 0 && keepCLS {
                merged.append(MergedToken(features: Array(UnsafeBufferPointer(start: c.featureRow(partition: p, token: 0), count: w)),
                                          sources: [], isCLS: true))
            }
            let keptSet = Set(kept)
            let remaining = (0..<n).filter { !keptSet.contains($0) }
            if ctxCount > 0 && !remaining.isEmpty {
                let step = max(1, remaining.count / ctxCount)
                let targets = Array(stride(from: 0, to: remaining.count, by: step).prefix(ctxCount).map { remaining[$0] })
                let targetSet = Set(targets)
                // Unit keys of every patch in the partition.
                func unitKey(_ j: Int) -> [Float] {
                    let row = keys + (p * c.tokensPerPartition + 1 + j) * hd
                    var norm: Float = 0
                    for i in 0..<hd { norm += row[i] * row[i] }
                    let inv = 1 / max(norm.squareRoot(), 1e-12)
                    return (0..<hd).map { row[$0] * inv }
                }
                let targetKeys = targets.map(unitKey)
                var assigned = [[Int]](repeating: [], count: targets.count)
                for j in remaining where !targetSet.contains(j) {
                    let kj = unitKey(j)
                    var best = 0
                    var bestSim = -Float.infinity
                    for (t, kt) in targetKeys.enumerated() {
                        var s: Float = 0
                        for i in 0..<hd { s += kj[i] * kt[i] }
                        if s > bestSim { bestSim = s; best = t }
                    }
                    assigned[best].append(j)
                }
                for (t, target) in targets.enumerated() {
                    var v = Array(UnsafeBufferPointer(start: c.featureRow(partition: p, token: 1 + target), count: w))
                    let members = assigned[t]
                    if !members.isEmpty {
                        var mean = [Float](repeating: 0, count: w)
                        for j in members {
                            let row = c.featureRow(partition: p, token: 1 + j)
                            for i in 0..<w { mean[i] += row[i] }
                        }
                        let inv = 1 / Float(members.count)
                        for i in 0..<w { v[i] += mean[i] * inv }
                    }
                    merged.append(MergedToken(features: v, sources: [target] + members))
                }
            }
            out.append(PartitionSelection(budget: T, kept: kept, merged: merged, scores: F))
        }
        return PruningDecision(partitions: out, nominal: budgets.reduce(0, +))
    }
}
