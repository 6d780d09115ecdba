/* tests/nn/test_layers.c - layers against values computed by hand: forward results, PyTorch's
 * default initialisation, train/eval behaviour (Dropout, BatchNorm) and the errors a layer
 * gives for bad arguments or inputs. PyTorch parity on random data is in test_golden.c,
 * gradients in test_gradcheck.c. */
#include "helpers.h"

TestSuite(layers, .init = nnt_setup, .fini = nnt_teardown);

static em_tensor *fwd(em_module *m, em_tensor *x)
{
    em_tensor *y = em_forward(m, x);
    cr_assert_not_null(y, "forward of %s: %s", em_module_type(m), em_last_error());
    return y;
}

/* ---- Linear ---------------------------------------------------------------------------------- */

Test(layers, linear_computes_x_times_weight_transposed_plus_bias)
{
    em_module *m = nnt_module("Linear(3, 2)");
    EMT_ASSERT_SHAPE(em_module_get(m, "weight"), EM_SHAPE(2, 3));   /* [out, in] */
    nnt_set(m, "weight", EMT_VALS(1, 2, 3, -1, 0, 1));
    nnt_set(m, "bias", EMT_VALS(0.5, -2));
    em_tensor *x = emt_tensor(EM_F32, EM_SHAPE(2, 3), EMT_VALS(1, 1, 1, 2, 0, -1));
    em_tensor *y = fwd(m, x);
    EMT_ASSERT_SHAPE(y, EM_SHAPE(2, 2));
    EMT_ASSERT_LIST(y, 1e-6, 6.5, -2, -0.5, -5);
    cr_assert_str_eq(em_grad_fn_name(y), "AddmmBackward0");
    em_release(y);
    em_release(x);
    em_module_free(m);
}

Test(layers, linear_without_bias_has_only_a_weight)
{
    em_module *m = nnt_module("Linear(2, 2, bias=false)");
    cr_assert_eq(em_module_param_count(m), 1);
    cr_assert_null(em_module_get(m, "bias"));
    nnt_set(m, "weight", EMT_VALS(1, 2, 3, 4));
    em_tensor *x = emt_tensor(EM_F32, EM_SHAPE(2), EMT_VALS(1, -1));
    em_tensor *y = fwd(m, x);
    EMT_ASSERT_LIST(y, 1e-6, -1, -1);
    em_release(y);
    em_release(x);
    em_module_free(m);
}

Test(layers, linear_initialisation_is_uniform_within_one_over_sqrt_fan_in)
{
    em_module *m = nnt_module("Linear(100, 400)");
    double *w = emt_values(em_module_get(m, "weight")), *b = emt_values(em_module_get(m, "bias"));
    double bound = 0.1, wmax = 0, sum = 0, sq = 0;
    for (int i = 0; i < 40000; i++) {
        cr_assert(fabs(w[i]) <= bound, "weight %g outside +-%g", w[i], bound);
        wmax = fmax(wmax, fabs(w[i]));
        sum += w[i];
        sq += w[i] * w[i];
    }
    /* U(-b, b): mean 0, variance b^2 / 3, and the range is filled */
    cr_assert(wmax > 0.099, "largest |weight| %g", wmax);
    cr_assert(fabs(sum / 40000) < 0.002, "mean %g", sum / 40000);
    cr_assert(fabs(sq / 40000 - bound * bound / 3) < 2e-4, "variance %g", sq / 40000);
    for (int i = 0; i < 400; i++)
        cr_assert(fabs(b[i]) <= bound, "bias %g outside +-%g", b[i], bound);
    free(w);
    free(b);
    em_module_free(m);
}

Test(layers, initialisation_follows_the_seed)
{
    em_manual_seed(123);
    em_module *a = nnt_module("Sequential(Linear(4, 3), Conv2d(1, 2, 3), Embedding(5, 2))");
    em_manual_seed(123);
    em_module *b = nnt_module("Sequential(Linear(4, 3), Conv2d(1, 2, 3), Embedding(5, 2))");
    em_module *c = nnt_module("Sequential(Linear(4, 3), Conv2d(1, 2, 3), Embedding(5, 2))");
    for (int i = 0; i < em_module_param_count(a); i++) {
        EMT_CONTEXT("%s", em_module_param_name(a, i));
        int64_t n = em_numel(em_module_param(a, i));
        double *va = emt_values(em_module_param(a, i)), *vb = emt_values(em_module_param(b, i));
        double *vc = emt_values(em_module_param(c, i));
        cr_assert_eq(memcmp(va, vb, (size_t)n * sizeof *va), 0, "same seed, other values");
        cr_assert_neq(memcmp(va, vc, (size_t)n * sizeof *va), 0, "another draw, same values");
        free(va);
        free(vb);
        free(vc);
    }
    em_module_free(a);
    em_module_free(b);
    em_module_free(c);
}

Test(layers, linear_rejects_inputs_that_do_not_fit)
{
    em_module *m = nnt_module("Linear(3, 4)");
    em_tensor *x = em_zeros(EM_SHAPE(2, 5), NULL);
    EMT_ASSERT_FAILS(em_forward(m, x), "Linear: input of shape [2, 5] does not fit in_features=3");
    em_tensor *s = em_zeros(EM_SCALAR, NULL);
    EMT_ASSERT_FAILS(em_forward(m, s), "does not fit in_features=3");
    em_tensor *d = em_zeros(EM_SHAPE(2, 3), &(em_opts){.dtype = EM_F64});
    EMT_ASSERT_FAILS(em_forward(m, d), "Linear: input is float64 but the layer's parameters are "
                                       "float32");
    em_tensor *i = em_zeros(EM_SHAPE(2, 3), &(em_opts){.dtype = EM_I64});
    EMT_ASSERT_FAILS(em_forward(m, i), "Linear: input must be floating point, got int64");
    em_release(x);
    em_release(s);
    em_release(d);
    em_release(i);
    em_module_free(m);
}

Test(layers, bad_arguments_are_clear_errors)
{
    NNT_MODULE_FAILS("Linear(0, 3)", "Linear: in_features must be positive, got 0");
    NNT_MODULE_FAILS("Linear(3, -1)", "Linear: out_features must be positive, got -1");
    NNT_MODULE_FAILS("Linear(3)", "Linear: missing required argument 'out_features'");
    NNT_MODULE_FAILS("Linear(3, 4, in_feature=2)", "did you mean 'in_features'?");
    NNT_MODULE_FAILS("Linear(3, 4, dtype=\"int64\")",
                     "Linear: dtype must be a floating point type, got \"int64\"");
    NNT_MODULE_FAILS("Linear(3, 4, dtype=\"flaot\")", "Linear: unknown dtype \"flaot\"");
    NNT_MODULE_FAILS("Linear(3, 4, device=\"nowhere\")", "Linear: bad device \"nowhere\"");
    NNT_MODULE_FAILS("Linaer(3, 4)", "did you mean 'Linear'?");
    NNT_MODULE_FAILS("Dropout(p=1.5)", "Dropout: p must be in [0, 1], got 1.5");
    NNT_MODULE_FAILS("Dropout(-0.1)", "Dropout: p must be in [0, 1], got -0.1");
    NNT_MODULE_FAILS("GELU(approximate=\"fast\")",
                     "GELU: approximate must be \"none\" or \"tanh\", got \"fast\"");
    NNT_MODULE_FAILS("BatchNorm1d(0)", "BatchNorm1d: num_features must be positive, got 0");
    NNT_MODULE_FAILS("BatchNorm1d(3, momentum=2)", "momentum must be in [0, 1] or None, got 2");
    NNT_MODULE_FAILS("Embedding(0, 3)", "Embedding: num_embeddings must be positive, got 0");
    NNT_MODULE_FAILS("Embedding(4, 3, padding_idx=4)", "padding_idx must be within num_embeddings");
    NNT_MODULE_FAILS("Conv2d(3, 4, 3, groups=2)",
                     "Conv2d: in_channels (3) and out_channels (4) must both be divisible by "
                     "groups (2)");
    NNT_MODULE_FAILS("Conv2d(1, 4, 0)", "Conv2d: kernel_size must be positive, got 0");
    NNT_MODULE_FAILS("Conv2d(1, 4, [3, 3, 3])", "kernel_size must be one number or a list of two");
    NNT_MODULE_FAILS("Conv2d(1, 4, 3, padding=-1)", "Conv2d: padding must be non-negative, got -1");
    NNT_MODULE_FAILS("Conv2d(1, 4, 3, padding_mode=\"reflect\")",
                     "Conv2d: padding_mode \"reflect\" is not supported (only \"zeros\")");
    NNT_MODULE_FAILS("MaxPool2d(2, padding=2)",
                     "MaxPool2d: padding should be at most half of kernel size");
    NNT_MODULE_FAILS("MaxPool2d(2, return_indices=true)", "return_indices=true is not supported");
    NNT_MODULE_FAILS("Sequential(Linear(3, 4), Linaer(4, 2))", "did you mean 'Linear'?");
    NNT_MODULE_FAILS("Sequential(3)", "must be specs");
}

/* ---- activations ----------------------------------------------------------------------------- */

/* Float64-exact values, and GELU is float64-exact only in the nn plugin's CPU kernel (other
 * backends run its float32-exact composite, plugins/nn/gelu.c): these two tests pin the CPU. */
Test(layers, activations_compute_their_functions, .init = emt_pin_cpu)
{
    em_tensor *x = emt_tensor(EM_F64, EM_SHAPE(5), EMT_VALS(-2, -0.5, 0, 1, 3));
    struct {
        const char *spec;
        double want[5];
    } cases[] = {
        {"ReLU()", {0, 0, 0, 1, 3}},
        {"Sigmoid()", {0.11920292202211755, 0.3775406687981454, 0.5, 0.7310585786300049,
                       0.9525741268224334}},
        {"Tanh()", {-0.9640275800758169, -0.46211715726000974, 0, 0.7615941559557649,
                    0.9950547536867305}},
        /* x * Phi(x), Phi the normal CDF (scipy.stats.norm.cdf) */
        {"GELU()", {-0.04550026389635842, -0.15426876936299344, 0, 0.841344746068543,
                    2.99595030590511}},
        {"GELU(approximate=\"tanh\")", {-0.04540230591222494, -0.15428599017485606, 0,
                                        0.8411919906082768, 2.996362607918227}},
        {"Identity()", {-2, -0.5, 0, 1, 3}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        EMT_CONTEXT("%s", cases[i].spec);
        em_module *m = nnt_module(cases[i].spec);
        em_tensor *y = fwd(m, x);
        EMT_ASSERT_VALUES(y, 1e-12, cases[i].want, 5);
        em_release(y);
        em_module_free(m);
    }
    em_release(x);
}

Test(layers, gelu_is_exact_in_every_float_dtype_and_records_its_backward, .init = emt_pin_cpu)
{
    em_module *m = nnt_module("GELU()");
    em_dtype dts[] = {EM_F32, EM_F64, EM_F16, EM_BF16};
    for (size_t i = 0; i < 4; i++) {
        EMT_CONTEXT("%s", em_dtype_name(dts[i]));
        em_tensor *x = emt_tensor(dts[i], EM_SHAPE(3), EMT_VALS(-1, 0.5, 2));
        em_tensor *y = fwd(m, x);
        EMT_ASSERT_DTYPE(y, dts[i]);
        EMT_ASSERT_LIST(y, emt_tol(dts[i]) * 2, -0.15865525393145702, 0.34573123063700656,
                        1.9544997361036416);
        em_release(y);
        em_release(x);
    }
    em_tensor *x = emt_tensor(EM_F32, EM_SHAPE(2), EMT_VALS(-1, 2));
    em_requires_grad_(x, true);
    em_tensor *y = fwd(m, x);
    cr_assert_str_eq(em_grad_fn_name(y), "GeluBackward0");
    em_tensor *s = em_sum_all(y);
    cr_assert_eq(em_backward(s, NULL, false), EM_OK, "%s", em_last_error());
    /* d/dx = Phi(x) + x phi(x) */
    EMT_ASSERT_LIST(em_grad(x), 1e-6, -0.08331547058768635, 1.085231801078197);
    em_release(s);
    em_release(y);
    em_release(x);
    em_module_free(m);
}

Test(layers, softmax_rows_sum_to_one_and_dim_none_follows_pytorch)
{
    em_tensor *x = emt_tensor(EM_F64, EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 1000, 0, -1000));
    em_module *sm = nnt_module("Softmax(dim=1)");
    em_tensor *y = fwd(sm, x);
    EMT_ASSERT_LIST(y, 1e-12, 0.09003057317038046, 0.24472847105479767, 0.6652409557748219, 1,
                    0, 0);
    em_module *implicit = nnt_module("Softmax()");   /* 2-dim input: dim 1, with a warning */
    em_tensor *y2 = fwd(implicit, x);
    EMT_ASSERT_LIST(y2, 1e-12, 0.09003057317038046, 0.24472847105479767, 0.6652409557748219, 1,
                    0, 0);
    em_module *lsm = nnt_module("LogSoftmax(dim=0)");
    em_tensor *l = fwd(lsm, x);
    EMT_ASSERT_LIST(l, 1e-12, -999, -0.1269280110429726, 0, 0, -2.1269280110429727, -1003);
    em_release(y);
    em_release(y2);
    em_release(l);
    em_release(x);
    em_module_free(sm);
    em_module_free(implicit);
    em_module_free(lsm);
}

Test(layers, flatten_keeps_the_batch_dim_by_default)
{
    em_tensor *x = em_zeros(EM_SHAPE(2, 3, 4, 5), NULL);
    em_module *f = nnt_module("Flatten()"), *g = nnt_module("Flatten(0, 2)");
    em_tensor *a = fwd(f, x), *b = fwd(g, x);
    EMT_ASSERT_SHAPE(a, EM_SHAPE(2, 60));
    EMT_ASSERT_SHAPE(b, EM_SHAPE(24, 5));
    em_module *bad = nnt_module("Flatten(3)");
    em_tensor *v = em_zeros(EM_SHAPE(2, 3), NULL);
    EMT_ASSERT_FAILS(em_forward(bad, v), "Flatten: start_dim=3, end_dim=-1 do not fit an input of "
                                         "shape [2, 3]");
    em_release(a);
    em_release(b);
    em_release(v);
    em_release(x);
    em_module_free(f);
    em_module_free(g);
    em_module_free(bad);
}

/* ---- Dropout --------------------------------------------------------------------------------- */

Test(layers, dropout_zeroes_about_p_and_scales_the_rest_in_training)
{
    em_module *m = nnt_module("Dropout(0.25)");
    cr_assert(em_module_is_training(m));
    em_tensor *x = em_ones(EM_SHAPE(100, 100), NULL);
    em_tensor *y = fwd(m, x);
    double *v = emt_values(y);
    int zeros = 0;
    for (int i = 0; i < 10000; i++) {
        cr_assert(v[i] == 0 || fabs(v[i] - 1 / 0.75) < 1e-6, "value %g is neither 0 nor 1/(1-p)",
                  v[i]);
        zeros += v[i] == 0;
    }
    cr_assert(zeros > 2300 && zeros < 2700, "%d of 10000 zeroed for p = 0.25", zeros);
    free(v);
    em_release(y);
    em_release(x);
    em_module_free(m);
}

Test(layers, dropout_is_reproducible_from_the_seed_and_masks_the_gradient)
{
    em_module *m = nnt_module("Dropout(p=0.5)");
    em_tensor *x = em_ones(EM_SHAPE(64), &(em_opts){.requires_grad = true});
    em_manual_seed(42);
    em_tensor *a = fwd(m, x);
    em_manual_seed(42);
    em_tensor *b = fwd(m, x);
    em_tensor *c = fwd(m, x);
    double *va = emt_values(a), *vb = emt_values(b), *vc = emt_values(c);
    cr_assert_eq(memcmp(va, vb, 64 * sizeof *va), 0, "the same seed gave another mask");
    cr_assert_neq(memcmp(va, vc, 64 * sizeof *va), 0, "the next call repeated the mask");
    em_tensor *s = em_sum_all(a);
    cr_assert_eq(em_backward(s, NULL, false), EM_OK, "%s", em_last_error());
    double *g = emt_values(em_grad(x));
    for (int i = 0; i < 64; i++)   /* dy/dx = mask / (1 - p) = y for x = 1 */
        cr_assert_float_eq(g[i], va[i], 1e-6, "gradient %d", i);
    free(va);
    free(vb);
    free(vc);
    free(g);
    em_release(s);
    em_release(a);
    em_release(b);
    em_release(c);
    em_release(x);
    em_module_free(m);
}

Test(layers, dropout_is_the_identity_in_eval_mode_and_for_p_zero)
{
    em_module *m = nnt_module("Dropout(0.9)");
    em_module_train(m, false);
    em_tensor *x = em_randn(EM_SHAPE(10), NULL);
    em_tensor *y = fwd(m, x);
    cr_assert_eq(y, x, "eval-mode dropout returns its input, as PyTorch's does");
    em_release(y);
    em_module *z = nnt_module("Dropout(0)");
    y = fwd(z, x);
    cr_assert_eq(y, x);
    em_release(y);
    em_module *one = nnt_module("Dropout(1)");
    y = fwd(one, x);
    EMT_ASSERT_VALUES(y, 0, EMT_VALS(0, 0, 0, 0, 0, 0, 0, 0, 0, 0), 10);
    em_release(y);
    em_module *in = nnt_module("Dropout(0.5, inplace=true)");
    em_tensor *w = em_ones(EM_SHAPE(8), NULL);
    y = fwd(in, w);
    cr_assert(em_same_storage(y, w), "inplace=true writes into the input");
    em_release(y);
    em_release(w);
    em_release(x);
    em_module_free(m);
    em_module_free(z);
    em_module_free(one);
    em_module_free(in);
}

/* ---- BatchNorm ------------------------------------------------------------------------------- */

Test(layers, batchnorm_starts_at_pytorch_defaults)
{
    em_module *m = nnt_module("BatchNorm1d(3)");
    EMT_ASSERT_LIST(em_module_get(m, "weight"), 0, 1, 1, 1);
    EMT_ASSERT_LIST(em_module_get(m, "bias"), 0, 0, 0, 0);
    EMT_ASSERT_LIST(em_module_get(m, "running_mean"), 0, 0, 0, 0);
    EMT_ASSERT_LIST(em_module_get(m, "running_var"), 0, 1, 1, 1);
    em_tensor *nbt = em_module_get(m, "num_batches_tracked");
    EMT_ASSERT_DTYPE(nbt, EM_I64);
    EMT_ASSERT_SHAPE(nbt, EM_SCALAR);
    cr_assert_eq(em_item(nbt), 0);
    cr_assert(!em_requires_grad(em_module_get(m, "running_mean")));
    em_module_free(m);
}

Test(layers, batchnorm_normalises_with_batch_stats_and_updates_running_stats_in_training)
{
    em_module *m = nnt_module("BatchNorm1d(2)");
    /* channel 0: 1, 2, 3, 6 (mean 3, biased var 3.5, unbiased 14/3); channel 1: all 5 */
    em_tensor *x = emt_tensor(EM_F32, EM_SHAPE(4, 2), EMT_VALS(1, 5, 2, 5, 3, 5, 6, 5));
    em_tensor *y = fwd(m, x);
    double s = sqrt(3.5 + 1e-5);
    EMT_ASSERT_LIST(y, 1e-6, -2 / s, 0, -1 / s, 0, 0, 0, 3 / s, 0);
    EMT_ASSERT_LIST(em_module_get(m, "running_mean"), 1e-6, 0.3, 0.5);
    EMT_ASSERT_LIST(em_module_get(m, "running_var"), 1e-6, 0.9 + 0.1 * 14.0 / 3, 0.9);
    cr_assert_eq(em_item(em_module_get(m, "num_batches_tracked")), 1);
    /* eval: (x - running_mean) / sqrt(running_var + eps), buffers unchanged */
    em_module_train(m, false);
    em_tensor *z = fwd(m, x);
    double rv0 = 0.9 + 0.1 * 14.0 / 3, rv1 = 0.9;
    EMT_ASSERT_LIST(z, 1e-6, (1 - 0.3) / sqrt(rv0 + 1e-5), (5 - 0.5) / sqrt(rv1 + 1e-5),
                    (2 - 0.3) / sqrt(rv0 + 1e-5), (5 - 0.5) / sqrt(rv1 + 1e-5),
                    (3 - 0.3) / sqrt(rv0 + 1e-5), (5 - 0.5) / sqrt(rv1 + 1e-5),
                    (6 - 0.3) / sqrt(rv0 + 1e-5), (5 - 0.5) / sqrt(rv1 + 1e-5));
    cr_assert_eq(em_item(em_module_get(m, "num_batches_tracked")), 1);
    EMT_ASSERT_LIST(em_module_get(m, "running_mean"), 1e-6, 0.3, 0.5);
    em_release(y);
    em_release(z);
    em_release(x);
    em_module_free(m);
}

Test(layers, batchnorm_with_momentum_none_keeps_a_cumulative_average)
{
    em_module *m = nnt_module("BatchNorm1d(1, momentum=None)");
    em_tensor *a = emt_tensor(EM_F32, EM_SHAPE(2, 1), EMT_VALS(0, 2));   /* mean 1, var 2 */
    em_tensor *b = emt_tensor(EM_F32, EM_SHAPE(2, 1), EMT_VALS(4, 8));   /* mean 6, var 8 */
    em_release(fwd(m, a));
    em_release(fwd(m, b));
    EMT_ASSERT_LIST(em_module_get(m, "running_mean"), 1e-6, 3.5);
    EMT_ASSERT_LIST(em_module_get(m, "running_var"), 1e-6, 5);
    cr_assert_eq(em_item(em_module_get(m, "num_batches_tracked")), 2);
    em_release(a);
    em_release(b);
    em_module_free(m);
}

Test(layers, batchnorm_without_running_stats_always_uses_the_batch)
{
    em_module *m = nnt_module("BatchNorm1d(1, affine=false, track_running_stats=false)");
    cr_assert_eq(em_module_state_count(m), 0);
    em_module_train(m, false);
    em_tensor *x = emt_tensor(EM_F32, EM_SHAPE(2, 1), EMT_VALS(1, 3));
    em_tensor *y = fwd(m, x);
    EMT_ASSERT_LIST(y, 1e-4, -1, 1);
    em_release(y);
    em_release(x);
    em_module_free(m);
}

Test(layers, batchnorm_rejects_bad_inputs)
{
    em_module *m = nnt_module("BatchNorm1d(3)");
    em_tensor *one = em_zeros(EM_SHAPE(1, 3), NULL), *four = em_zeros(EM_SHAPE(2, 3, 2, 2), NULL);
    em_tensor *wrong = em_zeros(EM_SHAPE(4, 2), NULL);
    EMT_ASSERT_FAILS(em_forward(m, one), "BatchNorm1d: expected more than 1 value per channel when "
                                         "training, got input of shape [1, 3]");
    EMT_ASSERT_FAILS(em_forward(m, four), "BatchNorm1d: expected 2D or 3D input (got 4D input");
    EMT_ASSERT_FAILS(em_forward(m, wrong), "BatchNorm1d: input of shape [4, 2] does not fit "
                                           "num_features=3");
    em_module_train(m, false);
    em_tensor *y = fwd(m, one);   /* a single sample is fine in eval mode */
    em_release(y);
    em_release(one);
    em_release(four);
    em_release(wrong);
    em_module_free(m);
}

/* ---- Embedding ------------------------------------------------------------------------------- */

Test(layers, embedding_looks_up_rows_and_checks_indices)
{
    em_module *m = nnt_module("Embedding(4, 2, padding_idx=1)");
    EMT_ASSERT_LIST(em_module_get(m, "weight"), 5, 0, 0, 0, 0, 0, 0, 0, 0);   /* shape only */
    double *w0 = emt_values(em_module_get(m, "weight"));
    cr_assert(w0[2] == 0 && w0[3] == 0, "the padding row starts at zero");
    free(w0);
    nnt_set(m, "weight", EMT_VALS(0, 1, 10, 11, 20, 21, 30, 31));
    int64_t iv[6] = {3, 0, 1, 3, 2, 2};
    em_tensor *idx = em_tensor_from_data(iv, EM_I64, EM_SHAPE(2, 3), NULL);
    em_tensor *y = fwd(m, idx);
    EMT_ASSERT_SHAPE(y, EM_SHAPE(2, 3, 2));
    EMT_ASSERT_LIST(y, 0, 30, 31, 0, 1, 10, 11, 30, 31, 20, 21, 20, 21);
    em_tensor *s = em_sum_all(y);
    cr_assert_eq(em_backward(s, NULL, false), EM_OK, "%s", em_last_error());
    /* counts per row; the padding row gets no gradient */
    EMT_ASSERT_LIST(em_grad(em_module_get(m, "weight")), 0, 1, 1, 0, 0, 2, 2, 2, 2);
    int32_t i32[2] = {0, 2};
    em_tensor *idx32 = em_tensor_from_data(i32, EM_I32, EM_SHAPE(2), NULL);
    em_tensor *y32 = fwd(m, idx32);
    EMT_ASSERT_LIST(y32, 0, 0, 1, 20, 21);
    int64_t bad[4] = {0, 1, 2, 4};
    em_tensor *ib = em_tensor_from_data(bad, EM_I64, EM_SHAPE(4), NULL);
    EMT_ASSERT_FAILS(em_forward(m, ib), "Embedding: index 4 is out of range for 4 embeddings (at "
                                        "position 3)");
    em_tensor *fl = em_zeros(EM_SHAPE(2), NULL);
    EMT_ASSERT_FAILS(em_forward(m, fl), "Embedding: indices must be int64 or int32, got float32");
    em_release(s);
    em_release(y);
    em_release(y32);
    em_release(idx);
    em_release(idx32);
    em_release(ib);
    em_release(fl);
    em_module_free(m);
}

Test(layers, embedding_starts_standard_normal)
{
    em_module *m = nnt_module("Embedding(1000, 20)");
    double *w = emt_values(em_module_get(m, "weight"));
    double sum = 0, sq = 0;
    for (int i = 0; i < 20000; i++) {
        sum += w[i];
        sq += w[i] * w[i];
    }
    cr_assert(fabs(sum / 20000) < 0.03, "mean %g", sum / 20000);
    cr_assert(fabs(sq / 20000 - 1) < 0.05, "variance %g", sq / 20000);
    free(w);
    em_module_free(m);
}

/* ---- Conv2d and MaxPool2d -------------------------------------------------------------------- */

Test(layers, conv2d_slides_its_kernel_with_padding_and_stride)
{
    em_module *m = nnt_module("Conv2d(1, 1, 2, padding=1, stride=2)");
    nnt_set(m, "weight", EMT_VALS(1, 2, 3, 4));
    nnt_set(m, "bias", EMT_VALS(0.5));
    /* x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], padded to 5x5 with zeros; windows at rows/cols
     * -1 and 1: out[0][0] = 4*1, out[0][1] = 3*2 + 4*3, out[1][0] = 2*4 + 4*7,
     * out[1][1] = 1*5 + 2*6 + 3*8 + 4*9; plus the bias */
    em_tensor *x = emt_tensor(EM_F32, EM_SHAPE(1, 1, 3, 3), EMT_VALS(1, 2, 3, 4, 5, 6, 7, 8, 9));
    em_tensor *y = fwd(m, x);
    EMT_ASSERT_SHAPE(y, EM_SHAPE(1, 1, 2, 2));
    EMT_ASSERT_LIST(y, 1e-6, 4.5, 18.5, 36.5, 77.5);
    em_release(y);
    em_release(x);
    em_module_free(m);
}

Test(layers, conv2d_initialisation_bound_uses_fan_in_of_the_kernel)
{
    em_module *m = nnt_module("Conv2d(4, 8, 5, groups=2)");   /* fan_in = 2 * 25 = 50 */
    EMT_ASSERT_SHAPE(em_module_get(m, "weight"), EM_SHAPE(8, 2, 5, 5));
    double *w = emt_values(em_module_get(m, "weight"));
    double bound = 1 / sqrt(50.0), wmax = 0;
    for (int i = 0; i < 400; i++)
        wmax = fmax(wmax, fabs(w[i]));
    cr_assert(wmax <= bound && wmax > 0.9 * bound, "largest |weight| %g, bound %g", wmax, bound);
    free(w);
    em_module_free(m);
}

Test(layers, conv2d_rejects_inputs_that_do_not_fit)
{
    em_module *m = nnt_module("Conv2d(2, 4, 3)");
    em_tensor *c = em_zeros(EM_SHAPE(1, 3, 8, 8), NULL), *s = em_zeros(EM_SHAPE(1, 2, 2, 8), NULL);
    em_tensor *v = em_zeros(EM_SHAPE(2, 8), NULL);
    EMT_ASSERT_FAILS(em_forward(m, c), "Conv2d: input of shape [1, 3, 8, 8] does not fit "
                                       "in_channels=2");
    EMT_ASSERT_FAILS(em_forward(m, s), "Conv2d: input of shape [1, 2, 2, 8] is too small");
    EMT_ASSERT_FAILS(em_forward(m, v), "Conv2d: expected a 3D (unbatched) or 4D (batched) input");
    em_release(c);
    em_release(s);
    em_release(v);
    em_module_free(m);
}

Test(layers, maxpool_takes_the_window_maximum)
{
    em_module *m = nnt_module("MaxPool2d(2)");
    em_tensor *x = emt_tensor(EM_F32, EM_SHAPE(1, 4, 4),
                              EMT_VALS(1, 5, 2, 0, 3, 4, 8, 1, -1, -2, -3, -4, -5, -6, -7, 9));
    em_requires_grad_(x, true);
    em_tensor *y = fwd(m, x);
    EMT_ASSERT_SHAPE(y, EM_SHAPE(1, 2, 2));   /* unbatched stays unbatched */
    EMT_ASSERT_LIST(y, 0, 5, 8, -1, 9);
    em_tensor *s = em_sum_all(y);
    cr_assert_eq(em_backward(s, NULL, false), EM_OK, "%s", em_last_error());
    EMT_ASSERT_LIST(em_grad(x), 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1);
    em_release(s);
    em_release(y);
    em_release(x);
    em_module_free(m);
}

Test(layers, maxpool_sends_the_gradient_of_a_tie_to_the_first_maximum)
{
    em_module *m = nnt_module("MaxPool2d(2)");
    em_tensor *x = em_zeros(EM_SHAPE(1, 1, 2, 2), &(em_opts){.requires_grad = true});
    em_tensor *y = fwd(m, x), *s = em_sum_all(y);
    cr_assert_eq(em_backward(s, NULL, false), EM_OK, "%s", em_last_error());
    EMT_ASSERT_LIST(em_grad(x), 0, 1, 0, 0, 0);   /* as PyTorch's max_pool2d */
    em_release(s);
    em_release(y);
    em_release(x);
    em_module_free(m);
}

/* ---- Sequential ------------------------------------------------------------------------------ */

Test(layers, sequential_runs_children_in_order_and_names_the_failing_layer)
{
    em_module *m = nnt_module("Sequential(Linear(2, 2), ReLU(), Linear(2, 1))");
    nnt_set(m, "0.weight", EMT_VALS(1, 0, 0, -1));
    nnt_set(m, "0.bias", EMT_VALS(0, 0));
    nnt_set(m, "2.weight", EMT_VALS(1, 1));
    nnt_set(m, "2.bias", EMT_VALS(10));
    em_tensor *x = emt_tensor(EM_F32, EM_SHAPE(2, 2), EMT_VALS(3, 4, -3, -4));
    em_tensor *y = fwd(m, x);
    EMT_ASSERT_LIST(y, 1e-6, 13, 14);
    em_tensor *bad = em_zeros(EM_SHAPE(2, 5), NULL);
    EMT_ASSERT_FAILS(em_forward(m, bad), "Linear: input of shape [2, 5] does not fit in_features=2 "
                                         "(in Sequential layer 0)");
    em_module *empty = nnt_module("Sequential()");
    em_tensor *same = fwd(empty, x);
    cr_assert_eq(same, x);
    em_release(same);
    em_release(bad);
    em_release(y);
    em_release(x);
    em_module_free(m);
    em_module_free(empty);
}
