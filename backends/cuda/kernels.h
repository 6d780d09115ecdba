/* backends/cuda/kernels.h - the C interface of kernels.cu and rows.cu: operands as (device
 * pointer, element offset, dtype, strides) over one shape of at most 8 dims, op codes, and
 * one launcher per kernel family. Every launcher enqueues on `stream` (a cudaStream_t) and
 * returns 0 (cudaSuccess), a cudaError_t, or EM_CUDA_UNSUPPORTED for a dtype it has no code
 * for.
 */
#ifndef EMBER_BACKENDS_CUDA_KERNELS_H
#define EMBER_BACKENDS_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EM_CUDA_MAX_DIMS 8
#define EM_CUDA_UNSUPPORTED (-1)

typedef struct em_cuda_shape {
    int ndim;
    int64_t numel;
    int64_t shape[EM_CUDA_MAX_DIMS];
} em_cuda_shape;

typedef struct em_cuda_arg {
    void *buf;                     /* device pointer: the buffer handle */
    int64_t offset;                /* elements */
    int dtype;                     /* em_dtype */
    int64_t strides[EM_CUDA_MAX_DIMS];   /* elements, per dim of the launch's shape */
} em_cuda_arg;

enum {
    EM_CUDA_NEG, EM_CUDA_ABS, EM_CUDA_RELU, EM_CUDA_EXP, EM_CUDA_LOG, EM_CUDA_SQRT, EM_CUDA_SIN,
    EM_CUDA_COS, EM_CUDA_TANH, EM_CUDA_SIGMOID, EM_CUDA_UNARY_COUNT
};
enum {
    EM_CUDA_ADD, EM_CUDA_SUB, EM_CUDA_MUL, EM_CUDA_DIV, EM_CUDA_POW, EM_CUDA_MAXIMUM,
    EM_CUDA_MINIMUM, EM_CUDA_EQ, EM_CUDA_NE, EM_CUDA_LT, EM_CUDA_LE, EM_CUDA_GT, EM_CUDA_GE,
    EM_CUDA_BINARY_COUNT
};
enum { EM_CUDA_SUM, EM_CUDA_AMAX };

int em_cuda__copy(void *stream, const em_cuda_shape *s, const em_cuda_arg *dst,
                  const em_cuda_arg *src);
int em_cuda__fill(void *stream, int64_t n, const em_cuda_arg *out, double value);
int em_cuda__random(void *stream, int64_t n, const em_cuda_arg *out, int dist, uint64_t seed,
                    uint64_t offset, double a, double b, int64_t low, int64_t high);
int em_cuda__unary(void *stream, int op, const em_cuda_shape *s, const em_cuda_arg *out,
                   const em_cuda_arg *a);
/* Comparisons write bool; the others the dtype of a (and b). */
int em_cuda__binary(void *stream, int op, const em_cuda_shape *s, const em_cuda_arg *out,
                    const em_cuda_arg *a, const em_cuda_arg *b);
int em_cuda__where(void *stream, const em_cuda_shape *s, const em_cuda_arg *out,
                   const em_cuda_arg *a, const em_cuda_arg *b, const em_cuda_arg *cond);
/* One thread per output element: `kept` is the output's shape (the input's kept dims, with
 * `in` strides in in_kept), `red` the reduced dims (with in_red's strides). */
int em_cuda__reduce(void *stream, int kind, const em_cuda_shape *kept, const em_cuda_arg *in_kept,
                    const em_cuda_shape *red, const int64_t *red_strides, const em_cuda_arg *out,
                    void *scratch);
/* Device scratch em_cuda__reduce wants for these sizes (a split over many blocks), or 0. Without
 * it (scratch NULL) the reduction runs unsplit: slower, same result up to summation order. */
size_t em_cuda__reduce_scratch(const em_cuda_shape *kept, const em_cuda_shape *red);
int em_cuda__argmax(void *stream, const em_cuda_shape *kept, const em_cuda_arg *in_kept,
                    int64_t len, int64_t stride, const em_cuda_arg *out);
/* index (int64) and out share shape s; a is indexed along dim by index's values, with
 * a_dim_stride its stride along dim (a's other strides are in `a`, per dim of s). */
int em_cuda__gather(void *stream, const em_cuda_shape *s, const em_cuda_arg *out,
                    const em_cuda_arg *a, int64_t a_dim_stride, const em_cuda_arg *index, int dim);
/* out[.. index[i] ..] += src[i] over shape s (index's), out strides in `out` per dim of s and
 * out_dim_stride along dim. Atomic adds: float sums may differ in order from run to run. */
int em_cuda__scatter_add(void *stream, const em_cuda_shape *s, const em_cuda_arg *out,
                         int64_t out_dim_stride, const em_cuda_arg *index, const em_cuda_arg *src,
                         int dim);
/* The deterministic scatter_add (any dtype): out (contiguous, shape os, already holding a)
 * gets, at each element, the sum in index order of the src elements whose index points at
 * it; index and src are addressed over their own shape `is`. Shapes of at least one dim. */
int em_cuda__scatter_add_det(void *stream, const em_cuda_shape *os, const em_cuda_arg *out,
                             const em_cuda_shape *is, const em_cuda_arg *index,
                             const em_cuda_arg *src, int dim);
/* Integer (and fallback) matmul: C[b] = A[b] @ B[b], element strides given per operand as
 * (batch, row, col); batch offsets per batch index in the three arrays (device-side
 * computed from batch shape). */
int em_cuda__matmul_simple(void *stream, int dtype, int64_t batch, int64_t m, int64_t n,
                           int64_t k, const em_cuda_shape *bshape, const em_cuda_arg *out,
                           const em_cuda_arg *a, int64_t a_rs, int64_t a_cs,
                           const em_cuda_arg *b, int64_t b_rs, int64_t b_cs);

/* ---- rows.cu ---- */

/* Fused softmax or log_softmax over rows of `len` elements `inner` apart (a contiguous input
 * of shape [outer, len, inner], rows = outer * inner), into a contiguous output; one block per
 * row, accumulating in f32 (f64 for f64). Floats only. */
int em_cuda__softmax(void *stream, int log_softmax, int64_t rows, int64_t len, int64_t inner,
                     const em_cuda_arg *in, const em_cuda_arg *out);

/* The reductions of cross_entropy (em_reduction's values). */
enum { EM_CUDA_RED_NONE, EM_CUDA_RED_MEAN, EM_CUDA_RED_SUM };

/* Fused cross_entropy over contiguous x (n, nc) of a float dtype, int64 targets t (n) and
 * weights w (nc, x's dtype); out is (n) for NONE, () otherwise. Device scratch of
 * em_cuda__cross_entropy_scratch(n, reduction, 0) bytes (none needed when that is 0), which the
 * caller may release once the launch is enqueued (stream order). */
size_t em_cuda__cross_entropy_scratch(int64_t n, int reduction, int backward);
int em_cuda__cross_entropy(void *stream, int reduction, int64_t ignore, int64_t n, int64_t nc,
                           const em_cuda_arg *x, const em_cuda_arg *t, const em_cuda_arg *w,
                           const em_cuda_arg *out, void *scratch);
/* Its backward: dx (n, nc) from g ((n) for NONE, () otherwise); scratch of
 * em_cuda__cross_entropy_scratch(n, reduction, 1) bytes. */
int em_cuda__cross_entropy_backward(void *stream, int reduction, int64_t ignore, int64_t n,
                                    int64_t nc, const em_cuda_arg *x, const em_cuda_arg *t,
                                    const em_cuda_arg *w, const em_cuda_arg *g,
                                    const em_cuda_arg *dx, void *scratch);

#ifdef __cplusplus
}
#endif
#endif
