import CQuant
import Synchronization

/// Stored formats Fovea multiplies without converting: ggml's 32-value blocks, and f16 / bf16
/// rows (framed as 32-value blocks of 64 bytes, no scale).
public enum QuantType: Int32, Sendable, CaseIterable {
    case q8_0 = 0, q4_0 = 1, q4_1 = 2, f16 = 3, bf16 = 4, q4_k = 5, q6_k = 6, q5_0 = 7, q5_1 = 8

    /// The block formats have a quantised-activation product; f16 and bf16 take float activations.
    public var hasIntegerProduct: Bool { self != .f16 && self != .bf16 }
    /// Whether Fovea can write this format from float32 (`--weights`); the k-quants and Q5 are
    /// only read as llama-quantize wrote them.
    public var canQuantize: Bool { [.q8_0, .q4_0, .q4_1, .f16, .bf16].contains(self) }

    /// Bytes a weight takes in this format, on average (scales included).
    public var bytesPerWeight: Double { Double(blockBytes) / Double(blockValues) }

    /// Values per block (32; 256 for the k-quants): row lengths are multiples of it.
    public var blockValues: Int { Int(fovea_q_block_values(rawValue)) }

    /// Bytes per block of weights.
    public var blockBytes: Int { fovea_q_block_bytes(rawValue) }

    /// `count` values (a multiple of `blockValues`) from `src` in this format to float32.
    public func dequantize(_ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        fovea_q_dequantize(rawValue, src, out, Int32(count))
    }
    /// Bytes per 32-value block of the quantised activation row it is multiplied with.
    public var activationBlockBytes: Int { fovea_q_act_block_bytes(rawValue) }
}

/// A weight matrix [rows, cols] kept in its stored block format: rows of `cols / blockValues` blocks, read
/// straight from the file's mapping (or from a copy when rows had to be reordered). One-row
/// products (decode) run the integer kernels on a per-block quantised activation, as ggml does;
/// many-row products (prefill) dequantise a band of rows at a time into a BLAS product.
public final class QuantizedMatrix: @unchecked Sendable {
    public let type: QuantType
    public let rows: Int, cols: Int
    public let data: UnsafeRawPointer
    public var rowBytes: Int { cols / type.blockValues * type.blockBytes }
    /// How one-row products treat the activation row (see `Activations`).
    public let activations: Activations
    /// What keeps `data` alive (the mapped file, or an owned copy).
    private let owner: AnyObject?
    private let ownedCopy: UnsafeMutableRawPointer?

    public init(type: QuantType, rows: Int, cols: Int, data: UnsafeRawPointer, owner: AnyObject?, activations: Activations = .float) {
        self.type = type
        self.activations = activations
        self.rows = rows
        self.cols = cols
        self.data = data
        self.owner = owner
        ownedCopy = nil
    }

    /// A copy with rows taken in `order` (row i of the result is row order[i] of `data`).
    public convenience init(type: QuantType, rows: Int, cols: Int, copying data: UnsafeRawPointer, order: [Int], activations: Activations = .float) {
        self.init(type: type, rows: rows, cols: cols, activations: activations) { copy, rb in
            for (i, r) in order.enumerated() { (copy + i * rb).copyMemory(from: data + r * rb, byteCount: rb) }
        }
    }

    /// `x` [rows, cols] (cols a multiple of 32) converted into `type`'s stored format (not the
    /// k-quants: their quantisers search for scales, and Fovea only reads what llama.cpp wrote).
    /// Nil for a format Fovea does not write (`canQuantize`) or rows that are not whole blocks.
    public convenience init?(type: QuantType, rows: Int, cols: Int, quantizing x: UnsafePointer<Float>, activations: Activations = .float) {
        guard type.canQuantize, cols % type.blockValues == 0 else { return nil }
        self.init(type: type, rows: rows, cols: cols, activations: activations) { copy, rb in
            Parallel.forEachChunk(rows, grain: 16) { range in
                for r in range { fovea_q_quantize_weights(type.rawValue, x + r * cols, copy + r * rb, Int32(cols)) }
            }
        }
    }

    /// An owned buffer of `rows` rows that `fill` writes (given the buffer and the row stride).
    private init(type: QuantType, rows: Int, cols: Int, activations: Activations, fill: (UnsafeMutableRawPointer, Int) -> Void) {
        self.type = type
        self.activations = activations
        self.rows = rows
        self.cols = cols
        let rb = cols / type.blockValues * type.blockBytes
        let copy = UnsafeMutableRawPointer.allocate(byteCount: max(1, rows * rb), alignment: 64)
        fill(copy, rb)
        self.data = UnsafeRawPointer(copy)
        ownedCopy = copy
        owner = nil
    }

    deinit { ownedCopy?.deallocate() }

    public var byteCount: Int { rows * rowBytes }

    /// The kernel family one-row products use on this CPU.
    public static var kernelName: String { String(cString: fovea_q_variant_name(-1)) }

    /// How one-row products treat the activation row.
    public enum Activations: Sendable {
        /// x stays float32; weights are dequantised in registers. Matches a float32 copy of the
        /// weights to summation order (transformers' GGUF loader computes that way).
        case float
        /// x is quantised per 32-value block as ggml does (Q8_0, Q8_1 for Q4_1), integer dot products:
        /// llama.cpp's arithmetic, fewer instructions, ~1% logit error on SmolLM2 from activation outliers.
        /// Q8_0 matrices also multiply many rows this way (prefill, vision) where the CPU has
        /// AVX-512 VNNI; the other formats' many-row products stay float through sgemm.
        case int8
        /// For bf16 weights: products of many rows (prefill, the vision tower) round x to bf16 and
        /// multiply with vdpbf16ps, as PyTorch's bf16 autocast and llama.cpp's BF16 path do —
        /// twice sgemm's multiply-adds on AVX-512 BF16. One-row products stay float (decode reads
        /// weights, it does not wait on arithmetic). Other formats multiply as with `.float`.
        case bf16
    }

    /// Whether many-row products of this matrix run the bf16 × bf16 kernel.
    public var usesBF16Product: Bool { type == .bf16 && activations == .bf16 }

    /// Whether many-row products of this matrix run one of Fovea's register-blocked kernels on
    /// this CPU (bf16 × bf16, or Q8_0 × Q8_0 with int8 activations) rather than sgemm.
    public var usesOwnManyRowProduct: Bool {
        (usesBF16Product && (Self.amxAvailable || Self.bf16KernelAvailable)) || (type == .q8_0 && activations == .int8 && Self.q8KernelAvailable)
            || ((type == .f16 || type == .bf16) && Self.halfKernelAvailable)
    }

    /// Whether this CPU has AVX-512F for the F16/BF16 × float32 many-row kernel.
    public static var halfKernelAvailable: Bool { fovea_half_gemm_available() != 0 }

    /// Whether this CPU has AVX-512 VNNI for the Q8_0 × Q8_0 many-row kernel.
    public static var q8KernelAvailable: Bool { fovea_q8_gemm_available() != 0 }

    /// Whether this CPU has AVX-512 BF16 for the bf16 × bf16 kernel.
    public static var bf16KernelAvailable: Bool { fovea_bf16_gemm_available() != 0 }

    /// Whether bf16 × bf16 products run on AMX tiles: the CPU has AMX-BF16, the kernel granted the
    /// tile state, and a first product through the tiles matched their software model.
    public static var amxAvailable: Bool { fovea_amx_available() != 0 }

    /// Why AMX is or is not used, for reports.
    public static var amxStatus: String { String(cString: fovea_amx_status()) }

    /// Fovea's own many-row kernels this CPU runs, for reports.
    public static var manyRowKernels: String {
        var own: [String] = []
        if halfKernelAvailable { own.append("F16/BF16 × f32 AVX-512") }
        if q8KernelAvailable { own.append("Q8_0 × Q8_0 VNNI (--activations int8)") }
        if amxAvailable { own.append("bf16 × bf16 AMX tiles (--activations bf16)") }
        else if bf16KernelAvailable { own.append("bf16 × bf16 vdpbf16ps (--activations bf16)") }
        let text = own.isEmpty ? "sgemm on widened bands" : own.joined(separator: ", ") + "; other formats sgemm on widened bands"
        return CPUFeatures.flags.contains("amx_bf16") && !amxAvailable ? text + " (AMX unused: \(amxStatus))" : text
    }

    /// The kernel many-row bf16 products use on this CPU.
    public static var bf16ProductName: String {
        amxAvailable ? "AMX (tdpbf16ps)" : bf16KernelAvailable ? "AVX-512 BF16 (vdpbf16ps)" : "bf16-rounded activations through sgemm"
    }

    /// y[rows] = W · x (one activation row). `variant` 0 forces the scalar twin (tests).
    public func gemv(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, activations: Activations? = nil, variant: Int32 = -1) {
        Self.products([(self, y)], x: x, activations: activations, variant: variant)
    }

    /// One-row products of several matrices against the same x (Q, K and V; gate and up) in one
    /// parallel region, x quantised once. False, with nothing written, unless every matrix has
    /// the first one's type, width and activations; the caller then multiplies them one by one.
    /// A small model's decode is some 200 such products a token, and the hand-offs between
    /// them, not the kernel, are what two cores wait on.
    public static func gemv(_ parts: [(matrix: QuantizedMatrix, y: UnsafeMutablePointer<Float>)], x: UnsafePointer<Float>) -> Bool {
        guard let first = parts.first?.matrix else { return true }
        guard parts.allSatisfy({ $0.matrix.type == first.type && $0.matrix.cols == first.cols && $0.matrix.activations == first.activations })
        else { return false }
        products(parts, x: x, activations: nil, variant: -1)
        return true
    }

    /// The rows of `parts` (one type and width) as one range split over the cores, in chunks big
    /// enough to pay for a thread (≈ 64 K weights each); x quantised once where int8.
    private static func products(_ parts: [(matrix: QuantizedMatrix, y: UnsafeMutablePointer<Float>)], x: UnsafePointer<Float>,
                                 activations: Activations?, variant: Int32) {
        let first = parts[0].matrix
        let (type, cols) = (first.type, first.cols)
        let activations = type.hasIntegerProduct ? activations ?? first.activations : .float
        let total = parts.reduce(0) { $0 + $1.matrix.rows }
        func run(_ product: (QuantizedMatrix, UnsafeMutablePointer<Float>, Int32, Int32) -> Void) {
            Parallel.forEachChunk(total, grain: max(16, 65_536 / max(cols, 1)), spin: true) { range in
                var start = 0
                for p in parts {
                    let lo = max(range.lowerBound, start), hi = min(range.upperBound, start + p.matrix.rows)
                    if lo < hi { product(p.matrix, p.y, Int32(lo - start), Int32(hi - start)) }
                    start += p.matrix.rows
                }
            }
        }
        if activations != .int8 {
            run { m, y, r0, r1 in fovea_q_gemv_f32(type.rawValue, m.data, m.rowBytes, Int32(cols), x, y, r0, r1, variant) }
            return
        }
        withUnsafeTemporaryAllocation(byteCount: cols / 32 * type.activationBlockBytes, alignment: 64) { act in
            fovea_q_quantize_act(type.rawValue, x, act.baseAddress, Int32(cols))
            let a = UnsafeRawPointer(act.baseAddress!)
            run { m, y, r0, r1 in fovea_q_gemv(type.rawValue, m.data, m.rowBytes, Int32(cols), a, y, r0, r1, variant) }
        }
    }

    /// Row `r` as float32.
    public func dequantize(row r: Int, into out: UnsafeMutablePointer<Float>) {
        fovea_q_dequantize(type.rawValue, data + r * rowBytes, out, Int32(cols))
    }

    /// y[n, rows] = x[n, cols] · Wᵀ, through BLAS on float32 bands of weight rows (at most 64 MB
    /// of scratch: a 1.1 B model's largest matrix in one band), so prefill keeps BLAS speed without
    /// a float32 model in memory. Few, large bands matter: every switch between widening (our
    /// threads) and sgemm (OpenBLAS's, which spin after each call) costs both sides the CPU.
    /// `band` overrides the rows per band (tests).
    public func gemm(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, band: Int? = nil) {
        if usesBF16Product {
            if Self.amxAvailable && band == nil { return gemmAMX(x, rows: n, into: y) }
            return Self.bf16KernelAvailable && band == nil ? gemmBF16(x, rows: n, into: y) : gemmRoundedBF16(x, rows: n, into: y, band: band)
        }
        if type == .q8_0 && activations == .int8 && Self.q8KernelAvailable { return gemmQ8(x, rows: n, into: y) }
        if (type == .f16 || type == .bf16) && Self.halfKernelAvailable && band == nil { return gemmHalf(x, rows: n, into: y) }
        widenedGemm(x, rows: n, into: y, band: band)
    }

    /// bf16 × bf16 with vdpbf16ps: x packed once (threads split its panels), then each thread
    /// repacks 32-row weight panels and keeps a 12 × 32 tile of sums in registers. `variant` 0
    /// forces the scalar twin (tests).
    public func gemmBF16(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, variant: Int32 = -1) {
        packedGemm(x, rows: n, into: y, panelRows: fovea_bf16_panel_rows(), actBytes: fovea_bf16_act_bytes,
                   pack: fovea_bf16_pack_act, weightPanelBytes: fovea_bf16_weight_panel_bytes, product: fovea_bf16_gemm, variant: variant)
    }

    /// bf16 × bf16 on AMX tiles: x packed in 32-row panels of 32-column blocks, each thread's
    /// 32-row weight panels in the tiles' pair layout, four 16 × 16 tiles of sums per 32 × 32
    /// block of y. `variant` 0 runs the software model of the tiles (tests, and CPUs without AMX).
    public func gemmAMX(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, variant: Int32 = -1) {
        packedGemm(x, rows: n, into: y, panelRows: fovea_amx_panel_rows(), actBytes: fovea_amx_act_bytes,
                   pack: fovea_amx_pack_act, weightPanelBytes: fovea_amx_weight_panel_bytes, product: fovea_amx_gemm, variant: variant)
    }

    /// bf16 × bf16 on a CPU without AVX-512 BF16: the same operands (x rounded to bf16) through
    /// the float path, so answers match `gemmBF16`'s up to the order of float32 sums.
    public func gemmRoundedBF16(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, band: Int? = nil) {
        let rounded = WideningScratch.take(max(1, n * cols))
        defer { WideningScratch.give(rounded) }
        fovea_bf16_round(x, rounded.pointer, Int32(n * cols))
        if Self.halfKernelAvailable && band == nil { return gemmHalf(rounded.pointer, rows: n, into: y) }
        widenedGemm(rounded.pointer, rows: n, into: y, band: band)
    }

    /// Q8_0 × Q8_0 with vpdpbusd (llama.cpp's arithmetic): x quantised per block and packed once,
    /// a 6 × 32 tile of int32 block sums folded into float32 sums per block. `variant` 0 forces
    /// the scalar twin (tests).
    public func gemmQ8(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, variant: Int32 = -1) {
        packedGemm(x, rows: n, into: y, panelRows: fovea_q8_panel_rows(), actBytes: fovea_q8_act_bytes,
                   pack: fovea_q8_pack_act, weightPanelBytes: fovea_q8_weight_panel_bytes, product: fovea_q8_gemm, variant: variant)
    }

    /// F16/BF16 × float32 (the float path): each thread widens 32-row weight panels into L2 and
    /// keeps a 12 × 32 tile of float32 sums in registers, instead of widening bands for sgemm.
    public func gemmHalf(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, variant: Int32 = -1) {
        let format = type.rawValue
        packedGemm(x, rows: n, into: y, panelRows: fovea_half_panel_rows(), actBytes: fovea_half_act_bytes,
                   pack: fovea_half_pack_act, weightPanelBytes: fovea_half_weight_panel_bytes,
                   product: { fovea_half_gemm(format, $0, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) }, variant: variant)
    }

    /// The register-blocked products' common frame: activations packed in panels over the cores,
    /// then 32-row weight panels split over the cores, each thread with its own repacking buffer.
    private func packedGemm(
        _ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, panelRows: Int32,
        actBytes: (Int32, Int32) -> Int,
        pack: (UnsafePointer<Float>?, Int32, Int32, UnsafeMutableRawPointer?, Int32, Int32) -> Void,
        weightPanelBytes: (Int32) -> Int,
        product: (UnsafeRawPointer?, Int, Int32, Int32, UnsafeRawPointer?, Int32, UnsafeMutablePointer<Float>?, Int, Int32, Int32, UnsafeMutableRawPointer?, Int32) -> Void,
        variant: Int32
    ) {
        let panels = (n + Int(panelRows) - 1) / Int(panelRows)
        let packed = WideningScratch.take((actBytes(Int32(n), Int32(cols)) + 3) / 4)
        defer { WideningScratch.give(packed) }
        let act = UnsafeMutableRawPointer(packed.pointer)
        let (k, total, w, rb) = (Int32(cols), Int32(rows), data, rowBytes)
        Parallel.forEachChunk(panels, grain: 4) { range in
            pack(x, Int32(n), k, act, Int32(range.lowerBound), Int32(range.upperBound))
        }
        Parallel.forEachChunk((rows + 31) / 32, grain: 2) { range in
            let panel = UnsafeMutableRawPointer.allocate(byteCount: weightPanelBytes(k), alignment: 64)
            defer { panel.deallocate() }
            product(w, rb, k, total, act, Int32(n), y, rows, Int32(range.lowerBound * 32),
                    Int32(min(rows, range.upperBound * 32)), panel, variant)
        }
    }

    /// Weights widened to float32 in bands, multiplied by sgemm.
    private func widenedGemm(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, band: Int?) {
        let band = max(1, band ?? max(256, (1 << 24) / max(cols, 1)))
        let scratch = WideningScratch.take(min(band, rows) * cols)
        defer { WideningScratch.give(scratch) }
        var r0 = 0
        while r0 < rows {
            let r1 = min(rows, r0 + band)
            Parallel.forEachChunk(r1 - r0, grain: 16) { range in
                for r in range { self.dequantize(row: r0 + r, into: scratch.pointer + r * self.cols) }
            }
            BLAS.gemm(transB: true, m: n, n: r1 - r0, k: cols, a: x, lda: cols, b: scratch.pointer, ldb: cols, c: y + r0, ldc: rows)
            r0 = r1
        }
    }
}

/// The float32 band `gemm` widens weights into, kept between calls: a fresh 16–64 MB buffer per
/// product would be page-faulted and zeroed by the kernel each time (glibc maps buffers that
/// large anew), some 4 GB a prefill for a 1.1 B model. Two buffers are cached, since the bf16
/// fallback holds its rounded activations while the product under it takes a second; a further
/// concurrent caller allocates its own.
enum WideningScratch {
    private struct Buffer: @unchecked Sendable { var pointer: UnsafeMutablePointer<Float>; var capacity: Int }
    private static let cached = Mutex<[Buffer]>([])
    private static let slots = 2

    static func take(_ count: Int) -> (pointer: UnsafeMutablePointer<Float>, capacity: Int) {
        let hit = cached.withLock { list -> Buffer? in
            // The smallest buffer that fits, so a large one stays for the large need.
            guard let i = list.indices.filter({ list[$0].capacity >= count }).min(by: { list[$0].capacity < list[$1].capacity }) else { return nil }
            return list.remove(at: i)
        }
        if let hit { return (hit.pointer, hit.capacity) }
        return (UnsafeMutablePointer<Float>.allocate(capacity: count), count)
    }

    static func give(_ b: (pointer: UnsafeMutablePointer<Float>, capacity: Int)) {
        let evicted = cached.withLock { list -> Buffer? in
            list.append(Buffer(pointer: b.pointer, capacity: b.capacity))
            guard list.count > slots, let i = list.indices.min(by: { list[$0].capacity < list[$1].capacity }) else { return nil }
            return list.remove(at: i)
        }
        evicted?.pointer.deallocate()
    }
}
