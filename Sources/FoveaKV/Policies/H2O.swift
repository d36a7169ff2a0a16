import FoveaCore

/// H2O: keep, per layer and KV head, the most recent entries and the "heavy hitters" — the
/// entries that have received the most attention from every query so far. Zhang et al.,
/// NeurIPS 2023, arXiv 2306.14048; methods.md §3.
///
/// - `heavy` (default 0.1) and `recent` (default 0.1): fractions of the prompt, or row counts.
/// Scores are accumulated by the attention kernel (prefill column sums, then each decode
/// step), summed over the query heads that share a KV head. Original positions are kept.
public final class H2O: KVCachePolicy, @unchecked Sendable {
    public struct Config: Sendable {
        public var heavy: KVSize = .fraction(0.1)
        public var recent: KVSize = .fraction(0.1)
        public init(heavy: KVSize = .fraction(0.1), recent: KVSize = .fraction(0.1)) { self.heavy = heavy; self.recent = recent }
        init(_ p: inout SpecParameters) throws {
            heavy = try KVSize.read(&p, "heavy", default: .fraction(0.1))
            recent = try KVSize.read(&p, "recent", default: .fraction(0.1))
        }
    }

    public let config: Config
    public init(_ config: Config = Config()) { self.config = config }
    public var needs: KVPolicyNeeds { KVPolicyNeeds(accumulate: true) }
    public func reset() {}

    public func decide(_ view: KVLayerView) -> KVLayerDecision {
        let heavy = config.heavy.rows(of: view.promptLength), recent = config.recent.rows(of: view.promptLength)
        let keep: [[Int]?] = view.cache.heads.map { head in
            head.count > heavy + recent
                ? KVLayerView.heavyAndRecent(Array(0..<head.count), scores: head.scores, heavy: heavy, recent: recent) : nil
        }
        return KVLayerDecision(keep: keep, attend: Array(repeating: nil, count: view.kvHeads))
    }
}
