/// Element types checkpoints store. Compute is always float32; other types are
/// converted once at load.
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    public var byteSize: Int {
        switch self {
        case .f64, .i64: 8
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .i8, .u8, .bool: 1
        }
    }
}

public enum Convert {
    /// IEEE half → float, including subnormals, infinities and NaN.
    @inline(__always)
    public static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32(h >> 10) & 0x1F
        var mant = UInt32(h & 0x3FF)
        if exp == 0 {
            if mant == 0 { return Float(bitPattern: sign) }
            // Subnormal: shift until the implicit bit appears.
            var e: UInt32 = 127 - 15 + 1
            while mant & 0x400 == 0 { mant <<= 1; e -= 1 }
            mant &= 0x3FF
            return Float(bitPattern: sign | (e << 23) | (mant << 13))
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
        return Float(bitPattern: sign | ((exp + 127 - 15) << 23) | (mant << 13))
    }

    /// bfloat16 is the top half of a float32.
    @inline(__always)
    public static func bf16ToFloat(_ b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    /// Converts `count` elements of `dtype` at `src` (any alignment) to float32.
    public static func toFloat(_ src: UnsafeRawPointer, dtype: DType, count: Int, into out: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(out).copyMemory(from: src, byteCount: count * 4)
        case .f16:
            Parallel.forEachChunk(count, grain: 1 << 16) { r in
                for i in r { out[i] = halfToFloat(src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
            }
        case .bf16:
            Parallel.forEachChunk(count, grain: 1 << 16) { r in
                for i in r { out[i] = bf16ToFloat(src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
            }
        case .f64:
            for i in 0..<count { out[i] = Float(src.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
        case .i64:
            for i in 0..<count { out[i] = Float(src.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)) }
        case .i32:
            for i in 0..<count { out[i] = Float(src.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)) }
        case .i16:
            for i in 0..<count { out[i] = Float(src.loadUnaligned(fromByteOffset: i * 2, as: Int16.self)) }
        case .i8:
            for i in 0..<count { out[i] = Float(src.loadUnaligned(fromByteOffset: i, as: Int8.self)) }
        case .u8, .bool:
            for i in 0..<count { out[i] = Float(src.load(fromByteOffset: i, as: UInt8.self)) }
        }
    }
}
