/* tests/fuzz/fuzz_config.c - libFuzzer harness for the config file reader (core/config.c):
 * the input is written to a file and loaded as the config (every section, plugin_path lists,
 * the [runtime] value checks), then every entry and list is read back. Links the core's
 * objects statically (the reader is internal) and loads no plugin. */
#include "fuzz_common.h"
#include "internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_clear_env();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("ember.ini", data, size);
    em_clear_error();
    if (em__config_load(path) != EM_OK) {
        FUZZ_CHECK_MESSAGE("em__config_load");
        return 0;
    }
    const char *k, *v, *src;
    size_t total = 0;
    for (int i = 0; em__config_entry(i, &k, &v, &src); i++) {
        FUZZ_CHECK(k && v && src, "entry %d is incomplete", i);
        FUZZ_CHECK(em_config_get(k), "entry '%s' is listed but em_config_get finds nothing", k);
        total += strlen(k) + strlen(v) + strlen(src);
    }
    const char **vals;
    int n = em__config_multi("runtime.plugin_path", &vals);
    for (int i = 0; i < n; i++)
        total += strlen(vals[i]);
    (void)em_config_threads();
    (void)em_config_source("runtime.backend");
    FUZZ_CHECK(total < ((size_t)1 << 40), "impossible size");
    em__config_free();
    return 0;
}
