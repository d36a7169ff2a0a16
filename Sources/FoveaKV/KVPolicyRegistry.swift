import FoveaCore

/// A cache budget: a fraction of the prompt's length (a value with a decimal point, or below
/// 1: `0.1`, `1.0`) or a count of rows (an integer ≥ 1: `256`).
public enum KVSize: Sendable, Equatable, CustomStringConvertible {
    case fraction(Double)
    case rows(Int)

    static func read(_ p: inout SpecParameters, _ key: String, default fallback: KVSize) throws -> KVSize {
        guard let text = p.text(key) else { return fallback }
        let expected = "a fraction in [0, 1] (with a decimal point) or a whole number of rows"
        guard let x = Double(text), x.isFinite, x >= 0 else { throw p.invalid(key, text, expected: expected) }
        if text.contains(".") || text.lowercased().contains("e") || x < 1 {
            guard x <= 1 else { throw p.invalid(key, text, expected: expected) }
            return .fraction(x)
        }
        guard let n = Int(text), n <= Int(Int32.max) else { throw p.invalid(key, text, expected: expected) }
        return .rows(n)
    }

    /// Rows for a prompt of `length` rows (floor).
    public func rows(of length: Int) -> Int {
        switch self {
        case .fraction(let f): Int((Double(length) * f).rounded(.down))
        case .rows(let n): n
        }
    }

    public var description: String {
        switch self {
        case .fraction(let f): "\(f)"
        case .rows(let n): "\(n)"
        }
    }
}

/// A parsed `--kv SPEC` plus `--kv-dtype`: makes a fresh policy for each sequence.
public struct KVPlan: Sendable, CustomStringConvertible {
    public let spec: MethodSpec
    public var storage: KVStorageType
    private let make: @Sendable () -> any KVCachePolicy
    /// A-VL's optional prefill filter: after decoder layer `layer`, only the top `keep` share
    /// of image tokens (last row, head-mean) go on — a FastV cut the runtime inserts.
    public let prefillFilter: (layer: Int, keep: Double)?

    public static let full = KVPlan(spec: MethodSpec(name: "full"), storage: .f32, prefillFilter: nil) { FullPolicy() }

    init(spec: MethodSpec, storage: KVStorageType, prefillFilter: (layer: Int, keep: Double)?,
         make: @escaping @Sendable () -> any KVCachePolicy) {
        self.spec = spec
        self.storage = storage
        self.prefillFilter = prefillFilter
        self.make = make
    }

    /// Parses `name:key=value,...`; errors list the valid policies or keys.
    public init(parsing text: String, storage: KVStorageType = .f32) throws {
        let spec = try MethodSpec(parsing: text)
        guard let entry = KVPolicyRegistry.entries.first(where: { $0.name == spec.name }) else {
            throw MethodSpecError.unknownMethod(name: spec.name, valid: KVPolicyRegistry.entries.map(\.name))
        }
        var p = SpecParameters(spec)
        let made = try entry.parse(&p)
        try p.finish()
        self.init(spec: spec, storage: storage, prefillFilter: made.filter, make: made.make)
    }

    public func makePolicy() -> any KVCachePolicy { make() }
    public var isFull: Bool { spec.name == "full" }
    public var description: String { spec.description + (storage == .f32 ? "" : " [\(storage.rawValue)]") }
}

/// Name → parser for every KV policy; the CLI's help, the library and the harness read it.
public enum KVPolicyRegistry {
    public struct Entry: Sendable {
        public let name: String
        public let summary: String
        let parse: @Sendable (inout SpecParameters) throws -> Made
    }

    struct Made {
        let make: @Sendable () -> any KVCachePolicy
        var filter: (layer: Int, keep: Double)? = nil
    }

    public static let entries: [Entry] = [
        Entry(name: "full", summary: "keep and attend every entry") { _ in Made(make: { FullPolicy() }) },
        Entry(name: "avl", summary: "A-VL: image core/secondary/minor per layer, text local + heavy hitters (s, c, k, t, t0, h, filter, kf, p)") {
            let c = try AVL.Config(&$0)
            return Made(make: { AVL(c) }, filter: c.filter ? (c.filterLayer, c.filterKeep) : nil)
        },
        Entry(name: "h2o", summary: "H2O: recent window + heavy hitters per KV head (heavy, recent)") {
            let c = try H2O.Config(&$0); return Made(make: { H2O(c) })
        },
        Entry(name: "streaming", summary: "StreamingLLM: attention sinks + a recent window (sink, window, pos=shift|orig)") {
            let c = try StreamingLLM.Config(&$0); return Made(make: { StreamingLLM(c) })
        },
        Entry(name: "snapkv", summary: "SnapKV: prompt entries the last queries attend, pooled (w, k, cap, pool=max|avg)") {
            let c = try SnapKV.Config(&$0); return Made(make: { SnapKV(c) })
        },
    ]

    public static var help: String { entries.map { "\($0.name): \($0.summary)" }.joined(separator: "\n") }
}
