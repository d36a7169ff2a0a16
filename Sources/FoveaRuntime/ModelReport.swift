import Foundation
import FoveaCore
import FoveaIO
import FoveaKV
import FoveaModels

/// What `fovea inspect` prints.
public enum ModelReport {
    /// Architecture, parameters per component, stored dtypes, and the memory weights and a
    /// full KV cache of `context` tokens need.
    public static func describe(_ m: VisionLanguageModel, context: Int) -> String {
        let c = m.config
        let t = c.text
        var lines: [String] = []
        let mb = { (b: Int) in String(format: "%.2f MB", Double(b) / 1_048_576) }
        lines.append("model: \(m.directory)")
        lines.append("architecture: \(c.kind.rawValue)")
        if let v = c.vision {
            lines.append("vision: \(VisionTowers.family(v.modelType)?.name ?? v.modelType), \(v.layers) layers, hidden \(v.hiddenSize), \(v.heads) heads, MLP \(v.intermediateSize), "
                + "\(v.imageSize) px / patch \(v.patchSize) → \(v.patches) patches + CLS, \(v.activation.rawValue)")
            lines.append("vision features: hidden states \(c.visionFeatureLayers), strategy '\(c.featureStrategy.rawValue)' → "
                + "\(m.tokensPerPartition) tokens per partition")
            lines.append("projector: \(c.visionFeatureWidth) → \(t.hiddenSize) → \(t.hiddenSize), \(c.projectorActivation.rawValue)")
            if c.kind == .llavaNext {
                lines.append("anyres pinpoints (h×w): " + c.gridPinpoints.map { "\($0[0])×\($0[1])" }.joined(separator: ", "))
            }
            lines.append("image token id: \(c.imageTokenId)")
        }
        lines.append("language: \(t.modelType), \(t.layers) layers, hidden \(t.hiddenSize), \(t.heads) heads / \(t.kvHeads) KV heads, "
            + "head dim \(t.headDim), MLP \(t.intermediateSize), vocab \(t.vocabSize), rope θ \(t.ropeTheta)"
            + (t.slidingWindow.map { ", sliding window \($0)" } ?? "") + (t.tieWordEmbeddings ? ", tied embeddings" : ""))
        lines.append("parameters:")
        var total = 0
        for (name, n) in m.parameterCounts {
            lines.append("  \(name): \(n.formatted())")
            total += n
        }
        lines.append("  total: \(total.formatted())")
        if let store = m.weights as? WeightStore {
            let dtypes = store.dtypeCounts.sorted { $0.key.rawValue < $1.key.rawValue }
                .map { "\($0.key.rawValue) \($0.value.formatted())" }.joined(separator: ", ")
            lines.append("stored: \(store.parameterCount.formatted()) parameters; dtypes \(dtypes) (\(mb(store.totalBytes)) on disk)")
        }
        let kept = m.decoder.storedFormats
        if kept.isEmpty {
            lines.append("weights in memory (float32): \(mb(total * 4))")
        } else {
            // The language model's matrices at their stored size; the tower and projector counted as float32.
            let text = m.decoder.parameterCount
            let formats = kept.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
            lines.append("weights in memory: \(mb(m.decoder.weightBytes + (total - text) * 4)) (language model \(mb(m.decoder.weightBytes)), "
                + "matrices kept as stored: \(formats))")
        }
        let kv = KVCache.bytes(layers: t.layers, kvHeads: t.kvHeads, headDim: t.headDim, tokens: context)
        lines.append("full KV cache for \(context) tokens (float32): \(mb(kv)) (\(String(format: "%.2f KB", Double(kv / context) / 1024)) per token)")
        return lines.joined(separator: "\n")
    }
}
