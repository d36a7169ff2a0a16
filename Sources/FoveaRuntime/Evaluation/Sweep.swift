import Foundation
import FoveaIO

/// `fovea eval --sweep`: every cell of a grid on the same questions, each cell's results in its
/// own folder (a finished cell — its summary.json written for this many questions — is not
/// recomputed), then report.md and three SVG plots over all of them.
public struct Sweep {
    /// The default grid: Full; HiRED r ∈ {0.1, 0.2, 0.4} (α 0.5) with original and renumbered
    /// positions, HiRED's code rule at 0.2; VisionZip, DART (both forms), random and uniform at
    /// the same budgets, downsample 2×2 and 3×3; FastV K=2 R ∈ {0.5, 0.75}; A-VL; H2O,
    /// StreamingLLM and SnapKV at 50% KV; q8_0 storage; HiRED 0.2 + A-VL.
    public static let defaultGrid: [String] = {
        var cells = ["full"]
        let budgets = ["0.1", "0.2", "0.4"]
        cells += budgets.map { "prune=hired:r=\($0)" } + budgets.map { "prune=hired:r=\($0),pos=renumber" }
        cells.append("prune=hired:r=0.2,rule=code")
        for method in ["visionzip", "dart", "dart:where=embed", "random", "uniform"] {
            cells += budgets.map { method.contains(":") ? "prune=\(method),r=\($0)" : "prune=\(method):r=\($0)" }
        }
        cells += ["prune=downsample:k=2", "prune=downsample:k=3", "prune=fastv:k=2,ratio=0.5", "prune=fastv:k=2,ratio=0.75",
                  "kv=avl:s=0.5,c=0.3,k=3,t=0.6", "kv=h2o:heavy=0.25,recent=0.25", "kv=streaming:sink=4,window=0.5",
                  "kv=snapkv:cap=0.5", "dtype=q8_0", "prune=hired:r=0.2 kv=avl:s=0.5,c=0.3,k=3,t=0.6"]
        return cells
    }()

    /// A grid file: one cell per line (`prune=… kv=… dtype=…`), `#` comments; Full is always added first.
    public static func loadGrid(path: String) throws -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw FoveaError.invalidFile(path: path, line: nil, reason: "cannot read the grid file (missing, or not UTF-8)")
        }
        let cells = text.split(separator: "\n").map { $0.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "" }
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for (i, c) in cells.enumerated() {
            do { _ = try MethodCell(c) } catch { throw FoveaError.invalidFile(path: path, line: i + 1, reason: error.localizedDescription) }
        }
        return ["full"] + cells.filter { $0 != "full" }
    }

    /// A folder name for a cell.
    public static func slug(_ cell: String) -> String {
        String(cell.map { $0.isLetter || $0.isNumber || "=.,_-".contains($0) ? $0 : "_" })
    }

    public var evaluator: Evaluator
    public var cells: [String]
    public var directory: String

    public init(evaluator: Evaluator, cells: [String], directory: String) {
        self.evaluator = evaluator
        self.cells = cells
        self.directory = directory
    }

    /// Runs what is not finished; `onCell` hears (cell, reused) before each, `progress` each question.
    public func run(_ questions: [EvalQuestion], onCell: (String, Bool) -> Void = { _, _ in },
                    progress: (EvalResult) -> Void = { _ in }) throws {
        for text in cells { _ = try MethodCell(text) }   // every cell parses before hours are spent on the first
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let references = try ReferenceCache(path: (directory as NSString).appendingPathComponent(Self.referencesFile),
                                            fingerprint: fingerprint(questions))
        for text in cells {
            let cell = try MethodCell(text)
            let folder = (directory as NSString).appendingPathComponent("cells/" + Self.slug(text))
            let summaryPath = folder + "/summary.json"
            if let done = try? Self.readJSON(summaryPath), done["questions"] as? Int == questions.count {
                onCell(text, true)
                continue
            }
            onCell(text, false)
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            var e = evaluator
            e.pruning = cell.pruning
            e.kv = cell.kv
            e.references = references
            let results = try e.run(questions, progress: progress)
            let lines = try results.map { try $0.json() + Data("\n".utf8) }.reduce(Data(), +)
            try lines.write(to: URL(fileURLWithPath: folder + "/results.jsonl"))
            // Written last: its presence marks the cell finished.
            try Evaluator.summary(results, model: evaluator.loaded.model.directory, method: cell.pruning.spec.description,
                                  kvMethod: cell.kv.spec.description + (cell.kv.storage == .f32 ? "" : " " + cell.kv.storage.rawValue))
                .write(to: URL(fileURLWithPath: summaryPath))
        }
    }

    /// The full model's answers and step logits, kept beside the cells (large; not for committing).
    public static let referencesFile = "references.bin"

    /// What the stored references depend on: the model, the answer length and the questions.
    func fingerprint(_ questions: [EvalQuestion]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325   // FNV-1a
        for q in questions {
            for byte in (q.image + "\u{1}" + q.question + "\u{2}").utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
        let model = evaluator.loaded.model.directory.replacingOccurrences(of: "\n", with: " ")
        let formats = evaluator.loaded.model.decoder.storedFormats.map { "\($0.key)×\($0.value)" }.sorted().joined(separator: ",")
        return "\(model) weights=\(formats) tokens=\(evaluator.maxNewTokens) questions=\(questions.count) hash=\(String(hash, radix: 16))"
    }

    static func readJSON(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path),
              let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw FoveaError.invalidFile(path: path, line: nil, reason: "not a JSON object")
        }
        return obj
    }

    /// One finished cell as the report reads it back from its summary.json.
    struct Row {
        var cell: String
        var family: String
        var nominal: Double, kept: Double
        var accuracy: Double, lo: Double, hi: Double
        var kinds: [String: Double]
        var agreement: Double?, kl: Double?
        var kvBytes: Double, ttft: Double, decode: Double, rss: Double
        /// Where the cell ran (absent in summaries written before cells recorded it).
        var machine: String?
    }

    func rows() throws -> [Row] {
        try cells.map { text in
            let s = try Self.readJSON((directory as NSString).appendingPathComponent("cells/" + Self.slug(text) + "/summary.json"))
            let overall = s["overall"] as? [String: Any] ?? [:]
            let ci = overall["ci95"] as? [Double] ?? [0, 0]
            let vin = Double(s["visual_tokens_in"] as? Int ?? 0)
            let kinds = (s["by_kind"] as? [String: [String: Any]] ?? [:]).compactMapValues { $0["accuracy"] as? Double }
            // A family is the cell without its budget: one line per family in the plots.
            let family = text.replacingOccurrences(of: #"(,)?(r|ratio)=[0-9.]+"#, with: "", options: .regularExpression)
                .replacingOccurrences(of: #"downsample:k=[0-9]+"#, with: "downsample", options: .regularExpression)
                .replacingOccurrences(of: ":,", with: ":").replacingOccurrences(of: #":( |$)"#, with: "$1", options: .regularExpression)
                .replacingOccurrences(of: "prune=", with: "")
            return Row(cell: text, family: family.isEmpty ? text : family,
                       nominal: vin > 0 ? Double(s["visual_tokens_nominal"] as? Int ?? 0) / vin : 1,
                       kept: vin > 0 ? Double(s["visual_tokens_out"] as? Int ?? 0) / vin : 1,
                       accuracy: overall["accuracy"] as? Double ?? 0, lo: ci[0], hi: ci.count > 1 ? ci[1] : ci[0],
                       kinds: kinds, agreement: s["agreement_with_full"] as? Double, kl: s["mean_kl_to_full"] as? Double,
                       kvBytes: s["median_kv_bytes"] as? Double ?? 0, ttft: s["median_ttft_ms"] as? Double ?? 0,
                       decode: s["median_decode_ms_per_token"] as? Double ?? 0, rss: Double(s["peak_rss_bytes"] as? Int ?? 0),
                       machine: s["machine"] as? String)
        }
    }

    /// A resumed sweep may reuse cells that ran on another machine (these machines change between
    /// sessions), so the line names where the cells ran, not where the report was written.
    static func machineLine(_ rows: [Row], reporting machine: String) -> String {
        var counts: [(String, Int)] = []
        for r in rows {
            let m = r.machine ?? "not recorded"
            if let i = counts.firstIndex(where: { $0.0 == m }) { counts[i].1 += 1 } else { counts.append((m, 1)) }
        }
        if counts.count == 1, counts[0].0 != "not recorded" { return "Machine: \(counts[0].0)" }
        let cells = counts.map { "\($0.0) (\($0.1) cell\($0.1 == 1 ? "" : "s"))" }.joined(separator: "; ")
        return "Machines the cells ran on: \(cells). Report written on: \(machine)"
    }

    /// report.md (one table) and accuracy-vs-kept, accuracy-vs-KV and TTFT-vs-kept SVGs.
    public func report(questions: Int, command: String, machine: String) throws {
        let rows = try rows()
        guard let full = rows.first(where: { $0.cell == "full" }) ?? rows.first else { return }
        let kinds = Array(Set(rows.flatMap { $0.kinds.keys })).sorted()
        let pct = { (v: Double) in String(format: "%.1f", v * 100) }
        var md = "# Evaluation sweep: \(evaluator.loaded.model.directory)\n\n"
        md += "\(questions) questions, greedy answers scored after VQA normalisation; 95% intervals (normal approximation). "
        md += "Agreement and KL are against Full on the same questions (KL along Full's answer, method teacher-forced). "
        md += "Speed figures are medians over the questions; ratios are to Full from this sweep (cells run one after another, "
        md += "so slow drift of a shared machine shows in them).\n\n"
        md += "Command: `\(command)`  \n" + Self.machineLine(rows, reporting: machine) + "\n\n"
        md += "| method | nominal kept | kept | accuracy (95% CI) | " + kinds.joined(separator: " | ")
            + " | agreement | KL | KV | TTFT ms (×Full) | decode ms/token (×Full) | peak RSS |\n"
        md += "|---|---|---|---|" + kinds.map { _ in "---|" }.joined() + "---|---|---|---|---|---|\n"
        for r in rows {
            let kv = r.kvBytes >= 1_048_576 ? String(format: "%.1f MB", r.kvBytes / 1_048_576) : String(format: "%.0f KB", r.kvBytes / 1024)
            md += "| \(r.cell) | \(pct(r.nominal))% | \(pct(r.kept))% | \(pct(r.accuracy)) (\(pct(r.lo))–\(pct(r.hi))) | "
            md += kinds.map { r.kinds[$0].map(pct) ?? "" }.joined(separator: " | ")
            md += " | " + (r.agreement.map(pct) ?? "—") + " | " + (r.kl.map { String(format: "%.3f", $0) } ?? "—")
            md += String(format: " | %@ | %.0f (%.2f) | %.1f (%.2f) | %.0f MB |\n", kv, r.ttft, full.ttft > 0 ? r.ttft / full.ttft : 0,
                         r.decode, full.decode > 0 ? r.decode / full.decode : 0, r.rss / 1_048_576)
        }
        md += "\n![accuracy against kept visual tokens](accuracy_vs_kept.svg)\n![accuracy against KV bytes](accuracy_vs_kv.svg)\n"
        md += "![TTFT against kept visual tokens](ttft_vs_kept.svg)\n"
        try md.write(toFile: (directory as NSString).appendingPathComponent("report.md"), atomically: true, encoding: .utf8)

        // Against kept visual tokens only the cells that cut them (and Full) have something to show.
        let pruned = rows.filter { $0.cell == "full" || !$0.cell.hasPrefix("kv=") && !$0.cell.hasPrefix("dtype=") }
        // Accuracy points carry their 95% interval: at a few hundred questions it is wider than most
        // differences between methods, and a plot without it reads those differences as real.
        func plot(_ rows: [Row], _ title: String, _ x: String, _ y: String, _ fx: (Row) -> Double, _ fy: (Row) -> Double,
                  logX: Bool = false, intervals: Bool = false) -> String {
            var families: [String] = []
            for r in rows where !families.contains(r.family) { families.append(r.family) }
            return SVGPlot(title: title, xLabel: x, yLabel: y, series: families.map { f in
                let members = rows.filter { $0.family == f }
                return SVGPlot.Series(name: f, points: members.map { (x: fx($0), y: fy($0)) },
                                      intervals: intervals ? members.map { min($0.lo, $0.hi)...max($0.lo, $0.hi) } : [])
            }, logX: logX).render()
        }
        let accuracy = "accuracy (bars: 95% interval)"
        let files = [
            ("accuracy_vs_kept.svg", plot(pruned, "Accuracy against kept visual tokens", "kept visual fraction", accuracy, \.kept, \.accuracy,
                                          intervals: true)),
            ("accuracy_vs_kv.svg", plot(rows, "Accuracy against KV cache", "KV bytes (median per question)", accuracy, \.kvBytes, \.accuracy,
                                        logX: true, intervals: true)),
            ("ttft_vs_kept.svg", plot(pruned, "Time to first token against kept visual tokens", "kept visual fraction", "TTFT (ms, median)", \.kept, \.ttft)),
        ]
        for (name, svg) in files {
            try svg.write(toFile: (directory as NSString).appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
    }
}
