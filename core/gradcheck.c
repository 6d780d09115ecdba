/* core/gradcheck.c - em_gradcheck: analytic gradients against central differences.
 *
 * As torch.autograd.gradcheck: for every input that requires grad (float64), the Jacobian
 * computed by backward (one vector-Jacobian product per output element) must match the
 * numerical one, (f(x + eps) - f(x - eps)) / 2 eps, within atol + rtol * |numerical|.
 * Inputs are perturbed in place (under no-grad) and restored exactly afterwards.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* f's output as host doubles; NULL with the error set. */
static double *eval(em_gradcheck_fn fn, void *ctx, int nin, em_tensor *const *in, int64_t *m)
{
    bool prev = em_set_grad_enabled(false);
    em_tensor *y = fn(nin, in, ctx);
    em_set_grad_enabled(prev);
    if (!y)
        return NULL;
    em_tensor *yd = em_to_dtype(y, EM_F64);
    double *v = yd ? malloc((size_t)(yd->numel ? yd->numel : 1) * sizeof *v) : NULL;
    if (v && em_copy_to_host(yd, v, (size_t)yd->numel * sizeof *v) < 0) {
        free(v);
        v = NULL;
    }
    *m = y->numel;
    em_release(yd);
    em_release(y);
    return v;
}

/* Writes host values into t (any layout, any device) without recording. */
static int store(em_tensor *t, const double *vals)
{
    em_opts o = {.dtype = t->dtype, .device = em__tensor_device(t)};
    em_tensor *src = em_tensor_from_data(vals, EM_F64, t->ndim, t->shape, &o);
    if (!src)
        return em_last_status();
    bool prev = em_set_grad_enabled(false);
    em_tensor *r = em_copy_(t, src);
    em_set_grad_enabled(prev);
    em_release(src);
    em_release(r);
    return r ? EM_OK : em_last_status();
}

static int check_inputs(int nin, em_tensor *const *in)
{
    int any = 0;
    for (int i = 0; i < nin; i++) {
        if (!in[i])
            return em__null_arg("gradcheck", "input");
        if (!in[i]->requires_grad)
            continue;
        any++;
        if (in[i]->dtype != EM_F64)
            return em_set_error(EM_ERR_INVALID,
                                "gradcheck: input %d is %s; inputs that require grad must be "
                                "float64 for the finite differences to be meaningful",
                                i, em_dtype_name(in[i]->dtype));
        if (!em_is_leaf(in[i]))
            return em_set_error(EM_ERR_INVALID, "gradcheck: input %d is not a leaf", i);
    }
    if (!any)
        return em_set_error(EM_ERR_INVALID, "gradcheck: no input requires grad");
    return EM_OK;
}

/* The analytic Jacobian of output w.r.t. input i, row-major [m][n_i]. */
static double **analytic(em_gradcheck_fn fn, void *ctx, int nin, em_tensor *const *in,
                         int64_t m)
{
    double **jac = calloc((size_t)nin, sizeof *jac);
    em_tensor *y = NULL, *onehot = NULL;
    if (!jac)
        goto fail;
    for (int i = 0; i < nin; i++)
        if (in[i]->requires_grad &&
            !(jac[i] = calloc((size_t)(m * in[i]->numel + 1), sizeof **jac)))
            goto fail;
    if (!(y = fn(nin, in, ctx)))
        goto fail;
    if (!y->requires_grad) {
        em_set_error(EM_ERR_INVALID, "gradcheck: the function's output does not require grad");
        goto fail;
    }
    double *oh = calloc((size_t)(m ? m : 1), sizeof *oh);
    if (!oh)
        goto fail;
    for (int64_t j = 0; j < m; j++) {
        for (int i = 0; i < nin; i++)
            em_grad_clear(in[i]);
        oh[j] = 1.0;
        onehot = em_tensor_from_data(oh, EM_F64, y->ndim, y->shape,
                                     &(em_opts){.dtype = y->dtype, .device = em__tensor_device(y)});
        oh[j] = 0.0;
        if (!onehot || em_backward(y, onehot, true) < 0) {
            free(oh);
            goto fail;
        }
        em_release(onehot);
        onehot = NULL;
        for (int i = 0; i < nin; i++) {
            em_tensor *g = in[i]->requires_grad ? em_grad(in[i]) : NULL;
            if (!g)
                continue;
            em_tensor *gd = em_to_dtype(g, EM_F64);
            int rc = gd ? em_copy_to_host(gd, jac[i] + j * in[i]->numel,
                                          (size_t)in[i]->numel * sizeof **jac)
                        : em_last_status();
            em_release(gd);
            if (rc < 0) {
                free(oh);
                goto fail;
            }
        }
    }
    free(oh);
    for (int i = 0; i < nin; i++)
        em_grad_clear(in[i]);
    em_release(y);
    return jac;
fail:
    em_release(onehot);
    em_release(y);
    for (int i = 0; jac && i < nin; i++)
        free(jac[i]);
    free(jac);
    return NULL;
}

static int gradcheck(em_gradcheck_fn fn, void *ctx, int nin, em_tensor *const *in, double eps,
                     double atol, double rtol)
{
    int rc = check_inputs(nin, in);
    if (rc < 0)
        return rc;
    int64_t m = 0;
    double *y0 = eval(fn, ctx, nin, in, &m);
    if (!y0)
        return em_last_status();
    free(y0);
    double **jac = analytic(fn, ctx, nin, in, m);
    if (!jac)
        return em_last_status();
    for (int i = 0; i < nin && rc == EM_OK; i++) {
        if (!in[i]->requires_grad)
            continue;
        int64_t n = in[i]->numel;
        double *x = malloc((size_t)(n ? n : 1) * sizeof *x);
        if (!x || em_copy_to_host(in[i], x, (size_t)n * sizeof *x) < 0) {
            free(x);
            rc = x ? em_last_status() : em_set_error(EM_ERR_NOMEM, "gradcheck: out of memory");
            break;
        }
        for (int64_t k = 0; k < n && rc == EM_OK; k++) {
            double orig = x[k];
            int64_t mm;
            x[k] = orig + eps;
            double *yp = store(in[i], x) == EM_OK ? eval(fn, ctx, nin, in, &mm) : NULL;
            x[k] = orig - eps;
            double *ym = yp && store(in[i], x) == EM_OK ? eval(fn, ctx, nin, in, &mm) : NULL;
            x[k] = orig;
            int rs = store(in[i], x);
            if (!yp || !ym || rs < 0) {
                rc = em_last_status() < 0 ? em_last_status() : EM_ERR_INTERNAL;
                free(yp);
                free(ym);
                break;
            }
            for (int64_t j = 0; j < m; j++) {
                double num = (yp[j] - ym[j]) / (2 * eps), ana = jac[i][j * n + k];
                if (!(fabs(num - ana) <= atol + rtol * fabs(num))) {
                    rc = em_set_error(EM_ERR_INVALID,
                                      "gradcheck: Jacobian mismatch for output element %lld "
                                      "with respect to input %d, element %lld: numerical %.10g, "
                                      "analytical %.10g (atol %g, rtol %g)",
                                      (long long)j, i, (long long)k, num, ana, atol, rtol);
                    break;
                }
            }
            free(yp);
            free(ym);
        }
        free(x);
    }
    for (int i = 0; i < nin; i++)
        free(jac[i]);
    free(jac);
    return rc;
}

int em_gradcheck(em_gradcheck_fn fn, void *ctx, int nin, em_tensor *const *inputs, double eps,
                 double atol, double rtol)
{
    if (!fn || (nin > 0 && !inputs))
        return em_set_error(EM_ERR_INVALID, "gradcheck: function or inputs missing");
    if (eps <= 0)
        eps = 1e-6;
    if (atol < 0)
        atol = 1e-5;
    if (rtol < 0)
        rtol = 1e-3;
    em__api_depth++;   /* temporaries never enter the caller's scope */
    int rc = gradcheck(fn, ctx, nin, inputs, eps, atol, rtol);
    em__api_depth--;
    return rc;
}
