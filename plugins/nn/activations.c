/* plugins/nn/activations.c - elementwise activations and the softmax family: ReLU, Sigmoid,
 * Tanh, GELU, Softmax, LogSoftmax.
 *
 * Each is one public op (em_relu, em_sigmoid, em_tanh, em_softmax, em_log_softmax; GELU is
 * the plugin's "gelu" op from gelu.c, or with approximate="tanh" PyTorch's tanh formula in
 * ops). None has parameters. Softmax(dim=None) picks the dim as PyTorch's legacy rule does
 * (0 for 0-, 1- and 3-dim inputs, else 1) and warns once, as PyTorch does.
 */
#include <string.h>

#include "nn.h"

/* ---- ReLU, Sigmoid, Tanh --------------------------------------------------------------------- */

static const em_param_decl relu_params[] = {{"inplace", EM_PARAM_BOOL, "false"}};

static int noop_init(em_module *m, const em_args *a)
{
    (void)m;
    (void)a;
    return EM_OK;
}

static em_tensor *relu_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    if (em_args_bool(em_module_args(m), "inplace"))
        return em_relu_(in[0]);
    return em_relu(in[0]);
}

static em_tensor *sigmoid_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)m;
    (void)nin;
    return em_sigmoid(in[0]);
}

static em_tensor *tanh_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)m;
    (void)nin;
    return em_tanh(in[0]);
}

/* ---- GELU ------------------------------------------------------------------------------------ */

static const em_param_decl gelu_params[] = {{"approximate", EM_PARAM_STRING, "\"none\""}};

typedef struct gelu_state {
    bool tanh_approx;
} gelu_state;

static int gelu_init(em_module *m, const em_args *a)
{
    const char *mode = em_args_has(a, "approximate") ? em_args_str(a, "approximate") : "none";
    gelu_state *s = em_module_private(m);
    if (!strcmp(mode, "tanh"))
        s->tanh_approx = true;
    else if (strcmp(mode, "none") != 0)
        return em_set_error(EM_ERR_INVALID,
                            "GELU: approximate must be \"none\" or \"tanh\", got \"%s\"", mode);
    return EM_OK;
}

/* 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) */
static em_tensor *gelu_tanh(em_tensor *x)
{
    em_tensor *x3 = em_pow_scalar(x, 3.0);
    em_tensor *a = em_mul_scalar(x3, 0.044715);
    em_tensor *b = em_add(x, a);
    em_tensor *c = em_mul_scalar(b, 0.79788456080286535588);
    em_tensor *t = em_tanh(c);
    em_tensor *u = em_add_scalar(t, 1.0);
    em_tensor *h = em_mul_scalar(x, 0.5);
    em_tensor *y = em_mul(h, u);
    em_release(x3);
    em_release(a);
    em_release(b);
    em_release(c);
    em_release(t);
    em_release(u);
    em_release(h);
    return y;
}

static em_tensor *gelu_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    const gelu_state *s = em_module_private(m);
    if (nn__check_float("GELU", "input", in[0]) < 0)
        return NULL;
    if (s->tanh_approx)
        return gelu_tanh(in[0]);
    return em_op_call("gelu", 1, in, 0, NULL);
}

/* ---- Softmax, LogSoftmax --------------------------------------------------------------------- */

static const em_param_decl softmax_params[] = {{"dim", EM_PARAM_INT, "None"}};

typedef struct softmax_state {
    bool warned;
} softmax_state;

/* The dim argument, or PyTorch's legacy choice (_get_softmax_dim) with a one-time warning. */
static int softmax_dim(em_module *m, const em_tensor *x)
{
    const em_args *a = em_module_args(m);
    if (em_args_has(a, "dim"))
        return (int)em_args_int(a, "dim");
    int nd = em_ndim(x);
    int dim = nd == 0 || nd == 1 || nd == 3 ? 0 : 1;
    softmax_state *s = em_module_private(m);
    if (!s->warned) {
        s->warned = true;
        em_warn("%s: implicit dimension choice has been deprecated; using dim=%d (give dim= "
                "explicitly)",
                em_module_type(m), dim);
    }
    return dim;
}

static em_tensor *softmax_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    return em_softmax(in[0], softmax_dim(m, in[0]));
}

static em_tensor *log_softmax_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    return em_log_softmax(in[0], softmax_dim(m, in[0]));
}

/* ---- print(model) ---------------------------------------------------------------------- */

static void relu_repr(const em_module *m, char *buf, size_t size)
{
    snprintf(buf, size, "%s", em_args_bool(em_module_args(m), "inplace") ? "inplace=True" : "");
}

static void gelu_repr(const em_module *m, char *buf, size_t size)
{
    snprintf(buf, size, "approximate='%s'", em_args_str(em_module_args(m), "approximate"));
}

static void softmax_repr(const em_module *m, char *buf, size_t size)
{
    const em_args *a = em_module_args(m);
    if (em_args_has(a, "dim"))
        snprintf(buf, size, "dim=%lld", (long long)em_args_int(a, "dim"));
    else
        snprintf(buf, size, "dim=None");
}

static const em_module_ops activation_types[] = {
    NN_MODULE_R("ReLU", relu_params, 0, 1, noop_init, relu_forward, NULL, relu_repr),
    NN_MODULE_NOARGS("Sigmoid", 0, 1, noop_init, sigmoid_forward, NULL),
    NN_MODULE_NOARGS("Tanh", 0, 1, noop_init, tanh_forward, NULL),
    NN_MODULE_R("GELU", gelu_params, sizeof(gelu_state), 1, gelu_init, gelu_forward, NULL,
                gelu_repr),
    NN_MODULE_R("Softmax", softmax_params, sizeof(softmax_state), 1, noop_init,
                softmax_forward, NULL, softmax_repr),
    NN_MODULE_R("LogSoftmax", softmax_params, sizeof(softmax_state), 1, noop_init,
                log_softmax_forward, NULL, softmax_repr),
};

int nn__register_activations(em_registry *reg)
{
    return nn__register_all(reg, activation_types,
                            sizeof activation_types / sizeof activation_types[0]);
}
