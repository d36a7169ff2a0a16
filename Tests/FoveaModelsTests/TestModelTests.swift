import Foundation
import Testing
import FoveaCore
import FoveaIO
@testable import FoveaModels
import FoveaRuntime
import FoveaTestSupport

/// The trained test model (models/fovea-test-llava, scripts/testmodel/train.py) read as
/// transformers 5 saved it — processor_config.json, tokenizer.json, chat_template.jinja — against
/// transformers' own answers on held-out questions (reference.safetensors from
/// scripts/testmodel/reference.py): the same prompt ids, logits within 1e-4 relative, the same answers.
enum TestModel {
    static var folder: String {
        ProcessInfo.processInfo.environment["FOVEA_TEST_MODEL"]
            ?? URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().appendingPathComponent("models/fovea-test-llava").path
    }
    static var available: Bool { FileManager.default.fileExists(atPath: folder + "/reference.safetensors") }
}

@Suite("Trained test model against transformers", .enabled(if: TestModel.available, "models/fovea-test-llava is not in this checkout yet"))
struct TestModelTests {
    struct Row: Decodable { let image: String; let question: String }

    @Test("prompt ids, logits and greedy answers on held-out questions")
    func parity() throws {
        let loaded = try LoadedModel.load(TestModel.folder)
        let tokenizer = try #require(loaded.tokenizer)
        let processor = try ImageProcessor(directory: TestModel.folder)
        let ref = try SafeTensorsFile(path: TestModel.folder + "/reference.safetensors")
        let evalFolder = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().appendingPathComponent("data/eval").path
        let rows = try String(contentsOfFile: evalFolder + "/questions.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(Row.self, from: Data($0.utf8)) }
        let count = ref.tensors.keys.filter { $0.hasPrefix("answer_") }.count
        #expect(count > 0)
        let generator = Generator(model: loaded.model)
        var worst: Float = 0
        for i in 0..<count {
            let image = processor(try ImageDecoder.decode(path: evalFolder + "/" + rows[i].image))
            let prompt = loaded.template.render([ChatMessage(.user, rows[i].question)], images: 1)
            let ids = tokenizer.encode(prompt)
            let want = try ref.loadInts("input_ids_\(i)")
            // transformers' ids have the image token expanded; Fovea's have it once.
            let imageId = loaded.model.config.imageTokenId
            var collapsed: [Int] = []
            for t in want where !(t == imageId && collapsed.last == imageId) { collapsed.append(t) }
            #expect(ids == collapsed, "question \(i): prompt ids")
            let result = try generator.generate(GenerationRequest(tokens: ids, images: [image], maxNewTokens: 6,
                                                                  stopTokens: Set(loaded.model.config.text.eosTokenIds)))
            #expect(result.statistics.promptTokens == want.count, "question \(i): prompt length with visual tokens")
            let err = Compare.relativeError(result.firstLogits, try ref.load("logits_\(i)").toArray())
            worst = max(worst, err)
            #expect(err <= 1e-4, "question \(i): logits relative error \(err)")
            #expect(result.tokens == (try ref.loadInts("answer_\(i)")), "question \(i): answer")
        }
        print("test model: worst logits relative error \(worst) over \(count) questions")
    }
}
