/* plugins/nn/gelu.c - the ops "gelu" and "gelu_backward": exact GELU, x * Phi(x).
 *
 *   gelu(x)             = x * Phi(x),  Phi(x) = erfc(-x / sqrt(2)) / 2 (the normal CDF)
 *   gelu_backward(g, x) = g * (Phi(x) + x * phi(x)),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
 *
 * PyTorch's default GELU (approximate='none') is this exact form, and the core has no erf
 * primitive, so both ops carry a CPU kernel (libm's erfc, computed in double) for f32, f64, f16
 * and bf16. Other backends get a composite written in primitives, erfc by the rational
 * Chebyshev fit of Numerical Recipes (erfcc, fractional error below 1.2e-7 everywhere): as
 * exact as float32 can hold, but not float64-exact; a backend can register a kernel under
 * these names to replace it. The tanh approximation is not used here (GELU's
 * approximate="tanh" is built from tanh in activations.c).
 */
#include <math.h>

#include "nn.h"

/* ---- CPU kernels ------------------------------------------------------------------------- */

static double cdf(double x) { return 0.5 * erfc(-x * 0.70710678118654752440); }

static double gelu_d(double x) { return x * cdf(x); }

static double gelu_grad_d(double x)
{
    return cdf(x) + x * exp(-0.5 * x * x) * 0.39894228040143267794;
}

/* Element i of a contiguous float tensor as double, and back. */
static double ld(const em_ktensor *t, int64_t i)
{
    switch (t->dtype) {
    case EM_F32: return ((const float *)t->buf)[t->offset + i];
    case EM_F64: return ((const double *)t->buf)[t->offset + i];
    case EM_F16: return em_f16_to_f32(((const uint16_t *)t->buf)[t->offset + i]);
    case EM_BF16: return em_bf16_to_f32(((const uint16_t *)t->buf)[t->offset + i]);
    default: return NAN;
    }
}

static void st(const em_ktensor *t, int64_t i, double v)
{
    switch (t->dtype) {
    case EM_F32: ((float *)t->buf)[t->offset + i] = (float)v; break;
    case EM_F64: ((double *)t->buf)[t->offset + i] = v; break;
    case EM_F16: ((uint16_t *)t->buf)[t->offset + i] = em_f32_to_f16((float)v); break;
    case EM_BF16: ((uint16_t *)t->buf)[t->offset + i] = em_f32_to_bf16((float)v); break;
    default: break;
    }
}

static int check_call(const em_kcall *c, const char *op, int nin)
{
    if (c->nin != nin || c->nout != 1)
        return em_set_error(EM_ERR_INTERNAL, "nn: %s kernel called with %d inputs", op, c->nin);
    for (int i = 0; i < nin; i++)
        if (c->in[i].numel != c->out[0].numel || c->in[i].dtype != c->out[0].dtype ||
            !em_dtype_is_float(c->in[i].dtype))
            return em_set_error(EM_ERR_INVALID, "%s: inputs must be float tensors of one shape "
                                                "and dtype",
                                op);
    return EM_OK;
}

static int k_gelu(void *bctx, const em_kcall *c)
{
    (void)bctx;
    int rc = check_call(c, "gelu", 1);
    if (rc < 0)
        return rc;
    const em_ktensor *x = &c->in[0], *y = &c->out[0];
    if (x->dtype == EM_F32) {   /* the common case, without the per-element switch */
        const float *xp = (const float *)x->buf + x->offset;
        float *yp = (float *)y->buf + y->offset;
        for (int64_t i = 0; i < x->numel; i++)
            yp[i] = (float)gelu_d(xp[i]);
        return EM_OK;
    }
    for (int64_t i = 0; i < x->numel; i++)
        st(y, i, gelu_d(ld(x, i)));
    return EM_OK;
}

/* in: grad, x */
static int k_gelu_backward(void *bctx, const em_kcall *c)
{
    (void)bctx;
    int rc = check_call(c, "gelu_backward", 2);
    if (rc < 0)
        return rc;
    const em_ktensor *g = &c->in[0], *x = &c->in[1], *y = &c->out[0];
    for (int64_t i = 0; i < x->numel; i++)
        st(y, i, ld(g, i) * gelu_grad_d(ld(x, i)));
    return EM_OK;
}

/* ---- composites (backends without a kernel) ------------------------------------------------ */

/* Replaces *var by the result of an op on it (releasing the old value); NULL propagates. */
static void step(em_tensor **var, em_tensor *next)
{
    em_release(*var);
    *var = next;
}

/* Phi(x) = erfc(u) / 2 with u = -x / sqrt(2), erfc by Numerical Recipes' erfcc:
 * t = 1 / (1 + z/2), z = |u|; erfc(z) = t exp(-z^2 + P(t)); erfc(u) = 2 - erfc(|u|) for u < 0. */
static em_tensor *cdf_ops(em_tensor *x)
{
    static const double c[10] = {-1.26551223, 1.00002368,  0.37409196, 0.09678418,
                                 -0.18628806, 0.27886807,  -1.13520398, 1.48851587,
                                 -0.82215223, 0.17087277};
    em_opts o = {.dtype = em_dtype_of(x), .device = em_device_of(x)};
    em_tensor *u = em_mul_scalar(x, -0.70710678118654752440);
    em_tensor *z = em_abs(u);
    em_tensor *t = em_mul_scalar(z, 0.5);
    step(&t, em_add_scalar(t, 1.0));
    step(&t, em_pow_scalar(t, -1.0));
    em_tensor *p = em_mul_scalar(t, c[9]);
    for (int k = 8; k >= 1; k--) {
        step(&p, em_add_scalar(p, c[k]));
        step(&p, em_mul(p, t));
    }
    step(&p, em_add_scalar(p, c[0]));
    em_tensor *z2 = em_mul(z, z);
    step(&p, em_sub(p, z2));
    step(&p, em_exp(p));
    step(&p, em_mul(p, t));                       /* erfc(|u|) */
    em_tensor *two_m = em_neg(p);
    step(&two_m, em_add_scalar(two_m, 2.0));      /* 2 - erfc(|u|) */
    em_tensor *zero = em_scalar(0.0, &o);
    em_tensor *pos = em_ge(u, zero);
    em_tensor *e = em_where(pos, p, two_m);
    step(&e, em_mul_scalar(e, 0.5));
    em_release(u);
    em_release(z);
    em_release(t);
    em_release(p);
    em_release(z2);
    em_release(two_m);
    em_release(zero);
    em_release(pos);
    return e;
}

static em_tensor *c_gelu(int nin, em_tensor *const *in, const em_attr *attrs)
{
    (void)nin;
    (void)attrs;
    em_tensor *phi = cdf_ops(in[0]);
    em_tensor *r = em_mul(in[0], phi);
    em_release(phi);
    return r;
}

static em_tensor *c_gelu_backward(int nin, em_tensor *const *in, const em_attr *attrs)
{
    (void)nin;
    (void)attrs;
    em_tensor *x = in[1];
    em_tensor *d = cdf_ops(x);
    em_tensor *x2 = em_mul(x, x);
    step(&x2, em_mul_scalar(x2, -0.5));
    step(&x2, em_exp(x2));
    step(&x2, em_mul_scalar(x2, 0.39894228040143267794));   /* phi(x) */
    step(&x2, em_mul(x2, x));
    step(&d, em_add(d, x2));
    em_tensor *r = em_mul(in[0], d);
    em_release(d);
    em_release(x2);
    return r;
}

/* ---- backward (written in ops: the gelu_backward op) ----------------------------------------- */

static int b_gelu(int nin, em_tensor *const *inputs, em_tensor *output, const em_attr *attrs,
                  em_tensor *grad, em_tensor **grad_inputs)
{
    (void)nin;
    (void)output;
    (void)attrs;
    em_tensor *args[2] = {grad, inputs[0]};
    grad_inputs[0] = em_op_call("gelu_backward", 2, args, 0, NULL);
    return grad_inputs[0] ? EM_OK : em_last_status();
}

int nn__register_gelu_ops(em_registry *reg)
{
    static const em_op_def gelu = {
        .struct_size = sizeof(em_op_def),
        .name = "gelu",
        .nin = 1,
        .flags = EM_OP_SAME_AS_INPUT | EM_OP_INT_TO_FLOAT | EM_OP_COMPOSITE_F32,
        .composite = c_gelu,
        .backward = b_gelu,
        .backward_name = "GeluBackward0",
    };
    static const em_op_def gelu_backward = {
        .struct_size = sizeof(em_op_def),
        .name = "gelu_backward",
        .nin = 2,
        .flags = EM_OP_SAME_AS_INPUT | EM_OP_PROMOTE | EM_OP_COMPOSITE_F32,
        .composite = c_gelu_backward,
    };
    int rc = em_register_op(reg, &gelu);
    if (rc >= 0)
        rc = em_register_op(reg, &gelu_backward);
    if (rc >= 0)
        rc = em_register_kernel(reg, "cpu", "gelu", k_gelu, 0, EM_DTYPES_FLOAT);
    if (rc >= 0)
        rc = em_register_kernel(reg, "cpu", "gelu_backward", k_gelu_backward, 0,
                                EM_DTYPES_FLOAT);
    return rc < 0 ? rc : EM_OK;
}
