/* plugins/optim/schedulers.c - learning-rate schedulers in closed form.
 *
 * Each is torch.optim.lr_scheduler's _get_closed_form_lr (PyTorch 1.13), the learning rate at
 * `epoch` from the optimizer's initial lr (epoch 0 is the value set at construction):
 *
 *     StepLR(step_size, gamma=0.1)           base * gamma^(epoch // step_size)
 *     MultiStepLR(milestones, gamma=0.1)     base * gamma^(number of milestones <= epoch)
 *     CosineAnnealingLR(T_max, eta_min=0)    eta_min + (base - eta_min) * (1 + cos(pi*epoch/T_max)) / 2
 *     LinearLR(start_factor=1/3, end_factor=1, total_iters=5)
 *                                            base * (start + (end - start) * min(epoch, total) / total)
 *     ExponentialLR(gamma)                   base * gamma^epoch
 *     ConstantLR(factor=1/3, total_iters=5)  base * factor while epoch < total_iters, then base
 *     SequentialLR(S0, S1, ..., milestones=[m1, ...])
 *                                            S_i at epoch - m_i, where i = number of milestones
 *                                            <= epoch (m_0 = 0): PyTorch restarts each scheduler
 *                                            at step(0) when its milestone comes, from the same
 *                                            initial lr. The S_i are specs of the schedulers above.
 *
 * PyTorch steps schedulers with a recursive form (each lr from the previous one); it equals the
 * closed form up to rounding, and the closed form keeps no state, so a scheduler can be rebuilt
 * at any epoch. Invalid arguments (which PyTorch would reject or divide by zero on) make lr_at
 * return NaN with the error set, and the core refuses the scheduler.
 */
#include <math.h>
#include <string.h>

#include "optim.h"

static double invalid(const char *what, const char *fmt, double v)
{
    em_set_error(EM_ERR_INVALID, "%s: %s, got %g", what, fmt, v);
    return NAN;
}

/* ---- StepLR --------------------------------------------------------------------------------- */

static const em_param_decl step_params[] = {
    {"step_size", EM_PARAM_INT, NULL},
    {"gamma", EM_PARAM_FLOAT, "0.1"},
};

static double step_lr(const em_args *a, double base, int epoch)
{
    int64_t size = em_args_int(a, "step_size");
    if (size < 1)
        return invalid("StepLR", "step_size must be at least 1", (double)size);
    return base * pow(em_args_float(a, "gamma"), (double)(epoch / size));
}

/* ---- MultiStepLR ---------------------------------------------------------------------------- */

static const em_param_decl multistep_params[] = {
    {"milestones", EM_PARAM_INTS, NULL},
    {"gamma", EM_PARAM_FLOAT, "0.1"},
};

/* bisect_right over the sorted milestones = how many are <= epoch; a milestone given twice
 * counts twice, as PyTorch's Counter does. */
static double multistep_lr(const em_args *a, double base, int epoch)
{
    int n = 0;
    for (int i = 0; i < em_args_count(a, "milestones"); i++)
        n += em_args_int_at(a, "milestones", i) <= epoch;
    return base * pow(em_args_float(a, "gamma"), n);
}

/* ---- CosineAnnealingLR ---------------------------------------------------------------------- */

static const em_param_decl cosine_params[] = {
    {"T_max", EM_PARAM_INT, NULL},
    {"eta_min", EM_PARAM_FLOAT, "0"},
};

static double cosine_lr(const em_args *a, double base, int epoch)
{
    int64_t tmax = em_args_int(a, "T_max");
    if (tmax < 1)
        return invalid("CosineAnnealingLR", "T_max must be at least 1", (double)tmax);
    double eta_min = em_args_float(a, "eta_min");
    return eta_min + (base - eta_min) * (1 + cos(M_PI * epoch / (double)tmax)) / 2;
}

/* ---- LinearLR -------------------------------------------------------------------------------- */

static const em_param_decl linear_params[] = {
    {"start_factor", EM_PARAM_FLOAT, "0.3333333333333333"},   /* 1/3 exactly, as a double */
    {"end_factor", EM_PARAM_FLOAT, "1.0"},
    {"total_iters", EM_PARAM_INT, "5"},
};

static double linear_lr(const em_args *a, double base, int epoch)
{
    double start = em_args_float(a, "start_factor"), end = em_args_float(a, "end_factor");
    int64_t total = em_args_int(a, "total_iters");
    if (!(start >= 0 && start <= 1))
        return invalid("LinearLR", "start_factor must be between 0 and 1", start);
    if (!(end >= 0 && end <= 1))
        return invalid("LinearLR", "end_factor must be between 0 and 1", end);
    if (total < 1)
        return invalid("LinearLR", "total_iters must be at least 1", (double)total);
    int64_t e = epoch < total ? epoch : total;
    return base * (start + (end - start) * (double)e / (double)total);
}

/* ---- ExponentialLR ------------------------------------------------------------------------------ */

static const em_param_decl exponential_params[] = {{"gamma", EM_PARAM_FLOAT, NULL}};

static double exponential_lr(const em_args *a, double base, int epoch)
{
    return base * pow(em_args_float(a, "gamma"), (double)epoch);
}

/* ---- ConstantLR ------------------------------------------------------------------------------ */

static const em_param_decl constant_params[] = {
    {"factor", EM_PARAM_FLOAT, "0.3333333333333333"},
    {"total_iters", EM_PARAM_INT, "5"},
};

static double constant_lr(const em_args *a, double base, int epoch)
{
    double f = em_args_float(a, "factor");
    if (!(f >= 0 && f <= 1))
        return invalid("ConstantLR", "factor must be between 0 and 1", f);
    return epoch < em_args_int(a, "total_iters") ? base * f : base;
}

/* ---- SequentialLR ---------------------------------------------------------------------------- */

static const em_param_decl sequential_params[] = {
    {"schedulers", EM_PARAM_SPECS_VARARG, NULL},
    {"milestones", EM_PARAM_INTS, NULL},
};

static const em_scheduler_ops *scheduler_type(const char *name);

/* Scheduler `spec` (one of this plugin's) at `epoch`; NaN with the error set when it is
 * unknown, nested, or invalid. */
static double child_lr(const em_spec *spec, double base, int epoch)
{
    const em_scheduler_ops *ops = scheduler_type(em_spec_name(spec));
    if (!ops || !strcmp(ops->name, "SequentialLR")) {
        em_set_error(EM_ERR_INVALID, "SequentialLR: %s '%s' (its schedulers are StepLR, "
                     "MultiStepLR, CosineAnnealingLR, LinearLR, ExponentialLR or ConstantLR)",
                     ops ? "cannot nest" : "unknown scheduler", em_spec_name(spec));
        return NAN;
    }
    em_args *a = em_args_bind(spec, ops->nparams, ops->params);
    double lr = a ? ops->lr_at(a, base, epoch) : NAN;
    em_args_free(a);
    return lr;
}

static double sequential_lr(const em_args *a, double base, int epoch)
{
    int ns = em_args_count(a, "schedulers"), nm = em_args_count(a, "milestones");
    if (ns != nm + 1) {
        em_set_error(EM_ERR_INVALID,
                     "SequentialLR: %d scheduler(s) need %d milestone(s), got %d", ns,
                     ns > 0 ? ns - 1 : 0, nm);
        return NAN;
    }
    for (int i = 1; i < nm; i++)
        if (em_args_int_at(a, "milestones", i) <= em_args_int_at(a, "milestones", i - 1))
            return invalid("SequentialLR", "milestones must increase",
                           (double)em_args_int_at(a, "milestones", i));
    /* at construction, every scheduler is checked, not only the first */
    for (int i = 1; epoch == 0 && i < ns; i++)
        if (isnan(child_lr(em_args_spec_at(a, "schedulers", i), base, 0)))
            return NAN;
    int k = 0;
    while (k < nm && em_args_int_at(a, "milestones", k) <= epoch)
        k++;
    int64_t start = k > 0 ? em_args_int_at(a, "milestones", k - 1) : 0;
    return child_lr(em_args_spec_at(a, "schedulers", k), base, (int)(epoch - start));
}

/* ---- registration ---------------------------------------------------------------------------- */

#define SCHED(name_, params_, fn_)                                                            \
    {sizeof(em_scheduler_ops), name_, (int)(sizeof params_ / sizeof params_[0]), params_, fn_}

static const em_scheduler_ops schedulers[] = {
    SCHED("StepLR", step_params, step_lr),
    SCHED("MultiStepLR", multistep_params, multistep_lr),
    SCHED("CosineAnnealingLR", cosine_params, cosine_lr),
    SCHED("LinearLR", linear_params, linear_lr),
    SCHED("ExponentialLR", exponential_params, exponential_lr),
    SCHED("ConstantLR", constant_params, constant_lr),
    SCHED("SequentialLR", sequential_params, sequential_lr),
};

static const em_scheduler_ops *scheduler_type(const char *name)
{
    for (size_t i = 0; i < sizeof schedulers / sizeof schedulers[0]; i++)
        if (!strcmp(schedulers[i].name, name))
            return &schedulers[i];
    return NULL;
}

int em_optim__register_schedulers(em_registry *reg)
{
    for (size_t i = 0; i < sizeof schedulers / sizeof schedulers[0]; i++) {
        int rc = em_register_scheduler(reg, &schedulers[i]);
        if (rc < 0)
            return rc;
    }
    return EM_OK;
}
