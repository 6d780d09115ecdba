/* backends/cuda/plugin.c - the CUDA backend plugin: descriptor, device enumeration, backend
 * vtable, registration.
 *
 * Every device the CUDA runtime reports becomes cuda:0 .. cuda:N-1. Enumeration at init is
 * one cudaGetDeviceCount plus cudaGetDeviceProperties per device (what `ember info` shows);
 * the stream of a device is created at its first use, cuBLAS at the first matmul. With no
 * driver or no device the backend still registers, with no devices, no kernels and the reason
 * in unavailable_reason, so that `ember info` says why and the rest of Ember keeps working.
 *
 * Dtypes: f32, f64, f16, bf16, i64, i32, u8 and bool for storage, copies and casts; see ops.c
 * for what each op claims.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "cuda.h"

em_cuda_state em_cuda__state;

int em_cuda__fail(const char *what, const char *call, int cuda_err)
{
    cudaError_t e = (cudaError_t)cuda_err;
    return em_set_error(e == cudaErrorMemoryAllocation ? EM_ERR_NOMEM : EM_ERR_DEVICE,
                        "cuda: %s: %s failed: %s (%s)", what, call, cudaGetErrorString(e),
                        cudaGetErrorName(e));
}

/* ---- enumeration ---------------------------------------------------------------------------- */

static void enumerate(em_cuda_state *s)
{
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess || n <= 0) {
        snprintf(s->unavailable, sizeof s->unavailable,
                 "no CUDA device (cudaGetDeviceCount: %s)",
                 err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
        cudaGetLastError();          /* clear the sticky-free error state */
        return;
    }
    if (n > EM_CUDA_MAX_DEVICES)
        n = EM_CUDA_MAX_DEVICES;
    for (int i = 0; i < n; i++) {
        em_cuda_device *d = &s->dev[s->ndev];
        memset(d, 0, sizeof *d);
        struct cudaDeviceProp prop;
        memset(&prop, 0, sizeof prop);
        if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
            cudaGetLastError();
            continue;
        }
        snprintf(d->name, sizeof d->name, "%.127s", prop.name);
        d->total_mem = prop.totalGlobalMem;
        d->sms = prop.multiProcessorCount;
        d->cc_major = prop.major;
        d->cc_minor = prop.minor;
        pthread_mutex_init(&d->lock, NULL);
        em_cuda_raw raw;
        em_cuda__pool_raw(&raw, s->ndev);
        em_cuda__pool_init(&d->pool, &raw);
        s->ndev++;
    }
    if (s->ndev == 0)
        snprintf(s->unavailable, sizeof s->unavailable,
                 "no usable CUDA device (cudaGetDeviceProperties failed on all %d)", n);
}

em_cuda_device *em_cuda__device(int dev, const char *what)
{
    em_cuda_state *s = &em_cuda__state;
    if (em_device_index_check("cuda", what, dev, s->ndev) < 0)
        return NULL;
    em_cuda_device *d = &s->dev[dev];
    cudaError_t err = cudaSetDevice(dev);
    if (err != cudaSuccess) {
        em_cuda__fail(what, "cudaSetDevice", err);
        return NULL;
    }
    pthread_mutex_lock(&d->lock);
    if (!d->ready && !d->ready_err) {
        cudaStream_t st = NULL;
        err = cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
        d->ready_err = (int)err;
        d->ready = err == cudaSuccess;
        d->stream = st;
    }
    int rerr = d->ready_err;
    pthread_mutex_unlock(&d->lock);
    if (rerr) {
        em_cuda__fail(what, "cudaStreamCreate", rerr);
        return NULL;
    }
    return d;
}

/* ---- the backend vtable --------------------------------------------------------------------- */

static int cu_device_count(void *ctx)
{
    (void)ctx;
    return em_cuda__state.ndev;
}

static int cu_device_info(void *ctx, int dev, em_device_info *out)
{
    (void)ctx;
    int rc = em_device_index_check("cuda", "device_info", dev, em_cuda__state.ndev);
    if (rc < 0)
        return rc;
    em_cuda_device *d = &em_cuda__state.dev[dev];
    snprintf(out->name, sizeof out->name, "%s", d->name);
    out->total_memory = d->total_mem;
    size_t fr = 0, tot = 0;
    if (cudaSetDevice(dev) == cudaSuccess && cudaMemGetInfo(&fr, &tot) == cudaSuccess) {
        out->free_memory = fr;
        if (tot)
            out->total_memory = tot;
    } else {
        cudaGetLastError();
    }
    out->threads = d->sms;
    out->compute_major = d->cc_major;
    out->compute_minor = d->cc_minor;
    return EM_OK;
}

static const char *cu_unavailable_reason(void *ctx)
{
    (void)ctx;
    return em_cuda__state.unavailable[0] ? em_cuda__state.unavailable : NULL;
}

static int cu_synchronize(void *ctx, int dev)
{
    (void)ctx;
    em_cuda_device *d = em_cuda__device(dev, "synchronize");
    if (!d)
        return em_last_status();
    cudaError_t err = cudaStreamSynchronize((cudaStream_t)d->stream);
    return err == cudaSuccess ? EM_OK : em_cuda__fail("synchronize", "cudaStreamSynchronize",
                                                      err);
}

static const em_backend_ops cu_backend = {
    .struct_size = sizeof(em_backend_ops),
    .name = "cuda",
    .host_accessible = false,
    .dlpack_device_type = 2,   /* DLPack's kDLCUDA: buffers are CUDA device pointers */
    .device_count = cu_device_count,
    .device_info = cu_device_info,
    .unavailable_reason = cu_unavailable_reason,
    .alloc = em_cuda__alloc,
    .free = em_cuda__free,
    .memory_stats = em_cuda__memory_stats,
    .empty_cache = em_cuda__empty_cache,
    .reset_peak = em_cuda__reset_peak,
    .copy_from_host = em_cuda__copy_from_host,
    .copy_to_host = em_cuda__copy_to_host,
    .copy_device = em_cuda__copy_device,
    .synchronize = cu_synchronize,
    .shutdown = NULL,
};

/* ---- plugin --------------------------------------------------------------------------------- */

/* The CUDA runtime and driver are not made to be unloaded and reloaded within a process (they
 * keep global state and atexit handlers): pin this plugin, and with it libcudart, so that
 * em_shutdown's dlclose leaves them mapped, as the OpenCL plugin does. */
static void pin_self(void)
{
    Dl_info info;
    void *self = (void *)(uintptr_t)&pin_self;
    if (dladdr(self, &info) && info.dli_fname)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE | RTLD_NOLOAD);
}

static int cu_init(em_registry *reg)
{
    em_cuda_state *s = &em_cuda__state;
    pin_self();
    memset(s, 0, sizeof *s);
    enumerate(s);
    int rc = em_register_backend(reg, &cu_backend, NULL);
    if (rc < 0)
        return rc;
    if (s->ndev == 0)
        return EM_OK;            /* registered, unavailable, no kernels */
    rc = em_cuda__register_kernels(reg);
    return rc < 0 ? rc : em_cuda__register_rows(reg);
}

static void cu_shutdown(void)
{
    em_cuda_state *s = &em_cuda__state;
    for (int i = 0; i < s->ndev; i++) {
        em_cuda_device *d = &s->dev[i];
        if (d->ready && cudaSetDevice(i) == cudaSuccess) {
            cudaStreamSynchronize((cudaStream_t)d->stream);
            em_cuda__cublas_destroy(d);
            em_cuda__pool_destroy(&d->pool);
            cudaStreamDestroy((cudaStream_t)d->stream);
        }
        pthread_mutex_destroy(&d->lock);
    }
    memset(s, 0, sizeof *s);
}

EM_PLUGIN_DEFINE(
    "cuda", EMBER_VERSION_STRING,
    "CUDA backend: NVIDIA GPUs, caching allocator, CUDA kernels and cuBLAS matmul",
    cu_init, cu_shutdown)
