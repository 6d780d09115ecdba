/* plugins/nn/conformance.c - the nn plugin's ops in the conformance suite: gelu and
 * gelu_backward (elementwise references: libm's erfc in float64), binary_cross_entropy
 * (elementwise reference, logs clamped at -100 as PyTorch's), im2col and col2im (against the
 * CPU backend in float64: padding, stride, dilation, a non-square window). Every backend then
 * has these ops checked, whether it runs them through a kernel or the composites, and their
 * gradients (im2col's is col2im and the other way round) by central differences.
 */
#include <math.h>
#include <string.h>

#include "nn.h"

static double cdf(double x) { return 0.5 * erfc(-x * 0.70710678118654752440); }

static double ref_gelu(int nin, const double *x, const em_attr *attrs)
{
    (void)nin;
    (void)attrs;
    return x[0] * cdf(x[0]);
}

/* gelu_backward(g, x) = g * (Phi(x) + x * phi(x)) */
static double ref_gelu_backward(int nin, const double *x, const em_attr *attrs)
{
    (void)nin;
    (void)attrs;
    return x[0] * (cdf(x[1]) + x[1] * exp(-0.5 * x[1] * x[1]) * 0.39894228040143267794);
}

static double clamped_log(double v) { return fmax(log(v), -100.0); }

static double ref_bce(int nin, const double *x, const em_attr *attrs)
{
    (void)nin;
    (void)attrs;
    return -(x[1] * clamped_log(x[0]) + (1 - x[1]) * clamped_log(1 - x[0]));
}

/* The window attributes: kernel, stride, padding, dilation, out, then fill (im2col) or size
 * (col2im). */
static void window(em_attr *a, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph,
                   int64_t pw, int64_t dh, int64_t dw, int64_t H, int64_t W)
{
    const int64_t v[4][2] = {{kh, kw}, {sh, sw}, {ph, pw}, {dh, dw}};
    for (int i = 0; i < 4; i++) {
        a[i] = (em_attr){.n = 2};
        a[i].ints[0] = v[i][0];
        a[i].ints[1] = v[i][1];
    }
    a[4] = (em_attr){.n = 2};
    a[4].ints[0] = (H + 2 * ph - dh * (kh - 1) - 1) / sh + 1;
    a[4].ints[1] = (W + 2 * pw - dw * (kw - 1) - 1) / sw + 1;
    a[5] = (em_attr){.n = 2};
    a[5].ints[0] = H;
    a[5].ints[1] = W;
}

static int add(em_registry *reg, em_conformance_case *c)
{
    c->struct_size = sizeof *c;
    return em_register_conformance_case(reg, c);
}

int nn__register_conformance(em_registry *reg)
{
    em_attr conv[6], pool[6], conv_fill0[6], pool_size[6];   /* copied with the cases */
    window(conv, 3, 2, 2, 1, 1, 0, 1, 2, 6, 5);
    window(pool, 2, 2, 2, 2, 0, 0, 1, 1, 6, 6);
    memcpy(conv_fill0, conv, sizeof conv);
    conv_fill0[5] = (em_attr){.f = 0};           /* im2col: fill 0 (convolution padding) */
    memcpy(pool_size, pool, sizeof pool);
    pool[5] = (em_attr){.f = -INFINITY};        /* im2col: fill -inf (max pooling) */
    int64_t conv_l = conv[4].ints[0] * conv[4].ints[1], pool_l = pool[4].ints[0] * pool[4].ints[1];

    em_conformance_case cases[] = {
        {.op = "gelu", .label = "[4, 5]", .nin = 1, .in = {{2, {4, 5}, 0, -4, 4}},
         .flags = EM_CONF_DIFFERENTIABLE, .reference = ref_gelu},
        {.op = "gelu", .label = "large", .nin = 1, .in = {{2, {64, 300}, 0, -8, 8}},
         .reference = ref_gelu},
        {.op = "gelu_backward", .label = "[3, 7]", .nin = 2,
         .in = {{2, {3, 7}, 0, -2, 2}, {2, {3, 7}, 0, -4, 4}}, .reference = ref_gelu_backward},
        {.op = "binary_cross_entropy", .label = "[4, 6]", .nin = 2,
         .in = {{2, {4, 6}, 0, 0.05, 0.95}, {2, {4, 6}, 0, 0, 1}},
         .flags = EM_CONF_DIFFERENTIABLE, .reference = ref_bce},
        {.op = "im2col", .label = "3x2 window, stride 2x1, padding 1x0, dilation 1x2", .nin = 1,
         .in = {{.ndim = 4, .shape = {2, 3, 6, 5}}}, .nattrs = 6, .attrs = conv_fill0,
         .flags = EM_CONF_DIFFERENTIABLE},
        {.op = "im2col", .label = "2x2 pooling windows, fill -inf", .nin = 1,
         .in = {{.ndim = 4, .shape = {1, 2, 6, 6}}}, .nattrs = 6, .attrs = pool},
        {.op = "col2im", .label = "3x2 window, stride 2x1, padding 1x0, dilation 1x2", .nin = 1,
         .in = {{.ndim = 4, .shape = {2, 3, 6, conv_l}}}, .nattrs = 6, .attrs = conv,
         .flags = EM_CONF_DIFFERENTIABLE},
        {.op = "col2im", .label = "2x2 pooling windows", .nin = 1,
         .in = {{.ndim = 4, .shape = {1, 2, 4, pool_l}}}, .nattrs = 6, .attrs = pool_size},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = add(reg, &cases[i]);
        if (rc < 0)
            return rc;
    }
    return EM_OK;
}
