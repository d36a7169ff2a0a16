import FoveaCore

/// StreamingLLM: keep the first `sink` entries (attention sinks) and the last `window`; drop
/// the middle. Xiao et al., ICLR 2024, arXiv 2309.17453; methods.md §3.
///
/// - `sink` (default 4) rows; `window` (default 256): rows, or a fraction of the prompt.
/// - `pos` `shift` (default, the authors': positions re-assigned within the cache, so the
///   kept entries sit at 0…n−1 and the next token at n — Fovea re-rotates the kept keys by the
///   shift rather than caching them before RoPE) or `orig` (original positions kept).
public final class StreamingLLM: KVCachePolicy, @unchecked Sendable {
    public enum Positions: String, CaseIterable, Sendable { case shift, orig }
    public struct Config: Sendable {
        public var sink = 4
        public var window: KVSize = .rows(256)
        public var positions: Positions = .shift
        public init(sink: Int = 4, window: KVSize = .rows(256), positions: Positions = .shift) {
            self.sink = sink; self.window = window; self.positions = positions
        }
        init(_ p: inout SpecParameters) throws {
            sink = try p.int("sink", default: 4, in: 0...Int(Int32.max))
            window = try KVSize.read(&p, "window", default: .rows(256))
            positions = try p.choice("pos", default: .shift)
        }
    }

    public let config: Config
    public init(_ config: Config = Config()) { self.config = config }
    public var needs: KVPolicyNeeds { KVPolicyNeeds() }
    public func reset() {}

    public func decide(_ view: KVLayerView) -> KVLayerDecision {
        let n = view.cache.count, window = config.window.rows(of: view.promptLength)
        guard n > config.sink + window else { return .keepAll(kvHeads: view.kvHeads) }
        let kept = Array(0..<config.sink) + Array((n - window)..<n)
        return KVLayerDecision(keep: Array(repeating: kept, count: view.kvHeads), attend: Array(repeating: nil, count: view.kvHeads),
                               positions: config.positions == .shift ? (0..<Int32(kept.count)).map { $0 } : nil)
    }
}
