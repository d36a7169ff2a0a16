import Foundation
import FoveaCore
import FoveaIO
import FoveaKV
import FoveaModels
import FoveaPruning

/// One question of an evaluation set, in data/eval's JSON-lines format: `image` (relative to the
/// file's folder), `question`, and either `answer` (exact match after normalisation) or
/// `answers` (up to ten human answers, VQA accuracy); `kind` groups the summary.
public struct EvalQuestion: Sendable, Equatable {
    public var image: String
    public var question: String
    public var answers: [String]
    public var vqaScored: Bool
    public var kind: String

    /// Reads and checks a whole file; every malformed line is named with its number.
    public static func load(path: String, limit: Int? = nil) throws -> [EvalQuestion] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw FoveaError.invalidFile(path: path, line: nil, reason: "cannot read the question file (missing, or not UTF-8)")
        }
        var out: [EvalQuestion] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if let limit, out.count >= limit { break }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            func bad(_ why: String) -> FoveaError { .invalidFile(path: path, line: n + 1, reason: why) }
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) as? [String: Any] else {
                throw bad("not a JSON object")
            }
            guard let image = obj["image"] as? String, !image.isEmpty else { throw bad("'image' (a path) is missing") }
            guard let question = obj["question"] as? String else { throw bad("'question' (text) is missing") }
            let kind = obj["kind"] as? String ?? "all"
            if let answer = obj["answer"] as? String {
                out.append(EvalQuestion(image: image, question: question, answers: [answer], vqaScored: false, kind: kind))
            } else if let answers = obj["answers"] as? [Any] {
                let texts = answers.compactMap { ($0 as? String) ?? (($0 as? [String: Any])?["answer"] as? String) }
                guard texts.count == answers.count, (1...10).contains(texts.count) else {
                    throw bad("'answers' must be 1–10 strings (or {\"answer\": …} objects), found \(answers.count) entries")
                }
                out.append(EvalQuestion(image: image, question: question, answers: texts, vqaScored: true, kind: kind))
            } else {
                throw bad("needs 'answer' (a string) or 'answers' (a list)")
            }
        }
        guard !out.isEmpty else { throw FoveaError.invalidFile(path: path, line: nil, reason: "no questions") }
        return out
    }

    public func score(_ prediction: String) -> Double {
        vqaScored ? AnswerScoring.vqa(prediction, answers) : AnswerScoring.exact(prediction, answers[0])
    }
}

/// How closely a method follows the full model on one question.
public struct Fidelity: Sendable, Equatable {
    /// The method's greedy answer is the full model's, token for token.
    public var agrees: Bool
    /// Mean over the full model's answer positions of KL(full ‖ method) between next-token
    /// distributions, the method teacher-forced along the full model's answer (nats).
    public var meanKL: Double
    /// The first answer position where the method's greedy token differs; nil when it never does.
    public var firstDivergence: Int?

    /// KL(softmax(p) ‖ softmax(q)) in nats, in double precision.
    public static func kl(_ p: [Float], _ q: [Float]) -> Double {
        func logSoftmax(_ x: [Float]) -> [Double] {
            let m = Double(x.max() ?? 0)
            let lse = m + log(x.reduce(0.0) { $0 + exp(Double($1) - m) })
            return x.map { Double($0) - lse }
        }
        let lp = logSoftmax(p), lq = logSoftmax(q)
        var total = 0.0
        for i in lp.indices { total += exp(lp[i]) * (lp[i] - lq[i]) }
        return max(0, total)
    }
}

/// What one question produced.
public struct EvalResult: Sendable {
    public var index: Int
    public var question: EvalQuestion
    public var prediction: String
    public var tokens: [Int]
    public var score: Double
    public var statistics: RunStatistics
    /// Against the full model; nil when the method is the full model or fidelity was not asked for.
    public var fidelity: Fidelity? = nil

    /// One line of results.jsonl.
    public func json() throws -> Data {
        var fields: [String: Any] = [
            "index": index, "image": question.image, "question": question.question, "kind": question.kind,
            "answers": question.answers, "prediction": prediction, "correct": score == 1, "score": score,
            "visual_tokens_in": statistics.visualTokensIn, "visual_tokens_out": statistics.visualTokensOut,
            "kv_bytes": statistics.kvBytesAllocated, "ttft_ms": statistics.timeToFirstToken * 1000,
            "decode_ms_per_token": statistics.decodeMillisecondsPerToken,
        ]
        if let f = fidelity {
            fields["agrees_with_full"] = f.agrees
            fields["kl_to_full"] = f.meanKL
            fields["first_divergence"] = f.firstDivergence.map { $0 as Any } ?? NSNull()
        }
        return try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
    }
}

/// Mean score with a 95% interval, normal approximation (mean ± 1.96·s/√n, s the sample
/// standard deviation): for 500 right-or-wrong answers at 90% that is ±2.6 points.
public struct AccuracyEstimate: Sendable, Equatable {
    public var mean: Double
    public var halfWidth: Double
    public var count: Int

    public init(scores: [Double]) {
        count = scores.count
        mean = scores.isEmpty ? 0 : scores.reduce(0, +) / Double(scores.count)
        guard scores.count > 1 else { halfWidth = 0; return }
        let m = mean
        let variance = scores.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(scores.count - 1)
        halfWidth = 1.96 * (variance / Double(scores.count)).squareRoot()
    }

    var json: [String: Any] { ["accuracy": mean, "ci95": [max(0, mean - halfWidth), min(1, mean + halfWidth)], "n": count] }
}

/// Runs an evaluation set through one model and one method configuration.
public struct Evaluator {
    public let loaded: LoadedModel
    public let processor: ImageProcessor
    public let dataFolder: String
    public var maxNewTokens = 8
    public var pruning = PruningPlan.full
    public var kv = KVPlan.full
    /// Also run the full model on each question and measure agreement and KL against it.
    public var fidelity = true
    /// The full model's answers and step logits by question index, shared across the cells of a sweep.
    public var references: ReferenceCache? = nil

    var isFull: Bool { pruning.spec.name == "full" && kv.spec.name == "full" && kv.storage == .f32 }

    public init(loaded: LoadedModel, processor: ImageProcessor, dataFolder: String) {
        self.loaded = loaded
        self.processor = processor
        self.dataFolder = dataFolder
    }

    /// Greedy answers, one question at a time; `progress` sees each result as it lands.
    public func run(_ questions: [EvalQuestion], progress: (EvalResult) -> Void = { _ in }) throws -> [EvalResult] {
        let tokenizer = try loaded.requireTokenizer()
        let generator = Generator(model: loaded.model)
        let stops = Set(loaded.model.config.text.eosTokenIds)
        var results: [EvalResult] = []
        for (i, q) in questions.enumerated() {
            let path = q.image.hasPrefix("/") ? q.image : (dataFolder as NSString).appendingPathComponent(q.image)
            let image = try processor(try ImageDecoder.decode(path: path))
            let ids = try tokenizer.encodeChecked(loaded.template.render([ChatMessage(.user, q.question)], images: 1))
            var request = GenerationRequest(tokens: ids, images: [image], maxNewTokens: maxNewTokens,
                                            stopTokens: stops, pruning: pruning, kv: kv)
            let measure = fidelity && !isFull
            request.keepStepLogits = measure || (isFull && references != nil)
            let out = try generator.generate(request)
            if isFull, let references { references.store(i, out) }
            let answerTokens = out.tokens.filter { !stops.contains($0) }
            let prediction = tokenizer.decode(answerTokens, skipSpecial: true).trimmingCharacters(in: .whitespacesAndNewlines)
            var r = EvalResult(index: i, question: q, prediction: prediction, tokens: out.tokens, score: q.score(prediction),
                               statistics: out.statistics)
            if measure { r.fidelity = try compare(request, method: out, generator: generator, index: i) }
            results.append(r)
            progress(r)
        }
        return results
    }

    /// The full model's greedy answer, then KL along it; the method is rerun teacher-forced only
    /// when its own answer left the full model's path (otherwise its logits are the forced ones).
    func compare(_ request: GenerationRequest, method: GenerationResult, generator: Generator, index: Int) throws -> Fidelity {
        let reference: GenerationResult
        if let cached = references?.result(index) {
            reference = cached
        } else {
            var full = request
            full.pruning = .full
            full.kv = .full
            reference = try generator.generate(full)
            references?.store(index, reference)
        }
        var forcedLogits = method.stepLogits
        var divergence: Int? = nil
        if method.tokens != reference.tokens {
            let common = min(method.tokens.count, reference.tokens.count)
            divergence = (0..<common).first { method.tokens[$0] != reference.tokens[$0] } ?? common
            var forced = request
            forced.forcedTokens = reference.tokens
            forcedLogits = try generator.generate(forced).stepLogits
        }
        let n = min(reference.stepLogits.count, forcedLogits.count)
        let kl = n == 0 ? 0 : (0..<n).reduce(0.0) { $0 + Fidelity.kl(reference.stepLogits[$1], forcedLogits[$1]) } / Double(n)
        return Fidelity(agrees: divergence == nil, meanKL: kl, firstDivergence: divergence)
    }

    /// summary.json: accuracy overall and per kind with 95% intervals, the method, medians of
    /// the speed and memory figures.
    public static func summary(_ results: [EvalResult], model: String, method: String, kvMethod: String) throws -> Data {
        var byKind: [String: [Double]] = [:]
        for r in results { byKind[r.question.kind, default: []].append(r.score) }
        func median(_ xs: [Double]) -> Double {
            let s = xs.sorted()
            return s.isEmpty ? 0 : s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        var fields: [String: Any] = [
            "model": model, "method": method, "kv_method": kvMethod, "questions": results.count,
            "overall": AccuracyEstimate(scores: results.map(\.score)).json,
            "by_kind": byKind.mapValues { AccuracyEstimate(scores: $0).json },
            "visual_tokens_in": results.reduce(0) { $0 + $1.statistics.visualTokensIn },
            "visual_tokens_out": results.reduce(0) { $0 + $1.statistics.visualTokensOut },
            "visual_tokens_nominal": results.reduce(0) { $0 + $1.statistics.visualTokensNominal },
            "median_ttft_ms": median(results.map { $0.statistics.timeToFirstToken * 1000 }),
            "median_decode_ms_per_token": median(results.map(\.statistics.decodeMillisecondsPerToken)),
            "median_kv_bytes": median(results.map { Double($0.statistics.kvBytesAllocated) }),
            "peak_rss_bytes": results.map(\.statistics.peakResidentBytes).max() ?? 0,
            "machine": Machine.description,
        ]
        let measured = results.compactMap(\.fidelity)
        if !measured.isEmpty {
            fields["agreement_with_full"] = Double(measured.filter(\.agrees).count) / Double(measured.count)
            fields["mean_kl_to_full"] = measured.reduce(0) { $0 + $1.meanKL } / Double(measured.count)
        }
        return try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .prettyPrinted])
    }
}

/// The full model's results by question index (answers and step logits), so a sweep runs the
/// full model once per question however many cells compare against it. With a file, every result
/// is appended as it lands and read back on the next run, so a resumed sweep (or a second process
/// running other cells of the same folder) does not rerun the full model. The file starts with a
/// fingerprint of the model and questions; a file made for other ones is started afresh.
public final class ReferenceCache: @unchecked Sendable {
    private var results: [Int: GenerationResult] = [:]
    private let lock = NSLock()
    private var file: FileHandle? = nil

    public init() {}

    /// Records: index, token count, tokens, step count, vocabulary, step logits — Int32 and
    /// Float32, little-endian. A record cut short by a killed process is dropped.
    public init(path: String, fingerprint: String) throws {
        let magic = Data(("fovea-references 1 " + fingerprint + "\n").utf8)
        if let data = FileManager.default.contents(atPath: path), data.starts(with: magic) {
            var at = magic.count
            var valid = at
            func int() -> Int? {
                guard at + 4 <= data.count else { return nil }
                defer { at += 4 }
                return Int(Int32(littleEndian: data.subdata(in: at..<at + 4).withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }))
            }
            func floats(_ n: Int) -> [Float]? {
                guard n >= 0, at + 4 * n <= data.count else { return nil }
                defer { at += 4 * n }
                return data.subdata(in: at..<at + 4 * n).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            }
            while let index = int(), let count = int(), (0...100_000).contains(count) {
                var tokens: [Int] = []
                for _ in 0..<count { guard let t = int() else { break }; tokens.append(t) }
                guard tokens.count == count, let steps = int(), let vocab = int(), (0...100_000).contains(steps),
                      (1...10_000_000).contains(vocab) else { break }
                var logits: [[Float]] = []
                for _ in 0..<steps { guard let row = floats(vocab) else { break }; logits.append(row) }
                guard logits.count == steps else { break }
                results[index] = GenerationResult(tokens: tokens, statistics: RunStatistics(), firstLogits: [], images: [],
                                                  stepLogits: logits)
                valid = at
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: UInt64(valid))
            try handle.seekToEnd()
            file = handle
        } else {
            guard FileManager.default.createFile(atPath: path, contents: magic), let handle = FileHandle(forWritingAtPath: path) else {
                throw FoveaError.invalidFile(path: path, line: nil, reason: "cannot write the full model's reference answers")
            }
            try handle.seekToEnd()
            file = handle
        }
    }

    deinit { try? file?.close() }

    /// How many questions have a stored reference.
    public var count: Int { lock.withLock { results.count } }

    func result(_ i: Int) -> GenerationResult? { lock.withLock { results[i] } }

    func store(_ i: Int, _ r: GenerationResult) {
        var slim = r
        slim.images = []   // the encoded images are large and not needed to compare
        slim.firstLogits = []
        lock.withLock {
            guard results[i] == nil else { return }
            results[i] = slim
            guard let file else { return }
            var record: [Int32] = [Int32(i), Int32(r.tokens.count)] + r.tokens.map { Int32($0) }
            record += [Int32(r.stepLogits.count), Int32(r.stepLogits.first?.count ?? 0)]
            var data = record.withUnsafeBytes { Data($0) }
            for row in r.stepLogits { row.withUnsafeBytes { data.append(contentsOf: $0) } }
            // A failed write only costs a rerun of the full model later; the answers are in memory.
            try? file.write(contentsOf: data)
        }
    }
}
