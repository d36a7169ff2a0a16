import FoveaCore

/// A-VL: modality-aware adaptive attention. Per layer, image entries are split by the last
/// query's head-mean attention into *core* (attended every step), *secondary* (kept, attended
/// on refresh steps) and *minor* (evicted); text after the image keeps a recent window plus
/// heavy hitters per KV head. arXiv 2409.14846; methods.md §2.
///
/// - `s` (0…1, default 0.5): share of the image block kept (secondary ⊇ core).
/// - `c` (0…s, default 0.3): share of the image block attended every step.
/// - `k` (default 3): refresh interval — every k-th step attends everything and re-picks the
///   core among the secondary; 0 never refreshes.
/// - `t` (0…1, default 0.6), `t0` (default 20), `h` (0…1, default 0.7): the text-after budget
///   max(round(t·L_text), t0), of which floor(h·budget) heavy hitters, the rest most recent.
/// - `filter` (off), `kf` (default 2), `p` (default 0.5): the authors' optional prefill filter —
///   after decoder layer kf, image tokens outside the top p share by the last row's head-mean
///   attention leave the hidden states of every later layer (the runtime runs it as a FastV
///   cut at layer kf + 1; it takes the place of a `--prune` cut at the same layer).
/// The prefix is never evicted; kept entries keep their original positions.
public final class AVL: KVCachePolicy, @unchecked Sendable {
    public struct Config: Sendable {
        public var secondary = 0.5, core = 0.3
        public var refresh = 3
        public var text = 0.6
        public var textFloor = 20
        public var heavyShare = 0.7
        public var filter = false
        public var filterLayer = 2
        public var filterKeep = 0.5
        public init(secondary: Double = 0.5, core: Double = 0.3, refresh: Int = 3, text: Double = 0.6, textFloor: Int = 20,
                    heavyShare: Double = 0.7) {
            self.secondary = secondary; self.core = core; self.refresh = refresh
            self.text = text; self.textFloor = textFloor; self.heavyShare = heavyShare
        }
        init(_ p: inout SpecParameters) throws {
            secondary = try p.double("s", default: 0.5, in: 0...1)
            core = try p.double("c", default: 0.3, in: 0...1)
            refresh = try p.int("k", default: 3, in: 0...1_000_000)
            text = try p.double("t", default: 0.6, in: 0...1)
            textFloor = try p.int("t0", default: 20, in: 0...Int(Int32.max))
            heavyShare = try p.double("h", default: 0.7, in: 0...1)
            filter = try p.flag("filter", default: false)
            filterLayer = try p.int("kf", default: 2, in: 0...4096)
            filterKeep = try p.double("p", default: 0.5, in: 0...1)
            guard core <= secondary else { throw MethodSpecError.conflict(method: "avl", reason: "c (\(core)) must not exceed s (\(secondary))") }
        }
    }

    public let config: Config
    /// Per layer: the image block's size at prefill, the core (by position), and how many
    /// text-after tokens have arrived (kept or not): the text budget's L_text.
    private var imageCount: [Int: Int] = [:]
    private var core: [Int: Set<Int32>] = [:]
    private var textSeen: [Int: Int] = [:]

    public init(_ config: Config = Config()) { self.config = config }
    public var needs: KVPolicyNeeds { KVPolicyNeeds(lastRow: true, accumulate: true) }
    public func reset() {
        imageCount = [:]
        core = [:]
        textSeen = [:]
    }

    public func decide(_ view: KVLayerView) -> KVLayerDecision {
        let heads = view.cache.heads
        // Image rows sit at the same indices in every head: the prefix is never evicted and
        // image eviction is per layer.
        let image = heads[0].origins.indices.filter { heads[0].origins[$0] == .image }
        let score = headMean(view, rows: image)
        var keepImage = image
        let step: Int
        switch view.phase {
        case .prefill:
            step = 0
            textSeen[view.layer] = heads[0].origins.filter { $0 == .textAfter }.count
            let nv = image.count
            imageCount[view.layer] = nv
            let ranked = TopK.indices(score, k: Int((config.secondary * Double(nv)).rounded(.down)))
            keepImage = ranked.map { image[$0] }.sorted()
            let coreCount = Int((config.core * Double(nv)).rounded(.down))
            core[view.layer] = Set(ranked.prefix(coreCount).map { heads[0].positions[image[$0]] })
        case .decode(let t):
            step = t
            textSeen[view.layer, default: 0] += 1
            if isRefresh(t) {
                let coreCount = Int((config.core * Double(imageCount[view.layer] ?? image.count)).rounded(.down))
                core[view.layer] = Set(TopK.indices(score, k: coreCount).map { heads[0].positions[image[$0]] })
            }
        }
        let coreSet = core[view.layer] ?? []
        var keep: [[Int]?] = []
        var attend: [[Int]?] = []
        let keptImage = Set(keepImage)
        let refreshNext = isRefresh(step + 1)
        for head in heads {
            let text = head.origins.indices.filter { head.origins[$0] == .textAfter }
            let budget = max(Int((config.text * Double(textSeen[view.layer] ?? text.count)).rounded()), config.textFloor)
            let heavy = Int((config.heavyShare * Double(budget)).rounded(.down))
            let keptText = KVLayerView.heavyAndRecent(text, scores: head.scores, heavy: heavy, recent: budget - heavy)
            let rows = head.origins.indices.filter { head.origins[$0] == .prefixText || keptImage.contains($0) } + keptText
            let sorted = rows.sorted()
            keep.append(sorted.count == head.count ? nil : sorted)
            if refreshNext {
                attend.append(nil)
            } else {
                // Indices after compaction: position in `sorted`.
                attend.append(sorted.indices.filter { i in
                    head.origins[sorted[i]] != .image || coreSet.contains(head.positions[sorted[i]])
                })
            }
        }
        return KVLayerDecision(keep: keep, attend: attend)
    }

    private func isRefresh(_ t: Int) -> Bool { config.refresh > 0 && t > 0 && t % config.refresh == 0 }

    /// The last row's probability of each of `rows`, averaged over every query head.
    private func headMean(_ view: KVLayerView, rows: [Int]) -> [Float] {
        guard let last = view.lastRow else { return Array(repeating: 0, count: rows.count) }
        return rows.map { r in last.reduce(0) { $0 + (r < $1.count ? $1[r] : 0) } / Float(last.count) }
    }
}
