/* backends/cpu/plugin.c - the CPU backend plugin: descriptor, backend vtable, registration.
 *
 * Registers backend "cpu" (one device, host memory) and a kernel for every primitive in
 * docs/primitives.md. Memory comes from memory.c (small buffers from malloc, large ones
 * from a bounded cache of freed blocks).
 * The thread count is read once at init (em_config_threads()) and used by the kernel thread
 * pool; the GEMM micro-kernel is picked once at init from the CPU's feature bits (gemm.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu.h"
#include "gemm.h"

/* ---- memory (memory.c) ---------------------------------------------------------------------- */

static int check_dev(int dev)
{
    if (dev != 0)
        return em_set_error(EM_ERR_DEVICE, "cpu: no device %d (the CPU backend has one)", dev);
    return EM_OK;
}

static void *cpu_alloc(void *ctx, int dev, size_t nbytes)
{
    (void)ctx;
    return check_dev(dev) == EM_OK ? em_cpu__alloc(nbytes) : NULL;
}

static void cpu_free(void *ctx, int dev, void *buf, size_t nbytes)
{
    (void)ctx;
    (void)dev;
    em_cpu__free(buf, nbytes);
}

static int cpu_memory_stats(void *ctx, int dev, em_memory_stats *out)
{
    (void)ctx;
    int rc = check_dev(dev);
    if (rc != EM_OK)
        return rc;
    em_cpu__memory_stats(out);
    return EM_OK;
}

static int cpu_reset_peak(void *ctx, int dev)
{
    (void)ctx;
    int rc = check_dev(dev);
    if (rc != EM_OK)
        return rc;
    em_cpu__reset_peak();
    return EM_OK;
}

static int cpu_empty_cache(void *ctx, int dev)
{
    (void)ctx;
    int rc = check_dev(dev);
    if (rc == EM_OK)
        em_cpu__empty_cache();
    return rc;
}

/* ---- copies ----------------------------------------------------------------------------------- */

static int cpu_copy_from_host(void *ctx, int dev, void *dst, size_t dst_off, const void *src,
                              size_t nbytes)
{
    (void)ctx;
    int rc = check_dev(dev);
    if (rc == EM_OK && nbytes > 0)
        memcpy((char *)dst + dst_off, src, nbytes);
    return rc;
}

static int cpu_copy_to_host(void *ctx, int dev, void *dst, const void *src, size_t src_off,
                            size_t nbytes)
{
    (void)ctx;
    int rc = check_dev(dev);
    if (rc == EM_OK && nbytes > 0)
        memcpy(dst, (const char *)src + src_off, nbytes);
    return rc;
}

static int cpu_copy_device(void *ctx, int dev_dst, void *dst, size_t dst_off, int dev_src,
                           const void *src, size_t src_off, size_t nbytes)
{
    (void)ctx;
    int rc = check_dev(dev_dst);
    if (rc == EM_OK)
        rc = check_dev(dev_src);
    if (rc == EM_OK && nbytes > 0)
        memmove((char *)dst + dst_off, (const char *)src + src_off, nbytes);
    return rc;
}

/* ---- device --------------------------------------------------------------------------------- */

static char cpu_model[96];

/* "model name" from /proc/cpuinfo (x86), else a generic name. */
static void read_cpu_model(void)
{
    snprintf(cpu_model, sizeof cpu_model, "CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *v = strchr(line, ':');
        if (!v)
            break;
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t n = strcspn(v, "\n");
        if (n >= sizeof cpu_model)
            n = sizeof cpu_model - 1;
        memcpy(cpu_model, v, n);
        cpu_model[n] = '\0';
        break;
    }
    fclose(f);
}

/* MemAvailable from /proc/meminfo in bytes, else free pages from sysconf. */
static size_t free_memory(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[128];
        unsigned long long kb;
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
                fclose(f);
                return (size_t)kb * 1024;
            }
        }
        fclose(f);
    }
    long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0;
}

static int cpu_device_count(void *ctx)
{
    (void)ctx;
    return 1;
}

static int cpu_device_info(void *ctx, int dev, em_device_info *out)
{
    (void)ctx;
    int rc = check_dev(dev);
    if (rc != EM_OK)
        return rc;
    out->threads = em_cpu__pool_threads();
    snprintf(out->name, sizeof out->name, "%s (%d threads)", cpu_model, out->threads);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    out->total_memory = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0;
    out->free_memory = free_memory();
    em_cpu__gemm_describe(out->kernels, sizeof out->kernels);
    return EM_OK;
}

static int cpu_synchronize(void *ctx, int dev)
{
    (void)ctx;
    return check_dev(dev);             /* kernels return when done */
}

static const em_backend_ops cpu_backend = {
    .struct_size = sizeof(em_backend_ops),
    .name = "cpu",
    .host_accessible = true,
    .device_count = cpu_device_count,
    .device_info = cpu_device_info,
    .unavailable_reason = NULL,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .memory_stats = cpu_memory_stats,
    .empty_cache = cpu_empty_cache,
    .reset_peak = cpu_reset_peak,
    .copy_from_host = cpu_copy_from_host,
    .copy_to_host = cpu_copy_to_host,
    .copy_device = cpu_copy_device,
    .synchronize = cpu_synchronize,
    .shutdown = NULL,
};

/* ---- plugin ------------------------------------------------------------------------------- */

static int cpu_init(em_registry *reg)
{
    int threads = em_config_threads();
    if (threads < 1)
        threads = 1;
    em_cpu__pool_configure(threads);
    em_cpu__gemm_select();
    read_cpu_model();

    int rc = em_register_backend(reg, &cpu_backend, NULL);
    if (rc < 0)
        return rc;
    int (*const families[])(em_registry *) = {
        em_cpu__register_copy,   em_cpu__register_unary,  em_cpu__register_binary,
        em_cpu__register_reduce, em_cpu__register_matmul, em_cpu__register_index,
        em_cpu__register_rows,
        em_cpu__register_optim,
    };
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        rc = families[i](reg);
        if (rc < 0)
            return rc;
    }
    return EM_OK;
}

static void cpu_shutdown(void)
{
    em_cpu__pool_shutdown();
    em_cpu__gemm_shutdown();
    em_cpu__empty_cache();
}

EM_PLUGIN_DEFINE(
    "cpu", EMBER_VERSION_STRING,
    "CPU backend: host memory, threaded kernels, packed GEMM", cpu_init, cpu_shutdown)
