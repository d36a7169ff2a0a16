import Foundation
import Testing
import FoveaCore
import FoveaIO
import FoveaKV
@testable import FoveaModels
import FoveaPruning
import FoveaRuntime
import FoveaTestSupport

/// Fovea's pruners against an independent reference: scripts/make_pruning_reference.py computes,
/// with transformers (eager attention, output_attentions=True) on models/fovea-test-llava, the
/// CLS rows and the index sets methods.md prescribes, in numpy. Fovea must match index for index.
@Suite("Pruners against transformers on the trained test model")
struct PruningReferenceTests {
    struct Entry: Decodable { let spec: String; let budgets: [Int]?; let kept: [[Int]]? }
    struct Flat: Decodable { let spec: String; let kept: [Int] }
    struct Zip: Decodable { let spec: String; let dominant: [[Int]] }
    struct Scene: Decodable {
        let image: String; let question: String; let grid: [Int]; let partitions: Int
        let hired: [Entry]; let visionzip: [Zip]; let fastv: [Flat]; let dart: [Flat]; let dart_embed: [Entry]
    }
    struct Reference: Decodable { let layers_run: Int; let feature_layer: Int; let scenes: [Scene] }

    static var repo: String { URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().path }

    struct Setup {
        let loaded: LoadedModel
        let processor: ImageProcessor
        let ref: Reference
        let cls: SafeTensorsFile
    }

    static func setup() throws -> Setup {
        let folder = repo + "/models/fovea-test-llava"
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.root() + "/pruning/reference.json"))
        return Setup(loaded: try LoadedModel.load(folder), processor: try ImageProcessor(directory: folder),
                     ref: try JSONDecoder().decode(Reference.self, from: data),
                     cls: try SafeTensorsFile(path: Fixtures.root() + "/pruning/reference.safetensors"))
    }

    func image(_ s: Setup, _ scene: Scene) throws -> ImageInput {
        try s.processor(try ImageDecoder.decode(path: Self.repo + "/" + scene.image))
    }

    @Test("CLS-attention rows equal transformers' within 1e-5 at every layer LLaVA runs")
    func clsRows() throws {
        let s = try Self.setup()
        let m = s.loaded.model
        for (i, scene) in s.ref.scenes.enumerated() {
            let img = try image(s, scene)
            let out = try m.vision!(pixels: img.pixels.data, partitions: scene.partitions, featureLayers: m.config.visionFeatureLayers,
                                clsAttentionLayers: Set(0..<s.ref.layers_run))
            for l in 0..<s.ref.layers_run {
                let err = Compare.relativeError(out.clsAttention[l] ?? [], try s.cls.load("cls_\(i)_\(l)").toArray())
                #expect(err <= 1e-5, "\(scene.image) layer \(l): \(err)")
            }
        }
    }

    @Test("HiRED budgets and kept patches, both rules, r ∈ {0.1, 0.2, 0.4, 1}, α ∈ {0, 0.5, 1}, every grid")
    func hired() throws {
        let s = try Self.setup()
        #expect(Set(s.ref.scenes.map(\.grid)) == [[2, 1], [2, 2], [1, 2], [3, 1], [1, 3]])
        for scene in s.ref.scenes {
            let img = try image(s, scene)
            for e in scene.hired {
                let d = try s.loaded.model.encode(img, plan: PruningPlan(parsing: e.spec)).decision
                #expect(d.partitions.map(\.budget) == e.budgets, "\(scene.image) \(e.spec)")
                #expect(d.partitions.map(\.kept) == e.kept, "\(scene.image) \(e.spec)")
            }
        }
    }

    @Test("VisionZip dominant patches; DART's embedding form")
    func visionZip() throws {
        let s = try Self.setup()
        for scene in s.ref.scenes {
            let img = try image(s, scene)
            for e in scene.visionzip {
                let d = try s.loaded.model.encode(img, plan: PruningPlan(parsing: e.spec)).decision
                #expect(d.partitions.map(\.kept) == e.dominant, "\(scene.image) \(e.spec)")
            }
            for e in scene.dart_embed {
                let d = try s.loaded.model.encode(img, plan: PruningPlan(parsing: e.spec)).decision
                #expect(d.partitions.map(\.kept) == e.kept, "\(scene.image) \(e.spec)")
            }
        }
    }

    @Test("FastV (both rules) and DART in the LLM keep the reference's image rows")
    func inLLM() throws {
        let s = try Self.setup()
        let m = s.loaded.model
        let tokenizer = try #require(s.loaded.tokenizer)
        for scene in s.ref.scenes {
            let img = try m.encode(try image(s, scene))
            let ids = tokenizer.encode(s.loaded.template.render([ChatMessage(.user, scene.question)], images: 1))
            let seq = try m.embed(tokens: ids, images: [img])
            let imageRows = seq.origins.indices.filter { seq.origins[$0] == .image }
            for e in scene.fastv + scene.dart {
                guard case .inLLM(let hook) = try PruningPlan(parsing: e.spec).stage else { Issue.record("\(e.spec) is not in-LLM"); continue }
                let recorder = RecordingHook(hook)
                _ = try m.decoder.forward(Tensor(shape: seq.embeddings.shape, values: seq.embeddings.toArray()), positions: seq.positions, origins: seq.origins,
                                          cache: m.decoder.makeCache(capacity: seq.count), logits: .last,
                                          workspace: DecoderWorkspace(), hooks: [recorder])
                let kept = recorder.kept.filter { seq.origins[$0] == .image }.map { imageRows.firstIndex(of: $0)! }
                #expect(kept == e.kept, "\(scene.image) \(e.spec): \(kept.count) vs \(e.kept.count) kept")
            }
        }
    }
}

/// Wraps a hook and remembers the rows it kept.
final class RecordingHook: DecoderLayerHook, @unchecked Sendable {
    let inner: any DecoderLayerHook
    var kept: [Int] = []
    init(_ inner: any DecoderLayerHook) { self.inner = inner }
    var layer: Int { inner.layer }
    var needs: LayerHookNeeds { inner.needs }
    func keep(_ c: LayerHookContext) throws -> [Int] {
        kept = try inner.keep(c)
        return kept
    }
    func nominal(imageTokens n: Int) -> Int { inner.nominal(imageTokens: n) }
}
