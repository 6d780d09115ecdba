/* tests/fuzz/fuzz_spec.c - libFuzzer harness for spec strings (core/spec.c): parse, print,
 * parse the printed text again (it must give the same text), bind against a declaration of
 * every parameter kind, and build a module and an optimizer from the text when its numbers
 * are small enough not to ask for gigabytes on purpose, and an optimizer over a Linear. */
#include <ctype.h>

#include "ember/plugin.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static em_module *base;   /* what a fuzzed optimizer spec optimizes */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init_ember();
    base = em_module_new("Linear(3, 2)");
    FUZZ_CHECK(base, "Linear(3, 2): %s", em_last_error());
    return 0;
}

static const em_param_decl decls[] = {
    {"a", EM_PARAM_INT, "1"},        {"b", EM_PARAM_FLOAT, "0.5"},
    {"c", EM_PARAM_BOOL, "true"},    {"d", EM_PARAM_STRING, "\"x\""},
    {"e", EM_PARAM_INTS, "[1, 2]"},  {"f", EM_PARAM_FLOATS, "None"},
    {"g", EM_PARAM_STRINGS, "None"}, {"h", EM_PARAM_SPEC, "None"},
};

/* True if every run of digits is at most 2 long: Linear(100000, 100000) is a legal request
 * for 40 GB, and Conv2d(214, 2, 442) for 83 million weights to initialise (20 s under ASan,
 * found as libFuzzer timeouts), neither a bug. */
static bool small_numbers(const char *s)
{
    int run = 0;
    for (; *s; s++) {
        run = isdigit((unsigned char)*s) ? run + 1 : 0;
        if (run > 2)
            return false;
    }
    return true;
}

static void bind_all(const em_spec *s)
{
    em_args *a = em_args_bind(s, (int)(sizeof decls / sizeof decls[0]), decls);
    if (!a) {
        FUZZ_CHECK_MESSAGE("em_args_bind");
        return;
    }
    (void)em_args_int(a, "a");
    (void)em_args_float(a, "b");
    (void)em_args_bool(a, "c");
    (void)em_args_str(a, "d");
    for (int i = 0; i < em_args_count(a, "e"); i++)
        (void)em_args_int_at(a, "e", i);
    for (int i = 0; i < em_args_count(a, "g"); i++)
        (void)em_args_str_at(a, "g", i);
    (void)em_args_spec(a, "h");
    em_args_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    if (fuzz_known_spec_overread(text)) {
        free(text);
        return 0;
    }
    em_clear_error();
    em_spec *s = em_spec_parse(text, NULL);
    if (!s) {
        FUZZ_CHECK_MESSAGE("em_spec_parse");
        free(text);
        return 0;
    }
    char *printed = em_spec_str(s);
    FUZZ_CHECK(printed, "em_spec_str: %s", em_last_error());
    em_spec *again = em_spec_parse(printed, NULL);
    FUZZ_CHECK(again, "the printed spec '%s' of '%s' does not parse: %s", printed, text,
               em_last_error());
    char *printed2 = em_spec_str(again);
    FUZZ_CHECK(printed2 && !strcmp(printed, printed2), "'%s' prints as '%s', then as '%s'",
               text, printed, printed2 ? printed2 : "(null)");
    bind_all(s);
    if (small_numbers(text) && size < 512) {
        em_module *m = em_module_new(text);
        if (m) {
            em_optimizer *o = em_optimizer_new("SGD(lr=0.1, momentum=0.9)", m);
            em_optimizer_free(o);
            char *str = em_module_str(m);
            free(str);
            em_module_free(m);
        } else {
            FUZZ_CHECK_MESSAGE("em_module_new");
        }
        em_optimizer *o = em_optimizer_new(text, base);
        if (!o)
            FUZZ_CHECK_MESSAGE("em_optimizer_new");
        em_optimizer_free(o);
    }
    free(printed2);
    em_spec_free(again);
    free(printed);
    em_spec_free(s);
    free(text);
    return 0;
}
