/* backends/cuda/rows.cu - kernels over the rows of a matrix, fused: softmax and log_softmax
 * (one block per row), cross_entropy and cross_entropy_backward (one warp per row of C
 * logits: max and sum of exps by warp shuffles, so no log_softmax tensor is formed).
 *
 * Accumulation in f32 (f64 for f64), as PyTorch's. cross_entropy's "mean" and "sum" add the
 * per-row losses and counted weights in a second, single-block kernel in f64, in a fixed order,
 * so results are the same from run to run. A target that is neither ignore_index nor a class
 * gives NaN (the loss, or that row's gradient): kernels never read out of bounds, and the
 * public em_cross_entropy names such a target on the host before anything is launched.
 */
#include "common.cuh"
#include "kernels.h"

#include "ember/types.h"

#include <stdint.h>
#include <type_traits>

namespace {

/* The compute type: f64 for f64, f32 for f32, f16 and bf16. */
template <class S>
using AccOf = typename std::conditional<std::is_same<S, double>::value, double, float>::type;

/* ---- softmax / log_softmax: one block per row ------------------------------------------- */

template <class S, bool LOG>
__global__ void softmax_k(int64_t rows, int64_t len, int64_t inner, em_cuda_arg in, em_cuda_arg out)
{
    typedef AccOf<S> A;
    __shared__ A sh[THREADS];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        int64_t o = r / inner, i = r % inner;
        const S *p = (const S *)in.buf + in.offset + o * len * inner + i;
        S *q = (S *)out.buf + out.offset + o * len * inner + i;
        A m = -INFINITY;
        for (int64_t j = threadIdx.x; j < len; j += blockDim.x)
            m = nan_max(m, (A)Tr<S>::load(p + j * inner));
        m = block_reduce<A, true>(m, sh);
        A sum = 0;
        for (int64_t j = threadIdx.x; j < len; j += blockDim.x)
            sum += exp((A)Tr<S>::load(p + j * inner) - m);
        sum = block_reduce<A, false>(sum, sh);
        A lse = log(sum);
        for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
            A z = (A)Tr<S>::load(p + j * inner) - m;
            Tr<S>::store(q + j * inner, (typename Tr<S>::C)(LOG ? z - lse : exp(z) / sum));
        }
    }
}

/* ---- cross entropy: one warp per row ------------------------------------------------------ */

constexpr int WARPS = THREADS / 32;
constexpr unsigned FULL = 0xffffffffu;

template <class A> __device__ inline A warp_sum(A v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(FULL, v, o);
    return v;
}

template <class A> __device__ inline A warp_max(A v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = nan_max(v, __shfl_xor_sync(FULL, v, o));
    return v;
}

/* max and sum of exp(x - max) over one row, every lane of the warp getting both. */
template <class S, class A>
__device__ inline void row_stats(const S *x, int64_t nc, int lane, A *m, A *s)
{
    A mx = -INFINITY;
    for (int64_t j = lane; j < nc; j += 32)
        mx = nan_max(mx, (A)Tr<S>::load(x + j));
    mx = warp_max(mx);
    A sum = 0;
    for (int64_t j = lane; j < nc; j += 32)
        sum += exp((A)Tr<S>::load(x + j) - mx);
    *m = mx;
    *s = warp_sum(sum);
}

#define WARP_ROWS(r, n)                                                                       \
    for (int64_t r = (int64_t)blockIdx.x * WARPS + threadIdx.x / 32; r < (n);                \
         r += (int64_t)gridDim.x * WARPS)

/* Per row: loss_i = w[t] (lse - x[t]) and its counted weight w[t] (0, 0 when ignored; NaN, NaN
 * for a target out of range). "none" stores the loss into out; otherwise both go to part
 * (2n values: losses, then weights) for ce_reduce_k. */
template <class S>
__global__ void ce_rows_k(int64_t n, int64_t nc, int64_t ignore, em_cuda_arg x, em_cuda_arg t,
                          em_cuda_arg w, em_cuda_arg out, double *part)
{
    typedef AccOf<S> A;
    int lane = threadIdx.x % 32;
    const S *xb = (const S *)x.buf + x.offset;
    const int64_t *tb = (const int64_t *)t.buf + t.offset;
    const S *wb = (const S *)w.buf + w.offset;
    WARP_ROWS(i, n) {
        int64_t k = tb[i];
        double loss = 0, wk = 0;
        if (k != ignore && (k < 0 || k >= nc)) {
            loss = wk = NAN;
        } else if (k != ignore) {
            A m, s;
            row_stats<S, A>(xb + i * nc, nc, lane, &m, &s);
            wk = (double)(A)Tr<S>::load(wb + k);
            loss = wk * (double)(m + log(s) - (A)Tr<S>::load(xb + i * nc + k));
        }
        if (lane == 0) {
            if (part) {
                part[i] = loss;
                part[n + i] = wk;
            } else {
                Tr<S>::store((S *)out.buf + out.offset + i, (typename Tr<S>::C)loss);
            }
        }
    }
}

/* One block: out = sum(loss) (or / sum(w) for mean), in f64, in a fixed order. */
template <class S>
__global__ void ce_reduce_k(int64_t n, const double *part, int mean, em_cuda_arg out)
{
    __shared__ double sh[THREADS];
    double l = 0, w = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        l += part[i];
        w += part[n + i];
    }
    l = block_reduce<double, false>(l, sh);
    w = block_reduce<double, false>(w, sh);
    if (threadIdx.x == 0)
        Tr<S>::store((S *)out.buf + out.offset, (typename Tr<S>::C)(mean ? l / w : l));
}

/* One block: *wsum = the summed weights of the counted targets (the mean's denominator). */
template <class S>
__global__ void ce_wsum_k(int64_t n, int64_t nc, int64_t ignore, em_cuda_arg t, em_cuda_arg w,
                          double *wsum)
{
    __shared__ double sh[THREADS];
    const int64_t *tb = (const int64_t *)t.buf + t.offset;
    double acc = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        int64_t k = tb[i];
        if (k != ignore)
            acc += k >= 0 && k < nc ? (double)Tr<S>::load((const S *)w.buf + w.offset + k) : NAN;
    }
    acc = block_reduce<double, false>(acc, sh);
    if (threadIdx.x == 0)
        *wsum = acc;
}

/* dx_ij = s_i (softmax(x_i)_j - [j == t_i]), s_i = w[t] g (g_i for "none"; / *wsum for mean). */
template <class S>
__global__ void ce_backward_k(int64_t n, int64_t nc, int64_t ignore, int red, em_cuda_arg x,
                              em_cuda_arg t, em_cuda_arg w, em_cuda_arg g, const double *wsum,
                              em_cuda_arg dx)
{
    typedef AccOf<S> A;
    int lane = threadIdx.x % 32;
    const S *xb = (const S *)x.buf + x.offset;
    const int64_t *tb = (const int64_t *)t.buf + t.offset;
    S *ob = (S *)dx.buf + dx.offset;
    WARP_ROWS(i, n) {
        int64_t k = tb[i];
        S *o = ob + i * nc;
        if (k == ignore) {
            for (int64_t j = lane; j < nc; j += 32)
                Tr<S>::store(o + j, (typename Tr<S>::C)0);
            continue;
        }
        if (k < 0 || k >= nc) {
            for (int64_t j = lane; j < nc; j += 32)
                Tr<S>::store(o + j, (typename Tr<S>::C)NAN);
            continue;
        }
        A m, s;
        row_stats<S, A>(xb + i * nc, nc, lane, &m, &s);
        A gi = (A)Tr<S>::load((const S *)g.buf + g.offset + (red == EM_CUDA_RED_NONE ? i : 0));
        A sc = (A)Tr<S>::load((const S *)w.buf + w.offset + k) * gi;
        if (red == EM_CUDA_RED_MEAN)
            sc = (A)((double)sc / *wsum);
        for (int64_t j = lane; j < nc; j += 32) {
            A p = exp((A)Tr<S>::load(xb + i * nc + j) - m) / s;
            Tr<S>::store(o + j, (typename Tr<S>::C)(sc * (p - (j == k ? A(1) : A(0)))));
        }
    }
}

inline int warp_blocks(int64_t rows)
{
    int64_t b = (rows + WARPS - 1) / WARPS;
    return (int)(b < 65535 ? (b < 1 ? 1 : b) : 65535);
}

} // namespace

extern "C" int em_cuda__softmax(void *stream, int log_softmax, int64_t rows, int64_t len,
                                int64_t inner, const em_cuda_arg *in, const em_cuda_arg *out)
{
    int blocks = (int)(rows < 65535 ? rows : 65535);
#define F(T)                                                                                  \
    (log_softmax ? softmax_k<T, true><<<blocks, THREADS, 0, (cudaStream_t)stream>>>(        \
                       rows, len, inner, *in, *out)                                          \
                 : softmax_k<T, false><<<blocks, THREADS, 0, (cudaStream_t)stream>>>(       \
                       rows, len, inner, *in, *out))
    DISPATCH_FLOAT(in->dtype, F)
#undef F
    return done();
}

extern "C" size_t em_cuda__cross_entropy_scratch(int64_t n, int reduction, int backward)
{
    if (backward)
        return reduction == EM_CUDA_RED_MEAN ? sizeof(double) : 0;
    return reduction == EM_CUDA_RED_NONE ? 0 : (size_t)(2 * (n > 0 ? n : 1)) * sizeof(double);
}

extern "C" int em_cuda__cross_entropy(void *stream, int reduction, int64_t ignore, int64_t n,
                                      int64_t nc, const em_cuda_arg *x, const em_cuda_arg *t,
                                      const em_cuda_arg *w, const em_cuda_arg *out, void *scratch)
{
    cudaStream_t st = (cudaStream_t)stream;
    double *part = reduction == EM_CUDA_RED_NONE ? NULL : (double *)scratch;
    if (n > 0) {
#define F(T) ce_rows_k<T><<<warp_blocks(n), THREADS, 0, st>>>(n, nc, ignore, *x, *t, *w, *out, part)
        DISPATCH_FLOAT(x->dtype, F)
#undef F
    }
    if (part) {
        int mean = reduction == EM_CUDA_RED_MEAN;
#define F(T) ce_reduce_k<T><<<1, THREADS, 0, st>>>(n, part, mean, *out)
        DISPATCH_FLOAT(x->dtype, F)
#undef F
    }
    return done();
}

extern "C" int em_cuda__cross_entropy_backward(void *stream, int reduction, int64_t ignore,
                                               int64_t n, int64_t nc, const em_cuda_arg *x,
                                               const em_cuda_arg *t, const em_cuda_arg *w,
                                               const em_cuda_arg *g, const em_cuda_arg *dx,
                                               void *scratch)
{
    cudaStream_t st = (cudaStream_t)stream;
    double *wsum = reduction == EM_CUDA_RED_MEAN ? (double *)scratch : NULL;
    if (wsum) {
#define F(T) ce_wsum_k<T><<<1, THREADS, 0, st>>>(n, nc, ignore, *t, *w, wsum)
        DISPATCH_FLOAT(x->dtype, F)
#undef F
    }
#define F(T)                                                                                  \
    ce_backward_k<T><<<warp_blocks(n), THREADS, 0, st>>>(n, nc, ignore, reduction, *x, *t, *w,  \
                                                         *g, wsum, *dx)
    DISPATCH_FLOAT(x->dtype, F)
#undef F
    return done();
}
