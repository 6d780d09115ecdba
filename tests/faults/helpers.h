/* tests/faults/helpers.h - what the failure-path tests share: a scratch folder and whole-file
 * reads. Header-only (static inline), on top of tests/core/helpers.h. */
#ifndef EMBER_TESTS_FAULT_HELPERS_H
#define EMBER_TESTS_FAULT_HELPERS_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "../core/helpers.h"

/* emt_setup with the CPU as the default device whatever EMBER_BACKEND says: an allocation made
 * to fail inside a third-party OpenCL driver tests the driver, not Ember (PoCL crashes on
 * some), so the allocation-failure tests run their tensors on the CPU. */
static inline void flt_setup(void)
{
    emt_setup();
    emt_pin_cpu();
}

/* Makes a fresh scratch folder (dir: PATH_MAX bytes) named after `what`. */
static inline void flt_mkdir(char *dir, const char *what)
{
    snprintf(dir, PATH_MAX, "%s/ember-%s-XXXXXX", P_tmpdir, what);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp %s", dir);
}

static inline void flt_rmdir(const char *dir)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* The whole file (malloc'ed, *size bytes), or NULL when it cannot be opened. */
static inline void *flt_read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc((size_t)n + 1);
    cr_assert_not_null(p);
    cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n, "%s", path);
    fclose(f);
    *size = (size_t)n;
    return p;
}

#endif
