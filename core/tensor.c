/* core/tensor.c - the tensor object: lifetime, metadata and creation.
 *
 * A tensor is a view (offset, shape, strides in elements) onto a storage. Creation functions
 * here allocate through the device's backend and fill through ops, so they work on every
 * backend.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- shapes ---------------------------------------------------------------- */

int64_t em__shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

void em__contiguous_strides(int ndim, const int64_t *shape, int64_t *strides)
{
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= shape[i] > 1 ? shape[i] : 1;
    }
}

const char *em__shape_str(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, size - n, "[");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
    return buf;
}

bool em__shape_check(const char *fn, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > EM_MAX_DIMS) {
        em_set_error(EM_ERR_INVALID, "%s: %d dims requested; Ember supports 0 to %d", fn, ndim,
                     EM_MAX_DIMS);
        return false;
    }
    if (ndim > 0 && !shape) {
        em_set_error(EM_ERR_INVALID, "%s: shape is NULL for a %d-D tensor", fn, ndim);
        return false;
    }
    int64_t total = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            char b[160];
            em_set_error(EM_ERR_INVALID, "%s: negative size %lld in dim %d of shape %s", fn,
                         (long long)shape[i], i, em__shape_str(ndim, shape, b, sizeof b));
            return false;
        }
        if (shape[i] > 0 && total > INT64_MAX / 16 / shape[i]) {
            em_set_error(EM_ERR_INVALID, "%s: shape too large", fn);
            return false;
        }
        total *= shape[i];
    }
    return true;
}

int em__wrap_dim(const char *fn, int dim, int ndim)
{
    int n = ndim > 0 ? ndim : 1;   /* a 0-dim tensor accepts dim 0 and -1, as PyTorch */
    if (dim < -n || dim >= n) {
        em_set_error(EM_ERR_INVALID,
                     "%s: dim %d out of range for a %d-D tensor (expected %d to %d)", fn, dim,
                     ndim, -n, n - 1);
        return -1;
    }
    return dim < 0 ? dim + n : dim;
}

/* ---- lifetime ---------------------------------------------------------------- */

em_tensor *em__tensor_make(em_storage *s, em_dtype dt, int ndim, const int64_t *shape,
                           const int64_t *strides, int64_t offset)
{
    em_tensor *t = malloc(sizeof *t);
    if (!t) {
        em_set_error(EM_ERR_NOMEM, "out of host memory allocating a tensor header");
        return NULL;
    }
    atomic_init(&t->refcount, 1);
    t->dtype = dt;
    t->ndim = ndim;
    t->requires_grad = false;
    t->wrapped_number = false;
    t->storage = s;
    em__storage_retain(s);
    t->offset = offset;
    t->ag = NULL;
    if (ndim > 0) {
        memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
        if (strides)
            memcpy(t->strides, strides, (size_t)ndim * sizeof *strides);
        else
            em__contiguous_strides(ndim, shape, t->strides);
    }
    t->numel = em__shape_numel(ndim, shape);
    return t;
}

em_tensor *em__tensor_alloc(em_device d, em_dtype dt, int ndim, const int64_t *shape)
{
    em_backend *be = em__backend(d.backend);
    if (!be) {
        em_set_error(EM_ERR_DEVICE, "no backend with id %d", d.backend);
        return NULL;
    }
    size_t nbytes = (size_t)em__shape_numel(ndim, shape) * em_dtype_size(dt);
    em_storage *s = em__storage_new(be, d.index, nbytes);
    if (!s)
        return NULL;
    em_tensor *t = em__tensor_make(s, dt, ndim, shape, NULL, 0);
    em__storage_release(s);
    return t;
}

void em_retain(em_tensor *t)
{
    if (t)
        atomic_fetch_add_explicit(&t->refcount, 1, memory_order_relaxed);
}

void em_release(em_tensor *t)
{
    if (!t)
        return;
    int prev = atomic_fetch_sub_explicit(&t->refcount, 1, memory_order_acq_rel);
    EM_ASSERT(prev > 0);
    if (prev != 1)
        return;
    if (t->ag)
        em__autograd_free(t);
    em__storage_release(t->storage);
    free(t);
}

/* ---- metadata ------------------------------------------------------------------ */

int em_ndim(const em_tensor *t) { return t ? t->ndim : -1; }
const int64_t *em_shape(const em_tensor *t) { return t ? t->shape : NULL; }
const int64_t *em_strides(const em_tensor *t) { return t ? t->strides : NULL; }
int64_t em_numel(const em_tensor *t) { return t ? t->numel : -1; }
int64_t em_storage_offset(const em_tensor *t) { return t ? t->offset : -1; }
em_dtype em_dtype_of(const em_tensor *t) { return t ? t->dtype : EM_DTYPE_UNSPEC; }

int64_t em_size(const em_tensor *t, int dim)
{
    if (!t) {
        em__null_arg("em_size", "t");
        return -1;
    }
    int d = em__wrap_dim("em_size", dim, t->ndim);
    if (d < 0)
        return -1;
    return t->ndim ? t->shape[d] : 1;
}

em_device em__tensor_device(const em_tensor *t)
{
    em_device d = {t->storage->be->id, t->storage->dev};
    return d;
}

em_device em_device_of(const em_tensor *t)
{
    if (!t) {
        em_device none = {0, -1};
        return none;
    }
    return em__tensor_device(t);
}

bool em_is_contiguous(const em_tensor *t)
{
    if (!t)
        return false;
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] == 1)
            continue;
        if (t->strides[i] != expect)
            return false;
        expect *= t->shape[i];
    }
    return true;
}

uint64_t em_tensor_version(const em_tensor *t)
{
    return t ? atomic_load_explicit(&t->storage->version, memory_order_relaxed) : 0;
}

bool em_same_storage(const em_tensor *a, const em_tensor *b)
{
    return a && b && a->storage == b->storage;
}

void em__ktensor(const em_tensor *t, em_ktensor *kt)
{
    kt->buf = t->storage->buf;
    kt->offset = t->offset;
    kt->dtype = t->dtype;
    kt->ndim = t->ndim;
    kt->numel = t->numel;
    kt->shape = t->shape;
    kt->strides = t->strides;
}

void *em_data_ptr(em_tensor *t)
{
    if (!t) {
        em__null_arg("em_data_ptr", "t");
        return NULL;
    }
    if (!t->storage->be->ops->host_accessible) {
        em_set_error(EM_ERR_DEVICE, "em_data_ptr: tensor lives on '%s', not in host memory; "
                                    "copy it with em_cpu() first",
                     t->storage->be->ops->name);
        return NULL;
    }
    return (char *)t->storage->buf + t->offset * (int64_t)em_dtype_size(t->dtype);
}
