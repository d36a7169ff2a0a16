import FoveaCore
import FoveaIO

// Port of transformers' CLIPVisionTransformer (models/clip/modeling_clip.py, v5.23.0):
// patch embedding + CLS + learned positions, pre-layernorm, pre-norm encoder layers.
// LLaVA reads hidden states before the post-layernorm, so that is not loaded.

// MARK: Vision

/// One pre-norm encoder layer: x += attn(ln1(x)); x += mlp(ln2(x)).
struct CLIPEncoderLayer: Sendable {
    let layerNorm1: LayerNorm      // key: layer_norm1
    let wq: Linear                 // key: self_attn.q_proj
    let wk: Linear                 // key: self_attn.k_proj
    let wv: Linear                 // key: self_attn.v_proj
    let wo: Linear                 // key: self_attn.out_proj
    let layerNorm2: LayerNorm      // key: layer_norm2
    let fc1: Linear                // key: mlp.fc1
    let fc2: Linear                // key: mlp.fc2

    init(_ s: WeightScope, _ c: CLIPVisionConfiguration) throws {
        let d = c.hiddenSize
        layerNorm1 = try LayerNorm(s, "layer_norm1", dim: d, eps: c.layerNormEps)
        wq = try Linear(s, "self_attn.q_proj", inDim: d, outDim: d, bias: true)
        wk = try Linear(s, "self_attn.k_proj", inDim: d, outDim: d, bias: true)
        wv = try Linear(s, "self_attn.v_proj", inDim: d, outDim: d, bias: true)
        wo = try Linear(s, "self_attn.out_proj", inDim: d, outDim: d, bias: true)
        layerNorm2 = try LayerNorm(s, "layer_norm2", dim: d, eps: c.layerNormEps)
        fc1 = try Linear(s, "mlp.fc1", inDim: d, outDim: c.intermediateSize, bias: true)
        fc2 = try Linear(s, "mlp.fc2", inDim: c.intermediateSize, outDim: d, bias: true)
    }

    var parameterCount: Int {
        [wq, wk, wv, wo, fc1, fc2].reduce(0) { $0 + $1.parameterCount } + 2 * (layerNorm1.gamma.count * 2)
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
}

public struct CLIPVisionEncoder: Sendable {
    public let config: CLIPVisionConfiguration
    let patchEmbedding: Tensor     // key: embeddings.patch_embedding.weight, [D, C·p·p] (conv [D, C, p, p] flattened)
    let classEmbedding: Tensor     // key: embeddings.class_embedding, [D]
    let positionEmbedding: Tensor  // key: embeddings.position_embedding.weight, [1 + patches, D]
    let preLayerNorm: LayerNorm    // key: pre_layrnorm (sic)
    let layers: [CLIPEncoderLayer] // key: encoder.layers.N

    public init(_ s: WeightScope, config c: CLIPVisionConfiguration, layersNeeded: Int? = nil) throws {
        config = c
        let p = c.patchSize
        let d = c.hiddenSize
        patchEmbedding = try s.tensor("embeddings.patch_embedding.weight", [d, c.channels, p, p]).reshaped([d, c.channels * p * p])
        classEmbedding = try s.tensor("embeddings.class_embedding", [d])
        positionEmbedding = try s.tensor("embeddings.position_embedding.weight", [c.patches + 1, d])
        preLayerNorm = try LayerNorm(s, "pre_layrnorm", dim: d, eps: c.layerNormEps)
        // Layers after the last one a feature is read from are never run, so never loaded.
        let n = min(layersNeeded ?? c.layers, c.layers)
        layers = try (0..<n).map { try CLIPEncoderLayer(s.scoped("encoder.layers.\($0)."), c) }
    }

    public var parameterCount: Int {
        patchEmbedding.count + classEmbedding.count + positionEmbedding.count + 2 * preLayerNorm.gamma.count
            + layers.reduce(0) { $0 + $1.parameterCount }
    }

    /// Runs the tower on `partitions` images [partitions, channels, S, S] and returns the
    /// hidden states at `featureLayers` (0 = embeddings, i = after layer i) concatenated per
    /// token, plus CLS attention rows for the encoder layers in `clsAttentionLayers`.
    public func callAsFunction(
        pixels: UnsafePointer<Float>, partitions P: Int,
        featureLayers: [Int], clsAttentionLayers: Set<Int> = [], meanKeysLayer: Int? = nil,
        receivedAttentionLayers: Set<Int> = []
    ) -> VisionOutput {
        let c = config
        let d = c.hiddenSize, np = c.patches, T = np + 1, rows = P * T
        let side = c.imageSize, ps = c.patchSize
        let patchLen = c.channels * ps * ps
        let fl = featureLayers.count

        let x = Tensor(zeros: [rows, d])                         // residual stream [P·T, D]
        let h = Tensor(zeros: [rows, d])                         // normed input / attention output
        let q = Tensor(zeros: [rows, d]), k = Tensor(zeros: [rows, d]), v = Tensor(zeros: [rows, d])
        let mlp = Tensor(zeros: [rows, c.intermediateSize])
        let unfolded = Tensor(zeros: [np, patchLen])
        let features = Tensor(zeros: [P, T, d * fl])
        var cls: [Int: [Float]] = [:]
        var meanKeys: [Float] = []
        var received: [Int: [Float]] = [:]

        // Embeddings: CLS, then patches in raster order; plus learned positions.
        for p in 0..<P {
            PatchEmbedding.unfold(pixels + p * c.channels * side * side, channels: c.channels, height: side, width: side,
                                  patch: ps, into: unfolded.data)
            let xp = x.data + p * T * d
            xp.update(from: classEmbedding.data, count: d)
            Kernels.linear(unfolded.data, rows: np, inDim: patchLen, weight: patchEmbedding.data, bias: nil, outDim: d, into: xp + d)
            Kernels.add(positionEmbedding.data, into: xp, count: T * d)
        }
        preLayerNorm(x.data, rows: rows, into: x.data)

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
        for (li, layer) in layers.enumerated() where li < last {
            // Attention block.
            layer.layerNorm1(x.data, rows: rows, into: h.data)
            layer.wq(h.data, rows: rows, into: q.data)
            layer.wk(h.data, rows: rows, into: k.data)
            layer.wv(h.data, rows: rows, into: v.data)
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
                let readout = Kernels.attention(
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
            layer.wo(h.data, rows: rows, into: q.data)
            Kernels.add(q.data, into: x.data, count: rows * d)
            // MLP block.
            layer.layerNorm2(x.data, rows: rows, into: h.data)
            layer.fc1(h.data, rows: rows, into: mlp.data)
            Kernels.activate(c.activation, mlp.data, count: rows * c.intermediateSize)
            layer.fc2(mlp.data, rows: rows, into: h.data)
            Kernels.add(h.data, into: x.data, count: rows * d)
            capture(li + 1)
        }
        return VisionOutput(features: features, clsAttention: cls, meanKeys: meanKeys, receivedAttention: received)
    }
}

// MARK: Projector

/// LLaVA's multimodal projector: Linear → activation → Linear, per token.
public struct MultimodalProjector: Sendable {
    let linear1: Linear            // key: linear_1
    let linear2: Linear            // key: linear_2
    let activation: Activation

    public init(_ s: WeightScope, inDim: Int, outDim: Int, activation: Activation, bias: Bool) throws {
        linear1 = try Linear(s, "linear_1", inDim: inDim, outDim: outDim, bias: bias)
        linear2 = try Linear(s, "linear_2", inDim: outDim, outDim: outDim, bias: bias)
        self.activation = activation
    }

    public var parameterCount: Int { linear1.parameterCount + linear2.parameterCount }
    public var outDim: Int { linear2.outDim }

    /// [rows, inDim] → [rows, outDim], keeping `x` alive for the call.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        withExtendedLifetime(x) { self(x.data, rows: x.shape[0]) }
    }

    /// [rows, inDim] → [rows, outDim]
    public func callAsFunction(_ x: UnsafePointer<Float>, rows: Int) -> Tensor {
        let mid = Tensor(zeros: [rows, linear1.outDim])
        linear1(x, rows: rows, into: mid.data)
        Kernels.activate(activation, mid.data, count: mid.count)
        let out = Tensor(zeros: [rows, linear2.outDim])
        linear2(mid.data, rows: rows, into: out.data)
        return out
    }
}
