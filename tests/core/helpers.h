/* tests/core/helpers.h - what the core unit tests share: the init fixture, tensor builders
 * and assertions on shapes, strides, values and error messages.
 *
 * Header-only (every function is static inline, so a test file that uses a part of it gets
 * no unused-function warning). Uses the public API only. Assertions report the caller's
 * file and line in their message, since Criterion's own location points here.
 */
#ifndef EMBER_TESTS_CORE_HELPERS_H
#define EMBER_TESTS_CORE_HELPERS_H

#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L   /* setenv */
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "ember/ember.h"

/* ---- failure context -------------------------------------------------------------------- */

/* Text that every helper's failure message carries after the file:line, so a loop over dtypes
 * or ops can say which case failed: EMT_CONTEXT("dtype %s", em_dtype_name(dt)). */
static char emt_ctx_[256];

#define EMT_CONTEXT(...) snprintf(emt_ctx_, sizeof emt_ctx_, __VA_ARGS__)
static inline void emt_no_context(void) { emt_ctx_[0] = '\0'; }
static inline const char *emt_ctx(void) { return emt_ctx_; }

/* ---- fixture ------------------------------------------------------------------------- */

/* em_init(NULL) with no user config file (unless the test environment names one). */
static inline void emt_setup(void)
{
    setenv("EMBER_CONFIG", "", 0);
    int rc = em_init(NULL);
    cr_assert_eq(rc, EM_OK, "em_init(NULL) returned %d: %s", rc, em_last_error());
}

static inline void emt_teardown(void) { em_shutdown(); }

/* Makes the CPU the default device whatever EMBER_BACKEND says, for a test about CPU behaviour:
 * raw host memory through em_data_ptr, PyTorch's CPU repr, CPU-only kernels. As a test's own
 * init it runs after the suite's (Criterion runs both): Test(s, name, .init = emt_pin_cpu). */
static inline void emt_pin_cpu(void)
{
    cr_assert_eq(em_set_default_device(em_device_parse("cpu")), EM_OK, "pinning the CPU: %s",
                 em_last_error());
}

/* ---- building tensors ------------------------------------------------------------------ */

/* EMT_VALS(1, 2, 3) is a const double array literal. */
#define EMT_VALS(...) ((const double[]){__VA_ARGS__})

/* A tensor of dtype dt with the given shape, from double values (numel of them), built
 * with em_tensor_from_data's dtype override. Asserts it worked. */
static inline em_tensor *emt_tensor_(const char *file, int line, em_dtype dt, int ndim,
                                     const int64_t *shape, const double *vals)
{
    em_opts o = {.dtype = dt};
    em_tensor *t = em_tensor_from_data(vals, EM_F64, ndim, shape, &o);
    cr_assert_not_null(t, "%s:%d: [%s] building a %s tensor failed: %s", file, line, emt_ctx(),
                       em_dtype_name(dt), em_last_error());
    return t;
}
/* emt_tensor(EM_F32, EM_SHAPE(2, 2), EMT_VALS(1, 2, 3, 4)) */
#define emt_tensor(dt, ...) emt_tensor_(__FILE__, __LINE__, (dt), __VA_ARGS__)

/* Asserts that t is not NULL, printing the pending error otherwise; returns t. */
static inline em_tensor *emt_ok_(const char *file, int line, const char *expr, em_tensor *t)
{
    cr_assert_not_null(t, "%s:%d: [%s] %s returned NULL: %s", file, line, emt_ctx(), expr,
                       em_last_error());
    return t;
}
#define EMT_OK(expr) emt_ok_(__FILE__, __LINE__, #expr, (expr))

/* ---- shorthands of the op tests (test_ops_*.c, test_errors.c) ------------------------- */

/* F32(EM_SHAPE(2, 2), EMT_VALS(1, 2, 3, 4)): a float32 tensor, through emt_tensor. */
#define F32(...) emt_tensor(EM_F32, __VA_ARGS__)
#define TOL 1e-6   /* float32 elementwise: a few ulps */

/* An op of one tensor (em_neg) or of two (em_add), for tables of ops run on the same inputs. */
typedef em_tensor *(*unary_fn)(em_tensor *);
typedef em_tensor *(*binary_fn)(em_tensor *, em_tensor *);

/* ---- shapes and strides ----------------------------------------------------------------- */

static inline void emt_fmt_dims_(char *buf, size_t size, int ndim, const int64_t *v)
{
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, i ? ", %lld" : "%lld", (long long)v[i]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
}

static inline void emt_check_dims_(const char *file, int line, const char *what, int got_nd,
                                   const int64_t *got, int ndim, const int64_t *want)
{
    char g[256], w[256];
    emt_fmt_dims_(g, sizeof g, got_nd, got);
    emt_fmt_dims_(w, sizeof w, ndim, want);
    bool same = got_nd == ndim && (ndim == 0 || memcmp(got, want, (size_t)ndim * 8) == 0);
    cr_assert(same, "%s:%d: [%s] %s is %s, expected %s", file, line, emt_ctx(), what, g, w);
}

static inline void emt_check_shape_(const char *file, int line, const em_tensor *t, int ndim,
                                    const int64_t *shape)
{
    cr_assert_not_null(t, "%s:%d: [%s] tensor is NULL: %s", file, line, emt_ctx(), em_last_error());
    emt_check_dims_(file, line, "shape", em_ndim(t), em_shape(t), ndim, shape);
}

static inline void emt_check_strides_(const char *file, int line, const em_tensor *t,
                                      int ndim, const int64_t *strides)
{
    cr_assert_not_null(t, "%s:%d: [%s] tensor is NULL: %s", file, line, emt_ctx(), em_last_error());
    emt_check_dims_(file, line, "strides", em_ndim(t), em_strides(t), ndim, strides);
}

/* EMT_ASSERT_SHAPE(t, EM_SHAPE(2, 3)) or EMT_ASSERT_SHAPE(t, EM_SCALAR). */
#define EMT_ASSERT_SHAPE(t, ...) emt_check_shape_(__FILE__, __LINE__, (t), __VA_ARGS__)
/* EMT_ASSERT_STRIDES(t, EM_SHAPE(3, 1)): the strides, in elements. */
#define EMT_ASSERT_STRIDES(t, ...) emt_check_strides_(__FILE__, __LINE__, (t), __VA_ARGS__)

static inline void emt_check_dtype_(const char *file, int line, const em_tensor *t, em_dtype dt)
{
    cr_assert_not_null(t, "%s:%d: [%s] tensor is NULL: %s", file, line, emt_ctx(), em_last_error());
    cr_assert_eq(em_dtype_of(t), dt, "%s:%d: [%s] dtype is %s, expected %s", file, line, emt_ctx(),
                 em_dtype_name(em_dtype_of(t)), em_dtype_name(dt));
}
#define EMT_ASSERT_DTYPE(t, dt) emt_check_dtype_(__FILE__, __LINE__, (t), (dt))

/* ---- values -------------------------------------------------------------------------------- */

/* t's values as doubles (through em_to_dtype(t, EM_F64) and em_copy_to_host), in a malloc'd
 * array of numel entries (at least one) that the caller frees. Safe inside em_scope_begin/end. */
static inline double *emt_values_(const char *file, int line, em_tensor *t)
{
    cr_assert_not_null(t, "%s:%d: [%s] tensor is NULL: %s", file, line, emt_ctx(), em_last_error());
    int64_t n = em_numel(t);
    double *buf = malloc((size_t)(n > 0 ? n : 1) * sizeof *buf);
    cr_assert_not_null(buf);
    /* A scope of its own owns the float64 copy, so this works inside a caller's scope too
     * (where releasing it by hand would release it twice). */
    em_scope_begin();
    em_tensor *f = em_to_dtype(t, EM_F64);
    int rc = f ? em_copy_to_host(f, buf, (size_t)(n > 0 ? n : 1) * sizeof *buf) : EM_ERR_INVALID;
    em_scope_end();
    cr_assert_not_null(f, "%s:%d: [%s] em_to_dtype(%s -> float64) failed: %s", file, line,
                       emt_ctx(), em_dtype_name(em_dtype_of(t)), em_last_error());
    cr_assert_eq(rc, EM_OK, "%s:%d: [%s] em_copy_to_host failed: %s", file, line, emt_ctx(),
                 em_last_error());
    return buf;
}
#define emt_values(t) emt_values_(__FILE__, __LINE__, (t))

/* Does got match want within tol, scaled by |want| above 1? NaN matches NaN and infinities
 * must match exactly (sign included). tol 0 means bit-for-bit equal values. */
static inline bool emt_close(double got, double want, double tol)
{
    if (isnan(want))
        return isnan(got);
    if (isinf(want) || isinf(got))
        return got == want;
    double scale = fabs(want) > 1 ? fabs(want) : 1;
    return fabs(got - want) <= tol * scale;
}

/* Asserts numel(t) == n and every value within tol of want (see emt_close); reports the
 * first mismatching index with the value got and the value expected. */
static inline void emt_check_values_(const char *file, int line, em_tensor *t, double tol,
                                     const double *want, int64_t n)
{
    cr_assert_not_null(t, "%s:%d: [%s] tensor is NULL: %s", file, line, emt_ctx(), em_last_error());
    cr_assert_eq(em_numel(t), n, "%s:%d: [%s] numel is %lld, expected %lld", file, line, emt_ctx(),
                 (long long)em_numel(t), (long long)n);
    double *got = emt_values_(file, line, t);
    int64_t bad = -1, nbad = 0;
    for (int64_t i = 0; i < n; i++)
        if (!emt_close(got[i], want[i], tol)) {
            if (bad < 0)
                bad = i;
            nbad++;
        }
    double g = bad >= 0 ? got[bad] : 0;
    free(got);
    cr_assert(bad < 0,
              "%s:%d: [%s] value at flat index %lld is %.17g, expected %.17g (tolerance %g; "
              "%lld of %lld values differ)",
              file, line, emt_ctx(), (long long)bad, g, bad >= 0 ? want[bad] : 0, tol,
              (long long)nbad, (long long)n);
}

/* EMT_ASSERT_VALUES(t, tol, want_array, n) */
#define EMT_ASSERT_VALUES(t, tol, want, n)                                                  \
    emt_check_values_(__FILE__, __LINE__, (t), (tol), (want), (n))
/* EMT_ASSERT_LIST(t, tol, 1, 2, 3): the values listed inline. */
#define EMT_ASSERT_LIST(t, tol, ...)                                                        \
    emt_check_values_(__FILE__, __LINE__, (t), (tol), EMT_VALS(__VA_ARGS__),              \
                      (int64_t)(sizeof EMT_VALS(__VA_ARGS__) / sizeof(double)))

/* Tolerances that fit each dtype's precision (a few ulps relative, for elementwise math). */
static inline double emt_tol(em_dtype dt)
{
    switch (dt) {
    case EM_F32: return 1e-6;
    case EM_F64: return 1e-12;
    case EM_F16: return 2e-3;
    case EM_BF16: return 1.6e-2;
    default: return 0;
    }
}

/* ---- errors ---------------------------------------------------------------------------------- */

/* Asserts that em_last_error() contains `want`. */
static inline void emt_check_error_(const char *file, int line, const char *want)
{
    const char *e = em_last_error();
    cr_assert_not_null(e, "%s:%d: [%s] em_last_error() is NULL", file, line, emt_ctx());
    cr_assert(strstr(e, want) != NULL,
              "%s:%d: [%s] em_last_error() is \"%s\", expected it to contain \"%s\"", file,
              line, emt_ctx(), e, want);
}
#define EMT_ASSERT_ERROR(want) emt_check_error_(__FILE__, __LINE__, (want))

/* Asserts that `expr` (a tensor-returning call) failed with NULL and an error containing
 * `want`; releases the result if it unexpectedly succeeded. */
#define EMT_ASSERT_FAILS(expr, want)                                                        \
    do {                                                                                    \
        em_tensor *emt_r_ = (expr);                                                         \
        bool emt_null_ = emt_r_ == NULL;                                                    \
        em_release(emt_r_);                                                                 \
        cr_assert(emt_null_, "%s:%d: [%s] %s succeeded; expected it to fail with \"%s\"",  \
                  __FILE__, __LINE__, emt_ctx(), #expr, (want));                            \
        emt_check_error_(__FILE__, __LINE__, (want));                                       \
    } while (0)

#endif
