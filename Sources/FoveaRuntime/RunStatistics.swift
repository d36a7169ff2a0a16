import Foundation
import FoveaCore

/// The numbers every run reports (methods.md §4), filled by the stages as they run.
public struct RunStatistics: Sendable, Codable {
    /// The pruning spec the run used ("full" when none).
    public var method = "full"
    public var promptTokens = 0
    /// Prompt rows whose KV the last sequence had already computed (`reusePrefix`): prefill ran
    /// the other `promptTokens − promptTokensReused`.
    public var promptTokensReused = 0
    /// Visual tokens the unpruned model would see (transformers' count).
    public var visualTokensIn = 0
    /// Visual tokens the language model's last layer saw.
    public var visualTokensOut = 0
    /// The budget the method was asked for.
    public var visualTokensNominal = 0
    /// Kept tokens that LLaVA-NeXT's unpad discarded.
    public var lostToUnpad = 0
    /// The pruner's own selection time (part of `visionSeconds`).
    public var selectionSeconds = 0.0
    public var generatedTokens = 0
    /// Decoding the image files and preprocessing them into pixel tensors, before the tower
    /// (not part of `visionSeconds` or the time to first token, as in llama.cpp's figures).
    public var imageLoadSeconds = 0.0
    public var visionSeconds = 0.0
    public var prefillSeconds = 0.0
    public var decodeSeconds = 0.0
    /// The part of `decodeSeconds` spent in attention.
    public var decodeAttentionSeconds = 0.0
    /// Process CPU time (every thread's) during each stage: divided by the stage's wall time, the
    /// cores it kept busy. A stage that should use every core and shows 1.0 runs on one.
    public var visionCPUSeconds = 0.0
    public var prefillCPUSeconds = 0.0
    public var decodeCPUSeconds = 0.0
    /// The KV policy ("full" when none) and storage.
    public var kvMethod = "full"
    /// KV bytes the sequence held right after prefill, and at the end.
    public var kvBytesAfterPrefill = 0
    public var kvBytesAllocated = 0
    /// What the process's block pool holds for KV (this sequence's blocks, other sequences',
    /// and idle ones waiting for reuse).
    public var kvPoolBytesHeld = 0
    public var kvBytesUsed = 0
    public var peakResidentBytes = 0
    /// The matrix kernels the run used (BLAS family, threads, any correction of the BLAS's choice).
    public var kernels = BLAS.kernels

    public init() {}

    /// Time to first token: vision plus prefill.
    public var timeToFirstToken: Double { visionSeconds + prefillSeconds }
    public var decodeMillisecondsPerToken: Double {
        generatedTokens > 1 ? decodeSeconds * 1000 / Double(generatedTokens - 1) : 0
    }
    /// Cores each stage kept busy (CPU time ÷ wall time; 0 for a stage that did not run). Process
    /// CPU time counts every thread, so two runs at once would inflate each other's figure.
    public var visionCores: Double { Self.cores(visionCPUSeconds, visionSeconds) }
    public var prefillCores: Double { Self.cores(prefillCPUSeconds, prefillSeconds) }
    public var decodeCores: Double { Self.cores(decodeCPUSeconds, decodeSeconds) }
    static func cores(_ cpu: Double, _ wall: Double) -> Double { wall > 0 ? cpu / wall : 0 }

    /// The statistics as one JSON object with snake_case keys, derived figures included.
    public func json() throws -> Data {
        let fields: [String: Any] = [
            "method": method, "prompt_tokens": promptTokens, "prompt_tokens_reused": promptTokensReused, "generated_tokens": generatedTokens,
            "visual_tokens_in": visualTokensIn, "visual_tokens_out": visualTokensOut,
            "visual_tokens_nominal": visualTokensNominal, "lost_to_unpad": lostToUnpad,
            "image_load_s": imageLoadSeconds, "vision_s": visionSeconds, "selection_s": selectionSeconds, "prefill_s": prefillSeconds,
            "ttft_s": timeToFirstToken, "decode_s": decodeSeconds, "decode_attention_s": decodeAttentionSeconds, "decode_ms_per_token": decodeMillisecondsPerToken,
            "vision_cores": visionCores, "prefill_cores": prefillCores, "decode_cores": decodeCores,
            "kv_method": kvMethod, "kv_bytes_after_prefill": kvBytesAfterPrefill, "kv_bytes_allocated": kvBytesAllocated, "kv_pool_bytes_held": kvPoolBytesHeld, "kv_bytes_used": kvBytesUsed, "peak_rss_bytes": peakResidentBytes, "kernels": kernels,
        ]
        return try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .prettyPrinted])
    }

    public var summary: String {
        let mb = { (b: Int) in b < 1_048_576 ? String(format: "%.1f KB", Double(b) / 1024) : String(format: "%.1f MB", Double(b) / 1_048_576) }
        return [
            "prompt tokens: \(promptTokens) (visual in \(visualTokensIn), out \(visualTokensOut)"
                + (method == "full" ? ")" : ", nominal \(visualTokensNominal), lost to unpad \(lostToUnpad); \(method))"),
            String(format: "image load: %.3f s, vision: %.3f s (%.2f cores), prefill: %.3f s (%.2f cores), time to first token: %.3f s",
                   imageLoadSeconds, visionSeconds, visionCores, prefillSeconds, prefillCores, timeToFirstToken),
            String(format: "decode: %d tokens, %.2f ms/token (%.2f cores)", generatedTokens, decodeMillisecondsPerToken, decodeCores),
            "kernels: \(kernels)",
            "KV cache (\(kvMethod)): \(mb(kvBytesAfterPrefill)) after prefill, \(mb(kvBytesUsed)) used of \(mb(kvBytesAllocated)) allocated at the end; peak RSS: \(mb(peakResidentBytes))",
        ].joined(separator: "\n")
    }
}

public enum ProcessMemory {
    /// Peak resident set size of this process (VmHWM on Linux, ru_maxrss elsewhere).
    public static func peakResidentBytes() -> Int {
        #if os(Linux)
        if let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
            for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
                let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
                return kb * 1024
            }
        }
        return 0
        #else
        var usage = rusage()
        getrusage(RUSAGE_SELF, &usage)
        return Int(usage.ru_maxrss)
        #endif
    }
}

/// Monotonic seconds.
@inline(__always)
public func now() -> Double {
    Double(DispatchTime.now().uptimeNanoseconds) / 1e9
}

/// CPU seconds this process has used, all threads together.
public func processCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}
