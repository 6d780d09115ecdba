/* core/runtime.c - em_init/em_shutdown, the global generator, versions and introspection. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "module_internal.h"

static bool initialized;


bool em__initialized(void) { return initialized; }
bool em_is_initialized(void) { return initialized; }
const char *em_version(void) { return EMBER_VERSION_STRING; }

void em_abi_version(int *major, int *minor)
{
    if (major)
        *major = EMBER_ABI_MAJOR;
    if (minor)
        *minor = EMBER_ABI_MINOR;
}

int em__require_init(const char *fn)
{
    if (initialized)
        return EM_OK;
    return em_set_error(EM_ERR_STATE, "%s: Ember is not initialised; call em_init() first", fn);
}

/* ---- random ------------------------------------------------------------------------- */

static pthread_mutex_t rng_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t rng_seed = 0x853c49e6748fea9bULL, rng_offset;

void em_manual_seed(uint64_t seed)
{
    pthread_mutex_lock(&rng_lock);
    rng_seed = seed;
    rng_offset = 0;
    pthread_mutex_unlock(&rng_lock);
}

uint64_t em_initial_seed(void)
{
    pthread_mutex_lock(&rng_lock);
    uint64_t s = rng_seed;
    pthread_mutex_unlock(&rng_lock);
    return s;
}

uint64_t em__rng_reserve(uint64_t blocks, uint64_t *seed)
{
    pthread_mutex_lock(&rng_lock);
    uint64_t off = rng_offset;
    rng_offset += blocks;
    *seed = rng_seed;
    pthread_mutex_unlock(&rng_lock);
    return off;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static bool truthy(const char *v)
{
    return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 ||
                 strcmp(v, "on") == 0);
}

/* Joins every failed plugin's reason into one message (for EMBER_STRICT). */
static int strict_failure(void)
{
    em_strbuf sb = {0};
    int n = 0;
    for (int i = 0; i < em__plugin_count(); i++) {
        const em_plugin_rec *r = em__plugin(i);
        if (!r->ok && !r->disabled)
            em__sb_printf(&sb, "%s%s: %s", n++ ? "; " : "", r->path, r->error);
    }
    char *msg = em__sb_take(&sb);
    em_set_error(EM_ERR_PLUGIN, "em_init: EMBER_STRICT is set and %d plugin%s failed: %s", n,
                 n == 1 ? "" : "s", msg ? msg : "");
    free(msg);
    return EM_ERR_PLUGIN;
}

static void teardown(void);

static int init(const char *config_path, bool layered)
{
    if (initialized)
        return em_set_error(EM_ERR_STATE, "em_init: already initialised; call em_shutdown() "
                                          "first");
    em_clear_error();
    int rc = layered ? em__config_load_layered(config_path) : em__config_load(config_path);
    if (rc < 0) {
        em__config_free();
        return rc;
    }
    if ((rc = em__register_builtin_ops()) < 0)
        goto fail;
    int failed = em__loader_load_all();
    if (failed > 0 && truthy(em_config_get("runtime.strict"))) {
        rc = strict_failure();
        goto fail;
    }
    const char *seed = em_config_get("runtime.seed");
    if (seed)
        em_manual_seed(strtoull(seed, NULL, 10));
    const char *fb = em_config_get("runtime.fallback");
    em__fallback_cpu = fb && strcmp(fb, "cpu") == 0;
    initialized = true;   /* device parsing below needs the registry */
    const char *backend = em_config_get("runtime.backend");
    em_device d = em_device_parse(backend ? backend : "cpu");
    if (d.index < 0 || em_set_default_device(d) < 0) {
        char why[1024];
        snprintf(why, sizeof why, "%s", em_last_error());
        const char *src = em_config_source("runtime.backend");
        em_set_error(EM_ERR_DEVICE, "em_init: default backend '%s' (from %s) cannot be used: %s",
                     backend ? backend : "cpu", src ? src : "default", why);
        rc = EM_ERR_DEVICE;
        initialized = false;
        goto fail;
    }
    if ((rc = em_dist_init()) < 0) {
        initialized = false;
        goto fail;
    }
    return EM_OK;
fail:;
    char keep[1024];
    snprintf(keep, sizeof keep, "%s", em_last_error());
    em_status st = em_last_status();
    teardown();
    em_set_error(st, "%s", keep);
    return rc;
}

int em_init(const char *config_path) { return init(config_path, false); }

int em_init_layered(const char *config_path) { return init(config_path, true); }

static void teardown(void)
{
    em__scope_shutdown();
    em__dist_shutdown();
    bool live = false;
    for (int i = 1; i <= em__backend_count(); i++) {
        em_backend *be = em__backend(i);
        if (be && atomic_load(&be->live) > 0) {
            em_warn("em_shutdown: %ld storage%s still alive on backend '%s'; plugins stay "
                    "mapped so that releasing them later is safe",
                    (long)atomic_load(&be->live), atomic_load(&be->live) == 1 ? " is" : "s are",
                    be->ops->name);
            live = true;
        }
    }
    if (!live)
        em__registry_shutdown();
    em__loader_unload_all(live);
    if (live)
        em__registry_shutdown();
    em__dispatch_free();
    em__conformance_free();
    em__module_types_free();
    em__optim_types_free();
    em__dataset_types_free();
    em__config_free();
    initialized = false;
}

void em_shutdown(void)
{
    if (!initialized)
        return;
    teardown();
}

/* ---- introspection --------------------------------------------------------------------- */

int em_plugin_count(void) { return em__plugin_count(); }

int em_plugin_get(int i, em_plugin_info *out)
{
    const em_plugin_rec *r = em__plugin(i);
    if (!r || !out)
        return em_set_error(EM_ERR_INVALID, "em_plugin_get: no plugin %d", i);
    out->path = r->path;
    out->name = r->name;
    out->version = r->version;
    out->description = r->description;
    out->ok = r->ok;
    out->error = r->error;
    out->registered = r->registered;
    out->abi_major = r->abi_major;
    out->abi_minor = r->abi_minor;
    out->disabled = r->disabled;
    return EM_OK;
}

/* Backend ids are never reused, so a backend dropped with its failed plugin leaves an empty
 * slot; the public positions count the live backends only. */
int em_backend_count(void)
{
    int n = 0;
    for (int id = 1; id <= em__backend_count(); id++)
        n += em__backend(id) != NULL;
    return n;
}

const char *em_backend_name(int i)
{
    for (int id = 1; id <= em__backend_count() && i >= 0; id++) {
        em_backend *be = em__backend(id);
        if (be && i-- == 0)
            return be->ops->name;
    }
    return NULL;
}

const char *em_backend_unavailable_reason(const char *name)
{
    em_backend *be = name ? em__backend_by_name(name, strlen(name)) : NULL;
    if (!be)
        return "not loaded";
    if (be->ops->unavailable_reason)
        return be->ops->unavailable_reason(be->ctx);
    return NULL;
}

int em_device_props_get(em_device d, em_device_props *out)
{
    d = em__resolve_device(d);
    int rc = em__device_check("em_device_props_get", d);
    if (rc < 0)
        return rc;
    em_device_info info;
    if ((rc = em__device_info(d, &info)) < 0)
        return rc;
    memset(out, 0, sizeof *out);
    memcpy(out->name, info.name, sizeof out->name);
    out->total_memory = info.total_memory;
    out->free_memory = info.free_memory;
    out->threads = info.threads;
    out->compute_major = info.compute_major;
    out->compute_minor = info.compute_minor;
    return EM_OK;
}

const char *em_config_file(void) { return em__config_path(); }

bool em_config_entry(int i, const char **key, const char **value, const char **source)
{
    return em__config_entry(i, key, value, source);
}
