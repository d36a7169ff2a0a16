/// A BPE merge table and the merge loop both tokenizer families share
/// (tokenizers/src/models/bpe/word.rs: lowest rank first, ties leftmost).
public struct BPEMerges: Sendable {
    struct Pair: Hashable { let a: String; let b: String }
    /// (left, right) → rank; lower merges first.
    let ranks: [Pair: Int]

    public init(_ merges: [(String, String)]) {
        var r: [Pair: Int] = [:]
        r.reserveCapacity(merges.count)
        for (i, m) in merges.enumerated() where r[Pair(a: m.0, b: m.1)] == nil { r[Pair(a: m.0, b: m.1)] = i }
        ranks = r
    }

    /// Merges adjacent symbols until no pair in the table is left.
    public func apply(_ start: [String]) -> [String] {
        var symbols = start
        while symbols.count > 1 {
            var best = -1, bestRank = Int.max
            for i in 0..<(symbols.count - 1) {
                if let r = ranks[Pair(a: symbols[i], b: symbols[i + 1])], r < bestRank { best = i; bestRank = r }
            }
            if best < 0 { break }
            // Every occurrence of the best pair, left to right: the same result as popping
            // equal-rank occurrences from a queue ordered by position.
            let (a, b) = (symbols[best], symbols[best + 1])
            var merged: [String] = []
            merged.reserveCapacity(symbols.count)
            var i = 0
            while i < symbols.count {
                if i < symbols.count - 1 && symbols[i] == a && symbols[i + 1] == b {
                    merged.append(a + b); i += 2
                } else {
                    merged.append(symbols[i]); i += 1
                }
            }
            symbols = merged
        }
        return symbols
    }
}
