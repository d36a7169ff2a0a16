import ArgumentParser
import Foundation
import FoveaCore
import FoveaIO
import FoveaModels
import FoveaRuntime

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk to a model in the terminal, turn by turn. An empty line or /quit ends it.")

    @Option(help: "Model folder or .gguf file (with --mmproj for images).")
    var model: String

    @OptionGroup var sampling: SamplingOptions

    @OptionGroup var weightOptions: WeightOptions

    @Option(name: .customLong("image"), help: "An image file the first question is about.")
    var imageFile: String?

    @Option(help: "A system message.")
    var system: String?

    @Option(name: .customLong("max-tokens"), help: "Most tokens per answer.")
    var maxTokens = 256

    func validate() throws {
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive") }
    }

    func run() throws {
        let loaded = try loadWithProgress(model, weights: weightOptions)
        let tokenizer = try loaded.requireTokenizer()
        let chat = sampling.chatTemplate(for: loaded)
        var images: [ImageInput] = []
        if let imageFile {
            images = [try loaded.requireProcessor()(ImageDecoder.decode(path: imageFile))]
        }
        let generator = Generator(model: loaded.model)
        let sampling = try self.sampling.parameters
        var messages: [ChatMessage] = system.map { [ChatMessage(.system, $0)] } ?? []
        while true {
            print("> ", terminator: "")
            fflush(nil)
            guard let line = readLine(), !line.isEmpty, line != "/quit" else { break }
            messages.append(ChatMessage(.user, line))
            // The whole conversation is re-encoded each turn: simple, and exact for every template.
            let ids = try tokenizer.encodeChecked(chat.render(messages, images: images.count))
            var stream = StreamingDecoder()
            var answer: [UInt8] = []
            let stops = Set(loaded.model.config.text.eosTokenIds)
            _ = try generator.generate(GenerationRequest(tokens: ids, images: images, maxNewTokens: maxTokens, sampling: sampling,
                                                         stopTokens: stops)) { token in
                guard !stops.contains(token) else { return true }
                let bytes = tokenizer.streamBytes(token)
                answer += bytes
                print(stream.push(bytes), terminator: "")
                fflush(nil)
                return true
            }
            print(stream.flush())
            messages.append(ChatMessage(.assistant, String(decoding: answer, as: UTF8.self).trimmingCharacters(in: .whitespaces)))
        }
    }
}
