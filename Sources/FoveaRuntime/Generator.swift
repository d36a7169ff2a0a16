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
    /// Why generation ended.
    public var finishReason: FinishReason = .length
}

/// image → vision → projector → merge → prefill → decode, for one model.
/// Holds the workspace and cache between sessions, so one `Generator` runs one session at a
/// time (`prefill` refuses a second while one is open).
public final class Generator: @unchecked Sendable {
    public let model: VisionLanguageModel
    let workspace = DecoderWorkspace()
    public private(set) var cache: KVCache?
    /// One block pool per storage type, shared by every sequence this generator runs.
    private var pools: [KVStorageType: KVBlockPool] = [:]
    /// The session holding the workspace and cache, if one is open.
    weak var openSession: GenerationSession?

    /// Bytes free for a generation's KV cache and buffers, asked before each request (tests set it).
    public var memoryAvailable: @Sendable () -> Int = { MemoryBudget.availableBytes }

    public init(model: VisionLanguageModel) {
        self.model = model
    }

    /// Runs the full pipeline and calls `onToken` with each new token as it is chosen
    /// (return false to stop early).
    public func generate(_ request: GenerationRequest, onToken: (Int) -> Bool = { _ in true }) throws -> GenerationResult {
        let session = try prefill(request)
        while let token = try session.step() {
            if !onToken(token) { session.cancel() }
        }
        return session.finish()
    }

    /// Vision, merge and prefill of `request`: a session whose `step()` then yields the answer
    /// token by token. `encoded` replaces encoding `request.images` (a vision-feature cache's
    /// hit); it must come from `encode` under the same pruning plan, and `request.images` may then be empty.
    public func prefill(_ request: GenerationRequest, encoded: [EncodedImage]? = nil) throws -> GenerationSession {
        if let open = openSession, !open.isReleased {
            throw FoveaError.invalidArgument(name: "session", value: "prefill", reason: "this generator's previous session still holds its KV cache; call finish() on it first")
        }
        let session = try GenerationSession(generator: self, request: request, encoded: encoded)
        openSession = session
        return session
    }

    /// The vision stage alone: each image through the tower, the pruner and the projector.
    public func encode(_ images: [ImageInput], plan: PruningPlan) throws -> [EncodedImage] {
        try images.map { try model.encode($0, plan: plan) }
    }

    /// A cache of at least `capacity` rows from the pool for `storage`, reusing the last one.
    func cache(capacity: Int, storage: KVStorageType) -> (KVCache, KVBlockPool) {
        let pool = pools[storage] ?? model.decoder.makePool(storage: storage)
        pools[storage] = pool
        if let existing = cache, existing.capacity >= capacity, existing.pool === pool {
            existing.reset()
            return (existing, pool)
        }
        cache?.reset()
        let fresh = model.decoder.makeCache(capacity: capacity, pool: pool)
        cache = fresh
        return (fresh, pool)
    }

    /// KV bytes every pool of this generator holds (in sequences and idle for reuse).
    public var kvPoolBytesHeld: Int { pools.values.reduce(0) { $0 + $1.bytesHeld } }
    /// KV bytes handed out to sequences right now.
    public var kvPoolBytesInUse: Int { pools.values.reduce(0) { $0 + $1.bytesInUse } }
}

/// Why a session stopped producing tokens.
public enum FinishReason: String, Sendable, Codable {
    /// It emitted a stop token (EOS).
    case stop
    /// It reached the token limit or the end of the context.
    case length
    /// Its caller cancelled it.
    case cancelled
}
