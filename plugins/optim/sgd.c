/* plugins/optim/sgd.c - SGD with momentum, dampening, Nesterov, weight decay and maximize.
 *
 * The update is torch.optim.SGD's single-tensor implementation (PyTorch 1.13), step for step:
 *
 *     d = maximize ? -grad : grad
 *     if weight_decay:  d = d + weight_decay * p              (coupled: part of the gradient)
 *     if momentum:
 *         buf = first step ? clone(d)                         (no dampening on the first step)
 *                          : momentum * buf + (1 - dampening) * d
 *         d = nesterov ? d + momentum * buf : buf
 *     p -= lr * d
 *
 * lr is required, as in PyTorch. The momentum buffer is the slot "momentum_buffer" on the
 * parameter's device. Parameters without a grad are skipped (and their buffer is untouched).
 * Each parameter's update is one op, sgd_step (em_sgd_step_), which backends may fuse.
 */
#include "optim.h"

typedef struct sgd {
    double momentum, dampening, weight_decay;
    bool nesterov, maximize;
} sgd;

static const em_param_decl sgd_params[] = {
    {"lr", EM_PARAM_FLOAT, NULL},
    {"momentum", EM_PARAM_FLOAT, "0"},
    {"dampening", EM_PARAM_FLOAT, "0"},
    {"weight_decay", EM_PARAM_FLOAT, "0"},
    {"nesterov", EM_PARAM_BOOL, "false"},
    {"maximize", EM_PARAM_BOOL, "false"},
};

static int sgd_init(em_optimizer *o, const em_args *a)
{
    sgd *s = em_optimizer_state(o);
    s->momentum = em_args_float(a, "momentum");
    s->dampening = em_args_float(a, "dampening");
    s->weight_decay = em_args_float(a, "weight_decay");
    s->nesterov = em_args_bool(a, "nesterov");
    s->maximize = em_args_bool(a, "maximize");
    if (!(s->momentum >= 0))
        return em_set_error(EM_ERR_INVALID, "SGD: invalid momentum value: %g", s->momentum);
    if (!(s->weight_decay >= 0))
        return em_set_error(EM_ERR_INVALID, "SGD: invalid weight_decay value: %g",
                            s->weight_decay);
    if (s->nesterov && (s->momentum <= 0 || s->dampening != 0))
        return em_set_error(EM_ERR_INVALID,
                            "SGD: Nesterov momentum requires a momentum and zero dampening");
    return EM_OK;
}

/* One parameter's update: the op sgd_step (one fused pass where the backend has a kernel).
 * The momentum buffer starts as zeros that the first step overwrites with d. */
static int sgd_update(em_optimizer *o, const sgd *s, int i, double lr)
{
    em_tensor *p = em_optimizer_param(o, i), *buf = NULL;
    bool first = false;
    if (s->momentum != 0) {
        buf = em_optimizer_slot(o, i, "momentum_buffer");
        first = !buf;
        if (first && !(buf = em_optim_slot_zeros(o, i, "momentum_buffer")))
            return em_optim_failed();
    }
    em_tensor *r = em_sgd_step_(p, em_grad(p), buf, lr, s->momentum, s->dampening,
                                s->weight_decay, s->nesterov, s->maximize, first);
    em_release(r);
    return r ? EM_OK : em_optim_failed();
}

static int sgd_step(em_optimizer *o)
{
    const sgd *s = em_optimizer_state(o);
    double lr = em_optimizer_lr(o);
    for (int i = 0; i < em_optimizer_param_count(o); i++) {
        if (!em_grad(em_optimizer_param(o, i)))
            continue;
        int rc = sgd_update(o, s, i, lr);
        if (rc < 0)
            return rc;
    }
    return EM_OK;
}

static const em_optimizer_ops sgd_ops = {
    .struct_size = sizeof(em_optimizer_ops),
    .name = "SGD",
    .nparams = (int)(sizeof sgd_params / sizeof sgd_params[0]),
    .params = sgd_params,
    .state_size = sizeof(sgd),
    .init = sgd_init,
    .step = sgd_step,
};

int em_optim__register_sgd(em_registry *reg) { return em_register_optimizer(reg, &sgd_ops); }
