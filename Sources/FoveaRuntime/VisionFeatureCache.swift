import Foundation
import FoveaCore
import FoveaModels
import FoveaPruning
import Synchronization

/// Encoded images kept for reuse: a follow-up question about the same image skips decoding,
/// the vision tower and the pruner. Keyed by the image's content digest and the before-LLM
/// method (only that changes what `encode` returns); bounded in bytes, least recently used
/// evicted first. Safe to share between threads.
public final class VisionFeatureCache: Sendable {
    public struct Key: Hashable, Sendable {
        public let digest: String
        public let method: String
        public init(digest: String, method: String) {
            self.digest = digest
            self.method = method
        }
    }

    public struct Counts: Sendable, Equatable {
        public var hits = 0
        public var misses = 0
        public var entries = 0
        public var bytes = 0
    }

    public let capacityBytes: Int
    private struct State {
        var entries: [Key: (image: EncodedImage, bytes: Int, used: UInt64)] = [:]
        var clock: UInt64 = 0
        var counts = Counts()
    }
    private let state = Mutex(State())

    public init(capacityBytes: Int) {
        self.capacityBytes = max(0, capacityBytes)
    }

    /// The key for an image under a pruning plan: in-LLM and no pruning encode alike.
    public static func method(of plan: PruningPlan) -> String {
        if case .beforeLLM = plan.stage { return "\(plan.spec) pos=\(plan.positions.rawValue) newline=\(plan.newline)" }
        return "full"
    }

    public func lookup(_ key: Key) -> EncodedImage? {
        state.withLock { s in
            guard let entry = s.entries[key] else { s.counts.misses += 1; return nil }
            s.clock += 1
            s.entries[key]?.used = s.clock
            s.counts.hits += 1
            return entry.image
        }
    }

    /// Keeps `image` (without the tower's full output and attention maps, which only `explain`
    /// reads), evicting the least recently used entries to stay within the capacity.
    public func store(_ image: EncodedImage, for key: Key) {
        var slim = image
        slim.vision = VisionOutput(features: Tensor(zeros: [0]), clsAttention: [:])
        let bytes = Self.bytes(of: slim)
        guard bytes <= capacityBytes else { return }
        state.withLock { s in
            s.clock += 1
            if let old = s.entries[key] { s.counts.bytes -= old.bytes }
            s.entries[key] = (slim, bytes, s.clock)
            s.counts.bytes += bytes
            while s.counts.bytes > capacityBytes, let victim = s.entries.min(by: { $0.value.used < $1.value.used }) {
                s.entries[victim.key] = nil
                s.counts.bytes -= victim.value.bytes
            }
            s.counts.entries = s.entries.count
        }
    }

    public var counts: Counts { state.withLock { $0.counts } }

    /// What an entry is charged: its features and bookkeeping (the tower's output is not kept).
    public static func bytes(of image: EncodedImage) -> Int {
        image.features.count * MemoryLayout<Float>.size + image.sources.count * 16 + image.places.count * 8 + 1024
    }
}
