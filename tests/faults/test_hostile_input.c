/* tests/faults/test_hostile_input.c - files that lie about their sizes: a loader checks what a
 * header claims against what the file really holds before it allocates, so a few bytes of
 * header cannot make it reserve gigabytes. inject.h records the largest request. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "helpers.h"
#include "inject.h"

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
    fault_arm(FAULT_ALLOC, 0, false);
    em_dataset *d = em_dataset_new(spec);
    fault_disarm();
    size_t largest = fault_largest();
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

/* ---- safetensors headers -------------------------------------------------------------------- */

/* Writes a safetensors file: the 8-byte length, `header` as given, 36 data bytes (Linear(2, 3):
 * bias [3] then weight [3, 2], float32). */
static const char *write_st(const char *header)
{
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/hostile.safetensors", dir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    uint64_t n = strlen(header);
    for (int i = 0; i < 8; i++)
        fputc((int)(n >> (8 * i)) & 0xFF, f);
    fputs(header, f);
    float data[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    cr_assert_eq(fwrite(data, sizeof data, 1, f), 1);
    fclose(f);
    return path;
}

#define ST_BIAS "\"bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}"
#define ST_WEIGHT "\"weight\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[12,36]}"

Test(hostile, safetensors_headers_that_lie_or_break_json_are_refused_and_change_nothing)
{
    char deep[400] = "{" ST_BIAS "," ST_WEIGHT ",\"__metadata__\":";
    for (int i = 0; i < 70; i++)
        strcat(deep, "[");
    const struct {
        const char *header, *want;
    } cases[] = {
        {"", "a value"},
        {"[]", "not an object"},
        {"[1, 2, {\"a\": 3}]", "not an object"},
        {"{" ST_BIAS "," ST_WEIGHT "} x", "the end of the header"},
        {"{" ST_BIAS "," ST_BIAS "," ST_WEIGHT "}", "names key 'bias' twice"},
        {"{\"bi\\u0000as\":1," ST_WEIGHT "}", "no NUL inside a string"},
        {"{\"\\udc00\":1," ST_BIAS "," ST_WEIGHT "}", "no lone low surrogate"},
        {"{\"\\ud800x\":1," ST_BIAS "," ST_WEIGHT "}", "a low surrogate"},
        {"{\"\\u12\":1}", "four hex digits"},
        {"{\"\\q\":1}", "a valid escape sequence"},
        {"{\"a\tb\":1}", "a control character"},
        {"{\"a\":01}", "no leading zero"},
        {"{\"a\":1.}", "a well-formed, finite number"},
        {"{\"a\":1e999}", "a well-formed, finite number"},
        {"{\"a\":-}", "a value"},
        {"{\"a\":NaN}", "a value"},
        {"{\"a\":[1,]}", "a value"},
        {"{\"a\":1,}", "a '\"' opening a key"},
        {"{\"a\" 1}", "':' after a key"},
        {"{\"a\":\"unterminated}", "a closing '\"'"},
        {"{\"a\":\"ends in a backslash\\", "a closing '\"'"},
        {deep, "at most 64 levels of nesting"},
        {"{\"bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,99999999999999999999]},"
         ST_WEIGHT "}", "bad data_offsets"},
        {"{\"bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[-12,0]}," ST_WEIGHT "}",
         "bad data_offsets"},
        {"{\"bias\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
         "\"data_offsets\":[0,12]}," ST_WEIGHT "}", "bad shape"},
        {"{\"bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,40]}," ST_WEIGHT "}",
         "do not fit"},
    };
    em_module *m = em_module_new("Linear(2, 3)");
    cr_assert_not_null(m, "%s", em_last_error());
    char snap[PATH_MAX + 64];
    snprintf(snap, sizeof snap, "%s/before.safetensors", dir);
    cr_assert_eq(em_module_save(m, snap), EM_OK, "%s", em_last_error());
    size_t n0;
    void *before = flt_read_all(snap, &n0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = write_st(cases[i].header);
        cr_assert_lt(em_module_load(m, p), 0, "case %zu loaded: %.60s", i, cases[i].header);
        cr_assert(strstr(em_last_error(), cases[i].want), "case %zu: %s", i, em_last_error());
        cr_assert(strstr(em_last_error(), "hostile.safetensors"), "case %zu: %s", i,
                  em_last_error());
        cr_assert_eq(em_module_save(m, snap), EM_OK, "%s", em_last_error());
        size_t n;
        void *now = flt_read_all(snap, &n);
        cr_assert(n == n0 && !memcmp(now, before, n), "case %zu changed the module", i);
        free(now);
    }
    /* Escapes are decoded: "w\u0065ight" is "weight". */
    const char *ok = write_st("{" ST_BIAS ",\"w\\u0065ight\":{\"dtype\":\"F32\",\"shape\":[3,2],"
                              "\"data_offsets\":[12,36]},\"__metadata__\":{\"k\":\"\\u00e9\\n\"}}");
    cr_assert_eq(em_module_load(m, ok), EM_OK, "%s", em_last_error());
    float got[6];
    cr_assert_eq(em_copy_to_host(em_module_param(m, 0), got, sizeof got), EM_OK);
    cr_assert_float_eq(got[0], 4.0f, 0, "weight[0][0] = %g", got[0]);
    free(before);
    em_module_free(m);
}
