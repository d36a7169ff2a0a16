/// A token's text compared byte for byte. Swift's String equality and hashing follow Unicode
/// canonical equivalence ("é" == "e\u{301}"), but vocabularies hold both spellings as
/// different tokens, so every lookup goes through the UTF-8 bytes.
public struct Piece: Hashable, Sendable {
    public let bytes: [UInt8]
    public init(_ s: String) { bytes = Array(s.utf8) }
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public var string: String { String(decoding: bytes, as: UTF8.self) }
}

/// A BPE merge table and the merge loop both tokenizer families share
/// (tokenizers/src/models/bpe/word.rs: lowest rank first, ties leftmost).
public struct BPEMerges: Sendable {
    struct Pair: Hashable { let a: Piece; let b: Piece }
    /// (left, right) → rank; lower merges first.
    let ranks: [Pair: Int]

    public init(_ merges: [(String, String)]) {
        var r: [Pair: Int] = [:]
        r.reserveCapacity(merges.count)
        for (i, m) in merges.enumerated() {
            let pair = Pair(a: Piece(m.0), b: Piece(m.1))
            if r[pair] == nil { r[pair] = i }
        }
        ranks = r
    }

    /// Merges adjacent symbols until no pair in the table is left.
    public func apply(_ start: [Piece]) -> [Piece] {
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
            var merged: [Piece] = []
            merged.reserveCapacity(symbols.count)
            var i = 0
            while i < symbols.count {
                if i < symbols.count - 1 && symbols[i] == a && symbols[i + 1] == b {
                    merged.append(Piece(bytes: a.bytes + b.bytes)); i += 2
                } else {
                    merged.append(symbols[i]); i += 1
                }
            }
            symbols = merged
        }
        return symbols
    }
}

/// Symbols of a text for BPE: one per Unicode scalar, as Rust's chars are
/// ("\r\n" and "e\u{301}" are one Swift Character but two symbols).
func scalarPieces(_ s: String) -> [Piece] {
    s.unicodeScalars.map { Piece(String($0)) }
}

/// A vocabulary keyed by bytes (see `Piece`).
func pieceVocabulary(_ vocab: [String: Int]) -> [Piece: Int] {
    var out: [Piece: Int] = [:]
    out.reserveCapacity(vocab.count)
    for (k, v) in vocab { out[Piece(k)] = v }
    return out
}
