/* tests/nn/test_losses.c - losses against values computed by hand, their stability on extreme
 * inputs, and the errors a bad target gives (dtype, shape, class range, device). PyTorch parity
 * over every option (weight, ignore_index, label_smoothing, reductions) is in test_golden.c. */
#include "helpers.h"

TestSuite(losses, .init = nnt_setup, .fini = nnt_teardown);

static em_tensor *idx(int n, const int64_t *v)
{
    em_tensor *t = em_tensor_from_data(v, EM_I64, EM_SHAPE(n), NULL);
    cr_assert_not_null(t, "%s", em_last_error());
    return t;
}

static double loss_value(const char *spec, em_tensor *x, em_tensor *t)
{
    em_module *m = nnt_module(spec);
    em_tensor *l = em_loss(m, x, t);
    cr_assert_not_null(l, "%s: %s", spec, em_last_error());
    double v = em_item(l);
    em_release(l);
    em_module_free(m);
    return v;
}

Test(losses, cross_entropy_of_uniform_logits_is_log_of_the_class_count)
{
    em_tensor *x = em_zeros(EM_SHAPE(3, 4), NULL);
    em_tensor *t = idx(3, (int64_t[]){0, 3, 1});
    cr_assert_float_eq(loss_value("CrossEntropyLoss()", x, t), log(4.0), 1e-6);
    cr_assert_float_eq(loss_value("CrossEntropyLoss(reduction=\"sum\")", x, t), 3 * log(4.0), 1e-5);
    em_module *none = nnt_module("CrossEntropyLoss(reduction=\"none\")");
    em_tensor *l = EMT_OK(em_loss(none, x, t));
    EMT_ASSERT_SHAPE(l, EM_SHAPE(3));
    EMT_ASSERT_LIST(l, 1e-6, log(4.0), log(4.0), log(4.0));
    em_release(l);
    em_module_free(none);
    em_release(x);
    em_release(t);
}

Test(losses, cross_entropy_weights_and_ignore_index_follow_pytorch_mean)
{
    /* logits favour class 0 in row 0; per-row NLL: row0 -log p0, row1 -log p1, row2 ignored */
    em_tensor *x = emt_tensor(EM_F64, EM_SHAPE(3, 2), EMT_VALS(2, 0, 0, 0, 5, -5));
    em_tensor *t = idx(3, (int64_t[]){0, 1, 7});
    double l0 = log(1 + exp(-2.0)), l1 = log(2.0);
    /* mean = (w0 l0 + w1 l1) / (w0 + w1), ignored targets in neither sum */
    double want = (0.5 * l0 + 2 * l1) / 2.5;
    cr_assert_float_eq(loss_value("CrossEntropyLoss(weight=[0.5, 2], ignore_index=7)", x, t),
                       want, 1e-12);
    em_tensor *all = idx(3, (int64_t[]){7, 7, 7});
    cr_assert(isnan(loss_value("CrossEntropyLoss(ignore_index=7)", x, all)),
              "the mean over no targets is nan, as in PyTorch");
    cr_assert_float_eq(loss_value("CrossEntropyLoss(ignore_index=7, reduction=\"sum\")", x, all),
                       0, 0);
    em_release(all);
    em_release(x);
    em_release(t);
}

Test(losses, cross_entropy_label_smoothing_mixes_in_the_uniform_distribution)
{
    em_tensor *x = emt_tensor(EM_F64, EM_SHAPE(1, 3), EMT_VALS(1, 2, 3));
    em_tensor *t = idx(1, (int64_t[]){2});
    double lse = log(exp(1.0) + exp(2.0) + exp(3.0));
    double lp[3] = {1 - lse, 2 - lse, 3 - lse};
    double eps = 0.3, want = -(1 - eps) * lp[2] - eps / 3 * (lp[0] + lp[1] + lp[2]);
    cr_assert_float_eq(loss_value("CrossEntropyLoss(label_smoothing=0.3)", x, t), want, 1e-12);
    /* the same through a probability target equal to the smoothed one-hot */
    em_tensor *p = emt_tensor(EM_F64, EM_SHAPE(1, 3), EMT_VALS(0.1, 0.1, 0.8));
    cr_assert_float_eq(loss_value("CrossEntropyLoss()", x, p), want, 1e-12);
    em_release(p);
    em_release(x);
    em_release(t);
}

Test(losses, cross_entropy_is_finite_for_huge_logits_in_float32)
{
    em_tensor *x = emt_tensor(EM_F32, EM_SHAPE(2, 3), EMT_VALS(1e30, -1e30, 0, 88, 89, -1e38));
    cr_assert_eq(em_requires_grad_(x, true), EM_OK);
    em_tensor *t = idx(2, (int64_t[]){1, 0});
    em_module *m = nnt_module("CrossEntropyLoss()");
    em_tensor *l = EMT_OK(em_loss(m, x, t));
    double v = em_item(l);
    /* row 0: 2e30 (no overflow to inf), row 1: log(1 + e) */
    cr_assert(isfinite(v), "loss %g", v);
    cr_assert_float_eq(v, (2e30 + log(1 + exp(1.0))) / 2, 1e24);
    cr_assert_eq(em_backward(l, NULL, false), EM_OK, "%s", em_last_error());
    double *g = emt_values(em_grad(x));
    for (int i = 0; i < 6; i++)
        cr_assert(isfinite(g[i]), "gradient %d is %g", i, g[i]);
    free(g);
    em_release(l);
    em_release(t);
    em_release(x);
    em_module_free(m);
}

Test(losses, a_bad_class_target_is_a_clear_error)
{
    em_module *m = nnt_module("CrossEntropyLoss()");
    em_tensor *x = em_zeros(EM_SHAPE(4, 5), NULL);
    em_tensor *out = idx(4, (int64_t[]){0, 1, 4, 7});
    EMT_ASSERT_FAILS(em_loss(m, x, out),
                     "CrossEntropyLoss: target 7 is out of bounds for 5 classes (at position 3)");
    em_tensor *neg = idx(4, (int64_t[]){0, -1, 4, 2});
    EMT_ASSERT_FAILS(em_loss(m, x, neg),
                     "CrossEntropyLoss: target -1 is out of bounds for 5 classes (at position 1)");
    em_tensor *fl = em_zeros(EM_SHAPE(4), NULL);
    EMT_ASSERT_FAILS(em_loss(m, x, fl), "CrossEntropyLoss: class-index target must be int64, got "
                                        "float32");
    int32_t v32[4] = {0, 1, 2, 3};
    em_tensor *i32 = em_tensor_from_data(v32, EM_I32, EM_SHAPE(4), NULL);
    EMT_ASSERT_FAILS(em_loss(m, x, i32), "class-index target must be int64, got int32");
    em_tensor *shape = idx(3, (int64_t[]){0, 1, 2});
    EMT_ASSERT_FAILS(em_loss(m, x, shape),
                     "CrossEntropyLoss: target of shape [3] does not fit input of shape [4, 5] "
                     "(expected [4] for class indices, or [4, 5] for class probabilities)");
    em_tensor *probs_int = em_zeros(EM_SHAPE(4, 5), &(em_opts){.dtype = EM_I64});
    EMT_ASSERT_FAILS(em_loss(m, x, probs_int), "a target of class probabilities (the input's "
                                               "shape) must be floating point, got int64");
    em_module *w = nnt_module("CrossEntropyLoss(weight=[1, 2, 3])");
    em_tensor *ok = idx(4, (int64_t[]){0, 1, 2, 3});
    EMT_ASSERT_FAILS(em_loss(w, x, ok), "CrossEntropyLoss: weight has 3 entries but the input "
                                        "has 5 classes");
    em_tensor *xi = em_zeros(EM_SHAPE(4, 5), &(em_opts){.dtype = EM_I64});
    EMT_ASSERT_FAILS(em_loss(m, xi, ok), "CrossEntropyLoss: input must be floating point");
    EMT_ASSERT_FAILS(em_forward(m, x), "CrossEntropyLoss: takes 2 inputs, got 1");
    em_tensor *list[] = {out, neg, fl, i32, shape, probs_int, ok, xi, x};
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
        em_release(list[i]);
    em_module_free(w);
    em_module_free(m);
}

Test(losses, bad_loss_arguments_are_clear_errors)
{
    NNT_MODULE_FAILS("CrossEntropyLoss(reduction=\"avg\")",
                     "CrossEntropyLoss: reduction must be \"none\", \"mean\" or \"sum\", "
                     "got \"avg\"");
    NNT_MODULE_FAILS("CrossEntropyLoss(label_smoothing=1.5)",
                     "CrossEntropyLoss: label_smoothing must be in [0, 1], got 1.5");
    NNT_MODULE_FAILS("MSELoss(reduction=\"all\")", "MSELoss: reduction must be");
    NNT_MODULE_FAILS("NLLLoss(label_smoothing=0.1)", "NLLLoss: unknown argument 'label_smoothing'");
    NNT_MODULE_FAILS("CrossEntropyLoss(weight=[1, \"a\"])", "must be a list of numbers");
}

Test(losses, nll_loss_picks_the_target_log_probability)
{
    em_tensor *lp = emt_tensor(EM_F64, EM_SHAPE(2, 3), EMT_VALS(-1, -2, -3, -0.5, -1.5, -2.5));
    em_tensor *t = idx(2, (int64_t[]){2, 0});
    cr_assert_float_eq(loss_value("NLLLoss()", lp, t), (3 + 0.5) / 2, 1e-12);
    cr_assert_float_eq(loss_value("NLLLoss(weight=[4, 1, 2])", lp, t), (2 * 3 + 4 * 0.5) / 6,
                       1e-12);
    em_tensor *same = em_zeros(EM_SHAPE(2, 3), &(em_opts){.dtype = EM_I64});
    em_module *m = nnt_module("NLLLoss()");
    EMT_ASSERT_FAILS(em_loss(m, lp, same), "NLLLoss: target of shape [2, 3] does not fit input of "
                                           "shape [2, 3] (expected [2])");
    em_release(same);
    em_module_free(m);
    em_release(lp);
    em_release(t);
}

Test(losses, regression_losses_compute_their_means)
{
    em_tensor *x = emt_tensor(EM_F64, EM_SHAPE(2, 2), EMT_VALS(1, 2, 3, 4));
    em_tensor *y = emt_tensor(EM_F64, EM_SHAPE(2, 2), EMT_VALS(0, 2, 5, 1));
    cr_assert_float_eq(loss_value("MSELoss()", x, y), (1 + 0 + 4 + 9) / 4.0, 1e-12);
    cr_assert_float_eq(loss_value("MSELoss(reduction=\"sum\")", x, y), 14, 1e-12);
    cr_assert_float_eq(loss_value("L1Loss()", x, y), (1 + 0 + 2 + 3) / 4.0, 1e-12);
    em_module *m = nnt_module("MSELoss()");
    em_tensor *col = em_zeros(EM_SHAPE(4), &(em_opts){.dtype = EM_F64});
    EMT_ASSERT_FAILS(em_loss(m, x, col), "MSELoss: target of shape [4] does not match input of "
                                         "shape [2, 2]");
    em_tensor *it = em_zeros(EM_SHAPE(2, 2), &(em_opts){.dtype = EM_I64});
    EMT_ASSERT_FAILS(em_loss(m, x, it), "MSELoss: target must be floating point, got int64");
    /* a float32 target for a float64 input is cast, as PyTorch promotes */
    em_tensor *y32 = EMT_OK(em_to_dtype(y, EM_F32));
    cr_assert_float_eq(loss_value("MSELoss()", x, y32), 3.5, 1e-12);
    em_release(y32);
    em_release(col);
    em_release(it);
    em_module_free(m);
    em_release(x);
    em_release(y);
}

Test(losses, bce_clamps_its_logs_and_checks_its_input_range)
{
    em_tensor *x = emt_tensor(EM_F64, EM_SHAPE(3), EMT_VALS(0.5, 0, 1));
    em_tensor *y = emt_tensor(EM_F64, EM_SHAPE(3), EMT_VALS(1, 1, 1));
    cr_assert_eq(em_requires_grad_(x, true), EM_OK);
    em_module *m = nnt_module("BCELoss(reduction=\"none\")");
    em_tensor *l = EMT_OK(em_loss(m, x, y));
    EMT_ASSERT_LIST(l, 1e-12, log(2.0), 100, 0);   /* log(0) clamped at -100 */
    cr_assert_str_eq(em_grad_fn_name(l), "BinaryCrossEntropyBackward0");
    em_tensor *s = em_sum_all(l);
    cr_assert_eq(em_backward(s, NULL, false), EM_OK, "%s", em_last_error());
    /* (x - y) / max(x (1 - x), 1e-12): finite at 0 and 1 */
    EMT_ASSERT_LIST(em_grad(x), 1e-9, -2, -1e12, 0);
    em_tensor *bad = emt_tensor(EM_F64, EM_SHAPE(3), EMT_VALS(0.5, 1.5, 0));
    EMT_ASSERT_FAILS(em_loss(m, bad, y),
                     "BCELoss: all elements of input should be between 0 and 1");
    em_release(bad);
    em_release(s);
    em_release(l);
    em_release(x);
    em_release(y);
    em_module_free(m);
}

Test(losses, bce_with_logits_is_stable_for_extreme_logits)
{
    em_tensor *x = emt_tensor(EM_F32, EM_SHAPE(4), EMT_VALS(1000, -1000, 1000, 0));
    em_tensor *y = emt_tensor(EM_F32, EM_SHAPE(4), EMT_VALS(1, 0, 0, 1));
    cr_assert_eq(em_requires_grad_(x, true), EM_OK);
    em_module *m = nnt_module("BCEWithLogitsLoss(reduction=\"none\", pos_weight=[2])");
    em_tensor *l = EMT_OK(em_loss(m, x, y));
    EMT_ASSERT_LIST(l, 1e-6, 0, 0, 1000, 2 * log(2.0));
    em_tensor *s = em_sum_all(l);
    cr_assert_eq(em_backward(s, NULL, false), EM_OK, "%s", em_last_error());
    /* d/dx = (1 - y) sigmoid(x) - pw y sigmoid(-x) */
    EMT_ASSERT_LIST(em_grad(x), 1e-6, 0, 0, 1, -1);
    em_module *w = nnt_module("BCEWithLogitsLoss(pos_weight=[1, 2, 3])");
    EMT_ASSERT_FAILS(em_loss(w, x, y), "BCEWithLogitsLoss: pos_weight has 3 entries, which does "
                                       "not broadcast over input of shape [4]");
    em_release(s);
    em_release(l);
    em_release(x);
    em_release(y);
    em_module_free(m);
    em_module_free(w);
}

Test(losses, input_and_target_on_different_devices_is_an_error)
{
    em_device mock = em_device_parse("mock:0");
    cr_assert_geq(mock.index, 0, "%s", em_last_error());
    em_opts cpu = {.device = em_device_parse("cpu")};
    em_tensor *x = em_zeros(EM_SHAPE(2, 3), &(em_opts){.device = mock});
    em_tensor *t = em_tensor_from_data((int64_t[]){0, 1}, EM_I64, EM_SHAPE(2), &cpu);
    cr_assert(x && t, "%s", em_last_error());
    em_module *m = nnt_module("CrossEntropyLoss()");
    EMT_ASSERT_FAILS(em_loss(m, x, t), "CrossEntropyLoss: input is on mock:0 but target is on cpu");
    em_module *mse = nnt_module("MSELoss()");
    em_tensor *y = em_zeros(EM_SHAPE(2, 3), &cpu);
    EMT_ASSERT_FAILS(em_loss(mse, x, y), "MSELoss: input is on mock:0 but target is on cpu");
    em_release(x);
    em_release(y);
    em_release(t);
    em_module_free(m);
    em_module_free(mse);
}
