/* tests/fault/test_hostile_input.c - files that lie about their sizes: a loader checks what a
 * header claims against what the file really holds before it allocates, so a few bytes of
 * header cannot make it reserve gigabytes. failmalloc.h records the largest request. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "helpers.h"
#include "failmalloc.h"

/* No allocation while loading a tiny hostile file may exceed this. */
#define SMALL_REQUEST (64u << 20)

static char dir[PATH_MAX];

static void setup(void)
{
    emt_setup();
    flt_mkdir(dir, "hostile");
}

static void teardown(void)
{
    flt_rmdir(dir);
    em_shutdown();
}

TestSuite(hostile, .init = setup, .fini = teardown);

/* Writes an IDX header of bytes with these sizes and `data` after it, gzip'd or plain. */
static void write_idx(const char *name, int ndim, const uint32_t *dims, const char *data,
                      bool gz)
{
    uint8_t h[4 + 4 * 4] = {0, 0, 8, (uint8_t)ndim};
    for (int i = 0; i < ndim; i++)
        for (int b = 0; b < 4; b++)
            h[4 + 4 * i + b] = (uint8_t)(dims[i] >> (24 - 8 * b));
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s%s", dir, name, gz ? ".gz" : "");
    gzFile f = gzopen(path, gz ? "wb" : "wbT");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(gzwrite(f, h, (unsigned)(4 + 4 * ndim)), 4 + 4 * ndim);
    if (*data)
        cr_assert_eq(gzwrite(f, data, (unsigned)strlen(data)), (int)strlen(data));
    cr_assert_eq(gzclose(f), Z_OK);
}

/* MNIST over image files whose header claims `dims` with 8 data bytes behind it: the load
 * fails with a message containing `want`, and never asks for much memory. */
static void assert_idx_refused(const uint32_t dims[3], bool gz, const char *want)
{
    write_idx("train-labels-idx1-ubyte", 1, (const uint32_t[]){2}, "\1\2", gz);
    write_idx("train-images-idx3-ubyte", 3, dims, "12345678", gz);
    char spec[PATH_MAX + 64];
    snprintf(spec, sizeof spec, "MNIST(root=\"%s\")", dir);
    failmalloc_arm(0, false);
    em_dataset *d = em_dataset_new(spec);
    size_t largest = failmalloc_largest();
    cr_assert_null(d, "dims %u x %u x %u loaded", dims[0], dims[1], dims[2]);
    cr_assert(strstr(em_last_error(), want), "dims %u x %u x %u%s: %s", dims[0], dims[1], dims[2],
              gz ? " (gzip)" : "", em_last_error());
    cr_assert(strstr(em_last_error(), "train-images-idx3-ubyte"), "%s", em_last_error());
    cr_assert_lt(largest, SMALL_REQUEST, "dims %u x %u x %u%s: asked for %zu bytes", dims[0],
                 dims[1], dims[2], gz ? " (gzip)" : "", largest);
}

Test(hostile, idx_sizes_whose_product_overflows_are_refused_before_allocating)
{
    const uint32_t dims[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    assert_idx_refused(dims, false, "implausible sizes");
    assert_idx_refused(dims, true, "implausible sizes");
}

Test(hostile, idx_sizes_larger_than_the_file_are_refused_before_allocating)
{
    const uint32_t dims[3] = {1u << 16, 1u << 16, 1u << 3};   /* 32 GiB claimed, 8 bytes held */
    assert_idx_refused(dims, false, "the file holds 8");
    assert_idx_refused(dims, true, "truncated");
}
