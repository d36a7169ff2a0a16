import Foundation

/// Byte-level BPE (GPT-2 family: SmolLM2, Qwen2), as Hugging Face `tokenizers` implements it
/// (tokenizers/src/pre_tokenizers/byte_level.rs, models/bpe/model.rs).
///
/// Encoding: added/special tokens are cut out first; each remaining span is pre-tokenized
/// (optionally split into single digits, then the GPT-2 regex), every piece's UTF-8 bytes are
/// mapped to printable characters, and adjacent symbols are merged lowest merge rank first.
public final class ByteLevelBPETokenizer: @unchecked Sendable {
    let vocab: [Piece: Int]
    public let idToToken: [String]
    let merges: BPEMerges
    public let addedTokens: [AddedToken]
    public let specialIds: Set<Int>
    let addedIds: Set<Int>
    let splitDigits: Bool
    let regex: NSRegularExpression
    private var cache: [String: (ids: [Int], missing: [String])] = [:]
    private let lock = NSLock()

    /// The pattern `tokenizers`' ByteLevel pre-tokenizer uses when `use_regex` is true.
    public static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    public init(vocab: [String: Int], merges: [(String, String)], addedTokens: [AddedToken], splitDigits: Bool,
                pattern: String = ByteLevelBPETokenizer.gpt2Pattern, path: String = "tokenizer") throws {
        for (field, id) in vocab.map({ ("model.vocab.\($0.key)", $0.value) }) + addedTokens.map({ ("added token \($0.content.debugDescription)", $0.id) }) {
            try TokenizerLoader.checkId(id, path: path, field: field)
        }
        self.vocab = pieceVocabulary(vocab)
        var inverse = [String](repeating: "", count: (vocab.values.max() ?? -1) + 1)
        for (t, i) in vocab where i >= 0 { inverse[i] = t }
        for a in addedTokens {
            if a.id >= inverse.count { inverse += [String](repeating: "", count: a.id - inverse.count + 1) }
            inverse[a.id] = a.content
        }
        idToToken = inverse
        self.merges = BPEMerges(merges)
        self.addedTokens = addedTokens
        specialIds = Set(addedTokens.filter(\.special).map(\.id))
        addedIds = Set(addedTokens.map(\.id))
        self.splitDigits = splitDigits
        do { regex = try NSRegularExpression(pattern: pattern) } catch {
            throw FoveaError.invalidConfig(path: path, field: "pre_tokenizer.pattern", reason: "not a valid regular expression")
        }
    }

    // MARK: Encoding

    public func tokenize(_ text: String, specialTokens: Bool = true) -> (ids: [Int], unknown: [String]) {
        var out: [Int] = [], unknown: [String] = []
        for segment in splitAddedTokens(text, addedTokens, specialTokens: specialTokens) {
            switch segment {
            case .token(let id): out.append(id)
            case .text(let s, _):
                for piece in preTokenize(s) {
                    let (ids, missing) = bpe(piece)
                    out += ids
                    unknown += missing.map { String(decoding: ByteLevel.decode($0), as: UTF8.self) }
                }
            }
        }
        return (out, unknown)
    }

    /// Pieces in byte-level alphabet, ready for BPE.
    func preTokenize(_ text: String) -> [String] {
        var spans: [String] = []
        if splitDigits {
            // `Digits(individual_digits: true)`: every numeric scalar is its own span (scalars, not
            // Characters: a digit followed by a combining mark is still split off).
            var cur = String.UnicodeScalarView()
            for u in text.unicodeScalars {
                if u.properties.numericType != nil {
                    if !cur.isEmpty { spans.append(String(cur)); cur = .init() }
                    spans.append(String(u))
                } else {
                    cur.append(u)
                }
            }
            if !cur.isEmpty { spans.append(String(cur)) }
        } else {
            spans = [text]
        }
        var pieces: [String] = []
        for span in spans {
            let ns = span as NSString
            for m in regex.matches(in: span, range: NSRange(location: 0, length: ns.length)) {
                pieces.append(ByteLevel.encode(ns.substring(with: m.range)))
            }
        }
        return pieces
    }

    /// Merges one piece's symbols by rank; cached per piece.
    /// Real vocabularies leave out some control bytes (SmolLM2 has no symbol for 0x04): those are
    /// reported, not silently dropped. Merges only make tokens (checked at load).
    func bpe(_ piece: String) -> (ids: [Int], missing: [String]) {
        lock.lock()
        if let hit = cache[piece] { lock.unlock(); return hit }
        lock.unlock()
        var ids: [Int] = [], missing: [String] = []
        for symbol in merges.apply(scalarPieces(piece)) {
            if let id = vocab[symbol] { ids.append(id) } else { missing.append(symbol.string) }
        }
        lock.lock()
        if cache.count > 100_000 { cache.removeAll(keepingCapacity: true) }
        cache[piece] = (ids, missing)
        lock.unlock()
        return (ids, missing)
    }

    // MARK: Decoding

    /// The raw bytes of `ids` (added tokens as their UTF-8 text).
    public func bytes(_ ids: [Int], skipSpecial: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        for id in ids where id >= 0 && id < idToToken.count {
            if specialIds.contains(id) {
                if !skipSpecial { out += Array(idToToken[id].utf8) }
            } else if addedIds.contains(id) {
                out += Array(idToToken[id].utf8)
            } else {
                out += ByteLevel.decode(idToToken[id])
            }
        }
        return out
    }

    public func decode(_ ids: [Int], skipSpecial: Bool = false) -> String {
        String(decoding: bytes(ids, skipSpecial: skipSpecial), as: UTF8.self)
    }
}

/// GPT-2's reversible map between bytes and printable Unicode characters.
public enum ByteLevel {
    /// byte → character: printable Latin-1 bytes map to themselves, the rest to U+0100 onwards.
    public static let byteToChar: [Character] = {
        var table = [Character](repeating: " ", count: 256)
        var n = 0
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable {
                table[b] = Character(Unicode.Scalar(UInt8(b)))
            } else {
                table[b] = Character(Unicode.Scalar(UInt32(256 + n))!)
                n += 1
            }
        }
        return table
    }()

    public static let charToByte: [Character: UInt8] = {
        var m: [Character: UInt8] = [:]
        for (b, c) in byteToChar.enumerated() { m[c] = UInt8(b) }
        return m
    }()

    public static func encode(_ s: String) -> String {
        String(s.utf8.map { byteToChar[Int($0)] })
    }

    public static func decode(_ token: String) -> [UInt8] {
        token.compactMap { charToByte[$0] }
    }
}

/// Turns a stream of token ids into text without ever emitting half a UTF-8 character.
public struct StreamingDecoder: Sendable {
    private var pending: [UInt8] = []
    public init() {}

    /// Appends `bytes`; returns the text that is now complete.
    public mutating func push(_ bytes: [UInt8]) -> String {
        pending += bytes
        // Find the longest prefix that ends on a character boundary.
        var end = pending.count
        var i = pending.count - 1, back = 0
        while i >= 0 && back < 4 {
            let b = pending[i]
            if b & 0xC0 != 0x80 {   // a lead byte or ASCII
                let need = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
                if pending.count - i < need { end = i }
                break
            }
            i -= 1; back += 1
        }
        let text = String(decoding: pending[..<end], as: UTF8.self)
        pending.removeFirst(end)
        return text
    }

    /// Whatever is left (invalid trailing bytes become U+FFFD).
    public mutating func flush() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }
}
