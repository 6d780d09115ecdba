/* tests/conformance/plugins/test_plugin_path.c - what an out-of-tree op plugin relies on: a
 * kernel registered before its backend's plugin has loaded is attached once it has, and
 * conformance cases registered by a plugin are copied, listed with the plugin's name, refused
 * when malformed, and dropped with a plugin whose init fails. Each Criterion test runs in its
 * own process, so setenv does not leak between tests. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <ember/ember.h>
#include <ember/plugin.h>

static void init_with(const char *path, bool fail)
{
    setenv("EMBER_CONFIG", "", 1);
    setenv("EMBER_PLUGIN_PATH", path, 1);
    setenv("LATE_KERNEL_FAIL", fail ? "1" : "0", 1);
    unsetenv("EMBER_STRICT");
    cr_assert_eq(em_init(NULL), EM_OK, "em_init: %s", em_last_error());
}

static int plugin_index(const char *name)
{
    for (int i = 0; i < em_plugin_count(); i++) {
        em_plugin_info p;
        cr_assert_eq(em_plugin_get(i, &p), EM_OK);
        if (p.name && !strcmp(p.name, name))
            return i;
    }
    return -1;
}

/* The k-th case registered by `plugin` ("" for cases registered without a plugin), or NULL;
 * other plugins of the build tree (nn) register cases of their own. */
static const em_conformance_case *case_of(const char *plugin, int k)
{
    for (int i = 0; i < em_conformance_case_count(); i++) {
        const char *owner = NULL;
        const em_conformance_case *c = em_conformance_case_get(i, &owner);
        if (owner && !strcmp(owner, plugin) && k-- == 0)
            return c;
    }
    return NULL;
}

Test(plugin_path, a_kernel_registered_before_its_backend_is_attached_when_it_loads)
{
    init_with(LATE_DIR ":" MOCK_DIR, false);
    int late = plugin_index("late_kernel"), mock = plugin_index("mockdev");
    cr_assert(late >= 0 && mock > late, "late_kernel (%d) must load before mockdev (%d)", late,
              mock);
    em_opts o = {.dtype = EM_F64, .device = em_device_parse("mock")};
    em_tensor *a = em_full(EM_SHAPE(2, 3), 1.25, &o), *b = em_full(EM_SHAPE(3), 2.0, &o);
    em_tensor *y = em_add(a, b);   /* the mock backend has no float64 add of its own */
    cr_assert_not_null(y, "%s", em_last_error());
    double v[6];
    cr_assert_eq(em_copy_to_host(y, v, sizeof v), EM_OK);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(v[i], 3.25);
    em_release(a);
    em_release(b);
    em_release(y);
    em_shutdown();
}

Test(plugin_path, a_kernel_for_a_backend_nobody_provides_is_harmless)
{
    init_with(LATE_DIR, false);
    em_plugin_info p;
    cr_assert_eq(em_plugin_get(plugin_index("late_kernel"), &p), EM_OK);
    cr_assert(p.ok, "%s", p.error ? p.error : "");
    cr_assert_not(em_backend_available("mock"));
    em_shutdown();
}

Test(plugin_path, cases_a_plugin_registers_are_listed_with_its_name)
{
    init_with(LATE_DIR ":" MOCK_DIR, false);
    const em_conformance_case *c = case_of("late_kernel", 0);
    cr_assert_not_null(c);
    cr_assert_str_eq(c->op, "add");
    cr_assert_str_eq(c->label, "late");
    cr_assert_eq(c->nin, 2);
    cr_assert_eq(c->in[0].shape[1], 3);
    cr_assert_eq(c->flags, EM_CONF_DIFFERENTIABLE);
    cr_assert_null(case_of("late_kernel", 1), "late_kernel registers one case");
    em_shutdown();
    /* a second runtime without the plugin has none of its cases */
    init_with(MOCK_DIR, false);
    cr_assert_null(case_of("late_kernel", 0));
    em_shutdown();
}

Test(plugin_path, a_failed_plugin_leaves_neither_cases_nor_kernels)
{
    init_with(LATE_DIR ":" MOCK_DIR, true);
    em_plugin_info p;
    cr_assert_eq(em_plugin_get(plugin_index("late_kernel"), &p), EM_OK);
    cr_assert_not(p.ok);
    cr_assert(strstr(p.error, "failing on purpose"), "%s", p.error);
    cr_assert_null(case_of("late_kernel", 0), "the failed plugin's case was kept");
    em_opts o = {.dtype = EM_F64, .device = em_device_parse("mock")};
    em_tensor *a = em_ones(EM_SHAPE(2), &o);
    cr_assert_null(em_add(a, a));
    cr_assert_eq(em_last_status(), EM_ERR_UNSUPPORTED, "%s", em_last_error());
    em_release(a);
    em_shutdown();
}

Test(plugin_path, malformed_cases_are_refused_and_good_ones_copied)
{
    init_with(MOCK_DIR, false);
    em_attr attr = {0};
    attr.f = 2.5;
    char op[16] = "add";
    em_conformance_case c = {.struct_size = sizeof c, .op = op, .nin = 2, .nattrs = 1,
                             .attrs = &attr};
    c.in[0].ndim = 1;
    c.in[0].shape[0] = 4;
    c.in[1].ndim = 1;
    c.in[1].shape[0] = 4;
    em_conformance_case bad = c;
    bad.nin = EM_CONF_MAX_INPUTS + 1;
    cr_assert_eq(em_register_conformance_case(NULL, &bad), EM_ERR_INVALID);
    bad = c;
    bad.in[1].shape[0] = -1;
    cr_assert_eq(em_register_conformance_case(NULL, &bad), EM_ERR_INVALID);
    bad = c;
    bad.struct_size = 8;
    cr_assert_eq(em_register_conformance_case(NULL, &bad), EM_ERR_INVALID);
    bad = c;
    bad.op = NULL;
    cr_assert_eq(em_register_conformance_case(NULL, &bad), EM_ERR_INVALID);
    cr_assert_eq(em_register_conformance_case(NULL, &c), EM_OK, "%s", em_last_error());
    strcpy(op, "changed");   /* the registry keeps its own copies */
    attr.f = -1;
    const em_conformance_case *got = case_of("", 0);
    cr_assert_not_null(got, "the case registered without a plugin is listed under \"\"");
    cr_assert_str_eq(got->op, "add");
    cr_assert_eq(got->attrs[0].f, 2.5);
    cr_assert_null(case_of("", 1), "the malformed cases were kept");
    em_shutdown();
}
