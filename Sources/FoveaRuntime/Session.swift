import Foundation
import FoveaCore
import FoveaIO
import FoveaKV
import FoveaModels
import FoveaPruning

/// One request's generation, in the two phases every VLM engine has: `prefill` (made by
/// `Generator.prefill`: vision, pruning, merge, the prompt through the LLM) and one `step()` per
/// new token. The CLI's `generate` and `chat`, the server and a Swift app drive the same object.
///
/// `step()` returns nil once the answer is over (a stop token, the token limit, the context's
/// end, or `cancel()`); `finish()` hands back the KV blocks and the statistics. A session is
/// used from one thread at a time.
public final class GenerationSession: @unchecked Sendable {
    public let request: GenerationRequest
    /// Each image as the LLM received it.
    public let images: [EncodedImage]
    /// Logits of the last prompt position [vocab].
    public let firstLogits: [Float]
    /// Tokens emitted so far.
    public private(set) var tokens: [Int] = []
    public private(set) var statistics: RunStatistics
    /// Set once `step()` has nothing more to give.
    public private(set) var finishReason: FinishReason?
    public var isFinished: Bool { finishReason != nil }

    private let generator: Generator
    private let cache: KVCache
    private let pool: KVBlockPool
    private let policy: (any KVCachePolicy)?
    private var sampler: Sampler
    private var current: Tensor
    private let stepInput: Tensor
    private let limit: Int
    private var stepLogits: [[Float]] = []
    /// The last token still has to go through the model before the next can be chosen; done
    /// lazily so a caller that stops after a token pays no forward pass for it.
    private var pendingForward = false
    private var released = false
    /// The inputs of the rows in the cache, while they may serve the next session's prefix.
    private var retainable: RetainedRows?
    /// `finish()` has handed the KV blocks back.
    var isReleased: Bool { released }

    init(generator: Generator, request: GenerationRequest, encoded: [EncodedImage]?) throws {
        let model = generator.model
        let context = model.config.text.maxPositions
        guard request.maxNewTokens >= 0 && request.maxNewTokens <= context else {
            throw FoveaError.invalidArgument(name: "max new tokens", value: "\(request.maxNewTokens)",
                                             reason: "must be 0…\(context) (the model's context, max_position_embeddings)")
        }
        // An empty prompt would leave prefill nothing to produce logits from.
        guard !request.tokens.isEmpty else { throw FoveaError.emptyPrompt }
        guard request.tokens.count <= context else { throw FoveaError.promptTooLong(tokens: request.tokens.count, context: context) }
        if let encoded, !request.images.isEmpty, encoded.count != request.images.count {
            throw FoveaError.invalidArgument(name: "encoded images", value: "\(encoded.count)", reason: "the request has \(request.images.count) images")
        }
        // The in-LLM cuts, checked before any work: a pruner's and A-VL's filter at one layer conflict.
        var hooks: [any DecoderLayerHook] = []
        if case .inLLM(let hook) = request.pruning.stage { hooks.append(hook) }
        if let f = request.kv.prefillFilter {
            if let other = hooks.first, other.layer == f.layer + 1 {
                throw FoveaError.incompatibleMethod(method: "\(request.pruning.spec) with \(request.kv.spec)", reason:
                    "both cut image tokens before layer \(f.layer + 1); move one (k=, kf=) or drop one")
            }
            // "After layer kf": the cut is before layer kf + 1, from layer kf's last row.
            hooks.append(FastV(layer: f.layer + 1, ratio: 1 - f.keep))
        }
        var stats = RunStatistics()
        stats.method = request.pruning.description
        let t0 = now(), c0 = processCPUSeconds()
        let images = try encoded ?? generator.encode(request.images, plan: request.pruning)
        stats.visionSeconds = now() - t0
        stats.visionCPUSeconds = processCPUSeconds() - c0
        stats.selectionSeconds = images.reduce(0) { $0 + $1.selectionSeconds }
        stats.visualTokensIn = images.reduce(0) { $0 + $1.fullCount }
        stats.visualTokensOut = images.reduce(0) { $0 + $1.features.shape[0] }
        stats.visualTokensNominal = request.pruning.isFull ? stats.visualTokensIn : images.reduce(0) { $0 + $1.decision.nominal }
        stats.lostToUnpad = images.reduce(0) { $0 + $1.lostToUnpad }

        let t1 = now(), c1 = processCPUSeconds()
        let seq = try model.embed(tokens: request.tokens, images: images, positions: request.pruning.positions)
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
                               available: generator.memoryAvailable())
        // The cache's rows stand for their inputs only under the full policy and without cuts.
        let reusable = request.reusePrefix && request.kv.isFull && hooks.isEmpty
        let d = model.config.text.hiddenSize
        var inputs = RetainedRows()
        if reusable {
            // The forward pass overwrites its input rows: keep them for the next session's prefix.
            inputs.inputs = Array(UnsafeBufferPointer(start: seq.embeddings.data, count: seq.count * d))
            inputs.positions = seq.positions
        }
        let (cache, pool, reused) = generator.cache(capacity: capacity, storage: request.kv.storage,
                                                    prefix: reusable ? (UnsafePointer(seq.embeddings.data), seq.positions) : nil)
        stats.promptTokensReused = reused
        let policy: (any KVCachePolicy)? = request.kv.isFull ? nil : request.kv.makePolicy()
        stats.kvMethod = request.kv.description
        let workspace = generator.workspace
        let logits: Tensor
        do {
            var rows = seq.embeddings
            if reused > 0 {
                rows = Tensor(zeros: [seq.count - reused, d])
                rows.data.update(from: seq.embeddings.data + reused * d, count: (seq.count - reused) * d)
            }
            logits = try model.decoder.forward(rows, positions: Array(seq.positions[reused...]), origins: Array(seq.origins[reused...]),
                                               cache: cache, logits: .last, workspace: workspace, hooks: hooks, policy: policy)
        } catch {
            cache.reset()
            throw error
        }
        stats.kvBytesAfterPrefill = cache.bytesAllocated
        if case .inLLM(let hook) = request.pruning.stage {
            stats.visualTokensNominal = hook.nominal(imageTokens: stats.visualTokensOut)
        }
        stats.visualTokensOut -= workspace.hookLog.reduce(0) { $0 + $1.before - $1.after }
        stats.prefillSeconds = now() - t1
        stats.prefillCPUSeconds = processCPUSeconds() - c1
        workspace.decodeAttentionSeconds = 0

        self.generator = generator
        self.request = request
        self.images = images
        self.cache = cache
        self.pool = pool
        self.policy = policy
        self.statistics = stats
        self.firstLogits = logits.toArray()
        self.current = logits
        self.sampler = Sampler(request.sampling)
        self.stepInput = Tensor(zeros: [1, model.config.text.hiddenSize])
        self.limit = min(request.forcedTokens?.count ?? maxNew, maxNew)
        self.retainable = reusable ? inputs : nil
        if limit == 0 { finishReason = .length }
    }

    /// Adds time spent outside the session: a caller that loaded the image files (`load`) or
    /// encoded the images itself (`vision`, a cache lookup included), so the figures count them.
    public func count(imageLoadSeconds load: Double = 0, visionSeconds vision: Double = 0) {
        statistics.imageLoadSeconds += load
        statistics.visionSeconds += vision
    }

    /// The next token of the answer, or nil when it is over.
    public func step() throws -> Int? {
        guard finishReason == nil else { return nil }
        let t0 = now(), c0 = processCPUSeconds()
        defer {
            statistics.decodeSeconds += now() - t0
            statistics.decodeCPUSeconds += processCPUSeconds() - c0
        }
        if pendingForward, let last = tokens.last {
            let model = generator.model
            try model.decoder.embed(token: last, into: stepInput.data)
            let position = Int32(cache.nextPosition)
            retainable?.append(stepInput.data, width: model.config.text.hiddenSize, position: position)
            current = try model.decoder.forward(stepInput, origins: Self.stepOrigin, cache: cache, logits: .last,
                                                workspace: generator.workspace, policy: policy, step: tokens.count)
            pendingForward = false
        }
        if request.keepStepLogits { stepLogits.append(tokens.isEmpty ? firstLogits : current.toArray()) }
        let next = request.forcedTokens?[tokens.count] ?? sampler.sample(current.data, count: generator.model.config.text.vocabSize)
        tokens.append(next)
        if tokens.count == limit {
            finishReason = request.forcedTokens == nil && request.stopTokens.contains(next) ? .stop : .length
        } else if request.forcedTokens == nil && request.stopTokens.contains(next) {
            finishReason = .stop
        } else {
            pendingForward = true
        }
        return next
    }

    /// Ends the answer where it stands; the next `step()` returns nil.
    public func cancel() {
        if finishReason == nil { finishReason = .cancelled }
        pendingForward = false
    }

    /// Ends the session (cancelling it if it is still running), returns the KV blocks to the
    /// pool and gives the result. Further calls give the same result. With `reusePrefix`, an
    /// answer that was not cancelled leaves its rows for the next session on this generator.
    @discardableResult
    public func finish() -> GenerationResult {
        let wasCancelled = finishReason == nil || finishReason == .cancelled
        cancel()
        if !released {
            statistics.decodeAttentionSeconds = generator.workspace.decodeAttentionSeconds
            statistics.generatedTokens = tokens.count
            statistics.kvBytesAllocated = cache.bytesAllocated
            statistics.kvBytesUsed = cache.bytesUsed
            statistics.kvPoolBytesHeld = pool.bytesHeld
            statistics.peakResidentBytes = ProcessMemory.peakResidentBytes()
            if let rows = retainable, !wasCancelled, generator.cache === cache {
                generator.retained = rows
            } else {
                cache.reset()
            }
            released = true
        }
        return GenerationResult(tokens: tokens, statistics: statistics, firstLogits: firstLogits, images: images,
                                stepLogits: stepLogits, finishReason: finishReason ?? .cancelled)
    }

    deinit { if !released { cache.reset() } }

    /// One array for every decode step, not one per token.
    private static let stepOrigin: [TokenOrigin] = [.textAfter]
}
