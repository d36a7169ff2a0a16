import Foundation
import FoveaCore
import FoveaRuntime

/// Loads a model, drawing a progress line on stderr when loading takes more than a second
/// (only on a terminal: logs and pipes get no spinner frames).
func loadWithProgress(_ path: String, weights: WeightOptions? = nil) throws -> LoadedModel {
    let load = { try LoadedModel.load(path, mmproj: weights?.mmproj, dequantize: weights?.dequantize ?? false, convert: weights?.convert, activations: weights?.mode ?? .float) }
    guard isatty(2) != 0 else { return try load() }
    let done = UncheckedSendable(DoneFlag())
    let started = Date()
    let ticker = Thread {
        let frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]
        var i = 0
        while !done.value.isSet {
            Thread.sleep(forTimeInterval: 0.1)
            let elapsed = Date().timeIntervalSince(started)
            if elapsed > 1 && !done.value.isSet {
                FileHandle.standardError.write(String(format: "\r%@ loading %@ (%.1f s)", frames[i % frames.count], path, elapsed).data(using: .utf8)!)
                i += 1
            }
        }
    }
    ticker.start()
    defer {
        done.value.set()
        if Date().timeIntervalSince(started) > 1 {
            FileHandle.standardError.write(String(format: "\rloaded %@ in %.1f s\u{1B}[K\n", path, Date().timeIntervalSince(started)).data(using: .utf8)!)
        }
    }
    return try load()
}

final class DoneFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
