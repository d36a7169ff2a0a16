import Foundation
import FoveaCore

/// One tensor's entry in a safetensors header.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte offset from the file start and length of the tensor's data.
    public let offset: Int
    public let byteCount: Int
}

/// A memory-mapped safetensors file (https://github.com/huggingface/safetensors, format v0.4).
///
/// Layout: 8-byte little-endian header length N, N bytes of JSON
/// (`{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`),
/// then the data section, which offsets are relative to. Every entry is checked
/// before any tensor is handed out, so a corrupt file fails at open, not mid-inference.
public final class SafeTensorsFile: @unchecked Sendable {
    public let path: String
    public let tensors: [String: TensorInfo]
    public let metadata: [String: String]
    private let file: MappedFile

    /// Headers larger than this are refused before parsing (the reference implementation uses 100 MB).
    public static let maxHeaderBytes = 100_000_000

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        guard file.size >= 8 else { throw FoveaError.truncated(path: path, expectedBytes: 8, actualBytes: file.size) }
        let rawLength = UInt64(littleEndian: file.base.loadUnaligned(as: UInt64.self))
        guard rawLength <= UInt64(Self.maxHeaderBytes) else {
            throw FoveaError.badHeader(path: path, reason: "header length \(rawLength) exceeds the \(Self.maxHeaderBytes)-byte limit")
        }
        let headerLength = Int(rawLength)
        guard headerLength <= Self.maxHeaderBytes else {
            throw FoveaError.badHeader(path: path, reason: "header length \(headerLength) exceeds the \(Self.maxHeaderBytes)-byte limit")
        }
        guard 8 + headerLength <= file.size else {
            throw FoveaError.truncated(path: path, expectedBytes: 8 + headerLength, actualBytes: file.size)
        }
        let headerData = Data(bytes: file.base + 8, count: headerLength)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerData)
        } catch {
            throw FoveaError.badJSON(path: path, reason: "header is not valid JSON (\(headerLength) bytes)")
        }
        guard let dict = json as? [String: Any] else {
            throw FoveaError.badHeader(path: path, reason: "header JSON is not an object")
        }
        let dataStart = 8 + headerLength
        let dataSize = file.size - dataStart
        var infos: [String: TensorInfo] = [:]
        var meta: [String: String] = [:]
        for (name, value) in dict {
            if name == "__metadata__" {
                if let m = value as? [String: Any] { for (k, v) in m { meta[k] = "\(v)" } }
                continue
            }
            guard let entry = value as? [String: Any] else {
                throw FoveaError.badHeader(path: path, reason: "entry for tensor '\(name)' is not an object")
            }
            guard let dtypeName = entry["dtype"] as? String else {
                throw FoveaError.badHeader(path: path, reason: "tensor '\(name)' has no dtype")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw FoveaError.unknownDType(path: path, tensor: name, dtype: dtypeName)
            }
            guard let shapeAny = entry["shape"] as? [Any], let shape = Self.intArray(shapeAny), shape.allSatisfy({ $0 >= 0 }) else {
                throw FoveaError.badHeader(path: path, reason: "tensor '\(name)' has no valid shape (a list of non-negative integers)")
            }
            guard let offsetsAny = entry["data_offsets"] as? [Any], let offsets = Self.intArray(offsetsAny), offsets.count == 2 else {
                throw FoveaError.badHeader(path: path, reason: "tensor '\(name)' has no valid data_offsets ([begin, end])")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, end >= begin else {
                throw FoveaError.badTensorSpan(path: path, tensor: name, reason: "data_offsets [\(begin), \(end)] are not an increasing pair")
            }
            guard end <= dataSize else {
                throw FoveaError.badTensorSpan(path: path, tensor: name,
                                               reason: "data_offsets end \(end) is past the data section (\(dataSize) bytes); file truncated?")
            }
            guard let bytes = checkedProduct(shape + [dtype.byteSize]) else {
                throw FoveaError.badTensorSpan(path: path, tensor: name, reason: "shape \(shape) × \(dtype.byteSize) bytes overflows")
            }
            guard bytes == end - begin else {
                throw FoveaError.badTensorSpan(path: path, tensor: name,
                    reason: "shape \(shape) × \(dtype.byteSize) bytes (\(dtype.rawValue)) = \(bytes) bytes, but data_offsets span \(end - begin)")
            }
            infos[name] = TensorInfo(name: name, dtype: dtype, shape: shape, offset: dataStart + begin, byteCount: end - begin)
        }
        // Spans must not overlap: sort by start and compare neighbours.
        let sorted = infos.values.filter { $0.byteCount > 0 }.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw FoveaError.overlappingTensors(path: path, first: a.name, second: b.name)
        }
        tensors = infos
        metadata = meta
    }

    private static func intArray(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in values {
            if isJSONBool(v) { return nil }
            guard let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded(), abs(n.doubleValue) < 9e15 else { return nil }
            out.append(n.intValue)
        }
        return out
    }

    /// The tensor as float32. Aligned float32 data is borrowed from the map (no copy);
    /// other dtypes are converted into fresh memory.
    public func load(_ name: String) throws -> Tensor {
        guard let info = tensors[name] else { throw FoveaError.missingTensor(name: name, searched: [path]) }
        let count = info.shape.reduce(1, *)
        let src = file.base + info.offset
        if info.dtype == .f32, Int(bitPattern: src) % 4 == 0 {
            let storage = TensorStorage(borrowing: src.bindMemory(to: Float.self, capacity: count), count: count, owner: file)
            return Tensor(shape: info.shape, storage: storage)
        }
        let out = Tensor(zeros: info.shape)
        Convert.toFloat(UnsafeRawPointer(src), dtype: info.dtype, count: count, into: out.data)
        return out
    }

    /// Raw integer contents (for int64 inputs in fixtures).
    public func loadInts(_ name: String) throws -> [Int] {
        guard let info = tensors[name] else { throw FoveaError.missingTensor(name: name, searched: [path]) }
        let count = info.shape.reduce(1, *)
        let src = UnsafeRawPointer(file.base + info.offset)
        switch info.dtype {
        case .i64: return (0..<count).map { Int(src.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
        case .i32: return (0..<count).map { Int(src.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
        default:
            // Float-stored integers (image_sizes written by numpy as float): NaN or ±inf would trap in Int().
            return try load(name).toArray().map { v in
                guard v.isFinite, v == v.rounded(), abs(v) < 2_147_483_648 else {
                    throw FoveaError.badTensorSpan(path: path, tensor: name, reason: "value \(v) is not an integer")
                }
                return Int(v)
            }
        }
    }
}

/// Where model code gets its weights from: a checkpoint on disk, or generated weights for benchmarks.
public protocol TensorSource: AnyObject, Sendable {
    func contains(_ name: String) -> Bool
    /// The tensor `name` as float32, checked against `shape`.
    func tensor(_ name: String, shape: [Int]) throws -> Tensor
    /// The tensor `name` in its stored block format, when it is stored in one Fovea multiplies
    /// directly (GGUF Q8_0/Q4_0/Q4_1); nil means: ask `tensor` for float32.
    func quantized(_ name: String, shape: [Int]) throws -> QuantizedMatrix?
}

extension TensorSource {
    public func quantized(_ name: String, shape: [Int]) throws -> QuantizedMatrix? { nil }
}

/// All tensors of a checkpoint folder: one `model.safetensors`, or shards listed in
/// `model.safetensors.index.json`, or every `*.safetensors` file in the folder.
public final class WeightStore: TensorSource, @unchecked Sendable {
    public let directory: String
    private var files: [SafeTensorsFile] = []
    private var fileOf: [String: Int] = [:]

    public init(directory: String) throws {
        self.directory = directory
        let fm = FileManager.default
        let indexPath = (directory as NSString).appendingPathComponent("model.safetensors.index.json")
        var shardNames: [String]
        if fm.fileExists(atPath: indexPath) {
            let data = try FileReader.read(indexPath, limit: 512 << 20, what: "JSON file")
            guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let map = json["weight_map"] as? [String: String] else {
                throw FoveaError.badJSON(path: indexPath, reason: "expected an object with a 'weight_map' of tensor name → file")
            }
            shardNames = Array(Set(map.values)).sorted()
            for name in shardNames where name.contains("/") || name.contains("..") {
                throw FoveaError.invalidConfig(path: indexPath, field: "weight_map", reason: "shard '\(name)' is not a file in the folder")
            }
        } else {
            guard let contents = try? fm.contentsOfDirectory(atPath: directory) else { throw FoveaError.fileNotFound(path: directory) }
            shardNames = contents.filter { $0.hasSuffix(".safetensors") && !$0.hasPrefix("reference") }.sorted()
            if contents.contains("model.safetensors") { shardNames = ["model.safetensors"] }
        }
        guard !shardNames.isEmpty else {
            throw FoveaError.fileNotFound(path: (directory as NSString).appendingPathComponent("model.safetensors"))
        }
        for name in shardNames {
            let f = try SafeTensorsFile(path: (directory as NSString).appendingPathComponent(name))
            for t in f.tensors.keys { fileOf[t] = files.count }
            files.append(f)
        }
    }

    public var names: [String] { Array(fileOf.keys) }
    public func contains(_ name: String) -> Bool { fileOf[name] != nil }
    public func info(_ name: String) -> TensorInfo? { fileOf[name].flatMap { files[$0].tensors[name] } }

    /// Loads `name` as float32 and checks its shape.
    public func tensor(_ name: String, shape expected: [Int]) throws -> Tensor {
        guard let i = fileOf[name] else { throw FoveaError.missingTensor(name: name, searched: [directory]) }
        let t = try files[i].load(name)
        guard t.shape == expected else { throw FoveaError.shapeMismatch(tensor: name, expected: expected, actual: t.shape) }
        return t
    }

    /// The dtypes present and how many parameters each holds.
    public var dtypeCounts: [DType: Int] {
        var out: [DType: Int] = [:]
        for f in files { for t in f.tensors.values { out[t.dtype, default: 0] += t.shape.reduce(1, *) } }
        return out
    }

    /// Elements over every tensor in the checkpoint.
    public var parameterCount: Int { dtypeCounts.values.reduce(0, +) }

    public var totalBytes: Int { files.reduce(0) { $0 + $1.tensors.values.reduce(0) { $0 + $1.byteCount } } }
}

/// The product of non-negative sizes, or nil when it overflows: checkpoint headers are untrusted
/// and a product that wraps would pass every later bounds check.
func checkedProduct(_ factors: [Int]) -> Int? {
    var p = 1
    for f in factors {
        guard f >= 0 else { return nil }
        let (q, overflow) = p.multipliedReportingOverflow(by: f)
        if overflow { return nil }
        p = q
    }
    return p
}

/// Deterministic pseudo-random weights of whatever shape is asked for: lets benchmarks
/// build a model of any published shape without a multi-gigabyte file.
public final class RandomWeights: TensorSource, @unchecked Sendable {
    let seed: UInt64
    let scale: Float
    public init(seed: UInt64 = 0, scale: Float = 0.02) {
        self.seed = seed
        self.scale = scale
    }
    public func contains(_ name: String) -> Bool { true }
    public func tensor(_ name: String, shape: [Int]) throws -> Tensor {
        let t = Tensor(zeros: shape)
        var h: UInt64 = seed ^ 0xcbf2_9ce4_8422_2325
        for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let isNorm = name.contains("norm") && name.hasSuffix("weight")
        let scale = self.scale
        Parallel.forEachChunk(t.count, grain: 1 << 18) { range in
            for i in range {
                if isNorm { t.data[i] = 1; continue }
                // Hash of (name, index) → uniform in [-scale, scale).
                var z = h &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                t.data[i] = (Float(z >> 40) / Float(1 << 24) * 2 - 1) * scale
            }
        }
        return t
    }
}
