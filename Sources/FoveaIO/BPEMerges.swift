import HeapModule

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

/// SentencePiece's own BPE, as llama.cpp runs it on "llama" GGUF vocabularies (pieces and
/// scores, no merge list): one merge at a time, always the adjacent pair whose joined piece is in
/// the vocabulary with the highest score, the leftmost on ties (sentencepiece's bpe_model.cc,
/// llama.cpp's llm_tokenizer_spm). A rank table rebuilt from the scores, as transformers' GGUF
/// converter builds one, merges every occurrence of a pair at once and splits runs of spaces
/// differently.
public struct ScoredMerges: Sendable {
    let scores: [Piece: Float]

    public init(scores: [Piece: Float]) { self.scores = scores }

    private struct Candidate: Comparable {
        let score: Float, left: Int, right: Int, length: Int
        // The heap's maximum is the best merge: higher score, then further left.
        static func < (a: Candidate, b: Candidate) -> Bool { a.score < b.score || (a.score == b.score && a.left > b.left) }
    }

    public func apply(_ start: [Piece]) -> [Piece] {
        let n = start.count
        guard n > 1 else { return start }
        // Symbol i's text lives at its leftmost slot; merged-away slots are emptied.
        var text = start
        var next = Array(1...n), prev = Array(-1..<(n - 1))
        var heap = Heap<Candidate>()
        func consider(_ l: Int, _ r: Int) {
            guard l >= 0, r < n else { return }
            let joined = Piece(bytes: text[l].bytes + text[r].bytes)
            if let s = scores[joined] { heap.insert(Candidate(score: s, left: l, right: r, length: joined.bytes.count)) }
        }
        for i in 0..<(n - 1) { consider(i, i + 1) }
        while let c = heap.popMax() {
            // Stale when either side has merged since the candidate was queued.
            guard !text[c.left].bytes.isEmpty, !text[c.right].bytes.isEmpty, next[c.left] == c.right,
                  text[c.left].bytes.count + text[c.right].bytes.count == c.length else { continue }
            text[c.left] = Piece(bytes: text[c.left].bytes + text[c.right].bytes)
            text[c.right] = Piece(bytes: [])
            next[c.left] = next[c.right]
            if next[c.right] < n { prev[next[c.right]] = c.left }
            consider(prev[c.left], c.left)
            consider(c.left, next[c.left])
        }
        var out: [Piece] = []
        var i = 0
        while i < n { out.append(text[i]); i = next[i] }
        return out
    }
}
