/* backends/opencl/kernels.c - the elementwise kernel wrappers: copy (casts, any strides on
 * both sides), fill, random, unary, binary (arithmetic, comparisons), where, gather and
 * scatter_add.
 *
 * A wrapper checks the call, coalesces the operands' dims (size-1 dims dropped, neighbours
 * that are contiguous in every operand merged), and launches the contiguous variant of a
 * kernel (_c: one flat loop) when every operand ends up as one dense run, else the strided
 * one (_s: shape and strides as long8, at most 8 dims). Semantics are the CPU backend's
 * (backends/cpu/): same casts, same NaN rules, same Philox stream, same order of additions in
 * scatter_add.
 */
#include <math.h>
#include <string.h>

#include "opencl.h"

/* ---- shared helpers ------------------------------------------------------------------------- */

_Static_assert(EM_OCL_MAX_OPS <= EM_STRIDED_MAX_OPS, "em_strided holds every operand");

void em_ocl__iter_init(em_ocl_iter *it, int ndim, const int64_t *shape, int nops,
                       const int64_t *const *strides)
{
    /* Cannot fail: callers pass at most EM_OCL_MAX_OPS operands, tensors at most
     * EM_MAX_DIMS dims. */
    em_strided m;
    (void)em_strided_init(&m, ndim, shape, nops, strides);
    it->ndim = m.ndim;
    it->nops = nops;
    it->numel = m.numel;
    it->contiguous = m.ndim == 1;
    for (int d = 0; d < 8; d++)
        it->shape.s[d] = d < m.ndim ? m.shape[d] : 1;
    for (int k = 0; k < nops; k++) {
        for (int d = 0; d < 8; d++)
            it->strides[k].s[d] = d < m.ndim ? m.strides[k][d] : 0;
        it->contiguous = it->contiguous && (m.strides[k][0] == 1 || m.shape[0] == 1);
    }
}

/* ---- copy ----------------------------------------------------------------------------------- */

enum { K_COPY_C, K_COPY_S };

/* src's strides seen with dst's shape: 0 on new and broadcast dims. */
static void broadcast_strides(const em_ktensor *dst, const em_ktensor *src, int64_t *st)
{
    for (int d = 0; d < dst->ndim; d++) {
        int j = d - (dst->ndim - src->ndim);
        st[d] = (j < 0 || (src->shape[j] == 1 && dst->shape[d] != 1)) ? 0 : src->strides[j];
    }
}

/* Same-dtype copies move bits: one program per element size. */
static void copy_program(em_dtype sdt, em_dtype ddt, em_dtype *a, em_dtype *b)
{
    if (sdt == ddt)
        sdt = ddt = em_ocl__bits_dtype(sdt);
    *a = sdt;
    *b = ddt;
}

/* Element-by-element copy between shapes of equal numel that do not broadcast (a reshape
 * that could not be a view): each side walks its own row-major order. */
static int copy_reshape(em_ocl_device *d, const em_ktensor *dst, const em_ktensor *src)
{
    const int64_t *ds[1] = {dst->strides}, *ss[1] = {src->strides};
    em_ocl_iter id, is;
    em_ocl__iter_init(&id, dst->ndim, dst->shape, 1, ds);
    em_ocl__iter_init(&is, src->ndim, src->shape, 1, ss);
    em_dtype a, b;
    copy_program(src->dtype, dst->dtype, &a, &b);
    cl_mem om = dst->buf, am = src->buf;
    cl_long oo = dst->offset, ao = src->offset, n = dst->numel;
    cl_int ond = id.ndim, snd = is.ndim;
    em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(ond), EM_OCL_ARG(id.shape),
                         EM_OCL_ARG(id.strides[0]), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                         EM_OCL_ARG(snd), EM_OCL_ARG(is.shape), EM_OCL_ARG(is.strides[0]),
                         EM_OCL_ARG(n)};
    return em_ocl__launch_1d(d, EM_OCL_COPY, a, b, K_COPY_S, "copy_s", "copy", 11, args, n);
}

int em_ocl__copy(em_ocl_device *d, const em_ktensor *dst, const em_ktensor *src)
{
    if (em_dtype_size(dst->dtype) == 0 || em_dtype_size(src->dtype) == 0)
        return em_set_error(EM_ERR_INVALID, "opencl: copy: bad dtype");
    if (dst->numel == 0)
        return EM_OK;
    if (!em_kt_broadcasts(dst, src)) {
        if (src->numel != dst->numel)
            return em_set_error(EM_ERR_INVALID, "opencl: copy: source does not fit the "
                                "destination's shape");
        return copy_reshape(d, dst, src);
    }
    int64_t sst[EM_MAX_DIMS];
    broadcast_strides(dst, src, sst);
    const int64_t *st[2] = {dst->strides, sst};
    em_ocl_iter it;
    em_ocl__iter_init(&it, dst->ndim, dst->shape, 2, st);
    size_t es = em_dtype_size(dst->dtype);
    cl_mem om = dst->buf, am = src->buf;
    cl_long oo = dst->offset, ao = src->offset, n = it.numel;
    if (it.contiguous && dst->dtype == src->dtype)
        return em_ocl__copy_bytes(d, om, (size_t)oo * es, am, (size_t)ao * es, (size_t)n * es);
    em_dtype a, b;
    copy_program(src->dtype, dst->dtype, &a, &b);
    if (it.contiguous) {
        em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                             EM_OCL_ARG(n)};
        return em_ocl__launch_1d(d, EM_OCL_COPY, a, b, K_COPY_C, "copy_c", "copy", 5, args, n);
    }
    cl_int nd = it.ndim;
    em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(nd), EM_OCL_ARG(it.shape),
                         EM_OCL_ARG(it.strides[0]), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                         EM_OCL_ARG(nd), EM_OCL_ARG(it.shape), EM_OCL_ARG(it.strides[1]),
                         EM_OCL_ARG(n)};
    return em_ocl__launch_1d(d, EM_OCL_COPY, a, b, K_COPY_S, "copy_s", "copy", 11, args, n);
}

static int k_copy(void *bctx, const em_kcall *c)
{
    (void)bctx;
    em_ocl_device *d = em_ocl__kernel_device(c, "copy", 1, 1, 0);
    return d ? em_ocl__copy(d, &c->out[0], &c->in[0]) : em_last_status();
}

/* ---- fill ----------------------------------------------------------------------------------- */

static int64_t d2i64(double v)
{
    if (!(v > -9223372036854775809.0 && v < 9223372036854775808.0))
        return INT64_MIN;
    return (int64_t)v;
}

/* The bits of v in dtype dt, with the copy kernel's cast rules. */
static void value_bits(em_dtype dt, double v, void *out)
{
    switch (dt) {
    case EM_F32: { float f = (float)v; memcpy(out, &f, 4); break; }
    case EM_F64: memcpy(out, &v, 8); break;
    case EM_F16: { uint16_t h = em_f32_to_f16((float)v); memcpy(out, &h, 2); break; }
    case EM_BF16: { uint16_t h = em_f32_to_bf16((float)v); memcpy(out, &h, 2); break; }
    case EM_I64: { int64_t i = d2i64(v); memcpy(out, &i, 8); break; }
    case EM_I32: {
        int32_t i = (v > -2147483649.0 && v < 2147483648.0) ? (int32_t)v : INT32_MIN;
        memcpy(out, &i, 4);
        break;
    }
    case EM_U8: { uint8_t u = (uint8_t)d2i64(v); memcpy(out, &u, 1); break; }
    default: { uint8_t b = v != 0; memcpy(out, &b, 1); break; }
    }
}

static int k_fill(void *bctx, const em_kcall *c)
{
    (void)bctx;
    const em_ktensor *out = &c->out[0];
    size_t es = em_dtype_size(out->dtype);
    em_ocl_device *d = em_ocl__kernel_device(c, "fill", 0, 1, 1);
    if (!d)
        return em_last_status();
    uint64_t bits = 0;
    value_bits(out->dtype, c->attrs[0].f, &bits);
    cl_int err = clEnqueueFillBuffer(d->queue, (cl_mem)out->buf, &bits, es,
                                     (size_t)out->offset * es, (size_t)out->numel * es, 0, NULL,
                                     NULL);
    return err == CL_SUCCESS ? EM_OK : em_ocl__fail("fill", "clEnqueueFillBuffer", err);
}

/* ---- random --------------------------------------------------------------------------------- */

/* The Philox stream of numeric.h, element k from (seed, offset, k) alone. Bit-identical to the
 * CPU backend:
 *   integer draws, always (64-bit integer arithmetic);
 *   uniform draws where the device has cl_khr_fp64 (a + (b - a) * u in double, then the cast);
 *     without it the affine step runs in float: exact for a = 0, b = 1 (em_rand), possibly an
 *     ulp off otherwise;
 *   normal draws: Box-Muller in double where the device has cl_khr_fp64. The device's log and
 *     cos may differ from libm's in the last bit of a double, so f64 results agree to a few
 *     ulp (about 6% of values differ on PoCL) while f32, f16 and bf16, rounded from that
 *     double, came out bit-identical on every value tested. Without fp64 Box-Muller runs in
 *     float and is not bit-identical (about 1e-6 relative). */

enum { K_RAND_UNIFORM, K_RAND_NORMAL, K_RAND_INT };

/* Launches one random kernel with the float arguments as the device's IMF (double with
 * cl_khr_fp64, else float). */
static int k_random(void *bctx, const em_kcall *c)
{
    (void)bctx;
    const em_ktensor *out = &c->out[0];
    em_dtype dt = out->dtype;
    em_ocl_device *d = em_ocl__kernel_device(c, "random", 0, 1, 7);
    if (!d)
        return em_last_status();
    int dist = (int)c->attrs[0].i;
    cl_mem om = out->buf;
    cl_long oo = out->offset, n = out->numel;
    cl_ulong seed = (cl_ulong)c->attrs[1].i, offset = (cl_ulong)c->attrs[2].i;
    double a = c->attrs[3].f, b = c->attrs[4].f;
    cl_double ad = a, bd = b;
    cl_float af = (cl_float)a, bf = (cl_float)b;
    em_ocl_arg fa = d->fp64 ? EM_OCL_ARG(ad) : EM_OCL_ARG(af);
    em_ocl_arg fb = d->fp64 ? EM_OCL_ARG(bd) : EM_OCL_ARG(bf);
    if (dist == 0) {
        cl_int drop = dt == EM_F16 ? 24 - 11 : dt == EM_BF16 ? 24 - 8 : 0;
        double scale = ldexp(1.0, -(24 - drop));
        cl_double sd = scale;
        cl_float sf = (cl_float)scale;
        em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(n), EM_OCL_ARG(seed),
                             EM_OCL_ARG(offset), fa, fb, EM_OCL_ARG(drop),
                             d->fp64 ? EM_OCL_ARG(sd) : EM_OCL_ARG(sf)};
        return em_ocl__launch_1d(d, EM_OCL_RANDOM, dt, EM_DTYPE_UNSPEC, K_RAND_UNIFORM,
                                 "rand_uniform", "random", 9, args, (n + 3) / 4);
    }
    if (dist == 1) {
        em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(n), EM_OCL_ARG(seed),
                             EM_OCL_ARG(offset), fa, fb};
        return em_ocl__launch_1d(d, EM_OCL_RANDOM, dt, EM_DTYPE_UNSPEC, K_RAND_NORMAL,
                                 "rand_normal", "random", 7, args, (n + 1) / 2);
    }
    if (dist == 2) {
        cl_long low = c->attrs[5].i, high = c->attrs[6].i;
        if (high <= low)
            return em_set_error(EM_ERR_INVALID, "opencl: random: empty range [%lld, %lld)",
                                (long long)low, (long long)high);
        cl_ulong range = (cl_ulong)high - (cl_ulong)low;
        em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(n), EM_OCL_ARG(seed),
                             EM_OCL_ARG(offset), EM_OCL_ARG(low), EM_OCL_ARG(range)};
        return em_ocl__launch_1d(d, EM_OCL_RANDOM, dt, EM_DTYPE_UNSPEC, K_RAND_INT, "rand_int",
                                 "random", 7, args, (n + 1) / 2);
    }
    return em_set_error(EM_ERR_INVALID, "opencl: random: unknown distribution %d", dist);
}

/* ---- unary ---------------------------------------------------------------------------------- */

typedef struct ew_op {
    const char *name;
    const char *kc, *ks;            /* kernel names: contiguous, strided */
    uint32_t dtypes;
    bool out_bool;
} ew_op;

#define NUMERIC (EM_DTYPES_FLOAT | EM_DTYPES_INT)

static const ew_op unary_ops[] = {
    {"neg", "neg_c", "neg_s", NUMERIC, false},
    {"abs", "abs_c", "abs_s", NUMERIC, false},
    {"relu", "relu_c", "relu_s", NUMERIC, false},
    {"exp", "exp_c", "exp_s", EM_DTYPES_FLOAT, false},
    {"log", "log_c", "log_s", EM_DTYPES_FLOAT, false},
    {"sqrt", "sqrt_c", "sqrt_s", EM_DTYPES_FLOAT, false},
    {"sin", "sin_c", "sin_s", EM_DTYPES_FLOAT, false},
    {"cos", "cos_c", "cos_s", EM_DTYPES_FLOAT, false},
    {"tanh", "tanh_c", "tanh_s", EM_DTYPES_FLOAT, false},
    {"sigmoid", "sigmoid_c", "sigmoid_s", EM_DTYPES_FLOAT, false},
};

enum { U_NEG, U_ABS, U_RELU, U_EXP, U_LOG, U_SQRT, U_SIN, U_COS, U_TANH, U_SIGMOID, U_COUNT };

static int run_unary(void *bctx, const em_kcall *c, int id)
{
    const ew_op *op = &unary_ops[id];
    const em_ktensor *out = &c->out[0], *a = &c->in[0];
    em_dtype dt = a->dtype;
    em_ocl_device *d = em_ocl__kernel_device(c, op->name, 1, 1, 0);
    if (!d)
        return em_last_status();
    const int64_t *st[2] = {out->strides, a->strides};
    em_ocl_iter it;
    em_ocl__iter_init(&it, out->ndim, out->shape, 2, st);
    cl_mem om = out->buf, am = a->buf;
    cl_long oo = out->offset, ao = a->offset, n = it.numel;
    if (it.contiguous) {
        em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                             EM_OCL_ARG(n)};
        return em_ocl__launch_1d(d, EM_OCL_UNARY, dt, EM_DTYPE_UNSPEC, 2 * id, op->kc, op->name,
                                 5, args, n);
    }
    cl_int nd = it.ndim;
    em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                         EM_OCL_ARG(n), EM_OCL_ARG(nd), EM_OCL_ARG(it.shape),
                         EM_OCL_ARG(it.strides[1])};
    return em_ocl__launch_1d(d, EM_OCL_UNARY, dt, EM_DTYPE_UNSPEC, 2 * id + 1, op->ks, op->name,
                             8, args, n);
}

EM_KERNEL_BIND(k_neg, run_unary, U_NEG)
EM_KERNEL_BIND(k_abs, run_unary, U_ABS)
EM_KERNEL_BIND(k_relu, run_unary, U_RELU)
EM_KERNEL_BIND(k_exp, run_unary, U_EXP)
EM_KERNEL_BIND(k_log, run_unary, U_LOG)
EM_KERNEL_BIND(k_sqrt, run_unary, U_SQRT)
EM_KERNEL_BIND(k_sin, run_unary, U_SIN)
EM_KERNEL_BIND(k_cos, run_unary, U_COS)
EM_KERNEL_BIND(k_tanh, run_unary, U_TANH)
EM_KERNEL_BIND(k_sigmoid, run_unary, U_SIGMOID)

/* ---- binary and where ----------------------------------------------------------------------- */

static const ew_op binary_ops[] = {
    {"add", "add_c", "add_s", EM_DTYPES_ALL, false},
    {"sub", "sub_c", "sub_s", NUMERIC, false},
    {"mul", "mul_c", "mul_s", EM_DTYPES_ALL, false},
    {"div", "div_c", "div_s", EM_DTYPES_FLOAT, false},
    {"pow", "pow_c", "pow_s", NUMERIC, false},
    {"maximum", "maximum_c", "maximum_s", EM_DTYPES_ALL, false},
    {"minimum", "minimum_c", "minimum_s", EM_DTYPES_ALL, false},
    {"eq", "eq_c", "eq_s", EM_DTYPES_ALL, true},
    {"ne", "ne_c", "ne_s", EM_DTYPES_ALL, true},
    {"lt", "lt_c", "lt_s", EM_DTYPES_ALL, true},
    {"le", "le_c", "le_s", EM_DTYPES_ALL, true},
    {"gt", "gt_c", "gt_s", EM_DTYPES_ALL, true},
    {"ge", "ge_c", "ge_s", EM_DTYPES_ALL, true},
};

enum { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MAXIMUM, B_MINIMUM, B_EQ, B_NE, B_LT, B_LE, B_GT,
       B_GE, B_COUNT };
enum { K_WHERE_C = 2 * B_COUNT, K_WHERE_S };

static int run_binary(void *bctx, const em_kcall *c, int id)
{
    const ew_op *op = &binary_ops[id];
    const em_ktensor *out = &c->out[0], *a = &c->in[0], *b = &c->in[1];
    em_dtype dt = a->dtype;
    em_ocl_device *d = em_ocl__kernel_device(c, op->name, 2, 1, 0);
    if (!d)
        return em_last_status();
    const int64_t *st[3] = {out->strides, a->strides, b->strides};
    em_ocl_iter it;
    em_ocl__iter_init(&it, out->ndim, out->shape, 3, st);
    cl_mem om = out->buf, am = a->buf, bm = b->buf;
    cl_long oo = out->offset, ao = a->offset, bo = b->offset, n = it.numel;
    if (it.contiguous) {
        em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                             EM_OCL_ARG(bm), EM_OCL_ARG(bo), EM_OCL_ARG(n)};
        return em_ocl__launch_1d(d, EM_OCL_BINARY, dt, EM_DTYPE_UNSPEC, 2 * id, op->kc,
                                 op->name, 7, args, n);
    }
    cl_int nd = it.ndim;
    em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                         EM_OCL_ARG(bm), EM_OCL_ARG(bo), EM_OCL_ARG(n), EM_OCL_ARG(nd),
                         EM_OCL_ARG(it.shape), EM_OCL_ARG(it.strides[1]),
                         EM_OCL_ARG(it.strides[2])};
    return em_ocl__launch_1d(d, EM_OCL_BINARY, dt, EM_DTYPE_UNSPEC, 2 * id + 1, op->ks,
                             op->name, 11, args, n);
}

EM_KERNEL_BIND(k_add, run_binary, B_ADD)
EM_KERNEL_BIND(k_sub, run_binary, B_SUB)
EM_KERNEL_BIND(k_mul, run_binary, B_MUL)
EM_KERNEL_BIND(k_div, run_binary, B_DIV)
EM_KERNEL_BIND(k_pow, run_binary, B_POW)
EM_KERNEL_BIND(k_maximum, run_binary, B_MAXIMUM)
EM_KERNEL_BIND(k_minimum, run_binary, B_MINIMUM)
EM_KERNEL_BIND(k_eq, run_binary, B_EQ)
EM_KERNEL_BIND(k_ne, run_binary, B_NE)
EM_KERNEL_BIND(k_lt, run_binary, B_LT)
EM_KERNEL_BIND(k_le, run_binary, B_LE)
EM_KERNEL_BIND(k_gt, run_binary, B_GT)
EM_KERNEL_BIND(k_ge, run_binary, B_GE)

/* where(a, b, cond): kernel input order is (a, b, cond). */
static int k_where(void *bctx, const em_kcall *c)
{
    (void)bctx;
    const em_ktensor *out = &c->out[0], *a = &c->in[0], *b = &c->in[1], *cd = &c->in[2];
    em_dtype dt = a->dtype;
    em_ocl_device *d = em_ocl__kernel_device(c, "where", 3, 1, 0);
    if (!d)
        return em_last_status();
    const int64_t *st[4] = {out->strides, a->strides, b->strides, cd->strides};
    em_ocl_iter it;
    em_ocl__iter_init(&it, out->ndim, out->shape, 4, st);
    cl_mem om = out->buf, am = a->buf, bm = b->buf, cm = cd->buf;
    cl_long oo = out->offset, ao = a->offset, bo = b->offset, co = cd->offset, n = it.numel;
    em_dtype pdt = em_ocl__bits_dtype(dt);   /* where only moves bits */
    if (it.contiguous) {
        em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                             EM_OCL_ARG(bm), EM_OCL_ARG(bo), EM_OCL_ARG(cm), EM_OCL_ARG(co),
                             EM_OCL_ARG(n)};
        return em_ocl__launch_1d(d, EM_OCL_BINARY, pdt, EM_DTYPE_UNSPEC, K_WHERE_C, "where_c",
                                 "where", 9, args, n);
    }
    cl_int nd = it.ndim;
    em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                         EM_OCL_ARG(bm), EM_OCL_ARG(bo), EM_OCL_ARG(cm), EM_OCL_ARG(co),
                         EM_OCL_ARG(n), EM_OCL_ARG(nd), EM_OCL_ARG(it.shape),
                         EM_OCL_ARG(it.strides[1]), EM_OCL_ARG(it.strides[2]),
                         EM_OCL_ARG(it.strides[3])};
    return em_ocl__launch_1d(d, EM_OCL_BINARY, pdt, EM_DTYPE_UNSPEC, K_WHERE_S, "where_s",
                             "where", 14, args, n);
}

/* ---- gather and scatter_add ----------------------------------------------------------------- */

enum { K_GATHER, K_SCATTER };

/* The core's infer functions (em__check_index, core/ops/index.c) run before these kernels:
 * dim is in range, the index is int64 with a's rank, no larger than a (and src) outside dim,
 * and every value lies in [0, a.shape[dim]); scatter_add's src has a's dtype and the index's
 * shape; out has a's dtype. The kernels index memory with those values unchecked. */

/* out[p] = a[p with p[dim] := index[p]], out of index's shape. */
static int k_gather(void *bctx, const em_kcall *c)
{
    (void)bctx;
    const em_ktensor *a = &c->in[0], *idx = &c->in[1], *out = &c->out[0];
    em_ocl_device *d = em_ocl__kernel_device(c, "gather", 2, 1, 1);
    if (!d)
        return em_last_status();
    int dim = (int)c->attrs[0].i;
    int64_t ast[EM_MAX_DIMS];
    for (int k = 0; k < idx->ndim; k++)
        ast[k] = k == dim ? 0 : a->strides[k];
    const int64_t *st[3] = {out->strides, ast, idx->strides};
    em_ocl_iter it;
    em_ocl__iter_init(&it, idx->ndim, idx->shape, 3, st);
    cl_mem om = out->buf, am = a->buf, im = idx->buf;
    cl_long oo = out->offset, ao = a->offset, io = idx->offset, n = it.numel;
    cl_long ads = a->ndim > 0 ? a->strides[dim] : 0;
    cl_int nd = it.ndim;
    em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(am), EM_OCL_ARG(ao),
                         EM_OCL_ARG(im), EM_OCL_ARG(io), EM_OCL_ARG(n), EM_OCL_ARG(nd),
                         EM_OCL_ARG(it.shape), EM_OCL_ARG(it.strides[1]),
                         EM_OCL_ARG(it.strides[2]), EM_OCL_ARG(ads)};
    return em_ocl__launch_1d(d, EM_OCL_INDEX, em_ocl__bits_dtype(a->dtype), EM_DTYPE_UNSPEC,
                             K_GATHER, "gather_s", "gather", 12, args, n);
}

/* out = a; out[p with p[dim] := index[p]] += src[p] for p over index. One work-item per
 * position with dim collapsed walks dim in order: output lines are disjoint, so there are no
 * atomics and the sums are those of the CPU backend, bit for bit. */
static int k_scatter_add(void *bctx, const em_kcall *c)
{
    (void)bctx;
    const em_ktensor *a = &c->in[0], *idx = &c->in[1], *src = &c->in[2], *out = &c->out[0];
    em_ocl_device *d = em_ocl__kernel_device(c, "scatter_add", 3, 1, 1);
    if (!d)
        return em_last_status();
    int dim = (int)c->attrs[0].i;
    int rc = em_ocl__copy(d, out, a);
    if (rc != EM_OK || idx->numel == 0)
        return rc;
    int64_t shape[EM_MAX_DIMS];
    for (int k = 0; k < idx->ndim; k++)
        shape[k] = k == dim ? 1 : idx->shape[k];
    const int64_t *st[3] = {out->strides, idx->strides, src->strides};
    em_ocl_iter it;
    em_ocl__iter_init(&it, idx->ndim, shape, 3, st);
    cl_mem om = out->buf, im = idx->buf, sm = src->buf;
    cl_long oo = out->offset, io = idx->offset, so = src->offset, npos = it.numel;
    bool scalar = a->ndim == 0;
    cl_long D = scalar ? 1 : idx->shape[dim];
    cl_long ods = scalar ? 0 : out->strides[dim], ids = scalar ? 0 : idx->strides[dim];
    cl_long sds = scalar ? 0 : src->strides[dim];
    cl_int nd = it.ndim;
    em_ocl_arg args[] = {EM_OCL_ARG(om), EM_OCL_ARG(oo), EM_OCL_ARG(im), EM_OCL_ARG(io),
                         EM_OCL_ARG(sm), EM_OCL_ARG(so), EM_OCL_ARG(npos), EM_OCL_ARG(nd),
                         EM_OCL_ARG(it.shape), EM_OCL_ARG(it.strides[0]),
                         EM_OCL_ARG(it.strides[1]), EM_OCL_ARG(it.strides[2]), EM_OCL_ARG(D),
                         EM_OCL_ARG(ods), EM_OCL_ARG(ids), EM_OCL_ARG(sds)};
    return em_ocl__launch_1d(d, EM_OCL_INDEX, a->dtype, EM_DTYPE_UNSPEC, K_SCATTER, "scatter_s",
                             "scatter_add", 16, args, npos);
}

/* ---- registration --------------------------------------------------------------------------- */

int em_ocl__register_elementwise(em_registry *reg, uint32_t dtypes)
{
    static const em_kernel_fn unary_fns[U_COUNT] = {k_neg, k_abs, k_relu, k_exp, k_log,
                                                    k_sqrt, k_sin, k_cos, k_tanh, k_sigmoid};
    static const em_kernel_fn binary_fns[B_COUNT] = {k_add, k_sub, k_mul, k_div, k_pow,
                                                     k_maximum, k_minimum, k_eq, k_ne, k_lt,
                                                     k_le, k_gt, k_ge};
    const em_kernel_decl table[] = {
        {"copy", k_copy, EM_KERNEL_STRIDED, dtypes},
        {"fill", k_fill, 0, dtypes},
        {"random", k_random, 0, dtypes},
        {"where", k_where, EM_KERNEL_STRIDED, dtypes},
        {"gather", k_gather, EM_KERNEL_STRIDED, dtypes},
        {"scatter_add", k_scatter_add, EM_KERNEL_STRIDED, dtypes},
    };
    int rc = em_register_kernels(reg, "opencl", table, sizeof table / sizeof table[0]);
    for (int i = 0; rc >= 0 && i < U_COUNT; i++)
        rc = em_register_kernel(reg, "opencl", unary_ops[i].name, unary_fns[i],
                                EM_KERNEL_STRIDED, unary_ops[i].dtypes & dtypes);
    for (int i = 0; rc >= 0 && i < B_COUNT; i++)
        rc = em_register_kernel(reg, "opencl", binary_ops[i].name, binary_fns[i],
                                EM_KERNEL_STRIDED, binary_ops[i].dtypes & dtypes);
    return rc < 0 ? rc : EM_OK;
}
