/* tests/fuzz/fuzz_common.h - what the libFuzzer harnesses share: a one-time em_init over the
 * build tree's plugins (no config file, the OpenCL plugin left out), a private temporary
 * folder for inputs that must be files, and a check that stops the run with a message.
 *
 * Header-only (static inline). A harness aborts (FUZZ_CHECK) when Ember breaks a promise
 * that no sanitizer sees: a failure without a message, a module changed by a failed load.
 */
#ifndef EMBER_TESTS_FUZZ_COMMON_H
#define EMBER_TESTS_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember/ember.h"

#define FUZZ_CHECK(cond, ...)                                                                    \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz: %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                        \
            fputc('\n', stderr);                                                                 \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

/* em_init once per process, with the build tree's plugins (libember finds them itself) and
 * no config file; warnings off stderr would hide nothing here, so they stay. */
static inline void fuzz_init_ember(void)
{
    setenv("EMBER_CONFIG", "", 1);
    setenv("EMBER_PLUGIN_PATH", "", 1);
    setenv("EMBER_NUM_THREADS", "1", 1);
    setenv("EMBER_DISABLE_PLUGINS", "opencl,cuda", 1);
    if (em_init(NULL) != EM_OK) {
        fprintf(stderr, "fuzz: em_init failed: %s\n", em_last_error());
        abort();
    }
}

/* Unsets the environment variables that would add config entries or plugins of their own. */
static inline void fuzz_clear_env(void)
{
    static const char *const env[] = {"EMBER_BACKEND",  "EMBER_NUM_THREADS", "EMBER_SEED",
                                      "EMBER_STRICT",   "EMBER_FALLBACK",    "EMBER_PLUGIN_PATH",
                                      "EMBER_DISABLE_PLUGINS"};
    for (size_t i = 0; i < sizeof env / sizeof env[0]; i++)
        unsetenv(env[i]);
}

/* LLVMFuzzerInitialize for a harness that needs nothing but em_init. */
#define FUZZ_INITIALIZE_EMBER()                                                                  \
    int LLVMFuzzerInitialize(int *argc, char ***argv);                                           \
    int LLVMFuzzerInitialize(int *argc, char ***argv)                                            \
    {                                                                                            \
        (void)argc;                                                                              \
        (void)argv;                                                                              \
        fuzz_init_ember();                                                                       \
        return 0;                                                                                \
    }

/* A folder of our own under TMPDIR (or /tmp), made once; removed at exit. */
static char fuzz_dir_[256];

static inline void fuzz_rm_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_);
    if (fuzz_dir_[0] && system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir_);
}

static inline const char *fuzz_dir(void)
{
    if (!fuzz_dir_[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_dir_, sizeof fuzz_dir_, "%s/ember-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(fuzz_dir_)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_rm_dir);
    }
    return fuzz_dir_;
}

/* dir/name, in a static buffer (one of four). */
static inline const char *fuzz_path(const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", fuzz_dir(), name);
    return p;
}

/* Writes n bytes to dir/name and returns its path. */
static inline const char *fuzz_write(const char *name, const uint8_t *data, size_t n)
{
    const char *path = fuzz_path(name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n)) {
        perror(path);
        abort();
    }
    fclose(f);
    return path;
}

/* A NUL-terminated copy of the input (caller frees). */
static inline char *fuzz_text(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

/* FUZZ_AVOID_KNOWN=1 in the environment: the harnesses skip the input shapes of findings that
 * are known and being fixed elsewhere, so that a campaign gets past them (tools/fuzz.sh passes
 * it through; CI leaves it unset, so the findings fail there until they are fixed). */
static inline bool fuzz_avoid_known(void)
{
    static int avoid = -1;
    if (avoid < 0) {
        const char *v = getenv("FUZZ_AVOID_KNOWN");
        avoid = v && *v == '1';
    }
    return avoid;
}

/* Issue 14, finding 1: core/spec.c reads past the NUL of a string that ends in a backslash. */
static inline bool fuzz_known_spec_overread(const char *text)
{
    size_t n = strlen(text);
    return fuzz_avoid_known() && n && text[n - 1] == '\\';
}

/* A failed call must say why. */
#define FUZZ_CHECK_MESSAGE(what) FUZZ_CHECK(em_last_error()[0], "%s failed with no message", what)

/* Reads items 0..max-1 of d (fewer if it is shorter); a failed read must say why. */
static inline void fuzz_read_items(em_dataset *d, int64_t max)
{
    int64_t n = em_dataset_len(d);
    FUZZ_CHECK(n >= 0, "negative length %lld", (long long)n);
    for (int64_t i = 0; i < n && i < max; i++) {
        em_tensor *x = NULL, *y = NULL;
        em_clear_error();
        if (em_dataset_get(d, i, &x, &y) < 0)
            FUZZ_CHECK_MESSAGE("em_dataset_get");
        em_release(x);
        em_release(y);
    }
}

#endif
