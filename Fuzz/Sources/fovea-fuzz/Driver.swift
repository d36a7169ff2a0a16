import Foundation
import FoveaFuzzing

// The target is chosen by FOVEA_FUZZ_TARGET (libFuzzer reads every other argument itself).
let target = ProcessInfo.processInfo.environment["FOVEA_FUZZ_TARGET"] ?? ""

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTargets.run(target, Data(bytes: data, count: size))
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
               _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

// SwiftPM links an executable's entry point as `<module>_main`; libFuzzer's own `main` is replaced
// by this one, which hands control to libFuzzer's driver.
@_cdecl("fovea_fuzz_main")
public func foveaFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    guard FuzzTargets.names.contains(target) else {
        FileHandle.standardError.write(Data("set FOVEA_FUZZ_TARGET to one of: \(FuzzTargets.names.joined(separator: ", "))\n".utf8))
        return 2
    }
    var c = argc, v = argv
    return runDriver(&c, &v, testOneInput)
}
