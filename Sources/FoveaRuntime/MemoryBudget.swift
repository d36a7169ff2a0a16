import Foundation
import FoveaIO
import FoveaKV
import FoveaModels

/// What a model and a generation will need, checked before anything large is allocated so that
/// an oversized request fails with the numbers instead of the kernel's out-of-memory killer.
public enum MemoryBudget {
    /// Bytes of weights in memory: every parameter as float32, which is how Fovea holds them today
    /// (float32 checkpoints mapped, bf16/f16/GGUF converted at load).
    public static func weightBytes(_ config: ModelConfiguration) -> Int {
        config.parameterEstimate * MemoryLayout<Float>.size
    }

    /// KV cache for `tokens` rows in every layer.
    public static func kvBytes(_ config: ModelConfiguration, tokens: Int, storage: KVStorageType = .f32) -> Int {
        let t = config.text
        return 2 * t.layers * t.kvHeads * storage.rowBytes(t.headDim) * tokens
    }

    /// Prefill's working buffers for `rows` rows: the residual stream and its projections, the MLP's
    /// three intermediate rows, one 128-row block of attention scores, the logits.
    public static func activationBytes(_ config: ModelConfiguration, rows: Int) -> Int {
        let t = config.text
        let perRow = 6 * t.hiddenSize + 2 * t.heads * t.headDim + 3 * t.intermediateSize
        return 4 * (rows * perRow + 128 * rows * t.heads + t.vocabSize)
    }

    /// Memory the machine gives this process at most: physical memory, or the cgroup's limit when lower.
    public static var limitBytes: Int {
        min(ProcessMemory.physicalBytes, cgroupValue("memory.max") ?? Int.max)
    }

    /// Memory free for new allocations now: MemAvailable, or what is left under the cgroup's limit.
    public static var availableBytes: Int {
        var free = limitBytes
        if let info = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
           let kb = line.split(separator: " ").compactMap({ Int($0) }).first {
            free = min(free, kb * 1024)
        }
        if let max = cgroupValue("memory.max"), let current = cgroupValue("memory.current") { free = min(free, max - current) }
        return free
    }

    static func cgroupValue(_ name: String) -> Int? {
        (try? String(contentsOfFile: "/sys/fs/cgroup/" + name, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Throws `insufficientMemory` naming `what` when `needed` exceeds `available`.
    public static func check(_ what: @autoclosure () -> String, needed: Int, available: Int) throws {
        guard needed <= available else { throw FoveaError.insufficientMemory(what: what(), neededBytes: needed, availableBytes: available) }
    }
}
