/* backends/cuda/kernels.h - the C interface of kernels.cu and rows.cu: operands as (device
 * pointer, element offset, dtype, strides) over one shape of at most 8 dims, op codes, and
 * one launcher per kernel family. Every launcher enqueues on `stream` (a cudaStream_t) and
 * returns 0 (cudaSuccess), a cudaError_t, or EM_CU_UNSUPPORTED for a dtype it has no code for.
 */
#ifndef EMBER_BACKENDS_CUDA_KERNELS_H
#define EMBER_BACKENDS_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EM_CU_MAX_DIMS 8
#define EM_CU_UNSUPPORTED (-1)

typedef struct em_cu_shape {
    int ndim;
    int64_t numel;
    int64_t shape[EM_CU_MAX_DIMS];
} em_cu_shape;

typedef struct em_cu_arg {
    void *buf;                     /* device pointer: the buffer handle */
    int64_t offset;                /* elements */
    int dtype;                     /* em_dtype */
    int64_t strides[EM_CU_MAX_DIMS];   /* elements, per dim of the launch's shape */
} em_cu_arg;

enum {
    EM_CU_NEG, EM_CU_ABS, EM_CU_RELU, EM_CU_EXP, EM_CU_LOG, EM_CU_SQRT, EM_CU_SIN, EM_CU_COS,
    EM_CU_TANH, EM_CU_SIGMOID, EM_CU_UNARY_COUNT
};
enum {
    EM_CU_ADD, EM_CU_SUB, EM_CU_MUL, EM_CU_DIV, EM_CU_POW, EM_CU_MAXIMUM, EM_CU_MINIMUM,
    EM_CU_EQ, EM_CU_NE, EM_CU_LT, EM_CU_LE, EM_CU_GT, EM_CU_GE, EM_CU_BINARY_COUNT
};
enum { EM_CU_SUM, EM_CU_AMAX };

int em_cu_copy(void *stream, const em_cu_shape *s, const em_cu_arg *dst, const em_cu_arg *src);
int em_cu_fill(void *stream, int64_t n, const em_cu_arg *out, double value);
int em_cu_random(void *stream, int64_t n, const em_cu_arg *out, int dist, uint64_t seed,
                 uint64_t offset, double a, double b, int64_t low, int64_t high);
int em_cu_unary(void *stream, int op, const em_cu_shape *s, const em_cu_arg *out,
                const em_cu_arg *a);
/* Comparisons write bool; the others the dtype of a (and b). */
int em_cu_binary(void *stream, int op, const em_cu_shape *s, const em_cu_arg *out,
                 const em_cu_arg *a, const em_cu_arg *b);
int em_cu_where(void *stream, const em_cu_shape *s, const em_cu_arg *out, const em_cu_arg *a,
                const em_cu_arg *b, const em_cu_arg *cond);
/* One thread per output element: `kept` is the output's shape (the input's kept dims, with
 * `in` strides in in_kept), `red` the reduced dims (with in_red's strides). */
int em_cu_reduce(void *stream, int kind, const em_cu_shape *kept, const em_cu_arg *in_kept,
                 const em_cu_shape *red, const int64_t *red_strides, const em_cu_arg *out,
                 void *scratch);
/* Device scratch em_cu_reduce wants for these sizes (a split over many blocks), or 0. Without
 * it (scratch NULL) the reduction runs unsplit: slower, same result up to summation order. */
size_t em_cu_reduce_scratch(const em_cu_shape *kept, const em_cu_shape *red);
int em_cu_argmax(void *stream, const em_cu_shape *kept, const em_cu_arg *in_kept,
                 int64_t len, int64_t stride, const em_cu_arg *out);
/* index (int64) and out share shape s; a is indexed along dim by index's values, with
 * a_dim_stride its stride along dim (a's other strides are in `a`, per dim of s). */
int em_cu_gather(void *stream, const em_cu_shape *s, const em_cu_arg *out, const em_cu_arg *a,
                 int64_t a_dim_stride, const em_cu_arg *index, int dim);
/* out[.. index[i] ..] += src[i] over shape s (index's), out strides in `out` per dim of s and
 * out_dim_stride along dim. Atomic adds: float sums may differ in order from run to run. */
int em_cu_scatter_add(void *stream, const em_cu_shape *s, const em_cu_arg *out,
                      int64_t out_dim_stride, const em_cu_arg *index, const em_cu_arg *src,
                      int dim);
/* The deterministic scatter_add (any dtype): out (contiguous, shape os, already holding a)
 * gets, at each element, the sum in index order of the src elements whose index points at
 * it; index and src are addressed over their own shape `is`. Shapes of at least one dim. */
int em_cu_scatter_add_det(void *stream, const em_cu_shape *os, const em_cu_arg *out,
                          const em_cu_shape *is, const em_cu_arg *index, const em_cu_arg *src,
                          int dim);
/* Integer (and fallback) matmul: C[b] = A[b] @ B[b], element strides given per operand as
 * (batch, row, col); batch offsets per batch index in the three arrays (device-side
 * computed from batch shape). */
int em_cu_matmul_simple(void *stream, int dtype, int64_t batch, int64_t m, int64_t n,
                        int64_t k, const em_cu_shape *bshape, const em_cu_arg *out,
                        const em_cu_arg *a, int64_t a_rs, int64_t a_cs, const em_cu_arg *b,
                        int64_t b_rs, int64_t b_cs);

/* ---- rows.cu ---- */

/* Fused softmax or log_softmax over rows of `len` elements `inner` apart (a contiguous input
 * of shape [outer, len, inner], rows = outer * inner), into a contiguous output; one block per
 * row, accumulating in f32 (f64 for f64). Floats only. */
int em_cu_softmax(void *stream, int log_softmax, int64_t rows, int64_t len, int64_t inner,
                  const em_cu_arg *in, const em_cu_arg *out);

/* The reductions of cross_entropy (em_reduction's values). */
enum { EM_CU_RED_NONE, EM_CU_RED_MEAN, EM_CU_RED_SUM };

/* Fused cross_entropy over contiguous x (n, nc) of a float dtype, int64 targets t (n) and
 * weights w (nc, x's dtype); out is (n) for NONE, () otherwise. Device scratch of
 * em_cu_cross_entropy_scratch(n, reduction, 0) bytes (none needed when that is 0), which the
 * caller may release once the launch is enqueued (stream order). */
size_t em_cu_cross_entropy_scratch(int64_t n, int reduction, int backward);
int em_cu_cross_entropy(void *stream, int reduction, int64_t ignore, int64_t n, int64_t nc,
                        const em_cu_arg *x, const em_cu_arg *t, const em_cu_arg *w,
                        const em_cu_arg *out, void *scratch);
/* Its backward: dx (n, nc) from g ((n) for NONE, () otherwise); scratch of
 * em_cu_cross_entropy_scratch(n, reduction, 1) bytes. */
int em_cu_cross_entropy_backward(void *stream, int reduction, int64_t ignore, int64_t n,
                                 int64_t nc, const em_cu_arg *x, const em_cu_arg *t,
                                 const em_cu_arg *w, const em_cu_arg *g, const em_cu_arg *dx,
                                 void *scratch);

#ifdef __cplusplus
}
#endif
#endif
