/* backends/opencl/matmul.c - batched matrix products: out[B..., M, N] = a[B..., M, K] @
 * b[B..., K, N] for every claimed dtype.
 *
 * One tiled kernel (sources.c, mm_tiled): a 16 x 16 work-group computes a 64 x 64 tile of the
 * output, each work-item a 4 x 4 block held in registers, staging 64 x 16 panels of a and b in
 * local memory. It reads a and b through their strides (transposed and broadcast views cost
 * no copy) and walks the batch, decoded from up to 6 batch dims, along the third grid
 * dimension. Products with a side under 16, and devices whose work-groups cannot hold 256
 * items, use mm_small: one work-item per output, k in order. f16/bf16 accumulate in f32 and
 * round once; integers accumulate in int64 with wrapping, bool is the `or` of `and`s, as on
 * the CPU backend.
 */
#include "opencl.h"

enum { K_MM_TILED, K_MM_SMALL };

static int k_matmul(void *bctx, const em_kcall *c)
{
    (void)bctx;
    int rc = em_ocl__check_call(c, "matmul", 2, 1, 0);
    if (rc != EM_OK)
        return rc;
    const em_ktensor *a = &c->in[0], *b = &c->in[1], *out = &c->out[0];
    em_dtype dt = a->dtype;
    int nd = out->ndim;
    if (b->dtype != dt || out->dtype != dt || em_ocl__elsize(dt) == 0 || nd < 2 ||
        a->ndim != nd || b->ndim != nd)
        return em_set_error(EM_ERR_INVALID, "opencl: matmul: expected [B..., M, K] @ [B..., K, "
                            "N] of one dtype with equal batch dims");
    int64_t M = out->shape[nd - 2], N = out->shape[nd - 1], K = a->shape[nd - 1];
    if (a->shape[nd - 2] != M || b->shape[nd - 2] != K || b->shape[nd - 1] != N)
        return em_set_error(EM_ERR_INVALID, "opencl: matmul: inner dims do not match");
    em_ocl_device *d = em_ocl__device(c->device, "matmul");
    if (!d)
        return em_last_status();

    /* Batch dims, coalesced over (out, a, b). */
    const int64_t *st[3] = {out->strides, a->strides, b->strides};
    em_ocl_iter it;
    em_ocl__iter_init(&it, nd - 2, out->shape, 3, st);
    cl_int nb = nd > 2 ? it.ndim : 0;
    cl_mem cm = out->buf, am = a->buf, bm = b->buf;
    cl_long co = out->offset, ao = a->offset, bo = b->offset, cM = M, cN = N, cK = K;
    cl_long ars = a->strides[nd - 2], acs = a->strides[nd - 1];
    cl_long brs = b->strides[nd - 2], bcs = b->strides[nd - 1];
    int64_t nbatch = it.numel;
    bool tiled = d->max_wg >= 256 && M >= 16 && N >= 16;
    if (tiled) {
        size_t wg = 0;
        pthread_mutex_lock(&d->lock);
        cl_kernel k = em_ocl__kernel(d, EM_OCL_MATMUL, dt, EM_DTYPE_UNSPEC, K_MM_TILED,
                                     "mm_tiled", &wg);
        pthread_mutex_unlock(&d->lock);
        if (!k)
            return em_last_status();
        tiled = wg >= 256;
    }
    if (tiled) {
        size_t global[3] = {(size_t)(N + 63) / 64 * 16, (size_t)(M + 63) / 64 * 16,
                            (size_t)nbatch};
        size_t local[3] = {16, 16, 1};
        em_ocl_arg args[] = {EM_OCL_ARG(cm), EM_OCL_ARG(co), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                             EM_OCL_ARG(bm), EM_OCL_ARG(bo), EM_OCL_ARG(cM), EM_OCL_ARG(cN),
                             EM_OCL_ARG(cK), EM_OCL_ARG(ars), EM_OCL_ARG(acs), EM_OCL_ARG(brs),
                             EM_OCL_ARG(bcs), EM_OCL_ARG(nb), EM_OCL_ARG(it.shape),
                             EM_OCL_ARG(it.strides[1]), EM_OCL_ARG(it.strides[2])};
        return em_ocl__launch(d, EM_OCL_MATMUL, dt, EM_DTYPE_UNSPEC, K_MM_TILED, "mm_tiled",
                              "matmul", 17, args, 3, global, local);
    }
    cl_long total = nbatch * M * N;
    em_ocl_arg args[] = {EM_OCL_ARG(cm), EM_OCL_ARG(co), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                         EM_OCL_ARG(bm), EM_OCL_ARG(bo), EM_OCL_ARG(cM), EM_OCL_ARG(cN),
                         EM_OCL_ARG(cK), EM_OCL_ARG(ars), EM_OCL_ARG(acs), EM_OCL_ARG(brs),
                         EM_OCL_ARG(bcs), EM_OCL_ARG(nb), EM_OCL_ARG(it.shape),
                         EM_OCL_ARG(it.strides[1]), EM_OCL_ARG(it.strides[2]),
                         EM_OCL_ARG(total)};
    return em_ocl__launch_1d(d, EM_OCL_MATMUL, dt, EM_DTYPE_UNSPEC, K_MM_SMALL, "mm_small",
                             "matmul", 18, args, total);
}

int em_ocl__register_matmul(em_registry *reg, uint32_t dtypes)
{
    int rc = em_register_kernel(reg, "opencl", "matmul", k_matmul, EM_KERNEL_STRIDED, dtypes);
    return rc < 0 ? rc : EM_OK;
}
