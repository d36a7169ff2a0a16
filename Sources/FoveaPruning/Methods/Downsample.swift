import FoveaCore

/// Downsample: average-pool each partition's patch grid in k×k cells before the projector —
/// the plain control a 2025 benchmark found hard to beat (VTC-Bench, arXiv 2510.07143;
/// methods.md §5).
///
/// - `k` (≥ 1, default 2; 2 keeps about 25%), or `r`: k = round(1/√r).
/// Cells at the right and bottom edges of a grid k does not divide are averaged over the
/// patches they hold. A pooled token takes the place of its cell's first patch that survives
/// unpad; a cell with none left is dropped.
public struct Downsample: VisualTokenPruner {
    public var k: Int

    public init(k: Int = 2) { self.k = k }

    init(_ p: inout SpecParameters) throws {
        let r = try p.optionalDouble("r", in: 0.0001...1)
        let k = try p.optionalInt("k", in: 1...1024)
        if r != nil && k != nil { throw MethodSpecError.conflict(method: "downsample", reason: "give k or r, not both") }
        self.k = k ?? r.map { max(1, Int((1 / $0.squareRoot()).rounded())) } ?? 2
    }

    public func needs(_ g: VisionGeometry) throws -> PrunerNeeds { .none }

    public func select(_ c: PruningContext) throws -> PruningDecision {
        let G = c.geometry.gridSide, w = c.featureWidth
        let cells = (G + k - 1) / k
        var out: [PartitionSelection] = []
        for p in 0..<c.partitions {
            var merged: [MergedToken] = []
            for cy in 0..<cells {
                for cx in 0..<cells {
                    var members: [Int] = []
                    for y in (cy * k)..<min(G, cy * k + k) {
                        for x in (cx * k)..<min(G, cx * k + k) { members.append(y * G + x) }
                    }
                    guard let anchor = members.first(where: { c.survivesUnpad[p][$0] }) else { continue }
                    var v = [Float](repeating: 0, count: w)
                    for j in members {
                        let row = c.featureRow(partition: p, token: 1 + j)
                        for i in 0..<w { v[i] += row[i] }
                    }
                    let inv = 1 / Float(members.count)
                    for i in 0..<w { v[i] *= inv }
                    merged.append(MergedToken(features: v, sources: members, anchor: anchor))
                }
            }
            out.append(PartitionSelection(budget: cells * cells, kept: [], merged: merged))
        }
        return PruningDecision(partitions: out, nominal: c.partitions * cells * cells)
    }
}
