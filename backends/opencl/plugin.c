/* backends/opencl/plugin.c - the OpenCL backend plugin: descriptor, device enumeration,
 * backend vtable, registration.
 *
 * Every GPU, CPU and accelerator device of every OpenCL platform becomes one Ember device,
 * opencl:0 .. opencl:N-1, in platform then device order. Enumeration happens at init (it is
 * what `ember info` shows); the context and in-order queue of a device are created at its
 * first use. With no OpenCL platform or no usable device the backend still registers, with no
 * devices and the reason (the OpenCL error) in unavailable_reason, so that `ember info` says
 * why and the rest of Ember keeps working.
 *
 * Dtypes: f32, f16, bf16 (f16 and bf16 stored as ushort and computed in f32, as on the CPU),
 * i64, i32, u8 and bool on every device with 64-bit integers; f64 only where the device has
 * cl_khr_fp64. Devices without 64-bit integers (embedded profile) are skipped: every kernel
 * indexes with 64-bit offsets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "opencl.h"

#ifndef CL_DEVICE_GLOBAL_FREE_MEMORY_AMD
#define CL_DEVICE_GLOBAL_FREE_MEMORY_AMD 0x4039
#endif

em_ocl_state em_ocl__state;

/* ---- enumeration ---------------------------------------------------------------------------- */

static bool has_extension(cl_device_id id, const char *ext)
{
    size_t n = 0;
    if (clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, 0, NULL, &n) != CL_SUCCESS || n == 0)
        return false;
    char *s = malloc(n + 1);
    if (!s)
        return false;
    bool found = false;
    if (clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, n, s, NULL) == CL_SUCCESS) {
        s[n] = '\0';
        size_t len = strlen(ext);
        for (const char *p = strstr(s, ext); p && !found; p = strstr(p + 1, ext))
            found = (p == s || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0');
    }
    free(s);
    return found;
}

/* Trims the spaces some drivers pad names with. */
static void trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n'))
        s[--n] = '\0';
    size_t k = strspn(s, " ");
    if (k)
        memmove(s, s + k, n - k + 1);
}

/* Fills d from the device's properties; false when the device cannot run the kernels. */
static bool describe(em_ocl_device *d, cl_platform_id plat, cl_device_id id)
{
    memset(d, 0, sizeof *d);
    d->platform = plat;
    d->id = id;
    clGetDeviceInfo(id, CL_DEVICE_TYPE, sizeof d->type, &d->type, NULL);
    char name[128] = "", pname[64] = "", profile[32] = "";
    clGetDeviceInfo(id, CL_DEVICE_NAME, sizeof name - 1, name, NULL);
    clGetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof pname - 1, pname, NULL);
    clGetDeviceInfo(id, CL_DEVICE_VERSION, sizeof d->version - 1, d->version, NULL);
    clGetDeviceInfo(id, CL_DEVICE_PROFILE, sizeof profile - 1, profile, NULL);
    trim(name);
    trim(pname);
    trim(d->version);
    if (strcmp(pname, "Portable Computing Language") == 0)
        snprintf(pname, sizeof pname, "PoCL");
    snprintf(d->name, sizeof d->name, "%.90s (%.30s)", name[0] ? name : "OpenCL device",
             pname[0] ? pname : "OpenCL");
    cl_ulong gmem = 0, maxalloc = 0, lmem = 0;
    clGetDeviceInfo(id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof gmem, &gmem, NULL);
    clGetDeviceInfo(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxalloc, &maxalloc, NULL);
    clGetDeviceInfo(id, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL);
    clGetDeviceInfo(id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof d->max_wg, &d->max_wg, NULL);
    clGetDeviceInfo(id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof d->compute_units,
                    &d->compute_units, NULL);
    d->global_mem = (size_t)gmem;
    d->max_alloc = maxalloc ? (size_t)maxalloc : (size_t)gmem / 4;
    d->local_mem = (size_t)lmem;
    if (d->max_wg == 0)
        d->max_wg = 1;
    if (d->compute_units == 0)
        d->compute_units = 1;
    cl_device_fp_config fp = 0;
    clGetDeviceInfo(id, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL);
#ifdef CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT
    d->divsqrt = (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) != 0;
#endif
    /* CPU devices get the kernels shaped for CPUs (register-blocked matmul, reductions by
     * contiguous runs). EMBER_OPENCL_GPU_PATHS=1 makes them take the GPU paths instead, so
     * that those are tested on PoCL too. */
    const char *gpu_paths = getenv("EMBER_OPENCL_GPU_PATHS");
    d->cpu_paths = (d->type & CL_DEVICE_TYPE_CPU) &&
                   !(gpu_paths && strcmp(gpu_paths, "1") == 0);
    d->fp64 = has_extension(id, "cl_khr_fp64");
    d->amd_free_mem = has_extension(id, "cl_amd_device_attribute_query");
    bool int64 = strcmp(profile, "FULL_PROFILE") == 0 || has_extension(id, "cles_khr_int64");
    d->dtypes = EM_DTYPE_BIT(EM_F32) | EM_DTYPE_BIT(EM_F16) | EM_DTYPE_BIT(EM_BF16) |
                EM_DTYPE_BIT(EM_I64) | EM_DTYPE_BIT(EM_I32) | EM_DTYPE_BIT(EM_U8) |
                EM_DTYPE_BIT(EM_BOOL) | (d->fp64 ? EM_DTYPE_BIT(EM_F64) : 0u);
    /* The cache keeps at most a quarter of the device's memory. */
    d->pool.cache_max = d->global_mem / 4;
    return int64;
}

static void enumerate(em_ocl_state *s)
{
    cl_uint nplat = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &nplat);
    if (err != CL_SUCCESS || nplat == 0) {
        snprintf(s->unavailable, sizeof s->unavailable,
                 "no OpenCL platform (clGetPlatformIDs: %s)",
                 err != CL_SUCCESS ? em_ocl__errstr(err) : "0 platforms");
        return;
    }
    cl_platform_id plats[16];
    if (nplat > 16)
        nplat = 16;
    if ((err = clGetPlatformIDs(nplat, plats, NULL)) != CL_SUCCESS) {
        snprintf(s->unavailable, sizeof s->unavailable,
                 "no OpenCL platform (clGetPlatformIDs: %s)", em_ocl__errstr(err));
        return;
    }
    const cl_device_type want = CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_CPU |
                                CL_DEVICE_TYPE_ACCELERATOR;
    int skipped = 0;
    cl_int last = CL_DEVICE_NOT_FOUND;
    for (cl_uint p = 0; p < nplat && s->ndev < EM_OCL_MAX_DEVICES; p++) {
        cl_device_id ids[EM_OCL_MAX_DEVICES];
        cl_uint n = 0;
        err = clGetDeviceIDs(plats[p], want, EM_OCL_MAX_DEVICES, ids, &n);
        if (err != CL_SUCCESS) {
            last = err;
            continue;
        }
        if (n > EM_OCL_MAX_DEVICES)
            n = EM_OCL_MAX_DEVICES;
        for (cl_uint i = 0; i < n && s->ndev < EM_OCL_MAX_DEVICES; i++) {
            em_ocl_device *d = &s->dev[s->ndev];
            if (!describe(d, plats[p], ids[i])) {
                skipped++;
                continue;
            }
            pthread_mutex_init(&d->lock, NULL);
            s->ndev++;
        }
    }
    if (s->ndev == 0)
        snprintf(s->unavailable, sizeof s->unavailable, "%s", skipped
                 ? "no usable OpenCL device (the devices found lack 64-bit integers)"
                 : "no OpenCL device");
    if (s->ndev == 0 && !skipped)
        snprintf(s->unavailable + strlen(s->unavailable),
                 sizeof s->unavailable - strlen(s->unavailable),
                 " (clGetDeviceIDs on %u platform%s: %s)", nplat, nplat == 1 ? "" : "s",
                 em_ocl__errstr(last));
}

/* Creates the context and queue of d at its first use (caller holds d->lock). */
static cl_int make_ready(em_ocl_device *d)
{
    cl_int err;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)d->platform,
                                     0};
    d->ctx = clCreateContext(props, 1, &d->id, NULL, NULL, &err);
    if (!d->ctx)
        return err;
    d->queue = clCreateCommandQueue(d->ctx, d->id, 0, &err);
    if (!d->queue) {
        clReleaseContext(d->ctx);
        d->ctx = NULL;
        return err;
    }
    return CL_SUCCESS;
}

/* Devices are enumerated at first use, not at em_init: clGetPlatformIDs loads the OpenCL
 * implementation (PoCL brings LLVM, ~56 MB resident), which a run on another backend should
 * not pay for. Everything that reads the device table goes through here first. */
static pthread_mutex_t enum_lock = PTHREAD_MUTEX_INITIALIZER;
static bool enumerated;

static void ensure_enumerated(void)
{
    pthread_mutex_lock(&enum_lock);
    if (!enumerated) {
        enumerate(&em_ocl__state);
        enumerated = true;
    }
    pthread_mutex_unlock(&enum_lock);
}

em_ocl_device *em_ocl__device(int dev, const char *what)
{
    ensure_enumerated();
    em_ocl_state *s = &em_ocl__state;
    if (em_device_index_check("opencl", what, dev, s->ndev) < 0)
        return NULL;
    em_ocl_device *d = &s->dev[dev];
    pthread_mutex_lock(&d->lock);
    if (!d->ready && !d->ready_err) {
        d->ready_err = make_ready(d);
        d->ready = d->ready_err == CL_SUCCESS;
    }
    cl_int err = d->ready_err;
    pthread_mutex_unlock(&d->lock);
    if (err != CL_SUCCESS) {
        em_set_error(EM_ERR_DEVICE, "opencl: %s: cannot create a context on opencl:%d '%s' (%s)",
                     what, dev, d->name, em_ocl__errstr(err));
        return NULL;
    }
    return d;
}

/* ---- the backend vtable --------------------------------------------------------------------- */

/* The device of a kernel call, after checking that it supports every dtype the call uses
 * (kernels claim all dtypes before devices are enumerated): an unsupported one is
 * EM_ERR_UNSUPPORTED, which callers and the conformance runner treat as "no kernel". */
em_ocl_device *em_ocl__kernel_device(const em_kcall *c, const char *op, int nin, int nout,
                                     int nattrs)
{
    if (em_kcall_check(c, "opencl", nin, nout, nattrs) < 0)
        return NULL;
    em_ocl_device *d = em_ocl__device(c->device, op);
    if (!d)
        return NULL;
    for (int i = 0; i < c->nin + c->nout; i++) {
        em_dtype dt = i < c->nin ? c->in[i].dtype : c->out[i - c->nin].dtype;
        if (!(d->dtypes & EM_DTYPE_BIT(dt))) {
            em_set_error(EM_ERR_UNSUPPORTED,
                         "op '%s' has no kernel for dtype %s on backend 'opencl' (opencl:%d '%s' "
                         "lacks it%s)",
                         op, em_dtype_name(dt), c->device, d->name,
                         dt == EM_F64 ? ": no cl_khr_fp64" : "");
            return NULL;
        }
    }
    return d;
}

static int ocl_device_count(void *ctx)
{
    (void)ctx;
    ensure_enumerated();
    return em_ocl__state.ndev;
}

/* MemAvailable from /proc/meminfo: what a CPU device can still use. 0 if unknown. */
static size_t host_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[128];
    unsigned long long kb;
    size_t r = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
            r = (size_t)kb * 1024;
            break;
        }
    fclose(f);
    return r;
}

/* Free memory: the AMD query where it exists, the host's for CPU devices, else the total
 * less what Ember holds (OpenCL has no portable query). */
static size_t free_memory(em_ocl_device *d)
{
    if (d->amd_free_mem) {
        size_t kb[2] = {0, 0};
        if (clGetDeviceInfo(d->id, CL_DEVICE_GLOBAL_FREE_MEMORY_AMD, sizeof kb, kb, NULL) ==
                CL_SUCCESS && kb[0])
            return kb[0] * 1024;
    }
    size_t total = d->global_mem;
    if (d->type & CL_DEVICE_TYPE_CPU) {
        size_t avail = host_available();
        if (avail)
            return avail < total ? avail : total;
    }
    pthread_mutex_lock(&d->lock);
    size_t held = d->pool.held + d->pool.cached_bytes;
    pthread_mutex_unlock(&d->lock);
    return held < total ? total - held : 0;
}

static int ocl_device_info(void *ctx, int dev, em_device_info *out)
{
    (void)ctx;
    ensure_enumerated();
    int rc = em_device_index_check("opencl", "device_info", dev, em_ocl__state.ndev);
    if (rc < 0)
        return rc;
    em_ocl_device *d = &em_ocl__state.dev[dev];
    snprintf(out->name, sizeof out->name, "%s", d->name);
    out->total_memory = d->global_mem;
    out->free_memory = free_memory(d);
    out->threads = (int)d->compute_units;
    return EM_OK;
}

static const char *ocl_unavailable_reason(void *ctx)
{
    (void)ctx;
    ensure_enumerated();
    return em_ocl__state.unavailable[0] ? em_ocl__state.unavailable : NULL;
}

static int ocl_synchronize(void *ctx, int dev)
{
    (void)ctx;
    em_ocl_device *d = em_ocl__device(dev, "synchronize");
    if (!d)
        return em_last_status();
    cl_int err = clFinish(d->queue);
    return err == CL_SUCCESS ? EM_OK : em_ocl__fail("synchronize", "clFinish", err);
}

static const em_backend_ops ocl_backend = {
    .struct_size = sizeof(em_backend_ops),
    .name = "opencl",
    .host_accessible = false,
    .device_count = ocl_device_count,
    .device_info = ocl_device_info,
    .unavailable_reason = ocl_unavailable_reason,
    .alloc = em_ocl__alloc,
    .free = em_ocl__free,
    .memory_stats = em_ocl__memory_stats,
    .empty_cache = em_ocl__empty_cache,
    .reset_peak = em_ocl__reset_peak,
    .copy_from_host = em_ocl__copy_from_host,
    .copy_to_host = em_ocl__copy_to_host,
    .copy_device = em_ocl__copy_device,
    .synchronize = ocl_synchronize,
    .shutdown = NULL,
};

/* ---- plugin --------------------------------------------------------------------------------- */

static int ocl_init(em_registry *reg)
{
    em_ocl_state *s = &em_ocl__state;
    memset(s, 0, sizeof *s);
    enumerated = false;
    int rc = em_register_backend(reg, &ocl_backend, NULL);
    if (rc < 0)
        return rc;
    /* Kernels are registered before the devices are known (see ensure_enumerated), so they
     * claim every dtype here; each call checks its device (em_ocl__kernel_device) and reports
     * a dtype the device lacks (float64 without cl_khr_fp64) as unsupported. */
    int (*const families[])(em_registry *, uint32_t) = {
        em_ocl__register_elementwise, em_ocl__register_reduce, em_ocl__register_matmul,
        em_ocl__register_rows, em_ocl__register_optim};
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        rc = families[i](reg, EM_DTYPES_ALL);
        if (rc < 0)
            return rc;
    }
    return EM_OK;
}

static void ocl_shutdown(void)
{
    em_ocl_state *s = &em_ocl__state;
    enumerated = false;
    for (int i = 0; i < s->ndev; i++) {
        em_ocl_device *d = &s->dev[i];
        if (d->ready) {
            clFinish(d->queue);
            em_ocl__pool_release(d);
            em_ocl__programs_release(d);
            clReleaseCommandQueue(d->queue);
            clReleaseContext(d->ctx);
        }
        pthread_mutex_destroy(&d->lock);
    }
    memset(s, 0, sizeof *s);
}

EM_PLUGIN_DEFINE(
    "opencl", EMBER_VERSION_STRING,
    "OpenCL backend: every OpenCL GPU/CPU/accelerator device, pooled buffers, OpenCL C kernels",
    ocl_init, ocl_shutdown)
