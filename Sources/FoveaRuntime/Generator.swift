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
    /// Reuse the KV rows of the generator's last sequence for the longest prefix this prompt
    /// shares with it (same inputs at the same positions): a follow-up question about the same
    /// image, or the next turn of a conversation, runs only its new rows through the LLM. Only
    /// under the full KV policy and without in-LLM cuts (their caches hold other rows than the
    /// inputs). Off by default, so benchmarks and evaluations always measure a whole prefill.
    public var reusePrefix = false

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
    /// With `prefix` (the new sequence's input rows and positions), the rows the last sequence
    /// left that match it are kept, and their count returned; otherwise the cache starts empty.
    func cache(capacity: Int, storage: KVStorageType, prefix: (rows: UnsafePointer<Float>, positions: [Int32])? = nil)
        -> (cache: KVCache, pool: KVBlockPool, reused: Int) {
        let pool = pools[storage] ?? model.decoder.makePool(storage: storage)
        pools[storage] = pool
        if let existing = cache, existing.pool === pool {
            existing.capacity = capacity
            var keep = 0
            if let prefix, let kept = retained {
                keep = kept.commonPrefix(prefix.rows, prefix.positions, width: model.config.text.hiddenSize)
                // At least one row must go through the model to give the next token's logits,
                // and the first new row must come after the last kept one (rows a pruner built
                // share their neighbour's position).
                keep = min(keep, prefix.positions.count - 1)
                while keep > 0, prefix.positions[keep] <= prefix.positions[keep - 1] { keep -= 1 }
            }
            if keep > 0 { existing.truncate(toRows: keep) } else { existing.reset() }
            retained = nil
            return (existing, pool, keep)
        }
        cache?.reset()
        retained = nil
        let fresh = model.decoder.makeCache(capacity: capacity, pool: pool)
        cache = fresh
        return (fresh, pool, 0)
    }

    /// The inputs of the rows the cache still holds after a finished session, for the next
    /// session's prefix; nil when the cache holds nothing reusable.
    var retained: RetainedRows?

    /// KV bytes every pool of this generator holds (in sequences and idle for reuse).
    public var kvPoolBytesHeld: Int { pools.values.reduce(0) { $0 + $1.bytesHeld } }
    /// KV bytes handed out to sequences right now, the rows kept for prefix reuse included.
    public var kvPoolBytesInUse: Int { pools.values.reduce(0) { $0 + $1.bytesInUse } }
    /// KV bytes held between sessions for prefix reuse (given up by the next session that does not match).
    public var kvBytesRetained: Int { retained == nil ? 0 : cache?.bytesAllocated ?? 0 }
}

/// What a cache's rows were computed from: each row's input vector and position, in order.
struct RetainedRows {
    var inputs: [Float] = []
    var positions: [Int32] = []

    mutating func append(_ row: UnsafePointer<Float>, width: Int, position: Int32) {
        inputs.append(contentsOf: UnsafeBufferPointer(start: row, count: width))
        positions.append(position)
    }

    /// Rows from the start equal to `rows` (bit for bit) at the same positions.
    func commonPrefix(_ rows: UnsafePointer<Float>, _ newPositions: [Int32], width: Int) -> Int {
        let n = min(positions.count, newPositions.count)
        return inputs.withUnsafeBufferPointer { mine in
            var i = 0
            while i < n, positions[i] == newPositions[i],
                  memcmp(mine.baseAddress! + i * width, rows + i * width, width * MemoryLayout<Float>.size) == 0 { i += 1 }
            return i
        }
    }
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
