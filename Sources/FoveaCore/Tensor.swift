/// Float32 storage that either owns its memory or borrows it from an owner
/// (a memory-mapped checkpoint) that it keeps alive.
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    private let owner: AnyObject?

    /// Allocates `count` zeroed floats, 64-byte aligned for vector loads.
    public init(count: Int) {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
        self.count = count
        owner = nil
    }

    /// Borrows `count` floats at `pointer`; `owner` keeps the memory alive.
    public init(borrowing pointer: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        self.pointer = pointer
        self.count = count
        self.owner = owner
    }

    deinit {
        if owner == nil { UnsafeMutableRawPointer(pointer).deallocate() }
    }
}

/// A dense row-major float32 tensor. Value semantics are shallow: copies
/// share storage, which is what weights and caches want.
public struct Tensor: Sendable {
    public let shape: [Int]
    public let storage: TensorStorage

    public var count: Int { storage.count }
    public var data: UnsafeMutablePointer<Float> { storage.pointer }
    public var rank: Int { shape.count }

    public init(zeros shape: [Int]) {
        self.shape = shape
        storage = TensorStorage(count: shape.reduce(1, *))
    }

    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "Tensor(shape:values:): \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        self.init(zeros: shape)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: values.count) }
    }

    public init(shape: [Int], storage: TensorStorage) {
        precondition(shape.reduce(1, *) == storage.count, "Tensor(shape:storage:): shape \(shape) does not cover \(storage.count) elements")
        self.shape = shape
        self.storage = storage
    }

    /// Same storage, new shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, storage: storage)
    }

    public func toArray() -> [Float] {
        Array(UnsafeBufferPointer(start: data, count: count))
    }

    /// Pointer to row `i` of a rank-2 view `[shape[0], rest]`.
    public func row(_ i: Int) -> UnsafeMutablePointer<Float> {
        data + i * (count / shape[0])
    }

    /// Deep copy of rows `range` of the rank-2 view.
    public func rows(_ range: Range<Int>) -> Tensor {
        let width = count / shape[0]
        var newShape = shape
        newShape[0] = range.count
        let out = Tensor(zeros: newShape)
        out.data.update(from: data + range.lowerBound * width, count: range.count * width)
        return out
    }
}

/// A growable float scratch buffer reused across calls, so forward passes do not
/// allocate per token.
public final class Scratch: ScratchProvider, @unchecked Sendable {
    public private(set) var pointer: UnsafeMutablePointer<Float>
    public private(set) var capacity: Int

    public init(_ capacity: Int = 0) {
        self.capacity = max(capacity, 1)
        pointer = .allocate(capacity: self.capacity)
    }

    /// A buffer of at least `count` floats; contents are undefined.
    public func buffer(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            pointer.deallocate()
            capacity = count
            pointer = .allocate(capacity: count)
        }
        return pointer
    }

    deinit { pointer.deallocate() }
}
