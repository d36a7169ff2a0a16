import FoveaIO

/// PIL's 8-bit resampling (Pillow src/libImaging/Resample.c, `ImagingResample` without
/// reducing_gap), reproduced step for step because transformers' processors resize through
/// PIL: separable filters widened by the downscale factor (antialiasing), coefficients in
/// 22-bit fixed point, two passes (horizontal first unless the height shrinks much more, as
/// Pillow 13 orders them), each rounded and clipped to 8 bits.
public enum PILResample {
    public enum Filter: Int, Sendable {
        case bilinear = 2, bicubic = 3

        var support: Double { self == .bilinear ? 1 : 2 }

        func weight(_ x: Double) -> Double {
            let x = abs(x)
            switch self {
            case .bilinear:
                return x < 1 ? 1 - x : 0
            case .bicubic:
                let a = -0.5
                if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
                if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
                return 0
            }
        }
    }

    static let precisionBits = 32 - 8 - 2

    /// Per output index: first input index, count, and fixed-point weights (ksize each).
    struct Coefficients {
        var bounds: [(start: Int, count: Int)]
        var weights: [Int32]
        var ksize: Int
    }

    static func coefficients(inSize: Int, outSize: Int, filter: Filter) -> Coefficients {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        let ksize = Int(support.rounded(.up)) * 2 + 1
        var bounds: [(Int, Int)] = []
        bounds.reserveCapacity(outSize)
        var weights = [Int32](repeating: 0, count: outSize * ksize)
        var k = [Double](repeating: 0, count: ksize)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let ss = 1 / filterScale
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var ww = 0.0
            for x in 0..<xmax {
                let w = filter.weight((Double(x + xmin) - center + 0.5) * ss)
                k[x] = w
                ww += w
            }
            for x in 0..<xmax {
                let w = ww != 0 ? k[x] / ww : k[x]
                let fixed = w * Double(1 << precisionBits)
                weights[xx * ksize + x] = Int32(w < 0 ? (-0.5 + fixed).rounded(.towardZero) : (0.5 + fixed).rounded(.towardZero))
            }
            bounds.append((xmin, xmax))
        }
        return Coefficients(bounds: bounds, weights: weights, ksize: ksize)
    }

    @inline(__always)
    static func clip8(_ v: Int64) -> UInt8 {
        let shifted = v >> Int64(precisionBits)
        return shifted <= 0 ? 0 : shifted >= 255 ? 255 : UInt8(shifted)
    }

    /// Resizes an RGB image to `width` × `height`, as `PIL.Image.resize((width, height), filter)`.
    public static func resize(_ image: RGBImage, width: Int, height: Int, filter: Filter = .bicubic) -> RGBImage {
        if image.width == width && image.height == height { return image }
        let needH = width != image.width, needV = height != image.height
        let vert = coefficients(inSize: image.height, outSize: height, filter: filter)
        let horiz = coefficients(inSize: image.width, outSize: width, filter: filter)
        // Pillow 13 (the references' version) runs the vertical pass first when the height shrinks by more than twice as
        // many pixels as the width; each pass rounds to 8 bits, so the order shows in the output.
        let shrinkV = image.height - height, shrinkH = image.width - width
        let verticalFirst = shrinkV > 0 && shrinkV > 2 * shrinkH
        var img = image
        if verticalFirst {
            if needV { img = verticalPass(img, vert, outHeight: height) }
            if needH { img = horizontalPass(img, horiz, rows: 0..<height) }
            return img
        }
        var rows = 0..<image.height
        var vBounds = vert
        if needH {
            // Only the source rows the vertical pass will read.
            let first = vert.bounds[0].start
            let last = vert.bounds[height - 1].start + vert.bounds[height - 1].count
            rows = first..<last
            img = horizontalPass(img, horiz, rows: rows)
        }
        guard needV else { return img }
        for i in 0..<height { vBounds.bounds[i].start -= rows.lowerBound }
        return verticalPass(img, vBounds, outHeight: height)
    }

    /// The horizontal pass over `rows` of the source: a `coeffs`-wide image `rows.count` tall.
    static func horizontalPass(_ src: RGBImage, _ coeffs: Coefficients, rows: Range<Int>) -> RGBImage {
        let half = Int64(1) << Int64(precisionBits - 1)
        let width = coeffs.bounds.count
        let pixels = src.pixels
        var out = [UInt8](repeating: 0, count: width * rows.count * 3)
        for (y, sy) in rows.enumerated() {
            let inRow = sy * src.width * 3
            for xx in 0..<width {
                let (xmin, xmax) = coeffs.bounds[xx]
                let kb = xx * coeffs.ksize
                var r = half, g = half, b = half
                for x in 0..<xmax {
                    let w = Int64(coeffs.weights[kb + x])
                    let p = inRow + (x + xmin) * 3
                    r += Int64(pixels[p]) * w; g += Int64(pixels[p + 1]) * w; b += Int64(pixels[p + 2]) * w
                }
                let o = (y * width + xx) * 3
                out[o] = clip8(r); out[o + 1] = clip8(g); out[o + 2] = clip8(b)
            }
        }
        return RGBImage(width: width, height: rows.count, pixels: out)
    }

    /// The vertical pass: every column of `src`, `outHeight` rows.
    static func verticalPass(_ src: RGBImage, _ coeffs: Coefficients, outHeight: Int) -> RGBImage {
        let half = Int64(1) << Int64(precisionBits - 1)
        let width = src.width
        let pixels = src.pixels
        var out = [UInt8](repeating: 0, count: width * outHeight * 3)
        for yy in 0..<outHeight {
            let (ymin, ymax) = coeffs.bounds[yy]
            let kb = yy * coeffs.ksize
            for xx in 0..<width {
                var r = half, g = half, b = half
                for y in 0..<ymax {
                    let w = Int64(coeffs.weights[kb + y])
                    let p = ((y + ymin) * width + xx) * 3
                    r += Int64(pixels[p]) * w; g += Int64(pixels[p + 1]) * w; b += Int64(pixels[p + 2]) * w
                }
                let o = (yy * width + xx) * 3
                out[o] = clip8(r); out[o + 1] = clip8(g); out[o + 2] = clip8(b)
            }
        }
        return RGBImage(width: width, height: outHeight, pixels: out)
    }
}
