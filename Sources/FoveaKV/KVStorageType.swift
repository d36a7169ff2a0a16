import FoveaCore

/// How cached keys and values are stored (`--kv-dtype`), so savings from an eviction policy
/// and from storage compose.
///
/// - `f32`: 4 bytes a value, exact.
/// - `f16`: IEEE half, 2 bytes a value (relative rounding 2⁻¹¹).
/// - `q8_0`: llama.cpp's `-ctk/-ctv q8_0` layout: blocks of 32 values, each a float16 scale
///   d = max|x| / 127 followed by 32 signed bytes round(x / d); 34 bytes per 32 values. A row
///   whose width 32 does not divide has a last, short block padded with zeros.
public enum KVStorageType: String, CaseIterable, Sendable {
    case f32, f16, q8_0

    /// Bytes one row of `width` values takes.
    public func rowBytes(_ width: Int) -> Int {
        switch self {
        case .f32: width * 4
        case .f16: width * 2
        case .q8_0: (width + 31) / 32 * 34
        }
    }

    /// Stores `count` floats at `dst` in this format.
    @inline(__always)
    public func encode(_ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer) {
        switch self {
        case .f32:
            dst.copyMemory(from: src, byteCount: count * 4)
        case .f16:
            let h = dst.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { h[i] = Float16(src[i]).bitPattern }
        case .q8_0:
            var b = 0
            while b * 32 < count {
                let n = min(32, count - b * 32)
                let x = src + b * 32
                var amax: Float = 0
                for i in 0..<n { amax = max(amax, abs(x[i])) }
                let d = amax / 127
                let block = dst + b * 34
                let scale = Float16(d)
                block.storeBytes(of: scale.bitPattern, as: UInt16.self)
                let q = (block + 2).assumingMemoryBound(to: Int8.self)
                let inv: Float = d > 0 ? 1 / d : 0
                for i in 0..<32 { q[i] = i < n ? Int8((x[i] * inv).rounded(.toNearestOrAwayFromZero)) : 0 }
                b += 1
            }
        }
    }

    /// Reads `count` values back as floats.
    @inline(__always)
    public func decode(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        switch self {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
        case .f16:
            let h = src.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { dst[i] = Float(Float16(bitPattern: h[i])) }
        case .q8_0:
            var b = 0
            while b * 32 < count {
                let block = src + b * 34
                let d = Float(Float16(bitPattern: block.loadUnaligned(as: UInt16.self)))
                let q = (block + 2).assumingMemoryBound(to: Int8.self)
                for i in 0..<min(32, count - b * 32) { dst[b * 32 + i] = Float(q[i]) * d }
                b += 1
            }
        }
    }

    /// Σ row[i]·x[i] for a stored row, in float32.
    @inline(__always)
    public func dot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
        var s: Float = 0
        switch self {
        case .f32:
            // Eight lanes: Swift keeps float sums in order, so a scalar loop would not vectorise.
            var acc = SIMD8<Float>()
            var i = 0
            let xr = UnsafeRawPointer(x)
            while i + 8 <= count {
                acc += row.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                i += 8
            }
            s = acc.sum()
            let r = row.assumingMemoryBound(to: Float.self)
            while i < count { s += r[i] * x[i]; i += 1 }
        case .f16:
            let h = row.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { s += Float(Float16(bitPattern: h[i])) * x[i] }
        case .q8_0:
            var b = 0
            while b * 32 < count {
                let block = row + b * 34
                let d = Float(Float16(bitPattern: block.loadUnaligned(as: UInt16.self)))
                let n = min(32, count - b * 32)
                let base = UnsafeRawPointer(x + b * 32)
                var t: Float = 0
                var i = 0
                var acc = SIMD8<Float>()
                while i + 8 <= n {
                    let q = SIMD8<Float>(block.loadUnaligned(fromByteOffset: 2 + i, as: SIMD8<Int8>.self))
                    acc += q * base.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                    i += 8
                }
                t = acc.sum()
                let qs = (block + 2).assumingMemoryBound(to: Int8.self)
                while i < n { t += Float(qs[i]) * x[b * 32 + i]; i += 1 }
                s += t * d
                b += 1
            }
        }
        return s
    }

    /// out[i] += a·row[i] for a stored row.
    @inline(__always)
    public func accumulate(_ a: Float, _ row: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .f32:
            let r = row.assumingMemoryBound(to: Float.self)
            let av = SIMD8<Float>(repeating: a)
            var i = 0
            let o = UnsafeMutableRawPointer(out)
            while i + 8 <= count {
                let cur = o.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                o.storeBytes(of: cur + av * row.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), toByteOffset: i * 4, as: SIMD8<Float>.self)
                i += 8
            }
            while i < count { out[i] += a * r[i]; i += 1 }
        case .f16:
            let h = row.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { out[i] += a * Float(Float16(bitPattern: h[i])) }
        case .q8_0:
            var b = 0
            while b * 32 < count {
                let block = row + b * 34
                let ad = a * Float(Float16(bitPattern: block.loadUnaligned(as: UInt16.self)))
                let n = min(32, count - b * 32)
                let o = UnsafeMutableRawPointer(out + b * 32)
                let adv = SIMD8<Float>(repeating: ad)
                var i = 0
                while i + 8 <= n {
                    let q = SIMD8<Float>(block.loadUnaligned(fromByteOffset: 2 + i, as: SIMD8<Int8>.self))
                    let cur = o.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                    o.storeBytes(of: cur + adv * q, toByteOffset: i * 4, as: SIMD8<Float>.self)
                    i += 8
                }
                let qs = (block + 2).assumingMemoryBound(to: Int8.self)
                while i < n { out[b * 32 + i] += ad * Float(qs[i]); i += 1 }
                b += 1
            }
        }
    }
}
