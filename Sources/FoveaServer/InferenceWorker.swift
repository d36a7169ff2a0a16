import Foundation
import FoveaCore
import FoveaIO
import FoveaKV
import FoveaModels
import FoveaPruning
import FoveaRuntime
import Synchronization

/// What a request produces, in order: `started` once prefill is done (or `failed`), then text
/// deltas, then `finished`.
public enum InferenceEvent: Sendable {
    case started(promptTokens: Int)
    case delta(String)
    case finished(InferenceOutcome)
    case failed(APIError)
}

public struct InferenceOutcome: Sendable {
    /// OpenAI's `finish_reason`: "stop" (EOS or a stop string) or "length".
    public var finishReason: String
    public var completionTokens: Int
    public var statistics: RunStatistics
    public var visionCacheHit: Bool
    public var method: String
}

/// One image of a request: its file bytes and their digest (the vision cache's key).
public struct ImageRef: Sendable {
    public var bytes: Data
    public var digest: String
    public var name: String
}

/// A request as the worker runs it: the session's input (its images still as file bytes, which
/// the worker decodes or finds in the vision cache), the stop strings, and the methods' label.
public struct InferenceJob: Sendable {
    public var request: GenerationRequest
    public var images: [ImageRef]
    public var stop: [String]
    public var method: String
}

/// Runs requests one at a time on a thread of its own (prefill and decode are long, blocking CPU
/// work that must not occupy the threads serving HTTP), through one `Generator`'s sessions.
/// A job whose consumer goes away (a client that disconnects) is cancelled at its next token and
/// its KV blocks go back to the pool.
public final class InferenceWorker: Sendable {
    let loaded: LoadedModel
    let visionCache: VisionFeatureCache
    let maxPixels: Int
    let metrics: ServerMetrics
    private let generator: Generator

    private struct Pending: Sendable {
        let job: InferenceJob
        let events: AsyncStream<InferenceEvent>.Continuation
        let cancelled: CancelFlag
        let enqueued: Double
    }
    private let queue = Mutex<[Pending]>([])
    private let wake = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)

    public init(loaded: LoadedModel, visionCacheBytes: Int, maxPixels: Int, metrics: ServerMetrics) {
        self.loaded = loaded
        self.generator = Generator(model: loaded.model)
        self.visionCache = VisionFeatureCache(capacityBytes: visionCacheBytes)
        self.maxPixels = maxPixels
        self.metrics = metrics
        let thread = Thread { [self] in loop() }
        thread.name = "fovea-inference"
        thread.stackSize = 16 << 20
        thread.start()
    }

    /// Queues `job`; its events arrive on the handle's stream. `cancel()` on the handle (a client
    /// that went away) stops the job at its next token.
    public func submit(_ job: InferenceJob) -> InferenceHandle {
        let flag = CancelFlag()
        let (stream, continuation) = AsyncStream.makeStream(of: InferenceEvent.self, bufferingPolicy: .unbounded)
        continuation.onTermination = { _ in flag.set() }
        let waiting = queue.withLock { q in
            q.append(Pending(job: job, events: continuation, cancelled: flag, enqueued: now()))
            return q.count
        }
        metrics.waiting(waiting)
        wake.signal()
        return InferenceHandle(events: stream, flag: flag)
    }

    public var visionCacheCounts: VisionFeatureCache.Counts { visionCache.counts }

    private func loop() {
        while true {
            wake.wait()
            if stopping.load(ordering: .acquiring) { return }
            let next = queue.withLock { q -> Pending? in q.isEmpty ? nil : q.removeFirst() }
            metrics.waiting(queue.withLock { $0.count })
            guard let next else { continue }
            if next.cancelled.isSet { next.events.finish(); continue }
            metrics.running(1)
            run(next)
            // The pool's figures before the running count: a reader that sees no request running
            // sees the blocks it held already returned.
            metrics.kvPool(held: generator.kvPoolBytesHeld, inUse: generator.kvPoolBytesInUse - generator.kvBytesRetained,
                           retained: generator.kvBytesRetained)
            metrics.running(0)
        }
    }

    private func run(_ pending: Pending) {
        let job = pending.job, events = pending.events
        defer { events.finish() }
        let session: GenerationSession
        var cacheHit = !job.images.isEmpty
        let request: GenerationRequest
        do {
            var loadSeconds = 0.0, visionSeconds = 0.0
            let encoded = try job.images.map { ref -> EncodedImage in
                let t0 = now()
                let key = VisionFeatureCache.Key(digest: ref.digest, method: VisionFeatureCache.method(of: job.request.pruning))
                if let hit = visionCache.lookup(key) { metrics.visionCache(hit: true); visionSeconds += now() - t0; return hit }
                cacheHit = false
                metrics.visionCache(hit: false)
                let image = try ImageDecoder.decode(data: ref.bytes, name: ref.name, maxPixels: maxPixels)
                let input = try loaded.requireProcessor()(image)
                let t1 = now()
                loadSeconds += t1 - t0
                let e = try generator.encode([input], plan: job.request.pruning)[0]
                visionCache.store(e, for: key)
                visionSeconds += now() - t1
                return e
            }
            request = job.request
            session = try generator.prefill(request, encoded: encoded)
            // The session timed its own vision stage as zero (the images came encoded): put the
            // file decoding and the tower and pruner time measured above in its figures.
            session.count(imageLoadSeconds: loadSeconds, visionSeconds: visionSeconds)
        } catch {
            events.yield(.failed(APIError.from(error)))
            return
        }
        metrics.firstToken(seconds: now() - pending.enqueued)
        metrics.kvPool(held: generator.kvPoolBytesHeld, inUse: generator.kvPoolBytesInUse, retained: 0)
        events.yield(.started(promptTokens: session.statistics.promptTokens))
        let tokenizer = loaded.tokenizer
        let stops = request.stopTokens
        var text = StreamingDecoder()
        var matcher = StopMatcher(job.stop)
        var stoppedByString = false
        var completion = 0
        var last = now()
        do {
            while let token = try session.step() {
                let t = now()
                if completion > 0 { metrics.interToken(seconds: t - last) }
                last = t
                if pending.cancelled.isSet { session.cancel(); break }
                if stops.contains(token) { break }
                completion += 1
                guard let tokenizer else { continue }
                let (emit, stopped) = matcher.push(text.push(tokenizer.streamBytes(token)))
                if !emit.isEmpty { events.yield(.delta(emit)) }
                if stopped { stoppedByString = true; session.cancel(); break }
            }
        } catch {
            session.finish()
            events.yield(.failed(APIError.from(error)))
            return
        }
        if !stoppedByString {
            let (emit, _) = matcher.push(text.flush(), final: true)
            if !emit.isEmpty { events.yield(.delta(emit)) }
        }
        let result = session.finish()
        metrics.completed(result.statistics, completionTokens: completion, success: result.finishReason != .cancelled || stoppedByString)
        let reason = stoppedByString || result.finishReason == .stop ? "stop" : "length"
        events.yield(.finished(InferenceOutcome(finishReason: reason, completionTokens: completion, statistics: result.statistics,
                                                visionCacheHit: cacheHit, method: job.method)))
    }

    /// Stops the thread once the queue is drained of the job it is on (server shutdown).
    public func stop() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
    }
}

public struct InferenceHandle: Sendable {
    public let events: AsyncStream<InferenceEvent>
    let flag: CancelFlag
    public func cancel() { flag.set() }
}

final class CancelFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// Cuts the answer at the first stop string, holding back text that might be the start of one.
struct StopMatcher {
    let stops: [String]
    private var held = ""

    init(_ stops: [String]) { self.stops = stops.filter { !$0.isEmpty } }

    /// The text that can be sent now, and whether a stop string was reached.
    mutating func push(_ chunk: String, final: Bool = false) -> (String, Bool) {
        guard !stops.isEmpty else { return (chunk, false) }
        held += chunk
        if let cut = stops.compactMap({ held.range(of: $0)?.lowerBound }).min() {
            let out = String(held[..<cut])
            held = ""
            return (out, true)
        }
        if final { defer { held = "" }; return (held, false) }
        // Keep the longest tail that is a prefix of some stop string.
        var keep = 0
        for s in stops {
            for n in stride(from: min(s.count - 1, held.count), to: 0, by: -1) where held.hasSuffix(s.prefix(n)) {
                keep = max(keep, n)
                break
            }
        }
        let out = String(held.dropLast(keep))
        held = String(held.suffix(keep))
        return (out, false)
    }
}
