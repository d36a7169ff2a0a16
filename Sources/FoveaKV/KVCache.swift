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

/// One decoder layer's cache.
///
/// Layout: `keys` and `values` are row-major [capacity, kvHeads·headDim] float32, one row
/// per cached token, rows 0..<count occupied and contiguous; keys are stored *after* RoPE.
/// V is not transposed. Slot metadata (`positions`, `origins`) lives beside the tensors,
/// not in them: eviction changes which rows exist, never what a row means.
public final class LayerCache: @unchecked Sendable {
    public let capacity: Int
    public let rowWidth: Int
    /// [capacity, kvHeads·headDim]
    public let keys: UnsafeMutablePointer<Float>
    /// [capacity, kvHeads·headDim]
    public let values: UnsafeMutablePointer<Float>
    /// Original (uncompressed) position of each occupied row; RoPE was applied with it.
    public private(set) var positions: [Int32]
    public private(set) var origins: [TokenOrigin]
    public var count: Int { positions.count }

    init(capacity: Int, rowWidth: Int) {
        self.capacity = capacity
        self.rowWidth = rowWidth
        keys = .allocate(capacity: max(1, capacity * rowWidth))
        values = .allocate(capacity: max(1, capacity * rowWidth))
        positions = []
        positions.reserveCapacity(capacity)
        origins = []
        origins.reserveCapacity(capacity)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    /// Room left before the cache is full.
    public var free: Int { capacity - count }

    /// Appends `rows` rows of keys and values with their positions and origins.
    /// The caller checks room first (`KVCache.reserve`); this is the hot path.
    public func append(keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, rows: Int,
                       positions pos: UnsafePointer<Int32>, origins orig: ArraySlice<TokenOrigin>) {
        precondition(rows <= free, "LayerCache.append: \(rows) rows do not fit (\(free) free of \(capacity))")
        (keys + count * rowWidth).update(from: k, count: rows * rowWidth)
        (values + count * rowWidth).update(from: v, count: rows * rowWidth)
        positions.append(contentsOf: UnsafeBufferPointer(start: pos, count: rows))
        origins.append(contentsOf: orig)
    }

    /// Keeps only the rows at `kept` (strictly increasing), compacting them to the front.
    /// Policies decide what to keep; the cache does the gather.
    public func compact(keeping kept: [Int]) {
        precondition(zip(kept, kept.dropFirst()).allSatisfy { $0 < $1 } && (kept.last ?? -1) < count,
                     "LayerCache.compact: indices must be increasing and below count (\(count))")
        for (dst, src) in kept.enumerated() where dst != src {
            (keys + dst * rowWidth).update(from: keys + src * rowWidth, count: rowWidth)
            (values + dst * rowWidth).update(from: values + src * rowWidth, count: rowWidth)
        }
        positions = kept.map { positions[$0] }
        origins = kept.map { origins[$0] }
    }

    /// Drops every row.
    public func removeAll() {
        positions.removeAll(keepingCapacity: true)
        origins.removeAll(keepingCapacity: true)
    }
}

/// The decoder's cache: one `LayerCache` per layer, preallocated for `capacity` tokens.
public final class KVCache: @unchecked Sendable {
    public let layers: [LayerCache]
    public let kvHeads: Int
    public let headDim: Int
    public let capacity: Int
    /// Position the next token gets: the uncompressed length so far, whatever was evicted.
    public private(set) var nextPosition: Int = 0

    public init(layers: Int, kvHeads: Int, headDim: Int, capacity: Int) {
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.capacity = capacity
        self.layers = (0..<layers).map { _ in LayerCache(capacity: capacity, rowWidth: kvHeads * headDim) }
    }

    /// Bytes a full cache of `tokens` tokens takes (keys + values, float32).
    public static func bytes(layers: Int, kvHeads: Int, headDim: Int, tokens: Int) -> Int {
        2 * layers * kvHeads * headDim * tokens * MemoryLayout<Float>.size
    }

    public var bytesAllocated: Int { Self.bytes(layers: layers.count, kvHeads: kvHeads, headDim: headDim, tokens: capacity) }

    /// Bytes held by occupied rows, summed over layers.
    public var bytesUsed: Int { layers.reduce(0) { $0 + $1.count } * 2 * kvHeads * headDim * MemoryLayout<Float>.size }

    /// Claims positions for `rows` new tokens, or says why they do not fit.
    public func reserve(rows: Int) -> Result<Range<Int>, KVCacheFull> {
        let fullest = layers.map(\.count).max() ?? 0
        guard fullest + rows <= capacity else { return .failure(KVCacheFull(capacity: capacity, needed: fullest + rows)) }
        let range = nextPosition..<(nextPosition + rows)
        nextPosition += rows
        return .success(range)
    }

    /// Claims room for rows with explicit positions (pruned sequences keep their original
    /// positions, with gaps). Positions must increase and not go back before `nextPosition`;
    /// afterwards the next token's position is one past the last.
    public func reserve(positions: [Int32]) -> Result<Void, KVCacheFull> {
        let fullest = layers.map(\.count).max() ?? 0
        guard fullest + positions.count <= capacity else {
            return .failure(KVCacheFull(capacity: capacity, needed: fullest + positions.count))
        }
        if let last = positions.last { nextPosition = max(nextPosition, Int(last) + 1) }
        return .success(())
    }

    public func reset() {
        for l in layers { l.removeAll() }
        nextPosition = 0
    }
}

public struct KVCacheFull: Error, Sendable, CustomStringConvertible {
    public let capacity: Int
    public let needed: Int
    public var description: String { "KV cache full: needs \(needed) rows, capacity is \(capacity) (raise --context)" }
}
