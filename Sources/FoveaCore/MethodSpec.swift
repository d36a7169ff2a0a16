import Foundation

/// A method named by a spec string, `name:key=value,key=value` (`hired:r=0.2,alpha=0.5`).
///
/// One parser for the CLI, the library and the evaluation harness: pruners and KV policies
/// both read their parameters through `SpecParameters`, which checks every key and range and
/// refuses what it did not consume.
public struct MethodSpec: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    /// In the order written; a key appears at most once.
    public var parameters: [(key: String, value: String)]

    public init(name: String, parameters: [(key: String, value: String)] = []) {
        self.name = name
        self.parameters = parameters
    }

    /// Parses `name` or `name:key=value,...`. Names and keys are case-insensitive.
    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw MethodSpecError.malformed(spec: text, reason: "empty method spec") }
        let head: Substring, tail: Substring?
        if let colon = trimmed.firstIndex(of: ":") {
            head = trimmed[..<colon]
            tail = trimmed[trimmed.index(after: colon)...]
        } else {
            head = Substring(trimmed)
            tail = nil
        }
        name = head.trimmingCharacters(in: .whitespaces).lowercased()
        guard !name.isEmpty else { throw MethodSpecError.malformed(spec: text, reason: "no method name before ':'") }
        parameters = []
        guard let tail else { return }
        for item in tail.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw MethodSpecError.malformed(spec: text, reason: "'\(item)' is not key=value")
            }
            let key = parts[0].trimmingCharacters(in: .whitespaces).lowercased()
            let value = parts[1].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty, !value.isEmpty else {
                throw MethodSpecError.malformed(spec: text, reason: "'\(item)' has an empty key or value")
            }
            guard !parameters.contains(where: { $0.key == key }) else {
                throw MethodSpecError.malformed(spec: text, reason: "key '\(key)' is given twice")
            }
            parameters.append((key, value))
        }
    }

    public var description: String {
        parameters.isEmpty ? name : name + ":" + parameters.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    public static func == (a: MethodSpec, b: MethodSpec) -> Bool {
        a.name == b.name && a.parameters.map(\.key) == b.parameters.map(\.key) && a.parameters.map(\.value) == b.parameters.map(\.value)
    }
}

public enum MethodSpecError: Error, LocalizedError, Equatable, Sendable {
    case malformed(spec: String, reason: String)
    case unknownMethod(name: String, valid: [String])
    case unknownKey(method: String, key: String, valid: [String])
    case badValue(method: String, key: String, value: String, expected: String)
    case conflict(method: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case .malformed(let s, let r): "method spec '\(s)': \(r) (form: name:key=value,key=value)"
        case .unknownMethod(let n, let v): "unknown method '\(n)'; valid: \(v.joined(separator: ", "))"
        case .unknownKey(let m, let k, let v): "\(m): unknown key '\(k)'; valid keys: \(v.joined(separator: ", "))"
        case .badValue(let m, let k, let v, let e): "\(m): \(k)=\(v) is invalid: expected \(e)"
        case .conflict(let m, let r): "\(m): \(r)"
        }
    }
}

/// Reads a spec's parameters with their types, defaults and ranges. Every key a method
/// accepts is declared by reading it; `finish()` rejects whatever was not read.
public struct SpecParameters {
    public let spec: MethodSpec
    private var declared: [String] = []
    private var used: Set<String> = []

    public init(_ spec: MethodSpec) { self.spec = spec }

    private mutating func raw(_ key: String) -> String? {
        declared.append(key)
        guard let v = spec.parameters.first(where: { $0.key == key })?.value else { return nil }
        used.insert(key)
        return v
    }

    public func has(_ key: String) -> Bool { spec.parameters.contains { $0.key == key } }

    /// The raw text of `key`, declaring it; for values a method parses itself.
    public mutating func text(_ key: String) -> String? { raw(key) }

    /// The error for a value a method parsed itself and refused.
    public func invalid(_ key: String, _ value: String, expected: String) -> MethodSpecError { bad(key, value, expected) }

    private func bad(_ key: String, _ value: String, _ expected: String) -> MethodSpecError {
        .badValue(method: spec.name, key: key, value: value, expected: expected)
    }

    /// A real number in `range` (closed), or `fallback` when absent.
    public mutating func double(_ key: String, default fallback: Double, in range: ClosedRange<Double>) throws -> Double {
        guard let v = raw(key) else { return fallback }
        guard let x = Double(v), x.isFinite, range.contains(x) else {
            throw bad(key, v, "a number in [\(range.lowerBound), \(range.upperBound)]")
        }
        return x
    }

    public mutating func optionalDouble(_ key: String, in range: ClosedRange<Double>) throws -> Double? {
        guard has(key) else { _ = raw(key); return nil }
        return try double(key, default: 0, in: range)
    }

    /// An integer in `range`, or `fallback` when absent.
    public mutating func int(_ key: String, default fallback: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let v = raw(key) else { return fallback }
        guard let x = Int(v), range.contains(x) else {
            throw bad(key, v, "an integer in \(range.lowerBound)...\(range.upperBound == Int.max ? "" : String(range.upperBound))")
        }
        return x
    }

    public mutating func optionalInt(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard has(key) else { _ = raw(key); return nil }
        return try int(key, default: 0, in: range)
    }

    /// One of the enum's cases (case-insensitive), or `fallback` when absent.
    public mutating func choice<T: RawRepresentable & CaseIterable>(_ key: String, default fallback: T) throws -> T where T.RawValue == String {
        try optionalChoice(key, T.self) ?? fallback
    }

    public mutating func optionalChoice<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type) throws -> T? where T.RawValue == String {
        guard let v = raw(key) else { return nil }
        guard let x = T.allCases.first(where: { $0.rawValue == v.lowercased() }) else {
            throw bad(key, v, "one of " + T.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return x
    }

    /// `on`/`off` (also true/false, 1/0, yes/no).
    public mutating func flag(_ key: String, default fallback: Bool) throws -> Bool {
        guard let v = raw(key) else { return fallback }
        switch v.lowercased() {
        case "on", "true", "1", "yes": return true
        case "off", "false", "0", "no": return false
        default: throw bad(key, v, "on or off")
        }
    }

    /// Throws for any key the method did not read, listing the ones it knows.
    public func finish() throws {
        for (key, _) in spec.parameters where !used.contains(key) {
            throw MethodSpecError.unknownKey(method: spec.name, key: key, valid: declared)
        }
    }
}
