import Foundation
import Testing
import FoveaCore
import FoveaIO
import FoveaKV
import FoveaModels
import FoveaPruning
import FoveaRuntime
import FoveaTestSupport

/// `reusePrefix`: a session that keeps the rows its prompt shares with the generator's last
/// sequence must answer as a fresh generator does (the same greedy tokens, logits equal to
/// float rounding: the kept rows were computed by the same kernels, only the new rows' attention
/// runs against the cache instead of inside one prefill).
@Suite("KV prefix reuse between sessions")
struct PrefixReuseTests {
    struct Setup {
        let loaded: LoadedModel
        let image: ImageInput?
        func request(_ messages: [ChatMessage], images: Int, kv: KVPlan = .full, maxNew: Int = 12, reuse: Bool = true) throws -> GenerationRequest {
            var r = try loaded.request(messages, images: image.map { Array(repeating: $0, count: images) } ?? [], maxNewTokens: maxNew, kv: kv)
            r.reusePrefix = reuse
            return r
        }
    }

    static func vision() throws -> Setup {
        let loaded = try LoadedModel.load(ServerProcess.testModel)
        return Setup(loaded: loaded, image: try loaded.requireProcessor()(ImageDecoder.decode(path: ServerProcess.image)))
    }

    /// Runs `request` on `generator` and on a fresh one; checks they agree and returns the reused count.
    func agree(_ generator: Generator, _ request: GenerationRequest, model: VisionLanguageModel) throws -> (reused: Int, result: GenerationResult) {
        let reusing = try generator.generate(request)
        var plain = request
        plain.reusePrefix = false
        let fresh = try Generator(model: model).generate(plain)
        #expect(reusing.tokens == fresh.tokens)
        #expect(Compare.relativeError(reusing.firstLogits, fresh.firstLogits) < 1e-4)
        #expect(fresh.statistics.promptTokensReused == 0)
        return (reusing.statistics.promptTokensReused, reusing)
    }

    @Test("a second question about the same image reuses the template and the image's rows")
    func sameImage() throws {
        let s = try Self.vision()
        let g = Generator(model: s.loaded.model)
        let first = try g.generate(try s.request([ChatMessage(.user, parts: [.image, .text("What is in the picture?")])], images: 1))
        #expect(first.statistics.promptTokensReused == 0)
        let (reused, second) = try agree(g, try s.request([ChatMessage(.user, parts: [.image, .text("What color is the square?")])], images: 1),
                                         model: s.loaded.model)
        #expect(reused > second.statistics.visualTokensOut && reused < second.statistics.promptTokens, "\(reused)")
    }

    @Test("the next turn of a conversation reuses the turns before it")
    func nextTurn() throws {
        let s = try Self.vision()
        let g = Generator(model: s.loaded.model)
        let q1 = [ChatMessage(.user, parts: [.image, .text("What is in the picture?")])]
        let a1 = try g.generate(try s.request(q1, images: 1))
        let answer = try s.loaded.requireTokenizer().decode(a1.tokens.filter { !s.loaded.model.config.text.eosTokenIds.contains($0) })
        let q2 = q1 + [ChatMessage(.assistant, answer), ChatMessage(.user, "Are you sure?")]
        let (reused, _) = try agree(g, try s.request(q2, images: 1), model: s.loaded.model)
        #expect(reused >= a1.statistics.promptTokens, "\(reused) of the first turn's \(a1.statistics.promptTokens)")
    }

    @Test("a long text conversation reuses the answer's decode rows too",
          .enabled(if: ServerProcess.smolLMAvailable, "SmolLM2 GGUF not fetched: run scripts/fetch_models.sh"))
    func longAnswer() throws {
        let s = Setup(loaded: try LoadedModel.load(ServerProcess.smolLM), image: nil)
        let g = Generator(model: s.loaded.model)
        let q1 = [ChatMessage(.user, "Write a short story about a lighthouse keeper.")]
        let a1 = try g.generate(try s.request(q1, images: 0, maxNew: 32))
        #expect(a1.tokens.count == 32)
        let answer = try s.loaded.requireTokenizer().decode(a1.tokens)
        let q2 = q1 + [ChatMessage(.assistant, answer), ChatMessage(.user, "Give it a title.")]
        let (reused, _) = try agree(g, try s.request(q2, images: 0, maxNew: 16), model: s.loaded.model)
        #expect(reused > a1.statistics.promptTokens + 8, "\(reused) rows reused; the first prompt had \(a1.statistics.promptTokens)")
    }

    @Test("nothing is reused under a KV policy, after a cancelled answer, or when not asked")
    func notReused() throws {
        let s = try Self.vision()
        let g = Generator(model: s.loaded.model)
        let q = [ChatMessage(.user, parts: [.image, .text("What is in the picture?")])]
        _ = try g.generate(try s.request(q, images: 1))
        #expect(try g.generate(try s.request(q, images: 1, kv: KVPlan(parsing: "streaming:sink=4,window=0.5"))).statistics.promptTokensReused == 0)
        // The policy's session left nothing to reuse.
        #expect(try g.generate(try s.request(q, images: 1)).statistics.promptTokensReused == 0)
        // A cancelled answer leaves nothing either.
        let cancelled = try g.prefill(try s.request(q, images: 1))
        cancelled.cancel()
        #expect(cancelled.finish().finishReason == .cancelled)
        #expect(try g.generate(try s.request(q, images: 1)).statistics.promptTokensReused == 0)
        #expect(try g.generate(try s.request(q, images: 1, reuse: false)).statistics.promptTokensReused == 0)
        #expect(g.kvBytesRetained == 0)
    }
}
