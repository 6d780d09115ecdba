/* core/composite.c - ops written in other ops: mean, softmax, log_softmax, linear.
 *
 * They run on every backend that has the primitives, and are differentiable through them.
 * A backend may register a fused kernel under the same op name; the dispatcher prefers it.
 */
#include "internal.h"

/* mean = sum / count over attrs[0].ints. float16 and bfloat16 inputs are summed and divided
 * in float32 (the count itself overflows float16 above 65504 elements, and so may the sum),
 * then rounded once, as PyTorch's accumulate type does. */
em_tensor *em__composite_mean(int nin, em_tensor *const *in, const em_attr *attrs)
{
    em_tensor *a = in[0];
    int dims[EM_MAX_DIMS];
    int64_t count = 1;
    for (int i = 0; i < attrs[0].n; i++) {
        dims[i] = (int)attrs[0].ints[i];
        count *= a->shape[dims[i]];
    }
    bool narrow = a->dtype == EM_F16 || a->dtype == EM_BF16;
    em_tensor *wide = narrow ? em_to_dtype(a, EM_F32) : NULL;
    em_tensor *s = em_sum(wide ? wide : a, attrs[0].n, dims, attrs[1].i != 0);
    /* count == 0 gives nan, as in PyTorch */
    em_tensor *r = em_div_scalar(s, (double)count);
    em_tensor *out = narrow ? em_to_dtype(r, a->dtype) : r;
    if (narrow)
        em_release(r);
    em_release(s);
    em_release(wide);
    return out;
}

/* The shared start of softmax and log_softmax along dim: z = x - max(x) (so exp(z) <= 1 and
 * never overflows), e = exp(z) and s = sum(e). Integer inputs compute in the default float. */
typedef struct shifted {
    em_tensor *z, *e, *s;
} shifted;

static shifted shift_exp_sum(em_tensor *x, int dim)
{
    shifted r = {0};
    em_tensor *xf = em_dtype_is_float(x->dtype) ? NULL : em_to_dtype(x, em__default_float());
    em_tensor *m = em_amax(xf ? xf : x, 1, &dim, true);
    r.z = em_sub(xf ? xf : x, m);
    r.e = em_exp(r.z);
    r.s = em_sum(r.e, 1, &dim, true);
    em_release(xf);
    em_release(m);
    return r;
}

static void shifted_release(shifted *r)
{
    em_release(r->z);
    em_release(r->e);
    em_release(r->s);
}

/* softmax(x) = exp(x - max) / sum(exp(x - max)) along dim. */
em_tensor *em__composite_softmax(int nin, em_tensor *const *in, const em_attr *attrs)
{
    shifted sh = shift_exp_sum(in[0], (int)attrs[0].i);
    em_tensor *r = em_div(sh.e, sh.s);
    shifted_release(&sh);
    return r;
}

/* log_softmax(x) = (x - max) - log(sum(exp(x - max))): log-sum-exp, never log(0) for finite x. */
em_tensor *em__composite_log_softmax(int nin, em_tensor *const *in, const em_attr *attrs)
{
    shifted sh = shift_exp_sum(in[0], (int)attrs[0].i);
    em_tensor *l = em_log(sh.s);
    em_tensor *r = em_sub(sh.z, l);
    em_release(l);
    shifted_release(&sh);
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
