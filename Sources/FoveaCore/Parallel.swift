import CQuant
import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Parallel loops for element-wise and attention work. BLAS brings its own threads.
public enum Parallel {
    /// Cores this process may run on: its affinity mask (`taskset`, a container's cpuset), as
    /// OpenBLAS counts them, not every core online, which would split work into more chunks than
    /// cores to run them.
    public static let cores: Int = Int(fovea_cpu_count())

    /// Runs `body` over `0..<count` split into at most `cores` contiguous chunks.
    /// Work smaller than `grain` items runs on the calling thread: thread hand-off costs
    /// a few microseconds, more than a short loop.
    /// `spin: true` hands the chunks to the spinning `SpinPool` instead of Dispatch: for the
    /// back-to-back one-row products of decode only. Work that alternates with BLAS calls must
    /// not use it: OpenBLAS's threads spin too, and on two cores the two pools starve each other
    /// (a float32 model's test ran several times slower).
    public static func forEachChunk(_ count: Int, grain: Int = 1, spin: Bool = false, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let chunks = min(cores, max(1, count / max(grain, 1)))
        if chunks <= 1 {
            body(0..<count)
            return
        }
        if spin, SpinPool.shared.run(chunks: chunks, { c in body(count * c / chunks ..< count * (c + 1) / chunks) }) { return }
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

/// Worker threads that spin briefly between jobs. Decode is a chain of ~10 small products per
/// layer, each split over the cores: handing each to Grand Central Dispatch parks and wakes a
/// thread every time (19% of SmolLM2's decode cycles went to the kernel scheduler). These
/// workers poll for the next job for tens of microseconds before sleeping, as llama.cpp's
/// threadpool does, so back-to-back products start at once. One job at a time: a second caller
/// (another thread, or a job that itself splits work) gets `false` and uses Dispatch.
///
/// `generation` is odd while a job is open. A worker announces itself in `active`, then checks
/// the job is still the one it saw; the caller closes the job (even generation) and waits for
/// `active` to drain before the closure goes out of scope. Both sides use sequentially
/// consistent order on those two counters, so a worker either is counted or sees the close.
final class SpinPool: @unchecked Sendable {
    static let shared = SpinPool(workers: Parallel.cores - 1)

    private let busy = Atomic<Bool>(false)
    private let generation = Atomic<Int>(0)
    private let active = Atomic<Int>(0)
    private let nextChunk = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let wake = DispatchSemaphore(value: 0)
    // Written by the caller before the generation opens (release), read by workers after (acquire).
    private var job: ((Int) -> Void)?
    private var chunks = 0
    /// How long a worker polls for the next job before it sleeps: long enough to span the gap
    /// between two products of a decode step, short enough that a busy machine (tests running
    /// side by side, BLAS threads in a prefill) loses little to it.
    private static let spinNanoseconds: UInt64 = 50_000

    init(workers: Int) {
        for _ in 0..<max(0, workers) {
            let t = Thread { [unowned self] in self.workerLoop() }
            t.stackSize = 1 << 20
            t.start()
        }
    }

    /// Runs `body(0..<chunks)` across the caller and the workers; false when the pool is in use.
    func run(chunks n: Int, _ body: (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { body in
            job = body
            chunks = n
            nextChunk.store(0, ordering: .relaxed)
            pending.store(n, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)               // open (odd)
            for _ in 0..<sleepers.exchange(0, ordering: .sequentiallyConsistent) { wake.signal() }
            work()
            spin { pending.load(ordering: .acquiring) > 0 }
            generation.add(1, ordering: .sequentiallyConsistent)               // close (even)
            spin { active.load(ordering: .sequentiallyConsistent) > 0 }
            job = nil
        }
        return true
    }

    private func spin(while condition: () -> Bool) {
        var polls = 0
        while condition() {
            polls += 1
            if polls % 1024 == 0 { sched_yield() }
        }
    }

    /// Claims and runs chunks until none are left.
    private func work() {
        guard let job else { return }
        while true {
            let c = nextChunk.add(1, ordering: .relaxed).oldValue
            if c >= chunks { return }
            job(c)
            pending.subtract(1, ordering: .releasing)
        }
    }

    private func workerLoop() {
        var seen = generation.load(ordering: .sequentiallyConsistent)
        while true {
            var polls = 0
            var deadline = DispatchTime.now().uptimeNanoseconds + Self.spinNanoseconds
            while generation.load(ordering: .sequentiallyConsistent) == seen {
                polls += 1
                guard polls % 256 == 0, DispatchTime.now().uptimeNanoseconds > deadline else { continue }
                sleepers.add(1, ordering: .sequentiallyConsistent)
                // A job opened after the count went up signals us; one opened before it is seen here.
                // A count left behind by this early exit costs a later spurious wake, no more.
                if generation.load(ordering: .sequentiallyConsistent) == seen { wake.wait() }
                deadline = DispatchTime.now().uptimeNanoseconds + Self.spinNanoseconds
            }
            seen = generation.load(ordering: .sequentiallyConsistent)
            guard seen % 2 == 1 else { continue }
            active.add(1, ordering: .sequentiallyConsistent)
            if generation.load(ordering: .sequentiallyConsistent) == seen { work() }
            active.subtract(1, ordering: .sequentiallyConsistent)
        }
    }
}
