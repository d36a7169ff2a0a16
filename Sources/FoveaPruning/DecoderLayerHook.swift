import FoveaCore
import FoveaKV

/// An in-LLM pruner (FastV, DART in its authors' form): during prefill, just before decoder
/// layer `layer` runs, it reads what it asked for from layer `layer − 1` and names the rows
/// that go on. Dropped rows leave the hidden states of every later layer and those layers'
/// caches; earlier layers keep them. Rows keep their position ids.
public protocol DecoderLayerHook: Sendable {
    /// The first layer that no longer sees the dropped rows (≥ 1).
    var layer: Int { get }
    var needs: LayerHookNeeds { get }
    /// Rows of the current sequence to keep, ascending; every non-image row must stay.
    func keep(_ context: LayerHookContext) throws -> [Int]
    /// The image tokens it is asked to keep out of `n` (the nominal budget reported).
    func nominal(imageTokens n: Int) -> Int
}

public struct LayerHookNeeds: Sendable, Equatable {
    /// Layer − 1's attention from the last query row, averaged over heads.
    public var lastRow = false
    /// Layer − 1's attention averaged over heads and over every query row that can see the key.
    public var columnMean = false
    /// Layer − 1's keys (after RoPE) for the current rows.
    public var keys = false
    /// The hidden states entering the layer with the model's final norm applied.
    public var normedHidden = false

    public init(lastRow: Bool = false, columnMean: Bool = false, keys: Bool = false, normedHidden: Bool = false) {
        self.lastRow = lastRow
        self.columnMean = columnMean
        self.keys = keys
        self.normedHidden = normedHidden
    }
}

/// What a hook sees. Buffers are borrowed for the call only.
public struct LayerHookContext {
    public let layer: Int
    public let rows: Int
    public let origins: [TokenOrigin]
    public let positions: [Int32]
    /// [rows, hiddenWidth]: the input of `layer`.
    public let hidden: UnsafePointer<Float>
    public let hiddenWidth: Int
    /// [rows, hiddenWidth] when `needs.normedHidden`.
    public let normedHidden: UnsafePointer<Float>?
    /// [rows, keyWidth] when `needs.keys`.
    public let keys: UnsafePointer<Float>?
    public let keyWidth: Int
    /// [rows] when `needs.lastRow`.
    public let lastRow: [Float]?
    /// [rows] when `needs.columnMean`.
    public let columnMean: [Float]?

    public init(layer: Int, rows: Int, origins: [TokenOrigin], positions: [Int32], hidden: UnsafePointer<Float>, hiddenWidth: Int,
                normedHidden: UnsafePointer<Float>?, keys: UnsafePointer<Float>?, keyWidth: Int, lastRow: [Float]?, columnMean: [Float]?) {
        self.layer = layer
        self.rows = rows
        self.origins = origins
        self.positions = positions
        self.hidden = hidden
        self.hiddenWidth = hiddenWidth
        self.normedHidden = normedHidden
        self.keys = keys
        self.keyWidth = keyWidth
        self.lastRow = lastRow
        self.columnMean = columnMean
    }

    public var imageRows: [Int] { origins.indices.filter { origins[$0] == .image } }

    /// `kept` image rows plus every other row, ascending.
    public func keeping(imageRows kept: [Int]) -> [Int] {
        let k = Set(kept)
        return origins.indices.filter { origins[$0] != .image || k.contains($0) }
    }
}
