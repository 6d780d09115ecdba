/* tests/optim/helpers.h - what the optim tests share: the fixture (the TestParams module type
 * and the mock device on the plugin path), building modules, setting gradients, reading
 * parameters, and a small safetensors reader (jansson) that checks files independently of
 * the core's reader.
 *
 * Header-only, static inline, on top of tests/core/helpers.h (values, tolerances, errors).
 */
#ifndef EMBER_TESTS_OPTIM_HELPERS_H
#define EMBER_TESTS_OPTIM_HELPERS_H

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/helpers.h"
#include "ember/plugin.h"

/* ---- fixture -------------------------------------------------------------------------------- */

/* em_init with the TestParams plugin and the mock device on EMBER_PLUGIN_PATH; the build tree's
 * own plugins (cpu, optim, nn when built) load as for every test. */
static inline void opt_setup(void)
{
    setenv("EMBER_CONFIG", "", 1);
    setenv("EMBER_PLUGIN_PATH", TESTPARAMS_PLUGIN_DIR ":" MOCK_PLUGIN_DIR, 1);
    int rc = em_init(NULL);
    cr_assert_eq(rc, EM_OK, "em_init: %s", em_last_error());
}

static inline void opt_teardown(void) { em_shutdown(); }

/* ---- modules and gradients ------------------------------------------------------------------- */

static inline em_module *opt_module_(const char *file, int line, const char *spec)
{
    em_module *m = em_module_new(spec);
    cr_assert_not_null(m, "%s:%d: em_module_new(\"%s\"): %s", file, line, spec, em_last_error());
    return m;
}
#define opt_module(spec) opt_module_(__FILE__, __LINE__, (spec))

static inline em_optimizer *opt_optimizer_(const char *file, int line, const char *spec,
                                           em_module *m)
{
    em_optimizer *o = em_optimizer_new(spec, m);
    cr_assert_not_null(o, "%s:%d: em_optimizer_new(\"%s\"): %s", file, line, spec,
                       em_last_error());
    return o;
}
#define opt_optimizer(spec, m) opt_optimizer_(__FILE__, __LINE__, (spec), (m))

/* Makes p.grad exactly g (numel(p) values), through autograd: backward of sum(p * g) after
 * clearing the old grad. Works on any device with mul/sum kernels (the CPU). */
static inline void opt_set_grad(em_tensor *p, const double *g)
{
    cr_assert_eq(em_grad_clear(p), EM_OK, "%s", em_last_error());
    em_opts o = {.dtype = em_dtype_of(p), .device = em_device_of(p)};
    em_tensor *gt = em_tensor_from_data(g, EM_F64, em_ndim(p), em_shape(p), &o);
    cr_assert_not_null(gt, "%s", em_last_error());
    em_tensor *prod = em_mul(p, gt), *loss = em_sum_all(prod);
    cr_assert_not_null(loss, "%s", em_last_error());
    cr_assert_eq(em_backward(loss, NULL, false), EM_OK, "%s", em_last_error());
    em_release(loss);
    em_release(prod);
    em_release(gt);
}

/* The values of a module's parameter or buffer by state_dict name (caller frees). */
static inline double *opt_values_(const char *file, int line, const em_module *m,
                                  const char *name)
{
    em_tensor *t = em_module_get(m, name);
    cr_assert_not_null(t, "%s:%d: no tensor '%s': %s", file, line, name, em_last_error());
    return emt_values_(file, line, t);
}
#define opt_values(m, name) opt_values_(__FILE__, __LINE__, (m), (name))

/* Every parameter and buffer of m as doubles, concatenated (caller frees; *n receives the
 * count): for "nothing changed" checks. */
static inline double *opt_snapshot(const em_module *m, int64_t *n)
{
    int64_t total = 0;
    for (int i = 0; i < em_module_state_count(m); i++)
        total += em_numel(em_module_state_tensor(m, i));
    double *all = malloc((size_t)(total ? total : 1) * sizeof *all);
    cr_assert_not_null(all);
    int64_t at = 0;
    for (int i = 0; i < em_module_state_count(m); i++) {
        em_tensor *t = em_module_state_tensor(m, i);
        double *v = emt_values(t);
        memcpy(all + at, v, (size_t)em_numel(t) * sizeof *v);
        at += em_numel(t);
        free(v);
    }
    *n = total;
    return all;
}

/* Asserts m's state equals a snapshot bit for bit. */
static inline void opt_assert_unchanged_(const char *file, int line, const em_module *m,
                                         const double *before, int64_t n)
{
    int64_t n2;
    double *now = opt_snapshot(m, &n2);
    cr_assert_eq(n2, n, "%s:%d: the module's element count changed", file, line);
    for (int64_t i = 0; i < n; i++)
        cr_assert(now[i] == before[i] || (isnan(now[i]) && isnan(before[i])),
                  "%s:%d: element %lld changed from %.17g to %.17g", file, line, (long long)i,
                  before[i], now[i]);
    free(now);
}
#define opt_assert_unchanged(m, before, n) opt_assert_unchanged_(__FILE__, __LINE__, (m), (before), (n))

/* ---- a second safetensors reader ------------------------------------------------------------- */

typedef struct opt_st {
    unsigned char *bytes;
    size_t size;
    json_t *hdr;
    const unsigned char *data;
} opt_st;

/* Reads a safetensors file; asserts it is well formed. */
static inline void opt_st_read(opt_st *f, const char *path)
{
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp, "cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    cr_assert_geq(size, 8, "%s: %ld bytes", path, size);
    f->size = (size_t)size;
    f->bytes = malloc(f->size);
    cr_assert_eq(fread(f->bytes, 1, f->size, fp), f->size);
    fclose(fp);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | f->bytes[i];
    cr_assert_leq(hlen, f->size - 8, "%s: header length %llu", path, (unsigned long long)hlen);
    json_error_t je;
    f->hdr = json_loadb((const char *)f->bytes + 8, hlen, 0, &je);
    cr_assert_not_null(f->hdr, "%s: header: %s", path, je.text);
    f->data = f->bytes + 8 + hlen;
}

static inline void opt_st_free(opt_st *f)
{
    json_decref(f->hdr);
    free(f->bytes);
}

/* Tensor `key` of the file as doubles (F32, F64 or I64; caller frees); *n gets the count. */
static inline double *opt_st_values(const opt_st *f, const char *key, int64_t *n)
{
    json_t *e = json_object_get(f->hdr, key);
    cr_assert_not_null(e, "no key '%s' in the file", key);
    const char *dt = json_string_value(json_object_get(e, "dtype"));
    json_t *offs = json_object_get(e, "data_offsets");
    size_t b = (size_t)json_integer_value(json_array_get(offs, 0));
    size_t end = (size_t)json_integer_value(json_array_get(offs, 1));
    size_t es = !strcmp(dt, "F32") ? 4 : 8;
    int64_t count = (int64_t)((end - b) / es);
    double *v = malloc((size_t)(count ? count : 1) * sizeof *v);
    for (int64_t i = 0; i < count; i++) {
        const unsigned char *p = f->data + b + (size_t)i * es;
        if (!strcmp(dt, "F32")) {
            float x;
            memcpy(&x, p, 4);
            v[i] = x;
        } else if (!strcmp(dt, "F64")) {
            memcpy(&v[i], p, 8);
        } else {
            cr_assert_str_eq(dt, "I64", "key '%s': dtype %s", key, dt);
            int64_t x;
            memcpy(&x, p, 8);
            v[i] = (double)x;
        }
    }
    *n = count;
    return v;
}

/* A tensor made from key `key` of the file (F32 as float32, I64 as int64). */
static inline em_tensor *opt_st_tensor(const opt_st *f, const char *key)
{
    json_t *e = json_object_get(f->hdr, key);
    cr_assert_not_null(e, "no key '%s' in the file", key);
    json_t *js = json_object_get(e, "shape");
    int64_t shape[EM_MAX_DIMS];
    int nd = (int)json_array_size(js);
    for (int d = 0; d < nd; d++)
        shape[d] = json_integer_value(json_array_get(js, (size_t)d));
    const char *dt = json_string_value(json_object_get(e, "dtype"));
    size_t b = (size_t)json_integer_value(json_array_get(json_object_get(e, "data_offsets"), 0));
    em_dtype t = !strcmp(dt, "F32") ? EM_F32 : !strcmp(dt, "I64") ? EM_I64 : EM_F64;
    em_tensor *r = em_tensor_from_data(f->data + b, t, nd, shape, NULL);
    cr_assert_not_null(r, "%s", em_last_error());
    return r;
}

/* ---- files ------------------------------------------------------------------------------------ */

/* A fresh temporary directory (mkdtemp); the caller removes it with opt_rmdir. */
static inline void opt_tmpdir(char *buf, size_t size)
{
    snprintf(buf, size, "%s/ember-optim-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert_not_null(mkdtemp(buf), "mkdtemp: %s", strerror(errno));
}

static inline void opt_rmdir(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

#endif
