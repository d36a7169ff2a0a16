// bf16 × bf16 matrix products for prefill and the vision tower with bf16 weights, as PyTorch's
// bf16 autocast and llama.cpp's BF16 path compute them: activations rounded to bf16, products
// exact in float32, sums in float32. On AVX-512 BF16 each vdpbf16ps does 16 lanes × 2 products,
// twice the multiply-adds of a float32 FMA, so a register-blocked kernel can pass sgemm's peak.
//
// Layout. Activations are packed once per product into panels of MR rows: for each pair of
// columns (k, k+1) the panel holds MR 32-bit words, each a (bf16 x[m,k], bf16 x[m,k+1]) pair, so
// the kernel broadcasts one word per row. Weights are repacked per thread into panels of NR rows:
// for each column pair, NR words (16 per zmm). The kernel keeps an MR × NR tile of float32 sums in
// 24 zmm registers over the whole row length; products are not blocked over k, because a 12-row
// activation panel (≤ 384 KB at 16,384 columns) and a 32-row weight panel stay in L2.
#include "fovea_quant.h"
#include "panel_gemm.h"
#include "half_float.h"
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define FOVEA_X86 1
#endif

enum { MR = 12, NR = 32 };

int fovea_bf16_gemm_available(void) {
#ifdef FOVEA_X86
    static int ok = -1;
    if (ok < 0) {
        __builtin_cpu_init();
        ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16") ? 1 : 0;
    }
    return ok;
#else
    return 0;
#endif
}

void fovea_bf16_round(const float *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] = bf16_to_f32(f32_to_bf16(x[i]));
}

int fovea_bf16_panel_rows(void) { return MR; }

size_t fovea_bf16_act_bytes(int n, int k) {
    return (size_t)((n + MR - 1) / MR) * MR * (size_t)((k + 1) / 2) * 4;
}

size_t fovea_bf16_weight_panel_bytes(int k) { return (size_t)NR * (size_t)((k + 1) / 2) * 4; }

void fovea_bf16_pack_act(const float *x, int n, int k, void *out, int p0, int p1) {
    const int pairs = (k + 1) / 2;
    for (int p = p0; p < p1; p++) {
        uint16_t *o = (uint16_t *)out + (size_t)p * MR * pairs * 2;
        for (int i = 0; i < MR; i++) {
            const int m = p * MR + i;
            const float *row = x + (size_t)m * k;
            for (int j = 0; j < pairs; j++) {
                uint16_t lo = 0, hi = 0;
                if (m < n) {
                    lo = f32_to_bf16(row[2 * j]);
                    hi = 2 * j + 1 < k ? f32_to_bf16(row[2 * j + 1]) : 0;
                }
                o[((size_t)j * MR + i) * 2] = lo;
                o[((size_t)j * MR + i) * 2 + 1] = hi;
            }
        }
    }
}

// Weight rows [r, r + NR) of `w` into a panel; rows past `rows` are zero.
static void pack_weights(int type, const uint8_t *w, size_t row_bytes, int k, int r, int rows, void *out) {
    (void)type;
    uint32_t *panel = (uint32_t *)out;
    const int pairs = (k + 1) / 2;
    for (int i = 0; i < NR; i++) {
        const uint16_t *row = r + i < rows ? (const uint16_t *)(w + (size_t)(r + i) * row_bytes) : NULL;
        for (int j = 0; j < pairs; j++) {
            uint32_t lo = 0, hi = 0;
            if (row) {
                lo = row[2 * j];
                hi = 2 * j + 1 < k ? row[2 * j + 1] : 0;
            }
            panel[(size_t)j * NR + i] = lo | hi << 16;
        }
    }
}

// The scalar twin: the same rounded operands, each pair's two products added in turn.
static void tile_scalar(const void *av, const void *bv, int k, float *c) {
    const uint32_t *a = (const uint32_t *)av, *b = (const uint32_t *)bv;
    const int pairs = (k + 1) / 2;
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) {
            float s = 0;
            for (int p = 0; p < pairs; p++) {
                const uint32_t x = a[(size_t)p * MR + i], y = b[(size_t)p * NR + j];
                s += bf16_to_f32((uint16_t)x) * bf16_to_f32((uint16_t)y);
                s += bf16_to_f32((uint16_t)(x >> 16)) * bf16_to_f32((uint16_t)(y >> 16));
            }
            c[i * NR + j] = s;
        }
}

#ifdef FOVEA_X86
__attribute__((target("avx512f,avx512bf16")))
static void tile_avx512(const void *av, const void *bv, int k, float *c) {
    const uint32_t *a = (const uint32_t *)av, *b = (const uint32_t *)bv;
    const int pairs = (k + 1) / 2;
    __m512 acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int p = 0; p < pairs; p++, a += MR, b += NR) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + 16);
        for (int i = 0; i < MR; i++) {
            const __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
        }
    }
    for (int i = 0; i < MR; i++) {
        _mm512_storeu_ps(c + i * NR, acc[i][0]);
        _mm512_storeu_ps(c + i * NR + 16, acc[i][1]);
    }
}
#endif

void fovea_bf16_gemm(const void *w, size_t row_bytes, int k, int rows, const void *act, int n, float *y, size_t ldy,
                     int r0, int r1, void *panel, int variant) {
    fovea_tile_fn tile = tile_scalar;
#ifdef FOVEA_X86
    if (variant != 0 && fovea_bf16_gemm_available()) tile = tile_avx512;
#endif
    fovea_panel_gemm(FOVEA_BF16, w, row_bytes, k, rows, act, (size_t)MR * (size_t)((k + 1) / 2) * 4, n, y, ldy, r0, r1, panel,
                     MR, NR, pack_weights, tile);
}
