/* tests/fuzz/fuzz_safetensors.c - libFuzzer harness for loading a module from a safetensors
 * file (core/checkpoint.c, em_module_load, or em_module_load_bytes on the same bytes). The first
 * byte picks the module (a Linear MLP, or one with BatchNorm buffers of two dtypes) and the
 * loader; the rest is the file. A failed load must leave every parameter and buffer byte as
 * it was, and say why. */
#include "../faults/state.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static em_module *models[2];
static unsigned char before[1 << 16], after[1 << 16];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init_ember();
    models[0] = em_module_new("Sequential(Linear(4, 8), ReLU(), Linear(8, 3))");
    models[1] = em_module_new("Sequential(Linear(2, 4), BatchNorm1d(4), Linear(4, 2, bias=false))");
    FUZZ_CHECK(models[0] && models[1], "%s", em_last_error());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    em_module *m = models[data[0] & 1];
    /* bit 1 of the first byte: the file, or the same bytes as an image in memory */
    bool image = data[0] & 2;
    const char *path = image ? NULL : fuzz_write("m.safetensors", data + 1, size - 1);
    size_t n0 = 0, n1 = 0;
    snap_module(m, before, sizeof before, &n0);
    FUZZ_CHECK(n0 != SNAP_FAIL, "cannot read the module");
    em_clear_error();
    if ((image ? em_module_load_bytes(m, data + 1, size - 1, "fuzz image")
               : em_module_load(m, path)) < 0) {
        FUZZ_CHECK_MESSAGE("em_module_load");
        snap_module(m, after, sizeof after, &n1);
        FUZZ_CHECK(n1 == n0 && !memcmp(before, after, n0),
                   "em_module_load failed (%s) but changed the module", em_last_error());
    }
    return 0;
}
