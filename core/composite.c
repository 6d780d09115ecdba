/* core/composite.c - ops written in other ops: mean, softmax, log_softmax, linear.
 *
 * They run on every backend that has the primitives, and are differentiable through them.
 * A backend may register a fused kernel under the same op name; the dispatcher prefers it.
 */
#include "internal.h"

/* mean = sum / count over attrs[0].ints. */
em_tensor *em__composite_mean(int nin, em_tensor *const *in, const em_attr *attrs)
{
    em_tensor *a = in[0];
    int dims[EM_MAX_DIMS];
    int64_t count = 1;
    for (int i = 0; i < attrs[0].n; i++) {
        dims[i] = (int)attrs[0].ints[i];
        count *= a->shape[dims[i]];
    }
    em_tensor *s = em_sum(a, attrs[0].n, dims, attrs[1].i != 0);
    /* count == 0 gives nan, as in PyTorch */
    em_tensor *r = em_div_scalar(s, (double)count);
    em_release(s);
    return r;
}

/* softmax(x) = exp(x - max) / sum(exp(x - max)) along dim; the shift keeps exp finite. */
em_tensor *em__composite_softmax(int nin, em_tensor *const *in, const em_attr *attrs)
{
    int dim = (int)attrs[0].i;
    em_tensor *x = in[0], *xf = NULL;
    if (!em_dtype_is_float(x->dtype))
        x = xf = em_to_dtype(x, em__default_float());
    em_tensor *m = em_amax(x, 1, &dim, true);
    em_tensor *z = em_sub(x, m);
    em_tensor *e = em_exp(z);
    em_tensor *s = em_sum(e, 1, &dim, true);
    em_tensor *r = em_div(e, s);
    em_release(xf);
    em_release(m);
    em_release(z);
    em_release(e);
    em_release(s);
    return r;
}

/* log_softmax(x) = (x - max) - log(sum(exp(x - max))): log-sum-exp, never log(0) for finite x. */
em_tensor *em__composite_log_softmax(int nin, em_tensor *const *in, const em_attr *attrs)
{
    int dim = (int)attrs[0].i;
    em_tensor *x = in[0], *xf = NULL;
    if (!em_dtype_is_float(x->dtype))
        x = xf = em_to_dtype(x, em__default_float());
    em_tensor *m = em_amax(x, 1, &dim, true);
    em_tensor *z = em_sub(x, m);
    em_tensor *e = em_exp(z);
    em_tensor *s = em_sum(e, 1, &dim, true);
    em_tensor *l = em_log(s);
    em_tensor *r = em_sub(z, l);
    em_release(xf);
    em_release(m);
    em_release(z);
    em_release(e);
    em_release(s);
    em_release(l);
    return r;
}

/* linear(x, w, b) = x @ w^T + b; x (*, in), w (out, in), b (out). */
em_tensor *em__composite_linear(int nin, em_tensor *const *in, const em_attr *attrs)
{
    em_tensor *wt = em_t(in[1]);
    em_tensor *y = em_matmul(in[0], wt);
    em_tensor *r = em_add(y, in[2]);
    em_release(wt);
    em_release(y);
    return r;
}
