import Foundation
import Testing
import FoveaCore
import FoveaIO
import FoveaModels
import FoveaRuntime
@testable import FoveaServer
import FoveaTestSupport

/// A JSON object's integer fields (usage carries a nested object beside them).
func intFields(_ value: Any) -> [String: Int]? {
    (value as? [String: Any])?.compactMapValues { $0 as? Int }
}

/// The answer `fovea generate` gives: the same template, tokenizer, image preprocessing and
/// session, run in this process, as text without the stop token.
func referenceAnswer(model: String, question: String, image: String?, method: MethodChoice, maxTokens: Int) throws -> String {
    try referenceRun(model: model, question: question, image: image, method: method, maxTokens: maxTokens).text
}

/// The same, with the run's statistics (what the methods kept, the KV they held).
func referenceRun(model: String, question: String, image: String?, method: MethodChoice, maxTokens: Int) throws
    -> (text: String, statistics: RunStatistics) {
    let loaded = try LoadedModel.load(model)
    var images: [ImageInput] = []
    if let image { images = [try loaded.requireProcessor()(ImageDecoder.decode(path: image))] }
    let parts: [ChatMessage.Part] = (image == nil ? [] : [.image]) + [.text(question)]
    let (pruning, kv) = try method.plans()
    let request = try loaded.request([ChatMessage(.user, parts: parts)], images: images, maxNewTokens: maxTokens, pruning: pruning, kv: kv)
    let result = try Generator(model: loaded.model).generate(request)
    return (try loaded.requireTokenizer().decode(result.tokens.filter { !request.stopTokens.contains($0) }), result.statistics)
}

@Suite("fovea serve over HTTP, with curl", .serialized)
struct ServerHTTPTests {
    @Test("health, models (with aliases), a text chat and an image chat with usage and timings")
    func basics() throws {
        let server = try ServerProcess(["--alias", "small-hired=prune=hired:r=0.2;kv=avl"])
        defer { server.stop() }
        let health = try server.curl("/health")
        #expect(health.status == 200 && health.json["status"] as? String == "ok")
        let models = try server.curl("/v1/models")
        let ids = (models.json["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
        #expect(ids == ["fovea-test-llava-small", "small-hired"])

        let text = try server.curl("/v1/chat/completions", body: chatBody("Hello there", maxTokens: 4))
        #expect(text.status == 200, "\(text.body)")
        let usage = try #require(text.json["usage"].flatMap(intFields))
        #expect(usage["prompt_tokens"]! > 5 && usage["total_tokens"] == usage["prompt_tokens"]! + usage["completion_tokens"]!)

        let picture = try server.curl("/v1/chat/completions", body: chatBody("What color is the square?", image: ServerProcess.image))
        #expect(picture.status == 200, "\(picture.body)")
        let timings = try #require(picture.json["timings"] as? [String: Any])
        // The test model is LLaVA-NeXT with 112-px tiles: every visual token kept under Full.
        let visualIn = try #require(timings["visual_tokens_in"] as? Int)
        #expect(visualIn > 0 && timings["visual_tokens_kept"] as? Int == visualIn)
        #expect(timings["method"] as? String == "prune=full kv=full dtype=f32")
        #expect((timings["prompt_n"] as? Int ?? 0) > visualIn)
        #expect((timings["vision_ms"] as? Double ?? 0) > 0)

        // The alias selects its methods: HiRED keeps 20% of the visual tokens.
        let hired = try server.curl("/v1/chat/completions",
                                    body: chatBody("What color is the square?", image: ServerProcess.image, extra: #","model":"small-hired""#))
        #expect(hired.status == 200, "\(hired.body)")
        let hiredTimings = try #require(hired.json["timings"] as? [String: Any])
        let kept = try #require(hiredTimings["visual_tokens_kept"] as? Int)
        #expect(kept < visualIn / 2 && kept > 0, "\(hiredTimings)")
        #expect(hiredTimings["method"] as? String == "prune=hired:r=0.2 kv=avl dtype=f32")
        #expect(server.stop() == 0)
    }

    @Test("the same greedy answer as fovea generate, for every pruner and KV policy")
    func sameAsGenerate() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let methods = [
            MethodChoice(), MethodChoice(prune: "hired:r=0.2"), MethodChoice(prune: "visionzip:r=0.25"), MethodChoice(prune: "dart:r=0.3"),
            MethodChoice(prune: "fastv:k=1,ratio=0.5"), MethodChoice(prune: "random:r=0.3,seed=4"), MethodChoice(prune: "uniform:r=0.3"),
            MethodChoice(prune: "downsample:k=2"), MethodChoice(kv: "avl"), MethodChoice(kv: "h2o:heavy=0.2,recent=0.2"),
            MethodChoice(kv: "streaming:sink=4,window=0.5"), MethodChoice(kv: "snapkv:w=4,cap=0.5"), MethodChoice(kvDtype: "q8_0"),
            MethodChoice(prune: "hired:r=0.3", kv: "avl:s=0.5", kvDtype: "f16"),
        ]
        for m in methods {
            let extra = #","fovea":{"prune":"\#(m.prune)","kv":"\#(m.kv)","kv_dtype":"\#(m.kvDtype)"}"#
            let reply = try server.curl("/v1/chat/completions", body: chatBody("Describe the picture.", image: ServerProcess.image, maxTokens: 12, extra: extra))
            #expect(reply.status == 200, "\(m.label): \(reply.body)")
            let expected = try referenceRun(model: ServerProcess.testModel, question: "Describe the picture.", image: ServerProcess.image,
                                            method: m, maxTokens: 12)
            #expect(reply.content == expected.text, "\(m.label)")
            // The method acted as it does in the CLI: the tokens it kept, the KV it held.
            let timings = reply.json["timings"] as? [String: Any]
            #expect(timings?["method"] as? String == m.label)
            #expect(timings?["visual_tokens_kept"] as? Int == expected.statistics.visualTokensOut, "\(m.label)")
            #expect(timings?["kv_bytes"] as? Int == expected.statistics.kvBytesAllocated, "\(m.label)")
        }
    }

    @Test("longer answers from SmolLM2 match fovea generate under every KV policy",
          .enabled(if: ServerProcess.smolLMAvailable, "SmolLM2 GGUF not fetched: run scripts/fetch_models.sh"))
    func sameAsGenerateLong() throws {
        let server = try ServerProcess(model: ServerProcess.smolLM)
        defer { server.stop() }
        let question = "Write a short story about a lighthouse keeper."
        for m in [MethodChoice(), MethodChoice(kv: "avl"), MethodChoice(kv: "h2o:heavy=0.2,recent=0.2"),
                  MethodChoice(kv: "streaming:sink=4,window=0.5"), MethodChoice(kv: "snapkv:w=4,cap=0.5"), MethodChoice(kvDtype: "q8_0")] {
            let extra = #","fovea":{"kv":"\#(m.kv)","kv_dtype":"\#(m.kvDtype)"}"#
            let reply = try server.curl("/v1/chat/completions", body: chatBody(question, maxTokens: 40, extra: extra))
            #expect(reply.status == 200, "\(reply.body)")
            let expected = try referenceAnswer(model: ServerProcess.smolLM, question: question, image: nil, method: m, maxTokens: 40)
            #expect(reply.content == expected, "\(m.label)")
            #expect((reply.json["usage"].flatMap(intFields))?["completion_tokens"] ?? 0 >= 30, "\(reply.body)")
        }
        // `stop`: the answer ends before the first stop string, with finish_reason "stop".
        let whole = try referenceAnswer(model: ServerProcess.smolLM, question: question, image: nil, method: MethodChoice(), maxTokens: 40)
        let words = whole.split(separator: " ")
        let stop = " " + words[words.count / 2]
        let cut = try server.curl("/v1/chat/completions", body: chatBody(question, maxTokens: 40, extra: #","stop":["\#(stop)"]"#))
        #expect(cut.content == String(whole[..<whole.range(of: stop)!.lowerBound]), "\(cut.body)")
        #expect(((cut.json["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String) == "stop")
    }

    @Test("streaming: a role chunk, content deltas, a finish reason, usage on the last chunk, [DONE]")
    func streaming() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let body = chatBody("What is in the picture?", image: ServerProcess.image, maxTokens: 12, stream: true,
                            extra: #","stream_options":{"include_usage":true}"#)
        let reply = try server.curl("/v1/chat/completions", body: body, extra: ["-N"])
        #expect(reply.status == 200)
        let events = reply.body.split(separator: "\n").filter { $0.hasPrefix("data: ") }.map { $0.dropFirst(6) }
        #expect(events.last == "[DONE]")
        let chunks = events.dropLast().compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        #expect(chunks.count == events.count - 1)
        let deltas = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any]) }
        #expect(deltas.first?["role"] as? String == "assistant")
        let text = deltas.compactMap { $0["content"] as? String }.joined()
        let expected = try referenceAnswer(model: ServerProcess.testModel, question: "What is in the picture?", image: ServerProcess.image,
                                           method: MethodChoice(), maxTokens: 12)
        #expect(text == expected)
        let finishes = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String) }
        #expect(finishes.count == 1)
        let last = try #require(chunks.last)
        #expect((last["choices"] as? [Any])?.isEmpty == true)
        #expect((last["usage"].flatMap(intFields))?["prompt_tokens"] ?? 0 > 0)
        #expect((last["timings"] as? [String: Any])?["visual_tokens_in"] as? Int ?? 0 > 0)
    }

    @Test("bad requests get OpenAI's error body with a 4xx, and the server keeps serving")
    func badInput() throws {
        let server = try ServerProcess(["--max-body", "200000", "--api-key", "sekrit", "--max-pixels", "4000"])
        defer { server.stop() }
        let auth = ["Authorization: Bearer sekrit"]
        func post(_ body: String, headers: [String] = auth) throws -> ServerProcess.Reply {
            try server.curl("/v1/chat/completions", body: body, headers: headers)
        }
        let cases: [(String, String, Int, String?)] = [
            ("malformed JSON", #"{"messages": [ "#, 400, "invalid_json"),
            ("not an object", "[1, 2]", 400, "invalid_json"),
            ("messages of the wrong type", #"{"messages": "hi"}"#, 400, nil),
            ("content of the wrong type", #"{"messages": [{"role": "user", "content": 7}]}"#, 400, nil),
            ("max_tokens of the wrong type", #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": "ten"}"#, 400, nil),
            ("an unknown role", #"{"messages": [{"role": "wizard", "content": "hi"}]}"#, 400, nil),
            ("n = 2", chatBody("hi", extra: #","n":2"#), 400, nil),
            ("an unknown pruner", chatBody("hi", extra: #","fovea":{"prune":"nope"}"#), 400, "invalid_method"),
            ("an unknown pruner key", chatBody("hi", extra: #","fovea":{"prune":"hired:zz=1"}"#), 400, "invalid_method"),
            ("an unknown fovea key", chatBody("hi", extra: #","fovea":{"prun":"hired"}"#), 400, "invalid_method"),
            ("an unknown KV dtype", chatBody("hi", extra: #","fovea":{"kv_dtype":"f8"}"#), 400, "invalid_method"),
            ("an in-LLM cut and a KV filter at one layer",
             chatBody("hi", extra: #","fovea":{"prune":"fastv:k=3","kv":"avl:filter=on,kf=2"}"#), 400, "invalid_method"),
            ("an unknown model", chatBody("hi", extra: #","model":"gpt-5""#), 404, "model_not_found"),
            ("a remote image URL",
             #"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}"#, 400, "unsupported_image_url"),
            ("a data URI that is not base64",
             #"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}"#, 400, "invalid_image_url"),
            ("an undecodable image",
             #"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,aGVsbG8gd29ybGQ="}},{"type":"text","text":"hi"}]}]}"#, 400, nil),
            ("a file:// URL without --media-path",
             #"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"file:///etc/passwd"}}]}]}"#, 400, "invalid_image_url"),
            ("an image over --max-pixels", chatBody("What is it?", image: ServerProcess.image), 400, nil),
            ("an image token in the text with no image", chatBody("<image> what is it?"), 400, nil),
            ("a prompt beyond the context", chatBody(String(repeating: "word ", count: 3000)), 400, "context_length_exceeded"),
            ("a body over --max-body", chatBody(String(repeating: "x", count: 250_000)), 413, "body_too_large"),
        ]
        for (what, body, status, code) in cases {
            let reply = try post(body)
            #expect(reply.status == status, "\(what): \(reply.status) \(reply.body)")
            let error = reply.json["error"] as? [String: Any]
            #expect(error?["message"] is String && error?["type"] is String, "\(what): \(reply.body)")
            if let code { #expect(reply.errorCode == code, "\(what): \(reply.body)") }
        }
        // Too many images for the prompt: more image parts than the server takes.
        let image = #"{"type":"image_url","image_url":{"url":"data:image/png;base64,aGVsbG8="}}"#
        let many = try post(#"{"messages":[{"role":"user","content":[\#(Array(repeating: image, count: 9).joined(separator: ","))]}]}"#)
        #expect(many.status == 400 && many.errorCode == "too_many_images", "\(many.body)")
        // The key: missing and wrong are 401s; /health needs none.
        #expect(try post(chatBody("hi"), headers: []).status == 401)
        #expect(try post(chatBody("hi"), headers: ["Authorization: Bearer wrong"]).errorCode == "invalid_api_key")
        #expect(try server.curl("/health").status == 200)
        // Still serving.
        #expect(try post(chatBody("hi")).status == 200)
        #expect(server.stop() == 0)
    }

    @Test("file:// images only under --media-path, a symlink out of it refused")
    func mediaPath() throws {
        let dir = Fixtures.temporaryDirectory("media")
        let fm = FileManager.default
        try fm.copyItem(atPath: ServerProcess.image, toPath: dir + "/scene.png")
        try fm.createSymbolicLink(atPath: dir + "/escape.png", withDestinationPath: "/etc/hostname")
        let server = try ServerProcess(["--media-path", dir])
        defer { server.stop() }
        func ask(_ url: String) throws -> ServerProcess.Reply {
            try server.curl("/v1/chat/completions", body: #"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"\#(url)"}},{"type":"text","text":"hi"}]}],"max_tokens":2}"#)
        }
        #expect(try ask("file://\(dir)/scene.png").status == 200)
        #expect(try ask("file://\(dir)/escape.png").errorCode == "forbidden_path")
        #expect(try ask("file://\(dir)/../../etc/hostname").errorCode == "forbidden_path")
        #expect(try ask("file://\(dir)/missing.png").status == 404)
    }

    @Test("a second question about the same image skips the vision tower (counted in /metrics)")
    func visionCache() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let first = try server.curl("/v1/chat/completions", body: chatBody("What is it?", image: ServerProcess.image))
        let second = try server.curl("/v1/chat/completions", body: chatBody("And its color?", image: ServerProcess.image))
        #expect((first.json["timings"] as? [String: Any])?["vision_cache_hit"] as? Bool == false)
        #expect((second.json["timings"] as? [String: Any])?["vision_cache_hit"] as? Bool == true)
        // The template and the image's rows come from the first request's KV, and the answer is
        // the one a fresh generator gives.
        let details = (second.json["usage"] as? [String: Any])?["prompt_tokens_details"] as? [String: Int]
        #expect(details?["cached_tokens"] ?? 0 > 100, "\(second.body)")
        #expect(second.content == (try referenceAnswer(model: ServerProcess.testModel, question: "And its color?", image: ServerProcess.image,
                                                       method: MethodChoice(), maxTokens: 8)))
        #expect(try server.metric("fovea_vision_cache_hits_total") == 1)
        #expect(try server.metric("fovea_vision_cache_misses_total") == 1)
        // Another before-LLM method is another entry.
        let hired = try server.curl("/v1/chat/completions", body: chatBody("What is it?", image: ServerProcess.image, extra: #","fovea":{"prune":"hired:r=0.2"}"#))
        #expect((hired.json["timings"] as? [String: Any])?["vision_cache_hit"] as? Bool == false)
        #expect(try server.metric("vllm:prompt_tokens_total") ?? 0 > 0)
        #expect(try server.metric("vllm:num_requests_running") == 0)
    }

    @Test("a client that disconnects mid-stream frees its KV blocks; SIGTERM lets a running request finish",
          .enabled(if: ServerProcess.smolLMAvailable, "SmolLM2 GGUF not fetched: run scripts/fetch_models.sh"))
    func disconnectAndShutdown() throws {
        let server = try ServerProcess(model: ServerProcess.smolLM, ["--grace", "60"])
        defer { server.stop() }
        let long = chatBody("Write a long story about a lighthouse keeper.", maxTokens: 1500, stream: true)
        // curl gives up after 1.5 s, mid-answer.
        _ = try server.curl("/v1/chat/completions", body: long, maxTime: 1.5, extra: ["-N"])
        // The worker notices at its next token; poll until it has finished the job.
        var inUse: Double?, running: Double?
        for _ in 0..<100 {
            running = try server.metric("vllm:num_requests_running")
            inUse = try server.metric("fovea_kv_pool_bytes_in_use")
            if running == 0 && inUse == 0 { break }
            usleep(100_000)
        }
        #expect(running == 0 && inUse == 0)
        // It was cut off: neither finished nor counted as a success.
        #expect(try server.metric("vllm:request_success_total") == 0)
        #expect(try server.metric("fovea_kv_pool_bytes_held") ?? 0 > 0)

        // SIGTERM while a request runs: it completes, then the server exits 0.
        let group = DispatchGroup()
        nonisolated(unsafe) var finished: ServerProcess.Reply?
        group.enter()
        Thread {
            finished = try? server.curl("/v1/chat/completions", body: chatBody("Write a short story about a lighthouse keeper.", maxTokens: 200))
            group.leave()
        }.start()
        usleep(300_000)
        kill(server.process.processIdentifier, SIGTERM)
        group.wait()
        #expect(finished?.status == 200, "\(finished?.body ?? "no reply")")
        #expect((finished?.json["usage"].flatMap(intFields))?["completion_tokens"] ?? 0 >= 40, "\(finished?.body ?? "")")
        #expect(server.stop() == 0)
    }
}

@Suite("deployment manifests", .serialized)
struct DeploymentTests {
    @Test("every metric deploy/kubernetes names is exported by a running server")
    func metricsNamedAreExported() throws {
        let folder = ServerProcess.repo + "/deploy/kubernetes"
        var named = Set<String>()
        let pattern = try NSRegularExpression(pattern: #"\b(vllm:[a-z0-9_]+|fovea_[a-z0-9_]+)"#)
        for file in try FileManager.default.contentsOfDirectory(atPath: folder) {
            let text = try String(contentsOfFile: folder + "/" + file, encoding: .utf8)
            for m in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                named.insert(String(text[Range(m.range(at: 1), in: text)!]))
            }
        }
        #expect(named.isSuperset(of: ["vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc"]))
        let server = try ServerProcess()
        defer { server.stop() }
        // One request so the histograms have series.
        #expect(try server.curl("/v1/chat/completions", body: chatBody("hi", maxTokens: 2)).status == 200)
        let exported = Set(try server.curl("/metrics").body.split(separator: "\n").filter { !$0.hasPrefix("#") }
            .map { String($0.prefix { $0 != " " && $0 != "{" }) }
            .map { $0.replacingOccurrences(of: #"_(bucket|sum|count)$"#, with: "", options: .regularExpression) })
        for name in named.sorted() { #expect(exported.contains(name), "\(name) is named in deploy/kubernetes but not exported") }
        #expect(Set(ServerMetrics.names).isSubset(of: exported))
    }
}

@Suite("Server pieces")
struct ServerUnitTests {
    @Test("stop strings cut the answer, holding back what may begin one")
    func stopMatcher() {
        var m = StopMatcher(["STOP", "\n\n"])
        #expect(m.push("Hello S") == ("Hello ", false))
        #expect(m.push("TO") == ("", false))
        #expect(m.push("P and more") == ("", true))
        var n = StopMatcher(["end"])
        #expect(n.push("the e") == ("the ", false))
        #expect(n.push("gg") == ("egg", false))
        #expect(n.push("e", final: true) == ("e", false))
        var none = StopMatcher([])
        #expect(none.push("anything") == ("anything", false))
    }

    @Test("aliases parse over the server's defaults; bad ones are refused at start-up")
    func aliases() throws {
        let base = MethodChoice(prune: "full", kv: "h2o", kvDtype: "f16")
        let a = try MethodChoice(alias: "prune=hired:r=0.2;kv=avl", over: base)
        #expect(a == MethodChoice(prune: "hired:r=0.2", kv: "avl", kvDtype: "f16"))
        #expect(throws: FoveaError.self) { try MethodChoice(alias: "prune", over: base) }
        #expect(throws: FoveaError.self) { try MethodChoice(alias: "color=red", over: base) }
        let loaded = try LoadedModel.load(ServerProcess.testModel)
        #expect(throws: FoveaError.self) {
            try RequestPlanner(loaded: loaded, modelName: "m", defaults: MethodChoice(), aliases: ["x": MethodChoice(prune: "nope")],
                               media: try MediaLoader(mediaPath: nil), defaultMaxTokens: 8)
        }
    }

    @Test("the vision cache keeps to its byte bound, least recently used out first")
    func cacheBound() throws {
        let loaded = try LoadedModel.load(ServerProcess.testModel)
        let image = try loaded.requireProcessor()(ImageDecoder.decode(path: ServerProcess.image))
        let encoded = try Generator(model: loaded.model).encode([image], plan: .full)[0]
        let one = VisionFeatureCache.bytes(of: encoded)
        let cache = VisionFeatureCache(capacityBytes: one * 2 + one / 2)
        for k in ["a", "b"] { cache.store(encoded, for: .init(digest: k, method: "full")) }
        _ = cache.lookup(.init(digest: "a", method: "full"))
        cache.store(encoded, for: .init(digest: "c", method: "full"))
        #expect(cache.lookup(.init(digest: "b", method: "full")) == nil)
        #expect(cache.lookup(.init(digest: "a", method: "full")) != nil)
        #expect(cache.counts.entries == 2 && cache.counts.bytes <= cache.capacityBytes)
        #expect(cache.lookup(.init(digest: "a", method: "full"))?.features.toArray() == encoded.features.toArray())
    }
}
