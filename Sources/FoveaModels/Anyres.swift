import FoveaCore
import FoveaIO

/// LLaVA-NeXT's "anyres" geometry and packing, ported from transformers v5.23.0
/// (`select_best_resolution` in image_processing_utils.py; `get_anyres_image_grid_shape`,
/// `unpad_image` and `LlavaNextModel.pack_image_features` in modeling_llava_next.py).
/// Float rounding follows Python's exactly (double division, `int()` truncation,
/// `round(x, 7)`), since a one-off there changes the number of visual tokens.
public enum Anyres {
    /// The pinpoint (height, width) with the largest effective resolution, then the least waste.
    public static func bestResolution(height: Int, width: Int, pinpoints: [[Int]]) -> (height: Int, width: Int) {
        var best = (height: pinpoints[0][0], width: pinpoints[0][1])
        var maxEffective = 0
        var minWasted = Int.max
        for p in pinpoints {
            let (h, w) = (p[0], p[1])
            let scale = min(Double(w) / Double(width), Double(h) / Double(height))
            let dw = Int(Double(width) * scale), dh = Int(Double(height) * scale)
            let effective = min(dw * dh, width * height)
            let wasted = w * h - effective
            if effective > maxEffective || (effective == maxEffective && wasted < minWasted) {
                maxEffective = effective
                minWasted = wasted
                best = (h, w)
            }
        }
        return best
    }

    /// Tile grid (rows, cols) for an image of the given original size.
    public static func gridShape(height: Int, width: Int, pinpoints: [[Int]], tileSize: Int) -> (rows: Int, cols: Int) {
        let best = bestResolution(height: height, width: width, pinpoints: pinpoints)
        return (best.height / tileSize, best.width / tileSize)
    }

    /// Python's `round(x, 7)`, closely enough for ratios of image sizes.
    static func round7(_ x: Double) -> Double { (x * 1e7).rounded(.toNearestOrEven) / 1e7 }

    /// The part of a (gridRows·side) × (gridCols·side) patch grid that covers the image
    /// rather than padding: (first row, row count, first col, col count).
    public static func unpaddedRegion(height: Int, width: Int, gridHeight: Int, gridWidth: Int)
        -> (row: Int, rows: Int, col: Int, cols: Int)
    {
        let originalAspect = Double(width) / Double(height)
        let currentAspect = Double(gridWidth) / Double(gridHeight)
        if originalAspect > currentAspect {
            let scale = Double(gridWidth) / Double(width)
            let newHeight = Int(round7(Double(height) * scale))
            let pad = Self.floorDiv(gridHeight - newHeight, 2)
            return (pad, gridHeight - 2 * pad, 0, gridWidth)
        } else {
            let scale = Double(gridHeight) / Double(height)
            let newWidth = Int(round7(Double(width) * scale))
            let pad = Self.floorDiv(gridWidth - newWidth, 2)
            return (0, gridHeight, pad, gridWidth - 2 * pad)
        }
    }

    static func floorDiv(_ a: Int, _ b: Int) -> Int { Int((Double(a) / Double(b)).rounded(.down)) }

    /// Visual tokens LLaVA-NeXT produces for one image: base tile, unpadded tile grid, one newline per row.
    public static func tokenCount(height: Int, width: Int, pinpoints: [[Int]], tileSize: Int, patchesPerSide side: Int,
                                  newline: Bool = true) -> Int {
        let g = gridShape(height: height, width: width, pinpoints: pinpoints, tileSize: tileSize)
        let r = unpaddedRegion(height: height, width: width, gridHeight: g.rows * side, gridWidth: g.cols * side)
        return side * side + r.rows * r.cols + (newline ? r.rows : 0)
    }
}
