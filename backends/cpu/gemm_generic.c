/* backends/cpu/gemm_generic.c - portable C GEMM micro-kernels: f32 4x16 and f64 4x8.
 *
 * The path for CPUs without AVX2 (and every non-x86 CPU): plain loops over a tile held in a
 * local array, which the compiler vectorises with whatever the baseline instruction set
 * offers (SSE2 on x86-64, NEON on AArch64). No intrinsics, no FMA contraction is assumed.
 */
#include "gemm.h"

#define MR 4
#define NR_S 16
#define NR_D 8

static void sgemm_4x16(int64_t kc, const void *av, const void *bv, int64_t ldb,
                       void *cv, int64_t ldc, int m, int n, bool acc)
{
    const float *a = av, *b = bv;
    float t[MR * NR_S] = {0};
    for (int64_t p = 0; p < kc; p++, a += MR, b += ldb)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR_S; j++)
                t[i * NR_S + j] += a[i] * b[j];
    em_gemm__tile_store_f32(t, NR_S, cv, ldc, m, n, acc);
}

static void dgemm_4x8(int64_t kc, const void *av, const void *bv, int64_t ldb,
                      void *cv, int64_t ldc, int m, int n, bool acc)
{
    const double *a = av, *b = bv;
    double t[MR * NR_D] = {0};
    for (int64_t p = 0; p < kc; p++, a += MR, b += ldb)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR_D; j++)
                t[i * NR_D + j] += a[i] * b[j];
    em_gemm__tile_store_f64(t, NR_D, cv, ldc, m, n, acc);
}

const em_gemm_impl em_cpu__gemm_generic = {
    .name = "generic",
    .f32 = {.fn = sgemm_4x16, .mr = MR, .nr = NR_S},
    .f64 = {.fn = dgemm_4x8, .mr = MR, .nr = NR_D},
};
