import Dispatch
import FoveaCore
import FoveaIO
import FoveaKV
import FoveaPruning

// Port of transformers' LlamaForCausalLM / MistralForCausalLM (models/llama/modeling_llama.py,
// models/mistral/modeling_mistral.py, v5.23.0): RMSNorm, rotate-half RoPE, grouped-query
// attention, SwiGLU MLP. Mistral differs only in defaults and the sliding-window mask.

// MARK: Language

struct DecoderLayer: Sendable {
    let inputNorm: RMSNorm         // key: input_layernorm
    let wq: Linear                 // key: self_attn.q_proj
    let wk: Linear                 // key: self_attn.k_proj
    let wv: Linear                 // key: self_attn.v_proj
    let wo: Linear                 // key: self_attn.o_proj
    let postNorm: RMSNorm          // key: post_attention_layernorm
    let w1: Linear                 // key: mlp.gate_proj
    let w3: Linear                 // key: mlp.up_proj
    let w2: Linear                 // key: mlp.down_proj

    init(_ s: WeightScope, _ c: TextConfiguration) throws {
        let d = c.hiddenSize, qd = c.heads * c.headDim, kvd = c.kvHeads * c.headDim
        inputNorm = try RMSNorm(s, "input_layernorm", dim: d, eps: c.rmsNormEps)
        wq = try Linear(s, "self_attn.q_proj", inDim: d, outDim: qd, bias: c.attentionBias)
        wk = try Linear(s, "self_attn.k_proj", inDim: d, outDim: kvd, bias: c.attentionBias)
        wv = try Linear(s, "self_attn.v_proj", inDim: d, outDim: kvd, bias: c.attentionBias)
        wo = try Linear(s, "self_attn.o_proj", inDim: qd, outDim: d, bias: c.attentionBias)
        postNorm = try RMSNorm(s, "post_attention_layernorm", dim: d, eps: c.rmsNormEps)
        w1 = try Linear(s, "mlp.gate_proj", inDim: d, outDim: c.intermediateSize, bias: c.mlpBias)
        w3 = try Linear(s, "mlp.up_proj", inDim: d, outDim: c.intermediateSize, bias: c.mlpBias)
        w2 = try Linear(s, "mlp.down_proj", inDim: c.intermediateSize, outDim: d, bias: c.mlpBias)
    }

    init(wq: Linear, wk: Linear, wv: Linear, wo: Linear, w1: Linear, w2: Linear, w3: Linear, inputNorm: RMSNorm, postNorm: RMSNorm) {
        self.wq = wq; self.wk = wk; self.wv = wv; self.wo = wo
        self.w1 = w1; self.w2 = w2; self.w3 = w3
        self.inputNorm = inputNorm; self.postNorm = postNorm
    }

    var parameterCount: Int {
        [wq, wk, wv, wo, w1, w2, w3].reduce(0) { $0 + $1.parameterCount } + inputNorm.gamma.count + postNorm.gamma.count
    }
}

/// Which rows of the final hidden states become logits.
public enum LogitsRows: Sendable {
    case last
    case all
}

/// Reusable buffers for one generation stream, so decode steps allocate nothing.
public final class DecoderWorkspace: @unchecked Sendable {
    let h = Scratch(), q = Scratch(), k = Scratch(), v = Scratch(), attn = Scratch()
    let gate = Scratch(), up = Scratch(), scores = Scratch(), logits = Scratch()
    var positions: [Int32] = []
    var origins: [TokenOrigin] = []
    let normed = Scratch(), previousKeys = Scratch(), gathered = Scratch()
    /// Seconds spent in attention during decode steps since the workspace was made or reset.
    public var decodeAttentionSeconds = 0.0
    /// What in-LLM hooks did in the last forward: (layer, rows before, rows after).
    public internal(set) var hookLog: [(layer: Int, before: Int, after: Int)] = []
    public init() {}
}

public struct LlamaDecoder: Sendable {
    public let config: TextConfiguration
    let embedTokens: Linear        // key: embed_tokens, [vocab, D] (rows looked up, not multiplied)
    let layers: [DecoderLayer]     // key: layers.N
    let norm: RMSNorm              // key: norm
    let lmHead: Linear             // key: lm_head, [vocab, D] (embed_tokens when tied)
    /// Whether `lmHead` is `embedTokens` (counted once).
    let tied: Bool
    public let rope: RotaryEmbedding

    public init(language s: WeightScope, head: WeightScope?, config c: TextConfiguration) throws {
        config = c
        embedTokens = try Linear(s, "embed_tokens", inDim: c.hiddenSize, outDim: c.vocabSize, bias: false)
        layers = try (0..<c.layers).map { try DecoderLayer(s.scoped("layers.\($0)."), c) }
        norm = try RMSNorm(s, "norm", dim: c.hiddenSize, eps: c.rmsNormEps)
        if let head, head.contains("lm_head.weight") {
            lmHead = try Linear(head, "lm_head", inDim: c.hiddenSize, outDim: c.vocabSize, bias: false)
            tied = false
        } else if c.tieWordEmbeddings {
            lmHead = embedTokens
            tied = true
        } else {
            throw FoveaError.missingTensor(name: "lm_head.weight",
                                           searched: CheckpointScopes.lmHead.map { $0 + "lm_head.weight" } + ["(tie_word_embeddings is false)"])
        }
        rope = RotaryEmbedding(headDim: c.headDim, theta: c.ropeTheta, scalingFactor: c.ropeScaling)
    }

    init(config: TextConfiguration, embedTokens: Tensor, layers: [DecoderLayer], norm: RMSNorm, lmHead: Tensor) {
        self.config = config
        self.embedTokens = Linear(weight: embedTokens, bias: nil)
        self.layers = layers
        self.norm = norm
        tied = lmHead.storage === embedTokens.storage
        self.lmHead = tied ? self.embedTokens : Linear(weight: lmHead, bias: nil)
        rope = RotaryEmbedding(headDim: config.headDim, theta: config.ropeTheta, scalingFactor: config.ropeScaling)
    }

    public var parameterCount: Int {
        embedTokens.parameterCount + layers.reduce(0) { $0 + $1.parameterCount } + norm.gamma.count
            + (tied ? 0 : lmHead.parameterCount)
    }

    public var layerCount: Int { layers.count }

    /// How many matrices are kept in each stored format (e.g. a Q4_K_M file's q4_k and q6_k).
    public var storedFormats: [QuantType: Int] {
        var counts: [QuantType: Int] = [:]
        let matrices = layers.flatMap { [$0.wq, $0.wk, $0.wv, $0.wo, $0.w1, $0.w2, $0.w3] } + [embedTokens] + (tied ? [] : [lmHead])
        for m in matrices { if case .quantized(let q) = m.weights { counts[q.type, default: 0] += 1 } }
        return counts
    }

    /// Whether the layers' matrices multiply many rows with Fovea's own kernels, not sgemm.
    public var usesOwnManyRowProducts: Bool {
        layers.contains { l in [l.wq, l.wo, l.w1].contains(where: \.usesOwnManyRowProduct) }
    }

    /// Bytes the weights hold in memory (quantised matrices at their stored size).
    public var weightBytes: Int {
        let perLayer = layers.reduce(0) { sum, l in
            sum + [l.wq, l.wk, l.wv, l.wo, l.w1, l.w2, l.w3].reduce(0) { $0 + $1.weightBytes } + 4 * (l.inputNorm.gamma.count + l.postNorm.gamma.count)
        }
        return embedTokens.weightBytes + perLayer + 4 * norm.gamma.count + (tied ? 0 : lmHead.weightBytes)
    }

    /// Writes the embeddings of `tokens` into rows of `out` ([tokens.count, D]).
    public func embed(_ tokens: [Int], into out: UnsafeMutablePointer<Float>) throws {
        for (i, t) in tokens.enumerated() { try embed(token: t, into: out + i * config.hiddenSize, index: i) }
    }

    /// Writes one token's embedding into `out` ([D]).
    public func embed(token t: Int, into out: UnsafeMutablePointer<Float>, index: Int = 0) throws {
        guard t >= 0 && t < config.vocabSize else {
            throw FoveaError.tokenOutOfVocabulary(id: t, index: index, vocabularySize: config.vocabSize)
        }
        embedTokens.row(t, into: out)
    }

    /// A cache sized for this decoder, drawing blocks from `pool` (a new float32 pool if nil).
    public func makeCache(capacity: Int, pool: KVBlockPool? = nil) -> KVCache {
        KVCache(layers: config.layers, kvHeads: config.kvHeads, headDim: config.headDim, capacity: capacity, pool: pool)
    }

    /// A block pool for this decoder's caches.
    public func makePool(storage: KVStorageType = .f32) -> KVBlockPool {
        KVBlockPool(rowWidth: config.headDim, storage: storage)
    }

    /// Runs `x` ([L, D] input embeddings, overwritten) through every layer, appending its keys
    /// and values to `cache`, and returns logits [rows, vocab]. The logits live in the
    /// workspace: they stay valid until the next call with the same workspace.
    ///
    /// Row i has position `positions[i]` (non-decreasing, from `cache.nextPosition` on; nil: the
    /// next L positions) and origin `origins[i]`. A hook for layer K drops rows just before
    /// layer K runs, from what it asked of layer K − 1; later layers never see those rows.
    /// A KV `policy` is consulted after each layer attends (prefill when L > 1, else decode
    /// step `step`) and its decision applied to that layer's cache before the next.
    public func forward(
        _ x: Tensor, positions explicit: [Int32]? = nil, origins: [TokenOrigin], cache: KVCache, logits rowsWanted: LogitsRows,
        workspace ws: DecoderWorkspace, hooks: [any DecoderLayerHook] = [],
        policy: (any KVCachePolicy)? = nil, step: Int = 0
    ) throws -> Tensor {
        let c = config
        var L = x.shape[0]
        if L > 1 { BLAS.fitThreads(ownProducts: usesOwnManyRowProducts) }
        let d = c.hiddenSize
        let qd = c.heads * c.headDim, kvd = c.kvHeads * c.headDim
        guard origins.count == L else {
            throw FoveaError.invalidInput(reason: "forward: \(L) rows but \(origins.count) origins")
        }
        ws.positions.removeAll(keepingCapacity: true)
        if let explicit {
            guard explicit.count == L else { throw FoveaError.invalidInput(reason: "forward: \(L) rows but \(explicit.count) positions") }
            // Non-decreasing: tokens a pruner built share the place of the token before them.
            guard (explicit.first ?? Int32.max) >= Int32(cache.nextPosition), zip(explicit, explicit.dropFirst()).allSatisfy({ $0 <= $1 }) else {
                throw FoveaError.invalidInput(reason: "forward: positions must not decrease, starting from \(cache.nextPosition)")
            }
            if case .failure(let e) = cache.reserve(positions: explicit) { throw FoveaError.invalidInput(reason: e.description) }
            ws.positions.append(contentsOf: explicit)
        } else {
            switch cache.reserve(rows: L) {
            case .success(let r): for p in r { ws.positions.append(Int32(p)) }
            case .failure(let e): throw FoveaError.invalidInput(reason: e.description)
            }
        }
        for hook in hooks where hook.layer > c.layers {
            throw FoveaError.incompatibleMethod(method: "in-LLM pruning at layer \(hook.layer)", reason: "the model has \(c.layers) layers")
        }
        guard Set(hooks.map(\.layer)).count == hooks.count else {
            throw FoveaError.incompatibleMethod(method: "in-LLM cuts at layers \(hooks.map(\.layer))", reason: "an in-LLM pruner and A-VL's prefill filter must cut at different layers")
        }
        ws.origins.removeAll(keepingCapacity: true)
        ws.origins.append(contentsOf: origins)
        ws.hookLog.removeAll()
        let hooks = L > 1 ? hooks : []          // hooks prune prompts, not decode steps

        let h = ws.h.buffer(L * d), q = ws.q.buffer(L * qd), k = ws.k.buffer(L * kvd), v = ws.v.buffer(L * kvd)
        let attn = ws.attn.buffer(L * qd)
        let gate = ws.gate.buffer(L * c.intermediateSize), up = ws.up.buffer(L * c.intermediateSize)
        var pending: AttentionReadout?        // layer li − 1's readout, kept for a hook at li

        if L > 1 { cache.promptLength = L }
        let phase: KVPhase = L > 1 ? .prefill : .decode(step: step)
        for (li, layer) in layers.enumerated() {
            let lc = cache.layers[li]
            if let hook = hooks.first(where: { $0.layer == li }) {
                L = try applyHook(hook, x: x, rows: L, readout: pending, workspace: ws)
            }
            // What this layer's attention must hand back: a hook's at li + 1, and the policy's.
            var request = AttentionRequest()
            let next = hooks.first { $0.layer == li + 1 }?.needs
            if next?.lastRow == true { request.rows.append(L - 1) }
            if next?.columnMean == true { request.columnSums = true }
            // Attention: project, rotate, append to the cache, attend.
            ws.positions.withUnsafeBufferPointer { pos in
                layer.inputNorm(x.data, rows: L, into: h)
                Linear.apply([(layer.wq, q), (layer.wk, k), (layer.wv, v)], h, rows: L)
                rope.apply(q, rows: L, heads: c.heads, positions: pos.baseAddress!)
                rope.apply(k, rows: L, heads: c.kvHeads, positions: pos.baseAddress!)
            }
            if next?.keys == true { ws.previousKeys.buffer(L * kvd).update(from: k, count: L * kvd) }
            let t0 = L == 1 ? DispatchTime.now().uptimeNanoseconds : 0
            let view = try attend(layer: li, cache: lc, q: q, k: k, v: v, rows: L, request: request, policy: policy,
                                  phase: phase, promptLength: cache.promptLength, output: attn, workspace: ws)
            if L == 1 { ws.decodeAttentionSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
            pending = next == nil ? nil : view.readout
            if let policy, let view = view.policyView {
                let decision = policy.decide(view)
                lc.apply(decision, rope: rope)
                if decision.positions != nil { cache.positionsReassigned() }
            }
            layer.wo(attn, rows: L, into: h)
            Kernels.add(h, into: x.data, count: L * d)
            // SwiGLU MLP.
            layer.postNorm(x.data, rows: L, into: h)
            Linear.apply([(layer.w1, gate), (layer.w3, up)], h, rows: L)
            Kernels.siluMul(gate, up, count: L * c.intermediateSize)
            layer.w2(gate, rows: L, into: h)
            Kernels.add(h, into: x.data, count: L * d)
        }
        let first = rowsWanted == .last ? L - 1 : 0
        let n = L - first
        let normed = ws.h.buffer(n * d)
        norm(x.data + first * d, rows: n, into: normed)
        let out = ws.logits.buffer(n * c.vocabSize)
        lmHead(normed, rows: n, into: out)
        return Tensor(shape: [n, c.vocabSize], storage: TensorStorage(borrowing: out, count: n * c.vocabSize, owner: ws.logits))
    }

    /// Runs `hook` on the current rows and compacts the hidden states, positions and origins
    /// to what it keeps. Returns the new row count.
    private func applyHook(_ hook: any DecoderLayerHook, x: Tensor, rows L: Int, readout: AttentionReadout?,
                           workspace ws: DecoderWorkspace) throws -> Int {
        let c = config, d = c.hiddenSize, kvd = c.kvHeads * c.headDim
        let needs = hook.needs
        // The readout covers every cached key; this forward's rows are the last L of them.
        let offset = (readout?.keys ?? L) - L
        var lastRow: [Float]?
        if needs.lastRow, let r = readout {
            lastRow = Array(r.headMean(row: r.rowProbabilities.count / (r.heads * r.keys) - 1)[offset...])
        }
        var columnMean: [Float]?
        if needs.columnMean, let r = readout {
            // Key j of this forward is seen by the queries j…L−1 (causal).
            columnMean = (0..<L).map { j in
                var s: Float = 0
                for hh in 0..<r.heads { s += r.columnSums[hh * r.keys + offset + j] }
                return s / Float(r.heads * (L - j))
            }
        }
        var normed: UnsafeMutablePointer<Float>?
        if needs.normedHidden {
            let buf = ws.normed.buffer(L * d)
            norm(x.data, rows: L, into: buf)
            normed = buf
        }
        let keys: UnsafePointer<Float>? = needs.keys ? UnsafePointer(ws.previousKeys.buffer(L * kvd)) : nil
        let kept = try hook.keep(LayerHookContext(
            layer: hook.layer, rows: L, origins: ws.origins, positions: ws.positions, hidden: x.data, hiddenWidth: d,
            normedHidden: normed.map { UnsafePointer($0) }, keys: keys, keyWidth: kvd, lastRow: lastRow, columnMean: columnMean))
        var isKept = [Bool](repeating: false, count: L)
        for r in kept where r >= 0 && r < L { isKept[r] = true }
        guard zip(kept, kept.dropFirst()).allSatisfy({ $0 < $1 }), kept.allSatisfy({ $0 >= 0 && $0 < L }),
              ws.origins.indices.allSatisfy({ ws.origins[$0] == .image || isKept[$0] })
        else {
            throw FoveaError.invalidInput(reason: PruningError.invalidDecision(
                method: "layer-\(hook.layer) hook", reason: "rows must be ascending, in range, and keep every text row").description)
        }
        for (dst, src) in kept.enumerated() where dst != src {
            (x.data + dst * d).update(from: x.data + src * d, count: d)
        }
        ws.positions = kept.map { ws.positions[$0] }
        ws.origins = kept.map { ws.origins[$0] }
        ws.hookLog.append((hook.layer, L, kept.count))
        return kept.count
    }
}
