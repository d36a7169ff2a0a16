// Block formats (ggml-common.h): Q8_0 {fp16 d; int8 q[32]}, Q4_0 {fp16 d; uint8 q[16]} (value
// (nibble − 8)·d, low nibbles first), Q4_1 {fp16 d, m; uint8 q[16]} (nibble·d + m). Activations:
// Q8_0, or Q8_1 {fp16 d, s; int8 q[32]} with s = d·Σq for Q4_1's m term.
// Q5_0 {fp16 d; uint8 qh[4]; uint8 q[16]} (value ((nibble | bit·16) − 16)·d, bit k of qh the
// fifth bit of value k), Q5_1 {fp16 d, m; uint8 qh[4]; uint8 q[16]} ((nibble | bit·16)·d + m).
// k-quants, 256 values: Q4_K {fp16 d, dmin; uint8 scales[12] (eight 6-bit scale/min pairs);
// uint8 q[128]} (value d·sc_j·nibble − dmin·m_j over 32-value sub-blocks j; each 32 bytes hold
// sub-blocks 2i in the low nibbles and 2i+1 in the high), Q6_K {uint8 ql[128], qh[64];
// int8 scales[16]; fp16 d} (value d·sc·(6-bit q − 32) over 16-value groups).
#include "fovea_quant.h"
#include "half_float.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FOVEA_X86 1
#endif

static int resolve_variant(int variant);   // the variant asked for if this CPU runs it, else the best it does


size_t fovea_q_block_bytes(int type) {
    switch (type) {
    case FOVEA_Q8_0: return 34;
    case FOVEA_Q4_0: return 18;
    case FOVEA_Q4_1: return 20;
    case FOVEA_Q4_K: return 144;
    case FOVEA_Q6_K: return 210;
    case FOVEA_Q5_0: return 22;
    case FOVEA_Q5_1: return 24;
    default: return 64;   // f16, bf16: 32 × 2 bytes
    }
}

int fovea_q_block_values(int type) { return type == FOVEA_Q4_K || type == FOVEA_Q6_K ? 256 : 32; }

// Q4_K's j-th (of eight) 6-bit scale and min, packed in 12 bytes as ggml's get_scale_min_k4.
static inline void q4k_scale_min(int j, const uint8_t *q, int *d, int *m) {
    if (j < 4) { *d = q[j] & 63; *m = q[j + 4] & 63; }
    else { *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
}

// One 256-value k-quant super-block to float, with ggml's operation order (so values are equal).
static void dequantize_k(int type, const uint8_t *p, float *y) {
    if (type == FOVEA_Q4_K) {
        uint16_t dh, mh;
        memcpy(&dh, p, 2);
        memcpy(&mh, p + 2, 2);
        const float d = fp16_to_f32(dh), dmin = fp16_to_f32(mh);
        const uint8_t *sc = p + 4, *q = p + 16;
        for (int i = 0; i < 4; i++, q += 32) {
            int s1, m1, s2, m2;
            q4k_scale_min(2 * i, sc, &s1, &m1);
            q4k_scale_min(2 * i + 1, sc, &s2, &m2);
            const float d1 = d * (float)s1, n1 = dmin * (float)m1, d2 = d * (float)s2, n2 = dmin * (float)m2;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - n1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - n2;
        }
        return;
    }
    uint16_t dh;
    memcpy(&dh, p + 208, 2);
    const float d = fp16_to_f32(dh);
    const uint8_t *ql = p, *qh = p + 128;
    const int8_t *sc = (const int8_t *)(p + 192);
    for (int h = 0; h < 2; h++, y += 128, ql += 64, qh += 32, sc += 8) {
        for (int l = 0; l < 32; l++) {
            const int is = l / 16;
            y[l] = d * (float)sc[is] * (float)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
            y[l + 32] = d * (float)sc[is + 2] * (float)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
            y[l + 64] = d * (float)sc[is + 4] * (float)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            y[l + 96] = d * (float)sc[is + 6] * (float)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
}


#ifdef FOVEA_X86
// fp16 scales to float, two at a time (a block's d and its neighbour: Q4_1's m, Q8_1's s).
// Not _cvtsh_ss: clang builds it (and any load it can narrow to 16 bits) as vpinsrw into
// whatever register it likes — in these loops, an accumulator — so each block's scale waited
// for the previous block's FMA (40% of the Q4_1 kernel's samples sat on that insert). A 32-bit
// vmovd load zero-extends and merges nothing; the empty asm keeps clang from narrowing it.
// Every block has at least 2 bytes after its d.
__attribute__((target("avx2,fma,f16c")))
static inline __m128 halves_at(const uint8_t *p) {
    __m128i v = _mm_loadu_si32(p);
    __asm__("" : "+x"(v));
    return _mm_cvtph_ps(v);
}

__attribute__((target("avx2,fma,f16c")))
static inline float half_at(const uint8_t *p) { return _mm_cvtss_f32(halves_at(p)); }

__attribute__((target("avx2,fma,f16c")))
static void f16_to_f32_f16c(const uint16_t *h, float *out, int n) {
    int j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(out + j, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + j))));
    for (; j < n; j++) out[j] = _cvtsh_ss(h[j]);
}
#endif
// Q8_0 and Q4_0 take Q8_0 activation blocks; every format with a min or an offset term (Q4_1,
// Q5_0, Q5_1, Q4_K, Q6_K) takes Q8_1, whose s = d·Σq gives that term without a second pass.
static int takes_q8_1(int type) { return type != FOVEA_Q8_0 && type != FOVEA_Q4_0; }
size_t fovea_q_act_block_bytes(int type) { return takes_q8_1(type) ? 36 : 34; }

// roundf (halves away from zero), written so the compiler vectorises it: x86 has no such rounding
// mode, and the libm call was 4% of a Q8_0 prefill. Exact for |v| < 2^23.
static inline float round_away(float v) {
    const float t = truncf(v);
    return t + (fabsf(v - t) >= 0.5f ? copysignf(1.0f, v) : 0.0f);
}

void fovea_q_quantize_act(int type, const float *x, void *out, int n) {
    uint8_t *o = (uint8_t *)out;
    const size_t bb = fovea_q_act_block_bytes(type);
    for (int b = 0; b < n / 32; b++, o += bb) {
        const float *xb = x + b * 32;
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / 127, id = d != 0 ? 1 / d : 0;
        uint16_t dh = f32_to_fp16(d);
        memcpy(o, &dh, 2);
        int8_t *q = (int8_t *)(o + (takes_q8_1(type) ? 4 : 2));
        int sum = 0;
        for (int j = 0; j < 32; j++) { q[j] = (int8_t)round_away(xb[j] * id); sum += q[j]; }
        if (takes_q8_1(type)) { uint16_t sh = f32_to_fp16(d * (float)sum); memcpy(o + 2, &sh, 2); }
    }
}

void fovea_q_dequantize(int type, const void *w, float *out, int n) {
    const uint8_t *p = (const uint8_t *)w;
    if (type == FOVEA_F16) {
#ifdef FOVEA_X86
        if (fovea_q_best_variant() != FOVEA_V_SCALAR) { f16_to_f32_f16c((const uint16_t *)w, out, n); return; }
#endif
        for (int j = 0; j < n; j++) { uint16_t h; memcpy(&h, p + 2 * j, 2); out[j] = fp16_to_f32(h); }
        return;
    }
    if (type == FOVEA_BF16) {
        for (int j = 0; j < n; j++) { uint16_t h; memcpy(&h, p + 2 * j, 2); out[j] = bf16_to_f32(h); }
        return;
    }
    if (type == FOVEA_Q4_K || type == FOVEA_Q6_K) {
        for (int b = 0; b < n / 256; b++) dequantize_k(type, p + (size_t)b * fovea_q_block_bytes(type), out + b * 256);
        return;
    }
    const size_t bb = fovea_q_block_bytes(type);
    for (int b = 0; b < n / 32; b++, p += bb, out += 32) {
        uint16_t dh;
        memcpy(&dh, p, 2);
        const float d = fp16_to_f32(dh);
        if (type == FOVEA_Q8_0) {
            for (int j = 0; j < 32; j++) out[j] = (float)((const int8_t *)(p + 2))[j] * d;
        } else if (type == FOVEA_Q4_0) {
            for (int j = 0; j < 16; j++) { out[j] = (float)((p[2 + j] & 0x0F) - 8) * d; out[j + 16] = (float)((p[2 + j] >> 4) - 8) * d; }
        } else if (type == FOVEA_Q5_0 || type == FOVEA_Q5_1) {
            const int q5_1 = type == FOVEA_Q5_1;
            uint32_t qh;
            memcpy(&qh, p + (q5_1 ? 4 : 2), 4);
            const uint8_t *q = p + (q5_1 ? 8 : 6);
            float m = 0;
            if (q5_1) { uint16_t mh; memcpy(&mh, p + 2, 2); m = fp16_to_f32(mh); }
            for (int j = 0; j < 16; j++) {
                const int lo = (q[j] & 0x0F) | (int)(((qh >> j) << 4) & 0x10), hi = (q[j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
                if (q5_1) { out[j] = (float)lo * d + m; out[j + 16] = (float)hi * d + m; }
                else { out[j] = (float)(lo - 16) * d; out[j + 16] = (float)(hi - 16) * d; }
            }
        } else {
            uint16_t mh;
            memcpy(&mh, p + 2, 2);
            const float m = fp16_to_f32(mh);
            for (int j = 0; j < 16; j++) { out[j] = (float)(p[4 + j] & 0x0F) * d + m; out[j + 16] = (float)(p[4 + j] >> 4) * d + m; }
        }
    }
}

// ---------- weights into stored formats (ggml's reference quantisers) ----------

void fovea_q_quantize_weights(int type, const float *x, void *out, int n) {
    uint8_t *o = (uint8_t *)out;
    if (type == FOVEA_Q4_K || type == FOVEA_Q6_K || type == FOVEA_Q5_0 || type == FOVEA_Q5_1) {
        memset(o, 0, (size_t)(n / fovea_q_block_values(type)) * fovea_q_block_bytes(type));
        return;
    }
    if (type == FOVEA_F16 || type == FOVEA_BF16) {
        for (int j = 0; j < n; j++) {
            const uint16_t h = type == FOVEA_F16 ? f32_to_fp16(x[j]) : f32_to_bf16(x[j]);
            memcpy(o + 2 * j, &h, 2);
        }
        return;
    }
    const size_t bb = fovea_q_block_bytes(type);
    for (int b = 0; b < n / 32; b++, o += bb) {
        const float *xb = x + b * 32;
        if (type == FOVEA_Q8_0) {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
            const float d = amax / 127, id = d != 0 ? 1 / d : 0;
            const uint16_t dh = f32_to_fp16(d);
            memcpy(o, &dh, 2);
            for (int j = 0; j < 32; j++) ((int8_t *)(o + 2))[j] = (int8_t)roundf(xb[j] * id);
        } else if (type == FOVEA_Q4_0) {
            // The signed value of largest magnitude maps to −8, so the full 16 levels are used.
            float amax = 0, max = 0;
            for (int j = 0; j < 32; j++) if (fabsf(xb[j]) > amax) { amax = fabsf(xb[j]); max = xb[j]; }
            const float d = max / -8, id = d != 0 ? 1 / d : 0;
            const uint16_t dh = f32_to_fp16(d);
            memcpy(o, &dh, 2);
            for (int j = 0; j < 16; j++) {
                const int a = (int)fminf(15, xb[j] * id + 8.5f), c = (int)fminf(15, xb[j + 16] * id + 8.5f);
                o[2 + j] = (uint8_t)(a | (c << 4));
            }
        } else {
            float lo = xb[0], hi = xb[0];
            for (int j = 1; j < 32; j++) { lo = fminf(lo, xb[j]); hi = fmaxf(hi, xb[j]); }
            const float d = (hi - lo) / 15, id = d != 0 ? 1 / d : 0;
            const uint16_t dh = f32_to_fp16(d), mh = f32_to_fp16(lo);
            memcpy(o, &dh, 2);
            memcpy(o + 2, &mh, 2);
            for (int j = 0; j < 16; j++) {
                const int a = (int)fminf(15, (xb[j] - lo) * id + 0.5f), c = (int)fminf(15, (xb[j + 16] - lo) * id + 0.5f);
                o[4 + j] = (uint8_t)(a | (c << 4));
            }
        }
    }
}

// ---------- scalar twin ----------
static inline float half_scalar(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return fp16_to_f32(h); }

// The unsigned codes of 32-value sub-block j of a Q5 block (j = 0) or a k-quant super-block
// (j = 0…7), as the integer products see them: the stored value is (code − offset)·scale, the
// offset 16 for Q5_0 and 32 for Q6_K, 0 (with a min) for the others.
static void codes32(int type, const uint8_t *blk, int j, uint8_t u[32]) {
    if (type == FOVEA_Q5_0 || type == FOVEA_Q5_1) {
        const int q5_1 = type == FOVEA_Q5_1;
        uint32_t qh;
        memcpy(&qh, blk + (q5_1 ? 4 : 2), 4);
        const uint8_t *q = blk + (q5_1 ? 8 : 6);
        for (int l = 0; l < 16; l++) {
            u[l] = (uint8_t)((q[l] & 0x0F) | (((qh >> l) & 1) << 4));
            u[l + 16] = (uint8_t)((q[l] >> 4) | (((qh >> (l + 16)) & 1) << 4));
        }
    } else if (type == FOVEA_Q4_K) {
        const uint8_t *q = blk + 16 + 32 * (j / 2);
        for (int l = 0; l < 32; l++) u[l] = j % 2 ? q[l] >> 4 : q[l] & 0x0F;
    } else {   // Q6_K: half h = j / 4, quarter k = j % 4 (see dequantize_k)
        const int h = j / 4, k = j % 4;
        const uint8_t *ql = blk + 64 * h + (k % 2 ? 32 : 0), *qh = blk + 128 + 32 * h;
        for (int l = 0; l < 32; l++) u[l] = (uint8_t)((k < 2 ? ql[l] & 0x0F : ql[l] >> 4) | (((qh[l] >> (2 * k)) & 3) << 4));
    }
}

// Q5_0, Q5_1, Q4_K and Q6_K against Q8_1 activations {d_a, s = d_a·Σq, q[32]}, per 32 values:
//   Q5_0  d·d_a·Σuq − 16·d·s          Q5_1  d·d_a·Σuq + m·s
//   Q4_K  (d·sc_j)·d_a·Σuq − (dmin·m_j)·s
//   Q6_K  d·d_a·(sc_0·(Σuq − 32Σq)₀…₁₅ + sc_1·(Σuq − 32Σq)₁₆…₃₁)   (exact integers inside)
static float dot_scalar_offset(int type, const uint8_t *w, const uint8_t *a, int nb) {
    const int k = type == FOVEA_Q4_K || type == FOVEA_Q6_K;
    const size_t wb = fovea_q_block_bytes(type);
    float sum = 0;
    for (int b = 0; b < nb; b++, a += 36) {
        const uint8_t *blk = k ? w + (size_t)(b / 8) * wb : w + (size_t)b * wb;
        const int j = k ? b % 8 : 0;
        uint8_t u[32];
        codes32(type, blk, j, u);
        const float da = half_scalar(a), s = half_scalar(a + 2);
        const int8_t *q = (const int8_t *)(a + 4);
        int i0 = 0, i1 = 0, s0 = 0, s1 = 0;
        for (int l = 0; l < 16; l++) { i0 += u[l] * q[l]; s0 += q[l]; i1 += u[l + 16] * q[l + 16]; s1 += q[l + 16]; }
        if (type == FOVEA_Q5_0) {
            const float d = half_scalar(blk);
            sum += d * da * (float)(i0 + i1) - 16 * d * s;
        } else if (type == FOVEA_Q5_1) {
            sum += half_scalar(blk) * da * (float)(i0 + i1) + half_scalar(blk + 2) * s;
        } else if (type == FOVEA_Q4_K) {
            int sc, m;
            q4k_scale_min(j, blk + 4, &sc, &m);
            sum += half_scalar(blk) * (float)sc * da * (float)(i0 + i1) - half_scalar(blk + 2) * (float)m * s;
        } else {
            const int8_t *sc = (const int8_t *)(blk + 192 + 8 * (j / 4) + 2 * (j % 4));
            sum += half_scalar(blk + 208) * da * (float)(sc[0] * (i0 - 32 * s0) + sc[1] * (i1 - 32 * s1));
        }
    }
    return sum;
}

static float dot_scalar(int type, const uint8_t *w, const uint8_t *a, int nb) {
    if (type != FOVEA_Q8_0 && type != FOVEA_Q4_0 && type != FOVEA_Q4_1) return dot_scalar_offset(type, w, a, nb);
    const size_t wb = fovea_q_block_bytes(type), ab = fovea_q_act_block_bytes(type);
    float sum = 0;
    for (int b = 0; b < nb; b++, w += wb, a += ab) {
        uint16_t dwh, dah;
        memcpy(&dwh, w, 2);
        memcpy(&dah, a, 2);
        const float dw = fp16_to_f32(dwh), da = fp16_to_f32(dah);
        int isum = 0;
        if (type == FOVEA_Q8_0) {
            const int8_t *qw = (const int8_t *)(w + 2), *qa = (const int8_t *)(a + 2);
            for (int j = 0; j < 32; j++) isum += qw[j] * qa[j];
            sum += dw * da * (float)isum;
        } else if (type == FOVEA_Q4_0) {
            const int8_t *qa = (const int8_t *)(a + 2);
            for (int j = 0; j < 16; j++) isum += ((w[2 + j] & 0x0F) - 8) * qa[j] + ((w[2 + j] >> 4) - 8) * qa[j + 16];
            sum += dw * da * (float)isum;
        } else {
            uint16_t mh, sh;
            memcpy(&mh, w + 2, 2);
            memcpy(&sh, a + 2, 2);
            const int8_t *qa = (const int8_t *)(a + 4);
            for (int j = 0; j < 16; j++) isum += (w[4 + j] & 0x0F) * qa[j] + (w[4 + j] >> 4) * qa[j + 16];
            sum += dw * da * (float)isum + fp16_to_f32(mh) * fp16_to_f32(sh);
        }
    }
    return sum;
}

#ifdef FOVEA_X86
#define TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TARGET_AVX512VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))
#define TARGET_AVXVNNI __attribute__((target("avx2,fma,f16c,avxvnni")))

// ---------- AVX2 ----------
__attribute__((target("avx2,fma,f16c")))
static inline __m256i unpack_nibbles(const uint8_t *q) {   // 16 bytes → 32 values 0..15, low nibbles first
    const __m128i t = _mm_loadu_si128((const __m128i *)q);
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

__attribute__((target("avx2,fma,f16c")))
static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// ---------- u8 × s8 sums of four into int32 lanes: vpdpbusd, or what stands in for it ----------
// One body per kernel, four builds: with AVX-512 VNNI's vpdpbusd (EVEX, on ymm through AVX512VL),
// with AVX-VNNI's (VEX: Alder Lake and later client CPUs, Zen 5 without AVX-512), with AVX2's
// maddubs + madd, and with an exact AVX2 model of vpdpbusd, so the body the AVX-VNNI build runs
// is tested on CPUs that lack the instruction.
#define INT8_KERNEL(NAME, TARGET, DPBUSD)                                                                               \
TARGET static float NAME(int type, const uint8_t *w, const uint8_t *a, int nb) {                                       \
    __m256 acc = _mm256_setzero_ps();                                                                                   \
    const __m256i zero = _mm256_setzero_si256();                                                                        \
    if (type == FOVEA_Q8_0) {                                                                                           \
        for (int b = 0; b < nb; b++, w += 34, a += 34) {                                                                \
            const __m256 d = _mm256_set1_ps(half_at(w) * half_at(a));                                                  \
            const __m256i qw = _mm256_loadu_si256((const __m256i *)(w + 2)), qa = _mm256_loadu_si256((const __m256i *)(a + 2)); \
            const __m256i isum = DPBUSD(zero, _mm256_sign_epi8(qw, qw), _mm256_sign_epi8(qa, qw));                      \
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum), acc);                                                    \
        }                                                                                                               \
        return hsum(acc);                                                                                               \
    }                                                                                                                   \
    if (type == FOVEA_Q4_0) {                                                                                           \
        /* (n − 8)·a = n·a − 8·a: the unsigned nibbles go straight into vpdpbusd, 8·Σa comes off after */              \
        const __m256i ones = _mm256_set1_epi8(1);                                                                       \
        for (int b = 0; b < nb; b++, w += 18, a += 34) {                                                                \
            const __m256 d = _mm256_set1_ps(half_at(w) * half_at(a));                                                   \
            const __m256i qa = _mm256_loadu_si256((const __m256i *)(a + 2));                                            \
            const __m256i prod = DPBUSD(zero, unpack_nibbles(w + 2), qa), suma = DPBUSD(zero, ones, qa);                \
            acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(prod, _mm256_slli_epi32(suma, 3))), acc);     \
        }                                                                                                               \
        return hsum(acc);                                                                                               \
    }                                                                                                                   \
    /* Q4_1: [d_w, m] · [d_a, s] = [scale, min term] in one product, the min terms summed in lane 1 */                 \
    __m128 mins = _mm_setzero_ps();                                                                                     \
    for (int b = 0; b < nb; b++, w += 20, a += 36) {                                                                    \
        const __m128 both = _mm_mul_ps(halves_at(w), halves_at(a));                                                     \
        const __m256i qa = _mm256_loadu_si256((const __m256i *)(a + 4));                                                \
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(both), _mm256_cvtepi32_ps(DPBUSD(zero, unpack_nibbles(w + 4), qa)), acc); \
        mins = _mm_add_ps(mins, both);                                                                                  \
    }                                                                                                                   \
    return hsum(acc) + _mm_cvtss_f32(_mm_movehdup_ps(mins));                                                            \
}

// AVX2's two instructions: maddubs sums byte pairs into int16 with saturation, so callers keep
// |u·s| pairs under 32,767 (u ≤ 127 after the sign trick, nibbles ≤ 15, 6-bit codes ≤ 63).
TARGET_AVX2 static inline __m256i dpbusd_avx2(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}

// vpdpbusd in AVX2, exactly: u8 × s8 in 16-bit halves (even bytes, odd bytes), each pair summed by
// vpmaddwd, the two halves added. No saturation.
TARGET_AVX2 static inline __m256i dpbusd_model(__m256i acc, __m256i u, __m256i s) {
    const __m256i low8 = _mm256_set1_epi16(0x00FF);
    const __m256i even = _mm256_madd_epi16(_mm256_and_si256(u, low8), _mm256_srai_epi16(_mm256_slli_epi16(s, 8), 8));
    const __m256i odd = _mm256_madd_epi16(_mm256_srli_epi16(u, 8), _mm256_srai_epi16(s, 8));
    return _mm256_add_epi32(acc, _mm256_add_epi32(even, odd));
}

INT8_KERNEL(dot_avx2, TARGET_AVX2, dpbusd_avx2)
INT8_KERNEL(dot_vnni, TARGET_AVX512VNNI, _mm256_dpbusd_epi32)
INT8_KERNEL(dot_avxvnni, TARGET_AVXVNNI, _mm256_dpbusd_avx_epi32)
INT8_KERNEL(dot_vnni_model, TARGET_AVX2, dpbusd_model)
#endif

// ---------- float activations: weights dequantised in registers, x exact ----------
static float dot_f32_scalar(int type, const uint8_t *w, const float *x, int nb) {
    const size_t wb = fovea_q_block_bytes(type);
    float sum = 0;
    if (type == FOVEA_Q5_0 || type == FOVEA_Q5_1) {
        float v[32];
        for (int b = 0; b < nb; b++, w += wb, x += 32) {
            fovea_q_dequantize(type, w, v, 32);
            for (int j = 0; j < 32; j++) sum += v[j] * x[j];
        }
        return sum;
    }
    if (type == FOVEA_Q4_K || type == FOVEA_Q6_K) {   // nb counts 32-value blocks
        float v[256];
        for (int b = 0; b < nb / 8; b++, w += wb, x += 256) {
            dequantize_k(type, w, v);
            for (int j = 0; j < 256; j++) sum += v[j] * x[j];
        }
        return sum;
    }
    if (type == FOVEA_F16 || type == FOVEA_BF16) {
        for (int j = 0; j < nb * 32; j++) {
            uint16_t h;
            memcpy(&h, w + 2 * j, 2);
            sum += (type == FOVEA_F16 ? fp16_to_f32(h) : bf16_to_f32(h)) * x[j];
        }
        return sum;
    }
    for (int b = 0; b < nb; b++, w += wb, x += 32) {
        uint16_t dh;
        memcpy(&dh, w, 2);
        const float d = fp16_to_f32(dh);
        float s = 0;
        if (type == FOVEA_Q8_0) {
            for (int j = 0; j < 32; j++) s += (float)((const int8_t *)(w + 2))[j] * x[j];
            sum += d * s;
        } else if (type == FOVEA_Q4_0) {
            for (int j = 0; j < 16; j++) s += (float)((w[2 + j] & 0x0F) - 8) * x[j] + (float)((w[2 + j] >> 4) - 8) * x[j + 16];
            sum += d * s;
        } else {
            uint16_t mh;
            memcpy(&mh, w + 2, 2);
            float sx = 0;
            for (int j = 0; j < 16; j++) {
                s += (float)(w[4 + j] & 0x0F) * x[j] + (float)(w[4 + j] >> 4) * x[j + 16];
                sx += x[j] + x[j + 16];
            }
            sum += d * s + fp16_to_f32(mh) * sx;
        }
    }
    return sum;
}

#ifdef FOVEA_X86
__attribute__((target("avx2,fma,f16c")))
static inline __m256 dot32_i8_f32(__m256i q, const float *x) {   // Σ q[j]·x[j] over 32 signed bytes, 8 lanes
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    __m256 acc = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), _mm256_loadu_ps(x));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), _mm256_loadu_ps(x + 8), acc);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), _mm256_loadu_ps(x + 16), acc);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), _mm256_loadu_ps(x + 24), acc);
}

__attribute__((target("avx2,fma,f16c")))
static inline void dot32_halves(__m256i q, const float *x, __m256 *lo, __m256 *hi) {   // Σ over values 0–15 and 16–31
    const __m128i a = _mm256_castsi256_si128(q), b = _mm256_extracti128_si256(q, 1);
    *lo = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(a, 8))), _mm256_loadu_ps(x + 8),
                          _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(a)), _mm256_loadu_ps(x)));
    *hi = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(b, 8))), _mm256_loadu_ps(x + 24),
                          _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)), _mm256_loadu_ps(x + 16)));
}

// Q6_K: the unsigned 6-bit codes (0…63) of one 128-value half, as four 32-value quarters in
// dequantize_k's order (ql low nibbles, ql+32 low, ql high, ql+32 high; two bits each from qh).
__attribute__((target("avx2,fma,f16c")))
static inline void q6k_codes(const uint8_t *ql, const uint8_t *qh, __m256i u[4]) {
    const __m256i low4 = _mm256_set1_epi8(0x0F), high2 = _mm256_set1_epi8(0x30), three = _mm256_set1_epi8(3);
    const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    const __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
    u[0] = _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_slli_epi16(_mm256_and_si256(hb, three), 4));
    u[1] = _mm256_or_si256(_mm256_and_si256(l1, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), high2));
    u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4), _mm256_and_si256(hb, high2));
    u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4), _mm256_and_si256(_mm256_srli_epi16(hb, 2), high2));
}

// k-quants against float x: integer codes widened in registers, each sub-block's scale applied
// once to its partial sum; Q4_K's min terms come from the per-32 sums of x (xsum).
__attribute__((target("avx2,fma,f16c")))
static float dot_f32_k_avx2(int type, const uint8_t *w, const float *x, const float *xsum, int nb) {
    __m256 acc = _mm256_setzero_ps();
    float extra = 0;
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    if (type == FOVEA_Q4_K) {
        for (int b = 0; b < nb / 8; b++, w += 144, x += 256, xsum += 8) {
            const float d = half_at(w), dmin = half_at(w + 2);
            for (int i = 0; i < 4; i++) {
                int s1, m1, s2, m2;
                q4k_scale_min(2 * i, w + 4, &s1, &m1);
                q4k_scale_min(2 * i + 1, w + 4, &s2, &m2);
                const __m256i raw = _mm256_loadu_si256((const __m256i *)(w + 16 + 32 * i));
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)s1), dot32_i8_f32(_mm256_and_si256(raw, low4), x + 64 * i), acc);
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)s2), dot32_i8_f32(_mm256_and_si256(_mm256_srli_epi16(raw, 4), low4), x + 64 * i + 32), acc);
                extra -= dmin * (float)m1 * xsum[2 * i] + dmin * (float)m2 * xsum[2 * i + 1];
            }
        }
        return hsum(acc) + extra;
    }
    const __m256i bias = _mm256_set1_epi8(32);
    for (int b = 0; b < nb / 8; b++, w += 210) {
        const float d = half_at(w + 208);
        for (int h = 0; h < 2; h++, x += 128) {
            const uint8_t *ql = w + 64 * h, *qh = w + 128 + 32 * h;
            const int8_t *sc = (const int8_t *)(w + 192 + 8 * h);
            __m256i q[4];
            q6k_codes(ql, qh, q);
            for (int k = 0; k < 4; k++) {
                __m256 lo, hi;
                dot32_halves(_mm256_sub_epi8(q[k], bias), x + 32 * k, &lo, &hi);
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc[2 * k]), lo, acc);
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc[2 * k + 1]), hi, acc);
            }
        }
    }
    return hsum(acc);
}

// Q5_0/Q5_1's 32 fifth bits as bytes 0x10 or 0 (ggml's bytes_from_bits_32: byte k takes bit k).
__attribute__((target("avx2,fma,f16c")))
static inline __m256i fifth_bits(const uint8_t *qh) {
    uint32_t bits;
    memcpy(&bits, qh, 4);
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0x0000000000000000));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)), _mm256_set1_epi64x(-1));
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

__attribute__((target("avx2,fma,f16c")))
static float dot_f32_avx2(int type, const uint8_t *w, const float *x, const float *xsum, int nb) {
    if (type == FOVEA_Q4_K || type == FOVEA_Q6_K) return dot_f32_k_avx2(type, w, x, xsum, nb);
    if (type == FOVEA_Q5_0 || type == FOVEA_Q5_1) {
        const int q5_1 = type == FOVEA_Q5_1, bytes = q5_1 ? 24 : 22;
        const __m256i sixteen = _mm256_set1_epi8(16);
        __m256 acc = _mm256_setzero_ps();
        __m128 mins = _mm_setzero_ps();   // lane 1: Σ m · Σx (Q5_1)
        for (int b = 0; b < nb; b++, w += bytes, x += 32) {
            const __m128 dm = halves_at(w);
            __m256i q = _mm256_or_si256(unpack_nibbles(w + (q5_1 ? 8 : 6)), fifth_bits(w + (q5_1 ? 4 : 2)));
            if (!q5_1) q = _mm256_sub_epi8(q, sixteen);
            acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dm), dot32_i8_f32(q, x), acc);
            if (q5_1) mins = _mm_fmadd_ps(dm, _mm_set1_ps(xsum[b]), mins);
        }
        return hsum(acc) + _mm_cvtss_f32(_mm_movehdup_ps(mins));
    }
    __m256 acc = _mm256_setzero_ps();
    float extra = 0;
    if (type == FOVEA_F16 || type == FOVEA_BF16) {
        // Two accumulators: one FMA chain would wait on its own latency every 8 values.
        __m256 acc2 = _mm256_setzero_ps();
        const __m128i *h = (const __m128i *)w;
        for (int j = 0; j < nb * 4; j += 2, x += 16) {
            __m256 a, b;
            if (type == FOVEA_F16) {
                a = _mm256_cvtph_ps(_mm_loadu_si128(h + j));
                b = _mm256_cvtph_ps(_mm_loadu_si128(h + j + 1));
            } else {
                a = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(h + j)), 16));
                b = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(h + j + 1)), 16));
            }
            acc = _mm256_fmadd_ps(a, _mm256_loadu_ps(x), acc);
            acc2 = _mm256_fmadd_ps(b, _mm256_loadu_ps(x + 8), acc2);
        }
        return hsum(_mm256_add_ps(acc, acc2));
    }
    if (type == FOVEA_Q8_0) {
        for (int b = 0; b < nb; b++, w += 34, x += 32)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(half_at(w)), dot32_i8_f32(_mm256_loadu_si256((const __m256i *)(w + 2)), x), acc);
    } else if (type == FOVEA_Q4_0) {
        const __m256i eight = _mm256_set1_epi8(8);
        for (int b = 0; b < nb; b++, w += 18, x += 32)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(half_at(w)), dot32_i8_f32(_mm256_sub_epi8(unpack_nibbles(w + 2), eight), x), acc);
    } else {
        __m128 mins = _mm_setzero_ps();   // lane 1: Σ m · Σx, as in the int8 kernels
        for (int b = 0; b < nb; b++, w += 20, x += 32) {
            const __m128 dm = halves_at(w);
            acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dm), dot32_i8_f32(unpack_nibbles(w + 4), x), acc);
            mins = _mm_fmadd_ps(dm, _mm_set1_ps(xsum[b]), mins);
        }
        extra = _mm_cvtss_f32(_mm_movehdup_ps(mins));
    }
    return hsum(acc) + extra;
}
#endif

#ifdef FOVEA_X86
// f16 / bf16 rows, 64 values an iteration in four 16-wide FMA chains, so the loads, not the
// FMA latency, set the pace (decode reads 2 bytes a weight).
__attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw")))
static float dot_half_avx512(int type, const uint8_t *w, const float *x, int nb) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    const __m256i *h = (const __m256i *)w;
    const int n16 = nb * 2;
    int i = 0;
    for (; i + 4 <= n16; i += 4) {
        for (int k = 0; k < 4; k++) {
            const __m256i v = _mm256_loadu_si256(h + i + k);
            const __m512 a = type == FOVEA_F16 ? _mm512_cvtph_ps(v) : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
            acc[k] = _mm512_fmadd_ps(a, _mm512_loadu_ps(x + 16 * (i + k)), acc[k]);
        }
    }
    for (; i < n16; i++) {
        const __m256i v = _mm256_loadu_si256(h + i);
        const __m512 a = type == FOVEA_F16 ? _mm512_cvtph_ps(v) : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
        acc[0] = _mm512_fmadd_ps(a, _mm512_loadu_ps(x + 16 * i), acc[0]);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}
#endif

void fovea_q_gemv_f32(int type, const void *w, size_t row_bytes, int n, const float *x, float *y, int r0, int r1, int variant) {
    const int v = resolve_variant(variant);
    const int nb = n / 32;
    const uint8_t *base = (const uint8_t *)w;
#ifdef FOVEA_X86
    if (v == FOVEA_V_AVX512VNNI && (type == FOVEA_F16 || type == FOVEA_BF16)) {
        for (int r = r0; r < r1; r++) y[r] = dot_half_avx512(type, base + (size_t)r * row_bytes, x, nb);
        return;
    }
    if (v != FOVEA_V_SCALAR) {   // every vector variant has AVX2
        // Q4_1's, Q5_1's and Q4_K's min terms need each 32 values' Σx: on the stack for rows up to
        // 16,384 wide, else the heap.
        const int mins = type == FOVEA_Q4_1 || type == FOVEA_Q4_K || type == FOVEA_Q5_1;
        float xsum_stack[512];
        float *xsum = nb <= 512 ? xsum_stack : (mins ? malloc(sizeof(float) * (size_t)nb) : NULL);
        if (mins && xsum) for (int b = 0; b < nb; b++) { float s = 0; for (int j = 0; j < 32; j++) s += x[b * 32 + j]; xsum[b] = s; }
        if (xsum || !mins) {
            for (int r = r0; r < r1; r++) y[r] = dot_f32_avx2(type, base + (size_t)r * row_bytes, x, xsum, nb);
            if (xsum != xsum_stack) free(xsum);
            return;
        }
    }
#endif
    for (int r = r0; r < r1; r++) y[r] = dot_f32_scalar(type, base + (size_t)r * row_bytes, x, nb);
}

// Variants are kernel families, not a ladder: a CPU may have AVX-512 VNNI without AVX-VNNI (Ice
// Lake, Zen 4) or AVX-VNNI without AVX-512 (Alder Lake). Asking for one this CPU cannot run gets
// the best it can.
int fovea_q_variant_available(int variant) {
#ifdef FOVEA_X86
    __builtin_cpu_init();
#endif
    switch (variant) {
    case FOVEA_V_SCALAR: return 1;
#ifdef FOVEA_X86
    case FOVEA_V_AVX2:
    case FOVEA_V_AVXVNNI_MODEL: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case FOVEA_V_AVX512VNNI:
        return fovea_q_variant_available(FOVEA_V_AVX2) && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vnni");
    case FOVEA_V_AVXVNNI: return fovea_q_variant_available(FOVEA_V_AVX2) && __builtin_cpu_supports("avxvnni");
#endif
    default: return 0;
    }
}

int fovea_q_best_variant(void) {
    static int best = -1;
    if (best < 0) {
        const char *off = getenv("FOVEA_AVXVNNI");   // "0": AVX2's maddubs on an AVX-VNNI CPU, to measure one against the other
        const int avxvnni = fovea_q_variant_available(FOVEA_V_AVXVNNI) && !(off && off[0] == '0');
        best = fovea_q_variant_available(FOVEA_V_AVX512VNNI) ? FOVEA_V_AVX512VNNI
             : avxvnni                                         ? FOVEA_V_AVXVNNI
             : fovea_q_variant_available(FOVEA_V_AVX2)         ? FOVEA_V_AVX2
                                                               : FOVEA_V_SCALAR;
    }
    return best;
}

static int resolve_variant(int variant) {
    return variant >= 0 && fovea_q_variant_available(variant) ? variant : fovea_q_best_variant();
}

const char *fovea_q_variant_name(int variant) {
    switch (variant < 0 ? fovea_q_best_variant() : variant) {
    case FOVEA_V_AVX512VNNI: return "AVX-512 VNNI";
    case FOVEA_V_AVXVNNI: return "AVX-VNNI";
    case FOVEA_V_AVXVNNI_MODEL: return "AVX-VNNI kernels, vpdpbusd modelled in AVX2";
    case FOVEA_V_AVX2: return "AVX2";
    default: return "scalar";
    }
}

#ifdef FOVEA_X86
// The same products as dot_scalar_offset, vectorised: the codes of a sub-block are built in a
// register, the u8 × s8 products summed four at a time into eight int32 lanes (lanes 0–3: values
// 0–15, lanes 4–7: values 16–31, which Q6_K's two 16-value scales need), by maddubs + madd (AVX2)
// or vpdpbusd (VNNI). Scales and min terms come in pairs: [scale, min]·[d_a, s].
#define OFFSET_KERNEL(NAME, TARGET, DPBUSD, FIFTH)                                                                      \
TARGET static float NAME(int type, const uint8_t *w, const uint8_t *a, int nb) {                                       \
    __m256 acc = _mm256_setzero_ps();                                                                                   \
    __m128 mins = _mm_setzero_ps();                                                                                     \
    const __m256i low4 = _mm256_set1_epi8(0x0F);                                                                        \
    const __m256i ones = _mm256_set1_epi8(1), zero = _mm256_setzero_si256();                                            \
    if (type == FOVEA_Q5_0 || type == FOVEA_Q5_1) {                                                                     \
        const int q5_1 = type == FOVEA_Q5_1, bytes = q5_1 ? 24 : 22;                                                    \
        for (int b = 0; b < nb; b++, w += bytes, a += 36) {                                                             \
            const __m256i u = _mm256_or_si256(unpack_nibbles(w + (q5_1 ? 8 : 6)), FIFTH(w + (q5_1 ? 4 : 2)));          \
            const __m128 dm = halves_at(w), as = halves_at(a);                                                          \
            /* Q5_1: [d, m]·[d_a, s]; Q5_0: [d, d]·[d_a, s], the second lane times −16 at the end */                   \
            const __m128 both = _mm_mul_ps(q5_1 ? dm : _mm_broadcastss_ps(dm), as);                                     \
            const __m256i isum = DPBUSD(zero, u, _mm256_loadu_si256((const __m256i *)(a + 4)));                                \
            acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(both), _mm256_cvtepi32_ps(isum), acc);                          \
            mins = _mm_add_ps(mins, both);                                                                              \
        }                                                                                                               \
        return hsum(acc) + (q5_1 ? 1.0f : -16.0f) * _mm_cvtss_f32(_mm_movehdup_ps(mins));                               \
    }                                                                                                                   \
    if (type == FOVEA_Q4_K) {                                                                                           \
        for (int b = 0; b < nb / 8; b++, w += 144) {                                                                    \
            const __m128 dmin = halves_at(w);                                                                           \
            /* the 6-bit fields as floats through memory: int → float conversions in scalar registers */             \
            /* (cvtsi2ss) merge into their destination and would chain blocks as vpinsrw did          */             \
            int32_t si[8], mi[8];                                                                                       \
            for (int j = 0; j < 8; j++) q4k_scale_min(j, w + 4, &si[j], &mi[j]);                                        \
            float sf[8], mf[8];                                                                                         \
            _mm256_storeu_ps(sf, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)si)));                          \
            _mm256_storeu_ps(mf, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)mi)));                          \
            for (int j = 0; j < 8; j++, a += 36) {                                                                      \
                const __m256i raw = _mm256_loadu_si256((const __m256i *)(w + 16 + 32 * (j / 2)));                       \
                const __m256i u = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(raw, 4) : raw, low4);                      \
                const __m128 both = _mm_mul_ps(_mm_mul_ps(dmin, _mm_setr_ps(sf[j], mf[j], 0, 0)), halves_at(a));        \
                const __m256i isum = DPBUSD(zero, u, _mm256_loadu_si256((const __m256i *)(a + 4)));                            \
                acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(both), _mm256_cvtepi32_ps(isum), acc);                      \
                mins = _mm_add_ps(mins, both);                                                                          \
            }                                                                                                           \
        }                                                                                                               \
        return hsum(acc) - _mm_cvtss_f32(_mm_movehdup_ps(mins));                                                        \
    }                                                                                                                   \
    for (int b = 0; b < nb / 8; b++, w += 210) {   /* Q6_K */                                                           \
        const __m128 d = _mm_broadcastss_ps(halves_at(w + 208));                                                        \
        for (int h = 0; h < 2; h++) {                                                                                   \
            const uint8_t *ql = w + 64 * h, *qh = w + 128 + 32 * h;                                                     \
            /* the half's eight int8 scales as floats, once; each quarter takes its pair by a permute */           \
            const __m256 scf = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(w + 192 + 8 * h)))); \
            __m256i u[4];                                                                                               \
            q6k_codes(ql, qh, u);                                                                                       \
            for (int k = 0; k < 4; k++, a += 36) {                                                                      \
                const __m256i qa = _mm256_loadu_si256((const __m256i *)(a + 4));                                         \
                const __m256i isum = _mm256_sub_epi32(DPBUSD(zero, u[k], qa), _mm256_slli_epi32(DPBUSD(zero, ones, qa), 5));           \
                const __m256 pair = _mm256_permutevar8x32_ps(scf, _mm256_setr_epi32(2 * k, 2 * k, 2 * k, 2 * k,          \
                                                                                    2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1)); \
                const __m256 scales = _mm256_mul_ps(pair, _mm256_broadcastss_ps(_mm_mul_ps(d, halves_at(a))));          \
                acc = _mm256_fmadd_ps(scales, _mm256_cvtepi32_ps(isum), acc);                                           \
            }                                                                                                           \
        }                                                                                                               \
    }                                                                                                                   \
    return hsum(acc);                                                                                                   \
}

// With AVX-512 BW the 32 fifth bits are a mask register: one vpmovm2b instead of four instructions.
TARGET_AVX512VNNI static inline __m256i fifth_bits_mask(const uint8_t *qh) {
    uint32_t bits;
    memcpy(&bits, qh, 4);
    return _mm256_and_si256(_mm256_movm_epi8((__mmask32)bits), _mm256_set1_epi8(0x10));
}

OFFSET_KERNEL(dot_offset_avx2, TARGET_AVX2, dpbusd_avx2, fifth_bits)
OFFSET_KERNEL(dot_offset_vnni, TARGET_AVX512VNNI, _mm256_dpbusd_epi32, fifth_bits_mask)
OFFSET_KERNEL(dot_offset_avxvnni, TARGET_AVXVNNI, _mm256_dpbusd_avx_epi32, fifth_bits)
OFFSET_KERNEL(dot_offset_model, TARGET_AVX2, dpbusd_model, fifth_bits)
#endif

void fovea_q_gemv(int type, const void *w, size_t row_bytes, int n, const void *act, float *y, int r0, int r1, int variant) {
    const int v = resolve_variant(variant);
    const int nb = n / 32;
    const uint8_t *base = (const uint8_t *)w;
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = base + (size_t)r * row_bytes;
#ifdef FOVEA_X86
        const int offset = type != FOVEA_Q8_0 && type != FOVEA_Q4_0 && type != FOVEA_Q4_1;
        const uint8_t *a = (const uint8_t *)act;
        switch (v) {
        case FOVEA_V_AVX512VNNI: y[r] = offset ? dot_offset_vnni(type, row, a, nb) : dot_vnni(type, row, a, nb); continue;
        case FOVEA_V_AVXVNNI: y[r] = offset ? dot_offset_avxvnni(type, row, a, nb) : dot_avxvnni(type, row, a, nb); continue;
        case FOVEA_V_AVXVNNI_MODEL: y[r] = offset ? dot_offset_model(type, row, a, nb) : dot_vnni_model(type, row, a, nb); continue;
        case FOVEA_V_AVX2: y[r] = offset ? dot_offset_avx2(type, row, a, nb) : dot_avx2(type, row, a, nb); continue;
        default: break;
        }
#endif
        y[r] = dot_scalar(type, row, (const uint8_t *)act, nb);
    }
}
