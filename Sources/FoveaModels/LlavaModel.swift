import Foundation
import FoveaCore
import FoveaIO
import FoveaKV
import FoveaPruning

// Port of transformers' LlavaForConditionalGeneration and LlavaNextForConditionalGeneration
// (models/llava/modeling_llava.py, models/llava_next/modeling_llava_next.py, v5.23.0).

// MARK: Model

/// One image, preprocessed: the partitions the vision tower sees.
public struct ImageInput: Sendable {
    /// [partitions, channels, S, S]: for LLaVA-NeXT the base image then the tiles, row-major.
    public var pixels: Tensor
    /// Original (height, width) before preprocessing; LLaVA-NeXT needs it to unpad.
    public var originalHeight: Int
    public var originalWidth: Int
    /// Longest original side `encode` accepts (anyres ratios stay exact in Double well past it).
    public static let maxSide = 1 << 20

    public init(pixels: Tensor, originalHeight: Int, originalWidth: Int) {
        self.pixels = pixels
        self.originalHeight = originalHeight
        self.originalWidth = originalWidth
    }
}

/// An image after the vision tower, pruner, projector and packing, in the order the LLM reads it.
public struct EncodedImage: Sendable {
    /// [tokens, text hidden]
    public var features: Tensor
    /// Per token: where it came from.
    public var sources: [VisualSource]
    /// Per token: its index in the unpruned packed sequence (its original place).
    public var places: [Int]
    /// Tokens the unpruned image gives (transformers' count).
    public var fullCount: Int
    /// Vision tokens per partition before packing (CLS excluded under `default`).
    public var tokensPerPartition: Int
    public var partitions: Int
    /// Tile grid (rows, cols); (0, 0) for single-partition models.
    public var grid: (rows: Int, cols: Int)
    /// Raw tower output (features at the feature layers, CLS attention if asked).
    public var vision: VisionOutput
    /// What the pruner chose, with its nominal budget; `.all` when nothing was pruned.
    public var decision: PruningDecision
    /// Kept tokens that unpad discarded.
    public var lostToUnpad: Int
    /// Seconds the pruner's own selection took.
    public var selectionSeconds: Double
}

/// A LLaVA-family checkpoint: vision tower + projector + decoder, or a text-only decoder.
public final class VisionLanguageModel: @unchecked Sendable {
    public let directory: String
    public let config: ModelConfiguration
    public let vision: (any VisionTower)?
    public let projector: MultimodalProjector?
    /// [text hidden]; LLaVA-NeXT only.
    public let imageNewline: Tensor?
    public let decoder: LlamaDecoder
    public let weights: any TensorSource

    /// Loads a checkpoint folder (config.json + safetensors).
    public convenience init(directory: String) throws {
        let config = try ModelConfiguration(directory: directory)
        try self.init(config: config, weights: try WeightStore(directory: directory), name: directory)
    }

    public init(config: ModelConfiguration, weights store: any TensorSource, name: String) throws {
        directory = name
        self.config = config
        weights = store
        let language = try WeightScope.resolve(store, candidates: CheckpointScopes.language, probe: "embed_tokens.weight")
        let head = CheckpointScopes.lmHead.first { store.contains($0 + "lm_head.weight") }.map { WeightScope(store: store, prefix: $0) }
        decoder = try LlamaDecoder(language: language, head: head, config: config.text)
        if let v = config.vision {
            vision = try VisionTowers.load(store, config: v, layersNeeded: config.visionFeatureLayers.max() ?? v.layers)
            let ps = try WeightScope.resolve(store, candidates: CheckpointScopes.projector, probe: "linear_1.weight")
            projector = try MultimodalProjector(ps, inDim: config.visionFeatureWidth, outDim: config.text.hiddenSize,
                                                activation: config.projectorActivation, bias: config.projectorBias)
            if config.kind == .llavaNext {
                let top = try WeightScope.resolve(store, candidates: CheckpointScopes.top, probe: "image_newline")
                imageNewline = try top.tensor("image_newline", [config.text.hiddenSize])
            } else {
                imageNewline = nil
            }
        } else {
            vision = nil
            projector = nil
            imageNewline = nil
        }
    }

    /// Vision tokens one partition contributes (CLS dropped under `default`).
    public var tokensPerPartition: Int {
        guard let v = config.vision else { return 0 }
        return v.patches + (config.featureStrategy == .full ? 1 : 0)
    }

    /// Number of partitions an image of this size is cut into (1 for LLaVA-1.5).
    public func partitions(height: Int, width: Int) -> Int {
        guard config.kind == .llavaNext, let v = config.vision else { return 1 }
        let g = Anyres.gridShape(height: height, width: width, pinpoints: config.gridPinpoints, tileSize: v.imageSize)
        return 1 + g.rows * g.cols
    }

    /// Visual tokens the LLM sees for one image of this original size (no pruning).
    public func visualTokenCount(height: Int, width: Int) -> Int {
        guard let v = config.vision else { return 0 }
        if config.kind == .llavaNext {
            return Anyres.tokenCount(height: height, width: width, pinpoints: config.gridPinpoints, tileSize: v.imageSize,
                                     patchesPerSide: v.gridSide)
        }
        return tokensPerPartition
    }

    /// The vision tower's shape, as pruners see it.
    public var visionGeometry: VisionGeometry? {
        guard let v = config.vision, let vision else { return nil }
        return VisionGeometry(layersRun: vision.blocks.count, featureLayer: (config.visionFeatureLayers.max() ?? 1) - 1,
                              heads: v.heads, headDim: v.headDim, gridSide: v.gridSide, hasCLS: true)
    }

    /// Partitions → vision tower → pruner → projector (kept tokens only) → packing.
    ///
    /// With `plan` `.full` this is transformers' pipeline; otherwise the tower also records
    /// what the pruner asked for, the pruner chooses per partition, and only what it kept (or
    /// built) is projected and packed. An in-LLM plan changes nothing here.
    public func encode(_ image: ImageInput, plan: PruningPlan = .full) throws -> EncodedImage {
        guard let v = config.vision, let vision, let projector, let geometry = visionGeometry else {
            throw FoveaError.invalidArgument(name: "image", value: directory, reason: "a text-only model cannot take images")
        }
        // The original size drives anyres arithmetic (ratios, grid choice): zero or absurd sizes trap there.
        for (name, value) in [("height", image.originalHeight), ("width", image.originalWidth)] where !(1...ImageInput.maxSide).contains(value) {
            throw FoveaError.invalidArgument(name: "image \(name)", value: "\(value)", reason: "must be 1…\(ImageInput.maxSide) pixels")
        }
        let expected = [partitions(height: image.originalHeight, width: image.originalWidth), v.channels, v.imageSize, v.imageSize]
        guard image.pixels.shape == expected else {
            throw FoveaError.shapeMismatch(tensor: "pixel_values", expected: expected, actual: image.pixels.shape)
        }
        let P = expected[0]
        var pruner: (any VisualTokenPruner)?
        if case .beforeLLM(let p) = plan.stage { pruner = p }
        let needs = try pruner?.needs(geometry) ?? .none
        if pruner != nil && config.featureStrategy != .default {
            throw FoveaError.incompatibleMethod(method: plan.spec.name, reason: "pruning needs vision_feature_select_strategy 'default' (CLS dropped); this model uses '\(config.featureStrategy.rawValue)'")
        }
        if pruner != nil && config.visionFeatureLayers.count != 1 {
            throw FoveaError.incompatibleMethod(method: plan.spec.name, reason: "pruning reads one feature layer; this model concatenates \(config.visionFeatureLayers)")
        }
        let out = try vision(pixels: image.pixels.data, partitions: P, featureLayers: config.visionFeatureLayers,
                         clsAttentionLayers: needs.clsAttentionLayers, meanKeysLayer: needs.meanKeysLayer,
                         receivedAttentionLayers: needs.receivedAttentionLayers)
        let T = v.patches + 1, width = config.visionFeatureWidth, D = projector.outDim
        let skip = config.featureStrategy == .default ? 1 : 0
        let perPartition = T - skip
        let tiled = config.kind == .llavaNext && P > 1
        let grid = config.kind == .llavaNext
            ? Anyres.gridShape(height: image.originalHeight, width: image.originalWidth, pinpoints: config.gridPinpoints, tileSize: v.imageSize)
            : (rows: 0, cols: 0)

        // Patch rows ([P·perPartition, width]): projected up front only when the pruner scores them.
        func patchRows() -> Tensor {
            let selected = Tensor(zeros: [P * perPartition, width])
            for p in 0..<P {
                (selected.data + p * perPartition * width).update(from: out.features.data + (p * T + skip) * width,
                                                                  count: perPartition * width)
            }
            return selected
        }
        var projectedAll: Tensor?
        if pruner == nil || needs.projected {
            projectedAll = projector(patchRows())
        }

        var decision = PruningDecision.all(partitions: P, patches: perPartition)
        var selectionSeconds = 0.0
        if let pruner {
            let survives = Self.unpadMask(partitions: P, grid: grid, side: v.gridSide, height: image.originalHeight,
                                          width: image.originalWidth, tiled: tiled)
            let t0 = DispatchTime.now().uptimeNanoseconds
            decision = try out.meanKeys.withUnsafeBufferPointer { keys in
                try pruner.select(PruningContext(
                    geometry: geometry, partitions: P, grid: grid, clsAttention: out.clsAttention,
                    receivedAttention: out.receivedAttention, features: out.features.data, featureWidth: width, meanKeys: keys.isEmpty ? nil : keys.baseAddress,
                    projected: projectedAll.map { UnsafePointer($0.data) }, projectedWidth: D, survivesUnpad: survives))
            }
            selectionSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            try Self.check(decision, partitions: P, patches: perPartition, width: width, method: plan.spec.name)
        }

        // Projector rows: every partition's kept patches, then every partition's built tokens.
        var rowOfKept = [Int](), rowOfMerged = [Int]()
        var keptTotal = 0
        for sel in decision.partitions { rowOfKept.append(keptTotal); keptTotal += sel.kept.count }
        var mergedTotal = 0
        for sel in decision.partitions { rowOfMerged.append(keptTotal + mergedTotal); mergedTotal += sel.merged.count }
        let projected: Tensor
        if pruner == nil, let all = projectedAll {
            projected = all
        } else {
            let merged = Tensor(zeros: [mergedTotal, width])
            var m = 0
            for sel in decision.partitions {
                for t in sel.merged { (merged.data + m * width).update(from: t.features, count: width); m += 1 }
            }
            let mergedProjected = mergedTotal > 0 ? projector(merged) : Tensor(zeros: [0, D])
            projected = Tensor(zeros: [keptTotal + mergedTotal, D])
            if let all = projectedAll {
                for (p, sel) in decision.partitions.enumerated() {
                    for (i, j) in sel.kept.enumerated() {
                        (projected.data + (rowOfKept[p] + i) * D).update(from: all.data + (p * perPartition + j) * D, count: D)
                    }
                }
            } else if keptTotal > 0 {
                let rows = Tensor(zeros: [keptTotal, width])
                for (p, sel) in decision.partitions.enumerated() {
                    for (i, j) in sel.kept.enumerated() {
                        (rows.data + (rowOfKept[p] + i) * width).update(from: out.features.data + (p * T + skip + j) * width, count: width)
                    }
                }
                let kp = projector(rows)
                projected.data.update(from: kp.data, count: keptTotal * D)
            }
            (projected.data + keptTotal * D).update(from: mergedProjected.data, count: mergedTotal * D)
        }

        let layout = Packing.layout(decision: decision, grid: grid, side: v.gridSide, perPartition: perPartition, height: image.originalHeight,
                                    width: image.originalWidth, rowOfKept: rowOfKept, rowOfMerged: rowOfMerged,
                                    newline: plan.newline, modelHasNewline: imageNewline != nil, tiled: tiled)
        let features = Tensor(zeros: [layout.rows.count, D])
        for (i, r) in layout.rows.enumerated() {
            if r >= 0 {
                (features.data + i * D).update(from: projected.data + r * D, count: D)
            } else if let imageNewline {
                (features.data + i * D).update(from: imageNewline.data, count: D)
            }
        }
        return EncodedImage(features: features, sources: layout.sources, places: layout.places, fullCount: layout.fullCount,
                            tokensPerPartition: perPartition, partitions: P, grid: grid, vision: out, decision: decision,
                            lostToUnpad: layout.lostToUnpad, selectionSeconds: selectionSeconds)
    }

    /// Per partition, which patches lie inside LLaVA-NeXT's unpadded region (all for the base).
    static func unpadMask(partitions P: Int, grid: (rows: Int, cols: Int), side G: Int, height: Int, width: Int, tiled: Bool) -> [[Bool]] {
        var mask = [[Bool]](repeating: [Bool](repeating: true, count: G * G), count: P)
        guard tiled else { return mask }
        let r = Anyres.unpaddedRegion(height: height, width: width, gridHeight: grid.rows * G, gridWidth: grid.cols * G)
        for p in 1..<P {
            let (tr, tc) = ((p - 1) / grid.cols, (p - 1) % grid.cols)
            for y in 0..<G {
                for x in 0..<G {
                    let (gy, gx) = (tr * G + y, tc * G + x)
                    mask[p][y * G + x] = gy >= r.row && gy < r.row + r.rows && gx >= r.col && gx < r.col + r.cols
                }
            }
        }
        return mask
    }

    /// A pruner is a plug-in: what it returns is checked before it indexes anything.
    static func check(_ d: PruningDecision, partitions P: Int, patches n: Int, width: Int, method: String) throws {
        func bad(_ r: String) -> FoveaError { .invalidInput(reason: PruningError.invalidDecision(method: method, reason: r).description) }
        guard d.partitions.count == P else { throw bad("\(d.partitions.count) partitions for \(P)") }
        for (p, sel) in d.partitions.enumerated() {
            guard zip(sel.kept, sel.kept.dropFirst()).allSatisfy({ $0 < $1 }), sel.kept.allSatisfy({ $0 >= 0 && $0 < n }) else {
                throw bad("partition \(p): kept indices must be ascending and in 0..<\(n)")
            }
            for t in sel.merged {
                guard t.features.count == width else { throw bad("partition \(p): a merged token has \(t.features.count) features, not \(width)") }
                guard t.sources.allSatisfy({ $0 >= 0 && $0 < n }), (t.anchor ?? 0) >= 0, (t.anchor ?? 0) < n else {
                    throw bad("partition \(p): a merged token names a patch outside 0..<\(n)")
                }
            }
        }
    }

    /// Builds the LLM input: token embeddings with image features placed at the image tokens,
    /// and every row's position id, origin and (image rows) source.
    ///
    /// `tokens` may hold the image token once per image, or already expanded to the image's
    /// unpruned token count (as transformers' processors emit it) or to its kept count.
    /// `positions`: `.orig` gives each image token its place in the unpruned sequence and the
    /// text after it the positions it would have had; `.renumber` numbers rows 0…L−1.
    public func embed(tokens: [Int], images: [EncodedImage], positions mode: PositionMode = .orig) throws -> MergedSequence {
        let d = config.text.hiddenSize
        let imageToken = config.imageTokenId
        let slots = tokens.indices.filter { tokens[$0] == imageToken }
        // Runs of image tokens, one run per image.
        var segments: [(start: Int, count: Int)] = []
        if images.isEmpty {
            guard slots.isEmpty || config.kind == .textOnly else {
                throw FoveaError.imageTokenMismatch(reason: "the prompt has \(slots.count) image tokens (id \(imageToken)) but no image was given")
            }
        } else if slots.count == images.count {
            segments = slots.map { ($0, 1) }
        } else {
            let full = images.reduce(0) { $0 + $1.fullCount }, kept = images.reduce(0) { $0 + $1.features.shape[0] }
            guard slots.count == full || slots.count == kept else {
                throw FoveaError.imageTokenMismatch(reason:
                    "the prompt has \(slots.count) image tokens (id \(imageToken)) for \(images.count) image(s) with \(full) tokens: expected \(images.count) (one per image) or \(full)")
            }
            var s = 0
            for img in images {
                let run = slots.count == full ? img.fullCount : img.features.shape[0]
                guard run > 0, slots[s + run - 1] - slots[s] == run - 1 else {
                    throw FoveaError.imageTokenMismatch(reason: "the tokens for image \(segments.count) are not contiguous")
                }
                segments.append((slots[s], run))
                s += run
            }
        }
        let featureTotal = images.reduce(0) { $0 + $1.features.shape[0] }
        let length = tokens.count - segments.reduce(0) { $0 + $1.count } + featureTotal
        var seq = MergedSequence(embeddings: Tensor(zeros: [length, d]))
        seq.positions.reserveCapacity(length)
        seq.origins.reserveCapacity(length)
        var position: Int32 = 0
        var t = 0
        var seenImage = false
        func text(_ ids: ArraySlice<Int>) throws {
            try decoder.embed(Array(ids), into: seq.embeddings.data + seq.positions.count * d)
            for _ in ids {
                seq.positions.append(position)
                position += 1
                seq.origins.append(seenImage ? .textAfter : .prefixText)
                seq.sources.append(nil)
            }
        }
        for (i, seg) in segments.enumerated() {
            try text(tokens[t..<seg.start])
            let img = images[i]
            (seq.embeddings.data + seq.positions.count * d).update(from: img.features.data, count: img.features.count)
            let start = position
            for (k, source) in img.sources.enumerated() {
                seq.positions.append(mode == .orig ? start + Int32(img.places[k]) : position + Int32(k))
                seq.origins.append(.image)
                seq.sources.append(ImageRowSource(image: i, source: source))
            }
            position = mode == .orig ? start + Int32(img.fullCount) : position + Int32(img.sources.count)
            seenImage = true
            t = seg.start + seg.count
        }
        try text(tokens[t...])
        return seq
    }

    /// Parameters per component, for `fovea inspect`.
    public var parameterCounts: [(String, Int)] {
        var out: [(String, Int)] = []
        if let vision { out.append(("vision tower (\(vision.blocks.count) of \(vision.config.layers) layers loaded)", vision.parameterCount)) }
        if let projector { out.append(("projector", projector.parameterCount)) }
        if let imageNewline { out.append(("image_newline", imageNewline.count)) }
        out.append(("language model", decoder.parameterCount))
        return out
    }
}

/// The language model's input: one row per token, each with what the decoder and the KV
/// policies need to know about it.
public struct MergedSequence: Sendable {
    /// [rows, text hidden]
    public var embeddings: Tensor
    /// Position id of each row (RoPE); increasing, with gaps where tokens were pruned under `pos=orig`.
    public var positions: [Int32] = []
    public var origins: [TokenOrigin] = []
    /// For image rows, the image and where in it the row came from; nil for text.
    public var sources: [ImageRowSource?] = []

    public init(embeddings: Tensor) { self.embeddings = embeddings }

    public var count: Int { positions.count }
}

public struct ImageRowSource: Sendable, Equatable {
    public var image: Int
    public var source: VisualSource
}
