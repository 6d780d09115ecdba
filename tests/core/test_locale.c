/* tests/core/test_locale.c - numbers read and written as text do not depend on the host
 * program's locale: under de_DE.UTF-8 (decimal comma) every result is the "C" locale's.
 *
 * Each test switches the whole process to de_DE.UTF-8 (setlocale(LC_ALL, ...), as a host
 * program that calls setlocale(LC_ALL, "") would under LANG=de_DE.UTF-8) and skips, with the
 * reason, where that locale is not installed (tools/setup.sh generates it).
 */
#include <locale.h>
#include <unistd.h>

#include "helpers.h"

static void german_setup(void)
{
    emt_setup();
    emt_pin_cpu();
    if (!setlocale(LC_ALL, "de_DE.UTF-8")) {
        setlocale(LC_ALL, "C");
        cr_skip_test("the de_DE.UTF-8 locale is not installed (tools/setup.sh generates it)");
    }
    /* Make sure the locale really has a decimal comma, or the tests below prove nothing. */
    cr_assert_str_eq(localeconv()->decimal_point, ",", "de_DE.UTF-8 has decimal point '%s'",
                     localeconv()->decimal_point);
}

static void german_teardown(void)
{
    setlocale(LC_ALL, "C");
    emt_teardown();
}

TestSuite(locale, .init = german_setup, .fini = german_teardown);

/* A temporary file holding text; the caller unlinks and frees the path. */
static char *temp_file(const char *suffix, const char *text)
{
    char *path = malloc(64);
    cr_assert(path);
    snprintf(path, 64, "/tmp/ember-locale-XXXXXX%s", suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    cr_assert(fd >= 0, "mkstemps failed");
    FILE *f = fdopen(fd, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
    return path;
}

Test(locale, the_helpers_read_and_write_a_decimal_point)
{
    char *end;
    cr_expect_eq(em_strtod("0.25x", &end), 0.25);
    cr_expect_str_eq(end, "x");
    char buf[64];
    em_snprintf(buf, sizeof buf, "%.4f %g %.2e", 0.5, 1.25, 1500.0);
    cr_expect_str_eq(buf, "0.5000 1.25 1.50e+03");
    cr_expect_str_eq(em_float_repr(0.1, buf, sizeof buf), "0.1");
    cr_expect_str_eq(em_float_repr(2.0, buf, sizeof buf), "2.0");
    cr_expect_str_eq(em_float_repr(1e-5, buf, sizeof buf), "1e-05");
    /* and the host's own formatting still uses its locale: only Ember's is pinned */
    snprintf(buf, sizeof buf, "%.1f", 0.5);
    cr_expect_str_eq(buf, "0,5");
}

Test(locale, a_spec_with_a_fraction_parses_and_prints_back)
{
    em_module *m = em_module_new("Dropout(p=0.25)");
    cr_assert(m, "Dropout(p=0.25): %s", em_last_error());
    char *s = em_module_repr(m);
    cr_expect(s && strstr(s, "Dropout(p=0.25, inplace=False)"), "printed as %s", s);
    free(s);

    em_spec *sp = em_spec_parse("SGD(lr=0.1, momentum=0.9, betas=[0.5, 1e-3])", NULL);
    cr_assert(sp, "%s", em_last_error());
    s = em_spec_str(sp);
    cr_expect_str_eq(s, "SGD(lr=0.1, momentum=0.9, betas=[0.5, 0.001])");
    free(s);
    em_spec_free(sp);

    em_module_free(m);

    m = em_module_new("Linear(2, 1)");
    cr_assert(m, "%s", em_last_error());
    em_optimizer *o = em_optimizer_new("SGD(lr=0.1)", m);
    cr_assert(o, "SGD(lr=0.1): %s", em_last_error());
    cr_expect_eq(em_optimizer_lr(o), 0.1);
    em_optimizer_free(o);
    em_module_free(m);
}

Test(locale, error_messages_write_numbers_with_a_point)
{
    cr_assert_null(em_module_new("Dropout(p=1.5)"));
    cr_expect(strstr(em_last_error(), "got 1.5"), "message: %s", em_last_error());
}

Test(locale, a_printed_tensor_uses_a_decimal_point)
{
    em_tensor *t = emt_tensor(EM_F32, EM_SHAPE(2), EMT_VALS(0.5, -1.25));
    char *s = em_tensor_str(t);
    cr_expect_str_eq(s, "tensor([ 0.5000, -1.2500])");
    free(s);
    em_release(t);
}

Test(locale, a_csv_file_with_fractions_reads_as_written)
{
    char *path = temp_file(".csv", "a,b,label\n0.5,1.25,1\n-2.75,3e-1,0\n");
    char spec[128];
    snprintf(spec, sizeof spec, "CSV(path=\"%s\", label=\"label\")", path);
    em_dataset *d = em_dataset_new(spec);
    cr_assert(d, "%s: %s", spec, em_last_error());
    em_tensor *x = NULL, *y = NULL;
    cr_assert_eq(em_dataset_get(d, 1, &x, &y), EM_OK, "%s", em_last_error());
    float v[2];
    cr_assert_eq(em_copy_to_host(x, v, sizeof v), EM_OK, "%s", em_last_error());
    cr_expect_eq(v[0], -2.75f);
    cr_expect_eq(v[1], 0.3f);
    em_release(x);
    em_release(y);
    em_dataset_free(d);
    unlink(path);
    free(path);
}

Test(locale, a_config_file_value_with_a_fraction_builds_the_same_module)
{
    em_shutdown();
    char *path = temp_file(".ini", "[model]\nspec = Sequential(Linear(2, 2), Dropout(p=0.125))\n");
    cr_assert_eq(em_init(path), EM_OK, "%s", em_last_error());
    const char *spec = em_config_get("model.spec");
    cr_assert(spec);
    em_module *m = em_module_new(spec);
    cr_assert(m, "%s: %s", spec, em_last_error());
    char *s = em_module_repr(m);
    cr_expect(s && strstr(s, "Dropout(p=0.125, inplace=False)"), "printed as %s", s);
    free(s);
    em_module_free(m);
    unlink(path);
    free(path);
}

Test(locale, an_optimizer_checkpoint_keeps_its_learning_rate)
{
    em_module *m = em_module_new("Linear(2, 1)");
    cr_assert(m, "%s", em_last_error());
    em_optimizer *o = em_optimizer_new("SGD(lr=0.0625, momentum=0.5)", m);
    cr_assert(o, "%s", em_last_error());
    char *path = temp_file(".safetensors", "");
    cr_assert_eq(em_optimizer_save(o, path), EM_OK, "%s", em_last_error());
    /* The metadata is text: it must say 0.0625 for PyTorch and for a "C" locale reader. */
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    char head[4096] = {0};
    size_t got = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    cr_assert(got > 8);
    cr_expect(memmem(head, got, "\"lr\":\"0.0625\"", 13) || memmem(head, got, "\"lr\": \"0.0625\"", 14),
              "the header's lr is not \"0.0625\": %s", head + 8);
    em_optimizer_free(o);

    o = em_optimizer_new("SGD(lr=0.5, momentum=0.5)", m);
    cr_assert(o);
    cr_assert_eq(em_optimizer_load(o, path), EM_OK, "%s", em_last_error());
    cr_expect_eq(em_optimizer_lr(o), 0.0625);
    em_optimizer_free(o);

    /* a module checkpoint round trip too (safetensors' JSON header under this locale) */
    em_tensor *w = em_module_get(m, "weight");
    float before[2], after[2];
    cr_assert_eq(em_copy_to_host(w, before, sizeof before), EM_OK);
    cr_assert_eq(em_module_save(m, path), EM_OK, "%s", em_last_error());
    em_module *m2 = em_module_new("Linear(2, 1)");
    cr_assert(m2);
    cr_assert_eq(em_module_load(m2, path), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_copy_to_host(em_module_get(m2, "weight"), after, sizeof after), EM_OK);
    cr_expect_arr_eq(before, after, sizeof before);
    em_module_free(m2);
    em_module_free(m);
    unlink(path);
    free(path);
}
