// Block-quantised matrix-vector kernels over ggml's Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K and Q6_K layouts, the weights
// staying as stored. The activation row is quantised on the fly, per 32-value block, as ggml does
// (Q8_0; Q8_1 with the block sum for Q4_1), and the products are integer dot products. The fastest
// variant this CPU supports is chosen at run time; the scalar one is the reference twin.
#ifndef FOVEA_QUANT_H
#define FOVEA_QUANT_H
#include <stddef.h>
#include <stdint.h>

// F16 and BF16 rows are framed as 32-value "blocks" of 64 bytes with no scale. The k-quants
// (Q4_K, Q6_K) are 256-value super-blocks. F16, BF16, Q5_0, Q5_1 and the k-quants take only the
// float-activation product and dequantisation. (Q5_0/Q5_1 are what llama-quantize falls back to
// in a Q4_K_M file for matrices whose rows are not a multiple of 256, as in SmolLM2's 576.)
enum fovea_qtype { FOVEA_Q8_0 = 0, FOVEA_Q4_0 = 1, FOVEA_Q4_1 = 2, FOVEA_F16 = 3, FOVEA_BF16 = 4, FOVEA_Q4_K = 5, FOVEA_Q6_K = 6,
                   FOVEA_Q5_0 = 7, FOVEA_Q5_1 = 8 };

// Values per block of `type`: 32, or 256 for the k-quants. Row lengths are multiples of it.
int fovea_q_block_values(int type);
// Bytes one block of `type` takes (34, 18, 20, 64, 64, 144, 210, 22, 24).
size_t fovea_q_block_bytes(int type);
// Bytes one quantised activation block takes for weights of `type` (Q8_0: 34; Q8_1: 36).
size_t fovea_q_act_block_bytes(int type);

// `n` values (a multiple of 32) of `x` into activation blocks for weights of `type`.
void fovea_q_quantize_act(int type, const float *x, void *out, int n);
// `n` weights (a multiple of 32) into `type`'s stored format (not Q5 or the k-quants: their
// output is left zero), as ggml's reference quantisers do
// (Q8_0: scale amax/127; Q4_0: the largest-magnitude value maps to -8; Q4_1: min and (max-min)/15;
// f16 and bf16 rounded to nearest even). Only these five.
void fovea_q_quantize_weights(int type, const float *x, void *out, int n);
// Row `w` of `n` values (a multiple of the block) back to float, as ggml's dequantize_row_*.
void fovea_q_dequantize(int type, const void *w, float *out, int n);

// y[r] = row r of w · x for r in [r0, r1); w is rows of `row_bytes`, `act` is x quantised by
// fovea_q_quantize_act. `variant` -1 picks the fastest available; 0 forces the scalar twin.
void fovea_q_gemv(int type, const void *w, size_t row_bytes, int n, const void *act, float *y, int r0, int r1, int variant);

// The same product with x in float32: weights dequantised in registers, no activation rounding
// (exact to float summation order against a float32 copy of the weights). Rows up to 16,384 wide.
void fovea_q_gemv_f32(int type, const void *w, size_t row_bytes, int n, const float *x, float *y, int r0, int r1, int variant);

// Kernel families of the one-row products. -1 (any negative) picks the best this CPU has: AVX-512
// VNNI, else AVX-VNNI (FOVEA_AVXVNNI=0 skips it), else AVX2, else scalar; the float-activation
// product has no VNNI form and runs AVX2 (AVX-512 for F16/BF16 rows) under the VNNI variants.
// FOVEA_V_AVXVNNI_MODEL is the AVX-VNNI kernels with vpdpbusd computed in AVX2, for tests on CPUs
// without it. A variant this CPU cannot run resolves to the best it can.
enum fovea_q_variant { FOVEA_V_SCALAR = 0, FOVEA_V_AVX2 = 1, FOVEA_V_AVX512VNNI = 2, FOVEA_V_AVXVNNI = 3, FOVEA_V_AVXVNNI_MODEL = 4 };
int fovea_q_variant_available(int variant);
int fovea_q_best_variant(void);
const char *fovea_q_variant_name(int variant);

// bf16 × bf16 products for many activation rows (prefill, the vision tower), as PyTorch's bf16
// autocast computes: x rounded to bf16 (nearest even), products summed in float32, vdpbf16ps on
// AVX-512 BF16 (gemm_bf16.c). x [n, k] is packed once by fovea_bf16_pack_act (panels p0..<p1 of
// fovea_bf16_panel_rows() rows, so threads can split it) into fovea_bf16_act_bytes(n, k) bytes.
// fovea_bf16_gemm writes y[m * ldy + r] for every m < n and r in [r0, r1) from the bf16 weight
// rows of w (`rows` in all), repacking them through `panel` (fovea_bf16_weight_panel_bytes(k)).
// `variant` 0 forces the scalar twin; otherwise the vector kernel where the CPU has one.
int fovea_bf16_gemm_available(void);
// y[i] = x[i] rounded to the nearest bf16 (even on ties), as float32: the same operands for CPUs
// without the instruction.
void fovea_bf16_round(const float *x, float *y, int n);
int fovea_bf16_panel_rows(void);
size_t fovea_bf16_act_bytes(int n, int k);
size_t fovea_bf16_weight_panel_bytes(int k);
void fovea_bf16_pack_act(const float *x, int n, int k, void *out, int p0, int p1);
void fovea_bf16_gemm(const void *w, size_t row_bytes, int k, int rows, const void *act, int n, float *y, size_t ldy,
                     int r0, int r1, void *panel, int variant);

// The same bf16 × bf16 product on AMX tiles (gemm_amx.c, tdpbf16ps), where the CPU has AMX-BF16,
// Linux grants the tile state and a first product through the tiles equals the software model of
// them (fovea_amx_status() says which failed; FOVEA_AMX=0 switches it off). Its own packing,
// in panels of fovea_amx_panel_rows() rows; `variant` 0 runs the software model of the tiles.
int fovea_amx_available(void);
const char *fovea_amx_status(void);
int fovea_amx_panel_rows(void);
size_t fovea_amx_act_bytes(int n, int k);
size_t fovea_amx_weight_panel_bytes(int k);
void fovea_amx_pack_act(const float *x, int n, int k, void *out, int p0, int p1);
void fovea_amx_gemm(const void *w, size_t row_bytes, int k, int rows, const void *act, int n, float *y, size_t ldy,
                    int r0, int r1, void *panel, int variant);

// Q8_0 weights × Q8_0 activations for many rows (`--activations int8`), llama.cpp's arithmetic:
// x quantised per 32-value block as fovea_q_quantize_act does, block sums in integers
// (vpdpbusd on AVX-512 VNNI), scaled by both fp16 scales and summed in float32 (gemm_q8.c).
// Same packing contract as the bf16 product: fovea_q8_pack_act over panels p0..<p1 of
// fovea_q8_panel_rows() rows into fovea_q8_act_bytes(n, k); fovea_q8_gemm writes y[m * ldy + r]
// for r in [r0, r1) through a panel of fovea_q8_weight_panel_bytes(k). k is a multiple of 32.
int fovea_q8_gemm_available(void);
int fovea_q8_panel_rows(void);
size_t fovea_q8_act_bytes(int n, int k);
size_t fovea_q8_weight_panel_bytes(int k);
void fovea_q8_pack_act(const float *x, int n, int k, void *out, int p0, int p1);
void fovea_q8_gemm(const void *w, size_t row_bytes, int k, int rows, const void *act, int n, float *y, size_t ldy,
                   int r0, int r1, void *panel, int variant);

// F16 or BF16 weights (`type`) × float32 activations for many rows, the float path's arithmetic
// without widening bands of the matrix for sgemm (gemm_half.c, AVX-512F). Same contract as the
// products above: fovea_half_pack_act, then fovea_half_gemm through a panel of
// fovea_half_weight_panel_bytes(k).
int fovea_half_gemm_available(void);
int fovea_half_panel_rows(void);
size_t fovea_half_act_bytes(int n, int k);
size_t fovea_half_weight_panel_bytes(int k);
void fovea_half_pack_act(const float *x, int n, int k, void *out, int p0, int p1);
void fovea_half_gemm(int type, const void *w, size_t row_bytes, int k, int rows, const void *act, int n, float *y, size_t ldy,
                     int r0, int r1, void *panel, int variant);

// Reads `bytes` (64-byte aligned, a multiple of 256 for the vector loops) and returns their xor
// folded to 64 bits: the memory-read rate decode's one-row products are bounded by (stream.c).
uint64_t fovea_stream_read(const void *buffer, size_t bytes);

// exp for softmax and the exp-based activations (vexp.c): Cephes' expf polynomial, within 2 ulp,
// 16 (AVX-512) or 8 (AVX2 + FMA) lanes at a time, with a scalar twin giving the same bits.
// `variant`: −1 the best this CPU has, 0 the scalar twin, 1 AVX2, 2 AVX-512.
int fovea_exp_available(int variant);
void fovea_exp(const float *x, float *y, int n, int variant);
// Softmax of one row in place; a row of −inf (every key masked) becomes zeros.
void fovea_softmax_row(float *x, int n, int variant);
// x[i] = x[i] / (1 + exp(−beta·x[i])) · up[i] (up may be NULL): SiLU (beta 1), quick_gelu (1.702),
// SwiGLU's gate with `up`.
void fovea_swish(float *x, const float *up, int n, float beta, int variant);

// Cores this process may run on: its affinity mask (taskset, a container's cpuset) on Linux,
// the cores online elsewhere. OpenBLAS counts its default threads the same way.
int fovea_cpu_count(void);

#endif
