/* core/ops/reduce.c - reductions over axes: sum, amax, argmax (primitives) and mean (a
 * composite): public wrappers, definitions with shape inference, mean's composite and the
 * backward formulas.
 */
#include <string.h>

#include "ops_internal.h"

static const em_attr_decl reduce_attrs[] = {{"axes", EM_ATTR_INTS}, {"keepdim", EM_ATTR_BOOL}};
static const em_attr_decl dim_keep_attrs[] = {{"dim", EM_ATTR_INT}, {"keepdim", EM_ATTR_BOOL}};

/* ---- wrappers ----------------------------------------------------------------------------- */

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

/* ---- definitions -------------------------------------------------------------------------- */

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

const em_op_def em__def_sum = OP("sum", 1, 2, reduce_attrs, 0, infer_sum, NULL);
const em_op_def em__def_amax = OP("amax", 1, 2, reduce_attrs, 0, infer_amax, NULL);
const em_op_def em__def_argmax = OP("argmax", 1, 2, dim_keep_attrs, 0, infer_argmax, NULL);
const em_op_def em__def_mean = OP("mean", 1, 2, reduce_attrs,
                                  EM_OP_INT_TO_FLOAT | EM_OP_COMPOSITE_F32, infer_mean,
                                  em__composite_mean);

/* ---- mean's composite ---------------------------------------------------------------------- */

/* mean = sum / count over attrs[0].ints. float16 and bfloat16 inputs arrive widened to
 * float32 (EM_OP_COMPOSITE_F32: the count itself overflows float16 above 65504 elements, and
 * so may the sum) and the result is rounded once, as PyTorch's accumulate type does. */
em_tensor *em__composite_mean(int nin, em_tensor *const *in, const em_attr *attrs)
{
    em_tensor *a = in[0];
    int dims[EM_MAX_DIMS];
    int64_t count = 1;
    for (int i = 0; i < attrs[0].n; i++) {
        dims[i] = (int)attrs[0].ints[i];
        count *= a->shape[dims[i]];
    }
    em_tensor *s = em_sum(a, attrs[0].n, dims, attrs[1].i != 0);
    /* count == 0 gives nan, as in PyTorch */
    em_tensor *r = em_div_scalar(s, (double)count);
    em_release(s);
    return r;
}

/* ---- backward ------------------------------------------------------------------------------ */

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

const em__formula em__grad_sum = {"SumBackward1", b_sum, 0};
const em__formula em__grad_amax = {"AmaxBackward0", b_amax, EM__SAVE_IN0 | EM__SAVE_OUT};
const em__formula em__grad_mean = {"MeanBackward1", b_mean, 0};
