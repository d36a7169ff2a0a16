import Foundation
import Testing
@testable import FoveaIO
import FoveaTestSupport

/// The committed held-out evaluation set (data/eval, scripts/testmodel/scenes.py, seed 2026):
/// every row names a scene Fovea decodes at the stated size, with a one-word answer.
@Suite("Held-out evaluation set")
struct EvalSetTests {
    struct Row: Decodable { let image: String; let question: String; let answer: String; let kind: String; let width: Int; let height: Int }

    @Test("500 questions, 100 per kind, on decodable scenes of several aspect ratios")
    func consistent() throws {
        let folder = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().appendingPathComponent("data/eval").path
        let lines = try String(contentsOfFile: folder + "/questions.jsonl", encoding: .utf8).split(separator: "\n")
        let rows = try lines.map { try JSONDecoder().decode(Row.self, from: Data($0.utf8)) }
        #expect(rows.count == 500)
        let kinds = Dictionary(grouping: rows, by: \.kind).mapValues(\.count)
        #expect(kinds == ["colour": 100, "where": 100, "count": 100, "exist": 100, "ocr": 100])
        let exist = rows.filter { $0.kind == "exist" }
        #expect(abs(exist.filter { $0.answer == "no" }.count - 50) <= 10, "existence questions should be about half absent")
        #expect(rows.allSatisfy { !$0.answer.isEmpty && !$0.answer.contains(" ") })
        var ratios = Set<String>()
        for image in Set(rows.map(\.image)) {
            let row = rows.first { $0.image == image }!
            let decoded = try ImageDecoder.decode(path: folder + "/" + image)
            #expect(decoded.width == row.width && decoded.height == row.height, "\(image)")
            ratios.insert("\(row.width)x\(row.height)")
        }
        #expect(ratios.count >= 5)
    }
}
