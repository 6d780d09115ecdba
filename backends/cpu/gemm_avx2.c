/* backends/cpu/gemm_avx2.c - AVX2+FMA GEMM micro-kernels: f32 6x16 and f64 6x8.
 *
 * Compiled with -mavx2 -mfma (this file only) and called only where gemm_select.c found AVX2
 * and FMA in cpuid and the YMM state enabled by the OS (xgetbv). Twelve YMM accumulators, two
 * loads of B's micro-panel and one broadcast of A's per row: 15 of the 16 registers, no
 * spills. Edge tiles go through a stack tile (AVX2 has no cheap masked stores for every case).
 * Also the f32 epilogue (bias, ReLU) on stored tiles, 8 columns a vector.
 */
#include <immintrin.h>

#include "gemm.h"

#define MR 6

static void sgemm_6x16(int64_t kc, const void *av, const void *bv, int64_t ldb,
                       void *cv, int64_t ldc, int m, int n, bool acc)
{
    const float *a = av, *b = bv;
    float *c = cv;
    __m256 r0[MR], r1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        r0[i] = _mm256_setzero_ps();
        r1[i] = _mm256_setzero_ps();
    }
    for (int64_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            r0[i] = _mm256_fmadd_ps(ai, b0, r0[i]);
            r1[i] = _mm256_fmadd_ps(ai, b1, r1[i]);
        }
        a += MR;
        b += ldb;
    }
    if (m == MR && n == 16) {
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            float *ci = c + i * ldc;
            if (acc) {
                r0[i] = _mm256_add_ps(r0[i], _mm256_loadu_ps(ci));
                r1[i] = _mm256_add_ps(r1[i], _mm256_loadu_ps(ci + 8));
            }
            _mm256_storeu_ps(ci, r0[i]);
            _mm256_storeu_ps(ci + 8, r1[i]);
        }
        return;
    }
    float t[MR * 16];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        _mm256_storeu_ps(t + i * 16, r0[i]);
        _mm256_storeu_ps(t + i * 16 + 8, r1[i]);
    }
    em_gemm__tile_store_f32(t, 16, c, ldc, m, n, acc);
}

static void dgemm_6x8(int64_t kc, const void *av, const void *bv, int64_t ldb,
                      void *cv, int64_t ldc, int m, int n, bool acc)
{
    const double *a = av, *b = bv;
    double *c = cv;
    __m256d r0[MR], r1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        r0[i] = _mm256_setzero_pd();
        r1[i] = _mm256_setzero_pd();
    }
    for (int64_t p = 0; p < kc; p++) {
        __m256d b0 = _mm256_loadu_pd(b), b1 = _mm256_loadu_pd(b + 4);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m256d ai = _mm256_broadcast_sd(a + i);
            r0[i] = _mm256_fmadd_pd(ai, b0, r0[i]);
            r1[i] = _mm256_fmadd_pd(ai, b1, r1[i]);
        }
        a += MR;
        b += ldb;
    }
    if (m == MR && n == 8) {
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            double *ci = c + i * ldc;
            if (acc) {
                r0[i] = _mm256_add_pd(r0[i], _mm256_loadu_pd(ci));
                r1[i] = _mm256_add_pd(r1[i], _mm256_loadu_pd(ci + 4));
            }
            _mm256_storeu_pd(ci, r0[i]);
            _mm256_storeu_pd(ci + 4, r1[i]);
        }
        return;
    }
    double t[MR * 8];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        _mm256_storeu_pd(t + i * 8, r0[i]);
        _mm256_storeu_pd(t + i * 8 + 4, r1[i]);
    }
    em_gemm__tile_store_f64(t, 8, c, ldc, m, n, acc);
}

/* The f32 epilogue (gemm.h's em_gemm_epilogue_fn), 8 columns a vector, the tail through a
 * lane mask: "keep where c > 0 or c is NaN" is the unordered not-less-or-equal compare, so
 * -0 becomes +0 as in the driver's loop. */
static void sepilogue(float *c, int64_t ldc, int m, int n, const float *bias, bool relu)
{
    const __m256 zero = _mm256_setzero_ps();
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        int j = 0;
        for (; j + 8 <= n; j += 8) {
            __m256 v = _mm256_loadu_ps(ci + j);
            if (bias)
                v = _mm256_add_ps(v, _mm256_loadu_ps(bias + j));
            if (relu)
                v = _mm256_and_ps(_mm256_cmp_ps(v, zero, _CMP_NLE_UQ), v);
            _mm256_storeu_ps(ci + j, v);
        }
        if (j < n) {                    /* masked moves are slow: the tail only */
            __m256i k = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - j), lanes);
            __m256 v = _mm256_maskload_ps(ci + j, k);
            if (bias)
                v = _mm256_add_ps(v, _mm256_maskload_ps(bias + j, k));
            if (relu)
                v = _mm256_and_ps(_mm256_cmp_ps(v, zero, _CMP_NLE_UQ), v);
            _mm256_maskstore_ps(ci + j, k, v);
        }
    }
}

const em_gemm_impl em_cpu__gemm_avx2 = {
    .name = "avx2",
    .f32 = {.fn = sgemm_6x16, .epilogue = sepilogue, .mr = MR, .nr = 16},
    .f64 = {.fn = dgemm_6x8, .mr = MR, .nr = 8},
};
