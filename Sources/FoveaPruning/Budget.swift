import FoveaCore

/// A visual-token budget: a fraction of the tokens a method is given (`r=0.2`) or an absolute
/// count (`tokens=320`). Integer floor throughout, as Python's `int(n * r)`.
public enum Budget: Sendable, Equatable, CustomStringConvertible {
    case fraction(Double)
    case tokens(Int)

    /// Reads `r` or `tokens` (exactly one may be given; `r` defaults to `defaultFraction`).
    public static func read(_ p: inout SpecParameters, defaultFraction: Double) throws -> Budget {
        let r = try p.optionalDouble("r", in: 0...1)
        let t = try p.optionalInt("tokens", in: 0...Int(Int32.max))
        switch (r, t) {
        case (.some, .some): throw MethodSpecError.conflict(method: p.spec.name, reason: "give r or tokens, not both")
        case (.some(let r), nil): return .fraction(r)
        case (nil, .some(let t)): return .tokens(t)
        case (nil, nil): return .fraction(defaultFraction)
        }
    }

    /// The budget over `n` tokens, at most `n`.
    public func count(of n: Int) -> Int {
        switch self {
        case .fraction(let r): min(n, Int((Double(n) * r).rounded(.down)))
        case .tokens(let t): min(n, t)
        }
    }

    /// The budget split evenly over `parts` partitions of `n` tokens each: a fraction applies
    /// to each; an absolute count is divided, the remainder going to the first partitions.
    public func perPartition(parts: Int, n: Int) -> [Int] {
        switch self {
        case .fraction: return Array(repeating: count(of: n), count: parts)
        case .tokens(let t):
            let total = min(t, parts * n)
            return (0..<parts).map { min(n, total / parts + ($0 < total % parts ? 1 : 0)) }
        }
    }

    public var description: String {
        switch self {
        case .fraction(let r): "r=\(r)"
        case .tokens(let t): "tokens=\(t)"
        }
    }
}
