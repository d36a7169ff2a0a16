import ArgumentParser
import Foundation
import FoveaIO
import FoveaModels
import FoveaRuntime

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer an evaluation set and score it: DIR/results.jsonl per question, DIR/summary.json with 95% intervals.",
        discussion: """
        The question file is JSON lines: image (relative to the file's folder), question, and answer \
        (exact match) or answers (up to ten human answers, VQA accuracy); kind groups the summary. \
        Answers are normalised as the VQA evaluator does (punctuation, number words to digits, articles dropped, \
        contractions restored) on both sides.
        """)

    @Option(help: "Model folder (config.json + *.safetensors) or a .gguf file (with --mmproj for images).")
    var model: String

    @Option(help: "Questions, JSON lines (data/eval/questions.jsonl's format).")
    var data: String

    @OptionGroup var pruning: PruningOptions

    @OptionGroup var kv: KVOptions

    @OptionGroup var weightOptions: WeightOptions

    @Option(help: "Only the first N questions.")
    var limit: Int?

    @Option(name: .customLong("max-tokens"), help: "Most tokens per answer.")
    var maxTokens = 8

    @Option(help: "Output folder (created).")
    var out: String

    @Flag(help: "Run a grid of methods (the default grid, or --grid) into DIR/cells/…, then DIR/report.md and SVG plots; finished cells are reused.")
    var sweep = false

    @Option(help: "With --sweep: a grid file, one 'prune=SPEC kv=SPEC dtype=T' cell per line.")
    var grid: String?

    @Flag(inversion: .prefixedNo, help: "Also run the full model on each question: agreement, KL along its answer, first divergence.")
    var fidelity = true

    func validate() throws {
        if let limit, limit <= 0 { throw ValidationError("--limit must be positive") }
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive") }
        if sweep && (pruning.spec != "full" || kv.spec != "full" || kv.dtype != "f32") {
            throw ValidationError("--sweep runs its own grid; put methods in a --grid file instead of --prune/--kv")
        }
        if grid != nil && !sweep { throw ValidationError("--grid needs --sweep") }
    }

    func run() throws {
        let questions = try EvalQuestion.load(path: data, limit: limit)
        let loaded = try loadWithProgress(model, weights: weightOptions)
        announceTemplate(loaded)
        guard loaded.model.config.vision != nil else { throw ValidationError("\(model) is a text-only model; it cannot answer about images") }
        var evaluator = Evaluator(loaded: loaded, processor: try loaded.requireProcessor(),
                                  dataFolder: (data as NSString).deletingLastPathComponent)
        evaluator.maxNewTokens = maxTokens
        evaluator.pruning = try pruning.plan
        evaluator.kv = try kv.plan
        evaluator.fidelity = fidelity
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        if sweep { return try runSweep(evaluator, questions) }
        let resultsPath = (out as NSString).appendingPathComponent("results.jsonl")
        guard FileManager.default.createFile(atPath: resultsPath, contents: nil), let file = FileHandle(forWritingAtPath: resultsPath) else {
            throw ValidationError("cannot write \(resultsPath)")
        }
        defer { try? file.close() }
        let bar = ProgressBar(total: questions.count)
        var correct = 0.0
        var lineError: Error?
        let results = try evaluator.run(questions) { r in
            correct += r.score
            do { file.write(try r.json() + Data("\n".utf8)) } catch { lineError = error }
            bar.update(done: r.index + 1, note: String(format: "accuracy %.3f", correct / Double(r.index + 1)))
        }
        if let lineError { throw lineError }
        bar.finish()
        let summary = try Evaluator.summary(results, model: model, method: evaluator.pruning.spec.description,
                                            kvMethod: evaluator.kv.spec.description)
        try summary.write(to: URL(fileURLWithPath: (out as NSString).appendingPathComponent("summary.json")))
        let overall = AccuracyEstimate(scores: results.map(\.score))
        print(String(format: "%d questions: accuracy %.1f%% ± %.1f (95%%); wrote %@/results.jsonl and summary.json",
                     results.count, overall.mean * 100, overall.halfWidth * 100, out))
    }
}

extension Eval {
    func runSweep(_ evaluator: Evaluator, _ questions: [EvalQuestion]) throws {
        let cells = try grid.map { try Sweep.loadGrid(path: $0) } ?? Sweep.defaultGrid
        let sweep = Sweep(evaluator: evaluator, cells: cells, directory: out)
        var bar = ProgressBar(total: questions.count)
        var correct = 0.0
        var n = 0
        try sweep.run(questions, onCell: { cell, reused in
            bar.finish()
            n += 1
            FileHandle.standardError.write(Data("[\(n)/\(cells.count)] \(cell)\(reused ? ": finished earlier, reused" : "")\n".utf8))
            bar = ProgressBar(total: questions.count)
            correct = 0
        }, progress: { r in
            correct += r.score
            bar.update(done: r.index + 1, note: String(format: "accuracy %.3f", correct / Double(r.index + 1)))
        })
        bar.finish()
        try sweep.report(questions: questions.count, command: CommandLine.arguments.joined(separator: " "), machine: Machine.description)
        print("\(cells.count) cells on \(questions.count) questions; wrote \(out)/report.md and SVG plots")
    }
}

/// CPU model and core count, for reports.
/// A one-line bar with an ETA on a terminal's stderr; silent when stderr is not a terminal.
final class ProgressBar {
    let total: Int
    let started = Date()
    let enabled = isatty(2) != 0

    init(total: Int) { self.total = total }

    func update(done: Int, note: String) {
        guard enabled else { return }
        let elapsed = Date().timeIntervalSince(started)
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let width = 30, filled = total > 0 ? width * done / total : width
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let line = String(format: "\r%@ %d/%d  %@  ETA %d:%02d ", bar, done, total, note, Int(eta) / 60, Int(eta) % 60)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
