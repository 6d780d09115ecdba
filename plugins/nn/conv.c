/* plugins/nn/conv.c - Conv2d and MaxPool2d for small images, written in ops.
 *
 * Both unfold the input into its sliding windows with the plugin's im2col op (unfold.c):
 *
 *   x: (N, C, H, W) -> cols: (N, C, K, L),  K = kh*kw window positions, L = OH*OW outputs
 *
 * with padded positions reading 0 (Conv2d) or -inf (MaxPool2d). Then
 *
 *   Conv2d:    y = weight (G, O/G, C/G*K) @ cols (N, G, C/G*K, L) + bias -> (N, O, OH, OW)
 *   MaxPool2d: y = gather(cols, argmax over K) -> (N, C, OH, OW)
 *
 * so autograd differentiates them through im2col's backward (col2im), matmul and gather; max
 * pooling routes each gradient to the first maximum of its window, as PyTorch's CPU kernel
 * does. Inputs may also be unbatched (C, H, W). Output sizes follow PyTorch (ceil_mode
 * included). Conv2d's weight and bias start U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
 * fan_in = in_channels/groups * kh * kw, as PyTorch's reset_parameters().
 */
#include <math.h>
#include <string.h>

#include "nn.h"

/* ---- windows -------------------------------------------------------------------------------- */

typedef struct window {
    int64_t k[2], s[2], p[2], d[2];   /* kernel, stride, padding, dilation: (h, w) */
    bool ceil_mode;
} window;

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

static void pair_attr(em_attr *a, const int64_t v[2])
{
    memset(a, 0, sizeof *a);
    a->n = 2;
    a->ints[0] = v[0];
    a->ints[1] = v[1];
}

/* x: (N, C, H, W) -> (N, C, K, L) through the im2col op; *oh, *ow receive the output size. */
static em_tensor *unfold(const char *type, em_tensor *x, const window *w, double fill,
                         int64_t *oh, int64_t *ow)
{
    int64_t H = em_shape(x)[2], W = em_shape(x)[3];
    int64_t out[2] = {out_size(H, w->k[0], w->s[0], w->p[0], w->d[0], w->ceil_mode),
                      out_size(W, w->k[1], w->s[1], w->p[1], w->d[1], w->ceil_mode)};
    if (out[0] <= 0 || out[1] <= 0) {
        char b[160];
        em_set_error(EM_ERR_INVALID,
                     "%s: input of shape %s is too small: padded size (%lld x %lld) is smaller "
                     "than the dilated kernel (%lld x %lld)",
                     type, nn__shape_str(x, b, sizeof b), (long long)(H + 2 * w->p[0]),
                     (long long)(W + 2 * w->p[1]), (long long)(w->d[0] * (w->k[0] - 1) + 1),
                     (long long)(w->d[1] * (w->k[1] - 1) + 1));
        return NULL;
    }
    em_attr a[6];
    pair_attr(&a[0], w->k);
    pair_attr(&a[1], w->s);
    pair_attr(&a[2], w->p);
    pair_attr(&a[3], w->d);
    pair_attr(&a[4], out);
    memset(&a[5], 0, sizeof a[5]);
    a[5].f = fill;
    *oh = out[0];
    *ow = out[1];
    return em_op_call("im2col", 1, &x, 6, a);
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

/* ---- Conv2d ---------------------------------------------------------------------------------- */

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
} conv_state;

static int conv_init(em_module *m, const em_args *a)
{
    conv_state *s = em_module_private(m);
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

static em_tensor *conv_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    conv_state *s = em_module_private(m);
    em_tensor *w = em_module_parameter(m, "weight"), *b = em_module_parameter(m, "bias");
    if (nn__check_param_dtype("Conv2d", in[0], w) < 0)
        return NULL;
    em_tensor *x = batched("Conv2d", in[0], s->in);
    if (!x)
        return NULL;
    int64_t N = em_shape(x)[0], G = s->groups, K = s->w.k[0] * s->w.k[1];
    int64_t OH = 0, OW = 0, CK = s->in / G * K;
    em_tensor *cols = unfold("Conv2d", x, &s->w, 0.0, &OH, &OW);
    if (!cols) {
        em_release(x);
        return NULL;
    }
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

/* ---- MaxPool2d ------------------------------------------------------------------------------- */

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
} pool_state;

static int pool_init(em_module *m, const em_args *a)
{
    pool_state *s = em_module_private(m);
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

static em_tensor *pool_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    pool_state *s = em_module_private(m);
    if (nn__check_float("MaxPool2d", "input", in[0]) < 0)
        return NULL;
    em_tensor *x = batched("MaxPool2d", in[0], 0);
    if (!x)
        return NULL;
    int64_t N = em_shape(x)[0], C = em_shape(x)[1], OH = 0, OW = 0;
    em_tensor *cols = unfold("MaxPool2d", x, &s->w, -INFINITY, &OH, &OW);   /* (N, C, K, L) */
    em_tensor *am = cols ? em_argmax(cols, 2, true) : NULL;                 /* (N, C, 1, L) */
    em_tensor *mx = am ? em_gather(cols, 2, am) : NULL;
    em_tensor *y = mx ? em_reshape(mx, EM_SHAPE(N, C, OH, OW)) : NULL;
    em_release(cols);
    em_release(am);
    em_release(mx);
    em_release(x);
    return unbatched_like(y, in[0]);
}

/* ---- print(model) -------------------------------------------------------------------------- */

/* Whether every value of int list `name` equals v. */
static bool all_ints(const em_args *a, const char *name, int64_t v)
{
    for (int i = 0; i < em_args_count(a, name); i++)
        if (em_args_int_at(a, name, i) != v)
            return false;
    return true;
}

/* PyTorch's _ConvNd.extra_repr: padding and dilation only where not the default. */
static void conv_repr(const em_module *m, char *buf, size_t size)
{
    const em_args *a = em_module_args(m);
    char ks[48], st[48], pd[48], dl[48];
    size_t k = 0;
#define PUT(...)                                                                              \
    do {                                                                                     \
        int w_ = snprintf(buf + k, size - k, __VA_ARGS__);                                   \
        k = w_ < 0 || (size_t)w_ >= size - k ? size - 1 : k + (size_t)w_;                    \
    } while (0)
    PUT("%lld, %lld, kernel_size=%s, stride=%s", (long long)em_args_int(a, "in_channels"),
        (long long)em_args_int(a, "out_channels"),
        nn__ints_repr(a, "kernel_size", true, ks, sizeof ks),
        nn__ints_repr(a, "stride", true, st, sizeof st));
    if (!all_ints(a, "padding", 0))
        PUT(", padding=%s", nn__ints_repr(a, "padding", true, pd, sizeof pd));
    if (!all_ints(a, "dilation", 1))
        PUT(", dilation=%s", nn__ints_repr(a, "dilation", true, dl, sizeof dl));
    if (em_args_int(a, "groups") != 1)
        PUT(", groups=%lld", (long long)em_args_int(a, "groups"));
    if (!em_args_bool(a, "bias"))
        PUT(", bias=False");
#undef PUT
}

/* PyTorch's MaxPool2d.extra_repr: the arguments as given (stride defaults to kernel_size). */
static void pool_repr(const em_module *m, char *buf, size_t size)
{
    const em_args *a = em_module_args(m);
    const char *stride = em_args_has(a, "stride") ? "stride" : "kernel_size";
    char ks[48], st[48], pd[48], dl[48];
    snprintf(buf, size, "kernel_size=%s, stride=%s, padding=%s, dilation=%s, ceil_mode=%s",
             nn__ints_repr(a, "kernel_size", false, ks, sizeof ks),
             nn__ints_repr(a, stride, false, st, sizeof st),
             nn__ints_repr(a, "padding", false, pd, sizeof pd),
             nn__ints_repr(a, "dilation", false, dl, sizeof dl),
             nn__bool_repr(em_args_bool(a, "ceil_mode")));
}

static const em_module_ops conv_types[] = {
    NN_MODULE_R("Conv2d", conv_params, sizeof(conv_state), 1, conv_init, conv_forward, NULL,
                conv_repr),
    NN_MODULE_R("MaxPool2d", pool_params, sizeof(pool_state), 1, pool_init, pool_forward, NULL,
                pool_repr),
};

int nn__register_conv(em_registry *reg)
{
    return nn__register_all(reg, conv_types, sizeof conv_types / sizeof conv_types[0]);
}
