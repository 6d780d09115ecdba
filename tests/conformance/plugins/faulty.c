/* tests/conformance/plugins/faulty.c - a backend with planted bugs, so that the conformance
 * suite is shown to catch them (tools/e2e.sh runs it and expects these failures):
 *   - add (float32) is off by one part in 10^4 at element 0: a value error;
 *   - exp (float32) returns NaN above 4: NaN where the reference has none;
 *   - copy into a view with stride 2 in its last dim also writes the element just before
 *     each one it should write: an out-of-view write that only the guard cases can see.
 * Everything else is correct (or, for dtypes and ops it does not register, skipped).
 * Not a model of a backend: see backends/cpu and tests/plugins/mockdev for that. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <ember/plugin.h>

static int count(void *ctx) { (void)ctx; return 1; }

static int info(void *ctx, int dev, em_device_info *out)
{
    (void)ctx;
    (void)dev;
    strcpy(out->name, "Faulty Device");
    return EM_OK;
}

static void *alloc(void *ctx, int dev, size_t n)
{
    (void)ctx;
    (void)dev;
    void *p = malloc(n ? n : 1);
    if (!p)
        em_set_error(EM_ERR_NOMEM, "faulty: out of memory");
    return p;
}

static void dealloc(void *ctx, int dev, void *p, size_t n)
{
    (void)ctx;
    (void)dev;
    (void)n;
    free(p);
}

static int stats(void *ctx, int dev, em_memory_stats *s)
{
    (void)ctx;
    (void)dev;
    memset(s, 0, sizeof *s);
    return EM_OK;
}

static int h2d(void *ctx, int dev, void *d, size_t o, const void *s, size_t n)
{
    (void)ctx;
    (void)dev;
    memcpy((char *)d + o, s, n);
    return EM_OK;
}

static int d2h(void *ctx, int dev, void *d, const void *s, size_t o, size_t n)
{
    (void)ctx;
    (void)dev;
    memcpy(d, (const char *)s + o, n);
    return EM_OK;
}

/* Element access in any dtype, through strides. */
static double get(const em_ktensor *t, int64_t k)
{
    const char *p = t->buf;
    int64_t o = em_kt_offset(t, k);
    switch (t->dtype) {
    case EM_F32: return ((const float *)p)[o];
    case EM_F64: return ((const double *)p)[o];
    case EM_F16: return em_f16_to_f32(((const uint16_t *)p)[o]);
    case EM_BF16: return em_bf16_to_f32(((const uint16_t *)p)[o]);
    case EM_I64: return (double)((const int64_t *)p)[o];
    case EM_I32: return ((const int32_t *)p)[o];
    default: return ((const uint8_t *)p)[o];
    }
}

static void put(const em_ktensor *t, int64_t o, double v)
{
    char *p = t->buf;
    switch (t->dtype) {
    case EM_F32: ((float *)p)[o] = (float)v; break;
    case EM_F64: ((double *)p)[o] = v; break;
    case EM_F16: ((uint16_t *)p)[o] = em_f32_to_f16((float)v); break;
    case EM_BF16: ((uint16_t *)p)[o] = em_f32_to_bf16((float)v); break;
    case EM_I64: ((int64_t *)p)[o] = (int64_t)v; break;
    case EM_I32: ((int32_t *)p)[o] = (int32_t)v; break;
    case EM_U8: ((uint8_t *)p)[o] = (uint8_t)(int64_t)v; break;
    default: ((uint8_t *)p)[o] = v != 0; break;
    }
}

static int k_copy(void *ctx, const em_kcall *c)
{
    (void)ctx;
    const em_ktensor *out = &c->out[0];
    bool stride2 = out->ndim > 0 && out->strides[out->ndim - 1] == 2;
    for (int64_t k = 0; k < out->numel; k++) {
        int64_t o = em_kt_offset(out, k);
        double v = get(&c->in[0], k);
        if (stride2 && o > 0)
            put(out, o - 1, v);   /* the planted bug */
        put(out, o, v);
    }
    return EM_OK;
}

static int k_fill(void *ctx, const em_kcall *c)
{
    (void)ctx;
    for (int64_t k = 0; k < c->out[0].numel; k++)
        put(&c->out[0], em_kt_offset(&c->out[0], k), c->attrs[0].f);
    return EM_OK;
}

static int k_add(void *ctx, const em_kcall *c)
{
    (void)ctx;
    for (int64_t k = 0; k < c->out[0].numel; k++) {
        double v = get(&c->in[0], k) + get(&c->in[1], k);
        put(&c->out[0], k, k == 0 ? v * 1.0001 : v);   /* the planted bug */
    }
    return EM_OK;
}

static int k_exp(void *ctx, const em_kcall *c)
{
    (void)ctx;
    for (int64_t k = 0; k < c->out[0].numel; k++) {
        double x = get(&c->in[0], k);
        put(&c->out[0], k, x > 4 ? NAN : exp(x));   /* the planted bug */
    }
    return EM_OK;
}

static const em_backend_ops ops = {
    .struct_size = sizeof(em_backend_ops), .name = "faulty", .host_accessible = false,
    .device_count = count, .device_info = info, .alloc = alloc, .free = dealloc,
    .memory_stats = stats, .copy_from_host = h2d, .copy_to_host = d2h};

static int init(em_registry *reg)
{
    int rc = em_register_backend(reg, &ops, NULL);
    if (rc < 0)
        return rc;
    uint32_t f32 = EM_DTYPE_BIT(EM_F32);
    if ((rc = em_register_kernel(reg, "faulty", "copy", k_copy, EM_KERNEL_STRIDED,
                                 EM_DTYPES_ALL)) < 0 ||
        (rc = em_register_kernel(reg, "faulty", "fill", k_fill, EM_KERNEL_STRIDED,
                                 EM_DTYPES_ALL)) < 0 ||
        (rc = em_register_kernel(reg, "faulty", "add", k_add, EM_KERNEL_STRIDED, f32)) < 0 ||
        (rc = em_register_kernel(reg, "faulty", "exp", k_exp, EM_KERNEL_STRIDED, f32)) < 0)
        return rc;
    return EM_OK;
}

EM_PLUGIN_DEFINE(
    "faulty", "0", "a backend with planted bugs, for the conformance suite's own test", init,
    NULL)
