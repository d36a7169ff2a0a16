import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Parallel loops for element-wise and attention work. BLAS brings its own threads.
public enum Parallel {
    /// Cores available to this process.
    public static let cores: Int = {
        #if canImport(Glibc)
        let n = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        return max(1, n)
        #else
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
        #endif
    }()

    /// Runs `body` over `0..<count` split into at most `cores` contiguous chunks.
    /// Work smaller than `grain` items runs on the calling thread: thread hand-off costs
    /// a few microseconds, more than a short loop.
    public static func forEachChunk(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let chunks = min(cores, max(1, count / max(grain, 1)))
        if chunks <= 1 {
            body(0..<count)
            return
        }
        // concurrentPerform returns only when every chunk is done, so `body` never
        // outlives this call; the box only tells the compiler what that guarantees.
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let lo = count * c / chunks
                let hi = count * (c + 1) / chunks
                if lo < hi { box.value(lo..<hi) }
            }
        }
    }
}

/// Carries a value the caller knows is used safely across threads (disjoint writes,
/// synchronous joins) where the type system cannot see it.
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
