import Foundation
import FoveaCore
import FoveaIO
import FoveaKV
import FoveaModels
import FoveaPruning
import FoveaRuntime

/// Full and each cell on the same random-weight LLaVA-NeXT model (CLIP-L/336 + TinyLlama-1.1B
/// shapes; one 672×672 image → 2×2 grid → 2,928 visual tokens), interleaved run by run so
/// drift hits every cell alike; medians, with ratios to Full from this run.
func benchMethods(cells: [String], runs: Int, decodeSteps: Int, jsonPath: String?) throws {
    let configJSON = BenchShapes.config(llavaNext: true)
    let config = try ModelConfiguration(json: JSONConfig(path: "llava-next-tinyllama-shape", keyPath: "", raw: configJSON))
    let model = try VisionLanguageModel(config: config, weights: RandomWeights(seed: 7), name: "llava-next-tinyllama-shape (random)")
    var rng = SplitMix64(seed: 3)
    let pixels = Tensor(zeros: [5, 3, 336, 336])
    for i in 0..<pixels.count { pixels.data[i] = Float(rng.next() % 2000) / 1000 - 1 }
    let image = ImageInput(pixels: pixels, originalHeight: 672, originalWidth: 672)
    let prompt = [1] + Array(repeating: 100, count: 5) + [31999] + (0..<34).map { 200 + $0 }
    let plans = try (["full"] + cells.filter { $0 != "full" && $0 != "prune=full" }).map { try MethodCell($0) }
    let generator = Generator(model: model)
    var stats = [[RunStatistics]](repeating: [], count: plans.count)
    for r in 0..<(runs + 1) {
        // Round 0 warms page tables and caches with Full alone; it is not counted.
        for (i, plan) in plans.enumerated() where r > 0 || i == 0 {
            resetPeakRSS()
            let res = try generator.generate(GenerationRequest(tokens: prompt, images: [image], maxNewTokens: decodeSteps + 1,
                                                               pruning: plan.pruning, kv: plan.kv))
            let s = res.statistics
            print(String(format: "run %d%@ %@: visual %d, vision %.2f s (selection %.2f ms), prefill %.2f s, decode %.1f ms/token (attention %.1f), KV %.0f → %.0f MB",
                         r, r == 0 ? " (warm-up)" : "", plan.label, s.visualTokensOut, s.visionSeconds, s.selectionSeconds * 1000,
                         s.prefillSeconds, s.decodeMillisecondsPerToken, s.decodeAttentionSeconds * 1000 / Double(max(1, s.generatedTokens - 1)),
                         Double(s.kvBytesAfterPrefill) / 1e6, Double(s.kvBytesAllocated) / 1e6))
            fflush(nil)
            if r > 0 { stats[i].append(s) }
        }
    }
    func med(_ i: Int, _ f: (RunStatistics) -> Double) -> Double { median(stats[i].map(f)) }
    print("\n| method | visual tokens (nominal) | vision | selection / vision | TTFT | TTFT ×Full | decode ms/token | decode ×Full | attention / decode | KV after prefill | KV at end | KV ×Full | peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    var rows: [[String: Any]] = []
    let fullKV = med(0) { Double($0.kvBytesAllocated) }
    for (i, plan) in plans.enumerated() {
        let ttft = med(i) { $0.timeToFirstToken }, dec = med(i) { $0.decodeMillisecondsPerToken }
        let vision = med(i) { $0.visionSeconds }, sel = med(i) { $0.selectionSeconds }
        let attnShare = med(i) { $0.decodeAttentionSeconds / max($0.decodeSeconds, 1e-9) }
        let kvPrefill = med(i) { Double($0.kvBytesAfterPrefill) }, kvEnd = med(i) { Double($0.kvBytesAllocated) }
        let rss = med(i) { Double($0.peakResidentBytes) }
        let s = stats[i][0]
        print(String(format: "| %@ | %d (%d) | %.2f s | %.3f%% | %.2f s | %.2f× | %.1f | %.2f× | %.0f%% | %.1f MB | %.1f MB | %.2f | %.2f GB |",
                     plan.label, s.visualTokensOut, s.visualTokensNominal, vision, 100 * sel / vision, ttft,
                     med(0) { $0.timeToFirstToken } / ttft, dec, med(0) { $0.decodeMillisecondsPerToken } / dec, 100 * attnShare,
                     kvPrefill / 1e6, kvEnd / 1e6, kvEnd / fullKV, rss / 1e9))
        rows.append(["method": plan.label, "visual_tokens_out": s.visualTokensOut, "visual_tokens_nominal": s.visualTokensNominal,
                     "vision_s": vision, "selection_s": sel, "ttft_s": ttft, "prefill_s": med(i) { $0.prefillSeconds },
                     "decode_ms_per_token": dec, "decode_attention_share": attnShare, "kv_bytes_after_prefill": kvPrefill,
                     "kv_bytes_end": kvEnd, "peak_rss_bytes": rss])
    }
    // What a server gains: sequences of this prompt and length that fit in a 1 GiB KV pool.
    print("\nIn a 1 GiB KV pool, sequences of this prompt + \(decodeSteps + 1) tokens that fit at once (peak KV each):")
    for (i, plan) in plans.enumerated() {
        let peak = med(i) { Double(max($0.kvBytesAfterPrefill, $0.kvBytesAllocated)) }
        print(String(format: "- %@: %d (%.1f MB each)", plan.label, Int(Double(1 << 30) / peak), peak / 1e6))
    }
    if let jsonPath {
        try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys, .prettyPrinted]).write(to: URL(fileURLWithPath: jsonPath))
    }
}

/// Selective attention's cost against the number of attended rows: one decode query on
/// TinyLlama's attention shapes (32 heads, 4 KV heads, head dim 64) over `rows` cached rows.
func benchSelective(rows n: Int, runs: Int) {
    let heads = 32, kvHeads = 4, hd = 64
    let cache = KVCache(layers: 1, kvHeads: kvHeads, headDim: hd, capacity: n)
    var rng = SplitMix64(seed: 5)
    let k = (0..<(n * kvHeads * hd)).map { _ in Float(rng.next() % 2000) / 1000 - 1 }
    cache.layers[0].append(keys: k, values: k, rows: n, positions: (0..<Int32(n)).map { $0 }, origins: Array(repeating: .image, count: n)[...])
    let q = (0..<(heads * hd)).map { _ in Float(rng.next() % 2000) / 1000 - 1 }
    var out = [Float](repeating: 0, count: heads * hd), scratch = [Float](repeating: 0, count: heads * n)
    print("\n| attended rows | share | attention time | × time at 100% |")
    print("|---|---|---|---|")
    var full = 0.0
    for share in [1.0, 0.75, 0.5, 0.3, 0.1] {
        let m = Int(Double(n) * share)
        let list = (0..<m).map { $0 * n / max(m, 1) }
        cache.layers[0].apply(KVLayerDecision(keep: Array(repeating: nil, count: kvHeads), attend: Array(repeating: share == 1 ? nil : list, count: kvHeads)),
                              rope: RotaryEmbedding(headDim: hd, theta: 10000))
        var times: [Double] = []
        for _ in 0..<(runs * 20 + 5) {
            let t = now()
            Kernels.decodeAttention(q: q, layer: cache.layers[0], heads: heads, output: &out, scale: 0.125, queryPosition: Int32(n),
                                    window: nil, scratch: &scratch)
            times.append(now() - t)
        }
        let tm = median(Array(times.dropFirst(5)))
        if share == 1 { full = tm }
        print(String(format: "| %d | %.0f%% | %.3f ms | %.2f |", m, share * 100, tm * 1000, tm / full))
    }
}

/// Resets this process's peak RSS (VmHWM) so each cell reports its own peak: Linux's
/// clear_refs value 5 (since 4.0). The weights stay mapped, so every figure includes them.
func resetPeakRSS() {
    #if os(Linux)
    try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    #endif
}

/// The random-weight models the benchmarks build: CLIP ViT-L/14-336 + a Llama with
/// TinyLlama-1.1B's shapes, as LLaVA-1.5 (TinyLLaVA) or LLaVA-NeXT (672-px pinpoints).
enum BenchShapes {
    static func config(llavaNext: Bool) -> [String: Any] {
        var c: [String: Any] = [
            "model_type": llavaNext ? "llava_next" : "llava",
            "vision_config": ["model_type": "clip_vision_model", "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                              "num_attention_heads": 16, "image_size": 336, "patch_size": 14],
            "text_config": ["model_type": "llama", "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
                            "num_attention_heads": 32, "num_key_value_heads": 4, "vocab_size": 32000],
            "vision_feature_layer": -2, "image_token_index": 31999,
        ]
        if llavaNext { c["image_grid_pinpoints"] = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]] }
        return c
    }
}
