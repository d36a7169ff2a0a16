import FoveaCore

/// FastV: at decoder layer K, drop the image tokens that received the least attention in
/// layer K − 1. Chen et al., ECCV 2024, arXiv 2403.06764; methods.md §3.
///
/// - `k` (≥ 1, default 2): the first layer that no longer sees the dropped tokens.
/// - `ratio` R (0…1, default 0.5): the share of image tokens dropped; or `tokens`: how many kept.
/// - `rule` `last` (default, the authors' code: the last prompt token's row, head-mean) or
///   `all` (the paper's text: the mean over every query row that sees the token).
/// Original position ids are kept.
public struct FastV: DecoderLayerHook {
    public enum Rule: String, CaseIterable, Sendable { case last, all }

    public var layer: Int
    public var ratio: Double
    public var tokens: Int?
    public var rule: Rule

    public init(layer: Int = 2, ratio: Double = 0.5, tokens: Int? = nil, rule: Rule = .last) {
        self.layer = layer
        self.ratio = ratio
        self.tokens = tokens
        self.rule = rule
    }

    init(_ p: inout SpecParameters) throws {
        layer = try p.int("k", default: 2, in: 1...4096)
        ratio = try p.double("ratio", default: 0.5, in: 0...1)
        tokens = try p.optionalInt("tokens", in: 0...Int(Int32.max))
        rule = try p.choice("rule", default: .last)
        if p.has("ratio") && tokens != nil { throw MethodSpecError.conflict(method: "fastv", reason: "give ratio or tokens, not both") }
    }

    public var needs: LayerHookNeeds { rule == .last ? LayerHookNeeds(lastRow: true) : LayerHookNeeds(columnMean: true) }

    public func nominal(imageTokens n: Int) -> Int { keptCount(of: n) }

    /// Image tokens kept out of `n`.
    public func keptCount(of n: Int) -> Int {
        if let tokens { return min(n, tokens) }
        return n - Int((Double(n) * ratio).rounded(.down))
    }

    public func keep(_ c: LayerHookContext) throws -> [Int] {
        guard let score = rule == .last ? c.lastRow : c.columnMean else {
            throw PruningError.missingReadout("FastV needs layer \(layer - 1)'s attention")
        }
        let image = c.imageRows
        let best = TopK.indices(image.map { score[$0] }, k: keptCount(of: image.count))
        return c.keeping(imageRows: best.map { image[$0] })
    }
}
