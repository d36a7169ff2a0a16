import FoveaCore
import FoveaIO

// The vision tower stage: every family is a pre-norm ViT whose hidden states LLaVA reads
// (before any final norm). A family supplies its configuration parser, its embeddings and the
// names of its block weights; the encoder loop — and with it every readout a pruner asks for —
// is shared here. A new family is one file with a `VisionTowerFamily` plus one line in
// `VisionTowers.families`.

/// A vision tower's shape, whatever its family.
public struct VisionConfiguration: Sendable, Equatable {
    /// The `vision_config.model_type` it was read from.
    public var modelType = "clip_vision_model"
    public var hiddenSize = 768
    public var intermediateSize = 3072
    public var layers = 12
    public var heads = 12
    public var channels = 3
    public var imageSize = 224
    public var patchSize = 32
    public var activation = Activation.quickGelu
    public var layerNormEps: Float = 1e-5

    public var gridSide: Int { imageSize / patchSize }
    public var patches: Int { gridSide * gridSide }
    public var headDim: Int { hiddenSize / heads }

    public init() {}

    /// The checks every family's parser ends with.
    func validate(_ j: JSONConfig) throws {
        for (key, v) in [("hidden_size", hiddenSize), ("intermediate_size", intermediateSize), ("num_hidden_layers", layers),
                         ("num_attention_heads", heads), ("image_size", imageSize), ("patch_size", patchSize), ("num_channels", channels)] {
            try j.check(v > 0, key, "must be positive, found \(v)")
        }
        try j.check(hiddenSize % heads == 0, "num_attention_heads", "hidden_size \(hiddenSize) is not divisible by \(heads) heads")
        try j.check(imageSize % patchSize == 0, "patch_size", "image_size \(imageSize) is not a multiple of patch_size \(patchSize)")
    }
}

/// What the encoder hands on: features at the requested layers and, on request,
/// the CLS query's attention over every key (HiRED reads these).
public struct VisionOutput: Sendable {
    /// [partitions, tokens, hidden · featureLayers.count]; tokens = 1 + patches (CLS first).
    public var features: Tensor
    /// layer index (0-based encoder layer) → [partitions, heads, tokens] CLS-row probabilities.
    public var clsAttention: [Int: [Float]]
    /// [partitions, tokens, headDim]: the requested layer's keys averaged over heads; empty if not asked.
    public var meanKeys: [Float] = []
    /// layer → [partitions, heads, tokens]: attention each key receives, summed over the patch
    /// queries (the CLS query's row left out); for scoring without a CLS query.
    public var receivedAttention: [Int: [Float]] = [:]

    public init(features: Tensor, clsAttention: [Int: [Float]], meanKeys: [Float] = [], receivedAttention: [Int: [Float]] = [:]) {
        self.features = features
        self.clsAttention = clsAttention
        self.meanKeys = meanKeys
        self.receivedAttention = receivedAttention
    }
}

/// One pre-norm encoder block: x += γ₁·attn(norm1(x)); x += γ₂·mlp(norm2(x)); the γ are
/// LayerScale vectors where the family has them (DINOv2), absent otherwise (CLIP).
public struct ViTBlock: Sendable {
    let norm1: LayerNorm
    let wq: Linear, wk: Linear, wv: Linear, wo: Linear
    let scale1: Tensor?
    let norm2: LayerNorm
    let fc1: Linear, fc2: Linear
    let scale2: Tensor?

    init(norm1: LayerNorm, wq: Linear, wk: Linear, wv: Linear, wo: Linear, scale1: Tensor? = nil,
         norm2: LayerNorm, fc1: Linear, fc2: Linear, scale2: Tensor? = nil) {
        self.norm1 = norm1; self.wq = wq; self.wk = wk; self.wv = wv; self.wo = wo; self.scale1 = scale1
        self.norm2 = norm2; self.fc1 = fc1; self.fc2 = fc2; self.scale2 = scale2
    }

    var parameterCount: Int {
        [wq, wk, wv, wo, fc1, fc2].reduce(0) { $0 + $1.parameterCount } + 4 * norm1.gamma.count
            + (scale1?.count ?? 0) + (scale2?.count ?? 0)
    }
}

/// A loaded tower: its embeddings (family-specific) and blocks; the encoder loop is shared.
public protocol VisionTower: Sendable {
    var config: VisionConfiguration { get }
    /// Blocks loaded: those after the last one a feature is read from are never loaded.
    var blocks: [ViTBlock] { get }
    var embeddingParameterCount: Int { get }
    /// Hidden state 0 for `partitions` images [P, C, S, S]: rows [P·(1 + patches), D], CLS first
    /// in each partition, positions added and any pre-norm applied.
    func embed(pixels: UnsafePointer<Float>, partitions: Int, into x: UnsafeMutablePointer<Float>)
}

extension VisionTower {
    public var parameterCount: Int { embeddingParameterCount + blocks.reduce(0) { $0 + $1.parameterCount } }

    /// Runs the tower on `partitions` images [partitions, channels, S, S] and returns the
    /// hidden states at `featureLayers` (0 = embeddings, i = after block i) concatenated per
    /// token, plus CLS attention rows for the blocks in `clsAttentionLayers`, head-averaged keys
    /// of block `meanKeysLayer` and received attention for `receivedAttentionLayers`.
    public func callAsFunction(
        pixels: UnsafePointer<Float>, partitions P: Int,
        featureLayers: [Int], clsAttentionLayers: Set<Int> = [], meanKeysLayer: Int? = nil,
        receivedAttentionLayers: Set<Int> = []
    ) throws -> VisionOutput {
        let c = config
        BLAS.fitThreads(ownProducts: blocks.contains { $0.fc1.usesOwnManyRowProduct })
        let d = c.hiddenSize, T = c.patches + 1, rows = P * T
        let fl = featureLayers.count
        let x = Tensor(zeros: [rows, d])                         // residual stream [P·T, D]
        let h = Tensor(zeros: [rows, d])                         // normed input / attention output
        let q = Tensor(zeros: [rows, d]), k = Tensor(zeros: [rows, d]), v = Tensor(zeros: [rows, d])
        let mlp = Tensor(zeros: [rows, c.intermediateSize])
        let features = Tensor(zeros: [P, T, d * fl])
        var cls: [Int: [Float]] = [:]
        var meanKeys: [Float] = []
        var received: [Int: [Float]] = [:]

        embed(pixels: pixels, partitions: P, into: x.data)

        func capture(_ stateIndex: Int) {
            for (slot, l) in featureLayers.enumerated() where l == stateIndex {
                for r in 0..<rows {
                    (features.data + r * d * fl + slot * d).update(from: x.data + r * d, count: d)
                }
            }
        }
        capture(0)

        let last = featureLayers.max() ?? 0
        let heads = c.heads, hd = c.headDim
        let scale = 1 / Float(hd).squareRoot()
        for (li, block) in blocks.enumerated() where li < last {
            block.norm1(x.data, rows: rows, into: h.data)
            block.wq(h.data, rows: rows, into: q.data)
            block.wk(h.data, rows: rows, into: k.data)
            block.wv(h.data, rows: rows, into: v.data)
            if li == meanKeysLayer {
                meanKeys = [Float](repeating: 0, count: rows * hd)
                let inv = 1 / Float(heads)
                for r in 0..<rows {
                    let src = k.data + r * d
                    for hh in 0..<heads { for i in 0..<hd { meanKeys[r * hd + i] += src[hh * hd + i] } }
                    for i in 0..<hd { meanKeys[r * hd + i] *= inv }
                }
            }
            let wantCLS = clsAttentionLayers.contains(li), wantReceived = receivedAttentionLayers.contains(li)
            var clsRows = wantCLS ? [Float](repeating: 0, count: P * heads * T) : []
            var receivedRows = wantReceived ? [Float](repeating: 0, count: P * heads * T) : []
            for p in 0..<P {
                let off = p * T * d
                let readout = try Kernels.attention(
                    q: q.data + off, k: k.data + off, v: v.data + off, output: h.data + off,
                    geometry: AttentionGeometry(queries: T, keys: T, heads: heads, kvHeads: heads, headDim: hd),
                    mask: .bidirectional, scale: scale,
                    request: wantCLS || wantReceived ? AttentionRequest(rows: [0], columnSums: wantReceived) : .none)
                if wantCLS {
                    clsRows.replaceSubrange((p * heads * T)..<((p + 1) * heads * T), with: readout.rowProbabilities)
                }
                if wantReceived {
                    for i in 0..<(heads * T) { receivedRows[p * heads * T + i] = readout.columnSums[i] - readout.rowProbabilities[i] }
                }
            }
            if wantCLS { cls[li] = clsRows }
            if wantReceived { received[li] = receivedRows }
            block.wo(h.data, rows: rows, into: q.data)
            addResidual(q.data, scaledBy: block.scale1, into: x.data, rows: rows, dim: d)
            block.norm2(x.data, rows: rows, into: h.data)
            block.fc1(h.data, rows: rows, into: mlp.data)
            Kernels.activate(c.activation, mlp.data, count: rows * c.intermediateSize)
            block.fc2(mlp.data, rows: rows, into: h.data)
            addResidual(h.data, scaledBy: block.scale2, into: x.data, rows: rows, dim: d)
            capture(li + 1)
        }
        return VisionOutput(features: features, clsAttention: cls, meanKeys: meanKeys, receivedAttention: received)
    }
}

/// x += y, or x += γ ⊙ y per row where a LayerScale vector γ is given.
private func addResidual(_ y: UnsafePointer<Float>, scaledBy gamma: Tensor?, into x: UnsafeMutablePointer<Float>, rows: Int, dim: Int) {
    guard let gamma else { return Kernels.add(y, into: x, count: rows * dim) }
    let g = UnsafePointer(gamma.data)
    for r in 0..<rows {
        let xr = x + r * dim, yr = y + r * dim
        for i in 0..<dim { xr[i] += g[i] * yr[i] }
    }
}

/// One vision family: how its `vision_config` reads and how its weights load.
public struct VisionTowerFamily: Sendable {
    /// `vision_config.model_type`.
    public let modelType: String
    /// For reports: "CLIP ViT", "DINOv2 ViT", …
    public let name: String
    /// A tensor every checkpoint of this family has, relative to the tower's prefix; finds the prefix.
    public let probe: String
    public let parse: @Sendable (JSONConfig) throws -> VisionConfiguration
    /// (weights under the tower's prefix, configuration, blocks to load) → tower.
    public let load: @Sendable (WeightScope, VisionConfiguration, Int) throws -> any VisionTower
}

/// The vision families Fovea knows, by `model_type`.
public enum VisionTowers {
    public static let families: [VisionTowerFamily] = [
        CLIPVisionTower.family,
        DINOv2VisionTower.family,
    ]

    public static func family(_ modelType: String) -> VisionTowerFamily? {
        families.first { $0.modelType == modelType }
    }

    /// Reads a `vision_config` of any known family (CLIP when `model_type` is omitted, as transformers does for LLaVA).
    public static func configuration(json j: JSONConfig) throws -> VisionConfiguration {
        let type = try j.string("model_type", default: CLIPVisionTower.family.modelType)
        guard let f = family(type) else {
            throw FoveaError.unsupportedModel(path: j.path, field: "\(j.keyPath).model_type",
                                              value: "\(type) (supported: \(families.map(\.modelType).joined(separator: ", ")))")
        }
        return try f.parse(j)
    }

    /// Loads the tower `config` describes from any of the checkpoint layouts in `CheckpointScopes.vision`.
    static func load(_ store: any TensorSource, config: VisionConfiguration, layersNeeded: Int) throws -> any VisionTower {
        guard let f = family(config.modelType) else {
            throw FoveaError.unsupportedModel(path: "config.json", field: "vision_config.model_type", value: config.modelType)
        }
        let scope = try WeightScope.resolve(store, candidates: CheckpointScopes.vision, probe: f.probe)
        return try f.load(scope, config, min(layersNeeded, config.layers))
    }
}
