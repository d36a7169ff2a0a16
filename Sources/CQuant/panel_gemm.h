// The loop every register-blocked product shares (gemm_bf16.c, gemm_q8.c, gemm_half.c): weight
// rows [r0, r1) in panels of NR, each repacked into `panel` by `pack`, then every MR-row panel of
// the packed activations through `tile`, the valid part of each tile copied into y.
#ifndef FOVEA_PANEL_GEMM_H
#define FOVEA_PANEL_GEMM_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef void (*fovea_pack_fn)(int type, const uint8_t *w, size_t row_bytes, int k, int r, int rows, void *panel);
typedef void (*fovea_tile_fn)(const void *a, const void *b, int k, float *c);

enum { FOVEA_TILE_MAX = 32 * 32 };   // the largest MR × NR: gemm_amx.c's four 16 × 16 tiles

static inline void fovea_panel_gemm(int type, const void *w, size_t row_bytes, int k, int rows, const void *act,
                                    size_t act_panel_bytes, int n, float *y, size_t ldy, int r0, int r1, void *panel,
                                    int mr, int nr, fovea_pack_fn pack, fovea_tile_fn tile) {
    float c[FOVEA_TILE_MAX] __attribute__((aligned(64)));
    for (int r = r0; r < r1; r += nr) {
        pack(type, (const uint8_t *)w, row_bytes, k, r, r1 < rows ? r1 : rows, panel);
        const int cols = (r1 - r) < nr ? r1 - r : nr;
        for (int m = 0; m < n; m += mr) {
            tile((const uint8_t *)act + (size_t)(m / mr) * act_panel_bytes, panel, k, c);
            const int h = n - m < mr ? n - m : mr;
            for (int i = 0; i < h; i++) memcpy(y + (size_t)(m + i) * ldy + r, c + i * nr, sizeof(float) * (size_t)cols);
        }
    }
}

#endif
