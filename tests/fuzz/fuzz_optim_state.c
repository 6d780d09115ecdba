/* tests/fuzz/fuzz_optim_state.c - libFuzzer harness for loading an optimizer's state from a
 * safetensors file (core/checkpoint.c, em_optimizer_load). The first byte picks the optimizer
 * (SGD with momentum, or Adam with amsgrad), both over a small MLP that has taken a step, so
 * that they hold state; the rest is the file. A failed load must leave the optimizer's slots,
 * its step count and the module as they were, and say why. */
#include "../faults/state.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static em_module *model;
static em_optimizer *opts[2];
static unsigned char before[1 << 16], after[1 << 16];

static size_t snapshot(em_optimizer *o, unsigned char *buf, size_t cap)
{
    size_t off = 0;
    snap_module(model, buf, cap, &off);
    snap_optimizer(o, buf, cap, &off);
    return off;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init_ember();
    model = em_module_new("Sequential(Linear(4, 8), ReLU(), Linear(8, 3))");
    FUZZ_CHECK(model, "%s", em_last_error());
    opts[0] = em_optimizer_new("SGD(lr=0.1, momentum=0.9)", model);
    opts[1] = em_optimizer_new("Adam(lr=0.01, amsgrad=true)", model);
    FUZZ_CHECK(opts[0] && opts[1], "%s", em_last_error());
    em_tensor *x = em_ones(2, (int64_t[]){2, 4}, NULL);
    em_tensor *out = em_forward(model, x);
    em_tensor *loss = em_sum(out, 0, NULL, false);
    FUZZ_CHECK(loss && em_backward(loss, NULL, false) == EM_OK, "%s", em_last_error());
    FUZZ_CHECK(em_step(opts[0]) == EM_OK && em_step(opts[1]) == EM_OK, "%s", em_last_error());
    em_release(loss);
    em_release(out);
    em_release(x);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    em_optimizer *o = opts[data[0] & 1];
    const char *path = fuzz_write("o.safetensors", data + 1, size - 1);
    size_t n0 = snapshot(o, before, sizeof before);
    FUZZ_CHECK(n0 != SNAP_FAIL, "cannot read the optimizer");
    em_clear_error();
    if (em_optimizer_load(o, path) < 0) {
        FUZZ_CHECK_MESSAGE("em_optimizer_load");
        size_t n1 = snapshot(o, after, sizeof after);
        FUZZ_CHECK(n1 == n0 && !memcmp(before, after, n0),
                   "em_optimizer_load failed (%s) but changed the optimizer", em_last_error());
    }
    return 0;
}
