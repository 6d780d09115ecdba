/* backends/cpu/copy.c - the CPU kernels that write values rather than compute them: copy
 * (with dtype casts, any strides on both sides), fill and random.
 *
 * Casts follow PyTorch on x86: float -> integer truncates toward zero (NaN and out-of-range
 * values give the type's minimum, u8 wraps through int64), integer -> integer wraps, -> bool
 * is != 0, f64 -> f16/bf16 rounds through f32 as c10::Half does. Each cast goes through one
 * intermediate, int64 for integer and bool sources and double for float ones, so that every
 * one of the 64 dtype pairs is the composition of a load and a store written once below.
 */
#include <string.h>

#include "cpu.h"

/* ---- loads into the intermediate, stores out of it -------------------------------- */

#define LD_f32(x) ((double)(x))
#define LD_f64(x) (x)
#define LD_f16(x) ((double)em_cpu__h2f(x))
#define LD_bf16(x) ((double)em_bf16_to_f32(x))
#define LD_i64(x) ((int64_t)(x))
#define LD_i32(x) ((int64_t)(x))
#define LD_u8(x) ((int64_t)(x))
#define LD_bool(x) ((int64_t)((x) != 0))

static inline int64_t i64_to_i64(int64_t v) { return v; }
static inline int32_t i64_to_i32(int64_t v) { return (int32_t)v; }
static inline uint8_t i64_to_u8(int64_t v) { return (uint8_t)v; }

/* The intermediate's type (double or int64_t) picks the conversion. */
#define ST_f32(v) ((float)(v))
#define ST_f64(v) ((double)(v))
#define ST_f16(v) em_cpu__f2h((float)(v))
#define ST_bf16(v) em_f32_to_bf16((float)(v))
#define ST_i64(v) _Generic((v), double: em_cpu__d2i64, default: i64_to_i64)(v)
#define ST_i32(v) _Generic((v), double: em_cpu__d2i32, default: i64_to_i32)(v)
#define ST_u8(v) _Generic((v), double: em_cpu__d2u8, default: i64_to_u8)(v)
#define ST_bool(v) ((uint8_t)((v) != 0))

/* dst (operand 0, type To) = src (operand 1, type Ti), elementwise; `decl` is `static`, with
 * attributes before it where a loop has them. */
#define CAST_LOOP_DECL(decl, name, Ti, LD, To, ST)                                       \
    decl void name(const void *fctx, char *const *p, const int64_t *s, int64_t n)        \
    {                                                                                    \
        (void)fctx;                                                                      \
        To *d = (To *)p[0];                                                              \
        const Ti *x = (const Ti *)p[1];                                                  \
        if (s[0] == 1 && s[1] == 1) {                                                    \
            for (int64_t i = 0; i < n; i++)                                              \
                d[i] = ST(LD(x[i]));                                                     \
        } else {                                                                         \
            for (int64_t i = 0; i < n; i++)                                              \
                d[i * s[0]] = ST(LD(x[i * s[1]]));                                       \
        }                                                                                \
    }

#define CAST_LOOP(name, Ti, LD, To, ST) CAST_LOOP_DECL(static, name, Ti, LD, To, ST)

/* All eight destinations of one source type; the two 16-bit float ones declared `narrow`. */
#define CAST_ROW(S, Ti, narrow)                                                          \
    CAST_LOOP(cast_##S##_f32, Ti, LD_##S, float, ST_f32)                                 \
    CAST_LOOP(cast_##S##_f64, Ti, LD_##S, double, ST_f64)                                \
    CAST_LOOP_DECL(narrow, cast_##S##_f16, Ti, LD_##S, uint16_t, ST_f16)                 \
    CAST_LOOP_DECL(narrow, cast_##S##_bf16, Ti, LD_##S, uint16_t, ST_bf16)               \
    CAST_LOOP(cast_##S##_i64, Ti, LD_##S, int64_t, ST_i64)                               \
    CAST_LOOP(cast_##S##_i32, Ti, LD_##S, int32_t, ST_i32)                               \
    CAST_LOOP(cast_##S##_u8, Ti, LD_##S, uint8_t, ST_u8)                                 \
    CAST_LOOP(cast_##S##_bool, Ti, LD_##S, uint8_t, ST_bool)

/* float32 -> float16/bfloat16 (mixed-precision weights, DDP's compressed gradients): the
 * rounding vectorises, but narrowing 32-bit lanes to 16 bits is slow in baseline x86-64, so
 * these two get the AVX2 clone (twice as fast here, the same bits). */
CAST_ROW(f32, float, EM_CPU_VECTOR_CLONES static)
CAST_ROW(f64, double, static)
CAST_ROW(f16, uint16_t, static)
CAST_ROW(bf16, uint16_t, static)
CAST_ROW(i64, int64_t, static)
CAST_ROW(i32, int32_t, static)
CAST_ROW(u8, uint8_t, static)
CAST_ROW(bool, uint8_t, static)

#define CAST_TABLE_ROW(S)                                                                \
    [EM_F32] = cast_##S##_f32, [EM_F64] = cast_##S##_f64, [EM_F16] = cast_##S##_f16,    \
    [EM_BF16] = cast_##S##_bf16, [EM_I64] = cast_##S##_i64, [EM_I32] = cast_##S##_i32,  \
    [EM_U8] = cast_##S##_u8, [EM_BOOL] = cast_##S##_bool

/* cast_loops[src][dst] */
static const em_cpu_loop_fn cast_loops[EM_DTYPE_COUNT][EM_DTYPE_COUNT] = {
    [EM_F32] = {CAST_TABLE_ROW(f32)},   [EM_F64] = {CAST_TABLE_ROW(f64)},
    [EM_F16] = {CAST_TABLE_ROW(f16)},   [EM_BF16] = {CAST_TABLE_ROW(bf16)},
    [EM_I64] = {CAST_TABLE_ROW(i64)},   [EM_I32] = {CAST_TABLE_ROW(i32)},
    [EM_U8] = {CAST_TABLE_ROW(u8)},     [EM_BOOL] = {CAST_TABLE_ROW(bool)},
};

/* ---- same-dtype copies move bytes ------------------------------------------------- */

#define MOVE_LOOP(name, T)                                                               \
    static void name(const void *fctx, char *const *p, const int64_t *s, int64_t n)      \
    {                                                                                    \
        (void)fctx;                                                                      \
        T *d = (T *)p[0];                                                                \
        const T *x = (const T *)p[1];                                                    \
        if (s[0] == 1 && s[1] == 1)                                                      \
            memcpy(d, x, (size_t)n * sizeof(T));                                         \
        else if (s[1] == 0)                                                              \
            for (int64_t i = 0; i < n; i++)                                              \
                d[i * s[0]] = x[0];                                                      \
        else                                                                             \
            for (int64_t i = 0; i < n; i++)                                              \
                d[i * s[0]] = x[i * s[1]];                                               \
    }

MOVE_LOOP(move_1, uint8_t)
MOVE_LOOP(move_2, uint16_t)
MOVE_LOOP(move_4, uint32_t)
MOVE_LOOP(move_8, uint64_t)

em_cpu_loop_fn em_cpu__move_loop(size_t elsize)
{
    static const em_cpu_loop_fn loops[4] = {move_1, move_2, move_4, move_8};
    return em_cpu__by_elsize(elsize, loops);
}

/* A same-dtype 2-D transpose (dst rows contiguous, src columns contiguous) goes by blocks of
 * BLOCK x BLOCK elements, each copied as square tiles one cache line wide: every dst line is
 * written whole in one go and every src line is read whole across consecutive tiles, which
 * keeps power-of-two strides (that map all rows to one cache set) from thrashing L1. */
#define BLOCK 128

/* dst[r * drs + c] = src[r + c * scs] for r in [r0, r1), c in [c0, c1). */
#define TRANSPOSE(name, T)                                                               \
    static void name(char *dp, int64_t drs, const char *sp, int64_t scs, int64_t r0,     \
                     int64_t r1, int64_t c0, int64_t c1)                                 \
    {                                                                                    \
        enum { TW = 64 / sizeof(T) };                                                    \
        T *dst = (T *)dp;                                                                \
        const T *src = (const T *)sp;                                                    \
        for (int64_t cb = c0; cb < c1; cb += TW) {                                       \
            int64_t ce = cb + TW < c1 ? cb + TW : c1;                                    \
            for (int64_t rb = r0; rb < r1; rb += TW) {                                   \
                int64_t re = rb + TW < r1 ? rb + TW : r1;                                \
                for (int64_t r = rb; r < re; r++) {                                      \
                    T *d = dst + r * drs;                                                \
                    const T *sr = src + r;                                               \
                    for (int64_t c = cb; c < ce; c++)                                    \
                        d[c] = sr[c * scs];                                              \
                }                                                                        \
            }                                                                            \
        }                                                                                \
    }

TRANSPOSE(transpose_1, uint8_t)
TRANSPOSE(transpose_2, uint16_t)
TRANSPOSE(transpose_4, uint32_t)
TRANSPOSE(transpose_8, uint64_t)

typedef void (*transpose_fn)(char *dp, int64_t drs, const char *sp, int64_t scs, int64_t r0,
                             int64_t r1, int64_t c0, int64_t c1);

typedef struct tr_ctx {
    const em_cpu_iter *it;
    transpose_fn fn;
    int64_t col_blocks;
} tr_ctx;

static void block_range(void *arg, int64_t begin, int64_t end)
{
    const tr_ctx *t = arg;
    const em_cpu_iter *it = t->it;
    int64_t rows = it->shape[0], cols = it->shape[1];
    for (int64_t b = begin; b < end; b++) {
        int64_t br = b / t->col_blocks * BLOCK, bc = b % t->col_blocks * BLOCK;
        t->fn(it->base[0], it->strides[0][0], it->base[1], it->strides[1][1], br,
              br + BLOCK < rows ? br + BLOCK : rows, bc, bc + BLOCK < cols ? bc + BLOCK : cols);
    }
}

static bool is_transpose(const em_cpu_iter *it)
{
    return it->ndim == 2 && it->elsize[0] == it->elsize[1] && it->strides[0][1] == 1 &&
           it->strides[1][0] == 1 && it->strides[1][1] != 0 && it->shape[0] >= 16 &&
           it->shape[1] >= 16;
}

static void copy_transpose(const em_cpu_iter *it)
{
    tr_ctx t = {it, NULL, (it->shape[1] + BLOCK - 1) / BLOCK};
    switch (it->elsize[0]) {
    case 1: t.fn = transpose_1; break;
    case 2: t.fn = transpose_2; break;
    case 4: t.fn = transpose_4; break;
    default: t.fn = transpose_8; break;
    }
    int64_t nblocks = (it->shape[0] + BLOCK - 1) / BLOCK * t.col_blocks;
    em_cpu__parallel_for(nblocks, EM_CPU_GRAIN_CHEAP / (BLOCK * BLOCK) + 1, block_range, &t);
}

/* Element-by-element copy between two shapes of equal numel (a reshape that could not be a
 * view): each side walks its own row-major order. Slow and rare. */
static void copy_reshape(const em_ktensor *dst, const em_ktensor *src, em_cpu_loop_fn fn)
{
    int64_t zero[2] = {0, 0};
    size_t ds = em_dtype_size(dst->dtype), ss = em_dtype_size(src->dtype);
    for (int64_t k = 0; k < dst->numel; k++) {
        char *p[2] = {(char *)dst->buf + em_kt_offset(dst, k) * (int64_t)ds,
                      (char *)src->buf + em_kt_offset(src, k) * (int64_t)ss};
        fn(NULL, p, zero, 1);
    }
}

static int k_copy(void *bctx, const em_kcall *c)
{
    EM_KCALL_CHECK(c, "cpu", 1, 1, 0);
    const em_ktensor *dst = &c->out[0], *src = &c->in[0];
    em_cpu_loop_fn fn = dst->dtype == src->dtype ? em_cpu__move_loop(em_dtype_size(dst->dtype))
                                                 : cast_loops[src->dtype][dst->dtype];
    if (!em_kt_broadcasts(dst, src)) {
        if (src->numel != dst->numel)
            return em_set_error(EM_ERR_INVALID, "cpu: copy: source does not fit the "
                                "destination's shape");
        copy_reshape(dst, src, fn);
        return EM_OK;
    }
    const em_ktensor *ts[2] = {dst, src};
    em_cpu_iter it;
    int rc = em_cpu__iter_init(&it, "copy", 2, ts);
    if (rc != EM_OK)
        return rc;
    if (dst->dtype == src->dtype && is_transpose(&it)) {
        copy_transpose(&it);
        return EM_OK;
    }
    em_cpu__iter_run(&it, EM_CPU_GRAIN_CHEAP, fn, NULL);
    return EM_OK;
}

/* ---- fill ---------------------------------------------------------------------------- */

typedef struct fill_ctx {
    char *out;
    size_t elsize;
    uint64_t bits;                         /* the value in the output dtype, first bytes */
} fill_ctx;

#define FILL_CASE(T)                                                                     \
    {                                                                                    \
        T v;                                                                             \
        memcpy(&v, &f->bits, sizeof v);                                                  \
        T *o = (T *)f->out;                                                              \
        for (int64_t i = begin; i < end; i++)                                            \
            o[i] = v;                                                                    \
        break;                                                                           \
    }

static void fill_range(void *arg, int64_t begin, int64_t end)
{
    const fill_ctx *f = arg;
    switch (f->elsize) {
    case 1: FILL_CASE(uint8_t)
    case 2: FILL_CASE(uint16_t)
    case 4: FILL_CASE(uint32_t)
    default: FILL_CASE(uint64_t)
    }
}

/* Converts a double to one element of dtype dt, through the same stores as copy. */
static void store_double(em_dtype dt, double v, void *out)
{
    char *p[2] = {out, (char *)&v};
    int64_t s[2] = {1, 1};
    cast_loops[EM_F64][dt](NULL, p, s, 1);
}

static int k_fill(void *bctx, const em_kcall *c)
{
    EM_KCALL_CHECK(c, "cpu", 0, 1, 1);
    const em_ktensor *out = &c->out[0];
    fill_ctx f = {em_cpu__data(out), em_dtype_size(out->dtype), 0};
    store_double(out->dtype, c->attrs[0].f, &f.bits);   /* into its first bytes */
    if (f.bits == 0) {
        /* memset is the fastest fill there is; still split big ones across threads. */
        f.elsize = 1;
        em_cpu__parallel_for(out->numel * (int64_t)em_dtype_size(out->dtype),
                             EM_CPU_GRAIN_CHEAP * 8, fill_range, &f);
        return EM_OK;
    }
    em_cpu__parallel_for(out->numel, EM_CPU_GRAIN_CHEAP, fill_range, &f);
    return EM_OK;
}

/* ---- random ---------------------------------------------------------------------------- */

enum { DIST_UNIFORM = 0, DIST_NORMAL = 1, DIST_INTEGER = 2 };

typedef struct rand_ctx {
    char *out;
    em_dtype dt;
    size_t elsize;
    int dist;
    uint64_t seed, offset;
    double a, b;
    int drop;                          /* uniform: low random bits the dtype cannot hold */
    int64_t low, high;
} rand_ctx;

/* Values are drawn in runs of RUN into a double (or int64) buffer and then cast into the
 * output by the copy loops. Element k depends only on (seed, offset, k), so any split of the
 * range gives the same bits, and they are the bits numeric.h's functions give.
 *
 * Uniform draws into f16 and bf16 keep only the top 11 or 8 of em_philox_uniform's 24 bits
 * (the dtype's significand), as PyTorch's uniform_real does, so that u is exact in the dtype
 * and a + (b - a) * u on [0, 1) never rounds up to 1. f32 and f64 use all 24 bits. */
#define RUN 256

static void rand_range(void *arg, int64_t begin, int64_t end)
{
    const rand_ctx *r = arg;
    double dbuf[RUN];
    int64_t ibuf[RUN];
    int64_t s[2] = {1, 1};
    for (int64_t k0 = begin; k0 < end; k0 += RUN) {
        int64_t n = end - k0 < RUN ? end - k0 : RUN;
        char *p[2] = {r->out + k0 * (int64_t)r->elsize, (char *)dbuf};
        if (r->dist == DIST_UNIFORM) {
            /* em_philox_uniform with each Philox block computed once for its 4 lanes. */
            em_philox_out o = em_philox4x32(r->seed, r->offset + (uint64_t)k0 / 4);
            for (int64_t i = 0; i < n; i++) {
                uint64_t k = (uint64_t)(k0 + i);
                if (k % 4 == 0 && i > 0)
                    o = em_philox4x32(r->seed, r->offset + k / 4);
                double u = (double)(o.v[k % 4] >> 8 >> r->drop) *
                           (1.0 / (double)(UINT64_C(1) << (24 - r->drop)));
                dbuf[i] = r->a + (r->b - r->a) * u;
            }
        } else if (r->dist == DIST_NORMAL) {
            for (int64_t i = 0; i < n; i++)
                dbuf[i] = r->a + r->b * em_philox_normal(r->seed, r->offset,
                                                         (uint64_t)(k0 + i));
        } else {
            for (int64_t i = 0; i < n; i++)
                ibuf[i] = em_philox_int(r->seed, r->offset, (uint64_t)(k0 + i), r->low,
                                        r->high);
            p[1] = (char *)ibuf;
            cast_loops[EM_I64][r->dt](NULL, p, s, n);
            continue;
        }
        cast_loops[EM_F64][r->dt](NULL, p, s, n);
    }
}

static int k_random(void *bctx, const em_kcall *c)
{
    EM_KCALL_CHECK(c, "cpu", 0, 1, 7);
    const em_ktensor *out = &c->out[0];
    rand_ctx r = {
        .out = em_cpu__data(out),
        .dt = out->dtype,
        .elsize = em_dtype_size(out->dtype),
        .dist = (int)c->attrs[0].i,
        .seed = (uint64_t)c->attrs[1].i,
        .offset = (uint64_t)c->attrs[2].i,
        .a = c->attrs[3].f,
        .b = c->attrs[4].f,
    };
    if (r.dist < DIST_UNIFORM || r.dist > DIST_INTEGER)
        return em_set_error(EM_ERR_INVALID, "cpu: random: unknown distribution %d", r.dist);
    r.drop = r.dt == EM_F16 ? 24 - 11 : r.dt == EM_BF16 ? 24 - 8 : 0;
    if (r.dist == DIST_INTEGER) {
        r.low = c->attrs[5].i;
        r.high = c->attrs[6].i;
        if (r.high <= r.low)
            return em_set_error(EM_ERR_INVALID, "cpu: random: empty range [%lld, %lld)",
                                (long long)r.low, (long long)r.high);
    }
    em_cpu__parallel_for(out->numel, EM_CPU_GRAIN_MATH, rand_range, &r);
    return EM_OK;
}

int em_cpu__register_copy(em_registry *reg)
{
    static const em_kernel_decl table[] = {
        {"copy", k_copy, EM_KERNEL_STRIDED, EM_DTYPES_ALL},
        {"fill", k_fill, 0, EM_DTYPES_ALL},
        {"random", k_random, 0, EM_DTYPES_ALL},
    };
    return em_register_kernels(reg, "cpu", table, sizeof table / sizeof table[0]);
}
