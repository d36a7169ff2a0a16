import Foundation
import Testing
import FoveaCore
import FoveaIO
@testable import FoveaModels
import FoveaRuntime
import FoveaTestSupport

/// The trained test models (scripts/testmodel/train.py: the full-size model and its unit-test twin) read as
/// transformers 5 saved them — processor_config.json, tokenizer.json, chat_template.jinja —
/// against transformers' own answers on held-out questions (reference.safetensors from
/// scripts/testmodel/reference.py): the same prompt ids, logits within 1e-4 relative, the same answers.
enum TestModel {
    /// Folder name under models/ and the size it must stay under to be committed.
    static let models = [(name: "fovea-test-llava", maxBytes: 25_000_000), (name: "fovea-test-llava-small", maxBytes: 3_000_000)]
    static let names = models.map(\.name)
    static func folder(_ name: String) -> String {
        URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().appendingPathComponent("models/\(name)").path
    }
}

@Suite("Trained test models against transformers")
struct TestModelTests {

    @Test("small enough to commit (≤ 25 MB; the unit-test twin ≤ 3 MB)")
    func sizes() throws {
        for (name, limit) in TestModel.models {
            let size = try FileManager.default.attributesOfItem(atPath: TestModel.folder(name) + "/model.safetensors")[.size] as? Int
            #expect((size ?? .max) <= limit, "\(name): \(size ?? -1) bytes")
        }
    }

    @Test("prompt ids, logits and greedy answers on held-out questions", arguments: TestModel.names)
    func parity(name: String) throws {
        let folder = TestModel.folder(name)
        try ReferenceCheck.run(model: folder, reference: folder + "/reference.safetensors", label: name)
    }
}

/// Fovea against transformers' prompt ids, last-position logits (1e-4 relative) and greedy
/// answers on the first held-out questions of data/eval, from a reference.safetensors written by
/// scripts/testmodel/reference.py. Where the reference keeps only the 64 largest logits
/// (`top_ids_i`, `top_logits_i`), Fovea's logits are compared at those ids.
enum ReferenceCheck {
    struct Row: Decodable { let image: String; let question: String }

    /// `tolerance`: largest relative error of the logits (1e-4 for float32 weights; wider for
    /// files whose weights were rounded to f16 or Q8_0). Returns the worst error seen.
    @discardableResult
    static func run(model folder: String, mmproj: String? = nil, convert: QuantType? = nil, reference: String, label: String,
                    tolerance: Float = 1e-4) throws -> Float {
        let loaded = try LoadedModel.load(folder, mmproj: mmproj, convert: convert)
        let tokenizer = try #require(loaded.tokenizer)
        let processor = try loaded.requireProcessor()
        let ref = try SafeTensorsFile(path: reference)
        let evalFolder = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().appendingPathComponent("data/eval").path
        let rows = try String(contentsOfFile: evalFolder + "/questions.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(Row.self, from: Data($0.utf8)) }
        let count = ref.tensors.keys.filter { $0.hasPrefix("answer_") }.count
        #expect(count > 0)
        let generator = Generator(model: loaded.model)
        var worst: Float = 0
        for i in 0..<count {
            let image = try processor(try ImageDecoder.decode(path: evalFolder + "/" + rows[i].image))
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
            let err: Float
            if ref.tensors["logits_\(i)"] != nil {
                err = Compare.relativeError(result.firstLogits, try ref.load("logits_\(i)").toArray())
            } else {
                let top = try ref.loadInts("top_ids_\(i)")
                err = Compare.relativeError(top.map { result.firstLogits[$0] }, try ref.load("top_logits_\(i)").toArray())
            }
            worst = max(worst, err)
            #expect(err <= tolerance, "question \(i): logits relative error \(err)")
            #expect(result.tokens == (try ref.loadInts("answer_\(i)")), "question \(i): answer")
        }
        print("\(label): worst logits relative error \(worst) over \(count) questions")
        return worst
    }
}
