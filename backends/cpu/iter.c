/* backends/cpu/iter.c - the strided elementwise iterator every elementwise kernel runs on.
 *
 * It turns (output, inputs...) of one shape into the fewest nested loops: size-1 dims go,
 * dims contiguous with their neighbour in every operand merge, and what is left is walked
 * in output order with an index counter, calling a typed inner loop over the innermost dim.
 * Broadcast inputs keep stride 0, so nothing is ever materialised. Not a TensorIterator: no
 * dim reordering for strided outputs, no type promotion (the core did that).
 */
#include <string.h>

#include "cpu.h"

/* Aligns input `k` to the output's dims: stride 0 where the input has size 1 or no dim. */
static int align_operand(em_cpu_iter *it, int k, const em_ktensor *out, const em_ktensor *t,
                         const char *op)
{
    int lead = out->ndim - t->ndim;
    for (int j = 0; j < t->ndim && lead < 0; j++)          /* extra leading dims of size 1 */
        if (j < -lead && t->shape[j] != 1)
            goto bad;
    for (int d = 0; d < out->ndim; d++) {
        int j = d - lead;
        if (j < 0 || t->shape[j] == 1)
            it->strides[k][d] = 0;
        else if (t->shape[j] == out->shape[d])
            it->strides[k][d] = t->strides[j];
        else
            goto bad;
    }
    return EM_OK;
bad:
    return em_set_error(EM_ERR_INVALID, "cpu: %s: operand %d does not broadcast to the output",
                        op, k);
}

_Static_assert(EM_CPU_MAX_OPS <= EM_STRIDED_MAX_OPS, "em_strided holds every operand");

int em_cpu__iter_init(em_cpu_iter *it, const char *op, int nops, const em_ktensor *const *ts)
{
    const em_ktensor *out = ts[0];
    if (nops > EM_CPU_MAX_OPS || out->ndim > EM_MAX_DIMS)
        return em_set_error(EM_ERR_INVALID, "cpu: %s: too many operands or dims", op);
    it->nops = nops;
    const int64_t *strides[EM_CPU_MAX_OPS];
    for (int k = 0; k < nops; k++) {
        it->base[k] = em_cpu__data(ts[k]);
        it->elsize[k] = em_dtype_size(ts[k]->dtype);
        if (k == 0) {
            for (int d = 0; d < out->ndim; d++)
                it->strides[0][d] = out->strides[d];
        } else if (align_operand(it, k, out, ts[k], op) != EM_OK) {
            return EM_ERR_INVALID;
        }
        strides[k] = it->strides[k];
    }
    /* Drop size-1 dims and merge dims contiguous with each other in every operand. */
    em_strided m;
    int rc = em_strided_init(&m, out->ndim, out->shape, nops, strides);
    if (rc < 0)
        return rc;
    it->ndim = m.ndim;
    it->numel = m.numel;
    memcpy(it->shape, m.shape, sizeof it->shape);
    for (int k = 0; k < nops; k++)
        memcpy(it->strides[k], m.strides[k], sizeof it->strides[k]);
    return EM_OK;
}

typedef struct iter_task {
    const em_cpu_iter *it;
    em_cpu_loop_fn fn;
    const void *fctx;
} iter_task;

/* Runs the elements [begin, end) of the output's row-major order. */
static void iter_range(void *arg, int64_t begin, int64_t end)
{
    const iter_task *t = arg;
    const em_cpu_iter *it = t->it;
    int nd = it->ndim, nops = it->nops;
    int64_t inner = it->shape[nd - 1];
    int64_t idx[EM_MAX_DIMS];
    int64_t istride[EM_CPU_MAX_OPS];
    char *ptr[EM_CPU_MAX_OPS];

    int64_t rem = begin;
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = rem % it->shape[d];
        rem /= it->shape[d];
    }
    for (int k = 0; k < nops; k++) {
        int64_t off = 0;
        for (int d = 0; d < nd; d++)
            off += idx[d] * it->strides[k][d];
        ptr[k] = it->base[k] + off * (int64_t)it->elsize[k];
        istride[k] = it->strides[k][nd - 1];
    }

    int64_t pos = begin;
    for (;;) {
        int64_t n = inner - idx[nd - 1];
        if (n > end - pos)
            n = end - pos;
        t->fn(t->fctx, ptr, istride, n);
        pos += n;
        if (pos >= end)
            return;
        /* The inner run reached the end of its row: rewind it and carry outward. */
        for (int k = 0; k < nops; k++)
            ptr[k] += (n - inner) * istride[k] * (int64_t)it->elsize[k];
        idx[nd - 1] = 0;
        for (int d = nd - 2; d >= 0; d--) {
            for (int k = 0; k < nops; k++)
                ptr[k] += it->strides[k][d] * (int64_t)it->elsize[k];
            if (++idx[d] < it->shape[d])
                break;
            for (int k = 0; k < nops; k++)
                ptr[k] -= it->shape[d] * it->strides[k][d] * (int64_t)it->elsize[k];
            idx[d] = 0;
        }
    }
}

void em_cpu__iter_run(const em_cpu_iter *it, int64_t grain, em_cpu_loop_fn fn,
                      const void *fctx)
{
    if (it->ndim == 1 && it->numel <= grain) {
        /* The common small case: one flat loop, nothing to decode. */
        int64_t s[EM_CPU_MAX_OPS];
        for (int k = 0; k < it->nops; k++)
            s[k] = it->strides[k][0];
        fn(fctx, it->base, s, it->numel);
        return;
    }
    iter_task t = {it, fn, fctx};
    em_cpu__parallel_for(it->numel, grain, iter_range, &t);
}

int em_cpu__iter_each(const char *op, int nops, const em_ktensor *const *ts, int64_t grain,
                      em_cpu_loop_fn fn, const void *fctx)
{
    em_cpu_iter it;
    int rc = em_cpu__iter_init(&it, op, nops, ts);
    if (rc == EM_OK)
        em_cpu__iter_run(&it, grain, fn, fctx);
    return rc;
}
