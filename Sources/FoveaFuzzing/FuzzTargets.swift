import Foundation
import FoveaCore
import FoveaIO
import FoveaKV
import FoveaModels
import FoveaPruning
import FoveaRuntime
import FoveaServer

/// What the fuzzers feed arbitrary bytes to: every parser a user's file or argument reaches.
/// A thrown error is the right answer to bad input; anything else (a trap, an out-of-bounds
/// access under AddressSanitizer, a hang, unbounded memory) is a finding. The libFuzzer driver
/// (Fuzz/) and the regression replay in the tests call the same functions.
public enum FuzzTargets {
    public static let names = ["safetensors", "gguf", "config", "preprocessor", "tokenizer-json", "tokenize", "image", "chat", "spec", "chat-request"]

    public static func run(_ target: String, _ data: Data) {
        switch target {
        case "safetensors": safetensors(data)
        case "gguf": gguf(data)
        case "config": config(data)
        case "preprocessor": preprocessor(data)
        case "tokenizer-json": tokenizerJSON(data)
        case "tokenize": tokenize(data)
        case "image": image(data)
        case "chat": chat(data)
        case "spec": spec(data)
        case "chat-request": chatRequest(data)
        default: break
        }
    }

    /// Readers take paths: each input goes to one scratch file per process (tmpfs where there is one).
    static let scratch: String = {
        let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        return dir + "/fovea-fuzz-\(getpid())"
    }()

    static func withFile(_ data: Data, _ body: (String) throws -> Void) {
        _ = FileManager.default.createFile(atPath: scratch, contents: data)
        try? body(scratch)
    }

    static func safetensors(_ data: Data) {
        withFile(data) { path in
            let f = try SafeTensorsFile(path: path)
            for name in f.tensors.keys.sorted() { _ = try? f.load(name); _ = try? f.loadInts(name) }
        }
    }

    static func gguf(_ data: Data) {
        withFile(data) { path in
            let f = try GGUFFile(path: path)
            for name in f.tensorOrder { _ = try? f.load(name) }
            _ = try? ModelConfiguration(gguf: f)
            if let tok = try? TokenizerLoader.load(gguf: f) { _ = tok.decode(tok.encode("Hello, world 123")) }
        }
    }

    static func config(_ data: Data) {
        guard let j = try? JSONConfig(data: data, path: "config.json"), let c = try? ModelConfiguration(json: j) else { return }
        _ = c.parameterEstimate
        _ = MemoryBudget.kvBytes(c, tokens: 16)
    }

    /// A fixed small image through whatever the configuration says.
    static let picture = RGBImage(width: 23, height: 17, pixels: (0..<(23 * 17 * 3)).map { UInt8(truncatingIfNeeded: $0 * 7) })

    static func preprocessor(_ data: Data) {
        guard let j = try? JSONConfig(data: data, path: "preprocessor_config.json"), let p = try? ImageProcessor(json: j) else { return }
        // Sizes up to 8192² are legitimate configurations; only run the small ones, or one input takes seconds.
        if case .shortestEdge(let e) = p.resize, e > 512 { return }
        if case .fixed(let h, let w) = p.resize, h * w > 512 * 512 { return }
        guard p.cropSize.height * p.cropSize.width <= 512 * 512, p.pinpoints.allSatisfy({ $0[0] * $0[1] <= 1024 * 1024 }) else { return }
        _ = try? p(picture)
    }

    static func tokenizerJSON(_ data: Data) {
        withFile(data) { path in
            let tok = try TokenizerLoader.load(path: path)
            _ = tok.decode(tok.encode("Hello <image> wörld 42 ☃"), skipSpecial: true)
            _ = tok.decode([0, 1, 2, -1, 1 << 40])
        }
    }

    /// The shipped tokenizers: the test model's byte-level BPE and the SentencePiece-style fixture.
    static let tokenizers: [any TextTokenizer] = {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        return [repo + "/models/fovea-test-llava/tokenizer.json", repo + "/Fixtures/tokenizers/llama-style/tokenizer.json"]
            .compactMap { try? TokenizerLoader.load(path: $0) }
    }()

    static func tokenize(_ data: Data) {
        let text = String(decoding: data, as: UTF8.self)
        for tok in tokenizers {
            let ids = tok.tokenize(text, specialTokens: true).ids
            _ = tok.decode(ids)
            // Arbitrary ids, two bytes each, through the streaming decoder.
            var stream = StreamingDecoder()
            for i in stride(from: 0, to: data.count - 1, by: 2) {
                _ = stream.push(tok.streamBytes(Int(data[data.startIndex + i]) << 8 | Int(data[data.startIndex + i + 1])))
            }
            _ = stream.flush()
        }
    }

    static let processor = try? ImageProcessor(json: JSONConfig(path: "fuzz", keyPath: "", raw: [
        "image_processor_type": "LlavaNextImageProcessor", "size": ["shortest_edge": 28], "crop_size": ["height": 28, "width": 28],
        "image_grid_pinpoints": [[28, 56], [56, 28], [56, 56]]]))

    static func image(_ data: Data) {
        guard let img = try? ImageDecoder.decode(data: data, name: "input", maxPixels: 1 << 20) else { return }
        _ = try? processor?(img)
    }

    /// Bytes → a conversation: the first byte of each chunk picks the role and whether it is an image part.
    static func chat(_ data: Data) {
        var messages: [ChatMessage] = []
        for chunk in data.split(separator: 0, omittingEmptySubsequences: false).prefix(64) {
            let roles: [ChatMessage.Role] = [.system, .user, .assistant]
            let head = chunk.first ?? 0
            let text = String(decoding: chunk.dropFirst(), as: UTF8.self)
            let parts: [ChatMessage.Part] = head & 4 == 0 ? [.text(text)] : [.image, .text(text), .image]
            messages.append(ChatMessage(roles[Int(head) % 3], parts: parts))
        }
        for t in [ChatTemplate.chatml(defaultSystem: "S"), .chatml(defaultSystem: nil), .vicuna, .mistral] {
            _ = t.render(messages, images: Int(data.first ?? 0) % 4)
        }
        _ = ChatTemplate.detection(jinja: String(decoding: data, as: UTF8.self), modelType: "llama")
    }

    static func spec(_ data: Data) {
        let text = String(decoding: data, as: UTF8.self)
        _ = try? PruningPlan(parsing: text)
        _ = try? KVPlan(parsing: text)
        _ = try? MethodCell(text)
        _ = try? MethodSpec(parsing: text)
    }

    /// An HTTP body for POST /v1/chat/completions: the wire decoding, the `fovea` object over the
    /// server's defaults through the method registries, and every image URL through the media loader.
    static let media = try? MediaLoader(mediaPath: nil, maxBytes: 1 << 20)

    static func chatRequest(_ data: Data) {
        guard let request = try? FoveaServer.decode(data) else { return }
        if let fovea = request.fovea, let choice = try? MethodChoice().applying(fovea: fovea) { _ = try? choice.plans() }
        for message in request.messages {
            guard case .parts(let parts) = message.content else { continue }
            for part in parts { if let url = part.imageURL { _ = try? media?.load(url, param: "fuzz") } }
        }
    }
}
