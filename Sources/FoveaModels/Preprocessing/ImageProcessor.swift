import Foundation
import FoveaCore
import FoveaIO

/// What `preprocessor_config.json` says to do to an image, for `CLIPImageProcessor` and
/// `LlavaNextImageProcessor` (and their Fast/Pil variants: Fovea reproduces the PIL backend,
/// transformers' CPU default). Port of transformers v5.23.0 image_processing_backends.py
/// (PilBackend) and models/llava_next/image_processing_pil_llava_next.py.
public struct ImageProcessor: Sendable {
    public enum Kind: Sendable { case clip, llavaNext }
    public var kind: Kind
    /// How `size` resizes: the short side to a length (aspect kept), or to a fixed height × width.
    public enum Resize: Sendable {
        case shortestEdge(Int)
        case fixed(height: Int, width: Int)
    }
    public var resize: Resize
    public var cropSize: (height: Int, width: Int)
    public var doResize = true, doCenterCrop = true, doRescale = true, doNormalize = true
    public var rescaleFactor: Double = 1 / 255
    public var mean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    public var std: [Float] = [0.26862954, 0.26130258, 0.27577711]
    public var filter = PILResample.Filter.bicubic
    public var pinpoints: [[Int]] = []

    /// Reads `preprocessor_config.json` (or `processor_config.json`'s `image_processor` entry) from a model folder.
    public init(directory: String) throws {
        let pre = (directory as NSString).appendingPathComponent("preprocessor_config.json")
        let proc = (directory as NSString).appendingPathComponent("processor_config.json")
        var j: JSONConfig
        if FileManager.default.fileExists(atPath: pre) {
            j = try JSONConfig(path: pre)
        } else {
            let p = try JSONConfig(path: proc)
            j = try p.object("image_processor") ?? p
        }
        try self.init(json: j)
    }

    public init(json j: JSONConfig) throws {
        let type = try j.string("image_processor_type", default: "CLIPImageProcessor")
        if type.hasPrefix("LlavaNextImageProcessor") { kind = .llavaNext } else if type.hasPrefix("CLIPImageProcessor") { kind = .clip } else {
            throw FoveaError.unsupportedModel(path: j.path, field: "image_processor_type", value: type)
        }
        if let s = try j.object("size") {
            if let e = try s.int("shortest_edge") {
                resize = .shortestEdge(e)
            } else if let h = try s.int("height"), let w = try s.int("width") {
                resize = .fixed(height: h, width: w)
            } else {
                throw FoveaError.invalidConfig(path: j.path, field: "size", reason: "needs shortest_edge, or height and width")
            }
        } else {
            resize = .shortestEdge(224)
        }
        if let c = try j.object("crop_size") {
            cropSize = (try c.requiredInt("height"), try c.requiredInt("width"))
        } else {
            cropSize = Self.baseSize(resize)
        }
        doResize = try j.bool("do_resize", default: true)
        doCenterCrop = try j.bool("do_center_crop", default: true)
        doRescale = try j.bool("do_rescale", default: true)
        doNormalize = try j.bool("do_normalize", default: true)
        rescaleFactor = try j.double("rescale_factor", default: 1 / 255)
        if let m = try j.doubleList("image_mean") { mean = m.map(Float.init) }
        if let s = try j.doubleList("image_std") { std = s.map(Float.init) }
        try j.check(mean.count == 3 && std.count == 3 && std.allSatisfy { $0 != 0 }, "image_std", "needs 3 non-zero values (and 3 means)")
        let resample = try j.int("resample", default: 3)
        guard let f = PILResample.Filter(rawValue: resample) else {
            throw FoveaError.unsupportedModel(path: j.path, field: "resample", value: "\(resample) (bilinear 2 and bicubic 3 are supported)")
        }
        filter = f
        let (rh, rw) = Self.baseSize(resize)
        for (k, v) in [("crop_size.height", cropSize.height), ("crop_size.width", cropSize.width), ("size", min(rh, rw))] {
            try j.check(v > 0 && v <= 8192, k, "must be 1…8192 pixels, found \(v)")
        }
        if kind == .llavaNext {
            pinpoints = try j.intPairs("image_grid_pinpoints") ?? [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
            try j.check(!pinpoints.isEmpty, "image_grid_pinpoints", "empty list")
            // The tiles are cut at crop-size steps: a pinpoint that is not a whole number of tiles leaves a ragged tile.
            for p in pinpoints {
                try j.check(p.count == 2 && p[0] > 0 && p[1] > 0 && p[0] % cropSize.height == 0 && p[1] % cropSize.width == 0
                            && p[0] / cropSize.height * (p[1] / cropSize.width) <= 64, "image_grid_pinpoints",
                            "\(p) is not a grid of at most 64 \(cropSize.height)×\(cropSize.width) tiles")
            }
        }
    }

    /// The partitions the vision tower sees, ready for `VisionLanguageModel.encode`.
    /// Resized images above this many pixels are refused: a 1 × 200,000 strip resized to a 336-pixel
    /// short side would be 336 × 67 million pixels. The decoder's own limit is the same.
    public static let maxResizedPixels = 50_000_000

    public func callAsFunction(_ image: RGBImage) throws -> ImageInput {
        guard image.width > 0 && image.height > 0 else {
            throw FoveaError.invalidImage(name: "image", reason: "\(image.width)×\(image.height) has no pixels")
        }
        if kind == .clip && doResize {
            let (h, w) = resizeTarget(height: image.height, width: image.width)
            let (pixels, overflow) = h.multipliedReportingOverflow(by: w)
            guard !overflow, pixels <= Self.maxResizedPixels, h > 0, w > 0 else {
                throw FoveaError.invalidImage(name: "image", reason: String(
                    format: "%d×%d (aspect %.0f:1) would be resized to %d×%d, over the %d-pixel limit", image.width, image.height,
                    Double(max(image.width, image.height)) / Double(min(image.width, image.height)), w, h, Self.maxResizedPixels))
            }
        }
        var parts: [RGBImage]
        switch kind {
        case .clip:
            parts = [image]
        case .llavaNext:
            parts = patches(image)
        }
        parts = parts.map(standard)
        let (h, w) = (parts[0].height, parts[0].width)
        let pixels = Tensor(zeros: [parts.count, 3, h, w])
        for (p, part) in parts.enumerated() {
            let base = pixels.data + p * 3 * h * w
            for c in 0..<3 {
                for i in 0..<(h * w) {
                    // float64 rescale then float32, as numpy does it; normalisation in float32.
                    var v = doRescale ? Float(Double(part.pixels[i * 3 + c]) * rescaleFactor) : Float(part.pixels[i * 3 + c])
                    if doNormalize { v = (v - mean[c]) / std[c] }
                    base[c * h * w + i] = v
                }
            }
        }
        return ImageInput(pixels: pixels, originalHeight: image.height, originalWidth: image.width)
    }

    /// Resize (shortest edge or fixed size) then center crop, on 8-bit pixels.
    func standard(_ image: RGBImage) -> RGBImage {
        var img = image
        if doResize {
            let (h, w) = resizeTarget(height: img.height, width: img.width)
            img = PILResample.resize(img, width: w, height: h, filter: filter)
        }
        if doCenterCrop { img = Self.centerCrop(img, height: cropSize.height, width: cropSize.width) }
        return img
    }

    /// transformers' `get_resize_output_image_size(default_to_square=False)`: the short side
    /// becomes `shortest_edge`, the long side `int(shortest_edge · long / short)`.
    func resizeTarget(height: Int, width: Int) -> (Int, Int) {
        switch resize {
        case .shortestEdge(let s):
            let (short, long) = width <= height ? (width, height) : (height, width)
            let newLong = Int(min(Double(s) * Double(long) / Double(short), Double(Int32.max)))
            return width <= height ? (newLong, s) : (s, newLong)
        case .fixed(let h, let w):
            return (h, w)
        }
    }

    /// The square (or fixed) size LLaVA-NeXT squashes the base image to, and the default crop.
    static func baseSize(_ r: Resize) -> (Int, Int) {
        switch r {
        case .shortestEdge(let e): return (e, e)
        case .fixed(let h, let w): return (h, w)
        }
    }

    /// transformers' `center_crop`: top-left at ((H − h) // 2, (W − w) // 2), zero-padded if the crop is larger.
    static func centerCrop(_ img: RGBImage, height: Int, width: Int) -> RGBImage {
        if img.height == height && img.width == width { return img }
        var out = [UInt8](repeating: 0, count: height * width * 3)
        let top = Int((Double(img.height - height) / 2).rounded(.down))
        let left = Int((Double(img.width - width) / 2).rounded(.down))
        for y in 0..<height {
            let sy = y + top
            guard sy >= 0 && sy < img.height else { continue }
            for x in 0..<width {
                let sx = x + left
                guard sx >= 0 && sx < img.width else { continue }
                for c in 0..<3 { out[(y * width + x) * 3 + c] = img.pixels[(sy * img.width + sx) * 3 + c] }
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// LLaVA-NeXT: the whole image squashed to the base size, then the image resized into the
    /// best pinpoint keeping its aspect, zero-padded to it, cut into crop-size tiles row-major.
    func patches(_ image: RGBImage) -> [RGBImage] {
        let best = Anyres.bestResolution(height: image.height, width: image.width, pinpoints: pinpoints)
        let scaleW = Double(best.width) / Double(image.width), scaleH = Double(best.height) / Double(image.height)
        var (nh, nw) = (best.height, best.width)
        if scaleW < scaleH {
            nh = min(Int((Double(image.height) * scaleW).rounded(.up)), best.height)
        } else {
            nw = min(Int((Double(image.width) * scaleH).rounded(.up)), best.width)
        }
        let resized = PILResample.resize(image, width: nw, height: nh, filter: filter)
        let padY = (best.height - nh) / 2, padX = (best.width - nw) / 2
        var canvas = [UInt8](repeating: 0, count: best.height * best.width * 3)
        for y in 0..<nh {
            let dst = ((y + padY) * best.width + padX) * 3
            canvas.replaceSubrange(dst..<(dst + nw * 3), with: resized.pixels[(y * nw * 3)..<((y + 1) * nw * 3)])
        }
        let tile = cropSize.height
        var out: [RGBImage] = []
        let (bh, bw) = Self.baseSize(resize)
        out.append(PILResample.resize(image, width: bw, height: bh, filter: filter))
        for ty in stride(from: 0, to: best.height, by: tile) {
            for tx in stride(from: 0, to: best.width, by: tile) {
                var px = [UInt8](repeating: 0, count: tile * tile * 3)
                for y in 0..<tile {
                    let src = ((ty + y) * best.width + tx) * 3
                    px.replaceSubrange((y * tile * 3)..<((y + 1) * tile * 3), with: canvas[src..<(src + tile * 3)])
                }
                out.append(RGBImage(width: tile, height: tile, pixels: px))
            }
        }
        return out
    }
}
