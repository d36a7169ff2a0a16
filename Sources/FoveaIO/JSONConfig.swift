import Foundation

/// Typed, path-aware reading of a JSON config (config.json, preprocessor_config.json).
/// Missing optional fields take the caller's default (transformers' default);
/// a present field of the wrong type is an error that names the field path.
public struct JSONConfig: @unchecked Sendable {
    public let path: String
    public let keyPath: String
    public let raw: [String: Any]

    public init(path: String) throws {
        // tokenizer.json of the largest vocabularies is tens of MB; a JSON file past 512 MB is not a configuration.
        try self.init(data: try FileReader.read(path, limit: 512 << 20, what: "JSON file"), path: path)
    }

    public init(data: Data, path: String) throws {
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: data) } catch {
            throw FoveaError.badJSON(path: path, reason: "not valid JSON")
        }
        guard let dict = json as? [String: Any] else { throw FoveaError.badJSON(path: path, reason: "top level is not an object") }
        self.init(path: path, keyPath: "", raw: dict)
    }

    public init(path: String, keyPath: String, raw: [String: Any]) {
        self.path = path
        self.keyPath = keyPath
        self.raw = raw
    }

    public func field(_ key: String) -> String { keyPath.isEmpty ? key : "\(keyPath).\(key)" }

    func present(_ key: String) -> Any? {
        guard let v = raw[key], !(v is NSNull) else { return nil }
        return v
    }

    public func has(_ key: String) -> Bool { present(key) != nil }

    public func int(_ key: String) throws -> Int? {
        guard let v = present(key) else { return nil }
        guard !isJSONBool(v), let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded() else {
            throw FoveaError.invalidConfig(path: path, field: field(key), reason: "expected an integer, found \(v)")
        }
        return n.intValue
    }

    public func int(_ key: String, default value: Int) throws -> Int { try int(key) ?? value }

    public func requiredInt(_ key: String) throws -> Int {
        guard let v = try int(key) else { throw FoveaError.invalidConfig(path: path, field: field(key), reason: "required field is missing") }
        return v
    }

    public func double(_ key: String) throws -> Double? {
        guard let v = present(key) else { return nil }
        guard !isJSONBool(v), let n = v as? NSNumber else {
            throw FoveaError.invalidConfig(path: path, field: field(key), reason: "expected a number, found \(v)")
        }
        return n.doubleValue
    }

    public func double(_ key: String, default value: Double) throws -> Double { try double(key) ?? value }

    public func bool(_ key: String, default value: Bool) throws -> Bool {
        guard let v = present(key) else { return value }
        guard isJSONBool(v), let b = v as? Bool else { throw FoveaError.invalidConfig(path: path, field: field(key), reason: "expected true/false, found \(v)") }
        return b
    }

    public func string(_ key: String) throws -> String? {
        guard let v = present(key) else { return nil }
        guard let s = v as? String else { throw FoveaError.invalidConfig(path: path, field: field(key), reason: "expected a string, found \(v)") }
        return s
    }

    public func string(_ key: String, default value: String) throws -> String { try string(key) ?? value }

    public func intList(_ key: String) throws -> [Int]? {
        guard let v = present(key) else { return nil }
        guard let arr = v as? [Any] else { throw FoveaError.invalidConfig(path: path, field: field(key), reason: "expected a list of integers") }
        return try arr.map { e in
            guard !isJSONBool(e), let n = e as? NSNumber, n.doubleValue == n.doubleValue.rounded() else {
                throw FoveaError.invalidConfig(path: path, field: field(key), reason: "expected a list of integers, found element \(e)")
            }
            return n.intValue
        }
    }

    public func doubleList(_ key: String) throws -> [Double]? {
        guard let v = present(key) else { return nil }
        guard let arr = v as? [Any] else { throw FoveaError.invalidConfig(path: path, field: field(key), reason: "expected a list of numbers") }
        return try arr.map { e in
            guard !isJSONBool(e), let n = e as? NSNumber else {
                throw FoveaError.invalidConfig(path: path, field: field(key), reason: "expected a list of numbers, found element \(e)")
            }
            return n.doubleValue
        }
    }

    /// A list of integer pairs, e.g. `image_grid_pinpoints`.
    public func intPairs(_ key: String) throws -> [[Int]]? {
        guard let v = present(key) else { return nil }
        guard let arr = v as? [Any] else { throw FoveaError.invalidConfig(path: path, field: field(key), reason: "expected a list of [height, width] pairs") }
        return try arr.map { e in
            guard let pair = e as? [Any], pair.count == 2,
                  let a = (pair[0] as? NSNumber)?.intValue, let b = (pair[1] as? NSNumber)?.intValue, a > 0, b > 0 else {
                throw FoveaError.invalidConfig(path: path, field: field(key), reason: "expected [height, width] pairs of positive integers, found \(e)")
            }
            return [a, b]
        }
    }

    public func object(_ key: String) throws -> JSONConfig? {
        guard let v = present(key) else { return nil }
        guard let d = v as? [String: Any] else { throw FoveaError.invalidConfig(path: path, field: field(key), reason: "expected an object") }
        return JSONConfig(path: path, keyPath: field(key), raw: d)
    }

    /// Throws unless `condition` holds, naming the field.
    public func check(_ condition: Bool, _ key: String, _ reason: @autoclosure () -> String) throws {
        if !condition { throw FoveaError.invalidConfig(path: path, field: field(key), reason: reason()) }
    }
}

/// JSON `true`/`false`. Foundation on Linux lets `1 as? Bool` succeed, so test the boxed
/// number's type code instead ("c" is how both platforms box a Bool).
func isJSONBool(_ v: Any) -> Bool {
    if v is Bool, !(v is NSNumber) { return true }
    guard let n = v as? NSNumber else { return false }
    return String(cString: n.objCType) == "c"
}
