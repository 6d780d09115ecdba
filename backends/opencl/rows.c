/* backends/opencl/rows.c - fused kernels over the rows of a tensor: softmax and log_softmax
 * along any dim, cross_entropy and cross_entropy_backward over (N, C) logits (OpenCL C in
 * kernels/rows.cl).
 *
 * The core has composites for all four (five to ten launches and as many temporaries); here
 * each is one launch, plus one small single-work-group launch for cross_entropy's "mean" and
 * "sum" and for the backward's "mean". A row is the `len` elements `inner` apart of a
 * contiguous input. Launch shapes, chosen as the reductions of reduce.c choose theirs:
 *   many rows, or short ones: a work-item per row (*_wi), no local memory or barriers, in
 *     groups small enough to spread over the device;
 *   few long rows: a work-group per row (*_wg), max and sum of exps by trees in local memory,
 *     items reading contiguous runs on CPU devices and every L-th element on GPUs;
 *   softmax along a dim with 8 or more neighbouring rows (inner >= 8) on CPU devices: a
 *     work-item per 8 neighbouring rows, their elements the lanes of vectors (sm_tile);
 *   one work-group joining the per-row losses and counted weights of "mean"/"sum" (ce_comb) or
 *     the weights alone for the backward's "mean" (ce_wsum), in double where the device has
 *     cl_khr_fp64.
 * Dense runs of a row go 8 elements at a time in vectors (vector exp is what makes a CPU
 * device fast). Accumulation in float, double for f64 (f16/bf16 are loaded into float and
 * rounded once). Every split is fixed by the shapes and the device, so results never depend
 * on timing. A target that is neither ignore_index nor a class gives NaN (that row's loss,
 * the reduced loss, or that row's gradient) and is never used as an index. The backward
 * formulas of softmax and log_softmax stay the core's.
 */
#include "opencl.h"

#include "ember/ops.h"

enum { K_SM_WI, K_SM_WG, K_SM_TILE, K_CE_FWD_WI, K_CE_FWD_WG, K_CE_COMB, K_CE_WSUM,
       K_CE_BWD_WI, K_CE_BWD_WG };

/* Bytes of the kernels' accumulator (ACC = T_CT) and of IMF on device d. */
static size_t acc_size(em_dtype dt)
{
    return dt == EM_F64 ? 8 : 4;
}

static size_t imf_size(const em_ocl_device *d)
{
    return d->fp64 ? 8 : 4;
}

/* Work-groups that keep the device busy: a few per compute unit. */
static int64_t target_groups(const em_ocl_device *d)
{
    return (int64_t)d->compute_units * ((d->type & CL_DEVICE_TYPE_CPU) ? 4 : 8);
}

/* Whether rows of `len` run a work-item each rather than a work-group: when they are short,
 * or so many that work-items alone fill the device (as reduce.c decides). */
static bool item_per_row(const em_ocl_device *d, int64_t rows, int64_t len)
{
    return len < 1024 || rows >= target_groups(d) * 64;
}

/* Items of a work-group over `len` elements: a power of two, at most 256 and what the kernel
 * allows, and no more than gives each item 1024 elements on CPU devices (where the items of a
 * group run one after another on one core, so more of them only add tree steps) or one on
 * GPUs. 0 with the error set when the kernel cannot be built. */
static size_t group_size(em_ocl_device *d, em_dtype dt, int slot, const char *name, int64_t len)
{
    int64_t per = d->cpu_paths ? 1024 : 1;
    size_t want = 1;
    while (want < 256 && (int64_t)want * 2 * per <= len)
        want *= 2;
    return em_ocl__pow2_wg(d, EM_OCL_ROWS, dt, slot, name, want);
}

/* A work-item per row (or tile) over n of them, in groups of up to 256 items, fewer when
 * that would leave fewer groups than it takes to fill the device: these items are long (a
 * whole row each), and a CPU device runs a group on one core. */
static int launch_items(em_ocl_device *d, em_dtype dt, int slot, const char *kname,
                        const char *what, int nargs, const em_ocl_arg *args, int64_t n)
{
    size_t L = em_ocl__pow2_wg(d, EM_OCL_ROWS, dt, slot, kname, 256);
    if (L == 0)
        return em_last_status();
    while (L > 1 && (n + (int64_t)L - 1) / (int64_t)L < target_groups(d))
        L /= 2;
    size_t global = (size_t)((n + (int64_t)L - 1) / (int64_t)L) * L;
    return em_ocl__launch(d, EM_OCL_ROWS, dt, EM_DTYPE_UNSPEC, slot, kname, what, nargs, args,
                          1, &global, &L);
}

/* Launches the rows of a *_wi kernel (nargs args, a work-item per row) or its *_wg twin (the
 * same args, then `chunked` and the local tree of acc bytes per item; a work-group per row). */
static int launch_rows(em_ocl_device *d, em_dtype dt, bool wi, int slot_wi, const char *name_wi,
                       int slot_wg, const char *name_wg, const char *what, int nargs,
                       em_ocl_arg *args, int64_t rows, int64_t len, size_t acc)
{
    if (wi)
        return launch_items(d, dt, slot_wi, name_wi, what, nargs, args, rows);
    size_t L = group_size(d, dt, slot_wg, name_wg, len);
    if (L == 0)
        return em_last_status();
    cl_int chunked = d->cpu_paths;
    size_t global = (size_t)rows * L;
    args[nargs] = EM_OCL_ARG(chunked);
    args[nargs + 1] = EM_OCL_LOCAL(L * acc);
    return em_ocl__launch(d, EM_OCL_ROWS, dt, EM_DTYPE_UNSPEC, slot_wg, name_wg, what,
                          nargs + 2, args, 1, &global, &L);
}

/* ---- softmax, log_softmax ------------------------------------------------------------------- */

static int run_softmax(void *bctx, const em_kcall *c, bool log_softmax)
{
    const char *name = log_softmax ? "log_softmax" : "softmax";
    em_ocl_device *d = em_ocl__kernel_device(c, name, 1, 1, 1);
    if (!d)
        return em_last_status();
    const em_ktensor *in = &c->in[0], *out = &c->out[0];
    em_dtype dt = in->dtype;
    if (!em_dtype_is_float(dt) || out->dtype != dt || out->numel != in->numel)
        return em_set_error(EM_ERR_INVALID, "opencl: %s: expected a float input and an output "
                            "of its shape and dtype", name);
    int64_t rows = 0, len = 0, inner = 0;
    int rc = em_kt_rows(in, c->attrs[0].i, "opencl", name, &rows, &len, &inner);
    if (rc != EM_OK || rows == 0)
        return rc;
    cl_mem om = out->buf, am = in->buf;
    cl_long oo = out->offset, ao = in->offset, cl_len = len, cl_inner = inner, cl_rows = rows;
    cl_int logsm = log_softmax;
    if (d->cpu_paths && inner >= 8) {
        cl_long ntile = rows / inner * ((inner + 7) / 8);
        em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                             EM_OCL_ARG(ntile), EM_OCL_ARG(cl_len), EM_OCL_ARG(cl_inner),
                             EM_OCL_ARG(logsm)};
        return launch_items(d, dt, K_SM_TILE, "sm_tile", name, 8, args, ntile);
    }
    em_ocl_arg args[10] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                           EM_OCL_ARG(cl_rows), EM_OCL_ARG(cl_len), EM_OCL_ARG(cl_inner),
                           EM_OCL_ARG(logsm)};
    return launch_rows(d, dt, item_per_row(d, rows, len), K_SM_WI, "sm_wi", K_SM_WG, "sm_wg",
                       name, 8, args, rows, len, acc_size(dt));
}

EM_KERNEL_BIND(k_softmax, run_softmax, false)
EM_KERNEL_BIND(k_log_softmax, run_softmax, true)

/* ---- cross_entropy -------------------------------------------------------------------------- */

/* What both cross-entropy kernels check and share: x (n, nc), target (n) int64, weight (nc)
 * and the output; all contiguous, with their element offsets. */
typedef struct ce_call {
    em_ocl_device *d;
    em_dtype dt;
    cl_mem x, t, w, o;
    cl_long xo, to, wo, oo, n, nc, ignore;
    cl_int red;
} ce_call;

static int ce_setup(ce_call *ce, const em_kcall *c, const char *name, int nin)
{
    ce->d = em_ocl__kernel_device(c, name, nin, 1, 2);
    if (!ce->d)
        return em_last_status();
    const em_ktensor *x = &c->in[0];
    int64_t red = c->attrs[1].i;
    if (x->ndim != 2 || !em_dtype_is_float(x->dtype) || c->in[1].dtype != EM_I64 ||
        c->in[2].dtype != x->dtype || red < EM_REDUCTION_NONE || red > EM_REDUCTION_SUM)
        return em_set_error(EM_ERR_INVALID, "opencl: %s: expected float (N, C) logits, int64 "
                            "targets, weights of the logits' dtype and a reduction, got %d "
                            "dims and reduction %lld", name, x->ndim, (long long)red);
    ce->dt = x->dtype;
    ce->x = x->buf;
    ce->t = c->in[1].buf;
    ce->w = c->in[2].buf;
    ce->xo = x->offset;
    ce->to = c->in[1].offset;
    ce->wo = c->in[2].offset;
    ce->o = c->out[0].buf;
    ce->oo = c->out[0].offset;
    ce->n = x->shape[0];
    ce->nc = x->shape[1];
    ce->ignore = c->attrs[0].i;
    ce->red = (cl_int)red;
    return EM_OK;
}

/* One work-group running a ce_comb or ce_wsum over n rows: nargs args, then `chunked` and
 * its local tree. */
static int ce_join(const ce_call *ce, int slot, const char *kname, const char *name, int nargs,
                   em_ocl_arg *args)
{
    size_t L = group_size(ce->d, ce->dt, slot, kname, ce->n);
    if (L == 0)
        return em_last_status();
    cl_int chunked = ce->d->cpu_paths;
    args[nargs] = EM_OCL_ARG(chunked);
    args[nargs + 1] = EM_OCL_LOCAL(L * imf_size(ce->d));
    return em_ocl__launch(ce->d, EM_OCL_ROWS, ce->dt, EM_DTYPE_UNSPEC, slot, kname, name,
                          nargs + 2, args, 1, &L, &L);
}

/* out = the per-row losses ("none"), else their sum, over the counted weights for "mean".
 * For "mean"/"sum" the rows write (loss, weight) pairs to scratch that ce_comb joins; the
 * queue is in order, so the scratch goes back to the pool as soon as both are enqueued. */
static int k_cross_entropy(void *bctx, const em_kcall *c)
{
    (void)bctx;
    const char *name = "cross_entropy";
    ce_call ce;
    int rc = ce_setup(&ce, c, name, 3);
    if (rc != EM_OK)
        return rc;
    cl_mem part = NULL;
    cl_int part_out = ce.red != EM_REDUCTION_NONE;
    size_t pbytes = (size_t)(2 * (ce.n > 0 ? ce.n : 1)) * acc_size(ce.dt);
    if (part_out && !(part = em_ocl__scratch(ce.d, pbytes)))
        return em_last_status();
    if (ce.n > 0) {
        /* "none" passes no scratch: a NULL buffer argument is a NULL pointer in the kernel
         * (OpenCL 1.2, clSetKernelArg), which the kernels never touch then. */
        em_ocl_arg args[15] = {EM_OCL_ARG(ce.o), EM_OCL_ARG(ce.oo), EM_OCL_ARG(part),
                               EM_OCL_ARG(part_out), EM_OCL_ARG(ce.x), EM_OCL_ARG(ce.xo),
                               EM_OCL_ARG(ce.t), EM_OCL_ARG(ce.to), EM_OCL_ARG(ce.w),
                               EM_OCL_ARG(ce.wo), EM_OCL_ARG(ce.n), EM_OCL_ARG(ce.nc),
                               EM_OCL_ARG(ce.ignore)};
        rc = launch_rows(ce.d, ce.dt, item_per_row(ce.d, ce.n, ce.nc), K_CE_FWD_WI, "ce_fwd_wi",
                         K_CE_FWD_WG, "ce_fwd_wg", name, 13, args, ce.n, ce.nc,
                         acc_size(ce.dt));
    }
    if (rc == EM_OK && part_out) {
        cl_int mean = ce.red == EM_REDUCTION_MEAN;
        em_ocl_arg args[7] = {EM_OCL_ARG(ce.o), EM_OCL_ARG(ce.oo), EM_OCL_ARG(part),
                              EM_OCL_ARG(ce.n), EM_OCL_ARG(mean)};
        rc = ce_join(&ce, K_CE_COMB, "ce_comb", name, 5, args);
    }
    if (part)
        em_ocl__scratch_free(ce.d, part, pbytes);
    return rc;
}

/* dx = the gradient of the loss for grad g (one value per row for "none", else one); "mean"
 * first sums the counted weights into one scratch value (ce_wsum) that every row divides by. */
static int k_cross_entropy_backward(void *bctx, const em_kcall *c)
{
    (void)bctx;
    const char *name = "cross_entropy_backward";
    ce_call ce;
    int rc = ce_setup(&ce, c, name, 4);
    if (rc != EM_OK)
        return rc;
    const em_ktensor *g = &c->in[3];
    if (g->dtype != ce.dt)
        return em_set_error(EM_ERR_INVALID, "opencl: %s: grad of dtype %s, expected %s", name,
                            em_dtype_name(g->dtype), em_dtype_name(ce.dt));
    cl_mem gm = g->buf, ws = NULL;
    cl_long go = g->offset;
    size_t wbytes = imf_size(ce.d);
    if (ce.red == EM_REDUCTION_MEAN) {
        if (!(ws = em_ocl__scratch(ce.d, wbytes)))
            return em_last_status();
        em_ocl_arg args[10] = {EM_OCL_ARG(ws), EM_OCL_ARG(ce.t), EM_OCL_ARG(ce.to),
                               EM_OCL_ARG(ce.w), EM_OCL_ARG(ce.wo), EM_OCL_ARG(ce.n),
                               EM_OCL_ARG(ce.nc), EM_OCL_ARG(ce.ignore)};
        rc = ce_join(&ce, K_CE_WSUM, "ce_wsum", name, 8, args);
    }
    if (rc == EM_OK && ce.n > 0) {
        /* ws is NULL unless "mean" (see k_cross_entropy), and only read then. */
        em_ocl_arg args[17] = {EM_OCL_ARG(ce.o), EM_OCL_ARG(ce.oo), EM_OCL_ARG(ce.x),
                               EM_OCL_ARG(ce.xo), EM_OCL_ARG(ce.t), EM_OCL_ARG(ce.to),
                               EM_OCL_ARG(ce.w), EM_OCL_ARG(ce.wo), EM_OCL_ARG(gm),
                               EM_OCL_ARG(go), EM_OCL_ARG(ws), EM_OCL_ARG(ce.n),
                               EM_OCL_ARG(ce.nc), EM_OCL_ARG(ce.ignore), EM_OCL_ARG(ce.red)};
        rc = launch_rows(ce.d, ce.dt, item_per_row(ce.d, ce.n, ce.nc), K_CE_BWD_WI, "ce_bwd_wi",
                         K_CE_BWD_WG, "ce_bwd_wg", name, 15, args, ce.n, ce.nc,
                         acc_size(ce.dt));
    }
    if (ws)
        em_ocl__scratch_free(ce.d, ws, wbytes);
    return rc;
}

/* ---- registration --------------------------------------------------------------------------- */

/* Contiguous inputs (flags 0: the core copies strided ones); float dtypes, each call checking
 * that its device has the dtype (f64 needs cl_khr_fp64). */
int em_ocl__register_rows(em_registry *reg, uint32_t dtypes)
{
    uint32_t fl = dtypes & EM_DTYPES_FLOAT;
    const em_kernel_decl table[] = {
        {"softmax", k_softmax, 0, fl},
        {"log_softmax", k_log_softmax, 0, fl},
        {"cross_entropy", k_cross_entropy, 0, fl},
        {"cross_entropy_backward", k_cross_entropy_backward, 0, fl},
    };
    return em_register_kernels(reg, "opencl", table, sizeof table / sizeof table[0]);
}
