/* tests/nn/test_golden.c - layers and losses against values PyTorch 1.13 computed
 * (tests/nn/golden/gen_golden.py wrote them; the files are committed).
 *
 *   - every case of layers.safetensors: the layer built from the spec in the file's metadata
 *     (float64), its parameters copied in, then the output in training mode, the gradients of
 *     the input and of every parameter for a given upstream gradient, the buffers after the pass
 *     and, where the case has one, the eval-mode output for a second input;
 *   - every case of losses.safetensors: the loss and the gradient of its input;
 *   - the tutorial's MLP and a small CNN, weights loaded from a PyTorch-written file with
 *     em_module_load, in float32: output, CrossEntropyLoss and every parameter's gradient
 *     within 1e-5 relative of PyTorch's float64 values.
 * The largest relative error of each check is logged (criterion --verbose shows it).
 */
#include "helpers.h"

TestSuite(golden, .init = nnt_setup, .fini = nnt_teardown);

/* Float64 cases: the references were computed in float64 from float32-exact inputs, then
 * stored as float32, so they carry float32 rounding (relative 6e-8). */
#define CASE_RTOL 1e-6

static double check_key(const nnt_golden *g, const char *key, const char *what, em_tensor *got)
{
    em_tensor *want = nnt_golden_tensor(g, key, EM_F64);
    double e = NNT_CHECK_CLOSE(what, got, want, CASE_RTOL, 1e-3);
    em_release(want);
    return e;
}

/* Runs one layer case; returns the largest relative error over its checks. */
static double layer_case(const nnt_golden *g, const char *name, const char *spec)
{
    char key[256];
    double worst = 0;
    EMT_CONTEXT("layer case %s: %s", name, spec);
    em_module *m = nnt_module(spec);
    for (int i = 0; i < em_module_param_count(m); i++) {
        snprintf(key, sizeof key, "%s.p.%s", name, em_module_param_name(m, i));
        cr_assert(nnt_golden_has(g, key), "[%s] the file has no %s", emt_ctx(), key);
        em_tensor *src = nnt_golden_tensor(g, key, EM_F64);
        EM_NO_GRAD
        {
            em_release(EMT_OK(em_copy_(em_module_param(m, i), src)));
        }
        em_release(src);
    }
    snprintf(key, sizeof key, "%s.x", name);
    em_tensor *x = nnt_golden_tensor(g, key, 0);
    bool float_in = em_dtype_is_float(em_dtype_of(x));
    if (float_in) {
        em_tensor *x64 = EMT_OK(em_to_dtype(x, EM_F64));
        em_release(x);
        x = x64;
        cr_assert_eq(em_requires_grad_(x, true), EM_OK);
    }
    em_tensor *y = EMT_OK(em_forward(m, x));
    snprintf(key, sizeof key, "%s.y", name);
    worst = fmax(worst, check_key(g, key, "output", y));
    snprintf(key, sizeof key, "%s.gy", name);
    em_tensor *gy = nnt_golden_tensor(g, key, EM_F64);
    cr_assert_eq(em_backward(y, gy, false), EM_OK, "[%s] backward: %s", emt_ctx(), em_last_error());
    if (float_in) {
        snprintf(key, sizeof key, "%s.gx", name);
        worst = fmax(worst, check_key(g, key, "input gradient", em_grad(x)));
    }
    for (int i = 0; i < em_module_param_count(m); i++) {
        snprintf(key, sizeof key, "%s.g.%s", name, em_module_param_name(m, i));
        worst = fmax(worst, check_key(g, key, key, em_grad(em_module_param(m, i))));
    }
    for (int i = em_module_param_count(m); i < em_module_state_count(m); i++) {
        snprintf(key, sizeof key, "%s.b.%s", name, em_module_state_name(m, i));
        worst = fmax(worst, check_key(g, key, key, em_module_state_tensor(m, i)));
    }
    snprintf(key, sizeof key, "%s.x2", name);
    if (nnt_golden_has(g, key)) {
        em_tensor *x2 = nnt_golden_tensor(g, key, EM_F64);
        em_module_train(m, false);
        em_tensor *y2 = EMT_OK(em_forward(m, x2));
        snprintf(key, sizeof key, "%s.y2", name);
        worst = fmax(worst, check_key(g, key, "eval-mode output", y2));
        em_release(y2);
        em_release(x2);
    }
    em_release(gy);
    em_release(y);
    em_release(x);
    em_module_free(m);
    return worst;
}

Test(golden, every_layer_matches_pytorch_forward_backward_and_buffers)
{
    nnt_golden g;
    nnt_golden_open(&g, "layers.safetensors");
    json_t *meta = json_object_get(g.hdr, "__metadata__");
    const char *name;
    json_t *v;
    int n = 0;
    double worst = 0;
    json_object_foreach(meta, name, v)
    {
        if (!strcmp(name, "format"))
            continue;
        double e = layer_case(&g, name, json_string_value(v));
        cr_log_info("layer %-22s max rel error %.3g", name, e);
        worst = fmax(worst, e);
        n++;
    }
    cr_assert_geq(n, 25, "only %d layer cases in %s", n, g.path);
    cr_log_info("layers: %d cases, max rel error %.3g", n, worst);
    nnt_golden_close(&g);
}

static double loss_case(const nnt_golden *g, const char *name, const char *spec)
{
    char key[256];
    EMT_CONTEXT("loss case %s: %s", name, spec);
    em_module *m = nnt_module(spec);
    snprintf(key, sizeof key, "%s.x", name);
    em_tensor *x = nnt_golden_tensor(g, key, EM_F64);
    cr_assert_eq(em_requires_grad_(x, true), EM_OK);
    snprintf(key, sizeof key, "%s.t", name);
    em_tensor *t = nnt_golden_tensor(g, key, 0);
    if (em_dtype_is_float(em_dtype_of(t))) {
        em_tensor *t64 = EMT_OK(em_to_dtype(t, EM_F64));
        em_release(t);
        t = t64;
    }
    em_tensor *y = EMT_OK(em_loss(m, x, t));
    snprintf(key, sizeof key, "%s.y", name);
    double worst = check_key(g, key, "loss", y);
    snprintf(key, sizeof key, "%s.gy", name);
    em_tensor *gy = nnt_golden_has(g, key) ? nnt_golden_tensor(g, key, EM_F64) : NULL;
    cr_assert_eq(em_backward(y, gy, false), EM_OK, "[%s] backward: %s", emt_ctx(), em_last_error());
    snprintf(key, sizeof key, "%s.gx", name);
    worst = fmax(worst, check_key(g, key, "input gradient", em_grad(x)));
    em_release(gy);
    em_release(y);
    em_release(t);
    em_release(x);
    em_module_free(m);
    return worst;
}

Test(golden, every_loss_matches_pytorch_value_and_gradient)
{
    nnt_golden g;
    nnt_golden_open(&g, "losses.safetensors");
    json_t *meta = json_object_get(g.hdr, "__metadata__");
    const char *name;
    json_t *v;
    int n = 0;
    double worst = 0;
    json_object_foreach(meta, name, v)
    {
        if (!strcmp(name, "format"))
            continue;
        double e = loss_case(&g, name, json_string_value(v));
        cr_log_info("loss %-26s max rel error %.3g", name, e);
        worst = fmax(worst, e);
        n++;
    }
    cr_assert_geq(n, 20, "only %d loss cases in %s", n, g.path);
    cr_log_info("losses: %d cases, max rel error %.3g", n, worst);
    nnt_golden_close(&g);
}

/* ---- the tutorial's MLP and a small CNN, float32, weights from a PyTorch file ---------------- */

/* 1e-5 relative, each element's scale floored at 1e-2 of its tensor's largest value: Ember
 * computes in float32 against PyTorch's float64 truth, and a gradient entry 1000 times smaller
 * than its tensor's largest one carries float32 accumulation error beyond 1e-5 of itself
 * (PyTorch's own float32 result differs from its float64 one as much). */
#define PARITY_RTOL 1e-5
#define PARITY_FLOOR 1e-2

static void model_parity(const char *prefix, const char *spec)
{
    char file[256], key[300];
    EMT_CONTEXT("%s parity", prefix);
    em_module *m = nnt_module(spec);
    snprintf(file, sizeof file, "%s/%s_weights.safetensors", NN_GOLDEN_DIR, prefix);
    cr_assert_eq(em_module_load(m, file), EM_OK, "em_module_load(%s): %s", file, em_last_error());
    nnt_golden g;
    snprintf(file, sizeof file, "%s_data.safetensors", prefix);
    nnt_golden_open(&g, file);
    em_tensor *x = nnt_golden_tensor(&g, "x", 0), *y = nnt_golden_tensor(&g, "y", 0);
    em_module *ce = nnt_module("CrossEntropyLoss()");
    em_tensor *out = EMT_OK(em_forward(m, x));
    em_tensor *loss = EMT_OK(em_loss(ce, out, y));
    cr_assert_eq(em_backward(loss, NULL, false), EM_OK, "%s", em_last_error());
    em_tensor *want = nnt_golden_tensor(&g, "out", 0);
    double e_out = NNT_CHECK_CLOSE("output", out, want, PARITY_RTOL, PARITY_FLOOR);
    em_release(want);
    want = nnt_golden_tensor(&g, "loss", 0);
    double e_loss = NNT_CHECK_CLOSE("loss", loss, want, PARITY_RTOL, PARITY_FLOOR);
    em_release(want);
    double e_grad = 0, e_norm = 0;
    for (int i = 0; i < em_module_param_count(m); i++) {
        snprintf(key, sizeof key, "grad.%s", em_module_param_name(m, i));
        want = nnt_golden_tensor(&g, key, 0);
        em_tensor *got = em_grad(em_module_param(m, i));
        e_grad = fmax(e_grad, NNT_CHECK_CLOSE(key, got, want, PARITY_RTOL, PARITY_FLOOR));
        e_norm = fmax(e_norm, nnt_normwise_error(got, want));
        em_release(want);
    }
    cr_log_info("%s: max rel error output %.3g, loss %.3g, gradients %.3g (normwise %.3g)",
                prefix, e_out, e_loss, e_grad, e_norm);
    em_release(loss);
    em_release(out);
    em_release(x);
    em_release(y);
    em_module_free(ce);
    em_module_free(m);
    nnt_golden_close(&g);
}

Test(golden, the_tutorial_mlp_matches_pytorch_output_loss_and_gradients)
{
    model_parity("mlp", "Sequential(Linear(3, 64), ReLU(), Linear(64, 128), ReLU(), "
                        "Linear(128, 10))");
}

Test(golden, a_small_cnn_matches_pytorch_output_loss_and_gradients)
{
    model_parity("cnn", "Sequential(Conv2d(1, 4, 3), ReLU(), MaxPool2d(2), Flatten(), "
                        "Linear(36, 10))");
}
