import Foundation
import FoveaCore
import FoveaIO
import FoveaModels

/// A model with what turns text into its prompt: tokenizer and chat format.
public struct LoadedModel: Sendable {
    public let model: VisionLanguageModel
    public let tokenizer: (any TextTokenizer)?
    /// Why `tokenizer` is nil when the checkpoint has one Fovea cannot read: the weights still
    /// load, so `inspect` and token-id prompts work, and text prompts get this error.
    public var tokenizerError: FoveaError? = nil
    public let template: ChatTemplate
    /// True when the checkpoint's chat template (if any) is none Fovea recognises and the model type chose.
    public var templateGuessed = false
    /// How images become pixels: from the folder's processor config, or from the mmproj's keys.
    public var processor: ImageProcessor? = nil
    /// Why `processor` is nil for a model that has a vision tower.
    public var processorError: FoveaError? = nil

    /// A model folder (config.json, safetensors, tokenizer.json), a `.gguf` language model, or
    /// llama.cpp's pair: a `.gguf` language model plus its `mmproj` (vision tower and projector).
    /// GGUF Q8_0/Q4_0/Q4_1 matrices stay in their blocks unless `dequantize` asks for float32
    /// copies (the old path, for comparison).
    /// `convert` turns float matrices into a stored format at load (`--weights bf16|q8_0|…`).
    public static func load(_ path: String, mmproj: String? = nil, dequantize: Bool = false, convert: QuantType? = nil,
                            activations: QuantizedMatrix.Activations = .float) throws -> LoadedModel {
        if path.lowercased().hasSuffix(".gguf") {
            let file = try GGUFFile(path: path)
            let clip = try mmproj.map { try GGUFFile(path: $0) }
            let config = try clip.map { try ModelConfiguration(gguf: file, mmproj: $0) } ?? ModelConfiguration(gguf: file)
            // Kept blocks cost their stored bytes; everything else becomes float32.
            let perWeight = convert?.bytesPerWeight ?? 4
            let bytes = ([file] + (clip.map { [$0] } ?? [])).flatMap(\.tensors.values)
                .reduce(0) { $0 + (!dequantize && $1.type.storedType != nil ? $1.byteCount : Int(Double($1.shape.reduce(1, *)) * perWeight)) }
            try checkWeights(config, bytes: bytes, path: path)
            let text = GGUFWeights(file: file, heads: config.text.heads, kvHeads: config.text.kvHeads,
                                   keepQuantized: !dequantize, activations: activations)
            var weights: any TensorSource = clip.map { LlamaCppPair(text: text, clip: ClipProjectorWeights(file: $0, hiddenSize: config.vision?.hiddenSize ?? 0, keepStored: !dequantize)) } ?? text
            if let convert { weights = try ConvertedWeights(weights, to: convert, activations: activations) }
            let model = try VisionLanguageModel(config: config, weights: weights, name: file.path)
            let (tok, problem) = attempt("tokenizer") {
                try TokenizerLoader.load(gguf: file, imagePlaceholder: clip == nil ? nil : model.config.imageTokenId)
            }
            let found = ChatTemplate.detection(jinja: file.metadata["tokenizer.chat_template"]?.string, modelType: model.config.text.modelType)
            var loaded = LoadedModel(model: model, tokenizer: tok, tokenizerError: problem, template: found.template, templateGuessed: found.guessed)
            if let clip { (loaded.processor, loaded.processorError) = attempt("image processor") { try ImageProcessor(mmproj: clip) } }
            return loaded
        }
        if let mmproj {
            throw FoveaError.invalidArgument(name: "--mmproj", value: mmproj, reason: "an mmproj file goes with a .gguf language model, and \(path) is a model folder")
        }
        let config = try ModelConfiguration(directory: path)
        try checkWeights(config, bytes: convert.map { Int(Double(config.parameterEstimate) * $0.bytesPerWeight) } ?? MemoryBudget.weightBytes(config), path: path)
        let store = try WeightStore(directory: path)
        let model = try VisionLanguageModel(config: config, weights: try convert.map { try ConvertedWeights(store, to: $0, activations: activations) } ?? store, name: path)
        let fm = FileManager.default
        let tokPath = path + "/tokenizer.json"
        let (tok, problem) = fm.fileExists(atPath: tokPath) ? attempt("tokenizer") { try TokenizerLoader.load(path: tokPath) } : (nil, nil)
        var jinja: String? = try? String(contentsOfFile: path + "/chat_template.jinja", encoding: .utf8)
        if jinja == nil, let cfg = try? JSONConfig(path: path + "/tokenizer_config.json") { jinja = try? cfg.string("chat_template") }
        let found = ChatTemplate.detection(jinja: jinja, modelType: model.config.text.modelType)
        var loaded = LoadedModel(model: model, tokenizer: tok, tokenizerError: problem, template: found.template, templateGuessed: found.guessed)
        if config.vision != nil { (loaded.processor, loaded.processorError) = attempt("image processor") { try ImageProcessor(directory: path) } }
        return loaded
    }

    /// The image processor, or the error that says why there is none.
    public func requireProcessor() throws -> ImageProcessor {
        if let processor { return processor }
        throw processorError ?? FoveaError.invalidInput(reason: "\(model.directory) is a text-only model; it takes no images")
    }

    /// Weights are refused before loading when they alone would not fit in the machine's memory.
    static func checkWeights(_ config: ModelConfiguration, bytes: Int, path: String) throws {
        try MemoryBudget.check(String(format: "%@ (%.2f B parameters)", path, Double(config.parameterEstimate) / 1e9),
                               needed: bytes, available: MemoryBudget.limitBytes)
    }

    /// The tokenizer, or the error that says why there is none.
    public func requireTokenizer() throws -> any TextTokenizer {
        if let tokenizer { return tokenizer }
        throw tokenizerError ?? FoveaError.invalidInput(reason: "the model has no tokenizer (no tokenizer.json, no GGUF tokenizer); give token ids")
    }

    /// A part that may be missing without the weights failing to load: the part, or why not.
    static func attempt<T>(_ what: String, _ load: () throws -> T) -> (T?, FoveaError?) {
        do { return (try load(), nil) } catch let e as FoveaError { return (nil, e) } catch {
            return (nil, .invalidInput(reason: "\(what): \(error.localizedDescription)"))
        }
    }
}
