/// A stride-p convolution with kernel p (ViT patch embedding) as a matrix product:
/// unfold the image into one row per patch, then multiply by the flattened kernel.
public enum PatchEmbedding {
    /// Unfolds a [channels, height, width] image into [(height/p)·(width/p), channels·p·p] rows,
    /// patches in raster order, each row ordered (channel, ky, kx) to match a conv weight
    /// [out, channels, p, p] read as [out, channels·p·p].
    public static func unfold(
        _ image: UnsafePointer<Float>, channels: Int, height: Int, width: Int, patch p: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        let gh = height / p, gw = width / p
        let rowLen = channels * p * p
        Parallel.forEachChunk(gh * gw, grain: 64) { range in
            for idx in range {
                let py = idx / gw, px = idx % gw
                var o = out + idx * rowLen
                for c in 0..<channels {
                    for ky in 0..<p {
                        let src = image + (c * height + py * p + ky) * width + px * p
                        o.update(from: src, count: p)
                        o += p
                    }
                }
            }
        }
    }
}
