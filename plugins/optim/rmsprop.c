/* plugins/optim/rmsprop.c - RMSprop, with momentum, centering, weight decay and maximize.
 *
 * torch.optim.RMSprop's single-tensor implementation (PyTorch 1.13):
 *
 *     g = maximize ? -g : g
 *     if weight_decay: g = g + weight_decay * p                (coupled)
 *     sq = alpha * sq + (1 - alpha) * g * g                    slot "square_avg"
 *     centered: ga = alpha * ga + (1 - alpha) * g              slot "grad_avg"
 *               avg = sqrt(sq - ga * ga) + eps
 *     else:     avg = sqrt(sq) + eps
 *     momentum > 0: buf = momentum * buf + g / avg             slot "momentum_buffer"
 *                   p -= lr * buf
 *     else:         p -= lr * g / avg
 *
 * Every slot starts as zeros on the parameter's device at the parameter's first step. No
 * step count enters the update.
 */
#include "optim.h"

typedef struct rmsprop {
    double alpha, eps, weight_decay, momentum;
    bool centered, maximize;
} rmsprop;

static const em_param_decl rmsprop_params[] = {
    {"lr", EM_PARAM_FLOAT, "1e-2"},
    {"alpha", EM_PARAM_FLOAT, "0.99"},
    {"eps", EM_PARAM_FLOAT, "1e-8"},
    {"weight_decay", EM_PARAM_FLOAT, "0"},
    {"momentum", EM_PARAM_FLOAT, "0"},
    {"centered", EM_PARAM_BOOL, "false"},
    {"maximize", EM_PARAM_BOOL, "false"},
};

static int rmsprop_init(em_optimizer *o, const em_args *a)
{
    rmsprop *s = em_optimizer_state(o);
    s->alpha = em_args_float(a, "alpha");
    s->eps = em_args_float(a, "eps");
    s->weight_decay = em_args_float(a, "weight_decay");
    s->momentum = em_args_float(a, "momentum");
    s->centered = em_args_bool(a, "centered");
    s->maximize = em_args_bool(a, "maximize");
    if (!(s->eps >= 0))
        return em_set_error(EM_ERR_INVALID, "RMSprop: invalid epsilon value: %g", s->eps);
    if (!(s->momentum >= 0))
        return em_set_error(EM_ERR_INVALID, "RMSprop: invalid momentum value: %g", s->momentum);
    if (!(s->weight_decay >= 0))
        return em_set_error(EM_ERR_INVALID, "RMSprop: invalid weight_decay value: %g",
                            s->weight_decay);
    if (!(s->alpha >= 0))
        return em_set_error(EM_ERR_INVALID, "RMSprop: invalid alpha value: %g", s->alpha);
    return EM_OK;
}

static int rmsprop_update(em_optimizer *o, const rmsprop *s, int i, double lr)
{
    em_optim_tmps k = {0};
    em_tensor *p = em_optimizer_param(o, i), *g = em_grad(p);
    if (s->maximize)
        g = em_optim_tmp(&k, em_neg(g));
    if (s->weight_decay != 0)
        g = em_optim_axpy(&k, g, p, s->weight_decay);
    em_tensor *sq = em_optim_slot_zeros(o, i, "square_avg");
    em_tensor *buf = s->momentum > 0 ? em_optim_slot_zeros(o, i, "momentum_buffer") : sq;
    em_tensor *ga = s->centered ? em_optim_slot_zeros(o, i, "grad_avg") : sq;
    if (!g || !sq || !buf || !ga) {
        k.failed = true;
        return em_optim_tmps_release(&k);
    }
    sq = em_optim_tmp(&k, em_mul_scalar_(sq, s->alpha));
    sq = sq ? em_optim_axpy_(&k, sq, em_optim_tmp(&k, em_mul(g, g)), 1 - s->alpha) : NULL;
    em_tensor *avg;
    if (s->centered) {
        ga = em_optim_tmp(&k, em_mul_scalar_(ga, s->alpha));
        ga = ga ? em_optim_axpy_(&k, ga, g, 1 - s->alpha) : NULL;
        em_tensor *var = ga ? em_optim_axpy(&k, sq, em_optim_tmp(&k, em_mul(ga, ga)), -1) : NULL;
        avg = em_optim_tmp(&k, em_sqrt(var));
    } else {
        avg = em_optim_tmp(&k, em_sqrt(sq));
    }
    avg = em_optim_tmp(&k, em_add_scalar_(avg, s->eps));
    em_tensor *ratio = avg ? em_optim_tmp(&k, em_div(g, avg)) : NULL;
    if (ratio && s->momentum > 0) {
        buf = em_optim_tmp(&k, em_mul_scalar_(buf, s->momentum));
        buf = buf ? em_optim_axpy_(&k, buf, ratio, 1) : NULL;
        if (buf)
            em_optim_axpy_(&k, p, buf, -lr);
    } else if (ratio) {
        em_optim_axpy_(&k, p, ratio, -lr);
    }
    return em_optim_tmps_release(&k);
}

static int rmsprop_step(em_optimizer *o)
{
    const rmsprop *s = em_optimizer_state(o);
    double lr = em_optimizer_lr(o);
    for (int i = 0; i < em_optimizer_param_count(o); i++) {
        if (!em_grad(em_optimizer_param(o, i)))
            continue;
        int rc = rmsprop_update(o, s, i, lr);
        if (rc < 0)
            return rc;
    }
    return EM_OK;
}

static const em_optimizer_ops rmsprop_ops = {
    .struct_size = sizeof(em_optimizer_ops),
    .name = "RMSprop",
    .nparams = (int)(sizeof rmsprop_params / sizeof rmsprop_params[0]),
    .params = rmsprop_params,
    .state_size = sizeof(rmsprop),
    .init = rmsprop_init,
    .step = rmsprop_step,
};

int em_optim__register_rmsprop(em_registry *reg)
{
    return em_register_optimizer(reg, &rmsprop_ops);
}
