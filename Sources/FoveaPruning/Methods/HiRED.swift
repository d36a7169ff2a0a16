import FoveaCore

/// HiRED: a fixed token budget split across tiles by early-layer CLS attention, spent inside
/// each tile by late-layer CLS attention. Arai et al., AAAI 2025, arXiv 2408.10945;
/// methods.md §1. Reference code: github.com/hasanar1f/HiRED.
///
/// - `r` (0…1, default 0.2) or `tokens` (absolute): the budget over all partitions' patches.
/// - `alpha` (0…1, default 0.5): the base image's share.
/// - `early` (default 0), `late` (default: the feature layer): encoder layers read.
/// - `rule` `paper` (default: tile share ∝ summed early attention over its block of the base
///   grid) or `code` (share ∝ how many of the `marks` highest early-attention base patches fall
///   in the block; `marks` default 100).
/// - `score` `cls` (default where the tower has a CLS token: the paper) or `received` —
///   Fovea's extension for towers without one, not the paper's: a patch scores the mean
///   attention it receives from all patch queries, at the same layers.
/// - `redistribute` (off): the paper leaves what flooring and clamping strand unspent; on, the
///   leftover goes to partitions with room left (tiles by share, largest first, then the
///   base), so r = 1 keeps everything. The kept count is reported either way.
public struct HiRED: VisualTokenPruner {
    public enum Rule: String, CaseIterable, Sendable { case paper, code }
    public enum Score: String, CaseIterable, Sendable { case cls, received }

    public var budget: Budget
    public var alpha: Double
    public var early: Int
    public var late: Int?
    public var rule: Rule
    public var marks: Int
    public var redistribute: Bool
    /// nil: `cls` when the tower has a CLS token, else `received`.
    public var score: Score?

    public init(budget: Budget = .fraction(0.2), alpha: Double = 0.5, early: Int = 0, late: Int? = nil,
                rule: Rule = .paper, marks: Int = 100, redistribute: Bool = false) {
        self.redistribute = redistribute
        self.budget = budget
        self.alpha = alpha
        self.early = early
        self.late = late
        self.rule = rule
        self.marks = marks
    }

    init(_ p: inout SpecParameters) throws {
        budget = try Budget.read(&p, defaultFraction: 0.2)
        alpha = try p.double("alpha", default: 0.5, in: 0...1)
        early = try p.int("early", default: 0, in: 0...1023)
        late = try p.optionalInt("late", in: 0...1023)
        rule = try p.choice("rule", default: .paper)
        marks = try p.int("marks", default: 100, in: 1...1_000_000)
        redistribute = try p.flag("redistribute", default: false)
        score = try p.optionalChoice("score", Score.self)
    }

    func scoring(_ g: VisionGeometry) -> Score { score ?? (g.hasCLS ? .cls : .received) }

    func scores(_ c: PruningContext, layer: Int, partition p: Int) throws -> [Float] {
        scoring(c.geometry) == .cls ? try c.clsScores(layer: layer, partition: p) : try c.receivedScores(layer: layer, partition: p)
    }

    func lateLayer(_ g: VisionGeometry) -> Int { late ?? g.featureLayer }

    public func needs(_ g: VisionGeometry) throws -> PrunerNeeds {
        guard g.hasCLS || scoring(g) == .received else {
            throw PruningError.unsupported(method: "hired", reason: "this vision tower has no CLS token; use score=received")
        }
        for (name, l) in [("early", early), ("late", lateLayer(g))] where l >= g.layersRun {
            throw MethodSpecError.badValue(method: "hired", key: name, value: String(l),
                                           expected: "an encoder layer the tower runs, 0...\(g.layersRun - 1)")
        }
        let layers: Set<Int> = [early, lateLayer(g)]
        return scoring(g) == .cls ? PrunerNeeds(clsAttentionLayers: layers) : PrunerNeeds(receivedAttentionLayers: layers)
    }

    public func select(_ c: PruningContext) throws -> PruningDecision {
        let n = c.patches, P = c.partitions
        let N = budget.count(of: P * n)
        let late = lateLayer(c.geometry)
        if P == 1 {
            let F = try scores(c, layer: late, partition: 0)
            return PruningDecision(partitions: [PartitionSelection(budget: N, kept: TopK.keptAscending(F, k: N), scores: F)],
                                   nominal: N)
        }
        let budgets = try HiRED.partitionBudgets(total: N, alpha: alpha, grid: c.grid, side: c.geometry.gridSide,
                                                 baseEarly: scores(c, layer: early, partition: 0), rule: rule, marks: marks,
                                                 redistribute: redistribute)
        var out: [PartitionSelection] = []
        for p in 0..<P {
            let F = try scores(c, layer: late, partition: p)
            out.append(PartitionSelection(budget: budgets[p], kept: TopK.keptAscending(F, k: budgets[p]), scores: F))
        }
        return PruningDecision(partitions: out, nominal: N)
    }

    /// Budgets [base, tile 0, tile 1, …] for a total of `N` over a `grid` of tiles
    /// (methods.md §1 steps 3–4). `baseEarly` is the base image's early-layer score per patch.
    public static func partitionBudgets(total N: Int, alpha: Double, grid: (rows: Int, cols: Int), side G: Int,
                                        baseEarly S: [Float], rule: Rule, marks: Int, redistribute: Bool = false) -> [Int] {
        let n = G * G, k = grid.rows * grid.cols
        let N0 = min(Int((alpha * Double(N)).rounded(.down)), n)
        let Nt = min(N - N0, k * n)
        let marked: Set<Int> = rule == .code ? Set(TopK.indices(S, k: min(marks, n))) : []
        var shares: [Double] = []
        for tr in 0..<grid.rows {
            for tc in 0..<grid.cols {
                var s = 0.0
                for y in band(tr, of: grid.rows, side: G) {
                    for x in band(tc, of: grid.cols, side: G) {
                        let j = y * G + x
                        s += rule == .paper ? Double(S[j]) : (marked.contains(j) ? 1 : 0)
                    }
                }
                shares.append(s)
            }
        }
        let total = shares.reduce(0, +)
        let tiles = shares.map { s -> Int in
            // All-zero scores (no attention anywhere): an even split rather than a division by zero.
            let b = total > 0 ? (Double(Nt) * s / total).rounded(.down) : Double(Nt / max(k, 1))
            return min(Int(b), n)
        }
        var budgets = [N0] + tiles
        if redistribute {
            var left = N - budgets.reduce(0, +)
            let order = TopK.indices(shares.map(Float.init), k: k).map { $0 + 1 } + [0]
            for p in order where left > 0 {
                let add = min(left, n - budgets[p])
                budgets[p] += add
                left -= add
            }
        }
        return budgets
    }

    /// Rows (or columns) `floor(b·G/B) ..< floor((b+1)·G/B)` of a G-wide grid cut into B bands.
    public static func band(_ b: Int, of B: Int, side G: Int) -> Range<Int> {
        (b * G / B)..<((b + 1) * G / B)
    }
}
