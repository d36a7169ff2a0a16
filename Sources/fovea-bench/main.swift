// fovea-bench: speed of the inference core on a model with TinyLLaVA's shapes
// (CLIP ViT-L/14-336 + a 1.1B Llama: hidden 2048, 22 layers, 32 heads, 4 KV heads),
// random weights generated in memory. Release build only:
//
//     swift run -c release fovea-bench [--runs N] [--decode N] [--json PATH]
//
// Reports medians of N runs (default 3) for: sgemm GFLOP/s (2048² square, the ceiling),
// vision encode, prefill of 576 image + 40 text tokens with its achieved GFLOP/s, decode
// ms/token, and peak RSS. Writes nothing but stdout (and --json if given).
//
//     fovea-bench --methods 'prune=hired:r=0.2;kv=avl;prune=hired:r=0.2 kv=avl;dtype=q8_0' [--decode N]
//         Full and each cell on a LLaVA-NeXT model with TinyLlama's shapes (672×672 → 2,928 visual
//         tokens): visual tokens, vision, selection, TTFT, decode, attention's share, KV bytes, peak RSS.
//     fovea-bench --selective ROWS
//         decode attention time against the share of ROWS cached rows attended.
import Foundation
import FoveaCore
import FoveaIO
import FoveaKV
import FoveaModels
import FoveaRuntime

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

var runs = 3, decodeSteps = 32, jsonPath: String? = nil, smolPath: String? = nil, methodCells: [String]? = nil, selectiveRows: Int? = nil
var args = CommandLine.arguments.dropFirst().makeIterator()
while let a = args.next() {
    switch a {
    case "--runs": runs = Int(args.next() ?? "") ?? runs
    case "--decode": decodeSteps = Int(args.next() ?? "") ?? decodeSteps
    case "--json": jsonPath = args.next()
    case "--smollm2": smolPath = args.next()
    case "--methods": methodCells = (args.next() ?? "").split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
    case "--selective": selectiveRows = Int(args.next() ?? "")
    default:
        FileHandle.standardError.write("usage: fovea-bench [--runs N] [--decode N] [--json PATH] [--smollm2 GGUF] [--methods 'prune=SPEC kv=SPEC dtype=T;...'] [--selective ROWS]\n".data(using: .utf8)!)
        exit(2)
    }
}
#if DEBUG
print("warning: debug build; run with `swift run -c release fovea-bench` for real figures")
#endif

// MARK: SmolLM2 (real GGUF), the anchors.md comparison: prefill 128 / 512 tokens, decode 128 tokens
if let smolPath {
    let smol = try VisionLanguageModel(gguf: smolPath)
    let ws = DecoderWorkspace()
    func prefill(_ n: Int) throws -> Double {
        let seq = try smol.embed(tokens: (0..<n).map { 100 + $0 % 1000 }, images: [])
        let cache = smol.decoder.makeCache(capacity: n)
        let t = now()
        _ = try smol.decoder.forward(seq.embeddings, positions: seq.positions, origins: seq.origins, cache: cache, logits: .last, workspace: ws)
        return now() - t
    }
    _ = try prefill(64)
    var p128: [Double] = [], p512: [Double] = [], dec: [Double] = []
    for _ in 0..<runs {
        p128.append(try prefill(128))
        p512.append(try prefill(512))
        let gen = Generator(model: smol)
        let r = try gen.generate(GenerationRequest(tokens: [1, 9690, 198], maxNewTokens: 129))
        dec.append(r.statistics.decodeSeconds / 128)
    }
    print(String(format: "SmolLM2-135M Q4_1 GGUF (dequantised to f32): prefill 128: %.0f tok/s, prefill 512: %.0f tok/s, decode: %.1f ms/token (%.0f tok/s), peak RSS %.2f GB",
                 128 / median(p128), 512 / median(p512), median(dec) * 1000, 1 / median(dec), Double(ProcessMemory.peakResidentBytes()) / 1e9))
    exit(0)
}

// MARK: methods: LLaVA-NeXT layout, CLIP-L/336 + TinyLlama-1.1B shapes, one 672×672 image → 2×2 grid → 2,928 visual tokens
if let methodCells {
    do {
        try benchMethods(cells: methodCells, runs: runs, decodeSteps: decodeSteps, jsonPath: jsonPath)
    } catch {
        FileHandle.standardError.write("fovea-bench: \(error.localizedDescription)\n".data(using: .utf8)!)
        exit(1)
    }
    exit(0)
}
if let selectiveRows {
    benchSelective(rows: selectiveRows, runs: runs)
    exit(0)
}

// MARK: sgemm ceiling
let n = 2048
var rng = SplitMix64(seed: 1)
let a = Tensor(zeros: [n, n]), b = Tensor(zeros: [n, n]), c = Tensor(zeros: [n, n])
for i in 0..<(n * n) { a.data[i] = Float(rng.next() % 1000) / 1000; b.data[i] = Float(rng.next() % 1000) / 1000 }
BLAS.gemm(m: n, n: n, k: n, a: a.data, lda: n, b: b.data, ldb: n, c: c.data, ldc: n)   // warm-up
var gemmTimes: [Double] = []
for _ in 0..<max(runs, 3) {
    let t = now()
    BLAS.gemm(m: n, n: n, k: n, a: a.data, lda: n, b: b.data, ldb: n, c: c.data, ldc: n)
    gemmTimes.append(now() - t)
}
let sgemmGFLOPs = 2 * pow(Double(n), 3) / median(gemmTimes) / 1e9
print(String(format: "sgemm %d³: %.1f GFLOP/s (BLAS threads %d, cores %d)", n, sgemmGFLOPs, BLAS.threads, Parallel.cores))

// MARK: weight conversion at load
// bf16/f16 checkpoints are converted to float32 once, when loaded (BLAS wants float32);
// float32 ones are used in place from the memory map. This measures what converting costs.
func measureConversion() -> Double {
    let convertCount = 128 << 20   // 128 M elements = 256 MB of bf16
    let halfBuffer = UnsafeMutableRawPointer.allocate(byteCount: convertCount * 2, alignment: 64)
    halfBuffer.initializeMemory(as: UInt16.self, repeating: 0x3F80, count: convertCount)
    let converted = Tensor(zeros: [convertCount])
    var convertTimes: [Double] = []
    for _ in 0..<3 {
        let t = now()
        Convert.toFloat(halfBuffer, dtype: .bf16, count: convertCount, into: converted.data)
        convertTimes.append(now() - t)
    }
    halfBuffer.deallocate()
    return Double(convertCount) / median(convertTimes) / 1e9
}
let convertRate = measureConversion()
print(String(format: "bf16 → f32 at load: %.2f G elements/s (a 1.4 B-parameter model: %.1f s)", convertRate, 1.4 / convertRate))

// MARK: model
let configJSON = BenchShapes.config(llavaNext: false)
let t0 = now()
let config = try ModelConfiguration(json: JSONConfig(path: "tinyllava-shape", keyPath: "", raw: configJSON))
let model = try VisionLanguageModel(config: config, weights: RandomWeights(seed: 7), name: "tinyllava-shape (random)")
print(String(format: "model built in %.1f s: %@", now() - t0,
             model.parameterCounts.map { "\($0.0) \($0.1.formatted())" }.joined(separator: ", ")))

let pixels = Tensor(zeros: [1, 3, 336, 336])
for i in 0..<pixels.count { pixels.data[i] = Float(rng.next() % 2000) / 1000 - 1 }
let image = ImageInput(pixels: pixels, originalHeight: 336, originalWidth: 336)
let prompt = [1] + Array(repeating: 100, count: 5) + [31999] + (0..<34).map { 200 + $0 }   // 40 text tokens + image

// MARK: timings
var visionTimes: [Double] = [], prefillTimes: [Double] = [], decodeTimes: [Double] = []
var promptLength = 0
let workspace = DecoderWorkspace()
for r in 0..<(runs + 1) {   // first run warms caches and page tables; not counted
    let tv = now()
    let encoded = try model.encode(image)
    let vision = now() - tv
    let seq = try model.embed(tokens: prompt, images: [encoded])
    promptLength = seq.count
    let cache = model.decoder.makeCache(capacity: promptLength + decodeSteps)
    let tp = now()
    var logits = try model.decoder.forward(seq.embeddings, positions: seq.positions, origins: seq.origins, cache: cache,
                                           logits: .last, workspace: workspace)
    let prefill = now() - tp
    let step = Tensor(zeros: [1, config.text.hiddenSize])
    let td = now()
    for _ in 0..<decodeSteps {
        let next = Sampler.argmax(logits.data, count: config.text.vocabSize)
        try model.decoder.embed(token: next, into: step.data)
        logits = try model.decoder.forward(step, origins: [.textAfter], cache: cache, logits: .last, workspace: workspace)
    }
    let decode = (now() - td) / Double(decodeSteps)
    print(String(format: "run %d%@: vision %.3f s, prefill %.3f s (%d tokens), decode %.1f ms/token",
                 r, r == 0 ? " (warm-up)" : "", vision, prefill, promptLength, decode * 1000))
    if r > 0 { visionTimes.append(vision); prefillTimes.append(prefill); decodeTimes.append(decode) }
}

// Prefill FLOPs: every weight product once per token, causal attention (QKᵀ and PV over
// on average L/2 keys), and the LM head for the last row only.
let tc = config.text
let L = Double(promptLength)
let perTokenMatmul = Double(tc.hiddenSize * (tc.heads * tc.headDim) * 2 + tc.hiddenSize * (tc.kvHeads * tc.headDim) * 2
    + 3 * tc.hiddenSize * tc.intermediateSize) * 2
let attention = 2 * 2 * (L * (L + 1) / 2) * Double(tc.heads * tc.headDim)
let prefillFLOPs = Double(tc.layers) * (perTokenMatmul * L + attention) + 2 * Double(tc.hiddenSize * tc.vocabSize)
let prefillGFLOPs = prefillFLOPs / median(prefillTimes) / 1e9
let rss = ProcessMemory.peakResidentBytes()

print("")
print("| figure | median of \(runs) |")
print("|---|---|")
print(String(format: "| vision encode (1 × 336², 23 of 24 layers) | %.3f s |", median(visionTimes)))
print(String(format: "| prefill, %d tokens (576 image + %d text) | %.3f s (%.0f tok/s) |", promptLength, promptLength - 576,
             median(prefillTimes), L / median(prefillTimes)))
print(String(format: "| time to first token (vision + prefill) | %.3f s |", median(visionTimes) + median(prefillTimes)))
print(String(format: "| decode | %.1f ms/token |", median(decodeTimes) * 1000))
print(String(format: "| prefill achieved | %.0f GFLOP/s (%.0f%% of sgemm) |", prefillGFLOPs, 100 * prefillGFLOPs / sgemmGFLOPs))
print(String(format: "| sgemm 2048³, same run | %.0f GFLOP/s |", sgemmGFLOPs))
print(String(format: "| peak RSS | %.2f GB |", Double(rss) / 1e9))
print(String(format: "| bf16 → f32 conversion at load | %.2f G elements/s |", convertRate))

if let jsonPath {
    let out: [String: Double] = [
        "sgemm_gflops": sgemmGFLOPs, "vision_s": median(visionTimes), "prefill_s": median(prefillTimes),
        "decode_ms_per_token": median(decodeTimes) * 1000, "bf16_convert_gelem_per_s": convertRate, "prefill_gflops": prefillGFLOPs, "peak_rss_bytes": Double(rss),
    ]
    try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys, .prettyPrinted]).write(to: URL(fileURLWithPath: jsonPath))
}
