/* backends/cuda/rows.c - the fused row kernels of backend "cuda" (device code in rows.cu):
 * softmax and log_softmax, cross_entropy and cross_entropy_backward. The core has composites
 * for all four; on cuda each is one or two launches instead of five to ten, with no
 * temporaries beyond a few bytes of scratch from the caching allocator.
 */
#include "cuda.h"
#include "kcall.h"

/* ---- fused softmax, log_softmax -------------------------------------------------------------- */

/* The core's softmax and log_softmax are composites (amax, sub, exp, sum, div/log: five
 * launches and four temporaries); on cuda they are one kernel each. Their backward formulas
 * (SoftmaxBackward0, LogSoftmaxBackward0) are the core's, so autograd is unchanged. */
static int run_softmax(void *bctx, const em_kcall *c, int log_softmax)
{
    const char *name = log_softmax ? "log_softmax" : "softmax";
    void *st = kcall_stream(c, name, 1, 1, 1);
    if (!st)
        return em_last_status();
    const em_ktensor *in = &c->in[0];
    int64_t rows = 0, len = 0, inner = 0;
    int rc = em_kt_rows(in, c->attrs[0].i, "cuda", name, &rows, &len, &inner);
    if (rc != EM_OK || rows == 0)
        return rc;
    em_cuda_arg a, out;
    to_arg(&a, in);
    to_arg(&out, &c->out[0]);
    return launched(em_cuda__softmax(st, log_softmax, rows, len, inner, &a, &out), name,
                    in->dtype);
}

EM_KERNEL_BIND(k_softmax, run_softmax, 0)
EM_KERNEL_BIND(k_log_softmax, run_softmax, 1)

/* ---- cross entropy ---------------------------------------------------------------------------- */

/* Scratch from the device's pool, released as soon as the launches are enqueued: the pool
 * hands it out again only to work that runs after them on the same stream. */
static int run_cross_entropy(void *bctx, const em_kcall *c, bool backward)
{
    const char *name = backward ? "cross_entropy_backward" : "cross_entropy";
    void *st = kcall_stream(c, name, backward ? 4 : 3, 1, 2);
    if (!st)
        return em_last_status();
    const em_ktensor *x = &c->in[0];
    int red = (int)c->attrs[1].i;
    if (x->ndim != 2 || red < EM_CUDA_RED_NONE || red > EM_CUDA_RED_SUM)
        return em_set_error(EM_ERR_INVALID, "cuda: %s: expected (N, C) logits and a reduction, "
                            "got %d dims and reduction %d", name, x->ndim, red);
    int64_t n = x->shape[0], nc = x->shape[1];
    size_t bytes = em_cuda__cross_entropy_scratch(n, red, backward);
    void *scratch = bytes ? em_cuda__alloc(bctx, c->device, bytes) : NULL;
    if (bytes && !scratch)
        return em_last_status();
    em_cuda_arg ax, at, aw, ag, out;
    to_arg(&ax, x);
    to_arg(&at, &c->in[1]);
    to_arg(&aw, &c->in[2]);
    to_arg(&out, &c->out[0]);
    int64_t ignore = c->attrs[0].i;
    int rc;
    if (backward) {
        to_arg(&ag, &c->in[3]);
        rc = em_cuda__cross_entropy_backward(st, red, ignore, n, nc, &ax, &at, &aw, &ag, &out,
                                             scratch);
    } else {
        rc = em_cuda__cross_entropy(st, red, ignore, n, nc, &ax, &at, &aw, &out, scratch);
    }
    if (scratch)
        em_cuda__free(bctx, c->device, scratch, bytes);
    return launched(rc, name, x->dtype);
}

EM_KERNEL_BIND(k_cross_entropy, run_cross_entropy, false)
EM_KERNEL_BIND(k_cross_entropy_backward, run_cross_entropy, true)

int em_cuda__register_rows(em_registry *reg)
{
    static const em_kernel_decl table[] = {
        {"softmax", k_softmax, 0, EM_DTYPES_FLOAT},
        {"log_softmax", k_log_softmax, 0, EM_DTYPES_FLOAT},
        {"cross_entropy", k_cross_entropy, 0, EM_DTYPES_FLOAT},
        {"cross_entropy_backward", k_cross_entropy_backward, 0, EM_DTYPES_FLOAT},
    };
    return em_register_kernels(reg, "cuda", table, sizeof table / sizeof table[0]);
}
