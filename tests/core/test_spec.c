/* tests/core/test_spec.c - the spec parser and binder every pluggable type shares. */
#include <sys/mman.h>
#include <unistd.h>

#include "helpers.h"

static const em_param_decl linear_params[] = {
    {"in_features", EM_PARAM_INT, NULL},
    {"out_features", EM_PARAM_INT, NULL},
    {"bias", EM_PARAM_BOOL, "true"},
};

static const em_param_decl sgd_params[] = {
    {"lr", EM_PARAM_FLOAT, "0.001"},
    {"momentum", EM_PARAM_FLOAT, "0"},
    {"betas", EM_PARAM_FLOATS, "[0.9, 0.999]"},
    {"milestones", EM_PARAM_INTS, "None"},
    {"name", EM_PARAM_STRING, "\"sgd\""},
};

static const em_param_decl seq_params[] = {{"modules", EM_PARAM_SPECS_VARARG, NULL}};

static em_args *bind(const char *text, int n, const em_param_decl *p, em_spec **out)
{
    *out = em_spec_parse(text, NULL);
    cr_assert_not_null(*out, "parse %s: %s", text, em_last_error());
    return em_args_bind(*out, n, p);
}

Test(spec, positional_and_keyword_arguments_bind_to_declarations)
{
    em_spec *s;
    em_args *a = bind("Linear(3, out_features=64)", 3, linear_params, &s);
    cr_assert_not_null(a, "%s", em_last_error());
    cr_assert_str_eq(em_spec_name(s), "Linear");
    cr_assert_eq(em_args_int(a, "in_features"), 3);
    cr_assert_eq(em_args_int(a, "out_features"), 64);
    cr_assert(em_args_bool(a, "bias"), "the default applies");
    char *r = em_args_str_repr(a, "Linear");
    cr_assert_str_eq(r, "Linear(3, 64)");
    free(r);
    em_args_free(a);
    em_spec_free(s);
}

Test(spec, python_spellings_and_lists_are_accepted)
{
    em_spec *s;
    em_args *a = bind("SGD(lr=1e-2, momentum=0.9, betas=[0.5, 0.75], milestones=[3, 6], "
                      "name='x')",
                      5, sgd_params, &s);
    cr_assert_not_null(a, "%s", em_last_error());
    cr_assert_float_eq(em_args_float(a, "lr"), 0.01, 0);
    cr_assert_eq(em_args_count(a, "betas"), 2);
    cr_assert_float_eq(em_args_float_at(a, "betas", 1), 0.75, 0);
    cr_assert_eq(em_args_int_at(a, "milestones", 1), 6);
    cr_assert_str_eq(em_args_str(a, "name"), "x");
    char *r = em_args_str_repr(a, "SGD");
    cr_assert_str_eq(r, "SGD(lr=0.01, momentum=0.9, betas=[0.5, 0.75], milestones=[3, 6], "
                        "name=\"x\")");
    free(r);
    em_args_free(a);
    em_spec_free(s);
    a = bind("Linear(3, 4, bias=False)", 3, linear_params, &s);
    cr_assert_not(em_args_bool(a, "bias"));
    em_args_free(a);
    em_spec_free(s);
}

Test(spec, none_defaults_are_absent)
{
    em_spec *s;
    em_args *a = bind("SGD()", 5, sgd_params, &s);
    cr_assert_not(em_args_has(a, "milestones"));
    cr_assert_eq(em_args_count(a, "milestones"), 0);
    cr_assert(em_args_has(a, "lr"));
    char *r = em_args_str_repr(a, "SGD");
    cr_assert_str_eq(r, "SGD()");
    free(r);
    em_args_free(a);
    em_spec_free(s);
}

Test(spec, nested_specs_round_trip)
{
    const char *text = "Sequential(Linear(3, 64), ReLU(), Linear(64, 10, bias=false))";
    em_spec *s;
    em_args *a = bind(text, 1, seq_params, &s);
    cr_assert_not_null(a, "%s", em_last_error());
    cr_assert_eq(em_args_count(a, "modules"), 3);
    cr_assert_str_eq(em_spec_name(em_args_spec_at(a, "modules", 1)), "ReLU");
    char *r = em_args_str_repr(a, "Sequential");
    cr_assert_str_eq(r, text);
    free(r);
    char *t = em_spec_str(s);
    cr_assert_str_eq(t, text);
    free(t);
    em_args_free(a);
    em_spec_free(s);
}

Test(spec, unknown_arguments_suggest_the_closest_name)
{
    em_spec *s;
    cr_assert_null(bind("Linear(in_feature=3, out_features=4)", 3, linear_params, &s));
    EMT_ASSERT_ERROR("Linear: unknown argument 'in_feature'; did you mean 'in_features'?");
    em_spec_free(s);
    cr_assert_null(bind("Linear(3, 4, colour=1)", 3, linear_params, &s));
    EMT_ASSERT_ERROR("Linear: unknown argument 'colour'");
    em_spec_free(s);
}

Test(spec, binding_errors_are_precise)
{
    em_spec *s;
    cr_assert_null(bind("Linear(3)", 3, linear_params, &s));
    EMT_ASSERT_ERROR("Linear: missing required argument 'out_features'");
    em_spec_free(s);
    cr_assert_null(bind("Linear(\"3\", 4)", 3, linear_params, &s));
    EMT_ASSERT_ERROR("Linear: argument 'in_features' must be an integer, got \"3\"");
    em_spec_free(s);
    cr_assert_null(bind("Linear(3, 4, true, 5)", 3, linear_params, &s));
    EMT_ASSERT_ERROR("too many positional arguments");
    em_spec_free(s);
    cr_assert_null(bind("Linear(3, in_features=4)", 3, linear_params, &s));
    EMT_ASSERT_ERROR("argument 'in_features' given twice");
    em_spec_free(s);
    cr_assert_null(bind("Linear(3, 4.5)", 3, linear_params, &s));
    EMT_ASSERT_ERROR("must be an integer, got 4.5");
    em_spec_free(s);
}

Test(spec, syntax_errors_name_the_column)
{
    cr_assert_null(em_spec_parse("Linear(3, 4", "model.spec"));
    EMT_ASSERT_ERROR("model.spec: column 12: expected ')'");
    cr_assert_null(em_spec_parse("Linear(3,, 4)", NULL));
    EMT_ASSERT_ERROR("column 10: unexpected ','");
    cr_assert_null(em_spec_parse("Linear(a=1, 2)", NULL));
    EMT_ASSERT_ERROR("positional argument after a keyword argument");
    cr_assert_null(em_spec_parse("Linear(\"abc)", NULL));
    EMT_ASSERT_ERROR("unterminated string");
    cr_assert_null(em_spec_parse("Linear() junk", NULL));
    EMT_ASSERT_ERROR("unexpected text after the spec");
    cr_assert_null(em_spec_parse("", NULL));
    EMT_ASSERT_ERROR("expected a name");
}

Test(spec, deep_nesting_is_refused_without_crashing)
{
    char text[2000];
    size_t n = 0;
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "A(");
    for (int i = 0; i < 200; i++)
        text[n++] = ')';
    text[n] = '\0';
    cr_assert_null(em_spec_parse(text, NULL));
    EMT_ASSERT_ERROR("nested too deeply");
}

Test(spec, floats_print_back_exactly)
{
    em_spec *s = em_spec_parse("X(a=0.1, b=1e-8, c=3.0, d=-2, e=[1.5, 2])", NULL);
    char *t = em_spec_str(s);
    cr_assert_str_eq(t, "X(a=0.1, b=1e-08, c=3.0, d=-2, e=[1.5, 2])");
    free(t);
    em_spec_free(s);
}

/* The text sits at the very end of a mapped page, so reading one byte past its NUL faults
 * (no sanitizer needed to see it). */
Test(spec, a_string_ending_in_a_backslash_is_not_read_past_its_end)
{
    long page = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    cr_assert_neq(map, MAP_FAILED);
    cr_assert_eq(mprotect(map + page, (size_t)page, PROT_NONE), 0);
    const char *texts[] = {"g('\\", "g(\"\\", "g('a\\", "g(x='\\"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        size_t len = strlen(texts[i]) + 1;
        char *text = map + page - len;
        memcpy(text, texts[i], len);
        em_spec *s = em_spec_parse(text, NULL);
        cr_assert_null(s, "\"%s\" parsed", texts[i]);
        cr_assert(strstr(em_last_error(), "unterminated string"), "\"%s\": %s", texts[i],
                  em_last_error());
    }
    munmap(map, (size_t)page * 2);
}
