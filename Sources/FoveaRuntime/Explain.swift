import Foundation
import FoveaCore
import FoveaIO
import FoveaModels
import FoveaPruning

/// What `fovea explain` writes: which patches a pruner kept, as JSON and as a picture.
public enum KeptMap {
    /// `{"method", "grid", "patches_per_partition", "partitions": [{"budget", "kept"}], "lost_to_unpad",
    /// "visual_tokens_in", "visual_tokens_out"}`; partition 0 is the base image, then the tiles
    /// row-major; `kept` are patch indices within the partition, raster order, before unpad.
    public static func json(_ e: EncodedImage, method: String) throws -> Data {
        let object: [String: Any] = [
            "method": method,
            "grid": [e.grid.rows, e.grid.cols],
            "patches_per_partition": e.tokensPerPartition,
            "partitions": e.decision.partitions.map { ["budget": $0.budget, "kept": $0.kept] },
            "lost_to_unpad": e.lostToUnpad,
            "visual_tokens_in": e.fullCount,
            "visual_tokens_out": e.features.shape[0],
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }

    /// Two rows of panels in the model's own view of the image (the base partition, then the
    /// tiles reassembled into the padded canvas): kept patches as they are, dropped ones dimmed,
    /// patches merged into a built token tinted blue; below, the method's score as a heat map
    /// (CLS attention for HiRED and VisionZip; grey where the method has none). Each partition
    /// carries "budget/kept" at its top-left corner.
    public static func render(_ image: ImageInput, _ e: EncodedImage, mean: [Float], std: [Float], gridSide G: Int) -> RGBImage {
        let S = image.pixels.shape[2]
        let ps = S / G
        let (R, C) = e.partitions > 1 ? (e.grid.rows, e.grid.cols) : (0, 0)
        let tileScale = max(1, 448 / max(1, R * S))
        let canvasH = R > 0 ? R * S * tileScale : 448
        let baseScale = max(1, canvasH / S)
        let gap = 8
        let baseW = S * baseScale, tilesW = C * S * tileScale
        let width = baseW + (R > 0 ? gap + tilesW : 0)
        let height = 2 * max(S * baseScale, canvasH) + gap
        var px = [UInt8](repeating: 24, count: width * height * 3)

        func put(_ x: Int, _ y: Int, _ c: (Float, Float, Float)) {
            guard x >= 0, y >= 0, x < width, y < height else { return }
            let i = (y * width + x) * 3
            px[i] = UInt8(max(0, min(255, c.0))); px[i + 1] = UInt8(max(0, min(255, c.1))); px[i + 2] = UInt8(max(0, min(255, c.2)))
        }
        // Per partition: 0 dropped, 1 kept, 2 merged into a built token.
        let state: [[UInt8]] = e.decision.partitions.map { sel in
            var s = [UInt8](repeating: 0, count: G * G)
            for t in sel.merged { for j in t.sources { s[j] = 2 } }
            for j in sel.kept { s[j] = 1 }
            return s
        }
        func drawPartition(_ p: Int, originX: Int, originY: Int, scale: Int) {
            let plane = S * S
            let base = image.pixels.data + p * 3 * plane
            let scores = e.decision.partitions[p].scores
            let lo = scores.min() ?? 0, hi = scores.max() ?? 1
            for y in 0..<(S * scale) {
                for x in 0..<(S * scale) {
                    let (sy, sx) = (y / scale, x / scale)
                    let j = (sy / ps) * G + sx / ps
                    var c = (0..<3).map { ch in (base[ch * plane + sy * S + sx] * std[ch] + mean[ch]) * 255 }
                    switch state[p][min(j, G * G - 1)] {
                    case 0: c = c.map { $0 * 0.22 + 20 }
                    case 2: c = [c[0] * 0.5 + 20, c[1] * 0.5 + 60, c[2] * 0.5 + 127]
                    default: break
                    }
                    put(originX + x, originY + y, (c[0], c[1], c[2]))
                    // Heat map panel below.
                    let hy = originY + y + max(S * baseScale, canvasH) + gap
                    if scores.count == G * G {
                        let v = hi > lo ? (scores[j] - lo) / (hi - lo) : 0
                        put(originX + x, hy, (255 * min(1, 2 * v), 255 * max(0, 2 * v - 1), 40 * (1 - v)))
                    } else {
                        put(originX + x, hy, (60, 60, 60))
                    }
                }
            }
            for y in [originY, originY + S * scale - 1] { for x in originX..<(originX + S * scale) { put(x, y, (255, 255, 255)) } }
            for x in [originX, originX + S * scale - 1] { for y in originY..<(originY + S * scale) { put(x, y, (255, 255, 255)) } }
            let sel = e.decision.partitions[p]
            Glyphs.draw("\(sel.budget)/\(sel.tokenCount)", x: originX + 3, y: originY + 3, scale: 2) { put($0, $1, (255, 255, 0)) }
        }
        drawPartition(0, originX: 0, originY: 0, scale: baseScale)
        if R > 0 {
            for p in 1..<e.partitions {
                let (tr, tc) = ((p - 1) / C, (p - 1) % C)
                drawPartition(p, originX: baseW + gap + tc * S * tileScale, originY: tr * S * tileScale, scale: tileScale)
            }
        }
        return RGBImage(width: width, height: height, pixels: px)
    }
}

/// A 3×5 pixel font for the digits and '/', enough to write "budget/kept" on a picture
/// without a font library.
enum Glyphs {
    static let rows: [Character: [UInt8]] = [
        "0": [7, 5, 5, 5, 7], "1": [2, 6, 2, 2, 7], "2": [7, 1, 7, 4, 7], "3": [7, 1, 7, 1, 7], "4": [5, 5, 7, 1, 1],
        "5": [7, 4, 7, 1, 7], "6": [7, 4, 7, 5, 7], "7": [7, 1, 1, 1, 1], "8": [7, 5, 7, 5, 7], "9": [7, 5, 7, 1, 7],
        "/": [1, 1, 2, 4, 4],
    ]

    static func draw(_ text: String, x: Int, y: Int, scale: Int, _ put: (Int, Int) -> Void) {
        var cx = x
        for ch in text {
            if let g = rows[ch] {
                for (r, bits) in g.enumerated() {
                    for c in 0..<3 where bits & (4 >> c) != 0 {
                        for dy in 0..<scale { for dx in 0..<scale { put(cx + c * scale + dx, y + r * scale + dy) } }
                    }
                }
            }
            cx += 4 * scale
        }
    }
}
