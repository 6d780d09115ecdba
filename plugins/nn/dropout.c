/* plugins/nn/dropout.c - Dropout(p=0.5, inplace=false).
 *
 * In training mode each element is kept when a uniform draw u from the global Philox
 * generator satisfies u >= p, and kept elements are scaled by 1 / (1 - p), so the expected
 * value is unchanged; em_manual_seed therefore reproduces the mask on every backend. In eval
 * mode, and for p = 0, the input itself is returned (as PyTorch does); p = 1 gives zeros.
 * The mask is a float tensor multiplied in (MulBackward0), so gradients are masked the same way.
 */
#include "nn.h"

static const em_param_decl dropout_params[] = {
    {"p", EM_PARAM_FLOAT, "0.5"},
    {"inplace", EM_PARAM_BOOL, "false"},
};

static int dropout_init(em_module *m, const em_args *a)
{
    (void)m;
    if (!em_args_has(a, "p"))
        return em_set_error(EM_ERR_INVALID, "Dropout: p must be a number in [0, 1], got None");
    double p = em_args_float(a, "p");
    if (!(p >= 0 && p <= 1))
        return em_set_error(EM_ERR_INVALID, "Dropout: p must be in [0, 1], got %g", p);
    return EM_OK;
}

static em_tensor *dropout_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    em_tensor *x = in[0];
    const em_args *a = em_module_args(m);
    double p = em_args_float(a, "p");
    bool inplace = em_args_bool(a, "inplace");
    if (!em_module_is_training(m) || p == 0 || em_numel(x) == 0) {
        em_retain(x);
        return x;
    }
    if (nn__check_float("Dropout", "input", x) < 0)
        return NULL;
    em_opts o = {.dtype = em_dtype_of(x), .device = em_device_of(x)};
    em_tensor *scale = NULL;
    if (p == 1) {
        scale = em_scalar(0.0, &o);
    } else {
        em_tensor *u = em_rand(em_ndim(x), em_shape(x), &o);
        em_tensor *thr = em_scalar(p, &o);
        em_tensor *keep = em_ge(u, thr);
        em_tensor *kf = em_to_dtype(keep, em_dtype_of(x));
        scale = em_mul_scalar(kf, 1.0 / (1.0 - p));
        em_release(u);
        em_release(thr);
        em_release(keep);
        em_release(kf);
    }
    em_tensor *y = inplace ? em_mul_(x, scale) : em_mul(x, scale);
    em_release(scale);
    return y;
}

static void dropout_repr(const em_module *m, char *buf, size_t size)
{
    const em_args *a = em_module_args(m);
    char p[32];
    snprintf(buf, size, "p=%s, inplace=%s", em_float_repr(em_args_float(a, "p"), p, sizeof p),
             nn__bool_repr(em_args_bool(a, "inplace")));
}

static const em_module_ops dropout_types[] = {
    NN_MODULE_R("Dropout", dropout_params, 0, 1, dropout_init, dropout_forward, NULL,
                dropout_repr),
};

int nn__register_dropout(em_registry *reg)
{
    return nn__register_all(reg, dropout_types, sizeof dropout_types / sizeof dropout_types[0]);
}
