// bf16 × bf16 matrix products on AMX tiles (Intel Sapphire Rapids and later): the same operands
// as gemm_bf16.c (activations rounded to bf16, products exact, sums in float32), but each
// tdpbf16ps multiplies a 16 × 32 bf16 tile by a 32 × 16 one: 16 times vdpbf16ps's products per
// instruction. PyTorch's bf16 matmul (oneDNN, on AMX) measured 602 GFLOP/s on two Sapphire Rapids
// cores (issue 15); Fovea's vdpbf16ps kernel measured 391 on two AVX-512 EPYC cores. This one is
// not yet measured on AMX hardware.
//
// Layout. Activation panels hold MR = 32 rows; for each block of 32 columns, the 32 rows' 64
// bytes lie one after another, so two tileloadd with stride 64 fetch rows 0–15 and 16–31.
// Weight panels hold NR = 32 rows as gemm_bf16.c's are, one 32-bit (w[r,k], w[r,k+1]) word per
// row and column pair, 128 bytes per pair: with stride 128, the 16 pairs of a block are the
// "VNNI" B tile tdpbf16ps expects, columns 0–15 at offset 0 and 16–31 at offset 64. Four C
// tiles hold the 32 × 32 float32 sums over the whole row length.
//
// Tested without the hardware: the kernel body is written once over four tile primitives and
// compiled twice, with the real instructions and with a software model of them that follows the
// Intel SDM pseudo-code (variant 0). The model is what the tests check for layout and loop
// bounds; on a CPU with AMX, fovea_amx_available() runs the real kernel once beside the model
// before trusting it, inside SIGILL/SIGSEGV guards, and says why when it does not.
#include "fovea_quant.h"
#include "panel_gemm.h"
#include "half_float.h"
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#define FOVEA_AMX 1
#endif

enum { MR = 32, NR = 32, KB = 32 };   // KB: bf16 values of one tile row

static int blocks_of(int k) { return (k + KB - 1) / KB; }

int fovea_amx_panel_rows(void) { return MR; }

size_t fovea_amx_act_bytes(int n, int k) { return (size_t)((n + MR - 1) / MR) * MR * (size_t)blocks_of(k) * KB * 2; }

size_t fovea_amx_weight_panel_bytes(int k) { return (size_t)NR * (size_t)blocks_of(k) * KB * 2; }

void fovea_amx_pack_act(const float *x, int n, int k, void *out, int p0, int p1) {
    const int blocks = blocks_of(k);
    for (int p = p0; p < p1; p++) {
        uint16_t *o = (uint16_t *)out + (size_t)p * MR * blocks * KB;
        for (int b = 0; b < blocks; b++)
            for (int i = 0; i < MR; i++) {
                const int m = p * MR + i;
                uint16_t *dst = o + ((size_t)b * MR + i) * KB;
                for (int j = 0; j < KB; j++) {
                    const int col = b * KB + j;
                    dst[j] = m < n && col < k ? f32_to_bf16(x[(size_t)m * k + col]) : 0;
                }
            }
    }
}

// Weight rows [r, r + NR) into a panel, columns padded with zeros to whole blocks.
static void pack_weights(int type, const uint8_t *w, size_t row_bytes, int k, int r, int rows, void *out) {
    (void)type;
    uint32_t *panel = (uint32_t *)out;
    const int pairs = blocks_of(k) * KB / 2;
    for (int i = 0; i < NR; i++) {
        const uint16_t *row = r + i < rows ? (const uint16_t *)(w + (size_t)(r + i) * row_bytes) : NULL;
        for (int j = 0; j < pairs; j++) {
            const uint32_t lo = row && 2 * j < k ? row[2 * j] : 0, hi = row && 2 * j + 1 < k ? row[2 * j + 1] : 0;
            panel[(size_t)j * NR + i] = lo | hi << 16;
        }
    }
}

// The kernel, once, over tile primitives ZERO(t), LOAD(t, p, stride), DP(c, a, b), STORE(t, p, stride).
// Tiles 0–3 are C (rows 0–15 × cols 0–15, 0–15 × 16–31, 16–31 × 0–15, 16–31 × 16–31), 4–5 A, 6–7 B.
#define AMX_KERNEL(NAME, ATTR, ZERO, LOAD, DP, STORE)                                                  \
    ATTR static void NAME(const void *av, const void *bv, int k, float *c) {                          \
        const uint8_t *a = (const uint8_t *)av, *b = (const uint8_t *)bv;                             \
        const int blocks = blocks_of(k);                                                               \
        ZERO(0); ZERO(1); ZERO(2); ZERO(3);                                                            \
        for (int i = 0; i < blocks; i++, a += MR * KB * 2, b += KB / 2 * NR * 4) {                    \
            LOAD(4, a, KB * 2); LOAD(5, a + 16 * KB * 2, KB * 2);                                     \
            LOAD(6, b, NR * 4); LOAD(7, b + 64, NR * 4);                                              \
            DP(0, 4, 6); DP(1, 4, 7); DP(2, 5, 6); DP(3, 5, 7);                                        \
        }                                                                                              \
        STORE(0, c, NR * 4); STORE(1, c + 16, NR * 4);                                                 \
        STORE(2, c + 16 * NR, NR * 4); STORE(3, c + 16 * NR + 16, NR * 4);                             \
    }

// The software model: eight 16-row × 64-byte tiles per thread, and tdpbf16ps's arithmetic as the
// SDM states it for each row m, pair k, column n: the pair's two bf16 products added into the
// float32 sum. The hardware rounds in its own order and flushes denormals; tests bound the sums
// rather than compare bits, and the probe uses operands whose every sum is exact.
static _Thread_local union { uint8_t b[8][16][64]; float f[8][16][16]; uint32_t w[8][16][16]; } model;

static void model_zero(int t) { memset(model.b[t], 0, sizeof model.b[t]); }
static void model_load(int t, const void *p, size_t stride) {
    for (int r = 0; r < 16; r++) memcpy(model.b[t][r], (const uint8_t *)p + (size_t)r * stride, 64);
}
static void model_store(int t, void *p, size_t stride) {
    for (int r = 0; r < 16; r++) memcpy((uint8_t *)p + (size_t)r * stride, model.b[t][r], 64);
}
static void model_dp(int c, int a, int b) {
    for (int m = 0; m < 16; m++)
        for (int k = 0; k < 16; k++) {
            const uint32_t x = model.w[a][m][k];
            for (int n = 0; n < 16; n++) {
                const uint32_t y = model.w[b][k][n];
                model.f[c][m][n] += bf16_to_f32((uint16_t)x) * bf16_to_f32((uint16_t)y);
                model.f[c][m][n] += bf16_to_f32((uint16_t)(x >> 16)) * bf16_to_f32((uint16_t)(y >> 16));
            }
        }
}
#define MODEL_LOAD(t, p, s) model_load(t, p, s)
#define MODEL_STORE(t, p, s) model_store(t, p, s)
AMX_KERNEL(tile_model, , model_zero, MODEL_LOAD, model_dp, MODEL_STORE)

#ifdef FOVEA_AMX
#define HW_ZERO(t) _tile_zero(t)
#define HW_LOAD(t, p, s) _tile_loadd(t, p, s)
#define HW_DP(c, a, b) _tile_dpbf16ps(c, a, b)
#define HW_STORE(t, p, s) _tile_stored(t, p, s)
AMX_KERNEL(tile_amx, __attribute__((target("amx-tile,amx-bf16"))), HW_ZERO, HW_LOAD, HW_DP, HW_STORE)

// Palette 1, all eight tiles 16 rows × 64 bytes.
static const struct __attribute__((aligned(64))) {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config = {1, 0, {0}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};

__attribute__((target("amx-tile"))) static void amx_configure(void) { _tile_loadconfig(&tile_config); }
__attribute__((target("amx-tile"))) static void amx_release(void) { _tile_release(); }

static char amx_reason[160] = "not probed";
static int amx_ok = 0;
static sigjmp_buf probe_jump;
static volatile sig_atomic_t probe_caught;
static void probe_signal(int sig) {
    probe_caught = sig;
    siglongjmp(probe_jump, 1);
}

// One 32 × 32 × 80 product (three blocks, the last partial) through the real tiles and the model.
static int probe(void) {
    enum { N = 32, K = 80, ROWS = 32 };
    static float x[N * K], y_hw[N * NR], y_model[N * NR];
    static uint16_t w[ROWS * K];
    static uint8_t act[N * 96 * 2], panel[NR * 96 * 2];
    for (int i = 0; i < N * K; i++) x[i] = (float)((i * 37 % 101) - 50) / 16.0f;
    for (int i = 0; i < ROWS * K; i++) w[i] = f32_to_bf16((float)((i * 53 % 89) - 44) / 32.0f);
    fovea_amx_pack_act(x, N, K, act, 0, 1);
    pack_weights(FOVEA_BF16, (const uint8_t *)w, K * 2, K, 0, ROWS, panel);
    tile_model(act, panel, K, y_model);

    struct sigaction guard = {0}, old_ill, old_segv, old_bus;
    guard.sa_handler = probe_signal;
    sigemptyset(&guard.sa_mask);
    sigaction(SIGILL, &guard, &old_ill);
    sigaction(SIGSEGV, &guard, &old_segv);
    sigaction(SIGBUS, &guard, &old_bus);
    probe_caught = 0;
    if (sigsetjmp(probe_jump, 1) == 0) {
        amx_configure();
        tile_amx(act, panel, K, y_hw);
        amx_release();
    }
    sigaction(SIGILL, &old_ill, NULL);
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGBUS, &old_bus, NULL);
    if (probe_caught != 0) {
        const int sig = probe_caught;
        snprintf(amx_reason, sizeof amx_reason, "AMX probe stopped by signal %d (%s)", sig, strsignal(sig));
        return 0;
    }
    // Operands are multiples of 2⁻⁵ and 2⁻⁶ with few bits: every product and sum is exact, so
    // the hardware must agree with the model exactly, whatever its order of additions.
    for (int i = 0; i < N * NR; i++)
        if (y_hw[i] != y_model[i]) {
            snprintf(amx_reason, sizeof amx_reason, "AMX probe disagreed with the model at [%d, %d]: %g against %g", i / NR,
                     i % NR, (double)y_hw[i], (double)y_model[i]);
            return 0;
        }
    return 1;
}

static void amx_init(void) {
    const char *env = getenv("FOVEA_AMX");
    if (env && strcmp(env, "0") == 0) {
        snprintf(amx_reason, sizeof amx_reason, "switched off by FOVEA_AMX=0");
        return;
    }
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 22))) {
        snprintf(amx_reason, sizeof amx_reason, "this CPU has no AMX-TILE/AMX-BF16");
        return;
    }
    // Linux keeps AMX state off until a process asks (since 5.16): ARCH_REQ_XCOMP_PERM, XTILEDATA.
    if (syscall(SYS_arch_prctl, 0x1023, 18) != 0) {
        snprintf(amx_reason, sizeof amx_reason, "the kernel refused AMX state (arch_prctl ARCH_REQ_XCOMP_PERM)");
        return;
    }
    if (probe()) {
        amx_ok = 1;
        snprintf(amx_reason, sizeof amx_reason, "AMX tiles (tdpbf16ps), probed against the model");
    }
}
#endif

static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

int fovea_amx_available(void) {
#ifdef FOVEA_AMX
    pthread_once(&amx_once, amx_init);
    return amx_ok;
#else
    (void)amx_once;
    return 0;
#endif
}

const char *fovea_amx_status(void) {
#ifdef FOVEA_AMX
    pthread_once(&amx_once, amx_init);
    return amx_reason;
#else
    return "AMX is x86-64 Linux only";
#endif
}

void fovea_amx_gemm(const void *w, size_t row_bytes, int k, int rows, const void *act, int n, float *y, size_t ldy,
                    int r0, int r1, void *panel, int variant) {
    const size_t act_panel = (size_t)MR * (size_t)blocks_of(k) * KB * 2;
#ifdef FOVEA_AMX
    if (variant != 0 && fovea_amx_available()) {
        // Tile configuration is per thread: each thread that runs the kernel loads it.
        amx_configure();
        fovea_panel_gemm(FOVEA_BF16, w, row_bytes, k, rows, act, act_panel, n, y, ldy, r0, r1, panel, MR, NR, pack_weights,
                         tile_amx);
        amx_release();
        return;
    }
#endif
    (void)variant;
    fovea_panel_gemm(FOVEA_BF16, w, row_bytes, k, rows, act, act_panel, n, y, ldy, r0, r1, panel, MR, NR, pack_weights,
                     tile_model);
}
