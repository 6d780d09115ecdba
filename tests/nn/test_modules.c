/* tests/nn/test_modules.c - the module tree as the nn plugin builds it: state_dict names,
 * printing back a spec that builds the same model, torchsummary's table, moving to another
 * device, freezing, train/eval propagation, scopes, checkpoints of layers with buffers, and a
 * model trained on another backend (OpenCL, where present) through the plugin's composites. */
#include <unistd.h>

#include "helpers.h"

TestSuite(modules, .init = nnt_setup, .fini = nnt_teardown);

#define MLP "Sequential(Linear(3, 64), ReLU(), Linear(64, 128), ReLU(), Linear(128, 10))"
#define CNN "Sequential(Conv2d(1, 4, 3), ReLU(), MaxPool2d(2), Flatten(), Linear(36, 10))"

Test(modules, sequential_names_parameters_as_pytorch_state_dict)
{
    em_module *m = nnt_module(MLP);
    const char *names[] = {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"};
    const int64_t shapes[][2] = {{64, 3}, {64, 0}, {128, 64}, {128, 0}, {10, 128}, {10, 0}};
    cr_assert_eq(em_module_param_count(m), 6);
    for (int i = 0; i < 6; i++) {
        EMT_CONTEXT("%s", names[i]);
        cr_assert_str_eq(em_module_param_name(m, i), names[i]);
        em_tensor *p = em_module_param(m, i);
        cr_assert(em_requires_grad(p) && em_is_leaf(p));
        if (shapes[i][1])
            EMT_ASSERT_SHAPE(p, 2, shapes[i]);   /* Linear weight [out, in] */
        else
            EMT_ASSERT_SHAPE(p, 1, shapes[i]);
    }
    cr_assert_eq(em_module_child_count(m), 5);
    cr_assert_str_eq(em_module_child_name(m, 3), "3");
    cr_assert_str_eq(em_module_type(em_module_child(m, 3)), "ReLU");
    cr_assert_eq(em_module_numel(m, false), 9866);
    em_module_free(m);
}

Test(modules, batchnorm_buffers_follow_its_parameters_in_the_state)
{
    em_module *m = nnt_module("Sequential(Linear(4, 3), BatchNorm1d(3), Sequential(ReLU(), "
                              "BatchNorm1d(3, affine=false)))");
    const char *state[] = {"0.weight",           "0.bias",          "1.weight",
                           "1.bias",             "1.running_mean",  "1.running_var",
                           "1.num_batches_tracked", "2.1.running_mean", "2.1.running_var",
                           "2.1.num_batches_tracked"};
    cr_assert_eq(em_module_param_count(m), 4);
    cr_assert_eq(em_module_state_count(m), 10);
    for (int i = 0; i < 10; i++)
        cr_assert_str_eq(em_module_state_name(m, i), state[i]);
    em_module_free(m);
}

Test(modules, printing_gives_back_a_spec_that_builds_the_same_model)
{
    struct {
        const char *in, *out;
    } cases[] = {
        {"Linear(3, 64, bias=true)", "Linear(3, 64)"},
        {"Linear(in_features=3, out_features=64)", "Linear(3, 64)"},
        {"Linear(3, 4, bias=False)", "Linear(3, 4, bias=false)"},
        {MLP, MLP},
        {CNN, CNN},
        {"Conv2d(1, 8, kernel_size=[3, 5], stride=1, padding=[1, 2])",
         "Conv2d(1, 8, [3, 5], padding=[1, 2])"},
        {"BatchNorm1d(16, eps=1e-05, momentum=None)", "BatchNorm1d(16, momentum=None)"},
        {"Dropout(0.5)", "Dropout()"},
        {"Dropout(0.2)", "Dropout(p=0.2)"},
        {"GELU(approximate=\"none\")", "GELU()"},
        {"Embedding(10, 3, padding_idx=0)", "Embedding(10, 3, padding_idx=0)"},
        {"CrossEntropyLoss(weight=[1, 2.5], label_smoothing=0.1)",
         "CrossEntropyLoss(weight=[1, 2.5], label_smoothing=0.1)"},
        {"MaxPool2d(2, stride=2)", "MaxPool2d(2, stride=2)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        EMT_CONTEXT("%s", cases[i].in);
        em_module *m = nnt_module(cases[i].in);
        char *s = em_module_str(m);
        cr_assert_str_eq(s, cases[i].out, "[%s] printed as %s", emt_ctx(), s);
        em_module *again = nnt_module(s);   /* re-parses to the same string and the same state */
        char *s2 = em_module_str(again);
        cr_assert_str_eq(s2, s);
        cr_assert_eq(em_module_state_count(again), em_module_state_count(m));
        for (int k = 0; k < em_module_state_count(m); k++) {
            cr_assert_str_eq(em_module_state_name(again, k), em_module_state_name(m, k));
            em_tensor *t = em_module_state_tensor(m, k);
            EMT_ASSERT_SHAPE(em_module_state_tensor(again, k), em_ndim(t), em_shape(t));
        }
        free(s);
        free(s2);
        em_module_free(m);
        em_module_free(again);
    }
}

/* What PyTorch 1.13 prints for the same model (print(model)), character for character. */
Test(modules, em_module_repr_is_pytorchs_print_of_the_model)
{
    em_module *m = nnt_module(
        "Sequential(Flatten(), Sequential(Linear(784, 512), ReLU(), Linear(512, 10, bias=false)), "
        "Dropout(p=0.2), Conv2d(1, 4, 3), Conv2d(4, 8, [3, 5], stride=2, padding=1, bias=false), "
        "MaxPool2d(2), MaxPool2d([2, 3], stride=1), BatchNorm1d(64), BatchNorm1d(8, "
        "momentum=None), Embedding(10, 3, padding_idx=0), GELU(), Softmax(dim=1), LogSoftmax(), "
        "Sigmoid(), Identity(), ReLU(inplace=true))");
    const char *want =
        "Sequential(\n"
        "  (0): Flatten(start_dim=1, end_dim=-1)\n"
        "  (1): Sequential(\n"
        "    (0): Linear(in_features=784, out_features=512, bias=True)\n"
        "    (1): ReLU()\n"
        "    (2): Linear(in_features=512, out_features=10, bias=False)\n"
        "  )\n"
        "  (2): Dropout(p=0.2, inplace=False)\n"
        "  (3): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1))\n"
        "  (4): Conv2d(4, 8, kernel_size=(3, 5), stride=(2, 2), padding=(1, 1), bias=False)\n"
        "  (5): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        "  (6): MaxPool2d(kernel_size=(2, 3), stride=1, padding=0, dilation=1, ceil_mode=False)\n"
        "  (7): BatchNorm1d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
        "  (8): BatchNorm1d(8, eps=1e-05, momentum=None, affine=True, track_running_stats=True)\n"
        "  (9): Embedding(10, 3, padding_idx=0)\n"
        "  (10): GELU(approximate='none')\n"
        "  (11): Softmax(dim=1)\n"
        "  (12): LogSoftmax(dim=None)\n"
        "  (13): Sigmoid()\n"
        "  (14): Identity()\n"
        "  (15): ReLU(inplace=True)\n"
        ")";
    char *s = em_module_repr(m);
    cr_assert_str_eq(s, want);
    free(s);
    em_module_free(m);
    em_module *ce = nnt_module("CrossEntropyLoss(weight=[1, 2.5], label_smoothing=0.1)");
    s = em_module_repr(ce);
    cr_assert_str_eq(s, "CrossEntropyLoss()", "losses print no arguments, as PyTorch's");
    free(s);
    em_module_free(ce);
}

Test(modules, summary_of_the_tutorial_mlp_is_torchsummarys_table)
{
    em_module *m = nnt_module(MLP);
    char *s = em_module_summary(m, EM_SHAPE(1, 3));
    cr_assert_not_null(s, "%s", em_last_error());
    /* torchsummary.summary(model, (3,)) for this model, byte for byte */
    const char *want =
        "----------------------------------------------------------------\n"
        "        Layer (type)               Output Shape         Param #\n"
        "================================================================\n"
        "            Linear-1                   [-1, 64]             256\n"
        "              ReLU-2                   [-1, 64]               0\n"
        "            Linear-3                  [-1, 128]           8,320\n"
        "              ReLU-4                  [-1, 128]               0\n"
        "            Linear-5                   [-1, 10]           1,290\n"
        "================================================================\n"
        "Total params: 9,866\n"
        "Trainable params: 9,866\n"
        "Non-trainable params: 0\n"
        "----------------------------------------------------------------\n"
        "Input size (MB): 0.00\n"
        "Forward/backward pass size (MB): 0.00\n"
        "Params size (MB): 0.04\n"
        "Estimated Total Size (MB): 0.04\n"
        "----------------------------------------------------------------\n";
    cr_assert_str_eq(s, want, "got:\n%s", s);
    free(s);
    em_module_free(m);
}

Test(modules, summary_of_a_cnn_counts_conv_parameters_and_shapes)
{
    em_module *m = nnt_module("Sequential(Conv2d(1, 32, 3), BatchNorm2d(32), ReLU(), MaxPool2d(2), "
                              "Flatten(), Linear(5408, 10))");
    char *s = em_module_summary(m, EM_SHAPE(1, 1, 28, 28));
    cr_assert_not_null(s, "%s", em_last_error());
    /* conv: 32*9 + 32 = 320; batchnorm: 64 (running stats are buffers, not counted); linear:
     * 5408*10 + 10 = 54,090; outputs per sample: 3 * 21632 + 5408 + 5408 + 10 = 75,722
     * values, x2 x4 bytes = 0.58 MB; params 54,474 x4 = 0.21 MB */
    const char *lines[] = {
        "            Conv2d-1           [-1, 32, 26, 26]             320\n",
        "       BatchNorm2d-2           [-1, 32, 26, 26]              64\n",
        "              ReLU-3           [-1, 32, 26, 26]               0\n",
        "         MaxPool2d-4           [-1, 32, 13, 13]               0\n",
        "           Flatten-5                 [-1, 5408]               0\n",
        "            Linear-6                   [-1, 10]          54,090\n",
        "Total params: 54,474\n",
        "Input size (MB): 0.00\n",
        "Forward/backward pass size (MB): 0.58\n",
        "Params size (MB): 0.21\n",
        "Estimated Total Size (MB): 0.79\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        cr_assert(strstr(s, lines[i]), "missing line \"%s\" in:\n%s", lines[i], s);
    cr_assert(em_module_is_training(m), "the summary restores training mode");
    cr_assert_eq(em_item(em_module_get(m, "1.num_batches_tracked")), 0,
                 "the summary's pass runs in eval mode and leaves the buffers alone");
    free(s);
    em_module_free(m);
}

Test(modules, freezing_stops_gradients_and_shows_in_the_summary)
{
    em_module *m = nnt_module("Sequential(Linear(3, 4), ReLU(), Linear(4, 2))");
    cr_assert_eq(em_module_requires_grad_(em_module_child(m, 0), false), EM_OK);
    cr_assert(!em_requires_grad(em_module_get(m, "0.weight")));
    cr_assert(em_requires_grad(em_module_get(m, "2.weight")));
    cr_assert_eq(em_module_numel(m, true), 10);
    em_tensor *x = em_randn(EM_SHAPE(5, 3), NULL);
    em_tensor *y = em_forward(m, x), *s = em_sum_all(y);
    cr_assert_eq(em_backward(s, NULL, false), EM_OK, "%s", em_last_error());
    cr_assert_null(em_grad(em_module_get(m, "0.weight")), "a frozen layer gets no gradient");
    cr_assert_not_null(em_grad(em_module_get(m, "2.weight")));
    char *sum = em_module_summary(m, EM_SHAPE(1, 3));
    cr_assert(strstr(sum, "Trainable params: 10\nNon-trainable params: 16\n"), "%s", sum);
    free(sum);
    cr_assert_eq(em_module_requires_grad_(m, false), EM_OK);
    em_tensor *y2 = em_forward(m, x);
    cr_assert(!em_requires_grad(y2), "a fully frozen model records no graph");
    em_release(y2);
    em_release(s);
    em_release(y);
    em_release(x);
    em_module_free(m);
}

Test(modules, train_and_eval_reach_every_descendant)
{
    em_module *m = nnt_module("Sequential(Dropout(), Sequential(BatchNorm1d(2), Dropout()))");
    em_module *inner = em_module_child(em_module_child(m, 1), 1);
    cr_assert(em_module_is_training(inner));
    em_module_train(m, false);
    cr_assert(!em_module_is_training(inner));
    em_tensor *x = em_randn(EM_SHAPE(3, 2), NULL);
    em_tensor *a = em_forward(m, x), *b = em_forward(m, x);
    double *va = emt_values(a), *vb = emt_values(b);
    cr_assert_eq(memcmp(va, vb, 6 * sizeof *va), 0, "eval mode is deterministic");
    free(va);
    free(vb);
    em_release(a);
    em_release(b);
    em_release(x);
    em_module_free(m);
}

Test(modules, moving_to_another_device_keeps_the_handles)
{
    em_module *m = nnt_module("Sequential(Linear(3, 2), BatchNorm1d(2), Embedding(4, 2))");
    int n = em_module_state_count(m);
    em_tensor *before[16];
    double *vals[16];
    for (int i = 0; i < n; i++) {
        before[i] = em_module_state_tensor(m, i);
        vals[i] = emt_values(before[i]);
    }
    em_device mock = em_device_parse("mock:1");
    cr_assert_geq(mock.index, 0, "%s", em_last_error());
    cr_assert_eq(em_module_to(m, mock), EM_OK, "%s", em_last_error());
    cr_assert(em_device_eq(em_module_device(m), mock));
    for (int i = 0; i < n; i++) {
        EMT_CONTEXT("%s", em_module_state_name(m, i));
        em_tensor *t = em_module_state_tensor(m, i);
        cr_assert_eq(t, before[i], "[%s] the handle changed", emt_ctx());
        cr_assert(em_device_eq(em_device_of(t), mock), "[%s] not on mock:1", emt_ctx());
        if (em_dtype_is_float(em_dtype_of(t)))
            cr_assert(em_is_leaf(t) && em_requires_grad(t) == (i < em_module_param_count(m)));
    }
    cr_assert_eq(em_module_to(m, em_device_parse("cpu")), EM_OK, "%s", em_last_error());
    for (int i = 0; i < n; i++) {
        EMT_CONTEXT("%s", em_module_state_name(m, i));
        EMT_ASSERT_VALUES(em_module_state_tensor(m, i), 0, vals[i],
                          em_numel(em_module_state_tensor(m, i)));
        free(vals[i]);
    }
    em_module_free(m);
}

Test(modules, layers_built_inside_a_scope_keep_their_parameters)
{
    em_scope_begin();
    em_module *m = nnt_module("Sequential(Linear(2, 3), BatchNorm1d(3), Conv2d(1, 1, 1))");
    em_tensor *x = em_randn(EM_SHAPE(4, 2), NULL);
    em_scope_end();   /* releases x, and nothing the module owns */
    em_tensor *w = em_module_get(m, "0.weight");
    EMT_ASSERT_SHAPE(w, EM_SHAPE(3, 2));
    em_tensor *y = em_forward(em_module_child(m, 0), (x = em_ones(EM_SHAPE(4, 2), NULL)));
    cr_assert_not_null(y, "%s", em_last_error());
    em_release(y);
    em_release(x);
    em_module_free(m);
}

Test(modules, a_checkpoint_round_trips_parameters_and_buffers)
{
    em_module *m = nnt_module("Sequential(Linear(3, 4), BatchNorm1d(4))");
    em_tensor *x = em_randn(EM_SHAPE(5, 3), NULL);
    em_release(em_forward(m, x));   /* moves the running statistics and the counter */
    char path[] = "/tmp/ember_nn_ckpt_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(em_module_save(m, path), EM_OK, "%s", em_last_error());
    em_module *n = nnt_module("Sequential(Linear(3, 4), BatchNorm1d(4))");
    em_scope_begin();
    cr_assert_eq(em_module_load(n, path), EM_OK, "%s", em_last_error());
    em_scope_end();
    for (int i = 0; i < em_module_state_count(m); i++) {
        EMT_CONTEXT("%s", em_module_state_name(m, i));
        double *want = emt_values(em_module_state_tensor(m, i));
        EMT_ASSERT_VALUES(em_module_state_tensor(n, i), 0, want,
                          em_numel(em_module_state_tensor(m, i)));
        free(want);
    }
    cr_assert_eq(em_item(em_module_get(n, "1.num_batches_tracked")), 1);
    em_module *other = nnt_module("Sequential(Linear(3, 4), BatchNorm1d(5))");
    cr_assert_lt(em_module_load(other, path), 0);
    EMT_ASSERT_ERROR("key '1.weight' has shape [4] in the file but [5] in the module");
    unlink(path);
    em_release(x);
    em_module_free(m);
    em_module_free(n);
    em_module_free(other);
}

/* The layers' own ops (gelu, im2col/col2im, binary_cross_entropy) have composites in
 * primitives: on a backend without their kernels (OpenCL here) a model trains the same. */
static double max_abs_diff(em_tensor *a, em_tensor *b)
{
    double *x = emt_values(a), *y = emt_values(b), m = 0;
    for (int64_t i = 0; i < em_numel(a); i++)
        m = fmax(m, fabs(x[i] - y[i]));
    free(x);
    free(y);
    return m;
}

Test(modules, layers_and_losses_run_on_another_backend_through_composites)
{
    if (!em_backend_available("opencl"))
        cr_skip_test("no OpenCL device: %s", em_backend_unavailable_reason("opencl")
                                                 ? em_backend_unavailable_reason("opencl")
                                                 : "backend not built");
    em_device dev = em_device_parse("opencl:0");
    const char *spec = "Sequential(Conv2d(1, 3, 3, padding=1), GELU(), MaxPool2d(2), Flatten(), "
                       "Linear(48, 4), Dropout(0.2))";
    const char *losses[] = {"CrossEntropyLoss(label_smoothing=0.1)", "BCEWithLogitsLoss()",
                            "BCELoss()"};
    for (size_t l = 0; l < 3; l++) {
        EMT_CONTEXT("%s", losses[l]);
        em_manual_seed(1);
        em_module *a = nnt_module(spec);
        em_manual_seed(1);
        em_module *b = nnt_module(spec);
        cr_assert_eq(em_module_to(b, dev), EM_OK, "%s", em_last_error());
        em_module *loss = nnt_module(losses[l]);
        em_scope_begin();
        em_tensor *x = em_randn(EM_SHAPE(2, 1, 8, 8), NULL);
        em_tensor *t = l == 0 ? em_randint(0, 4, EM_SHAPE(2), NULL) : em_rand(EM_SHAPE(2, 4), NULL);
        em_manual_seed(5);   /* the same dropout mask on both backends (Philox) */
        em_tensor *ya = EMT_OK(em_forward(a, x));
        em_manual_seed(5);
        em_tensor *yb = EMT_OK(em_forward(b, em_to(x, dev)));
        if (l == 2) {
            ya = em_sigmoid(ya);
            yb = em_sigmoid(yb);
        }
        em_tensor *la = EMT_OK(em_loss(loss, ya, t));
        em_tensor *lb = EMT_OK(em_loss(loss, yb, em_to(t, dev)));
        cr_assert_eq(em_backward(la, NULL, false), EM_OK, "%s", em_last_error());
        cr_assert_eq(em_backward(lb, NULL, false), EM_OK, "[%s] %s", emt_ctx(), em_last_error());
        cr_assert_lt(max_abs_diff(ya, yb), 1e-5, "[%s] outputs differ", emt_ctx());
        cr_assert_lt(fabs(em_item(la) - em_item(lb)), 1e-5, "[%s] losses differ", emt_ctx());
        for (int i = 0; i < em_module_param_count(a); i++) {
            em_tensor *ga = em_grad(em_module_param(a, i)), *gb = em_grad(em_module_param(b, i));
            cr_assert_lt(max_abs_diff(ga, gb), 1e-5, "[%s] gradients of %s differ", emt_ctx(),
                         em_module_param_name(a, i));
        }
        em_scope_end();
        em_module_free(a);
        em_module_free(b);
        em_module_free(loss);
    }
}

static em_attr pair(int64_t a, int64_t b)
{
    em_attr r;
    memset(&r, 0, sizeof r);
    r.n = 2;
    r.ints[0] = a;
    r.ints[1] = b;
    return r;
}

/* The plugin's composites (what a backend without the kernels runs) against the CPU kernels. */
Test(modules, plugin_op_composites_match_the_cpu_kernels)
{
    if (!em_backend_available("opencl"))
        cr_skip_test("no OpenCL device to run the composites on");
    em_device dev = em_device_parse("opencl:0");
    em_scope_begin();
    /* gelu and its backward over [-10, 10] */
    em_tensor *x = em_arange(-10, 10.001, 0.01, &(em_opts){.dtype = EM_F32});
    em_tensor *g = em_ones_like(x);
    em_tensor *in[2] = {g, x}, *ind[2] = {em_to(g, dev), em_to(x, dev)};
    const char *ops[2] = {"gelu", "gelu_backward"};
    for (int k = 0; k < 2; k++) {
        EMT_CONTEXT("%s", ops[k]);
        em_tensor *c = EMT_OK(em_op_call(ops[k], k + 1, k ? in : &in[1], 0, NULL));
        em_tensor *d = EMT_OK(em_op_call(ops[k], k + 1, k ? ind : &ind[1], 0, NULL));
        cr_assert_lt(max_abs_diff(c, d), 2e-6, "[%s] the composite is off by %g", emt_ctx(),
                     max_abs_diff(c, d));
    }
    /* im2col / col2im with stride, padding and dilation */
    em_tensor *img = em_randn(EM_SHAPE(2, 3, 7, 6), NULL);
    em_attr a[6] = {pair(3, 2), pair(2, 1), pair(1, 2), pair(2, 1), pair(3, 9), {0}};
    a[5].f = -1.5;
    em_tensor *c = EMT_OK(em_op_call("im2col", 1, &img, 6, a));
    em_tensor *d = EMT_OK(em_op_call("im2col", 1, (em_tensor *[]){em_to(img, dev)}, 6, a));
    cr_assert_eq(max_abs_diff(c, d), 0, "im2col differs");
    a[5] = pair(7, 6);
    em_tensor *e = EMT_OK(em_op_call("col2im", 1, &c, 6, a));
    em_tensor *f = EMT_OK(em_op_call("col2im", 1, &d, 6, a));
    cr_assert_lt(max_abs_diff(e, f), 1e-5, "col2im differs");
    em_scope_end();
}
