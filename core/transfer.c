/* core/transfer.c - copies: casts, contiguous copies, device transfers, host access. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "module_internal.h"


/* Byte copy of a contiguous tensor's data between devices, through the cheapest path the
 * two backends offer. */
static int transfer_bytes(em_tensor *dst, em_tensor *src)
{
    em_backend *sb = src->storage->be, *db = dst->storage->be;
    size_t esz = em_dtype_size(src->dtype);
    size_t n = (size_t)src->numel * esz;
    size_t soff = (size_t)src->offset * esz, doff = (size_t)dst->offset * esz;
    if (n == 0)
        return EM_OK;
    if (sb == db && sb->ops->copy_device)
        return sb->ops->copy_device(sb->ctx, dst->storage->dev, dst->storage->buf, doff,
                                    src->storage->dev, src->storage->buf, soff, n);
    if (sb->ops->host_accessible)
        return db->ops->copy_from_host(db->ctx, dst->storage->dev, dst->storage->buf, doff,
                                       (char *)src->storage->buf + soff, n);
    if (db->ops->host_accessible)
        return sb->ops->copy_to_host(sb->ctx, src->storage->dev,
                                     (char *)dst->storage->buf + doff, src->storage->buf, soff,
                                     n);
    void *stage = malloc(n);
    if (!stage)
        return em_set_error(EM_ERR_NOMEM, "transfer: out of host memory staging %zu bytes", n);
    int rc = sb->ops->copy_to_host(sb->ctx, src->storage->dev, stage, src->storage->buf, soff, n);
    if (rc == EM_OK)
        rc = db->ops->copy_from_host(db->ctx, dst->storage->dev, dst->storage->buf, doff, stage, n);
    free(stage);
    return rc;
}

/* A contiguous copy of t on device d (t's dtype); no autograd. */
static em_tensor *to_device_raw(em_tensor *t, em_device d)
{
    em_tensor *c = em_contiguous(t);
    if (!c)
        return NULL;
    em_tensor *r = em__tensor_alloc(d, t->dtype, t->ndim, t->shape);
    if (r && transfer_bytes(r, c) < 0) {
        em_release(r);
        r = NULL;
    }
    em_release(c);
    return r;
}

int em__tensor_move(em_tensor *t, em_device d)
{
    if (em_device_eq(d, em__tensor_device(t)))
        return EM_OK;
    em_tensor *c = to_device_raw(t, d);
    if (!c)
        return em_last_status();
    /* t takes c's storage and layout; c's header dies with its reference to nothing else */
    em_storage *old = t->storage;
    t->storage = c->storage;
    em__storage_retain(c->storage);
    t->offset = c->offset;
    memcpy(t->strides, c->strides, sizeof t->strides);
    em__storage_release(old);
    em_release(c);
    return EM_OK;
}

/* Writes src (broadcast to dst's shape, cast, from any device) into dst's memory. Returns
 * dst retained, or NULL. Bumps dst's version. */
em_tensor *em__copy_into(em_tensor *dst, em_tensor *src)
{
    em_tensor *moved = NULL, *view = NULL;
    if (!em_device_eq(em__tensor_device(dst), em__tensor_device(src))) {
        if (!(moved = to_device_raw(src, em__tensor_device(dst))))
            return NULL;
        src = moved;
    }
    em_tensor *r = NULL;
    if (!(view = em_expand(src, dst->ndim, dst->shape))) {
        char b1[160], b2[160];
        if (em_last_status() != EM_ERR_NOMEM)   /* out of memory is its own, true, message */
            em_set_error(EM_ERR_INVALID, "copy_: source of shape %s cannot be broadcast to %s",
                         em__shape_str(src->ndim, src->shape, b1, sizeof b1),
                         em__shape_str(dst->ndim, dst->shape, b2, sizeof b2));
        goto done;
    }
    if (em__run_kernel(EM__OP_COPY, 1, &view, 1, &dst, NULL) < 0)
        goto done;
    atomic_fetch_add_explicit(&dst->storage->version, 1, memory_order_relaxed);
    em_retain(dst);
    r = dst;
done:
    em_release(view);
    em_release(moved);
    return r;
}


static em_tensor *copy_(em_tensor *dst, em_tensor *src)
{
    EM_CHECK_T("copy_", dst);
    EM_CHECK_T("copy_", src);
    if (em__check_inplace("copy_", dst) < 0)
        return NULL;
    em_tensor *r = em__copy_into(dst, src);
    if (r && (src->requires_grad ? em__autograd_cast(src, dst, "CopyBackwards")
                                 : em__autograd_reset_history(dst, "CopyBackwards")) < 0) {
        em_release(r);
        return NULL;
    }
    return r;
}

em_tensor *em_copy_(em_tensor *dst, em_tensor *src) { EM_WRAP(copy_(dst, src)); }

/* A fresh contiguous tensor of dtype dt with t's values, on t's device. */
static em_tensor *copy_as(em_tensor *t, em_dtype dt)
{
    em_tensor *r = em__tensor_alloc(em__tensor_device(t), dt, t->ndim, t->shape);
    if (r && em__run_kernel(EM__OP_COPY, 1, &t, 1, &r, NULL) < 0) {
        em_release(r);
        return NULL;
    }
    return r;
}

static em_tensor *to_dtype(em_tensor *t, em_dtype dt)
{
    EM_CHECK_T("to_dtype", t);
    if (dt <= EM_DTYPE_UNSPEC || dt >= EM_DTYPE_COUNT) {
        em_set_error(EM_ERR_INVALID, "to_dtype: invalid dtype %d", (int)dt);
        return NULL;
    }
    if (t->dtype == dt) {
        em_retain(t);
        return t;
    }
    em_tensor *r = copy_as(t, dt);
    if (r && t->requires_grad && em__autograd_cast(t, r, "ToCopyBackward0") < 0) {
        em_release(r);
        return NULL;
    }
    return r;
}

em_tensor *em_to_dtype(em_tensor *t, em_dtype dt) { EM_WRAP(to_dtype(t, dt)); }

static em_tensor *contiguous(em_tensor *t)
{
    EM_CHECK_T("contiguous", t);
    if (em_is_contiguous(t)) {
        em_retain(t);
        return t;
    }
    em_tensor *r = copy_as(t, t->dtype);
    if (r && t->requires_grad && em__autograd_cast(t, r, "CloneBackward0") < 0) {
        em_release(r);
        return NULL;
    }
    return r;
}

em_tensor *em_contiguous(em_tensor *t) { EM_WRAP(contiguous(t)); }

static em_tensor *clone(em_tensor *t)
{
    EM_CHECK_T("clone", t);
    em_tensor *r = copy_as(t, t->dtype);
    if (r && t->requires_grad && em__autograd_cast(t, r, "CloneBackward0") < 0) {
        em_release(r);
        return NULL;
    }
    return r;
}

em_tensor *em_clone(em_tensor *t) { EM_WRAP(clone(t)); }

static em_tensor *to(em_tensor *t, em_device d)
{
    EM_CHECK_T("to", t);
    d = em__resolve_device(d);
    if (em__device_check("to", d) < 0)
        return NULL;
    if (em_device_eq(d, em__tensor_device(t))) {
        em_retain(t);
        return t;
    }
    em_tensor *r = to_device_raw(t, d);
    if (r && t->requires_grad && em__autograd_to(t, r) < 0) {
        em_release(r);
        return NULL;
    }
    return r;
}

em_tensor *em_to(em_tensor *t, em_device d) { EM_WRAP(to(t, d)); }

static em_tensor *cpu(em_tensor *t)
{
    EM_CHECK_T("cpu", t);
    em_backend *be = em__cpu_backend();
    if (!be)
        return NULL;
    em_device d = {be->id, 0};
    return to(t, d);
}

em_tensor *em_cpu(em_tensor *t) { EM_WRAP(cpu(t)); }

/* ---- host access ------------------------------------------------------------------- */

int em_copy_to_host(const em_tensor *t, void *dst, size_t nbytes)
{
    if (!t)
        return em__null_arg("em_copy_to_host", "t");
    size_t need = (size_t)t->numel * em_dtype_size(t->dtype);
    if (nbytes < need)
        return em_set_error(EM_ERR_INVALID,
                            "em_copy_to_host: buffer of %zu bytes is too small for %lld "
                            "elements of %s (%zu bytes)",
                            nbytes, (long long)t->numel, em_dtype_name(t->dtype), need);
    if (need == 0)
        return EM_OK;
    if (!dst)
        return em_set_error(EM_ERR_INVALID, "em_copy_to_host: dst is NULL");
    em__api_depth++;   /* the contiguous temporary below must not enter a scope */
    em_tensor *c = em_contiguous((em_tensor *)t);
    em__api_depth--;
    if (!c)
        return em_last_status();
    em_backend *be = c->storage->be;
    size_t off = (size_t)c->offset * em_dtype_size(c->dtype);
    int rc;
    if (be->ops->host_accessible) {
        memcpy(dst, (char *)c->storage->buf + off, need);
        rc = EM_OK;
    } else {
        rc = be->ops->copy_to_host(be->ctx, c->storage->dev, dst, c->storage->buf, off, need);
    }
    em_release(c);
    return rc;
}

double em__to_double(const void *p, em_dtype dt)
{
    switch (dt) {
    case EM_F32: return *(const float *)p;
    case EM_F64: return *(const double *)p;
    case EM_F16: return em_f16_to_f32(*(const uint16_t *)p);
    case EM_BF16: return em_bf16_to_f32(*(const uint16_t *)p);
    case EM_I64: return (double)*(const int64_t *)p;
    case EM_I32: return *(const int32_t *)p;
    case EM_U8: return *(const uint8_t *)p;
    case EM_BOOL: return *(const uint8_t *)p ? 1.0 : 0.0;
    default: return NAN;
    }
}

double em_item(const em_tensor *t)
{
    if (!t) {
        em__null_arg("em_item", "t");
        return NAN;
    }
    if (t->numel != 1) {
        char b[160];
        em_set_error(EM_ERR_INVALID,
                     "em_item: a tensor with %lld elements (shape %s) cannot be converted to a "
                     "scalar",
                     (long long)t->numel, em__shape_str(t->ndim, t->shape, b, sizeof b));
        return NAN;
    }
    unsigned char buf[8];
    if (em_copy_to_host(t, buf, sizeof buf) < 0)
        return NAN;
    return em__to_double(buf, t->dtype);
}
