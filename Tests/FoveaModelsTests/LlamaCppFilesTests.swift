import Foundation
import Testing
import FoveaCore
import FoveaIO
import FoveaPruning
@testable import FoveaModels
import FoveaRuntime
import FoveaTestSupport

/// The trained test model as llama.cpp's own converters write it (scripts/llamacpp/convert_llava.py:
/// convert_hf_to_gguf.py for the language model, llava_surgery_v2.py + convert_image_encoder_to_gguf.py
/// for the mmproj), committed under models/fovea-test-llava/llama.cpp/.
enum LlamaCppFixture {
    static var folder: String { TestModel.folder("fovea-test-llava") + "/llama.cpp" }
    static var mmproj: String { folder + "/mmproj-fovea-test-llava-f16.gguf" }
    static func text(_ type: String) -> String { folder + "/fovea-test-llava-\(type).gguf" }
}

@Suite("llama.cpp's LLaVA files (text GGUF + mmproj)")
struct LlamaCppFilesTests {

    @Test("the pair describes the same model as config.json")
    func configuration() throws {
        let pair = try ModelConfiguration(gguf: GGUFFile(path: LlamaCppFixture.text("f16")), mmproj: GGUFFile(path: LlamaCppFixture.mmproj))
        let hf = try ModelConfiguration(directory: TestModel.folder("fovea-test-llava"))
        #expect(pair.kind == .llavaNext)
        #expect(pair.text == hf.text)
        #expect(pair.gridPinpoints == hf.gridPinpoints)
        #expect(pair.imageTokenId == hf.imageTokenId)
        #expect(pair.projectorBias == hf.projectorBias && pair.projectorActivation == hf.projectorActivation)
        // The converter drops the blocks after the feature layer (hidden state 3 of 4) and says so.
        var vision = try #require(hf.vision)
        vision.layers = 3
        #expect(pair.vision == vision)
        #expect(pair.visionFeatureLayers == [3] && hf.visionFeatureLayers == [3])
    }

    @Test("mmproj tensors are the checkpoint's, f16-rounded; fc1/fc2 found under llama.cpp's swapped names")
    func tensors() throws {
        let mm = try GGUFFile(path: LlamaCppFixture.mmproj)
        let clip = ClipProjectorWeights(file: mm, hiddenSize: 128)
        let store = try WeightStore(directory: TestModel.folder("fovea-test-llava"))
        let pairs: [(String, String, [Int])] = [
            ("vision_tower.vision_model.embeddings.patch_embedding.weight", "vision_tower.embeddings.patch_embedding.weight", [128, 3, 14, 14]),
            ("vision_tower.vision_model.embeddings.position_embedding.weight", "vision_tower.embeddings.position_embedding.weight", [65, 128]),
            ("vision_tower.vision_model.embeddings.class_embedding", "vision_tower.embeddings.class_embedding", [128]),
            ("vision_tower.vision_model.pre_layrnorm.bias", "vision_tower.pre_layrnorm.bias", [128]),
            ("vision_tower.vision_model.encoder.layers.2.mlp.fc1.weight", "vision_tower.encoder.layers.2.mlp.fc1.weight", [512, 128]),
            ("vision_tower.vision_model.encoder.layers.2.mlp.fc1.bias", "vision_tower.encoder.layers.2.mlp.fc1.bias", [512]),
            ("vision_tower.vision_model.encoder.layers.0.mlp.fc2.weight", "vision_tower.encoder.layers.0.mlp.fc2.weight", [128, 512]),
            ("vision_tower.vision_model.encoder.layers.1.self_attn.out_proj.weight", "vision_tower.encoder.layers.1.self_attn.out_proj.weight", [128, 128]),
            ("vision_tower.vision_model.encoder.layers.1.layer_norm2.weight", "vision_tower.encoder.layers.1.layer_norm2.weight", [128]),
            ("multi_modal_projector.linear_1.weight", "multi_modal_projector.linear_1.weight", [256, 128]),
            ("multi_modal_projector.linear_2.bias", "multi_modal_projector.linear_2.bias", [256]),
            ("image_newline", "image_newline", [256]),
        ]
        for (name, hfName, shape) in pairs {
            let got = try clip.tensor(name, shape: shape).toArray()
            let want = try store.tensor(hfName, shape: shape).toArray()
            // f16 keeps 11 significant bits: 2⁻¹¹ relative per element.
            #expect(Compare.relativeError(got, want) <= 5e-4, "\(name)")
        }
        #expect(!clip.contains("vision_tower.vision_model.encoder.layers.3.mlp.fc1.weight"), "block 3 was cut by the converter")
        #expect(!clip.contains("vision_tower.vision_model.post_layernorm.weight"))
    }

    @Test("answers from the two GGUF files equal transformers' (and so the safetensors') on held-out questions",
          arguments: [("f16", Float(2e-3)), ("q8_0", Float(2e-2))])
    func answers(type: String, tolerance: Float) throws {
        let worst = try ReferenceCheck.run(model: LlamaCppFixture.text(type), mmproj: LlamaCppFixture.mmproj,
                                           reference: TestModel.folder("fovea-test-llava") + "/reference.safetensors",
                                           label: "llama.cpp files, text \(type)", tolerance: tolerance)
        #expect(worst > 0, "rounded weights cannot give float32's logits exactly")
    }

    /// llama-quantize's Q4_K_M mixes Q4_K and Q6_K; one Q5_0 and one Q5_1 matrix stand for the
    /// fallbacks it uses where rows are not a multiple of 256 (scripts/llamacpp/kquant_reference.py). The
    /// reference is transformers on the very same weights, dequantised by gguf-py, so the
    /// tolerance is float32's, not the quantisation's.
    @Test("a Q4_K_M file (Q4_K, Q6_K, Q5_0, Q5_1 kept as stored) answers as transformers does on its dequantised weights")
    func kQuantAnswers() throws {
        let loaded = try LoadedModel.load(LlamaCppFixture.text("q4_k_m"), mmproj: LlamaCppFixture.mmproj)
        let layers = loaded.model.decoder.layers
        guard case .quantized(let q) = layers[0].wq.weights, case .quantized(let down) = layers[1].w2.weights else {
            Issue.record("k-quant matrices were widened to float32"); return
        }
        #expect(q.type == .q4_k && down.type == .q6_k)
        // llama-quantize's Q4_K_M mix: Q6_K for the embeddings and the second layer's attn_v and ffn_down.
        #expect(loaded.model.decoder.storedFormats == [.q4_k: 10, .q6_k: 3, .q5_0: 1, .q5_1: 1])
        try ReferenceCheck.run(model: LlamaCppFixture.text("q4_k_m"), mmproj: LlamaCppFixture.mmproj,
                               reference: LlamaCppFixture.folder + "/reference-q4_k_m.safetensors",
                               label: "llama.cpp Q4_K_M", tolerance: 1e-4)
    }

    @Test("int8 activations (llama.cpp's arithmetic) on the Q4_K_M file give the float path's answers")
    func kQuantInt8() throws {
        let data = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().appendingPathComponent("data/eval/questions.jsonl").path
        let questions = try EvalQuestion.load(path: data, limit: 12)
        var answers: [[String]] = []
        for activations in [QuantizedMatrix.Activations.float, .int8] {
            let loaded = try LoadedModel.load(LlamaCppFixture.text("q4_k_m"), mmproj: LlamaCppFixture.mmproj, activations: activations)
            let evaluator = Evaluator(loaded: loaded, processor: try loaded.requireProcessor(), dataFolder: (data as NSString).deletingLastPathComponent)
            answers.append(try evaluator.run(questions).map(\.prediction))
        }
        #expect(answers[0] == answers[1])
    }

    @Test("Q4_K, Q6_K, Q5_0 and Q5_1 tensors dequantise to gguf-py's values (ggml's dequantize_row_*)")
    func kQuantValues() throws {
        let file = try GGUFFile(path: LlamaCppFixture.text("q4_k_m"))
        let want = try SafeTensorsFile(path: LlamaCppFixture.folder + "/kquant-values.safetensors")
        for (name, type) in [("blk.0.attn_output.weight", GGUFFile.TensorType.q4_k), ("blk.1.ffn_down.weight", .q6_k),
                             ("blk.0.ffn_up.weight", .q5_0), ("blk.1.ffn_up.weight", .q5_1)] {
            #expect(file.tensors[name]?.type == type)
            let expected = try want.load(name).toArray()
            let got = Array(try file.load(name).toArray().prefix(expected.count))
            #expect(Compare.relativeError(got, expected) <= 1e-6, "\(name)")
        }
    }

    /// llama.cpp's LLaVA-1.5/1.6 files converted from the original checkpoints have no `<image>`
    /// in their vocabulary. The same file with that token renamed (same byte length, so every
    /// offset stays) must give the same answers, with the placeholder one past the vocabulary.
    @Test("a vocabulary without <image>: the placeholder goes one past it and the answers are unchanged")
    func imagePlaceholder() throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: LlamaCppFixture.text("f16"))))
        let needle: [UInt8] = [7, 0, 0, 0, 0, 0, 0, 0] + Array("<image>".utf8)   // a GGUF string: u64 length, bytes
        let at = try #require((0...(bytes.count - needle.count)).first { bytes[$0..<($0 + needle.count)].elementsEqual(needle) })
        bytes.replaceSubrange((at + 8)..<(at + 15), with: Array("<pad_7>".utf8))
        let renamed = Fixtures.temporaryDirectory("placeholder") + "/text.gguf"
        try Data(bytes).write(to: URL(fileURLWithPath: renamed))

        let original = try LoadedModel.load(LlamaCppFixture.text("f16"), mmproj: LlamaCppFixture.mmproj)
        let moved = try LoadedModel.load(renamed, mmproj: LlamaCppFixture.mmproj)
        let vocab = original.model.config.text.vocabSize
        #expect(original.model.config.imageTokenId < vocab)
        #expect(moved.model.config.imageTokenId == vocab)
        let eval = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().appendingPathComponent("data/eval").path
        let rows = try String(contentsOfFile: eval + "/questions.jsonl", encoding: .utf8).split(separator: "\n").prefix(4)
            .map { try JSONDecoder().decode(ReferenceCheck.Row.self, from: Data($0.utf8)) }
        for (i, row) in rows.enumerated() {
            var answers: [[Int]] = [], logits: [[Float]] = []
            for m in [original, moved] {
                let image = try m.requireProcessor()(try ImageDecoder.decode(path: eval + "/" + row.image))
                let ids = try #require(m.tokenizer).encode(m.template.render([ChatMessage(.user, row.question)], images: 1))
                #expect(ids.filter { $0 == m.model.config.imageTokenId }.count == 1, "question \(i): one placeholder")
                let r = try Generator(model: m.model).generate(GenerationRequest(tokens: ids, images: [image], maxNewTokens: 4,
                                                                                 stopTokens: Set(m.model.config.text.eosTokenIds)))
                answers.append(r.tokens); logits.append(r.firstLogits)
            }
            #expect(answers[0] == answers[1] && logits[0] == logits[1], "question \(i)")
        }
    }

    /// What `fovea eval --mmproj` and `fovea explain --mmproj` run (the commands are thin over these).
    @Test("eval (with fidelity to Full) and explain run on the pair with HiRED")
    func evalAndExplain() throws {
        let loaded = try LoadedModel.load(LlamaCppFixture.text("q8_0"), mmproj: LlamaCppFixture.mmproj)
        let data = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().appendingPathComponent("data/eval/questions.jsonl").path
        let folder = (data as NSString).deletingLastPathComponent
        var evaluator = Evaluator(loaded: loaded, processor: try loaded.requireProcessor(), dataFolder: folder)
        evaluator.pruning = try PruningPlan(parsing: "hired:r=0.2")
        let results = try evaluator.run(try EvalQuestion.load(path: data, limit: 3))
        #expect(results.count == 3)
        for r in results {
            #expect(!r.prediction.isEmpty && r.fidelity != nil)
            // Kept ≈ 20% of the full count (HiRED's budget, before unpadding takes its share).
            let kept = Double(r.statistics.visualTokensOut) / Double(r.statistics.visualTokensIn)
            #expect(kept > 0.1 && kept <= 0.21, "kept \(kept)")
        }

        let input = try loaded.requireProcessor()(try ImageDecoder.decode(path: folder + "/" + results[0].question.image))
        let plan = try PruningPlan(parsing: "hired:r=0.2")
        let encoded = try loaded.model.encode(input, plan: plan)
        let vision = try #require(loaded.model.config.vision)
        let png = Fixtures.temporaryDirectory("explain-gguf") + "/kept.png"
        try ImageEncoder.writePNG(KeptMap.render(input, encoded, mean: loaded.requireProcessor().mean, std: loaded.requireProcessor().std,
                                                 gridSide: vision.gridSide), path: png)
        let picture = try ImageDecoder.decode(path: png)
        #expect(picture.width > 0 && picture.height > 0)
        let json = try JSONSerialization.jsonObject(with: KeptMap.json(encoded, method: plan.description)) as? [String: Any]
        #expect(json != nil)
    }

    @Test("wrong pairings are refused with the file and the reason")
    func errors() throws {
        #expect {
            try LoadedModel.load(TestModel.folder("fovea-test-llava"), mmproj: LlamaCppFixture.mmproj)
        } throws: { e in
            guard case FoveaError.invalidArgument(name: "--mmproj", _, _) = e else { return false }
            return true
        }
        #expect {
            try LoadedModel.load(LlamaCppFixture.text("f16"), mmproj: LlamaCppFixture.text("q8_0"))
        } throws: { e in
            guard case FoveaError.unsupportedModel(_, field: "general.architecture", let value) = e else { return false }
            return value.contains("clip")
        }
        #expect {
            try LoadedModel.load(LlamaCppFixture.mmproj)
        } throws: { e in
            guard case FoveaError.unsupportedModel(_, field: "general.architecture", _) = e else { return false }
            return true
        }
    }
}

@Suite("Safetensors converted at load (--weights)")
struct ConvertedCheckpointTests {
    @Test("the trained test model converted to bf16 / q8_0 / q4_0 keeps transformers' answers",
          arguments: [(QuantType.bf16, Float(2e-2)), (.q8_0, Float(3e-2)), (.q4_0, Float(0.3))])
    func answers(type: QuantType, tolerance: Float) throws {
        let folder = TestModel.folder("fovea-test-llava")
        let loaded = try LoadedModel.load(folder, convert: type)
        // Every matrix 32-aligned is converted; the patch embedding (588 wide) stays float32.
        let block = try #require(loaded.model.decoder.layers.first)
        guard case .quantized(let q) = block.wq.weights else { Issue.record("q_proj stayed float32"); return }
        #expect(q.type == type)
        try ReferenceCheck.run(model: folder, convert: type, reference: folder + "/reference.safetensors",
                               label: "safetensors → \(type)", tolerance: tolerance)
    }
}
