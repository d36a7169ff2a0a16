import FoveaCore

/// Random: a seeded uniform sample of each partition's patches, the control every table
/// needs (methods.md §3, §5). `r` (default 0.2) or `tokens`; `seed` (default 0).
public struct RandomPruner: VisualTokenPruner {
    public var budget: Budget
    public var seed: UInt64

    public init(budget: Budget = .fraction(0.2), seed: UInt64 = 0) {
        self.budget = budget
        self.seed = seed
    }

    init(_ p: inout SpecParameters) throws {
        budget = try Budget.read(&p, defaultFraction: 0.2)
        seed = UInt64(try p.int("seed", default: 0, in: 0...Int.max))
    }

    public func needs(_ g: VisionGeometry) throws -> PrunerNeeds { .none }

    public func select(_ c: PruningContext) throws -> PruningDecision {
        let budgets = budget.perPartition(parts: c.partitions, n: c.patches)
        var rng = SplitMix64(seed: seed)
        let parts = budgets.map { b -> PartitionSelection in
            // Partial Fisher–Yates: the first b of a seeded shuffle.
            var idx = Array(0..<c.patches)
            for i in 0..<b {
                let j = i + Int(rng.next() % UInt64(c.patches - i))
                idx.swapAt(i, j)
            }
            return PartitionSelection(budget: b, kept: idx.prefix(b).sorted())
        }
        return PruningDecision(partitions: parts, nominal: budgets.reduce(0, +))
    }
}

/// Uniform: every partition keeps patches at an even stride in raster order (methods.md §3).
/// `r` (default 0.2) or `tokens`. Patch i·n/b for i in 0..<b (integer arithmetic).
public struct UniformPruner: VisualTokenPruner {
    public var budget: Budget

    public init(budget: Budget = .fraction(0.2)) { self.budget = budget }

    init(_ p: inout SpecParameters) throws {
        budget = try Budget.read(&p, defaultFraction: 0.2)
    }

    public func needs(_ g: VisionGeometry) throws -> PrunerNeeds { .none }

    public func select(_ c: PruningContext) throws -> PruningDecision {
        let n = c.patches
        let budgets = budget.perPartition(parts: c.partitions, n: n)
        let parts = budgets.map { b in PartitionSelection(budget: b, kept: (0..<b).map { $0 * n / b }) }
        return PruningDecision(partitions: parts, nominal: budgets.reduce(0, +))
    }
}
