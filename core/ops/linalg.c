/* core/ops/linalg.c - linear algebra: matmul (the batched primitive behind torch.matmul's
 * rules), linear and linear_relu (composites a backend may fuse): public wrappers, definitions
 * with shape inference, composites and backward formulas.
 */
#include <string.h>

#include "ops_internal.h"

/* ---- matmul ------------------------------------------------------------------------------ */

/* torch.matmul: promotes 1-D operands, broadcasts batch dims, then runs the batched
 * primitive and drops the promoted dims again. */
static em_tensor *matmul(em_tensor *a, em_tensor *b)
{
    EM_CHECK_T("matmul", a);
    EM_CHECK_T("matmul", b);
    char b1[160], b2[160];
    if (a->ndim == 0 || b->ndim == 0) {
        em_set_error(EM_ERR_INVALID, "matmul: both arguments need at least 1 dim, got %s and %s",
                     em__shape_str(a->ndim, a->shape, b1, sizeof b1),
                     em__shape_str(b->ndim, b->shape, b2, sizeof b2));
        return NULL;
    }
    if (a->dtype != b->dtype) {
        em_set_error(EM_ERR_INVALID, "matmul: expected both operands of one dtype, got %s and %s",
                     em_dtype_name(a->dtype), em_dtype_name(b->dtype));
        return NULL;
    }
    int64_t ka = a->shape[a->ndim - 1], kb = b->shape[b->ndim >= 2 ? b->ndim - 2 : 0];
    if (ka != kb) {
        em_set_error(EM_ERR_INVALID, "matmul: shapes %s and %s cannot be multiplied (%lld != %lld)",
                     em__shape_str(a->ndim, a->shape, b1, sizeof b1),
                     em__shape_str(b->ndim, b->shape, b2, sizeof b2), (long long)ka,
                     (long long)kb);
        return NULL;
    }
    em_tensor *a2 = a->ndim == 1 ? em_unsqueeze(a, 0) : (em_retain(a), a);
    em_tensor *b2t = b->ndim == 1 ? em_unsqueeze(b, 1) : (em_retain(b), b);
    em_tensor *ae = NULL, *be = NULL, *r = NULL, *out = NULL;
    if (!a2 || !b2t)
        goto done;
    /* batch dims broadcast */
    int nb = (a2->ndim > b2t->ndim ? a2->ndim : b2t->ndim) - 2;
    int64_t shape_a[EM_MAX_DIMS], shape_b[EM_MAX_DIMS];
    for (int d = 0; d < nb; d++) {
        int da = d - (nb - (a2->ndim - 2)), db = d - (nb - (b2t->ndim - 2));
        int64_t sa = da >= 0 ? a2->shape[da] : 1, sb = db >= 0 ? b2t->shape[db] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            em_set_error(EM_ERR_INVALID, "matmul: batch dims of %s and %s cannot broadcast",
                         em__shape_str(a->ndim, a->shape, b1, sizeof b1),
                         em__shape_str(b->ndim, b->shape, b2, sizeof b2));
            goto done;
        }
        shape_a[d] = shape_b[d] = sa == 1 ? sb : sa;
    }
    shape_a[nb] = a2->shape[a2->ndim - 2];
    shape_a[nb + 1] = a2->shape[a2->ndim - 1];
    shape_b[nb] = b2t->shape[b2t->ndim - 2];
    shape_b[nb + 1] = b2t->shape[b2t->ndim - 1];
    ae = a2->ndim == nb + 2 && !memcmp(a2->shape, shape_a, sizeof(int64_t) * (size_t)(nb + 2))
             ? (em_retain(a2), a2)
             : em_expand(a2, nb + 2, shape_a);
    be = b2t->ndim == nb + 2 && !memcmp(b2t->shape, shape_b, sizeof(int64_t) * (size_t)(nb + 2))
             ? (em_retain(b2t), b2t)
             : em_expand(b2t, nb + 2, shape_b);
    if (!ae || !be)
        goto done;
    em_tensor *in[2] = {ae, be};
    if (!(r = em__dispatch(EM__OP_MATMUL, 2, in, NULL, NULL)))
        goto done;
    if (a->ndim == 1 && b->ndim == 1)
        out = em_reshape(r, 0, NULL);
    else if (a->ndim == 1)
        out = em_squeeze(r, -2);
    else if (b->ndim == 1)
        out = em_squeeze(r, -1);
    else {
        out = r;
        r = NULL;
    }
done:
    em_release(a2);
    em_release(b2t);
    em_release(ae);
    em_release(be);
    em_release(r);
    return out;
}

em_tensor *em_matmul(em_tensor *a, em_tensor *b) { EM_WRAP(matmul(a, b)); }

static int infer_matmul(int nin, em_tensor *const *in, const em_attr *attrs, em_out_desc *out)
{
    const em_tensor *a = in[0], *b = in[1];
    char b1[160], b2[160];
    bool ok = a->ndim >= 2 && a->ndim == b->ndim &&
              a->shape[a->ndim - 1] == b->shape[b->ndim - 2];
    for (int d = 0; ok && d < a->ndim - 2; d++)
        ok = a->shape[d] == b->shape[d];
    if (!ok)
        return em_set_error(EM_ERR_INVALID, "matmul: shapes %s and %s cannot be multiplied",
                            em__shape_str(a->ndim, a->shape, b1, sizeof b1),
                            em__shape_str(b->ndim, b->shape, b2, sizeof b2));
    out->ndim = a->ndim;
    memcpy(out->shape, a->shape, sizeof out->shape);
    out->shape[a->ndim - 1] = b->shape[b->ndim - 1];
    out->dtype = a->dtype;
    return EM_OK;
}

const em_op_def em__def_matmul = OP("matmul", 2, 0, NULL, 0, infer_matmul, NULL);

/* a [.., M, K] @ b [.., K, N]: da = g b^T, db = a^T g */
static int b_matmul(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(a, 0);
    SAVED(b, 1);
    if (NEED(0)) {
        em_tensor *bt = em_transpose(b, -1, -2);
        gin[0] = em_matmul(g, bt);
        em_release(bt);
    }
    if (NEED(1)) {
        em_tensor *at = em_transpose(a, -1, -2);
        gin[1] = em_matmul(at, g);
        em_release(at);
    }
    return check(gin, 2, n);
}

const em__formula em__grad_matmul = {"MmBackward0", b_matmul, EM__SAVE_IN0 | EM__SAVE_IN1};

/* ---- linear, linear_relu ------------------------------------------------------------------ */

static em_tensor *linear(em_tensor *x, em_tensor *w, em_tensor *bias, bool relu)
{
    EM_CHECK_T("linear", x);
    EM_CHECK_T("linear", w);
    char b1[160], b2[160];
    if (x->ndim < 1 || w->ndim != 2 || x->shape[x->ndim - 1] != w->shape[1]) {
        em_set_error(EM_ERR_INVALID,
                     "linear: input %s does not fit weight %s (expected weight [out, %lld])",
                     em__shape_str(x->ndim, x->shape, b1, sizeof b1),
                     em__shape_str(w->ndim, w->shape, b2, sizeof b2),
                     (long long)(x->ndim ? x->shape[x->ndim - 1] : 0));
        return NULL;
    }
    if (bias && (bias->ndim != 1 || bias->shape[0] != w->shape[0])) {
        em_set_error(EM_ERR_INVALID, "linear: bias %s does not fit weight %s (expected [%lld])",
                     em__shape_str(bias->ndim, bias->shape, b1, sizeof b1),
                     em__shape_str(w->ndim, w->shape, b2, sizeof b2), (long long)w->shape[0]);
        return NULL;
    }
    if (!bias) {
        em_tensor *wt = em_t(w);
        em_tensor *r = em_matmul(x, wt);
        em_release(wt);
        if (!relu)
            return r;
        em_tensor *a = em_relu(r);
        em_release(r);
        return a;
    }
    em_tensor *in[3] = {x, w, bias};
    return em__dispatch(relu ? em__op_linear_relu : em__op_linear, 3, in, NULL, NULL);
}

em_tensor *em_linear(em_tensor *x, em_tensor *w, em_tensor *bias)
{
    EM_WRAP(linear(x, w, bias, false));
}

em_tensor *em_linear_relu(em_tensor *x, em_tensor *w, em_tensor *bias)
{
    EM_WRAP(linear(x, w, bias, true));
}

static int infer_linear(int nin, em_tensor *const *in, const em_attr *attrs, em_out_desc *out)
{
    const em_tensor *x = in[0], *w = in[1];
    out->ndim = x->ndim;
    memcpy(out->shape, x->shape, sizeof out->shape);
    out->shape[x->ndim - 1] = w->shape[0];
    out->dtype = x->dtype;
    return EM_OK;
}

const em_op_def em__def_linear = OP("linear", 3, 0, NULL, 0, infer_linear, em__composite_linear);
const em_op_def em__def_linear_relu = OP("linear_relu", 3, 0, NULL, 0, infer_linear,
                                         em__composite_linear_relu);

/* linear(x, w, b) = x @ w^T + b; x (*, in), w (out, in), b (out). */
em_tensor *em__composite_linear(int nin, em_tensor *const *in, const em_attr *attrs)
{
    em_tensor *wt = em_t(in[1]);
    em_tensor *y = em_matmul(in[0], wt);
    em_tensor *r = em_add(y, in[2]);
    em_release(wt);
    em_release(y);
    return r;
}

/* linear_relu(x, w, b) = relu(x @ w^T + b): what a backend without a fused kernel runs. */
em_tensor *em__composite_linear_relu(int nin, em_tensor *const *in, const em_attr *attrs)
{
    em_tensor *y = em__composite_linear(nin, in, attrs);
    em_tensor *r = em_relu(y);
    em_release(y);
    return r;
}

/* linear(x, w, b): x (*, in), w (out, in), y (*, out): dx = g w, dw = g^T x, db = sum g */
static int b_linear(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(x, 0);
    SAVED(w, 1);
    if (NEED(0))
        gin[0] = em_matmul(g, w);
    if (NEED(1)) {
        int64_t out = w->shape[0], in = w->shape[1];
        em_tensor *g2 = em_reshape(g, EM_SHAPE(-1, out)), *x2 = em_reshape(x, EM_SHAPE(-1, in));
        em_tensor *g2t = em_t(g2);
        gin[1] = em_matmul(g2t, x2);
        drop(g2, x2, g2t);
    }
    if (NEED(2)) {
        em_retain(g);
        gin[2] = g;   /* the engine sums it down to [out] */
    }
    return check(gin, 3, n);
}

/* linear_relu(x, w, b) = relu(linear(x, w, b)): the ReLU's mask comes from the saved output
 * (y > 0 exactly where the pre-activation was), then linear's formula runs on the masked g. */
static int b_linear_relu(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(y, 2);
    em_tensor *gm = em__threshold_backward(g, y);
    if (!gm)
        return em_last_status();
    int rc = b_linear(n, gm, gin);
    em_release(gm);
    return rc;
}

const em__formula em__grad_linear = {"AddmmBackward0", b_linear, EM__SAVE_IN0 | EM__SAVE_IN1};
/* PyTorch's graph has ReluBackward0 on top of AddmmBackward0; here one node does both. */
const em__formula em__grad_linear_relu = {"ReluBackward0", b_linear_relu,
                                          EM__SAVE_IN0 | EM__SAVE_IN1 | EM__SAVE_OUT};
