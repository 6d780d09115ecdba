/* backends/opencl/matmul.c - batched matrix products: out[B..., M, N] = a[B..., M, K] @
 * b[B..., K, N] for every claimed dtype.
 *
 * Three kernels (kernels/matmul.cl), all reading a and b through their strides (transposed and
 * broadcast views cost no copy), walking the batch decoded from up to 6 batch dims, and
 * summing k in order:
 *   mm_tiled (GPUs, accelerators): a 16 x 16 work-group computes a 64 x 64 tile of the
 *     output, each work-item a 4 x 4 block in registers, staging 64 x 16 panels of a and b in
 *     local memory;
 *   mm_reg (CPU devices such as PoCL, which emulate local memory and barriers at a cost):
 *     each work-item computes an 8 x 16 block in registers with no local memory, its inner
 *     loop along a row of b, which the device compiler vectorises;
 *   mm_small: one work-item per output, for products too small for the others.
 * f16/bf16 accumulate in f32 and round once; integers accumulate in int64 with wrapping,
 * bool is the `or` of `and`s, as on the CPU backend. CLBlast (libclblast-dev) was measured
 * against these on PoCL: 4-7 GFLOP/s for a 1024^3 sgemm, against 9-24 for mm_reg and 3 for
 * mm_tiled, and 33 s for its first call (kernel compilation); it is not used.
 */
#include "opencl.h"

enum { K_MM_TILED, K_MM_SMALL, K_MM_REG };

/* The block of mm_reg: rows and columns per work-item (RM, CN in kernels/matmul.cl). */
#define MM_RM 8
#define MM_CN 16

static int k_matmul(void *bctx, const em_kcall *c)
{
    (void)bctx;
    em_ocl_device *d = em_ocl__kernel_device(c, "matmul", 2, 1, 0);
    if (!d)
        return em_last_status();
    const em_ktensor *a = &c->in[0], *b = &c->in[1], *out = &c->out[0];
    em_dtype dt = a->dtype;
    int nd = out->ndim;
    int64_t M = out->shape[nd - 2], N = out->shape[nd - 1], K = a->shape[nd - 1];

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
    /* The arguments every kernel starts with. */
#define MM_ARGS                                                                          \
    EM_OCL_ARG(cm), EM_OCL_ARG(co), EM_OCL_ARG(am), EM_OCL_ARG(ao), EM_OCL_ARG(bm),      \
        EM_OCL_ARG(bo), EM_OCL_ARG(cM), EM_OCL_ARG(cN), EM_OCL_ARG(cK), EM_OCL_ARG(ars), \
        EM_OCL_ARG(acs), EM_OCL_ARG(brs), EM_OCL_ARG(bcs), EM_OCL_ARG(nb),              \
        EM_OCL_ARG(it.shape), EM_OCL_ARG(it.strides[1]), EM_OCL_ARG(it.strides[2])

    bool cpu = d->cpu_paths;
    if (cpu && M * N >= MM_RM * MM_CN) {
        cl_long tm = (M + MM_RM - 1) / MM_RM, tn = (N + MM_CN - 1) / MM_CN;
        cl_long total = nbatch * tm * tn;
        em_ocl_arg args[] = {MM_ARGS, EM_OCL_ARG(tm), EM_OCL_ARG(tn), EM_OCL_ARG(total)};
        return em_ocl__launch_1d(d, EM_OCL_MATMUL, dt, EM_DTYPE_UNSPEC, K_MM_REG, "mm_reg",
                                 "matmul", 20, args, total);
    }
    /* mm_tiled stages two 16 x 65 panels of its accumulation type in local memory. */
    size_t panel = dt == EM_F32 || dt == EM_F16 || dt == EM_BF16 ? 4 : 8;
    bool tiled = !cpu && d->max_wg >= 256 && M >= 16 && N >= 16 &&
                 d->local_mem >= 2 * 16 * 65 * panel;
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
        em_ocl_arg args[] = {MM_ARGS};
        return em_ocl__launch(d, EM_OCL_MATMUL, dt, EM_DTYPE_UNSPEC, K_MM_TILED, "mm_tiled",
                              "matmul", 17, args, 3, global, local);
    }
    cl_long total = nbatch * M * N;
    em_ocl_arg args[] = {MM_ARGS, EM_OCL_ARG(total)};
    return em_ocl__launch_1d(d, EM_OCL_MATMUL, dt, EM_DTYPE_UNSPEC, K_MM_SMALL, "mm_small",
                             "matmul", 18, args, total);
#undef MM_ARGS
}

int em_ocl__register_matmul(em_registry *reg, uint32_t dtypes)
{
    int rc = em_register_kernel(reg, "opencl", "matmul", k_matmul, EM_KERNEL_STRIDED, dtypes);
    return rc < 0 ? rc : EM_OK;
}
