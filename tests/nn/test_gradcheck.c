/* tests/nn/test_gradcheck.c - every layer's and loss's backward against central differences
 * (em_gradcheck, float64, small shapes), with respect to the input and to every parameter.
 * Layers are built with dtype="float64" (PyTorch's factory argument), so their parameters are
 * float64 leaves that the check perturbs in place. */
#include "helpers.h"

TestSuite(gradcheck, .init = nnt_setup, .fini = nnt_teardown);

typedef struct gc_ctx {
    em_module *m;
    em_tensor *target;   /* losses: the second input when it is not checked */
    uint64_t seed;       /* Dropout: reseeded before each call, so the mask is fixed */
} gc_ctx;

static em_tensor *run_layer(int nin, em_tensor *const *in, void *ctx)
{
    (void)nin;
    gc_ctx *c = ctx;
    if (c->seed)
        em_manual_seed(c->seed);
    return em_forward(c->m, in[0]);
}

static em_tensor *run_loss(int nin, em_tensor *const *in, void *ctx)
{
    gc_ctx *c = ctx;
    return em_loss(c->m, in[0], nin > 1 && !c->target ? in[1] : c->target);
}

/* A float64 input of the given shape, uniform in [lo, hi), requiring grad. */
static em_tensor *input(int ndim, const int64_t *shape, double lo, double hi)
{
    em_tensor *u = em_rand(ndim, shape, &(em_opts){.dtype = EM_F64});
    em_tensor *a = em_mul_scalar(u, hi - lo), *x = em_add_scalar(a, lo);
    em_release(u);
    em_release(a);
    cr_assert_not_null(x, "%s", em_last_error());
    cr_assert_eq(em_requires_grad_(x, true), EM_OK);
    return x;
}

/* gradcheck of spec's forward on x, with respect to x (if it requires grad) and every float
 * parameter of the layer. */
static void check_layer(const char *spec, em_tensor *x, uint64_t seed, bool train)
{
    EMT_CONTEXT("%s", spec);
    gc_ctx c = {nnt_module(spec), NULL, seed};
    em_module_train(c.m, train);
    em_tensor *in[16] = {x};
    int n = 1;
    for (int i = 0; i < em_module_param_count(c.m) && n < 16; i++)
        in[n++] = em_module_param(c.m, i);
    int rc = em_gradcheck(run_layer, &c, n, in, -1, -1, -1);
    cr_assert_eq(rc, EM_OK, "[%s] %s", spec, em_last_error());
    em_module_free(c.m);
    em_release(x);
}

#define F64 ", dtype=\"float64\""

Test(gradcheck, linear)
{
    check_layer("Linear(3, 2" F64 ")", input(EM_SHAPE(2, 3), -1, 1), 0, true);
    check_layer("Linear(3, 2, bias=false" F64 ")", input(EM_SHAPE(2, 2, 3), -1, 1), 0, true);
}

Test(gradcheck, activations)
{
    /* away from ReLU's kink at 0 */
    em_tensor *x = emt_tensor(EM_F64, EM_SHAPE(2, 3), EMT_VALS(-2, -0.5, 0.3, 1, 2.5, -0.1));
    const char *specs[] = {"ReLU()", "Sigmoid()", "Tanh()", "GELU()", "GELU(approximate=\"tanh\")",
                           "Softmax(dim=1)", "LogSoftmax(dim=0)", "Identity()", "Flatten(0)"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        em_tensor *xi = EMT_OK(em_clone(x));
        cr_assert_eq(em_requires_grad_(xi, true), EM_OK);
        check_layer(specs[i], xi, 0, true);
    }
    em_release(x);
}

Test(gradcheck, dropout_with_a_fixed_mask)
{
    check_layer("Dropout(0.4)", input(EM_SHAPE(3, 4), -1, 1), 11, true);
}

Test(gradcheck, batchnorm_in_training_and_eval_mode)
{
    check_layer("BatchNorm1d(3" F64 ")", input(EM_SHAPE(4, 3), -2, 2), 0, true);
    check_layer("BatchNorm1d(2, momentum=None" F64 ")", input(EM_SHAPE(3, 2, 2), -2, 2), 0, true);
    check_layer("BatchNorm1d(3, affine=false" F64 ")", input(EM_SHAPE(4, 3), -2, 2), 0, true);
    check_layer("BatchNorm1d(3" F64 ")", input(EM_SHAPE(2, 3), -2, 2), 0, false);
    check_layer("BatchNorm2d(2" F64 ")", input(EM_SHAPE(2, 2, 2, 2), -2, 2), 0, true);
}

Test(gradcheck, embedding_weight)
{
    int64_t v[5] = {1, 3, 1, 0, 2};
    em_tensor *idx = em_tensor_from_data(v, EM_I64, EM_SHAPE(5), NULL);
    check_layer("Embedding(4, 3" F64 ")", idx, 0, true);
    /* (with padding_idx the padding row's gradient is 0 by definition, not the derivative:
     * test_layers.c checks that) */
}

Test(gradcheck, conv2d)
{
    check_layer("Conv2d(2, 3, 2" F64 ")", input(EM_SHAPE(2, 2, 3, 3), -1, 1), 0, true);
    check_layer("Conv2d(2, 2, 3, stride=2, padding=1" F64 ")", input(EM_SHAPE(1, 2, 4, 3), -1, 1),
                0, true);
    check_layer("Conv2d(2, 4, [2, 1], dilation=[2, 1], groups=2, bias=false" F64 ")",
                input(EM_SHAPE(1, 2, 3, 3), -1, 1), 0, true);
}

Test(gradcheck, maxpool2d)
{
    /* distinct values, so no window has a tie that a perturbation could flip */
    double v[50];
    for (int i = 0; i < 50; i++)
        v[i] = (double)((i * 37) % 50) / 10.0;
    em_tensor *x = emt_tensor(EM_F64, EM_SHAPE(2, 5, 5), v);
    cr_assert_eq(em_requires_grad_(x, true), EM_OK);
    check_layer("MaxPool2d(2, stride=1, padding=1)", x, 0, true);
    x = emt_tensor(EM_F64, EM_SHAPE(1, 2, 5, 5), v);
    cr_assert_eq(em_requires_grad_(x, true), EM_OK);
    check_layer("MaxPool2d(3, stride=2, ceil_mode=true)", x, 0, true);
}

Test(gradcheck, sequential_of_layers)
{
    check_layer("Sequential(Conv2d(1, 2, 2" F64 "), Tanh(), Flatten(), Linear(8, 3" F64 "), "
                "GELU())",
                input(EM_SHAPE(2, 1, 3, 3), -1, 1), 0, true);
}

/* ---- losses ---------------------------------------------------------------------------------- */

/* gradcheck of a loss with respect to x, and to the target too when it is given as float and
 * check_target is set. */
static void check_loss(const char *spec, em_tensor *x, em_tensor *t, bool check_target)
{
    EMT_CONTEXT("%s", spec);
    gc_ctx c = {nnt_module(spec), check_target ? NULL : t, 0};
    em_tensor *in[2] = {x, t};
    if (check_target)
        cr_assert_eq(em_requires_grad_(t, true), EM_OK);
    int rc = em_gradcheck(run_loss, &c, check_target ? 2 : 1, in, -1, -1, -1);
    cr_assert_eq(rc, EM_OK, "[%s] %s", spec, em_last_error());
    em_module_free(c.m);
    em_release(x);
    em_release(t);
}

static em_tensor *classes(int n, const int64_t *v)
{
    return em_tensor_from_data(v, EM_I64, EM_SHAPE(n), NULL);
}

Test(gradcheck, cross_entropy_and_nll)
{
    const int64_t t[4] = {0, 2, 1, 2};
    const char *specs[] = {
        "CrossEntropyLoss()",
        "CrossEntropyLoss(weight=[0.5, 2, 1], ignore_index=1)",
        "CrossEntropyLoss(weight=[0.5, 2, 1], ignore_index=0, label_smoothing=0.2)",
        "CrossEntropyLoss(reduction=\"none\", label_smoothing=0.1)",
        "CrossEntropyLoss(reduction=\"sum\")",
        "NLLLoss(weight=[1, 3, 2])",
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        check_loss(specs[i], input(EM_SHAPE(4, 3), -2, 2), classes(4, t), false);
    int64_t shape_t[2] = {2, 2};
    em_tensor *tn = em_tensor_from_data((int64_t[]){0, 2, 1, 1}, EM_I64, 2, shape_t, NULL);
    check_loss("CrossEntropyLoss()", input(EM_SHAPE(2, 3, 2), -2, 2), tn, false);
}

Test(gradcheck, cross_entropy_with_probabilities_in_both_arguments)
{
    check_loss("CrossEntropyLoss(weight=[1, 2, 0.5], label_smoothing=0.1)",
               input(EM_SHAPE(3, 3), -2, 2), input(EM_SHAPE(3, 3), 0, 1), true);
}

Test(gradcheck, regression_and_binary_losses_in_both_arguments)
{
    check_loss("MSELoss()", input(EM_SHAPE(2, 3), -1, 1), input(EM_SHAPE(2, 3), -1, 1), true);
    /* |x - y| has a kink at 0: keep the two apart */
    check_loss("L1Loss(reduction=\"sum\")", input(EM_SHAPE(2, 3), 1, 2),
               input(EM_SHAPE(2, 3), -1, 0), true);
    check_loss("BCELoss(weight=[1, 0.5, 2])", input(EM_SHAPE(2, 3), 0.05, 0.95),
               input(EM_SHAPE(2, 3), 0, 1), true);
    check_loss("BCEWithLogitsLoss(pos_weight=[2, 1, 0.5], reduction=\"none\")",
               input(EM_SHAPE(2, 3), -3, 3), input(EM_SHAPE(2, 3), 0, 1), true);
}
