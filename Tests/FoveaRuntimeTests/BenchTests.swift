import Foundation
import Testing
import FoveaCore
import FoveaIO
@testable import FoveaModels
@testable import FoveaRuntime
import FoveaTestSupport

@Suite("fovea bench: shapes, memory check, interleaved cells")
struct BenchTests {
    @Test("a shape's parameter estimate equals what the built model holds", arguments: ["tiny"])
    func estimate(_ name: String) throws {
        let shape = try BenchShapes.named(name)
        let config = try shape.configuration()
        let model = try VisionLanguageModel(config: config, weights: RandomWeights(seed: 1), name: name)
        #expect(config.parameterEstimate == model.parameterCounts.reduce(0) { $0 + $1.1 })
    }

    @Test("the estimate matches a real checkpoint's own count (tied and untied heads)")
    func estimateOnCheckpoint() throws {
        let folder = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().appendingPathComponent("models/fovea-test-llava-small").path
        let model = try VisionLanguageModel(directory: folder)
        #expect(model.config.parameterEstimate == model.parameterCounts.reduce(0) { $0 + $1.1 })
    }

    @Test("published shapes have their published sizes")
    func published() throws {
        // TinyLLaVA: 1.10 B (TinyLlama) + 0.29 B (CLIP-L/336, the 23 layers LLaVA reads) + 6.3 M projector.
        let tiny = try BenchShapes.named("tinyllava").configuration().parameterEstimate
        #expect(abs(Double(tiny) / 1e9 - 1.40) < 0.01)
        let seven = try BenchShapes.named("llava-1.5-7b").configuration().parameterEstimate
        #expect(abs(Double(seven) / 1e9 - 7.06) < 0.01)
    }

    @Test("a shape that does not fit in memory is refused before anything is allocated")
    func refusesTooLarge() throws {
        let error = #expect(throws: FoveaError.self) {
            _ = try BenchSubject.shape(try BenchShapes.named("tinyllava"), textTokens: 40, memory: 1 << 30)
        }
        #expect(error?.localizedDescription.contains("needs about 5.59 GB") == true, "\(String(describing: error))")
        #expect(throws: FoveaError.self) { _ = try BenchShapes.named("llava-13b") }
    }

    @Test("--weights q4_0 sizes the check by the stored format, and the built shape holds Q4_0 matrices")
    func convertedShape() throws {
        // 7.05 B parameters: 28.2 GB as float32 is refused on 24 GB; as Q4_0 (0.5625 bytes a weight) 3.97 GB passes.
        let next7b = try BenchShapes.named("llava-next-7b").configuration().parameterEstimate
        #expect(Double(next7b) * 4 > 24e9 && Double(next7b) * QuantType.q4_0.bytesPerWeight < 4.5e9)
        let subject = try BenchSubject.shape(try BenchShapes.named("tiny"), textTokens: 8, convert: .q4_0)
        let layer = try #require(subject.model.decoder.layers.first)
        guard case .quantized(let q) = layer.w1.weights else { Issue.record("gate_proj stayed float32"); return }
        #expect(q.type == .q4_0)
        let report = try Bench.run(subject, cells: [], runs: 1, decodeSteps: 2) { _ in }
        #expect(report.rows.first?.runs.first?.visualTokensOut == 88)
    }

    @Test("Full first, every cell measured the same number of times, kept tokens and KV as the methods promise")
    func run() throws {
        let subject = try BenchSubject.shape(try BenchShapes.named("tiny"), textTokens: 40)
        let cells = try ["prune=hired:r=0.25", "kv=streaming:sink=4,window=0.5"].map { try MethodCell($0) }
        var lines = 0
        let report = try Bench.run(subject, cells: cells, runs: 2, decodeSteps: 3) { _ in lines += 1 }
        #expect(lines == 1 + 2 * 3)   // one warm-up of Full, then every cell twice
        #expect(report.rows.map(\.cell) == ["full", "hired:r=0.25", "kv streaming:sink=4,window=0.5"])
        let full = report.rows[0], hired = report.rows[1], streaming = report.rows[2]
        // 112×112 → anyres 1×1 grid of 56-px tiles plus the base view: 5 × 16 patches, unpadded, plus newlines.
        #expect(full.runs.allSatisfy { $0.visualTokensOut == 88 && $0.promptTokens == 128 && $0.generatedTokens == 4 })
        #expect(hired.runs[0].visualTokensNominal == 20)   // a quarter of the 5 × 16 patch tokens (newlines are not budgeted)
        #expect(hired.kvEnd < 0.5 * full.kvEnd)
        #expect(streaming.kvEnd < full.kvEnd)
        #expect(report.markdown.contains("| hired:r=0.25 |"))
        let json = try JSONSerialization.jsonObject(with: report.json()) as? [String: Any]
        #expect((json?["rows"] as? [[String: Any]])?.count == 3)
    }

    @Test("prefill FLOPs: weight products per row, causal attention, one LM-head row")
    func flops() {
        var t = TextConfiguration()
        (t.hiddenSize, t.heads, t.kvHeads, t.headDim, t.intermediateSize, t.layers, t.vocabSize) = (8, 2, 1, 4, 16, 1, 10)
        // Per row: q,o 8×8 ×2, k,v 8×4 ×2, MLP 3·8·16 → (128 + 64 + 384) · 2 = 1152; 3 rows; attention 2·2·6·8 = 192; head 160.
        #expect(Bench.prefillFLOPs(t, rows: 3) == 1152 * 3 + 192 + 160)
    }
}
