/* tests/fault/test_alloc_failure.c - every allocation that can fail, failing: each call either
 * succeeds or returns a clean error with an out-of-memory message, and leaves its objects as
 * they were; never an abort, a crash or a warning-only degradation.
 *
 * Each test sweeps n = 1, 2, ...: the nth allocation inside the call fails (failmalloc.h),
 * until a run sees no failure (the call's whole allocation sequence has been covered).
 */
#include <stdlib.h>
#include <string.h>

#include "../core/helpers.h"
#include "ember/spec.h"
#include "failmalloc.h"

#define SWEEP_MAX 100000

/* Asserts that a failed call left an out-of-memory error with a message. */
static void assert_nomem(const char *what, long n)
{
    cr_assert_eq(em_last_status(), EM_ERR_NOMEM, "%s, allocation %ld failing: status %d (%s)",
                 what, n, em_last_status(), em_last_error());
    cr_assert(strstr(em_last_error(), "out of memory"),
              "%s, allocation %ld failing: message \"%s\"", what, n, em_last_error());
}

/* ---- spec strings ------------------------------------------------------------------------ */

static void parse_step(void *ctx, long n)
{
    (void)ctx;
    em_clear_error();
    em_spec *s = em_spec_parse("Sequential(Linear(3, 64, bias=true), ReLU(), Dropout(p=0.5), "
                               "Conv2d(1, 2, kernel_size=[3, 3], padding='same'), Linear(a=1, "
                               "b=2, c=3, d=4, e=5, f=\"a long string that needs to grow its "
                               "buffer\"))",
                               NULL);
    failmalloc_disarm();
    if (!s) {
        cr_assert(failmalloc_fired(), "parse failed with no allocation failing: %s",
                  em_last_error());
        assert_nomem("em_spec_parse", n);
        return;
    }
    char *back = em_spec_str(s);
    cr_assert_not_null(back);
    cr_assert(strstr(back, "Conv2d(1, 2, kernel_size=[3, 3], padding=\"same\")"),
              "allocation %ld failing gave a different spec: %s", n, back);
    free(back);
    em_spec_free(s);
}

Test(alloc_failure, spec_parsing_reports_out_of_memory_at_every_allocation)
{
    long n = failmalloc_sweep(parse_step, NULL, SWEEP_MAX);
    cr_assert(n > 10 && n <= SWEEP_MAX, "the sweep covered %ld allocations", n);
}

static const em_param_decl sgd_params[] = {
    {"lr", EM_PARAM_FLOAT, "0.001"},
    {"betas", EM_PARAM_FLOATS, "[0.9, 0.999, 0.5, 0.25, 0.125]"},
    {"name", EM_PARAM_STRING, "\"a default string longer than sixteen bytes\""},
    {"inner", EM_PARAM_SPEC, "Linear(3, 4)"},
};

static void bind_step(void *ctx, long n)
{
    em_clear_error();
    em_args *a = em_args_bind(ctx, 4, sgd_params);
    failmalloc_disarm();
    if (!a) {
        cr_assert(failmalloc_fired(), "bind failed with no allocation failing: %s",
                  em_last_error());
        assert_nomem("em_args_bind", n);
        return;
    }
    cr_assert_float_eq(em_args_float(a, "lr"), 0.5, 0);
    cr_assert_eq(em_args_count(a, "betas"), 5, "allocation %ld failing", n);
    cr_assert_str_eq(em_args_str(a, "name"), "a default string longer than sixteen bytes");
    cr_assert_str_eq(em_spec_name(em_args_spec(a, "inner")), "Linear");
    em_args_free(a);
}

Test(alloc_failure, binding_declared_defaults_reports_out_of_memory_instead_of_aborting)
{
    em_spec *s = em_spec_parse("SGD(lr=0.5)", NULL);
    cr_assert_not_null(s, "%s", em_last_error());
    long n = failmalloc_sweep(bind_step, s, SWEEP_MAX);
    cr_assert(n > 5 && n <= SWEEP_MAX, "the sweep covered %ld allocations", n);
    em_spec_free(s);
}
