/* plugins/optim/adam.c - Adam and AdamW, with amsgrad and maximize.
 *
 * torch.optim.Adam / AdamW's single-tensor implementations (PyTorch 1.13), for parameter p
 * with gradient g at its t-th step (t counts the steps on which p had a gradient):
 *
 *     g = maximize ? -g : g
 *     Adam:   if weight_decay: g = g + weight_decay * p      (coupled, L2 in the gradient)
 *     AdamW:  p *= 1 - lr * weight_decay                     (decoupled, before the update)
 *     m = beta1 * m + (1 - beta1) * g                        slot "exp_avg"
 *     v = beta2 * v + (1 - beta2) * g * g                    slot "exp_avg_sq"
 *     amsgrad: vmax = max(vmax, v), and vmax replaces v below slot "max_exp_avg_sq"
 *     denom = sqrt(v) / sqrt(1 - beta2^t) + eps
 *     p -= lr / (1 - beta1^t) * m / denom
 *
 * The bias corrections are computed in double on the host, as PyTorch does outside capturable
 * mode. The slots are created as zeros on the parameter's device at its first step. Each
 * parameter's update is one op, adam_step (em_adam_step_), which backends may fuse.
 *
 * Step counts: PyTorch keeps one per parameter (state['step']), which differs from the
 * optimizer's count for a parameter that had no gradient on some steps. This file keeps the
 * per-parameter counts on the host; a parameter whose state is fresh (no "exp_avg" slot)
 * starts from 0. State this file did not make (em_optimizer_load installed it) takes the
 * optimizer's count, which a checkpoint records: it is exact when every parameter stepped each
 * time. So the counts are re-derived that way when the optimizer's counter is not where the
 * last step left it (a checkpoint was loaded, or a step failed), and for a parameter that
 * has state but no count of its own.
 */
#include <stdlib.h>

#include "optim.h"

typedef struct adam {
    double beta1, beta2, eps, weight_decay;
    bool amsgrad, maximize, decoupled;
    int64_t *steps;      /* per parameter: its PyTorch state['step'] */
    int64_t expected;    /* em_optimizer_steps() at the next step if nothing intervened */
} adam;

#define ADAM_PARAMS(wd_default)                                                               \
    {"lr", EM_PARAM_FLOAT, "1e-3"}, {"betas", EM_PARAM_FLOATS, "[0.9, 0.999]"},              \
        {"eps", EM_PARAM_FLOAT, "1e-8"}, {"weight_decay", EM_PARAM_FLOAT, wd_default},       \
        {"amsgrad", EM_PARAM_BOOL, "false"}, {"maximize", EM_PARAM_BOOL, "false"},

static const em_param_decl adam_params[] = {ADAM_PARAMS("0")};
static const em_param_decl adamw_params[] = {ADAM_PARAMS("1e-2")};

static int init_common(em_optimizer *o, const em_args *a, bool decoupled)
{
    adam *s = em_optimizer_state(o);
    const char *name = decoupled ? "AdamW" : "Adam";
    if (em_args_count(a, "betas") != 2)
        return em_set_error(EM_ERR_INVALID, "%s: betas must have two values, got %d", name,
                            em_args_count(a, "betas"));
    s->beta1 = em_args_float_at(a, "betas", 0);
    s->beta2 = em_args_float_at(a, "betas", 1);
    s->eps = em_args_float(a, "eps");
    s->weight_decay = em_args_float(a, "weight_decay");
    s->amsgrad = em_args_bool(a, "amsgrad");
    s->maximize = em_args_bool(a, "maximize");
    s->decoupled = decoupled;
    if (!(s->eps >= 0))
        return em_set_error(EM_ERR_INVALID, "%s: invalid epsilon value: %g", name, s->eps);
    if (!(s->beta1 >= 0 && s->beta1 < 1))
        return em_set_error(EM_ERR_INVALID, "%s: invalid beta parameter at index 0: %g", name,
                            s->beta1);
    if (!(s->beta2 >= 0 && s->beta2 < 1))
        return em_set_error(EM_ERR_INVALID, "%s: invalid beta parameter at index 1: %g", name,
                            s->beta2);
    if (!(s->weight_decay >= 0))
        return em_set_error(EM_ERR_INVALID, "%s: invalid weight_decay value: %g", name,
                            s->weight_decay);
    s->steps = calloc((size_t)em_optimizer_param_count(o), sizeof *s->steps);
    if (!s->steps)
        return em_set_error(EM_ERR_NOMEM, "%s: out of memory", name);
    return EM_OK;
}

static int adam_init(em_optimizer *o, const em_args *a) { return init_common(o, a, false); }
static int adamw_init(em_optimizer *o, const em_args *a) { return init_common(o, a, true); }

static void adam_destroy(em_optimizer *o)
{
    adam *s = em_optimizer_state(o);
    free(s->steps);
}

/* One parameter's update at its step t: the op adam_step (one fused pass where the backend
 * has a kernel). */
static int adam_update(em_optimizer *o, const adam *s, int i, int64_t t, double lr)
{
    em_tensor *p = em_optimizer_param(o, i);
    em_tensor *m = em_optim_slot_zeros(o, i, "exp_avg");
    em_tensor *v = m ? em_optim_slot_zeros(o, i, "exp_avg_sq") : NULL;
    em_tensor *vmax = v && s->amsgrad ? em_optim_slot_zeros(o, i, "max_exp_avg_sq") : NULL;
    if (!v || (s->amsgrad && !vmax))
        return em_optim_failed();
    em_tensor *r = em_adam_step_(p, em_grad(p), m, v, vmax, lr, s->beta1, s->beta2, s->eps,
                                 s->weight_decay, t, s->amsgrad, s->maximize, s->decoupled);
    em_release(r);
    return r ? EM_OK : em_optim_failed();
}

static int adam_step(em_optimizer *o)
{
    adam *s = em_optimizer_state(o);
    int64_t now = em_optimizer_steps(o);
    if (now != s->expected)
        for (int i = 0; i < em_optimizer_param_count(o); i++)
            s->steps[i] = em_optimizer_slot(o, i, "exp_avg") ? now : 0;
    s->expected = now + 1;
    double lr = em_optimizer_lr(o);
    for (int i = 0; i < em_optimizer_param_count(o); i++) {
        if (!em_grad(em_optimizer_param(o, i)))
            continue;
        if (!em_optimizer_slot(o, i, "exp_avg"))
            s->steps[i] = 0;   /* fresh state, as PyTorch's lazy initialisation */
        else if (s->steps[i] == 0)
            s->steps[i] = now; /* state this file did not make: from a checkpoint */
        int rc = adam_update(o, s, i, s->steps[i] + 1, lr);
        if (rc < 0)
            return rc;
        s->steps[i]++;
    }
    return EM_OK;
}

static const em_optimizer_ops adam_ops = {
    .struct_size = sizeof(em_optimizer_ops),
    .name = "Adam",
    .nparams = (int)(sizeof adam_params / sizeof adam_params[0]),
    .params = adam_params,
    .state_size = sizeof(adam),
    .init = adam_init,
    .step = adam_step,
    .destroy = adam_destroy,
};

static const em_optimizer_ops adamw_ops = {
    .struct_size = sizeof(em_optimizer_ops),
    .name = "AdamW",
    .nparams = (int)(sizeof adamw_params / sizeof adamw_params[0]),
    .params = adamw_params,
    .state_size = sizeof(adam),
    .init = adamw_init,
    .step = adam_step,
    .destroy = adam_destroy,
};

int em_optim__register_adam(em_registry *reg)
{
    int rc = em_register_optimizer(reg, &adam_ops);
    return rc < 0 ? rc : em_register_optimizer(reg, &adamw_ops);
}
