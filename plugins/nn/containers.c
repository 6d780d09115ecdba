/* plugins/nn/containers.c - Sequential, Identity and Flatten: modules that arrange or reshape
 * rather than compute.
 *
 * Sequential(Linear(3, 64), ReLU(), ...) builds each positional spec as a child named "0",
 * "1", ... (so parameters are "0.weight", "2.bias", as PyTorch's state_dict names them) and
 * runs them in order. An empty Sequential() returns its input, as PyTorch's does.
 */
#include <stdio.h>
#include <string.h>

#include "nn.h"

/* ---- Sequential ---------------------------------------------------------------------------- */

static const em_param_decl sequential_params[] = {{"layers", EM_PARAM_SPECS_VARARG, NULL}};

static int sequential_init(em_module *m, const em_args *a)
{
    int n = em_args_count(a, "layers");
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "%d", i);
        if (!em_module_add_child(m, name, em_args_spec_at(a, "layers", i)))
            return em_last_status() < 0 ? em_last_status() : EM_ERR_INTERNAL;
    }
    return EM_OK;
}

static em_tensor *sequential_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    em_tensor *h = in[0];
    em_retain(h);
    int n = em_module_child_count(m);
    for (int i = 0; i < n; i++) {
        em_module *c = em_module_child(m, i);
        /* Linear then ReLU: one op, so a backend can apply the ReLU as it stores the product
         * (its backward takes the mask from the output, as ReLU's does). */
        bool fuse = i + 1 < n && !strcmp(em_module_type(c), "Linear") &&
                    !strcmp(em_module_type(em_module_child(m, i + 1)), "ReLU");
        em_tensor *y = fuse ? nn__linear_forward(c, h, true) : em_forward(c, h);
        em_release(h);
        if (!y) {
            /* Say which layer failed; the child's message already names its type. */
            char why[768];
            snprintf(why, sizeof why, "%s", em_last_error());
            em_status st = em_last_status();
            em_set_error(st < 0 ? st : EM_ERR_INTERNAL, "%s (in Sequential layer %s)", why,
                         em_module_child_name(m, i));
            return NULL;
        }
        h = y;
        if (fuse) {
            em_module_record_output(c, y);       /* same shape before and after the ReLU */
            em_module_record_output(em_module_child(m, ++i), y);
        }
    }
    return h;
}

/* ---- Identity -------------------------------------------------------------------------------- */

static int noop_init(em_module *m, const em_args *a)
{
    (void)m;
    (void)a;
    return EM_OK;
}

static em_tensor *identity_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)m;
    (void)nin;
    em_retain(in[0]);
    return in[0];
}

/* ---- Flatten --------------------------------------------------------------------------------- */

static const em_param_decl flatten_params[] = {
    {"start_dim", EM_PARAM_INT, "1"},
    {"end_dim", EM_PARAM_INT, "-1"},
};

static em_tensor *flatten_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    const em_args *a = em_module_args(m);
    int64_t s = em_args_int(a, "start_dim"), e = em_args_int(a, "end_dim");
    int nd = em_ndim(in[0]);
    int64_t s2 = s < 0 ? s + nd : s, e2 = e < 0 ? e + nd : e;
    if (nd == 0 || s2 < 0 || s2 >= nd || e2 < 0 || e2 >= nd || s2 > e2) {
        char b[160];
        em_set_error(EM_ERR_INVALID,
                     "Flatten: start_dim=%lld, end_dim=%lld do not fit an input of shape %s",
                     (long long)s, (long long)e, nn__shape_str(in[0], b, sizeof b));
        return NULL;
    }
    return em_flatten(in[0], (int)s2, (int)e2);
}

static void flatten_repr(const em_module *m, char *buf, size_t size)
{
    const em_args *a = em_module_args(m);
    snprintf(buf, size, "start_dim=%lld, end_dim=%lld", (long long)em_args_int(a, "start_dim"),
             (long long)em_args_int(a, "end_dim"));
}

static const em_module_ops container_types[] = {
    NN_MODULE("Sequential", sequential_params, 0, 1, sequential_init, sequential_forward, NULL),
    NN_MODULE_NOARGS("Identity", 0, 1, noop_init, identity_forward, NULL),
    NN_MODULE_R("Flatten", flatten_params, 0, 1, noop_init, flatten_forward, NULL,
                flatten_repr),
};

int nn__register_containers(em_registry *reg)
{
    return nn__register_all(reg, container_types,
                            sizeof container_types / sizeof container_types[0]);
}
