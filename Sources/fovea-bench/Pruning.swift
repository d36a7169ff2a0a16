import Foundation
import FoveaCore
import FoveaIO
import FoveaModels
import FoveaPruning
import FoveaRuntime

/// Full and each pruning spec on the same random-weight LLaVA-NeXT model and image, interleaved
/// run by run so drift hits every method alike; medians, with ratios to Full from this run.
func benchPruning(specs: [String], runs: Int, decodeSteps: Int, jsonPath: String?) throws {
    let configJSON: [String: Any] = [
        "model_type": "llava_next",
        "vision_config": ["model_type": "clip_vision_model", "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                          "num_attention_heads": 16, "image_size": 336, "patch_size": 14],
        "text_config": ["model_type": "llama", "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
                        "num_attention_heads": 32, "num_key_value_heads": 4, "vocab_size": 32000],
        "vision_feature_layer": -2, "image_token_index": 31999,
        "image_grid_pinpoints": [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
    ]
    let config = try ModelConfiguration(json: JSONConfig(path: "llava-next-tinyllama-shape", keyPath: "", raw: configJSON))
    let model = try VisionLanguageModel(config: config, weights: RandomWeights(seed: 7), name: "llava-next-tinyllama-shape (random)")
    var rng = SplitMix64(seed: 3)
    let pixels = Tensor(zeros: [5, 3, 336, 336])
    for i in 0..<pixels.count { pixels.data[i] = Float(rng.next() % 2000) / 1000 - 1 }
    let image = ImageInput(pixels: pixels, originalHeight: 672, originalWidth: 672)
    let prompt = [1] + Array(repeating: 100, count: 5) + [31999] + (0..<34).map { 200 + $0 }
    let plans = try specs.map { try PruningPlan(parsing: $0) }
    let generator = Generator(model: model)
    var stats = [[RunStatistics]](repeating: [], count: plans.count)
    for r in 0..<(runs + 1) {
        for (i, plan) in plans.enumerated() {
            resetPeakRSS()
            let res = try generator.generate(GenerationRequest(tokens: prompt, images: [image], maxNewTokens: decodeSteps + 1, pruning: plan))
            let s = res.statistics
            print(String(format: "run %d%@ %@: visual %d, vision %.2f s (selection %.2f ms), prefill %.2f s, decode %.1f ms/token",
                         r, r == 0 ? " (warm-up)" : "", plan.description, s.visualTokensOut, s.visionSeconds,
                         s.selectionSeconds * 1000, s.prefillSeconds, s.decodeMillisecondsPerToken))
            fflush(nil)
            if r > 0 { stats[i].append(s) }
        }
    }
    func med(_ i: Int, _ f: (RunStatistics) -> Double) -> Double { median(stats[i].map(f)) }
    print("\n| method | visual tokens (nominal) | vision | selection / vision | TTFT | TTFT speed-up | decode ms/token | decode speed-up | peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    var rows: [[String: Any]] = []
    for (i, plan) in plans.enumerated() {
        let ttft = med(i) { $0.timeToFirstToken }, dec = med(i) { $0.decodeMillisecondsPerToken }
        let vision = med(i) { $0.visionSeconds }, sel = med(i) { $0.selectionSeconds }
        let s = stats[i][0]
        let rss = med(i) { Double($0.peakResidentBytes) }
        print(String(format: "| %@ | %d (%d) | %.2f s | %.3f%% | %.2f s | %.2f× | %.1f | %.2f× | %.2f GB |", plan.description, s.visualTokensOut,
                     s.visualTokensNominal, vision, 100 * sel / vision, ttft, med(0) { $0.timeToFirstToken } / ttft, dec,
                     med(0) { $0.decodeMillisecondsPerToken } / dec, rss / 1e9))
        rows.append(["method": plan.description, "visual_tokens_out": s.visualTokensOut, "visual_tokens_nominal": s.visualTokensNominal,
                     "vision_s": vision, "selection_s": sel, "ttft_s": ttft, "prefill_s": med(i) { $0.prefillSeconds },
                     "decode_ms_per_token": dec, "peak_rss_bytes": rss])
    }
    if let jsonPath {
        try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys, .prettyPrinted]).write(to: URL(fileURLWithPath: jsonPath))
    }
}

/// Resets this process's peak RSS (VmHWM) so each method's run reports its own peak: Linux's
/// clear_refs value 5 (since 4.0). The weights stay mapped, so every figure includes them.
func resetPeakRSS() {
    #if os(Linux)
    try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    #endif
}
