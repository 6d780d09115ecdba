/* core/ops_builtin.c - the primitive and composite ops the core registers at em_init.
 *
 * Each op's definition sits with its shape inference. Kernels come from backends; composites
 * (core/composite.c) are written in other ops. The order of registration fixes the EM__OP_*
 * ids in internal.h.
 */
#include <string.h>

#include "internal.h"

/* ---- attribute declarations ---------------------------------------------------- */

static const em_attr_decl fill_attrs[] = {{"value", EM_ATTR_FLOAT}};
static const em_attr_decl random_attrs[] = {{"dist", EM_ATTR_INT},
                                            {"seed", EM_ATTR_INT},
                                            {"offset", EM_ATTR_INT},
                                            {"a", EM_ATTR_FLOAT},
                                            {"b", EM_ATTR_FLOAT},
                                            {"low", EM_ATTR_INT},
                                            {"high", EM_ATTR_INT}};
static const em_attr_decl reduce_attrs[] = {{"axes", EM_ATTR_INTS}, {"keepdim", EM_ATTR_BOOL}};
static const em_attr_decl dim_keep_attrs[] = {{"dim", EM_ATTR_INT}, {"keepdim", EM_ATTR_BOOL}};
static const em_attr_decl dim_attrs[] = {{"dim", EM_ATTR_INT}};
static const em_attr_decl ce_attrs[] = {{"ignore_index", EM_ATTR_INT},
                                        {"reduction", EM_ATTR_INT}};

/* ---- inference ----------------------------------------------------------------- */

/* Reduction over attrs[0].ints (sorted, unique, validated by the caller). */
static int infer_reduce(int nin, em_tensor *const *in, const em_attr *attrs, em_out_desc *out)
{
    const em_tensor *a = in[0];
    bool keep = attrs[1].i != 0;
    int nd = 0, k = 0;
    for (int d = 0; d < a->ndim; d++) {
        bool reduced = k < attrs[0].n && attrs[0].ints[k] == d;
        if (reduced)
            k++;
        if (!reduced)
            out->shape[nd++] = a->shape[d];
        else if (keep)
            out->shape[nd++] = 1;
    }
    out->ndim = nd;
    return EM_OK;
}

static int infer_sum(int nin, em_tensor *const *in, const em_attr *attrs, em_out_desc *out)
{
    infer_reduce(nin, in, attrs, out);
    out->dtype = em_dtype_is_float(in[0]->dtype) ? in[0]->dtype : EM_I64;
    return EM_OK;
}

static int infer_amax(int nin, em_tensor *const *in, const em_attr *attrs, em_out_desc *out)
{
    infer_reduce(nin, in, attrs, out);
    out->dtype = in[0]->dtype;
    return EM_OK;
}

static int infer_mean(int nin, em_tensor *const *in, const em_attr *attrs, em_out_desc *out)
{
    infer_reduce(nin, in, attrs, out);
    out->dtype = in[0]->dtype;
    return EM_OK;
}

static int infer_argmax(int nin, em_tensor *const *in, const em_attr *attrs, em_out_desc *out)
{
    const em_tensor *a = in[0];
    int nd = 0;
    for (int d = 0; d < a->ndim; d++) {
        if (d != attrs[0].i)
            out->shape[nd++] = a->shape[d];
        else if (attrs[1].i)
            out->shape[nd++] = 1;
    }
    out->ndim = nd;
    out->dtype = EM_I64;
    return EM_OK;
}

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

/* gather/scatter_add: dim in range, then index dtype, rank, sizes and bounds. */
static int check_gather_args(const char *fn, em_tensor *const *in, int64_t dim, em_tensor *src)
{
    int n = in[0]->ndim > 0 ? in[0]->ndim : 1;
    if (dim < 0 || dim >= n)
        return em_set_error(EM_ERR_INVALID, "%s: dim %lld out of range for a %d-D tensor", fn,
                            (long long)dim, in[0]->ndim);
    return em__check_index(fn, in[0], (int)dim, in[1], src, true) ? EM_OK : em_last_status();
}

static int infer_gather(int nin, em_tensor *const *in, const em_attr *attrs, em_out_desc *out)
{
    int rc = check_gather_args("gather", in, attrs[0].i, NULL);
    if (rc < 0)
        return rc;
    const em_tensor *idx = in[1];
    out->ndim = idx->ndim;
    memcpy(out->shape, idx->shape, sizeof out->shape);
    out->dtype = in[0]->dtype;
    return EM_OK;
}

/* scatter_add(a, index, src): out has a's shape and dtype; src must have index's shape (the
 * public em_scatter_add narrows a larger src first) and a's dtype. */
static int infer_scatter_add(int nin, em_tensor *const *in, const em_attr *attrs,
                             em_out_desc *out)
{
    int rc = check_gather_args("scatter_add", in, attrs[0].i, in[2]);
    if (rc < 0)
        return rc;
    char b1[160], b2[160];
    if (in[2]->dtype != in[0]->dtype)
        return em_set_error(EM_ERR_INVALID, "scatter_add: src dtype %s differs from input dtype %s",
                            em_dtype_name(in[2]->dtype), em_dtype_name(in[0]->dtype));
    if (memcmp(in[2]->shape, in[1]->shape, (size_t)in[1]->ndim * sizeof *in[1]->shape) != 0)
        return em_set_error(EM_ERR_INVALID, "scatter_add: src %s must have the index's shape %s",
                            em__shape_str(in[2]->ndim, in[2]->shape, b1, sizeof b1),
                            em__shape_str(in[1]->ndim, in[1]->shape, b2, sizeof b2));
    out->ndim = in[0]->ndim;
    memcpy(out->shape, in[0]->shape, sizeof out->shape);
    out->dtype = in[0]->dtype;
    return EM_OK;
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

/* ---- registration -------------------------------------------------------------- */



int em__op_mean, em__op_softmax, em__op_log_softmax, em__op_linear, em__op_cross_entropy,
    em__op_cross_entropy_backward, em__op_linear_relu;

/* Designated initialisers, so fields appended to em_op_def later start out zero. */
#define OP(name_, nin_, nattrs_, attrs_, flags_, infer_, composite_)                      \
    {.struct_size = sizeof(em_op_def), .name = name_, .nin = nin_, .nattrs = nattrs_,      \
     .attrs = attrs_, .flags = flags_, .infer = infer_, .composite = composite_}

#define SAME EM_OP_SAME_AS_INPUT
#define BIN (EM_OP_BROADCAST | EM_OP_PROMOTE | EM_OP_SAME_AS_INPUT)
#define UNARY_F (EM_OP_SAME_AS_INPUT | EM_OP_INT_TO_FLOAT)
#define CMP (EM_OP_BROADCAST | EM_OP_PROMOTE | EM_OP_SAME_AS_INPUT | EM_OP_OUT_BOOL)

int em__register_builtin_ops(void)
{
    /* Order matches the EM__OP_* enum. */
    static const em_op_def defs[] = {
        OP("copy", 1, 0, NULL, SAME, NULL, NULL),
        OP("fill", 0, 1, fill_attrs, SAME, NULL, NULL),
        OP("random", 0, 7, random_attrs, SAME, NULL, NULL),
        OP("neg", 1, 0, NULL, SAME, NULL, NULL),
        OP("abs", 1, 0, NULL, SAME, NULL, NULL),
        OP("exp", 1, 0, NULL, UNARY_F, NULL, NULL),
        OP("log", 1, 0, NULL, UNARY_F, NULL, NULL),
        OP("sqrt", 1, 0, NULL, UNARY_F, NULL, NULL),
        OP("sin", 1, 0, NULL, UNARY_F, NULL, NULL),
        OP("cos", 1, 0, NULL, UNARY_F, NULL, NULL),
        OP("tanh", 1, 0, NULL, UNARY_F, NULL, NULL),
        OP("sigmoid", 1, 0, NULL, UNARY_F, NULL, NULL),
        OP("relu", 1, 0, NULL, SAME, NULL, NULL),
        OP("add", 2, 0, NULL, BIN, NULL, NULL),
        OP("sub", 2, 0, NULL, BIN, NULL, NULL),
        OP("mul", 2, 0, NULL, BIN, NULL, NULL),
        OP("div", 2, 0, NULL, BIN | EM_OP_INT_TO_FLOAT, NULL, NULL),
        OP("pow", 2, 0, NULL, BIN, NULL, NULL),
        OP("maximum", 2, 0, NULL, BIN, NULL, NULL),
        OP("minimum", 2, 0, NULL, BIN, NULL, NULL),
        OP("eq", 2, 0, NULL, CMP, NULL, NULL),
        OP("ne", 2, 0, NULL, CMP, NULL, NULL),
        OP("lt", 2, 0, NULL, CMP, NULL, NULL),
        OP("le", 2, 0, NULL, CMP, NULL, NULL),
        OP("gt", 2, 0, NULL, CMP, NULL, NULL),
        OP("ge", 2, 0, NULL, CMP, NULL, NULL),
        OP("where", 3, 0, NULL, EM_OP_BROADCAST | SAME, NULL, NULL),
        OP("sum", 1, 2, reduce_attrs, 0, infer_sum, NULL),
        OP("amax", 1, 2, reduce_attrs, 0, infer_amax, NULL),
        OP("argmax", 1, 2, dim_keep_attrs, 0, infer_argmax, NULL),
        OP("matmul", 2, 0, NULL, 0, infer_matmul, NULL),
        OP("gather", 2, 1, dim_attrs, 0, infer_gather, NULL),
        OP("scatter_add", 3, 1, dim_attrs, 0, infer_scatter_add, NULL),
    };
    _Static_assert(sizeof defs / sizeof defs[0] == EM__OP_BUILTIN_COUNT, "builtin op table");
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        int id = em_register_op(NULL, &defs[i]);
        if (id < 0)
            return id;
        EM_ASSERT(id == (int)i);
    }
    static const em_op_def composites[] = {
        OP("mean", 1, 2, reduce_attrs, EM_OP_INT_TO_FLOAT | EM_OP_COMPOSITE_F32, infer_mean,
         em__composite_mean),
        OP("softmax", 1, 1, dim_attrs, UNARY_F, NULL, em__composite_softmax),
        OP("log_softmax", 1, 1, dim_attrs, UNARY_F, NULL,
         em__composite_log_softmax),
        OP("linear", 3, 0, NULL, 0, infer_linear, em__composite_linear),
        OP("cross_entropy", 3, 2, ce_attrs, EM_OP_COMPOSITE_F32, infer_cross_entropy,
           em__composite_cross_entropy),
        OP("cross_entropy_backward", 4, 2, ce_attrs, EM_OP_COMPOSITE_F32,
           infer_cross_entropy_backward, em__composite_cross_entropy_backward),
        OP("linear_relu", 3, 0, NULL, 0, infer_linear, em__composite_linear_relu),
    };
    int *ids[] = {&em__op_mean,          &em__op_softmax,
                  &em__op_log_softmax,   &em__op_linear,
                  &em__op_cross_entropy, &em__op_cross_entropy_backward,
                  &em__op_linear_relu};
    _Static_assert(sizeof ids / sizeof ids[0] == sizeof composites / sizeof composites[0],
                   "composite ids");
    for (size_t i = 0; i < sizeof composites / sizeof composites[0]; i++)
        if ((*ids[i] = em_register_op(NULL, &composites[i])) < 0)
            return *ids[i];
    return em__register_optim_ops();
}
