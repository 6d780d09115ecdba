/* backends/cpu/reduce.c - reductions: sum and amax over any set of axes, argmax along one.
 *
 * sum/amax accept strided inputs. The input's dims are split into kept (K) and reduced (R)
 * groups, size-1 dims dropped and neighbours of one group merged, which leaves two shapes:
 *   inner: the innermost dim is reduced, so each output reduces runs along memory
 *          (contiguous runs use 8 lanes and pairwise blocks for float sums);
 *   outer: the innermost dim is kept, so a tile of neighbouring outputs accumulates whole
 *          input rows at once (sum over axis 0 of a matrix), vectorised across the tile.
 * Many outputs split across threads by output; few outputs with long reductions split the
 * reduced range, each thread writing partials that are combined in a fixed order, so results
 * do not depend on timing. Accumulators: f32 for f32/f16/bf16 sums, f64 for f64, int64 with
 * wrapping for integer and bool sums (whose output is int64, as in PyTorch). amax and argmax
 * propagate NaN; argmax returns the first index of the maximum (or of the first NaN).
 */
#include <math.h>
#include <stdlib.h>

#include "cpu.h"

#define ID(x) (x)
#define TILE_W 256                 /* argmax columns per item */
#define SEG_W 2048                 /* outputs per row segment in the outer shape */
#define ROW_BLOCK 512              /* rows summed into a block before joining the total */
#define SLICE 1024                 /* outputs reduced per accumulator buffer */

/* ---- typed pieces: one red_ops per (op, input dtype) --------------------------------- */

typedef struct red_ops {
    size_t acc_size;
    void (*init)(void *acc, int64_t n);                        /* n identities */
    void (*run)(void *acc, const char *p, int64_t n, int64_t s);   /* *acc op= p[0..n) */
    void (*tile)(void *acc, const char *p, int64_t w, int64_t s);  /* acc[j] op= p[j] */
    void (*combine)(void *acc, const void *other, int64_t n);  /* acc[j] op= other[j] */
    void (*store)(char *out, const void *acc, int64_t n);      /* out[j] = acc[j] */
} red_ops;

#define SUM_C(a, x) ((a) + (x))
#define ISUM_C(a, x) ((int64_t)((uint64_t)(a) + (uint64_t)(x)))
/* NaN sticks: a NaN x replaces a, and nothing replaces a NaN a (x > NaN is false). */
#define MAX_C(a, x) (((x) > (a) || (x) != (x)) ? (x) : (a))

/* Eight independent lanes over a contiguous run: vectorisable, and shorter add chains. */
#define RED_LEAF(name, T, A, LD, COMB, IDENT)                                            \
    static A name(const T *x, int64_t n)                                                 \
    {                                                                                    \
        A a[8];                                                                          \
        for (int j = 0; j < 8; j++)                                                      \
            a[j] = IDENT;                                                                \
        int64_t i = 0;                                                                   \
        for (; i + 8 <= n; i += 8)                                                       \
            for (int j = 0; j < 8; j++)                                                  \
                a[j] = COMB(a[j], LD(x[i + j]));                                         \
        for (; i < n; i++)                                                               \
            a[0] = COMB(a[0], LD(x[i]));                                                 \
        A lo = COMB(COMB(a[0], a[1]), COMB(a[2], a[3]));                                 \
        A hi = COMB(COMB(a[4], a[5]), COMB(a[6], a[7]));                                 \
        return COMB(lo, hi);                                                             \
    }

/* Pairwise halving above 1024 elements keeps float sums' error growth logarithmic. */
#define PAIRWISE(name, T, A, LEAF)                                                       \
    static A name(const T *x, int64_t n)                                                 \
    {                                                                                    \
        if (n <= 1024)                                                                   \
            return LEAF(x, n);                                                           \
        int64_t h = (n / 2) & ~(int64_t)7;                                               \
        return name(x, h) + name(x + h, n - h);                                          \
    }

#define RED_RUN_TILE(name, T, A, LD, COMB, IDENT, CONTIG)                                \
    static void name##_run(void *accp, const char *p, int64_t n, int64_t s)             \
    {                                                                                    \
        A *acc = accp;                                                                   \
        const T *x = (const T *)p;                                                       \
        if (s == 1) {                                                                    \
            *acc = COMB(*acc, CONTIG(x, n));                                             \
            return;                                                                      \
        }                                                                                \
        A a0 = IDENT, a1 = IDENT;                                                        \
        int64_t i = 0;                                                                   \
        for (; i + 2 <= n; i += 2) {                                                     \
            a0 = COMB(a0, LD(x[i * s]));                                                 \
            a1 = COMB(a1, LD(x[(i + 1) * s]));                                           \
        }                                                                                \
        if (i < n)                                                                       \
            a0 = COMB(a0, LD(x[i * s]));                                                 \
        *acc = COMB(*acc, COMB(a0, a1));                                                 \
    }                                                                                    \
    static void name##_tile(void *accp, const char *p, int64_t w, int64_t s)            \
    {                                                                                    \
        A *acc = accp;                                                                   \
        const T *x = (const T *)p;                                                       \
        if (s == 1)                                                                      \
            for (int64_t j = 0; j < w; j++)                                              \
                acc[j] = COMB(acc[j], LD(x[j]));                                         \
        else                                                                             \
            for (int64_t j = 0; j < w; j++)                                              \
                acc[j] = COMB(acc[j], LD(x[j * s]));                                     \
    }

#define FLOAT_SUM(name, T, A, LD)                                                        \
    RED_LEAF(name##_leaf, T, A, LD, SUM_C, 0)                                            \
    PAIRWISE(name##_pairwise, T, A, name##_leaf)                                         \
    RED_RUN_TILE(name, T, A, LD, SUM_C, 0, name##_pairwise)

#define INT_SUM(name, T, LD)                                                             \
    RED_LEAF(name##_leaf, T, int64_t, LD, ISUM_C, 0)                                     \
    RED_RUN_TILE(name, T, int64_t, LD, ISUM_C, 0, name##_leaf)

#define MAX_OF(name, T, A, LD, IDENT)                                                    \
    RED_LEAF(name##_leaf, T, A, LD, MAX_C, IDENT)                                        \
    RED_RUN_TILE(name, T, A, LD, MAX_C, IDENT, name##_leaf)

#define LD_BOOL(v) ((int64_t)((v) != 0))

FLOAT_SUM(sum_f32, float, float, ID)
FLOAT_SUM(sum_f64, double, double, ID)
FLOAT_SUM(sum_f16, uint16_t, float, em_cpu__h2f)
FLOAT_SUM(sum_bf16, uint16_t, float, em_bf16_to_f32)
INT_SUM(sum_i64, int64_t, ID)
INT_SUM(sum_i32, int32_t, ID)
INT_SUM(sum_u8, uint8_t, ID)
INT_SUM(sum_bool, uint8_t, LD_BOOL)

MAX_OF(max_f32, float, float, ID, -INFINITY)
MAX_OF(max_f64, double, double, ID, -INFINITY)
MAX_OF(max_f16, uint16_t, float, em_cpu__h2f, -INFINITY)
MAX_OF(max_bf16, uint16_t, float, em_bf16_to_f32, -INFINITY)
MAX_OF(max_i64, int64_t, int64_t, ID, INT64_MIN)
MAX_OF(max_i32, int32_t, int64_t, ID, INT64_MIN)
MAX_OF(max_u8, uint8_t, int64_t, ID, INT64_MIN)
MAX_OF(max_bool, uint8_t, int64_t, LD_BOOL, INT64_MIN)

/* Accumulator identities and joins, per accumulator type. */
#define ACC_FUNCS(name, A, COMB, IDENT)                                                  \
    static void name##_init(void *p, int64_t n)                                          \
    {                                                                                    \
        A *a = p;                                                                        \
        for (int64_t i = 0; i < n; i++)                                                  \
            a[i] = IDENT;                                                                \
    }                                                                                    \
    static void name##_combine(void *p, const void *q, int64_t n)                        \
    {                                                                                    \
        A *a = p;                                                                        \
        const A *b = q;                                                                  \
        for (int64_t i = 0; i < n; i++)                                                  \
            a[i] = COMB(a[i], b[i]);                                                     \
    }

ACC_FUNCS(accsum_f, float, SUM_C, 0)
ACC_FUNCS(accsum_d, double, SUM_C, 0)
ACC_FUNCS(accsum_i, int64_t, ISUM_C, 0)
ACC_FUNCS(accmax_f, float, MAX_C, -INFINITY)
ACC_FUNCS(accmax_d, double, MAX_C, -INFINITY)
ACC_FUNCS(accmax_i, int64_t, MAX_C, INT64_MIN)

#define STORE_FUNC(name, A, T, ST)                                                       \
    static void name(char *out, const void *acc, int64_t n)                              \
    {                                                                                    \
        T *o = (T *)out;                                                                 \
        const A *a = acc;                                                                \
        for (int64_t i = 0; i < n; i++)                                                  \
            o[i] = ST(a[i]);                                                             \
    }

#define ST_BOOL(v) ((uint8_t)((v) != 0))
STORE_FUNC(store_f_f32, float, float, ID)
STORE_FUNC(store_f_f16, float, uint16_t, em_cpu__f2h)
STORE_FUNC(store_f_bf16, float, uint16_t, em_f32_to_bf16)
STORE_FUNC(store_d_f64, double, double, ID)
STORE_FUNC(store_i_i64, int64_t, int64_t, ID)
STORE_FUNC(store_i_i32, int64_t, int32_t, (int32_t))
STORE_FUNC(store_i_u8, int64_t, uint8_t, (uint8_t))
STORE_FUNC(store_i_bool, int64_t, uint8_t, ST_BOOL)

#define OPS(acc, A, name, store)                                                         \
    {sizeof(A), acc##_init, name##_run, name##_tile, acc##_combine, store}

static const red_ops sum_ops[EM_DTYPE_COUNT] = {
    [EM_F32] = OPS(accsum_f, float, sum_f32, store_f_f32),
    [EM_F64] = OPS(accsum_d, double, sum_f64, store_d_f64),
    [EM_F16] = OPS(accsum_f, float, sum_f16, store_f_f16),
    [EM_BF16] = OPS(accsum_f, float, sum_bf16, store_f_bf16),
    [EM_I64] = OPS(accsum_i, int64_t, sum_i64, store_i_i64),
    [EM_I32] = OPS(accsum_i, int64_t, sum_i32, store_i_i64),
    [EM_U8] = OPS(accsum_i, int64_t, sum_u8, store_i_i64),
    [EM_BOOL] = OPS(accsum_i, int64_t, sum_bool, store_i_i64),
};

static const red_ops max_ops[EM_DTYPE_COUNT] = {
    [EM_F32] = OPS(accmax_f, float, max_f32, store_f_f32),
    [EM_F64] = OPS(accmax_d, double, max_f64, store_d_f64),
    [EM_F16] = OPS(accmax_f, float, max_f16, store_f_f16),
    [EM_BF16] = OPS(accmax_f, float, max_bf16, store_f_bf16),
    [EM_I64] = OPS(accmax_i, int64_t, max_i64, store_i_i64),
    [EM_I32] = OPS(accmax_i, int64_t, max_i32, store_i_i32),
    [EM_U8] = OPS(accmax_i, int64_t, max_u8, store_i_u8),
    [EM_BOOL] = OPS(accmax_i, int64_t, max_bool, store_i_bool),
};

/* ---- the plan: kept and reduced dims, and a counter to walk either ---------------------- */

typedef struct red_dim {
    int64_t size, stride;
} red_dim;

typedef struct red_plan {
    int nk, nr;                        /* >= 0 kept dims, >= 1 reduced dims */
    red_dim k[EM_MAX_DIMS], r[EM_MAX_DIMS];
    int64_t nout, nred;
    bool inner;                        /* the innermost dim is reduced */
    const char *in;
    int64_t elsize;
} red_plan;

/* A multi-index over dims (outer to inner) with its element offset, advanced in steps. */
typedef struct walker {
    int n;
    const red_dim *d;
    int64_t idx[EM_MAX_DIMS];
    int64_t off;
} walker;

static void walk_start(walker *w, int n, const red_dim *d, int64_t linear)
{
    w->n = n;
    w->d = d;
    w->off = 0;
    for (int i = n - 1; i >= 0; i--) {
        w->idx[i] = linear % d[i].size;
        linear /= d[i].size;
        w->off += w->idx[i] * d[i].stride;
    }
}

/* Moves k positions along the innermost dim; k must not pass the end of the row. */
static void walk_step(walker *w, int64_t k)
{
    int i = w->n - 1;
    if (i < 0)
        return;
    w->idx[i] += k;
    w->off += k * w->d[i].stride;
    while (w->idx[i] == w->d[i].size && i > 0) {
        w->off -= w->d[i].size * w->d[i].stride;
        w->idx[i] = 0;
        i--;
        w->idx[i]++;
        w->off += w->d[i].stride;
    }
}

/* Builds the plan; returns false (error set) for axes out of range. */
static bool plan_build(red_plan *pl, const em_ktensor *in, const em_attr *axes,
                       const char *op)
{
    bool red[EM_MAX_DIMS] = {false};
    for (int i = 0; i < axes->n; i++) {
        int64_t ax = axes->ints[i];
        if (ax < 0 || ax >= (in->ndim > 0 ? in->ndim : 1)) {
            em_set_error(EM_ERR_INVALID, "cpu: %s: axis %lld out of range for %d dims", op,
                         (long long)ax, in->ndim);
            return false;
        }
        if (ax < in->ndim)
            red[ax] = true;
    }
    red_dim all[EM_MAX_DIMS];
    bool flag[EM_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < in->ndim; d++) {
        if (in->shape[d] == 1)
            continue;
        if (n > 0 && flag[n - 1] == red[d] &&
            all[n - 1].stride == in->strides[d] * in->shape[d]) {
            all[n - 1].size *= in->shape[d];
            all[n - 1].stride = in->strides[d];
            continue;
        }
        all[n] = (red_dim){in->shape[d], in->strides[d]};
        flag[n++] = red[d];
    }
    pl->nk = pl->nr = 0;
    pl->nout = pl->nred = 1;
    for (int i = 0; i < n; i++) {
        if (flag[i]) {
            pl->r[pl->nr++] = all[i];
            pl->nred *= all[i].size;
        } else {
            pl->k[pl->nk++] = all[i];
            pl->nout *= all[i].size;
        }
    }
    pl->inner = n == 0 || flag[n - 1];
    if (pl->nr == 0)                   /* only size-1 axes reduced: one step of nothing */
        pl->r[pl->nr++] = (red_dim){1, 0};
    pl->in = em_cpu__data(in);
    pl->elsize = (int64_t)em_dtype_size(in->dtype);
    return true;
}

/* ---- sum and amax: the driver ----------------------------------------------------------- */

/* Reduces outputs [o0, o1) over reduced positions [r0, r1) into acc (o1 - o0 slots). */
static void reduce_block(const red_plan *pl, const red_ops *ops, int64_t o0, int64_t o1,
                         int64_t r0, int64_t r1, char *acc)
{
    int64_t es = pl->elsize, asz = (int64_t)ops->acc_size;
    ops->init(acc, o1 - o0);
    walker kw, rw;
    if (pl->inner) {
        const red_dim *ri = &pl->r[pl->nr - 1];
        walk_start(&kw, pl->nk, pl->k, o0);
        for (int64_t o = o0; o < o1; o++) {
            const char *base = pl->in + kw.off * es;
            walk_start(&rw, pl->nr, pl->r, r0);
            for (int64_t pos = r0; pos < r1;) {
                int64_t n = ri->size - rw.idx[pl->nr - 1];
                if (n > r1 - pos)
                    n = r1 - pos;
                ops->run(acc + (o - o0) * asz, base + rw.off * es, n, ri->stride);
                pos += n;
                if (pos < r1)
                    walk_step(&rw, n);
            }
            if (o + 1 < o1)
                walk_step(&kw, 1);
        }
        return;
    }
    /* Outer shape: rows of L outputs; a segment of up to SEG_W of them takes one input row
     * per reduced position (streaming the input in memory order when rows are contiguous),
     * summed ROW_BLOCK rows at a time before joining the segment's total. */
    int64_t L = pl->k[pl->nk - 1].size, sL = pl->k[pl->nk - 1].stride;
    double blk[SEG_W];                 /* aligned for any accumulator type */
    walk_start(&kw, pl->nk - 1, pl->k, o0 / L);
    for (int64_t o = o0; o < o1;) {
        int64_t c0 = o % L, w = L - c0 < o1 - o ? L - c0 : o1 - o;
        for (int64_t t = 0; t < w; t += SEG_W) {
            int64_t tw = w - t < SEG_W ? w - t : SEG_W;
            const char *base = pl->in + (kw.off + (c0 + t) * sL) * es;
            walk_start(&rw, pl->nr, pl->r, r0);
            for (int64_t pos = r0; pos < r1;) {
                int64_t nb = r1 - pos < ROW_BLOCK ? r1 - pos : ROW_BLOCK;
                ops->init(blk, tw);
                for (int64_t i = 0; i < nb; i++, pos++) {
                    ops->tile(blk, base + rw.off * es, tw, sL);
                    if (pos + 1 < r1)
                        walk_step(&rw, 1);
                }
                ops->combine(acc + (o - o0 + t) * asz, blk, tw);
            }
        }
        o += w;
        if (o < o1)
            walk_step(&kw, 1);
    }
}

typedef struct red_task {
    const red_plan *pl;
    const red_ops *ops;
    char *out;
    int64_t out_es;
    int64_t nparts;                    /* reduction split only */
    char *partials;
} red_task;

static void by_output(void *arg, int64_t b, int64_t e)
{
    const red_task *t = arg;
    double acc[SLICE];
    for (int64_t o = b; o < e; o += SLICE) {
        int64_t oe = e - o < SLICE ? e : o + SLICE;
        reduce_block(t->pl, t->ops, o, oe, 0, t->pl->nred, (char *)acc);
        t->ops->store(t->out + o * t->out_es, acc, oe - o);
    }
}

static void by_reduction(void *arg, int64_t b, int64_t e)
{
    const red_task *t = arg;
    int64_t nout = t->pl->nout, nred = t->pl->nred;
    for (int64_t p = b; p < e; p++) {
        char *part = t->partials + p * nout * (int64_t)t->ops->acc_size;
        reduce_block(t->pl, t->ops, 0, nout, p * nred / t->nparts, (p + 1) * nred / t->nparts,
                     part);
    }
}

/* Whether to split the reduced range across threads (each part reducing every output), and
 * into how many parts. Yes when there are too few outputs to share out, and in the outer
 * shape whenever the partials stay small: threads then stream disjoint row ranges instead
 * of each reading a narrow column strip of every row. */
static bool split_reduction(const red_plan *pl, int64_t threads, int64_t *nparts)
{
    bool few = pl->nout < threads * 4;
    bool outer = !pl->inner && pl->nout <= 65536;
    if (!(few || outer) || pl->nout * pl->nred < 2 * EM_CPU_GRAIN_CHEAP)
        return false;
    int64_t n = pl->nout * pl->nred / EM_CPU_GRAIN_CHEAP;   /* parts of a grain's work */
    if (n > threads * 4)
        n = threads * 4;
    if (n > pl->nred)
        n = pl->nred;
    if (n * pl->nout > (1 << 20))      /* partials stay under 8 MB */
        n = (1 << 20) / pl->nout;
    *nparts = n;
    return n >= 2;
}

static int run_reduce(void *bctx, const em_kcall *c, const char *op, const red_ops *table)
{
    int rc = em_kcall_check(c, "cpu", 1, 1, 2);
    if (rc != EM_OK)
        return rc;
    const em_ktensor *in = &c->in[0], *out = &c->out[0];
    em_dtype dt = in->dtype;
    red_plan pl;
    if (!plan_build(&pl, in, &c->attrs[0], op))
        return EM_ERR_INVALID;
    const red_ops *ops = &table[dt];
    red_task t = {&pl, ops, em_cpu__data(out), (int64_t)em_dtype_size(out->dtype), 0, NULL};
    if (in->numel == 0) {              /* sum over an empty dim: the identity */
        double acc[SLICE];
        for (int64_t o = 0; o < out->numel; o += SLICE) {
            int64_t n = out->numel - o < SLICE ? out->numel - o : SLICE;
            ops->init(acc, n);
            ops->store(t.out + o * t.out_es, acc, n);
        }
        return EM_OK;
    }
    if (pl.nout != out->numel)
        return em_set_error(EM_ERR_INVALID, "cpu: %s: output has %lld elements, expected %lld",
                            op, (long long)out->numel, (long long)pl.nout);

    int64_t threads = em_cpu__pool_threads();
    if (threads > 1 && split_reduction(&pl, threads, &t.nparts)) {
        /* small partials (a bias gradient's) live on the stack: no malloc in a training step */
        _Alignas(64) char stack[16384];
        size_t need = (size_t)(t.nparts * pl.nout) * ops->acc_size;
        t.partials = need <= sizeof stack ? stack : malloc(need);
        if (t.partials) {
            em_cpu__parallel_for(t.nparts, 1, by_reduction, &t);
            int64_t stride = pl.nout * (int64_t)ops->acc_size;
            for (int64_t p = 1; p < t.nparts; p++)          /* fixed order: deterministic */
                ops->combine(t.partials, t.partials + p * stride, pl.nout);
            ops->store(t.out, t.partials, pl.nout);
            if (t.partials != stack)
                free(t.partials);
            return EM_OK;
        }
        /* no memory for partials: reduce by output instead */
    }
    int64_t grain = EM_CPU_GRAIN_CHEAP / pl.nred;
    em_cpu__parallel_for(pl.nout, grain > 0 ? grain : 1, by_output, &t);
    return EM_OK;
}

EM_KERNEL_BIND(k_sum, run_reduce, "sum", sum_ops)
EM_KERNEL_BIND(k_amax, run_reduce, "amax", max_ops)

/* ---- argmax along one dim (contiguous input) ---------------------------------------------- */

/* A candidate (value v at index d) replaces the best (bv) when it is larger or NaN, unless the
 * best is already NaN: so the first maximum, or the first NaN, wins. */
#define ARG_BETTER(v, bv) ((bv) == (bv) && ((v) > (bv) || (v) != (v)))

/* A single long argmax splits into parts of at least this many elements. */
#define PART_MIN 16384

typedef struct argmax_ops {
    /* First best index of x[d0..d1) (stride 1). */
    int64_t (*scan)(const char *x, int64_t d0, int64_t d1);
    /* Best of the candidate indices cand[0..n) (increasing) of x. */
    int64_t (*pick)(const char *x, const int64_t *cand, int64_t n);
    /* out[j] = argmax over d < D of x[d * inner + j], for j < w. */
    void (*cols)(const char *x, int64_t D, int64_t inner, int64_t w, int64_t *out);
} argmax_ops;

#define ARGMAX_FUNCS(name, T, C, LD)                                                     \
    static int64_t name##_scan(const char *p, int64_t d0, int64_t d1)                    \
    {                                                                                    \
        const T *x = (const T *)p;                                                       \
        C bv = LD(x[d0]);                                                                \
        int64_t bi = d0;                                                                 \
        for (int64_t d = d0 + 1; d < d1 && bv == bv; d++) {                              \
            C v = LD(x[d]);                                                              \
            if (ARG_BETTER(v, bv)) {                                                     \
                bv = v;                                                                  \
                bi = d;                                                                  \
            }                                                                            \
        }                                                                                \
        return bi;                                                                       \
    }                                                                                    \
    static int64_t name##_pick(const char *p, const int64_t *cand, int64_t n)            \
    {                                                                                    \
        const T *x = (const T *)p;                                                       \
        int64_t bi = cand[0];                                                            \
        for (int64_t i = 1; i < n; i++)                                                  \
            if (ARG_BETTER(LD(x[cand[i]]), LD(x[bi])))                                   \
                bi = cand[i];                                                            \
        return bi;                                                                       \
    }                                                                                    \
    static void name##_cols(const char *p, int64_t D, int64_t inner, int64_t w,          \
                            int64_t *out)                                                \
    {                                                                                    \
        const T *x = (const T *)p;                                                       \
        C bv[TILE_W];                                                                    \
        for (int64_t j = 0; j < w; j++) {                                                \
            bv[j] = LD(x[j]);                                                            \
            out[j] = 0;                                                                  \
        }                                                                                \
        for (int64_t d = 1; d < D; d++) {                                                \
            const T *row = x + d * inner;                                                \
            for (int64_t j = 0; j < w; j++) {                                            \
                C v = LD(row[j]);                                                        \
                if (ARG_BETTER(v, bv[j])) {                                              \
                    bv[j] = v;                                                           \
                    out[j] = d;                                                          \
                }                                                                        \
            }                                                                            \
        }                                                                                \
    }

ARGMAX_FUNCS(argmax_f32, float, float, ID)
ARGMAX_FUNCS(argmax_f64, double, double, ID)
ARGMAX_FUNCS(argmax_f16, uint16_t, float, em_cpu__h2f)
ARGMAX_FUNCS(argmax_bf16, uint16_t, float, em_bf16_to_f32)
ARGMAX_FUNCS(argmax_i64, int64_t, int64_t, ID)
ARGMAX_FUNCS(argmax_i32, int32_t, int32_t, ID)
ARGMAX_FUNCS(argmax_u8, uint8_t, uint8_t, ID)

#define ARG_OPS(name) {name##_scan, name##_pick, name##_cols}
static const argmax_ops argmax_table[EM_DTYPE_COUNT] = {
    [EM_F32] = ARG_OPS(argmax_f32),   [EM_F64] = ARG_OPS(argmax_f64),
    [EM_F16] = ARG_OPS(argmax_f16),   [EM_BF16] = ARG_OPS(argmax_bf16),
    [EM_I64] = ARG_OPS(argmax_i64),   [EM_I32] = ARG_OPS(argmax_i32),
    [EM_U8] = ARG_OPS(argmax_u8),
};

typedef struct argmax_task {
    const argmax_ops *ops;
    const char *in;
    int64_t *out;
    int64_t es, D, inner, col_tiles;
    int64_t nparts;                    /* D split: one row, candidates per part */
    int64_t *cand;
} argmax_task;

/* Items are (outer row, tile of TILE_W columns). */
static void argmax_items(void *arg, int64_t b, int64_t e)
{
    const argmax_task *t = arg;
    for (int64_t it = b; it < e; it++) {
        int64_t o = it / t->col_tiles, j0 = it % t->col_tiles * TILE_W;
        int64_t w = t->inner - j0 < TILE_W ? t->inner - j0 : TILE_W;
        const char *x = t->in + (o * t->D * t->inner + j0) * t->es;
        if (t->inner == 1)
            t->out[o] = t->ops->scan(x, 0, t->D);
        else
            t->ops->cols(x, t->D, t->inner, w, t->out + o * t->inner + j0);
    }
}

static void argmax_parts(void *arg, int64_t b, int64_t e)
{
    const argmax_task *t = arg;
    for (int64_t p = b; p < e; p++)
        t->cand[p] = t->ops->scan(t->in, p * t->D / t->nparts, (p + 1) * t->D / t->nparts);
}

static int k_argmax(void *bctx, const em_kcall *c)
{
    EM_KCALL_CHECK(c, "cpu", 1, 1, 2);
    const em_ktensor *in = &c->in[0], *out = &c->out[0];
    em_dtype dt = in->dtype;
    if (dt <= EM_DTYPE_UNSPEC || dt >= EM_DTYPE_COUNT || !argmax_table[dt].scan ||
        out->dtype != EM_I64)
        return em_set_error(EM_ERR_UNSUPPORTED, "cpu: argmax: unsupported dtype");
    int64_t dim = c->attrs[0].i;
    if (dim < 0 || dim >= (in->ndim > 0 ? in->ndim : 1))
        return em_set_error(EM_ERR_INVALID, "cpu: argmax: dim %lld out of range",
                            (long long)dim);
    argmax_task t = {&argmax_table[dt], em_cpu__data(in), (int64_t *)em_cpu__data(out),
                     (int64_t)em_dtype_size(dt), 1, 1, 1, 0, NULL};
    int64_t outer = 1;
    for (int d = 0; d < in->ndim; d++) {
        if (d < dim)
            outer *= in->shape[d];
        else if (d == dim)
            t.D = in->shape[d];
        else
            t.inner *= in->shape[d];
    }
    if (t.D == 0)
        return em_set_error(EM_ERR_INVALID, "cpu: argmax: empty dim");
    t.col_tiles = (t.inner + TILE_W - 1) / TILE_W;
    int64_t threads = em_cpu__pool_threads();
    if (t.inner == 1 && outer == 1 && threads > 1 && t.D >= 2 * PART_MIN) {
        int64_t cand[256];
        t.nparts = t.D / PART_MIN < threads * 4 ? t.D / PART_MIN : threads * 4;
        if (t.nparts > 256)
            t.nparts = 256;
        t.cand = cand;
        em_cpu__parallel_for(t.nparts, 1, argmax_parts, &t);
        t.out[0] = t.ops->pick(t.in, cand, t.nparts);
        return EM_OK;
    }
    int64_t items = outer * t.col_tiles;
    int64_t per_item = t.D * (t.inner < TILE_W ? t.inner : TILE_W);
    int64_t grain = EM_CPU_GRAIN_CHEAP / per_item;
    em_cpu__parallel_for(items, grain > 0 ? grain : 1, argmax_items, &t);
    return EM_OK;
}

int em_cpu__register_reduce(em_registry *reg)
{
    /* argmax on bool is an error in PyTorch; contiguous input keeps the indexing simple. */
    static const em_kernel_decl table[] = {
        {"sum", k_sum, EM_KERNEL_STRIDED, EM_DTYPES_ALL},
        {"amax", k_amax, EM_KERNEL_STRIDED, EM_DTYPES_ALL},
        {"argmax", k_argmax, 0, EM_DTYPES_FLOAT | EM_DTYPES_INT},
    };
    return em_register_kernels(reg, "cpu", table, sizeof table / sizeof table[0]);
}
