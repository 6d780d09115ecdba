/* plugins/nn/plugin.c - the nn plugin: descriptor, registration of every layer and loss type
 * (and the gelu op), and the helpers the family files share.
 *
 * Not here: any layer's math (one file per family: linear.c, activations.c, gelu.c,
 * containers.c, dropout.c, batchnorm.c, embedding.c, unfold.c, conv.c, losses.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

/* ---- shared helpers ------------------------------------------------------------------------ */

int nn__register_all(em_registry *reg, const em_module_ops *types, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = em_register_module(reg, &types[i]);
        if (rc < 0)
            return rc;
    }
    return EM_OK;
}

const char *nn__ints_repr(const em_args *a, const char *name, bool pair, char *buf, size_t size)
{
    int n = em_args_count(a, name);
    if (n == 1 && !pair) {
        snprintf(buf, size, "%lld", (long long)em_args_int_at(a, name, 0));
        return buf;
    }
    int count = n == 1 ? 2 : n;
    size_t k = (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < count && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, i ? ", %lld" : "%lld",
                              (long long)em_args_int_at(a, name, n == 1 ? 0 : i));
    if (k < size)
        snprintf(buf + k, size - k, ")");
    return buf;
}

void nn__no_extra_repr(const em_module *m, char *buf, size_t size)
{
    (void)m;
    if (size)
        buf[0] = '\0';
}

const char *nn__dims_str(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < ndim && k < size; d++)
        k += (size_t)snprintf(buf + k, size - k, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (k < size)
        snprintf(buf + k, size - k, "]");
    return buf;
}

const char *nn__shape_str(const em_tensor *t, char *buf, size_t size)
{
    return nn__dims_str(em_ndim(t), em_shape(t), buf, size);
}

int nn__factory_opts(const char *type, const em_args *a, em_opts *out)
{
    memset(out, 0, sizeof *out);
    out->dtype = EM_F32;
    if (em_args_has(a, "dtype")) {
        const char *name = em_args_str(a, "dtype");
        em_dtype dt = em_dtype_parse(name);
        if (dt == EM_DTYPE_UNSPEC)
            return em_set_error(EM_ERR_INVALID, "%s: unknown dtype \"%s\" (float32, float64, "
                                                "float16 or bfloat16)",
                                type, name);
        if (!em_dtype_is_float(dt))
            return em_set_error(EM_ERR_INVALID,
                                "%s: dtype must be a floating point type, got \"%s\"", type, name);
        out->dtype = dt;
    }
    if (em_args_has(a, "device")) {
        const char *name = em_args_str(a, "device");
        em_device d = em_device_parse(name);
        if (d.index < 0) {
            char why[256];   /* copied: em_set_error rewrites the buffer em_last_error reads */
            snprintf(why, sizeof why, "%s", em_last_error());
            return em_set_error(EM_ERR_DEVICE, "%s: bad device \"%s\": %s", type, name, why);
        }
        out->device = d;
    }
    return EM_OK;
}

em_tensor *nn__uniform(int ndim, const int64_t *shape, double bound, const em_opts *o)
{
    em_tensor *r = em_rand(ndim, shape, o);
    if (!r)
        return NULL;
    /* from + u * (to - from), as PyTorch's uniform_ */
    em_tensor *a = em_mul_scalar_(r, 2 * bound);
    em_tensor *b = a ? em_add_scalar_(r, -bound) : NULL;
    em_release(a);
    em_release(b);
    if (!b) {
        em_release(r);
        return NULL;
    }
    return r;
}

int nn__add_param(em_module *m, const char *name, em_tensor *t)
{
    if (!t)
        return em_last_status() < 0 ? em_last_status() : EM_ERR_INTERNAL;
    int rc = em_module_add_parameter(m, name, t);
    em_release(t);
    return rc;
}

int nn__add_buffer(em_module *m, const char *name, em_tensor *t)
{
    if (!t)
        return em_last_status() < 0 ? em_last_status() : EM_ERR_INTERNAL;
    int rc = em_module_add_buffer(m, name, t);
    em_release(t);
    return rc;
}

int nn__check_float(const char *type, const char *what, const em_tensor *x)
{
    if (!em_dtype_is_float(em_dtype_of(x)))
        return em_set_error(EM_ERR_INVALID, "%s: %s must be floating point, got %s", type, what,
                            em_dtype_name(em_dtype_of(x)));
    return EM_OK;
}

int nn__check_param_dtype(const char *type, const em_tensor *x, const em_tensor *w)
{
    int rc = nn__check_float(type, "input", x);
    if (rc < 0)
        return rc;
    if (em_dtype_of(x) != em_dtype_of(w))
        return em_set_error(EM_ERR_INVALID,
                            "%s: input is %s but the layer's parameters are %s (build the layer "
                            "with dtype=\"%s\", or cast the input)",
                            type, em_dtype_name(em_dtype_of(x)), em_dtype_name(em_dtype_of(w)),
                            em_dtype_name(em_dtype_of(x)));
    return EM_OK;
}

int nn__pair(const char *type, const em_args *a, const char *name, int64_t min, int64_t out[2])
{
    int n = em_args_count(a, name);
    if (n != 1 && n != 2)
        return em_set_error(EM_ERR_INVALID, "%s: %s must be one number or a list of two, got %d",
                            type, name, n);
    out[0] = em_args_int_at(a, name, 0);
    out[1] = em_args_int_at(a, name, n == 2 ? 1 : 0);
    for (int i = 0; i < 2; i++)
        if (out[i] < min)
            return em_set_error(EM_ERR_INVALID, "%s: %s must be %s, got %lld", type, name,
                                min > 0 ? "positive" : "non-negative", (long long)out[i]);
    return EM_OK;
}

/* ---- the plugin ---------------------------------------------------------------------------- */

static int nn_init(em_registry *reg)
{
    int (*const families[])(em_registry *) = {
        nn__register_gelu_ops,    nn__register_unfold_ops, nn__register_linear,
        nn__register_activations, nn__register_containers, nn__register_dropout,
        nn__register_batchnorm,   nn__register_embedding,  nn__register_conv,
        nn__register_losses,      nn__register_conformance,
    };
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        int rc = families[i](reg);
        if (rc < 0)
            return rc;
    }
    return EM_OK;
}

EM_PLUGIN_DEFINE(
    "nn", EMBER_VERSION_STRING,
    "layers (Linear, Conv2d, BatchNorm1d, Sequential...) and losses (CrossEntropyLoss...)",
    nn_init, NULL)
