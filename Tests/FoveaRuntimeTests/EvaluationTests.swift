import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import FoveaIO
import FoveaModels
import FoveaPruning
@testable import FoveaRuntime
import FoveaTestSupport

@Suite("Answer normalisation and scoring (the VQA evaluator's rules)")
struct AnswerScoringTests {
    @Test("punctuation, number words, articles and contractions", arguments: [
        ("Two", "2"), ("the cat.", "cat"), ("dont", "don't"), ("Yes!", "yes"), ("3.5", "3.5"), ("1,000", "1000"),
        ("red-blue", "red blue"), ("a b - c", "b c"), ("  A Red Circle.\n", "red circle"), ("none", "0"),
        ("it's (maybe) ten", "it's maybe 10"), ("x;y", "x y"), ("end.", "end"), ("hes", "he's"),
    ])
    func normalize(_ raw: String, _ expected: String) {
        #expect(AnswerScoring.normalize(raw) == expected, "\(raw.debugDescription)")
    }

    @Test("exact match after normalisation")
    func exact() {
        #expect(AnswerScoring.exact("Two.", "2") == 1)
        #expect(AnswerScoring.exact("circle", "square") == 0)
    }

    @Test("ten human answers: min(1, matches ÷ 3) over the leave-one-out subsets")
    func vqa() {
        let refs = Array(repeating: "two", count: 3) + Array(repeating: "3", count: 7)
        #expect(abs(AnswerScoring.vqa("2", refs) - 0.9) < 1e-12)      // (3 · 2/3 + 7 · 1) / 10
        #expect(AnswerScoring.vqa("three", refs) == 1)
    }

    @Test("one matching answer out of ten scores 0.3")
    func single() {
        // Left out itself: 0 matches among the other nine; left out any other: 1 match → 1/3. (0 + 9 · 1/3) / 10.
        #expect(abs(AnswerScoring.vqa("1", ["1"] + Array(repeating: "2", count: 9)) - 0.3) < 1e-12)
    }

    @Test("95% interval: 450 of 500 right is 90% ± 2.6 points")
    func interval() {
        let e = AccuracyEstimate(scores: Array(repeating: 1, count: 450) + Array(repeating: 0, count: 50))
        #expect(e.mean == 0.9 && abs(e.halfWidth - 1.96 * (0.9 * 0.1 / 499).squareRoot()) < 1e-12)
        #expect(abs(e.halfWidth - 0.026) < 0.001)
    }
}

@Suite("Evaluation set files and runs")
struct EvaluatorTests {
    func write(_ text: String) -> String {
        let path = Fixtures.temporaryDirectory("eval") + "/q.jsonl"
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    @Test("malformed lines are named by number; answers lists are VQA-scored")
    func loading() throws {
        let good = try EvalQuestion.load(path: write("""
            {"image": "a.png", "question": "Q?", "answer": "2", "kind": "count"}

            {"image": "b.png", "question": "Q?", "answers": ["x", {"answer": "y"}]}
            """))
        #expect(good.count == 2 && !good[0].vqaScored && good[1].vqaScored && good[1].answers == ["x", "y"] && good[1].kind == "all")
        for (text, needle) in [("{\"image\": \"a.png\", \"question\": \"Q\"}", ":1: needs 'answer'"),
                               ("\n[1, 2]", ":2: not a JSON object"),
                               ("{\"question\": \"Q\", \"answer\": \"a\"}", "'image'"),
                               ("{\"image\": \"a\", \"question\": \"Q\", \"answers\": []}", "1–10"),
                               ("", "no questions")] {
            let error = #expect(throws: (any Error).self) { try EvalQuestion.load(path: write(text)) }
            #expect(error?.localizedDescription.contains(needle) == true, "\(String(describing: error))")
        }
    }

    @Test("the small test model answers five held-out questions; the summary is well formed")
    func run() throws {
        let folder = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().appendingPathComponent("models/fovea-test-llava-small").path
        let data = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().appendingPathComponent("data/eval/questions.jsonl").path
        let questions = try EvalQuestion.load(path: data, limit: 5)
        let evaluator = Evaluator(loaded: try LoadedModel.load(folder), processor: try ImageProcessor(directory: folder),
                                  dataFolder: (data as NSString).deletingLastPathComponent)
        var seen = 0
        let results = try evaluator.run(questions) { _ in seen += 1 }
        #expect(results.count == 5 && seen == 5)
        #expect(results.allSatisfy { !$0.prediction.isEmpty && $0.statistics.visualTokensOut > 0 && ($0.score == 0 || $0.score == 1) })
        let line = try JSONSerialization.jsonObject(with: results[0].json()) as? [String: Any]
        let keys = Set(line?.keys.map { $0 } ?? [])
        #expect(keys.isSuperset(of: ["answers", "prediction", "correct", "score", "visual_tokens_out", "kv_bytes", "ttft_ms", "decode_ms_per_token"]))
        let summary = try JSONSerialization.jsonObject(with: Evaluator.summary(results, model: folder, method: "full", kvMethod: "full")) as? [String: Any]
        let overall = summary?["overall"] as? [String: Any]
        #expect((overall?["n"] as? Int) == 5 && (summary?["by_kind"] as? [String: Any])?.isEmpty == false)
    }

    @Test("fidelity: the full model against itself agrees with KL 0; a 10% HiRED cut is measured along the full answer")
    func fidelity() throws {
        let folder = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().appendingPathComponent("models/fovea-test-llava-small").path
        let data = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().appendingPathComponent("data/eval/questions.jsonl").path
        let questions = try EvalQuestion.load(path: data, limit: 4)
        let loaded = try LoadedModel.load(folder)
        let processor = try ImageProcessor(directory: folder)
        var evaluator = Evaluator(loaded: loaded, processor: processor, dataFolder: (data as NSString).deletingLastPathComponent)
        let generator = Generator(model: loaded.model)
        let image = try processor(try ImageDecoder.decode(path: (data as NSString).deletingLastPathComponent + "/" + questions[0].image))
        let ids = try #require(loaded.tokenizer).encode(loaded.template.render([ChatMessage(.user, questions[0].question)], images: 1))
        var request = GenerationRequest(tokens: ids, images: [image], maxNewTokens: 4, stopTokens: Set(loaded.model.config.text.eosTokenIds))
        request.keepStepLogits = true
        let full = try generator.generate(request)
        #expect(full.stepLogits.count == full.tokens.count && full.stepLogits[0] == full.firstLogits)
        let same = try evaluator.compare(request, method: full, generator: generator, index: 0)
        #expect(same == Fidelity(agrees: true, meanKL: 0, firstDivergence: nil))

        evaluator.pruning = try PruningPlan(parsing: "hired:r=0.1")
        let results = try evaluator.run(questions)
        let measured = results.compactMap(\.fidelity)
        #expect(measured.count == 4 && measured.allSatisfy { $0.meanKL > 0 && $0.agrees == ($0.firstDivergence == nil) })
        let summary = try JSONSerialization.jsonObject(with: Evaluator.summary(results, model: folder, method: "hired", kvMethod: "full")) as? [String: Any]
        #expect(summary?["agreement_with_full"] is Double && summary?["mean_kl_to_full"] is Double)
    }

    @Test("KL of a distribution with itself is 0; of two different ones, positive and as computed by hand")
    func kl() {
        #expect(Fidelity.kl([1, 2, 3], [1, 2, 3]) == 0)
        // p = softmax(0, log 3) = (1/4, 3/4); q = (1/2, 1/2): KL = 1/4·ln(1/2) + 3/4·ln(3/2).
        let want = 0.25 * log(0.5) + 0.75 * log(1.5)
        #expect(abs(Fidelity.kl([0, Float(log(3.0))], [0, 0]) - want) < 1e-6)
    }

    @Test("a sweep runs a grid, reuses finished cells, and writes a report and SVG plots that parse")
    func sweep() throws {
        let folder = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().appendingPathComponent("models/fovea-test-llava-small").path
        let data = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().appendingPathComponent("data/eval/questions.jsonl").path
        let out = Fixtures.temporaryDirectory("sweep")
        let gridPath = out + "/grid.txt"
        try "# two cells\nprune=hired:r=0.2\nkv=h2o:heavy=0.25,recent=0.25 dtype=q8_0   # KV\n".write(toFile: gridPath, atomically: true, encoding: .utf8)
        let grid = try Sweep.loadGrid(path: gridPath)
        #expect(grid == ["full", "prune=hired:r=0.2", "kv=h2o:heavy=0.25,recent=0.25 dtype=q8_0"])
        let questions = try EvalQuestion.load(path: data, limit: 2)
        let evaluator = Evaluator(loaded: try LoadedModel.load(folder), processor: try ImageProcessor(directory: folder),
                                  dataFolder: (data as NSString).deletingLastPathComponent)
        let sweep = Sweep(evaluator: evaluator, cells: grid, directory: out)
        var reused: [Bool] = []
        try sweep.run(questions, onCell: { _, r in reused.append(r) })
        try sweep.run(questions, onCell: { _, r in reused.append(r) })
        #expect(reused == [false, false, false, true, true, true])

        // The full model's answers were kept on disk: a fresh process reads them back, a record cut
        // short is dropped, and a file made for other questions is not trusted.
        let referencesPath = out + "/" + Sweep.referencesFile
        let fingerprint = sweep.fingerprint(questions)
        let stored = try ReferenceCache(path: referencesPath, fingerprint: fingerprint)
        #expect(stored.count == 2)
        for i in 0..<2 {
            let r = try #require(stored.result(i))
            #expect(!r.tokens.isEmpty && r.stepLogits.count == r.tokens.count)
            #expect(r.stepLogits.allSatisfy { $0.count == evaluator.loaded.model.config.text.vocabSize })
        }
        let size = try #require(FileManager.default.attributesOfItem(atPath: referencesPath)[.size] as? Int)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: referencesPath))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([7, 0, 0, 0, 3, 0]))   // a killed writer's half record
        try handle.close()
        #expect(try ReferenceCache(path: referencesPath, fingerprint: fingerprint).count == 2)
        #expect(try FileManager.default.attributesOfItem(atPath: referencesPath)[.size] as? Int == size)
        #expect(try ReferenceCache(path: referencesPath, fingerprint: fingerprint + " other").count == 0)
        try sweep.report(questions: 2, command: "test", machine: "elsewhere")
        let report = try String(contentsOfFile: out + "/report.md", encoding: .utf8)
        #expect(report.contains("| prune=hired:r=0.2 | ") && report.contains("| full | 100.0% | 100.0% |"))
        // Each cell records where it ran; the report names that machine, not the one writing it.
        #expect(report.contains("Machine: \(Machine.description)\n") && !report.contains("elsewhere"))
        let rows = try sweep.rows()
        var mixed = rows
        mixed[0].machine = nil
        #expect(Sweep.machineLine(mixed, reporting: "here")
                == "Machines the cells ran on: not recorded (1 cell); \(Machine.description) (2 cells). Report written on: here")
        for name in ["accuracy_vs_kept.svg", "accuracy_vs_kv.svg", "ttft_vs_kept.svg"] {
            let parser = XMLParser(data: try Data(contentsOf: URL(fileURLWithPath: out + "/" + name)))
            #expect(parser.parse(), "\(name) is not well-formed XML")
        }
        try "prune=hired:r=0.2\nprune=nonsense\n".write(toFile: gridPath, atomically: true, encoding: .utf8)
        let error = #expect(throws: (any Error).self) { try Sweep.loadGrid(path: gridPath) }
        #expect(error?.localizedDescription.contains("grid.txt:2") == true)
    }
}

@Suite("Report plots")
struct SVGPlotTests {
    /// The number right after each occurrence of `marker`, in document order.
    static func numbers(_ svg: String, after marker: String) -> [Double] {
        svg.components(separatedBy: marker).dropFirst().compactMap { chunk in
            Double(chunk.prefix { "0123456789.-".contains($0) })
        }
    }

    @Test("interval bars: one per point, inside the axes, and the y range widened to hold them")
    func intervals() throws {
        let points = [(x: 0.1, y: 0.36), (x: 0.2, y: 0.35), (x: 0.4, y: 0.34)]
        let bare = SVGPlot(title: "t", xLabel: "x", yLabel: "y", series: [.init(name: "a", points: points)]).render()
        let barred = SVGPlot(title: "t", xLabel: "x", yLabel: "y", series: [
            .init(name: "a", points: points, intervals: [0.30...0.42, 0.29...0.41, 0.28...0.40]),
        ]).render()
        #expect(!bare.contains("stroke-opacity"))
        #expect(barred.components(separatedBy: "stroke-opacity=\"0.55\"").count - 1 == 3)
        // y tick labels: without bars they stay within 0.34–0.36 (± padding); with bars they span 0.30–0.40 at least.
        let yTicks = { (svg: String) in Self.numbers(svg, after: "text-anchor=\"end\">") }
        #expect((yTicks(bare).min() ?? 0) >= 0.33 && (yTicks(bare).max() ?? 1) <= 0.37)
        #expect((yTicks(barred).min() ?? 1) <= 0.30 && (yTicks(barred).max() ?? 0) >= 0.40)
        // An interval list that does not match the points is dropped, not misaligned.
        let mismatched = SVGPlot(title: "t", xLabel: "x", yLabel: "y", series: [.init(name: "a", points: points, intervals: [0...1])]).render()
        #expect(!mismatched.contains("stroke-opacity"))
        #expect(XMLParser(data: Data(barred.utf8)).parse())
    }
}
