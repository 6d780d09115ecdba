/* core/loader.c - plugin discovery, loading, ABI checks and unloading.
 *
 * Search order: EMBER_PLUGIN_PATH (colon-separated), then the config file's plugin_path
 * lines, then the installed plugin directory; a libember running from its build tree uses the
 * build tree's plugins instead of the installed ones. A plugin that fails is recorded with the
 * reason and skipped; everything it registered is dropped.
 *
 * Trust: loading a plugin runs its code, so a plugin file or folder that users other than its
 * owner can write, or whose owner is neither root nor the user running Ember, is refused
 * (recorded with the reason) unless EMBER_ALLOW_INSECURE_PLUGINS=1; so is a relative folder in
 * EMBER_PLUGIN_PATH, which would depend on the current directory (a config file's relative
 * plugin_path is its own folder's neighbour, see core/config.c).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "module_internal.h"

#ifndef EMBER_PLUGIN_DIR
#define EMBER_PLUGIN_DIR "/usr/local/lib/ember/plugins"
#endif
#ifndef EMBER_BUILD_ROOT
#define EMBER_BUILD_ROOT ""
#endif

/* Each record is allocated on its own and never moves: the registries keep a record pointer as
 * the owner of everything a plugin registered (backends, ops, kernels, module, optimizer and
 * dataset types) until em_shutdown, so only the array of pointers may be reallocated. */
static em_plugin_rec **recs;
static int nrecs, caprecs;

int em__plugin_count(void) { return nrecs; }
const em_plugin_rec *em__plugin(int i) { return i >= 0 && i < nrecs ? recs[i] : NULL; }


static char *dupstr(const char *s) { return s ? strdup(s) : NULL; }

static em_plugin_rec *new_rec(const char *path)
{
    if (nrecs == caprecs) {
        int cap = caprecs ? caprecs * 2 : 16;
        em_plugin_rec **p = realloc(recs, (size_t)cap * sizeof *p);
        if (!p)
            return NULL;
        recs = p;
        caprecs = cap;
    }
    em_plugin_rec *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->path = dupstr(path);
    recs[nrecs++] = r;
    return r;
}

static void fail(em_plugin_rec *r, const char *fmt, const char *a, const char *b)
{
    char msg[1024];
    snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
    r->error = dupstr(msg);
    r->ok = false;
}

/* Summarises what a plugin registered, for `ember info`. */
static void describe(em_plugin_rec *r)
{
    em_strbuf sb = {0};
    for (int i = 1; i <= EM__MAX_BACKENDS; i++) {
        em_backend *be = em__backend(i);
        if (be && be->owner == r)
            em__sb_printf(&sb, "%sbackend %s", sb.len ? "; " : "", be->ops->name);
    }
    bool first = true;
    for (int i = 0; i < em__op_count(); i++) {
        em_op_rec *op = em__op(i);
        if (op->owner == r) {
            em__sb_printf(&sb, "%s%s", first ? (sb.len ? "; ops " : "ops ") : ", ", op->name);
            first = false;
        }
    }
    em__module_types_describe(r, &sb);
    em__optim_types_describe(r, &sb);
    em__dataset_types_describe(r, &sb);
    em__dist_describe(r, &sb);
    if (r->nkernels)
        em__sb_printf(&sb, "%s%d kernel%s", sb.len ? "; " : "", r->nkernels,
                      r->nkernels == 1 ? "" : "s");
    r->registered = em__sb_take(&sb);
}

/* Whether the plugin file or folder at path may not be trusted; *why says why. A path that
 * cannot be stat'ed is left to fail later with its own reason. */
static bool untrusted(const char *path, char *why, size_t size)
{
    const char *allow = getenv("EMBER_ALLOW_INSECURE_PLUGINS");
    struct stat st;
    if ((allow && !strcmp(allow, "1")) || stat(path, &st) != 0)
        return false;
    static const char tail[] = "; set EMBER_ALLOW_INSECURE_PLUGINS=1 to load it anyway";
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(why, size, "refused: writable by other users (mode %04o): any of them could "
                            "change the code Ember would run%s",
                 (unsigned)(st.st_mode & 07777), tail);
        return true;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        snprintf(why, size, "refused: owned by uid %u, neither root nor the user running Ember "
                            "(uid %u)%s",
                 (unsigned)st.st_uid, (unsigned)geteuid(), tail);
        return true;
    }
    return false;
}

/* A failed record for path (a folder, or a plugin file never opened) saying why. */
static void refuse(const char *path, const char *why)
{
    em_plugin_rec *r = new_rec(path);
    if (r)
        fail(r, "%s%s", why, NULL);
}

static bool already_loaded(const char *real)
{
    for (int i = 0; i < nrecs; i++)
        if (recs[i]->path && strcmp(recs[i]->path, real) == 0)
            return true;
    return false;
}

/* [runtime] disable = a, b (EMBER_DISABLE_PLUGINS): plugins found but not initialised, e.g.
 * a driver that is slow to start and not needed for this run. */
static bool is_disabled(const char *name)
{
    const char *list = em_config_get("runtime.disable");
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        p += strspn(p, " ,");
        size_t len = strcspn(p, " ,");
        if (len == n && !strncmp(p, name, n))
            return true;
        p += len;
    }
    return false;
}

int em__plugin_check_descriptor(const em_plugin *d, char *why, size_t size)
{
    if (!d || d->struct_size < offsetof(em_plugin, shutdown) || !d->name || !d->init) {
        snprintf(why, size, "'%s' returned an incomplete descriptor", EMBER_PLUGIN_ENTRY);
        return EM_ERR_PLUGIN;
    }
    if (d->abi_major != EMBER_ABI_MAJOR || d->abi_minor > EMBER_ABI_MINOR) {
        snprintf(why, size,
                 d->abi_major != EMBER_ABI_MAJOR
                     ? "ABI mismatch: plugin was built for ABI %u.%u, this Ember has ABI %d.%d "
                       "(major versions must match)"
                     : "ABI mismatch: plugin needs ABI %u.%u, this Ember only has ABI %d.%d "
                       "(rebuild the plugin or update Ember)",
                 d->abi_major, d->abi_minor, EMBER_ABI_MAJOR, EMBER_ABI_MINOR);
        return EM_ERR_PLUGIN;
    }
    return EM_OK;
}

int em__loader_load_file(const char *path)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        snprintf(real, sizeof real, "%s", path);
    if (already_loaded(real))
        return EM_OK;
    char distrust[512];
    if (untrusted(real, distrust, sizeof distrust)) {
        refuse(real, distrust);
        return EM_ERR_PLUGIN;
    }
    em_plugin_rec *r = new_rec(real);
    if (!r)
        return em_set_error(EM_ERR_NOMEM, "plugin loader: out of memory");
    dlerror();
    void *h = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        fail(r, "dlopen failed: %s%s", e ? e : "unknown error", NULL);
        return EM_ERR_PLUGIN;
    }
    void *sym = dlsym(h, EMBER_PLUGIN_ENTRY);
    if (!sym) {
        fail(r, "missing entry symbol '%s' (not an Ember plugin?)%s", EMBER_PLUGIN_ENTRY, NULL);
        dlclose(h);
        return EM_ERR_PLUGIN;
    }
    em_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    const em_plugin *d = entry();
    if (d && d->struct_size >= offsetof(em_plugin, name)) {   /* `ember info` shows it */
        r->abi_major = d->abi_major;
        r->abi_minor = d->abi_minor;
    }
    char bad[256];
    if (em__plugin_check_descriptor(d, bad, sizeof bad) < 0) {
        fail(r, "%s%s", bad, NULL);
        dlclose(h);
        return EM_ERR_PLUGIN;
    }
    for (int i = 0; i < nrecs; i++)
        if (recs[i] != r && recs[i]->ok && recs[i]->name &&
            strcmp(recs[i]->name, d->name) == 0) {
            fail(r, "a plugin named '%s' is already loaded from %s", d->name, recs[i]->path);
            dlclose(h);
            return EM_ERR_PLUGIN;
        }
    if (is_disabled(d->name)) {
        char why[256];
        snprintf(why, sizeof why, "disabled by runtime.disable (%s)",
                 em_config_source("runtime.disable"));
        r->name = dupstr(d->name);
        r->error = dupstr(why);
        r->disabled = true;
        dlclose(h);
        return EM_OK;
    }
    r->name = dupstr(d->name);
    r->version = dupstr(d->version);
    r->description = dupstr(d->description);
    r->desc = d;
    r->handle = h;
    em_registry reg = {r};
    em_clear_error();
    int rc = d->init(&reg);
    if (rc < 0) {
        const char *why = em_last_error();
        fail(r, "init failed: %s%s", why[0] ? why : "(no message)", NULL);
        em__dispatch_forget(r);
        em__registry_forget(r);
        em__conformance_forget(r->name);
        em__module_types_forget(r);
        em__optim_types_forget(r);
        em__dataset_types_forget(r);
        em__dist_forget(r);
        r->handle = NULL;
        r->desc = NULL;
        dlclose(h);
        return EM_ERR_PLUGIN;
    }
    r->ok = true;
    em__dispatch_attach_pending();
    describe(r);
    return EM_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names in dir (the caller frees each and the array); NULL when dir cannot be
 * read. Sorting makes the load order the same on every machine. */
static char **list_dir(const char *dir, bool (*keep)(const char *name), size_t *count)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return NULL;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.' || !keep(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **p = realloc(names, cap * sizeof *p);
            if (!p)
                break;
            names = p;
        }
        if (!(names[n] = dupstr(e->d_name)))
            break;
        n++;
    }
    closedir(dp);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    *count = n;
    return names ? names : calloc(1, sizeof *names);
}

static bool is_shared_object(const char *name)
{
    size_t len = strlen(name);
    return len > 3 && strcmp(name + len - 3, ".so") == 0;
}

static bool any_name(const char *name)
{
    (void)name;
    return true;
}

/* Loads every *.so in dir, in name order. */
static void load_dir(const char *dir, bool report_missing)
{
    char why[512];
    if (untrusted(dir, why, sizeof why)) {
        refuse(dir, why);
        return;
    }
    size_t n = 0;
    char **names = list_dir(dir, is_shared_object, &n);
    if (!names) {
        if (report_missing) {
            em_plugin_rec *r = new_rec(dir);
            if (r)
                fail(r, "plugin directory does not exist or cannot be read%s%s", NULL, NULL);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX + 512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        em__loader_load_file(path);
        free(names[i]);
    }
    free(names);
}

static void load_path_list(const char *list)
{
    char *copy = dupstr(list);
    for (char *save = NULL, *tok = copy ? strtok_r(copy, ":", &save) : NULL; tok;
         tok = strtok_r(NULL, ":", &save)) {
        if (tok[0] == '/')
            load_dir(tok, true);
        else
            refuse(tok, "refused: a relative folder in EMBER_PLUGIN_PATH would be looked up "
                        "from the current directory; give an absolute path");
    }
    free(copy);
}

/* The build tree's plugin folders, when this libember is the one in the build tree. */
static bool running_uninstalled(void)
{
    if (!EMBER_BUILD_ROOT[0])
        return false;
    Dl_info info;
    void *self = (void *)(uintptr_t)&em__loader_load_file;
    if (!dladdr(self, &info) || !info.dli_fname)
        return false;
    char real[PATH_MAX], root[PATH_MAX];
    if (!realpath(info.dli_fname, real) || !realpath(EMBER_BUILD_ROOT, root))
        return false;
    size_t n = strlen(root);
    return strncmp(real, root, n) == 0 && real[n] == '/';
}

static void load_build_tree(void)
{
    static const char *const groups[] = {"backends", "plugins"};
    for (size_t g = 0; g < 2; g++) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%s", EMBER_BUILD_ROOT, groups[g]);
        size_t n = 0;
        char **names = list_dir(dir, any_name, &n);
        for (size_t i = 0; names && i < n; i++) {
            char sub[PATH_MAX + 512];
            struct stat st;
            snprintf(sub, sizeof sub, "%s/%s", dir, names[i]);
            if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
                load_dir(sub, false);
            free(names[i]);
        }
        free(names);
    }
}

int em__loader_load_all(void)
{
    const char *env = em_config_get("runtime.env_plugin_path");
    if (env && *env)
        load_path_list(env);
    const char **dirs = NULL;
    int nd = em__config_multi("runtime.plugin_path", &dirs);
    for (int i = 0; i < nd; i++)
        load_dir(dirs[i], true);
    if (running_uninstalled())
        load_build_tree();
    else
        load_dir(EMBER_PLUGIN_DIR, false);
    int failed = 0;
    for (int i = 0; i < nrecs; i++)
        failed += !recs[i]->ok && !recs[i]->disabled;
    return failed;
}

/* Plugin shutdown hooks in reverse load order, then dlclose, unless storage is still alive on
 * some backend (then the code stays mapped: a later em_release must not jump into freed
 * code). */
void em__loader_unload_all(bool keep_mapped)
{
    for (int i = nrecs - 1; i >= 0; i--) {
        em_plugin_rec *r = recs[i];
        if (r->ok && r->desc && r->desc->shutdown)
            r->desc->shutdown();
    }
    for (int i = nrecs - 1; i >= 0; i--) {
        em_plugin_rec *r = recs[i];
        if (r->handle && !keep_mapped)
            dlclose(r->handle);
        free(r->path);
        free(r->name);
        free(r->version);
        free(r->description);
        free(r->error);
        free(r->registered);
        free(r);
    }
    free(recs);
    recs = NULL;
    nrecs = caprecs = 0;
}
