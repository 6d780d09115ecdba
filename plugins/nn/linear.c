/* plugins/nn/linear.c - Linear: y = x @ weight^T + bias.
 *
 *   x: (*, in_features), weight: (out_features, in_features), bias: (out_features), y: (*, out)
 *
 * Initialised as PyTorch's reset_parameters(): kaiming_uniform_(weight, a=sqrt(5)), which is
 * U(-1/sqrt(in), 1/sqrt(in)), then bias from the same range; the weight is drawn first, so a
 * seed gives the same layer every time. The forward is em_linear (AddmmBackward0); inside a
 * Sequential, a Linear followed by a ReLU runs as one em_linear_relu (containers.c).
 */
#include <math.h>

#include "nn.h"

static const em_param_decl linear_params[] = {
    {"in_features", EM_PARAM_INT, NULL},
    {"out_features", EM_PARAM_INT, NULL},
    {"bias", EM_PARAM_BOOL, "true"},
    {"device", EM_PARAM_STRING, "None"},
    {"dtype", EM_PARAM_STRING, "None"},
};

static int linear_init(em_module *m, const em_args *a)
{
    int64_t in = em_args_int(a, "in_features"), out = em_args_int(a, "out_features");
    if (in <= 0)
        return em_set_error(EM_ERR_INVALID, "Linear: in_features must be positive, got %lld",
                            (long long)in);
    if (out <= 0)
        return em_set_error(EM_ERR_INVALID, "Linear: out_features must be positive, got %lld",
                            (long long)out);
    em_opts o;
    int rc = nn__factory_opts("Linear", a, &o);
    if (rc < 0)
        return rc;
    /* kaiming_uniform_(a = sqrt(5)): gain sqrt(2 / (1 + 5)), bound = gain * sqrt(3 / fan_in) */
    double bound = 1.0 / sqrt((double)in);
    rc = nn__add_param(m, "weight", nn__uniform(EM_SHAPE(out, in), bound, &o));
    if (rc == EM_OK && em_args_bool(a, "bias"))
        rc = nn__add_param(m, "bias", nn__uniform(EM_SHAPE(out), bound, &o));
    return rc;
}

em_tensor *nn__linear_forward(em_module *m, em_tensor *x, bool relu)
{
    em_tensor *w = em_module_parameter(m, "weight"), *b = em_module_parameter(m, "bias");
    int64_t nf = em_shape(w)[1];
    char s[160];
    if (em_ndim(x) < 1 || em_shape(x)[em_ndim(x) - 1] != nf) {
        em_set_error(EM_ERR_INVALID, "Linear: input of shape %s does not fit in_features=%lld",
                     nn__shape_str(x, s, sizeof s), (long long)nf);
        return NULL;
    }
    if (nn__check_param_dtype("Linear", x, w) < 0)
        return NULL;
    return relu ? em_linear_relu(x, w, b) : em_linear(x, w, b);
}

static em_tensor *linear_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    return nn__linear_forward(m, in[0], false);
}

static void linear_repr(const em_module *m, char *buf, size_t size)
{
    const em_args *a = em_module_args(m);
    snprintf(buf, size, "in_features=%lld, out_features=%lld, bias=%s",
             (long long)em_args_int(a, "in_features"), (long long)em_args_int(a, "out_features"),
             nn__bool_repr(em_args_bool(a, "bias")));
}

static const em_module_ops linear_types[] = {
    NN_MODULE_R("Linear", linear_params, 0, 1, linear_init, linear_forward, NULL,
                linear_repr),
};

int nn__register_linear(em_registry *reg)
{
    return nn__register_all(reg, linear_types, sizeof linear_types / sizeof linear_types[0]);
}
