import Foundation
import FoveaCore

/// How the next token is chosen.
public struct SamplingParameters: Sendable, Equatable {
    /// 0 = greedy (argmax, lowest id on ties).
    public var temperature: Float
    /// Nucleus mass kept, in (0, 1]; 1 keeps every token.
    public var topP: Float
    public var seed: UInt64

    public init(temperature: Float = 0, topP: Float = 1, seed: UInt64 = 0) throws {
        guard temperature >= 0, temperature.isFinite else {
            throw SamplingError.invalid("temperature must be ≥ 0, got \(temperature)")
        }
        guard topP > 0, topP <= 1 else { throw SamplingError.invalid("top-p must be in (0, 1], got \(topP)") }
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
    }

    public static let greedy = try! SamplingParameters()
}

public enum SamplingError: Error, LocalizedError, Sendable {
    case invalid(String)
    public var errorDescription: String? { if case .invalid(let s) = self { return s }; return nil }
}

public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    var rng: SplitMix64
    /// Reused between steps: (probability, id) pairs for top-p.
    var candidates: [(Float, Int)] = []

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        rng = SplitMix64(seed: parameters.seed)
    }

    public static func argmax(_ logits: UnsafePointer<Float>, count: Int) -> Int {
        var best = 0
        for i in 1..<count where logits[i] > logits[best] { best = i }
        return best
    }

    /// Picks a token from one row of logits.
    public mutating func sample(_ logits: UnsafePointer<Float>, count: Int) -> Int {
        if parameters.temperature == 0 { return Self.argmax(logits, count: count) }
        let invT = 1 / parameters.temperature
        var m = -Float.infinity
        for i in 0..<count { m = max(m, logits[i] * invT) }
        candidates.removeAll(keepingCapacity: true)
        var total: Float = 0
        for i in 0..<count {
            let p = expf(logits[i] * invT - m)
            total += p
            candidates.append((p, i))
        }
        var limit = total
        if parameters.topP < 1 {
            // Smallest set of most likely tokens whose mass reaches top-p (ties by lower id).
            candidates.sort { $0.0 != $1.0 ? $0.0 > $1.0 : $0.1 < $1.1 }
            var mass: Float = 0
            var keep = 0
            for (p, _) in candidates {
                mass += p
                keep += 1
                if mass >= parameters.topP * total { break }
            }
            candidates.removeSubrange(keep...)
            limit = mass
        }
        let u = Float(Double(rng.next() >> 11) / Double(1 << 53)) * limit
        var acc: Float = 0
        for (p, i) in candidates {
            acc += p
            if u < acc { return i }
        }
        return candidates.last!.1
    }
}
