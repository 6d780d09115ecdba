/* core/storage.c - reference-counted device memory with a version counter.
 *
 * Storage belongs to one device; its bytes are allocated and freed by that device's backend,
 * except for from_blob and DLPack storage, whose memory belongs to the caller and is handed back
 * through the caller's free_fn.
 */
#include <stdlib.h>

#include "internal.h"

em_storage *em__storage_new(em_backend *be, int dev, size_t nbytes)
{
    em_storage *s = calloc(1, sizeof *s);
    if (!s) {
        em_set_error(EM_ERR_NOMEM, "out of host memory allocating a storage header");
        return NULL;
    }
    s->buf = be->ops->alloc(be->ctx, dev, nbytes);
    if (!s->buf) {
        free(s);
        if (em_last_status() == EM_OK)
            em_set_error(EM_ERR_NOMEM, "%s: out of memory: tried to allocate %zu bytes",
                         be->ops->name, nbytes);
        return NULL;
    }
    atomic_init(&s->refcount, 1);
    atomic_init(&s->version, 0);
    atomic_fetch_add(&be->live, 1);
    s->be = be;
    s->dev = dev;
    s->nbytes = nbytes;
    return s;
}

em_storage *em__storage_wrap(em_backend *be, int dev, void *data, size_t nbytes,
                             void (*free_fn)(void *), void *ctx)
{
    em_storage *s = calloc(1, sizeof *s);
    if (!s) {
        em_set_error(EM_ERR_NOMEM, "out of host memory allocating a storage header");
        return NULL;
    }
    atomic_init(&s->refcount, 1);
    atomic_init(&s->version, 0);
    atomic_fetch_add(&be->live, 1);
    s->be = be;
    s->dev = dev;
    s->buf = data;
    s->nbytes = nbytes;
    s->free_fn = free_fn;
    s->free_ctx = ctx;
    s->external = true;
    return s;
}

void em__storage_retain(em_storage *s) { atomic_fetch_add_explicit(&s->refcount, 1, memory_order_relaxed); }

void em__storage_release(em_storage *s)
{
    if (!s)
        return;
    int prev = atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_acq_rel);
    EM_ASSERT(prev > 0);
    if (prev != 1)
        return;
    atomic_fetch_sub(&s->be->live, 1);
    if (s->external) {
        if (s->free_fn)
            s->free_fn(s->free_ctx);
    } else {
        s->be->ops->free(s->be->ctx, s->dev, s->buf, s->nbytes);
    }
    free(s);
}
