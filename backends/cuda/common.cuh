/* backends/cuda/common.cuh - what the .cu files of the CUDA backend share: the block size,
 * grid-stride loops, strided addressing of em_cuda_arg operands, the 16-bit float storage types
 * with their f32 compute type (numeric.h's converters, bit-identical to the host's), and
 * block-wide reductions. Everything sits in an anonymous namespace: each .cu gets its own
 * copy, and nothing leaks from the plugin.
 */
#ifndef EMBER_BACKENDS_CUDA_COMMON_CUH
#define EMBER_BACKENDS_CUDA_COMMON_CUH

#define EM_HD __host__ __device__
#include "ember/numeric.h"
#include "ember/types.h"

#include "kernels.h"

#include <cuda_runtime.h>
#include <stdint.h>

namespace {

constexpr int THREADS = 256;

inline int blocks_for(int64_t n)
{
    int64_t b = (n + THREADS - 1) / THREADS;
    return (int)(b < 65536 ? (b < 1 ? 1 : b) : 65536);
}

#define GRID_LOOP(i, n)                                                                      \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);              \
         i += (int64_t)blockDim.x * gridDim.x)

__device__ inline int64_t off_of(const em_cuda_shape &s, const em_cuda_arg &a, int64_t lin)
{
    int64_t off = a.offset;
    for (int d = s.ndim - 1; d >= 0; d--) {
        int64_t i = lin % s.shape[d];
        lin /= s.shape[d];
        off += i * a.strides[d];
    }
    return off;
}

#define LAUNCH(n) blocks_for(n), THREADS, 0, (cudaStream_t)stream

/* The launch's status: 0 (cudaSuccess) or the cudaError_t of a bad launch. */
inline int done()
{
    return (int)cudaGetLastError();
}

/* ---- storage types ---------------------------------------------------------------------- */

struct h16 { uint16_t x; };
struct b16 { uint16_t x; };

template <class S> struct Tr {
    typedef S C;
    __device__ static C load(const S *p) { return *p; }
    __device__ static void store(S *p, C c) { *p = c; }
};
template <> struct Tr<h16> {
    typedef float C;
    __device__ static C load(const h16 *p) { return em_f16_to_f32(p->x); }
    __device__ static void store(h16 *p, C c) { p->x = em_f32_to_f16(c); }
};
template <> struct Tr<b16> {
    typedef float C;
    __device__ static C load(const b16 *p) { return em_bf16_to_f32(p->x); }
    __device__ static void store(b16 *p, C c) { p->x = em_f32_to_bf16(c); }
};
template <> struct Tr<bool> {
    typedef int C;
    __device__ static C load(const bool *p) { return *p ? 1 : 0; }
    __device__ static void store(bool *p, C c) { *p = c != 0; }
};

/* ---- block-wide reductions ---------------------------------------------------------------- */

/* max that lets NaN win, as torch.max does. */
template <class A> __device__ inline A nan_max(A a, A b)
{
    return a != a ? a : (b != b ? b : (a > b ? a : b));
}

/* Block-wide reduction of v (max or sum) through shared memory; every thread gets the result. */
template <class A, bool MAX> __device__ inline A block_reduce(A v, A *sh)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s)
            sh[threadIdx.x] = MAX ? nan_max(sh[threadIdx.x], sh[threadIdx.x + s])
                                  : sh[threadIdx.x] + sh[threadIdx.x + s];
        __syncthreads();
    }
    A r = sh[0];
    __syncthreads();
    return r;
}

} // namespace

/* A switch on dtype dt that expands F(T) with T the storage type (returns EM_CUDA_UNSUPPORTED
 * from the enclosing launcher for dtypes it lacks). */
#define DISPATCH_FLOAT_CASES(F)                                                               \
    case EM_F32: F(float); break;                                                            \
    case EM_F64: F(double); break;                                                           \
    case EM_F16: F(h16); break;                                                              \
    case EM_BF16: F(b16); break;

#define DISPATCH_ALL(dt, F)                                                                   \
    switch (dt) {                                                                            \
        DISPATCH_FLOAT_CASES(F)                                                              \
    case EM_I64: F(int64_t); break;                                                          \
    case EM_I32: F(int32_t); break;                                                          \
    case EM_U8: F(uint8_t); break;                                                           \
    case EM_BOOL: F(bool); break;                                                            \
    default: return EM_CUDA_UNSUPPORTED;                                                     \
    }

#define DISPATCH_FLOAT(dt, F)                                                                 \
    switch (dt) {                                                                            \
        DISPATCH_FLOAT_CASES(F)                                                              \
    default: return EM_CUDA_UNSUPPORTED;                                                     \
    }

#endif
