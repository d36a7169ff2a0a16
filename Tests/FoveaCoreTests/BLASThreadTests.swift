import Foundation
import Testing
import FoveaCore

/// OpenBLAS's thread count is process state that the stages change (`BLAS.fitThreads`), so the
/// order of a process's first stages is what these tests are about: each runs in a fresh child
/// process, this test binary started again on one test.
@Suite("OpenBLAS threads across stages")
struct BLASThreadTests {
    static let childVariable = "FOVEA_BLAS_THREADS_CHILD"

    /// A vision stage on Fovea's own kernels first (one OpenBLAS thread), then a stage that
    /// multiplies through sgemm: it must get the start-up count back, not the one the vision
    /// stage left (the bug: `startupThreads` was first read after that change, and was 1).
    @Test("child: own-kernel stage, then sgemm stage", .enabled(if: ProcessInfo.processInfo.environment[childVariable] == "1"))
    func ownKernelThenSgemm() {
        BLAS.fitThreads(ownProducts: true)
        #expect(BLAS.threads == 1)
        BLAS.fitThreads(ownProducts: false)
        #expect(BLAS.startupThreads == 2)
        #expect(BLAS.threads == 2)
        #expect(BLAS.kernels.contains(", 2 threads"))
    }

    @Test("a stage that needs sgemm after one on Fovea's own kernels gets OpenBLAS's start-up threads back")
    func startupThreadsSurviveOwnKernelStage() throws {
        #if canImport(Accelerate)
        return   // Accelerate picks its own threads
        #else
        let exe = CommandLine.arguments[0]
        let child = Process()
        child.executableURL = URL(fileURLWithPath: exe)
        child.arguments = ["--testing-library", "swift-testing", "--filter", "ownKernelThenSgemm"]
        var env = ProcessInfo.processInfo.environment
        env[Self.childVariable] = "1"
        env["OPENBLAS_NUM_THREADS"] = "2"
        env["OMP_NUM_THREADS"] = "2"
        child.environment = env
        let out = Pipe()
        child.standardOutput = out
        child.standardError = out
        try child.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        child.waitUntilExit()
        #expect(child.terminationStatus == 0, "\(text)")
        // The child ran exactly the one test (a filter matching nothing would also exit 0).
        #expect(text.contains("1 test passed") || text.contains("Test run with 1 test"), "\(text)")
        #endif
    }
}
