/* tests/nn/helpers.h - what the nn plugin's tests share: the fixture, building modules, a
 * small safetensors reader (jansson) for the golden files PyTorch wrote, and relative-error
 * comparisons that report the largest error seen.
 *
 * Header-only, static inline, on top of tests/core/helpers.h (values, tolerances, errors).
 */
#ifndef EMBER_TESTS_NN_HELPERS_H
#define EMBER_TESTS_NN_HELPERS_H

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/helpers.h"
#include "ember/plugin.h"   /* em_module_child...: walking the tree */

/* ---- fixture -------------------------------------------------------------------------------- */

/* em_init with the build tree's plugins (cpu, nn, ...) and, for the device tests, the mock
 * backend on EMBER_PLUGIN_PATH. */
static inline void nnt_setup(void)
{
    setenv("EMBER_CONFIG", "", 1);
    setenv("EMBER_PLUGIN_PATH", MOCK_PLUGIN_DIR, 1);
    int rc = em_init(NULL);
    cr_assert_eq(rc, EM_OK, "em_init: %s", em_last_error());
    em_manual_seed(0);
}

static inline void nnt_teardown(void) { em_shutdown(); }

/* ---- modules --------------------------------------------------------------------------------- */

static inline em_module *nnt_module_(const char *file, int line, const char *spec)
{
    em_module *m = em_module_new(spec);
    cr_assert_not_null(m, "%s:%d: em_module_new(\"%s\"): %s", file, line, spec, em_last_error());
    return m;
}
#define nnt_module(spec) nnt_module_(__FILE__, __LINE__, (spec))

/* Asserts that em_module_new(spec) fails with an error containing `want`. */
static inline void nnt_module_fails_(const char *file, int line, const char *spec,
                                     const char *want)
{
    em_module *m = em_module_new(spec);
    bool failed = m == NULL;
    em_module_free(m);
    cr_assert(failed, "%s:%d: em_module_new(\"%s\") succeeded; expected \"%s\"", file, line, spec,
              want);
    cr_assert(strstr(em_last_error(), want) != NULL,
              "%s:%d: em_module_new(\"%s\") failed with \"%s\"; expected it to contain \"%s\"",
              file, line, spec, em_last_error(), want);
}
#define NNT_MODULE_FAILS(spec, want) nnt_module_fails_(__FILE__, __LINE__, (spec), (want))

/* Copies host values into a module's parameter or buffer (state_dict name), without recording. */
static inline void nnt_set_(const char *file, int line, em_module *m, const char *name,
                            const double *vals)
{
    em_tensor *p = em_module_get(m, name);
    cr_assert_not_null(p, "%s:%d: %s", file, line, em_last_error());
    em_opts o = {.dtype = em_dtype_of(p), .device = em_device_of(p)};
    em_tensor *src = em_tensor_from_data(vals, EM_F64, em_ndim(p), em_shape(p), &o);
    bool prev = em_set_grad_enabled(false);
    em_tensor *r = em_copy_(p, src);
    em_set_grad_enabled(prev);
    cr_assert_not_null(r, "%s:%d: copying into '%s': %s", file, line, name, em_last_error());
    em_release(r);
    em_release(src);
}
#define nnt_set(m, name, vals) nnt_set_(__FILE__, __LINE__, (m), (name), (vals))

/* ---- relative errors ------------------------------------------------------------------------- */

/* The largest error of got against want, each |got - want| measured relative to
 * max(|want|, floor * max|want|) (an entry near 0 cannot be compared relatively to itself). */
static inline double nnt_rel_error(const double *got, const double *want, int64_t n, double floor)
{
    double amax = 0, worst = 0;
    for (int64_t i = 0; i < n; i++)
        amax = fmax(amax, fabs(want[i]));
    for (int64_t i = 0; i < n; i++) {
        double scale = fmax(fabs(want[i]), floor * amax);
        double e = scale > 0 ? fabs(got[i] - want[i]) / scale : fabs(got[i] - want[i]);
        if (!(e <= worst))   /* NaN counts as the worst */
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

/* Asserts got (a tensor) matches want (a tensor) in shape and within rtol, relative to
 * max(|want|, floor * max|want|); returns the largest such relative error. */
static inline double nnt_check_close_(const char *file, int line, const char *what, em_tensor *got,
                                      em_tensor *want, double rtol, double floor)
{
    cr_assert_not_null(got, "%s:%d: [%s] %s is NULL: %s", file, line, emt_ctx(), what,
                       em_last_error());
    emt_check_dims_(file, line, what, em_ndim(got), em_shape(got), em_ndim(want), em_shape(want));
    double *g = emt_values_(file, line, got), *w = emt_values_(file, line, want);
    int64_t n = em_numel(want);
    double err = nnt_rel_error(g, w, n, floor), amax = 0;
    for (int64_t i = 0; i < n; i++)
        amax = fmax(amax, fabs(w[i]));
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
        if (!(fabs(g[i] - w[i]) <= rtol * fmax(fabs(w[i]), floor * amax)))
            bad = i;
    double gb = bad >= 0 ? g[bad] : 0, wb = bad >= 0 ? w[bad] : 0;
    free(g);
    free(w);
    cr_assert(bad < 0, "%s:%d: [%s] %s: element %lld is %.10g, expected %.10g (largest relative "
                       "error %.3g, tolerance %g)",
              file, line, emt_ctx(), what, (long long)bad, gb, wb, err, rtol);
    return err;
}
#define NNT_CHECK_CLOSE(what, got, want, rtol, floor)                                           \
    nnt_check_close_(__FILE__, __LINE__, (what), (got), (want), (rtol), (floor))

/* max |got - want| / max |want| over two tensors of one numel. */
static inline double nnt_normwise_error(em_tensor *got, em_tensor *want)
{
    double *g = emt_values(got), *w = emt_values(want);
    double e = nnt_rel_error(g, w, em_numel(want), 1.0);
    free(g);
    free(w);
    return e;
}

/* ---- golden files (safetensors written by gen_golden.py) ------------------------------------- */

typedef struct nnt_golden {
    char path[1024];
    uint8_t *bytes;
    json_t *hdr;
    const uint8_t *data;
    size_t data_size;
} nnt_golden;

static inline void nnt_golden_open(nnt_golden *g, const char *name)
{
    memset(g, 0, sizeof *g);
    snprintf(g->path, sizeof g->path, "%s/%s", NN_GOLDEN_DIR, name);
    FILE *f = fopen(g->path, "rb");
    cr_assert_not_null(f, "cannot open %s (run tests/nn/golden/gen_golden.py)", g->path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    cr_assert_gt(size, 8, "%s is truncated", g->path);
    g->bytes = malloc((size_t)size);
    cr_assert_eq(fread(g->bytes, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | g->bytes[i];
    cr_assert_leq(hlen, (uint64_t)size - 8, "%s: bad header length", g->path);
    json_error_t je;
    g->hdr = json_loadb((const char *)g->bytes + 8, (size_t)hlen, 0, &je);
    cr_assert_not_null(g->hdr, "%s: bad header: %s", g->path, je.text);
    g->data = g->bytes + 8 + hlen;
    g->data_size = (size_t)size - 8 - (size_t)hlen;
}

static inline void nnt_golden_close(nnt_golden *g)
{
    json_decref(g->hdr);
    free(g->bytes);
    memset(g, 0, sizeof *g);
}

static inline bool nnt_golden_has(const nnt_golden *g, const char *key)
{
    return json_object_get(g->hdr, key) != NULL;
}

/* The tensor stored under key, converted to dtype `as` (0: as stored). */
static inline em_tensor *nnt_golden_tensor(const nnt_golden *g, const char *key, em_dtype as)
{
    json_t *e = json_object_get(g->hdr, key);
    cr_assert_not_null(e, "%s: no key '%s'", g->path, key);
    const char *dts = json_string_value(json_object_get(e, "dtype"));
    em_dtype dt = !strcmp(dts, "F32") ? EM_F32 : !strcmp(dts, "F64") ? EM_F64
                : !strcmp(dts, "F16") ? EM_F16 : !strcmp(dts, "I64") ? EM_I64 : EM_DTYPE_UNSPEC;
    cr_assert_neq(dt, EM_DTYPE_UNSPEC, "%s: key '%s' has dtype %s", g->path, key, dts);
    json_t *js = json_object_get(e, "shape"), *jo = json_object_get(e, "data_offsets");
    int nd = (int)json_array_size(js);
    int64_t shape[EM_MAX_DIMS];
    for (int d = 0; d < nd; d++)
        shape[d] = json_integer_value(json_array_get(js, (size_t)d));
    size_t off = (size_t)json_integer_value(json_array_get(jo, 0));
    cr_assert_leq(off, g->data_size, "%s: key '%s' is outside the file", g->path, key);
    em_opts o = {.dtype = as ? as : dt};
    em_tensor *t = em_tensor_from_data(g->data + off, dt, nd, shape, &o);
    cr_assert_not_null(t, "%s: key '%s': %s", g->path, key, em_last_error());
    return t;
}

/* The spec text stored for a case in the header's __metadata__ (NULL if none). */
static inline const char *nnt_golden_meta(const nnt_golden *g, const char *key)
{
    return json_string_value(json_object_get(json_object_get(g->hdr, "__metadata__"), key));
}

#endif
