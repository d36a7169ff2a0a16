// Block-quantised matrix-vector kernels over ggml's Q8_0, Q4_0 and Q4_1 layouts, the weights
// staying as stored. The activation row is quantised on the fly, per 32-value block, as ggml does
// (Q8_0; Q8_1 with the block sum for Q4_1), and the products are integer dot products. The fastest
// variant this CPU supports is chosen at run time; the scalar one is the reference twin.
#ifndef FOVEA_QUANT_H
#define FOVEA_QUANT_H
#include <stddef.h>
#include <stdint.h>

// F16 and BF16 rows are framed as 32-value "blocks" of 64 bytes with no scale: only the
// float-activation product and dequantisation take them.
enum fovea_qtype { FOVEA_Q8_0 = 0, FOVEA_Q4_0 = 1, FOVEA_Q4_1 = 2, FOVEA_F16 = 3, FOVEA_BF16 = 4 };

// Bytes one 32-value block of `type` takes (34, 18, 20, 64, 64).
size_t fovea_q_block_bytes(int type);
// Bytes one quantised activation block takes for weights of `type` (Q8_0: 34; Q8_1: 36).
size_t fovea_q_act_block_bytes(int type);

// `n` values (a multiple of 32) of `x` into activation blocks for weights of `type`.
void fovea_q_quantize_act(int type, const float *x, void *out, int n);
// `n` weights (a multiple of 32) into `type`'s stored format, as ggml's reference quantisers do
// (Q8_0: scale amax/127; Q4_0: the largest-magnitude value maps to -8; Q4_1: min and (max-min)/15;
// f16 and bf16 rounded to nearest even).
void fovea_q_quantize_weights(int type, const float *x, void *out, int n);
// Row `w` of `n` values (a multiple of 32) back to float.
void fovea_q_dequantize(int type, const void *w, float *out, int n);

// y[r] = row r of w · x for r in [r0, r1); w is rows of `row_bytes`, `act` is x quantised by
// fovea_q_quantize_act. `variant` -1 picks the fastest available; 0 forces the scalar twin.
void fovea_q_gemv(int type, const void *w, size_t row_bytes, int n, const void *act, float *y, int r0, int r1, int variant);

// The same product with x in float32: weights dequantised in registers, no activation rounding
// (exact to float summation order against a float32 copy of the weights). Rows up to 16,384 wide.
void fovea_q_gemv_f32(int type, const void *w, size_t row_bytes, int n, const float *x, float *y, int r0, int r1, int variant);

// The variant -1 resolves to on this CPU: 0 scalar, 1 AVX2, 2 AVX-512 (VNNI).
int fovea_q_best_variant(void);
const char *fovea_q_variant_name(int variant);

#endif
