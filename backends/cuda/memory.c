/* backends/cuda/memory.c - device memory through the caching allocator (caching.c) over
 * cudaMalloc/cudaFree, the memory statistics, and copies.
 *
 * Released blocks go back to the device's pool, never to cudaFree, and are reused at once:
 * safe because every kernel and copy of a device runs in order on its one stream.
 * em_empty_cache() synchronises the stream and hands every entirely free segment back to the
 * driver. Host copies are cudaMemcpyAsync on the device's stream followed by
 * cudaStreamSynchronize (the caller may reuse or read its host memory when they return;
 * correctness over speed: no pinned staging yet). Buffer to buffer copies on one device are
 * enqueued on its stream; across devices they use cudaMemcpyPeerAsync on the source's
 * stream, synchronised, after the destination's stream has drained.
 */
#include <stdio.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "cuda.h"

/* ---- the raw allocator ---------------------------------------------------------------------- */

static void *raw_alloc(void *ctx, size_t nbytes)
{
    int dev = (int)(intptr_t)ctx;
    void *p = NULL;
    if (cudaSetDevice(dev) != cudaSuccess || cudaMalloc(&p, nbytes) != cudaSuccess) {
        cudaGetLastError();          /* out of memory is not sticky: clear it */
        return NULL;
    }
    return p;
}

static void raw_free(void *ctx, void *ptr, size_t nbytes)
{
    (void)nbytes;
    cudaSetDevice((int)(intptr_t)ctx);
    /* cudaFree synchronises the device: nothing still running can touch the segment. */
    cudaFree(ptr);
}

static size_t raw_free_mem(void *ctx)
{
    size_t fr = 0, tot = 0;
    if (cudaSetDevice((int)(intptr_t)ctx) != cudaSuccess || cudaMemGetInfo(&fr, &tot) !=
            cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return fr;
}

void em_cuda__pool_raw(em_cuda_raw *raw, int dev)
{
    raw->alloc = raw_alloc;
    raw->free = raw_free;
    raw->free_mem = raw_free_mem;
    raw->ctx = (void *)(intptr_t)dev;
}

/* ---- alloc, free, stats ---------------------------------------------------------------------- */

void *em_cuda__alloc(void *ctx, int dev, size_t nbytes)
{
    (void)ctx;
    em_cuda_device *d = em_cuda__device(dev, "alloc");
    if (!d)
        return NULL;
    pthread_mutex_lock(&d->lock);
    void *p = em_cuda__pool_alloc(&d->pool, nbytes);
    char msg[sizeof d->pool.oom];
    snprintf(msg, sizeof msg, "%s", d->pool.oom);
    pthread_mutex_unlock(&d->lock);
    if (!p) {
        if (msg[0])
            em_set_error(EM_ERR_NOMEM, "%s", msg);
        else
            em_set_error(EM_ERR_NOMEM, "cuda: alloc: out of host memory for the block table");
    }
    return p;
}

void em_cuda__free(void *ctx, int dev, void *buf, size_t nbytes)
{
    (void)ctx;
    (void)nbytes;
    if (!buf || dev < 0 || dev >= em_cuda__state.ndev)
        return;
    em_cuda_device *d = &em_cuda__state.dev[dev];
    pthread_mutex_lock(&d->lock);
    bool ok = em_cuda__pool_free(&d->pool, buf);
    pthread_mutex_unlock(&d->lock);
    if (!ok)
        em_warn("cuda: free: %p is not a live block of cuda:%d", buf, dev);
}

/* Device dev's entry, without making it current or creating its stream (reading or resetting
 * the pool's statistics needs neither); NULL after em_device_index_check's error. */
static em_cuda_device *listed_device(int dev, const char *what)
{
    if (em_device_index_check("cuda", what, dev, em_cuda__state.ndev) < 0)
        return NULL;
    return &em_cuda__state.dev[dev];
}

int em_cuda__memory_stats(void *ctx, int dev, em_memory_stats *out)
{
    em_cuda_device *d = listed_device(dev, "memory_stats");
    if (!d)
        return em_last_status();
    pthread_mutex_lock(&d->lock);
    out->allocated = d->pool.allocated;
    out->reserved = d->pool.reserved;
    out->peak = d->pool.peak;
    pthread_mutex_unlock(&d->lock);
    return EM_OK;
}

int em_cuda__empty_cache(void *ctx, int dev)
{
    (void)ctx;
    em_cuda_device *d = em_cuda__device(dev, "empty_cache");
    if (!d)
        return em_last_status();
    cudaStreamSynchronize((cudaStream_t)d->stream);
    pthread_mutex_lock(&d->lock);
    em_cuda__pool_empty_cache(&d->pool);
    pthread_mutex_unlock(&d->lock);
    return EM_OK;
}

int em_cuda__reset_peak(void *ctx, int dev)
{
    em_cuda_device *d = listed_device(dev, "reset_peak");
    if (!d)
        return em_last_status();
    pthread_mutex_lock(&d->lock);
    em_cuda__pool_reset_peak(&d->pool);
    pthread_mutex_unlock(&d->lock);
    return EM_OK;
}

/* ---- copies ---------------------------------------------------------------------------------- */

/* One copy between host memory and device dev's memory, finished before it returns: `what`
 * names the vtable entry in errors. */
static int host_transfer(int dev, const char *what, void *dst, const void *src, size_t nbytes,
                         enum cudaMemcpyKind kind)
{
    if (nbytes == 0)
        return EM_OK;
    em_cuda_device *d = em_cuda__device(dev, what);
    if (!d)
        return em_last_status();
    cudaStream_t st = (cudaStream_t)d->stream;
    cudaError_t err = cudaMemcpyAsync(dst, src, nbytes, kind, st);
    if (err == cudaSuccess)
        err = cudaStreamSynchronize(st);
    return err == cudaSuccess ? EM_OK : em_cuda__fail(what, "cudaMemcpyAsync", err);
}

int em_cuda__copy_from_host(void *ctx, int dev, void *dst, size_t dst_off, const void *src,
                            size_t nbytes)
{
    return host_transfer(dev, "copy_from_host", (char *)dst + dst_off, src, nbytes,
                         cudaMemcpyHostToDevice);
}

int em_cuda__copy_to_host(void *ctx, int dev, void *dst, const void *src, size_t src_off,
                          size_t nbytes)
{
    return host_transfer(dev, "copy_to_host", dst, (const char *)src + src_off, nbytes,
                         cudaMemcpyDeviceToHost);
}

int em_cuda__copy_device(void *ctx, int dev_dst, void *dst, size_t dst_off, int dev_src,
                         const void *src, size_t src_off, size_t nbytes)
{
    (void)ctx;
    if (nbytes == 0)
        return EM_OK;
    em_cuda_device *dd = em_cuda__device(dev_dst, "copy_device");
    if (!dd)
        return em_last_status();
    em_cuda_device *ds = em_cuda__device(dev_src, "copy_device");
    if (!ds)
        return em_last_status();
    cudaError_t err;
    if (dev_dst == dev_src) {
        err = cudaMemcpyAsync((char *)dst + dst_off, (const char *)src + src_off, nbytes,
                              cudaMemcpyDeviceToDevice, (cudaStream_t)ds->stream);
        return err == cudaSuccess ? EM_OK
                                  : em_cuda__fail("copy_device", "cudaMemcpyAsync", err);
    }
    /* Across devices: the destination's earlier work must be done before the copy writes,
     * and the copy done before either stream goes on. */
    err = cudaStreamSynchronize((cudaStream_t)dd->stream);
    if (err == cudaSuccess)
        err = cudaMemcpyPeerAsync((char *)dst + dst_off, dev_dst, (const char *)src + src_off,
                                  dev_src, nbytes, (cudaStream_t)ds->stream);
    if (err == cudaSuccess)
        err = cudaStreamSynchronize((cudaStream_t)ds->stream);
    return err == cudaSuccess ? EM_OK : em_cuda__fail("copy_device", "cudaMemcpyPeerAsync", err);
}
