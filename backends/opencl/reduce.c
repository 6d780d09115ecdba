/* backends/opencl/reduce.c - reductions: sum and amax over any set of axes (strided input),
 * argmax along one dim (contiguous input).
 *
 * The input's dims split into kept (K) and reduced (R) groups; each group drops its size-1
 * dims and merges neighbours whose strides allow it, so most reductions become one K dim and
 * one R dim. Shapes of launch:
 *   many outputs, or short reductions: one work-item per output walks its R range (red_wi);
 *     on CPU devices, when the innermost kept dim is dense (a sum over the rows of a matrix),
 *     one item takes 16 neighbouring outputs so that its inner loop reads along memory
 *     (red_tile);
 *   few outputs with long reductions: one work-group per output, a tree in local memory
 *     (red_wg); items read contiguous runs on CPU devices, every L-th element on GPUs;
 *   fewer outputs than it takes to fill the device: each output's range is split into parts,
 *     one work-group per (output, part) writes a partial (red_wgp) and a second launch joins
 *     the partials of each output in part order (red_comb).
 * argmax has the same shapes: per output (argmax_wi), per 16 neighbouring outputs on CPU
 * devices (argmax_tile), per work-group (argmax_wg) for a few long scans.
 * Every split is fixed by the shapes alone, so results never depend on timing. Accumulators:
 * f32 for f32/f16/bf16 sums, f64 for f64, int64 with wrapping for integer and bool sums
 * (whose output is int64); amax and argmax propagate NaN; argmax returns the first index of
 * the maximum (or of the first NaN).
 */
#include <string.h>

#include "opencl.h"

enum { K_RED_WI, K_RED_WG, K_RED_WGP, K_RED_COMB, K_ARGMAX_WI, K_ARGMAX_WG, K_RED_TILE,
       K_ARGMAX_TILE };

/* Bytes of the accumulator the kernels use for dtype dt (ACC in kernels/reduce.cl). */
static size_t acc_size(em_dtype dt, bool sum)
{
    if (sum)
        return em_dtype_is_float(dt) ? (dt == EM_F64 ? 8 : 4) : 8;
    return dt == EM_F16 || dt == EM_BF16 ? 4 : em_dtype_size(dt);
}

/* Kernel-ready groups: kept (K) and reduced (R) dims of the input. */
typedef struct red_plan {
    em_ocl_iter k, r;
    int64_t nout, nred;
} red_plan;

static bool plan_build(red_plan *pl, const em_ktensor *in, const em_attr *axes, const char *op)
{
    int64_t ksh[EM_MAX_DIMS], kst[EM_MAX_DIMS], rsh[EM_MAX_DIMS], rst[EM_MAX_DIMS];
    int nk = 0, nr = 0, ai = 0;
    for (int d = 0; d < in->ndim; d++) {
        bool reduced = ai < axes->n && axes->ints[ai] == d;
        if (reduced) {
            ai++;
            rsh[nr] = in->shape[d];
            rst[nr++] = in->strides[d];
        } else {
            ksh[nk] = in->shape[d];
            kst[nk++] = in->strides[d];
        }
    }
    if (ai != axes->n) {
        em_set_error(EM_ERR_INVALID, "opencl: %s: axes must be sorted, unique and in range", op);
        return false;
    }
    const int64_t *ks[1] = {kst}, *rs[1] = {rst};
    em_ocl__iter_init(&pl->k, nk, ksh, 1, ks);
    em_ocl__iter_init(&pl->r, nr, rsh, 1, rs);
    pl->nout = pl->k.numel;
    pl->nred = pl->r.numel;
    return true;
}

/* Groups that keep the device busy: a few per compute unit. */
static int64_t target_groups(const em_ocl_device *d)
{
    return (int64_t)d->compute_units * ((d->type & CL_DEVICE_TYPE_CPU) ? 4 : 8);
}

static int run_reduce(void *bctx, const em_kcall *c, const char *op, bool sum)
{
    em_ocl_device *d = em_ocl__kernel_device(c, op, 1, 1, 2);
    if (!d)
        return em_last_status();
    const em_ktensor *in = &c->in[0], *out = &c->out[0];
    em_dtype dt = in->dtype;
    int rc;
    size_t oes = em_dtype_size(out->dtype);
    if (in->numel == 0) {              /* sum over an empty dim: the identity, 0 */
        uint64_t zero = 0;
        cl_int err = clEnqueueFillBuffer(d->queue, (cl_mem)out->buf, &zero, oes,
                                         (size_t)out->offset * oes, (size_t)out->numel * oes, 0,
                                         NULL, NULL);
        return err == CL_SUCCESS ? EM_OK : em_ocl__fail(op, "clEnqueueFillBuffer", err);
    }
    red_plan pl;
    if (!plan_build(&pl, in, &c->attrs[0], op))
        return EM_ERR_INVALID;
    if (pl.nout != out->numel)
        return em_set_error(EM_ERR_INVALID, "opencl: %s: output has %lld elements, expected "
                            "%lld", op, (long long)out->numel, (long long)pl.nout);
    cl_mem om = out->buf, am = in->buf;
    cl_long oo = out->offset, ao = in->offset, nout = pl.nout, nred = pl.nred;
    cl_int nk = pl.k.ndim, nr = pl.r.ndim;
    em_ocl_family fam = sum ? EM_OCL_SUM : EM_OCL_AMAX;
    int64_t target = target_groups(d);
    bool few = nout < target * 64;
    cl_long kin = pl.k.shape.s[nk - 1];
    if ((nred < 1024 || !few) && d->cpu_paths && pl.k.strides[0].s[nk - 1] == 1 && kin > 1) {
        cl_long ntile = nout / kin * ((kin + 15) / 16);
        em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                             EM_OCL_ARG(ntile), EM_OCL_ARG(kin), EM_OCL_ARG(nk),
                             EM_OCL_ARG(pl.k.shape), EM_OCL_ARG(pl.k.strides[0]),
                             EM_OCL_ARG(nred), EM_OCL_ARG(nr), EM_OCL_ARG(pl.r.shape),
                             EM_OCL_ARG(pl.r.strides[0])};
        return em_ocl__launch_1d(d, fam, dt, EM_DTYPE_UNSPEC, K_RED_TILE, "red_tile", op, 13,
                                 args, ntile);
    }
    if (nred < 1024 || !few) {
        em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                             EM_OCL_ARG(nout), EM_OCL_ARG(nk), EM_OCL_ARG(pl.k.shape),
                             EM_OCL_ARG(pl.k.strides[0]), EM_OCL_ARG(nred), EM_OCL_ARG(nr),
                             EM_OCL_ARG(pl.r.shape), EM_OCL_ARG(pl.r.strides[0])};
        return em_ocl__launch_1d(d, fam, dt, EM_DTYPE_UNSPEC, K_RED_WI, "red_wi", op, 12, args,
                                 nout);
    }
    size_t L = em_ocl__pow2_wg(d, fam, dt, K_RED_WGP, "red_wgp", 256);
    if (L == 0)
        return em_last_status();
    size_t as = acc_size(dt, sum);
    cl_int chunked = d->cpu_paths;
    int64_t parts = 1;
    if (nout < target) {
        parts = (target + nout - 1) / nout;
        int64_t most = nred / ((int64_t)L * 16);
        if (parts > most)
            parts = most > 1 ? most : 1;
    }
    if (parts == 1) {
        L = em_ocl__pow2_wg(d, fam, dt, K_RED_WG, "red_wg", L);
        if (L == 0)
            return em_last_status();
        size_t global = (size_t)nout * L;
        em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                             EM_OCL_ARG(nk), EM_OCL_ARG(pl.k.shape),
                             EM_OCL_ARG(pl.k.strides[0]), EM_OCL_ARG(nred), EM_OCL_ARG(nr),
                             EM_OCL_ARG(pl.r.shape), EM_OCL_ARG(pl.r.strides[0]),
                             EM_OCL_ARG(chunked), EM_OCL_LOCAL(L * as)};
        return em_ocl__launch(d, fam, dt, EM_DTYPE_UNSPEC, K_RED_WG, "red_wg", op, 13, args, 1,
                              &global, &L);
    }
    size_t pbytes = (size_t)(nout * parts) * as;
    cl_mem part = em_ocl__scratch(d, pbytes);
    if (!part)
        return em_last_status();
    cl_long np = parts;
    size_t global = (size_t)(nout * parts) * L;
    em_ocl_arg args[] = {EM_OCL_ARG(part), EM_OCL_ARG(am), EM_OCL_ARG(ao), EM_OCL_ARG(nk),
                         EM_OCL_ARG(pl.k.shape), EM_OCL_ARG(pl.k.strides[0]), EM_OCL_ARG(nred),
                         EM_OCL_ARG(nr), EM_OCL_ARG(pl.r.shape), EM_OCL_ARG(pl.r.strides[0]),
                         EM_OCL_ARG(np), EM_OCL_ARG(chunked), EM_OCL_LOCAL(L * as)};
    rc = em_ocl__launch(d, fam, dt, EM_DTYPE_UNSPEC, K_RED_WGP, "red_wgp", op, 13, args, 1,
                        &global, &L);
    if (rc == EM_OK) {
        em_ocl_arg cargs[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(part), EM_OCL_ARG(nout),
                              EM_OCL_ARG(np)};
        rc = em_ocl__launch_1d(d, fam, dt, EM_DTYPE_UNSPEC, K_RED_COMB, "red_comb", op, 5,
                               cargs, nout);
    }
    /* The queue is in order: the pool may hand `part` out again at once. */
    em_ocl__scratch_free(d, part, pbytes);
    return rc;
}

EM_KERNEL_BIND(k_sum, run_reduce, "sum", true)
EM_KERNEL_BIND(k_amax, run_reduce, "amax", false)

/* ---- argmax --------------------------------------------------------------------------------- */

static int k_argmax(void *bctx, const em_kcall *c)
{
    (void)bctx;
    em_ocl_device *d = em_ocl__kernel_device(c, "argmax", 1, 1, 2);
    if (!d)
        return em_last_status();
    const em_ktensor *in = &c->in[0], *out = &c->out[0];
    em_dtype dt = in->dtype;
    if (dt == EM_BOOL)
        return em_set_error(EM_ERR_UNSUPPORTED, "opencl: argmax: unsupported dtype");
    int64_t dim = c->attrs[0].i;
    if (dim < 0 || dim >= (in->ndim > 0 ? in->ndim : 1))
        return em_set_error(EM_ERR_INVALID, "opencl: argmax: dim %lld out of range",
                            (long long)dim);
    int64_t outer = 1, D = 1, inner = 1;
    for (int k = 0; k < in->ndim; k++) {
        if (k < dim)
            outer *= in->shape[k];
        else if (k == dim)
            D = in->shape[k];
        else
            inner *= in->shape[k];
    }
    if (D == 0)
        return em_set_error(EM_ERR_INVALID, "opencl: argmax: empty dim");
    cl_mem om = out->buf, am = in->buf;
    cl_long oo = out->offset, ao = in->offset, nout = outer * inner, cD = D, cin = inner;
    bool many = D < 1024 || nout >= target_groups(d) * 64;
    if (many && d->cpu_paths && inner > 1) {
        cl_long ntile = outer * ((inner + 15) / 16);
        em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                             EM_OCL_ARG(ntile), EM_OCL_ARG(cD), EM_OCL_ARG(cin)};
        return em_ocl__launch_1d(d, EM_OCL_AMAX, dt, EM_DTYPE_UNSPEC, K_ARGMAX_TILE,
                                 "argmax_tile", "argmax", 7, args, ntile);
    }
    if (many) {
        em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                             EM_OCL_ARG(nout), EM_OCL_ARG(cD), EM_OCL_ARG(cin)};
        return em_ocl__launch_1d(d, EM_OCL_AMAX, dt, EM_DTYPE_UNSPEC, K_ARGMAX_WI,
                                 "argmax_wi", "argmax", 7, args, nout);
    }
    size_t L = em_ocl__pow2_wg(d, EM_OCL_AMAX, dt, K_ARGMAX_WG, "argmax_wg", 256);
    if (L == 0)
        return em_last_status();
    size_t vs = dt == EM_F16 || dt == EM_BF16 ? 4 : em_dtype_size(dt);
    cl_int chunked = d->cpu_paths;
    size_t global = (size_t)nout * L;
    em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                         EM_OCL_ARG(cD), EM_OCL_ARG(cin), EM_OCL_ARG(chunked),
                         EM_OCL_LOCAL(L * vs), EM_OCL_LOCAL(L * 8)};
    return em_ocl__launch(d, EM_OCL_AMAX, dt, EM_DTYPE_UNSPEC, K_ARGMAX_WG, "argmax_wg",
                          "argmax", 9, args, 1, &global, &L);
}

int em_ocl__register_reduce(em_registry *reg, uint32_t dtypes)
{
    /* argmax on bool is an error in PyTorch; contiguous input keeps the indexing simple. */
    const em_kernel_decl table[] = {
        {"sum", k_sum, EM_KERNEL_STRIDED, dtypes},
        {"amax", k_amax, EM_KERNEL_STRIDED, dtypes},
        {"argmax", k_argmax, 0, dtypes & ~EM_DTYPE_BIT(EM_BOOL)},
    };
    return em_register_kernels(reg, "opencl", table, sizeof table / sizeof table[0]);
}
