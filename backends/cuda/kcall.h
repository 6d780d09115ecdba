/* backends/cuda/kcall.h - unpacking an em_kcall for the launchers of kernels.h: shapes and
 * operands, argument-count checks, the device's stream, and a launcher's status as an Ember
 * error. Static inline: shared by ops.c and rows.c, private to backends/cuda/.
 */
#ifndef EMBER_BACKENDS_CUDA_KCALL_H
#define EMBER_BACKENDS_CUDA_KCALL_H

#include <string.h>

#include "cuda.h"

/* ---- unpacking ------------------------------------------------------------------------------ */

static inline void to_shape(em_cu_shape *s, const em_ktensor *t)
{
    memset(s, 0, sizeof *s);
    s->ndim = t->ndim;
    s->numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        s->shape[d] = t->shape[d];
        s->numel *= t->shape[d];
    }
}

static inline void to_arg(em_cu_arg *a, const em_ktensor *t)
{
    memset(a, 0, sizeof *a);
    a->buf = t->buf;
    a->offset = t->offset;
    a->dtype = (int)t->dtype;
    for (int d = 0; d < t->ndim && d < EM_CU_MAX_DIMS; d++)
        a->strides[d] = t->strides[d];
}

static inline int check(const em_kcall *c, const char *op, int nin, int nout, int nattrs)
{
    if (c->nin != nin || c->nout != nout || c->nattrs < nattrs)
        return em_set_error(EM_ERR_INVALID, "cuda: %s: expected %d inputs, %d outputs and %d "
                            "attributes, got %d, %d and %d", op, nin, nout, nattrs, c->nin,
                            c->nout, c->nattrs);
    for (int i = 0; i < nin; i++)
        if (c->in[i].ndim > EM_CU_MAX_DIMS)
            return em_set_error(EM_ERR_UNSUPPORTED, "cuda: %s: more than %d dims", op,
                                EM_CU_MAX_DIMS);
    return EM_OK;
}

/* The stream of the call's device, or NULL with the error set. */
static inline void *stream_of(const em_kcall *c, const char *op)
{
    em_cuda_device *d = em_cuda__device(c->device, op);
    return d ? d->stream : NULL;
}

static inline int launched(int rc, const char *op, em_dtype dt)
{
    if (rc == 0)
        return EM_OK;
    if (rc == EM_CU_UNSUPPORTED)
        return em_set_error(EM_ERR_UNSUPPORTED, "cuda: %s: no kernel for %s", op,
                            em_dtype_name(dt));
    return em_cuda__fail(op, "kernel launch", rc);
}

#endif
