import ArgumentParser
import Dispatch
import Foundation
import FoveaCore
import FoveaIO
import FoveaModels
import FoveaRuntime
import Synchronization

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk to a model in the terminal, turn by turn.",
        discussion: """
        Commands at the prompt: /image PATH (the next question is about this image), /reset (forget the \
        conversation and its images), /stats (the last answer's statistics), /quit or an empty line (end). \
        Ctrl-C stops the answer being written, not the session.
        """)

    @Option(help: "Model folder or .gguf file (with --mmproj for images).")
    var model: String

    @OptionGroup var sampling: SamplingOptions

    @OptionGroup var pruning: PruningOptions

    @OptionGroup var kv: KVOptions

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
        let generator = Generator(model: loaded.model)
        let sampling = try self.sampling.parameters
        let plan = try pruning.plan, kvPlan = try kv.plan
        let stops = Set(loaded.model.config.text.eosTokenIds)
        var conversation = Conversation(system: system)
        var lastStats: RunStatistics?
        let interrupt = AnswerInterrupt()

        func addImage(_ path: String) throws {
            let input = try loaded.requireProcessor()(ImageDecoder.decode(path: path))
            // Encoded once under the chosen method; every later turn reuses the features.
            let encoded = try generator.encode([input], plan: plan)[0]
            conversation.add(image: input, encoded: encoded)
            note("image \(path): \(encoded.features.shape[0]) of \(encoded.fullCount) visual tokens kept")
        }
        if let imageFile { try addImage(imageFile) }

        while true {
            print("> ", terminator: "")
            fflush(nil)
            guard let line = readLine(), !line.isEmpty, line != "/quit" else { break }
            switch line {
            case "/reset":
                conversation = Conversation(system: system)
                note("conversation and images forgotten")
                continue
            case "/stats":
                note(lastStats?.summary ?? "no answer yet")
                continue
            case _ where line.hasPrefix("/image"):
                let path = line.dropFirst("/image".count).trimmingCharacters(in: .whitespaces)
                do { try addImage(path) } catch { note("error: \(error.localizedDescription)") }
                continue
            case _ where line.hasPrefix("/"):
                note("unknown command \(line.split(separator: " ")[0]); commands: /image PATH, /reset, /stats, /quit")
                continue
            default: break
            }
            conversation.ask(line)
            var request = try loaded.request(conversation.messages, images: conversation.images, template: chat, maxNewTokens: maxTokens,
                                             sampling: sampling, pruning: plan, kv: kvPlan)
            // Each turn runs only what follows the conversation so far through the LLM.
            request.reusePrefix = true
            var stream = StreamingDecoder()
            var answer: [UInt8] = []
            let session: GenerationSession
            do {
                session = try generator.prefill(request, encoded: conversation.encoded)
            } catch {
                note("error: \(error.localizedDescription)")
                conversation.withdrawQuestion()
                continue
            }
            interrupt.begin()
            while let token = try session.step() {
                if interrupt.requested { session.cancel(); break }
                guard !stops.contains(token) else { continue }
                let bytes = tokenizer.streamBytes(token)
                answer += bytes
                print(stream.push(bytes), terminator: "")
                fflush(nil)
            }
            interrupt.end()
            let result = session.finish()
            print(stream.flush() + (result.finishReason == .cancelled ? " [stopped]" : ""))
            lastStats = result.statistics
            conversation.answer(String(decoding: answer, as: UTF8.self).trimmingCharacters(in: .whitespaces))
        }
    }
}

/// The turns so far, with each image placed in the turn that asked about it.
struct Conversation {
    private(set) var messages: [ChatMessage] = []
    private(set) var images: [ImageInput] = []
    private(set) var encoded: [EncodedImage] = []
    /// Images added since the last question: they go into the next one.
    private var pending = 0

    init(system: String?) {
        if let system { messages.append(ChatMessage(.system, system)) }
    }

    mutating func add(image: ImageInput, encoded e: EncodedImage) {
        images.append(image)
        encoded.append(e)
        pending += 1
    }

    mutating func ask(_ text: String) {
        messages.append(ChatMessage(.user, parts: Array(repeating: .image, count: pending) + [.text(text)]))
        pending = 0
    }

    /// The last question failed before an answer began: forget it (its images wait for the next).
    mutating func withdrawQuestion() {
        guard let last = messages.popLast() else { return }
        pending += last.parts.filter { $0 == .image }.count
    }

    mutating func answer(_ text: String) {
        messages.append(ChatMessage(.assistant, text))
    }
}

/// Ctrl-C while an answer is being written stops that answer; at the prompt it ends the program.
final class AnswerInterrupt: @unchecked Sendable {   // the source is only touched in init
    private let answering = Atomic<Bool>(false)
    private let stop = Atomic<Bool>(false)
    private let source: any DispatchSourceSignal

    init() {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [unowned self] in fire() }
        source.resume()
    }

    private func fire() {
        if answering.load(ordering: .acquiring) {
            stop.store(true, ordering: .releasing)
        } else {
            print()
            exit(130)
        }
    }

    var requested: Bool { stop.load(ordering: .acquiring) }
    func begin() { stop.store(false, ordering: .releasing); answering.store(true, ordering: .releasing) }
    func end() { answering.store(false, ordering: .releasing) }
}
