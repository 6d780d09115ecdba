/* core/ops/index.c - gather and scatter_add along a dim: the index checks both share, public
 * wrappers, definitions with shape inference and backward formulas (each is the other's).
 */
#include <stdlib.h>
#include <string.h>

#include "ops_internal.h"

static const em_attr_decl dim_attrs[] = {{"dim", EM_ATTR_INT}};

/* ---- index checks ------------------------------------------------------------------------ */

/* Reads the int64 tensor t on the host. Returns -1 when every value is in [0, size) or equals
 * *skip (skip may be NULL), else the position of the first that is not (its value in *bad), or
 * -2 with the error set when t cannot be read. */
int64_t em__first_out_of_range(const char *fn, em_tensor *t, int64_t size, const int64_t *skip,
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

/* Checks index dtype, rank, sizes and (with `values`) bounds, PyTorch's rules for
 * gather/scatter_add. The infer functions of both ops call it, so em_op_call("gather", ...)
 * is checked as well as em_gather. */
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
    int64_t at = em__first_out_of_range(fn, index, size, NULL, &bad);
    if (at >= 0)
        em_set_error(EM_ERR_INVALID, "%s: index %lld is out of bounds for dim %d of size %lld",
                     fn, (long long)bad, dim, (long long)size);
    return at == -1;
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

/* ---- gather -------------------------------------------------------------------------------- */

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

const em_op_def em__def_gather = OP("gather", 2, 1, dim_attrs, 0, infer_gather, NULL);

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

const em__formula em__grad_gather = {"GatherBackward0", b_gather, EM__SAVE_IN1};

/* ---- scatter_add --------------------------------------------------------------------------- */

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

const em_op_def em__def_scatter_add = OP("scatter_add", 3, 1, dim_attrs, 0, infer_scatter_add,
                                         NULL);

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

const em__formula em__grad_scatter_add = {"ScatterAddBackward0", b_scatter_add, EM__SAVE_IN1};
