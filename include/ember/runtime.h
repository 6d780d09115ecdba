/* ember/runtime.h - lifecycle, errors, backends and devices, memory, seeds, scopes.
 *
 * em_init() loads the configuration and every plugin it finds; em_shutdown() unloads them in
 * a defined order. Errors are thread-local strings: a function that fails returns NULL or a
 * negative em_status and leaves the reason in em_last_error().
 */
#ifndef EMBER_RUNTIME_H
#define EMBER_RUNTIME_H

#include <stdarg.h>

#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- lifecycle --------------------------------------------------------- */

/* Reads the configuration (config_path; else $EMBER_CONFIG; else <sysconfdir>/ember/ember.ini
 * and then $XDG_CONFIG_HOME/ember/ember.ini over it; never a file in the current directory;
 * the environment over any file), loads plugins, picks the default device. Returns EM_OK, or a negative
 * status when the config is malformed, the requested default backend cannot be used, or
 * EMBER_STRICT=1 and any plugin failed. Calling it twice without em_shutdown() is an error.
 * Not thread safe: call it once, before other threads use Ember. */
EM_API int em_init(const char *config_path);
/* em_init with config_path layered over the default files rather than instead of them:
 * defaults < system file < user file (or $EMBER_CONFIG) < config_path < environment. For a
 * job's own config (`ember train CONFIG`) that should keep the user's [runtime] settings.
 * em_config_file() then names config_path; em_config_source() names each value's file. */
EM_API int em_init_layered(const char *config_path);

/* Releases the tensors still held by open scopes, calls every plugin's shutdown hook in
 * reverse load order, then unloads them. Tensors the caller still holds become invalid. */
EM_API void em_shutdown(void);

EM_API bool em_is_initialized(void);
EM_API const char *em_version(void);               /* "0.1.0" */
EM_API void em_abi_version(int *major, int *minor);

/* ---- errors (thread-local) -------------------------------------------- */

/* The message of the last failure on this thread, or "" if none. Borrowed: valid until the
 * next Ember call on this thread that fails or clears it. */
EM_API const char *em_last_error(void);
EM_API em_status em_last_status(void);
EM_API void em_clear_error(void);

/* ---- backends and devices ---------------------------------------------- */

EM_API bool em_backend_available(const char *backend);   /* torch.cuda.is_available() */
EM_API int em_device_count(const char *backend);         /* 0 when absent or unusable */
EM_API const char *em_device_name(em_device d);          /* borrowed; NULL on error */

/* "cpu", "cuda", "cuda:1", "opencl:0". On a bad name returns {0, -1} and sets the error. */
EM_API em_device em_device_parse(const char *s);
EM_API em_device em_default_device(void);
EM_API int em_set_default_device(em_device d);
/* Writes "cuda:1" style text into buf (always NUL-terminated); returns buf. */
EM_API char *em_device_str(em_device d, char *buf, size_t size);
EM_API bool em_device_eq(em_device a, em_device b);

/* ---- memory (per device; the tutorial's caching-allocator checks) ------ */

EM_API size_t em_memory_allocated(em_device d);      /* bytes held by live tensors */
EM_API size_t em_memory_reserved(em_device d);       /* bytes held by the allocator */
EM_API size_t em_max_memory_allocated(em_device d);  /* peak of em_memory_allocated */
EM_API int em_reset_peak_memory_stats(em_device d);
EM_API int em_empty_cache(em_device d);              /* hand cached blocks back */
EM_API int em_synchronize(em_device d);

/* ---- random numbers ----------------------------------------------------- */

/* Seeds the global Philox 4x32-10 generator: one seed gives the same numbers on every
 * backend. The generator is shared by all threads (access is serialised). */
EM_API void em_manual_seed(uint64_t seed);
EM_API uint64_t em_initial_seed(void);

/* ---- autorelease scopes (thread-local) ---------------------------------- */

/* Every tensor returned by Ember between em_scope_begin() and the matching em_scope_end()
 * is released by em_scope_end(), unless em_keep() moved it out to the enclosing scope (or, at
 * the outermost scope, to the caller). Scopes nest. em_keep returns its argument. */
EM_API void em_scope_begin(void);
EM_API void em_scope_end(void);
EM_API em_tensor *em_keep(em_tensor *t);

/* ---- configuration ----------------------------------------------------- */

/* The effective value of "section.key" (e.g. "runtime.threads") after environment, config
 * file and defaults; NULL if unset. Borrowed: valid until em_shutdown(). */
EM_API const char *em_config_get(const char *key);
/* The thread count the user asked for (EMBER_NUM_THREADS / [runtime] threads), else the
 * number of online cores (torch.get_num_threads). */
EM_API int em_config_threads(void);
/* Where that value came from: "env EMBER_NUM_THREADS", "/path/ember.ini:4", "default". */
EM_API const char *em_config_source(const char *key);

/* ---- numbers as text (locale-independent) ------------------------------ */

/* strtod and snprintf as they behave in the "C" locale ('.' as the decimal point), whatever
 * setlocale() or uselocale() the host program called: spec strings, CSV, INI values, metadata
 * and printed tensors are read and written through these, so a program running under de_DE
 * gets the same results as one under "C". Same contracts as strtod and snprintf otherwise.
 * Thread-safe: formatting switches only the calling thread's locale, and back. */
EM_API double em_strtod(const char *s, char **end);
EM_API int em_snprintf(char *buf, size_t size, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;
EM_API int em_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 0)))
#endif
    ;

/* ---- introspection (what `ember info` shows) -------------------------------- */

typedef struct em_plugin_info {
    const char *path;          /* the file (or directory, for a missing plugin folder) */
    const char *name;          /* NULL when the plugin failed before naming itself */
    const char *version;
    const char *description;
    bool ok;
    const char *error;         /* why it failed (dlerror() text, ABI versions...), or NULL */
    const char *registered;    /* "backend cpu; 35 kernels", or NULL */
    uint32_t abi_major, abi_minor;   /* as the plugin declared them; 0 if unknown */
    bool disabled;             /* found but not initialised ([runtime] disable) */
} em_plugin_info;

/* Plugins found by the last em_init, in load order. Strings are borrowed until em_shutdown. */
EM_API int em_plugin_count(void);
EM_API int em_plugin_get(int i, em_plugin_info *out);

/* The loaded backends by position (0 .. em_backend_count()-1; one dropped with its failed
 * plugin is not counted); names borrowed; NULL out of range. */
EM_API int em_backend_count(void);
EM_API const char *em_backend_name(int i);
/* Why a registered backend cannot be used right now (no driver, no device), or NULL. */
EM_API const char *em_backend_unavailable_reason(const char *backend);

typedef struct em_device_props {
    char name[128];
    size_t total_memory, free_memory;   /* bytes; 0 if unknown */
    int threads;
    int compute_major, compute_minor;
} em_device_props;
EM_API int em_device_props_get(em_device d, em_device_props *out);
/* One line on the compute kernels the device's backend uses (the CPU: its GEMM micro-kernel
 * and block sizes), "" if the backend says nothing; NULL with the error set for a bad device.
 * Borrowed: valid until this thread's next call. */
EM_API const char *em_device_kernels(em_device d);

/* The config file that was read ("" if none), and the effective settings one by one (false
 * past the end); strings borrowed until em_shutdown. */
EM_API const char *em_config_file(void);
EM_API bool em_config_entry(int i, const char **key, const char **value, const char **source);

#ifdef __cplusplus
}
#endif
#endif
