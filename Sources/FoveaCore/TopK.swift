/// The one ranking every method uses: larger score first, ties to the lower index, NaN last.
/// Deterministic on every platform (no unstable sort, no hash order).
public enum TopK {
    /// Indices of the `k` best scores, best first. `k` is clamped to `0...scores.count`.
    public static func indices(_ scores: [Float], k: Int) -> [Int] {
        let k = max(0, min(k, scores.count))
        if k == 0 { return [] }
        var order = Array(scores.indices)
        order.sort { a, b in
            let (x, y) = (scores[a], scores[b])
            if x.isNaN != y.isNaN { return y.isNaN }
            if x != y && !x.isNaN { return x > y }
            return a < b
        }
        return Array(order.prefix(k))
    }

    /// The same set, in ascending index order (raster order for patch scores).
    public static func keptAscending(_ scores: [Float], k: Int) -> [Int] {
        indices(scores, k: k).sorted()
    }
}
