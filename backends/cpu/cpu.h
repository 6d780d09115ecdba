/* backends/cpu/cpu.h - what the CPU backend's files share: the thread pool, the strided
 * elementwise iterator, dtype helpers and each kernel family's registration function.
 *
 * Private to backends/cpu/ (every symbol is hidden by -fvisibility=hidden); cross-file helpers
 * carry the em_cpu__ prefix. Nothing here allocates on the fast path of a small op.
 */
#ifndef EMBER_BACKENDS_CPU_H
#define EMBER_BACKENDS_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember/plugin.h"

/* ---- thread pool (threadpool.c) ------------------------------------------ */

/* The contract of the one pool every kernel shares:
 *   - Size: em_config_threads() threads in all (EMBER_NUM_THREADS, else [runtime] threads,
 *     else the online CPUs), that is threads - 1 workers plus the calling thread. No loop
 *     ever runs on more.
 *   - Small work runs inline: a loop of n <= grain work units is one call fn(ctx, 0, n) on the
 *     calling thread, with no lock, atomic or hand-off. `grain` is in the loop's own units
 *     (elements, rows, parts): callers scale EM_CPU_GRAIN_* by the cost of one unit, so that
 *     a chunk is worth a hand-off (about 32K cheap element operations).
 *   - Loops started inside a chunk, and loops of a second thread while another thread's loop
 *     holds the pool, run inline too: no nesting, no waiting, no oversubscription.
 *   - Waiting never loops on sched_yield: idle workers, and a caller waiting for the workers'
 *     last chunks, spin for about 50 us and then sleep on a condition variable.
 *   - fork() is safe: pthread_atfork handlers keep the pool's locks consistent, and a child
 *     starts workers of its own at its first big loop. Exit needs nothing: workers sleep
 *     until em_shutdown's plugin hook joins them, and a process that exits without
 *     em_shutdown simply ends them. */

/* Work on the half-open range [begin, end) of a parallel loop. */
typedef void (*em_cpu_task_fn)(void *ctx, int64_t begin, int64_t end);

/* Reads the thread count; creates nothing (workers start at the first big loop). */
void em_cpu__pool_configure(int threads);
/* Joins the workers. Safe to call when they never started. Not thread safe with loops in
 * flight: the plugin calls it from its shutdown hook. */
void em_cpu__pool_shutdown(void);
int em_cpu__pool_threads(void);

/* Calls fn over [0, n) split into chunks of at least `grain` elements, on the pool's workers
 * and the calling thread, and returns when every chunk has run. Runs fn(ctx, 0, n) inline,
 * with no locks or atomics, when n <= grain, when there is one thread, when called from
 * inside a parallel loop, or when another thread's loop holds the pool. */
void em_cpu__parallel_for(int64_t n, int64_t grain, em_cpu_task_fn fn, void *ctx);

/* Elements per chunk below which splitting costs more than it saves. */
#define EM_CPU_GRAIN_CHEAP 32768   /* a load, an add, a store */
#define EM_CPU_GRAIN_MATH 4096     /* exp, sin, tanh, pow, philox: tens of cycles each */

/* ---- strided elementwise iteration (iter.c) --------------------------------- */

#define EM_CPU_MAX_OPS 4

/* Operand 0 is the output; the others are inputs broadcast (right-aligned, size 1 or equal)
 * to the output's shape. Dims of size 1 are dropped and adjacent dims that are contiguous
 * with each other in every operand are merged, so a contiguous tensor is one flat loop and
 * a scalar broadcast over it is a loop with input stride 0. */
typedef struct em_cpu_iter {
    int ndim;                                   /* >= 1 after coalescing */
    int nops;
    int64_t numel;
    int64_t shape[EM_MAX_DIMS];                 /* innermost last */
    int64_t strides[EM_CPU_MAX_OPS][EM_MAX_DIMS];   /* elements, per operand */
    char *base[EM_CPU_MAX_OPS];                 /* element 0 of each operand */
    size_t elsize[EM_CPU_MAX_OPS];
} em_cpu_iter;

/* A typed inner loop over n elements: ptrs[k] is operand k's first element and strides[k]
 * its stride in elements. Must not keep pointers past the call. */
typedef void (*em_cpu_loop_fn)(const void *fctx, char *const *ptrs, const int64_t *strides,
                               int64_t n);

/* Builds the iterator. ts[0] is the output. Returns EM_OK or EM_ERR_INVALID (shapes that do
 * not broadcast), with the error set and naming `op`. */
int em_cpu__iter_init(em_cpu_iter *it, const char *op, int nops, const em_ktensor *const *ts);
/* Runs fn over every element, in parallel above `grain` elements. */
void em_cpu__iter_run(const em_cpu_iter *it, int64_t grain, em_cpu_loop_fn fn,
                      const void *fctx);
/* em_cpu__iter_init, then em_cpu__iter_run: the whole of most elementwise kernels. Returns
 * EM_OK, or init's error (and runs nothing). */
int em_cpu__iter_each(const char *op, int nops, const em_ktensor *const *ts, int64_t grain,
                      em_cpu_loop_fn fn, const void *fctx);

/* Of four loops for elements of 1, 2, 4 and 8 bytes (in that order), the one for elsize: for
 * kernels that only move elements, whatever their dtype. */
static inline em_cpu_loop_fn em_cpu__by_elsize(size_t elsize, const em_cpu_loop_fn fns[4])
{
    return fns[elsize == 1 ? 0 : elsize == 2 ? 1 : elsize == 4 ? 2 : 3];
}

/* ---- dtype helpers ----------------------------------------------------------- */

/* f16 <-> f32 as numeric.h's em_f16_to_f32/em_f32_to_f16 (round to nearest even, the same
 * NaN), bit for bit on every input (checked exhaustively), but written without branches so
 * that loops over them vectorise; numeric.h's versions stay the reference for other
 * backends. Subnormals use the FPU: adding 0.5 (whose ulp is 2^-24, the f16 subnormal step)
 * rounds to nearest even, and subtracting 2^-14 from 2^-14 + m * 2^-24 is exact. */
static inline float em_cpu__h2f(uint16_t h)
{
    uint32_t o = (uint32_t)(h & 0x7fffu) << 13;
    uint32_t exp = o & 0x0f800000u;
    uint32_t nrm = o + (112u << 23);                        /* rebias 15 -> 127 */
    uint32_t inf = nrm + (112u << 23);                      /* exponent all ones */
    uint32_t sub = em__f32_bits(em__bits_f32(nrm + (1u << 23)) - em__bits_f32(113u << 23));
    uint32_t r = exp == 0x0f800000u ? inf : exp == 0 ? sub : nrm;
    return em__bits_f32(r | (uint32_t)(h & 0x8000u) << 16);
}

static inline uint16_t em_cpu__f2h(float f)
{
    uint32_t x = em__f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    x &= 0x7fffffffu;
    uint32_t nrm = (x + 0xc8000fffu + ((x >> 13) & 1u)) >> 13;   /* rebias, round, shift */
    uint32_t sub = em__f32_bits(em__bits_f32(x) + 0.5f) - 0x3f000000u;
    uint32_t big = x > 0x7f800000u ? 0x7e00u : 0x7c00u;           /* NaN : overflow, inf */
    uint32_t o = x >= 0x47800000u ? big : x < 0x38800000u ? sub : nrm;
    return (uint16_t)(o | sign);
}

/* exp in float32 without a libm call, so that loops over it vectorise: x = n ln2 + r
 * (Cody-Waite, ln2 in two parts), exp(r) by Cephes' degree-7 polynomial, then 2^n applied in
 * two halves so that subnormal results round once. Over every float32 input it is within 1 ulp
 * of the correctly rounded exp (exact for 99.6% of them; checked exhaustively), with expf's
 * NaN, +-inf, overflow to inf and underflow to 0. Plain multiplies and adds (no FMA), so every
 * vector width gives the same bits. */
static inline float em_cpu__expf(float x)
{
    const float shifter = 12582912.0f;                  /* 1.5 * 2^23: rounds to an integer */
    float xc = x < -104.0f ? -104.0f : x;               /* exp(-104) < 2^-150: 0 */
    xc = xc > 89.0f ? 89.0f : xc;                       /* exp(89) > FLT_MAX: inf */
    float t = xc * 1.44269504088896341f + shifter;
    float n = t - shifter;
    int32_t ni = (int32_t)(em__f32_bits(t) - em__f32_bits(shifter));
    float r = xc - n * 0.693359375f;                    /* n ln2_hi is exact */
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    int32_t n1 = ni >> 1, n2 = ni - n1;                 /* each in [-75, 64] */
    y = y * em__bits_f32((uint32_t)(n1 + 127) << 23);
    y = y * em__bits_f32((uint32_t)(n2 + 127) << 23);
    return x != x ? x : y;
}

/* Loops that gain from wider vectors than the x86-64 baseline's: an AVX2 clone picked at load
 * time where the CPU has it (no FMA, so results are the same bits on every machine). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define EM_CPU_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define EM_CPU_VECTOR_CLONES
#endif

/* Address of a tensor's first element (offset applied). */
static inline char *em_cpu__data(const em_ktensor *t)
{
    return (char *)t->buf + t->offset * (int64_t)em_dtype_size(t->dtype);
}

/* Float to integer as PyTorch does on x86: truncation toward zero; NaN and out-of-range
 * values give the type's minimum (what cvttsd2si returns); u8 goes through int64 and
 * wraps. */
static inline int64_t em_cpu__d2i64(double v)
{
    if (!(v > -9223372036854775809.0 && v < 9223372036854775808.0))
        return INT64_MIN;
    return (int64_t)v;
}

static inline int32_t em_cpu__d2i32(double v)
{
    if (!(v > -2147483649.0 && v < 2147483648.0))
        return INT32_MIN;
    return (int32_t)v;
}

static inline uint8_t em_cpu__d2u8(double v) { return (uint8_t)em_cpu__d2i64(v); }

/* ---- kernel families: each registers its kernels on backend "cpu" ------------ */

/* memory.c: host memory with a cache of large blocks */
void *em_cpu__alloc(size_t nbytes);
void em_cpu__free(void *p, size_t nbytes);
void em_cpu__memory_stats(em_memory_stats *out);
void em_cpu__reset_peak(void);
void em_cpu__empty_cache(void);

/* copy.c: the loop that copies elements of `elsize` bytes from operand 1 to operand 0 (any
 * strides, 0 included), for kernels that start with out = a. */
em_cpu_loop_fn em_cpu__move_loop(size_t elsize);

int em_cpu__register_copy(em_registry *reg);        /* copy.c: copy, fill, random */
int em_cpu__register_unary(em_registry *reg);       /* unary.c */
int em_cpu__register_binary(em_registry *reg);      /* binary.c: arithmetic, compare, where */
int em_cpu__register_reduce(em_registry *reg);      /* reduce.c: sum, amax, argmax */
int em_cpu__register_matmul(em_registry *reg);      /* matmul.c */
int em_cpu__register_index(em_registry *reg);       /* index.c: gather, scatter_add */
int em_cpu__register_rows(em_registry *reg);        /* rows.c: fused cross_entropy */
int em_cpu__register_optim(em_registry *reg);       /* optim.c: fused optimizer updates */

#endif
