import Foundation
import Testing
@testable import FoveaIO
import FoveaTestSupport

/// SentencePiece-style BPE against `tokenizers` (Fixtures/tokenizers/llama-style, made by
/// scripts/make_spbpe_reference.py): Llama-2's Prepend+Replace normaliser and the newer
/// Metaspace "first" pre-tokenizer, byte fallback, BOS from the post-processor; 320 strings each.
@Suite("SentencePiece-style BPE tokenizer (Llama layout)")
struct SentencePieceTests {
    struct Case: Decodable { let text: String; let ids: [Int]; let decoded: String; let decoded_skip: String }
    struct File: Decodable { let cases: [Case] }
    static let folder = Fixtures.root() + "/tokenizers/llama-style"

    @Test("ids and decodes equal tokenizers'", arguments: ["", "-metaspace"])
    func parity(_ variant: String) throws {
        let tok = try TokenizerLoader.load(path: Self.folder + "/tokenizer\(variant).json")
        #expect(tok is SentencePieceBPETokenizer)
        let cases = try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: Self.folder + "/reference\(variant).json"))).cases
        #expect(cases.count >= 300)
        var bad = 0
        for c in cases {
            let ids = tok.encode(c.text)
            let ok = ids == c.ids && tok.decode(c.ids) == c.decoded && tok.decode(c.ids, skipSpecial: true) == c.decoded_skip
            if !ok {
                bad += 1
                if bad <= 5 {
                    Issue.record("\(c.text.debugDescription): \(ids) vs \(c.ids); '\(tok.decode(c.ids))' vs '\(c.decoded)'; '\(tok.decode(c.ids, skipSpecial: true))' vs '\(c.decoded_skip)'")
                }
            }
        }
        #expect(bad == 0)
    }

    /// llama.cpp's "llama" vocabulary (Fixtures/tokenizers/llama-spm, made by
    /// scripts/make_spm_gguf_reference.py): a SentencePiece BPE model trained with Llama's settings,
    /// written as convert_hf_to_gguf.py writes one, against the sentencepiece library's own ids —
    /// which llama.cpp's llama-tokenize also gives on all 320 strings (reference.json's "llama_cpp",
    /// scripts/llamacpp/tokenize_check.py).
    @Test("a SentencePiece GGUF vocabulary (pieces and scores, no merges) tokenizes as sentencepiece does")
    func gguf() throws {
        let folder = Fixtures.root() + "/tokenizers/llama-spm"
        let tok = try TokenizerLoader.load(gguf: GGUFFile(path: folder + "/tokenizer.gguf"))
        #expect(tok is SentencePieceBPETokenizer)
        struct Case: Decodable { let text: String; let ids: [Int]; let decoded: String }
        struct File: Decodable { let cases: [Case] }
        let cases = try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/reference.json"))).cases
        #expect(cases.count >= 300)
        var bad = 0
        for c in cases {
            let ids = tok.encode(c.text)
            if ids != c.ids || tok.decode(ids, skipSpecial: true) != c.decoded {
                bad += 1
                if bad <= 5 { Issue.record("\(c.text.debugDescription): \(ids) vs \(c.ids); '\(tok.decode(ids, skipSpecial: true))' vs '\(c.decoded)'") }
            }
        }
        #expect(bad == 0)
    }

    @Test("runs of spaces merge one pair at a time, best score first, as SentencePiece does")
    func scoredMerges() {
        // Worked by hand, one merge at a time. Scores ▁▁ −1, ▁▁▁ −2, ▁▁▁▁ −3 on five spaces:
        // (0,1) → ▁▁|▁|▁|▁; the best left is ▁+▁ at 2 (−1) → ▁▁|▁▁|▁; then ▁▁+▁ (−2) beats
        // ▁▁+▁▁ (−3) → ▁▁|▁▁▁. With ▁▁▁ scored best, the first pair grows to three at once.
        // With ▁▁▁ and ▁▁▁▁ tied, the leftmost candidate wins.
        let s: (Float, Float, Float) -> ScoredMerges = { ScoredMerges(scores: [Piece("▁▁"): $0, Piece("▁▁▁"): $1, Piece("▁▁▁▁"): $2]) }
        let five = [Piece](repeating: Piece("▁"), count: 5)
        #expect(s(-1, -2, -3).apply(five).map(\.string) == ["▁▁", "▁▁▁"])
        #expect(s(-2, -1, -3).apply(five).map(\.string) == ["▁▁▁", "▁▁"])
        #expect(s(-1, -9, -9).apply(five).map(\.string) == ["▁▁▁▁", "▁"])
    }

    @Test("characters outside the vocabulary fall back to byte tokens and round-trip")
    func byteFallback() throws {
        let tok = try TokenizerLoader.load(path: Self.folder + "/tokenizer.json")
        let ids = tok.encode("東")
        #expect(ids.count == 1 + 1 + 3)       // BOS, "▁", three UTF-8 bytes
        #expect(tok.decode(ids, skipSpecial: true) == "東")
    }
}

@Suite("Token identity")
struct TokenIdentityTests {
    @Test("canonically equivalent spellings stay different tokens (é vs e + U+0301)")
    func canonicalEquivalence() {
        // Both spellings in one vocabulary: a [String: Int] could not even hold them.
        let entries: [(String, Int)] = [("<unk>", 0), ("▁", 1), ("\u{e9}", 2), ("e", 3), ("\u{301}", 4), ("▁\u{e9}", 5), ("e\u{301}", 6)]
        var vocab: [Piece: Int] = [:]
        for (t, i) in entries { vocab[Piece(t)] = i }
        #expect(vocab.count == 7)
        let tok = SentencePieceBPETokenizer(pieces: vocab, merging: .ranked(BPEMerges([("▁", "\u{e9}"), ("e", "\u{301}")])), addedTokens: [],
                                            prepend: .everySpan, prefix: [], unkToken: "<unk>", byteFallback: false)
        #expect(tok.encode("\u{e9}") == [5])
        #expect(tok.encode("e\u{301}") == [1, 6])
        #expect(tok.decode([1, 6]).unicodeScalars.map(\.value) == [0x65, 0x301])
    }

    @Test("an added token matches its own scalars only, not a canonically equivalent spelling")
    func addedTokenIdentity() {
        let vocab: [Piece: Int] = [Piece("<unk>"): 0, Piece("▁"): 1, Piece("e"): 3, Piece("\u{301}"): 4]
        let tok = SentencePieceBPETokenizer(pieces: vocab, merging: .ranked(BPEMerges([])), addedTokens: [AddedToken(id: 9, content: "\u{e9}", special: false)],
                                            prepend: .never, prefix: [], unkToken: "<unk>", byteFallback: false)
        #expect(tok.encode("\u{e9}") == [9])
        #expect(tok.encode("e\u{301}") == [3, 4])
    }
}

@Suite("SentencePiece-style BPE on long input")
struct SentencePieceLongInputTests {
    @Test("a 10k-character prompt (one long word: no pre-tokenizer) encodes in well under a second and round-trips",
          arguments: ["tokenizer.json", "GGUF scores"])
    func longPrompt(_ kind: String) throws {
        let tok: any TextTokenizer = kind == "tokenizer.json"
            ? try TokenizerLoader.load(path: SentencePieceTests.folder + "/tokenizer.json")
            : try TokenizerLoader.load(gguf: GGUFFile(path: Fixtures.root() + "/tokenizers/llama-spm/tokenizer.gguf"))
        let sentence = "What colour is the small circle in the top left of the picture? "
        let text = String(repeating: sentence, count: 150)   // ~10k characters
        let start = Date()
        let ids = tok.encode(text)
        let seconds = Date().timeIntervalSince(start)
        #expect(ids.count > 1000)
        #expect(tok.decode(ids, skipSpecial: true) == text)
        // Generous bound for a debug build on 2 cores; a quadratic merge loop takes minutes here.
        #expect(seconds < 20, "took \(seconds) s")
    }
}
