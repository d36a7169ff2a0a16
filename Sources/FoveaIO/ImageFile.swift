import CImageCodecs
import Foundation

/// An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// [height, width, 3]
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGBImage: \(pixels.count) bytes for \(width)×\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// PNG and JPEG decoding through Debian's libpng and libjpeg-turbo, then conversion to RGB
/// the way transformers' processors do it (`convert_to_rgb`: grey replicated, alpha composited
/// over white with PIL's integer arithmetic).
public enum ImageDecoder {
    /// Images with more pixels are refused from their header, before any pixel is decoded
    /// (decompression bombs). 50 MP by default.
    public static let defaultMaxPixels = 50_000_000

    public static func decode(path: String, maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        // A 50 MP image compresses to far less than 1 GB in any format Fovea reads.
        return try decode(data: try FileReader.read(path, limit: 1 << 30, what: "PNG or JPEG file"), name: path, maxPixels: maxPixels)
    }

    public static func decode(data: Data, name: String, maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        var image = fovea_image()
        var message = [CChar](repeating: 0, count: 512)
        let isPNG = data.starts(with: [0x89, 0x50, 0x4E, 0x47])
        let isJPEG = data.starts(with: [0xFF, 0xD8])
        guard isPNG || isJPEG else {
            throw FoveaError.invalidImage(name: name, reason: "not a PNG or JPEG file (unrecognised signature)")
        }
        let code: Int32 = data.withUnsafeBytes { raw in
            let base = raw.bindMemory(to: UInt8.self).baseAddress!
            return isPNG
                ? fovea_png_decode(base, raw.count, maxPixels, &image, &message, message.count)
                : fovea_jpeg_decode(base, raw.count, maxPixels, &image, &message, message.count)
        }
        let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard code == 0, let pixels = image.pixels else {
            if code == -3 { throw FoveaError.invalidImage(name: name, reason: "\(text) (raise the limit if this is intended)") }
            throw FoveaError.invalidImage(name: name, reason: text)
        }
        defer { fovea_free(pixels) }
        let w = Int(image.width), h = Int(image.height), c = Int(image.channels)
        return RGBImage(width: w, height: h, pixels: toRGB(pixels, count: w * h, channels: c))
    }

    /// Grey → RGB by replication; alpha composited over opaque white exactly as PIL's
    /// `Image.alpha_composite` does (Pillow src/libImaging/AlphaComposite.c, 7 extra bits).
    static func toRGB(_ p: UnsafePointer<UInt8>, count: Int, channels: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count * 3)
        @inline(__always) func over(_ v: UInt32, _ a: UInt32) -> UInt8 {
            if a == 0 { return 255 }
            let outa255 = a * 255 + 255 * (255 - a)
            let coef1 = a * 255 * 255 * 128 / outa255
            let coef2 = 255 * 128 - coef1
            let t = v * coef1 + 255 * coef2 + (0x80 << 7)
            return UInt8((((t >> 8) + t) >> 8) >> 7)
        }
        for i in 0..<count {
            switch channels {
            case 1:
                let g = p[i]; out[3 * i] = g; out[3 * i + 1] = g; out[3 * i + 2] = g
            case 2:
                let g = over(UInt32(p[2 * i]), UInt32(p[2 * i + 1]))
                out[3 * i] = g; out[3 * i + 1] = g; out[3 * i + 2] = g
            case 3:
                out[3 * i] = p[3 * i]; out[3 * i + 1] = p[3 * i + 1]; out[3 * i + 2] = p[3 * i + 2]
            default:
                let a = UInt32(p[4 * i + 3])
                for k in 0..<3 { out[3 * i + k] = over(UInt32(p[4 * i + k]), a) }
            }
        }
        return out
    }
}

public enum ImageEncoder {
    /// Writes `image` as an 8-bit RGB PNG through libpng.
    public static func writePNG(_ image: RGBImage, path: String) throws {
        var message = [CChar](repeating: 0, count: 256)
        let code = image.pixels.withUnsafeBufferPointer { px in
            fovea_png_encode_file(path, px.baseAddress, Int32(image.width), Int32(image.height), &message, message.count)
        }
        guard code == 0 else {
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw FoveaError.unreadable(path: path, reason: "cannot write PNG: \(text)")
        }
    }
}
