import Foundation
import FoveaCore

/// A GGUF file (llama.cpp's format, v2 and v3), memory-mapped and validated at open.
///
/// Layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): magic "GGUF", version,
/// tensor count, metadata count; metadata key/value pairs; tensor infos (name, dims with the
/// fastest-varying first, type, offset); padding to `general.alignment` (default 32); tensor data.
/// Every length, count and span is checked against the file before use.
public final class GGUFFile: @unchecked Sendable {
    public enum Value: Sendable, Equatable {
        case uint(UInt64), int(Int64), float(Double), bool(Bool), string(String)
        case array([Value])

        public var int: Int? {
            switch self {
            case .uint(let v): return v <= UInt64(Int.max) ? Int(v) : nil
            case .int(let v): return Int(v)
            default: return nil
            }
        }
        public var double: Double? {
            switch self {
            case .float(let v): return v
            case .uint(let v): return Double(v)
            case .int(let v): return Double(v)
            default: return nil
            }
        }
        public var string: String? { if case .string(let s) = self { return s }; return nil }
        public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
        public var array: [Value]? { if case .array(let a) = self { return a }; return nil }
    }

    /// Tensor element types Fovea reads (ggml's numbering).
    public enum TensorType: UInt32, Sendable, Hashable {
        case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q4_k = 12, q6_k = 14, bf16 = 30

        /// The format a matrix of this type is kept in, unconverted (nil: float32, widened at load).
        public var storedType: QuantType? {
            switch self {
            case .f32: nil
            case .f16: .f16
            case .bf16: .bf16
            case .q4_0: .q4_0
            case .q4_1: .q4_1
            case .q5_0: .q5_0
            case .q5_1: .q5_1
            case .q8_0: .q8_0
            case .q4_k: .q4_k
            case .q6_k: .q6_k
            }
        }

        /// (elements per block, bytes per block)
        var block: (elements: Int, bytes: Int) {
            switch self {
            case .f32: (1, 4)
            case .f16, .bf16: (1, 2)
            case .q4_0: (32, 18)
            case .q4_1: (32, 20)
            case .q8_0: (32, 34)
            case .q5_0: (32, 22)
            case .q5_1: (32, 24)
            case .q4_k: (256, 144)
            case .q6_k: (256, 210)
            }
        }
    }

    public struct TensorInfo: Sendable {
        public let name: String
        /// PyTorch order (slowest-varying first): the reverse of GGUF's dims.
        public let shape: [Int]
        public let type: TensorType
        /// Absolute byte offset in the file.
        public let offset: Int
        public let byteCount: Int
    }

    public let path: String
    public let version: UInt32
    public let metadata: [String: Value]
    public let tensors: [String: TensorInfo]
    /// Tensor names in file order.
    public let tensorOrder: [String]
    private let file: MappedFile

    /// Limits that stop a corrupt count from allocating the machine away.
    static let maxStringBytes = 1 << 24
    static let maxArrayCount = 1 << 24
    static let maxDims = 4

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        var r = Reader(base: UnsafeRawPointer(file.base), size: file.size, path: path)
        let magic = try r.u32()
        guard magic == 0x4655_4747 else {   // "GGUF" little-endian
            throw FoveaError.badHeader(path: path, reason: String(format: "not a GGUF file (magic 0x%08x, expected 0x46554747 'GGUF')", magic))
        }
        version = try r.u32()
        guard version == 2 || version == 3 else {
            throw FoveaError.badHeader(path: path, reason: "GGUF version \(version) is not supported (2 and 3 are)")
        }
        let tensorCount = try r.u64(), kvCount = try r.u64()
        // Each entry takes at least 8 bytes, so counts beyond the file size are corrupt.
        guard tensorCount <= UInt64(file.size / 8), kvCount <= UInt64(file.size / 8) else {
            throw FoveaError.badHeader(path: path, reason: "tensor count \(tensorCount) / metadata count \(kvCount) exceed what the file can hold")
        }
        var meta: [String: Value] = [:]
        for _ in 0..<kvCount {
            let key = try r.string()
            let type = try r.u32()
            meta[key] = try r.value(type: type, key: key, depth: 0)
        }
        metadata = meta
        var infos: [(name: String, dims: [Int], type: TensorType, offset: UInt64)] = []
        for _ in 0..<tensorCount {
            let name = try r.string()
            let nDims = Int(try r.u32())
            guard nDims >= 1 && nDims <= Self.maxDims else {
                throw FoveaError.badTensorSpan(path: path, tensor: name, reason: "\(nDims) dimensions (1 to \(Self.maxDims) supported)")
            }
            var dims: [Int] = []
            for _ in 0..<nDims {
                let d = try r.u64()
                guard d <= UInt64(Int32.max) else { throw FoveaError.badTensorSpan(path: path, tensor: name, reason: "dimension \(d) is absurd") }
                dims.append(Int(d))
            }
            let rawType = try r.u32()
            guard let type = TensorType(rawValue: rawType) else {
                let known = [9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 13: "Q5_K", 15: "Q8_K",
                             16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 29: "IQ1_M"]
                throw FoveaError.unsupportedTensorType(path: path, tensor: name,
                                                       type: known[Int(rawType)].map { $0 + " (ggml type \(rawType))" } ?? "ggml type \(rawType)")
            }
            infos.append((name, dims, type, try r.u64()))
        }
        var alignment = 32
        if let a = meta["general.alignment"] {
            guard let v = a.int, v > 0, v & (v - 1) == 0 else {
                throw FoveaError.badHeader(path: path, reason: "general.alignment \(a) is not a power of two")
            }
            alignment = v
        }
        let dataStart = (r.position + alignment - 1) / alignment * alignment
        var table: [String: TensorInfo] = [:]
        var order: [String] = []
        for (name, dims, type, offset) in infos {
            guard table[name] == nil else { throw FoveaError.badHeader(path: path, reason: "tensor '\(name)' appears twice") }
            guard dims[0] % type.block.elements == 0 else {
                throw FoveaError.badTensorSpan(path: path, tensor: name,
                    reason: "row length \(dims[0]) is not a multiple of the \(type) block size \(type.block.elements)")
            }
            // Header dimensions are attacker-controlled: four of 2³¹ overflow any product.
            guard let elements = checkedProduct(dims), let bytes = checkedProduct([elements / type.block.elements, type.block.bytes]),
                  bytes <= file.size else {
                throw FoveaError.badTensorSpan(path: path, tensor: name, reason: "shape \(Array(dims.reversed())) (\(type)) is larger than the whole file (\(file.size) bytes)")
            }
            guard offset % UInt64(alignment) == 0 else {
                throw FoveaError.badTensorSpan(path: path, tensor: name, reason: "offset \(offset) is not aligned to \(alignment)")
            }
            guard offset <= UInt64(file.size), dataStart + Int(offset) + bytes <= file.size else {
                throw FoveaError.badTensorSpan(path: path, tensor: name,
                    reason: "data [\(dataStart + Int(min(offset, UInt64(file.size)))), +\(bytes)) runs past the end of the file (\(file.size) bytes); file truncated?")
            }
            table[name] = TensorInfo(name: name, shape: dims.reversed(), type: type, offset: dataStart + Int(offset), byteCount: bytes)
            order.append(name)
        }
        let sorted = table.values.filter { $0.byteCount > 0 }.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw FoveaError.overlappingTensors(path: path, first: a.name, second: b.name)
        }
        tensors = table
        tensorOrder = order
    }

    /// The tensor dequantised to float32, in PyTorch shape order.
    /// The tensor's stored bytes, for kernels that read its blocks directly (valid while this file lives).
    public func rawData(_ name: String) throws -> UnsafeRawPointer {
        guard let info = tensors[name] else { throw FoveaError.missingTensor(name: name, searched: [path]) }
        return UnsafeRawPointer(file.base + info.offset)
    }

    public func load(_ name: String) throws -> Tensor {
        guard let info = tensors[name] else { throw FoveaError.missingTensor(name: name, searched: [path]) }
        let out = Tensor(zeros: info.shape)
        GGUFDequantize.toFloat(UnsafeRawPointer(file.base + info.offset), type: info.type, count: out.count, into: out.data)
        return out
    }

    /// Bounds-checked little-endian cursor over the mapped file.
    struct Reader {
        let base: UnsafeRawPointer
        let size: Int
        let path: String
        var position = 0

        mutating func take(_ n: Int, _ what: String) throws -> UnsafeRawPointer {
            guard n >= 0, position + n <= size else {
                throw FoveaError.truncated(path: path, expectedBytes: position + n, actualBytes: size)
            }
            defer { position += n }
            return base + position
        }
        mutating func u8() throws -> UInt8 { try take(1, "u8").load(as: UInt8.self) }
        mutating func u16() throws -> UInt16 { UInt16(littleEndian: try take(2, "u16").loadUnaligned(as: UInt16.self)) }
        mutating func u32() throws -> UInt32 { UInt32(littleEndian: try take(4, "u32").loadUnaligned(as: UInt32.self)) }
        mutating func u64() throws -> UInt64 { UInt64(littleEndian: try take(8, "u64").loadUnaligned(as: UInt64.self)) }

        mutating func string() throws -> String {
            let n = try u64()
            guard n <= UInt64(GGUFFile.maxStringBytes) else {
                throw FoveaError.badHeader(path: path, reason: "string of \(n) bytes at offset \(position - 8) exceeds the \(GGUFFile.maxStringBytes)-byte limit")
            }
            let p = try take(Int(n), "string")
            return String(decoding: UnsafeRawBufferPointer(start: p, count: Int(n)), as: UTF8.self)
        }

        mutating func value(type: UInt32, key: String, depth: Int) throws -> Value {
            switch type {
            case 0: return .uint(UInt64(try u8()))
            case 1: return .int(Int64(Int8(bitPattern: try u8())))
            case 2: return .uint(UInt64(try u16()))
            case 3: return .int(Int64(Int16(bitPattern: try u16())))
            case 4: return .uint(UInt64(try u32()))
            case 5: return .int(Int64(Int32(bitPattern: try u32())))
            case 6: return .float(Double(Float(bitPattern: try u32())))
            case 7: return .bool(try u8() != 0)
            case 8: return .string(try string())
            case 9:
                guard depth < 2 else { throw FoveaError.badHeader(path: path, reason: "metadata '\(key)': arrays nested too deeply") }
                let itemType = try u32()
                let count = try u64()
                guard count <= UInt64(GGUFFile.maxArrayCount), count <= UInt64(size - position) else {
                    throw FoveaError.badHeader(path: path, reason: "metadata '\(key)': array of \(count) items cannot fit in the file")
                }
                var items: [Value] = []
                items.reserveCapacity(Int(count))
                for _ in 0..<count { items.append(try value(type: itemType, key: key, depth: depth + 1)) }
                return .array(items)
            case 10: return .uint(try u64())
            case 11: return .int(Int64(bitPattern: try u64()))
            case 12: return .float(Double(bitPattern: try u64()))
            default:
                throw FoveaError.badHeader(path: path, reason: "metadata '\(key)' has unknown value type \(type)")
            }
        }
    }
}

/// Dequantisation of ggml block formats (ggml-quants.c, `dequantize_row_*`): the block formats
/// go through the same C routines the kernels' tests check against ggml's values.
public enum GGUFDequantize {
    public static func toFloat(_ src: UnsafeRawPointer, type: GGUFFile.TensorType, count: Int, into out: UnsafeMutablePointer<Float>) {
        switch type {
        case .f32: Convert.toFloat(src, dtype: .f32, count: count, into: out)
        case .f16: Convert.toFloat(src, dtype: .f16, count: count, into: out)
        case .bf16: Convert.toFloat(src, dtype: .bf16, count: count, into: out)
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_k, .q6_k:
            guard let stored = type.storedType else { return }
            let (per, bytes) = type.block
            // Chunks of whole blocks, ~8 K values each, across threads.
            let perChunk = max(1, 8192 / per)
            Parallel.forEachChunk((count / per + perChunk - 1) / perChunk, grain: 1) { chunks in
                for c in chunks {
                    let b0 = c * perChunk, b1 = min(count / per, b0 + perChunk)
                    stored.dequantize(src + b0 * bytes, count: (b1 - b0) * per, into: out + b0 * per)
                }
            }
        }
    }
}
