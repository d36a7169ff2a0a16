import Foundation
import FoveaCore

/// What a report says about where it ran: CPU model, cores, the vector extensions that decide
/// which kernels are fast, and the BLAS's own choice.
public enum Machine {
    public static var cpuModel: String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        return info.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":", maxSplits: 1).last?
            .trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
    }

    /// The SIMD extensions /proc/cpuinfo lists that matter for Fovea's kernels.
    public static var vectorExtensions: [String] {
        let present = CPUFeatures.flags
        return ["avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8"]
            .filter(present.contains)
    }

    /// One line: "AMD EPYC, 2 cores, avx2 fma … ; BLAS: OpenBLAS …".
    public static var description: String {
        "\(cpuModel), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(vectorExtensions.joined(separator: " "))"
    }
}

extension ProcessMemory {
    /// Resets this process's peak RSS (VmHWM) so the next measurement reports its own peak:
    /// Linux's clear_refs value 5 (since 4.0). Mapped weights stay resident, so every peak includes them.
    public static func resetPeak() {
        #if os(Linux)
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
        #endif
    }

    /// Physical memory of the machine, in bytes.
    public static var physicalBytes: Int { Int(ProcessInfo.processInfo.physicalMemory) }
}
