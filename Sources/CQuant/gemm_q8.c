// Q8_0 weights × Q8_0 activations for many rows (prefill and the vision tower with
// `--activations int8`): llama.cpp's arithmetic for Q8_0 (each 32-value block an integer dot
// product, scaled by both blocks' fp16 scales, summed in float32), register-blocked like
// gemm_bf16.c so prefill is not limited to sgemm's float32 multiply-adds.
//
// vpdpbusd multiplies unsigned by signed bytes, four at a time, into 16 int32 lanes (64
// multiply-adds an instruction). Weights are shifted to unsigned (w + 128) as each thread repacks
// a 32-row panel; the shift adds 128·Σa to every block sum, taken off again with the block's
// activation sum. Per block the kernel keeps an MR × 32 tile of int32 sums, then folds it into
// float32 sums with the two scales.
#include "fovea_quant.h"
#include "panel_gemm.h"
#include "half_float.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define FOVEA_X86 1
#endif

enum { MR = 6, NR = 32, QB = 8 };   // QB: 4-byte groups per 32-value block

int fovea_q8_gemm_available(void) {
#ifdef FOVEA_X86
    static int ok = -1;
    if (ok < 0) {
        __builtin_cpu_init();
        ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni") ? 1 : 0;
    }
    return ok;
#else
    return 0;
#endif
}

int fovea_q8_panel_rows(void) { return MR; }

// Per activation panel and block: QB × MR words of 4 codes, MR scales, MR code sums.
static size_t act_block_words(void) { return (size_t)QB * MR + 2 * MR; }

size_t fovea_q8_act_bytes(int n, int k) {
    return (size_t)((n + MR - 1) / MR) * (size_t)(k / 32) * act_block_words() * 4;
}

size_t fovea_q8_weight_panel_bytes(int k) { return (size_t)(k / 32) * (QB * NR + NR) * 4; }

void fovea_q8_pack_act(const float *x, int n, int k, void *out, int p0, int p1) {
    const int nb = k / 32;
    uint8_t block[34];
    for (int p = p0; p < p1; p++) {
        uint32_t *o = (uint32_t *)out + (size_t)p * nb * act_block_words();
        for (int b = 0; b < nb; b++, o += act_block_words()) {
            float *scales = (float *)(o + QB * MR);
            int32_t *sums = (int32_t *)(o + QB * MR + MR);
            for (int i = 0; i < MR; i++) {
                const int m = p * MR + i;
                if (m < n) fovea_q_quantize_act(FOVEA_Q8_0, x + (size_t)m * k + b * 32, block, 32);
                else memset(block, 0, sizeof block);
                uint16_t dh;
                memcpy(&dh, block, 2);
                scales[i] = fp16_to_f32(dh);
                int32_t s = 0;
                for (int j = 0; j < 32; j++) s += (int8_t)block[2 + j];
                sums[i] = s;
                for (int q = 0; q < QB; q++) memcpy(o + q * MR + i, block + 2 + 4 * q, 4);
            }
        }
    }
}

// Q8_0 rows [r, r + NR) into a panel: per block QB × NR words of four (w + 128) bytes, then NR
// scales. Rows past `rows` are zero (scale 0).
static void pack_weights(int type, const uint8_t *w, size_t row_bytes, int k, int r, int rows, void *out) {
    (void)type;
    uint32_t *panel = (uint32_t *)out;
    const int nb = k / 32;
    for (int b = 0; b < nb; b++) {
        uint32_t *o = panel + (size_t)b * (QB * NR + NR);
        float *scales = (float *)(o + QB * NR);
        for (int i = 0; i < NR; i++) {
            if (r + i >= rows) {
                for (int q = 0; q < QB; q++) o[q * NR + i] = 0x80808080u;
                scales[i] = 0;
                continue;
            }
            const uint8_t *blk = w + (size_t)(r + i) * row_bytes + (size_t)b * 34;
            uint16_t dh;
            memcpy(&dh, blk, 2);
            scales[i] = fp16_to_f32(dh);
            for (int q = 0; q < QB; q++) {
                uint32_t word;
                memcpy(&word, blk + 2 + 4 * q, 4);
                o[q * NR + i] = word ^ 0x80808080u;   // two's complement + 128, byte by byte
            }
        }
    }
}

// The scalar twin: the same integer block sums and the same scale products, in float32.
static void tile_scalar(const void *av, const void *bv, int k, float *c) {
    const uint32_t *a = (const uint32_t *)av, *b = (const uint32_t *)bv;
    const int nb = k / 32;
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) {
            float s = 0;
            for (int blk = 0; blk < nb; blk++) {
                const uint32_t *ab = a + (size_t)blk * act_block_words(), *bb = b + (size_t)blk * (QB * NR + NR);
                int32_t isum = 0;
                for (int q = 0; q < QB; q++) {
                    const uint32_t x = ab[q * MR + i], y = bb[q * NR + j];
                    for (int t = 0; t < 4; t++) isum += (int32_t)(uint8_t)(y >> 8 * t) * (int32_t)(int8_t)(x >> 8 * t);
                }
                isum -= 128 * ((const int32_t *)(ab + QB * MR + MR))[i];
                const float da = ((const float *)(ab + QB * MR))[i], dw = ((const float *)(bb + QB * NR))[j];
                s = fmaf((float)isum, dw * da, s);
            }
            c[i * NR + j] = s;
        }
}

#ifdef FOVEA_X86
__attribute__((target("avx512f,avx512vnni")))
static void tile_vnni(const void *av, const void *bv, int k, float *c) {
    const uint32_t *a = (const uint32_t *)av, *b = (const uint32_t *)bv;
    const int nb = k / 32;
    __m512 acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int blk = 0; blk < nb; blk++, a += act_block_words(), b += QB * NR + NR) {
        __m512i isum[MR][2];
        for (int i = 0; i < MR; i++) isum[i][0] = isum[i][1] = _mm512_setzero_si512();
        for (int q = 0; q < QB; q++) {
            const __m512i b0 = _mm512_loadu_si512(b + q * NR), b1 = _mm512_loadu_si512(b + q * NR + 16);
            for (int i = 0; i < MR; i++) {
                const __m512i ai = _mm512_set1_epi32((int)a[q * MR + i]);
                isum[i][0] = _mm512_dpbusd_epi32(isum[i][0], b0, ai);
                isum[i][1] = _mm512_dpbusd_epi32(isum[i][1], b1, ai);
            }
        }
        const float *da = (const float *)(a + QB * MR);
        const int32_t *sa = (const int32_t *)(a + QB * MR + MR);
        const __m512 dw0 = _mm512_loadu_ps((const float *)(b + QB * NR)), dw1 = _mm512_loadu_ps((const float *)(b + QB * NR) + 16);
        for (int i = 0; i < MR; i++) {
            const __m512i corr = _mm512_set1_epi32(128 * sa[i]);
            const __m512 d = _mm512_set1_ps(da[i]);
            acc[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(isum[i][0], corr)), _mm512_mul_ps(dw0, d), acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(isum[i][1], corr)), _mm512_mul_ps(dw1, d), acc[i][1]);
        }
    }
    for (int i = 0; i < MR; i++) {
        _mm512_storeu_ps(c + i * NR, acc[i][0]);
        _mm512_storeu_ps(c + i * NR + 16, acc[i][1]);
    }
}
#endif

void fovea_q8_gemm(const void *w, size_t row_bytes, int k, int rows, const void *act, int n, float *y, size_t ldy,
                   int r0, int r1, void *panel, int variant) {
    fovea_tile_fn tile = tile_scalar;
#ifdef FOVEA_X86
    if (variant != 0 && fovea_q8_gemm_available()) tile = tile_vnni;
#endif
    fovea_panel_gemm(FOVEA_Q8_0, w, row_bytes, k, rows, act, (size_t)(k / 32) * act_block_words() * 4, n, y, ldy, r0, r1, panel,
                     MR, NR, pack_weights, tile);
}
