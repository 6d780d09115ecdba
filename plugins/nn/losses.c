/* plugins/nn/losses.c - losses: CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, BCELoss,
 * BCEWithLogitsLoss. Each is a module with two inputs, (input, target), used with em_loss.
 *
 * Formulas and reductions are PyTorch's (torch.nn.functional, ATen's LossNLL.cpp):
 *   - CrossEntropyLoss = NLL of log_softmax over the class dim (dim 1, or 0 for an unbatched
 *     (C) input), so large logits never overflow (log-sum-exp). Class-index targets are int64
 *     of the input's shape without the class dim; a target of the input's own shape holds
 *     class probabilities (float). weight rescales classes; ignore_index targets contribute 0;
 *     "mean" divides by the summed weights of the targets that are not ignored (by their count
 *     without weight); label_smoothing mixes in the uniform distribution.
 *   - BCELoss clamps its logs at -100; its backward is PyTorch's (x - y) / max(x (1 - x),
 *     1e-12) through the plugin op "binary_cross_entropy" (a composite with its own backward),
 *     so targets of exactly 0 or 1 give finite gradients.
 *   - BCEWithLogitsLoss is max(-x, 0) + log(exp(-max) + exp(-x - max)) based: stable for any x.
 * Targets are checked on the host before anything runs: dtype, shape, and for class indices
 * their range, with messages that name the position ("CrossEntropyLoss: target 7 is out of
 * bounds for 5 classes (at position 3)"). weight and pos_weight are lists in the spec.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

typedef enum reduction { RED_NONE, RED_MEAN, RED_SUM } reduction;

typedef struct loss_state {
    reduction red;
} loss_state;

/* ---- shared ---------------------------------------------------------------------------------- */

static int loss_init_common(em_module *m, const em_args *a)
{
    const char *type = em_module_type(m);
    loss_state *s = em_module_private(m);
    const char *r = em_args_has(a, "reduction") ? em_args_str(a, "reduction") : "None";
    if (!strcmp(r, "mean"))
        s->red = RED_MEAN;
    else if (!strcmp(r, "sum"))
        s->red = RED_SUM;
    else if (!strcmp(r, "none"))
        s->red = RED_NONE;
    else
        return em_set_error(EM_ERR_INVALID,
                            "%s: reduction must be \"none\", \"mean\" or \"sum\", got \"%s\"",
                            type, r);
    return EM_OK;
}

/* Applies the reduction to elementwise losses (consumed). */
static em_tensor *reduce(em_tensor *l, reduction r)
{
    if (!l || r == RED_NONE)
        return l;
    em_tensor *o = r == RED_SUM ? em_sum_all(l) : em_mean_all(l);
    em_release(l);
    return o;
}

static int same_device(const char *type, const em_tensor *x, const em_tensor *t)
{
    if (em_device_eq(em_device_of(x), em_device_of(t)))
        return EM_OK;
    char a[32], b[32];
    return em_set_error(EM_ERR_DEVICE, "%s: input is on %s but target is on %s", type,
                        em_device_str(em_device_of(x), a, sizeof a),
                        em_device_str(em_device_of(t), b, sizeof b));
}

/* For elementwise losses: the target, checked (float, the input's shape and device) and cast
 * to the input's dtype. A new reference, or NULL with the error set. */
static em_tensor *elementwise_target(const char *type, em_tensor *x, em_tensor *t)
{
    char b1[160], b2[160];
    if (nn__check_float(type, "input", x) < 0 || nn__check_float(type, "target", t) < 0 ||
        same_device(type, x, t) < 0)
        return NULL;
    if (em_ndim(x) != em_ndim(t) ||
        memcmp(em_shape(x), em_shape(t), (size_t)em_ndim(x) * sizeof(int64_t)) != 0) {
        em_set_error(EM_ERR_INVALID, "%s: target of shape %s does not match input of shape %s",
                     type, nn__shape_str(t, b1, sizeof b1), nn__shape_str(x, b2, sizeof b2));
        return NULL;
    }
    return em_to_dtype(t, em_dtype_of(x));
}

/* The list argument `name` as a tensor of `like`'s dtype and device, shaped (n) or, with
 * ndim > 0, as ndim dims of 1 but `dim` (n): a view that broadcasts along `dim`. */
static em_tensor *list_tensor(const em_args *a, const char *name, const em_tensor *like, int ndim,
                              int dim)
{
    int n = em_args_count(a, name);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) {
        em_set_error(EM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        v[i] = em_args_float_at(a, name, i);
    int64_t shape[EM_MAX_DIMS];
    if (ndim < 1)
        ndim = 1, dim = 0;
    for (int d = 0; d < ndim; d++)
        shape[d] = d == dim ? n : 1;
    em_opts o = {.dtype = em_dtype_of(like), .device = em_device_of(like)};
    em_tensor *t = em_tensor_from_data(v, EM_F64, ndim, shape, &o);
    free(v);
    return t;
}

/* A per-element list (BCE's weight, pos_weight) must have 1 entry or one per last-dim entry. */
static int check_last_dim_list(const char *type, const em_args *a, const char *name,
                               const em_tensor *x)
{
    if (!em_args_has(a, name))
        return EM_OK;
    int n = em_args_count(a, name);
    int64_t last = em_ndim(x) ? em_shape(x)[em_ndim(x) - 1] : 1;
    if (n != 1 && n != last) {
        char b[160];
        return em_set_error(EM_ERR_INVALID,
                            "%s: %s has %d entries, which does not broadcast over input of "
                            "shape %s (1 or %lld expected)",
                            type, name, n, nn__shape_str(x, b, sizeof b), (long long)last);
    }
    return EM_OK;
}

/* ---- MSELoss, L1Loss ------------------------------------------------------------------------- */

static const em_param_decl reduction_params[] = {{"reduction", EM_PARAM_STRING, "\"mean\""}};

static em_tensor *mse_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    const loss_state *s = em_module_private(m);
    bool l1 = em_module_type(m)[0] == 'L';
    em_tensor *t = elementwise_target(em_module_type(m), in[0], in[1]);
    if (!t)
        return NULL;
    em_tensor *d = em_sub(in[0], t);
    em_tensor *l = l1 ? em_abs(d) : em_mul(d, d);
    em_release(d);
    em_release(t);
    return reduce(l, s->red);
}

/* ---- BCELoss --------------------------------------------------------------------------------- */

static const em_param_decl bce_params[] = {
    {"weight", EM_PARAM_FLOATS, "None"},
    {"reduction", EM_PARAM_STRING, "\"mean\""},
};

/* log(v) clamped below at -100, as PyTorch's binary_cross_entropy. */
static em_tensor *clamped_log(em_tensor *v)
{
    em_opts o = {.dtype = em_dtype_of(v), .device = em_device_of(v)};
    em_tensor *l = em_log(v), *lo = em_scalar(-100.0, &o);
    em_tensor *r = em_maximum(l, lo);
    em_release(l);
    em_release(lo);
    return r;
}

/* bce(x, y) = -(y log x + (1 - y) log(1 - x)), elementwise (composite of the op). */
static em_tensor *c_bce(int nin, em_tensor *const *in, const em_attr *attrs)
{
    (void)nin;
    (void)attrs;
    em_tensor *x = in[0], *y = in[1];
    em_tensor *nx = em_neg(x), *omx = em_add_scalar(nx, 1.0);
    em_tensor *ny = em_neg(y), *omy = em_add_scalar(ny, 1.0);
    em_tensor *lx = clamped_log(x), *l1x = clamped_log(omx);
    em_tensor *a = em_mul(y, lx), *b = em_mul(omy, l1x);
    em_tensor *s = em_add(a, b);
    em_tensor *r = em_neg(s);
    em_tensor *tmp[] = {nx, omx, ny, omy, lx, l1x, a, b, s};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
        em_release(tmp[i]);
    return r;
}

/* d/dx = (x - y) / max(x (1 - x), 1e-12); d/dy = log(1 - x) - log(x) (both logs clamped). */
static int b_bce(int nin, em_tensor *const *inputs, em_tensor *output, const em_attr *attrs,
                 em_tensor *grad, em_tensor **grad_inputs)
{
    (void)nin;
    (void)output;
    (void)attrs;
    em_tensor *x = inputs[0], *y = inputs[1];
    em_opts o = {.dtype = em_dtype_of(x), .device = em_device_of(x)};
    em_tensor *nx = em_neg(x), *omx = em_add_scalar(nx, 1.0);
    em_tensor *v = em_mul(x, omx), *eps = em_scalar(1e-12, &o);
    em_tensor *den = em_maximum(v, eps);
    em_tensor *num = em_sub(x, y);
    em_tensor *q = em_div(num, den);
    grad_inputs[0] = em_mul(grad, q);
    em_tensor *lx = clamped_log(x), *l1x = clamped_log(omx);
    em_tensor *dl = em_sub(l1x, lx);
    grad_inputs[1] = em_mul(grad, dl);
    em_tensor *tmp[] = {nx, omx, v, eps, den, num, q, lx, l1x, dl};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
        em_release(tmp[i]);
    return grad_inputs[0] && grad_inputs[1] ? EM_OK : em_last_status();
}

static int bce_init(em_module *m, const em_args *a)
{
    return loss_init_common(m, a);
}

/* PyTorch checks that BCELoss's input is a probability. */
static int check_unit_interval(em_tensor *x)
{
    int rc = EM_OK;
    EM_NO_GRAD
    {
        em_opts o = {.dtype = em_dtype_of(x), .device = em_device_of(x)};
        em_tensor *zero = em_scalar(0.0, &o), *one = em_scalar(1.0, &o);
        em_tensor *ge = em_ge(x, zero), *le = em_le(x, one);
        em_tensor *sge = em_sum_all(ge), *sle = em_sum_all(le);
        if (!sge || !sle)
            rc = em_last_status();
        else if (em_item(sge) != (double)em_numel(x) || em_item(sle) != (double)em_numel(x))
            rc = em_set_error(EM_ERR_INVALID,
                              "BCELoss: all elements of input should be between 0 and 1 (apply "
                              "Sigmoid first, or use BCEWithLogitsLoss on logits)");
        em_release(zero);
        em_release(one);
        em_release(ge);
        em_release(le);
        em_release(sge);
        em_release(sle);
    }
    return rc;
}

static em_tensor *bce_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    const loss_state *s = em_module_private(m);
    const em_args *a = em_module_args(m);
    em_tensor *t = elementwise_target("BCELoss", in[0], in[1]);
    if (!t)
        return NULL;
    if (check_last_dim_list("BCELoss", a, "weight", in[0]) < 0 || check_unit_interval(in[0]) < 0) {
        em_release(t);
        return NULL;
    }
    em_tensor *args[2] = {in[0], t};
    em_tensor *l = em_op_call("binary_cross_entropy", 2, args, 0, NULL);
    em_release(t);
    if (l && em_args_has(a, "weight")) {
        em_tensor *w = list_tensor(a, "weight", in[0], 0, 0);
        em_tensor *lw = em_mul(l, w);
        em_release(w);
        em_release(l);
        l = lw;
    }
    return reduce(l, s->red);
}

/* ---- BCEWithLogitsLoss ----------------------------------------------------------------------- */

static const em_param_decl bce_logits_params[] = {
    {"weight", EM_PARAM_FLOATS, "None"},
    {"reduction", EM_PARAM_STRING, "\"mean\""},
    {"pos_weight", EM_PARAM_FLOATS, "None"},
};

/* (1 - y) x + lw * softplus(-x), lw = 1 + (pos_weight - 1) y, with softplus(-x) computed as
 * m + log(exp(-m) + exp(-x - m)), m = max(-x, 0): no exp ever overflows. */
static em_tensor *bce_logits_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    const loss_state *s = em_module_private(m);
    const em_args *a = em_module_args(m);
    const char *type = "BCEWithLogitsLoss";
    em_tensor *x = in[0];
    em_tensor *y = elementwise_target(type, x, in[1]);
    if (!y)
        return NULL;
    if (check_last_dim_list(type, a, "weight", x) < 0 ||
        check_last_dim_list(type, a, "pos_weight", x) < 0) {
        em_release(y);
        return NULL;
    }
    em_tensor *nx = em_neg(x);
    em_tensor *mx = em_relu(nx);
    em_tensor *nm = em_neg(mx), *e1 = em_exp(nm);
    em_tensor *nxm = em_sub(nx, mx), *e2 = em_exp(nxm);
    em_tensor *se = em_add(e1, e2), *lg = em_log(se);
    em_tensor *sp = em_add(lg, mx);                         /* softplus(-x) */
    em_tensor *ny = em_neg(y), *omy = em_add_scalar(ny, 1.0);
    em_tensor *lin = em_mul(omy, x);
    em_tensor *l = NULL;
    if (em_args_has(a, "pos_weight")) {
        em_tensor *pw = list_tensor(a, "pos_weight", x, 0, 0);
        em_tensor *pw1 = em_add_scalar(pw, -1.0);
        em_tensor *py = em_mul(pw1, y);
        em_tensor *lw = em_add_scalar(py, 1.0);
        em_tensor *wsp = em_mul(lw, sp);
        l = em_add(lin, wsp);
        em_tensor *tmp[] = {pw, pw1, py, lw, wsp};
        for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
            em_release(tmp[i]);
    } else {
        l = em_add(lin, sp);
    }
    if (l && em_args_has(a, "weight")) {
        em_tensor *w = list_tensor(a, "weight", x, 0, 0);
        em_tensor *lw = em_mul(l, w);
        em_release(w);
        em_release(l);
        l = lw;
    }
    em_tensor *tmp[] = {y, nx, mx, nm, e1, nxm, e2, se, lg, sp, ny, omy, lin};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
        em_release(tmp[i]);
    return reduce(l, s->red);
}

/* ---- NLLLoss and CrossEntropyLoss ------------------------------------------------------------ */

static const em_param_decl nll_params[] = {
    {"weight", EM_PARAM_FLOATS, "None"},
    {"ignore_index", EM_PARAM_INT, "-100"},
    {"reduction", EM_PARAM_STRING, "\"mean\""},
};

static const em_param_decl ce_params[] = {
    {"weight", EM_PARAM_FLOATS, "None"},
    {"ignore_index", EM_PARAM_INT, "-100"},
    {"reduction", EM_PARAM_STRING, "\"mean\""},
    {"label_smoothing", EM_PARAM_FLOAT, "0.0"},
};

static int nll_init(em_module *m, const em_args *a)
{
    const char *type = em_module_type(m);
    int rc = loss_init_common(m, a);
    if (rc < 0)
        return rc;
    for (int i = 0; i < em_args_count(a, "weight"); i++)
        if (!isfinite(em_args_float_at(a, "weight", i)))
            return em_set_error(EM_ERR_INVALID, "%s: weight[%d] is not finite", type, i);
    if (type[0] == 'C') {   /* CrossEntropyLoss */
        double eps = em_args_has(a, "label_smoothing") ? em_args_float(a, "label_smoothing")
                                                        : NAN;
        if (!(eps >= 0 && eps <= 1))
            return em_set_error(EM_ERR_INVALID,
                                "CrossEntropyLoss: label_smoothing must be in [0, 1], got %g",
                                eps);
    }
    return EM_OK;
}

/* Class-index targets, read and checked on the host. */
typedef struct targets {
    em_tensor *index;   /* int64, target's shape; ignored positions hold 0 */
    em_tensor *wt;      /* input dtype, target's shape: weight[t] (or 1), 0 where ignored */
    em_tensor *keep;    /* input dtype, target's shape: 1, 0 where ignored */
    double wsum;        /* sum of wt: the "mean" denominator */
} targets;

static void targets_release(targets *t)
{
    em_release(t->index);
    em_release(t->wt);
    em_release(t->keep);
}

/* Checks the class-index target t against input x (classes along class_dim): dtype, shape
 * (want: x's shape without the class dim) and the weight list's length. */
static int check_index_target(const char *type, const em_args *a, em_tensor *x, em_tensor *t,
                              int class_dim, int64_t *want, int *wnd_out)
{
    char b1[160], b2[160], b3[160];
    int nd = em_ndim(x);
    int64_t C = em_shape(x)[class_dim];
    int wnd = 0;
    for (int d = 0; d < nd; d++)
        if (d != class_dim)
            want[wnd++] = em_shape(x)[d];
    *wnd_out = wnd;
    if (em_dtype_of(t) != EM_I64)
        return em_set_error(EM_ERR_INVALID,
                            "%s: class-index target must be int64, got %s (target of shape %s "
                            "for input of shape %s)",
                            type, em_dtype_name(em_dtype_of(t)), nn__shape_str(t, b1, sizeof b1),
                            nn__shape_str(x, b2, sizeof b2));
    if (em_ndim(t) != wnd || memcmp(em_shape(t), want, (size_t)wnd * sizeof(int64_t)) != 0) {
        if (type[0] == 'C')
            return em_set_error(EM_ERR_INVALID,
                                "%s: target of shape %s does not fit input of shape %s (expected "
                                "%s for class indices, or %s for class probabilities)",
                                type, nn__shape_str(t, b1, sizeof b1),
                                nn__shape_str(x, b2, sizeof b2),
                                nn__dims_str(wnd, want, b3, sizeof b3), b2);
        return em_set_error(EM_ERR_INVALID,
                            "%s: target of shape %s does not fit input of shape %s (expected %s)",
                            type, nn__shape_str(t, b1, sizeof b1), nn__shape_str(x, b2, sizeof b2),
                            nn__dims_str(wnd, want, b3, sizeof b3));
    }
    if (em_args_has(a, "weight") && em_args_count(a, "weight") != C)
        return em_set_error(EM_ERR_INVALID,
                            "%s: weight has %d entries but the input has %lld classes", type,
                            em_args_count(a, "weight"), (long long)C);
    return EM_OK;
}

/* Checks the class-index target t against input x and builds the tensors above on x's
 * device. */
static int read_targets(const char *type, const em_args *a, em_tensor *x, em_tensor *t,
                        int class_dim, targets *out)
{
    memset(out, 0, sizeof *out);
    int64_t C = em_shape(x)[class_dim];
    int64_t want[EM_MAX_DIMS];
    int wnd;
    if (check_index_target(type, a, x, t, class_dim, want, &wnd) < 0)
        return em_last_status();
    bool weighted = em_args_has(a, "weight");
    int64_t ignore = em_args_int(a, "ignore_index");
    int64_t n = em_numel(t);
    size_t cap = (size_t)(n ? n : 1);
    int64_t *idx = malloc(cap * sizeof *idx);
    double *wt = malloc(cap * sizeof *wt), *keep = malloc(cap * sizeof *keep);
    int rc = idx && wt && keep ? em_copy_to_host(t, idx, (size_t)n * sizeof *idx)
                               : em_set_error(EM_ERR_NOMEM, "%s: out of memory", type);
    for (int64_t i = 0; rc == EM_OK && i < n; i++) {
        if (idx[i] == ignore) {
            idx[i] = 0;
            wt[i] = keep[i] = 0;
            continue;
        }
        if (idx[i] < 0 || idx[i] >= C) {
            rc = em_set_error(EM_ERR_INVALID,
                              "%s: target %lld is out of bounds for %lld classes (at position "
                              "%lld)",
                              type, (long long)idx[i], (long long)C, (long long)i);
            break;
        }
        keep[i] = 1;
        wt[i] = weighted ? em_args_float_at(a, "weight", (int)idx[i]) : 1.0;
        out->wsum += wt[i];
    }
    if (rc == EM_OK) {
        em_opts oi = {.dtype = EM_I64, .device = em_device_of(x)};
        em_opts of = {.dtype = em_dtype_of(x), .device = em_device_of(x)};
        out->index = em_tensor_from_data(idx, EM_I64, wnd, want, &oi);
        out->wt = em_tensor_from_data(wt, EM_F64, wnd, want, &of);
        out->keep = em_tensor_from_data(keep, EM_F64, wnd, want, &of);
        if (!out->index || !out->wt || !out->keep) {
            rc = em_last_status();
            targets_release(out);
        }
    }
    free(idx);
    free(wt);
    free(keep);
    return rc;
}

/* -logp[.., t, ..] * weight[t] at every target position (0 where ignored). */
static em_tensor *picked_nll(em_tensor *logp, const targets *tg, int class_dim)
{
    em_tensor *ix = em_unsqueeze(tg->index, class_dim);
    em_tensor *g = ix ? em_gather(logp, class_dim, ix) : NULL;
    em_tensor *p = g ? em_squeeze(g, class_dim) : NULL;
    em_tensor *pw = p ? em_mul(p, tg->wt) : NULL;
    em_tensor *r = pw ? em_neg(pw) : NULL;
    em_release(ix);
    em_release(g);
    em_release(p);
    em_release(pw);
    return r;
}

/* The loss over class-index targets; label smoothing eps (0 for NLLLoss). */
static em_tensor *index_loss(em_module *m, em_tensor *logp, em_tensor *target, double eps)
{
    const char *type = em_module_type(m);
    const em_args *a = em_module_args(m);
    const loss_state *s = em_module_private(m);
    int nd = em_ndim(logp), class_dim = nd == 1 ? 0 : 1;
    int64_t C = em_shape(logp)[class_dim];
    targets tg;
    if (read_targets(type, a, logp, target, class_dim, &tg) < 0)
        return NULL;
    em_tensor *l = picked_nll(logp, &tg, class_dim);
    if (l && eps > 0) {
        /* smooth = -sum_c weight_c logp_c, 0 where ignored; l = (1 - eps) nll + eps/C smooth */
        em_tensor *w = em_args_has(a, "weight") ? list_tensor(a, "weight", logp, nd, class_dim)
                                                : NULL;
        em_tensor *lw = w ? em_mul(logp, w) : logp;
        if (!w)
            em_retain(lw);
        em_tensor *sum = em_sum(lw, 1, &class_dim, false);
        em_tensor *sk = em_mul(sum, tg.keep);
        em_tensor *a1 = em_mul_scalar(l, 1.0 - eps), *a2 = em_mul_scalar(sk, -eps / (double)C);
        em_release(l);
        l = em_add(a1, a2);
        em_tensor *tmp[] = {w, lw, sum, sk, a1, a2};
        for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
            em_release(tmp[i]);
    }
    double wsum = tg.wsum;
    targets_release(&tg);
    if (!l || s->red == RED_NONE)
        return l;
    em_tensor *sum = em_sum_all(l);
    em_release(l);
    if (s->red == RED_SUM || !sum)
        return sum;
    /* mean: divided by the weights of the targets that count (0/0 = nan when none does) */
    em_tensor *r = em_div_scalar(sum, wsum);
    em_release(sum);
    return r;
}

/* The loss over class probabilities (target of the input's shape). */
static em_tensor *prob_loss(em_module *m, em_tensor *logp, em_tensor *target, double eps)
{
    const char *type = em_module_type(m);
    const em_args *a = em_module_args(m);
    const loss_state *s = em_module_private(m);
    int nd = em_ndim(logp), class_dim = nd == 1 ? 0 : 1;
    int64_t C = em_shape(logp)[class_dim];
    if (nn__check_float(type, "a target of class probabilities (the input's shape)", target) < 0)
        return NULL;
    if (em_args_has(a, "weight") && em_args_count(a, "weight") != C) {
        em_set_error(EM_ERR_INVALID, "%s: weight has %d entries but the input has %lld classes",
                     type, em_args_count(a, "weight"), (long long)C);
        return NULL;
    }
    em_tensor *t = em_to_dtype(target, em_dtype_of(logp));
    if (t && eps > 0) {
        em_tensor *ts = em_mul_scalar(t, 1.0 - eps);
        em_release(t);
        t = em_add_scalar(ts, eps / (double)C);
        em_release(ts);
    }
    em_tensor *prod = t ? em_mul(logp, t) : NULL;
    em_release(t);
    if (prod && em_args_has(a, "weight")) {
        em_tensor *w = list_tensor(a, "weight", logp, nd, class_dim);
        em_tensor *pw = em_mul(prod, w);
        em_release(w);
        em_release(prod);
        prod = pw;
    }
    em_tensor *sum = NULL;
    if (!prod)
        return NULL;
    if (s->red == RED_NONE)
        sum = em_sum(prod, 1, &class_dim, false);
    else
        sum = em_sum_all(prod);
    em_release(prod);
    double scale = s->red == RED_MEAN ? -(double)C / (double)em_numel(logp) : -1.0;
    em_tensor *r = em_mul_scalar(sum, scale);
    em_release(sum);
    return r;
}

static int check_class_input(const char *type, em_tensor *x, em_tensor *t)
{
    if (nn__check_float(type, "input", x) < 0 || same_device(type, x, t) < 0)
        return em_last_status();
    if (em_ndim(x) < 1)
        return em_set_error(EM_ERR_INVALID, "%s: input must have a class dim, got a 0-dim tensor",
                            type);
    return EM_OK;
}

/* An error of op `op` ("cross_entropy: target 7 is out of bounds...") under the loss's name. */
static void reword_error(const char *type, const char *op)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", em_last_error());
    size_t n = strlen(op);
    if (strncmp(msg, op, n) == 0 && msg[n] == ':')
        em_set_error(em_last_status(), "%s%s", type, msg + n);
}

_Static_assert((int)RED_NONE == (int)EM_REDUCTION_NONE && (int)RED_MEAN == (int)EM_REDUCTION_MEAN &&
                   (int)RED_SUM == (int)EM_REDUCTION_SUM,
               "reductions");

/* Class indices over (N, C) or (C) logits without label smoothing: the op cross_entropy,
 * which a backend may fuse (no log_softmax tensor, one NllLossBackward0 node). */
static em_tensor *fused_ce(em_module *m, em_tensor *x, em_tensor *t)
{
    const char *type = em_module_type(m);
    const em_args *a = em_module_args(m);
    const loss_state *s = em_module_private(m);
    int64_t want[EM_MAX_DIMS];
    int wnd;
    if (check_index_target(type, a, x, t, em_ndim(x) == 1 ? 0 : 1, want, &wnd) < 0)
        return NULL;
    em_tensor *w = em_args_has(a, "weight") ? list_tensor(a, "weight", x, 1, 0) : NULL;
    if (em_args_has(a, "weight") && !w)
        return NULL;
    em_tensor *r = em_cross_entropy(x, t, w, em_args_int(a, "ignore_index"),
                                    (em_reduction)s->red);
    em_release(w);
    if (!r)
        reword_error(type, "cross_entropy");
    return r;
}

static em_tensor *ce_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    em_tensor *x = in[0], *t = in[1];
    if (check_class_input("CrossEntropyLoss", x, t) < 0)
        return NULL;
    const em_args *a = em_module_args(m);
    double eps = em_args_float(a, "label_smoothing");
    int class_dim = em_ndim(x) == 1 ? 0 : 1;
    bool probs = em_ndim(t) == em_ndim(x) &&
                 !memcmp(em_shape(t), em_shape(x), (size_t)em_ndim(x) * sizeof(int64_t));
    if (!probs && eps == 0 && em_ndim(x) <= 2)
        return fused_ce(m, x, t);
    em_tensor *logp = em_log_softmax(x, class_dim);
    if (!logp)
        return NULL;
    em_tensor *r = probs ? prob_loss(m, logp, t, eps) : index_loss(m, logp, t, eps);
    em_release(logp);
    return r;
}

static em_tensor *nll_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    if (check_class_input("NLLLoss", in[0], in[1]) < 0)
        return NULL;
    return index_loss(m, in[0], in[1], 0.0);
}

/* ---- registration ---------------------------------------------------------------------------- */

static int reduction_init(em_module *m, const em_args *a)
{
    return loss_init_common(m, a);
}

/* Losses print no arguments, as PyTorch's do ("CrossEntropyLoss()"). */
#define NN_LOSS(name_, params_, state_, ninputs_, init_, forward_, destroy_)                 \
    NN_MODULE_R(name_, params_, state_, ninputs_, init_, forward_, destroy_, nn__no_extra_repr)

static const em_module_ops loss_types[] = {
    NN_LOSS("CrossEntropyLoss", ce_params, sizeof(loss_state), 2, nll_init, ce_forward, NULL),
    NN_LOSS("NLLLoss", nll_params, sizeof(loss_state), 2, nll_init, nll_forward, NULL),
    NN_LOSS("MSELoss", reduction_params, sizeof(loss_state), 2, reduction_init, mse_forward,
              NULL),
    NN_LOSS("L1Loss", reduction_params, sizeof(loss_state), 2, reduction_init, mse_forward,
              NULL),
    NN_LOSS("BCELoss", bce_params, sizeof(loss_state), 2, bce_init, bce_forward, NULL),
    NN_LOSS("BCEWithLogitsLoss", bce_logits_params, sizeof(loss_state), 2, bce_init,
              bce_logits_forward, NULL),
};

int nn__register_losses(em_registry *reg)
{
    static const em_op_def bce = {
        .struct_size = sizeof(em_op_def),
        .name = "binary_cross_entropy",
        .nin = 2,
        .flags = EM_OP_SAME_AS_INPUT | EM_OP_COMPOSITE_F32,
        .composite = c_bce,
        .backward = b_bce,
        .backward_name = "BinaryCrossEntropyBackward0",
    };
    int rc = em_register_op(reg, &bce);
    if (rc < 0)
        return rc;
    return nn__register_all(reg, loss_types, sizeof loss_types / sizeof loss_types[0]);
}
