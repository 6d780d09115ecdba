/* tests/core/test_loss.c - em_cross_entropy: values worked by hand (every reduction, class
 * weights, ignore_index, the unbatched form), its gradient and node name, and the errors a bad
 * call gives. Backend parity is the conformance suite's (cases_loss.c); PyTorch parity through
 * CrossEntropyLoss is tests/nn's. */
#include <math.h>

#include "helpers.h"
#include "ember/plugin.h"

TestSuite(loss, .init = emt_setup, .fini = emt_teardown);

/* rows [1, 2, 3] with target 2 and [1, 1, 1] with target 0 */
static double l0(void) { return log(exp(1.0) + exp(2.0) + exp(3.0)) - 3; }
static double l1(void) { return log(3.0); }

static em_tensor *logits(void) { return emt_tensor(EM_F64, EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 1, 1, 1)); }
static em_tensor *targets(int64_t a, int64_t b)
{
    return emt_tensor(EM_I64, EM_SHAPE(2), EMT_VALS((double)a, (double)b));
}

Test(loss, cross_entropy_reductions_match_the_log_sum_exp_by_hand)
{
    em_tensor *x = logits(), *t = targets(2, 0);
    em_tensor *r = EMT_OK(em_cross_entropy(x, t, NULL, -100, EM_REDUCTION_NONE));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(2));
    EMT_ASSERT_DTYPE(r, EM_F64);
    EMT_ASSERT_LIST(r, 1e-12, l0(), l1());
    em_release(r);
    r = EMT_OK(em_cross_entropy(x, t, NULL, -100, EM_REDUCTION_SUM));
    cr_assert_eq(em_ndim(r), 0);
    EMT_ASSERT_LIST(r, 1e-12, l0() + l1());
    em_release(r);
    r = EMT_OK(em_cross_entropy(x, t, NULL, -100, EM_REDUCTION_MEAN));
    EMT_ASSERT_LIST(r, 1e-12, (l0() + l1()) / 2);
    em_release(r);
    em_release(x);
    em_release(t);
}

Test(loss, weights_scale_rows_and_the_mean_divides_by_the_counted_weights)
{
    em_tensor *x = logits(), *t = targets(2, 0);
    em_tensor *w = emt_tensor(EM_F32, EM_SHAPE(3), EMT_VALS(1, 2, 3));   /* cast to float64 */
    em_tensor *r = EMT_OK(em_cross_entropy(x, t, w, -100, EM_REDUCTION_MEAN));
    EMT_ASSERT_LIST(r, 1e-12, (3 * l0() + 1 * l1()) / 4);
    em_release(r);
    em_tensor *ti = targets(2, 7);   /* row 1 ignored: counts 0 and is not in the mean */
    r = EMT_OK(em_cross_entropy(x, ti, w, 7, EM_REDUCTION_NONE));
    EMT_ASSERT_LIST(r, 1e-12, 3 * l0(), 0);
    em_release(r);
    r = EMT_OK(em_cross_entropy(x, ti, w, 7, EM_REDUCTION_MEAN));
    EMT_ASSERT_LIST(r, 1e-12, l0());
    em_release(r);
    em_tensor *all = targets(7, 7);
    r = EMT_OK(em_cross_entropy(x, all, NULL, 7, EM_REDUCTION_MEAN));
    cr_assert(isnan(em_item(r)), "a mean over no counted target is nan, as in PyTorch");
    em_release(r);
    em_release(all);
    em_release(ti);
    em_release(w);
    em_release(x);
    em_release(t);
}

Test(loss, the_unbatched_form_is_a_batch_of_one)
{
    em_tensor *x = emt_tensor(EM_F32, EM_SHAPE(3), EMT_VALS(1, 2, 3));
    em_tensor *t = em_scalar(2, &(em_opts){.dtype = EM_I64});
    em_tensor *r = EMT_OK(em_cross_entropy(x, t, NULL, -100, EM_REDUCTION_NONE));
    cr_assert_eq(em_ndim(r), 0, "unbatched 'none' gives a 0-dim loss");
    EMT_ASSERT_LIST(r, 1e-6, l0());
    em_release(r);
    em_release(x);
    em_release(t);
}

Test(loss, the_gradient_is_softmax_minus_one_hot_over_the_batch)
{
    em_tensor *x = logits(), *t = targets(2, 0);
    cr_assert_eq(em_requires_grad_(x, true), EM_OK);
    em_tensor *r = EMT_OK(em_cross_entropy(x, t, NULL, -100, EM_REDUCTION_MEAN));
    cr_assert_str_eq(em_grad_fn_name(r), "NllLossBackward0");
    cr_assert_eq(em_backward(r, NULL, false), EM_OK, "%s", em_last_error());
    double s0 = exp(1.0) + exp(2.0) + exp(3.0);
    EMT_ASSERT_LIST(em_grad(x), 1e-12, exp(1.0) / s0 / 2, exp(2.0) / s0 / 2,
                    (exp(3.0) / s0 - 1) / 2, (1.0 / 3 - 1) / 2, 1.0 / 3 / 2, 1.0 / 3 / 2);
    em_release(r);
    em_release(x);
    em_release(t);
}

Test(loss, bad_calls_name_the_problem)
{
    em_tensor *x = logits(), *t = targets(2, 0);
    em_tensor *bad = targets(1, 3);
    EMT_ASSERT_FAILS(em_cross_entropy(x, bad, NULL, -100, EM_REDUCTION_MEAN),
                     "cross_entropy: target 3 is out of bounds for 3 classes (at position 1)");
    em_release(bad);
    bad = targets(-1, 0);
    EMT_ASSERT_FAILS(em_cross_entropy(x, bad, NULL, -100, EM_REDUCTION_MEAN),
                     "target -1 is out of bounds for 3 classes (at position 0)");
    em_release(bad);
    em_tensor *tf = emt_tensor(EM_F32, EM_SHAPE(2), EMT_VALS(2, 0));
    EMT_ASSERT_FAILS(em_cross_entropy(x, tf, NULL, -100, EM_REDUCTION_MEAN),
                     "cross_entropy: target must be int64 class indices, got float32");
    em_release(tf);
    em_tensor *t3 = emt_tensor(EM_I64, EM_SHAPE(3), EMT_VALS(0, 1, 2));
    EMT_ASSERT_FAILS(em_cross_entropy(x, t3, NULL, -100, EM_REDUCTION_MEAN),
                     "target of shape [3] does not fit input of shape [2, 3] (expected (2))");
    em_release(t3);
    em_tensor *x3 = em_zeros(EM_SHAPE(2, 3, 4), NULL);
    EMT_ASSERT_FAILS(em_cross_entropy(x3, t, NULL, -100, EM_REDUCTION_MEAN),
                     "cross_entropy: input must be (N, C), got [2, 3, 4]");
    em_release(x3);
    em_tensor *w2 = emt_tensor(EM_F64, EM_SHAPE(2), EMT_VALS(1, 1));
    EMT_ASSERT_FAILS(em_cross_entropy(x, t, w2, -100, EM_REDUCTION_MEAN),
                     "cross_entropy: weight must be (3) of dtype float64, got [2]");
    em_release(w2);
    em_tensor *wg = emt_tensor(EM_F64, EM_SHAPE(3), EMT_VALS(1, 1, 1));
    cr_assert_eq(em_requires_grad_(wg, true), EM_OK);
    EMT_ASSERT_FAILS(em_cross_entropy(x, t, wg, -100, EM_REDUCTION_MEAN),
                     "cross_entropy: no gradient for weight");
    em_release(wg);
    EMT_ASSERT_FAILS(em_cross_entropy(x, t, NULL, -100, (em_reduction)7),
                     "cross_entropy: unknown reduction 7");
    em_tensor *xi = em_zeros(EM_SHAPE(2, 3), &(em_opts){.dtype = EM_I64});
    EMT_ASSERT_FAILS(em_cross_entropy(xi, t, NULL, -100, EM_REDUCTION_MEAN),
                     "cross_entropy: input must be a float tensor, got int64");
    em_release(xi);
    em_clear_error();   /* a NULL argument keeps a pending error, the more useful one */
    EMT_ASSERT_FAILS(em_cross_entropy(NULL, t, NULL, -100, EM_REDUCTION_MEAN), "NULL");
    em_release(x);
    em_release(t);
}

/* em_op_call skips the host check of em_cross_entropy: the kernel must still stay in bounds. */
Test(loss, the_op_called_directly_with_a_bad_target_fails_cleanly)
{
    em_tensor *x = logits(), *t = targets(0, 9);
    em_tensor *w = em_ones(EM_SHAPE(3), &(em_opts){.dtype = EM_F64});
    em_attr at[2] = {{0}, {0}};
    at[0].i = -100;
    at[1].i = EM_REDUCTION_SUM;
    em_tensor *in[3] = {x, t, w};
    em_tensor *r = em_op_call("cross_entropy", 3, in, 2, at);
    if (r) {   /* a backend without a host check must at least not read out of bounds */
        cr_assert(isnan(em_item(r)), "an out-of-range target gave %g", em_item(r));
        em_release(r);
    } else {
        EMT_ASSERT_ERROR("9 is out of bounds");   /* the kernel's, or gather's in the composite */
    }
    em_release(w);
    em_release(x);
    em_release(t);
}

/* The same on OpenCL, whose fused kernels (backends/opencl/rows.c) have no host check: the row
 * with the bad target gives NaN (its loss, the reduced loss, its gradient row), the others
 * their values, and an ignored row still counts 0. */
Test(loss, a_bad_target_on_opencl_gives_nan_rows_and_leaves_the_others)
{
    const char *why = em_backend_unavailable_reason("opencl");
    if (!em_backend_available("opencl"))
        cr_skip_test("no OpenCL device: %s", why ? why : "backend not built");
    em_device dev = em_device_parse("opencl:0");
    em_tensor *x0 = emt_tensor(EM_F32, EM_SHAPE(3, 3), EMT_VALS(1, 2, 3, 1, 1, 1, 0, 0, 0));
    em_tensor *t0 = emt_tensor(EM_I64, EM_SHAPE(3), EMT_VALS(2, 9, -7));   /* -7: ignored */
    em_tensor *x = EMT_OK(em_to(x0, dev)), *t = EMT_OK(em_to(t0, dev));
    em_tensor *w = EMT_OK(em_ones(EM_SHAPE(3), &(em_opts){.dtype = EM_F32, .device = dev}));
    em_attr at[2] = {{0}, {0}};
    at[0].i = -7;
    em_tensor *in[4] = {x, t, w, NULL};
    for (int red = EM_REDUCTION_NONE; red <= EM_REDUCTION_SUM; red++) {
        EMT_CONTEXT("reduction %d", red);
        at[1].i = red;
        em_tensor *r = EMT_OK(em_op_call("cross_entropy", 3, in, 2, at));
        double *v = emt_values(r);
        if (red == EM_REDUCTION_NONE) {
            cr_assert(fabs(v[0] - l0()) < 1e-5 && isnan(v[1]) && v[2] == 0,
                      "losses %g %g %g", v[0], v[1], v[2]);
        } else {
            cr_assert(isnan(v[0]), "%s: an out-of-range target gave %g", emt_ctx(), v[0]);
        }
        free(v);
        em_tensor *g = red == EM_REDUCTION_NONE
                           ? em_ones(EM_SHAPE(3), &(em_opts){.dtype = EM_F32, .device = dev})
                           : em_ones(0, NULL, &(em_opts){.dtype = EM_F32, .device = dev});
        in[3] = g;
        em_tensor *dx = EMT_OK(em_op_call("cross_entropy_backward", 4, in, 2, at));
        v = emt_values(dx);
        double s0 = exp(1.0) + exp(2.0) + exp(3.0);
        for (int j = 0; j < 3; j++) {
            /* row 0 is finite only without "mean", whose denominator the bad row makes NaN */
            cr_assert(red == EM_REDUCTION_MEAN ? isnan(v[j])
                                               : fabs(v[j] - (exp(1.0 + j) / s0 - (j == 2))) < 1e-5,
                      "%s: dx[0, %d] = %g", emt_ctx(), j, v[j]);
            cr_assert(isnan(v[3 + j]), "%s: dx[1, %d] = %g", emt_ctx(), j, v[3 + j]);
            cr_assert(v[6 + j] == 0, "%s: dx[2, %d] = %g (ignored)", emt_ctx(), j, v[6 + j]);
        }
        free(v);
        em_release(dx);
        em_release(g);
        em_release(r);
    }
    em_release(w);
    em_release(x);
    em_release(t);
    em_release(x0);
    em_release(t0);
}
