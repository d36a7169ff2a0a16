import Foundation
import Testing
import FoveaFuzzing
import FoveaTestSupport

/// Replays the fuzzers' corpora (Tests/Corpus/fuzz/<target>: seeds, and every crash scripts/fuzz.sh
/// found, kept after its fix) through the same entry points the fuzzers drive. Fast: no sanitizer,
/// no mutation; a crash here is a regression.
@Suite("Fuzz corpora replay")
struct FuzzRegressionTests {
    static let root = URL(fileURLWithPath: Fixtures.root()).deletingLastPathComponent().path + "/Tests/Corpus/fuzz"

    @Test("every seed and regression input of every target returns", arguments: FuzzTargets.names)
    func replay(_ target: String) throws {
        let dir = Self.root + "/" + target
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(!files.isEmpty, "no corpus for \(target)")
        for f in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f))
            let start = Date()
            FuzzTargets.run(target, data)
            #expect(Date().timeIntervalSince(start) < 10, "\(target)/\(f) took \(Date().timeIntervalSince(start)) s")
        }
    }
}
