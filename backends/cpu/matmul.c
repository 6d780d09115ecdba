/* backends/cpu/matmul.c - batched matrix products: out[B..., M, N] = a[B..., M, K] @ b[B..., K, N].
 *
 * f32 and f64 go to OpenBLAS (cblas_sgemm/dgemm), one call per batch entry, or a single call
 * for the whole batch when b is shared (stride 0 over the batch) and a's batches are stacked
 * rows. Operands are passed as BLAS sees them: row-major, or transposed when stride[-2] is 1,
 * with the real leading dimension, so em_t() and em_transpose() views cost no copy; only
 * layouts BLAS cannot express (broadcast rows, doubly strided) are packed into a temporary.
 * f16/bf16 widen to f32 per batch entry, multiply with sgemm and round once. Integer and
 * bool matrices use a row-parallel i-k-j loop that accumulates in int64 (wrapping like
 * PyTorch) and, for bool, computes the `or` of `and`s. No Strassen, no own float GEMM.
 */
#include <cblas.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

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

/* ---- BLAS (f32, f64, and f16/bf16 through f32) -------------------------------------------- */

/* How BLAS can read a matrix: row-major (NoTrans) with leading dimension rs, or as the
 * transpose of a row-major matrix with leading dimension cs. False: it must be packed. */
static bool blas_layout(const mat *x, enum CBLAS_TRANSPOSE *tr, int64_t *ld)
{
    int64_t r = x->rows, c = x->cols;
    if ((x->cs == 1 || c == 1) && (r == 1 || x->rs >= (c > 1 ? c : 1))) {
        *tr = CblasNoTrans;
        *ld = r == 1 ? (c > 1 ? c : 1) : x->rs;
        return *ld <= INT_MAX;
    }
    if ((x->rs == 1 || r == 1) && (c == 1 || x->cs >= (r > 1 ? r : 1))) {
        *tr = CblasTrans;
        *ld = c == 1 ? (r > 1 ? r : 1) : x->cs;
        return *ld <= INT_MAX;
    }
    return false;
}

/* Copies a strided matrix of `es`-byte elements into a dense row-major one. */
static void pack(char *dst, const mat *x, int64_t es)
{
    for (int64_t i = 0; i < x->rows; i++)
        for (int64_t j = 0; j < x->cols; j++)
            memcpy(dst + (i * x->cols + j) * es, x->p + (i * x->rs + j * x->cs) * es,
                   (size_t)es);
}

static void gemm(em_dtype dt, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int64_t M,
                 int64_t N, int64_t K, const void *a, int64_t lda, const void *b, int64_t ldb,
                 void *c, int64_t ldc)
{
    if (dt == EM_F64)
        cblas_dgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, 1.0, a, (int)lda, b,
                    (int)ldb, 0.0, c, (int)ldc);
    else
        cblas_sgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, 1.0f, a, (int)lda, b,
                    (int)ldb, 0.0f, c, (int)ldc);
}

/* a's batches are rows of one tall matrix and b is shared: one GEMM of M * nbatch rows. */
static bool can_fold(const mm_call *m, enum CBLAS_TRANSPOSE ta, int64_t lda)
{
    if (m->nbatch <= 1 || ta != CblasNoTrans || m->M * m->nbatch > INT_MAX)
        return false;
    int64_t expect = m->M * lda;
    for (int d = m->nb - 1; d >= 0; d--) {
        if (m->bshape[d] == 1)
            continue;
        if (m->bs[d] != 0 || m->as[d] != expect)
            return false;
        expect *= m->bshape[d];
    }
    return true;
}

/* OpenBLAS's single-thread cut-off for GEMM (SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD
 * in its interface/gemm.c): products this small never touch its thread pool. */
#define SMALL_GEMM (64 * 64 * 64)

typedef struct gemm_task {
    const mm_call *m;
    enum CBLAS_TRANSPOSE ta, tb;
    int64_t lda, ldb;
} gemm_task;

static void gemm_batches(void *arg, int64_t begin, int64_t end)
{
    const gemm_task *t = arg;
    const mm_call *m = t->m;
    for (int64_t bi = begin; bi < end; bi++) {
        int64_t aoff, boff;
        batch_offsets(m, bi, &aoff, &boff);
        gemm(m->dt, t->ta, t->tb, m->M, m->N, m->K, m->a + aoff * m->es, t->lda,
             m->b + boff * m->es, t->ldb, m->out + bi * m->M * m->N * m->es, m->N);
    }
}

static int mm_blas(const mm_call *m)
{
    int64_t M = m->M, K = m->K, N = m->N, es = m->es;
    mat A = {m->a, M, K, m->ars, m->acs}, B = {m->b, K, N, m->brs, m->bcs};
    enum CBLAS_TRANSPOSE ta, tb;
    int64_t lda, ldb;
    char *apack = NULL, *bpack = NULL;
    if (!blas_layout(&A, &ta, &lda)) {
        apack = malloc((size_t)(M * K * es));
        if (!apack)
            goto nomem;
        ta = CblasNoTrans;
        lda = K;
    }
    if (!blas_layout(&B, &tb, &ldb)) {
        bpack = malloc((size_t)(K * N * es));
        if (!bpack)
            goto nomem;
        tb = CblasNoTrans;
        ldb = N;
    }
    if (!apack && !bpack && can_fold(m, ta, lda)) {
        gemm(m->dt, ta, tb, M * m->nbatch, N, K, m->a, lda, m->b, ldb, m->out, N);
        return EM_OK;
    }
    if (!apack && !bpack) {
        /* OpenBLAS runs products of at most SMALL_GEMM multiply-adds on the calling thread,
         * so a batch of them is split across the pool; bigger ones use OpenBLAS's threads. */
        gemm_task t = {m, ta, tb, lda, ldb};
        int64_t mnk = M * N * K;
        int64_t grain = mnk <= SMALL_GEMM ? (4 * SMALL_GEMM) / mnk : m->nbatch;
        em_cpu__parallel_for(m->nbatch, grain > 0 ? grain : 1, gemm_batches, &t);
        return EM_OK;
    }
    for (int64_t bi = 0; bi < m->nbatch; bi++) {
        int64_t aoff, boff;
        batch_offsets(m, bi, &aoff, &boff);
        A.p = m->a + aoff * es;
        B.p = m->b + boff * es;
        if (apack)
            pack(apack, &A, es);
        if (bpack)
            pack(bpack, &B, es);
        gemm(m->dt, ta, tb, M, N, K, apack ? apack : A.p, lda, bpack ? bpack : B.p, ldb,
             m->out + bi * M * N * es, N);
    }
    free(apack);
    free(bpack);
    return EM_OK;
nomem:
    free(apack);
    free(bpack);
    return em_set_error(EM_ERR_NOMEM, "cpu: matmul: out of memory packing an operand");
}

/* Half-precision operand to dense f32, rows split across threads for big matrices. */
typedef struct widen_ctx {
    float *dst;
    const mat *x;
    em_dtype dt;
} widen_ctx;

static void widen_rows(void *arg, int64_t b, int64_t e)
{
    const widen_ctx *w = arg;
    const uint16_t *src = (const uint16_t *)w->x->p;
    for (int64_t i = b; i < e; i++) {
        float *d = w->dst + i * w->x->cols;
        const uint16_t *s = src + i * w->x->rs;
        for (int64_t j = 0; j < w->x->cols; j++)
            d[j] = w->dt == EM_F16 ? em_cpu__h2f(s[j * w->x->cs])
                                   : em_bf16_to_f32(s[j * w->x->cs]);
    }
}

static void widen(float *dst, const mat *x, em_dtype dt)
{
    widen_ctx w = {dst, x, dt};
    int64_t grain = EM_CPU_GRAIN_CHEAP / (x->cols > 0 ? x->cols : 1);
    em_cpu__parallel_for(x->rows, grain > 0 ? grain : 1, widen_rows, &w);
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

static int mm_half(const mm_call *m)
{
    int64_t M = m->M, K = m->K, N = m->N;
    float *fa = malloc((size_t)(M * K + K * N + M * N) * sizeof(float));
    if (!fa)
        return em_set_error(EM_ERR_NOMEM, "cpu: matmul: out of memory widening to f32");
    float *fb = fa + M * K, *fc = fb + K * N;
    const char *last_b = NULL;
    for (int64_t bi = 0; bi < m->nbatch; bi++) {
        int64_t aoff, boff;
        batch_offsets(m, bi, &aoff, &boff);
        mat A = {m->a + aoff * 2, M, K, m->ars, m->acs};
        mat B = {m->b + boff * 2, K, N, m->brs, m->bcs};
        widen(fa, &A, m->dt);
        if (B.p != last_b)             /* a shared b is widened once */
            widen(fb, &B, m->dt);
        last_b = B.p;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f,
                    fa, (int)(K > 0 ? K : 1), fb, (int)N, 0.0f, fc, (int)N);
        narrow_ctx nc = {(uint16_t *)m->out + bi * M * N, fc, m->dt};
        em_cpu__parallel_for(M * N, EM_CPU_GRAIN_CHEAP, narrow_range, &nc);
    }
    free(fa);
    return EM_OK;
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
    (void)bctx;
    int rc = em_cpu__check_call(c, "matmul", 2, 1, 0);
    if (rc != EM_OK)
        return rc;
    const em_ktensor *a = &c->in[0], *b = &c->in[1], *out = &c->out[0];
    int nd = out->ndim;
    if (nd < 2 || a->ndim < 2 || b->ndim < 2 || a->ndim > nd || b->ndim > nd ||
        a->dtype != out->dtype || b->dtype != out->dtype)
        return em_set_error(EM_ERR_INVALID, "cpu: matmul: expected a [B..., M, K] and b "
                            "[B..., K, N] of the output's dtype");
    mm_call m = {
        .dt = out->dtype,
        .M = a->shape[a->ndim - 2], .K = a->shape[a->ndim - 1], .N = b->shape[b->ndim - 1],
        .nbatch = 1, .nb = nd - 2,
        .a = em_cpu__data(a), .b = em_cpu__data(b), .out = em_cpu__data(out),
        .ars = a->strides[a->ndim - 2], .acs = a->strides[a->ndim - 1],
        .brs = b->strides[b->ndim - 2], .bcs = b->strides[b->ndim - 1],
        .es = (int64_t)em_cpu__elsize(out->dtype),
    };
    if (b->shape[b->ndim - 2] != m.K || out->shape[nd - 2] != m.M ||
        out->shape[nd - 1] != m.N || !batch_strides(a, out, m.as) ||
        !batch_strides(b, out, m.bs))
        return em_set_error(EM_ERR_INVALID, "cpu: matmul: shapes do not match");
    for (int d = 0; d < m.nb; d++) {
        m.bshape[d] = out->shape[d];
        m.nbatch *= out->shape[d];
    }
    if (m.K == 0) {                    /* empty sums: zeros */
        memset(m.out, 0, (size_t)(out->numel * m.es));
        return EM_OK;
    }
    switch (m.dt) {
    case EM_F32:
    case EM_F64:
    case EM_F16:
    case EM_BF16:
        if (m.M > INT_MAX || m.N > INT_MAX || m.K > INT_MAX)
            return em_set_error(EM_ERR_INVALID, "cpu: matmul: a dim exceeds BLAS's int");
        return m.dt == EM_F32 || m.dt == EM_F64 ? mm_blas(&m) : mm_half(&m);
    case EM_I64:
    case EM_I32:
    case EM_U8:
    case EM_BOOL:
        return mm_int(&m);
    default:
        return em_set_error(EM_ERR_UNSUPPORTED, "cpu: matmul: unsupported dtype");
    }
}

int em_cpu__register_matmul(em_registry *reg)
{
    int rc = em_register_kernel(reg, "cpu", "matmul", k_matmul, EM_KERNEL_STRIDED,
                                EM_DTYPES_ALL);
    return rc < 0 ? rc : EM_OK;
}
