/* core/ops/elementwise.c - elementwise ops: the memory primitives (copy, fill, random), the
 * unary ops (neg ... relu), the binary ops (add ... minimum, with their scalar and in-place
 * forms), the comparisons and where.
 *
 * Per group: the public wrappers (ops.h), the definitions the core registers (kernels come
 * from backends) and the backward formulas, written in ops.
 */
#include <math.h>

#include "ops_internal.h"

/* ---- copy, fill, random ------------------------------------------------------------ */

/* Their other wrappers (em_copy_, em_to_dtype, em_zeros, em_rand, ...) are in core/transfer.c
 * and core/create.c. */
static const em_attr_decl fill_attrs[] = {{"value", EM_ATTR_FLOAT}};
static const em_attr_decl random_attrs[] = {{"dist", EM_ATTR_INT},
                                            {"seed", EM_ATTR_INT},
                                            {"offset", EM_ATTR_INT},
                                            {"a", EM_ATTR_FLOAT},
                                            {"b", EM_ATTR_FLOAT},
                                            {"low", EM_ATTR_INT},
                                            {"high", EM_ATTR_INT}};

const em_op_def em__def_copy = OP("copy", 1, 0, NULL, SAME, NULL, NULL);
const em_op_def em__def_fill = OP("fill", 0, 1, fill_attrs, SAME, NULL, NULL);
const em_op_def em__def_random = OP("random", 0, 7, random_attrs, SAME, NULL, NULL);

static em_tensor *fill_(em_tensor *a, double v)
{
    EM_CHECK_T("fill_", a);
    if (em__check_inplace("fill_", a) < 0)
        return NULL;
    em_attr at = {0};
    at.f = v;
    em_tensor *r = NULL;
    if (em_is_contiguous(a)) {
        if (em__run_kernel(EM__OP_FILL, 0, NULL, 1, &a, &at) < 0)
            return NULL;
        atomic_fetch_add_explicit(&a->storage->version, 1, memory_order_relaxed);
        em_retain(a);
        r = a;
    } else {
        em_tensor *v1 = em__wrapped_scalar(a, v);
        r = v1 ? em__copy_into(a, v1) : NULL;
        em_release(v1);
    }
    if (r && em__autograd_reset_history(a, v == 0 ? "ZeroBackward0" : "FillBackward0") < 0) {
        em_release(r);
        return NULL;
    }
    return r;
}

em_tensor *em_fill_(em_tensor *a, double value) { EM_WRAP(fill_(a, value)); }
em_tensor *em_zero_(em_tensor *a) { EM_WRAP(fill_(a, 0.0)); }

/* ---- unary -------------------------------------------------------------------------- */

static em_tensor *unary(int id, em_tensor *a) { return em__dispatch(id, 1, &a, NULL, NULL); }

#define UNARY_OP(fname, ID)                                                              \
    em_tensor *fname(em_tensor *a) { EM_WRAP(unary(ID, a)); }
UNARY_OP(em_neg, EM__OP_NEG)
UNARY_OP(em_abs, EM__OP_ABS)
UNARY_OP(em_exp, EM__OP_EXP)
UNARY_OP(em_log, EM__OP_LOG)
UNARY_OP(em_sqrt, EM__OP_SQRT)
UNARY_OP(em_sin, EM__OP_SIN)
UNARY_OP(em_cos, EM__OP_COS)
UNARY_OP(em_tanh, EM__OP_TANH)
UNARY_OP(em_sigmoid, EM__OP_SIGMOID)
UNARY_OP(em_relu, EM__OP_RELU)

const em_op_def em__def_neg = OP("neg", 1, 0, NULL, SAME, NULL, NULL);
const em_op_def em__def_abs = OP("abs", 1, 0, NULL, SAME, NULL, NULL);
const em_op_def em__def_exp = OP("exp", 1, 0, NULL, UNARY_F, NULL, NULL);
const em_op_def em__def_log = OP("log", 1, 0, NULL, UNARY_F, NULL, NULL);
const em_op_def em__def_sqrt = OP("sqrt", 1, 0, NULL, UNARY_F, NULL, NULL);
const em_op_def em__def_sin = OP("sin", 1, 0, NULL, UNARY_F, NULL, NULL);
const em_op_def em__def_cos = OP("cos", 1, 0, NULL, UNARY_F, NULL, NULL);
const em_op_def em__def_tanh = OP("tanh", 1, 0, NULL, UNARY_F, NULL, NULL);
const em_op_def em__def_sigmoid = OP("sigmoid", 1, 0, NULL, UNARY_F, NULL, NULL);
const em_op_def em__def_relu = OP("relu", 1, 0, NULL, SAME, NULL, NULL);

static em_tensor *relu_(em_tensor *a)
{
    EM_CHECK_T("relu_", a);
    if (em__check_inplace("relu_", a) < 0)
        return NULL;
    return em__dispatch(EM__OP_RELU, 1, &a, NULL, a);
}

em_tensor *em_relu_(em_tensor *a) { EM_WRAP(relu_(a)); }

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

/* ---- threshold_backward(grad, y): grad where y > 0, else 0 ------------------------------------ */

/* ReLU's backward (PyTorch's threshold_backward with threshold 0), as one op so that a backend
 * makes one pass instead of four; relu and linear_relu use it. y is the ReLU's output (or its
 * input: both are > 0 at the same places). A masked gradient is 0 even where it is inf or NaN,
 * as PyTorch's where-based kernel gives. Internal: no public wrapper. */

static int infer_threshold_backward(int nin, em_tensor *const *in, const em_attr *attrs,
                                    em_out_desc *out)
{
    (void)nin, (void)attrs, (void)out;
    char b1[160], b2[160];
    if (!em_dtype_is_float(in[0]->dtype) || in[1]->dtype != in[0]->dtype ||
        in[1]->ndim != in[0]->ndim ||
        memcmp(in[0]->shape, in[1]->shape, sizeof(int64_t) * (size_t)in[0]->ndim) != 0)
        return em_set_error(EM_ERR_INVALID,
                            "threshold_backward: grad %s of dtype %s and output %s of dtype "
                            "%s must be float tensors of one shape and dtype",
                            em__shape_str(in[0]->ndim, in[0]->shape, b1, sizeof b1),
                            em_dtype_name(in[0]->dtype),
                            em__shape_str(in[1]->ndim, in[1]->shape, b2, sizeof b2),
                            em_dtype_name(in[1]->dtype));
    return EM_OK;
}

em_tensor *em__composite_threshold_backward(int nin, em_tensor *const *in, const em_attr *attrs)
{
    (void)nin, (void)attrs;
    em_tensor *z = scalar_like(in[1], 0), *m = em_gt(in[1], z), *zg = scalar_like(in[0], 0);
    em_tensor *r = m && zg ? em_where(m, in[0], zg) : NULL;
    drop(z, m, zg);
    return r;
}

const em_op_def em__def_threshold_backward = OP("threshold_backward", 2, 0, NULL, SAME,
                                                infer_threshold_backward,
                                                em__composite_threshold_backward);

em_tensor *em__threshold_backward(em_tensor *g, em_tensor *y)
{
    em_tensor *in[2] = {g, y};
    return em__dispatch(em__op_threshold_backward, 2, in, NULL, NULL);
}

static int b_relu(em_node *n, em_tensor *g, em_tensor **gin)
{
    SAVED(y, 0);
    gin[0] = em__threshold_backward(g, y);
    return check(gin, 1, n);
}

const em__formula em__grad_neg = {"NegBackward0", b_neg, 0};
const em__formula em__grad_abs = {"AbsBackward0", b_abs, EM__SAVE_IN0};
const em__formula em__grad_exp = {"ExpBackward0", b_exp, EM__SAVE_OUT};
const em__formula em__grad_log = {"LogBackward0", b_log, EM__SAVE_IN0};
const em__formula em__grad_sqrt = {"SqrtBackward0", b_sqrt, EM__SAVE_OUT};
const em__formula em__grad_sin = {"SinBackward0", b_sin, EM__SAVE_IN0};
const em__formula em__grad_cos = {"CosBackward0", b_cos, EM__SAVE_IN0};
const em__formula em__grad_tanh = {"TanhBackward0", b_tanh, EM__SAVE_OUT};
const em__formula em__grad_sigmoid = {"SigmoidBackward0", b_sigmoid, EM__SAVE_OUT};
const em__formula em__grad_relu = {"ReluBackward0", b_relu, EM__SAVE_OUT};

/* ---- binary and comparisons ------------------------------------------------------------ */

static em_tensor *binary(int id, em_tensor *a, em_tensor *b)
{
    em_tensor *in[2] = {a, b};
    return em__dispatch(id, 2, in, NULL, NULL);
}

#define BINARY_OP(fname, ID)                                                             \
    em_tensor *fname(em_tensor *a, em_tensor *b) { EM_WRAP(binary(ID, a, b)); }
BINARY_OP(em_add, EM__OP_ADD)
BINARY_OP(em_sub, EM__OP_SUB)
BINARY_OP(em_mul, EM__OP_MUL)
BINARY_OP(em_div, EM__OP_DIV)
BINARY_OP(em_pow, EM__OP_POW)
BINARY_OP(em_maximum, EM__OP_MAXIMUM)
BINARY_OP(em_minimum, EM__OP_MINIMUM)
BINARY_OP(em_eq, EM__OP_EQ)
BINARY_OP(em_ne, EM__OP_NE)
BINARY_OP(em_lt, EM__OP_LT)
BINARY_OP(em_le, EM__OP_LE)
BINARY_OP(em_gt, EM__OP_GT)
BINARY_OP(em_ge, EM__OP_GE)

/* A C number as PyTorch treats a Python number: a 0-dim "wrapped" tensor on a's device that
 * does not raise a's dtype within its category. Whole numbers count as integers. */
em_tensor *em__wrapped_scalar(em_tensor *a, double s)
{
    if (!a)
        return NULL;
    bool whole = s == floor(s) && fabs(s) < 9.2e18;
    em_opts o = {.dtype = whole ? EM_I64 : EM_F64, .device = em__tensor_device(a)};
    em_tensor *t = em__tensor_alloc(o.device, o.dtype, 0, NULL);
    if (!t)
        return NULL;
    em_attr at = {0};
    at.f = s;
    if (em__run_kernel(EM__OP_FILL, 0, NULL, 1, &t, &at) < 0) {
        em_release(t);
        return NULL;
    }
    t->wrapped_number = true;
    return t;
}

static em_tensor *binary_scalar(int id, em_tensor *a, double s, bool inplace)
{
    if (!a) {
        em__null_arg(em_op_name(id), "a");
        return NULL;
    }
    em_tensor *b = em__wrapped_scalar(a, s);
    if (!b)
        return NULL;
    em_tensor *in[2] = {a, b};
    em_tensor *r = em__dispatch(id, 2, in, NULL, inplace ? a : NULL);
    em_release(b);
    return r;
}

em_tensor *em_add_scalar(em_tensor *a, double s) { EM_WRAP(binary_scalar(EM__OP_ADD, a, s, false)); }
em_tensor *em_sub_scalar(em_tensor *a, double s) { EM_WRAP(binary_scalar(EM__OP_SUB, a, s, false)); }
em_tensor *em_mul_scalar(em_tensor *a, double s) { EM_WRAP(binary_scalar(EM__OP_MUL, a, s, false)); }
em_tensor *em_div_scalar(em_tensor *a, double s) { EM_WRAP(binary_scalar(EM__OP_DIV, a, s, false)); }
em_tensor *em_pow_scalar(em_tensor *a, double s) { EM_WRAP(binary_scalar(EM__OP_POW, a, s, false)); }

static em_tensor *inplace_binary(int id, em_tensor *a, em_tensor *b)
{
    EM_CHECK_T(em_op_name(id), a);
    if (em__check_inplace(em_op_name(id), a) < 0)
        return NULL;
    em_tensor *in[2] = {a, b};
    return em__dispatch(id, 2, in, NULL, a);
}

static em_tensor *inplace_scalar(int id, em_tensor *a, double s)
{
    EM_CHECK_T(em_op_name(id), a);
    if (em__check_inplace(em_op_name(id), a) < 0)
        return NULL;
    return binary_scalar(id, a, s, true);
}

em_tensor *em_add_(em_tensor *a, em_tensor *b) { EM_WRAP(inplace_binary(EM__OP_ADD, a, b)); }
em_tensor *em_sub_(em_tensor *a, em_tensor *b) { EM_WRAP(inplace_binary(EM__OP_SUB, a, b)); }
em_tensor *em_mul_(em_tensor *a, em_tensor *b) { EM_WRAP(inplace_binary(EM__OP_MUL, a, b)); }
em_tensor *em_div_(em_tensor *a, em_tensor *b) { EM_WRAP(inplace_binary(EM__OP_DIV, a, b)); }
em_tensor *em_add_scalar_(em_tensor *a, double s) { EM_WRAP(inplace_scalar(EM__OP_ADD, a, s)); }
em_tensor *em_mul_scalar_(em_tensor *a, double s) { EM_WRAP(inplace_scalar(EM__OP_MUL, a, s)); }

const em_op_def em__def_add = OP("add", 2, 0, NULL, BIN, NULL, NULL);
const em_op_def em__def_sub = OP("sub", 2, 0, NULL, BIN, NULL, NULL);
const em_op_def em__def_mul = OP("mul", 2, 0, NULL, BIN, NULL, NULL);
const em_op_def em__def_div = OP("div", 2, 0, NULL, BIN | EM_OP_INT_TO_FLOAT, NULL, NULL);
const em_op_def em__def_pow = OP("pow", 2, 0, NULL, BIN, NULL, NULL);
const em_op_def em__def_maximum = OP("maximum", 2, 0, NULL, BIN, NULL, NULL);
const em_op_def em__def_minimum = OP("minimum", 2, 0, NULL, BIN, NULL, NULL);
const em_op_def em__def_eq = OP("eq", 2, 0, NULL, CMP, NULL, NULL);
const em_op_def em__def_ne = OP("ne", 2, 0, NULL, CMP, NULL, NULL);
const em_op_def em__def_lt = OP("lt", 2, 0, NULL, CMP, NULL, NULL);
const em_op_def em__def_le = OP("le", 2, 0, NULL, CMP, NULL, NULL);
const em_op_def em__def_gt = OP("gt", 2, 0, NULL, CMP, NULL, NULL);
const em_op_def em__def_ge = OP("ge", 2, 0, NULL, CMP, NULL, NULL);

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
    em_tensor *q = em_div(g, b);   /* g / b: a's gradient, and a factor of b's */
    if (NEED(1)) {
        em_tensor *p = q ? em_mul(q, y) : NULL;
        gin[1] = p ? em_neg(p) : NULL;
        em_release(p);
    }
    if (NEED(0))
        gin[0] = q;
    else
        em_release(q);
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

const em__formula em__grad_add = {"AddBackward0", b_add, 0};
const em__formula em__grad_sub = {"SubBackward0", b_sub, 0};
const em__formula em__grad_mul = {"MulBackward0", b_mul, EM__SAVE_IN0 | EM__SAVE_IN1};
const em__formula em__grad_div = {"DivBackward0", b_div, EM__SAVE_IN1 | EM__SAVE_OUT};
const em__formula em__grad_pow = {"PowBackward1", b_pow,
                                  EM__SAVE_IN0 | EM__SAVE_IN1 | EM__SAVE_OUT};
const em__formula em__grad_maximum = {"MaximumBackward0", b_maximum,
                                      EM__SAVE_IN0 | EM__SAVE_IN1};
const em__formula em__grad_minimum = {"MinimumBackward0", b_minimum,
                                      EM__SAVE_IN0 | EM__SAVE_IN1};

/* ---- where ------------------------------------------------------------------------------ */

static em_tensor *where(em_tensor *cond, em_tensor *a, em_tensor *b)
{
    EM_CHECK_T("where", cond);
    EM_CHECK_T("where", a);
    EM_CHECK_T("where", b);
    if (cond->dtype != EM_BOOL) {
        em_set_error(EM_ERR_INVALID, "where: condition must be bool, got %s",
                     em_dtype_name(cond->dtype));
        return NULL;
    }
    em_tensor *ab[2] = {a, b};
    em_dtype dt = em__result_type(2, ab);
    em_tensor *ca = em_to_dtype(a, dt), *cb = em_to_dtype(b, dt), *r = NULL;
    if (ca && cb) {
        em_tensor *in[3] = {ca, cb, cond};   /* kernel order: (a, b, cond) */
        r = em__dispatch(EM__OP_WHERE, 3, in, NULL, NULL);
    }
    em_release(ca);
    em_release(cb);
    return r;
}

em_tensor *em_where(em_tensor *cond, em_tensor *a, em_tensor *b) { EM_WRAP(where(cond, a, b)); }

const em_op_def em__def_where = OP("where", 3, 0, NULL, EM_OP_BROADCAST | SAME, NULL, NULL);

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

const em__formula em__grad_where = {"WhereBackward0", b_where, EM__SAVE_IN2};
