/* core/ops/shape.c - views: new shape/stride/offset headers over the same storage, and the
 * backward of views and copies.
 *
 * A view shares its base's storage and version counter; nothing here copies data except
 * reshape when strides cannot express the new shape (then it returns a contiguous copy, as
 * torch.reshape does).
 */
#include <string.h>

#include "ops_internal.h"

/* A view of t; `grad_name` names the autograd node when t requires grad. */
static em_tensor *make_view(em_tensor *t, int ndim, const int64_t *shape,
                            const int64_t *strides, int64_t offset, const char *grad_name)
{
    em_tensor *v = em__tensor_make(t->storage, t->dtype, ndim, shape, strides, offset);
    if (v && t->requires_grad && em__autograd_view(t, v, grad_name) < 0) {
        em_release(v);
        return NULL;
    }
    return v;
}

/* Resolves a -1 in shape against numel; checks the element count matches. */
static bool infer_shape(const char *fn, const em_tensor *t, int ndim, const int64_t *shape,
                        int64_t *out)
{
    if (ndim < 0 || ndim > EM_MAX_DIMS || (ndim > 0 && !shape)) {
        em_set_error(EM_ERR_INVALID, "%s: bad shape (%d dims)", fn, ndim);
        return false;
    }
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == -1) {
            if (infer >= 0) {
                em_set_error(EM_ERR_INVALID, "%s: only one dim can be -1", fn);
                return false;
            }
            infer = i;
        } else if (shape[i] < 0) {
            em_set_error(EM_ERR_INVALID, "%s: invalid size %lld in dim %d", fn,
                         (long long)shape[i], i);
            return false;
        } else {
            known *= shape[i];
        }
        out[i] = shape[i];
    }
    if (infer >= 0) {
        if (known == 0 || t->numel % known != 0)
            goto bad;
        out[infer] = t->numel / known;
    } else if (known != t->numel) {
        goto bad;
    }
    return true;
bad:;
    char b1[160];
    em_set_error(EM_ERR_INVALID, "%s: shape %s is invalid for input of size %lld", fn,
                 em__shape_str(ndim, shape, b1, sizeof b1), (long long)t->numel);
    return false;
}

/* Strides for viewing t as `shape` without copying, or false (PyTorch's computeStride):
 * walk t's dims in chunks that are contiguous with each other, and map the new dims onto
 * each chunk. */
static bool view_strides(const em_tensor *t, int ndim, const int64_t *shape, int64_t *strides)
{
    if (t->numel == 0 || t->ndim == 0) {
        em__contiguous_strides(ndim, shape, strides);
        return true;
    }
    int view_d = ndim - 1;
    int64_t chunk_base_stride = t->strides[t->ndim - 1];
    int64_t tensor_numel = 1, view_numel = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        tensor_numel *= t->shape[d];
        if (d == 0 || (t->shape[d - 1] != 1 &&
                       t->strides[d - 1] != tensor_numel * chunk_base_stride)) {
            while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
                strides[view_d] = view_numel * chunk_base_stride;
                view_numel *= shape[view_d];
                view_d--;
            }
            if (view_numel != tensor_numel)
                return false;
            if (d > 0) {
                chunk_base_stride = t->strides[d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1;
}

static em_tensor *view(em_tensor *t, int ndim, const int64_t *shape, bool may_copy)
{
    const char *fn = may_copy ? "reshape" : "view";
    EM_CHECK_T(fn, t);
    int64_t s[EM_MAX_DIMS], st[EM_MAX_DIMS];
    if (!infer_shape(fn, t, ndim, shape, s))
        return NULL;
    if (view_strides(t, ndim, s, st))
        return make_view(t, ndim, s, st, t->offset, "ViewBackward0");
    if (!may_copy) {
        char b1[160];
        em_set_error(EM_ERR_INVALID,
                     "view: size %s is not compatible with the input's strides; use "
                     "em_reshape (which copies)",
                     em__shape_str(ndim, s, b1, sizeof b1));
        return NULL;
    }
    em_tensor *c = em_contiguous(t);
    em_tensor *r = c ? view(c, ndim, s, false) : NULL;
    em_release(c);
    return r;
}

em_tensor *em_reshape(em_tensor *t, int ndim, const int64_t *shape)
{
    EM_WRAP(view(t, ndim, shape, true));
}

em_tensor *em_view(em_tensor *t, int ndim, const int64_t *shape)
{
    EM_WRAP(view(t, ndim, shape, false));
}

static em_tensor *flatten(em_tensor *t, int start, int end)
{
    EM_CHECK_T("flatten", t);
    if (t->ndim == 0)
        return view(t, 1, (int64_t[]){1}, true);
    int s = em__wrap_dim("flatten", start, t->ndim), e = em__wrap_dim("flatten", end, t->ndim);
    if (s < 0 || e < 0)
        return NULL;
    if (s > e) {
        em_set_error(EM_ERR_INVALID, "flatten: start_dim %d comes after end_dim %d", s, e);
        return NULL;
    }
    int64_t shape[EM_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < s; d++)
        shape[n++] = t->shape[d];
    int64_t m = 1;
    for (int d = s; d <= e; d++)
        m *= t->shape[d];
    shape[n++] = m;
    for (int d = e + 1; d < t->ndim; d++)
        shape[n++] = t->shape[d];
    return view(t, n, shape, true);
}

em_tensor *em_flatten(em_tensor *t, int start_dim, int end_dim)
{
    EM_WRAP(flatten(t, start_dim, end_dim));
}

static em_tensor *permute(em_tensor *t, int ndim, const int *dims, const char *grad_name)
{
    EM_CHECK_T("permute", t);
    if (ndim != t->ndim || (ndim > 0 && !dims)) {
        em_set_error(EM_ERR_INVALID, "permute: %d dims given for a %d-D tensor", ndim, t->ndim);
        return NULL;
    }
    int64_t shape[EM_MAX_DIMS], strides[EM_MAX_DIMS];
    bool seen[EM_MAX_DIMS] = {0};
    for (int i = 0; i < ndim; i++) {
        int d = em__wrap_dim("permute", dims[i], t->ndim);
        if (d < 0)
            return NULL;
        if (seen[d]) {
            em_set_error(EM_ERR_INVALID, "permute: dim %d repeats", d);
            return NULL;
        }
        seen[d] = true;
        shape[i] = t->shape[d];
        strides[i] = t->strides[d];
    }
    return make_view(t, ndim, shape, strides, t->offset, grad_name);
}

em_tensor *em_permute(em_tensor *t, int ndim, const int *dims)
{
    EM_WRAP(permute(t, ndim, dims, "PermuteBackward0"));
}

static em_tensor *transpose(em_tensor *t, int d0, int d1, const char *grad_name)
{
    EM_CHECK_T("transpose", t);
    if (t->ndim == 0)
        return make_view(t, 0, NULL, NULL, t->offset, grad_name);
    int a = em__wrap_dim("transpose", d0, t->ndim), b = em__wrap_dim("transpose", d1, t->ndim);
    if (a < 0 || b < 0)
        return NULL;
    int dims[EM_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++)
        dims[i] = i;
    dims[a] = b;
    dims[b] = a;
    return permute(t, t->ndim, dims, grad_name);
}

em_tensor *em_transpose(em_tensor *t, int dim0, int dim1)
{
    EM_WRAP(transpose(t, dim0, dim1, "TransposeBackward0"));
}

static em_tensor *t2(em_tensor *t)
{
    EM_CHECK_T("t", t);
    if (t->ndim > 2) {
        em_set_error(EM_ERR_INVALID, "t: expects a tensor with <= 2 dims, got %d", t->ndim);
        return NULL;
    }
    return t->ndim < 2 ? make_view(t, t->ndim, t->shape, t->strides, t->offset, "TBackward0")
                       : transpose(t, 0, 1, "TBackward0");
}

em_tensor *em_t(em_tensor *t) { EM_WRAP(t2(t)); }

static em_tensor *slice(const char *fn, em_tensor *t, int dim, int64_t start, int64_t end,
                        int64_t step)
{
    EM_CHECK_T(fn, t);
    if (t->ndim == 0) {
        em_set_error(EM_ERR_INVALID, "%s: cannot slice a 0-dim tensor", fn);
        return NULL;
    }
    int d = em__wrap_dim(fn, dim, t->ndim);
    if (d < 0)
        return NULL;
    if (step <= 0) {
        em_set_error(EM_ERR_INVALID, "%s: step must be positive, got %lld", fn, (long long)step);
        return NULL;
    }
    int64_t n = t->shape[d];
    if (start < 0)
        start += n;
    if (end < 0)
        end += n;
    start = start < 0 ? 0 : (start > n ? n : start);
    end = end < start ? start : (end > n ? n : end);
    int64_t shape[EM_MAX_DIMS], strides[EM_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    memcpy(strides, t->strides, sizeof strides);
    shape[d] = (end - start + step - 1) / step;
    strides[d] = t->strides[d] * step;
    return make_view(t, t->ndim, shape, strides, t->offset + start * t->strides[d],
                     "SliceBackward0");
}

em_tensor *em_slice(em_tensor *t, int dim, int64_t start, int64_t end, int64_t step)
{
    EM_WRAP(slice("slice", t, dim, start, end, step));
}

static em_tensor *narrow(em_tensor *t, int dim, int64_t start, int64_t length)
{
    EM_CHECK_T("narrow", t);
    int d = em__wrap_dim("narrow", dim, t->ndim);
    if (d < 0)
        return NULL;
    int64_t n = t->ndim ? t->shape[d] : 1;
    if (start < 0)
        start += n;
    if (start < 0 || length < 0 || start + length > n) {
        em_set_error(EM_ERR_INVALID,
                     "narrow: start %lld + length %lld exceeds dim %d of size %lld",
                     (long long)start, (long long)length, d, (long long)n);
        return NULL;
    }
    return slice("narrow", t, d, start, start + length, 1);
}

em_tensor *em_narrow(em_tensor *t, int dim, int64_t start, int64_t length)
{
    EM_WRAP(narrow(t, dim, start, length));
}

static em_tensor *select_(em_tensor *t, int dim, int64_t index)
{
    EM_CHECK_T("select", t);
    if (t->ndim == 0) {
        em_set_error(EM_ERR_INVALID, "select: cannot index a 0-dim tensor");
        return NULL;
    }
    int d = em__wrap_dim("select", dim, t->ndim);
    if (d < 0)
        return NULL;
    int64_t n = t->shape[d];
    if (index < -n || index >= n) {
        em_set_error(EM_ERR_INVALID, "select: index %lld is out of bounds for dim %d of size %lld",
                     (long long)index, d, (long long)n);
        return NULL;
    }
    if (index < 0)
        index += n;
    int64_t shape[EM_MAX_DIMS], strides[EM_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < t->ndim; i++)
        if (i != d) {
            shape[k] = t->shape[i];
            strides[k++] = t->strides[i];
        }
    return make_view(t, k, shape, strides, t->offset + index * t->strides[d],
                     "SelectBackward0");
}

em_tensor *em_select(em_tensor *t, int dim, int64_t index) { EM_WRAP(select_(t, dim, index)); }

static em_tensor *squeeze(em_tensor *t, int dim, bool all)
{
    EM_CHECK_T("squeeze", t);
    int d = all || t->ndim == 0 ? -1 : em__wrap_dim("squeeze", dim, t->ndim);
    if (!all && t->ndim > 0 && d < 0)
        return NULL;
    int64_t shape[EM_MAX_DIMS], strides[EM_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < t->ndim; i++) {
        bool drop = t->shape[i] == 1 && (all || i == d);
        if (!drop) {
            shape[k] = t->shape[i];
            strides[k++] = t->strides[i];
        }
    }
    return make_view(t, k, shape, strides, t->offset, all ? "SqueezeBackward0" : "SqueezeBackward1");
}

em_tensor *em_squeeze(em_tensor *t, int dim) { EM_WRAP(squeeze(t, dim, false)); }
em_tensor *em_squeeze_all(em_tensor *t) { EM_WRAP(squeeze(t, 0, true)); }

static em_tensor *unsqueeze(em_tensor *t, int dim)
{
    EM_CHECK_T("unsqueeze", t);
    if (t->ndim == EM_MAX_DIMS) {
        em_set_error(EM_ERR_INVALID, "unsqueeze: tensor already has %d dims", EM_MAX_DIMS);
        return NULL;
    }
    if (dim < -(t->ndim + 1) || dim > t->ndim) {
        em_set_error(EM_ERR_INVALID,
                     "unsqueeze: dim %d out of range for a %d-D tensor (expected %d to %d)", dim,
                     t->ndim, -(t->ndim + 1), t->ndim);
        return NULL;
    }
    int d = dim < 0 ? dim + t->ndim + 1 : dim;
    int64_t shape[EM_MAX_DIMS], strides[EM_MAX_DIMS];
    for (int i = 0, k = 0; i <= t->ndim; i++) {
        if (i == d) {
            shape[i] = 1;
            strides[i] = d < t->ndim ? t->strides[d] * t->shape[d] : 1;
        } else {
            shape[i] = t->shape[k];
            strides[i] = t->strides[k++];
        }
    }
    return make_view(t, t->ndim + 1, shape, strides, t->offset, "UnsqueezeBackward0");
}

em_tensor *em_unsqueeze(em_tensor *t, int dim) { EM_WRAP(unsqueeze(t, dim)); }

static em_tensor *expand(em_tensor *t, int ndim, const int64_t *shape)
{
    EM_CHECK_T("expand", t);
    char b1[160], b2[160];
    if (ndim < t->ndim || ndim > EM_MAX_DIMS || (ndim > 0 && !shape)) {
        em_set_error(EM_ERR_INVALID, "expand: cannot expand %s to %d dims",
                     em__shape_str(t->ndim, t->shape, b1, sizeof b1), ndim);
        return NULL;
    }
    int64_t s[EM_MAX_DIMS], st[EM_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        int k = d - (ndim - t->ndim);
        int64_t want = shape[d];
        if (k < 0) {
            if (want < 0)
                goto bad;
            s[d] = want;
            st[d] = 0;
            continue;
        }
        if (want == -1)
            want = t->shape[k];
        if (want == t->shape[k]) {
            s[d] = want;
            st[d] = t->strides[k];
        } else if (t->shape[k] == 1 && want >= 0) {
            s[d] = want;
            st[d] = 0;
        } else {
            goto bad;
        }
    }
    return make_view(t, ndim, s, st, t->offset, "ExpandBackward0");
bad:
    em_set_error(EM_ERR_INVALID, "expand: shape %s cannot be expanded to %s",
                 em__shape_str(t->ndim, t->shape, b1, sizeof b1),
                 em__shape_str(ndim, shape, b2, sizeof b2));
    return NULL;
}

em_tensor *em_expand(em_tensor *t, int ndim, const int64_t *shape)
{
    EM_WRAP(expand(t, ndim, shape));
}

/* ---- backward of views and copies ------------------------------------------------------------ */

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
