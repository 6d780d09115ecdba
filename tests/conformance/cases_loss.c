/* tests/conformance/cases_loss.c - cross_entropy (em_cross_entropy: the op a backend may fuse)
 * and its backward op cross_entropy_backward, checked directly as well as through gradients.
 *
 * Every reduction, with and without class weights, with ignored targets (ignore_index set to
 * a class that the drawn targets hit, so some rows count 0 and the mean skips them), a
 * transposed input, an empty batch (mean over nothing is NaN, sum 0), the unbatched form, and
 * shapes of a training step (256 x 10), of many classes (8 x 1000) and of a few long rows
 * (3000 classes).
 * Case parameters: p.dim the reduction, p.scalar the ignore_index, p.keepdim "weighted" (the
 * weights 0.5 + 0.25 c, made by the call and the reference alike).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"

static double class_weight(int64_t c) { return 0.5 + 0.25 * (double)c; }

static bool ref_cross_entropy(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    const cf_arr *x = &in[0], *t = &in[1];
    bool batched = x->ndim == 2;
    int64_t n = batched ? x->shape[0] : 1, nc = x->shape[batched ? 1 : 0];
    int64_t ignore = (int64_t)c->p.scalar;
    bool none = c->p.dim == EM_REDUCTION_NONE;
    if (!cf_arr_alloc(out, none && batched ? 1 : 0, &n))
        return false;
    double sum = 0, wsum = 0;
    for (int64_t i = 0; i < n; i++) {
        const double *row = x->v + i * nc;
        int64_t k = (int64_t)t->v[i];
        double l = 0;
        if (k != ignore) {
            double mx = -INFINITY, s = 0, w = c->p.keepdim ? class_weight(k) : 1.0;
            for (int64_t j = 0; j < nc; j++)
                mx = row[j] > mx ? row[j] : mx;
            for (int64_t j = 0; j < nc; j++)
                s += exp(row[j] - mx);
            l = w * (mx + log(s) - row[k]);
            wsum += w;
        }
        if (none)
            out->v[i] = l;
        sum += l;
    }
    if (!none)
        out->v[0] = c->p.dim == EM_REDUCTION_SUM ? sum : sum / wsum;
    return true;
}

/* The case's weights on x's device, or NULL when unweighted (*ok false on failure). */
static em_tensor *case_weight(const cf_case *c, em_tensor *x, bool *ok)
{
    *ok = true;
    if (!c->p.keepdim)
        return NULL;
    int64_t nc = em_shape(x)[em_ndim(x) - 1];
    double *v = malloc((size_t)nc * sizeof *v);
    em_tensor *w64 = NULL, *w = NULL;
    if (v) {
        for (int64_t k = 0; k < nc; k++)
            v[k] = class_weight(k);
        w64 = em_tensor_from_data(v, EM_F64, 1, &nc, NULL);
        w = w64 ? em_to(w64, em_device_of(x)) : NULL;
    }
    free(v);
    em_release(w64);
    *ok = w != NULL;
    return w;
}

static em_tensor *call_cross_entropy(const cf_case *c, em_tensor *const *in)
{
    bool ok;
    em_tensor *w = case_weight(c, in[0], &ok);
    em_tensor *r = ok ? em_cross_entropy(in[0], in[1], w, (int64_t)c->p.scalar,
                                         (em_reduction)c->p.dim)
                      : NULL;
    em_release(w);
    return r;
}

/* The backward op directly (what a fused kernel must match): inputs x, target, grad. */
static em_tensor *call_cross_entropy_backward(const cf_case *c, em_tensor *const *in)
{
    bool ok;
    em_tensor *w = case_weight(c, in[0], &ok), *wc = NULL;
    if (!ok)
        return NULL;
    if (!w) {
        int64_t nc = em_shape(in[0])[1];
        w = em_ones(1, &nc, &(em_opts){.dtype = em_dtype_of(in[0]),
                                      .device = em_device_of(in[0])});
    }
    wc = w ? em_to_dtype(w, em_dtype_of(in[0])) : NULL;
    em_attr at[2] = {{0}, {0}};
    at[0].i = (int64_t)c->p.scalar;
    at[1].i = c->p.dim;
    em_tensor *args[4] = {in[0], in[1], wc, in[2]};
    em_tensor *r = wc ? em_op_call("cross_entropy_backward", 4, args, 2, at) : NULL;
    em_release(w);
    em_release(wc);
    return r;
}

static bool ref_cross_entropy_backward(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    const cf_arr *x = &in[0], *t = &in[1], *g = &in[2];
    int64_t n = x->shape[0], nc = x->shape[1];
    int64_t ignore = (int64_t)c->p.scalar;
    if (!cf_arr_alloc(out, 2, x->shape))
        return false;
    double wsum = 0;
    for (int64_t i = 0; i < n; i++)
        if ((int64_t)t->v[i] != ignore)
            wsum += c->p.keepdim ? class_weight((int64_t)t->v[i]) : 1.0;
    for (int64_t i = 0; i < n; i++) {
        const double *row = x->v + i * nc;
        double *o = out->v + i * nc;
        int64_t k = (int64_t)t->v[i];
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < nc; j++)
            mx = row[j] > mx ? row[j] : mx;
        for (int64_t j = 0; j < nc; j++)
            sum += exp(row[j] - mx);
        double s = k == ignore ? 0 : (c->p.keepdim ? class_weight(k) : 1.0) *
                                         g->v[c->p.dim == EM_REDUCTION_NONE ? i : 0];
        if (c->p.dim == EM_REDUCTION_MEAN)
            s /= wsum;
        for (int64_t j = 0; j < nc; j++)
            o[j] = k == ignore ? 0 : s * (exp(row[j] - mx) / sum - (j == k));
    }
    return true;
}

static const cf_op cross_entropy_op = {"cross_entropy", 0, 0, call_cross_entropy, 0, 0,
                                       ref_cross_entropy, EM_DTYPES_FLOAT, CF_GRAD | CF_ACCUM,
                                       CF_OUT_FIRST, {{CF_UNIFORM, -4, 4, -4, 4}}};

static const cf_op cross_entropy_backward_op = {
    "cross_entropy_backward", 0, 0, call_cross_entropy_backward, 0, 0,
    ref_cross_entropy_backward, EM_DTYPES_FLOAT, CF_ACCUM, CF_OUT_FIRST,
    {{CF_UNIFORM, -4, 4, -4, 4}, {CF_UNIFORM, -2, 2, -2, 2}}};

typedef struct ce_case {
    const char *label;
    cf_in x, t;
    em_reduction red;
    int64_t ignore;
    bool weighted;
} ce_case;

static const cf_dom cls3 = {CF_INDEX, 0, 0, 0, 3}, cls5 = {CF_INDEX, 0, 0, 0, 5},
                    cls10 = {CF_INDEX, 0, 0, 0, 10}, cls1000 = {CF_INDEX, 0, 0, 0, 1000},
                    cls3000 = {CF_INDEX, 0, 0, 0, 3000};
#define X(nd, ...) {.ndim = nd, .shape = {__VA_ARGS__}}
#define T(d_, nd, ...) {.ndim = nd, .shape = {__VA_ARGS__}, .dtype = EM_I64, .dom = &d_}

#define NONE EM_REDUCTION_NONE
#define MEAN EM_REDUCTION_MEAN
#define SUM EM_REDUCTION_SUM

static const ce_case ce_cases[] = {
    {"none", X(2, 4, 5), T(cls5, 1, 4), NONE, -100, false},
    {"mean", X(2, 4, 5), T(cls5, 1, 4), MEAN, -100, false},
    {"sum", X(2, 4, 5), T(cls5, 1, 4), SUM, -100, false},
    {"none, weighted, class 1 ignored", X(2, 9, 3), T(cls3, 1, 9), NONE, 1, true},
    {"mean, weighted, class 1 ignored", X(2, 9, 3), T(cls3, 1, 9), MEAN, 1, true},
    {"sum, weighted", X(2, 6, 5), T(cls5, 1, 6), SUM, -100, true},
    {"mean, class 0 ignored", X(2, 9, 3), T(cls3, 1, 9), MEAN, 0, false},
    {"transposed input", {.ndim = 2, .shape = {6, 5}, .layout = CF_T}, T(cls5, 1, 6), MEAN,
     -100, false},
    {"empty batch, mean", X(2, 0, 5), T(cls5, 1, 0), MEAN, -100, false},
    {"empty batch, sum", X(2, 0, 5), T(cls5, 1, 0), SUM, -100, false},
    {"unbatched", X(1, 5), T(cls5, 0, 0), MEAN, -100, false},
    {"unbatched, none", X(1, 5), T(cls5, 0, 0), NONE, -100, false},
    {"training batch 256 x 10", X(2, 256, 10), T(cls10, 1, 256), MEAN, -100, false},
    {"1000 classes", X(2, 8, 1000), T(cls1000, 1, 8), MEAN, -100, true},
    /* few long rows: a backend may take a row per work-group or block here */
    {"3000 classes", X(2, 4, 3000), T(cls3000, 1, 4), MEAN, -100, true},
    {"3000 classes, none, class 1 ignored", X(2, 6, 3000), T(cls3, 1, 6), NONE, 1, false},
};

void cf_family_loss(cf_list *l)
{
    for (size_t s = 0; s < sizeof ce_cases / sizeof ce_cases[0]; s++) {
        const ce_case *k = &ce_cases[s];
        cf_case c = {.op = &cross_entropy_op, .nin = 2};
        c.in[0] = k->x;
        c.in[1] = k->t;
        c.p.dim = k->red;
        c.p.scalar = (double)k->ignore;
        c.p.keepdim = k->weighted;
        cf_label(&c, "%s", k->label);
        cf_add(l, &c);
        if (k->x.ndim != 2)
            continue;
        /* the backward op with grad (N) for "none", () otherwise */
        c.op = &cross_entropy_backward_op;
        c.nin = 3;
        c.in[2] = (cf_in){.ndim = k->red == NONE ? 1 : 0, .shape = {k->x.shape[0]}};
        cf_add(l, &c);
    }
}
