#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// The one door to the system BLAS (OpenBLAS on Linux, Accelerate on Apple).
/// Every matrix product in Fovea goes through `gemm`, row-major.
public enum BLAS {
    /// C[m×n] = alpha · op(A) · op(B) + beta · C, all row-major.
    /// `op(A)` is m×k (A stored k×m when `transA`), `op(B)` is k×n (B stored n×k when `transB`).
    @inline(__always)
    public static func gemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        #if canImport(Accelerate)
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        #else
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
        #endif
    }

    /// y[m] = alpha · A[m×n] · x[n] + beta · y, A row-major with leading dimension `lda`.
    /// One-row products (decode steps) go here: sgemm with m = 1 runs well below memory speed.
    @inline(__always)
    public static func gemv(m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>) {
        if m == 0 { return }
        #if canImport(Accelerate)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda), x, 1, beta, y, 1)
        #else
        cblas_sgemv(CblasRowMajor, CblasNoTrans, blasint(m), blasint(n), alpha, a, blasint(lda), x, 1, beta, y, 1)
        #endif
    }

    /// Threads the BLAS library uses for one product (OpenBLAS only; Accelerate picks its own).
    public static var threads: Int {
        #if canImport(Accelerate)
        return 1
        #else
        return Int(openblas_get_num_threads())
        #endif
    }

    /// The library and the kernels it chose for this CPU ("OpenBLAS 0.3.21 … (core COOPERLAKE)"),
    /// for benchmark headers: a generic core here means every product runs slow.
    public static var description: String {
        #if canImport(Accelerate)
        return "Accelerate"
        #else
        let config = String(cString: openblas_get_config()).trimmingCharacters(in: .whitespaces)
        return "\(config) (core \(String(cString: openblas_get_corename())), \(threads) threads)"
        #endif
    }

    /// OpenBLAS's thread count at start-up (OPENBLAS_NUM_THREADS, or the cores it may use).
    /// A lazy `static let` reads it on first use, so `setThreads` touches it before its first
    /// change: read only afterwards, it recorded the changed count, and a vision tower on Fovea's
    /// own kernels (which sets one thread) left every later sgemm stage of the process on one
    /// core (LLaVA-NeXT-7B's Full prefill on a 2-core AVX-512 EPYC ran at 1.08 cores).
    public static let startupThreads: Int = threads

    /// A stage whose big products run on Fovea's own kernels (bf16 × bf16, Q8_0 × Q8_0) leaves
    /// OpenBLAS only attention's small products, and its threads, spinning between calls, would
    /// take the cores from Fovea's (TinyLLaVA shapes' bf16 vision on 2 cores: 2.51 s with two
    /// OpenBLAS threads, 1.88 s with one). Such a stage runs OpenBLAS on one thread, and the
    /// attention kernel splits heads over the cores instead; stages that multiply through sgemm
    /// get the start-up count back. Called at the start of the vision tower and of prefill.
    public static func fitThreads(ownProducts: Bool) {
        let want = ownProducts ? 1 : startupThreads
        if threads != want { setThreads(want) }
    }

    public static func setThreads(_ n: Int) {
        _ = startupThreads
        #if !canImport(Accelerate)
        openblas_set_num_threads(Int32(n))
        #endif
    }
}
