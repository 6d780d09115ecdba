/* tests/optim/test_schedulers.c - StepLR, MultiStepLR, CosineAnnealingLR, LinearLR,
 * ExponentialLR, ConstantLR and SequentialLR: the
 * learning rates PyTorch 1.13 printed for each epoch (golden/torch_values.h), values worked out
 * by hand, bad arguments, and a schedule driving an optimizer's updates. */
#include "helpers.h"

#include "golden/torch_values.h"

TestSuite(schedulers, .init = opt_setup, .fini = opt_teardown);

static em_scheduler *sched_(const char *file, int line, const char *spec, em_optimizer *o)
{
    em_scheduler *s = em_scheduler_new(spec, o);
    cr_assert_not_null(s, "%s:%d: em_scheduler_new(\"%s\"): %s", file, line, spec,
                       em_last_error());
    return s;
}
#define sched(spec, o) sched_(__FILE__, __LINE__, (spec), (o))

/* The optimizer's lr at epochs 0 .. n-1 under `spec`, from an SGD with lr = base. */
static void lr_sequence(const char *spec, double base, int n, double *out)
{
    em_module *m = opt_module("TestParams(a=[1])");
    char os[64];
    snprintf(os, sizeof os, "SGD(lr=%.17g)", base);
    em_optimizer *o = opt_optimizer(os, m);
    em_scheduler *s = sched(spec, o);
    for (int e = 0; e < n; e++) {
        cr_assert_eq(em_scheduler_epoch(s), e);
        out[e] = em_optimizer_lr(o);
        if (e + 1 < n)
            cr_assert_eq(em_scheduler_step(s), EM_OK, "%s", em_last_error());
    }
    em_scheduler_free(s);
    em_optimizer_free(o);
    em_module_free(m);
}

Test(schedulers, every_schedule_matches_pytorch)
{
    for (size_t c = 0; c < sizeof tv_sched_cases / sizeof tv_sched_cases[0]; c++) {
        const tv_sched_case *tc = &tv_sched_cases[c];
        double got[32];
        lr_sequence(tc->spec, tc->base_lr, tc->n, got);
        for (int e = 0; e < tc->n; e++)
            /* PyTorch stepped its recursive form; the closed form agrees up to rounding */
            cr_assert(emt_close(got[e], tc->lr[e], 1e-12),
                      "%s, epoch %d: lr %.17g, PyTorch %.17g", tc->spec, e, got[e], tc->lr[e]);
    }
}

Test(schedulers, step_lr_by_hand)
{
    double got[7];
    lr_sequence("StepLR(step_size=2)", 1.0, 7, got);   /* gamma = 0.1 by default */
    const double want[] = {1, 1, 0.1, 0.1, 0.01, 0.01, 0.001};
    for (int e = 0; e < 7; e++)
        cr_assert(emt_close(got[e], want[e], 1e-15), "epoch %d: %g", e, got[e]);
}

Test(schedulers, multistep_lr_counts_repeated_milestones)
{
    double got[6];
    lr_sequence("MultiStepLR([4, 2, 2], gamma=0.5)", 1.0, 6, got);
    const double want[] = {1, 1, 0.25, 0.25, 0.125, 0.125};
    for (int e = 0; e < 6; e++)
        cr_assert(emt_close(got[e], want[e], 1e-15), "epoch %d: %g", e, got[e]);
}

Test(schedulers, cosine_annealing_reaches_eta_min_at_t_max_and_comes_back)
{
    double got[9];
    lr_sequence("CosineAnnealingLR(T_max=4, eta_min=0.1)", 1.0, 9, got);
    cr_assert(emt_close(got[0], 1.0, 1e-15));
    cr_assert(emt_close(got[2], 0.55, 1e-15), "halfway: the mean of base and eta_min");
    cr_assert(emt_close(got[4], 0.1, 1e-15), "T_max: eta_min");
    cr_assert(emt_close(got[8], 1.0, 1e-15), "2 T_max: back to the base");
}

Test(schedulers, linear_lr_defaults_ramp_from_a_third)
{
    double got[8];
    lr_sequence("LinearLR()", 0.3, 8, got);
    for (int e = 0; e < 8; e++) {
        double f = 1.0 / 3 + (1 - 1.0 / 3) * (e < 5 ? e : 5) / 5.0;
        cr_assert(emt_close(got[e], 0.3 * f, 1e-15), "epoch %d: %g", e, got[e]);
    }
}

Test(schedulers, sequential_lr_restarts_each_schedule_at_its_milestone)
{
    double got[9];
    lr_sequence("SequentialLR(ConstantLR(factor=0.5, total_iters=10), StepLR(2, gamma=0.5), "
                "milestones=[3])",
                1.0, 9, got);
    /* ConstantLR for epochs 0-2, then StepLR from its own epoch 0 */
    const double want[] = {0.5, 0.5, 0.5, 1, 1, 0.5, 0.5, 0.25, 0.25};
    for (int e = 0; e < 9; e++)
        cr_assert(emt_close(got[e], want[e], 1e-15), "epoch %d: %g", e, got[e]);
}

Test(schedulers, a_schedule_drives_the_updates)
{
    em_module *m = opt_module("TestParams(a=[0], dtype=\"float64\")");
    em_optimizer *o = opt_optimizer("SGD(lr=1)", m);
    em_scheduler *s = sched("StepLR(1, gamma=0.5)", o);
    /* gradient 1 each step: the weight moves by 1, 0.5, 0.25 */
    double p = 0;
    for (int e = 0; e < 3; e++) {
        opt_set_grad(em_module_get(m, "a"), EMT_VALS(1));
        cr_assert_eq(em_step(o), EM_OK, "%s", em_last_error());
        cr_assert_eq(em_scheduler_step(s), EM_OK);
        p -= 1.0 / (1 << e);
        EMT_ASSERT_LIST(em_module_get(m, "a"), 1e-15, p);
    }
    cr_assert_float_eq(em_optimizer_lr(o), 0.125, 0);
    em_scheduler_free(s);
    em_optimizer_free(o);
    em_module_free(m);
}

Test(schedulers, bad_arguments_are_refused_and_leave_the_lr_alone)
{
    em_module *m = opt_module("TestParams(a=[1])");
    em_optimizer *o = opt_optimizer("SGD(lr=0.1)", m);
    static const char *const cases[][2] = {
        {"StepLR(step_size=0)", "step_size must be at least 1"},
        {"StepLR()", "missing required argument 'step_size'"},
        {"StepLR(3, gama=0.5)", "did you mean 'gamma'?"},
        {"MultiStepLR(gamma=0.5)", "missing required argument 'milestones'"},
        {"CosineAnnealingLR(T_max=0)", "T_max must be at least 1"},
        {"LinearLR(start_factor=1.5)", "start_factor must be between 0 and 1"},
        {"LinearLR(end_factor=-0.5)", "end_factor must be between 0 and 1"},
        {"LinearLR(total_iters=0)", "total_iters must be at least 1"},
        {"ConstantLR(factor=1.5)", "factor must be between 0 and 1"},
        {"SequentialLR(LinearLR(), StepLR(2), milestones=[3])", ""},
        {"SequentialLR(LinearLR(), StepLR(2))", "missing required argument 'milestones'"},
        {"SequentialLR(LinearLR(), StepLR(2), milestones=[3, 5])",
         "2 scheduler(s) need 1 milestone(s), got 2"},
        {"SequentialLR(LinearLR(), StepLR(2), StepLR(3), milestones=[5, 5])",
         "milestones must increase"},
        {"SequentialLR(LinearLR(), CosineAnnealingLR(T_max=0), milestones=[3])",
         "T_max must be at least 1"},
        {"SequentialLR(LinearLR(), SGD(lr=1), milestones=[3])",
         "SequentialLR: unknown scheduler 'SGD' (its schedulers are StepLR, MultiStepLR"},
        {"SequentialLR(LinearLR(), SequentialLR(StepLR(2), milestones=[]), milestones=[3])",
         "SequentialLR: cannot nest 'SequentialLR'"},
        {"StepLr(3)", "did you mean 'StepLR'?"},
        {"SGD(lr=0.1)", "unknown scheduler 'SGD'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        EMT_CONTEXT("%s", cases[i][0]);
        if (!cases[i][1][0]) {   /* a valid one among them: accepted */
            em_scheduler_free(sched(cases[i][0], o));
            em_optimizer_set_lr(o, 0.1);
            continue;
        }
        cr_assert_null(em_scheduler_new(cases[i][0], o), "%s was accepted", cases[i][0]);
        EMT_ASSERT_ERROR(cases[i][1]);
        cr_assert_float_eq(em_optimizer_lr(o), 0.1, 0, "%s changed the lr", cases[i][0]);
    }
    em_optimizer_free(o);
    em_module_free(m);
}

Test(schedulers, optimizers_are_not_schedulers)
{
    em_module *m = opt_module("TestParams(a=[1])");
    cr_assert_null(em_optimizer_new("StepLR(step_size=2)", m));
    EMT_ASSERT_ERROR("unknown optimizer 'StepLR'");
    em_module_free(m);
}
