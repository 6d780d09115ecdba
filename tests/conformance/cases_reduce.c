/* tests/conformance/cases_reduce.c - reductions (sum, mean, amax, argmax) and the softmax
 * composites (softmax, log_softmax).
 *
 * Axes lists of one or several dims, negative dims, keepdim, all dims, 0-dim inputs,
 * zero-size inputs (PyTorch: a sum over nothing is 0, a mean is NaN, amax/argmax of an
 * empty output are empty), non-contiguous inputs, and reductions large enough to be split
 * across threads both along and across rows. NaN propagates through amax and counts as the
 * maximum for argmax.
 */
#include <math.h>
#include <string.h>

#include "conformance.h"

/* ---- references ----------------------------------------------------------------------------- */

/* The reduced axes of case c over an input of rank nd, as a mask. */
static unsigned axes_mask(const cf_case *c, int nd)
{
    if (c->p.ndims == 0)
        return nd ? (1u << nd) - 1 : 0;
    unsigned m = 0;
    for (int i = 0; i < c->p.ndims; i++)
        m |= 1u << (c->p.dims[i] < 0 ? c->p.dims[i] + nd : c->p.dims[i]);
    return m;
}

enum { R_SUM, R_MEAN, R_AMAX };

static bool reduce(const cf_case *c, const cf_arr *a, cf_arr *out, int kind)
{
    unsigned m = axes_mask(c, a->ndim);
    int nd = 0;
    int64_t shape[EM_MAX_DIMS];
    for (int d = 0; d < a->ndim; d++) {
        if (!(m & (1u << d)))
            shape[nd++] = a->shape[d];
        else if (c->p.keepdim)
            shape[nd++] = 1;
    }
    if (!cf_arr_alloc(out, nd, shape))
        return false;
    int64_t count = 1;
    for (int d = 0; d < a->ndim; d++)
        if (m & (1u << d))
            count *= a->shape[d];
    for (int64_t k = 0; k < out->n; k++)
        out->v[k] = kind == R_AMAX ? -INFINITY : 0.0;
    for (int64_t k = 0; k < a->n; k++) {
        int64_t r = k, o = 0, mul = 1;
        for (int d = a->ndim - 1; d >= 0; d--) {
            int64_t i = r % a->shape[d];
            r /= a->shape[d];
            if (!(m & (1u << d))) {
                o += i * mul;
                mul *= a->shape[d];
            }
        }
        double v = a->v[k];
        if (kind == R_AMAX)
            out->v[o] = isnan(v) || isnan(out->v[o]) ? NAN : v > out->v[o] ? v : out->v[o];
        else
            out->v[o] += v;
    }
    if (kind == R_MEAN)
        for (int64_t k = 0; k < out->n; k++)
            out->v[k] /= (double)count;   /* 0 / 0 = NaN, as in PyTorch */
    return true;
}

static bool ref_sum(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    return reduce(c, &in[0], out, R_SUM);
}
static bool ref_mean(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    return reduce(c, &in[0], out, R_MEAN);
}
static bool ref_amax(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    return reduce(c, &in[0], out, R_AMAX);
}

/* Strides of the element walk along `dim`: outer x size x inner. */
static void split(const cf_arr *a, int dim, int64_t *outer, int64_t *size, int64_t *inner)
{
    *outer = *inner = 1;
    *size = a->ndim ? a->shape[dim] : 1;
    for (int d = 0; d < dim; d++)
        *outer *= a->shape[d];
    for (int d = dim + 1; d < a->ndim; d++)
        *inner *= a->shape[d];
}

static int norm_dim(int dim, int nd)
{
    return nd == 0 ? 0 : dim < 0 ? dim + nd : dim;
}

static bool ref_argmax(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    const cf_arr *a = &in[0];
    int dim = norm_dim(c->p.dim, a->ndim);
    int nd = 0;
    int64_t shape[EM_MAX_DIMS], outer, size, inner;
    for (int d = 0; d < a->ndim; d++)
        if (d != dim || c->p.keepdim)
            shape[nd++] = d == dim ? 1 : a->shape[d];
    if (!cf_arr_alloc(out, nd, shape))
        return false;
    split(a, dim, &outer, &size, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t best = 0;
            double bv = a->v[o * size * inner + i];
            for (int64_t j = 1; j < size && !isnan(bv); j++) {
                double v = a->v[(o * size + j) * inner + i];
                if (isnan(v) || v > bv) {
                    bv = v;
                    best = j;
                }
            }
            out->v[o * inner + i] = (double)best;
        }
    return true;
}

static bool softmax_like(const cf_case *c, const cf_arr *a, cf_arr *out, bool log_)
{
    if (!cf_arr_alloc(out, a->ndim, a->shape))
        return false;
    int64_t outer, size, inner;
    split(a, norm_dim(c->p.dim, a->ndim), &outer, &size, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const double *x = a->v + o * size * inner + i;
            double *y = out->v + o * size * inner + i;
            double mx = -INFINITY, s = 0;
            for (int64_t j = 0; j < size; j++)
                mx = x[j * inner] > mx ? x[j * inner] : mx;
            for (int64_t j = 0; j < size; j++)
                s += exp(x[j * inner] - mx);
            for (int64_t j = 0; j < size; j++)
                y[j * inner] = log_ ? x[j * inner] - mx - log(s) : exp(x[j * inner] - mx) / s;
        }
    return true;
}

static bool ref_softmax(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    return softmax_like(c, &in[0], out, false);
}
static bool ref_log_softmax(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    return softmax_like(c, &in[0], out, true);
}

/* ---- calls ------------------------------------------------------------------------------------ */

static em_tensor *call_sum(const cf_case *c, em_tensor *const *in)
{
    return em_sum(in[0], c->p.ndims, c->p.dims, c->p.keepdim);
}
static em_tensor *call_mean(const cf_case *c, em_tensor *const *in)
{
    return em_mean(in[0], c->p.ndims, c->p.dims, c->p.keepdim);
}
static em_tensor *call_amax(const cf_case *c, em_tensor *const *in)
{
    return em_amax(in[0], c->p.ndims, c->p.dims, c->p.keepdim);
}
static em_tensor *call_argmax(const cf_case *c, em_tensor *const *in)
{
    return em_argmax(in[0], c->p.dim, c->p.keepdim);
}
static em_tensor *call_softmax(const cf_case *c, em_tensor *const *in)
{
    return em_softmax(in[0], c->p.dim);
}
static em_tensor *call_log_softmax(const cf_case *c, em_tensor *const *in)
{
    return em_log_softmax(in[0], c->p.dim);
}

#define NUMERIC (EM_DTYPES_FLOAT | EM_DTYPES_INT)
#define DOM {CF_UNIFORM, -1, 1, -10, 10}
#define ACC (CF_GRAD | CF_ACCUM)

enum { OP_SUM, OP_MEAN, OP_AMAX, OP_ARGMAX, OP_SOFTMAX, OP_LOG_SOFTMAX };

static const cf_op reduce_ops[] = {
    {"sum", 0, 0, call_sum, 0, 0, ref_sum, EM_DTYPES_ALL, ACC, CF_OUT_SUM, {DOM}},
    {"mean", 0, 0, call_mean, 0, 0, ref_mean, EM_DTYPES_FLOAT, ACC, CF_OUT_PROMOTE, {DOM}},
    {"amax", 0, 0, call_amax, 0, 0, ref_amax, EM_DTYPES_ALL, CF_GRAD, CF_OUT_PROMOTE, {DOM}},
    {"argmax", 0, 0, call_argmax, 0, 0, ref_argmax, NUMERIC, 0, CF_OUT_I64, {DOM}},
    {"softmax", 0, 0, call_softmax, 0, 0, ref_softmax, EM_DTYPES_FLOAT, ACC, CF_OUT_PROMOTE,
     {{CF_UNIFORM, -4, 4, -4, 4}}},
    {"log_softmax", 0, 0, call_log_softmax, 0, 0, ref_log_softmax, EM_DTYPES_FLOAT, ACC,
     CF_OUT_PROMOTE, {{CF_UNIFORM, -4, 4, -4, 4}}},
};

#define IN(nd, ...) {.ndim = nd, .shape = {__VA_ARGS__}}
#define IN0 {.ndim = 0}
#define INL(nd, lay, ...) {.ndim = nd, .shape = {__VA_ARGS__}, .layout = lay}

/* For sum, mean and amax: an axes list. */
typedef struct axes_case {
    const char *label;
    cf_in in;
    int ndims;
    int dims[3];
    bool keepdim;
    unsigned ops;               /* bit per op: which of sum/mean/amax take it */
    uint32_t dtypes;
} axes_case;

#define SMA ((1u << OP_SUM) | (1u << OP_MEAN) | (1u << OP_AMAX))
#define SM ((1u << OP_SUM) | (1u << OP_MEAN))

static const cf_dom with_nan = {CF_WITH_NAN, -1, 1, -10, 10};

static const axes_case axes_cases[] = {
    {"dim 1", IN(3, 3, 4, 5), 1, {1}, false, SMA, 0},
    {"dims 0 and 2, keepdim", IN(3, 3, 4, 5), 2, {0, 2}, true, SMA, 0},
    {"all dims", IN(3, 3, 4, 5), 0, {0}, false, SMA, 0},
    {"dim -1", IN(2, 4, 5), 1, {-1}, false, SMA, 0},
    {"0-dim", IN0, 0, {0}, false, SMA, 0},
    {"single element", IN(2, 1, 1), 1, {0}, true, SMA, 0},
    {"over a zero-size dim", IN(2, 3, 0), 1, {1}, false, SM, 0},
    {"zero-size, other dim", IN(2, 0, 3), 1, {1}, false, SMA, 0},
    {"transposed, dim 0", INL(2, CF_T, 5, 4), 1, {0}, false, SMA, 0},
    {"strided, dim 1", INL(2, CF_STEP, 3, 6), 1, {1}, false, SMA, 0},
    {"permuted, dims 0 and 1", INL(3, CF_PERM, 2, 3, 4), 2, {0, 1}, false, SMA, 0},
    {"large, rows", IN(2, 64, 1000), 1, {1}, false, SMA, 0},
    {"large, columns", IN(2, 1000, 64), 1, {0}, false, SMA, 0},
    {"large, all", IN(2, 300, 301), 0, {0}, false, SMA, 0},
    {"with NaN", {.ndim = 2, .shape = {4, 6}, .dom = &with_nan}, 1, {1}, false,
     1u << OP_AMAX, EM_DTYPES_FLOAT},
};

/* For argmax, softmax and log_softmax: one dim. */
typedef struct dim_case {
    const char *label;
    cf_in in;
    int dim;
    bool keepdim;
    unsigned ops;
    uint32_t dtypes;
    /* log_softmax in float16/bfloat16 over a long dim: its gradient g - exp(y) sum(g) is
     * compared with the CPU's in the same dtype, and a one-ulp difference in y (a fused kernel
     * rounds once, the CPU's composite at every step) moves it by exp(y) |sum(g)| 2^-8. Both
     * are that far from float64 (bfloat16 over 1000: up to 0.017 fused, 0.027 composite). */
    double lsm_lowp_atol;
} dim_case;

#define AS ((1u << OP_ARGMAX) | (1u << OP_SOFTMAX) | (1u << OP_LOG_SOFTMAX))

static const dim_case dim_cases[] = {
    {"dim 1", IN(2, 3, 5), 1, false, AS, 0, 0},
    {"dim 0, keepdim", IN(2, 3, 5), 0, true, AS, 0, 0},
    {"3-d, dim 1", IN(3, 2, 3, 4), 1, false, AS, 0, 0},
    {"dim -1", IN(3, 2, 3, 4), -1, false, AS, 0, 0},
    {"vector", IN(1, 7), 0, false, AS, 0, 0},
    {"0-dim", IN0, 0, false, AS, 0, 0},
    {"zero-size, other dim", IN(2, 0, 5), 1, false, AS, 0, 0},
    {"transposed", INL(2, CF_T, 5, 4), 1, false, AS, 0, 0},
    {"strided", INL(2, CF_STEP, 3, 6), 1, false, AS, 0, 0},
    {"large", IN(2, 64, 1000), 1, false, AS, 0, 0.03},
    {"large, dim 0", IN(2, 1000, 64), 0, false, AS, 0, 0.03},
    {"long rows", IN(2, 4, 3000), 1, false, AS, 0, 0},
    {"3-d, dim 1, inner 12", IN(3, 2, 5, 12), 1, false, AS, 0, 0},
    {"with NaN", {.ndim = 2, .shape = {4, 6}, .dom = &with_nan}, 1, false, 1u << OP_ARGMAX,
     EM_DTYPES_FLOAT, 0},
};

void cf_family_reduce(cf_list *l)
{
    for (int o = OP_SUM; o <= OP_AMAX; o++)
        for (size_t s = 0; s < sizeof axes_cases / sizeof axes_cases[0]; s++) {
            const axes_case *a = &axes_cases[s];
            if (!(a->ops & (1u << o)))
                continue;
            cf_case c = {.op = &reduce_ops[o], .nin = 1, .dtypes = a->dtypes,
                         .flags = a->in.dom == &with_nan ? CF_NO_GRAD : 0};
            c.in[0] = a->in;
            c.p.ndims = a->ndims;
            memcpy(c.p.dims, a->dims, sizeof a->dims);
            c.p.keepdim = a->keepdim;
            cf_label(&c, "%s", a->label);
            cf_add(l, &c);
        }
    for (int o = OP_ARGMAX; o <= OP_LOG_SOFTMAX; o++)
        for (size_t s = 0; s < sizeof dim_cases / sizeof dim_cases[0]; s++) {
            const dim_case *a = &dim_cases[s];
            if (!(a->ops & (1u << o)))
                continue;
            cf_case c = {.op = &reduce_ops[o], .nin = 1, .dtypes = a->dtypes,
                         .flags = a->in.dom == &with_nan ? CF_NO_GRAD : 0,
                         .lowp_atol = o == OP_LOG_SOFTMAX ? a->lsm_lowp_atol : 0};
            c.in[0] = a->in;
            c.p.dim = a->dim;
            c.p.keepdim = a->keepdim;
            cf_label(&c, "%s", a->label);
            cf_add(l, &c);
        }
}
