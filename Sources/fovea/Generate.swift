import ArgumentParser
import Foundation
import FoveaCore
import FoveaIO
import FoveaModels
import FoveaRuntime

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer a prompt (about images, if given) and stream the answer; --tokens streams token ids.")

    @Option(help: "Model folder (config.json + *.safetensors) or a .gguf file (with --mmproj for images).")
    var model: String

    @OptionGroup var sampling: SamplingOptions

    @OptionGroup var pruning: PruningOptions

    @OptionGroup var kv: KVOptions

    @OptionGroup var weightOptions: WeightOptions

    @Option(help: "The question. Rendered with the model's chat template and tokenized.")
    var prompt: String?

    @Option(help: "A system message for the chat template.")
    var system: String?

    @Option(help: "Prompt token ids instead of --prompt, comma-separated; the image token once per image or already expanded.")
    var tokens: String?

    @Option(name: .customLong("image"), help: "An image file (PNG or JPEG), preprocessed as the model's preprocessor_config.json says. Repeatable.")
    var imageFiles: [String] = []

    @Option(name: .customLong("max-pixels"), help: "Refuse images with more pixels than this (decompression bombs).")
    var maxPixels = ImageDecoder.defaultMaxPixels

    @Option(help: "A safetensors file with 'pixel_values' [partitions, 3, S, S] and, for LLaVA-NeXT, 'image_sizes' [1, 2] (height, width).")
    var pixels: String?

    @Option(name: .customLong("max-tokens"), help: "Most tokens to generate.")
    var maxTokens = 16

    @Flag(help: "Print run statistics to stdout after the tokens (they always go to stderr).")
    var stats = false

    @Option(name: .customLong("stats-json"), help: "Write the run statistics as JSON to this file.")
    var statsJSON: String?

    func validate() throws {
        guard (prompt == nil) != (tokens == nil) else { throw ValidationError("give exactly one of --prompt and --tokens") }
        guard imageFiles.isEmpty || pixels == nil else { throw ValidationError("give --image or --pixels, not both") }
        guard maxPixels > 0 else { throw ValidationError("--max-pixels must be positive") }
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be ≥ 0") }
    }

    func run() throws {
        let loaded = try loadWithProgress(model, weights: weightOptions)
        let m = loaded.model
        var images: [ImageInput] = []
        if let pixels {
            let f = try SafeTensorsFile(path: pixels)
            guard f.tensors["pixel_values"] != nil else { throw FoveaError.missingTensor(name: "pixel_values", searched: [pixels]) }
            var pv = try f.load("pixel_values")
            if pv.rank == 5, pv.shape[0] == 1 { pv = pv.reshaped(Array(pv.shape.dropFirst())) }
            if pv.rank == 3 { pv = pv.reshaped([1] + pv.shape) }
            var (h, w) = (pv.shape.count == 4 ? pv.shape[2] : 0, pv.shape.count == 4 ? pv.shape[3] : 0)
            if f.tensors["image_sizes"] != nil {
                let s = try f.loadInts("image_sizes")
                guard s.count == 2 else { throw FoveaError.shapeMismatch(tensor: "image_sizes", expected: [1, 2], actual: [s.count]) }
                (h, w) = (s[0], s[1])
            }
            images.append(ImageInput(pixels: pv, originalHeight: h, originalWidth: w))
        }
        var imageLoadSeconds = 0.0
        if !imageFiles.isEmpty {
            guard m.config.vision != nil else { throw ValidationError("\(model) is a text-only model; it cannot take --image") }
            let processor = try loaded.requireProcessor()
            let t0 = now()
            for file in imageFiles { images.append(try processor(try ImageDecoder.decode(path: file, maxPixels: maxPixels))) }
            imageLoadSeconds = now() - t0
        }
        var ids: [Int]
        if let tokens {
            ids = try tokens.split(separator: ",").map { s -> Int in
                guard let v = Int(s.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--tokens: '\(s)' is not an integer") }
                return v
            }
        } else {
            let tokenizer = try loaded.requireTokenizer()
            let chat = sampling.chatTemplate(for: loaded)
            var messages: [ChatMessage] = []
            if let system { messages.append(ChatMessage(.system, system)) }
            messages.append(ChatMessage(.user, prompt ?? ""))
            ids = try tokenizer.encodeChecked(chat.render(messages, images: images.count))
        }
        let sampling = try self.sampling.parameters
        let request = GenerationRequest(tokens: ids, images: images, maxNewTokens: maxTokens, sampling: sampling,
                                        stopTokens: Set(m.config.text.eosTokenIds), pruning: try pruning.plan, kv: try kv.plan)
        var stream = StreamingDecoder()
        var result = try Generator(model: m).generate(request) { token in
            if tokens == nil, let tokenizer = loaded.tokenizer {
                if !request.stopTokens.contains(token) { print(stream.push(tokenizer.streamBytes(token)), terminator: "") }
            } else {
                print(token, terminator: " ")
            }
            fflush(nil)
            return true
        }
        result.statistics.imageLoadSeconds = imageLoadSeconds
        print(stream.flush(), terminator: "")
        print()
        fflush(nil)
        FileHandle.standardError.write((result.statistics.summary + "\n").data(using: .utf8)!)
        if stats { print(result.statistics.summary) }
        if let statsJSON { try result.statistics.json().write(to: URL(fileURLWithPath: statsJSON)) }
    }
}
