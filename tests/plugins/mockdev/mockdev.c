/* tests/plugins/mockdev/mockdev.c - a second device for tests: "mock", two devices whose
 * memory the core cannot touch directly (host_accessible = false), with a deliberately small
 * kernel set (copy, fill, and add for f32 only) so that device transfers, device mismatches,
 * missing kernels and the CPU fallback can be tested on a machine without a GPU.
 *
 * Built a second time with MOCK_ABI_1_2 (tests/plugins/mockdev_1_2/): a plugin that declares
 * ABI 1.2 and fills em_memory_stats in 1.2's layout (no struct_size), with 4096 bytes more
 * reserved than allocated, so a core that read the table in 1.3's layout would be caught. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ember/plugin.h>

static atomic_size_t allocated[2];

static int count(void *ctx) { (void)ctx; return 2; }

static int info(void *ctx, int dev, em_device_info *out)
{
    (void)ctx;
    snprintf(out->name, sizeof out->name, "Mock Device %d", dev);
    out->total_memory = (size_t)1 << 30;
    out->free_memory = out->total_memory - atomic_load(&allocated[dev]);
    out->threads = 1;
    return EM_OK;
}

/* Each buffer carries its size in a header so free can account for it. */
static void *alloc(void *ctx, int dev, size_t n)
{
    (void)ctx;
    char *p = malloc(n + 16);
    if (!p) {
        em_set_error(EM_ERR_NOMEM, "mock: out of memory");
        return NULL;
    }
    atomic_fetch_add(&allocated[dev], n);
    return p + 16;
}

static void dealloc(void *ctx, int dev, void *p, size_t n)
{
    (void)ctx;
    atomic_fetch_sub(&allocated[dev], n);
    free((char *)p - 16);
}

#ifdef MOCK_ABI_1_2
static int stats(void *ctx, int dev, em_memory_stats *s)
{
    (void)ctx;
    struct {
        size_t allocated, reserved, peak;
    } *old = (void *)s;   /* what a 1.2 plugin's header said em_memory_stats was */
    old->allocated = old->peak = atomic_load(&allocated[dev]);
    old->reserved = old->allocated + 4096;
    return EM_OK;
}
#else
static int stats(void *ctx, int dev, em_memory_stats *s)
{
    (void)ctx;
    s->allocated = s->reserved = atomic_load(&allocated[dev]);
    s->peak = s->allocated;
    return EM_OK;
}
#endif

static int h2d(void *ctx, int dev, void *d, size_t o, const void *s, size_t n)
{
    (void)ctx; (void)dev;
    memcpy((char *)d + o, s, n);
    return EM_OK;
}

static int d2h(void *ctx, int dev, void *d, const void *s, size_t o, size_t n)
{
    (void)ctx; (void)dev;
    memcpy(d, (const char *)s + o, n);
    return EM_OK;
}

static double get(const em_ktensor *t, int64_t k)
{
    const char *p = (const char *)t->buf;
    int64_t off = em_kt_offset(t, k);
    switch (t->dtype) {
    case EM_F32: return ((const float *)p)[off];
    case EM_F64: return ((const double *)p)[off];
    case EM_F16: return em_f16_to_f32(((const uint16_t *)p)[off]);
    case EM_BF16: return em_bf16_to_f32(((const uint16_t *)p)[off]);
    case EM_I64: return (double)((const int64_t *)p)[off];
    case EM_I32: return ((const int32_t *)p)[off];
    case EM_U8: return ((const uint8_t *)p)[off];
    default: return ((const uint8_t *)p)[off] != 0;
    }
}

static void set(const em_ktensor *t, int64_t k, double v)
{
    char *p = (char *)t->buf;
    int64_t off = em_kt_offset(t, k);
    switch (t->dtype) {
    case EM_F32: ((float *)p)[off] = (float)v; break;
    case EM_F64: ((double *)p)[off] = v; break;
    case EM_F16: ((uint16_t *)p)[off] = em_f32_to_f16((float)v); break;
    case EM_BF16: ((uint16_t *)p)[off] = em_f32_to_bf16((float)v); break;
    case EM_I64: ((int64_t *)p)[off] = (int64_t)v; break;
    case EM_I32: ((int32_t *)p)[off] = (int32_t)v; break;
    case EM_U8: ((uint8_t *)p)[off] = (uint8_t)(int64_t)v; break;
    default: ((uint8_t *)p)[off] = v != 0; break;
    }
}

static int k_copy(void *ctx, const em_kcall *c)
{
    (void)ctx;
    for (int64_t k = 0; k < c->out[0].numel; k++)
        set(&c->out[0], k, get(&c->in[0], k));
    return EM_OK;
}

static int k_fill(void *ctx, const em_kcall *c)
{
    (void)ctx;
    for (int64_t k = 0; k < c->out[0].numel; k++)
        set(&c->out[0], k, c->attrs[0].f);
    return EM_OK;
}

static int k_add(void *ctx, const em_kcall *c)
{
    (void)ctx;
    for (int64_t k = 0; k < c->out[0].numel; k++)
        set(&c->out[0], k, get(&c->in[0], k) + get(&c->in[1], k));
    return EM_OK;
}

static const em_backend_ops ops = {
    .struct_size = sizeof(em_backend_ops), .name = "mock", .host_accessible = false,
    .device_count = count, .device_info = info, .alloc = alloc, .free = dealloc,
    .memory_stats = stats, .copy_from_host = h2d, .copy_to_host = d2h,
    /* Buffers are host pointers the core must not touch, but a DLPack consumer may: DLPack's
     * kDLExtDev, so the DLPack tests can exercise a device other than the CPU. */
    .dlpack_device_type = 12};

static int init(em_registry *reg)
{
    if (em_register_backend(reg, &ops, NULL) < 0)
        return -1;
    if (em_register_kernel(reg, "mock", "copy", k_copy, EM_KERNEL_STRIDED, EM_DTYPES_ALL) < 0 ||
        em_register_kernel(reg, "mock", "fill", k_fill, EM_KERNEL_STRIDED, EM_DTYPES_ALL) < 0 ||
        em_register_kernel(reg, "mock", "add", k_add, EM_KERNEL_STRIDED,
                           EM_DTYPE_BIT(EM_F32)) < 0)
        return -1;
    return EM_OK;
}

#ifdef MOCK_ABI_1_2
static const em_plugin desc = {
    .struct_size = sizeof(em_plugin),
    .abi_major = 1,
    .abi_minor = 2,
    .name = "mockdev_1_2",
    .version = "0",
    .description = "two fake devices for tests, built for ABI 1.2",
    .init = init,
};

__attribute__((visibility("default"))) const em_plugin *ember_plugin(void);
const em_plugin *ember_plugin(void) { return &desc; }
#else
EM_PLUGIN_DEFINE("mockdev", "0",
    "two fake devices for tests", init, NULL)
#endif
