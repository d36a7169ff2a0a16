import Foundation
import Testing
import FoveaIO
import FoveaKV
import FoveaPruning
import FoveaRuntime
import FoveaTestSupport

/// The README's session example (its prints collected instead, its paths made absolute).
@Suite("the README's session example")
struct ReadmeExampleTests {
    @Test("runs, and its statistics say what the methods did")
    func example() throws {
        let root = ServerProcess.repo + "/"
        var text = ""
        // --- as in README.md ---
        let loaded = try LoadedModel.load(root + "models/fovea-test-llava-small")
        let tokenizer = try loaded.requireTokenizer()
        let image = try loaded.requireProcessor()(ImageDecoder.decode(path: root + "data/eval/scenes/scene_0000.png"))
        let session = try Generator(model: loaded.model).prefill(loaded.request(
            [ChatMessage(.user, parts: [.image, .text("What is in the picture?")])], images: [image], maxNewTokens: 64,
            pruning: try PruningPlan(parsing: "hired:r=0.2"), kv: try KVPlan(parsing: "avl")))
        while let token = try session.step() { text += tokenizer.decode([token]) }
        let stats = session.finish().statistics
        // --- end ---
        #expect(!text.isEmpty)
        #expect(stats.method == "hired:r=0.2" && stats.kvMethod.hasPrefix("avl"))
        #expect(stats.visualTokensOut < stats.visualTokensIn / 2 && stats.visualTokensOut > 0)
        #expect(stats.generatedTokens == session.tokens.count)
    }
}
