/* tests/optim/test_parity.c - parity with PyTorch, from files gen_golden.py wrote with torch
 * 1.13 (tests/optim/golden/, committed):
 *
 *   - a safetensors file written by PyTorch (the tutorial's MLP, and a small CNN) loads here;
 *   - from the same initial weights and batch, three SGD(momentum=0.9) steps and three Adam
 *     steps with CrossEntropyLoss give PyTorch's losses and parameters within 1e-5 relative;
 *   - a file written here loads in PyTorch (load_state_dict(strict=True)) with the same values;
 *     that part runs /usr/bin/python3 and skips, saying why, where torch is absent.
 *
 * These need the nn plugin. Where the tree does not build it (OPTIM_NN_BUILT == 0) they skip;
 * where it does, a missing layer is a failure.
 */
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(parity, .init = opt_setup, .fini = opt_teardown);

#define MLP_SPEC "Sequential(Linear(3, 64), ReLU(), Linear(64, 128), ReLU(), Linear(128, 10))"
#define CNN_SPEC "Sequential(Conv2d(1, 4, 3), ReLU(), MaxPool2d(2), Flatten(), Linear(36, 10))"
#define F64 "dtype=\"float64\""
#define MLP64_SPEC                                                                            \
    "Sequential(Linear(3, 64, " F64 "), ReLU(), Linear(64, 128, " F64 "), ReLU(), "          \
    "Linear(128, 10, " F64 "))"
#define CNN64_SPEC                                                                            \
    "Sequential(Conv2d(1, 4, 3, " F64 "), ReLU(), MaxPool2d(2), Flatten(), "                 \
    "Linear(36, 10, " F64 "))"

/* The tolerance: per tensor, max |got - want| <= RTOL * max |want| (relative error in the
 * infinity norm). Elementwise relative error is no fair measure after Adam steps: Adam's first
 * step moves every weight by about lr whatever its gradient, so a weight whose gradient is
 * tiny (5e-7 where the others are 1e-3) carries that gradient's float32 rounding, which depends
 * on the BLAS kernels of the machine, into its value. float64 leaves the update rules alone. */
#define RTOL32 1e-5
#define RTOL64 1e-10

static const char *golden(const char *name)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", OPTIM_GOLDEN_DIR, name);
    return buf[k];
}

static em_module *model(const char *spec)
{
    em_module *m = em_module_new(spec);
    if (!m && !OPTIM_NN_BUILT)
        cr_skip_test("the nn plugin is not built in this tree: %s", em_last_error());
    cr_assert_not_null(m, "%s: %s", spec, em_last_error());
    return m;
}

/* Compares every tensor of the golden file with m's; returns the largest relative error (as
 * above) over the tensors and asserts each is within rtol. */
static double compare(const em_module *m, const char *golden_file, const char *what, double rtol)
{
    opt_st f;
    opt_st_read(&f, golden_file);
    double worst = 0;
    const char *key;
    json_t *val;
    int nkeys = 0;
    json_object_foreach(f.hdr, key, val)
    {
        if (!strcmp(key, "__metadata__"))
            continue;
        nkeys++;
        int64_t n;
        double *want = opt_st_values(&f, key, &n);
        em_tensor *t = em_module_get(m, key);
        cr_assert_not_null(t, "%s: the module has no '%s': %s", what, key, em_last_error());
        cr_assert_eq(em_numel(t), n, "%s: %s", what, key);
        double *got = emt_values(t);
        double amax = 0, emax = 0;
        int64_t at = 0;
        for (int64_t i = 0; i < n; i++) {
            amax = fmax(amax, fabs(want[i]));
            if (fabs(got[i] - want[i]) > emax) {
                emax = fabs(got[i] - want[i]);
                at = i;
            }
        }
        double rel = amax > 0 ? emax / amax : emax;
        cr_assert(rel <= rtol,
                  "%s: %s differs by up to %.3g (at %lld: %.9g, PyTorch %.9g) for values up to "
                  "%.3g: relative error %.3g > %g",
                  what, key, emax, (long long)at, got[at], want[at], amax, rel, rtol);
        worst = fmax(worst, rel);
        free(got);
        free(want);
    }
    cr_assert_eq(nkeys, em_module_state_count(m), "%s: the golden file has %d tensors", what,
                 nkeys);
    opt_st_free(&f);
    return worst;
}

/* Loads the initial weights and the batch, runs three steps of `opt_spec`, checks the losses
 * against the batch file's `losses_key` and returns the trained module. */
static em_module *train3(const char *spec, const char *arch, const char *opt_spec,
                         const char *losses_key, em_dtype dt)
{
    double rtol = dt == EM_F64 ? RTOL64 : RTOL32;
    char name[64];
    em_module *m = model(spec);
    snprintf(name, sizeof name, "%s_init.safetensors", arch);
    cr_assert_eq(em_module_load(m, golden(name)), EM_OK, "%s", em_last_error());
    opt_st batch;
    snprintf(name, sizeof name, "%s_batch.safetensors", arch);
    opt_st_read(&batch, golden(name));
    em_tensor *x32 = opt_st_tensor(&batch, "x"), *y = opt_st_tensor(&batch, "y");
    em_tensor *x = em_to_dtype(x32, dt);
    cr_assert_not_null(x, "%s", em_last_error());
    em_release(x32);
    int64_t nl;
    double *want = opt_st_values(&batch, losses_key, &nl);
    cr_assert_eq(nl, 3);
    em_module *loss_fn = em_module_new("CrossEntropyLoss()");
    cr_assert_not_null(loss_fn, "%s", em_last_error());
    em_optimizer *o = opt_optimizer(opt_spec, m);
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(em_zero_grad(o), EM_OK);
        em_tensor *out = em_forward(m, x);
        em_tensor *loss = em_loss(loss_fn, out, y);
        cr_assert_not_null(loss, "%s %s step %d: %s", arch, opt_spec, k + 1, em_last_error());
        double l = em_item(loss);
        cr_assert(fabs(l - want[k]) <= rtol * fabs(want[k]),
                  "%s %s: loss before step %d is %.9g, PyTorch %.9g", arch, opt_spec, k + 1, l,
                  want[k]);
        cr_assert_eq(em_backward(loss, NULL, false), EM_OK, "%s", em_last_error());
        cr_assert_eq(em_step(o), EM_OK, "%s", em_last_error());
        em_release(loss);
        em_release(out);
    }
    free(want);
    em_optimizer_free(o);
    em_module_free(loss_fn);
    em_release(x);
    em_release(y);
    opt_st_free(&batch);
    return m;
}

static void check_training(const char *spec, const char *arch, const char *opt_spec,
                           const char *losses_key, const char *golden_name, em_dtype dt)
{
    char key[64], file[64];
    snprintf(key, sizeof key, "%s%s", losses_key, dt == EM_F64 ? "64" : "");
    snprintf(file, sizeof file, "%s_%s%s.safetensors", arch, golden_name,
             dt == EM_F64 ? "_f64" : "");
    em_module *m = train3(spec, arch, opt_spec, key, dt);
    char what[128];
    snprintf(what, sizeof what, "%s after 3 %s steps in %s", arch, opt_spec, em_dtype_name(dt));
    double worst = compare(m, golden(file), what, dt == EM_F64 ? RTOL64 : RTOL32);
    cr_log_info("%s: largest relative error %.3g", what, worst);
    em_module_free(m);
}

/* ---- PyTorch -> Ember -------------------------------------------------------------------------- */

Test(parity, a_file_written_by_pytorch_loads_here)
{
    em_module *m = model(MLP_SPEC);
    cr_assert_eq(em_module_load(m, golden("mlp_init.safetensors")), EM_OK, "%s", em_last_error());
    cr_assert_eq(compare(m, golden("mlp_init.safetensors"), "mlp_init", 0), 0,
                 "float32 values load bit for bit");
    em_module_free(m);
    m = model(CNN_SPEC);
    cr_assert_eq(em_module_load(m, golden("cnn_init.safetensors")), EM_OK, "%s", em_last_error());
    cr_assert_eq(compare(m, golden("cnn_init.safetensors"), "cnn_init", 0), 0);
    em_module_free(m);
}

Test(parity, a_pytorch_file_for_another_architecture_is_refused)
{
    em_module *m = model("Sequential(Linear(3, 64), ReLU(), Linear(64, 10))");
    int64_t n;
    double *before = opt_snapshot(m, &n);
    cr_assert_lt(em_module_load(m, golden("mlp_init.safetensors")), 0);
    EMT_ASSERT_ERROR("key '2.weight' has shape [128, 64] in the file but [10, 64]");
    opt_assert_unchanged(m, before, n);
    free(before);
    em_module_free(m);
}

Test(parity, mlp_three_sgd_momentum_steps_match_pytorch_in_float32)
{
    check_training(MLP_SPEC, "mlp", "SGD(lr=0.1, momentum=0.9)", "sgd_losses", "sgd3", EM_F32);
}

Test(parity, mlp_three_sgd_momentum_steps_match_pytorch_in_float64)
{
    check_training(MLP64_SPEC, "mlp", "SGD(lr=0.1, momentum=0.9)", "sgd_losses", "sgd3", EM_F64);
}

Test(parity, mlp_three_adam_steps_match_pytorch_in_float32)
{
    check_training(MLP_SPEC, "mlp", "Adam(lr=0.01)", "adam_losses", "adam3", EM_F32);
}

Test(parity, mlp_three_adam_steps_match_pytorch_in_float64)
{
    check_training(MLP64_SPEC, "mlp", "Adam(lr=0.01)", "adam_losses", "adam3", EM_F64);
}

Test(parity, cnn_three_sgd_momentum_steps_match_pytorch_in_float32)
{
    check_training(CNN_SPEC, "cnn", "SGD(lr=0.1, momentum=0.9)", "sgd_losses", "sgd3", EM_F32);
}

Test(parity, cnn_three_sgd_momentum_steps_match_pytorch_in_float64)
{
    check_training(CNN64_SPEC, "cnn", "SGD(lr=0.1, momentum=0.9)", "sgd_losses", "sgd3", EM_F64);
}

Test(parity, cnn_three_adam_steps_match_pytorch_in_float32)
{
    check_training(CNN_SPEC, "cnn", "Adam(lr=0.01)", "adam_losses", "adam3", EM_F32);
}

Test(parity, cnn_three_adam_steps_match_pytorch_in_float64)
{
    check_training(CNN64_SPEC, "cnn", "Adam(lr=0.01)", "adam_losses", "adam3", EM_F64);
}

/* ---- Ember -> PyTorch -------------------------------------------------------------------------- */

static void check_in_pytorch(const char *spec, const char *arch)
{
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "vgpreload"))
        cr_skip_test("running under valgrind, which would run Python and torch too "
                     "(--trace-children): the PyTorch half is checked in plain runs");
    if (access(OPTIM_PYTHON3, X_OK) != 0)
        cr_skip_test("%s is not installed: the PyTorch half of the interop test needs it",
                     OPTIM_PYTHON3);
    em_module *m = train3(spec, arch, "SGD(lr=0.1, momentum=0.9)", "sgd_losses", EM_F32);
    char dir[512], file[600], cmd[4096], sgd3[64], batch[64];
    opt_tmpdir(dir, sizeof dir);
    snprintf(file, sizeof file, "%s/%s.safetensors", dir, arch);
    cr_assert_eq(em_module_save(m, file), EM_OK, "%s", em_last_error());
    snprintf(sgd3, sizeof sgd3, "%s_sgd3.safetensors", arch);
    snprintf(batch, sizeof batch, "%s_batch.safetensors", arch);
    /* without the test's preloads (a sanitizer runtime would follow into Python) */
    snprintf(cmd, sizeof cmd,
             "env -u LD_PRELOAD '%s' '%s' %s '%s' '%s' '%s' >/dev/null 2>'%s/err.txt'",
             OPTIM_PYTHON3, golden("check_load.py"), arch, file, golden(sgd3), golden(batch),
             dir);
    int rc = system(cmd);
    char err[2048] = "";
    snprintf(file, sizeof file, "%s/err.txt", dir);
    FILE *f = fopen(file, "r");
    if (f) {
        size_t n = fread(err, 1, sizeof err - 1, f);
        err[n] = '\0';
        fclose(f);
    }
    opt_rmdir(dir);
    em_module_free(m);
    cr_assert(rc != -1 && WIFEXITED(rc), "could not run %s", cmd);
    if (WEXITSTATUS(rc) == 77)
        cr_skip_test("PyTorch half skipped: %s", err);
    cr_assert_eq(WEXITSTATUS(rc), 0, "PyTorch could not load Ember's file: %s", err);
}

Test(parity, an_mlp_file_written_here_loads_in_pytorch)
{
    check_in_pytorch(MLP_SPEC, "mlp");
}

Test(parity, a_cnn_file_written_here_loads_in_pytorch)
{
    check_in_pytorch(CNN_SPEC, "cnn");
}

/* ---- the ordering trap ------------------------------------------------------------------------ */

/* One CrossEntropyLoss step of o on (x, y). */
static void one_step(em_module *m, em_optimizer *o, em_module *loss_fn, em_tensor *x,
                     em_tensor *y)
{
    cr_assert_eq(em_zero_grad(o), EM_OK);
    em_tensor *out = em_forward(m, x);
    em_tensor *loss = em_loss(loss_fn, out, y);
    cr_assert_not_null(loss, "%s", em_last_error());
    cr_assert_eq(em_backward(loss, NULL, false), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_step(o), EM_OK, "%s", em_last_error());
    em_release(loss);
    em_release(out);
}

/* The tutorial builds the optimizer after moving the model, because in PyTorch state made
 * before a move stays behind. Here the optimizer is built first, steps once, the model goes to
 * another device and back, and the run ends exactly where an unmoved run does (and where
 * PyTorch's run does). */
Test(parity, an_adam_optimizer_made_before_the_move_trains_the_tutorials_mlp)
{
    em_module *moved = model(MLP_SPEC), *stayed = model(MLP_SPEC);
    cr_assert_eq(em_module_load(moved, golden("mlp_init.safetensors")), EM_OK, "%s",
                 em_last_error());
    cr_assert_eq(em_module_load(stayed, golden("mlp_init.safetensors")), EM_OK, "%s",
                 em_last_error());
    opt_st batch;
    opt_st_read(&batch, golden("mlp_batch.safetensors"));
    em_tensor *x = opt_st_tensor(&batch, "x"), *y = opt_st_tensor(&batch, "y");
    em_module *loss_fn = em_module_new("CrossEntropyLoss()");
    cr_assert_not_null(loss_fn, "%s", em_last_error());
    em_optimizer *om = opt_optimizer("Adam(lr=0.01)", moved);
    em_optimizer *os = opt_optimizer("Adam(lr=0.01)", stayed);
    one_step(moved, om, loss_fn, x, y);
    one_step(stayed, os, loss_fn, x, y);

    em_tensor *w = em_module_get(moved, "2.weight");
    em_tensor *m1 = em_optimizer_slot(om, 2, "exp_avg");
    cr_assert_not_null(m1);
    em_device mock = em_device_parse("mock:1"), home = em_device_of(w);
    cr_assert_eq(em_module_to(moved, mock), EM_OK, "%s", em_last_error());
    cr_assert(em_device_eq(em_device_of(w), mock));
    cr_assert(em_device_eq(em_device_of(m1), mock), "Adam's state went along");
    cr_assert_eq(em_module_to(moved, home), EM_OK, "%s", em_last_error());
    cr_assert(em_device_eq(em_device_of(w), home));
    cr_assert_eq(em_module_get(moved, "2.weight"), w);
    cr_assert_eq(em_optimizer_param(om, 2), w);
    cr_assert_eq(em_optimizer_slot(om, 2, "exp_avg"), m1);

    for (int k = 0; k < 2; k++) {
        one_step(moved, om, loss_fn, x, y);
        one_step(stayed, os, loss_fn, x, y);
    }
    int64_t n;
    double *want = opt_snapshot(stayed, &n);
    opt_assert_unchanged(moved, want, n);
    free(want);
    compare(moved, golden("mlp_adam3.safetensors"), "mlp moved after step 1", RTOL32);
    em_optimizer_free(om);
    em_optimizer_free(os);
    em_module_free(loss_fn);
    em_release(x);
    em_release(y);
    opt_st_free(&batch);
    em_module_free(moved);
    em_module_free(stayed);
}
