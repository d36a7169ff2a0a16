import ArgumentParser
import Foundation
import FoveaIO
import FoveaModels
import FoveaRuntime

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show which visual tokens a pruner keeps: a PNG (kept, dimmed, merged; the method's score as a heat map) and JSON.")

    @Option(help: "Model folder (config.json + *.safetensors) or a .gguf file (with --mmproj for images).")
    var model: String

    @Option(help: "An image file (PNG or JPEG).")
    var image: String

    @OptionGroup var pruning: PruningOptions

    @OptionGroup var weightOptions: WeightOptions

    @Option(help: "Where to write the picture (PNG).")
    var out: String

    @Option(help: "Where to write the kept patches as JSON.")
    var json: String?

    @Option(name: .customLong("max-pixels"), help: "Refuse images with more pixels than this (decompression bombs).")
    var maxPixels = ImageDecoder.defaultMaxPixels

    func run() throws {
        let loaded = try loadWithProgress(model, weights: weightOptions)
        let m = loaded.model
        guard let v = m.config.vision else { throw ValidationError("\(model) is a text-only model; there is nothing to explain") }
        let plan = try pruning.plan
        let processor = try loaded.requireProcessor()
        let input = try processor(try ImageDecoder.decode(path: image, maxPixels: maxPixels))
        let encoded = try m.encode(input, plan: plan)
        try ImageEncoder.writePNG(KeptMap.render(input, encoded, mean: processor.mean, std: processor.std, gridSide: v.gridSide), path: out)
        if let json { try KeptMap.json(encoded, method: plan.description).write(to: URL(fileURLWithPath: json)) }
        print("\(plan): \(encoded.features.shape[0]) of \(encoded.fullCount) visual tokens (nominal \(encoded.decision.nominal), lost to unpad \(encoded.lostToUnpad)); wrote \(out)")
    }
}
