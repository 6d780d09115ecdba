/* tests/optim/plugin/testparams.c - a module type for the optim tests that needs no nn plugin:
 * TestParams holds parameters and a buffer with values given in its spec, and children, so the
 * optimizer and checkpoint tests control every number and every state_dict name.
 *
 *     TestParams(a=[1, -2, 3])                              parameter "a", shape [3]
 *     TestParams(a=[1, 2, 3, 4], a_shape=[2, 2], b=[0.5])   parameters "a" [2, 2] and "b" [1]
 *     TestParams(TestParams(a=[1]), TestParams(b=[2]))      children "0" and "1": "0.a", "1.b"
 *     TestParams(a=[1], buf=[7, 8], dtype="float64")        buffer "buf"; float64 tensors
 *
 * forward(x) is x * a (x itself without "a"). Built into its own folder, which only the optim
 * tests put on EMBER_PLUGIN_PATH. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ember/ember.h>
#include <ember/plugin.h>

static const em_param_decl params[] = {
    {"children", EM_PARAM_SPECS_VARARG, NULL},
    {"a", EM_PARAM_FLOATS, "None"},
    {"a_shape", EM_PARAM_INTS, "None"},
    {"b", EM_PARAM_FLOATS, "None"},
    {"b_shape", EM_PARAM_INTS, "None"},
    {"buf", EM_PARAM_FLOATS, "None"},
    {"dtype", EM_PARAM_STRING, "\"float32\""},
};

/* A tensor from the floats of argument `name`, shaped by `shape_name` (1-D by default). */
static em_tensor *from_args(const em_args *a, const char *name, const char *shape_name,
                            em_dtype dt)
{
    int n = em_args_count(a, name);
    int64_t shape[EM_MAX_DIMS] = {n};
    int ndim = 1;
    if (shape_name && em_args_has(a, shape_name)) {
        ndim = em_args_count(a, shape_name);
        int64_t numel = 1;
        for (int d = 0; d < ndim && d < EM_MAX_DIMS; d++)
            numel *= shape[d] = em_args_int_at(a, shape_name, d);
        if (ndim > EM_MAX_DIMS || numel != n) {
            em_set_error(EM_ERR_INVALID, "TestParams: %s has %d values, not the %lld of %s", name,
                         n, (long long)numel, shape_name);
            return NULL;
        }
    }
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v)
        return NULL;
    for (int i = 0; i < n; i++)
        v[i] = em_args_float_at(a, name, i);
    em_opts o = {.dtype = dt};
    em_tensor *t = em_tensor_from_data(v, EM_F64, ndim, shape, &o);
    free(v);
    return t;
}

static int tp_init(em_module *m, const em_args *a)
{
    em_dtype dt = em_dtype_parse(em_args_str(a, "dtype"));
    if (dt == EM_DTYPE_UNSPEC)
        return em_set_error(EM_ERR_INVALID, "TestParams: bad dtype '%s'", em_args_str(a, "dtype"));
    for (int i = 0; i < em_args_count(a, "children"); i++) {
        char name[16];
        snprintf(name, sizeof name, "%d", i);
        if (!em_module_add_child(m, name, em_args_spec_at(a, "children", i)))
            return em_last_status();
    }
    static const char *const names[][2] = {{"a", "a_shape"}, {"b", "b_shape"}, {"buf", NULL}};
    for (int k = 0; k < 3; k++) {
        if (!em_args_has(a, names[k][0]))
            continue;
        em_tensor *t = from_args(a, names[k][0], names[k][1], dt);
        if (!t)
            return em_last_status();
        int rc = k < 2 ? em_module_add_parameter(m, names[k][0], t)
                       : em_module_add_buffer(m, names[k][0], t);
        em_release(t);
        if (rc < 0)
            return rc;
    }
    return EM_OK;
}

static em_tensor *tp_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    em_tensor *a = em_module_parameter(m, "a");
    if (a)
        return em_mul(in[0], a);
    em_retain(in[0]);
    return in[0];
}

static const em_module_ops tp_ops = {
    .struct_size = sizeof(em_module_ops),
    .name = "TestParams",
    .nparams = (int)(sizeof params / sizeof params[0]),
    .params = params,
    .ninputs = 1,
    .init = tp_init,
    .forward = tp_forward,
};

static int init(em_registry *reg) { return em_register_module(reg, &tp_ops); }

EM_PLUGIN_DEFINE(
    "optim-test", EMBER_VERSION_STRING, "TestParams, a module type for the optim tests", init,
    NULL)
