// exp over float32 vectors, for softmax and the exp-based activations (quick_gelu, SiLU, SwiGLU).
// libm's expf is one call per value: in a CLIP-L/336 tower's 24 layers that is 185 million calls
// (577² scores × 16 heads, 577 × 4096 quick_gelu inputs, per layer), several percent of an image
// encode. Here exp is Cephes' expf polynomial (within 2 ulp of the true value over the whole
// range), evaluated 16 or 8 lanes at a time:
//   n = round(x·log2 e),  r = x − n·ln 2 (ln 2 in two parts, so r is exact to a few ulp),
//   exp(x) = 2ⁿ · (1 + r + r²·P(r)).
// The AVX-512 and AVX2 kernels and the scalar twin perform the same fused multiply-adds in the
// same order and scale by 2ⁿ with one correctly rounded step, so all three give the same bits.
// Inputs are clamped to [−104, 89] first: beyond, the result is 0 or +inf either way; NaN stays NaN.
#include "fovea_quant.h"
#include <math.h>
#include <stddef.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define FOVEA_X86 1
#endif

#define EXP_LO (-104.0f)
#define EXP_HI 89.0f
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO (-2.12194440e-4f)
#define P0 1.9875691500e-4f
#define P1 1.3981999507e-3f
#define P2 8.3334519073e-3f
#define P3 4.1665795894e-2f
#define P4 1.6666665459e-1f
#define P5 5.0000001201e-1f

static inline float exp_scalar(float x) {
    if (x != x) return x;
    x = x < EXP_LO ? EXP_LO : x > EXP_HI ? EXP_HI : x;
    const float n = nearbyintf(x * LOG2E);
    float r = fmaf(n, -LN2_HI, x);
    r = fmaf(n, -LN2_LO, r);
    float p = fmaf(P0, r, P1);
    p = fmaf(p, r, P2);
    p = fmaf(p, r, P3);
    p = fmaf(p, r, P4);
    p = fmaf(p, r, P5);
    const float y = fmaf(p, r * r, r) + 1.0f;
    return ldexpf(y, (int)n);
}

#ifdef FOVEA_X86
__attribute__((target("avx512f")))
static inline __m512 exp16(__m512 x) {
    // max(lo, x) and min(hi, x) return x when x is NaN (the second operand), so NaN passes through.
    x = _mm512_min_ps(_mm512_set1_ps(EXP_HI), _mm512_max_ps(_mm512_set1_ps(EXP_LO), x));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_HI), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_LO), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(P0), r, _mm512_set1_ps(P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P5));
    const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(y, n);   // y·2ⁿ, rounded once, subnormal and overflow included
}

__attribute__((target("avx2,fma")))
static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_set1_ps(EXP_HI), _mm256_max_ps(_mm256_set1_ps(EXP_LO), x));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_HI), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_LO), r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(P0), r, _mm256_set1_ps(P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P5));
    const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    // 2ⁿ as two normal powers 2^⌊n/2⌋ · 2^(n−⌊n/2⌋) (n ∈ [−150, 129]): the first product is exact,
    // the second rounds once, as scalef and ldexpf do, subnormal results included.
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i h1 = _mm256_srai_epi32(ni, 1), h2 = _mm256_sub_epi32(ni, h1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h1, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h2, bias), 23));
    const __m256 e = _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
    // NaN lanes: n is NaN, its integer conversion meaningless; give the input back.
    return _mm256_blendv_ps(e, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

static int has_avx512(void) {
    static int ok = -1;
    if (ok < 0) { __builtin_cpu_init(); ok = __builtin_cpu_supports("avx512f"); }
    return ok;
}

static int has_avx2(void) {
    static int ok = -1;
    if (ok < 0) { __builtin_cpu_init(); ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
    return ok;
}
#endif

// variant: −1 the best this CPU has, 0 the scalar twin, 1 AVX2, 2 AVX-512 (tests ask for each).
// An x86 CPU without AVX2 + FMA (before 2013) runs the twin, whose fmaf is then emulated in
// software: correct, slower than libm's expf. No machine this project targets is one.
static int kernel(int variant) {
#ifdef FOVEA_X86
    if (variant < 0) return has_avx512() ? 2 : has_avx2() ? 1 : 0;
    if (variant == 2 && !has_avx512()) return -1;
    if (variant == 1 && !has_avx2()) return -1;
    return variant;
#else
    return variant <= 0 ? 0 : -1;
#endif
}

int fovea_exp_available(int variant) { return kernel(variant) >= 0; }

// AVX-512 kernels take the ragged tail with a lane mask, AVX2 ones with the scalar twin.
#ifdef FOVEA_X86
__attribute__((target("avx512f")))
static void exp_avx512(const float *x, float *y, int n) {
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, exp16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

__attribute__((target("avx512f")))
static float softmax_avx512(float *x, int n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 16 <= n; i += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(x + i));
    float m = _mm512_reduce_max_ps(mx);
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    if (m == -INFINITY) return m;
    const __m512 vm = _mm512_set1_ps(m);
    __m512 s = _mm512_setzero_ps();
    for (i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm));
        _mm512_mask_storeu_ps(x + i, k, e);
        s = _mm512_add_ps(s, _mm512_maskz_mov_ps(k, e));
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(s));
    for (i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv));
    }
    return m;
}

__attribute__((target("avx512f")))
static void swish_avx512(float *x, const float *up, int n, float beta) {
    const __m512 one = _mm512_set1_ps(1.0f), nb = _mm512_set1_ps(-beta);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        __m512 r = _mm512_div_ps(v, _mm512_add_ps(one, exp16(_mm512_mul_ps(nb, v))));
        if (up) r = _mm512_mul_ps(r, _mm512_maskz_loadu_ps(k, up + i));
        _mm512_mask_storeu_ps(x + i, k, r);
    }
}

__attribute__((target("avx2,fma")))
static void exp_avx2(const float *x, float *y, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = exp_scalar(x[i]);
}

__attribute__((target("avx2,fma")))
static float softmax_avx2(float *x, int n) {
    __m256 mx = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + 8 <= n; i += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(x + i));
    float lanes[8], m = -INFINITY;
    _mm256_storeu_ps(lanes, mx);
    for (int j = 0; j < 8; j++) m = lanes[j] > m ? lanes[j] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    if (m == -INFINITY) return m;
    const __m256 vm = _mm256_set1_ps(m);
    __m256 s = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        s = _mm256_add_ps(s, e);
    }
    _mm256_storeu_ps(lanes, s);
    float sum = 0;
    for (int j = 0; j < 8; j++) sum += lanes[j];
    for (; i < n; i++) { x[i] = exp_scalar(x[i] - m); sum += x[i]; }
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; i++) x[i] *= 1.0f / sum;
    return m;
}

__attribute__((target("avx2,fma")))
static void swish_avx2(float *x, const float *up, int n, float beta) {
    const __m256 one = _mm256_set1_ps(1.0f), nb = _mm256_set1_ps(-beta);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        __m256 r = _mm256_div_ps(v, _mm256_add_ps(one, exp8(_mm256_mul_ps(nb, v))));
        if (up) r = _mm256_mul_ps(r, _mm256_loadu_ps(up + i));
        _mm256_storeu_ps(x + i, r);
    }
    for (; i < n; i++) { const float v = x[i]; x[i] = v / (1.0f + exp_scalar(-beta * v)) * (up ? up[i] : 1.0f); }
}
#endif

void fovea_exp(const float *x, float *y, int n, int variant) {
    switch (kernel(variant)) {
#ifdef FOVEA_X86
    case 2: exp_avx512(x, y, n); return;
    case 1: exp_avx2(x, y, n); return;
#endif
    case 0: for (int i = 0; i < n; i++) y[i] = exp_scalar(x[i]); return;
    default: for (int i = 0; i < n; i++) y[i] = NAN; return;
    }
}

void fovea_softmax_row(float *x, int n, int variant) {
    float m = -INFINITY;
    switch (kernel(variant)) {
#ifdef FOVEA_X86
    case 2: m = softmax_avx512(x, n); break;
    case 1: m = softmax_avx2(x, n); break;
#endif
    default: {
        for (int i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
        if (m == -INFINITY) break;
        float s = 0;
        for (int i = 0; i < n; i++) { x[i] = exp_scalar(x[i] - m); s += x[i]; }
        const float inv = 1.0f / s;
        for (int i = 0; i < n; i++) x[i] *= inv;
    }
    }
    // Every key masked: the row is zeros, not NaN.
    if (m == -INFINITY) for (int i = 0; i < n; i++) x[i] = 0;
}

void fovea_swish(float *x, const float *up, int n, float beta, int variant) {
    switch (kernel(variant)) {
#ifdef FOVEA_X86
    case 2: swish_avx512(x, up, n, beta); return;
    case 1: swish_avx2(x, up, n, beta); return;
#endif
    default:
        for (int i = 0; i < n; i++) { const float v = x[i]; x[i] = v / (1.0f + exp_scalar(-beta * v)) * (up ? up[i] : 1.0f); }
    }
}
