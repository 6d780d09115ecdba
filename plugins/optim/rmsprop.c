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
 * step count enters the update. Each parameter's update is one op, rmsprop_step
 * (em_rmsprop_step_), which backends may fuse.
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

/* One parameter's update: the op rmsprop_step (one fused pass where the backend has a
 * kernel). */
static int rmsprop_update(em_optimizer *o, const rmsprop *s, int i, double lr)
{
    em_tensor *p = em_optimizer_param(o, i);
    em_tensor *sq = em_optim_slot_zeros(o, i, "square_avg");
    em_tensor *buf = sq && s->momentum > 0 ? em_optim_slot_zeros(o, i, "momentum_buffer") : NULL;
    em_tensor *ga = sq && s->centered ? em_optim_slot_zeros(o, i, "grad_avg") : NULL;
    if (!sq || (s->momentum > 0 && !buf) || (s->centered && !ga))
        return em_optim_failed();
    em_tensor *r = em_rmsprop_step_(p, em_grad(p), sq, buf, ga, lr, s->alpha, s->eps,
                                    s->weight_decay, s->momentum, s->centered, s->maximize);
    em_release(r);
    return r ? EM_OK : em_optim_failed();
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
