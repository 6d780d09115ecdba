/* backends/cpu/rows.c - fused cross_entropy and cross_entropy_backward over (N, C) logits.
 *
 *   forward:  loss_i = w[t_i] (lse_i - x_i[t_i]),  lse_i = m_i + log(sum_j exp(x_ij - m_i))
 *   backward: dx_ij = s_i (exp(x_ij - lse_i) - [j == t_i]),  s_i = w[t_i] g_i (/ sum of the
 *             counted weights for "mean")
 * with rows whose target is ignore_index counting 0. Each row is read once into float64 (for
 * every float dtype: the sum of exps and the log-sum-exp then carry no float32 rounding), so no
 * log_softmax tensor is ever formed. Rows split across threads; "sum" and "mean" add the
 * per-row losses afterwards in row order, so results do not depend on the thread count.
 * Contiguous inputs (the core copies strided ones). A target out of range (the public
 * em_cross_entropy checks on the host first; em_op_call does not) is an error naming it.
 */
#include <math.h>
#include <stdlib.h>

#include "cpu.h"
#include "ember/ops.h"

/* ---- rows in float64 ---------------------------------------------------------------------- */

static void row_load(double *dst, const char *src, em_dtype dt, int64_t n)
{
    switch (dt) {
    case EM_F64:
        for (int64_t j = 0; j < n; j++)
            dst[j] = ((const double *)src)[j];
        break;
    case EM_F32:
        for (int64_t j = 0; j < n; j++)
            dst[j] = ((const float *)src)[j];
        break;
    case EM_F16:
        for (int64_t j = 0; j < n; j++)
            dst[j] = em_cpu__h2f(((const uint16_t *)src)[j]);
        break;
    default: /* EM_BF16 */
        for (int64_t j = 0; j < n; j++)
            dst[j] = em_bf16_to_f32(((const uint16_t *)src)[j]);
        break;
    }
}

static void row_store(char *dst, const double *src, em_dtype dt, int64_t n)
{
    switch (dt) {
    case EM_F64:
        for (int64_t j = 0; j < n; j++)
            ((double *)dst)[j] = src[j];
        break;
    case EM_F32:
        for (int64_t j = 0; j < n; j++)
            ((float *)dst)[j] = (float)src[j];
        break;
    case EM_F16:
        for (int64_t j = 0; j < n; j++)
            ((uint16_t *)dst)[j] = em_cpu__f2h((float)src[j]);
        break;
    default: /* EM_BF16 */
        for (int64_t j = 0; j < n; j++)
            ((uint16_t *)dst)[j] = em_f32_to_bf16((float)src[j]);
        break;
    }
}

/* log(sum(exp(x))) of a row: the max first, so no exp overflows; NaN in, NaN out. */
static double row_lse(const double *x, int64_t n)
{
    double m = -INFINITY;
    for (int64_t j = 0; j < n; j++)
        m = (x[j] > m || x[j] != x[j]) ? x[j] : m;
    if (m != m || m == INFINITY || m == -INFINITY)
        return m;
    double s = 0;
    for (int64_t j = 0; j < n; j++)
        s += exp(x[j] - m);
    return m + log(s);
}

/* x := exp(x - max(x)) in place; returns the sum (softmax = x / sum). NaN in, NaN out; an
 * infinite max gives NaN, as PyTorch's softmax does. */
static double row_exp_shifted(double *x, int64_t n)
{
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < n; j++)
        m = (x[j] > m || x[j] != x[j]) ? x[j] : m;
    for (int64_t j = 0; j < n; j++) {
        x[j] = exp(x[j] - m);
        s += x[j];
    }
    return s;
}

/* ---- the shared setup ------------------------------------------------------------------------- */

typedef struct ce_job {
    const em_kcall *c;
    int64_t n, nc, ignore;
    em_dtype dt;
    size_t es;                 /* bytes per element of x */
    const int64_t *t;
    double *w;                 /* weight in float64 (nc) */
    double *loss;              /* forward: per-row losses (n) */
    const double *g;           /* backward: grad in float64 (n, or 1 for sum/mean) */
    double gscale;             /* backward: 1, or 1 / sum of counted weights for mean */
    bool none;
} ce_job;

static int ce_setup(ce_job *j, const em_kcall *c, const char *op, int nin)
{
    int rc = em_kcall_check(c, "cpu", nin, 1, 2);
    if (rc != EM_OK)
        return rc;
    const em_ktensor *x = &c->in[0];
    *j = (ce_job){.c = c, .n = x->shape[0], .nc = x->shape[1], .ignore = c->attrs[0].i,
                  .dt = x->dtype, .es = em_dtype_size(x->dtype),
                  .t = (const int64_t *)em_cpu__data(&c->in[1]),
                  .none = c->attrs[1].i == EM_REDUCTION_NONE};
    for (int64_t i = 0; i < j->n; i++)
        if (j->t[i] != j->ignore && (j->t[i] < 0 || j->t[i] >= j->nc))
            return em_set_error(EM_ERR_INVALID,
                                "cpu: %s: target %lld is out of bounds for %lld classes (at "
                                "position %lld)",
                                op, (long long)j->t[i], (long long)j->nc, (long long)i);
    j->w = malloc((size_t)(j->nc ? j->nc : 1) * sizeof *j->w);
    if (!j->w)
        return em_set_error(EM_ERR_NOMEM, "cpu: %s: out of memory", op);
    row_load(j->w, em_cpu__data(&c->in[2]), j->dt, j->nc);
    return EM_OK;
}

/* Rows per chunk: enough exps to be worth a thread. */
static int64_t ce_grain(const ce_job *j)
{
    int64_t g = EM_CPU_GRAIN_MATH / (j->nc > 0 ? j->nc : 1);
    return g > 0 ? g : 1;
}

/* A row buffer: on the stack for up to ROW_STACK classes, else malloc'd (NULL if that fails:
 * the caller poisons its rows with NaN, as a worker cannot report an error). */
#define ROW_STACK 512

static double *row_buffer(const ce_job *j, double *stack)
{
    return j->nc <= ROW_STACK ? stack : malloc((size_t)j->nc * sizeof(double));
}

static void row_buffer_free(const ce_job *j, double *row)
{
    if (j->nc > ROW_STACK)
        free(row);
}

/* ---- forward ------------------------------------------------------------------------------------ */

static void ce_forward_rows(void *ctx, int64_t begin, int64_t end)
{
    const ce_job *j = ctx;
    double stack[ROW_STACK], *row = row_buffer(j, stack);
    const char *x = em_cpu__data(&j->c->in[0]);
    for (int64_t i = begin; i < end; i++) {
        int64_t k = j->t[i];
        if (k == j->ignore || !row) {
            j->loss[i] = row ? 0 : NAN;
            continue;
        }
        row_load(row, x + (size_t)(i * j->nc) * j->es, j->dt, j->nc);
        j->loss[i] = j->w[k] * (row_lse(row, j->nc) - row[k]);
    }
    row_buffer_free(j, row);
}

static int k_cross_entropy(void *bctx, const em_kcall *c)
{
    (void)bctx;
    ce_job j;
    int rc = ce_setup(&j, c, "cross_entropy", 3);
    if (rc != EM_OK)
        return rc;
    j.loss = malloc((size_t)(j.n ? j.n : 1) * sizeof *j.loss);
    if (!j.loss) {
        free(j.w);
        return em_set_error(EM_ERR_NOMEM, "cpu: cross_entropy: out of memory");
    }
    em_cpu__parallel_for(j.n, ce_grain(&j), ce_forward_rows, &j);
    char *out = em_cpu__data(&c->out[0]);
    if (j.none) {
        row_store(out, j.loss, j.dt, j.n);
    } else {
        double sum = 0, wsum = 0;
        for (int64_t i = 0; i < j.n; i++) {
            sum += j.loss[i];
            wsum += j.t[i] == j.ignore ? 0 : j.w[j.t[i]];
        }
        double r = c->attrs[1].i == EM_REDUCTION_SUM ? sum : sum / wsum;
        row_store(out, &r, j.dt, 1);
    }
    free(j.loss);
    free(j.w);
    return EM_OK;
}

/* ---- backward ------------------------------------------------------------------------------------- */

static void ce_backward_rows(void *ctx, int64_t begin, int64_t end)
{
    const ce_job *j = ctx;
    double stack[ROW_STACK], *row = row_buffer(j, stack);
    const char *x = em_cpu__data(&j->c->in[0]);
    char *dx = em_cpu__data(&j->c->out[0]);
    for (int64_t i = begin; i < end; i++) {
        char *o = dx + (size_t)(i * j->nc) * j->es;
        int64_t k = j->t[i];
        if (!row) {
            double nan = NAN;
            for (int64_t q = 0; q < j->nc; q++)
                row_store(o + (size_t)q * j->es, &nan, j->dt, 1);
            continue;
        }
        if (k == j->ignore) {
            for (int64_t q = 0; q < j->nc; q++)
                row[q] = 0;
        } else {
            row_load(row, x + (size_t)(i * j->nc) * j->es, j->dt, j->nc);
            double sum = row_exp_shifted(row, j->nc);
            double s = j->w[k] * j->g[j->none ? i : 0] * j->gscale;
            for (int64_t q = 0; q < j->nc; q++)
                row[q] = s * (row[q] / sum - (q == k));
        }
        row_store(o, row, j->dt, j->nc);
    }
    row_buffer_free(j, row);
}

static int k_cross_entropy_backward(void *bctx, const em_kcall *c)
{
    (void)bctx;
    ce_job j;
    int rc = ce_setup(&j, c, "cross_entropy_backward", 4);
    if (rc != EM_OK)
        return rc;
    int64_t ng = j.none ? j.n : 1;
    double *g = malloc((size_t)(ng ? ng : 1) * sizeof *g);
    if (!g) {
        free(j.w);
        return em_set_error(EM_ERR_NOMEM, "cpu: cross_entropy_backward: out of memory");
    }
    row_load(g, em_cpu__data(&c->in[3]), j.dt, ng);
    j.g = g;
    j.gscale = 1;
    if (c->attrs[1].i == EM_REDUCTION_MEAN) {
        double wsum = 0;
        for (int64_t i = 0; i < j.n; i++)
            wsum += j.t[i] == j.ignore ? 0 : j.w[j.t[i]];
        j.gscale = 1 / wsum;
    }
    em_cpu__parallel_for(j.n, ce_grain(&j), ce_backward_rows, &j);
    free(g);
    free(j.w);
    return EM_OK;
}

int em_cpu__register_rows(em_registry *reg)
{
    static const em_kernel_decl table[] = {
        {"cross_entropy", k_cross_entropy, 0, EM_DTYPES_FLOAT},
        {"cross_entropy_backward", k_cross_entropy_backward, 0, EM_DTYPES_FLOAT},
    };
    return em_register_kernels(reg, "cpu", table, sizeof table / sizeof table[0]);
}
