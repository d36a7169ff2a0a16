import Foundation

/// What the runtime needs of a tokenizer.
public protocol TextTokenizer: Sendable {
    /// Token ids for `text`; added tokens are matched first (special ones only if `specialTokens`),
    /// and the tokenizer's own prefix (e.g. BOS) is added if it declares one. Symbols the vocabulary
    /// cannot spell become the unknown token where there is one (as `tokenizers` does); where there
    /// is none they are left out and listed in `unknown`.
    func tokenize(_ text: String, specialTokens: Bool) -> (ids: [Int], unknown: [String])
    /// The UTF-8 bytes `ids` stand for (special tokens as their text unless skipped).
    func bytes(_ ids: [Int], skipSpecial: Bool) -> [UInt8]
    /// The bytes one generated token adds to a stream (special tokens skipped).
    func streamBytes(_ id: Int) -> [UInt8]
}

extension TextTokenizer {
    public func streamBytes(_ id: Int) -> [UInt8] { bytes([id], skipSpecial: true) }

    /// `tokenize`'s ids, dropping what the vocabulary cannot spell as `tokenizers` does without an unknown token.
    public func encode(_ text: String, specialTokens: Bool = true) -> [Int] { tokenize(text, specialTokens: specialTokens).ids }

    /// The ids, or an error naming the characters the vocabulary cannot spell: what a user's prompt needs.
    public func encodeChecked(_ text: String, specialTokens: Bool = true) throws -> [Int] {
        let (ids, unknown) = tokenize(text, specialTokens: specialTokens)
        guard unknown.isEmpty else { throw FoveaError.unencodableText(symbols: unknown) }
        return ids
    }
    public func decode(_ ids: [Int], skipSpecial: Bool = false) -> String {
        String(decoding: bytes(ids, skipSpecial: skipSpecial), as: UTF8.self)
    }
}

extension ByteLevelBPETokenizer: TextTokenizer {}

/// A token matched as a whole before BPE (`added_tokens` in tokenizer.json).
public struct AddedToken: Sendable, Equatable {
    public let id: Int
    public let content: String
    public let special: Bool
    public init(id: Int, content: String, special: Bool) {
        self.id = id
        self.content = content
        self.special = special
    }
}

enum TextSegment { case text(String, atStart: Bool), token(Int) }

/// Cuts added tokens out of `text`, longest match first. Matching is by Unicode scalars, as the
/// `tokenizers` library matches (Swift's Character comparison would treat "é" and "e\u{301}" alike).
func splitAddedTokens(_ text: String, _ tokens: [AddedToken], specialTokens: Bool) -> [TextSegment] {
    let candidates = tokens.filter { (specialTokens || !$0.special) && !$0.content.isEmpty }
        .sorted { $0.content.unicodeScalars.count > $1.content.unicodeScalars.count }
        .map { (id: $0.id, scalars: Array($0.content.unicodeScalars)) }
    let scalars = Array(text.unicodeScalars)
    if candidates.isEmpty { return scalars.isEmpty ? [] : [.text(text, atStart: true)] }
    var segments: [TextSegment] = []
    var pending = String.UnicodeScalarView()
    var pendingAtStart = true
    var i = 0
    while i < scalars.count {
        if let hit = candidates.first(where: { c in
            i + c.scalars.count <= scalars.count && scalars[i..<(i + c.scalars.count)].elementsEqual(c.scalars)
        }) {
            if !pending.isEmpty { segments.append(.text(String(pending), atStart: pendingAtStart)); pending = .init() }
            segments.append(.token(hit.id))
            i += hit.scalars.count
            pendingAtStart = false
        } else {
            pending.append(scalars[i])
            i += 1
        }
    }
    if !pending.isEmpty { segments.append(.text(String(pending), atStart: pendingAtStart)) }
    return segments
}

/// SentencePiece-style BPE as Llama, Vicuna and Mistral tokenizer.json files describe it
/// (tokenizers: normalizers Prepend/Replace or pre_tokenizers::Metaspace, models/bpe with
/// byte_fallback, decoders Replace/ByteFallback/Fuse/Strip).
///
/// Spaces become `▁`; a `▁` is put in front of the text (every text span with the Llama-2
/// normalizer, only the span at the start of the input with Metaspace "first"); characters
/// the vocabulary lacks fall back to `<0xNN>` byte tokens.
public final class SentencePieceBPETokenizer: TextTokenizer, @unchecked Sendable {
    public enum Prepend: Sendable { case everySpan, firstSpan, never }
    /// tokenizer.json's merge list, or a GGUF vocabulary's scores (SentencePiece's own rule).
    public enum Merging: Sendable {
        case ranked(BPEMerges), scored(ScoredMerges)
        func apply(_ symbols: [Piece]) -> [Piece] {
            switch self {
            case .ranked(let m): m.apply(symbols)
            case .scored(let m): m.apply(symbols)
            }
        }
    }

    let vocab: [Piece: Int]
    public let idToToken: [String]
    public let addedTokens: [AddedToken]
    public let specialIds: Set<Int>
    let merging: Merging
    let prepend: Prepend
    let prefix: [Int]
    let unkId: Int?
    let byteIds: [Int]?
    let addedIds: Set<Int>

    public convenience init(vocab: [String: Int], merges: [(String, String)], addedTokens: [AddedToken], prepend: Prepend,
                            prefix: [Int], unkToken: String?, byteFallback: Bool) {
        self.init(pieces: pieceVocabulary(vocab), merging: .ranked(BPEMerges(merges)), addedTokens: addedTokens, prepend: prepend,
                  prefix: prefix, unkToken: unkToken, byteFallback: byteFallback)
    }

    init(pieces vocab: [Piece: Int], merging: Merging, addedTokens: [AddedToken], prepend: Prepend,
         prefix: [Int], unkToken: String?, byteFallback: Bool) {
        self.vocab = vocab
        var inverse = [String](repeating: "", count: max((vocab.values.max() ?? -1), (addedTokens.map(\.id).max() ?? -1)) + 1)
        for (t, i) in vocab where i >= 0 { inverse[i] = t.string }
        for a in addedTokens { inverse[a.id] = a.content }
        idToToken = inverse
        self.addedTokens = addedTokens
        specialIds = Set(addedTokens.filter(\.special).map(\.id))
        addedIds = Set(addedTokens.map(\.id))
        self.merging = merging
        self.prepend = prepend
        self.prefix = prefix
        unkId = unkToken.flatMap { u in vocab[Piece(u)] ?? addedTokens.first { $0.content.utf8.elementsEqual(u.utf8) }?.id }
        let bytes = (0..<256).map { vocab[Piece(String(format: "<0x%02X>", $0))] }
        byteIds = byteFallback && bytes.allSatisfy { $0 != nil } ? bytes.map { $0! } : nil
    }

    public func tokenize(_ text: String, specialTokens: Bool = true) -> (ids: [Int], unknown: [String]) {
        var out = prefix, unknown: [String] = []
        for seg in splitAddedTokens(text, addedTokens, specialTokens: specialTokens) {
            switch seg {
            case .token(let id): out.append(id)
            case .text(let s, let atStart):
                var t = s.replacingOccurrences(of: " ", with: "▁")
                switch prepend {
                case .everySpan: t = "▁" + t
                case .firstSpan: if atStart && !t.hasPrefix("▁") { t = "▁" + t }
                case .never: break
                }
                var lastWasUnk = false
                for sym in merging.apply(scalarPieces(t)) {
                    if let id = vocab[sym] {
                        out.append(id); lastWasUnk = false
                    } else if let byteIds {
                        for b in sym.bytes { out.append(byteIds[Int(b)]) }
                        lastWasUnk = false
                    } else if let unkId {
                        if !lastWasUnk { out.append(unkId) }   // fuse_unk
                        lastWasUnk = true
                    } else {
                        unknown.append(sym.string)
                    }
                }
            }
        }
        return (out, unknown)
    }

    public func bytes(_ ids: [Int], skipSpecial: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        for id in ids where id >= 0 && id < idToToken.count {
            if specialIds.contains(id) && skipSpecial { continue }
            let piece = idToToken[id]
            if addedIds.contains(id) {
                out += Array(piece.utf8)
            } else if piece.count == 6, piece.hasPrefix("<0x"), piece.hasSuffix(">"), let b = UInt8(piece.dropFirst(3).prefix(2), radix: 16) {
                out.append(b)
            } else {
                out += Array(piece.replacingOccurrences(of: "▁", with: " ").utf8)
            }
        }
        // Decoder `Strip(" ", 1, 0)`: the space the encoder put in front goes again.
        if out.first == 0x20 { out.removeFirst() }
        return out
    }

    /// Bytes of one token as it streams: no leading-space strip, which only applies to a whole text.
    public func streamBytes(_ id: Int) -> [UInt8] {
        guard id >= 0 && id < idToToken.count, !specialIds.contains(id) else { return [] }
        let piece = idToToken[id]
        if !addedIds.contains(id), piece.count == 6, piece.hasPrefix("<0x"), let b = UInt8(piece.dropFirst(3).prefix(2), radix: 16) { return [b] }
        return Array((addedIds.contains(id) ? piece : piece.replacingOccurrences(of: "▁", with: " ")).utf8)
    }
}
