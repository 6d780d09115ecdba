/* plugins/nn/conv.c - Conv2d and MaxPool2d for small images, written in ops.
 *
 * Both unfold the input into its sliding windows (im2col) with em_gather:
 *
 *   x: (N, C, H, W) -> (N, C, H*W) -gather along dim 2-> cols: (N, C, K, L)
 *   K = kh*kw window positions (row-major), L = OH*OW output positions
 *
 * The gather index (one (K*L) table for the input size, expanded over N and C without a copy)
 * and a mask of window positions that fall into the padding are built on the host once per
 * input size and device, and cached in the layer. Padded positions read 0 (Conv2d) or -inf
 * (MaxPool2d) through em_where. Then
 *
 *   Conv2d:    y = weight (G, O/G, C/G*K) @ cols (N, G, C/G*K, L) + bias -> (N, O, OH, OW)
 *   MaxPool2d: y = gather(cols, argmax over K) -> (N, C, OH, OW)
 *
 * so both run on every backend with gather, where, matmul and argmax, and autograd
 * differentiates them (gather's backward scatter-adds into the input; max pooling routes each
 * gradient to the first maximum of its window, as PyTorch's CPU kernel does). This is correct
 * first and reasonably fast for small images; a backend may add a fused conv op later. Inputs
 * may also be unbatched (C, H, W). Conv2d's weight and bias start U(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)) with fan_in = in_channels/groups * kh * kw, as PyTorch's reset_parameters().
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

/* ---- unfolding --------------------------------------------------------------------------------- */

typedef struct window {
    int64_t k[2], s[2], p[2], d[2];   /* kernel, stride, padding, dilation: (h, w) */
    bool ceil_mode;
} window;

typedef struct unfold_cache {
    int64_t H, W;
    em_device device;
    int64_t OH, OW;
    em_tensor *index;   /* (1, 1, K*L) int64 into the flattened H*W plane */
    em_tensor *valid;   /* (K*L) bool, false where a window reads padding; NULL if none does */
} unfold_cache;

static void cache_clear(unfold_cache *c)
{
    em_release(c->index);
    em_release(c->valid);
    memset(c, 0, sizeof *c);
}

/* PyTorch's output size (pooling_output_shape for ceil_mode); <= 0 when the (padded) input
 * is smaller than the dilated kernel. */
static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode)
{
    int64_t span = in + 2 * p - d * (k - 1) - 1;
    if (span < 0)
        return 0;
    int64_t o = (span + (ceil_mode ? s - 1 : 0)) / s + 1;
    if (ceil_mode && (o - 1) * s >= in + p)
        o--;   /* the last window must start inside the input or the left padding */
    return o;
}

/* Builds (or reuses) the index and mask for an H x W input on `dev`. */
static int cache_prepare(const char *type, unfold_cache *c, const window *w, const em_tensor *x)
{
    int nd = em_ndim(x);
    int64_t H = em_shape(x)[nd - 2], W = em_shape(x)[nd - 1];
    em_device dev = em_device_of(x);
    if (c->index && c->H == H && c->W == W && em_device_eq(c->device, dev))
        return EM_OK;
    cache_clear(c);
    int64_t OH = out_size(H, w->k[0], w->s[0], w->p[0], w->d[0], w->ceil_mode);
    int64_t OW = out_size(W, w->k[1], w->s[1], w->p[1], w->d[1], w->ceil_mode);
    if (OH <= 0 || OW <= 0) {
        char b[160];
        return em_set_error(EM_ERR_INVALID,
                            "%s: input of shape %s is too small: padded size (%lld x %lld) is "
                            "smaller than the dilated kernel (%lld x %lld)",
                            type, nn__shape_str(x, b, sizeof b), (long long)(H + 2 * w->p[0]),
                            (long long)(W + 2 * w->p[1]),
                            (long long)(w->d[0] * (w->k[0] - 1) + 1),
                            (long long)(w->d[1] * (w->k[1] - 1) + 1));
    }
    int64_t K = w->k[0] * w->k[1], L = OH * OW, n = K * L;
    int64_t *ix = malloc((size_t)n * sizeof *ix);
    uint8_t *ok = malloc((size_t)n);
    if (!ix || !ok) {
        free(ix);
        free(ok);
        return em_set_error(EM_ERR_NOMEM, "%s: out of memory for the window index", type);
    }
    bool padded = false;
    for (int64_t i = 0; i < w->k[0]; i++)
        for (int64_t j = 0; j < w->k[1]; j++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    int64_t at = (i * w->k[1] + j) * L + oh * OW + ow;
                    int64_t ih = oh * w->s[0] - w->p[0] + i * w->d[0];
                    int64_t iw = ow * w->s[1] - w->p[1] + j * w->d[1];
                    bool in = ih >= 0 && ih < H && iw >= 0 && iw < W;
                    ix[at] = in ? ih * W + iw : 0;
                    ok[at] = in;
                    padded |= !in;
                }
    em_opts oi = {.dtype = EM_I64, .device = dev}, ob = {.dtype = EM_BOOL, .device = dev};
    c->index = em_tensor_from_data(ix, EM_I64, EM_SHAPE(1, 1, n), &oi);
    c->valid = padded && c->index ? em_tensor_from_data(ok, EM_BOOL, EM_SHAPE(n), &ob) : NULL;
    free(ix);
    free(ok);
    if (!c->index || (padded && !c->valid)) {
        cache_clear(c);
        return em_last_status();
    }
    c->H = H;
    c->W = W;
    c->device = dev;
    c->OH = OH;
    c->OW = OW;
    return EM_OK;
}

/* x: (N, C, H, W) -> (N, C, K, L), padded positions reading `fill`. */
static em_tensor *unfold(em_tensor *x, const unfold_cache *c, const window *w, double fill)
{
    int64_t N = em_shape(x)[0], C = em_shape(x)[1];
    int64_t K = w->k[0] * w->k[1], L = c->OH * c->OW;
    em_tensor *xf = em_reshape(x, EM_SHAPE(N, C, c->H * c->W));
    em_tensor *idx = em_expand(c->index, EM_SHAPE(N, C, K * L));
    em_tensor *g = xf && idx ? em_gather(xf, 2, idx) : NULL;
    em_release(xf);
    em_release(idx);
    if (g && c->valid) {
        em_opts o = {.dtype = em_dtype_of(x), .device = em_device_of(x)};
        em_tensor *f = em_scalar(fill, &o);
        em_tensor *m = em_where(c->valid, g, f);
        em_release(f);
        em_release(g);
        g = m;
    }
    em_tensor *cols = em_reshape(g, EM_SHAPE(N, C, K, L));
    em_release(g);
    return cols;
}

/* The input as (N, C, H, W): a 3-dim (C, H, W) input gets a batch dim of 1. */
static em_tensor *batched(const char *type, em_tensor *x, int64_t channels)
{
    char b[160];
    int nd = em_ndim(x);
    if (nd != 3 && nd != 4) {
        em_set_error(EM_ERR_INVALID, "%s: expected a 3D (unbatched) or 4D (batched) input, got "
                                     "shape %s",
                     type, nn__shape_str(x, b, sizeof b));
        return NULL;
    }
    if (channels > 0 && em_shape(x)[nd - 3] != channels) {
        em_set_error(EM_ERR_INVALID, "%s: input of shape %s does not fit in_channels=%lld", type,
                     nn__shape_str(x, b, sizeof b), (long long)channels);
        return NULL;
    }
    if (nd == 4) {
        em_retain(x);
        return x;
    }
    return em_unsqueeze(x, 0);
}

/* y: (N, ...) back to the input's batchedness. */
static em_tensor *unbatched_like(em_tensor *y, const em_tensor *x)
{
    if (!y || em_ndim(x) == 4)
        return y;
    em_tensor *r = em_squeeze(y, 0);
    em_release(y);
    return r;
}

/* ---- Conv2d ------------------------------------------------------------------------------------- */

static const em_param_decl conv_params[] = {
    {"in_channels", EM_PARAM_INT, NULL},
    {"out_channels", EM_PARAM_INT, NULL},
    {"kernel_size", EM_PARAM_INTS, NULL},
    {"stride", EM_PARAM_INTS, "1"},
    {"padding", EM_PARAM_INTS, "0"},
    {"dilation", EM_PARAM_INTS, "1"},
    {"groups", EM_PARAM_INT, "1"},
    {"bias", EM_PARAM_BOOL, "true"},
    {"padding_mode", EM_PARAM_STRING, "\"zeros\""},
    {"device", EM_PARAM_STRING, "None"},
    {"dtype", EM_PARAM_STRING, "None"},
};

typedef struct conv_state {
    window w;
    int64_t in, out, groups;
    unfold_cache cache;
} conv_state;

static int conv_init(em_module *m, const em_args *a)
{
    conv_state *s = em_module_state(m);
    s->in = em_args_int(a, "in_channels");
    s->out = em_args_int(a, "out_channels");
    s->groups = em_args_int(a, "groups");
    if (s->in <= 0 || s->out <= 0)
        return em_set_error(EM_ERR_INVALID, "Conv2d: %s must be positive, got %lld",
                            s->in <= 0 ? "in_channels" : "out_channels",
                            (long long)(s->in <= 0 ? s->in : s->out));
    if (s->groups <= 0)
        return em_set_error(EM_ERR_INVALID, "Conv2d: groups must be positive, got %lld",
                            (long long)s->groups);
    if (s->in % s->groups || s->out % s->groups)
        return em_set_error(EM_ERR_INVALID,
                            "Conv2d: in_channels (%lld) and out_channels (%lld) must both be "
                            "divisible by groups (%lld)",
                            (long long)s->in, (long long)s->out, (long long)s->groups);
    int rc = nn__pair("Conv2d", a, "kernel_size", 1, s->w.k);
    if (rc == EM_OK)
        rc = nn__pair("Conv2d", a, "stride", 1, s->w.s);
    if (rc == EM_OK)
        rc = nn__pair("Conv2d", a, "padding", 0, s->w.p);
    if (rc == EM_OK)
        rc = nn__pair("Conv2d", a, "dilation", 1, s->w.d);
    if (rc < 0)
        return rc;
    const char *mode = em_args_has(a, "padding_mode") ? em_args_str(a, "padding_mode") : "";
    if (strcmp(mode, "zeros") != 0)
        return em_set_error(EM_ERR_INVALID,
                            "Conv2d: padding_mode \"%s\" is not supported (only \"zeros\")", mode);
    em_opts o;
    if ((rc = nn__factory_opts("Conv2d", a, &o)) < 0)
        return rc;
    int64_t cg = s->in / s->groups;
    double bound = 1.0 / sqrt((double)(cg * s->w.k[0] * s->w.k[1]));
    rc = nn__add_param(m, "weight", nn__uniform(EM_SHAPE(s->out, cg, s->w.k[0], s->w.k[1]),
                                                bound, &o));
    if (rc == EM_OK && em_args_bool(a, "bias"))
        rc = nn__add_param(m, "bias", nn__uniform(EM_SHAPE(s->out), bound, &o));
    return rc;
}

static void conv_destroy(em_module *m)
{
    conv_state *s = em_module_state(m);
    cache_clear(&s->cache);
}

static em_tensor *conv_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    conv_state *s = em_module_state(m);
    em_tensor *w = em_module_parameter(m, "weight"), *b = em_module_parameter(m, "bias");
    if (nn__check_param_dtype("Conv2d", in[0], w) < 0)
        return NULL;
    em_tensor *x = batched("Conv2d", in[0], s->in);
    if (!x)
        return NULL;
    if (cache_prepare("Conv2d", &s->cache, &s->w, x) < 0) {
        em_release(x);
        return NULL;
    }
    int64_t N = em_shape(x)[0], G = s->groups, K = s->w.k[0] * s->w.k[1];
    int64_t OH = s->cache.OH, OW = s->cache.OW, CK = s->in / G * K;
    em_tensor *cols = unfold(x, &s->cache, &s->w, 0.0);
    em_tensor *cg = em_reshape(cols, EM_SHAPE(N, G, CK, OH * OW));
    em_tensor *wg = em_reshape(w, EM_SHAPE(G, s->out / G, CK));
    em_tensor *yg = em_matmul(wg, cg);                     /* (N, G, O/G, L) */
    em_tensor *y = em_reshape(yg, EM_SHAPE(N, s->out, OH, OW));
    em_release(cols);
    em_release(cg);
    em_release(wg);
    em_release(yg);
    if (y && b) {
        em_tensor *bv = em_reshape(b, EM_SHAPE(s->out, 1, 1));
        em_tensor *yb = em_add(y, bv);
        em_release(bv);
        em_release(y);
        y = yb;
    }
    em_release(x);
    return unbatched_like(y, in[0]);
}

/* ---- MaxPool2d ------------------------------------------------------------------------------------ */

static const em_param_decl pool_params[] = {
    {"kernel_size", EM_PARAM_INTS, NULL},
    {"stride", EM_PARAM_INTS, "None"},
    {"padding", EM_PARAM_INTS, "0"},
    {"dilation", EM_PARAM_INTS, "1"},
    {"return_indices", EM_PARAM_BOOL, "false"},
    {"ceil_mode", EM_PARAM_BOOL, "false"},
};

typedef struct pool_state {
    window w;
    unfold_cache cache;
} pool_state;

static int pool_init(em_module *m, const em_args *a)
{
    pool_state *s = em_module_state(m);
    int rc = nn__pair("MaxPool2d", a, "kernel_size", 1, s->w.k);
    if (rc == EM_OK && em_args_has(a, "stride"))
        rc = nn__pair("MaxPool2d", a, "stride", 1, s->w.s);
    else if (rc == EM_OK)
        memcpy(s->w.s, s->w.k, sizeof s->w.s);   /* stride defaults to kernel_size */
    if (rc == EM_OK)
        rc = nn__pair("MaxPool2d", a, "padding", 0, s->w.p);
    if (rc == EM_OK)
        rc = nn__pair("MaxPool2d", a, "dilation", 1, s->w.d);
    if (rc < 0)
        return rc;
    for (int i = 0; i < 2; i++)
        if (s->w.p[i] > s->w.k[i] / 2)
            return em_set_error(EM_ERR_INVALID,
                                "MaxPool2d: padding should be at most half of kernel size, but "
                                "got padding=%lld and kernel_size=%lld",
                                (long long)s->w.p[i], (long long)s->w.k[i]);
    if (em_args_bool(a, "return_indices"))
        return em_set_error(EM_ERR_UNSUPPORTED,
                            "MaxPool2d: return_indices=true is not supported (a module returns "
                            "one tensor)");
    s->w.ceil_mode = em_args_bool(a, "ceil_mode");
    return EM_OK;
}

static void pool_destroy(em_module *m)
{
    pool_state *s = em_module_state(m);
    cache_clear(&s->cache);
}

static em_tensor *pool_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    pool_state *s = em_module_state(m);
    if (nn__check_float("MaxPool2d", "input", in[0]) < 0)
        return NULL;
    em_tensor *x = batched("MaxPool2d", in[0], 0);
    if (!x)
        return NULL;
    if (cache_prepare("MaxPool2d", &s->cache, &s->w, x) < 0) {
        em_release(x);
        return NULL;
    }
    int64_t N = em_shape(x)[0], C = em_shape(x)[1];
    em_tensor *cols = unfold(x, &s->cache, &s->w, -INFINITY);   /* (N, C, K, L) */
    em_tensor *am = em_argmax(cols, 2, true);                   /* (N, C, 1, L) */
    em_tensor *mx = am ? em_gather(cols, 2, am) : NULL;
    em_tensor *y = em_reshape(mx, EM_SHAPE(N, C, s->cache.OH, s->cache.OW));
    em_release(cols);
    em_release(am);
    em_release(mx);
    em_release(x);
    return unbatched_like(y, in[0]);
}

static const em_module_ops conv_types[] = {
    NN_MODULE("Conv2d", conv_params, sizeof(conv_state), 1, conv_init, conv_forward,
              conv_destroy),
    NN_MODULE("MaxPool2d", pool_params, sizeof(pool_state), 1, pool_init, pool_forward,
              pool_destroy),
};

int nn__register_conv(em_registry *reg)
{
    return nn__register_all(reg, conv_types, sizeof conv_types / sizeof conv_types[0]);
}
