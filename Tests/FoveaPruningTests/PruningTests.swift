import Foundation
import Testing
import FoveaCore
import FoveaIO
import FoveaKV
@testable import FoveaModels
@testable import FoveaPruning
import FoveaRuntime
import FoveaTestSupport

@Suite("HiRED budget arithmetic (hand-computed)")
struct HiREDBudgetTests {
    // 4×4 base grid (n = 16). `halves`: 1 in the left two columns, 3 in the right two.
    static let halves: [Float] = (0..<16).map { $0 % 4 < 2 ? 1 : 3 }
    static let columns: [Float] = (0..<16).map { Float($0 % 4 + 1) }
    static let rows: [Float] = (0..<16).map { Float($0 / 4 + 1) }

    func budgets(_ r: Double, _ alpha: Double, _ grid: (Int, Int), _ S: [Float], rule: HiRED.Rule = .paper, redistribute: Bool = false) -> [Int] {
        let P = 1 + grid.0 * grid.1
        return HiRED.partitionBudgets(total: Budget.fraction(r).count(of: P * 16), alpha: alpha, grid: grid, side: 4, baseEarly: S,
                                      rule: rule, marks: 4, redistribute: redistribute)
    }

    @Test("1×2 and 2×1 split by 2-D blocks: the same scores give different budgets")
    func twoD() {
        // N = ⌊48·0.5⌋ = 24, N0 = 12, Nt = 12; 1×2: shares 8 | 24 → 3, 9. 2×1: 16 | 16 → 6, 6.
        #expect(budgets(0.5, 0.5, (1, 2), Self.halves) == [12, 3, 9])
        #expect(budgets(0.5, 0.5, (2, 1), Self.halves) == [12, 6, 6])
        // 2×2: N = 40, N0 = 16 (clamped from 20), Nt = 24; blocks 4, 12, 4, 12 of 32 → 3, 9, 3, 9.
        // Row bands (tile i = rows i of 4) would give 6 each.
        #expect(budgets(0.5, 0.5, (2, 2), Self.halves) == [16, 3, 9, 3, 9])
    }

    @Test("1×3 and 3×1 on a side 3 does not divide: bands 0..<1, 1..<2, 2..<4")
    func nonDividing() {
        #expect(HiRED.band(0, of: 3, side: 4) == 0..<1 && HiRED.band(1, of: 3, side: 4) == 1..<2 && HiRED.band(2, of: 3, side: 4) == 2..<4)
        // N = ⌊64·0.25⌋ = 16, N0 = 8, Nt = 8; shares 4, 8, 28 of 40 → 0, 1, 5.
        #expect(budgets(0.25, 0.5, (1, 3), Self.columns) == [8, 0, 1, 5])
        #expect(budgets(0.25, 0.5, (3, 1), Self.rows) == [8, 0, 1, 5])
        #expect(budgets(0.25, 0.5, (3, 1), Self.columns) == [8, 2, 2, 4])   // rows carry equal sums: 10, 10, 20 of 40
    }

    @Test("r ∈ {0.1, 0.2, 0.4, 1}, α ∈ {0, 0.5, 1}, clamps, and the redistribute variant")
    func rates() {
        let g = (2, 2)
        #expect(budgets(0.1, 0.5, g, Self.halves) == [4, 0, 1, 0, 1])     // N 8, N0 4, Nt 4 → ⌊1⌋, ⌊1.5⌋
        #expect(budgets(0.2, 0.5, g, Self.halves) == [8, 1, 3, 1, 3])     // N 16, Nt 8 → 1, 3
        #expect(budgets(0.4, 0.5, g, Self.halves) == [16, 2, 6, 2, 6])    // N 32, N0 16, Nt 16 → 2, 6
        #expect(budgets(1.0, 0.5, g, Self.halves) == [16, 8, 16, 8, 16])  // Nt 64 → 8, 24→16 (clamped), 8, 16
        #expect(budgets(1.0, 0.5, g, Self.halves, redistribute: true) == [16, 16, 16, 16, 16])
        #expect(budgets(0.2, 0.0, g, Self.halves) == [0, 2, 6, 2, 6])     // α = 0: N0 0, Nt 16
        #expect(budgets(0.1, 1.0, g, Self.halves) == [8, 0, 0, 0, 0])     // α = 1: everything to the base, no division by zero
        #expect(budgets(1.0, 1.0, g, Self.halves) == [16, 8, 16, 8, 16])  // α = 1 past the base's 16: the rest still split
        #expect(budgets(0.4, 0.5, g, [Float](repeating: 0, count: 16)) == [16, 4, 4, 4, 4])   // no attention anywhere: even split
    }

    @Test("code rule: share = marked top patches in the block")
    func codeRule() {
        // marks = 4: the four highest of `columns` are column 3 (j = 3, 7, 11, 15) → all in the right tiles.
        #expect(budgets(0.4, 0.5, (2, 2), Self.columns, rule: .code) == [16, 0, 8, 0, 8])
    }
}

@Suite("Method specs and budgets")
struct MethodSpecTests {
    @Test("parses names, keys and values; errors name what is valid")
    func parse() throws {
        let s = try MethodSpec(parsing: " HiRED:r=0.2, alpha=0.5 ")
        #expect(s.name == "hired" && s.parameters.map(\.key) == ["r", "alpha"] && s.description == "hired:r=0.2,alpha=0.5")
        #expect(throws: MethodSpecError.self) { try MethodSpec(parsing: "") }
        #expect(throws: MethodSpecError.self) { try MethodSpec(parsing: "hired:r") }
        #expect(throws: MethodSpecError.self) { try MethodSpec(parsing: "hired:r=1,r=2") }
        #expect(throws: MethodSpecError.self) { try MethodSpec(parsing: ":r=1") }
        func message(_ spec: String) -> String {
            do { _ = try PruningPlan(parsing: spec); return "" } catch { return error.localizedDescription }
        }
        #expect(message("nope").contains("valid: full, hired, visionzip, dart, fastv, random, uniform, downsample"))
        #expect(message("hired:q=1").contains("valid keys: r, tokens, alpha"))
        #expect(message("hired:r=1.5").contains("r=1.5 is invalid"))
        #expect(message("hired:r=nan").contains("invalid"))
        #expect(message("hired:r=0.2,tokens=30").contains("not both"))
        #expect(message("fastv:k=0").contains("k=0 is invalid"))
        #expect(message("fastv:pos=renumber").contains("not available"))
        #expect(message("dart:where=embed,k=3").contains("where=llm only"))
        #expect(message("hired:rule=magic").contains("one of paper, code"))
        #expect(message("random:pos=sideways").contains("one of orig, renumber"))
    }

    @Test("plans: stage, positions and newline defaults")
    func plans() throws {
        let h = try PruningPlan(parsing: "hired")
        guard case .beforeLLM(let p) = h.stage, let hired = p as? HiRED else { Issue.record("hired is before the LLM"); return }
        #expect(hired.budget == .fraction(0.2) && hired.alpha == 0.5 && hired.rule == .paper)
        #expect(h.positions == .orig && !h.newline)
        #expect(try PruningPlan(parsing: "hired:pos=renumber,newline=on").positions == .renumber)
        guard case .inLLM = try PruningPlan(parsing: "fastv").stage, case .inLLM = try PruningPlan(parsing: "dart").stage,
              case .beforeLLM = try PruningPlan(parsing: "dart:where=embed").stage, case .none = try PruningPlan(parsing: "full").stage
        else { Issue.record("stages"); return }
    }

    @Test("budgets: fraction floors like Python's int(n·r); absolute counts split with the remainder first")
    func budgets() {
        #expect(Budget.fraction(0.2).count(of: 2880) == 576 && Budget.fraction(0.1).count(of: 576) == 57)
        #expect(Budget.tokens(320).count(of: 100) == 100)
        #expect(Budget.tokens(10).perPartition(parts: 3, n: 64) == [4, 3, 3])
        #expect(Budget.fraction(0.25).perPartition(parts: 2, n: 64) == [16, 16])
    }
}

@Suite("Pruning through the model")
struct PruningPipelineTests {
    static var folder: String { URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().path + "/models/fovea-test-llava-small" }
    static var scene: String { URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().path + "/data/eval/scenes/scene_0002.png" }

    func run(_ spec: String) throws -> GenerationResult {
        let loaded = try LoadedModel.load(Self.folder)
        let image = try ImageProcessor(directory: Self.folder)(try ImageDecoder.decode(path: Self.scene))
        let ids = loaded.tokenizer!.encode(loaded.template.render([ChatMessage(.user, "What colour is the circle?")], images: 1))
        return try Generator(model: loaded.model).generate(GenerationRequest(tokens: ids, images: [image], maxNewTokens: 3,
                                                                             pruning: try PruningPlan(parsing: spec)))
    }

    /// Selections reuse Full's projected rows, so they must give Full's bits. Downsample's pooled
    /// tokens go through the projector as a batch of their own, and an sgemm's bits may depend on
    /// the row count (OpenBLAS's Zen kernels do: 425 of 73,600 values differ between M = 576 and
    /// the same first 575 rows), so k = 1 is held to float32 rounding instead: within 1e-5 of the
    /// largest logit (differences seen: ~1e-6), the same greedy tokens.
    @Test("keep-everything settings reproduce the unpruned logits (bit for bit where rows are reused)")
    func keepEverything() throws {
        let full = try run("full")
        #expect(full.statistics.visualTokensOut == full.statistics.visualTokensIn)
        let scale = full.firstLogits.map(abs).max() ?? 1
        for spec in ["hired:r=1,newline=on,redistribute=on", "fastv:k=1,ratio=0", "visionzip:r=1,contextual=0,cls=off,newline=on",
                     "dart:k=1,r=1", "dart:where=embed,r=1,newline=on", "uniform:r=1,newline=on", "random:r=1,newline=on",
                     "downsample:k=1,newline=on", "hired:r=1,newline=on,redistribute=on,pos=renumber"] {
            let r = try run(spec)
            if spec.hasPrefix("downsample") {
                let worst = zip(r.firstLogits, full.firstLogits).map { abs($0 - $1) }.max() ?? .infinity
                #expect(r.firstLogits.count == full.firstLogits.count && worst <= 1e-5 * scale, "\(spec): \(worst)")
            } else {
                #expect(r.firstLogits == full.firstLogits, "\(spec)")
            }
            #expect(r.tokens == full.tokens, "\(spec)")
            #expect(r.statistics.visualTokensOut == full.statistics.visualTokensIn, "\(spec)")
        }
    }

    @Test("a pruned run reports kept beside nominal, sources and original positions")
    func report() throws {
        let r = try run("hired:r=0.2")
        let s = r.statistics
        let img = r.images[0]
        #expect(s.visualTokensNominal == Int(Double(img.partitions * 64) * 0.2))
        #expect(s.visualTokensOut == img.features.shape[0])
        #expect(s.visualTokensOut + s.lostToUnpad <= s.visualTokensNominal)
        #expect(s.visualTokensOut == img.decision.partitions.reduce(0) { $0 + $1.kept.count } - img.lostToUnpad)
        #expect(zip(img.places, img.places.dropFirst()).allSatisfy { $0 < $1 } && img.places.last! < img.fullCount)
        // Sources name real kept patches.
        for src in img.sources {
            guard case .patch(let p, let j) = src else { Issue.record("hired keeps patches only"); continue }
            #expect(img.decision.partitions[p].kept.contains(j))
        }
        // FastV at layer 1 halves the image rows the second layer sees.
        let f = try run("fastv:k=1")
        #expect(f.statistics.visualTokensOut == f.statistics.visualTokensIn - f.statistics.visualTokensIn / 2)
        // VisionZip: per partition ⌊0.2·64⌋ = 12 = 10 dominant (CLS among them) + 2 contextual.
        let v = try run("visionzip:r=0.2")
        #expect(v.images[0].decision.partitions.allSatisfy { $0.kept.count == 9 && $0.merged.count == 3 && $0.merged[0].isCLS })
    }
}

@Suite("Controls, explain and run statistics")
struct ControlsTests {
    func encode(_ spec: String) throws -> (VisionLanguageModel, ImageInput, EncodedImage) {
        let folder = PruningPipelineTests.folder
        let m = try VisionLanguageModel(directory: folder)
        let image = try ImageProcessor(directory: folder)(try ImageDecoder.decode(path: PruningPipelineTests.scene))
        return (m, image, try m.encode(image, plan: try PruningPlan(parsing: spec)))
    }

    @Test("uniform keeps every (n/b)-th patch; random is seeded, in range and of the budget's size")
    func strideAndRandom() throws {
        let u = try encode("uniform:r=0.25").2
        #expect(u.decision.partitions.allSatisfy { $0.kept == stride(from: 0, to: 64, by: 4).map { $0 } })
        let a = try encode("random:r=0.2,seed=7").2.decision, b = try encode("random:r=0.2,seed=7").2.decision
        let c = try encode("random:r=0.2,seed=8").2.decision
        #expect(a == b && a != c)
        #expect(a.partitions.allSatisfy { $0.kept.count == 12 && Set($0.kept).count == 12 && $0.kept == $0.kept.sorted() && $0.kept.last! < 64 })
    }

    @Test("downsample averages k×k cells of the feature rows")
    func downsample() throws {
        let (_, _, e) = try encode("downsample:k=2")
        let base = e.decision.partitions[0]
        #expect(base.kept.isEmpty && base.merged.count == 16)
        let cell = base.merged[5]                      // cell (1, 1): patches 18, 19, 26, 27
        #expect(cell.sources == [18, 19, 26, 27] && cell.anchor == 18)
        let w = cell.features.count
        let f = e.vision.features.data
        for i in [0, w / 2, w - 1] {
            let mean = cell.sources.map { f[(1 + $0) * w + i] }.reduce(0, +) / 4
            #expect(abs(cell.features[i] - mean) <= 1e-6 * max(1, abs(mean)))
        }
        #expect(try encode("downsample:r=0.25").2.decision == e.decision)   // r = 0.25 → k = 2
    }

    @Test("explain: the JSON has exactly the documented keys; the PNG decodes back")
    func explain() throws {
        let (m, image, e) = try encode("hired:r=0.2")
        let json = try JSONSerialization.jsonObject(with: try KeptMap.json(e, method: "hired:r=0.2")) as? [String: Any]
        #expect(Set(json?.keys.map { $0 } ?? []) == ["method", "grid", "patches_per_partition", "partitions", "lost_to_unpad",
                                                      "visual_tokens_in", "visual_tokens_out"])
        #expect(json?["grid"] as? [Int] == [e.grid.rows, e.grid.cols] && json?["visual_tokens_in"] as? Int == e.fullCount)
        let parts = json?["partitions"] as? [[String: Any]] ?? []
        #expect(parts.count == e.partitions && parts.map { $0["kept"] as? [Int] ?? [] } == e.decision.partitions.map(\.kept))
        let processor = try ImageProcessor(directory: PruningPipelineTests.folder)
        let picture = KeptMap.render(image, e, mean: processor.mean, std: processor.std, gridSide: m.config.vision!.gridSide)
        let path = Fixtures.temporaryDirectory("explain") + "/kept.png"
        try ImageEncoder.writePNG(picture, path: path)
        let back = try ImageDecoder.decode(path: path)
        #expect(back == picture)
        #expect(throws: FoveaError.self) { try ImageEncoder.writePNG(picture, path: "/nonexistent/dir/kept.png") }
    }

    @Test("--stats-json carries the run statistics the issue names")
    func statsJSON() throws {
        var s = RunStatistics()
        s.visualTokensIn = 208
        s.visualTokensOut = 41
        let json = try JSONSerialization.jsonObject(with: try s.json()) as? [String: Any] ?? [:]
        for key in ["visual_tokens_in", "visual_tokens_out", "prompt_tokens", "generated_tokens", "vision_s", "prefill_s", "ttft_s",
                    "decode_ms_per_token", "kv_bytes_allocated", "kv_bytes_used", "kv_pool_bytes_held", "peak_rss_bytes"] {
            #expect(json[key] != nil, "\(key)")
        }
        #expect(json["visual_tokens_out"] as? Int == 41)
    }
}

@Suite("Single-partition models and composition")
struct SinglePartitionTests {
    @Test("LLaVA-1.5 (one partition): HiRED keeps ⌊n·r⌋ patches by late-layer CLS attention, raster order, no tiles")
    func llava15() throws {
        let dir = Fixtures.model("llava-tiny")
        let m = try VisionLanguageModel(directory: dir)
        let ref = try SafeTensorsFile(path: dir + "/reference.safetensors")
        let pixels = try ref.load("pixel_values")
        let image = ImageInput(pixels: pixels, originalHeight: pixels.shape[2], originalWidth: pixels.shape[3])
        let g = try #require(m.visionGeometry)
        let e = try m.encode(image, plan: try PruningPlan(parsing: "hired:r=0.25"))
        let n = g.patches
        #expect(e.partitions == 1 && e.decision.partitions.count == 1)
        #expect(e.decision.partitions[0].kept.count == n / 4 && e.features.shape[0] == n / 4 && e.fullCount == n)
        // The same set the late layer's head-summed CLS row ranks first.
        let out = try m.vision!(pixels: pixels.data, partitions: 1, featureLayers: m.config.visionFeatureLayers, clsAttentionLayers: [g.featureLayer])
        let rows = out.clsAttention[g.featureLayer]!
        let T = n + 1
        let F = (0..<n).map { j in (0..<g.heads).reduce(Float(0)) { $0 + rows[$1 * T + 1 + j] } }
        #expect(e.decision.partitions[0].kept == TopK.keptAscending(F, k: n / 4))
        // Original positions: the kept patches' places are their patch indices.
        #expect(e.places == e.decision.partitions[0].kept)
    }

    @Test("every pruner composes with every KV policy and storage")
    func composition() throws {
        let folder = PruningPipelineTests.folder
        let loaded = try LoadedModel.load(folder)
        let image = try ImageProcessor(directory: folder)(try ImageDecoder.decode(path: PruningPipelineTests.scene))
        let ids = loaded.tokenizer!.encode(loaded.template.render([ChatMessage(.user, "What colour is the circle?")], images: 1))
        let gen = Generator(model: loaded.model)
        for prune in ["hired:r=0.2", "visionzip:r=0.2", "dart:k=1", "dart:where=embed", "fastv:k=1", "random", "uniform", "downsample"] {
            for kv in ["avl", "h2o:heavy=0.2,recent=0.2", "streaming:sink=2,window=20", "snapkv:w=8,cap=0.5"] {
                let r = try gen.generate(GenerationRequest(tokens: ids, images: [image], maxNewTokens: 4, pruning: try PruningPlan(parsing: prune),
                                                           kv: try KVPlan(parsing: kv, storage: .q8_0)))
                #expect(r.tokens.count >= 1 && r.statistics.kvBytesAfterPrefill > 0, "\(prune) + \(kv)")
                #expect(r.statistics.visualTokensOut < r.statistics.visualTokensIn, "\(prune) + \(kv)")
            }
        }
    }
}
