import Foundation
import FoveaCore
import FoveaIO
import FoveaModels

/// What `fovea bench` measures: a model (loaded, or built from a named shape with random
/// weights), one image and a prompt of fixed length, run under Full and each method cell.
public struct BenchSubject {
    public let model: VisionLanguageModel
    public let name: String
    public let image: ImageInput?
    public let prompt: [Int]

    /// A model of a named shape with random float32 weights, refused before anything is
    /// allocated when its weights would not fit in this machine's memory.
    /// `convert` keeps the matrices in a stored format instead (each converted as it is built).
    public static func shape(_ shape: BenchShape, textTokens: Int, convert: QuantType? = nil,
                             activations: QuantizedMatrix.Activations = .float,
                             memory physical: Int = ProcessMemory.physicalBytes) throws -> BenchSubject {
        let config = try shape.configuration()
        let bytes = Int(Double(config.parameterEstimate) * (convert?.bytesPerWeight ?? 4))
        guard Double(bytes) < 0.85 * Double(physical) else {
            throw FoveaError.insufficientMemory(what: String(format: "--shape %@ (%.2f B %@ parameters)", shape.name,
                                                             Double(config.parameterEstimate) / 1e9, convert.map { "\($0)" } ?? "float32"),
                                                neededBytes: bytes, availableBytes: physical)
        }
        let random = RandomWeights(seed: 7)
        let weights: any TensorSource = try convert.map { try ConvertedWeights(random, to: $0, activations: activations) } ?? random
        let model = try VisionLanguageModel(config: config, weights: weights,
                                            name: "\(shape.name) (random weights\(convert.map { ", \($0)" } ?? ""))")
        let image = try shape.imageProcessor()(try noiseImage(side: shape.imageSide))
        return BenchSubject(model: model, name: "--shape \(shape.name): \(shape.summary)", image: image,
                            prompt: prompt(textTokens: textTokens, config: config, withImage: true))
    }

    /// A loaded model; vision models get `image` (or a noise image of `side` pixels) through
    /// their own preprocessor, text-only ones a text prompt alone.
    public static func loaded(_ loaded: LoadedModel, path: String, processor: ImageProcessor?, image: RGBImage?, side: Int,
                              textTokens: Int) throws -> BenchSubject {
        let m = loaded.model
        var input: ImageInput? = nil
        if m.config.vision != nil {
            guard let processor else { throw FoveaError.fileNotFound(path: (path as NSString).appendingPathComponent("preprocessor_config.json")) }
            input = try processor(try image ?? noiseImage(side: side))
        }
        return BenchSubject(model: m, name: path, image: input, prompt: prompt(textTokens: textTokens, config: m.config, withImage: input != nil))
    }

    /// `textTokens` ordinary tokens, with the image token after the first six when there is an image
    /// (where a chat template puts it). Ids are spread over the vocabulary, away from special ones.
    static func prompt(textTokens n: Int, config: ModelConfiguration, withImage: Bool) -> [Int] {
        let vocab = config.text.vocabSize
        let span = max(1, min(vocab - 200, 20_000))
        var ids = (0..<max(1, n)).map { 100 + ($0 * 37) % span }
        if let bos = config.text.bosTokenId, bos < vocab { ids[0] = bos }
        if withImage { ids.insert(config.imageTokenId, at: min(6, ids.count)) }
        return ids
    }

    static func noiseImage(side: Int) throws -> RGBImage {
        guard side > 0 && side <= 8192 else { throw FoveaError.invalidArgument(name: "--image-size", value: "\(side)", reason: "must be 1…8192 pixels") }
        var rng = SplitMix64(seed: 3)
        return RGBImage(width: side, height: side, pixels: (0..<(side * side * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
    }
}

/// Medians of one method cell's runs.
public struct BenchRow: Sendable {
    public let cell: String
    public let runs: [RunStatistics]

    public func median(_ f: (RunStatistics) -> Double) -> Double {
        let s = runs.map(f).sorted()
        guard !s.isEmpty else { return 0 }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
    public var vision: Double { median { $0.visionSeconds } }
    public var selection: Double { median { $0.selectionSeconds } }
    public var prefill: Double { median { $0.prefillSeconds } }
    public var visionCores: Double { median { $0.visionCores } }
    public var prefillCores: Double { median { $0.prefillCores } }
    public var decodeCores: Double { median { $0.decodeCores } }
    public var ttft: Double { median { $0.timeToFirstToken } }
    public var decodeMs: Double { median { $0.decodeMillisecondsPerToken } }
    public var attentionShare: Double { median { $0.decodeAttentionSeconds / max($0.decodeSeconds, 1e-9) } }
    public var kvAfterPrefill: Double { median { Double($0.kvBytesAfterPrefill) } }
    public var kvEnd: Double { median { Double($0.kvBytesAllocated) } }
    public var peakRSS: Double { median { Double($0.peakResidentBytes) } }
}

public struct BenchReport: Sendable {
    public let subject: String
    public let machine: String
    public let blas: String
    public let runs: Int
    public let decodeSteps: Int
    public let promptTokens: Int
    public let rows: [BenchRow]
    /// Prefill floating-point work of the Full row (weight products, causal attention, one LM-head row).
    public let fullPrefillFLOPs: Double

    public var markdown: String {
        guard let full = rows.first else { return "" }
        var md = "\(subject)  \nmachine: \(machine)  \nBLAS: \(blas)  \n"
        md += "prompt \(promptTokens) tokens (Full), \(decodeSteps) decode steps, medians of \(runs) runs after a warm-up run of Full; ×Full from this run\n\n"
        md += "| method | visual tokens (nominal) | vision | selection / vision | prefill | TTFT | TTFT ×Full | decode ms/token | decode ×Full | attention / decode | cores busy: vision / prefill / decode | KV after prefill | KV at end | KV ×Full | seqs in 1 GiB KV | peak RSS |\n"
        md += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        for r in rows {
            let s = r.runs[0]
            let seqs = Int(Double(1 << 30) / max(1, max(r.kvAfterPrefill, r.kvEnd)))
            md += String(format: "| %@ | %d (%d) | %.2f s | %.3f%% | %.2f s | %.2f s | %.2f× | %.1f | %.2f× | %.0f%% | %.2f / %.2f / %.2f | %.1f MB | %.1f MB | %.2f | %d | %.2f GB |\n",
                         r.cell, s.visualTokensOut, s.visualTokensNominal, r.vision, 100 * r.selection / max(r.vision, 1e-9), r.prefill,
                         r.ttft, full.ttft / max(r.ttft, 1e-9), r.decodeMs, full.decodeMs / max(r.decodeMs, 1e-9), 100 * r.attentionShare,
                         r.visionCores, r.prefillCores, r.decodeCores,
                         r.kvAfterPrefill / 1e6, r.kvEnd / 1e6, r.kvEnd / max(full.kvEnd, 1), seqs, r.peakRSS / 1e9)
        }
        md += String(format: "\nFull's prefill ran at %.1f GFLOP/s.\n", fullPrefillFLOPs / max(full.prefill, 1e-9) / 1e9)
        return md
    }

    public func json() throws -> Data {
        let full = rows.first
        let rowObjects: [[String: Any]] = rows.map { r in
            ["method": r.cell, "visual_tokens_out": r.runs[0].visualTokensOut, "visual_tokens_nominal": r.runs[0].visualTokensNominal,
             "vision_s": r.vision, "selection_s": r.selection, "prefill_s": r.prefill, "ttft_s": r.ttft, "decode_ms_per_token": r.decodeMs,
             "decode_attention_share": r.attentionShare,
             "vision_cores": r.visionCores, "prefill_cores": r.prefillCores, "decode_cores": r.decodeCores, "kv_bytes_after_prefill": r.kvAfterPrefill, "kv_bytes_end": r.kvEnd,
             "peak_rss_bytes": r.peakRSS, "ttft_x_full": (full?.ttft ?? 0) / max(r.ttft, 1e-9),
             "decode_x_full": (full?.decodeMs ?? 0) / max(r.decodeMs, 1e-9)]
        }
        let out: [String: Any] = ["subject": subject, "machine": machine, "blas": blas, "runs": runs, "decode_steps": decodeSteps,
                                  "prompt_tokens": promptTokens, "full_prefill_flops": fullPrefillFLOPs, "rows": rowObjects]
        return try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys, .prettyPrinted])
    }
}

public enum Bench {
    /// Full and every cell on one subject, interleaved run by run so a shared machine's drift
    /// hits every cell alike; one warm-up round of Full (page tables, caches) is not counted.
    public static func run(_ subject: BenchSubject, cells: [MethodCell], runs: Int, decodeSteps: Int,
                           progress: (String) -> Void = { _ in }) throws -> BenchReport {
        guard runs > 0 else { throw FoveaError.invalidArgument(name: "--runs", value: "\(runs)", reason: "must be positive") }
        guard decodeSteps >= 0 else { throw FoveaError.invalidArgument(name: "--decode", value: "\(decodeSteps)", reason: "must be zero or more") }
        let plans = try [MethodCell("full")] + cells.filter { $0.label != "full" }
        let generator = Generator(model: subject.model)
        var stats = [[RunStatistics]](repeating: [], count: plans.count)
        for round in 0...runs {
            for (i, plan) in plans.enumerated() where round > 0 || i == 0 {
                ProcessMemory.resetPeak()
                let request = GenerationRequest(tokens: subject.prompt, images: subject.image.map { [$0] } ?? [],
                                                maxNewTokens: decodeSteps + 1, stopTokens: [], pruning: plan.pruning, kv: plan.kv)
                let s = try generator.generate(request).statistics
                progress(String(format: "run %d%@ %@: visual %d, vision %.2f s (%.1f cores), prefill %.2f s (%.1f cores), decode %.1f ms/token (%.1f cores), KV %.1f → %.1f MB",
                                round, round == 0 ? " (warm-up)" : "", plan.label, s.visualTokensOut, s.visionSeconds, s.visionCores,
                                s.prefillSeconds, s.prefillCores, s.decodeMillisecondsPerToken, s.decodeCores,
                                Double(s.kvBytesAfterPrefill) / 1e6, Double(s.kvBytesAllocated) / 1e6))
                if round > 0 { stats[i].append(s) }
            }
        }
        let rows = zip(plans, stats).map { BenchRow(cell: $0.label, runs: $1) }
        let promptRows = rows[0].runs[0].promptTokens
        return BenchReport(subject: subject.name, machine: Machine.description, blas: BLAS.kernels, runs: runs,
                           decodeSteps: decodeSteps, promptTokens: promptRows, rows: rows,
                           fullPrefillFLOPs: prefillFLOPs(subject.model.config.text, rows: promptRows))
    }

    /// Floating-point work of a prefill over `rows` tokens: every weight product once per row,
    /// causal attention (QKᵀ and PV over on average (L+1)/2 keys), the LM head for the last row.
    public static func prefillFLOPs(_ t: TextConfiguration, rows: Int) -> Double {
        let l = Double(rows)
        let perRow = Double(t.hiddenSize * t.heads * t.headDim * 2 + t.hiddenSize * t.kvHeads * t.headDim * 2
            + 3 * t.hiddenSize * t.intermediateSize) * 2
        let attention = 2 * 2 * (l * (l + 1) / 2) * Double(t.heads * t.headDim)
        return Double(t.layers) * (perRow * l + attention) + 2 * Double(t.hiddenSize * t.vocabSize)
    }
}
