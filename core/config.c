/* core/config.c - the effective configuration: defaults, then INI files, then EMBER_* env.
 *
 * Loaded once by em_init() and read-only afterwards, so the getters need no locking. Every
 * value remembers where it came from ("default", "/abs/ember.ini:4", "env EMBER_SEED") for
 * `ember info`. The file search never looks in the current directory: a config can name plugin
 * directories, and running ember inside an untrusted folder must not load its code.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#ifndef EMBER_SYSCONFDIR
#define EMBER_SYSCONFDIR "/etc"
#endif

/* ---- storage ----------------------------------------------------------------- */

typedef struct cfg_entry {
    char *key;                 /* "runtime.threads" */
    char *value;
    char *source;              /* "default", "env EMBER_NUM_THREADS", "/abs/ember.ini:4" */
    const char *view;          /* == value: a one-element list for em__config_multi */
} cfg_entry;

/* A multi-valued key: every value is its own entry; this caches the list and the values
 * joined with ':' (what em_config_get returns for it). */
typedef struct cfg_multi {
    const char **vals;
    int n;
    char *joined;
} cfg_multi;

static const char *const k_sections[] = {"runtime", "data", "model", "train"};
static const char *const k_runtime_keys[] = {"backend", "plugin_path", "threads", "seed",
                                             "fallback", "strict",     "disable", "dist"};
static const char *const k_multi_keys[] = {"runtime.plugin_path", "runtime.env_plugin_path"};
#define NSECTIONS (int)(sizeof k_sections / sizeof k_sections[0])
#define NRUNTIME (int)(sizeof k_runtime_keys / sizeof k_runtime_keys[0])
#define NMULTI (int)(sizeof k_multi_keys / sizeof k_multi_keys[0])

/* Environment overrides of [runtime] keys (EMBER_PLUGIN_PATH is handled apart). */
static const struct {
    const char *env, *key;
} k_env[] = {
    {"EMBER_BACKEND", "backend"}, {"EMBER_NUM_THREADS", "threads"}, {"EMBER_SEED", "seed"},
    {"EMBER_STRICT", "strict"},   {"EMBER_FALLBACK", "fallback"},
    {"EMBER_DISABLE_PLUGINS", "disable"}, {"EMBER_DIST", "dist"},
};

static struct {
    cfg_entry *e;
    int n, cap;
    char *path;                /* absolute path of the file read; NULL when none */
    cfg_multi multi[NMULTI];
} g_cfg;

static int nomem(void) { return em_set_error(EM_ERR_NOMEM, "config: out of memory"); }

static int multi_index(const char *key)
{
    for (int i = 0; i < NMULTI; i++)
        if (strcmp(key, k_multi_keys[i]) == 0)
            return i;
    return -1;
}

static cfg_entry *find_entry(const char *key)
{
    for (int i = 0; i < g_cfg.n; i++)
        if (strcmp(g_cfg.e[i].key, key) == 0)
            return &g_cfg.e[i];
    return NULL;
}

/* Sets key to value. A single-valued key that is already present is replaced in place (a
 * later line or the environment wins); a multi-valued key gains one more value. */
static int cfg_set(const char *key, const char *value, const char *source)
{
    cfg_entry *old = multi_index(key) < 0 ? find_entry(key) : NULL;
    char *v = strdup(value), *s = strdup(source);
    char *k = old ? NULL : strdup(key);
    if (!v || !s || (!old && !k))
        goto fail;
    if (old) {
        free(old->value);
        free(old->source);
        old->value = v;
        old->view = v;
        old->source = s;
        return EM_OK;
    }
    if (g_cfg.n == g_cfg.cap) {
        int cap = g_cfg.cap ? g_cfg.cap * 2 : 16;
        cfg_entry *e = realloc(g_cfg.e, (size_t)cap * sizeof *e);
        if (!e)
            goto fail;
        g_cfg.e = e;
        g_cfg.cap = cap;
    }
    g_cfg.e[g_cfg.n++] = (cfg_entry){k, v, s, v};
    return EM_OK;
fail:
    free(v);
    free(s);
    free(k);
    return nomem();
}

/* Builds the value lists and joined strings of the multi-valued keys. */
static int finish_multi(void)
{
    for (int m = 0; m < NMULTI; m++) {
        cfg_multi *mv = &g_cfg.multi[m];
        size_t total = 1;
        for (int i = 0; i < g_cfg.n; i++)
            if (strcmp(g_cfg.e[i].key, k_multi_keys[m]) == 0) {
                mv->n++;
                total += strlen(g_cfg.e[i].value) + 1;
            }
        if (mv->n == 0)
            continue;
        mv->vals = malloc((size_t)mv->n * sizeof *mv->vals);
        mv->joined = malloc(total);
        if (!mv->vals || !mv->joined)
            return nomem();
        int j = 0;
        mv->joined[0] = '\0';
        for (int i = 0; i < g_cfg.n; i++)
            if (strcmp(g_cfg.e[i].key, k_multi_keys[m]) == 0) {
                if (j > 0)
                    strcat(mv->joined, ":");
                strcat(mv->joined, g_cfg.e[i].value);
                mv->vals[j++] = g_cfg.e[i].value;
            }
    }
    return EM_OK;
}

void em__config_free(void)
{
    for (int i = 0; i < g_cfg.n; i++) {
        free(g_cfg.e[i].key);
        free(g_cfg.e[i].value);
        free(g_cfg.e[i].source);
    }
    free(g_cfg.e);
    free(g_cfg.path);
    for (int m = 0; m < NMULTI; m++) {
        free(g_cfg.multi[m].vals);
        free(g_cfg.multi[m].joined);
    }
    memset(&g_cfg, 0, sizeof g_cfg);
}

/* ---- values ------------------------------------------------------------------- */

/* Checks a [runtime] value. Returns NULL when it is valid, writing a normalised form into
 * norm (or "" to keep the text as given); otherwise what was expected. */
static const char *check_value(const char *key, const char *v, char *norm, size_t size)
{
    norm[0] = '\0';
    if (strcmp(key, "threads") == 0 || strcmp(key, "seed") == 0) {
        bool threads = strcmp(key, "threads") == 0;
        const char *want = threads ? "expected a positive integer"
                                   : "expected a non-negative integer";
        if (!isdigit((unsigned char)v[0]))
            return want;
        errno = 0;
        char *end;
        uintmax_t x = strtoumax(v, &end, 10);
        if (*end || errno == ERANGE || x > UINT64_MAX || (threads && (x < 1 || x > INT_MAX)))
            return want;
        snprintf(norm, size, "%" PRIu64, (uint64_t)x);
        return NULL;
    }
    if (strcmp(key, "fallback") == 0) {
        if (strcasecmp(v, "cpu") != 0 && strcasecmp(v, "none") != 0)
            return "expected 'cpu' or 'none'";
        snprintf(norm, size, "%s", tolower((unsigned char)v[0]) == 'c' ? "cpu" : "none");
        return NULL;
    }
    if (strcmp(key, "strict") == 0) {
        static const char *const words[] = {"1", "true", "yes", "0", "false", "no"};
        for (int i = 0; i < 6; i++)
            if (strcasecmp(v, words[i]) == 0) {
                snprintf(norm, size, "%s", i < 3 ? "1" : "0");
                return NULL;
            }
        return "expected a boolean (1/0/true/false/yes/no)";
    }
    if (strcmp(key, "backend") == 0 && !v[0])
        return "expected a backend name such as 'cpu' or 'cuda:0'";
    if (strcmp(key, "plugin_path") == 0 && !v[0])
        return "expected a directory";
    return NULL;
}

/* Levenshtein distance, case-insensitive, for "did you mean" (short names only). */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return INT_MAX;
    int row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            int best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The closest of n names to `given`, or NULL when none is close enough to be a typo. */
static const char *suggest(const char *given, const char *const *names, int n)
{
    const char *best = NULL;
    int best_d = INT_MAX;
    for (int i = 0; i < n; i++) {
        int d = edit_distance(given, names[i]);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    size_t len = strlen(given);
    return best_d <= 2 && (size_t)best_d * 2 <= len ? best : NULL;
}

/* ---- the INI file ------------------------------------------------------------- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int section_index(const char *name)
{
    for (int i = 0; i < NSECTIONS; i++)
        if (strcmp(name, k_sections[i]) == 0)
            return i;
    return -1;
}

static int runtime_key_index(const char *name)
{
    for (int i = 0; i < NRUNTIME; i++)
        if (strcmp(name, k_runtime_keys[i]) == 0)
            return i;
    return -1;
}

/* A "[name]" line. `section` receives the index of a known section. */
static int parse_section(const char *file, int line, char *text, int *section)
{
    size_t n = strlen(text);
    if (n < 2 || text[n - 1] != ']')
        return em_set_error(EM_ERR_IO, "%s:%d: malformed section header '%s'", file, line, text);
    text[n - 1] = '\0';
    char *name = trim(text + 1);
    *section = section_index(name);
    if (*section >= 0)
        return EM_OK;
    const char *s = suggest(name, k_sections, NSECTIONS);
    if (s)
        return em_set_error(EM_ERR_IO, "%s:%d: unknown section [%s]; did you mean [%s]?", file,
                            line, name, s);
    return em_set_error(EM_ERR_IO,
                        "%s:%d: unknown section [%s]; expected runtime, data, model or train",
                        file, line, name);
}

/* A "key = value" line inside `section`. */
static int parse_pair(const char *file, const char *abs, int line, char *text, int section)
{
    char *eq = strchr(text, '=');
    if (!eq)
        return em_set_error(EM_ERR_IO, "%s:%d: expected 'key = value', got '%s'", file, line,
                            text);
    /* The key is checked before the line is cut up, so the message can quote it whole. */
    char *kend = eq;
    while (kend > text && isspace((unsigned char)kend[-1]))
        kend--;
    bool ok = kend > text;
    for (const char *p = text; p < kend; p++)
        ok = ok && (isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.');
    if (!ok)
        return em_set_error(EM_ERR_IO, "%s:%d: expected 'key = value', got '%s'", file, line,
                            text);
    *kend = '\0';
    char *key = text, *value = trim(eq + 1);
    if (section < 0)
        return em_set_error(EM_ERR_IO, "%s:%d: '%s' comes before any [section] header", file,
                            line, key);
    size_t vn = strlen(value);
    if (value[0] == '"') {
        if (vn < 2 || value[vn - 1] != '"')
            return em_set_error(EM_ERR_IO, "%s:%d: unterminated quoted value for '%s'", file,
                                line, key);
        value[vn - 1] = '\0';
        value++;
    }
    char norm[32];
    if (section == 0) {
        if (runtime_key_index(key) < 0) {
            const char *s = suggest(key, k_runtime_keys, NRUNTIME);
            if (s)
                return em_set_error(EM_ERR_IO,
                                    "%s:%d: [runtime] unknown key '%s'; did you mean '%s'?",
                                    file, line, key, s);
            return em_set_error(EM_ERR_IO,
                                "%s:%d: [runtime] unknown key '%s'; known keys: backend, "
                                "plugin_path, threads, seed, fallback, strict, disable, dist",
                                file, line, key);
        }
        const char *why = check_value(key, value, norm, sizeof norm);
        if (why)
            return em_set_error(EM_ERR_INVALID, "%s:%d: [runtime] %s: %s, got '%s'", file,
                                line, key, why, value);
        if (norm[0])
            value = norm;
    }
    /* A relative plugin folder is the config file's neighbour, never the current directory's
     * (running `ember` inside an untrusted folder must not load its code). */
    char resolved[PATH_MAX];
    if (section == 0 && !strcmp(key, "plugin_path") && value[0] != '/') {
        const char *slash = strrchr(abs, '/');
        snprintf(resolved, sizeof resolved, "%.*s/%s", slash ? (int)(slash - abs) : 1,
                 slash ? abs : ".", value);
        value = resolved;
    }
    const char *sec = k_sections[section];
    size_t klen = strlen(sec) + 1 + strlen(key) + 1, slen = strlen(abs) + 24;
    char *full = malloc(klen), *source = malloc(slen);
    if (!full || !source) {
        free(full);
        free(source);
        return nomem();
    }
    snprintf(full, klen, "%s.%s", sec, key);
    snprintf(source, slen, "%s:%d", abs, line);
    int rc = cfg_set(full, value, source);
    free(full);
    free(source);
    return rc;
}

static int parse_file(const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return em_set_error(EM_ERR_IO, "%s: cannot read config file: %s", file,
                            strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return em_set_error(EM_ERR_IO, "%s: cannot read config file: not a regular file", file);
    }
    char *abs = realpath(file, NULL);
    free(g_cfg.path);                  /* a layered load: the last file read is named */
    g_cfg.path = abs ? abs : strdup(file);
    if (!g_cfg.path) {
        fclose(f);
        return nomem();
    }
    char *buf = NULL;
    size_t cap = 0;
    int line = 0, section = -1, rc = EM_OK;
    ssize_t got;
    while (rc == EM_OK && (got = getline(&buf, &cap, f)) >= 0) {
        line++;
        char *text = buf;
        if (line == 1 && strncmp(text, "\xEF\xBB\xBF", 3) == 0)   /* UTF-8 byte order mark */
            text += 3;
        text = trim(text);
        if (!*text || *text == '#' || *text == ';')
            continue;
        if (*text == '[')
            rc = parse_section(file, line, text, &section);
        else
            rc = parse_pair(file, g_cfg.path, line, text, section);
    }
    if (rc == EM_OK && ferror(f))
        rc = em_set_error(EM_ERR_IO, "%s: read error: %s", file, strerror(errno));
    free(buf);
    fclose(f);
    return rc;
}

/* ---- finding the file ------------------------------------------------------------ */

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* An absolute directory from the environment, or NULL: per the XDG spec a relative path is
 * ignored, which also keeps the search out of the current directory. */
static const char *abs_env_dir(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] == '/' ? v : NULL;
}

/* Reads the default files, later ones over earlier ones: the system file, then the user's;
 * $EMBER_CONFIG instead of both. None is fine. */
static int load_default_files(void)
{
    const char *env = getenv("EMBER_CONFIG");
    if (env) {
        if (!env[0])
            return EM_OK;                     /* EMBER_CONFIG="": run without a config file */
        if (!file_exists(env))
            return em_set_error(EM_ERR_IO, "EMBER_CONFIG: cannot read config file '%s': %s",
                                env, strerror(errno));
        return parse_file(env);
    }
    if (file_exists(EMBER_SYSCONFDIR "/ember/ember.ini")) {
        int rc = parse_file(EMBER_SYSCONFDIR "/ember/ember.ini");
        if (rc != EM_OK)
            return rc;
    }
    char path[PATH_MAX];
    const char *xdg = abs_env_dir("XDG_CONFIG_HOME"), *home = abs_env_dir("HOME");
    int n = -1;
    if (xdg)
        n = snprintf(path, sizeof path, "%s/ember/ember.ini", xdg);
    else if (home)
        n = snprintf(path, sizeof path, "%s/.config/ember/ember.ini", home);
    if (n > 0 && (size_t)n < sizeof path && file_exists(path))
        return parse_file(path);
    return EM_OK;
}

/* ---- environment overrides ------------------------------------------------------ */

static int apply_env(void)
{
    char norm[32], source[64];
    for (size_t i = 0; i < sizeof k_env / sizeof k_env[0]; i++) {
        const char *v = getenv(k_env[i].env);
        if (!v || !v[0])                      /* empty counts as unset */
            continue;
        const char *why = check_value(k_env[i].key, v, norm, sizeof norm);
        if (why)
            return em_set_error(EM_ERR_INVALID, "%s: %s, got '%s'", k_env[i].env, why, v);
        char key[32];
        snprintf(key, sizeof key, "runtime.%s", k_env[i].key);
        snprintf(source, sizeof source, "env %s", k_env[i].env);
        int rc = cfg_set(key, norm[0] ? norm : v, source);
        if (rc != EM_OK)
            return rc;
    }
    /* Colon-separated directories, searched before the config file's plugin_path lines. */
    const char *pp = getenv("EMBER_PLUGIN_PATH");
    while (pp && *pp) {
        size_t len = strcspn(pp, ":");
        if (len > 0) {
            char *dir = strndup(pp, len);
            if (!dir)
                return nomem();
            int rc = cfg_set("runtime.env_plugin_path", dir, "env EMBER_PLUGIN_PATH");
            free(dir);
            if (rc != EM_OK)
                return rc;
        }
        pp += len + (pp[len] == ':');
    }
    return EM_OK;
}

/* ---- loading -------------------------------------------------------------------- */

/* Defaults, then the files (`files`: 0 the default search, 1 only `path`, 2 the default
 * search and `path` over it), then the environment. */
static int config_load(const char *path, int files)
{
    em__config_free();
    int rc = cfg_set("runtime.backend", "cpu", "default");
    if (rc == EM_OK)
        rc = cfg_set("runtime.fallback", "none", "default");
    if (rc == EM_OK)
        rc = cfg_set("runtime.strict", "0", "default");
    if (rc == EM_OK && files != 1)
        rc = load_default_files();
    if (rc == EM_OK && files != 0 && path[0])
        rc = parse_file(path);
    if (rc == EM_OK)
        rc = apply_env();
    if (rc == EM_OK)
        rc = finish_multi();
    if (rc != EM_OK)
        em__config_free();
    return rc;
}

int em__config_load(const char *path)
{
    /* path "": no config file, as EMBER_CONFIG="" */
    return config_load(path ? path : "", path ? 1 : 0);
}

int em__config_load_layered(const char *path)
{
    return config_load(path ? path : "", path ? 2 : 0);
}

const char *em__config_path(void) { return g_cfg.path ? g_cfg.path : ""; }

bool em__config_entry(int i, const char **key, const char **value, const char **source)
{
    if (i < 0 || i >= g_cfg.n)
        return false;
    if (key)
        *key = g_cfg.e[i].key;
    if (value)
        *value = g_cfg.e[i].value;
    if (source)
        *source = g_cfg.e[i].source;
    return true;
}

int em__config_multi(const char *key, const char ***values)
{
    const char **ignored;
    if (!values)
        values = &ignored;
    int m = key ? multi_index(key) : -1;
    if (m >= 0) {
        *values = g_cfg.multi[m].vals;
        return g_cfg.multi[m].n;
    }
    /* A single-valued key: its one value, seen as a list. */
    cfg_entry *e = key ? find_entry(key) : NULL;
    *values = e ? &e->view : NULL;
    return e ? 1 : 0;
}

/* ---- public getters ------------------------------------------------------------- */

const char *em_config_get(const char *key)
{
    if (!key)
        return NULL;
    int m = multi_index(key);
    if (m >= 0)
        return g_cfg.multi[m].joined;
    cfg_entry *e = find_entry(key);
    return e ? e->value : NULL;
}

const char *em_config_source(const char *key)
{
    cfg_entry *e = key ? find_entry(key) : NULL;   /* a multi-valued key: its first value's */
    return e ? e->source : NULL;
}

int em_config_threads(void)
{
    const char *v = em_config_get("runtime.threads");
    if (v) {
        long n = strtol(v, NULL, 10);
        if (n > 0 && n <= INT_MAX)
            return (int)n;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 && cores <= INT_MAX ? (int)cores : 1;
}
