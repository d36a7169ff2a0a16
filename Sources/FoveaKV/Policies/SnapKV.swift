import FoveaCore

/// SnapKV: at the end of prefill, per layer and KV head, keep the prompt entries the last
/// `w` queries attend to most (scores smoothed by a 1-D pool), plus that window itself.
/// Li et al., NeurIPS 2024, arXiv 2404.14469; methods.md §3.
///
/// - `w` (default 32): the observation window; `k` (default 7): the pooling kernel;
///   `pool` `max` (default, the paper) or `avg` (the code's); `cap` (default 0.5): entries kept,
///   a fraction of the prompt or a row count. Decode appends normally.
public final class SnapKV: KVCachePolicy, @unchecked Sendable {
    public enum Pool: String, CaseIterable, Sendable { case max, avg }
    public struct Config: Sendable {
        public var window = 32
        public var kernel = 7
        public var pool: Pool = .max
        public var capacity: KVSize = .fraction(0.5)
        public init(window: Int = 32, kernel: Int = 7, pool: Pool = .max, capacity: KVSize = .fraction(0.5)) {
            self.window = window; self.kernel = kernel; self.pool = pool; self.capacity = capacity
        }
        init(_ p: inout SpecParameters) throws {
            window = try p.int("w", default: 32, in: 1...Int(Int32.max))
            kernel = try p.int("k", default: 7, in: 1...1025)
            pool = try p.choice("pool", default: .max)
            capacity = try KVSize.read(&p, "cap", default: .fraction(0.5))
        }
    }

    public let config: Config
    public init(_ config: Config = Config()) { self.config = config }
    public var needs: KVPolicyNeeds { KVPolicyNeeds(window: config.window) }
    public func reset() {}

    public func decide(_ view: KVLayerView) -> KVLayerDecision {
        guard view.phase == .prefill, let sums = view.window else { return .keepAll(kvHeads: view.kvHeads) }
        let cap = config.capacity.rows(of: view.promptLength)
        let keep: [[Int]?] = view.cache.heads.enumerated().map { g, head in
            let n = head.count, w = min(config.window, n)
            guard cap < n else { return nil }
            let prefix = n - w
            let pooled = Self.pool(Array(sums[g][..<prefix]), kernel: config.kernel, mode: config.pool)
            return (TopK.indices(pooled, k: max(0, cap - w)) + Array(prefix..<n)).sorted()
        }
        return KVLayerDecision(keep: keep, attend: Array(repeating: nil, count: view.kvHeads))
    }

    /// 1-D pooling with a centred kernel over the valid entries (same length out).
    static func pool(_ x: [Float], kernel: Int, mode: Pool) -> [Float] {
        let r = kernel / 2
        return x.indices.map { i in
            let lo = max(0, i - r), hi = min(x.count - 1, i + r)
            let span = x[lo...hi]
            return mode == .max ? span.max() ?? 0 : span.reduce(0, +) / Float(kernel)
        }
    }
}
