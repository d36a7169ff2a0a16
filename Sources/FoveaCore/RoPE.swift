import Foundation

/// Rotary position embedding in the rotate-half form used by Hugging Face Llama/Mistral:
/// the head vector is split into halves (x₁, x₂) and rotated to (x₁cos − x₂sin, x₂cos + x₁sin)
/// with angle = position · θ^(−2i/d). GGUF checkpoints store Q/K rows permuted for the
/// interleaved form; the GGUF loader undoes that so this one form serves both.
public struct RotaryEmbedding: Sendable {
    public let headDim: Int
    public let theta: Float
    /// θ^(−2i/d), i in 0..<d/2, computed in float32 exactly as transformers does.
    public let inverseFrequencies: [Float]

    public init(headDim: Int, theta: Float, scalingFactor: Float = 1) {
        self.headDim = headDim
        self.theta = theta
        inverseFrequencies = (0..<(headDim / 2)).map { i in
            1 / powf(theta, Float(2 * i) / Float(headDim)) / scalingFactor
        }
    }

    /// Rotates `rows` vectors of `heads` heads each, laid out [rows, heads·headDim], in place.
    /// `positions[r]` is the position of row r.
    public func apply(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, positions: UnsafePointer<Int32>) {
        let half = headDim / 2
        let width = heads * headDim
        inverseFrequencies.withUnsafeBufferPointer { freq in
            Parallel.forEachChunk(rows, grain: max(1, 4096 / max(width, 1))) { range in
                var cosv = [Float](repeating: 0, count: half)
                var sinv = [Float](repeating: 0, count: half)
                for r in range {
                    let p = Float(positions[r])
                    for i in 0..<half {
                        let angle = p * freq[i]   // float32 product, as torch computes it
                        cosv[i] = Float(cos(Double(angle)))
                        sinv[i] = Float(sin(Double(angle)))
                    }
                    for h in 0..<heads {
                        let v = x + r * width + h * headDim
                        for i in 0..<half {
                            let a = v[i], b = v[i + half]
                            v[i] = a * cosv[i] - b * sinv[i]
                            v[i + half] = b * cosv[i] + a * sinv[i]
                        }
                    }
                }
            }
        }
    }

    /// Rotates `rows` vectors of one head ([rows, headDim]) all by the same `delta` positions,
    /// computing the angles once: RoPE rotations compose, so a key rotated at p and then by
    /// d equals the key rotated at p + d (StreamingLLM re-assigning cache positions).
    public func rotate(_ x: UnsafeMutablePointer<Float>, rows: Int, by delta: Int32) {
        let half = headDim / 2
        let p = Float(delta)
        let cosv = inverseFrequencies.map { Float(cos(Double(p * $0))) }
        let sinv = inverseFrequencies.map { Float(sin(Double(p * $0))) }
        for r in 0..<rows {
            let v = x + r * headDim
            for i in 0..<half {
                let a = v[i], b = v[i + half]
                v[i] = a * cosv[i] - b * sinv[i]
                v[i + half] = b * cosv[i] + a * sinv[i]
            }
        }
    }
}
