/* core/registry.c - registered backends, device names, and the per-device queries. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static em_backend backends[EM__MAX_BACKENDS];   /* index 0 unused: id 0 means "unspecified" */
static int nbackends = 1;
static em_device default_device;

em_backend *em__backend(int id)
{
    return id >= 1 && id < nbackends && backends[id].ops ? &backends[id] : NULL;
}

int em__backend_count(void) { return nbackends - 1; }

em_backend *em__backend_by_name(const char *name, size_t len)
{
    for (int i = 1; i < nbackends; i++)
        if (backends[i].ops && strlen(backends[i].ops->name) == len &&
            strncmp(backends[i].ops->name, name, len) == 0)
            return &backends[i];
    return NULL;
}

em_backend *em__cpu_backend(void)
{
    static const char cpu[] = "cpu";
    em_backend *be = em__backend_by_name(cpu, 3);
    if (!be)
        em_set_error(EM_ERR_DEVICE, "no CPU backend is loaded (is the 'cpu' plugin on the "
                                    "plugin path? see `ember info`)");
    return be;
}

int em_register_backend(em_registry *reg, const em_backend_ops *ops, void *ctx)
{
    static const size_t required = offsetof(em_backend_ops, copy_device);
    if (!ops || ops->struct_size < required || !ops->name || !ops->name[0])
        return em_set_error(EM_ERR_INVALID, "em_register_backend: incomplete backend table");
    if (!ops->device_count || !ops->device_info || !ops->alloc || !ops->free ||
        !ops->memory_stats || !ops->copy_from_host || !ops->copy_to_host)
        return em_set_error(EM_ERR_INVALID,
                            "em_register_backend: backend '%s' lacks a required function",
                            ops->name);
    for (const char *p = ops->name; *p; p++)
        if (*p == ':' || *p == ' ')
            return em_set_error(EM_ERR_INVALID, "em_register_backend: bad backend name '%s'",
                                ops->name);
    em_backend *dup = em__backend_by_name(ops->name, strlen(ops->name));
    if (dup)
        return em_set_error(EM_ERR_INVALID, "backend '%s' is already registered by %s",
                            ops->name, dup->owner ? dup->owner->path : "the core");
    if (nbackends == EM__MAX_BACKENDS)
        return em_set_error(EM_ERR_INVALID,
                            "backend '%s': too many backends (at most "
                            "EM_MAX_BACKENDS = %d)",
                            ops->name, EM_MAX_BACKENDS);
    em_backend *be = &backends[nbackends];
    be->id = nbackends++;
    be->ops = ops;
    be->ctx = ctx;
    be->owner = reg ? reg->rec : NULL;
    if (reg)
        reg->rec->nbackends++;
    return be->id;
}

/* Forgets backends a failed plugin registered (before anything could allocate on them). */
void em__registry_forget(em_plugin_rec *rec)
{
    for (int i = 1; i < nbackends; i++)
        if (backends[i].owner == rec) {
            em__dispatch_forget_backend(i);
            backends[i].ops = NULL;
            backends[i].owner = NULL;
        }
}

/* Calls each backend's shutdown hook (in reverse registration order) and clears the table. */
void em__registry_shutdown(void)
{
    for (int i = nbackends - 1; i >= 1; i--)
        if (backends[i].ops && backends[i].ops->shutdown)
            backends[i].ops->shutdown(backends[i].ctx);
    memset(backends, 0, sizeof backends);
    nbackends = 1;
    default_device = (em_device){0, 0};
}

/* ---- devices ------------------------------------------------------------------------ */

static const char *unavailable(const em_backend *be)
{
    if (be->ops->unavailable_reason)
        return be->ops->unavailable_reason(be->ctx);
    return NULL;
}

int em__device_check(const char *fn, em_device d)
{
    if (em__require_init(fn) < 0)
        return EM_ERR_STATE;
    em_backend *be = em__backend(d.backend);
    if (!be)
        return em_set_error(EM_ERR_DEVICE, "%s: no backend with id %d is loaded", fn, d.backend);
    const char *why = unavailable(be);
    if (why)
        return em_set_error(EM_ERR_DEVICE, "%s: backend '%s' is not usable: %s", fn,
                            be->ops->name, why);
    int n = be->ops->device_count(be->ctx);
    if (d.index < 0 || d.index >= n)
        return em_set_error(EM_ERR_DEVICE, "%s: device %s:%d does not exist (%d device%s)", fn,
                            be->ops->name, d.index, n, n == 1 ? "" : "s");
    return EM_OK;
}

em_device em__resolve_device(em_device d)
{
    return d.backend == 0 ? default_device : d;
}

em_device em_device_parse(const char *s)
{
    em_device bad = {0, -1};
    if (em__require_init("em_device_parse") < 0)
        return bad;
    if (!s || !*s) {
        em_set_error(EM_ERR_DEVICE, "device name is empty");
        return bad;
    }
    const char *colon = strchr(s, ':');
    size_t len = colon ? (size_t)(colon - s) : strlen(s);
    em_backend *be = em__backend_by_name(s, len);
    if (!be) {
        em_strbuf sb = {0};
        for (int i = 1; i < nbackends; i++)
            if (backends[i].ops)
                em__sb_printf(&sb, "%s%s", sb.len ? ", " : "", backends[i].ops->name);
        char *known = em__sb_take(&sb);
        em_set_error(EM_ERR_DEVICE, "unknown backend '%.*s' in device '%s' (loaded: %s)",
                     (int)len, s, s, known && *known ? known : "none");
        free(known);
        return bad;
    }
    long idx = 0;
    if (colon) {
        char *end;
        idx = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || *end || idx < 0 || idx > 1024) {
            em_set_error(EM_ERR_DEVICE, "bad device index in '%s' (expected e.g. '%s:0')", s,
                         be->ops->name);
            return bad;
        }
    }
    em_device d = {be->id, (int32_t)idx};
    return d;
}

char *em_device_str(em_device d, char *buf, size_t size)
{
    em_device r = em__resolve_device(d);
    em_backend *be = em__backend(r.backend);
    if (!be)
        snprintf(buf, size, "<no backend %d>", r.backend);
    else if (be->ops->host_accessible && r.index == 0)
        snprintf(buf, size, "%s", be->ops->name);
    else
        snprintf(buf, size, "%s:%d", be->ops->name, r.index);
    return buf;
}

bool em_device_eq(em_device a, em_device b)
{
    a = em__resolve_device(a);
    b = em__resolve_device(b);
    return a.backend == b.backend && a.index == b.index;
}

em_device em_default_device(void) { return default_device; }

int em_set_default_device(em_device d)
{
    int rc = em__device_check("em_set_default_device", d);
    if (rc == EM_OK)
        default_device = d;
    return rc;
}

bool em_backend_available(const char *name)
{
    em_backend *be = name ? em__backend_by_name(name, strlen(name)) : NULL;
    return be && !unavailable(be) && be->ops->device_count(be->ctx) > 0;
}

int em_device_count(const char *name)
{
    em_backend *be = name ? em__backend_by_name(name, strlen(name)) : NULL;
    if (!be || unavailable(be))
        return 0;
    return be->ops->device_count(be->ctx);
}

int em__device_info(em_device d, em_device_info *out)
{
    em_backend *be = em__backend(d.backend);
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    return be->ops->device_info(be->ctx, d.index, out);
}

/* The backend's device_info for d in this thread's buffer, or NULL (error set). */
static const em_device_info *device_info(const char *fn, em_device d)
{
    static _Thread_local em_device_info info;
    d = em__resolve_device(d);
    if (em__device_check(fn, d) < 0 || em__device_info(d, &info) < 0)
        return NULL;
    info.kernels[sizeof info.kernels - 1] = '\0';
    return &info;
}

const char *em_device_name(em_device d)
{
    const em_device_info *info = device_info("em_device_name", d);
    return info ? info->name : NULL;
}

const char *em_device_kernels(em_device d)
{
    const em_device_info *info = device_info("em_device_kernels", d);
    return info ? info->kernels : NULL;
}

/* ---- memory ---------------------------------------------------------------------------- */

/* em_memory_stats as plugins built for ABI 1.0 to 1.2 know it: no struct_size in front. */
typedef struct memory_stats_1_2 {
    size_t allocated, reserved, peak;
} memory_stats_1_2;

static bool stats(const char *fn, em_device d, em_memory_stats *st)
{
    d = em__resolve_device(d);
    memset(st, 0, sizeof *st);
    if (em__device_check(fn, d) < 0)
        return false;
    em_backend *be = em__backend(d.backend);
    if (be->owner && be->owner->abi_minor < 3) {
        memory_stats_1_2 old = {0};
        if (be->ops->memory_stats(be->ctx, d.index, (em_memory_stats *)&old) != EM_OK)
            return false;
        st->allocated = old.allocated;
        st->reserved = old.reserved;
        st->peak = old.peak;
        return true;
    }
    st->struct_size = sizeof *st;
    return be->ops->memory_stats(be->ctx, d.index, st) == EM_OK;
}

size_t em_memory_allocated(em_device d)
{
    em_memory_stats st;
    return stats("em_memory_allocated", d, &st) ? st.allocated : 0;
}

size_t em_memory_reserved(em_device d)
{
    em_memory_stats st;
    return stats("em_memory_reserved", d, &st) ? st.reserved : 0;
}

size_t em_max_memory_allocated(em_device d)
{
    em_memory_stats st;
    return stats("em_max_memory_allocated", d, &st) ? st.peak : 0;
}

static int device_call(const char *fn, em_device d, size_t slot)
{
    d = em__resolve_device(d);
    int rc = em__device_check(fn, d);
    if (rc < 0)
        return rc;
    em_backend *be = em__backend(d.backend);
    int (*f)(void *, int) = NULL;
    if (slot < be->ops->struct_size)
        memcpy(&f, (const char *)be->ops + slot, sizeof f);
    return f ? f(be->ctx, d.index) : EM_OK;
}

int em_empty_cache(em_device d)
{
    return device_call("em_empty_cache", d, offsetof(em_backend_ops, empty_cache));
}

int em_reset_peak_memory_stats(em_device d)
{
    return device_call("em_reset_peak_memory_stats", d, offsetof(em_backend_ops, reset_peak));
}

int em_synchronize(em_device d)
{
    return device_call("em_synchronize", d, offsetof(em_backend_ops, synchronize));
}
