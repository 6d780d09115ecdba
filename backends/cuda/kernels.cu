/* backends/cuda/kernels.cu - the CUDA kernels behind backends/cuda/ops.c (C interface in
 * kernels.h). Elementwise kernels are templated on the storage type and switch on the op at
 * run time (one instantiation per dtype and family keeps nvcc's work small); f16 and bf16 are
 * stored as 16-bit words and computed in f32 with numeric.h's converters, which with EM_HD run
 * on the device bit-identically to the host. Every kernel is a grid-stride loop over linear
 * output indices; strided operands are addressed through em_cuda_shape/em_cuda_arg by value.
 *
 * Reductions (sum, amax): one thread per output element looping over the reduced elements;
 * one block per output element (shared-memory tree) when the outputs are few and the
 * reductions long; and for at most 64 outputs over 65536 or more elements each (a full
 * reduction), a split over up to 4096 blocks whose partials a second pass combines in order.
 * argmax is always a thread per output element.
 */
#include "ember/types.h"

#include "common.cuh"
#include "kernels.h"

#include <stdint.h>
#include <type_traits>

namespace {



/* ---- any-dtype values (copy, fill, random) ------------------------------------------------ */

struct V {
    double f;
    int64_t i;
    bool isint;
};

__device__ inline V load_any(const void *buf, int dt, int64_t off)
{
    V v = {0.0, 0, false};
    switch (dt) {
    case EM_F32: v.f = ((const float *)buf)[off]; break;
    case EM_F64: v.f = ((const double *)buf)[off]; break;
    case EM_F16: v.f = em_f16_to_f32(((const uint16_t *)buf)[off]); break;
    case EM_BF16: v.f = em_bf16_to_f32(((const uint16_t *)buf)[off]); break;
    case EM_I64: v.i = ((const int64_t *)buf)[off]; v.isint = true; break;
    case EM_I32: v.i = ((const int32_t *)buf)[off]; v.isint = true; break;
    case EM_U8: v.i = ((const uint8_t *)buf)[off]; v.isint = true; break;
    case EM_BOOL: v.i = ((const bool *)buf)[off] ? 1 : 0; v.isint = true; break;
    default: break;
    }
    return v;
}

/* float -> int truncates toward zero (through int64), -> bool is != 0. */
__device__ inline int64_t as_int(V v) { return v.isint ? v.i : (int64_t)v.f; }

__device__ inline void store_any(void *buf, int dt, int64_t off, V v)
{
    switch (dt) {
    case EM_F32: ((float *)buf)[off] = v.isint ? (float)v.i : (float)v.f; break;
    case EM_F64: ((double *)buf)[off] = v.isint ? (double)v.i : v.f; break;
    case EM_F16:
        ((uint16_t *)buf)[off] = em_f32_to_f16(v.isint ? (float)v.i : (float)v.f);
        break;
    case EM_BF16:
        ((uint16_t *)buf)[off] = em_f32_to_bf16(v.isint ? (float)v.i : (float)v.f);
        break;
    case EM_I64: ((int64_t *)buf)[off] = as_int(v); break;
    case EM_I32: ((int32_t *)buf)[off] = (int32_t)as_int(v); break;
    case EM_U8: ((uint8_t *)buf)[off] = (uint8_t)as_int(v); break;
    case EM_BOOL: ((bool *)buf)[off] = v.isint ? v.i != 0 : v.f != 0.0; break;
    default: break;
    }
}

__global__ void copy_k(em_cuda_shape s, em_cuda_arg dst, em_cuda_arg src)
{
    GRID_LOOP(i, s.numel)
        store_any(dst.buf, dst.dtype, off_of(s, dst, i),
                  load_any(src.buf, src.dtype, off_of(s, src, i)));
}

/* Same dtype, contiguous on both sides in the launch's linear order: a plain element move. */
template <class T>
__global__ void move_k(em_cuda_shape s, em_cuda_arg dst, em_cuda_arg src)
{
    GRID_LOOP(i, s.numel)
        ((T *)dst.buf)[off_of(s, dst, i)] = ((const T *)src.buf)[off_of(s, src, i)];
}

__global__ void fill_k(int64_t n, em_cuda_arg out, double value)
{
    V v = {value, 0, false};
    GRID_LOOP(i, n) store_any(out.buf, out.dtype, out.offset + i, v);
}

__global__ void random_k(int64_t n, em_cuda_arg out, int dist, uint64_t seed, uint64_t offset,
                         double a, double b, int64_t low, int64_t high, int bits)
{
    GRID_LOOP(k, n) {
        V v = {0.0, 0, false};
        if (dist == 0) {
            v.f = a + (b - a) * em_philox_uniform_bits(seed, offset, (uint64_t)k, bits);
        } else if (dist == 1) {
            v.f = a + b * em_philox_normal(seed, offset, (uint64_t)k);
        } else {
            v.i = em_philox_int(seed, offset, (uint64_t)k, low, high);
            v.isint = true;
        }
        store_any(out.buf, out.dtype, out.offset + k, v);
    }
}

/* ---- unary and binary ---------------------------------------------------------------------- */

template <class C> __device__ inline C unop(int op, C x)
{
    if constexpr (std::is_floating_point<C>::value) {
        switch (op) {
        case EM_CUDA_NEG: return -x;
        case EM_CUDA_ABS: return fabs(x);
        case EM_CUDA_RELU: return x != x ? x : (x > C(0) ? x : C(0));
        case EM_CUDA_EXP: return exp(x);
        case EM_CUDA_LOG: return log(x);
        case EM_CUDA_SQRT: return sqrt(x);
        case EM_CUDA_SIN: return sin(x);
        case EM_CUDA_COS: return cos(x);
        case EM_CUDA_TANH: return tanh(x);
        case EM_CUDA_SIGMOID: return C(1) / (C(1) + exp(-x));
        default: return x;
        }
    } else {
        switch (op) {
        case EM_CUDA_NEG: return (C)(0 - x);
        case EM_CUDA_ABS:
            if constexpr (std::is_signed<C>::value)
                return x < C(0) ? (C)(0 - x) : x;
            return x;
        case EM_CUDA_RELU: return x > C(0) ? x : C(0);
        default: return x;
        }
    }
}

template <class C> __device__ inline C ipow(C base, C e)
{
    if constexpr (std::is_signed<C>::value) {
        if (e < C(0)) {
            if (base == C(1))
                return C(1);
            if (base == C(-1))
                return (e % 2 == 0) ? C(1) : C(-1);
            return C(0);
        }
    }
    C r = 1;
    while (e > C(0)) {
        if (e & 1)
            r = (C)(r * base);
        base = (C)(base * base);
        e = (C)(e >> 1);
    }
    return r;
}

template <class C> __device__ inline C binop(int op, C a, C b)
{
    if constexpr (std::is_floating_point<C>::value) {
        switch (op) {
        case EM_CUDA_ADD: return a + b;
        case EM_CUDA_SUB: return a - b;
        case EM_CUDA_MUL: return a * b;
        case EM_CUDA_DIV: return a / b;
        case EM_CUDA_POW: return pow(a, b);
        case EM_CUDA_MAXIMUM: return (a != a || b != b) ? a + b : (a > b ? a : b);
        case EM_CUDA_MINIMUM: return (a != a || b != b) ? a + b : (a < b ? a : b);
        default: return a;
        }
    } else {
        switch (op) {
        case EM_CUDA_ADD: return (C)(a + b);
        case EM_CUDA_SUB: return (C)(a - b);
        case EM_CUDA_MUL: return (C)(a * b);
        case EM_CUDA_DIV: return b == C(0) ? C(0) : (C)(a / b);
        case EM_CUDA_POW: return ipow<C>(a, b);
        case EM_CUDA_MAXIMUM: return a > b ? a : b;
        case EM_CUDA_MINIMUM: return a < b ? a : b;
        default: return a;
        }
    }
}

template <class C> __device__ inline bool cmpop(int op, C a, C b)
{
    switch (op) {
    case EM_CUDA_EQ: return a == b;
    case EM_CUDA_NE: return a != b;
    case EM_CUDA_LT: return a < b;
    case EM_CUDA_LE: return a <= b;
    case EM_CUDA_GT: return a > b;
    default: return a >= b;
    }
}

template <class S>
__global__ void unary_k(int op, em_cuda_shape s, em_cuda_arg o, em_cuda_arg a)
{
    typedef Tr<S> T;
    GRID_LOOP(i, s.numel) {
        typename T::C x = T::load((const S *)a.buf + off_of(s, a, i));
        T::store((S *)o.buf + o.offset + i, unop<typename T::C>(op, x));
    }
}

template <class S>
__global__ void binary_k(int op, em_cuda_shape s, em_cuda_arg o, em_cuda_arg a, em_cuda_arg b)
{
    typedef Tr<S> T;
    GRID_LOOP(i, s.numel) {
        typename T::C x = T::load((const S *)a.buf + off_of(s, a, i));
        typename T::C y = T::load((const S *)b.buf + off_of(s, b, i));
        if (op >= EM_CUDA_EQ)
            ((bool *)o.buf)[o.offset + i] = cmpop<typename T::C>(op, x, y);
        else
            T::store((S *)o.buf + o.offset + i, binop<typename T::C>(op, x, y));
    }
}

template <class E>
__global__ void where_k(em_cuda_shape s, em_cuda_arg o, em_cuda_arg a, em_cuda_arg b, em_cuda_arg c)
{
    GRID_LOOP(i, s.numel) {
        bool t = ((const bool *)c.buf)[off_of(s, c, i)];
        ((E *)o.buf)[o.offset + i] = t ? ((const E *)a.buf)[off_of(s, a, i)]
                                       : ((const E *)b.buf)[off_of(s, b, i)];
    }
}

/* ---- reductions: one thread per output element ---------------------------------------------- */

template <class S> struct Acc { typedef typename Tr<S>::C A; typedef S O; };
template <> struct Acc<float> { typedef double A; typedef float O; };
template <> struct Acc<int32_t> { typedef int64_t A; typedef int64_t O; };
template <> struct Acc<uint8_t> { typedef int64_t A; typedef int64_t O; };
template <> struct Acc<bool> { typedef int64_t A; typedef int64_t O; };

/* Stores a sum's accumulator as output element o: in S itself, or in the wider O (int64) the
 * sums of integer and bool inputs are. */
template <class S>
__device__ void store_sum(const em_cuda_arg &out, int64_t o, typename Acc<S>::A acc)
{
    typedef typename Acc<S>::O O;
    if constexpr (std::is_same<O, S>::value)
        Tr<S>::store((S *)out.buf + out.offset + o, (typename Tr<S>::C)acc);
    else
        ((O *)out.buf)[out.offset + o] = (O)acc;
}

template <class S>
__global__ void sum_k(em_cuda_shape kept, em_cuda_arg in, em_cuda_shape red, em_cuda_arg inr,
                      em_cuda_arg out)
{
    typedef typename Acc<S>::A A;
    GRID_LOOP(o, kept.numel) {
        int64_t base = off_of(kept, in, o);
        A acc = A(0);
        for (int64_t r = 0; r < red.numel; r++)
            acc += (A)Tr<S>::load((const S *)in.buf + base + off_of(red, inr, r));
        store_sum<S>(out, o, acc);
    }
}

template <class S>
__global__ void amax_k(em_cuda_shape kept, em_cuda_arg in, em_cuda_shape red, em_cuda_arg inr,
                       em_cuda_arg out)
{
    typedef typename Tr<S>::C C;
    GRID_LOOP(o, kept.numel) {
        int64_t base = off_of(kept, in, o);
        C m = Tr<S>::load((const S *)in.buf + base + off_of(red, inr, 0));
        for (int64_t r = 1; r < red.numel; r++) {
            C x = Tr<S>::load((const S *)in.buf + base + off_of(red, inr, r));
            if (x != x || x > m)
                m = x;
            if (m != m)
                break;
        }
        Tr<S>::store((S *)out.buf + out.offset + o, m);
    }
}

template <class S>
__global__ void argmax_k(em_cuda_shape kept, em_cuda_arg in, int64_t len, int64_t stride,
                         em_cuda_arg out)
{
    typedef typename Tr<S>::C C;
    GRID_LOOP(o, kept.numel) {
        const S *p = (const S *)in.buf + off_of(kept, in, o);
        C m = Tr<S>::load(p);
        int64_t best = 0;
        if (m == m)
            for (int64_t r = 1; r < len; r++) {
                C x = Tr<S>::load(p + r * stride);
                if (x != x) {
                    best = r;
                    break;
                }
                if (x > m) {
                    m = x;
                    best = r;
                }
            }
        ((int64_t *)out.buf)[out.offset + o] = best;
    }
}

/* ---- indexing -------------------------------------------------------------------------------- */

template <class E>
__global__ void gather_k(em_cuda_shape s, em_cuda_arg o, em_cuda_arg a, int64_t a_dim_stride,
                         em_cuda_arg idx)
{
    GRID_LOOP(i, s.numel) {
        int64_t j = ((const int64_t *)idx.buf)[off_of(s, idx, i)];
        ((E *)o.buf)[o.offset + i] = ((const E *)a.buf)[off_of(s, a, i) + j * a_dim_stride];
    }
}

__device__ inline void atomic_add(float *p, float v) { atomicAdd(p, v); }
__device__ inline void atomic_add(double *p, double v) { atomicAdd(p, v); }
__device__ inline void atomic_add(int32_t *p, int32_t v) { atomicAdd((int *)p, (int)v); }
__device__ inline void atomic_add(int64_t *p, int64_t v)
{
    atomicAdd((unsigned long long *)p, (unsigned long long)v);
}

template <class T>
__global__ void scatter_add_k(em_cuda_shape s, em_cuda_arg o, int64_t o_dim_stride, em_cuda_arg idx,
                              em_cuda_arg src)
{
    GRID_LOOP(i, s.numel) {
        int64_t j = ((const int64_t *)idx.buf)[off_of(s, idx, i)];
        T v = ((const T *)src.buf)[off_of(s, src, i)];
        atomic_add((T *)o.buf + off_of(s, o, i) + j * o_dim_stride, v);
    }
}

/* Deterministic scatter_add: one thread per output element sums, in index order, the src
 * elements whose index points at it (O(numel(out) * index.shape[dim]); any dtype). */
template <class S>
__global__ void scatter_add_det_k(em_cuda_shape os, em_cuda_arg o, em_cuda_shape is,
                                  em_cuda_arg idx, em_cuda_arg src, int dim)
{
    typedef Tr<S> T;
    GRID_LOOP(p, os.numel) {
        int64_t c[EM_CUDA_MAX_DIMS];
        int64_t lin = p;
        for (int d = os.ndim - 1; d >= 0; d--) {
            c[d] = lin % os.shape[d];
            lin /= os.shape[d];
        }
        bool inside = true;
        int64_t ib = idx.offset, sb = src.offset;
        for (int d = 0; d < os.ndim; d++) {
            if (d == dim)
                continue;
            inside = inside && c[d] < is.shape[d];
            ib += c[d] * idx.strides[d];
            sb += c[d] * src.strides[d];
        }
        if (!inside)
            continue;
        S *q = (S *)o.buf + o.offset + p;
        typename T::C acc = T::load(q);
        const int64_t *ip = (const int64_t *)idx.buf;
        for (int64_t t = 0; t < is.shape[dim]; t++)
            if (ip[ib + t * idx.strides[dim]] == c[dim])
                acc = (typename T::C)(acc + T::load((const S *)src.buf + sb +
                                                    t * src.strides[dim]));
        T::store(q, acc);
    }
}

/* ---- simple matmul (integers, bool, and any layout cuBLAS cannot take) ----------------------- */

template <class S>
__global__ void matmul_k(int64_t batch, int64_t m, int64_t n, int64_t k, em_cuda_shape bs,
                         em_cuda_arg o, em_cuda_arg a, int64_t a_rs, int64_t a_cs, em_cuda_arg b,
                         int64_t b_rs, int64_t b_cs)
{
    typedef typename Acc<S>::A A0;
    typedef typename std::conditional<std::is_same<S, bool>::value, int64_t, A0>::type A;
    GRID_LOOP(e, batch * m * n) {
        int64_t bi = e / (m * n), r = e % (m * n), i = r / n, j = r % n;
        const S *pa = (const S *)a.buf + off_of(bs, a, bi) + i * a_rs;
        const S *pb = (const S *)b.buf + off_of(bs, b, bi) + j * b_cs;
        A acc = A(0);
        for (int64_t t = 0; t < k; t++)
            acc += (A)Tr<S>::load(pa + t * a_cs) * (A)Tr<S>::load(pb + t * b_rs);
        if constexpr (std::is_same<S, bool>::value)
            ((bool *)o.buf)[o.offset + e] = acc != 0;
        else
            Tr<S>::store((S *)o.buf + o.offset + e, (typename Tr<S>::C)acc);
    }
}



/* ---- reductions with few outputs: one block per output element ----------------------------- */

/* For sum and amax when the outputs are few and the reductions long (a full reduction, a loss):
 * the threads of a block stride over the reduced elements and combine through shared memory.
 * The order of the additions depends only on the block size, so results are reproducible. */
template <class S>
__global__ void sum_block_k(em_cuda_shape kept, em_cuda_arg in, em_cuda_shape red, em_cuda_arg inr,
                            em_cuda_arg out)
{
    typedef typename Acc<S>::A A;
    __shared__ A sh[THREADS];
    for (int64_t o = blockIdx.x; o < kept.numel; o += gridDim.x) {
        int64_t base = off_of(kept, in, o);
        A acc = A(0);
        for (int64_t r = threadIdx.x; r < red.numel; r += blockDim.x)
            acc += (A)Tr<S>::load((const S *)in.buf + base + off_of(red, inr, r));
        acc = block_reduce<A, false>(acc, sh);
        if (threadIdx.x == 0)
            store_sum<S>(out, o, acc);
    }
}

template <class S>
__global__ void amax_block_k(em_cuda_shape kept, em_cuda_arg in, em_cuda_shape red, em_cuda_arg inr,
                             em_cuda_arg out)
{
    typedef typename Tr<S>::C C;
    __shared__ C sh[THREADS];
    for (int64_t o = blockIdx.x; o < kept.numel; o += gridDim.x) {
        int64_t base = off_of(kept, in, o);
        C m = Tr<S>::load((const S *)in.buf + base + off_of(red, inr, 0));
        for (int64_t r = threadIdx.x; r < red.numel; r += blockDim.x)
            m = nan_max(m, Tr<S>::load((const S *)in.buf + base + off_of(red, inr, r)));
        m = block_reduce<C, true>(m, sh);
        if (threadIdx.x == 0)
            Tr<S>::store((S *)out.buf + out.offset + o, m);
    }
}

/* ---- split reductions: outputs few, reductions very long ----------------------------------- */

/* Pass 1: block b reduces slice b % parts (chunk elements) of output b / parts into
 * part[b]; pass 2: a block per output combines its `parts` partials in order. The split
 * depends only on the sizes, so results are reproducible. A is the accumulator (sum) or the
 * compute type (amax). */
template <class S, bool MAX, class A>
__global__ void part_k(em_cuda_shape kept, em_cuda_arg in, em_cuda_shape red, em_cuda_arg inr,
                       int64_t chunk, int parts, A *part)
{
    __shared__ A sh[THREADS];
    int64_t o = blockIdx.x / parts, lo = (int64_t)(blockIdx.x % parts) * chunk;
    int64_t hi = lo + chunk < red.numel ? lo + chunk : red.numel;
    int64_t base = off_of(kept, in, o);
    const S *p = (const S *)in.buf + base;
    A acc = MAX ? (A)Tr<S>::load(p + off_of(red, inr, lo)) : A(0);
    for (int64_t r = lo + threadIdx.x; r < hi; r += blockDim.x) {
        A v = (A)Tr<S>::load(p + off_of(red, inr, r));
        acc = MAX ? nan_max(acc, v) : acc + v;
    }
    acc = block_reduce<A, MAX>(acc, sh);
    if (threadIdx.x == 0)
        part[blockIdx.x] = acc;
}

template <class S, bool MAX, class A, class O>
__global__ void part_final_k(int parts, const A *part, em_cuda_arg out)
{
    __shared__ A sh[THREADS];
    const A *q = part + (int64_t)blockIdx.x * parts;
    A acc = MAX ? q[0] : A(0);
    for (int r = threadIdx.x; r < parts; r += blockDim.x)
        acc = MAX ? nan_max(acc, q[r]) : acc + q[r];
    acc = block_reduce<A, MAX>(acc, sh);
    if (threadIdx.x == 0) {
        if constexpr (std::is_same<O, S>::value)
            Tr<S>::store((S *)out.buf + out.offset + blockIdx.x, (typename Tr<S>::C)acc);
        else
            ((O *)out.buf)[out.offset + blockIdx.x] = (O)acc;
    }
}

/* How a reduction splits: 0 parts when it does not (enough outputs to fill the device, or
 * reductions too short to be worth a second pass). */
inline int split_parts(int64_t kept, int64_t red)
{
    if (kept > 64 || red < 65536)
        return 0;
    int64_t parts = red / (THREADS * 16);          /* at least 4096 elements per block */
    int64_t cap = 4096 / kept;                     /* at most 4096 blocks in pass 1 */
    parts = parts < cap ? parts : cap;
    return parts > 1 ? (int)parts : 0;
}

} // namespace

#define DISPATCH_SIZE(dt, F)                                                                  \
    switch (em_dtype_size((em_dtype)(dt))) {                                                 \
    case 8: F(uint64_t); break;                                                              \
    case 4: F(uint32_t); break;                                                              \
    case 2: F(uint16_t); break;                                                              \
    case 1: F(uint8_t); break;                                                               \
    default: return EM_CUDA_UNSUPPORTED;                                                     \
    }


extern "C" int em_cuda__copy(void *stream, const em_cuda_shape *s, const em_cuda_arg *dst,
                             const em_cuda_arg *src)
{
    if (!em_dtype_size((em_dtype)dst->dtype) || !em_dtype_size((em_dtype)src->dtype))
        return EM_CUDA_UNSUPPORTED;
    if (dst->dtype == src->dtype) {
#define F(T) move_k<T><<<LAUNCH(s->numel)>>>(*s, *dst, *src)
        DISPATCH_SIZE(dst->dtype, F)
#undef F
    } else {
        copy_k<<<LAUNCH(s->numel)>>>(*s, *dst, *src);
    }
    return done();
}

extern "C" int em_cuda__fill(void *stream, int64_t n, const em_cuda_arg *out, double value)
{
    if (!em_dtype_size((em_dtype)out->dtype))
        return EM_CUDA_UNSUPPORTED;
    fill_k<<<LAUNCH(n)>>>(n, *out, value);
    return done();
}

extern "C" int em_cuda__random(void *stream, int64_t n, const em_cuda_arg *out, int dist,
                               uint64_t seed, uint64_t offset, double a, double b, int64_t low,
                               int64_t high)
{
    if (!em_dtype_size((em_dtype)out->dtype))
        return EM_CUDA_UNSUPPORTED;
    int bits = out->dtype == EM_F16 ? 11 : out->dtype == EM_BF16 ? 8 : 24;
    random_k<<<LAUNCH(n)>>>(n, *out, dist, seed, offset, a, b, low, high, bits);
    return done();
}

extern "C" int em_cuda__unary(void *stream, int op, const em_cuda_shape *s, const em_cuda_arg *out,
                              const em_cuda_arg *a)
{
#define F(T) unary_k<T><<<LAUNCH(s->numel)>>>(op, *s, *out, *a)
    DISPATCH_ALL(a->dtype, F)
#undef F
    return done();
}

extern "C" int em_cuda__binary(void *stream, int op, const em_cuda_shape *s, const em_cuda_arg *out,
                               const em_cuda_arg *a, const em_cuda_arg *b)
{
#define F(T) binary_k<T><<<LAUNCH(s->numel)>>>(op, *s, *out, *a, *b)
    DISPATCH_ALL(a->dtype, F)
#undef F
    return done();
}

extern "C" int em_cuda__where(void *stream, const em_cuda_shape *s, const em_cuda_arg *out,
                              const em_cuda_arg *a, const em_cuda_arg *b, const em_cuda_arg *cond)
{
#define F(T) where_k<T><<<LAUNCH(s->numel)>>>(*s, *out, *a, *b, *cond)
    DISPATCH_SIZE(a->dtype, F)
#undef F
    return done();
}

extern "C" size_t em_cuda__reduce_scratch(const em_cuda_shape *kept, const em_cuda_shape *red)
{
    int parts = split_parts(kept->numel, red->numel);
    return parts ? (size_t)(kept->numel * parts) * sizeof(double) : 0;
}

extern "C" int em_cuda__reduce(void *stream, int kind, const em_cuda_shape *kept,
                               const em_cuda_arg *in_kept, const em_cuda_shape *red,
                               const int64_t *red_strides, const em_cuda_arg *out, void *scratch)
{
    em_cuda_arg inr = *in_kept;
    inr.offset = 0;
    for (int d = 0; d < EM_CUDA_MAX_DIMS; d++)
        inr.strides[d] = d < red->ndim ? red_strides[d] : 0;
    int parts = split_parts(kept->numel, red->numel);
    if (parts && scratch) {
        cudaStream_t st = (cudaStream_t)stream;
        int64_t chunk = (red->numel + parts - 1) / parts;
        int blocks = (int)(kept->numel * parts), outs = (int)kept->numel;
        /* every accumulator here is at most 8 bytes: the scratch holds them all */
        if (kind == EM_CUDA_SUM) {
#define F(T)                                                                                  \
    {                                                                                        \
        typedef typename Acc<T>::A A;                                                        \
        part_k<T, false, A><<<blocks, THREADS, 0, st>>>(*kept, *in_kept, *red, inr, chunk,  \
                                                       parts, (A *)scratch);                 \
        part_final_k<T, false, A, typename Acc<T>::O><<<outs, THREADS, 0, st>>>(            \
            parts, (const A *)scratch, *out);                                                \
    }
            DISPATCH_ALL(in_kept->dtype, F)
#undef F
        } else {
#define F(T)                                                                                  \
    {                                                                                        \
        typedef typename Tr<T>::C A;                                                         \
        part_k<T, true, A><<<blocks, THREADS, 0, st>>>(*kept, *in_kept, *red, inr, chunk,   \
                                                      parts, (A *)scratch);                  \
        part_final_k<T, true, A, T><<<outs, THREADS, 0, st>>>(parts, (const A *)scratch,    \
                                                             *out);                          \
    }
            DISPATCH_ALL(in_kept->dtype, F)
#undef F
        }
        return done();
    }
    /* Few outputs, long reductions: a block each. Else a thread each. */
    if (kept->numel < 8192 && red->numel >= 512) {
        int blocks = (int)(kept->numel < 65535 ? kept->numel : 65535);
        cudaStream_t st = (cudaStream_t)stream;
        if (kind == EM_CUDA_SUM) {
#define F(T) sum_block_k<T><<<blocks, THREADS, 0, st>>>(*kept, *in_kept, *red, inr, *out)
            DISPATCH_ALL(in_kept->dtype, F)
#undef F
        } else {
#define F(T) amax_block_k<T><<<blocks, THREADS, 0, st>>>(*kept, *in_kept, *red, inr, *out)
            DISPATCH_ALL(in_kept->dtype, F)
#undef F
        }
        return done();
    }
    if (kind == EM_CUDA_SUM) {
#define F(T) sum_k<T><<<LAUNCH(kept->numel)>>>(*kept, *in_kept, *red, inr, *out)
        DISPATCH_ALL(in_kept->dtype, F)
#undef F
    } else {
#define F(T) amax_k<T><<<LAUNCH(kept->numel)>>>(*kept, *in_kept, *red, inr, *out)
        DISPATCH_ALL(in_kept->dtype, F)
#undef F
    }
    return done();
}

extern "C" int em_cuda__argmax(void *stream, const em_cuda_shape *kept, const em_cuda_arg *in_kept,
                               int64_t len, int64_t stride, const em_cuda_arg *out)
{
#define F(T) argmax_k<T><<<LAUNCH(kept->numel)>>>(*kept, *in_kept, len, stride, *out)
    DISPATCH_ALL(in_kept->dtype, F)
#undef F
    return done();
}

extern "C" int em_cuda__gather(void *stream, const em_cuda_shape *s, const em_cuda_arg *out,
                               const em_cuda_arg *a, int64_t a_dim_stride, const em_cuda_arg *index,
                               int dim)
{
    em_cuda_arg aa = *a;
    aa.strides[dim] = 0;
#define F(T) gather_k<T><<<LAUNCH(s->numel)>>>(*s, *out, aa, a_dim_stride, *index)
    DISPATCH_SIZE(a->dtype, F)
#undef F
    return done();
}

extern "C" int em_cuda__scatter_add(void *stream, const em_cuda_shape *s, const em_cuda_arg *out,
                                    int64_t out_dim_stride, const em_cuda_arg *index,
                                    const em_cuda_arg *src, int dim)
{
    em_cuda_arg oo = *out;
    oo.strides[dim] = 0;
    switch (out->dtype) {
#define F(T) scatter_add_k<T><<<LAUNCH(s->numel)>>>(*s, oo, out_dim_stride, *index, *src)
    case EM_F32: F(float); break;
    case EM_F64: F(double); break;
    case EM_I64: F(int64_t); break;
    case EM_I32: F(int32_t); break;
#undef F
    default: return EM_CUDA_UNSUPPORTED;
    }
    return done();
}

extern "C" int em_cuda__matmul_simple(void *stream, int dtype, int64_t batch, int64_t m,
                                      int64_t n, int64_t k, const em_cuda_shape *bshape,
                                      const em_cuda_arg *out, const em_cuda_arg *a, int64_t a_rs,
                                      int64_t a_cs,
                                      const em_cuda_arg *b, int64_t b_rs, int64_t b_cs)
{
#define F(T)                                                                                  \
    matmul_k<T><<<LAUNCH(batch * m * n)>>>(batch, m, n, k, *bshape, *out, *a, a_rs, a_cs, *b, \
                                           b_rs, b_cs)
    DISPATCH_ALL(dtype, F)
#undef F
    return done();
}


extern "C" int em_cuda__scatter_add_det(void *stream, const em_cuda_shape *os,
                                        const em_cuda_arg *out, const em_cuda_shape *is,
                                        const em_cuda_arg *index,
                                        const em_cuda_arg *src, int dim)
{
#define F(T) scatter_add_det_k<T><<<LAUNCH(os->numel)>>>(*os, *out, *is, *index, *src, dim)
    DISPATCH_ALL(out->dtype, F)
#undef F
    return done();
}
