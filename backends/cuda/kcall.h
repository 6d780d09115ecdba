/* backends/cuda/kcall.h - unpacking an em_kcall for the launchers of kernels.h: shapes and
 * operands, the device's stream, and a launcher's status as an Ember error. Static inline:
 * shared by ops.c and rows.c, private to backends/cuda/.
 */
#ifndef EMBER_BACKENDS_CUDA_KCALL_H
#define EMBER_BACKENDS_CUDA_KCALL_H

#include <string.h>

#include "cuda.h"

/* ---- unpacking ------------------------------------------------------------------------------ */

static inline void to_shape(em_cuda_shape *s, const em_ktensor *t)
{
    memset(s, 0, sizeof *s);
    s->ndim = t->ndim;
    s->numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        s->shape[d] = t->shape[d];
        s->numel *= t->shape[d];
    }
}

static inline void to_arg(em_cuda_arg *a, const em_ktensor *t)
{
    memset(a, 0, sizeof *a);
    a->buf = t->buf;
    a->offset = t->offset;
    a->dtype = (int)t->dtype;
    for (int d = 0; d < t->ndim && d < EM_CUDA_MAX_DIMS; d++)
        a->strides[d] = t->strides[d];
}

/* A tensor has at most EM_MAX_DIMS dims and the launch structs hold as many, so no kernel
 * checks ndim. */
_Static_assert(EM_CUDA_MAX_DIMS == EM_MAX_DIMS, "em_cuda_shape holds every tensor's dims");

/* The stream of the call's device, or NULL with the error set. */
static inline void *stream_of(const em_kcall *c, const char *op)
{
    em_cuda_device *d = em_cuda__device(c->device, op);
    return d ? d->stream : NULL;
}

/* The stream of the call's device after em_kcall_check(c, "cuda", nin, nout, nattrs), or NULL
 * with the error set. */
static inline void *kcall_stream(const em_kcall *c, const char *op, int nin, int nout,
                                 int nattrs)
{
    return em_kcall_check(c, "cuda", nin, nout, nattrs) < 0 ? NULL : stream_of(c, op);
}

static inline int launched(int rc, const char *op, em_dtype dt)
{
    if (rc == 0)
        return EM_OK;
    if (rc == EM_CUDA_UNSUPPORTED)
        return em_set_error(EM_ERR_UNSUPPORTED, "cuda: %s: no kernel for %s", op,
                            em_dtype_name(dt));
    return em_cuda__fail(op, "kernel launch", rc);
}

#endif
