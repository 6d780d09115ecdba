/* core/backward.c - backward formulas for the core's ops, written in ops.
 *
 * Each formula gets the node (saved tensors, attributes, input shapes) and the gradient of
 * the node's output, and writes the gradient of each input that needs one. Because formulas
 * are ops, they run on every backend. The engine then sums each result down to its input's
 * shape (broadcasting) and casts it to the input's dtype and device, so formulas here compute
 * in whatever shape is natural. They run with grad mode off. Names follow PyTorch.
 */
#include <string.h>

#include "internal.h"

#define NEED(i) (n->in[i].needs_grad)
/* Releases a, b, c... at the end of a formula (NULL-safe). */
static void drop(em_tensor *a, em_tensor *b, em_tensor *c)
{
    em_release(a);
    em_release(b);
    em_release(c);
}

/* A saved tensor or bail out with the engine's error. */
#define SAVED(var, i)                                                                    \
    em_tensor *var = em__saved(n, i);                                                    \
    if (!var)                                                                            \
        return em_last_status()

static em_tensor *scalar_like(em_tensor *t, double v) { return em__wrapped_scalar(t, v); }

static int check(em_tensor *const *gin, int nin, const em_node *n)
{
    for (int i = 0; i < nin; i++)
        if (n->in[i].needs_grad && !gin[i])
            return em_last_status() < 0 ? em_last_status()
                                        : em_set_error(EM_ERR_INTERNAL, "%s: no gradient", n->name);
    return EM_OK;
}

/* ---- unary ------------------------------------------------------------------------------- */

static int b_neg(em_node *n, em_tensor *g, em_tensor **gin)
{
    gin[0] = em_neg(g);
    return check(gin, 1, n);
}

/* d|x| = sign(x), with sign(0) = 0 as in PyTorch */
static int b_abs(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(x, 0);
    em_tensor *z = scalar_like(x, 0);
    em_tensor *pos = em_gt(x, z), *neg = em_lt(x, z);
    em_tensor *pf = em_to_dtype(pos, g->dtype), *nf = em_to_dtype(neg, g->dtype);
    em_tensor *sign = em_sub(pf, nf);
    gin[0] = em_mul(g, sign);
    drop(z, pos, neg);
    drop(pf, nf, sign);
    return check(gin, 1, n);
}

static int b_exp(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(y, 0);
    gin[0] = em_mul(g, y);
    return check(gin, 1, n);
}

static int b_log(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(x, 0);
    gin[0] = em_div(g, x);
    return check(gin, 1, n);
}

/* d sqrt(x) = 1 / (2 sqrt(x)) */
static int b_sqrt(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(y, 0);
    em_tensor *y2 = em_mul_scalar(y, 2);
    gin[0] = em_div(g, y2);
    em_release(y2);
    return check(gin, 1, n);
}

static int b_sin(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(x, 0);
    em_tensor *c = em_cos(x);
    gin[0] = em_mul(g, c);
    em_release(c);
    return check(gin, 1, n);
}

static int b_cos(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(x, 0);
    em_tensor *s = em_sin(x), *gs = em_mul(g, s);
    gin[0] = em_neg(gs);
    drop(s, gs, NULL);
    return check(gin, 1, n);
}

/* d tanh = 1 - y^2 */
static int b_tanh(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(y, 0);
    em_tensor *y2 = em_mul(y, y), *ny2 = em_neg(y2), *d = em_add_scalar(ny2, 1);
    gin[0] = em_mul(g, d);
    drop(y2, ny2, d);
    return check(gin, 1, n);
}

/* d sigmoid = y (1 - y) */
static int b_sigmoid(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(y, 0);
    em_tensor *ny = em_neg(y), *one_m = em_add_scalar(ny, 1), *d = em_mul(y, one_m);
    gin[0] = em_mul(g, d);
    drop(ny, one_m, d);
    return check(gin, 1, n);
}

/* threshold_backward: the gradient passes where the output is positive */
static int b_relu(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(y, 0);
    em_tensor *z = scalar_like(y, 0), *m = em_gt(y, z), *mf = em_to_dtype(m, g->dtype);
    gin[0] = em_mul(g, mf);
    drop(z, m, mf);
    return check(gin, 1, n);
}

/* ---- binary ------------------------------------------------------------------------------- */

static int b_add(em_node *n, em_tensor *g, em_tensor **gin)
{
    for (int i = 0; i < 2; i++)
        if (NEED(i)) {
            em_retain(g);
            gin[i] = g;
        }
    return EM_OK;
}

static int b_sub(em_node *n, em_tensor *g, em_tensor **gin)
{
    if (NEED(0)) {
        em_retain(g);
        gin[0] = g;
    }
    if (NEED(1))
        gin[1] = em_neg(g);
    return check(gin, 2, n);
}

static int b_mul(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(a, 0);
    SAVED(b, 1);
    if (NEED(0))
        gin[0] = em_mul(g, b);
    if (NEED(1))
        gin[1] = em_mul(g, a);
    return check(gin, 2, n);
}

/* d(a/b) = 1/b, -a/b^2 = -out/b */
static int b_div(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(b, 0);
    SAVED(y, 1);
    if (NEED(0))
        gin[0] = em_div(g, b);
    if (NEED(1)) {
        em_tensor *q = em_div(g, b), *p = em_mul(q, y);
        gin[1] = em_neg(p);
        drop(q, p, NULL);
    }
    return check(gin, 2, n);
}

/* d a^b: b a^(b-1) (0 where b == 0), and a^b log(a) (0 where a == 0 and b >= 0) */
static int b_pow(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(a, 0);
    SAVED(b, 1);
    SAVED(y, 2);
    if (NEED(0)) {
        em_tensor *bm1 = em_sub_scalar(b, 1), *p = em_pow(a, bm1), *d = em_mul(b, p);
        em_tensor *z = scalar_like(b, 0), *bz = em_eq(b, z), *zero = em_zeros_like(d);
        em_tensor *dd = em_where(bz, zero, d);
        gin[0] = em_mul(g, dd);
        drop(bm1, p, d);
        drop(z, bz, zero);
        em_release(dd);
    }
    if (NEED(1)) {
        em_tensor *l = em_log(a), *d = em_mul(y, l);
        em_tensor *z = scalar_like(a, 0), *az = em_eq(a, z), *bp = em_ge(b, z);
        em_tensor *both = em_mul(az, bp), *zero = em_zeros_like(d);
        em_tensor *dd = em_where(both, zero, d);
        gin[1] = em_mul(g, dd);
        drop(l, d, z);
        drop(az, bp, both);
        drop(zero, dd, NULL);
    }
    return check(gin, 2, n);
}

/* maximum/minimum: the gradient goes to the winner; ties split it in half (PyTorch). */
static int b_minmax(em_node *n, em_tensor *g, em_tensor **gin, bool is_max)
{
    SAVED(a, 0);
    SAVED(b, 1);
    em_tensor *tie = em_eq(a, b), *half = em_mul_scalar(g, 0.5);
    em_tensor *shared = em_where(tie, half, g);
    em_tensor *zero = em_zeros_like(shared);
    if (NEED(0)) {
        em_tensor *lose = is_max ? em_lt(a, b) : em_gt(a, b);
        gin[0] = em_where(lose, zero, shared);
        em_release(lose);
    }
    if (NEED(1)) {
        em_tensor *lose = is_max ? em_gt(a, b) : em_lt(a, b);
        gin[1] = em_where(lose, zero, shared);
        em_release(lose);
    }
    drop(tie, half, shared);
    em_release(zero);
    return check(gin, 2, n);
}

static int b_maximum(em_node *n, em_tensor *g, em_tensor **gin) { return b_minmax(n, g, gin, true); }
static int b_minimum(em_node *n, em_tensor *g, em_tensor **gin) { return b_minmax(n, g, gin, false); }

/* where(a, b, cond) in kernel order */
static int b_where(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(cond, 0);
    em_tensor *zero = em_zeros_like(g);
    if (NEED(0))
        gin[0] = em_where(cond, g, zero);
    if (NEED(1))
        gin[1] = em_where(cond, zero, g);
    em_release(zero);
    return check(gin, 2, n);
}

/* ---- reductions ---------------------------------------------------------------------------- */

/* g of a reduction, reshaped with the reduced dims kept (size 1). */
static em_tensor *keepdim_grad(em_node *n, em_tensor *g)
{
    const em_attr *axes = &n->attrs[0];
    if (n->attrs[1].i) {
        em_retain(g);
        return g;
    }
    int64_t shape[EM_MAX_DIMS];
    const em_node_input *in = &n->in[0];
    for (int d = 0; d < in->ndim; d++)
        shape[d] = in->shape[d];
    for (int k = 0; k < axes->n; k++)
        shape[axes->ints[k]] = 1;
    return em_reshape(g, in->ndim, shape);
}

static int b_sum(em_node *n, em_tensor *g, em_tensor **gin)
{
    em_tensor *k = keepdim_grad(n, g);
    gin[0] = k ? em_expand(k, n->in[0].ndim, n->in[0].shape) : NULL;
    em_release(k);
    return check(gin, 1, n);
}

static int b_mean(em_node *n, em_tensor *g, em_tensor **gin)
{
    int64_t count = 1;
    for (int k = 0; k < n->attrs[0].n; k++)
        count *= n->in[0].shape[n->attrs[0].ints[k]];
    em_tensor *k = keepdim_grad(n, g), *e = k ? em_expand(k, n->in[0].ndim, n->in[0].shape) : NULL;
    gin[0] = em_div_scalar(e, (double)count);
    drop(k, e, NULL);
    return check(gin, 1, n);
}

/* amax: the gradient is shared evenly by the elements equal to the maximum. */
static int b_amax(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(x, 0);
    SAVED(y, 1);
    int dims[EM_MAX_DIMS];
    for (int k = 0; k < n->attrs[0].n; k++)
        dims[k] = (int)n->attrs[0].ints[k];
    em_tensor *gk = keepdim_grad(n, g), *yk = keepdim_grad(n, y);
    em_tensor *mask = em_eq(x, yk), *mf = em_to_dtype(mask, g->dtype);
    em_tensor *cnt = em_sum(mf, n->attrs[0].n, dims, true);
    em_tensor *share = em_div(gk, cnt);
    gin[0] = em_mul(share, mf);
    drop(gk, yk, mask);
    drop(mf, cnt, share);
    return check(gin, 1, n);
}

/* ---- linear algebra ----------------------------------------------------------------------- */

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
    em_tensor *z = scalar_like(y, 0), *m = em_gt(y, z), *mf = em_to_dtype(m, g->dtype);
    em_tensor *gm = em_mul(g, mf);
    drop(z, m, mf);
    if (!gm)
        return em_last_status();
    int rc = b_linear(n, gm, gin);
    em_release(gm);
    return rc;
}

/* ---- indexing ------------------------------------------------------------------------------ */

static int b_gather(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(index, 0);
    int dim = (int)n->attrs[0].i;
    em_tensor *z = em_zeros(n->in[0].ndim, n->in[0].shape,
                            &(em_opts){.dtype = g->dtype, .device = em_device_of(g)});
    gin[0] = em_scatter_add(z, dim, index, g);
    em_release(z);
    return check(gin, 1, n);
}

static int b_scatter_add(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(index, 0);
    int dim = (int)n->attrs[0].i;
    if (NEED(0)) {
        em_retain(g);
        gin[0] = g;
    }
    if (NEED(2))
        gin[2] = em_gather(g, dim, index);
    return check(gin, 3, n);
}

/* ---- composites ----------------------------------------------------------------------------- */

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

/* ---- views and copies ------------------------------------------------------------------------- */

int em__identity_backward(em_node *n, em_tensor *g, em_tensor **gin);
int em__identity_backward(em_node *n, em_tensor *g, em_tensor **gin)
{
    (void)n;
    em_retain(g);
    gin[0] = g;
    return EM_OK;
}

/* The gradient of a view with respect to its base: scatter g into a zero tensor laid out
 * like the base, at the view's place (offset, shape and strides recorded at view time).
 * Expanding views (stride 0) instead hand g to the engine, which sums it to the base shape. */
int em__view_backward(em_node *n, em_tensor *g, em_tensor **gin);
int em__view_backward(em_node *n, em_tensor *g, em_tensor **gin)
{
    const em_node_input *base = &n->in[0];
    int vnd = n->attrs[0].n;
    const int64_t *vshape = &n->aux[1], *vstrides = &n->aux[1 + EM_MAX_DIMS];
    const int64_t *bstrides = n->attrs[1].ints;
    bool expands = false;
    for (int d = 0; d < vnd; d++)
        expands |= vstrides[d] == 0 && vshape[d] > 1;
    if (expands) {
        em_retain(g);
        gin[0] = g;
        return EM_OK;
    }
    int64_t extent = 1;
    for (int d = 0; d < base->ndim; d++) {
        if (base->shape[d] == 0)
            extent = 0;
        if (bstrides[d] == 0 && base->shape[d] > 1)
            return em_set_error(EM_ERR_UNSUPPORTED,
                                "%s: backward through a view of an expanded tensor is not "
                                "supported; make the base contiguous first",
                                n->name);
        if (extent)
            extent += (base->shape[d] - 1) * bstrides[d];
    }
    em_tensor *flat = em_zeros(EM_SHAPE(extent), &(em_opts){.dtype = g->dtype,
                                                             .device = em_device_of(g)});
    if (!flat)
        return em_last_status();
    em_tensor *gb = em__tensor_make(flat->storage, g->dtype, base->ndim, base->shape, bstrides, 0);
    em_tensor *gv = em__tensor_make(flat->storage, g->dtype, vnd, vshape, vstrides, n->aux[0]);
    em_tensor *w = gb && gv ? em__copy_into(gv, g) : NULL;
    if (w)
        gin[0] = em_contiguous(gb);
    drop(flat, gb, gv);
    em_release(w);
    return check(gin, 1, n);
}

/* ---- the table ----------------------------------------------------------------------------- */

static const em__formula builtin[EM__OP_BUILTIN_COUNT] = {
    [EM__OP_NEG] = {"NegBackward0", b_neg, 0},
    [EM__OP_ABS] = {"AbsBackward0", b_abs, EM__SAVE_IN0},
    [EM__OP_EXP] = {"ExpBackward0", b_exp, EM__SAVE_OUT},
    [EM__OP_LOG] = {"LogBackward0", b_log, EM__SAVE_IN0},
    [EM__OP_SQRT] = {"SqrtBackward0", b_sqrt, EM__SAVE_OUT},
    [EM__OP_SIN] = {"SinBackward0", b_sin, EM__SAVE_IN0},
    [EM__OP_COS] = {"CosBackward0", b_cos, EM__SAVE_IN0},
    [EM__OP_TANH] = {"TanhBackward0", b_tanh, EM__SAVE_OUT},
    [EM__OP_SIGMOID] = {"SigmoidBackward0", b_sigmoid, EM__SAVE_OUT},
    [EM__OP_RELU] = {"ReluBackward0", b_relu, EM__SAVE_OUT},
    [EM__OP_ADD] = {"AddBackward0", b_add, 0},
    [EM__OP_SUB] = {"SubBackward0", b_sub, 0},
    [EM__OP_MUL] = {"MulBackward0", b_mul, EM__SAVE_IN0 | EM__SAVE_IN1},
    [EM__OP_DIV] = {"DivBackward0", b_div, EM__SAVE_IN1 | EM__SAVE_OUT},
    [EM__OP_POW] = {"PowBackward1", b_pow, EM__SAVE_IN0 | EM__SAVE_IN1 | EM__SAVE_OUT},
    [EM__OP_MAXIMUM] = {"MaximumBackward0", b_maximum, EM__SAVE_IN0 | EM__SAVE_IN1},
    [EM__OP_MINIMUM] = {"MinimumBackward0", b_minimum, EM__SAVE_IN0 | EM__SAVE_IN1},
    [EM__OP_WHERE] = {"WhereBackward0", b_where, EM__SAVE_IN2},
    [EM__OP_SUM] = {"SumBackward1", b_sum, 0},
    [EM__OP_AMAX] = {"AmaxBackward0", b_amax, EM__SAVE_IN0 | EM__SAVE_OUT},
    [EM__OP_MATMUL] = {"MmBackward0", b_matmul, EM__SAVE_IN0 | EM__SAVE_IN1},
    [EM__OP_GATHER] = {"GatherBackward0", b_gather, EM__SAVE_IN1},
    [EM__OP_SCATTER_ADD] = {"ScatterAddBackward0", b_scatter_add, EM__SAVE_IN1},
};

static const em__formula f_mean = {"MeanBackward1", b_mean, 0};
static const em__formula f_softmax = {"SoftmaxBackward0", b_softmax, EM__SAVE_OUT};
static const em__formula f_log_softmax = {"LogSoftmaxBackward0", b_log_softmax, EM__SAVE_OUT};
static const em__formula f_linear = {"AddmmBackward0", b_linear, EM__SAVE_IN0 | EM__SAVE_IN1};
/* PyTorch's graph has ReluBackward0 on top of AddmmBackward0; here one node does both. */
static const em__formula f_linear_relu = {"ReluBackward0", b_linear_relu,
                                          EM__SAVE_IN0 | EM__SAVE_IN1 | EM__SAVE_OUT};
static const em__formula f_cross_entropy = {"NllLossBackward0", b_cross_entropy,
                                            EM__SAVE_IN0 | EM__SAVE_IN1 | EM__SAVE_IN2};

/* PyTorch names some nodes by the overload that ran: sum() over everything is SumBackward0,
 * sum(dim) SumBackward1; likewise mean; batched matmul is BmmBackward0; a scalar exponent
 * gives PowBackward0. */
const char *em__formula_name(const em__formula *f, int op, int nin, em_tensor *const *in,
                             const em_attr *attrs, const em_tensor *out)
{
    bool reduction = op == EM__OP_SUM || op == em__op_mean;   /* attrs: axes, keepdim */
    if (reduction && !attrs[1].i && attrs[0].n == in[0]->ndim)
        return op == EM__OP_SUM ? "SumBackward0" : "MeanBackward0";
    if (op == EM__OP_MATMUL && out->ndim > 2)
        return "BmmBackward0";
    if (op == EM__OP_POW && nin == 2 && in[1]->wrapped_number)
        return "PowBackward0";
    return f->name;
}

/* Ops from plugins: their backward gets every saved input and the output. */
static int b_plugin(em_node *n, em_tensor *g, em_tensor **gin)
{
    em_op_rec *op = em__op(n->op);
    if (!op || !op->def.backward)
        return em_set_error(EM_ERR_STATE, "%s: the op's plugin was unloaded", n->name);
    em_tensor *in[EM_MAX_OP_INPUTS];
    for (int i = 0; i < n->nin; i++) {
        SAVED(t, i);
        in[i] = t;
    }
    SAVED(out, n->nin);
    const em_attr *attrs = n->all_attrs ? n->all_attrs : n->attrs;
    int rc = op->def.backward(n->nin, in, out, attrs, g, gin);
    if (rc < 0)
        return rc;
    for (int i = 0; i < n->nin; i++)
        if (!n->in[i].needs_grad) {
            em_release(gin[i]);
            gin[i] = NULL;
        }
    return check(gin, n->nin, n);
}

const em__formula *em__formula_for(int op)
{
    static _Thread_local em__formula plugin;
    if (op >= 0 && op < EM__OP_BUILTIN_COUNT)
        return builtin[op].fn ? &builtin[op] : NULL;
    em_op_rec *rec = em__op(op);
    if (rec && rec->def.backward) {
        plugin.name = rec->grad_name;
        plugin.fn = b_plugin;
        plugin.saves = EM__SAVE_ALL_IN | EM__SAVE_OUT;
        return &plugin;
    }
    if (op == em__op_mean)
        return &f_mean;
    if (op == em__op_softmax)
        return &f_softmax;
    if (op == em__op_log_softmax)
        return &f_log_softmax;
    if (op == em__op_linear)
        return &f_linear;
    if (op == em__op_linear_relu)
        return &f_linear_relu;
    if (op == em__op_cross_entropy)
        return &f_cross_entropy;
    return NULL;
}
