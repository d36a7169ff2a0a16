import FoveaCore

/// Where a pruning method acts.
public enum PruningStage: Sendable {
    /// Nothing is dropped.
    case none
    /// Between the vision tower and the projector.
    case beforeLLM(any VisualTokenPruner)
    /// Inside the language model's prefill.
    case inLLM(any DecoderLayerHook)
}

/// Position ids of the rows that survive: `orig` keeps each token's place in the unpruned
/// sequence (what FastV, DART and NVIDIA do); `renumber` closes the gaps (HiRED's authors).
public enum PositionMode: String, CaseIterable, Sendable {
    case orig, renumber
}

/// A parsed `--prune` spec: the method, and how the pipeline treats what it keeps.
///
/// Keys every before-LLM method takes: `pos=orig|renumber` (default `orig`: on the trained
/// test model, keeping the top 20% by CLS attention scored 90% with original positions and 79%
/// renumbered) and `newline=on|off` (LLaVA-NeXT's `image_newline` after each grid row that
/// keeps a token; default off, as HiRED's authors ran it).
public struct PruningPlan: Sendable, CustomStringConvertible {
    public let spec: MethodSpec
    public let stage: PruningStage
    public let positions: PositionMode
    public let newline: Bool

    public init(spec: MethodSpec, stage: PruningStage, positions: PositionMode = .orig, newline: Bool = false) {
        self.spec = spec
        self.stage = stage
        self.positions = positions
        self.newline = newline
    }

    /// No pruning: every visual token, newlines as the model packs them.
    public static let full = PruningPlan(spec: MethodSpec(name: "full"), stage: .none, positions: .orig, newline: true)

    public var description: String { spec.description }
    public var isFull: Bool { if case .none = stage { return true }; return false }

    /// Parses `name:key=value,...`; errors list the valid methods or keys.
    public init(parsing text: String) throws {
        let spec = try MethodSpec(parsing: text)
        guard let entry = PruningRegistry.entries.first(where: { $0.name == spec.name }) else {
            throw MethodSpecError.unknownMethod(name: spec.name, valid: PruningRegistry.entries.map(\.name))
        }
        var p = SpecParameters(spec)
        let stage = try entry.make(&p)
        switch stage {
        case .none:
            try p.finish()
            self = PruningPlan(spec: spec, stage: .none, positions: .orig, newline: true)
        case .beforeLLM:
            let pos = try p.choice("pos", default: PositionMode.orig)
            let newline = try p.flag("newline", default: false)
            try p.finish()
            self = PruningPlan(spec: spec, stage: stage, positions: pos, newline: newline)
        case .inLLM:
            let pos = try p.choice("pos", default: PositionMode.orig)
            try p.finish()
            guard pos == .orig else {
                throw MethodSpecError.conflict(method: spec.name, reason:
                    "pos=renumber is not available in the LLM: the layers before the cut already hold the full sequence's positions")
            }
            self = PruningPlan(spec: spec, stage: stage, positions: .orig, newline: true)
        }
    }
}

/// Name → factory for every pruning method; the CLI's help, the library and the harness read it.
public enum PruningRegistry {
    public struct Entry: Sendable {
        public let name: String
        public let summary: String
        let make: @Sendable (inout SpecParameters) throws -> PruningStage
    }

    public static let entries: [Entry] = [
        Entry(name: "full", summary: "keep every visual token") { _ in .none },
        Entry(name: "hired", summary: "HiRED: CLS-attention budget across tiles, then within (r, tokens, alpha, early, late, rule=paper|code, marks, redistribute, score=cls|received)") {
            .beforeLLM(try HiRED(&$0))
        },
        Entry(name: "visionzip", summary: "VisionZip: dominant + merged contextual tokens (r, tokens, contextual, cls)") {
            .beforeLLM(try VisionZip(&$0))
        },
        Entry(name: "dart", summary: "DART: least-duplicate tokens around pivots (where=llm|embed, r, tokens, pivots, text_pivots, k)") { p in
            let d = try DART(&p)
            return d.site == .llm ? .inLLM(d) : .beforeLLM(d)
        },
        Entry(name: "fastv", summary: "FastV: drop low-attention image tokens at LLM layer k (k, ratio, tokens, rule=last|all)") {
            .inLLM(try FastV(&$0))
        },
        Entry(name: "random", summary: "control: seeded random patches (r, tokens, seed)") { .beforeLLM(try RandomPruner(&$0)) },
        Entry(name: "uniform", summary: "control: patches at an even stride (r, tokens)") { .beforeLLM(try UniformPruner(&$0)) },
        Entry(name: "downsample", summary: "control: k×k average pooling (k, or r)") { .beforeLLM(try Downsample(&$0)) },
    ]

    /// One line per method, for `--help`.
    public static var help: String {
        entries.map { "\($0.name): \($0.summary)" }.joined(separator: "\n")
    }
}
