import ArgumentParser
import FoveaKV

/// `--kv SPEC` and `--kv-dtype`, shared by every generating command.
struct KVOptions: ParsableArguments {
    @Option(name: .customLong("kv"), help: ArgumentHelp(
        "KV-cache policy, name:key=value,... (default: full). Policies:", discussion: KVPolicyRegistry.help))
    var spec: String = "full"

    @Option(name: .customLong("kv-dtype"), help: "KV storage: \(KVStorageType.allCases.map(\.rawValue).joined(separator: ", ")).")
    var dtype: String = "f32"

    func validate() throws {
        guard KVStorageType(rawValue: dtype) != nil else {
            throw ValidationError("--kv-dtype must be one of \(KVStorageType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        do { _ = try plan } catch { throw ValidationError("--kv: \(error.localizedDescription)") }
    }

    var plan: KVPlan {
        get throws { try KVPlan(parsing: spec, storage: KVStorageType(rawValue: dtype) ?? .f32) }
    }
}
