/* tests/optim/test_step.c - em_step is all or nothing in both of its ways: deferred (a steady
 * step on the CPU queues its fused updates and runs them at its end, making no copies) and
 * copied (a step that also runs other ops copies the parameters aside first). Failures part-way
 * through leave parameters and state as they were; other ops inside a step see the updates
 * asked for before them, as if nothing had been deferred. */
#include "helpers.h"

TestSuite(step, .init = opt_setup, .fini = opt_teardown);

static em_tensor *param(em_module *m, const char *name) { return em_module_get(m, name); }

/* Two parameters, "a" and "b", with grads 1..; SGD with momentum stepped twice, so that its
 * state exists and the next step is a steady one. */
static em_optimizer *steady_sgd(em_module *m)
{
    em_optimizer *o = opt_optimizer("SGD(lr=0.1, momentum=0.9)", m);
    opt_set_grad(param(m, "a"), EMT_VALS(1, 2));
    opt_set_grad(param(m, "b"), EMT_VALS(3, 4, 5));
    for (int i = 0; i < 2; i++)
        cr_assert_eq(em_step(o), EM_OK, "%s", em_last_error());
    return o;
}

Test(step, a_steady_step_that_fails_on_a_later_parameter_changes_nothing)
{
    em_module *m = opt_module("TestParams(a=[1, 2], b=[3, 4, 5])");
    em_optimizer *o = steady_sgd(m);
    double *a0 = opt_values(m, "a");
    em_tensor *buf_a = em_optimizer_slot(o, 0, "momentum_buffer");
    double *ma0 = emt_values_(__FILE__, __LINE__, buf_a);
    /* b's momentum buffer made to share memory with its grad: its update is refused after a's
     * was asked for */
    int ib = em_optimizer_param(o, 0) == param(m, "b") ? 0 : 1;
    int ia = 1 - ib;
    cr_assert_eq(em_optimizer_param(o, ia), param(m, "a"));
    em_tensor *gb = em_grad(param(m, "b"));
    cr_assert_eq(em_optimizer_set_slot(o, ib, "momentum_buffer", gb), EM_OK, "%s",
                 em_last_error());
    cr_assert_lt(em_step(o), 0);
    cr_assert(strstr(em_last_error(), "shares memory"), "%s", em_last_error());
    cr_assert_eq(em_optimizer_steps(o), 2);
    double *a1 = opt_values(m, "a");
    double *ma1 = emt_values_(__FILE__, __LINE__, em_optimizer_slot(o, ia, "momentum_buffer"));
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(a1[i], a0[i], "a[%d] changed from %g to %g", i, a0[i], a1[i]);
        cr_expect_eq(ma1[i], ma0[i], "a's momentum[%d] changed", i);
    }
    free(a0);
    free(a1);
    free(ma0);
    free(ma1);
    em_optimizer_free(o);
    em_module_free(m);
}

/* A steady (deferred) step applies each parameter's update once, with its state. */
Test(step, a_deferred_step_updates_every_parameter_once_in_order)
{
    em_module *m = opt_module("TestParams(a=[1, 2], b=[3, 4, 5])");
    em_optimizer *o = steady_sgd(m);
    /* by hand: v = 0.9 v + g, p -= 0.1 v, from two steps done: v = 1.9 g, p = p0 - 0.29 g */
    cr_assert_eq(em_step(o), EM_OK, "%s", em_last_error());
    /* third step: v = 0.9 * 1.9 g + g = 2.71 g; p = p0 - (0.29 + 0.271) g */
    double *a = opt_values(m, "a"), *b = opt_values(m, "b");
    const double a0[] = {1, 2}, ga[] = {1, 2}, b0[] = {3, 4, 5}, gb[] = {3, 4, 5};
    for (int i = 0; i < 2; i++)
        cr_expect(emt_close(a[i], a0[i] - 0.561 * ga[i], 1e-6), "a[%d] = %g", i, a[i]);
    for (int i = 0; i < 3; i++)
        cr_expect(emt_close(b[i], b0[i] - 0.561 * gb[i], 1e-6), "b[%d] = %g", i, b[i]);
    free(a);
    free(b);
    em_optimizer_free(o);
    em_module_free(m);
}

/* ---- an optimizer that runs other ops between its updates ------------------------------------- */

/* FusedThenScale(lr, scale): p = sgd_step(p, grad) then p *= scale; when fail_after, one more
 * op once every update was asked for, then an error. */
static const em_param_decl fts_params[] = {
    {"lr", EM_PARAM_FLOAT, NULL},
    {"scale", EM_PARAM_FLOAT, "1"},
    {"fail_after", EM_PARAM_BOOL, "false"},
};

typedef struct fts {
    double scale;
    bool fail_after;
} fts;

static int fts_init(em_optimizer *o, const em_args *a)
{
    fts *s = em_optimizer_state(o);
    s->scale = em_args_float(a, "scale");
    s->fail_after = em_args_bool(a, "fail_after");
    return EM_OK;
}

static int fts_step(em_optimizer *o)
{
    const fts *s = em_optimizer_state(o);
    for (int i = 0; i < em_optimizer_param_count(o); i++) {
        em_tensor *p = em_optimizer_param(o, i);
        em_tensor *r = em_sgd_step_(p, em_grad(p), NULL, em_optimizer_lr(o), 0, 0, 0, false,
                                    false, false);
        if (!r)
            return em_last_status();
        em_release(r);
        if (s->scale != 1) {
            /* reads p: must see the update just asked for */
            if (!(r = em_mul_scalar_(p, s->scale)))
                return em_last_status();
            em_release(r);
        }
    }
    if (s->fail_after) {
        /* an op that writes runs the queued updates (copying the parameters aside first);
         * then the step fails */
        em_tensor *r = em_mul_scalar_(em_optimizer_param(o, 0), 1.0);
        if (!r)
            return em_last_status();
        em_release(r);
        return em_set_error(EM_ERR_INVALID, "FusedThenScale: failing on purpose");
    }
    return EM_OK;
}

static void register_fts(void)
{
    static const em_optimizer_ops ops = {
        .struct_size = sizeof(em_optimizer_ops),
        .name = "FusedThenScale",
        .nparams = 3,
        .params = fts_params,
        .state_size = sizeof(fts),
        .init = fts_init,
        .step = fts_step,
    };
    cr_assert_geq(em_register_optimizer(NULL, &ops), 0, "%s", em_last_error());
}

/* "a" = [1, 2] with grad [1, 1] and "b" = [3, 4, 5] with grad [2, 2, 2], under `spec`. */
static em_optimizer *fts_setup(em_module **m, const char *spec)
{
    register_fts();
    *m = opt_module("TestParams(a=[1, 2], b=[3, 4, 5])");
    em_optimizer *o = opt_optimizer(spec, *m);
    opt_set_grad(param(*m, "a"), EMT_VALS(1, 1));
    opt_set_grad(param(*m, "b"), EMT_VALS(2, 2, 2));
    return o;
}

Test(step, ops_inside_a_step_see_the_updates_asked_for_before_them)
{
    em_module *m;
    em_optimizer *o = fts_setup(&m, "FusedThenScale(lr=0.5, scale=2)");
    for (int s = 0; s < 2; s++)
        cr_assert_eq(em_step(o), EM_OK, "%s", em_last_error());
    /* a: ([1, 2] - 0.5) * 2 = [1, 3], then [1, 5]; b: ([3, 4, 5] - 1) * 2 = [4, 6, 8], then
     * [6, 10, 14]. Had the updates run after the scaling: [1.5, 3.5], then [2.5, 6.5]. */
    EMT_ASSERT_LIST(param(m, "a"), 0, 1, 5);
    EMT_ASSERT_LIST(param(m, "b"), 0, 6, 10, 14);
    em_optimizer_free(o);
    em_module_free(m);
}

Test(step, a_step_that_fails_after_its_updates_ran_is_undone)
{
    em_module *m;
    em_optimizer *o = fts_setup(&m, "FusedThenScale(lr=0.5, fail_after=true)");
    for (int s = 0; s < 2; s++) {
        cr_assert_lt(em_step(o), 0);
        cr_assert(strstr(em_last_error(), "on purpose"), "%s", em_last_error());
    }
    cr_assert_eq(em_optimizer_steps(o), 0);
    EMT_ASSERT_LIST(param(m, "a"), 0, 1, 2);
    EMT_ASSERT_LIST(param(m, "b"), 0, 3, 4, 5);
    em_optimizer_free(o);
    em_module_free(m);
}
