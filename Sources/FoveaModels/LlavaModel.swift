import Foundation
import FoveaCore
import FoveaIO
import FoveaKV

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

    public init(pixels: Tensor, originalHeight: Int, originalWidth: Int) {
        self.pixels = pixels
        self.originalHeight = originalHeight
        self.originalWidth = originalWidth
    }
}

/// An image after the vision tower and projector, in the order the LLM will read it.
public struct EncodedImage: Sendable {
    /// [tokens, text hidden]
    public var features: Tensor
    /// Vision tokens per partition before packing (CLS excluded under `default`).
    public var tokensPerPartition: Int
    public var partitions: Int
    /// Tile grid (rows, cols); (0, 0) for single-partition models.
    public var grid: (rows: Int, cols: Int)
    /// Raw tower output (features at the feature layers, CLS attention if asked).
    public var vision: VisionOutput
}

/// A LLaVA-family checkpoint: vision tower + projector + decoder, or a text-only decoder.
public final class VisionLanguageModel: @unchecked Sendable {
    public let directory: String
    public let config: ModelConfiguration
    public let vision: CLIPVisionEncoder?
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
            let vs = try WeightScope.resolve(store, candidates: CheckpointScopes.vision, probe: "embeddings.class_embedding")
            vision = try CLIPVisionEncoder(vs, config: v, layersNeeded: config.visionFeatureLayers.max())
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

    /// Vision tower → feature selection → projector → (LLaVA-NeXT) packing.
    public func encode(_ image: ImageInput, clsAttentionLayers: Set<Int> = []) throws -> EncodedImage {
        guard let v = config.vision, let vision, let projector else {
            throw FoveaError.invalidInput(reason: "\(directory): a text-only model cannot take images")
        }
        let expected = [partitions(height: image.originalHeight, width: image.originalWidth), v.channels, v.imageSize, v.imageSize]
        guard image.pixels.shape == expected else {
            throw FoveaError.shapeMismatch(tensor: "pixel_values", expected: expected, actual: image.pixels.shape)
        }
        let P = expected[0]
        let out = vision(pixels: image.pixels.data, partitions: P, featureLayers: config.visionFeatureLayers,
                         clsAttentionLayers: clsAttentionLayers)
        let T = v.patches + 1, width = config.visionFeatureWidth
        let skip = config.featureStrategy == .default ? 1 : 0
        let perPartition = T - skip
        // Select (drop CLS) into one [P·perPartition, width] block for a single projector call.
        let selected = Tensor(zeros: [P * perPartition, width])
        for p in 0..<P {
            (selected.data + p * perPartition * width).update(from: out.features.data + (p * T + skip) * width,
                                                              count: perPartition * width)
        }
        let projected = projector(selected.data, rows: selected.shape[0])
        if config.kind == .llavaNext {
            let g = Anyres.gridShape(height: image.originalHeight, width: image.originalWidth, pinpoints: config.gridPinpoints,
                                     tileSize: v.imageSize)
            let packed = Anyres.pack(tiles: projected.reshaped([P, perPartition, projector.outDim]), grid: g, side: v.gridSide,
                                     height: image.originalHeight, width: image.originalWidth, newline: imageNewline)
            return EncodedImage(features: packed, tokensPerPartition: perPartition, partitions: P, grid: g, vision: out)
        }
        return EncodedImage(features: projected, tokensPerPartition: perPartition, partitions: P, grid: (0, 0), vision: out)
    }

    /// Builds the LLM input: token embeddings with image features placed at the image tokens.
    ///
    /// `tokens` may hold the image token once per image (it is expanded to the image's
    /// feature count) or already expanded, as transformers' processors emit it.
    public func embed(tokens: [Int], images: [EncodedImage]) throws -> (embeddings: Tensor, origins: [TokenOrigin]) {
        let d = config.text.hiddenSize
        let imageToken = config.imageTokenId
        let slots = tokens.indices.filter { tokens[$0] == imageToken }
        let featureTotal = images.reduce(0) { $0 + $1.features.shape[0] }
        // Runs of image tokens, one run per image when expanded.
        var segments: [(start: Int, count: Int)] = []
        if images.isEmpty {
            guard slots.isEmpty || config.kind == .textOnly else {
                throw FoveaError.invalidInput(reason: "prompt has \(slots.count) image tokens (id \(imageToken)) but no image was given")
            }
        } else if slots.count == images.count {
            segments = slots.map { ($0, 1) }
        } else if slots.count == featureTotal {
            var s = 0
            for img in images {
                segments.append((slots[s], img.features.shape[0]))
                let run = slots[s..<(s + img.features.shape[0])]
                guard run.last! - run.first! == run.count - 1 else {
                    throw FoveaError.invalidInput(reason: "image tokens for image \(segments.count) are not contiguous")
                }
                s += img.features.shape[0]
            }
        } else {
            throw FoveaError.invalidInput(reason:
                "prompt has \(slots.count) image tokens (id \(imageToken)) for \(images.count) image(s) with \(featureTotal) features: expected \(images.count) (one per image) or \(featureTotal)")
        }
        let length = tokens.count - segments.reduce(0) { $0 + $1.count } + featureTotal
        let x = Tensor(zeros: [length, d])
        var origins: [TokenOrigin] = []
        origins.reserveCapacity(length)
        var row = 0, t = 0
        var seenImage = false
        for (i, seg) in segments.enumerated() {
            let text = Array(tokens[t..<seg.start])
            try decoder.embed(text, into: x.data + row * d)
            row += text.count
            origins += Array(repeating: seenImage ? .textAfter : .prefixText, count: text.count)
            let f = images[i].features
            (x.data + row * d).update(from: f.data, count: f.count)
            row += f.shape[0]
            origins += Array(repeating: .image, count: f.shape[0])
            seenImage = true
            t = seg.start + seg.count
        }
        let rest = Array(tokens[t...])
        try decoder.embed(rest, into: x.data + row * d)
        origins += Array(repeating: seenImage ? .textAfter : .prefixText, count: rest.count)
        return (x, origins)
    }

    /// Parameters per component, for `fovea inspect`.
    public var parameterCounts: [(String, Int)] {
        var out: [(String, Int)] = []
        if let vision { out.append(("vision tower (\(vision.layers.count) of \(vision.config.layers) layers loaded)", vision.parameterCount)) }
        if let projector { out.append(("projector", projector.parameterCount)) }
        if let imageNewline { out.append(("image_newline", imageNewline.count)) }
        out.append(("language model", decoder.parameterCount))
        return out
    }
}
