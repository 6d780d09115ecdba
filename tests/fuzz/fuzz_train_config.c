/* tests/fuzz/fuzz_train_config.c - libFuzzer harness for `ember train`'s config reading: the
 * input is loaded as the config file (core/config.c), then tools/ember/train_config.c's
 * reading of [data], [model] and [train] runs on it (key check with did-you-mean, numbers,
 * booleans, output folder), and every spec it names is parsed. train_config.c and util.c are
 * compiled into the harness (tests/fuzz/meson.build), so they are the code `ember` runs.
 * Links the core's objects statically and loads no plugin. */
#include "fuzz_common.h"
#include "internal.h"
#include "train.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_clear_env();
    return 0;
}

static void parse_spec(const char *key, const char *text)
{
    if (!text || fuzz_known_spec_overread(text))
        return;
    em_clear_error();
    em_spec *s = em_spec_parse(text, em_config_source(key));
    if (!s)
        FUZZ_CHECK_MESSAGE(key);
    em_spec_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("train.ini", data, size);
    em_clear_error();
    if (em__config_load(path) != EM_OK) {
        FUZZ_CHECK_MESSAGE("em__config_load");
        return 0;
    }
    run_cfg c;
    memset(&c, 0, sizeof c);
    train_opts o = {.config = path};
    if (train_config_load(&c, &o) == 0) {
        FUZZ_CHECK(c.dataset && c.model && c.optimizer && c.batch_size >= 1 && c.epochs >= 1,
                   "train_config_load accepted an incomplete config");
        parse_spec("data.dataset", c.dataset);
        parse_spec("data.test_dataset", c.test_dataset);
        parse_spec("model.spec", c.model);
        parse_spec("model.loss", c.loss);
        parse_spec("train.optimizer", c.optimizer);
        parse_spec("train.scheduler", c.scheduler);
    }
    em__config_free();
    return 0;
}
