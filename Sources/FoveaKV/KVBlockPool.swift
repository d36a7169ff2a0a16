import Foundation

/// Fixed-size KV blocks shared by every cache of one model in a process (vLLM's paged KV
/// cache, on the CPU).
///
/// Why blocks: a cache that grows one token at a time, and shrinks when a policy evicts,
/// should neither copy everything to grow nor keep holding what it evicted. A block holds
/// `rowsPerBlock` rows of one KV head — keys first, then values, each row `storage.rowBytes`.
/// Evicting compacts a head's rows toward its first blocks and hands the emptied tail blocks
/// back here; the next append, by this sequence or any other, takes them again before new
/// memory is allocated. `releaseFree()` gives idle blocks back to the system.
public final class KVBlockPool: @unchecked Sendable {
    public let rowsPerBlock: Int
    public let rowWidth: Int
    public let storage: KVStorageType
    public let rowBytes: Int
    public let blockBytes: Int
    private let lock = NSLock()
    private var free: [UnsafeMutableRawPointer] = []
    private var allocated = 0
    private var handedOut = 0

    public init(rowWidth: Int, storage: KVStorageType = .f32, rowsPerBlock: Int = 16) {
        self.rowWidth = rowWidth
        self.storage = storage
        self.rowsPerBlock = max(1, rowsPerBlock)
        rowBytes = storage.rowBytes(rowWidth)
        blockBytes = 2 * self.rowsPerBlock * rowBytes
    }

    deinit {
        // Caches hold the pool strongly, so every block is back by now.
        for b in free { b.deallocate() }
    }

    /// A block, reused if one is free.
    func take() -> UnsafeMutableRawPointer {
        lock.lock()
        defer { lock.unlock() }
        handedOut += 1
        if let b = free.popLast() { return b }
        allocated += 1
        return .allocate(byteCount: blockBytes, alignment: 64)
    }

    func give(_ blocks: some Sequence<UnsafeMutableRawPointer>) {
        lock.lock()
        defer { lock.unlock() }
        for b in blocks {
            free.append(b)
            handedOut -= 1
        }
    }

    /// Frees idle blocks back to the system.
    public func releaseFree() {
        lock.lock()
        defer { lock.unlock() }
        for b in free { b.deallocate() }
        allocated -= free.count
        free.removeAll()
    }

    /// Bytes of blocks this pool holds (in use or idle).
    public var bytesHeld: Int { lock.lock(); defer { lock.unlock() }; return allocated * blockBytes }
    /// Bytes of blocks some cache holds.
    public var bytesInUse: Int { lock.lock(); defer { lock.unlock() }; return handedOut * blockBytes }
    public var freeBlocks: Int { lock.lock(); defer { lock.unlock() }; return free.count }
}
