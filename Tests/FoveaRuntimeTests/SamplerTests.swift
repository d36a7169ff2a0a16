import Foundation
import Testing
import FoveaCore
import FoveaModels
@testable import FoveaRuntime
import FoveaTestSupport

@Suite("Sampling")
struct SamplerTests {
    let logits: [Float] = [1.0, 3.0, 2.0, 3.0, -1.0]

    @Test("greedy takes the argmax, lowest id on ties")
    func greedy() {
        var s = Sampler(.greedy)
        #expect(s.sample(logits, count: logits.count) == 1)
    }

    @Test("a seed fixes the sequence; another seed changes it")
    func seeded() throws {
        let p = try SamplingParameters(temperature: 1, topP: 1, seed: 42)
        var a = Sampler(p), b = Sampler(p)
        let seqA = (0..<50).map { _ in a.sample(logits, count: logits.count) }
        let seqB = (0..<50).map { _ in b.sample(logits, count: logits.count) }
        #expect(seqA == seqB)
        var c = Sampler(try SamplingParameters(temperature: 1, topP: 1, seed: 7))
        #expect((0..<50).map { _ in c.sample(logits, count: logits.count) } != seqA)
    }

    @Test("frequencies follow softmax(logits / T)")
    func distribution() throws {
        var s = Sampler(try SamplingParameters(temperature: 2, topP: 1, seed: 1))
        var counts = [Int](repeating: 0, count: logits.count)
        let n = 40_000
        for _ in 0..<n { counts[s.sample(logits, count: logits.count)] += 1 }
        let e = logits.map { exp(Double($0) / 2) }
        let z = e.reduce(0, +)
        for i in logits.indices {
            #expect(abs(Double(counts[i]) / Double(n) - e[i] / z) < 0.01, "token \(i)")
        }
    }

    @Test("top-p keeps only the smallest set reaching the mass")
    func topP() throws {
        // Probabilities at T=1: tokens 1 and 3 hold ≈ 0.33 each, token 2 ≈ 0.12: top-p 0.6 keeps {1, 3}.
        var s = Sampler(try SamplingParameters(temperature: 1, topP: 0.6, seed: 3))
        let seen = Set((0..<2000).map { _ in s.sample(logits, count: logits.count) })
        #expect(seen == [1, 3])
    }

    @Test("invalid parameters are refused with a message")
    func invalid() {
        #expect(throws: SamplingError.self) { try SamplingParameters(temperature: -1) }
        #expect(throws: SamplingError.self) { try SamplingParameters(topP: 0) }
        #expect(throws: SamplingError.self) { try SamplingParameters(topP: 1.5) }
    }
}

@Suite("Generation")
struct GenerationTests {
    @Test("stops at a stop token and reports statistics")
    func stops() throws {
        let model = try VisionLanguageModel(directory: Fixtures.model("llava-tiny"))
        let g = Generator(model: model)
        let prompt = [1, 5, 17, 9, 23, 42, 11, 7, 3]
        let free = try g.generate(GenerationRequest(tokens: prompt, maxNewTokens: 6))
        #expect(free.tokens.count == 6)
        let stop = free.tokens[2]
        let stopped = try g.generate(GenerationRequest(tokens: prompt, maxNewTokens: 6, stopTokens: [stop]))
        #expect(stopped.tokens == Array(free.tokens.prefix(through: free.tokens.firstIndex(of: stop)!)))
        #expect(stopped.statistics.promptTokens == prompt.count)
        #expect(stopped.statistics.peakResidentBytes > 0)
        #expect(stopped.statistics.kvBytesUsed == 2 * 2 * 2 * 32 * 4 * (prompt.count + stopped.tokens.count - 1))
    }

    @Test("decoding with the cache equals recomputing the whole sequence")
    func cacheConsistency() throws {
        let model = try VisionLanguageModel(directory: Fixtures.model("llava-next-tiny"))
        let prompt = [1, 5, 17, 9, 23]
        let generated = try Generator(model: model).generate(GenerationRequest(tokens: prompt, maxNewTokens: 4)).tokens
        // Full recompute of prompt + first 3 generated tokens must predict the 4th.
        let full = prompt + generated.prefix(3)
        let seq = try model.embed(tokens: full, images: [])
        let logits = try model.decoder.forward(seq.embeddings, positions: seq.positions, origins: seq.origins, cache: model.decoder.makeCache(capacity: full.count),
                                               logits: .last, workspace: DecoderWorkspace())
        #expect(Sampler.argmax(logits.data, count: logits.count) == generated[3])
    }
}
