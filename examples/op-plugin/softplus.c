/* softplus.c - an out-of-tree op plugin: softplus(x, beta = 1, threshold = 20) as PyTorch
 * defines it, with a CPU kernel, a composite that runs on every backend, its backward, and
 * conformance cases that `ember conformance` picks up.
 *
 * What a plugin needs and nothing more: it includes <ember/plugin.h>, links libember only,
 * and exports `ember_plugin`. It is not a model of a fast kernel (the loop is plain C).
 *
 *   forward:  y = x                         where beta x > threshold
 *               = log(1 + exp(beta x)) / beta  elsewhere
 *   backward: dx = g                        where beta x > threshold
 *                = g sigmoid(beta x)          elsewhere
 */
#include <math.h>

#include <ember/ember.h>
#include <ember/plugin.h>

static const em_attr_decl softplus_attrs[] = {{"beta", EM_ATTR_FLOAT},
                                              {"threshold", EM_ATTR_FLOAT}};

/* ---- the CPU kernel: contiguous input and output, float32 and float64 ------------------- */

static int k_softplus(void *backend_ctx, const em_kcall *call)
{
    (void)backend_ctx;
    const em_ktensor *x = &call->in[0], *y = &call->out[0];
    double beta = call->attrs[0].f, threshold = call->attrs[1].f;
    if (x->dtype == EM_F32) {
        const float *xp = (const float *)x->buf + x->offset;
        float *yp = (float *)y->buf + y->offset;
        float b = (float)beta, t = (float)threshold;
        for (int64_t k = 0; k < y->numel; k++) {
            float bx = xp[k] * b;
            yp[k] = bx > t ? xp[k] : log1pf(expf(bx)) / b;
        }
        return EM_OK;
    }
    if (x->dtype == EM_F64) {
        const double *xp = (const double *)x->buf + x->offset;
        double *yp = (double *)y->buf + y->offset;
        for (int64_t k = 0; k < y->numel; k++) {
            double bx = xp[k] * beta;
            yp[k] = bx > threshold ? xp[k] : log1p(exp(bx)) / beta;
        }
        return EM_OK;
    }
    return em_set_error(EM_ERR_UNSUPPORTED, "softplus: the CPU kernel has no %s path",
                        em_dtype_name(x->dtype));
}

/* ---- the composite: every backend with the primitives runs it ----------------------------- */

/* where(beta x > threshold, x, (relu(beta x) + log(1 + exp(-|beta x|))) / beta): the same
 * function written so that exp never overflows (its argument is <= 0). The op's flag
 * EM_OP_COMPOSITE_F32 has the core hand float16 and bfloat16 inputs over in float32 and round
 * the result once, as PyTorch does: 1 + exp(..) rounded to float16 would lose most digits of
 * small results (the conformance cases catch that). Inside an op the core's scopes do not
 * track temporaries (em_scope_* is for application code): each one is released here. Every op
 * returns NULL after a NULL input, so one check at the end suffices. */
static em_tensor *softplus_composite(int nin, em_tensor *const *in, const em_attr *attrs)
{
    (void)nin;
    em_tensor *x = in[0];
    double beta = attrs[0].f, threshold = attrs[1].f;
    em_tensor *bx = em_mul_scalar(x, beta);               /* float even for integer x */
    em_tensor *abs_bx = em_abs(bx), *neg = em_neg(abs_bx), *e = em_exp(neg);
    em_tensor *e1 = em_add_scalar(e, 1.0), *l = em_log(e1), *pos = em_relu(bx);
    em_tensor *sum = em_add(pos, l), *soft = em_div_scalar(sum, beta);
    em_opts o = {.dtype = bx ? em_dtype_of(bx) : EM_F32, .device = em_device_of(x)};
    em_tensor *thr = em_scalar(threshold, &o), *above = em_gt(bx, thr);
    em_tensor *xf = soft ? em_to_dtype(x, em_dtype_of(soft)) : NULL;
    em_tensor *r = em_where(above, xf, soft);
    em_tensor *tmp[] = {bx, abs_bx, neg, e, e1, l, pos, sum, soft, thr, above, xf};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
        em_release(tmp[i]);
    return r;
}

/* ---- the backward: written in ops, so it runs on every backend too ------------------------ */

/* Gets the forward's input and output as they were, the attributes and the gradient of the
 * output; stores the gradient of x. Grad mode is off while it runs. */
static int softplus_backward(int nin, em_tensor *const *inputs, em_tensor *output,
                             const em_attr *attrs, em_tensor *grad, em_tensor **grad_inputs)
{
    (void)nin;
    (void)output;
    double beta = attrs[0].f, threshold = attrs[1].f;
    em_tensor *bx = em_mul_scalar(inputs[0], beta), *s = em_sigmoid(bx);
    em_opts o = {.dtype = bx ? em_dtype_of(bx) : EM_F32, .device = em_device_of(grad)};
    em_tensor *thr = em_scalar(threshold, &o), *above = em_gt(bx, thr);
    em_tensor *gs = em_mul(grad, s);
    grad_inputs[0] = em_where(above, grad, gs);
    em_tensor *tmp[] = {bx, s, thr, above, gs};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
        em_release(tmp[i]);
    return grad_inputs[0] ? EM_OK : em_last_status();
}

/* ---- conformance cases -------------------------------------------------------------------- */

static double softplus_reference(int nin, const double *x, const em_attr *attrs)
{
    (void)nin;
    double bx = x[0] * attrs[0].f;
    return bx > attrs[1].f ? x[0] : log1p(exp(bx)) / attrs[0].f;
}

static const em_attr defaults[2] = {{.f = 1.0}, {.f = 20.0}};
static const em_attr steep[2] = {{.f = 2.0}, {.f = 3.0}};

static int register_cases(em_registry *reg)
{
    struct {
        const char *label;
        int ndim;
        int64_t shape[2];
        double low, high;
        const em_attr *attrs;
    } rows[] = {
        {"[4, 5]", 2, {4, 5}, -6, 6, defaults},
        {"0-dim", 0, {0}, -3, 3, defaults},
        {"zero-size", 2, {0, 3}, -3, 3, defaults},
        {"large values", 1, {9}, 15, 30, defaults},
        {"beta 2, threshold 3", 2, {3, 7}, -3, 3, steep},
        {"large", 2, {64, 300}, -8, 8, defaults},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        em_conformance_case c = {
            .struct_size = sizeof c,
            .op = "softplus",
            .label = rows[i].label,
            .nin = 1,
            .nattrs = 2,
            .attrs = rows[i].attrs,
            .dtypes = EM_DTYPES_FLOAT,
            .flags = EM_CONF_DIFFERENTIABLE,
            .reference = softplus_reference,
        };
        c.in[0].ndim = rows[i].ndim;
        c.in[0].shape[0] = rows[i].shape[0];
        c.in[0].shape[1] = rows[i].shape[1];
        c.in[0].low = rows[i].low;
        c.in[0].high = rows[i].high;
        int rc = em_register_conformance_case(reg, &c);
        if (rc < 0)
            return rc;
    }
    return EM_OK;
}

/* ---- the plugin ------------------------------------------------------------------------------ */

static int softplus_init(em_registry *reg)
{
    em_op_def def = {
        .struct_size = sizeof def,
        .name = "softplus",
        .nin = 1,
        .nattrs = 2,
        .attrs = softplus_attrs,
        .flags = EM_OP_SAME_AS_INPUT | EM_OP_INT_TO_FLOAT | EM_OP_COMPOSITE_F32,
        .composite = softplus_composite,
        .backward = softplus_backward,   /* the node is named SoftplusBackward0 */
    };
    int rc = em_register_op(reg, &def);
    if (rc < 0)
        return rc;
    /* The CPU backend may load after this plugin (EMBER_PLUGIN_PATH is searched first): the
     * core then attaches the kernel once it has registered. */
    rc = em_register_kernel(reg, "cpu", "softplus", k_softplus, 0,
                            EM_DTYPE_BIT(EM_F32) | EM_DTYPE_BIT(EM_F64));
    if (rc < 0)
        return rc;
    return register_cases(reg);
}

EM_PLUGIN_DEFINE(
    "softplus", "0.1.0", "softplus(x, beta, threshold): CPU kernel, composite, backward",
    softplus_init, NULL)
