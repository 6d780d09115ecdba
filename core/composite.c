/* core/composite.c - ops written in other ops: mean, softmax, log_softmax, linear,
 * cross_entropy and its backward.
 *
 * They run on every backend that has the primitives, and are differentiable through them.
 * A backend may register a fused kernel under the same op name; the dispatcher prefers it.
 */
#include "internal.h"

/* mean = sum / count over attrs[0].ints. float16 and bfloat16 inputs arrive widened to
 * float32 (EM_OP_COMPOSITE_F32: the count itself overflows float16 above 65504 elements, and
 * so may the sum) and the result is rounded once, as PyTorch's accumulate type does. */
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

/* linear_relu(x, w, b) = relu(x @ w^T + b): what a backend without a fused kernel runs. */
em_tensor *em__composite_linear_relu(int nin, em_tensor *const *in, const em_attr *attrs)
{
    em_tensor *y = em__composite_linear(nin, in, attrs);
    em_tensor *r = em_relu(y);
    em_release(y);
    return r;
}

/* ---- cross_entropy ---------------------------------------------------------------------------- */

/* Releases the n tensors of t (NULL-safe). */
static void release_all(em_tensor **t, int n)
{
    for (int i = 0; i < n; i++)
        em_release(t[i]);
}

/* What both cross-entropy composites start from (float16/bfloat16 arrive in float32,
 * EM_OP_COMPOSITE_F32): tz the targets with ignored ones set to 0 (so that they index safely)
 * and rw each sample's weight, weight[t] or 0 where ignored. */
typedef struct ce_parts {
    em_tensor *tz, *rw;
} ce_parts;

static bool ce_parts_make(em_tensor *const *in, int64_t ignore, ce_parts *p)
{
    em_tensor *t = in[1], *w = in[2];
    em_tensor *tmp[4] = {0};
    tmp[0] = em__wrapped_scalar(t, (double)ignore);
    tmp[1] = em_eq(t, tmp[0]);                            /* ignored */
    tmp[2] = em__wrapped_scalar(t, 0);
    p->tz = em_where(tmp[1], tmp[2], t);
    tmp[3] = p->tz ? em_gather(w, 0, p->tz) : NULL;
    em_release(tmp[2]);
    tmp[2] = em__wrapped_scalar(w, 0);
    p->rw = em_where(tmp[1], tmp[2], tmp[3]);
    release_all(tmp, 4);
    return p->tz && p->rw;
}

static void ce_parts_release(ce_parts *p)
{
    em_release(p->tz);
    em_release(p->rw);
}

/* loss_i = -rw_i log_softmax(x_i)[t_i]; mean divides the sum by sum(rw). */
em_tensor *em__composite_cross_entropy(int nin, em_tensor *const *in, const em_attr *attrs)
{
    if (em__check_cross_entropy("cross_entropy", nin, in, attrs) < 0)
        return NULL;
    ce_parts p;
    em_tensor *tmp[6] = {0}, *r = NULL;
    if (ce_parts_make(in, attrs[0].i, &p)) {
        tmp[0] = em_log_softmax(in[0], 1);
        tmp[1] = em_unsqueeze(p.tz, 1);
        tmp[2] = tmp[0] && tmp[1] ? em_gather(tmp[0], 1, tmp[1]) : NULL;
        tmp[3] = tmp[2] ? em_squeeze(tmp[2], 1) : NULL;
        tmp[4] = tmp[3] ? em_mul(tmp[3], p.rw) : NULL;
        em_tensor *l = tmp[4] ? em_neg(tmp[4]) : NULL;
        if (attrs[1].i == EM_REDUCTION_NONE || !l) {
            r = l;
        } else {
            tmp[5] = l;
            em_tensor *sum = em_sum_all(l);
            if (attrs[1].i == EM_REDUCTION_SUM || !sum) {
                r = sum;
            } else {
                em_tensor *wsum = em_sum_all(p.rw);
                r = wsum ? em_div(sum, wsum) : NULL;
                em_release(sum);
                em_release(wsum);
            }
        }
    }
    release_all(tmp, 6);
    ce_parts_release(&p);
    return r;
}

/* dx_i = s_i (softmax(x_i) - onehot(t_i)) with s_i = rw_i g_i (g_i = g for sum), over
 * sum(rw) for mean. */
em_tensor *em__composite_cross_entropy_backward(int nin, em_tensor *const *in,
                                                const em_attr *attrs)
{
    if (em__check_cross_entropy("cross_entropy_backward", nin, in, attrs) < 0)
        return NULL;
    ce_parts p;
    em_tensor *tmp[9] = {0}, *r = NULL;
    if (ce_parts_make(in, attrs[0].i, &p)) {
        em_opts oi = {.dtype = EM_I64, .device = em__tensor_device(in[0])};
        tmp[0] = em_softmax(in[0], 1);
        tmp[1] = em_arange(0, (double)in[0]->shape[1], 1, &oi);
        tmp[2] = em_unsqueeze(p.tz, 1);
        tmp[3] = tmp[1] && tmp[2] ? em_eq(tmp[1], tmp[2]) : NULL;     /* one-hot, bool */
        tmp[4] = tmp[0] && tmp[3] ? em_sub(tmp[0], tmp[3]) : NULL;
        tmp[6] = em_mul(p.rw, in[3]);
        if (attrs[1].i == EM_REDUCTION_MEAN && tmp[6]) {
            tmp[7] = em_sum_all(p.rw);
            em_tensor *s = tmp[7] ? em_div(tmp[6], tmp[7]) : NULL;
            em_release(tmp[6]);
            tmp[6] = s;
        }
        tmp[8] = tmp[6] ? em_unsqueeze(tmp[6], 1) : NULL;
        r = tmp[4] && tmp[8] ? em_mul(tmp[4], tmp[8]) : NULL;
    }
    release_all(tmp, 9);
    ce_parts_release(&p);
    return r;
}
