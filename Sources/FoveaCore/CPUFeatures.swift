import Foundation
#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// The CPU's vector extensions, read once from /proc/cpuinfo (empty elsewhere): what decides
/// which kernels this machine deserves.
public enum CPUFeatures {
    public static let flags: Set<String> = {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        return Set(line.split(separator: " ").map(String.init))
    }()

    public static var avx512: Bool { ["avx512f", "avx512bw", "avx512vl", "avx512dq"].allSatisfy(flags.contains) }
    public static var avx2: Bool { flags.contains("avx2") && flags.contains("fma") }
}

extension BLAS {
    /// The kernel family OpenBLAS chose for this process ("Cooperlake", "Haswell", "Prescott"…).
    public static var coreName: String {
        #if canImport(Accelerate)
        return "Accelerate"
        #else
        return String(cString: openblas_get_corename())
        #endif
    }

    /// OpenBLAS cores that use AVX-512 and AVX2 (names as `openblas_get_corename` gives them, any case).
    static let avx512Cores: Set<String> = ["skylakex", "cooperlake", "sapphirerapids"]
    static let avx2Cores: Set<String> = ["haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"]

    /// Set by the CLI when it restarted itself to correct OpenBLAS's choice: the core OpenBLAS had chosen.
    public static let correctionMarker = "FOVEA_BLAS_CORRECTED_FROM"

    /// One line for reports: the kernels in use, and what was corrected.
    public static var kernels: String {
        let from = ProcessInfo.processInfo.environment[correctionMarker].map { "; OpenBLAS had chosen \($0), corrected" } ?? ""
        return "OpenBLAS \(coreName) kernels, \(startupThreads) threads\(from); quantised one-row products: \(QuantizedMatrix.kernelName); stored-weight many-row products: \(QuantizedMatrix.manyRowKernels)"
    }

    /// The `OPENBLAS_CORETYPE` this CPU deserves when OpenBLAS chose a slower family for it, or nil
    /// when its choice is right. OpenBLAS 0.3.21 does not know Sapphire Rapids and falls back to its
    /// SSE3 "Prescott" kernels there: 4× slower sgemm.
    public static func betterCore(chosen: String, flags: Set<String>) -> String? {
        let core = chosen.lowercased()
        let has512 = ["avx512f", "avx512bw", "avx512vl", "avx512dq"].allSatisfy(flags.contains)
        if has512 && !avx512Cores.contains(core) { return flags.contains("avx512_bf16") ? "COOPERLAKE" : "SKYLAKEX" }
        if !has512 && flags.contains("avx2") && flags.contains("fma") && !avx2Cores.contains(core) { return "HASWELL" }
        return nil
    }
}
