// The memory roofline for decode: how fast these cores can read a buffer far larger than the
// caches, with nothing done to the bytes but an xor that keeps the loads from being dropped.
// A one-row product over weights of B bytes cannot beat B ÷ this rate per token.
#include "fovea_quant.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

__attribute__((target("avx512f"))) static uint64_t read_avx512(const uint8_t *p, size_t n) {
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    size_t i = 0;
    for (; i + 256 <= n; i += 256) {
        a = _mm512_xor_si512(a, _mm512_load_si512(p + i));
        b = _mm512_xor_si512(b, _mm512_load_si512(p + i + 64));
        c = _mm512_xor_si512(c, _mm512_load_si512(p + i + 128));
        d = _mm512_xor_si512(d, _mm512_load_si512(p + i + 192));
    }
    a = _mm512_xor_si512(_mm512_xor_si512(a, b), _mm512_xor_si512(c, d));
    uint64_t lanes[8], s = 0;
    _mm512_storeu_si512(lanes, a);
    for (int j = 0; j < 8; j++) s ^= lanes[j];
    for (; i < n; i++) s ^= p[i];
    return s;
}

__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t n) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        a = _mm256_xor_si256(a, _mm256_load_si256((const __m256i *)(p + i)));
        b = _mm256_xor_si256(b, _mm256_load_si256((const __m256i *)(p + i + 32)));
        c = _mm256_xor_si256(c, _mm256_load_si256((const __m256i *)(p + i + 64)));
        d = _mm256_xor_si256(d, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
    uint64_t lanes[4], s = 0;
    _mm256_storeu_si256((__m256i *)lanes, a);
    for (int j = 0; j < 4; j++) s ^= lanes[j];
    for (; i < n; i++) s ^= p[i];
    return s;
}
#endif

uint64_t fovea_stream_read(const void *buffer, size_t bytes) {
    const uint8_t *p = (const uint8_t *)buffer;
#if defined(__x86_64__) || defined(_M_X64)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return read_avx512(p, bytes);
    if (__builtin_cpu_supports("avx2")) return read_avx2(p, bytes);
#endif
    uint64_t s = 0;
    for (size_t i = 0; i < bytes; i++) s ^= p[i];
    return s;
}
