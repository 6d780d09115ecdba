/* backends/cpu/matmul.c - batched matrix products: out[B..., M, N] = a[B..., M, K] @ b[B..., K, N].
 *
 * Float products go to Ember's GEMM (gemm.c): one product for the whole batch when b is
 * shared (stride 0 over the batch) and a's batches are stacked rows, else one per batch entry
 * (small ones split across the pool by batch, big ones each split by the GEMM itself).
 * Operands are handed over with their strides, so transposed, sliced and broadcast views cost
 * no copy; f16/bf16 are widened while packing, accumulate in f32 and round once. Integer and
 * bool matrices use a row-parallel i-k-j loop that accumulates in int64 (wrapping like
 * PyTorch) and, for bool, computes the `or` of `and`s. No Strassen.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "gemm.h"

/* One operand of one product: element (i, j) is at p + (i * rs + j * cs) * elsize. */
typedef struct mat {
    const char *p;
    int64_t rows, cols, rs, cs;
} mat;

typedef struct mm_call {
    em_dtype dt;
    int64_t M, K, N, nbatch;
    int nb;                            /* batch dims */
    int64_t bshape[EM_MAX_DIMS];
    int64_t as[EM_MAX_DIMS], bs[EM_MAX_DIMS];   /* batch strides of a and b (0: broadcast) */
    const char *a, *b;
    char *out;
    int64_t ars, acs, brs, bcs;        /* matrix strides of a and b */
    int64_t es;
} mm_call;

/* Element offsets of batch entry `bi` in a and b. */
static void batch_offsets(const mm_call *m, int64_t bi, int64_t *aoff, int64_t *boff)
{
    *aoff = *boff = 0;
    for (int d = m->nb - 1; d >= 0; d--) {
        int64_t i = bi % m->bshape[d];
        bi /= m->bshape[d];
        *aoff += i * m->as[d];
        *boff += i * m->bs[d];
    }
}

/* Right-aligns an operand's batch dims to the output's, stride 0 where it broadcasts. */
static bool batch_strides(const em_ktensor *t, const em_ktensor *out, int64_t *s)
{
    int nb = out->ndim - 2, lead = out->ndim - t->ndim;
    for (int d = 0; d < nb; d++) {
        int j = d - lead;
        if (j < 0 || t->shape[j] == 1)
            s[d] = 0;
        else if (t->shape[j] == out->shape[d])
            s[d] = t->strides[j];
        else
            return false;
    }
    return true;
}

/* ---- floats: Ember's GEMM (gemm.c) ------------------------------------------------------- */

/* a's batches are rows of one tall matrix and b is shared: then the batch is one product of
 * M * nbatch rows with row stride *rs. */
static bool can_fold(const mm_call *m, int64_t *rs)
{
    if (m->nbatch <= 1)
        return false;
    *rs = m->ars;
    int d = m->nb - 1;
    if (m->M == 1) {                   /* a lone row's stride is free: take the batch's */
        while (d >= 0 && m->bshape[d] == 1)
            d--;
        *rs = d >= 0 ? m->as[d] : m->ars;
    }
    int64_t expect = m->M * *rs;
    for (; d >= 0; d--) {
        if (m->bshape[d] == 1)
            continue;
        if (m->bs[d] != 0 || m->as[d] != expect)
            return false;
        expect *= m->bshape[d];
    }
    return true;
}

typedef struct mm_float_task {
    const mm_call *m;
    em_dtype cdt;
    char *c;                           /* the result in cdt, [nbatch, M, N] */
    size_t ces;
    const void *bias;                  /* N values of cdt, or NULL */
    bool relu;
    atomic_int rc;
} mm_float_task;

static int mm_one(mm_float_task *t, int64_t bi, int threads)
{
    const mm_call *m = t->m;
    int64_t aoff, boff;
    batch_offsets(m, bi, &aoff, &boff);
    em_gemm_args g = {
        .cdt = t->cdt, .M = m->M, .N = m->N, .K = m->K,
        .a = {m->a + aoff * m->es, m->dt, m->ars, m->acs},
        .b = {m->b + boff * m->es, m->dt, m->brs, m->bcs},
        .c = t->c + (size_t)(bi * m->M * m->N) * t->ces, .ldc = m->N,
        .bias = t->bias, .relu = t->relu,
    };
    return em_cpu__gemm(&g, threads);
}

static void mm_batches(void *arg, int64_t begin, int64_t end)
{
    mm_float_task *t = arg;
    for (int64_t bi = begin; bi < end; bi++) {
        int rc = mm_one(t, bi, 1);
        if (rc != EM_OK)
            atomic_store(&t->rc, rc);
    }
}

/* Runs the products into t->c: one folded product, a batch of small products split across
 * the pool, or big products one after another, each split across the pool. */
static int mm_run(mm_float_task *t)
{
    const mm_call *m = t->m;
    int threads = em_cpu__pool_threads();
    int64_t rs;
    if (can_fold(m, &rs)) {
        em_gemm_args g = {
            .cdt = t->cdt, .M = m->M * m->nbatch, .N = m->N, .K = m->K,
            .a = {m->a, m->dt, rs, m->acs}, .b = {m->b, m->dt, m->brs, m->bcs},
            .c = t->c, .ldc = m->N, .bias = t->bias, .relu = t->relu,
        };
        return em_cpu__gemm(&g, threads);
    }
    int64_t mnk = m->M * m->N * (m->K > 0 ? m->K : 1);
    if (m->nbatch > 1 && mnk < EM_GEMM_SERIAL_MNK) {
        int64_t grain = EM_GEMM_SERIAL_MNK / (mnk > 0 ? mnk : 1);
        em_cpu__parallel_for(m->nbatch, grain, mm_batches, t);
        return atomic_load(&t->rc);
    }
    for (int64_t bi = 0; bi < m->nbatch; bi++) {
        int rc = mm_one(t, bi, threads);
        if (rc != EM_OK)
            return rc;
    }
    return EM_OK;
}

typedef struct narrow_ctx {
    uint16_t *dst;
    const float *src;
    em_dtype dt;
} narrow_ctx;

static void narrow_range(void *arg, int64_t b, int64_t e)
{
    const narrow_ctx *n = arg;
    for (int64_t i = b; i < e; i++)
        n->dst[i] = n->dt == EM_F16 ? em_cpu__f2h(n->src[i]) : em_f32_to_bf16(n->src[i]);
}

/* A bias vector (any stride, any float dtype) as n contiguous values of the compute dtype:
 * the tensor's own memory when it already is that, else a copy in *tmp (caller frees). */
static const void *bias_values(const em_ktensor *bias, em_dtype cdt, void **tmp)
{
    *tmp = NULL;
    if (!bias)
        return NULL;
    const char *p = em_cpu__data(bias);
    int64_t n = bias->shape[0], s = bias->strides[0];
    if (bias->dtype == cdt && (s == 1 || n == 1))
        return p;
    size_t es = cdt == EM_F64 ? sizeof(double) : sizeof(float);
    char *d = malloc((size_t)(n > 0 ? n : 1) * es);
    if (!d)
        return NULL;
    for (int64_t j = 0; j < n; j++) {
        const char *x = p + j * s * (int64_t)em_dtype_size(bias->dtype);
        double v = bias->dtype == EM_F64   ? *(const double *)x
                   : bias->dtype == EM_F32 ? *(const float *)x
                   : bias->dtype == EM_F16 ? em_cpu__h2f(*(const uint16_t *)x)
                                           : em_bf16_to_f32(*(const uint16_t *)x);
        if (cdt == EM_F64)
            ((double *)d)[j] = v;
        else
            ((float *)d)[j] = (float)v;
    }
    *tmp = d;
    return d;
}

/* Float products (f16/bf16 accumulate in f32 and round once), + bias and ReLU if given. */
static int mm_float(const mm_call *m, const em_ktensor *bias, bool relu)
{
    em_dtype cdt = m->dt == EM_F64 ? EM_F64 : EM_F32;
    mm_float_task t = {.m = m, .cdt = cdt, .c = m->out, .ces = (size_t)m->es, .relu = relu};
    void *btmp = NULL, *ctmp = NULL;
    int64_t total = m->nbatch * m->M * m->N;
    t.bias = bias_values(bias, cdt, &btmp);
    if (bias && !t.bias)
        goto nomem;
    if (m->dt == EM_F16 || m->dt == EM_BF16) {
        t.ces = sizeof(float);
        t.c = ctmp = malloc((size_t)(total > 0 ? total : 1) * sizeof(float));
        if (!ctmp)
            goto nomem;
    }
    int rc = mm_run(&t);
    if (rc == EM_OK && ctmp) {
        narrow_ctx nc = {(uint16_t *)m->out, ctmp, m->dt};
        em_cpu__parallel_for(total, EM_CPU_GRAIN_CHEAP, narrow_range, &nc);
    }
    free(btmp);
    free(ctmp);
    return rc;
nomem:
    free(btmp);
    return em_set_error(EM_ERR_NOMEM, "cpu: matmul: out of memory for a %lld x %lld result",
                        (long long)m->M, (long long)m->N);
}

/* ---- integers and bool: i-k-j over output rows -------------------------------------------- */

#define MM_TILE 256

/* One output row: out[j] = sum_k a[k] * b[k, j], in int64 over tiles of MM_TILE columns so
 * that the accumulators stay in L1 while b's rows stream past. */
#define MM_ROW(name, T, ACC, FMA, ST)                                                    \
    static void name(const char *ap, int64_t acs, const char *bp, int64_t brs,           \
                     int64_t bcs, int64_t K, int64_t N, char *op)                        \
    {                                                                                    \
        const T *a = (const T *)ap, *b = (const T *)bp;                                  \
        T *o = (T *)op;                                                                  \
        ACC acc[MM_TILE];                                                                \
        for (int64_t j0 = 0; j0 < N; j0 += MM_TILE) {                                    \
            int64_t w = N - j0 < MM_TILE ? N - j0 : MM_TILE;                             \
            for (int64_t j = 0; j < w; j++)                                              \
                acc[j] = 0;                                                              \
            for (int64_t k = 0; k < K; k++) {                                            \
                ACC x = (ACC)a[k * acs];                                                 \
                if (x == 0)                                                              \
                    continue;                                                            \
                const T *br = b + k * brs + j0 * bcs;                                    \
                if (bcs == 1)                                                            \
                    for (int64_t j = 0; j < w; j++)                                      \
                        acc[j] = FMA(acc[j], x, br[j]);                                  \
                else                                                                     \
                    for (int64_t j = 0; j < w; j++)                                      \
                        acc[j] = FMA(acc[j], x, br[j * bcs]);                            \
            }                                                                            \
            for (int64_t j = 0; j < w; j++)                                              \
                o[j0 + j] = ST(acc[j]);                                                  \
        }                                                                                \
    }

#define IFMA(acc, x, y) ((acc) + (x) * (uint64_t)(y))
#define BFMA(acc, x, y) ((acc) | (uint8_t)((y) != 0))
#define ST_I64(v) ((int64_t)(v))
#define ST_I32(v) ((int32_t)(v))
#define ST_U8(v) ((uint8_t)(v))
#define ST_BOOL(v) ((uint8_t)((v) != 0))

MM_ROW(mm_row_i64, int64_t, uint64_t, IFMA, ST_I64)
MM_ROW(mm_row_i32, int32_t, uint64_t, IFMA, ST_I32)
MM_ROW(mm_row_u8, uint8_t, uint64_t, IFMA, ST_U8)
MM_ROW(mm_row_bool, uint8_t, uint8_t, BFMA, ST_BOOL)

typedef void (*mm_row_fn)(const char *a, int64_t acs, const char *b, int64_t brs, int64_t bcs,
                          int64_t K, int64_t N, char *out);

typedef struct mm_int_task {
    const mm_call *m;
    mm_row_fn row;
} mm_int_task;

static void mm_int_rows(void *arg, int64_t begin, int64_t end)
{
    const mm_int_task *t = arg;
    const mm_call *m = t->m;
    for (int64_t r = begin; r < end; r++) {
        int64_t bi = r / m->M, i = r % m->M, aoff, boff;
        batch_offsets(m, bi, &aoff, &boff);
        t->row(m->a + (aoff + i * m->ars) * m->es, m->acs, m->b + boff * m->es, m->brs,
               m->bcs, m->K, m->N, m->out + r * m->N * m->es);
    }
}

static int mm_int(const mm_call *m)
{
    mm_int_task t = {m, NULL};
    switch (m->dt) {
    case EM_I64: t.row = mm_row_i64; break;
    case EM_I32: t.row = mm_row_i32; break;
    case EM_U8: t.row = mm_row_u8; break;
    default: t.row = mm_row_bool; break;
    }
    int64_t work = m->K * m->N;
    int64_t grain = EM_CPU_GRAIN_CHEAP / (work > 0 ? work : 1);
    em_cpu__parallel_for(m->nbatch * m->M, grain > 0 ? grain : 1, mm_int_rows, &t);
    return EM_OK;
}

/* ---- the kernel ----------------------------------------------------------------------------- */

static int k_matmul(void *bctx, const em_kcall *c)
{
    EM_KCALL_CHECK(c, "cpu", 2, 1, 0);
    const em_ktensor *a = &c->in[0], *b = &c->in[1], *out = &c->out[0];
    int nd = out->ndim;
    mm_call m = {
        .dt = out->dtype,
        .M = a->shape[a->ndim - 2], .K = a->shape[a->ndim - 1], .N = b->shape[b->ndim - 1],
        .nbatch = 1, .nb = nd - 2,
        .a = em_cpu__data(a), .b = em_cpu__data(b), .out = em_cpu__data(out),
        .ars = a->strides[a->ndim - 2], .acs = a->strides[a->ndim - 1],
        .brs = b->strides[b->ndim - 2], .bcs = b->strides[b->ndim - 1],
        .es = (int64_t)em_dtype_size(out->dtype),
    };
    if (b->shape[b->ndim - 2] != m.K || out->shape[nd - 2] != m.M ||
        out->shape[nd - 1] != m.N || !batch_strides(a, out, m.as) ||
        !batch_strides(b, out, m.bs))
        return em_set_error(EM_ERR_INVALID, "cpu: matmul: shapes do not match");
    for (int d = 0; d < m.nb; d++) {
        m.bshape[d] = out->shape[d];
        m.nbatch *= out->shape[d];
    }
    if (m.K == 0 && !em_dtype_is_float(m.dt)) {    /* empty sums: zeros */
        memset(m.out, 0, (size_t)(out->numel * m.es));
        return EM_OK;
    }
    switch (m.dt) {
    case EM_F32:
    case EM_F64:
    case EM_F16:
    case EM_BF16:
        return mm_float(&m, NULL, false);
    case EM_I64:
    case EM_I32:
    case EM_U8:
    case EM_BOOL:
        return mm_int(&m);
    default:
        return em_set_error(EM_ERR_UNSUPPORTED, "cpu: matmul: unsupported dtype");
    }
}

/* linear(x, w, bias) = x @ w^T + bias as one product whose epilogue adds the bias to each
 * tile as it is stored: x (*, in) is a batch of row blocks, w^T is w read with its strides
 * swapped (no transpose copy), and the batch folds into one product when x's rows stack.
 * x: (*, in), w: (out, in), bias: (out), y: (*, out) of x's dtype. */
static int linear(const em_kcall *c, const char *op, bool relu)
{
    int rc = em_kcall_check(c, "cpu", 3, 1, 0);
    if (rc != EM_OK)
        return rc;
    const em_ktensor *x = &c->in[0], *w = &c->in[1], *bias = &c->in[2], *out = &c->out[0];
    int nd = x->ndim;
    if (nd < 1 || w->ndim != 2 || bias->ndim != 1 || w->dtype != x->dtype ||
        out->dtype != x->dtype || !em_dtype_is_float(bias->dtype) ||
        x->shape[nd - 1] != w->shape[1] || bias->shape[0] != w->shape[0])
        return em_set_error(EM_ERR_INVALID, "cpu: %s: expected x [*, in], weight [out, in] "
                            "of x's dtype and bias [out]", op);
    mm_call m = {
        .dt = x->dtype,
        .M = nd >= 2 ? x->shape[nd - 2] : 1, .K = w->shape[1], .N = w->shape[0],
        .nbatch = 1, .nb = nd >= 2 ? nd - 2 : 0,
        .a = em_cpu__data(x), .b = em_cpu__data(w), .out = em_cpu__data(out),
        .ars = nd >= 2 ? x->strides[nd - 2] : 0, .acs = x->strides[nd - 1],
        .brs = w->strides[1], .bcs = w->strides[0],
        .es = (int64_t)em_dtype_size(x->dtype),
    };
    for (int d = 0; d < m.nb; d++) {
        m.bshape[d] = x->shape[d];
        m.as[d] = x->strides[d];
        m.bs[d] = 0;
        m.nbatch *= x->shape[d];
    }
    return mm_float(&m, bias, relu);
}

static int k_linear(void *bctx, const em_kcall *c)
{
    (void)bctx;
    return linear(c, "linear", false);
}

/* linear_relu: the same product with max(., 0) applied in the same pass over each tile. */
static int k_linear_relu(void *bctx, const em_kcall *c)
{
    (void)bctx;
    return linear(c, "linear_relu", true);
}

int em_cpu__register_matmul(em_registry *reg)
{
    static const em_kernel_decl table[] = {
        {"matmul", k_matmul, EM_KERNEL_STRIDED, EM_DTYPES_ALL},
        {"linear", k_linear, EM_KERNEL_STRIDED, EM_DTYPES_FLOAT},
        {"linear_relu", k_linear_relu, EM_KERNEL_STRIDED, EM_DTYPES_FLOAT},
    };
    return em_register_kernels(reg, "cpu", table, sizeof table / sizeof table[0]);
}
