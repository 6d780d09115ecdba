/* core/ops/loss.c - softmax, log_softmax and cross_entropy (with its backward op
 * cross_entropy_backward): composites written in primitives, so every backend gets them, and a
 * backend may register fused kernels under the same names. Public wrappers, definitions with
 * shape inference, composites and backward formulas.
 */
#include <string.h>

#include "ops_internal.h"

/* ---- softmax, log_softmax ------------------------------------------------------------------ */

static const em_attr_decl dim_attrs[] = {{"dim", EM_ATTR_INT}};

static em_tensor *softmax_like(int id, const char *fn, em_tensor *a, int dim)
{
    EM_CHECK_T(fn, a);
    int d = em__wrap_dim(fn, dim, a->ndim);
    if (d < 0)
        return NULL;
    em_attr at = {0};
    at.i = d;
    return em__dispatch(id, 1, &a, &at, NULL);
}

em_tensor *em_softmax(em_tensor *a, int dim)
{
    EM_WRAP(softmax_like(em__op_softmax, "softmax", a, dim));
}

em_tensor *em_log_softmax(em_tensor *a, int dim)
{
    EM_WRAP(softmax_like(em__op_log_softmax, "log_softmax", a, dim));
}

const em_op_def em__def_softmax = OP("softmax", 1, 1, dim_attrs, UNARY_F, NULL,
                                     em__composite_softmax);
const em_op_def em__def_log_softmax = OP("log_softmax", 1, 1, dim_attrs, UNARY_F, NULL,
                                         em__composite_log_softmax);

/* The shared start of softmax and log_softmax along dim: z = x - max(x) (so exp(z) <= 1 and
 * never overflows), e = exp(z) and s = sum(e). Integer inputs compute in the default float. */
typedef struct shifted {
    em_tensor *z, *e, *s;
} shifted;

static shifted shift_exp_sum(em_tensor *x, int dim)
{
    shifted r = {0};
    em_tensor *xf = em_dtype_is_float(x->dtype) ? NULL : em_to_dtype(x, em__default_float());
    em_tensor *m = em_amax(xf ? xf : x, 1, &dim, true);
    r.z = em_sub(xf ? xf : x, m);
    r.e = em_exp(r.z);
    r.s = em_sum(r.e, 1, &dim, true);
    em_release(xf);
    em_release(m);
    return r;
}

static void shifted_release(shifted *r)
{
    em_release(r->z);
    em_release(r->e);
    em_release(r->s);
}

/* softmax(x) = exp(x - max) / sum(exp(x - max)) along dim. */
em_tensor *em__composite_softmax(int nin, em_tensor *const *in, const em_attr *attrs)
{
    shifted sh = shift_exp_sum(in[0], (int)attrs[0].i);
    em_tensor *r = em_div(sh.e, sh.s);
    shifted_release(&sh);
    return r;
}

/* log_softmax(x) = (x - max) - log(sum(exp(x - max))): log-sum-exp, never log(0) for finite x. */
em_tensor *em__composite_log_softmax(int nin, em_tensor *const *in, const em_attr *attrs)
{
    shifted sh = shift_exp_sum(in[0], (int)attrs[0].i);
    em_tensor *l = em_log(sh.s);
    em_tensor *r = em_sub(sh.z, l);
    em_release(l);
    shifted_release(&sh);
    return r;
}

/* softmax: dx = y (g - sum(g y)) along dim */
static int b_softmax(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(y, 0);
    int dim = (int)n->attrs[0].i;
    em_tensor *gy = em_mul(g, y), *s = em_sum(gy, 1, &dim, true), *d = em_sub(g, s);
    gin[0] = em_mul(y, d);
    drop(gy, s, d);
    return check(gin, 1, n);
}

/* log_softmax: dx = g - exp(y) sum(g) along dim */
static int b_log_softmax(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(y, 0);
    int dim = (int)n->attrs[0].i;
    em_tensor *p = em_exp(y), *s = em_sum(g, 1, &dim, true), *ps = em_mul(p, s);
    gin[0] = em_sub(g, ps);
    drop(p, s, ps);
    return check(gin, 1, n);
}

const em__formula em__grad_softmax = {"SoftmaxBackward0", b_softmax, EM__SAVE_OUT};
const em__formula em__grad_log_softmax = {"LogSoftmaxBackward0", b_log_softmax, EM__SAVE_OUT};

/* ---- cross_entropy -------------------------------------------------------------------------- */

/* Every target is ignore_index or a class in [0, C): read on the host, so a bad one is named
 * (a kernel could only poison the loss with NaN). */
static bool check_targets(em_tensor *t, int64_t nclass, int64_t ignore)
{
    int64_t bad = 0;
    int64_t at = em__first_out_of_range("cross_entropy", t, nclass, &ignore, &bad);
    if (at >= 0)
        em_set_error(EM_ERR_INVALID,
                     "cross_entropy: target %lld is out of bounds for %lld classes (at position "
                     "%lld)",
                     (long long)bad, (long long)nclass, (long long)at);
    return at == -1;
}

/* x (N, C), t (N): weight defaulted and cast, checked, dispatched. */
static em_tensor *cross_entropy_2d(em_tensor *x, em_tensor *t, em_tensor *w, int64_t ignore,
                                   em_reduction red)
{
    /* (C) ones by default; C = 0 when x is not (N, C), which the check below reports */
    int64_t C = x->ndim == 2 ? x->shape[1] : 0;
    em_tensor *wc = w ? em_to_dtype(w, em_dtype_is_float(x->dtype) ? x->dtype : w->dtype)
                      : em_ones(1, &C, &(em_opts){.dtype = x->dtype,
                                                  .device = em__tensor_device(x)});
    if (!wc)
        return NULL;
    em_tensor *in[3] = {x, t, wc}, *r = NULL;
    em_attr at[2] = {{0}, {0}};
    at[0].i = ignore;
    at[1].i = red;
    if (em__check_cross_entropy("cross_entropy", 3, in, at) == EM_OK &&
        check_targets(t, C, ignore))
        r = em__dispatch(em__op_cross_entropy, 3, in, at, NULL);
    em_release(wc);
    return r;
}

static em_tensor *cross_entropy(em_tensor *x, em_tensor *t, em_tensor *w, int64_t ignore,
                                em_reduction red)
{
    EM_CHECK_T("cross_entropy", x);
    EM_CHECK_T("cross_entropy", t);
    if (w && em_requires_grad(w) && em__grad_mode()) {
        em_set_error(EM_ERR_UNSUPPORTED, "cross_entropy: no gradient for weight (as in "
                     "PyTorch): pass a weight that does not require grad");
        return NULL;
    }
    if (x->ndim != 1 || t->ndim != 0)
        return cross_entropy_2d(x, t, w, ignore, red);
    /* unbatched: x (C), t () as a batch of one */
    em_tensor *xb = em_unsqueeze(x, 0), *tb = em_unsqueeze(t, 0);
    em_tensor *r = xb && tb ? cross_entropy_2d(xb, tb, w, ignore, red) : NULL;
    em_release(xb);
    em_release(tb);
    if (r && red == EM_REDUCTION_NONE) {
        em_tensor *s = em_squeeze(r, 0);
        em_release(r);
        r = s;
    }
    return r;
}

em_tensor *em_cross_entropy(em_tensor *x, em_tensor *target, em_tensor *weight,
                            int64_t ignore_index, em_reduction reduction)
{
    EM_WRAP(cross_entropy(x, target, weight, ignore_index, reduction));
}

static const em_attr_decl ce_attrs[] = {{"ignore_index", EM_ATTR_INT},
                                        {"reduction", EM_ATTR_INT}};

/* cross_entropy(x, target, weight) and cross_entropy_backward(x, target, weight, grad):
 * x (N, C) float, target (N) int64, weight (C) of x's dtype, grad of the loss's shape (N) or
 * (). Shapes and dtypes only: the target values are checked by em_cross_entropy on the host,
 * and kernels must stay in bounds for any value (NaN where a target is out of range). */
int em__check_cross_entropy(const char *fn, int nin, em_tensor *const *in, const em_attr *attrs)
{
    const em_tensor *x = in[0], *t = in[1], *w = in[2];
    char b1[160], b2[160];
    if (!em_dtype_is_float(x->dtype))
        return em_set_error(EM_ERR_INVALID, "%s: input must be a float tensor, got %s", fn,
                            em_dtype_name(x->dtype));
    if (x->ndim != 2)
        return em_set_error(EM_ERR_INVALID, "%s: input must be (N, C), got %s", fn,
                            em__shape_str(x->ndim, x->shape, b1, sizeof b1));
    if (t->dtype != EM_I64)
        return em_set_error(EM_ERR_INVALID, "%s: target must be int64 class indices, got %s", fn,
                            em_dtype_name(t->dtype));
    if (t->ndim != 1 || t->shape[0] != x->shape[0])
        return em_set_error(EM_ERR_INVALID, "%s: target of shape %s does not fit input of "
                            "shape %s (expected (%lld))",
                            fn, em__shape_str(t->ndim, t->shape, b1, sizeof b1),
                            em__shape_str(x->ndim, x->shape, b2, sizeof b2),
                            (long long)x->shape[0]);
    if (w->dtype != x->dtype || w->ndim != 1 || w->shape[0] != x->shape[1])
        return em_set_error(EM_ERR_INVALID, "%s: weight must be (%lld) of dtype %s, got %s of "
                            "dtype %s",
                            fn, (long long)x->shape[1], em_dtype_name(x->dtype),
                            em__shape_str(w->ndim, w->shape, b1, sizeof b1),
                            em_dtype_name(w->dtype));
    if (attrs[1].i < EM_REDUCTION_NONE || attrs[1].i > EM_REDUCTION_SUM)
        return em_set_error(EM_ERR_INVALID, "%s: unknown reduction %lld", fn,
                            (long long)attrs[1].i);
    if (nin == 4) {
        const em_tensor *g = in[3];
        bool none = attrs[1].i == EM_REDUCTION_NONE;
        if (g->dtype != x->dtype || g->ndim != (none ? 1 : 0) ||
            (none && g->shape[0] != x->shape[0]))
            return em_set_error(EM_ERR_INVALID, "%s: grad %s of dtype %s does not fit the loss "
                                "of input %s",
                                fn, em__shape_str(g->ndim, g->shape, b1, sizeof b1),
                                em_dtype_name(g->dtype),
                                em__shape_str(x->ndim, x->shape, b2, sizeof b2));
    }
    return EM_OK;
}

static int infer_cross_entropy(int nin, em_tensor *const *in, const em_attr *attrs,
                               em_out_desc *out)
{
    int rc = em__check_cross_entropy("cross_entropy", nin, in, attrs);
    if (rc < 0)
        return rc;
    bool none = attrs[1].i == EM_REDUCTION_NONE;
    out->ndim = none ? 1 : 0;
    out->shape[0] = in[0]->shape[0];
    out->dtype = in[0]->dtype;
    return EM_OK;
}

static int infer_cross_entropy_backward(int nin, em_tensor *const *in, const em_attr *attrs,
                                        em_out_desc *out)
{
    int rc = em__check_cross_entropy("cross_entropy_backward", nin, in, attrs);
    if (rc < 0)
        return rc;
    out->ndim = 2;
    memcpy(out->shape, in[0]->shape, sizeof out->shape);
    out->dtype = in[0]->dtype;
    return EM_OK;
}

const em_op_def em__def_cross_entropy = OP("cross_entropy", 3, 2, ce_attrs, EM_OP_COMPOSITE_F32,
                                           infer_cross_entropy, em__composite_cross_entropy);
const em_op_def em__def_cross_entropy_backward =
    OP("cross_entropy_backward", 4, 2, ce_attrs, EM_OP_COMPOSITE_F32,
       infer_cross_entropy_backward, em__composite_cross_entropy_backward);

/* Releases the n tensors of t (NULL-safe). */
static void release_all(em_tensor **t, int n)
{
    for (int i = 0; i < n; i++)
        em_release(t[i]);
}

/* What both cross-entropy composites start from (float16/bfloat16 arrive in float32,
 * EM_OP_COMPOSITE_F32): tz the targets with ignored ones set to 0 (so that they index safely)
 * and rw each sample's weight, weight[t] or 0 where ignored. */
typedef struct ce_parts {
    em_tensor *tz, *rw;
} ce_parts;

static bool ce_parts_make(em_tensor *const *in, int64_t ignore, ce_parts *p)
{
    em_tensor *t = in[1], *w = in[2];
    em_tensor *tmp[4] = {0};
    tmp[0] = em__wrapped_scalar(t, (double)ignore);
    tmp[1] = em_eq(t, tmp[0]);                            /* ignored */
    tmp[2] = em__wrapped_scalar(t, 0);
    p->tz = em_where(tmp[1], tmp[2], t);
    tmp[3] = p->tz ? em_gather(w, 0, p->tz) : NULL;
    em_release(tmp[2]);
    tmp[2] = em__wrapped_scalar(w, 0);
    p->rw = em_where(tmp[1], tmp[2], tmp[3]);
    release_all(tmp, 4);
    return p->tz && p->rw;
}

static void ce_parts_release(ce_parts *p)
{
    em_release(p->tz);
    em_release(p->rw);
}

/* loss_i = -rw_i log_softmax(x_i)[t_i]; mean divides the sum by sum(rw). */
em_tensor *em__composite_cross_entropy(int nin, em_tensor *const *in, const em_attr *attrs)
{
    if (em__check_cross_entropy("cross_entropy", nin, in, attrs) < 0)
        return NULL;
    ce_parts p;
    em_tensor *tmp[6] = {0}, *r = NULL;
    if (ce_parts_make(in, attrs[0].i, &p)) {
        tmp[0] = em_log_softmax(in[0], 1);
        tmp[1] = em_unsqueeze(p.tz, 1);
        tmp[2] = tmp[0] && tmp[1] ? em_gather(tmp[0], 1, tmp[1]) : NULL;
        tmp[3] = tmp[2] ? em_squeeze(tmp[2], 1) : NULL;
        tmp[4] = tmp[3] ? em_mul(tmp[3], p.rw) : NULL;
        em_tensor *l = tmp[4] ? em_neg(tmp[4]) : NULL;
        if (attrs[1].i == EM_REDUCTION_NONE || !l) {
            r = l;
        } else {
            tmp[5] = l;
            em_tensor *sum = em_sum_all(l);
            if (attrs[1].i == EM_REDUCTION_SUM || !sum) {
                r = sum;
            } else {
                em_tensor *wsum = em_sum_all(p.rw);
                r = wsum ? em_div(sum, wsum) : NULL;
                em_release(sum);
                em_release(wsum);
            }
        }
    }
    release_all(tmp, 6);
    ce_parts_release(&p);
    return r;
}

/* dx_i = s_i (softmax(x_i) - onehot(t_i)) with s_i = rw_i g_i (g_i = g for sum), over
 * sum(rw) for mean. */
em_tensor *em__composite_cross_entropy_backward(int nin, em_tensor *const *in,
                                                const em_attr *attrs)
{
    if (em__check_cross_entropy("cross_entropy_backward", nin, in, attrs) < 0)
        return NULL;
    ce_parts p;
    em_tensor *tmp[9] = {0}, *r = NULL;
    if (ce_parts_make(in, attrs[0].i, &p)) {
        em_opts oi = {.dtype = EM_I64, .device = em__tensor_device(in[0])};
        tmp[0] = em_softmax(in[0], 1);
        tmp[1] = em_arange(0, (double)in[0]->shape[1], 1, &oi);
        tmp[2] = em_unsqueeze(p.tz, 1);
        tmp[3] = tmp[1] && tmp[2] ? em_eq(tmp[1], tmp[2]) : NULL;     /* one-hot, bool */
        tmp[4] = tmp[0] && tmp[3] ? em_sub(tmp[0], tmp[3]) : NULL;
        tmp[6] = em_mul(p.rw, in[3]);
        if (attrs[1].i == EM_REDUCTION_MEAN && tmp[6]) {
            tmp[7] = em_sum_all(p.rw);
            em_tensor *s = tmp[7] ? em_div(tmp[6], tmp[7]) : NULL;
            em_release(tmp[6]);
            tmp[6] = s;
        }
        tmp[8] = tmp[6] ? em_unsqueeze(tmp[6], 1) : NULL;
        r = tmp[4] && tmp[8] ? em_mul(tmp[4], tmp[8]) : NULL;
    }
    release_all(tmp, 9);
    ce_parts_release(&p);
    return r;
}

/* cross_entropy: dx from the op cross_entropy_backward (fusable like the forward); targets
 * and weights get no gradient (PyTorch has none for weight either). */
static int b_cross_entropy(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(x, 0);
    SAVED(t, 1);
    SAVED(w, 2);
    em_tensor *gx = em_to_dtype(g, x->dtype);
    if (!gx)
        return em_last_status();
    em_tensor *in[4] = {x, t, w, gx};
    gin[0] = em__dispatch(em__op_cross_entropy_backward, 4, in, n->attrs, NULL);
    em_release(gx);
    return check(gin, 1, n);
}

const em__formula em__grad_cross_entropy = {"NllLossBackward0", b_cross_entropy,
                                            EM__SAVE_IN0 | EM__SAVE_IN1 | EM__SAVE_IN2};
