/* backends/cpu/gemm_avx512.c - AVX-512 GEMM: f32 14x32 and f64 14x16 kernels, f32 packing.
 *
 * Compiled with -mavx512f -mfma (this file only) and called only where gemm_select.c found
 * AVX-512F in cpuid and the ZMM state enabled by the OS (xgetbv). Each kernel keeps its tile in
 * 28 ZMM accumulators: per step of k, two vector loads of B's micro-panel and 14 broadcasts of
 * A's feed 28 FMAs, so with 32 registers nothing spills and the FMA ports stay the bottleneck.
 * Edge tiles use masked loads and stores (rows past m are skipped), so no edge copy is needed;
 * an f32 tile at most 16 columns wide runs a half-width loop (half the FMAs).
 * C's tile is prefetched one line every few steps during the loop (all at once before it only
 * for short loops) and A's micro-panel (streamed from L2) eight steps ahead; B's rows stay in
 * L1 (a packed micro-panel, or B's own rows on the small-product path). The f32 path also
 * packs a row-major A's micro-panels (spack_a_rows, gemm.h's pack_a_rows) and a transposed B's
 * (spack_b_rows), copies a transposed A's and a row-major B's (spack_a_cols, spack_b_cols),
 * and applies bias and ReLU to stored tiles (sepilogue). Not here: the rest of
 * packing, and blocking (gemm.c).
 */
#include <immintrin.h>

#include "gemm.h"

#define MR 14
#define NR 32                /* f32 columns */

/* Each loop below is fully unrolled, so the accumulator arrays are scalarised into registers
 * (a loop with a variable index would put them on the stack; the always-inline step keeps
 * them there too). */

/* One step of k on a full-width tile: B's row in two vectors, MR broadcasts of A's column,
 * 2 MR FMAs. */
static inline __attribute__((always_inline)) void step_f32(__m512 *r0, __m512 *r1,
                                                           const float *a, const float *b)
{
    __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
    _mm_prefetch((const char *)(a + 8 * MR), _MM_HINT_T0);
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        __m512 ai = _mm512_set1_ps(a[i]);
        r0[i] = _mm512_fmadd_ps(ai, b0, r0[i]);
        r1[i] = _mm512_fmadd_ps(ai, b1, r1[i]);
    }
}

/* Steps of k between two prefetches of C's lines in the full-width loop. */
#define C_SPREAD 4

static void sgemm_14x32(int64_t kc, const void *av, const void *bv, int64_t ldb, void *cv,
                        int64_t ldc, int m, int n, bool acc)
{
    const float *a = av, *b = bv;
    float *c = cv;
    __m512 r0[MR], r1[MR];
    /* C's tile arrives while the loop runs: all 2m lines at once (the old way) overflow the
     * L1's miss buffers when C comes from L3 (a big product), and the loop stalls behind
     * them; one line every C_SPREAD steps does not. Short loops and half-width tiles (at
     * most m lines) still fetch it all up front. */
    bool spread = n > 16 && kc >= 2 * C_SPREAD * m;
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        r0[i] = _mm512_setzero_ps();
        r1[i] = _mm512_setzero_ps();
        if (i < m && !spread) {         /* the row's two cache lines (if n > 16) */
            _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
            if (n > 16)
                _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
        }
    }
    if (n <= 16) {                      /* a half-width tile: half the FMAs, r1 stays 0 */
#pragma GCC unroll 4
        for (int64_t p = 0; p < kc; p++) {
            __m512 b0 = _mm512_loadu_ps(b);
            _mm_prefetch((const char *)(a + 8 * MR), _MM_HINT_T0);
#pragma GCC unroll 14
            for (int i = 0; i < MR; i++)
                r0[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[i]), b0, r0[i]);
            a += MR;
            b += ldb;
        }
        kc = 0;
    }
    int64_t p = 0;
    if (spread)                         /* lines row by row, left then right */
        for (; p < 2 * C_SPREAD * m; p++, a += MR, b += ldb) {
            if (p % C_SPREAD == 0)
                _mm_prefetch((const char *)(c + p / (2 * C_SPREAD) * ldc +
                                            (p / C_SPREAD & 1) * 16), _MM_HINT_T0);
            step_f32(r0, r1, a, b);
        }
#pragma GCC unroll 4
    for (; p < kc; p++, a += MR, b += ldb)
        step_f32(r0, r1, a, b);
    __mmask16 k0 = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
    __mmask16 k1 = n >= 32 ? (__mmask16)0xffff
                           : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : (__mmask16)0;
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        if (i >= m)
            break;
        float *ci = c + i * ldc;
        if (acc) {
            r0[i] = _mm512_add_ps(r0[i], _mm512_maskz_loadu_ps(k0, ci));
            r1[i] = _mm512_add_ps(r1[i], _mm512_maskz_loadu_ps(k1, ci + 16));
        }
        _mm512_mask_storeu_ps(ci, k0, r0[i]);
        _mm512_mask_storeu_ps(ci + 16, k1, r1[i]);
    }
}

static void dgemm_14x16(int64_t kc, const void *av, const void *bv, int64_t ldb, void *cv,
                        int64_t ldc, int m, int n, bool acc)
{
    const double *a = av, *b = bv;
    double *c = cv;
    __m512d r0[MR], r1[MR];
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        r0[i] = _mm512_setzero_pd();
        r1[i] = _mm512_setzero_pd();
        if (i < m) {
            _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + i * ldc + 8), _MM_HINT_T0);
        }
    }
    for (int64_t p = 0; p < kc; p++) {
        __m512d b0 = _mm512_loadu_pd(b), b1 = _mm512_loadu_pd(b + 8);
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            __m512d ai = _mm512_set1_pd(a[i]);
            r0[i] = _mm512_fmadd_pd(ai, b0, r0[i]);
            r1[i] = _mm512_fmadd_pd(ai, b1, r1[i]);
        }
        a += MR;
        b += ldb;
    }
    __mmask8 k0 = n >= 8 ? (__mmask8)0xff : (__mmask8)((1u << n) - 1);
    __mmask8 k1 = n >= 16 ? (__mmask8)0xff : n > 8 ? (__mmask8)((1u << (n - 8)) - 1) : (__mmask8)0;
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        if (i >= m)
            break;
        double *ci = c + i * ldc;
        if (acc) {
            r0[i] = _mm512_add_pd(r0[i], _mm512_maskz_loadu_pd(k0, ci));
            r1[i] = _mm512_add_pd(r1[i], _mm512_maskz_loadu_pd(k1, ci + 8));
        }
        _mm512_mask_storeu_pd(ci, k0, r0[i]);
        _mm512_mask_storeu_pd(ci + 8, k1, r1[i]);
    }
}

/* r[0..8) = the 8 x 8 block at s (row stride rs) transposed: r[j] holds column j. Rows at or
 * past `rows` read as zeros. */
static inline __attribute__((always_inline)) void transpose_8x8(__m256 *r, const float *s,
                                                                int64_t rs, int rows)
{
    __m256 t[8], u[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        r[i] = i < rows ? _mm256_loadu_ps(s + i * rs) : _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 2
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        r[j] = _mm256_permute2f128_ps(u[j], u[j + 4], 0x20);
        r[j + 4] = _mm256_permute2f128_ps(u[j], u[j + 4], 0x31);
    }
}

/* The f32 A micro-panel of a row-major A (gemm.h's em_gemm_pack_rows_fn): 8 columns at a time,
 * rows 0-7 and 8-13 each as an 8 x 8 transpose, a column's 14 values stored as 8 + 6. About
 * twice as fast as the driver's 4 x 4 SSE blocks. */
static void spack_a_rows(float *d, const float *s, int64_t rs, int64_t kc)
{
    const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) {
        __m256 lo[8], hi[8];
        transpose_8x8(lo, s + p, rs, 8);
        transpose_8x8(hi, s + 8 * rs + p, rs, MR - 8);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            _mm256_storeu_ps(d + (p + j) * MR, lo[j]);
            _mm256_maskstore_ps(d + (p + j) * MR + 8, six, hi[j]);
        }
    }
    for (; p < kc; p++)
        for (int i = 0; i < MR; i++)
            d[p * MR + i] = s[i * rs + p];
}

/* The f32 B micro-panel of a transposed B whose NR columns are rows of a row-major matrix
 * (a weight in x @ W^T; gemm.h's em_gemm_pack_rows_fn with NR rows): 8 columns at a time, as
 * four 8 x 8 transposes. */
static void spack_b_rows(float *d, const float *s, int64_t rs, int64_t kc)
{
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) {
#pragma GCC unroll 4
        for (int g = 0; g < NR / 8; g++) {
            __m256 r[8];
            transpose_8x8(r, s + g * 8 * rs + p, rs, 8);
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
                _mm256_storeu_ps(d + (p + j) * NR + g * 8, r[j]);
        }
    }
    for (; p < kc; p++)
        for (int j = 0; j < NR; j++)
            d[p * NR + j] = s[j * rs + p];
}

/* The f32 micro-panels whose values of a step are contiguous (gemm.h's em_gemm_pack_cols_fn):
 * a step in one masked move for A (MR = 14) and two moves for B (NR = 32), where the driver's
 * SSE copy takes four and eight. */
static void spack_a_cols(float *d, const float *s, int64_t ps, int64_t kc)
{
    const __mmask16 k = (__mmask16)((1u << MR) - 1);
    for (int64_t p = 0; p < kc; p++) {
        _mm_prefetch((const char *)(s + (p + 8) * ps), _MM_HINT_T0);
        _mm512_mask_storeu_ps(d + p * MR, k, _mm512_maskz_loadu_ps(k, s + p * ps));
    }
}

static void spack_b_cols(float *d, const float *s, int64_t ps, int64_t kc)
{
    for (int64_t p = 0; p < kc; p++) {
        _mm_prefetch((const char *)(s + (p + 8) * ps), _MM_HINT_T0);
        _mm_prefetch((const char *)(s + (p + 8) * ps + 16), _MM_HINT_T0);
        _mm512_storeu_ps(d + p * NR, _mm512_loadu_ps(s + p * ps));
        _mm512_storeu_ps(d + p * NR + 16, _mm512_loadu_ps(s + p * ps + 16));
    }
}

/* The f32 epilogue (gemm.h's em_gemm_epilogue_fn), 16 columns a vector: "keep where c > 0 or
 * c is NaN" is the unordered not-less-or-equal compare, so -0 becomes +0 as in the driver's
 * loop. */
static void sepilogue(float *c, int64_t ldc, int m, int n, const float *bias, bool relu)
{
    const __m512 zero = _mm512_setzero_ps();
    for (int i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        for (int j = 0; j < n; j += 16) {
            __mmask16 k = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
            __m512 v = _mm512_maskz_loadu_ps(k, ci + j);
            if (bias)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, bias + j));
            if (relu)
                v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_NLE_UQ), v);
            _mm512_mask_storeu_ps(ci + j, k, v);
        }
    }
}

const em_gemm_impl em_cpu__gemm_avx512 = {
    .name = "avx512",
    .f32 = {.fn = sgemm_14x32, .pack_a_rows = spack_a_rows, .pack_b_rows = spack_b_rows,
            .pack_a_cols = spack_a_cols, .pack_b_cols = spack_b_cols, .epilogue = sepilogue,
            .mr = MR, .nr = NR},
    .f64 = {.fn = dgemm_14x16, .mr = MR, .nr = 16},
};
