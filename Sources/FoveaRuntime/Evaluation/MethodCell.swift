import Foundation
import FoveaIO
import FoveaKV
import FoveaPruning

/// One configuration of the methods, as the benchmark and the evaluation sweep name it:
/// a pruning spec, a KV policy and a KV storage type (`prune=hired:r=0.2 kv=avl dtype=q8_0`;
/// each defaults to full / f32).
public struct MethodCell: Sendable {
    public let text: String
    public let label: String
    public let pruning: PruningPlan
    public let kv: KVPlan

    public init(_ text: String) throws {
        self.text = text
        var prune = "full", kv = "full", dtype = KVStorageType.f32
        for part in text.split(separator: " ") where part != "full" {
            let kvPair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard kvPair.count == 2 else { throw FoveaError.invalidArgument(name: "method cell", value: text, reason: "'\(part)' is not key=value") }
            switch kvPair[0] {
            case "prune": prune = kvPair[1]
            case "kv": kv = kvPair[1]
            case "dtype":
                guard let t = KVStorageType(rawValue: kvPair[1]) else { throw FoveaError.invalidArgument(name: "method cell", value: text, reason: "dtype '\(kvPair[1])' is not one of \(KVStorageType.allCases.map(\.rawValue).joined(separator: ", "))") }
                dtype = t
            default: throw FoveaError.invalidArgument(name: "method cell", value: text, reason: "unknown key '\(kvPair[0])' (prune, kv, dtype)")
            }
        }
        pruning = try PruningPlan(parsing: prune)
        self.kv = try KVPlan(parsing: kv, storage: dtype)
        label = [prune == "full" ? nil : prune, kv == "full" ? nil : "kv " + kv, dtype == .f32 ? nil : dtype.rawValue]
            .compactMap { $0 }.joined(separator: " + ").nonEmpty ?? "full"
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}

