import FoveaCore

/// DART: keep the image tokens least like a few pivots — duplication, not importance.
/// Wen et al., EMNLP 2025, arXiv 2502.11494; methods.md §5. Reference code:
/// github.com/ZichenWen1/DART (`get_retained_image_token`).
///
/// - `where` `llm` (default, the authors' form: inside the language model before layer `k`,
///   from layer k − 1's keys and final-norm-applied outputs) or `embed` (the form NVIDIA's
///   TensorRT-Edge-LLM ships: on the projected embeddings before the LLM, pivots by embedding
///   L1 norm, no text pivots).
/// - `r` (default 128/576, the authors' LLaVA-1.5 setting) or `tokens`: the budget B.
/// - `pivots` (default 4) image pivots: the image tokens with the largest key (or embedding)
///   L1 norm; `text_pivots` (default 4, `llm` only): the same among the text after the image.
/// - `k` (≥ 1, default 2, `llm` only).
/// Each pivot in ascending sequence order takes the floor(B ÷ pivot count) not-yet-chosen
/// image tokens least cosine-similar to it; kept = image pivots + those, so the kept count can
/// exceed B by the image pivots, as in the authors' code (it is reported). Keys are read after
/// RoPE, as the authors' hook reads them.
public struct DART: Sendable {
    public enum Site: String, CaseIterable, Sendable { case llm, embed }

    public var site: Site
    public var budget: Budget
    public var imagePivots: Int
    public var textPivots: Int
    public var layer: Int

    public init(site: Site = .llm, budget: Budget = .fraction(128.0 / 576.0), imagePivots: Int = 4, textPivots: Int = 4, layer: Int = 2) {
        self.site = site
        self.budget = budget
        self.imagePivots = imagePivots
        self.textPivots = textPivots
        self.layer = layer
    }

    init(_ p: inout SpecParameters) throws {
        site = try p.choice("where", default: .llm)
        budget = try Budget.read(&p, defaultFraction: 128.0 / 576.0)
        imagePivots = try p.int("pivots", default: 4, in: 1...4096)
        textPivots = try p.int("text_pivots", default: site == .llm ? 4 : 0, in: 0...4096)
        layer = try p.int("k", default: 2, in: 1...4096)
        if site == .embed && (textPivots != 0 || p.has("k")) {
            throw MethodSpecError.conflict(method: "dart", reason: "text_pivots and k apply to where=llm only")
        }
    }

    /// The kept candidates (indices into 0..<count), ascending.
    ///
    /// - Parameters:
    ///   - vector: the row compared by cosine similarity, for candidate i.
    ///   - pivotNorm: the L1 norm that ranks candidates as pivots.
    ///   - textVectors: rows of the text pivots.
    static func choose(count: Int, width: Int, budget B: Int, imagePivots: Int, pivotNorm: [Float],
                       vector: (Int) -> UnsafePointer<Float>, textVectors: [UnsafePointer<Float>], pivotCount: Int) -> [Int] {
        let pivots = TopK.keptAscending(pivotNorm, k: imagePivots)
        var chosen = Set(pivots)
        let perPivot = B / max(1, pivotCount)
        func norm(_ v: UnsafePointer<Float>) -> Float {
            var s: Float = 0
            for i in 0..<width { s += v[i] * v[i] }
            return s.squareRoot()
        }
        let norms = (0..<count).map { norm(vector($0)) }
        let pivotRows: [(UnsafePointer<Float>, Float)] = pivots.map { (vector($0), norms[$0]) } + textVectors.map { ($0, norm($0)) }
        for (pv, pn) in pivotRows {
            let valid = (0..<count).filter { !chosen.contains($0) }
            if valid.isEmpty { break }
            let negCos = valid.map { j -> Float in
                let v = vector(j)
                var dot: Float = 0
                for i in 0..<width { dot += pv[i] * v[i] }
                return -dot / max(pn * norms[j], 1e-8)
            }
            for t in TopK.indices(negCos, k: perPivot) { chosen.insert(valid[t]) }
        }
        return chosen.sorted()
    }

    static func l1(_ v: UnsafePointer<Float>, _ n: Int) -> Float {
        var s: Float = 0
        for i in 0..<n { s += abs(v[i]) }
        return s
    }
}

extension DART: DecoderLayerHook {
    public var needs: LayerHookNeeds { LayerHookNeeds(keys: true, normedHidden: true) }
    public func nominal(imageTokens n: Int) -> Int { budget.count(of: n) }

    public func keep(_ c: LayerHookContext) throws -> [Int] {
        guard let keys = c.keys, let normed = c.normedHidden else {
            throw PruningError.missingReadout("DART needs layer \(layer - 1)'s keys and outputs")
        }
        let image = c.imageRows
        let text = c.origins.indices.filter { c.origins[$0] == .textAfter }
        let textNorms = text.map { DART.l1(keys + $0 * c.keyWidth, c.keyWidth) }
        let textPivotRows = TopK.keptAscending(textNorms, k: textPivots).map { text[$0] }
        let kept = DART.choose(
            count: image.count, width: c.hiddenWidth, budget: budget.count(of: image.count), imagePivots: imagePivots,
            pivotNorm: image.map { DART.l1(keys + $0 * c.keyWidth, c.keyWidth) },
            vector: { normed + image[$0] * c.hiddenWidth },
            textVectors: textPivotRows.map { normed + $0 * c.hiddenWidth }, pivotCount: imagePivots + textPivots)
        return c.keeping(imageRows: kept.map { image[$0] })
    }
}

extension DART: VisualTokenPruner {
    public func needs(_ g: VisionGeometry) throws -> PrunerNeeds { PrunerNeeds(projected: true) }

    /// Over the whole image at once (every partition's patches), as the embedding form sees
    /// one image's embeddings.
    public func select(_ c: PruningContext) throws -> PruningDecision {
        guard let proj = c.projected else { throw PruningError.missingReadout("DART (embed) needs the projected patches") }
        let n = c.patches, w = c.projectedWidth, total = c.partitions * n
        let B = budget.count(of: total)
        let kept = DART.choose(count: total, width: w, budget: B, imagePivots: imagePivots,
                               pivotNorm: (0..<total).map { DART.l1(proj + $0 * w, w) },
                               vector: { proj + $0 * w }, textVectors: [], pivotCount: imagePivots)
        var parts = (0..<c.partitions).map { _ in PartitionSelection(budget: 0, kept: []) }
        for i in kept { parts[i / n].kept.append(i % n) }
        for p in parts.indices { parts[p].budget = parts[p].kept.count }
        return PruningDecision(partitions: parts, nominal: B)
    }
}
