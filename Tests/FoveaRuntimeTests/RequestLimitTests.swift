import Foundation
import Testing
import FoveaCore
import FoveaIO
import FoveaModels
@testable import FoveaRuntime
import FoveaTestSupport

/// What a request may ask of a model: each case crashed, ran on garbage, or ran unbounded before.
@Suite("Generation requests are checked against the model's limits")
struct RequestLimitTests {
    static let folder = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().appendingPathComponent("models/fovea-test-llava-small").path
    let model: VisionLanguageModel
    init() throws { model = try VisionLanguageModel(directory: Self.folder) }

    @Test("an empty prompt is an error (it sampled from uninitialised logits)")
    func empty() {
        #expect(throws: FoveaError.emptyPrompt) { try Generator(model: model).generate(GenerationRequest(tokens: [], maxNewTokens: 2)) }
    }

    @Test("a prompt beyond the context is refused; max new tokens beyond it is an error; generation ends at the context's end")
    func context() throws {
        let context = model.config.text.maxPositions   // 2048
        let long = [Int](repeating: 5, count: context + 1)
        #expect(throws: FoveaError.promptTooLong(tokens: context + 1, context: context)) {
            try Generator(model: model).generate(GenerationRequest(tokens: long, maxNewTokens: 1))
        }
        #expect(throws: FoveaError.self) { try Generator(model: model).generate(GenerationRequest(tokens: [5], maxNewTokens: Int.max)) }
        let nearlyFull = [Int](repeating: 5, count: context - 3)
        let r = try Generator(model: model).generate(GenerationRequest(tokens: nearlyFull, maxNewTokens: 50))
        #expect(r.tokens.count == 3)
    }

    @Test("image sizes of zero or beyond a million pixels a side are refused before anyres arithmetic (they trapped)")
    func imageSizes() throws {
        let v = try #require(model.config.vision)
        let pixels = Tensor(zeros: [3, v.channels, v.imageSize, v.imageSize])
        for (h, w) in [(0, 224), (224, -5), (1 << 21, 224)] {
            let e = #expect(throws: FoveaError.self) { try model.encode(ImageInput(pixels: pixels, originalHeight: h, originalWidth: w)) }
            guard case .invalidArgument(let name, _, _) = e else { Issue.record("(\(h), \(w)): \(String(describing: e))"); continue }
            #expect(name.hasPrefix("image "))
        }
    }

    @Test("image_sizes stored as floats must be integers (NaN trapped in Int())")
    func floatSizes() throws {
        let path = Fixtures.temporaryDirectory("limits") + "/pixels.safetensors"
        let values: [Float] = [.nan, 224]
        writeSafetensors(path, header: #"{"image_sizes":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}"#,
                         data: values.withUnsafeBytes { Array($0) })
        let f = try SafeTensorsFile(path: path)
        let e = #expect(throws: FoveaError.self) { try f.loadInts("image_sizes") }
        #expect(e?.localizedDescription.contains("not an integer") == true)
    }

    @Test("an attention row outside the queries is an error, not a row of zeros")
    func attentionRow() {
        let q = [Float](repeating: 0.1, count: 8), out = UnsafeMutablePointer<Float>.allocate(capacity: 8)
        defer { out.deallocate() }
        #expect(throws: AttentionRowOutOfRange(row: 2, queries: 2)) {
            try Kernels.attention(q: q, k: q, v: q, output: out, geometry: AttentionGeometry(queries: 2, keys: 2, heads: 1, kvHeads: 1, headDim: 4),
                                  mask: .bidirectional, scale: 0.5, request: AttentionRequest(rows: [2]))
        }
    }
}

@Suite("A tokenizer Fovea cannot read does not stop the model from loading")
struct UnreadableTokenizerTests {
    @Test("a GGUF with a tokenizer kind Fovea lacks (RWKV's) loads for inspect and token-id prompts; text prompts get the reason")
    func sentencePieceGGUF() throws {
        let dir = Fixtures.temporaryDirectory("tok-gguf")
        let path = dir + "/rwkv.gguf"
        GGUFBuilder.tinyLlama(tokenizerModel: "rwkv").write(path)
        let loaded = try LoadedModel.load(path)
        #expect(loaded.tokenizer == nil)
        guard case .unsupportedModel(_, "tokenizer.ggml.model", let value) = loaded.tokenizerError else {
            Issue.record("\(String(describing: loaded.tokenizerError))"); return
        }
        #expect(value.hasPrefix("rwkv"))
        #expect(throws: FoveaError.self) { try loaded.requireTokenizer() }
        let r = try Generator(model: loaded.model).generate(GenerationRequest(tokens: [1, 2, 3], maxNewTokens: 2))
        #expect(r.tokens.count == 2)
        #expect(loaded.model.config.text.layers == 1)
        let gpt2 = dir + "/gpt2.gguf"
        GGUFBuilder.tinyLlama().write(gpt2)
        // A 16-token vocabulary lacks the byte alphabet: loads, and text it cannot spell is an error, not dropped.
        let small = try LoadedModel.load(gpt2)
        #expect(throws: FoveaError.self) { try small.requireTokenizer().encodeChecked("hello") }
    }
}

@Suite("Memory is estimated before it is allocated")
struct MemoryBudgetTests {
    @Test("KV bytes per token follow layers × KV heads × head dim × storage")
    func kv() throws {
        let model = try VisionLanguageModel(directory: RequestLimitTests.folder)
        // 2 layers × 2 KV heads × 32 dims × (key + value) × 4 bytes = 1,024 bytes a token (fovea inspect agrees).
        #expect(MemoryBudget.kvBytes(model.config, tokens: 10) == 10_240)
        #expect(MemoryBudget.kvBytes(model.config, tokens: 10, storage: .q8_0) == 10 * 2 * 2 * 2 * 34)
        #expect(MemoryBudget.weightBytes(model.config) == 4 * model.parameterCounts.reduce(0) { $0 + $1.1 })
    }

    @Test("a generation whose KV cache would not fit is refused with the numbers")
    func generation() throws {
        let generator = Generator(model: try VisionLanguageModel(directory: RequestLimitTests.folder))
        generator.memoryAvailable = { 1 << 20 }
        let e = #expect(throws: FoveaError.self) { try generator.generate(GenerationRequest(tokens: [5, 6], maxNewTokens: 2000)) }
        guard case .insufficientMemory(_, let needed, 1_048_576) = e else { Issue.record("\(String(describing: e))"); return }
        #expect(needed >= 2002 * 1024)
        #expect(try generator.generate(GenerationRequest(tokens: [5, 6], maxNewTokens: 20)).tokens.count > 0)
    }

    @Test("a checkpoint whose weights cannot fit is refused before any weight is read")
    func weights() throws {
        let dir = Fixtures.temporaryDirectory("huge")
        let config = #"{"model_type": "llama", "hidden_size": 16384, "intermediate_size": 53248, "num_hidden_layers": 126, "num_attention_heads": 128, "num_key_value_heads": 8, "vocab_size": 128256}"#
        try Data(config.utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        let e = #expect(throws: FoveaError.self) { try LoadedModel.load(dir) }
        guard case .insufficientMemory(let what, let needed, _) = e else { Issue.record("\(String(describing: e))"); return }
        #expect(what.contains("405") || what.contains("406"), "\(what)")   // Llama-3.1-405B's shapes
        #expect(needed > 1_600_000_000_000)
    }
}
