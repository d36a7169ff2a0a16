import FoveaCore

/// Visual-token pruning before the language model (methods.md §1, §5).
///
/// A pruner sees one image after the vision tower: per partition (the base image, then the
/// tiles row-major), the rows it asked for, and answers with the patches each partition keeps
/// and any merged tokens it builds. It never touches weights; projection, packing, unpad and
/// positions are the pipeline's job.
public protocol VisualTokenPruner: Sendable {
    /// What the tower must hand over besides the feature rows.
    func needs(_ geometry: VisionGeometry) throws -> PrunerNeeds
    /// Chooses, per partition, what the language model will see.
    func select(_ context: PruningContext) throws -> PruningDecision
}

/// The vision tower's shape, for pruners that resolve layer defaults.
public struct VisionGeometry: Sendable, Equatable {
    /// Encoder layers the tower runs (those up to the feature layer).
    public var layersRun: Int
    /// The encoder layer whose output LLaVA reads (0-based; `vision_feature_layer` −2 on a
    /// 24-layer tower is layer 22).
    public var featureLayer: Int
    public var heads: Int
    public var headDim: Int
    /// Patches per side of one partition's grid (24 for CLIP-L/336).
    public var gridSide: Int
    public var hasCLS: Bool

    public init(layersRun: Int, featureLayer: Int, heads: Int, headDim: Int, gridSide: Int, hasCLS: Bool) {
        self.layersRun = layersRun
        self.featureLayer = featureLayer
        self.heads = heads
        self.headDim = headDim
        self.gridSide = gridSide
        self.hasCLS = hasCLS
    }

    public var patches: Int { gridSide * gridSide }
}

/// What a pruner asks of the vision tower and the projector, before they run.
public struct PrunerNeeds: Sendable, Equatable {
    /// Encoder layers whose CLS-query attention rows to record.
    public var clsAttentionLayers: Set<Int> = []
    /// Encoder layer whose keys, averaged over heads, to record (VisionZip's similarity).
    public var meanKeysLayer: Int? = nil
    /// Whether to project every patch before choosing (pruners that score projected embeddings).
    public var projected = false
    /// Encoder layers whose attention received per key (summed over patch queries) to record.
    public var receivedAttentionLayers: Set<Int> = []

    public init(clsAttentionLayers: Set<Int> = [], meanKeysLayer: Int? = nil, projected: Bool = false,
                receivedAttentionLayers: Set<Int> = []) {
        self.receivedAttentionLayers = receivedAttentionLayers
        self.clsAttentionLayers = clsAttentionLayers
        self.meanKeysLayer = meanKeysLayer
        self.projected = projected
    }

    public static let none = PrunerNeeds()
}

/// Everything a pruner may read about one image. Buffers are borrowed for the call only.
public struct PruningContext {
    public let geometry: VisionGeometry
    /// Partitions: 1 + rows·cols for LLaVA-NeXT (base first), 1 for LLaVA-1.5.
    public let partitions: Int
    /// Tile grid (rows, cols); (0, 0) when there are no tiles.
    public let grid: (rows: Int, cols: Int)
    /// layer → [partitions, heads, 1 + patches] CLS-row probabilities (column 0 is CLS itself).
    public let clsAttention: [Int: [Float]]
    /// layer → [partitions, heads, 1 + patches]: attention each token receives, summed over the
    /// patch queries.
    public let receivedAttention: [Int: [Float]]
    /// [partitions, 1 + patches, featureWidth]: the feature rows, CLS first.
    public let features: UnsafePointer<Float>
    public let featureWidth: Int
    /// [partitions, 1 + patches, headDim] head-averaged keys at `needs.meanKeysLayer`, else nil.
    public let meanKeys: UnsafePointer<Float>?
    /// [partitions, patches, projectedWidth] projected patches when `needs.projected`, else nil.
    public let projected: UnsafePointer<Float>?
    public let projectedWidth: Int
    /// Per partition, which patches survive LLaVA-NeXT's unpad (all true for the base and for
    /// single-partition models). Methods may ignore it; the packer drops the rest either way.
    public let survivesUnpad: [[Bool]]

    public init(geometry: VisionGeometry, partitions: Int, grid: (rows: Int, cols: Int), clsAttention: [Int: [Float]],
                receivedAttention: [Int: [Float]] = [:], features: UnsafePointer<Float>, featureWidth: Int, meanKeys: UnsafePointer<Float>?,
                projected: UnsafePointer<Float>?, projectedWidth: Int, survivesUnpad: [[Bool]]) {
        self.geometry = geometry
        self.partitions = partitions
        self.grid = grid
        self.clsAttention = clsAttention
        self.receivedAttention = receivedAttention
        self.features = features
        self.featureWidth = featureWidth
        self.meanKeys = meanKeys
        self.projected = projected
        self.projectedWidth = projectedWidth
        self.survivesUnpad = survivesUnpad
    }

    public var patches: Int { geometry.patches }
    public var tokensPerPartition: Int { geometry.patches + 1 }

    /// CLS attention of `partition` at `layer`, summed over heads, patch columns only ([patches]).
    public func clsScores(layer: Int, partition p: Int) throws -> [Float] {
        guard let rows = clsAttention[layer] else {
            throw PruningError.missingReadout("CLS attention of vision layer \(layer) was not recorded")
        }
        return headSum(rows, partition: p)
    }

    /// Mean attention each patch of `partition` receives from the patch queries at `layer`,
    /// summed over heads ([patches]).
    public func receivedScores(layer: Int, partition p: Int) throws -> [Float] {
        guard let rows = receivedAttention[layer] else {
            throw PruningError.missingReadout("attention received at vision layer \(layer) was not recorded")
        }
        let inv = 1 / Float(patches)
        return headSum(rows, partition: p).map { $0 * inv }
    }

    /// [partitions, heads, 1 + patches] → partition p's patch columns summed over heads.
    private func headSum(_ rows: [Float], partition p: Int) -> [Float] {
        let T = tokensPerPartition, H = geometry.heads
        var out = [Float](repeating: 0, count: patches)
        for h in 0..<H {
            let base = (p * H + h) * T + 1
            for j in 0..<patches { out[j] += rows[base + j] }
        }
        return out
    }

    /// The feature row of token `t` (0 = CLS, 1 + j = patch j) in partition `p`.
    public func featureRow(partition p: Int, token t: Int) -> UnsafePointer<Float> {
        features + (p * tokensPerPartition + t) * featureWidth
    }
}

/// One token a pruner built rather than kept (VisionZip's contextual tokens, a pooled cell,
/// a partition's CLS).
public struct MergedToken: Sendable, Equatable {
    /// [featureWidth]: in the space of the vision features, before the projector.
    public var features: [Float]
    /// Patches of the partition it stands for (empty for a CLS token).
    public var sources: [Int]
    /// A patch whose place in the packed grid the token takes; nil to follow the partition's
    /// placed tokens (base) or the whole grid (tiles).
    public var anchor: Int?
    public var isCLS: Bool

    public init(features: [Float], sources: [Int], anchor: Int? = nil, isCLS: Bool = false) {
        self.features = features
        self.sources = sources
        self.anchor = anchor
        self.isCLS = isCLS
    }
}

/// What one partition keeps.
public struct PartitionSelection: Sendable, Equatable {
    /// The nominal budget the method gave this partition.
    public var budget: Int
    /// Patch indices kept as themselves, ascending (0..<patches, raster order).
    public var kept: [Int]
    public var merged: [MergedToken]
    /// The method's per-patch score, for pictures ([patches]); empty when it has none.
    public var scores: [Float]

    public init(budget: Int, kept: [Int], merged: [MergedToken] = [], scores: [Float] = []) {
        self.budget = budget
        self.kept = kept
        self.merged = merged
        self.scores = scores
    }

    public var tokenCount: Int { kept.count + merged.count }
}

public struct PruningDecision: Sendable, Equatable {
    public var partitions: [PartitionSelection]
    /// The budget the method was asked for, over all partitions (before any clamp).
    public var nominal: Int

    public init(partitions: [PartitionSelection], nominal: Int) {
        self.partitions = partitions
        self.nominal = nominal
    }

    /// Keeps every patch of every partition.
    public static func all(partitions: Int, patches: Int) -> PruningDecision {
        PruningDecision(partitions: (0..<partitions).map { _ in PartitionSelection(budget: patches, kept: Array(0..<patches)) },
                        nominal: partitions * patches)
    }
}

public enum PruningError: Error, CustomStringConvertible, Sendable, Equatable {
    case missingReadout(String)
    case unsupported(method: String, reason: String)
    case invalidDecision(method: String, reason: String)

    public var description: String {
        switch self {
        case .missingReadout(let s): "pruner input missing: \(s)"
        case .unsupported(let m, let r): "\(m): \(r)"
        case .invalidDecision(let m, let r): "\(m) returned an invalid selection: \(r)"
        }
    }
}
