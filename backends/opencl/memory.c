/* backends/opencl/memory.c - device memory: cl_mem buffers from a caching pool per device,
 * the memory statistics, and copies between host and device and between buffers.
 *
 * Sizes are rounded up (to 512 bytes, and to 1 MiB above 1 MiB) and freed buffers go into a
 * per-device cache, from which the smallest block that fits without wasting more than half of
 * it is reused: device allocation is slow on every OpenCL implementation, and PyTorch's CUDA
 * caching allocator is the model (reserved = allocated + cached). Reusing a buffer at once
 * is safe because each device has one in-order queue: whatever a later command writes into a
 * reused buffer is ordered after every command that used it before. The cache is bounded;
 * an allocation that fails empties it and retries once. em_empty_cache() releases it.
 *
 * Host copies are blocking (the caller may reuse its memory when they return); buffer to
 * buffer copies on one device are enqueued; across devices (two contexts) they go through a
 * host staging buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opencl.h"

#define SMALL_ROUND ((size_t)512)
#define LARGE_MIN ((size_t)1 << 20)

static size_t block_size(size_t nbytes)
{
    if (nbytes >= LARGE_MIN)
        return (nbytes + LARGE_MIN - 1) / LARGE_MIN * LARGE_MIN;
    return nbytes == 0 ? SMALL_ROUND : (nbytes + SMALL_ROUND - 1) / SMALL_ROUND * SMALL_ROUND;
}

/* The smallest cached block of at least `size` bytes and at most twice that; caller holds
 * the pool lock. */
static cl_mem cache_take(em_ocl_pool *p, size_t size, size_t *got)
{
    int best = -1;
    for (int i = 0; i < p->ncached; i++)
        if (p->cached[i].size >= size && p->cached[i].size / 2 <= size &&
            (best < 0 || p->cached[i].size < p->cached[best].size))
            best = i;
    if (best < 0)
        return NULL;
    cl_mem m = p->cached[best].mem;
    *got = p->cached[best].size;
    p->cached_bytes -= *got;
    p->cached[best] = p->cached[--p->ncached];
    return m;
}

/* Takes every cached buffer out of the pool into `out` (caller holds the lock). */
static int cache_drain(em_ocl_pool *p, cl_mem *out)
{
    int n = p->ncached;
    for (int i = 0; i < n; i++)
        out[i] = p->cached[i].mem;
    p->ncached = 0;
    p->cached_bytes = 0;
    return n;
}

static void release_all(cl_mem *mems, int n)
{
    for (int i = 0; i < n; i++)
        clReleaseMemObject(mems[i]);
}

void em_ocl__pool_release(em_ocl_device *d)
{
    cl_mem mems[EM_OCL_POOL_SLOTS];
    pthread_mutex_lock(&d->lock);
    int n = cache_drain(&d->pool, mems);
    pthread_mutex_unlock(&d->lock);
    release_all(mems, n);
}

/* A buffer of block_size(nbytes) bytes, from the cache or the device; NULL with the error
 * set. *size gets the real size. */
static cl_mem pool_get(em_ocl_device *d, size_t nbytes, size_t *size)
{
    size_t want = block_size(nbytes);
    if (nbytes > d->max_alloc) {
        em_set_error(EM_ERR_NOMEM, "opencl: cannot allocate %zu bytes on '%s': one buffer may "
                     "hold at most %zu (CL_DEVICE_MAX_MEM_ALLOC_SIZE)", nbytes, d->name,
                     d->max_alloc);
        return NULL;
    }
    if (want > d->max_alloc)
        want = nbytes ? nbytes : 1;
    pthread_mutex_lock(&d->lock);
    cl_mem m = cache_take(&d->pool, want, size);
    pthread_mutex_unlock(&d->lock);
    if (m)
        return m;
    cl_int err;
    m = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, want, NULL, &err);
    if (!m) {
        /* The cache may be what is in the way: hand it back and retry once. */
        em_ocl__pool_release(d);
        m = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, want, NULL, &err);
    }
    if (!m) {
        em_set_error(err == CL_INVALID_BUFFER_SIZE || err == CL_MEM_OBJECT_ALLOCATION_FAILURE ||
                             err == CL_OUT_OF_RESOURCES || err == CL_OUT_OF_HOST_MEMORY
                         ? EM_ERR_NOMEM
                         : EM_ERR_DEVICE,
                     "opencl: out of memory on '%s' allocating %zu bytes (clCreateBuffer: %s)",
                     d->name, nbytes, em_ocl__errstr(err));
        return NULL;
    }
    *size = want;
    return m;
}

/* Back into the cache, or released when the cache is full. */
static void pool_put(em_ocl_device *d, cl_mem m, size_t size)
{
    bool kept = false;
    pthread_mutex_lock(&d->lock);
    em_ocl_pool *p = &d->pool;
    if (p->ncached < EM_OCL_POOL_SLOTS && p->cached_bytes + size <= p->cache_max) {
        p->cached[p->ncached].mem = m;
        p->cached[p->ncached++].size = size;
        p->cached_bytes += size;
        kept = true;
    }
    pthread_mutex_unlock(&d->lock);
    if (!kept)
        clReleaseMemObject(m);
}

/* The real size of a buffer, which the pool needs back at free (callers pass the size they
 * asked for, which may round to a different block when the buffer came from the cache). */
static size_t mem_size(cl_mem m)
{
    size_t size = 0;
    clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof size, &size, NULL);
    return size;
}

void *em_ocl__alloc(void *ctx, int dev, size_t nbytes)
{
    (void)ctx;
    em_ocl_device *d = em_ocl__device(dev, "alloc");
    if (!d)
        return NULL;
    size_t size = 0;
    cl_mem m = pool_get(d, nbytes, &size);
    if (!m)
        return NULL;
    pthread_mutex_lock(&d->lock);
    em_ocl_pool *p = &d->pool;
    p->held += size;
    p->requested += nbytes;
    if (p->requested > p->peak)
        p->peak = p->requested;
    pthread_mutex_unlock(&d->lock);
    return (void *)m;
}

void em_ocl__free(void *ctx, int dev, void *buf, size_t nbytes)
{
    (void)ctx;
    cl_mem m = (cl_mem)buf;
    if (!m)
        return;
    if (dev < 0 || dev >= em_ocl__state.ndev) {
        /* A tensor that outlived em_shutdown (the plugin is gone, its buffer is not). */
        clReleaseMemObject(m);
        return;
    }
    em_ocl_device *d = &em_ocl__state.dev[dev];
    size_t size = mem_size(m);
    pthread_mutex_lock(&d->lock);
    d->pool.held -= size;
    d->pool.requested -= nbytes;
    pthread_mutex_unlock(&d->lock);
    pool_put(d, m, size);
}

cl_mem em_ocl__scratch(em_ocl_device *d, size_t nbytes)
{
    size_t size;
    return pool_get(d, nbytes, &size);
}

void em_ocl__scratch_free(em_ocl_device *d, cl_mem m, size_t nbytes)
{
    (void)nbytes;
    if (m)
        pool_put(d, m, mem_size(m));
}

/* Device dev's entry, without making it ready (no context is created just to read or reset
 * its pool); NULL after em_device_index_check's error. */
static em_ocl_device *listed_device(int dev, const char *what)
{
    if (em_device_index_check("opencl", what, dev, em_ocl__state.ndev) < 0)
        return NULL;
    return &em_ocl__state.dev[dev];
}

int em_ocl__memory_stats(void *ctx, int dev, em_memory_stats *out)
{
    em_ocl_device *d = listed_device(dev, "memory_stats");
    if (!d)
        return em_last_status();
    pthread_mutex_lock(&d->lock);
    out->allocated = d->pool.requested;
    out->reserved = d->pool.held + d->pool.cached_bytes;
    out->peak = d->pool.peak;
    pthread_mutex_unlock(&d->lock);
    return EM_OK;
}

int em_ocl__reset_peak(void *ctx, int dev)
{
    em_ocl_device *d = listed_device(dev, "reset_peak");
    if (!d)
        return em_last_status();
    pthread_mutex_lock(&d->lock);
    d->pool.peak = d->pool.requested;
    pthread_mutex_unlock(&d->lock);
    return EM_OK;
}

int em_ocl__empty_cache(void *ctx, int dev)
{
    em_ocl_device *d = listed_device(dev, "empty_cache");
    if (!d)
        return em_last_status();
    em_ocl__pool_release(d);
    return EM_OK;
}

/* ---- copies --------------------------------------------------------------------------------- */

/* One blocking transfer between host memory and a buffer of device dev: `what` names the
 * vtable entry in errors. */
static int host_transfer(int dev, const char *what, bool to_device, cl_mem buf, size_t off,
                         void *host, size_t nbytes)
{
    em_ocl_device *d = em_ocl__device(dev, what);
    if (!d)
        return em_last_status();
    if (nbytes == 0)
        return EM_OK;
    cl_int err = to_device ? clEnqueueWriteBuffer(d->queue, buf, CL_TRUE, off, nbytes, host, 0,
                                                  NULL, NULL)
                           : clEnqueueReadBuffer(d->queue, buf, CL_TRUE, off, nbytes, host, 0,
                                                 NULL, NULL);
    if (err == CL_SUCCESS)
        return EM_OK;
    return to_device ? em_ocl__fail("copy to the device", "clEnqueueWriteBuffer", err)
                     : em_ocl__fail("copy to the host", "clEnqueueReadBuffer", err);
}

int em_ocl__copy_from_host(void *ctx, int dev, void *dst, size_t dst_off, const void *src,
                           size_t nbytes)
{
    return host_transfer(dev, "copy_from_host", true, (cl_mem)dst, dst_off, (void *)src, nbytes);
}

int em_ocl__copy_to_host(void *ctx, int dev, void *dst, const void *src, size_t src_off,
                         size_t nbytes)
{
    return host_transfer(dev, "copy_to_host", false, (cl_mem)src, src_off, dst, nbytes);
}

int em_ocl__copy_bytes(em_ocl_device *d, cl_mem dst, size_t dst_off, cl_mem src, size_t src_off,
                       size_t nbytes)
{
    if (nbytes == 0 || (dst == src && dst_off == src_off))
        return EM_OK;
    cl_int err;
    if (dst == src && dst_off < src_off + nbytes && src_off < dst_off + nbytes) {
        /* Overlapping ranges of one buffer, which clEnqueueCopyBuffer refuses: through a
         * scratch buffer, as memmove would. */
        cl_mem tmp = em_ocl__scratch(d, nbytes);
        if (!tmp)
            return em_last_status();
        err = clEnqueueCopyBuffer(d->queue, src, tmp, src_off, 0, nbytes, 0, NULL, NULL);
        if (err == CL_SUCCESS)
            err = clEnqueueCopyBuffer(d->queue, tmp, dst, 0, dst_off, nbytes, 0, NULL, NULL);
        em_ocl__scratch_free(d, tmp, nbytes);
    } else {
        err = clEnqueueCopyBuffer(d->queue, src, dst, src_off, dst_off, nbytes, 0, NULL, NULL);
    }
    return err == CL_SUCCESS ? EM_OK : em_ocl__fail("copy between buffers",
                                                    "clEnqueueCopyBuffer", err);
}

int em_ocl__copy_device(void *ctx, int dev_dst, void *dst, size_t dst_off, int dev_src,
                        const void *src, size_t src_off, size_t nbytes)
{
    em_ocl_device *dd = em_ocl__device(dev_dst, "copy_device");
    em_ocl_device *ds = dd ? em_ocl__device(dev_src, "copy_device") : NULL;
    if (!dd || !ds)
        return em_last_status();
    if (nbytes == 0)
        return EM_OK;
    if (dd == ds)
        return em_ocl__copy_bytes(dd, (cl_mem)dst, dst_off, (cl_mem)src, src_off, nbytes);
    /* Two contexts: through the host, in chunks of at most 64 MiB. */
    size_t chunk = nbytes < ((size_t)64 << 20) ? nbytes : ((size_t)64 << 20);
    char *tmp = malloc(chunk);
    if (!tmp)
        return em_set_error(EM_ERR_NOMEM, "opencl: out of host memory staging a copy between "
                            "devices");
    int rc = EM_OK;
    for (size_t done = 0; done < nbytes && rc == EM_OK; done += chunk) {
        size_t n = nbytes - done < chunk ? nbytes - done : chunk;
        rc = em_ocl__copy_to_host(ctx, dev_src, tmp, src, src_off + done, n);
        if (rc == EM_OK)
            rc = em_ocl__copy_from_host(ctx, dev_dst, dst, dst_off + done, tmp, n);
    }
    free(tmp);
    return rc;
}
