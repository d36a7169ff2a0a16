import Foundation
import FoveaCore
import FoveaIO
import FoveaKV
import FoveaModels
import FoveaPruning

public struct GenerationRequest: Sendable {
    /// Prompt token ids; image tokens once per image or already expanded.
    public var tokens: [Int]
    public var images: [ImageInput]
    public var maxNewTokens: Int
    public var sampling: SamplingParameters
    /// Generation stops after emitting one of these (EOS).
    public var stopTokens: Set<Int>
    /// Visual-token pruning (`--prune`); `.full` keeps everything.
    public var pruning: PruningPlan
    /// KV-cache policy and storage (`--kv`, `--kv-dtype`).
    public var kv: KVPlan
    /// Teacher forcing: emit these tokens instead of sampling (the fidelity measures run a method
    /// along the full model's answer); generation ends after them.
    public var forcedTokens: [Int]? = nil
    /// Keep the logits every emitted token was chosen from (`GenerationResult.stepLogits`).
    public var keepStepLogits = false

    public init(tokens: [Int], images: [ImageInput] = [], maxNewTokens: Int = 32,
                sampling: SamplingParameters = .greedy, stopTokens: Set<Int> = [], pruning: PruningPlan = .full,
                kv: KVPlan = .full) {
        self.kv = kv
        self.tokens = tokens
        self.images = images
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.stopTokens = stopTokens
        self.pruning = pruning
    }
}

public struct GenerationResult: Sendable {
    public var tokens: [Int]
    public var statistics: RunStatistics
    /// Logits of the last prompt position [vocab].
    public var firstLogits: [Float]
    /// Each image as the LLM received it (kept tokens, sources, the pruner's decision).
    public var images: [EncodedImage]
    /// With `keepStepLogits`: for each emitted token, the logits [vocab] it was chosen from.
    public var stepLogits: [[Float]] = []
}

/// image → vision → projector → merge → prefill → decode, for one model.
/// Holds the workspace and cache between calls, so one `Generator` serves one stream at a time.
public final class Generator: @unchecked Sendable {
    public let model: VisionLanguageModel
    let workspace = DecoderWorkspace()
    public private(set) var cache: KVCache?
    /// One block pool per storage type, shared by every sequence this generator runs.
    private var pools: [KVStorageType: KVBlockPool] = [:]

    /// Bytes free for a generation's KV cache and buffers, asked before each request (tests set it).
    public var memoryAvailable: @Sendable () -> Int = { MemoryBudget.availableBytes }

    public init(model: VisionLanguageModel) {
        self.model = model
    }

    /// Runs the full pipeline and calls `onToken` with each new token as it is chosen
    /// (return false to stop early).
    public func generate(_ request: GenerationRequest, onToken: (Int) -> Bool = { _ in true }) throws -> GenerationResult {
        let context = model.config.text.maxPositions
        guard request.maxNewTokens >= 0 && request.maxNewTokens <= context else {
            throw FoveaError.invalidArgument(name: "max new tokens", value: "\(request.maxNewTokens)",
                                             reason: "must be 0…\(context) (the model's context, max_position_embeddings)")
        }
        // An empty prompt would leave prefill nothing to produce logits from.
        guard !request.tokens.isEmpty else { throw FoveaError.emptyPrompt }
        guard request.tokens.count <= context else { throw FoveaError.promptTooLong(tokens: request.tokens.count, context: context) }
        var stats = RunStatistics()
        stats.method = request.pruning.description
        let t0 = now()
        let encoded = try request.images.map { try model.encode($0, plan: request.pruning) }
        stats.visionSeconds = now() - t0
        stats.selectionSeconds = encoded.reduce(0) { $0 + $1.selectionSeconds }
        stats.visualTokensIn = encoded.reduce(0) { $0 + $1.fullCount }
        stats.visualTokensOut = encoded.reduce(0) { $0 + $1.features.shape[0] }
        stats.visualTokensNominal = request.pruning.isFull ? stats.visualTokensIn : encoded.reduce(0) { $0 + $1.decision.nominal }
        stats.lostToUnpad = encoded.reduce(0) { $0 + $1.lostToUnpad }

        let t1 = now()
        let seq = try model.embed(tokens: request.tokens, images: encoded, positions: request.pruning.positions)
        stats.promptTokens = seq.count
        // Positions, not rows, are what RoPE and the context limit count (pruning under pos=orig leaves gaps).
        let used = Int(seq.positions.last ?? -1) + 1
        guard used <= context else { throw FoveaError.promptTooLong(tokens: used, context: context) }
        // Generation ends where the context does, as llama.cpp's does.
        let maxNew = min(request.maxNewTokens, context - used)
        let capacity = seq.count + maxNew
        try MemoryBudget.check("a \(seq.count)-token prompt with \(maxNew) new tokens (KV cache and prefill buffers)",
                               needed: MemoryBudget.kvBytes(model.config, tokens: capacity, storage: request.kv.storage)
                                   + MemoryBudget.activationBytes(model.config, rows: seq.count),
                               available: memoryAvailable())
        let pool = pools[request.kv.storage] ?? model.decoder.makePool(storage: request.kv.storage)
        pools[request.kv.storage] = pool
        let cache: KVCache
        if let existing = self.cache, existing.capacity >= capacity, existing.pool === pool {
            existing.reset()
            cache = existing
        } else {
            self.cache?.reset()
            cache = model.decoder.makeCache(capacity: capacity, pool: pool)
            self.cache = cache
        }
        let policy: (any KVCachePolicy)? = request.kv.isFull ? nil : request.kv.makePolicy()
        stats.kvMethod = request.kv.description
        var hooks: [any DecoderLayerHook] = []
        if case .inLLM(let hook) = request.pruning.stage { hooks.append(hook) }
        if let f = request.kv.prefillFilter {
            // "After layer kf": the cut is before layer kf + 1, from layer kf's last row.
            hooks.append(FastV(layer: f.layer + 1, ratio: 1 - f.keep))
        }
        let logits = try model.decoder.forward(seq.embeddings, positions: seq.positions, origins: seq.origins, cache: cache,
                                               logits: .last, workspace: workspace, hooks: hooks, policy: policy)
        stats.kvBytesAfterPrefill = cache.bytesAllocated
        if case .inLLM(let hook) = request.pruning.stage {
            stats.visualTokensNominal = hook.nominal(imageTokens: stats.visualTokensOut)
        }
        stats.visualTokensOut -= workspace.hookLog.reduce(0) { $0 + $1.before - $1.after }
        stats.prefillSeconds = now() - t1
        let firstLogits = logits.toArray()

        var sampler = Sampler(request.sampling)
        var out: [Int] = []
        let d = model.config.text.hiddenSize
        let step = Tensor(zeros: [1, d])
        let stepOrigin: [TokenOrigin] = [.textAfter]   // one array for the whole loop, not one per token
        var current = logits
        let t2 = now()
        workspace.decodeAttentionSeconds = 0
        var stepLogits: [[Float]] = []
        let limit = min(request.forcedTokens?.count ?? maxNew, maxNew)
        while out.count < limit {
            if request.keepStepLogits { stepLogits.append(out.isEmpty ? firstLogits : current.toArray()) }
            let next = request.forcedTokens?[out.count] ?? sampler.sample(current.data, count: model.config.text.vocabSize)
            out.append(next)
            if !onToken(next) || out.count == limit { break }
            if request.forcedTokens == nil && request.stopTokens.contains(next) { break }
            try model.decoder.embed(token: next, into: step.data)
            current = try model.decoder.forward(step, origins: stepOrigin, cache: cache, logits: .last, workspace: workspace,
                                                policy: policy, step: out.count)
        }
        stats.decodeSeconds = now() - t2
        stats.decodeAttentionSeconds = workspace.decodeAttentionSeconds
        stats.generatedTokens = out.count
        stats.kvBytesAllocated = cache.bytesAllocated
        stats.kvPoolBytesHeld = pool.bytesHeld
        stats.kvBytesUsed = cache.bytesUsed
        stats.peakResidentBytes = ProcessMemory.peakResidentBytes()
        return GenerationResult(tokens: out, statistics: stats, firstLogits: firstLogits, images: encoded, stepLogits: stepLogits)
    }
}
