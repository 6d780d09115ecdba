/* tests/data/helpers.h - what the data tests share: the core test helpers, a temporary
 * directory per test with files written into it, and reading batches back as numbers.
 *
 * Each Criterion test runs in its own process; the directory is removed by emd_teardown. */
#ifndef EMBER_TESTS_DATA_HELPERS_H
#define EMBER_TESTS_DATA_HELPERS_H

#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/helpers.h"

static char emd_dir_[256];

/* A fresh temporary directory (created once per test). */
static inline const char *emd_dir(void)
{
    if (!emd_dir_[0]) {
        snprintf(emd_dir_, sizeof emd_dir_, "/tmp/ember-data-test-XXXXXX");
        cr_assert_not_null(mkdtemp(emd_dir_), "mkdtemp failed");
    }
    return emd_dir_;
}

/* dir/name (name may contain one level of subfolders, created here). Returns a static path. */
static inline const char *emd_path(const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", emd_dir(), name);
    return p;
}

/* Writes `text` (exactly, byte for byte) to dir/name and returns its path. */
static inline const char *emd_write(const char *name, const char *text)
{
    const char *path = emd_path(name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    return path;
}

static inline void emd_rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(n);
        if (!p)
            continue;
        snprintf(p, n, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            emd_rm_tree(p);
        else
            unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

static inline void emd_setup(void) { emt_setup(); }

static inline void emd_teardown(void)
{
    em_shutdown();
    if (emd_dir_[0])
        emd_rm_tree(emd_dir_);
}

/* A dataset from a spec, asserting it was built. */
static inline em_dataset *emd_new_(const char *file, int line, const char *spec)
{
    em_dataset *d = em_dataset_new(spec);
    cr_assert_not_null(d, "%s:%d: em_dataset_new(%s): %s", file, line, spec, em_last_error());
    return d;
}
#define emd_new(spec) emd_new_(__FILE__, __LINE__, (spec))

/* printf into a static buffer (for specs naming temp files). */
static inline const char *emd_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline const char *emd_fmt(const char *fmt, ...)
{
    static char buf[4][2048];
    static int k;
    char *p = buf[k++ % 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, 2048, fmt, ap);
    va_end(ap);
    return p;
}

/* Asserts that a dataset spec fails with an error containing `want`. */
#define EMD_ASSERT_SPEC_FAILS(spec, want)                                                   \
    do {                                                                                    \
        em_dataset *emd_d_ = em_dataset_new(spec);                                          \
        bool emd_null_ = emd_d_ == NULL;                                                    \
        em_dataset_free(emd_d_);                                                            \
        cr_assert(emd_null_, "%s:%d: %s succeeded; expected \"%s\"", __FILE__, __LINE__,    \
                  (spec), (want));                                                          \
        emt_check_error_(__FILE__, __LINE__, (want));                                       \
    } while (0)

#endif
