/* plugins/nn/unfold.c - the ops "im2col" and "col2im": sliding windows of images and their
 * adjoint, which Conv2d and MaxPool2d are built on (conv.c).
 *
 *   im2col(x; kernel, stride, padding, dilation, out, fill):
 *     x: (N, C, H, W) -> cols: (N, C, K, L), K = kh*kw window positions (row-major),
 *     L = OH*OW output positions; cols[n][c][i*kw + j][oh*OW + ow] =
 *     x[n][c][oh*sh - ph + i*dh][ow*sw - pw + j*dw], or `fill` where that falls in the padding.
 *   col2im(cols; kernel, stride, padding, dilation, out, size = (H, W)):
 *     the adjoint: each cols entry is added to the x position it was read from (padding
 *     positions are dropped), giving (N, C, H, W).
 *
 * im2col's backward is col2im and col2im's is im2col (with fill 0), so convolution and pooling
 * differentiate twice. Both ops carry a CPU kernel (plain loops, every float dtype) and a
 * composite written in primitives (em_gather / em_scatter_add over a window index built on the
 * host, em_where for the padding), so every backend with those primitives runs them. The
 * output size (OH, OW) is an attribute: the caller applies PyTorch's rules (ceil_mode).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

/* Attribute order of both ops: im2col's last is FILL, col2im's is SIZE in its place. */
enum { A_KERNEL, A_STRIDE, A_PADDING, A_DILATION, A_OUT, A_FILL, A_SIZE = A_FILL };

typedef struct geom {
    int64_t N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW, K, L;
} geom;

static geom geometry(int64_t N, int64_t C, int64_t H, int64_t W, const em_attr *a)
{
    geom g = {N, C, H, W, a[A_KERNEL].ints[0], a[A_KERNEL].ints[1], a[A_STRIDE].ints[0],
              a[A_STRIDE].ints[1], a[A_PADDING].ints[0], a[A_PADDING].ints[1],
              a[A_DILATION].ints[0], a[A_DILATION].ints[1], a[A_OUT].ints[0], a[A_OUT].ints[1],
              0, 0};
    g.K = g.kh * g.kw;
    g.L = g.OH * g.OW;
    return g;
}

/* The input position window k reads for output position l, or -1 in the padding. */
static int64_t source(const geom *g, int64_t k, int64_t l)
{
    int64_t ih = (l / g->OW) * g->sh - g->ph + (k / g->kw) * g->dh;
    int64_t iw = (l % g->OW) * g->sw - g->pw + (k % g->kw) * g->dw;
    return ih >= 0 && ih < g->H && iw >= 0 && iw < g->W ? ih * g->W + iw : -1;
}

/* ---- shapes --------------------------------------------------------------------------------- */

static int check_attrs(const char *op, const em_attr *a, int nattrs)
{
    for (int i = 0; i < nattrs; i++)
        if (i != A_FILL && a[i].n != 2)
            return em_set_error(EM_ERR_INVALID, "%s: attribute %d needs 2 values, got %d", op, i,
                                a[i].n);
    if (a[A_KERNEL].ints[0] < 1 || a[A_KERNEL].ints[1] < 1 || a[A_STRIDE].ints[0] < 1 ||
        a[A_STRIDE].ints[1] < 1 || a[A_DILATION].ints[0] < 1 || a[A_DILATION].ints[1] < 1 ||
        a[A_PADDING].ints[0] < 0 || a[A_PADDING].ints[1] < 0 || a[A_OUT].ints[0] < 0 ||
        a[A_OUT].ints[1] < 0)
        return em_set_error(EM_ERR_INVALID, "%s: bad window attributes", op);
    return EM_OK;
}

static int infer_im2col(int nin, em_tensor *const *in, const em_attr *attrs, em_out_desc *out)
{
    (void)nin;
    const em_tensor *x = in[0];
    if (em_ndim(x) != 4)
        return em_set_error(EM_ERR_INVALID, "im2col: input must be (N, C, H, W), got %d dims",
                            em_ndim(x));
    int rc = check_attrs("im2col", attrs, 5);
    if (rc < 0)
        return rc;
    out->ndim = 4;
    out->shape[0] = em_shape(x)[0];
    out->shape[1] = em_shape(x)[1];
    out->shape[2] = attrs[A_KERNEL].ints[0] * attrs[A_KERNEL].ints[1];
    out->shape[3] = attrs[A_OUT].ints[0] * attrs[A_OUT].ints[1];
    out->dtype = em_dtype_of(x);
    return EM_OK;
}

static int infer_col2im(int nin, em_tensor *const *in, const em_attr *attrs, em_out_desc *out)
{
    (void)nin;
    const em_tensor *c = in[0];
    int rc = check_attrs("col2im", attrs, 5);
    if (rc == EM_OK && attrs[A_SIZE].n != 2)
        rc = em_set_error(EM_ERR_INVALID, "col2im: size needs 2 values");
    if (rc < 0)
        return rc;
    const int64_t *sz = attrs[A_SIZE].ints;
    if (em_ndim(c) != 4 || em_shape(c)[2] != attrs[A_KERNEL].ints[0] * attrs[A_KERNEL].ints[1] ||
        em_shape(c)[3] != attrs[A_OUT].ints[0] * attrs[A_OUT].ints[1])
        return em_set_error(EM_ERR_INVALID, "col2im: input must be (N, C, K, L) for the window");
    out->ndim = 4;
    out->shape[0] = em_shape(c)[0];
    out->shape[1] = em_shape(c)[1];
    out->shape[2] = sz[0];
    out->shape[3] = sz[1];
    out->dtype = em_dtype_of(c);
    return EM_OK;
}

/* ---- CPU kernels ----------------------------------------------------------------------------- */

/* im2col moves elements: one loop per element size, the fill given as that many bytes. The
 * loops walk kernel rows and output rows so that the innermost one runs along an output row
 * with no division. */
#define IM2COL_LOOP(name, T)                                                                  \
    static void name(const geom *g, const void *xv, void *cv, const void *fillp)             \
    {                                                                                         \
        const T *x = xv;                                                                      \
        T *c = cv, fill;                                                                      \
        memcpy(&fill, fillp, sizeof fill);                                                    \
        for (int64_t p = 0; p < g->N * g->C; p++) {                                           \
            const T *xp = x + p * g->H * g->W;                                                \
            T *cp = c + p * g->K * g->L;                                                      \
            for (int64_t i = 0; i < g->kh; i++)                                               \
                for (int64_t j = 0; j < g->kw; j++) {                                         \
                    T *row = cp + (i * g->kw + j) * g->L;                                     \
                    for (int64_t oh = 0; oh < g->OH; oh++, row += g->OW) {                    \
                        int64_t ih = oh * g->sh - g->ph + i * g->dh;                          \
                        int64_t iw = j * g->dw - g->pw;                                       \
                        if (ih < 0 || ih >= g->H) {                                           \
                            for (int64_t ow = 0; ow < g->OW; ow++)                            \
                                row[ow] = fill;                                               \
                            continue;                                                         \
                        }                                                                     \
                        const T *xr = xp + ih * g->W;                                         \
                        for (int64_t ow = 0; ow < g->OW; ow++, iw += g->sw)                   \
                            row[ow] = iw >= 0 && iw < g->W ? xr[iw] : fill;                   \
                    }                                                                         \
                }                                                                             \
        }                                                                                     \
    }

IM2COL_LOOP(im2col_2, uint16_t)
IM2COL_LOOP(im2col_4, uint32_t)
IM2COL_LOOP(im2col_8, uint64_t)

static size_t elsize(em_dtype dt) { return dt == EM_F64 ? 8 : dt == EM_F32 ? 4 : 2; }

static int k_im2col(void *bctx, const em_kcall *c)
{
    (void)bctx;
    const em_ktensor *x = &c->in[0], *o = &c->out[0];
    if (c->nin != 1 || c->nattrs < 6 || x->ndim != 4 || !em_dtype_is_float(x->dtype))
        return em_set_error(EM_ERR_INTERNAL, "nn: im2col kernel: bad call");
    geom g = geometry(x->shape[0], x->shape[1], x->shape[2], x->shape[3], c->attrs);
    size_t es = elsize(x->dtype);
    double f = c->attrs[A_FILL].f;
    float f32 = (float)f;
    uint16_t f16 = em_f32_to_f16(f32), b16 = em_f32_to_bf16(f32);
    const void *fill = x->dtype == EM_F64   ? (const void *)&f
                       : x->dtype == EM_F32 ? (const void *)&f32
                       : x->dtype == EM_F16 ? (const void *)&f16
                                            : (const void *)&b16;
    const char *xp = (const char *)x->buf + (size_t)x->offset * es;
    char *op = (char *)o->buf + (size_t)o->offset * es;
    if (es == 8)
        im2col_8(&g, xp, op, fill);
    else if (es == 4)
        im2col_4(&g, xp, op, fill);
    else
        im2col_2(&g, xp, op, fill);
    return EM_OK;
}

/* col2im adds: float and double directly, the 16-bit floats through a float accumulator. */
#define COL2IM_LOOP(name, T)                                                                  \
    static void name(const geom *g, const T *c, T *x)                                         \
    {                                                                                         \
        memset(x, 0, (size_t)(g->N * g->C * g->H * g->W) * sizeof *x);                        \
        for (int64_t p = 0; p < g->N * g->C; p++) {                                           \
            T *xp = x + p * g->H * g->W;                                                      \
            const T *cp = c + p * g->K * g->L;                                                \
            for (int64_t i = 0; i < g->kh; i++)                                               \
                for (int64_t j = 0; j < g->kw; j++) {                                         \
                    const T *row = cp + (i * g->kw + j) * g->L;                               \
                    for (int64_t oh = 0; oh < g->OH; oh++, row += g->OW) {                    \
                        int64_t ih = oh * g->sh - g->ph + i * g->dh;                          \
                        if (ih < 0 || ih >= g->H)                                             \
                            continue;                                                         \
                        T *xr = xp + ih * g->W;                                               \
                        int64_t iw = j * g->dw - g->pw;                                       \
                        for (int64_t ow = 0; ow < g->OW; ow++, iw += g->sw)                   \
                            if (iw >= 0 && iw < g->W)                                         \
                                xr[iw] += row[ow];                                            \
                    }                                                                         \
                }                                                                             \
        }                                                                                     \
    }

COL2IM_LOOP(col2im_f32, float)
COL2IM_LOOP(col2im_f64, double)

static int k_col2im(void *bctx, const em_kcall *c)
{
    (void)bctx;
    const em_ktensor *ci = &c->in[0], *o = &c->out[0];
    if (c->nin != 1 || c->nattrs < 6 || o->ndim != 4 || !em_dtype_is_float(ci->dtype))
        return em_set_error(EM_ERR_INTERNAL, "nn: col2im kernel: bad call");
    geom g = geometry(o->shape[0], o->shape[1], o->shape[2], o->shape[3], c->attrs);
    if (ci->dtype == EM_F64) {
        col2im_f64(&g, (const double *)ci->buf + ci->offset, (double *)o->buf + o->offset);
        return EM_OK;
    }
    if (ci->dtype == EM_F32) {
        col2im_f32(&g, (const float *)ci->buf + ci->offset, (float *)o->buf + o->offset);
        return EM_OK;
    }
    /* f16 / bf16: widen, accumulate in float, narrow */
    int64_t nc = ci->numel, nx = o->numel;
    float *cw = malloc((size_t)(nc ? nc : 1) * sizeof *cw), *xw = malloc((size_t)nx * sizeof *xw);
    if (!cw || !xw) {
        free(cw);
        free(xw);
        return em_set_error(EM_ERR_NOMEM, "col2im: out of memory");
    }
    const uint16_t *cs = (const uint16_t *)ci->buf + ci->offset;
    uint16_t *xs = (uint16_t *)o->buf + o->offset;
    bool half = ci->dtype == EM_F16;
    for (int64_t i = 0; i < nc; i++)
        cw[i] = half ? em_f16_to_f32(cs[i]) : em_bf16_to_f32(cs[i]);
    col2im_f32(&g, cw, xw);
    for (int64_t i = 0; i < nx; i++)
        xs[i] = half ? em_f32_to_f16(xw[i]) : em_f32_to_bf16(xw[i]);
    free(cw);
    free(xw);
    return EM_OK;
}

/* ---- composites (backends without a kernel) -------------------------------------------------- */

/* The window index (1, 1, K*L) int64 (padding positions read element 0) and, when some window
 * reaches into the padding, the mask of real positions (K*L) bool; on device dev. */
static int window_index(const geom *g, em_device dev, em_tensor **index, em_tensor **valid)
{
    int64_t n = g->K * g->L;
    int64_t *ix = malloc((size_t)(n ? n : 1) * sizeof *ix);
    uint8_t *ok = malloc((size_t)(n ? n : 1));
    if (!ix || !ok) {
        free(ix);
        free(ok);
        return em_set_error(EM_ERR_NOMEM, "im2col: out of memory for the window index");
    }
    bool padded = false;
    for (int64_t k = 0; k < g->K; k++)
        for (int64_t l = 0; l < g->L; l++) {
            int64_t s = source(g, k, l);
            ix[k * g->L + l] = s >= 0 ? s : 0;
            ok[k * g->L + l] = s >= 0;
            padded |= s < 0;
        }
    em_opts oi = {.dtype = EM_I64, .device = dev}, ob = {.dtype = EM_BOOL, .device = dev};
    *index = em_tensor_from_data(ix, EM_I64, EM_SHAPE(1, 1, n), &oi);
    *valid = padded ? em_tensor_from_data(ok, EM_BOOL, EM_SHAPE(n), &ob) : NULL;
    free(ix);
    free(ok);
    if (!*index || (padded && !*valid)) {
        em_release(*index);
        em_release(*valid);
        return em_last_status();
    }
    return EM_OK;
}

static em_tensor *c_im2col(int nin, em_tensor *const *in, const em_attr *attrs)
{
    (void)nin;
    em_tensor *x = in[0];
    const int64_t *s = em_shape(x);
    geom g = geometry(s[0], s[1], s[2], s[3], attrs);
    em_tensor *index, *valid;
    if (window_index(&g, em_device_of(x), &index, &valid) < 0)
        return NULL;
    em_tensor *xf = em_reshape(x, EM_SHAPE(g.N, g.C, g.H * g.W));
    em_tensor *ie = em_expand(index, EM_SHAPE(g.N, g.C, g.K * g.L));
    em_tensor *cols = xf && ie ? em_gather(xf, 2, ie) : NULL;
    if (cols && valid) {
        em_opts o = {.dtype = em_dtype_of(x), .device = em_device_of(x)};
        em_tensor *fill = em_scalar(attrs[A_FILL].f, &o);
        em_tensor *m = em_where(valid, cols, fill);
        em_release(fill);
        em_release(cols);
        cols = m;
    }
    em_tensor *r = em_reshape(cols, EM_SHAPE(g.N, g.C, g.K, g.L));
    em_release(cols);
    em_release(xf);
    em_release(ie);
    em_release(index);
    em_release(valid);
    return r;
}

static em_tensor *c_col2im(int nin, em_tensor *const *in, const em_attr *attrs)
{
    (void)nin;
    em_tensor *c = in[0];
    const int64_t *s = em_shape(c);
    geom g = geometry(s[0], s[1], attrs[A_SIZE].ints[0], attrs[A_SIZE].ints[1], attrs);
    em_tensor *index, *valid;
    if (window_index(&g, em_device_of(c), &index, &valid) < 0)
        return NULL;
    em_opts o = {.dtype = em_dtype_of(c), .device = em_device_of(c)};
    em_tensor *src = em_reshape(c, EM_SHAPE(g.N, g.C, g.K * g.L));
    if (src && valid) {   /* what was read from the padding goes nowhere */
        em_tensor *zero = em_scalar(0.0, &o);
        em_tensor *m = em_where(valid, src, zero);
        em_release(zero);
        em_release(src);
        src = m;
    }
    em_tensor *zeros = em_zeros(EM_SHAPE(g.N, g.C, g.H * g.W), &o);
    em_tensor *ie = em_expand(index, EM_SHAPE(g.N, g.C, g.K * g.L));
    em_tensor *acc = zeros && ie && src ? em_scatter_add(zeros, 2, ie, src) : NULL;
    em_tensor *r = em_reshape(acc, EM_SHAPE(g.N, g.C, g.H, g.W));
    em_release(acc);
    em_release(zeros);
    em_release(ie);
    em_release(src);
    em_release(index);
    em_release(valid);
    return r;
}

/* ---- backward -------------------------------------------------------------------------------- */

static int b_im2col(int nin, em_tensor *const *inputs, em_tensor *output, const em_attr *attrs,
                    em_tensor *grad, em_tensor **grad_inputs)
{
    (void)nin;
    (void)output;
    em_attr a[6];   /* im2col's window, then size = (H, W) in place of fill */
    memcpy(a, attrs, 5 * sizeof *a);
    memset(&a[A_SIZE], 0, sizeof a[A_SIZE]);
    a[A_SIZE].n = 2;
    a[A_SIZE].ints[0] = em_shape(inputs[0])[2];
    a[A_SIZE].ints[1] = em_shape(inputs[0])[3];
    grad_inputs[0] = em_op_call("col2im", 1, &grad, 6, a);
    return grad_inputs[0] ? EM_OK : em_last_status();
}

static int b_col2im(int nin, em_tensor *const *inputs, em_tensor *output, const em_attr *attrs,
                    em_tensor *grad, em_tensor **grad_inputs)
{
    (void)nin;
    (void)inputs;
    (void)output;
    em_attr a[6];
    memcpy(a, attrs, 5 * sizeof *a);
    memset(&a[A_FILL], 0, sizeof a[A_FILL]);   /* padding positions had no gradient */
    grad_inputs[0] = em_op_call("im2col", 1, &grad, 6, a);
    return grad_inputs[0] ? EM_OK : em_last_status();
}

int nn__register_unfold_ops(em_registry *reg)
{
    static const em_attr_decl im2col_attrs[] = {
        {"kernel", EM_ATTR_INTS}, {"stride", EM_ATTR_INTS}, {"padding", EM_ATTR_INTS},
        {"dilation", EM_ATTR_INTS}, {"out", EM_ATTR_INTS}, {"fill", EM_ATTR_FLOAT},
    };
    static const em_attr_decl col2im_attrs[] = {
        {"kernel", EM_ATTR_INTS}, {"stride", EM_ATTR_INTS}, {"padding", EM_ATTR_INTS},
        {"dilation", EM_ATTR_INTS}, {"out", EM_ATTR_INTS}, {"size", EM_ATTR_INTS},
    };
    static const em_op_def im2col = {
        .struct_size = sizeof(em_op_def),
        .name = "im2col",
        .nin = 1,
        .nattrs = 6,
        .attrs = im2col_attrs,
        .infer = infer_im2col,
        .composite = c_im2col,
        .backward = b_im2col,
        .backward_name = "Im2ColBackward0",
    };
    static const em_op_def col2im = {
        .struct_size = sizeof(em_op_def),
        .name = "col2im",
        .nin = 1,
        .nattrs = 6,
        .attrs = col2im_attrs,
        .flags = EM_OP_COMPOSITE_F32,
        .infer = infer_col2im,
        .composite = c_col2im,
        .backward = b_col2im,
        .backward_name = "Col2ImBackward0",
    };
    int rc = em_register_op(reg, &im2col);
    if (rc >= 0)
        rc = em_register_op(reg, &col2im);
    if (rc >= 0)
        rc = em_register_kernel(reg, "cpu", "im2col", k_im2col, 0, EM_DTYPES_FLOAT);
    if (rc >= 0)
        rc = em_register_kernel(reg, "cpu", "col2im", k_col2im, 0, EM_DTYPES_FLOAT);
    return rc < 0 ? rc : EM_OK;
}
