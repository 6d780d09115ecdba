/* core/optim_ops.c - the fused optimizer updates: ops sgd_step, adam_step and rmsprop_step.
 *
 * Each op is one parameter's whole update, so a backend can run it as one pass over memory
 * (the CPU backend does) instead of the ten or so elementwise ops it is made of. The op's
 * output is the new parameter, which the public wrappers (em_sgd_step_ and the like) write into
 * the parameter; the optimizer state (momentum buffer, exp_avg, ...) is updated in place, which
 * the op declares through em_op_def.updates. The composites below are the reference: they are
 * PyTorch 1.13's single-tensor updates written in ops, rounding after every op as PyTorch's
 * do, and they run wherever a backend has no kernel (and for float16/bfloat16 on the CPU). A
 * kernel must give the same bits as its composite in float32 and float64: the conformance
 * cases compare them.
 *
 * An unused state slot (no momentum, no amsgrad, not centered) is passed as the parameter
 * itself; kernels and composites never touch it.
 *
 * Not here: the optimizers' bookkeeping (slots, step counts, spec arguments), which stays in
 * the optim plugin.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

int em__op_sgd_step, em__op_adam_step, em__op_rmsprop_step;

/* ---- temporaries of a composite ------------------------------------------------------------ */

#define MAX_TMPS 24

/* Every tensor a composite makes is kept here and released at its end; a NULL result marks the
 * list failed, and since every op returns NULL for a NULL input, a chain stops at the first
 * failure. */
typedef struct tmps {
    em_tensor *t[MAX_TMPS];
    int n;
    bool failed;
} tmps;

static em_tensor *tmp(tmps *k, em_tensor *t)
{
    if (!t) {
        k->failed = true;
        return NULL;
    }
    EM_ASSERT(k->n < MAX_TMPS);
    k->t[k->n++] = t;
    return t;
}

static void tmps_release(tmps *k)
{
    while (k->n)
        em_release(k->t[--k->n]);
}

/* The result r (kept by the caller) unless a step failed. */
static em_tensor *tmps_result(tmps *k, em_tensor *r)
{
    if (r && !k->failed)
        em_retain(r);
    else
        r = NULL;
    tmps_release(k);
    return r;
}

/* a += alpha * b in place (torch's a.add_(b, alpha=alpha)). */
static em_tensor *axpy_(tmps *k, em_tensor *a, em_tensor *b, double alpha)
{
    if (alpha != 1)
        b = tmp(k, em_mul_scalar(b, alpha));
    return a && b ? tmp(k, em_add_(a, b)) : tmp(k, NULL);
}

/* a + alpha * b (torch's a.add(b, alpha=alpha)). */
static em_tensor *axpy(tmps *k, em_tensor *a, em_tensor *b, double alpha)
{
    if (alpha != 1)
        b = tmp(k, em_mul_scalar(b, alpha));
    return a && b ? tmp(k, em_add(a, b)) : tmp(k, NULL);
}

/* a = sa * a + sb * b in place (torch's a.mul_(sa).add_(b, alpha=sb)). */
static em_tensor *scale_add_(tmps *k, em_tensor *a, double sa, em_tensor *b, double sb)
{
    a = tmp(k, em_mul_scalar_(a, sa));
    return a ? axpy_(k, a, b, sb) : NULL;
}

/* The gradient as the update sees it: negated for maximize, plus weight_decay * p (coupled). */
static em_tensor *effective_grad(tmps *k, em_tensor *p, em_tensor *g, bool maximize,
                                 double weight_decay)
{
    if (maximize)
        g = tmp(k, em_neg(g));
    if (weight_decay != 0 && g)
        g = axpy(k, g, p, weight_decay);
    return g;
}

/* ---- checks ------------------------------------------------------------------------------- */

/* Every input has the parameter's shape and dtype, and the parameter is a float tensor. */
static int check_update(const char *op, int nin, em_tensor *const *in)
{
    em_tensor *p = in[0];
    if (!em_dtype_is_float(p->dtype))
        return em_set_error(EM_ERR_INVALID, "%s: the parameter must be a float tensor, got %s",
                            op, em_dtype_name(p->dtype));
    for (int i = 1; i < nin; i++) {
        const em_tensor *t = in[i];
        char b1[160], b2[160];
        if (t->dtype != p->dtype || t->ndim != p->ndim ||
            memcmp(t->shape, p->shape, (size_t)p->ndim * sizeof *p->shape) != 0)
            return em_set_error(EM_ERR_INVALID,
                                "%s: input %d is %s of dtype %s; the parameter is %s of dtype %s",
                                op, i, em__shape_str(t->ndim, t->shape, b1, sizeof b1),
                                em_dtype_name(t->dtype),
                                em__shape_str(p->ndim, p->shape, b2, sizeof b2),
                                em_dtype_name(p->dtype));
    }
    return EM_OK;
}

/* Shape inference of the three ops: the output is the parameter's (EM_OP_SAME_AS_INPUT) once
 * every input is checked to match it. */
#define INFER_UPDATE(fn, op)                                                                  \
    static int fn(int nin, em_tensor *const *in, const em_attr *attrs, em_out_desc *out)       \
    {                                                                                         \
        (void)attrs;                                                                          \
        (void)out;                                                                            \
        return check_update(op, nin, in);                                                     \
    }
INFER_UPDATE(infer_sgd, "sgd_step")
INFER_UPDATE(infer_adam, "adam_step")
INFER_UPDATE(infer_rmsprop, "rmsprop_step")

/* ---- sgd_step(param, grad, momentum_buffer) ------------------------------------------------- */

/* Attributes: lr, momentum, dampening, weight_decay, nesterov, maximize, first_step.
 *
 *     d = maximize ? -grad : grad
 *     if weight_decay:  d = d + weight_decay * p
 *     if momentum:      buf = first_step ? d : momentum * buf + (1 - dampening) * d
 *                       d = nesterov ? d + momentum * buf : buf
 *     p = p - lr * d
 */
static const em_attr_decl sgd_attrs[] = {
    {"lr", EM_ATTR_FLOAT},        {"momentum", EM_ATTR_FLOAT}, {"dampening", EM_ATTR_FLOAT},
    {"weight_decay", EM_ATTR_FLOAT}, {"nesterov", EM_ATTR_BOOL}, {"maximize", EM_ATTR_BOOL},
    {"first_step", EM_ATTR_BOOL},
};

static em_tensor *composite_sgd(int nin, em_tensor *const *in, const em_attr *a)
{
    if (check_update("sgd_step", nin, in) < 0)
        return NULL;
    tmps k = {0};
    em_tensor *p = in[0], *buf = in[2];
    double lr = a[0].f, momentum = a[1].f, dampening = a[2].f;
    em_tensor *d = effective_grad(&k, p, in[1], a[5].i != 0, a[3].f);
    if (momentum != 0 && d) {
        if (a[6].i)
            buf = tmp(&k, em_copy_(buf, d));
        else
            buf = scale_add_(&k, buf, momentum, d, 1 - dampening);
        d = !buf ? NULL : a[4].i ? axpy(&k, d, buf, momentum) : buf;
    }
    return tmps_result(&k, d ? axpy(&k, p, d, -lr) : NULL);
}

/* ---- adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq) ----------------------------- */

/* Attributes: lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled (AdamW), step
 * (the parameter's step count t, from 1).
 *
 *     g = maximize ? -g : g
 *     Adam:   if weight_decay: g = g + weight_decay * p
 *     AdamW:  p = p * (1 - lr * weight_decay)
 *     m = beta1 * m + (1 - beta1) * g
 *     v = beta2 * v + (1 - beta2) * g * g
 *     amsgrad: vmax = max(vmax, v), used for v below
 *     p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 *
 * The bias corrections are computed in double on the host, as PyTorch does outside capturable
 * mode: a kernel computes them from the attributes the same way (pow and sqrt in double).
 */
static const em_attr_decl adam_attrs[] = {
    {"lr", EM_ATTR_FLOAT},           {"beta1", EM_ATTR_FLOAT},   {"beta2", EM_ATTR_FLOAT},
    {"eps", EM_ATTR_FLOAT},          {"weight_decay", EM_ATTR_FLOAT}, {"amsgrad", EM_ATTR_BOOL},
    {"maximize", EM_ATTR_BOOL},      {"decoupled", EM_ATTR_BOOL}, {"step", EM_ATTR_INT},
};

static void adam_scalars(const em_attr *a, double *step_size, double *bc2_sqrt)
{
    double t = (double)a[8].i;
    *step_size = a[0].f / (1 - pow(a[1].f, t));
    *bc2_sqrt = sqrt(1 - pow(a[2].f, t));
}

static em_tensor *composite_adam(int nin, em_tensor *const *in, const em_attr *a)
{
    if (check_update("adam_step", nin, in) < 0)
        return NULL;
    tmps k = {0};
    em_tensor *p = in[0], *m = in[2], *v = in[3], *vmax = in[4];
    double lr = a[0].f, beta1 = a[1].f, beta2 = a[2].f, wd = a[4].f;
    bool amsgrad = a[5].i != 0, decoupled = a[7].i != 0;
    em_tensor *g = effective_grad(&k, p, in[1], a[6].i != 0, decoupled ? 0 : wd);
    if (decoupled && wd != 0)
        p = tmp(&k, em_mul_scalar(p, 1 - lr * wd));
    m = g ? scale_add_(&k, m, beta1, g, 1 - beta1) : NULL;
    em_tensor *g2 = g ? tmp(&k, em_mul(g, g)) : NULL;
    v = g2 ? scale_add_(&k, v, beta2, g2, 1 - beta2) : NULL;
    double step_size, bc2_sqrt;
    adam_scalars(a, &step_size, &bc2_sqrt);
    if (amsgrad && v)
        v = tmp(&k, em_copy_(vmax, tmp(&k, em_maximum(vmax, v))));
    em_tensor *denom = v ? tmp(&k, em_sqrt(v)) : NULL;
    denom = denom ? tmp(&k, em_div_scalar(denom, bc2_sqrt)) : NULL;
    denom = denom ? tmp(&k, em_add_scalar_(denom, a[3].f)) : NULL;
    em_tensor *ratio = m && denom ? tmp(&k, em_div(m, denom)) : NULL;
    return tmps_result(&k, ratio && p ? axpy(&k, p, ratio, -step_size) : NULL);
}

/* ---- rmsprop_step(param, grad, square_avg, momentum_buffer, grad_avg) ---------------------- */

/* Attributes: lr, alpha, eps, weight_decay, momentum, centered, maximize.
 *
 *     g = maximize ? -g : g
 *     if weight_decay: g = g + weight_decay * p
 *     sq = alpha * sq + (1 - alpha) * g * g
 *     centered: ga = alpha * ga + (1 - alpha) * g;  avg = sqrt(sq - ga * ga) + eps
 *     else:     avg = sqrt(sq) + eps
 *     momentum > 0: buf = momentum * buf + g / avg;  p = p - lr * buf
 *     else:         p = p - lr * g / avg
 */
static const em_attr_decl rmsprop_attrs[] = {
    {"lr", EM_ATTR_FLOAT},           {"alpha", EM_ATTR_FLOAT},    {"eps", EM_ATTR_FLOAT},
    {"weight_decay", EM_ATTR_FLOAT}, {"momentum", EM_ATTR_FLOAT}, {"centered", EM_ATTR_BOOL},
    {"maximize", EM_ATTR_BOOL},
};

static em_tensor *composite_rmsprop(int nin, em_tensor *const *in, const em_attr *a)
{
    if (check_update("rmsprop_step", nin, in) < 0)
        return NULL;
    tmps k = {0};
    em_tensor *p = in[0], *sq = in[2], *buf = in[3], *ga = in[4];
    double lr = a[0].f, alpha = a[1].f, momentum = a[4].f;
    em_tensor *g = effective_grad(&k, p, in[1], a[6].i != 0, a[3].f);
    em_tensor *g2 = g ? tmp(&k, em_mul(g, g)) : NULL;
    sq = g2 ? scale_add_(&k, sq, alpha, g2, 1 - alpha) : NULL;
    em_tensor *avg = NULL;
    if (a[5].i && sq) {
        ga = scale_add_(&k, ga, alpha, g, 1 - alpha);
        em_tensor *ga2 = ga ? tmp(&k, em_mul(ga, ga)) : NULL;
        em_tensor *var = ga2 ? axpy(&k, sq, ga2, -1) : NULL;
        avg = var ? tmp(&k, em_sqrt(var)) : NULL;
    } else if (sq) {
        avg = tmp(&k, em_sqrt(sq));
    }
    avg = avg ? tmp(&k, em_add_scalar_(avg, a[2].f)) : NULL;
    em_tensor *ratio = avg ? tmp(&k, em_div(g, avg)) : NULL;
    if (ratio && momentum > 0)
        ratio = scale_add_(&k, buf, momentum, ratio, 1);
    return tmps_result(&k, ratio ? axpy(&k, p, ratio, -lr) : NULL);
}

/* ---- registration ------------------------------------------------------------------------ */

int em__register_optim_ops(void)
{
    static const struct {
        em_op_def def;
        int *id;
    } defs[] = {
        {{.struct_size = sizeof(em_op_def), .name = "sgd_step", .nin = 3, .nattrs = 7,
          .attrs = sgd_attrs, .flags = EM_OP_SAME_AS_INPUT, .infer = infer_sgd,
          .composite = composite_sgd, .updates = 1u << 2},
         &em__op_sgd_step},
        {{.struct_size = sizeof(em_op_def), .name = "adam_step", .nin = 5, .nattrs = 9,
          .attrs = adam_attrs, .flags = EM_OP_SAME_AS_INPUT, .infer = infer_adam,
          .composite = composite_adam, .updates = 1u << 2 | 1u << 3 | 1u << 4},
         &em__op_adam_step},
        {{.struct_size = sizeof(em_op_def), .name = "rmsprop_step", .nin = 5, .nattrs = 7,
          .attrs = rmsprop_attrs, .flags = EM_OP_SAME_AS_INPUT, .infer = infer_rmsprop,
          .composite = composite_rmsprop, .updates = 1u << 2 | 1u << 3 | 1u << 4},
         &em__op_rmsprop_step},
    };
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++)
        if ((*defs[i].id = em_register_op(NULL, &defs[i].def)) < 0)
            return *defs[i].id;
    return EM_OK;
}

/* ---- the public wrappers ---------------------------------------------------------------- */

/* Runs op `id` with the parameter as its destination. Missing state is the parameter itself
 * (unused, see the top of this file); `need` says which state the attributes use. */
static em_tensor *update(int id, int nin, em_tensor **in, const bool *need, const em_attr *a)
{
    const char *name = em_op_name(id);
    for (int i = 0; i < nin; i++) {
        if (in[i])
            continue;
        if (i < 2 || need[i]) {
            em_set_error(EM_ERR_INVALID, "%s: input %d is NULL but the update needs it", name, i);
            return NULL;
        }
        in[i] = in[0];
    }
    if (em__grad_mode())
        for (int i = 0; i < nin; i++)
            if (in[i]->requires_grad) {
                em_set_error(EM_ERR_INVALID, "%s: input %d requires grad; an optimizer update "
                                             "runs with grad mode off",
                             name, i);
                return NULL;
            }
    if (check_update(name, nin, in) < 0)
        return NULL;
    /* A kernel writes each state tensor through its own buffer: none may share memory with
     * another input (a fused pass would read values already overwritten). */
    for (int i = 2; i < nin; i++)
        for (int k = 0; k < nin && in[i] != in[0]; k++)
            if (k != i && in[k]->storage == in[i]->storage) {
                em_set_error(EM_ERR_INVALID, "%s: input %d shares memory with input %d", name,
                             i, k);
                return NULL;
            }
    if (!em__step_defer(id, nin, in, a))
        return em__dispatch(id, nin, in, a, in[0]);
    em_retain(in[0]);   /* the result, as the dispatcher's in-place form returns it */
    return in[0];
}

static em_tensor *sgd_step_(em_tensor *param, em_tensor *grad, em_tensor *momentum_buffer,
                            double lr, double momentum, double dampening, double weight_decay,
                            bool nesterov, bool maximize, bool first_step)
{
    em_attr a[7];
    memset(a, 0, sizeof a);
    a[0].f = lr, a[1].f = momentum, a[2].f = dampening, a[3].f = weight_decay;
    a[4].i = nesterov, a[5].i = maximize, a[6].i = first_step;
    em_tensor *in[3] = {param, grad, momentum_buffer};
    bool need[3] = {true, true, momentum != 0};
    return update(em__op_sgd_step, 3, in, need, a);
}

em_tensor *em_sgd_step_(em_tensor *param, em_tensor *grad, em_tensor *momentum_buffer,
                        double lr, double momentum, double dampening, double weight_decay,
                        bool nesterov, bool maximize, bool first_step)
{
    EM_WRAP(sgd_step_(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay,
                      nesterov, maximize, first_step));
}

static em_tensor *adam_step_(em_tensor *param, em_tensor *grad, em_tensor *exp_avg,
                             em_tensor *exp_avg_sq, em_tensor *max_exp_avg_sq, double lr,
                             double beta1, double beta2, double eps, double weight_decay,
                             int64_t step, bool amsgrad, bool maximize, bool decoupled)
{
    if (step < 1) {
        em_set_error(EM_ERR_INVALID, "adam_step: step must be 1 or more, got %lld",
                     (long long)step);
        return NULL;
    }
    em_attr a[9];
    memset(a, 0, sizeof a);
    a[0].f = lr, a[1].f = beta1, a[2].f = beta2, a[3].f = eps, a[4].f = weight_decay;
    a[5].i = amsgrad, a[6].i = maximize, a[7].i = decoupled, a[8].i = step;
    em_tensor *in[5] = {param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq};
    bool need[5] = {true, true, true, true, amsgrad};
    return update(em__op_adam_step, 5, in, need, a);
}

em_tensor *em_adam_step_(em_tensor *param, em_tensor *grad, em_tensor *exp_avg,
                         em_tensor *exp_avg_sq, em_tensor *max_exp_avg_sq, double lr,
                         double beta1, double beta2, double eps, double weight_decay,
                         int64_t step, bool amsgrad, bool maximize, bool decoupled)
{
    EM_WRAP(adam_step_(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps,
                       weight_decay, step, amsgrad, maximize, decoupled));
}

static em_tensor *rmsprop_step_(em_tensor *param, em_tensor *grad, em_tensor *square_avg,
                                em_tensor *momentum_buffer, em_tensor *grad_avg, double lr,
                                double alpha, double eps, double weight_decay, double momentum,
                                bool centered, bool maximize)
{
    em_attr a[7];
    memset(a, 0, sizeof a);
    a[0].f = lr, a[1].f = alpha, a[2].f = eps, a[3].f = weight_decay, a[4].f = momentum;
    a[5].i = centered, a[6].i = maximize;
    em_tensor *in[5] = {param, grad, square_avg, momentum_buffer, grad_avg};
    bool need[5] = {true, true, true, momentum > 0, centered};
    return update(em__op_rmsprop_step, 5, in, need, a);
}

em_tensor *em_rmsprop_step_(em_tensor *param, em_tensor *grad, em_tensor *square_avg,
                            em_tensor *momentum_buffer, em_tensor *grad_avg, double lr,
                            double alpha, double eps, double weight_decay, double momentum,
                            bool centered, bool maximize)
{
    EM_WRAP(rmsprop_step_(param, grad, square_avg, momentum_buffer, grad_avg, lr, alpha, eps,
                          weight_decay, momentum, centered, maximize));
}
