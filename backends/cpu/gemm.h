/* backends/cpu/gemm.h - Ember's packed, cache-blocked GEMM: the driver's interface and the
 * micro-kernel contract shared by gemm.c, gemm_select.c and the per-ISA kernel files.
 *
 * The scheme is Goto's (as in BLIS): C is cut into NC-column and MC-row blocks, K into KC
 * slices; A's block is packed into MR-row micro-panels and B's into NR-column micro-panels
 * (converting f16/bf16 to f32 and following any strides on the way), and a register-blocked
 * micro-kernel computes one MR x NR tile of C from one pair of micro-panels. Private to
 * backends/cpu/.
 */
#ifndef EMBER_BACKENDS_CPU_GEMM_H
#define EMBER_BACKENDS_CPU_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember/plugin.h"

/* Largest micro-tile any kernel uses (rows x columns), for edge buffers on the stack. */
#define EM_GEMM_MAX_MR 16
#define EM_GEMM_MAX_NR 32

/* C[0..m, 0..n) = (acc ? C : 0) + sum_p a[p] (x) b[p] over kc steps, where a is a packed
 * MR-row micro-panel (kc columns of MR values) and b holds kc rows of NR values, row p at
 * b + p * ldb (a packed NR-column micro-panel has ldb = NR; the small-product path passes B's
 * own rows), both in the kernel's dtype; C is row-major with row stride ldc (elements). m <=
 * MR and n <= NR: tiles at the matrix edges are partial, the panels are zero-padded, and all
 * NR values of each of b's rows are readable. */
typedef void (*em_gemm_ukernel_fn)(int64_t kc, const void *a, const void *b, int64_t ldb,
                                   void *c, int64_t ldc, int m, int n, bool acc);

/* Writes the m x n corner of a full micro-tile (row stride nr) into C, adding C's old values
 * if acc: the edge path of kernels that cannot mask their stores. */
static inline void em_gemm__tile_store_f32(const float *t, int nr, float *c, int64_t ldc, int m,
                                           int n, bool acc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            c[i * ldc + j] = acc ? c[i * ldc + j] + t[i * nr + j] : t[i * nr + j];
}

static inline void em_gemm__tile_store_f64(const double *t, int nr, double *c, int64_t ldc,
                                           int m, int n, bool acc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            c[i * ldc + j] = acc ? c[i * ldc + j] + t[i * nr + j] : t[i * nr + j];
}

/* Packs one whole f32 micro-panel of R rows from a row-major matrix (column stride 1, row
 * stride rs): d[p * R + i] = s[i * rs + p] for i < R, p < kc, where R is MR for A's panels
 * (a row-major A) and NR for B's (a transposed B, its columns rows of a row-major matrix). A
 * kernel file provides one where its instruction set transposes faster than the driver's
 * portable packing. */
typedef void (*em_gemm_pack_rows_fn)(float *d, const float *s, int64_t rs, int64_t kc);

/* Packs one whole f32 micro-panel of R values a step from a matrix that holds them
 * contiguously (row stride 1 for A's panels: A^T stored row-major; column stride 1 for B's: a
 * row-major B): d[p * R + i] = s[p * ps + i] for i < R, p < kc, R being MR or NR as above. The
 * driver's portable copy moves 4 floats an instruction; a kernel file may move a whole step. */
typedef void (*em_gemm_pack_cols_fn)(float *d, const float *s, int64_t ps, int64_t kc);

/* The f32 epilogue on one stored tile of C (m <= MR rows, n <= NR columns, row stride ldc):
 * c[i][j] += bias[j] if bias, then c = max(c, 0) if relu, a NaN staying NaN and -0 becoming
 * +0 (the driver's portable loop, which a kernel file may replace with one in its instruction
 * set; both must give the same bits). */
typedef void (*em_gemm_epilogue_fn)(float *c, int64_t ldc, int m, int n, const float *bias,
                                    bool relu);

/* One micro-kernel with the block sizes the driver uses with it. */
typedef struct em_gemm_kernel {
    em_gemm_ukernel_fn fn;
    em_gemm_pack_rows_fn pack_a_rows;   /* f32 only; NULL: the driver's packing */
    em_gemm_pack_rows_fn pack_b_rows;   /* f32 only, B^T row-major; NULL: the driver's */
    em_gemm_pack_cols_fn pack_a_cols;   /* f32 only, A^T row-major; NULL: the driver's */
    em_gemm_pack_cols_fn pack_b_cols;   /* f32 only, B row-major; NULL: the driver's */
    em_gemm_epilogue_fn epilogue;       /* f32 only; NULL: the driver's */
    int mr, nr;                 /* register tile */
    int64_t kc, mc, nc;         /* cache blocks (set by gemm_select.c from the cache sizes) */
} em_gemm_kernel;

/* An instruction-set path: its f32 and f64 micro-kernels. */
typedef struct em_gemm_impl {
    const char *name;           /* "avx512", "avx2", "generic" */
    em_gemm_kernel f32, f64;
} em_gemm_impl;

/* The per-ISA tables (block sizes left zero: gemm_select.c fills a copy). */
extern const em_gemm_impl em_cpu__gemm_generic;
#if defined(__x86_64__)
extern const em_gemm_impl em_cpu__gemm_avx2;
extern const em_gemm_impl em_cpu__gemm_avx512;
#endif

/* gemm_select.c: picks the path once from the CPU's feature bits (cpuid, xgetbv) or
 * EMBER_GEMM_KERNEL, and sizes the blocks from the cache sizes cpuid reports. Called from
 * the plugin's init; warns (never fails) when the variable names a path the CPU cannot run. */
void em_cpu__gemm_select(void);
/* The selected path (valid after em_cpu__gemm_select; borrowed, static). */
const em_gemm_impl *em_cpu__gemm_impl(void);
/* One line naming the kernel and its block sizes, for `ember info`. */
void em_cpu__gemm_describe(char *buf, size_t size);

/* ---- the driver (gemm.c) ---------------------------------------------------------------- */

/* A matrix operand: element (i, j) is at p + (i * rs + j * cs) elements of dtype dt. */
typedef struct em_gemm_operand {
    const void *p;
    em_dtype dt;                /* f32 or f64; f16/bf16 when the compute dtype is f32 */
    int64_t rs, cs;
} em_gemm_operand;

/* c[M, N] (row-major, row stride ldc, compute dtype cdt) = a[M, K] @ b[K, N], then + bias[j]
 * (N values of cdt, or NULL) and max(., 0) if relu. K >= 0 (K = 0 gives bias or zeros). */
typedef struct em_gemm_args {
    em_dtype cdt;               /* EM_F32 or EM_F64 */
    int64_t M, N, K;
    em_gemm_operand a, b;
    void *c;
    int64_t ldc;
    const void *bias;
    bool relu;
} em_gemm_args;

/* Runs one product. threads > 1 splits C into a grid of parts over the pool (each part packs
 * its own panels); products too small to pay for a hand-off run on the calling thread
 * whatever `threads` says. Returns EM_OK, or EM_ERR_NOMEM (error set) if no packing buffer
 * could be had. Thread safe: concurrent calls take separate packing buffers. */
int em_cpu__gemm(const em_gemm_args *g, int threads);
/* Multiply-adds below which a product stays on the calling thread. */
#define EM_GEMM_SERIAL_MNK ((int64_t)96 * 96 * 96)
/* Multiply-adds below which a product that runs on one thread (under EM_GEMM_SERIAL_MNK, or
 * threads = 1) takes the small-product path (gemm.c: no blocking, B read in place where it
 * can be). Measured on one thread (AVX-512), that path matched or beat the blocked loops at
 * every size up to 192^3 (by 7-15% for a row-major B). Bigger products take it too, split by
 * columns across threads, when K <= 2 KC and all of B fits beside a packed A block in L2
 * (K * N <= KC * MC): a batch of rows against a layer's weight, 8-28% faster on one thread
 * (64..512 x 256 x 784) than the blocked loops, which pack all of B for few rows of A. */
#define EM_GEMM_SMALL_MNK ((int64_t)192 * 192 * 192)
/* Frees the cached packing buffers (plugin shutdown; no product may be running). */
void em_cpu__gemm_shutdown(void);

#endif
