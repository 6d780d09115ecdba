/* plugins/nn/batchnorm.c - BatchNorm1d (inputs (N, C) or (N, C, L)) and BatchNorm2d
 * ((N, C, H, W)): y = (x - mean) / sqrt(var + eps) * weight + bias, per channel C.
 *
 * As PyTorch: in training mode (and whenever track_running_stats is false) mean and var are
 * the batch's, var biased (divided by n) for normalising; the buffers running_mean and
 * running_var are then updated in place, without recording, with the unbiased var (divided by
 * n - 1): running = (1 - momentum) * running + momentum * batch, or a cumulative average when
 * momentum is None; num_batches_tracked (int64) counts the updates. In eval mode the running
 * statistics are used. weight starts at 1, bias at 0, running_mean at 0, running_var at 1.
 * The normalisation is written in ops (mean, sub, mul, sqrt, div), so autograd differentiates
 * through the batch statistics.
 */
#include <math.h>

#include "nn.h"

static const em_param_decl bn_params[] = {
    {"num_features", EM_PARAM_INT, NULL},
    {"eps", EM_PARAM_FLOAT, "1e-5"},
    {"momentum", EM_PARAM_FLOAT, "0.1"},
    {"affine", EM_PARAM_BOOL, "true"},
    {"track_running_stats", EM_PARAM_BOOL, "true"},
    {"device", EM_PARAM_STRING, "None"},
    {"dtype", EM_PARAM_STRING, "None"},
};

static int bn_init(em_module *m, const em_args *a)
{
    const char *type = em_module_type(m);
    int64_t c = em_args_int(a, "num_features");
    if (c <= 0)
        return em_set_error(EM_ERR_INVALID, "%s: num_features must be positive, got %lld", type,
                            (long long)c);
    if (!em_args_has(a, "eps") || !(em_args_float(a, "eps") >= 0))
        return em_set_error(EM_ERR_INVALID, "%s: eps must be a non-negative number", type);
    if (em_args_has(a, "momentum")) {
        double mo = em_args_float(a, "momentum");
        if (!(mo >= 0 && mo <= 1))
            return em_set_error(EM_ERR_INVALID, "%s: momentum must be in [0, 1] or None, got %g",
                                type, mo);
    }
    em_opts o;
    int rc = nn__factory_opts(type, a, &o);
    if (rc < 0)
        return rc;
    if (em_args_bool(a, "affine")) {
        rc = nn__add_param(m, "weight", em_ones(EM_SHAPE(c), &o));
        if (rc == EM_OK)
            rc = nn__add_param(m, "bias", em_zeros(EM_SHAPE(c), &o));
    }
    if (rc == EM_OK && em_args_bool(a, "track_running_stats")) {
        em_opts oi = o;
        oi.dtype = EM_I64;
        rc = nn__add_buffer(m, "running_mean", em_zeros(EM_SHAPE(c), &o));
        if (rc == EM_OK)
            rc = nn__add_buffer(m, "running_var", em_ones(EM_SHAPE(c), &o));
        if (rc == EM_OK)
            rc = nn__add_buffer(m, "num_batches_tracked", em_zeros(EM_SCALAR, &oi));
    }
    return rc;
}

/* running = (1 - f) running + f batch, in place (grad mode is off). */
static int blend_(em_tensor *running, em_tensor *batch, double f)
{
    em_tensor *a = em_mul_scalar_(running, 1.0 - f);
    em_tensor *fb = em_mul_scalar(batch, f);
    em_tensor *b = a && fb ? em_add_(running, fb) : NULL;
    em_release(a);
    em_release(fb);
    em_release(b);
    return b ? EM_OK : em_last_status();
}

/* Updates the running statistics from the batch's mean and biased var (shape (C) each). */
static int update_running(em_module *m, em_tensor *mean, em_tensor *var, int64_t count)
{
    const em_args *a = em_module_args(m);
    em_tensor *rm = em_module_buffer(m, "running_mean"), *rv = em_module_buffer(m, "running_var");
    em_tensor *nbt = em_module_buffer(m, "num_batches_tracked");
    int rc = EM_OK;
    EM_NO_GRAD
    {
        em_opts oi = {.dtype = EM_I64, .device = em_device_of(nbt)};
        em_tensor *one = em_ones(EM_SCALAR, &oi);
        em_tensor *r = one ? em_add_(nbt, one) : NULL;
        if (!r)
            rc = em_last_status();
        em_release(r);
        em_release(one);
        double f = em_args_has(a, "momentum") ? em_args_float(a, "momentum")
                                              : 1.0 / em_item(nbt);   /* cumulative average */
        em_tensor *unbiased = rc == EM_OK ? em_mul_scalar(var, (double)count / (double)(count - 1))
                                          : NULL;
        if (rc == EM_OK)
            rc = blend_(rm, mean, f);
        if (rc == EM_OK)
            rc = unbiased ? blend_(rv, unbiased, f) : em_last_status();
        em_release(unbiased);
    }
    return rc;
}

static em_tensor *bn_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    const char *type = em_module_type(m);
    const em_args *a = em_module_args(m);
    em_tensor *x = in[0];
    em_tensor *w = em_module_parameter(m, "weight"), *b = em_module_parameter(m, "bias");
    em_tensor *rm = em_module_buffer(m, "running_mean"), *rv = em_module_buffer(m, "running_var");
    int64_t c = em_args_int(a, "num_features");
    int nd = em_ndim(x);
    bool two_d = type[9] == '2';   /* "BatchNorm2d" */
    char s[160];
    if (two_d ? nd != 4 : (nd != 2 && nd != 3)) {
        em_set_error(EM_ERR_INVALID, "%s: expected %s input (got %dD input of shape %s)", type,
                     two_d ? "4D" : "2D or 3D", nd, nn__shape_str(x, s, sizeof s));
        return NULL;
    }
    if (em_shape(x)[1] != c) {
        em_set_error(EM_ERR_INVALID, "%s: input of shape %s does not fit num_features=%lld", type,
                     nn__shape_str(x, s, sizeof s), (long long)c);
        return NULL;
    }
    em_tensor *ref = w ? w : rm;
    if (ref ? nn__check_param_dtype(type, x, ref) < 0 : nn__check_float(type, "input", x) < 0)
        return NULL;

    int dims[3] = {0, 2, 3};
    int ndims = nd - 1;
    int64_t pshape[3] = {c, 1, 1};   /* parameters viewed to broadcast over (N, C, ...) */
    int pnd = nd - 1;
    int64_t count = em_numel(x) / c;
    bool training = em_module_is_training(m);
    bool batch_stats = training || !rm;
    em_tensor *xc = NULL, *den = NULL, *y = NULL;
    if (batch_stats) {
        if (training && count <= 1) {
            em_set_error(EM_ERR_INVALID, "%s: expected more than 1 value per channel when "
                                         "training, got input of shape %s",
                         type, nn__shape_str(x, s, sizeof s));
            return NULL;
        }
        em_tensor *mean = em_mean(x, ndims, dims, true);
        xc = em_sub(x, mean);
        em_tensor *sq = em_mul(xc, xc);
        em_tensor *var = em_mean(sq, ndims, dims, true);
        den = em_add_scalar(var, em_args_float(a, "eps"));
        int rc = den ? EM_OK : em_last_status();
        if (rc == EM_OK && training && rm) {
            em_tensor *mc = em_reshape(mean, EM_SHAPE(c)), *vc = em_reshape(var, EM_SHAPE(c));
            rc = mc && vc ? update_running(m, mc, vc, count) : em_last_status();
            em_release(mc);
            em_release(vc);
        }
        em_release(mean);
        em_release(sq);
        em_release(var);
        if (rc < 0) {
            em_release(xc);
            em_release(den);
            return NULL;
        }
    } else {
        em_tensor *mv = em_reshape(rm, pnd, pshape), *vv = em_reshape(rv, pnd, pshape);
        xc = em_sub(x, mv);
        den = em_add_scalar(vv, em_args_float(a, "eps"));
        em_release(mv);
        em_release(vv);
    }
    em_tensor *sd = em_sqrt(den);
    y = em_div(xc, sd);
    em_release(sd);
    em_release(den);
    em_release(xc);
    if (y && w) {
        em_tensor *wv = em_reshape(w, pnd, pshape), *bv = em_reshape(b, pnd, pshape);
        em_tensor *yw = em_mul(y, wv);
        em_release(y);
        y = em_add(yw, bv);
        em_release(yw);
        em_release(wv);
        em_release(bv);
    }
    return y;
}

static void bn_repr(const em_module *m, char *buf, size_t size)
{
    const em_args *a = em_module_args(m);
    char eps[32], mom[32] = "None";   /* momentum=None: a cumulative average */
    if (em_args_has(a, "momentum"))
        em_float_repr(em_args_float(a, "momentum"), mom, sizeof mom);
    snprintf(buf, size, "%lld, eps=%s, momentum=%s, affine=%s, track_running_stats=%s",
             (long long)em_args_int(a, "num_features"),
             em_float_repr(em_args_float(a, "eps"), eps, sizeof eps), mom,
             nn__bool_repr(em_args_bool(a, "affine")),
             nn__bool_repr(em_args_bool(a, "track_running_stats")));
}

static const em_module_ops bn_types[] = {
    NN_MODULE_R("BatchNorm1d", bn_params, 0, 1, bn_init, bn_forward, NULL, bn_repr),
    NN_MODULE_R("BatchNorm2d", bn_params, 0, 1, bn_init, bn_forward, NULL, bn_repr),
};

int nn__register_batchnorm(em_registry *reg)
{
    return nn__register_all(reg, bn_types, sizeof bn_types / sizeof bn_types[0]);
}
