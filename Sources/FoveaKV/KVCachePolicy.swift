import FoveaCore

/// When a policy is consulted.
public enum KVPhase: Sendable, Equatable {
    /// After a layer has attended over the whole prompt.
    case prefill
    /// After decode step `step` (1, 2, …) has attended, its row already cached.
    case decode(step: Int)
}

/// What a policy asks the attention kernel to hand it.
public struct KVPolicyNeeds: Sendable, Equatable {
    /// The last query row's probabilities per KV head (averaged over its query heads).
    public var lastRow = false
    /// Each row's received attention accumulated in `HeadCache.scores`, prefill and decode.
    public var accumulate = false
    /// Prefill only: Σ of the last `window` query rows' probabilities per KV head (SnapKV).
    public var window = 0

    public init(lastRow: Bool = false, accumulate: Bool = false, window: Int = 0) {
        self.lastRow = lastRow
        self.accumulate = accumulate
        self.window = window
    }
}

/// A policy's view of one layer after it attended.
public struct KVLayerView {
    public let layer: Int
    public let phase: KVPhase
    public let cache: LayerCache
    /// Query heads per KV head.
    public let group: Int
    /// Rows of the prompt (prefill) for per-prompt budgets.
    public let promptLength: Int
    /// [kvHead][row] when `needs.lastRow`: the last query's probability of each row,
    /// averaged over the head's query heads (0 where the row was not attended).
    public let lastRow: [[Float]]?
    /// [kvHead][row] when `needs.window` > 0 (prefill only).
    public let window: [[Float]]?

    public init(layer: Int, phase: KVPhase, cache: LayerCache, group: Int, promptLength: Int, lastRow: [[Float]]?, window: [[Float]]?) {
        self.layer = layer
        self.phase = phase
        self.cache = cache
        self.group = group
        self.promptLength = promptLength
        self.lastRow = lastRow
        self.window = window
    }

    public var kvHeads: Int { cache.heads.count }
}

/// What a policy decides for one layer.
public struct KVLayerDecision: Sendable, Equatable {
    /// Per KV head, the rows to keep (ascending), or nil to keep every row.
    public var keep: [[Int]?]
    /// Per KV head, the rows (after `keep`) the next step attends, or nil for all.
    public var attend: [[Int]?]
    /// New positions for the kept rows of every head (StreamingLLM's re-assignment), or nil.
    public var positions: [Int32]?

    public init(keep: [[Int]?], attend: [[Int]?], positions: [Int32]? = nil) {
        self.keep = keep
        self.attend = attend
        self.positions = positions
    }

    public static func keepAll(kvHeads: Int) -> KVLayerDecision {
        KVLayerDecision(keep: Array(repeating: nil, count: kvHeads), attend: Array(repeating: nil, count: kvHeads))
    }
}

/// A KV-cache policy (methods.md §2, §3): after each layer attends, at the end of prefill and
/// after every decode step, it sees what it asked for and answers what to keep and what the
/// next step attends. One instance serves one sequence; `reset` starts another.
public protocol KVCachePolicy: AnyObject, Sendable {
    var needs: KVPolicyNeeds { get }
    func reset()
    func decide(_ view: KVLayerView) -> KVLayerDecision
}

/// Keeps and attends everything (`--kv full`).
public final class FullPolicy: KVCachePolicy, @unchecked Sendable {
    public init() {}
    public var needs: KVPolicyNeeds { KVPolicyNeeds() }
    public func reset() {}
    public func decide(_ view: KVLayerView) -> KVLayerDecision { .keepAll(kvHeads: view.kvHeads) }
}

extension LayerCache {
    /// Carries out a decision: per-head compaction (and re-positioning), then the attend lists.
    public func apply(_ d: KVLayerDecision, rope: RotaryEmbedding) {
        for (g, head) in heads.enumerated() {
            if let keep = d.keep[g], keep.count != head.count { head.compact(keeping: keep) }
            if let p = d.positions, p.count == head.count { head.reposition(to: p, rope: rope) }
        }
        attend = d.attend
        attendBase = heads.map(\.count)
    }

    /// Turns score tracking on for every head (a policy that accumulates asked for it).
    public func trackScores() {
        for h in heads where !h.tracksScores {
            h.tracksScores = true
            h.scores = Array(repeating: 0, count: h.count)
        }
    }
}

extension KVLayerView {
    /// Heavy hitters and a recent window within `rows` of one head: the last `recent` of them,
    /// and the `heavy` best-scoring of the rest (H2O; A-VL's text region). Ascending.
    static func heavyAndRecent(_ rows: [Int], scores: [Float], heavy: Int, recent: Int) -> [Int] {
        guard rows.count > heavy + recent else { return rows }
        let split = rows.count - recent
        let older = Array(rows[..<split])
        let best = TopK.indices(older.map { scores[$0] }, k: heavy).map { older[$0] }
        return (best + rows[split...]).sorted()
    }
}
