import Foundation
import Testing
@testable import FoveaIO
import FoveaTestSupport

/// Byte-level BPE against the `tokenizers` library (Fixtures/tokenizers/smollm2, made by
/// scripts/make_tokenizer_reference.py): identical ids and identical decoded text, 320 strings.
@Suite("Byte-level BPE tokenizer (SmolLM2)")
struct ByteLevelBPETests {
    struct Case: Decodable { let text: String; let ids: [Int]; let decoded: String; let decoded_skip: String }
    struct File: Decodable { let cases: [Case] }

    static let folder = Fixtures.root() + "/tokenizers/smollm2"
    static let tokenizer = Result { try TokenizerLoader.byteLevelBPE(path: folder + "/tokenizer.json") }
    static func cases() throws -> [Case] {
        try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/reference.json"))).cases
    }

    @Test("ids equal tokenizers' for 320 strings (ASCII, accents, CJK, emoji, whitespace, digits, code, chat markup)")
    func encode() throws {
        let tok = try Self.tokenizer.get()
        let cases = try Self.cases()
        #expect(cases.count >= 300)
        var mismatches = 0
        for c in cases {
            let ids = tok.encode(c.text)
            if ids != c.ids {
                mismatches += 1
                if mismatches <= 5 { Issue.record("\(c.text.debugDescription): \(ids) vs \(c.ids)") }
            }
        }
        #expect(mismatches == 0)
    }

    @Test("decoding equals tokenizers', with and without special tokens")
    func decode() throws {
        let tok = try Self.tokenizer.get()
        for c in try Self.cases() {
            #expect(tok.decode(c.ids) == c.decoded, "\(c.text.debugDescription)")
            #expect(tok.decode(c.ids, skipSpecial: true) == c.decoded_skip, "\(c.text.debugDescription)")
        }
    }

    @Test("special tokens are matched before BPE, and only when asked")
    func specials() throws {
        let tok = try Self.tokenizer.get()
        #expect(tok.encode("<|im_start|>user") == [1, 4093])
        #expect(!tok.encode("<|im_start|>user", specialTokens: false).contains(1))
    }

    @Test("streaming decode never emits half a character")
    func streaming() throws {
        let tok = try Self.tokenizer.get()
        let text = "Fovea sees 東京 and 🙂👍🏽 clearly."
        var decoder = StreamingDecoder()
        var out = ""
        for id in tok.encode(text) {
            let piece = decoder.push(tok.bytes([id]))
            #expect(!piece.contains("\u{FFFD}"), "replacement character emitted mid-stream")
            out += piece
        }
        out += decoder.flush()
        #expect(out == text)
    }
}

@Suite("tokenizer.json errors")
struct TokenizerErrorTests {
    func write(_ text: String) -> String {
        let path = Fixtures.temporaryDirectory("tok") + "/tokenizer.json"
        try? Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("malformed JSON, a missing model, an unknown model type and bad merges name the problem")
    func errors() {
        #expect(throws: FoveaError.self) { try TokenizerLoader.load(path: write("{\"model\": ")) }
        let noModel = write(#"{"pre_tokenizer": {"type": "ByteLevel"}}"#)
        #expect(throws: FoveaError.invalidConfig(path: noModel, field: "model", reason: "required object is missing")) {
            try TokenizerLoader.load(path: noModel)
        }
        let unigram = write(#"{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "Unigram", "vocab": []}}"#)
        #expect(throws: FoveaError.unsupportedModel(path: unigram, field: "model.type", value: "Unigram")) {
            try TokenizerLoader.load(path: unigram)
        }
        let merges = write(#"{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": [7]}}"#)
        #expect(throws: FoveaError.invalidConfig(path: merges, field: "model.merges[0]", reason: "expected \"a b\" or [\"a\", \"b\"]")) {
            try TokenizerLoader.load(path: merges)
        }
        // Empty files never reach Foundation's reader (it leaked its buffer on them under the fuzzer).
        let empty = write("")
        #expect(throws: FoveaError.badJSON(path: empty, reason: "not valid JSON")) { try TokenizerLoader.load(path: empty) }
        let wordPiece = write(#"{"pre_tokenizer": {"type": "BertPreTokenizer"}, "model": {"type": "BPE", "vocab": {}, "merges": []}}"#)
        #expect(throws: FoveaError.self) { try TokenizerLoader.load(path: wordPiece) }
    }

    /// A byte-level tokenizer.json whose vocabulary holds the whole byte alphabet plus `extra`.
    func byteLevel(extra: [String: Int] = [:], merges: String = "[]", added: String = "[]") -> String {
        var vocab: [String: Int] = [:]
        for (i, c) in ByteLevel.byteToChar.enumerated() { vocab[String(c)] = i }
        for (k, v) in extra { vocab[k] = v }
        let v = String(decoding: try! JSONSerialization.data(withJSONObject: vocab), as: UTF8.self)
        return #"{"pre_tokenizer": {"type": "ByteLevel"}, "added_tokens": \#(added), "model": {"type": "BPE", "vocab": \#(v), "merges": \#(merges)}}"#
    }

    @Test("added tokens with negative or absurd ids are refused at load (they trapped, or allocated by id)")
    func addedIds() throws {
        _ = try TokenizerLoader.load(path: write(byteLevel(added: #"[{"id": 300, "content": "<x>", "special": true}]"#)))
        for id in ["-1", "99999999999"] {
            let path = write(byteLevel(added: #"[{"id": \#(id), "content": "<x>", "special": true}]"#))
            let e = #expect(throws: FoveaError.self) { try TokenizerLoader.load(path: path) }
            guard case .invalidConfig(_, "added_tokens[0].id", let reason) = e else { Issue.record("wrong error \(String(describing: e))"); continue }
            #expect(reason.contains("token id \(id)"))
        }
        let vocabId = write(byteLevel(extra: ["ab": -5]))
        #expect(throws: FoveaError.invalidConfig(path: vocabId, field: "model.vocab.ab", reason: "token id -5 is outside 0..<16777216")) {
            try TokenizerLoader.load(path: vocabId)
        }
    }

    @Test("a byte the vocabulary cannot spell is reported, not dropped; merges into unknown tokens are refused at load")
    func coverage() throws {
        var vocab: [String: Int] = [:]
        for (i, c) in ByteLevel.byteToChar.enumerated() where i != 0x04 { vocab[String(c)] = i }   // SmolLM2 lacks 0x04 too
        let v = String(decoding: try JSONSerialization.data(withJSONObject: vocab), as: UTF8.self)
        let tok = try TokenizerLoader.load(path: write(#"{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": \#(v), "merges": []}}"#))
        #expect(tok.tokenize("a\u{04}b", specialTokens: true).unknown == ["\u{04}"])
        #expect(tok.encode("a\u{04}b") == [0x61, 0x62])   // what `tokenizers` gives: the byte dropped
        let e = #expect(throws: FoveaError.self) { try tok.encodeChecked("a\u{04}b") }
        #expect(e == .unencodableText(symbols: ["\u{04}"]))
        #expect(e?.localizedDescription.contains("U+0004") == true)
        #expect(try tok.encodeChecked("ab") == [0x61, 0x62])
        let merge = write(byteLevel(merges: #"["a b"]"#))
        #expect(throws: FoveaError.invalidConfig(path: merge, field: "model.merges[0]", reason: "'a b': \"ab\" is not in the vocabulary")) {
            try TokenizerLoader.load(path: merge)
        }
        let ok = try TokenizerLoader.load(path: write(byteLevel(extra: ["ab": 256], merges: #"["a b"]"#)))
        #expect(ok.encode("abA") == [256, 0x41])   // the test vocabulary numbers symbols by byte value
    }

    @Test("SentencePiece BPE with no way to spell unknown text, or an unk_token that is not a token, is refused")
    func sentencePieceCoverage() {
        let none = write(#"{"pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}"#)
        #expect(throws: FoveaError.self) { try TokenizerLoader.load(path: none) }
        let badUnk = write(#"{"pre_tokenizer": {"type": "Metaspace"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "unk_token": "<unk>"}}"#)
        #expect(throws: FoveaError.invalidConfig(path: badUnk, field: "model.unk_token", reason: "\"<unk>\" is not a token")) {
            try TokenizerLoader.load(path: badUnk)
        }
    }
}
