/* tests/optim/test_optimizers.c - SGD, Adam, AdamW and RMSprop: updates computed by hand for
 * the first steps, three steps of every option against the values PyTorch 1.13 printed
 * (golden/torch_values.h), argument checking, zero_grad, no graph recorded by a step, the
 * learning rate, and state that follows the parameters to another device (the mock device),
 * including an optimizer made before the model moved. */
#include "helpers.h"

#include "golden/torch_values.h"

TestSuite(optimizers, .init = opt_setup, .fini = opt_teardown);

/* TestParams with parameter "a" = vals (n of them) in dtype dt. */
static em_module *param_module(const double *vals, int n, const char *dtype)
{
    char spec[1024];
    size_t at = (size_t)snprintf(spec, sizeof spec, "TestParams(a=[");
    for (int i = 0; i < n; i++)
        at += (size_t)snprintf(spec + at, sizeof spec - at, i ? ", %.17g" : "%.17g", vals[i]);
    snprintf(spec + at, sizeof spec - at, "], dtype=\"%s\")", dtype);
    return opt_module(spec);
}

/* One step with gradient g on parameter "a". */
static void step_with(em_module *m, em_optimizer *o, const double *g)
{
    opt_set_grad(em_module_get(m, "a"), g);
    cr_assert_eq(em_step(o), EM_OK, "em_step: %s", em_last_error());
}

/* ---- construction ------------------------------------------------------------------------------ */

Test(optimizers, are_registered_with_pytorch_defaults)
{
    em_module *m = opt_module("TestParams(a=[1, 2])");
    static const struct {
        const char *spec;
        double lr;
    } cases[] = {{"SGD(lr=0.1)", 0.1}, {"Adam()", 1e-3}, {"AdamW()", 1e-3}, {"RMSprop()", 1e-2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        em_optimizer *o = opt_optimizer(cases[i].spec, m);
        cr_assert_float_eq(em_optimizer_lr(o), cases[i].lr, 0, "%s", cases[i].spec);
        cr_assert_eq(em_optimizer_param_count(o), 1);
        cr_assert_eq(em_optimizer_steps(o), 0);
        em_optimizer_free(o);
    }
    em_optimizer *o = opt_optimizer("SGD(0.01, 0.9, nesterov=True)", m);
    char *s = em_optimizer_str(o);
    cr_assert_str_eq(s, "SGD(0.01, momentum=0.9, nesterov=true)");   /* required: positional */
    free(s);
    em_optimizer_free(o);
    o = opt_optimizer("AdamW(weight_decay=0.01)", m);   /* the default, so not printed */
    s = em_optimizer_str(o);
    cr_assert_str_eq(s, "AdamW()");
    free(s);
    em_optimizer_free(o);
    em_module_free(m);
}

Test(optimizers, sgd_requires_a_learning_rate_as_in_pytorch)
{
    em_module *m = opt_module("TestParams(a=[1])");
    cr_assert_null(em_optimizer_new("SGD(momentum=0.9)", m));
    EMT_ASSERT_ERROR("missing required argument 'lr'");
    em_module_free(m);
}

Test(optimizers, invalid_arguments_are_refused_with_the_reason)
{
    em_module *m = opt_module("TestParams(a=[1])");
    static const char *const cases[][2] = {
        {"SGD(lr=-0.1)", "invalid learning rate"},
        {"SGD(lr=0.1, momentum=-1)", "invalid momentum value"},
        {"SGD(lr=0.1, weight_decay=-1)", "invalid weight_decay value"},
        {"SGD(lr=0.1, nesterov=true)", "Nesterov momentum requires a momentum and zero dampening"},
        {"SGD(lr=0.1, momentum=0.9, dampening=0.1, nesterov=true)", "zero dampening"},
        {"SGD(lr=0.1, momentun=0.9)", "did you mean 'momentum'?"},
        {"Adam(betas=[0.9])", "betas must have two values"},
        {"Adam(betas=[1.0, 0.999])", "invalid beta parameter at index 0"},
        {"AdamW(betas=[0.9, -0.1])", "invalid beta parameter at index 1"},
        {"Adam(eps=-1)", "invalid epsilon value"},
        {"AdamW(weight_decay=-0.1)", "invalid weight_decay value"},
        {"RMSprop(alpha=-0.5)", "invalid alpha value"},
        {"RMSprop(momentum=-0.5)", "invalid momentum value"},
        {"RMSProp()", "did you mean 'RMSprop'?"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        EMT_CONTEXT("%s", cases[i][0]);
        cr_assert_null(em_optimizer_new(cases[i][0], m), "%s was accepted", cases[i][0]);
        EMT_ASSERT_ERROR(cases[i][1]);
    }
    em_module_free(m);
}

/* Found by tests/fuzz/fuzz_plugin_descriptor: a type declaring parameters with no table (or a
 * negative count) was read through a NULL pointer instead of being refused. */
static int reg_init_stub(em_optimizer *o, const em_args *a) { (void)o; (void)a; return EM_OK; }
static int reg_step_stub(em_optimizer *o) { (void)o; return EM_OK; }

Test(optimizers, registering_a_type_that_declares_parameters_without_a_table_is_refused)
{
    em_optimizer_ops ops = {.struct_size = sizeof ops, .name = "NoTable", .nparams = 2,
                            .params = NULL, .init = reg_init_stub, .step = reg_step_stub};
    cr_assert_lt(em_register_optimizer(NULL, &ops), 0);
    cr_assert(strstr(em_last_error(), "NoTable"), "%s", em_last_error());
    ops.nparams = -1;
    cr_assert_lt(em_register_optimizer(NULL, &ops), 0);
    cr_assert(strstr(em_last_error(), "NoTable"), "%s", em_last_error());
}

Test(optimizers, a_module_without_trainable_parameters_is_refused)
{
    em_module *m = opt_module("TestParams(a=[1])");
    cr_assert_eq(em_module_requires_grad_(m, false), EM_OK);
    cr_assert_null(em_optimizer_new("SGD(lr=0.1)", m));
    EMT_ASSERT_ERROR("no parameter that requires grad");
    em_module_free(m);
}

Test(optimizers, only_parameters_requiring_grad_when_built_are_optimized)
{
    em_module *m = opt_module("TestParams(a=[1, 2], b=[3, 4])");
    em_tensor *b = em_module_get(m, "b");
    cr_assert_eq(em_requires_grad_(b, false), EM_OK);
    em_optimizer *o = opt_optimizer("SGD(lr=0.1)", m);
    cr_assert_eq(em_optimizer_param_count(o), 1);
    cr_assert_eq(em_optimizer_param(o, 0), em_module_get(m, "a"));
    step_with(m, o, EMT_VALS(1, 1));
    EMT_ASSERT_LIST(em_module_get(m, "a"), 1e-7, 0.9, 1.9);
    EMT_ASSERT_LIST(b, 0, 3, 4);
    em_optimizer_free(o);
    em_module_free(m);
}

/* ---- updates computed by hand ------------------------------------------------------------------ */

Test(optimizers, sgd_step_is_p_minus_lr_times_grad)
{
    em_module *m = opt_module("TestParams(a=[1, -2], dtype=\"float64\")");
    em_optimizer *o = opt_optimizer("SGD(lr=0.1)", m);
    step_with(m, o, EMT_VALS(0.5, 0.25));
    EMT_ASSERT_LIST(em_module_get(m, "a"), 1e-15, 0.95, -2.025);
    cr_assert_null(em_optimizer_slot(o, 0, "momentum_buffer"), "plain SGD keeps no state");
    em_optimizer_free(o);
    em_module_free(m);
}

Test(optimizers, sgd_momentum_buffer_starts_as_the_gradient_without_dampening)
{
    em_module *m = opt_module("TestParams(a=[1], dtype=\"float64\")");
    em_optimizer *o = opt_optimizer("SGD(lr=0.1, momentum=0.9, dampening=0.5)", m);
    /* step 1: buf = g = 1 (no dampening), p = 1 - 0.1 * 1 = 0.9 */
    step_with(m, o, EMT_VALS(1));
    EMT_ASSERT_LIST(em_module_get(m, "a"), 1e-15, 0.9);
    EMT_ASSERT_LIST(em_optimizer_slot(o, 0, "momentum_buffer"), 0, 1);
    /* step 2: buf = 0.9 * 1 + (1 - 0.5) * 2 = 1.9, p = 0.9 - 0.19 = 0.71 */
    step_with(m, o, EMT_VALS(2));
    EMT_ASSERT_LIST(em_optimizer_slot(o, 0, "momentum_buffer"), 1e-15, 1.9);
    EMT_ASSERT_LIST(em_module_get(m, "a"), 1e-15, 0.71);
    em_optimizer_free(o);
    em_module_free(m);
}

Test(optimizers, sgd_momentum_buffer_is_a_copy_of_the_gradient)
{
    em_module *m = opt_module("TestParams(a=[1, 2])");
    em_optimizer *o = opt_optimizer("SGD(lr=0.1, momentum=0.9)", m);
    step_with(m, o, EMT_VALS(1, 1));
    em_tensor *buf = em_optimizer_slot(o, 0, "momentum_buffer");
    em_tensor *g = em_grad(em_module_get(m, "a"));
    cr_assert_not_null(buf);
    cr_assert_not(em_same_storage(buf, g), "the buffer must not alias the gradient");
    cr_assert_not(em_requires_grad(buf));
    em_optimizer_free(o);
    em_module_free(m);
}

Test(optimizers, sgd_nesterov_looks_ahead_along_the_buffer)
{
    em_module *m = opt_module("TestParams(a=[1], dtype=\"float64\")");
    em_optimizer *o = opt_optimizer("SGD(lr=0.1, momentum=0.9, nesterov=true)", m);
    /* buf = 1, d = g + 0.9 * buf = 1.9, p = 1 - 0.19 */
    step_with(m, o, EMT_VALS(1));
    EMT_ASSERT_LIST(em_module_get(m, "a"), 1e-15, 0.81);
    em_optimizer_free(o);
    em_module_free(m);
}

Test(optimizers, sgd_maximize_and_weight_decay)
{
    em_module *m = opt_module("TestParams(a=[2], dtype=\"float64\")");
    em_optimizer *o = opt_optimizer("SGD(lr=0.1, weight_decay=0.5, maximize=true)", m);
    /* d = -g + 0.5 * p = -1 + 1 = 0: the gradient ascent and the decay cancel */
    step_with(m, o, EMT_VALS(1));
    EMT_ASSERT_LIST(em_module_get(m, "a"), 0, 2);
    /* d = -3 + 1 = -2, p = 2 + 0.2 */
    step_with(m, o, EMT_VALS(3));
    EMT_ASSERT_LIST(em_module_get(m, "a"), 1e-15, 2.2);
    em_optimizer_free(o);
    em_module_free(m);
}

Test(optimizers, adam_first_step_moves_each_weight_by_lr)
{
    em_module *m = opt_module("TestParams(a=[1, -2, 3], dtype=\"float64\")");
    em_optimizer *o = opt_optimizer("Adam(lr=0.01)", m);
    /* m = 0.1 g, v = 0.001 g^2; bias-corrected m/sqrt(v) = g/|g|: a step of lr against the sign */
    step_with(m, o, EMT_VALS(0.5, -4, 1e-3));
    EMT_ASSERT_LIST(em_module_get(m, "a"), 1e-7, 0.99, -1.99, 2.99);
    EMT_ASSERT_LIST(em_optimizer_slot(o, 0, "exp_avg"), 1e-15, 0.05, -0.4, 1e-4);
    EMT_ASSERT_LIST(em_optimizer_slot(o, 0, "exp_avg_sq"), 1e-15, 0.00025, 0.016, 1e-9);
    cr_assert_null(em_optimizer_slot(o, 0, "max_exp_avg_sq"), "only amsgrad keeps the max");
    em_optimizer_free(o);
    em_module_free(m);
}

Test(optimizers, adam_bias_correction_uses_the_step_count)
{
    em_module *m = opt_module("TestParams(a=[0], dtype=\"float64\")");
    em_optimizer *o = opt_optimizer("Adam(lr=0.1, eps=0)", m);
    /* With the same gradient every step, m_hat = g and v_hat = g^2 at every t: each step is
     * exactly lr (without the corrections it would be 0.1 * 0.1 / sqrt(0.001) at t = 1). */
    for (int t = 1; t <= 3; t++) {
        step_with(m, o, EMT_VALS(2));
        EMT_ASSERT_LIST(em_module_get(m, "a"), 1e-14, -0.1 * t);
        cr_assert_eq(em_optimizer_steps(o), t);
    }
    em_optimizer_free(o);
    em_module_free(m);
}

Test(optimizers, amsgrad_keeps_the_largest_second_moment)
{
    em_module *m = opt_module("TestParams(a=[1], dtype=\"float64\")");
    em_optimizer *o = opt_optimizer("Adam(lr=0.01, amsgrad=true)", m);
    step_with(m, o, EMT_VALS(2));   /* v = 0.001 * 4 */
    step_with(m, o, EMT_VALS(0));   /* v = 0.999 * 0.004, the max stays 0.004 */
    EMT_ASSERT_LIST(em_optimizer_slot(o, 0, "exp_avg_sq"), 1e-15, 0.999 * 0.004);
    EMT_ASSERT_LIST(em_optimizer_slot(o, 0, "max_exp_avg_sq"), 1e-15, 0.004);
    em_optimizer_free(o);
    em_module_free(m);
}

Test(optimizers, adamw_decays_the_weight_apart_from_the_gradient)
{
    /* AdamW: p = 2 * (1 - 0.1 * 0.5) = 1.9, then the Adam step of lr: 1.8.
     * Adam with the same weight_decay adds 0.5 * p to the gradient instead, which only
     * changes the size of g, so its first step is lr: 1.9. */
    em_module *m = opt_module("TestParams(a=[2], dtype=\"float64\")");
    em_optimizer *o = opt_optimizer("AdamW(lr=0.1, weight_decay=0.5)", m);
    step_with(m, o, EMT_VALS(1));
    EMT_ASSERT_LIST(em_module_get(m, "a"), 1e-7, 1.8);
    em_optimizer_free(o);
    em_module_free(m);
    m = opt_module("TestParams(a=[2], dtype=\"float64\")");
    o = opt_optimizer("Adam(lr=0.1, weight_decay=0.5)", m);
    step_with(m, o, EMT_VALS(1));
    EMT_ASSERT_LIST(em_module_get(m, "a"), 1e-7, 1.9);
    em_optimizer_free(o);
    em_module_free(m);
}

Test(optimizers, rmsprop_first_step_is_ten_lr_against_the_sign)
{
    /* square_avg = 0.01 g^2, so g / sqrt(square_avg) = 10 sign(g) */
    em_module *m = opt_module("TestParams(a=[1, -1], dtype=\"float64\")");
    em_optimizer *o = opt_optimizer("RMSprop(lr=0.01)", m);
    step_with(m, o, EMT_VALS(2, -0.5));
    EMT_ASSERT_LIST(em_module_get(m, "a"), 1e-7, 0.9, -0.9);
    EMT_ASSERT_LIST(em_optimizer_slot(o, 0, "square_avg"), 1e-15, 0.04, 0.0025);
    cr_assert_null(em_optimizer_slot(o, 0, "momentum_buffer"));
    cr_assert_null(em_optimizer_slot(o, 0, "grad_avg"));
    em_optimizer_free(o);
    em_module_free(m);
}

/* ---- against PyTorch ------------------------------------------------------------------------- */

static void check_torch_cases(const char *dtype, double tol)
{
    for (size_t c = 0; c < sizeof tv_optim_cases / sizeof tv_optim_cases[0]; c++) {
        const tv_optim_case *tc = &tv_optim_cases[c];
        em_module *m = param_module(tv_p0, TV_N, dtype);
        em_optimizer *o = opt_optimizer(tc->spec, m);
        for (int k = 0; k < 3; k++) {
            EMT_CONTEXT("%s in %s, step %d", tc->spec, dtype, k + 1);
            step_with(m, o, tv_grads[k]);
            EMT_ASSERT_VALUES(em_module_get(m, "a"), tol, tc->after[k], TV_N);
        }
        em_optimizer_free(o);
        em_module_free(m);
    }
}

Test(optimizers, every_option_matches_pytorch_for_three_steps_in_float64)
{
    check_torch_cases("float64", 1e-13);
}

Test(optimizers, every_option_matches_pytorch_for_three_steps_in_float32)
{
    check_torch_cases("float32", 2e-6);
}

Test(optimizers, a_parameter_without_grad_is_skipped_and_starts_its_state_later)
{
    double neg[TV_N];
    for (int i = 0; i < TV_N; i++)
        neg[i] = -tv_p0[i];
    for (size_t c = 0; c < sizeof tv_late_cases / sizeof tv_late_cases[0]; c++) {
        const tv_late_case *tc = &tv_late_cases[c];
        EMT_CONTEXT("%s", tc->spec);
        char spec[512];
        snprintf(spec, sizeof spec,
                 "TestParams(a=[%.17g, %.17g, %.17g, %.17g], b=[%.17g, %.17g, %.17g, %.17g], "
                 "dtype=\"float64\")",
                 tv_p0[0], tv_p0[1], tv_p0[2], tv_p0[3], neg[0], neg[1], neg[2], neg[3]);
        em_module *m = opt_module(spec);
        em_optimizer *o = opt_optimizer(tc->spec, m);
        em_tensor *a = em_module_get(m, "a"), *b = em_module_get(m, "b");
        for (int k = 0; k < 3; k++) {
            cr_assert_eq(em_zero_grad(o), EM_OK);
            opt_set_grad(a, tv_grads[k]);
            if (k > 0)
                opt_set_grad(b, tv_grads[k - 1]);
            cr_assert_eq(em_step(o), EM_OK, "%s", em_last_error());
            if (k == 0) {
                EMT_ASSERT_VALUES(b, 0, neg, TV_N);
                cr_assert_null(em_optimizer_slot(o, 1, "exp_avg"));
                cr_assert_null(em_optimizer_slot(o, 1, "momentum_buffer"));
                cr_assert_null(em_optimizer_slot(o, 1, "square_avg"));
            }
        }
        EMT_ASSERT_VALUES(a, 1e-13, tc->a, TV_N);
        EMT_ASSERT_VALUES(b, 1e-13, tc->b, TV_N);
        em_optimizer_free(o);
        em_module_free(m);
    }
}

/* ---- zero_grad, graph, learning rate --------------------------------------------------------------- */

Test(optimizers, zero_grad_sets_every_grad_to_none)
{
    em_module *m = opt_module("TestParams(a=[1, 2], b=[3])");
    em_optimizer *o = opt_optimizer("SGD(lr=0.1, momentum=0.9)", m);
    opt_set_grad(em_module_get(m, "a"), EMT_VALS(1, 1));
    opt_set_grad(em_module_get(m, "b"), EMT_VALS(1));
    cr_assert_not_null(em_grad(em_module_get(m, "a")));
    cr_assert_eq(em_zero_grad(o), EM_OK);
    cr_assert_null(em_grad(em_module_get(m, "a")));
    cr_assert_null(em_grad(em_module_get(m, "b")));
    /* a step without gradients changes nothing and creates no state */
    int64_t n;
    double *before = opt_snapshot(m, &n);
    cr_assert_eq(em_step(o), EM_OK, "%s", em_last_error());
    opt_assert_unchanged(m, before, n);
    cr_assert_null(em_optimizer_slot(o, 0, "momentum_buffer"));
    free(before);
    cr_assert_eq(em_zero_grad(NULL), EM_ERR_INVALID);
    em_optimizer_free(o);
    em_module_free(m);
}

Test(optimizers, a_step_records_no_graph_and_parameters_stay_leaves)
{
    static const char *const specs[] = {"SGD(lr=0.1, momentum=0.9, weight_decay=0.1)",
                                        "Adam(amsgrad=true, weight_decay=0.1)",
                                        "AdamW()", "RMSprop(momentum=0.5, centered=true)"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        EMT_CONTEXT("%s", specs[i]);
        em_module *m = opt_module("TestParams(a=[1, 2])");
        em_optimizer *o = opt_optimizer(specs[i], m);
        em_tensor *a = em_module_get(m, "a");
        opt_set_grad(a, EMT_VALS(0.5, -0.5));
        uint64_t v = em_tensor_version(a);
        cr_assert_eq(em_step(o), EM_OK, "%s", em_last_error());
        cr_assert(em_is_grad_enabled(), "grad mode is restored after the step");
        cr_assert(em_is_leaf(a));
        cr_assert(em_requires_grad(a));
        cr_assert_null(em_grad_fn_name(a));
        cr_assert_gt(em_tensor_version(a), v, "the update is in place");
        static const char *const slots[] = {"momentum_buffer", "exp_avg", "exp_avg_sq",
                                            "max_exp_avg_sq", "square_avg", "grad_avg"};
        for (size_t k = 0; k < sizeof slots / sizeof slots[0]; k++) {
            em_tensor *s = em_optimizer_slot(o, 0, slots[k]);
            cr_assert(!s || (!em_requires_grad(s) && em_is_leaf(s)), "slot %s", slots[k]);
        }
        /* the updated parameter still trains: a new backward reaches it */
        opt_set_grad(a, EMT_VALS(1, 1));
        EMT_ASSERT_LIST(em_grad(a), 0, 1, 1);
        em_optimizer_free(o);
        em_module_free(m);
    }
}

Test(optimizers, the_learning_rate_can_be_read_and_changed)
{
    em_module *m = opt_module("TestParams(a=[1], dtype=\"float64\")");
    em_optimizer *o = opt_optimizer("SGD(lr=0.1)", m);
    cr_assert_float_eq(em_optimizer_lr(o), 0.1, 0);
    cr_assert_eq(em_optimizer_set_lr(o, 0.5), EM_OK);
    step_with(m, o, EMT_VALS(1));
    EMT_ASSERT_LIST(em_module_get(m, "a"), 1e-15, 0.5);
    cr_assert_eq(em_optimizer_set_lr(o, -1), EM_ERR_INVALID);
    EMT_ASSERT_ERROR("invalid learning rate");
    cr_assert_float_eq(em_optimizer_lr(o), 0.5, 0);
    em_optimizer_free(o);
    em_module_free(m);
}

Test(optimizers, an_optimizer_outlives_its_module)
{
    em_module *m = opt_module("TestParams(a=[1])");
    em_optimizer *o = opt_optimizer("SGD(lr=0.1)", m);
    em_tensor *a = em_module_get(m, "a");
    em_retain(a);
    opt_set_grad(a, EMT_VALS(1));
    em_module_free(m);
    cr_assert_eq(em_step(o), EM_OK, "%s", em_last_error());
    EMT_ASSERT_LIST(a, 1e-7, 0.9);
    em_optimizer_free(o);
    em_release(a);
}

/* ---- devices ----------------------------------------------------------------------------------- */

static em_device dev(const char *s)
{
    em_device d = em_device_parse(s);
    cr_assert_geq(d.index, 0, "%s: %s", s, em_last_error());
    return d;
}

Test(optimizers, state_lives_on_the_parameters_device_and_moves_with_the_module)
{
    static const char *const specs[] = {"SGD(lr=0.1, momentum=0.9)", "Adam(amsgrad=true)",
                                        "RMSprop(momentum=0.9, centered=true)"};
    em_device mock = dev("mock:1");
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        EMT_CONTEXT("%s", specs[i]);
        em_module *m = opt_module("TestParams(a=[1, 2, 3])");
        em_device home = em_device_of(em_module_get(m, "a"));   /* the default device */
        em_optimizer *o = opt_optimizer(specs[i], m);
        step_with(m, o, EMT_VALS(0.1, -0.2, 0.3));
        const char *names[4];
        em_tensor *slots[4];
        double *vals[4];
        int n = 0;
        static const char *const all[] = {"momentum_buffer", "exp_avg", "exp_avg_sq",
                                          "max_exp_avg_sq", "square_avg", "grad_avg"};
        for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
            if ((slots[n] = em_optimizer_slot(o, 0, all[k]))) {
                cr_assert(em_device_eq(em_device_of(slots[n]), home));
                vals[n] = emt_values(slots[n]);
                names[n++] = all[k];
            }
        cr_assert_geq(n, 1);
        cr_assert_eq(em_module_to(m, mock), EM_OK, "%s", em_last_error());
        for (int k = 0; k < n; k++) {
            cr_assert_eq(em_optimizer_slot(o, 0, names[k]), slots[k], "%s keeps its handle",
                         names[k]);
            cr_assert(em_device_eq(em_device_of(slots[k]), mock), "%s is on %s", names[k],
                      "mock:1");
            EMT_ASSERT_VALUES(slots[k], 0, vals[k], 3);   /* read back from the mock */
        }
        cr_assert(em_device_eq(em_device_of(em_module_get(m, "a")), mock));
        cr_assert(em_device_eq(em_device_of(em_grad(em_module_get(m, "a"))), mock));
        cr_assert_eq(em_module_to(m, home), EM_OK, "%s", em_last_error());
        for (int k = 0; k < n; k++) {
            cr_assert(em_device_eq(em_device_of(slots[k]), home));
            EMT_ASSERT_VALUES(slots[k], 0, vals[k], 3);
            free(vals[k]);
        }
        em_optimizer_free(o);
        em_module_free(m);
    }
}

/* PyTorch's tutorial warns to move the model before building the optimizer. Here the
 * parameters keep their handles and the state moves with them, so the order does not matter:
 * build, step, move away and back, step again, and get exactly what staying would give. */
Test(optimizers, an_optimizer_made_before_the_move_keeps_working)
{
    em_device cpu = dev("cpu"), mock = dev("mock:0");
    em_module *moved = opt_module("TestParams(a=[1, -1], b=[0.5])");
    em_module *stayed = opt_module("TestParams(a=[1, -1], b=[0.5])");
    em_optimizer *om = opt_optimizer("SGD(lr=0.1, momentum=0.9)", moved);
    em_optimizer *os = opt_optimizer("SGD(lr=0.1, momentum=0.9)", stayed);
    em_tensor *a = em_module_get(moved, "a"), *b = em_module_get(moved, "b");
    const double g1a[] = {1, 2}, g1b[] = {-1}, g2a[] = {0.5, 0.5}, g2b[] = {2};

    opt_set_grad(a, g1a);
    opt_set_grad(b, g1b);
    cr_assert_eq(em_step(om), EM_OK, "%s", em_last_error());
    opt_set_grad(em_module_get(stayed, "a"), g1a);
    opt_set_grad(em_module_get(stayed, "b"), g1b);
    cr_assert_eq(em_step(os), EM_OK, "%s", em_last_error());
    em_tensor *buf = em_optimizer_slot(om, 0, "momentum_buffer");

    cr_assert_eq(em_module_to(moved, mock), EM_OK, "%s", em_last_error());
    cr_assert(em_device_eq(em_device_of(a), mock));
    cr_assert(em_device_eq(em_device_of(buf), mock), "the momentum went along");
    cr_assert(em_is_leaf(a) && em_requires_grad(a), "still a trainable leaf on the mock");
    cr_assert_eq(em_module_to(moved, cpu), EM_OK, "%s", em_last_error());

    cr_assert_eq(em_module_get(moved, "a"), a, "the module keeps the handle");
    cr_assert_eq(em_optimizer_param(om, 0), a, "the optimizer updates the same handle");
    cr_assert_eq(em_optimizer_param(om, 1), b);
    cr_assert_eq(em_optimizer_slot(om, 0, "momentum_buffer"), buf);
    EMT_ASSERT_LIST(buf, 0, 1, 2);   /* the first gradient, intact */

    cr_assert_eq(em_zero_grad(om), EM_OK);
    opt_set_grad(a, g2a);
    opt_set_grad(b, g2b);
    cr_assert_eq(em_step(om), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_zero_grad(os), EM_OK);
    opt_set_grad(em_module_get(stayed, "a"), g2a);
    opt_set_grad(em_module_get(stayed, "b"), g2b);
    cr_assert_eq(em_step(os), EM_OK, "%s", em_last_error());

    /* by hand: a = [1, -1] - 0.1 [1, 2] = [0.9, -1.2]; buf = 0.9 [1, 2] + [0.5, 0.5] =
     * [1.4, 2.3]; a = [0.9 - 0.14, -1.2 - 0.23] */
    EMT_ASSERT_LIST(a, 1e-6, 0.76, -1.43);
    EMT_ASSERT_LIST(buf, 1e-6, 1.4, 2.3);
    double *want = opt_values(stayed, "a"), *wantb = opt_values(stayed, "b");
    EMT_ASSERT_VALUES(a, 0, want, 2);
    EMT_ASSERT_VALUES(b, 0, wantb, 1);
    free(want);
    free(wantb);
    em_optimizer_free(om);
    em_optimizer_free(os);
    em_module_free(moved);
    em_module_free(stayed);
}

Test(optimizers, a_step_on_a_device_without_the_kernels_fails_cleanly)
{
    /* The mock device has no mul kernel: the step reports it and leaves the count alone. */
    em_module *m = opt_module("TestParams(a=[1, 2])");
    em_optimizer *o = opt_optimizer("SGD(lr=0.1)", m);
    opt_set_grad(em_module_get(m, "a"), EMT_VALS(1, 1));
    cr_assert_eq(em_module_to(m, dev("mock:0")), EM_OK, "%s", em_last_error());
    cr_assert_lt(em_step(o), 0);
    cr_assert_neq(em_last_error()[0], '\0');
    cr_assert_eq(em_optimizer_steps(o), 0);
    cr_assert_eq(em_module_to(m, dev("cpu")), EM_OK, "%s", em_last_error());
    EMT_ASSERT_LIST(em_module_get(m, "a"), 0, 1, 2);
    em_optimizer_free(o);
    em_module_free(m);
}
