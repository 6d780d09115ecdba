/* core/ops.c - the public math API (ops.h): argument checks, then the dispatcher. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"


/* ---- unary and binary ---------------------------------------------------------- */

static em_tensor *unary(int id, em_tensor *a) { return em__dispatch(id, 1, &a, NULL, NULL); }

static em_tensor *binary(int id, em_tensor *a, em_tensor *b)
{
    em_tensor *in[2] = {a, b};
    return em__dispatch(id, 2, in, NULL, NULL);
}

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

/* ---- in place ---------------------------------------------------------------------- */


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

static em_tensor *relu_(em_tensor *a)
{
    EM_CHECK_T("relu_", a);
    if (em__check_inplace("relu_", a) < 0)
        return NULL;
    return em__dispatch(EM__OP_RELU, 1, &a, NULL, a);
}

em_tensor *em_relu_(em_tensor *a) { EM_WRAP(relu_(a)); }

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

/* ---- reductions ------------------------------------------------------------------------ */

/* Validates dims into attrs: sorted, unique, non-negative; all dims when ndims == 0. */
static bool reduce_axes(const char *fn, const em_tensor *a, int ndims, const int *dims,
                        bool keepdim, em_attr *at)
{
    memset(at, 0, 2 * sizeof *at);
    bool seen[EM_MAX_DIMS] = {0};
    if (ndims < 0 || ndims > EM_MAX_DIMS || (ndims > 0 && !dims)) {
        em_set_error(EM_ERR_INVALID, "%s: bad dims list (%d dims)", fn, ndims);
        return false;
    }
    for (int i = 0; i < ndims; i++) {
        int d = em__wrap_dim(fn, dims[i], a->ndim);
        if (d < 0)
            return false;
        if (seen[d]) {
            em_set_error(EM_ERR_INVALID, "%s: dim %d appears multiple times in the list of dims",
                         fn, d);
            return false;
        }
        seen[d] = true;
    }
    for (int d = 0; d < a->ndim; d++)
        if (seen[d] || ndims == 0)
            at[0].ints[at[0].n++] = d;
    at[1].i = keepdim;
    return true;
}

static em_tensor *reduce(int id, const char *fn, em_tensor *a, int ndims, const int *dims,
                         bool keepdim)
{
    EM_CHECK_T(fn, a);
    em_attr at[2];
    if (!reduce_axes(fn, a, ndims, dims, keepdim, at))
        return NULL;
    if (id == em__op_mean && !em_dtype_is_float(a->dtype)) {
        em_set_error(EM_ERR_INVALID, "mean: could not infer output dtype; input dtype must be "
                                     "floating point, got %s",
                     em_dtype_name(a->dtype));
        return NULL;
    }
    if (at[0].n == 0) {
        /* 0-dim input: nothing to reduce, but the result is still a new tensor of the
         * reduction's dtype (int64 for integer sums). */
        em_dtype dt = (id == EM__OP_SUM && !em_dtype_is_float(a->dtype)) ? EM_I64 : a->dtype;
        em_tensor *c = em_to_dtype(a, dt);
        em_tensor *r = c == a ? em_clone(a) : c;
        if (c == a)
            em_release(c);
        return r;
    }
    if (a->numel == 0 && id != EM__OP_SUM && id != em__op_mean) {
        /* As PyTorch: only an empty reduced dim has no maximum; reducing a [0, 3] tensor over
         * dim 1 gives an empty [0] result (and softmax over it an empty tensor). */
        for (int k = 0; k < at[0].n; k++)
            if (a->shape[at[0].ints[k]] == 0) {
                em_set_error(EM_ERR_INVALID, "%s: cannot reduce over dim %d of size 0", fn,
                             (int)at[0].ints[k]);
                return NULL;
            }
    }
    return em__dispatch(id, 1, &a, at, NULL);
}

em_tensor *em_sum(em_tensor *a, int ndims, const int *dims, bool keepdim)
{
    EM_WRAP(reduce(EM__OP_SUM, "sum", a, ndims, dims, keepdim));
}

em_tensor *em_mean(em_tensor *a, int ndims, const int *dims, bool keepdim)
{
    EM_WRAP(reduce(em__op_mean, "mean", a, ndims, dims, keepdim));
}

em_tensor *em_amax(em_tensor *a, int ndims, const int *dims, bool keepdim)
{
    EM_WRAP(reduce(EM__OP_AMAX, "amax", a, ndims, dims, keepdim));
}

em_tensor *em_sum_all(em_tensor *a) { EM_WRAP(reduce(EM__OP_SUM, "sum", a, 0, NULL, false)); }
em_tensor *em_mean_all(em_tensor *a) { EM_WRAP(reduce(em__op_mean, "mean", a, 0, NULL, false)); }

static em_tensor *argmax(em_tensor *a, int dim, bool keepdim)
{
    EM_CHECK_T("argmax", a);
    int d = em__wrap_dim("argmax", dim, a->ndim);
    if (d < 0)
        return NULL;
    if (a->ndim == 0)
        return em_zeros(EM_SCALAR, &(em_opts){.dtype = EM_I64, .device = em__tensor_device(a)});
    if (a->shape[d] == 0) {
        em_set_error(EM_ERR_INVALID, "argmax: cannot take the argmax of a zero-size dim %d", d);
        return NULL;
    }
    em_attr at[2];
    memset(at, 0, sizeof at);
    at[0].i = d;
    at[1].i = keepdim;
    return em__dispatch(EM__OP_ARGMAX, 1, &a, at, NULL);
}

em_tensor *em_argmax(em_tensor *a, int dim, bool keepdim) { EM_WRAP(argmax(a, dim, keepdim)); }

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

/* ---- gather / scatter_add ---------------------------------------------------------------- */

/* Checks index dtype, rank, sizes and (with `values`) bounds, PyTorch's rules for
 * gather/scatter_add. The infer functions of both ops call it, so em_op_call("gather", ...)
 * is checked as well as em_gather. */
/* Reads the int64 tensor t on the host. Returns -1 when every value is in [0, size) or equals
 * *skip (skip may be NULL), else the position of the first that is not (its value in *bad), or
 * -2 with the error set when t cannot be read. */
static int64_t first_out_of_range(const char *fn, em_tensor *t, int64_t size, const int64_t *skip,
                                  int64_t *bad)
{
    int64_t n = t->numel;
    if (n == 0)
        return -1;
    int64_t *v = malloc((size_t)n * sizeof *v);
    if (!v) {
        em_set_error(EM_ERR_NOMEM, "%s: out of host memory checking the indices", fn);
        return -2;
    }
    int64_t at = em_copy_to_host(t, v, (size_t)n * sizeof *v) == EM_OK ? -1 : -2;
    for (int64_t i = 0; at == -1 && i < n; i++)
        if ((v[i] < 0 || v[i] >= size) && !(skip && v[i] == *skip)) {
            *bad = v[i];
            at = i;
        }
    free(v);
    return at;
}

bool em__check_index(const char *fn, em_tensor *a, int dim, em_tensor *index, em_tensor *src,
                     bool values)
{
    char b1[160], b2[160];
    if (index->dtype != EM_I64) {
        em_set_error(EM_ERR_INVALID, "%s: index must be int64, got %s", fn,
                     em_dtype_name(index->dtype));
        return false;
    }
    if (index->ndim != a->ndim || (src && src->ndim != a->ndim)) {
        const em_tensor *o = index->ndim != a->ndim ? index : src;
        em_set_error(EM_ERR_INVALID, "%s: %s %s must have as many dims as input %s", fn,
                     o == index ? "index" : "src", em__shape_str(o->ndim, o->shape, b1, sizeof b1),
                     em__shape_str(a->ndim, a->shape, b2, sizeof b2));
        return false;
    }
    for (int d = 0; d < a->ndim; d++) {
        /* index may not exceed the input (but along dim) nor src in any dim */
        const em_tensor *o = d != dim && index->shape[d] > a->shape[d] ? a
                             : src && index->shape[d] > src->shape[d] ? src
                                                                       : NULL;
        if (o) {
            em_set_error(EM_ERR_INVALID, "%s: index %s is larger than %s %s in dim %d", fn,
                         em__shape_str(index->ndim, index->shape, b1, sizeof b1),
                         o == a ? "input" : "src", em__shape_str(o->ndim, o->shape, b2, sizeof b2),
                         d);
            return false;
        }
    }
    if (!values)
        return true;
    int64_t size = a->ndim ? a->shape[dim] : 1, bad = 0;
    int64_t at = first_out_of_range(fn, index, size, NULL, &bad);
    if (at >= 0)
        em_set_error(EM_ERR_INVALID, "%s: index %lld is out of bounds for dim %d of size %lld",
                     fn, (long long)bad, dim, (long long)size);
    return at == -1;
}

static em_tensor *gather(em_tensor *a, int dim, em_tensor *index)
{
    EM_CHECK_T("gather", a);
    EM_CHECK_T("gather", index);
    int d = em__wrap_dim("gather", dim, a->ndim);
    if (d < 0)
        return NULL;   /* the rest is checked by the op's infer function */
    em_attr at = {0};
    at.i = d;
    em_tensor *in[2] = {a, index};
    return em__dispatch(EM__OP_GATHER, 2, in, &at, NULL);
}

em_tensor *em_gather(em_tensor *a, int dim, em_tensor *index) { EM_WRAP(gather(a, dim, index)); }

static em_tensor *scatter_add(em_tensor *a, int dim, em_tensor *index, em_tensor *src)
{
    EM_CHECK_T("scatter_add", a);
    EM_CHECK_T("scatter_add", index);
    EM_CHECK_T("scatter_add", src);
    int d = em__wrap_dim("scatter_add", dim, a->ndim);
    /* shapes now (src is narrowed below); index values in the op's infer function */
    if (d < 0 || !em__check_index("scatter_add", a, d, index, src, false))
        return NULL;
    if (src->dtype != a->dtype) {
        em_set_error(EM_ERR_INVALID, "scatter_add: src dtype %s differs from input dtype %s",
                     em_dtype_name(src->dtype), em_dtype_name(a->dtype));
        return NULL;
    }
    /* The kernel walks index's shape over src: give it src narrowed to index's shape. */
    em_tensor *s = src, *tmp;
    em_retain(s);
    for (int k = 0; k < src->ndim && s; k++)
        if (s->shape[k] != index->shape[k]) {
            tmp = em_narrow(s, k, 0, index->shape[k]);
            em_release(s);
            s = tmp;
        }
    if (!s)
        return NULL;
    em_attr at = {0};
    at.i = d;
    em_tensor *in[3] = {a, index, s};
    em_tensor *r = em__dispatch(EM__OP_SCATTER_ADD, 3, in, &at, NULL);
    em_release(s);
    return r;
}

em_tensor *em_scatter_add(em_tensor *a, int dim, em_tensor *index, em_tensor *src)
{
    EM_WRAP(scatter_add(a, dim, index, src));
}

/* ---- composites -------------------------------------------------------------------------- */

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

/* ---- cross entropy ----------------------------------------------------------------------- */

/* Every target is ignore_index or a class in [0, C): read on the host, so a bad one is named
 * (a kernel could only poison the loss with NaN). */
static bool check_targets(em_tensor *t, int64_t nclass, int64_t ignore)
{
    int64_t bad = 0;
    int64_t at = first_out_of_range("cross_entropy", t, nclass, &ignore, &bad);
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
