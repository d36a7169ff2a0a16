import FoveaCore

/// Where a cached token came from. KV-cache policies treat the regions differently
/// (methods.md §2: the prefix is never evicted; image entries are ranked among themselves).
public enum TokenOrigin: UInt8, Sendable, CaseIterable {
    /// Text before the first image (system prompt, "USER:").
    case prefixText
    /// A visual token.
    case image
    /// Text after the image: the instruction and every generated token.
    case textAfter
}

/// One KV head of one layer: its rows in pool blocks, and each row's metadata.
///
/// Layout: row i lives in block `i / B` at slot `i % B` (B = `pool.rowsPerBlock`); a block is
/// [B key rows | B value rows], each row `headDim` values in `pool.storage`. Keys are stored
/// after RoPE at `positions[i]`. Rows 0..<count are occupied, in the order they were appended
/// (positions non-decreasing). Metadata lives beside the storage, not in it: eviction changes
/// which rows exist, never what a row means.
public final class HeadCache: @unchecked Sendable {
    public let pool: KVBlockPool
    private var blocks: [UnsafeMutableRawPointer] = []
    /// Original (or, under StreamingLLM's default, re-assigned) position of each row.
    public private(set) var positions: [Int32] = []
    public private(set) var origins: [TokenOrigin] = []
    /// Attention each row has received, summed over the queries so far and this head's
    /// query heads — kept only while a policy asks for it (H2O, A-VL's text region).
    public internal(set) var scores: [Float] = []
    public internal(set) var tracksScores = false

    init(pool: KVBlockPool) { self.pool = pool }

    deinit { pool.give(blocks) }

    public var count: Int { positions.count }
    public var blockCount: Int { blocks.count }

    @inline(__always)
    public func key(_ i: Int) -> UnsafeRawPointer {
        let B = pool.rowsPerBlock
        return UnsafeRawPointer(blocks[i / B] + (i % B) * pool.rowBytes)
    }

    @inline(__always)
    public func value(_ i: Int) -> UnsafeRawPointer {
        let B = pool.rowsPerBlock
        return UnsafeRawPointer(blocks[i / B] + (B + i % B) * pool.rowBytes)
    }

    /// Appends one row (float32 key and value, `headDim` each).
    func append(key k: UnsafePointer<Float>, value v: UnsafePointer<Float>, position: Int32, origin: TokenOrigin) {
        let i = count, B = pool.rowsPerBlock
        if i / B == blocks.count { blocks.append(pool.take()) }
        let block = blocks[i / B]
        pool.storage.encode(k, count: pool.rowWidth, into: block + (i % B) * pool.rowBytes)
        pool.storage.encode(v, count: pool.rowWidth, into: block + (B + i % B) * pool.rowBytes)
        positions.append(position)
        origins.append(origin)
        if tracksScores { scores.append(0) }
    }

    /// Adds attention received to rows `start ..< start + sums.count` (prefill column sums).
    public func addScores(_ sums: [Float], from start: Int) {
        guard tracksScores else { return }
        for (i, s) in sums.enumerated() where start + i < scores.count { scores[start + i] += s }
    }

    /// Keeps only the rows at `kept` (strictly increasing), compacted to the front; blocks
    /// left empty go back to the pool.
    public func compact(keeping kept: [Int]) {
        precondition(zip(kept, kept.dropFirst()).allSatisfy { $0 < $1 } && (kept.last ?? -1) < count,
                     "HeadCache.compact: indices must be increasing and below count (\(count))")
        let bytes = pool.rowBytes
        for (dst, src) in kept.enumerated() where dst != src {
            UnsafeMutableRawPointer(mutating: key(dst)).copyMemory(from: key(src), byteCount: bytes)
            UnsafeMutableRawPointer(mutating: value(dst)).copyMemory(from: value(src), byteCount: bytes)
        }
        positions = kept.map { positions[$0] }
        origins = kept.map { origins[$0] }
        if tracksScores { scores = kept.map { scores[$0] } }
        let needed = (kept.count + pool.rowsPerBlock - 1) / pool.rowsPerBlock
        if needed < blocks.count {
            pool.give(blocks[needed...])
            blocks.removeSubrange(needed...)
        }
    }

    /// Rewrites row positions (StreamingLLM re-assigns them) after re-rotating the keys by the
    /// difference, so each key stays rotated at its row's position. Rows shifted by the same
    /// amount (all of the window, after an eviction) share one table of angles.
    public func reposition(to newPositions: [Int32], rope: RotaryEmbedding) {
        precondition(newPositions.count == count, "HeadCache.reposition: one position per row")
        let w = pool.rowWidth
        var i = 0
        var run = [Float]()
        while i < count {
            let delta = newPositions[i] - positions[i]
            var j = i + 1
            while j < count && newPositions[j] - positions[j] == delta { j += 1 }
            if delta != 0 {
                run.removeAll(keepingCapacity: true)
                run.append(contentsOf: repeatElement(0, count: (j - i) * w))
                run.withUnsafeMutableBufferPointer { r in
                    for k in i..<j { pool.storage.decode(key(k), count: w, into: r.baseAddress! + (k - i) * w) }
                    rope.rotate(r.baseAddress!, rows: j - i, by: delta)
                    for k in i..<j { pool.storage.encode(r.baseAddress! + (k - i) * w, count: w, into: UnsafeMutableRawPointer(mutating: key(k))) }
                }
            }
            i = j
        }
        positions = newPositions
    }

    /// Drops every row and returns the blocks.
    public func removeAll() {
        pool.give(blocks)
        blocks.removeAll()
        positions.removeAll(keepingCapacity: true)
        origins.removeAll(keepingCapacity: true)
        scores.removeAll(keepingCapacity: true)
    }
}

/// One decoder layer's cache: one `HeadCache` per KV head (heads may keep different rows),
/// and which rows the next decode step attends.
public final class LayerCache: @unchecked Sendable {
    public let heads: [HeadCache]
    public let headDim: Int
    /// Per KV head: the rows the next step attends (ascending), or nil for every row. Rows
    /// appended after the list was made are always attended.
    public internal(set) var attend: [[Int]?]
    /// Row count of each head when `attend` was set.
    public internal(set) var attendBase: [Int]

    init(kvHeads: Int, headDim: Int, pool: KVBlockPool) {
        heads = (0..<kvHeads).map { _ in HeadCache(pool: pool) }
        self.headDim = headDim
        attend = Array(repeating: nil, count: kvHeads)
        attendBase = Array(repeating: 0, count: kvHeads)
    }

    /// Rows of the fullest head.
    public var count: Int { heads.map(\.count).max() ?? 0 }
    /// Whether every head holds the same rows (no per-head eviction yet).
    public var uniform: Bool { heads.allSatisfy { $0.count == heads[0].count } }
    public var positions: [Int32] { heads[0].positions }
    public var origins: [TokenOrigin] { heads[0].origins }

    /// Appends `rows` rows of keys and values laid out [rows, kvHeads·headDim] (float32).
    public func append(keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, rows: Int,
                       positions pos: UnsafePointer<Int32>, origins orig: ArraySlice<TokenOrigin>) {
        let width = heads.count * headDim
        for (r, origin) in zip(0..<rows, orig) {
            for (h, head) in heads.enumerated() {
                head.append(key: k + r * width + h * headDim, value: v + r * width + h * headDim, position: pos[r], origin: origin)
            }
        }
    }

    /// Keeps the same rows in every head (a per-layer choice: FastV, A-VL's vision region).
    public func compact(keeping kept: [Int]) {
        for h in heads { h.compact(keeping: kept) }
    }

    /// Copies head `h`'s rows as float32 keys or values into `out` ([count, headDim]).
    public func gather(head h: Int, values: Bool, into out: UnsafeMutablePointer<Float>) {
        let head = heads[h]
        for i in 0..<head.count {
            head.pool.storage.decode(values ? head.value(i) : head.key(i), count: headDim, into: out + i * headDim)
        }
    }

    func removeAll() {
        for h in heads { h.removeAll() }
        attend = Array(repeating: nil, count: heads.count)
        attendBase = Array(repeating: 0, count: heads.count)
    }
}

/// The decoder's cache: a `LayerCache` per layer, all drawing blocks from one pool.
public final class KVCache: @unchecked Sendable {
    public let layers: [LayerCache]
    public let kvHeads: Int
    public let headDim: Int
    /// Most rows a head may hold (the prompt plus the tokens to generate). A limit, not an
    /// allocation (blocks come from the pool as rows arrive), so a reused cache takes the next
    /// sequence's.
    public var capacity: Int
    public let pool: KVBlockPool
    /// Position the next token gets: the uncompressed length so far, whatever was evicted
    /// (StreamingLLM's default re-assigns it to the cache length).
    public internal(set) var nextPosition: Int = 0
    /// Rows of the last prompt (prefill), for budgets given as a fraction of it.
    public var promptLength = 0

    public init(layers: Int, kvHeads: Int, headDim: Int, capacity: Int, pool: KVBlockPool? = nil) {
        let pool = pool ?? KVBlockPool(rowWidth: headDim)
        precondition(pool.rowWidth == headDim, "KVCache: the pool's rows are \(pool.rowWidth) wide, not \(headDim)")
        self.pool = pool
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.capacity = capacity
        self.layers = (0..<layers).map { _ in LayerCache(kvHeads: kvHeads, headDim: headDim, pool: pool) }
    }

    /// Bytes a cache of `tokens` tokens in every head takes (keys + values).
    public static func bytes(layers: Int, kvHeads: Int, headDim: Int, tokens: Int, storage: KVStorageType = .f32) -> Int {
        2 * layers * kvHeads * storage.rowBytes(headDim) * tokens
    }

    /// Bytes of the blocks this cache holds now; falls when a policy evicts.
    public var bytesAllocated: Int {
        layers.reduce(0) { s, l in s + l.heads.reduce(0) { $0 + $1.blockCount } } * pool.blockBytes
    }

    /// Bytes held by occupied rows, summed over layers and heads.
    public var bytesUsed: Int {
        layers.reduce(0) { s, l in s + l.heads.reduce(0) { $0 + $1.count } } * 2 * pool.rowBytes
    }

    /// Claims positions for `rows` new tokens, or says why they do not fit.
    public func reserve(rows: Int) -> Result<Range<Int>, KVCacheFull> {
        let fullest = layers.map(\.count).max() ?? 0
        guard fullest + rows <= capacity else { return .failure(KVCacheFull(capacity: capacity, needed: fullest + rows)) }
        let range = nextPosition..<(nextPosition + rows)
        nextPosition += rows
        return .success(range)
    }

    /// Claims room for rows with explicit positions (pruned sequences keep their original
    /// positions, with gaps). Afterwards the next token's position is one past the last.
    public func reserve(positions: [Int32]) -> Result<Void, KVCacheFull> {
        let fullest = layers.map(\.count).max() ?? 0
        guard fullest + positions.count <= capacity else {
            return .failure(KVCacheFull(capacity: capacity, needed: fullest + positions.count))
        }
        if let last = positions.last { nextPosition = max(nextPosition, Int(last) + 1) }
        return .success(())
    }

    /// Empties every layer (blocks back to the pool) for a new sequence.
    public func reset() {
        for l in layers { l.removeAll() }
        nextPosition = 0
        promptLength = 0
    }

    /// Keeps the first `rows` rows of every head and layer (a prompt prefix reused by the next
    /// sequence); the next token's position follows the last row kept. Only for caches whose
    /// heads hold the same rows in order (no policy evicted any).
    public func truncate(toRows rows: Int) {
        let kept = Array(0..<rows)
        for l in layers {
            l.compact(keeping: kept)
            l.attend = Array(repeating: nil, count: l.heads.count)
            l.attendBase = Array(repeating: 0, count: l.heads.count)
        }
        nextPosition = rows == 0 ? 0 : Int(layers.first?.positions[rows - 1] ?? -1) + 1
    }

    /// After a policy re-assigned positions within the cache (StreamingLLM), the next token
    /// sits right after the kept rows.
    public func positionsReassigned() {
        nextPosition = layers.map(\.count).max() ?? 0
    }
}

public struct KVCacheFull: Error, Sendable, CustomStringConvertible {
    public let capacity: Int
    public let needed: Int
    public var description: String { "KV cache full: needs \(needed) rows, capacity is \(capacity) (raise --context)" }
}
