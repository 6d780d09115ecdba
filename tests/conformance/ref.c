/* tests/conformance/ref.c - host arrays, dtype rounding, type promotion and the float64
 * references the cases share (elementwise with broadcasting, matmul).
 *
 * Deliberately naive: plain loops over logical indices in double precision, no strides, no
 * threads, so that a reference is easy to check by reading it. Nothing here calls Ember.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"

/* ---- arrays ------------------------------------------------------------------------------ */

int64_t cf_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    return n;
}

bool cf_arr_alloc(cf_arr *a, int ndim, const int64_t *shape)
{
    a->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        a->shape[d] = shape[d];
    a->n = cf_numel(ndim, shape);
    a->v = calloc((size_t)(a->n > 0 ? a->n : 1), sizeof *a->v);
    return a->v != NULL;
}

void cf_arr_free(cf_arr *a)
{
    free(a->v);
    a->v = NULL;
    a->n = 0;
}

const char *cf_shape_str(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < ndim && n < size; d++)
        n += (size_t)snprintf(buf + n, size - n, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
    return buf;
}

/* ---- dtypes ----------------------------------------------------------------------------- */

double cf_round(em_dtype dt, double v)
{
    switch (dt) {
    case EM_F64:
        return v;
    case EM_F32:
        return (double)(float)v;
    case EM_F16:
        return em_f16_to_f32(em_f32_to_f16((float)v));
    case EM_BF16:
        return em_bf16_to_f32(em_f32_to_bf16((float)v));
    case EM_BOOL:
        return v != 0 ? 1.0 : 0.0;
    default:
        break;
    }
    if (!isfinite(v) || fabs(v) >= 9.2e18)
        return 0;   /* not a value the cases produce: casting it is undefined in C */
    int64_t i = (int64_t)v;   /* truncates toward zero */
    switch (dt) {
    case EM_I64: return (double)i;
    case EM_I32: return (double)(int32_t)(uint32_t)(uint64_t)i;
    case EM_U8: return (double)(uint8_t)(uint64_t)i;
    default: return NAN;
    }
}

const char *cf_dtype_short(em_dtype dt)
{
    static const char *const names[EM_DTYPE_COUNT] = {"?", "f32", "f64", "f16", "bf16",
                                                      "i64", "i32", "u8", "bool"};
    return dt > EM_DTYPE_UNSPEC && dt < EM_DTYPE_COUNT ? names[dt] : "?";
}

static int category(em_dtype dt)
{
    return dt == EM_BOOL ? 0 : em_dtype_is_float(dt) ? 2 : 1;
}

/* torch.promote_types for Ember's dtypes. */
static em_dtype promote(em_dtype a, em_dtype b)
{
    if (a == EM_DTYPE_UNSPEC)
        return b;
    if (b == EM_DTYPE_UNSPEC || a == b)
        return a;
    int ca = category(a), cb = category(b);
    if (ca != cb)
        return ca > cb ? a : b;
    if (ca == 2) {
        if (a == EM_F64 || b == EM_F64)
            return EM_F64;
        return EM_F32;   /* f16 with bf16 or f32, bf16 with f32 */
    }
    if (a == EM_I64 || b == EM_I64)
        return EM_I64;
    return EM_I32;       /* i32 with u8 */
}

/* PyTorch's combine_categories(higher, lower). */
static em_dtype combine(em_dtype higher, em_dtype lower)
{
    if (higher == EM_DTYPE_UNSPEC)
        return lower;
    if (em_dtype_is_float(higher))
        return higher;
    if (higher == EM_BOOL || (lower != EM_DTYPE_UNSPEC && em_dtype_is_float(lower)))
        return promote(higher, lower);
    return higher;
}

em_dtype cf_result_type(int n, const em_dtype *dts, const int *ndims, const bool *wrapped)
{
    em_dtype dim = EM_DTYPE_UNSPEC, zero = EM_DTYPE_UNSPEC, wrap = EM_DTYPE_UNSPEC;
    for (int i = 0; i < n; i++) {
        if (wrapped && wrapped[i]) {
            /* a Python float counts as the default dtype, an int as int64 */
            em_dtype w = em_dtype_is_float(dts[i]) ? EM_F32 : dts[i];
            wrap = promote(wrap, w);
        } else if (ndims[i] == 0) {
            zero = promote(zero, dts[i]);
        } else {
            dim = promote(dim, dts[i]);
        }
    }
    return combine(dim, combine(zero, wrap));
}

/* ---- elementwise with broadcasting ----------------------------------------------------------- */

bool cf_broadcast_shape(int nin, const cf_arr *in, int *ndim, int64_t *shape)
{
    int nd = 0;
    for (int i = 0; i < nin; i++)
        nd = in[i].ndim > nd ? in[i].ndim : nd;
    for (int d = 0; d < nd; d++)
        shape[d] = 1;
    for (int i = 0; i < nin; i++)
        for (int d = 0; d < in[i].ndim; d++) {
            int o = nd - in[i].ndim + d;
            int64_t s = in[i].shape[d];
            if (s == shape[o] || s == 1)
                continue;
            if (shape[o] != 1)
                return false;
            shape[o] = s;
        }
    *ndim = nd;
    return true;
}

/* Element offset in `a` (row-major, broadcast to the output's rank) of output index idx. */
static int64_t bcast_offset(const cf_arr *a, int ndim, const int64_t *idx)
{
    int64_t off = 0;
    for (int d = 0; d < a->ndim; d++) {
        int o = ndim - a->ndim + d;
        off = off * a->shape[d] + (a->shape[d] == 1 ? 0 : idx[o]);
    }
    return off;
}

bool cf_ref_elementwise(int nin, const cf_arr *in, cf_arr *out,
                        double (*f)(const double *x, const void *ctx), const void *ctx)
{
    int nd;
    int64_t shape[EM_MAX_DIMS];
    if (!cf_broadcast_shape(nin, in, &nd, shape) || !cf_arr_alloc(out, nd, shape))
        return false;
    int64_t idx[EM_MAX_DIMS] = {0};
    double x[CF_MAX_IN];
    for (int64_t k = 0; k < out->n; k++) {
        int64_t r = k;
        for (int d = nd - 1; d >= 0; d--) {
            idx[d] = r % shape[d];
            r /= shape[d];
        }
        for (int i = 0; i < nin; i++)
            x[i] = in[i].v[bcast_offset(&in[i], nd, idx)];
        out->v[k] = f(x, ctx);
    }
    return true;
}

static double apply_r1(const double *x, const void *ctx)
{
    const cf_op *op = ctx;
    return op->r1(x[0]);
}

static double apply_r2(const double *x, const void *ctx)
{
    const cf_op *op = ctx;
    return op->r2(x[0], x[1]);
}

bool cf_ref_unary(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    return cf_ref_elementwise(1, in, out, apply_r1, c->op);
}

bool cf_ref_binary(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    return cf_ref_elementwise(2, in, out, apply_r2, c->op);
}

/* ---- matmul -------------------------------------------------------------------------------- */

bool cf_ref_matmul_arrays(const cf_arr *a, const cf_arr *b, cf_arr *out)
{
    if (a->ndim < 1 || b->ndim < 1)
        return false;
    /* 1-D operands become [1, K] and [K, 1]; those dims are dropped again at the end */
    int64_t M = a->ndim == 1 ? 1 : a->shape[a->ndim - 2], K = a->shape[a->ndim - 1];
    int64_t Kb = b->ndim == 1 ? b->shape[0] : b->shape[b->ndim - 2];
    int64_t N = b->ndim == 1 ? 1 : b->shape[b->ndim - 1];
    if (K != Kb)
        return false;
    cf_arr ba = {0}, bb = {0};   /* batch shapes only */
    ba.ndim = a->ndim > 2 ? a->ndim - 2 : 0;
    bb.ndim = b->ndim > 2 ? b->ndim - 2 : 0;
    memcpy(ba.shape, a->shape, sizeof(int64_t) * (size_t)ba.ndim);
    memcpy(bb.shape, b->shape, sizeof(int64_t) * (size_t)bb.ndim);
    cf_arr pair[2] = {ba, bb};
    int nb;
    int64_t shape[EM_MAX_DIMS + 2];
    if (!cf_broadcast_shape(2, pair, &nb, shape))
        return false;
    int64_t batches = cf_numel(nb, shape);
    int nd = nb;
    if (a->ndim > 1)
        shape[nd++] = M;
    if (b->ndim > 1)
        shape[nd++] = N;
    if (!cf_arr_alloc(out, nd, shape))
        return false;
    int64_t idx[EM_MAX_DIMS] = {0};
    for (int64_t t = 0; t < batches; t++) {
        int64_t r = t;
        for (int d = nb - 1; d >= 0; d--) {
            idx[d] = r % shape[d];
            r /= shape[d];
        }
        const double *pa = a->v + bcast_offset(&pair[0], nb, idx) * M * K;
        const double *pb = b->v + bcast_offset(&pair[1], nb, idx) * K * N;
        double *po = out->v + t * M * N;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += pa[i * K + k] * pb[k * N + j];
                po[i * N + j] = s;
            }
    }
    return true;
}
