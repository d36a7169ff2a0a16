import FoveaCore
import FoveaIO

/// Resolves checkpoint tensor names across the naming schemes LLaVA checkpoints use:
///
/// | component | transformers < 4.52 (llava-hf) | 4.52 – 4.x | as transformers 5 saves |
/// |---|---|---|---|
/// | decoder | `language_model.model.*` | `model.language_model.*` | `language_model.model.*` |
/// | LM head | `language_model.lm_head.weight` | `lm_head.weight` | `language_model.lm_head.weight` |
/// | vision | `vision_tower.vision_model.*` | `model.vision_tower.vision_model.*` | `vision_tower.*` |
/// | projector, newline | `multi_modal_projector.*`, `image_newline` | `model.` + those | as < 4.52 |
///
/// Text-only Llama checkpoints use `model.*` and `lm_head.weight`; a bare vision checkpoint
/// (`Dinov2Model` as the Hub has it) has no prefix. Each component's prefix
/// is found once by probing for a tensor it must have.
public struct WeightScope: Sendable {
    public let store: any TensorSource
    public let prefix: String

    public init(store: any TensorSource, prefix: String) {
        self.store = store
        self.prefix = prefix
    }

    /// The first candidate prefix under which `probe` exists.
    public static func resolve(_ store: any TensorSource, candidates: [String], probe: String) throws -> WeightScope {
        for c in candidates where store.contains(c + probe) { return WeightScope(store: store, prefix: c) }
        throw FoveaError.missingTensor(name: probe, searched: candidates.map { $0 + probe })
    }

    public func scoped(_ sub: String) -> WeightScope { WeightScope(store: store, prefix: prefix + sub) }

    public func tensor(_ name: String, _ shape: [Int]) throws -> Tensor {
        try store.tensor(prefix + name, shape: shape)
    }

    public func quantized(_ name: String, _ shape: [Int]) throws -> QuantizedMatrix? {
        try store.quantized(prefix + name, shape: shape)
    }

    public func optional(_ name: String, _ shape: [Int]) throws -> Tensor? {
        store.contains(prefix + name) ? try tensor(name, shape) : nil
    }

    public func contains(_ name: String) -> Bool { store.contains(prefix + name) }
}

enum CheckpointScopes {
    static let language = ["language_model.model.", "model.language_model.", "model.", ""]
    static let lmHead = ["language_model.", "", "model."]
    static let vision = ["vision_tower.vision_model.", "model.vision_tower.vision_model.", "vision_tower.", "model.vision_tower.", ""]
    static let projector = ["multi_modal_projector.", "model.multi_modal_projector."]
    static let top = ["", "model."]
}
