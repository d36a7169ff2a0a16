import Foundation
import Testing
import FoveaModels
@testable import FoveaRuntime
import FoveaTestSupport

@Suite("fovea inspect report")
struct ModelReportTests {
    @Test("reports architecture, parameter counts as transformers counts them, dtypes and memory")
    func llavaNext() throws {
        let m = try VisionLanguageModel(directory: Fixtures.model("llava-next-tiny"))
        let report = ModelReport.describe(m, context: 1000)
        #expect(report.contains("architecture: llava_next"))
        #expect(report.contains("language: mistral, 2 layers, hidden 96, 6 heads / 2 KV heads, head dim 16"))
        // transformers: LlavaNextForConditionalGeneration(...).num_parameters() == 349,888
        #expect(report.contains("stored: 349,888 parameters; dtypes BF16 349,888"))
        // 2 layers × (K + V) × 2 KV heads × 16 dims × 4 bytes = 512 bytes per token
        #expect(report.contains("full KV cache for 1000 tokens (float32): 0.49 MB (0.50 KB per token)"))
        #expect(report.contains("vision tower (2 of 3 layers loaded)"))
    }

    @Test("tied embeddings are counted once")
    func tied() throws {
        let m = try VisionLanguageModel(directory: Fixtures.model("llava-full-tied"))
        let report = ModelReport.describe(m, context: 16)
        #expect(report.contains("tied embeddings"))
        // transformers: num_parameters() == 132,416 (the shared embedding counted once)
        #expect(report.contains("stored: 132,416 parameters; dtypes F16 132,416"))
    }
}
