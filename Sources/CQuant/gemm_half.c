// F16 (or BF16) weights × float32 activations for many rows: the float path's products (weights
// widened exactly, float32 multiply-adds), without widening whole bands of the matrix into
// memory for sgemm. Each thread widens a 32-row weight panel into L2 as it packs it, and a 12 × 32
// tile of float32 sums stays in 24 zmm registers over the whole row, as in gemm_bf16.c. Same
// arithmetic as sgemm on a widened copy, up to summation order.
#include "fovea_quant.h"
#include "panel_gemm.h"
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define FOVEA_X86 1
#endif

enum { MR = 12, NR = 32 };

int fovea_half_gemm_available(void) {
#ifdef FOVEA_X86
    static int ok = -1;
    if (ok < 0) {
        __builtin_cpu_init();
        ok = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return ok;
#else
    return 0;
#endif
}

int fovea_half_panel_rows(void) { return MR; }

size_t fovea_half_act_bytes(int n, int k) { return (size_t)((n + MR - 1) / MR) * MR * (size_t)k * 4; }

size_t fovea_half_weight_panel_bytes(int k) { return (size_t)NR * (size_t)k * 4; }

void fovea_half_pack_act(const float *x, int n, int k, void *out, int p0, int p1) {
    for (int p = p0; p < p1; p++) {
        float *o = (float *)out + (size_t)p * MR * k;
        for (int i = 0; i < MR; i++) {
            const int m = p * MR + i;
            for (int j = 0; j < k; j++) o[(size_t)j * MR + i] = m < n ? x[(size_t)m * k + j] : 0;
        }
    }
}

// Rows [r, r + NR) of `w` widened into a panel [k][NR]; rows past `rows` are zero.
static void pack_weights(int type, const uint8_t *w, size_t row_bytes, int k, int r, int rows, void *out) {
    float *panel = (float *)out;
    for (int i = 0; i < NR; i++) {
        if (r + i >= rows) {
            for (int j = 0; j < k; j++) panel[(size_t)j * NR + i] = 0;
            continue;
        }
        // Widen the row with the library's own conversion (exact), then scatter it.
        float buf[512];
        for (int j0 = 0; j0 < k; j0 += 512) {
            const int len = k - j0 < 512 ? k - j0 : 512;
            fovea_q_dequantize(type, w + (size_t)(r + i) * row_bytes + (size_t)j0 * 2, buf, len);
            for (int j = 0; j < len; j++) panel[(size_t)(j0 + j) * NR + i] = buf[j];
        }
    }
}

static void tile_scalar(const void *av, const void *bv, int k, float *c) {
    const float *a = (const float *)av, *b = (const float *)bv;
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) {
            float s = 0;
            for (int p = 0; p < k; p++) s = __builtin_fmaf(a[(size_t)p * MR + i], b[(size_t)p * NR + j], s);
            c[i * NR + j] = s;
        }
}

#ifdef FOVEA_X86
__attribute__((target("avx512f")))
static void tile_avx512(const void *av, const void *bv, int k, float *c) {
    const float *a = (const float *)av, *b = (const float *)bv;
    __m512 acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int p = 0; p < k; p++, a += MR, b += NR) {
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        for (int i = 0; i < MR; i++) {
            const __m512 ai = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
    for (int i = 0; i < MR; i++) {
        _mm512_storeu_ps(c + i * NR, acc[i][0]);
        _mm512_storeu_ps(c + i * NR + 16, acc[i][1]);
    }
}
#endif

void fovea_half_gemm(int type, const void *w, size_t row_bytes, int k, int rows, const void *act, int n, float *y, size_t ldy,
                     int r0, int r1, void *panel, int variant) {
    fovea_tile_fn tile = tile_scalar;
#ifdef FOVEA_X86
    if (variant != 0 && fovea_half_gemm_available()) tile = tile_avx512;
#endif
    fovea_panel_gemm(type, w, row_bytes, k, rows, act, (size_t)MR * (size_t)k * 4, n, y, ldy, r0, r1, panel, MR, NR, pack_weights, tile);
}
