/* tests/core/test_loader.c - plugin discovery and failure handling, with plugins that are
 * broken on purpose (tests/plugins/broken): each failure is reported with its reason and the
 * rest of the runtime keeps working. Each Criterion test runs in its own process, so setenv
 * here does not leak between tests. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ember/ember.h>
#include <ember/plugin.h>

/* The plugin record whose path ends with `file`, or fails the test. */
static em_plugin_info find_plugin(const char *file)
{
    em_plugin_info p;
    size_t n = strlen(file);
    for (int i = 0; i < em_plugin_count(); i++) {
        cr_assert_eq(em_plugin_get(i, &p), EM_OK);
        size_t len = strlen(p.path);
        if (len >= n && strcmp(p.path + len - n, file) == 0)
            return p;
    }
    cr_assert_fail("no plugin record for %s", file);
    return p;
}

static void use_broken_dir(void)
{
    setenv("EMBER_PLUGIN_PATH", BROKEN_PLUGIN_DIR, 1);
    unsetenv("EMBER_STRICT");
    cr_assert_eq(em_init(NULL), EM_OK, "em_init: %s", em_last_error());
}

Test(loader, wrong_abi_major_is_refused_with_both_versions)
{
    use_broken_dir();
    em_plugin_info p = find_plugin("/bad_abi.so");
    cr_assert_not(p.ok);
    cr_assert(strstr(p.error, "ABI mismatch"), "%s", p.error);
    cr_assert(strstr(p.error, "ABI 99.0"), "%s", p.error);
    char ours[32];
    snprintf(ours, sizeof ours, "ABI %d.%d", EMBER_ABI_MAJOR, EMBER_ABI_MINOR);
    cr_assert(strstr(p.error, ours), "%s", p.error);
    em_shutdown();
}

Test(loader, newer_abi_minor_is_refused)
{
    use_broken_dir();
    em_plugin_info p = find_plugin("/newer_minor.so");
    cr_assert_not(p.ok);
    char want[64];   /* the broken plugin claims our minor + 5 */
    snprintf(want, sizeof want, "needs ABI %d.%d, this Ember only has ABI %d.%d",
             EMBER_ABI_MAJOR, EMBER_ABI_MINOR + 5, EMBER_ABI_MAJOR, EMBER_ABI_MINOR);
    cr_assert(strstr(p.error, want), "%s", p.error);
    em_shutdown();
}

Test(loader, missing_entry_symbol_is_reported)
{
    use_broken_dir();
    em_plugin_info p = find_plugin("/no_entry.so");
    cr_assert_not(p.ok);
    cr_assert(strstr(p.error, "missing entry symbol 'ember_plugin'"), "%s", p.error);
    em_shutdown();
}

Test(loader, failing_init_reports_its_message_and_drops_its_registrations)
{
    use_broken_dir();
    em_plugin_info p = find_plugin("/failing_init.so");
    cr_assert_not(p.ok);
    cr_assert(strstr(p.error, "init failed: failing_init: the device firmware is missing"), "%s",
              p.error);
    cr_assert_not(em_backend_available("brokendev"));
    cr_assert_eq(em_device_count("brokendev"), 0);
    float one = 1.0f;
    em_tensor *x = em_tensor_from_data(&one, EM_F32, EM_SHAPE(1), NULL);
    cr_assert_null(em_op_call("broken_op", 1, &x, 0, NULL));
    cr_assert(strstr(em_last_error(), "no op named 'broken_op'"), "%s", em_last_error());
    em_release(x);
    em_shutdown();
}

Test(loader, a_file_that_is_not_a_shared_object_gives_the_dlerror_text)
{
    use_broken_dir();
    em_plugin_info p = find_plugin("/not_elf.so");
    cr_assert_not(p.ok);
    cr_assert(strstr(p.error, "dlopen failed"), "%s", p.error);
    cr_assert(strstr(p.error, "not_elf.so"), "dlerror text names the file: %s", p.error);
    em_shutdown();
}

Test(loader, the_rest_keeps_working_after_broken_plugins)
{
    use_broken_dir();
    em_plugin_info cpu = find_plugin("/ember_cpu.so");
    cr_assert(cpu.ok, "%s", cpu.error ? cpu.error : "");
    cr_assert(strstr(cpu.registered, "backend cpu"), "%s", cpu.registered);
    cr_assert(em_backend_available("cpu"));
    float a[2] = {1, 2}, b[2] = {10, 20}, out[2];
    em_tensor *ta = em_tensor_from_data(a, EM_F32, EM_SHAPE(2), NULL);
    em_tensor *tb = em_tensor_from_data(b, EM_F32, EM_SHAPE(2), NULL);
    em_tensor *s = em_add(ta, tb);
    cr_assert_not_null(s, "%s", em_last_error());
    cr_assert_eq(em_copy_to_host(s, out, sizeof out), EM_OK);
    cr_assert_float_eq(out[0], 11.0f, 0);
    cr_assert_float_eq(out[1], 22.0f, 0);
    em_release(ta);
    em_release(tb);
    em_release(s);
    em_shutdown();
}

Test(loader, strict_mode_turns_plugin_failures_into_an_init_error)
{
    setenv("EMBER_PLUGIN_PATH", BROKEN_PLUGIN_DIR, 1);
    setenv("EMBER_STRICT", "1", 1);
    cr_assert_lt(em_init(NULL), 0);
    cr_assert(strstr(em_last_error(), "EMBER_STRICT"), "%s", em_last_error());
    cr_assert(strstr(em_last_error(), "bad_abi.so"), "%s", em_last_error());
    cr_assert_not(em_is_initialized());
}

Test(loader, a_missing_plugin_directory_is_reported)
{
    setenv("EMBER_PLUGIN_PATH", "/nonexistent/ember-plugins", 1);
    cr_assert_eq(em_init(NULL), EM_OK, "%s", em_last_error());
    em_plugin_info p = find_plugin("/nonexistent/ember-plugins");
    cr_assert_not(p.ok);
    cr_assert(strstr(p.error, "does not exist"), "%s", p.error);
    cr_assert(em_backend_available("cpu"));
    em_shutdown();
}

Test(loader, an_unknown_default_backend_is_an_error_not_a_silent_fallback)
{
    setenv("EMBER_BACKEND", "nosuch", 1);
    cr_assert_lt(em_init(NULL), 0);
    cr_assert(strstr(em_last_error(), "unknown backend 'nosuch'"), "%s", em_last_error());
    cr_assert(strstr(em_last_error(), "env EMBER_BACKEND"), "names the source: %s",
              em_last_error());
}

Test(loader, a_bad_config_line_names_file_and_line)
{
    char path[] = "/tmp/ember-test-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char text[] = "[runtime]\nthreads = 2\nthis line is wrong\n";
    cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    cr_assert_lt(em_init(path), 0);
    char where[600];
    snprintf(where, sizeof where, "%s:3", path);
    cr_assert(strstr(em_last_error(), where), "%s", em_last_error());
    unlink(path);
}

Test(loader, the_config_file_plugin_path_is_searched)
{
    char path[] = "/tmp/ember-test-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    char text[1200];
    int n = snprintf(text, sizeof text, "[runtime]\nplugin_path = %s\n", MOCK_PLUGIN_DIR);
    cr_assert_eq(write(fd, text, (size_t)n), n);
    close(fd);
    cr_assert_eq(em_init(path), EM_OK, "%s", em_last_error());
    cr_assert(em_backend_available("mock"));
    cr_assert_eq(em_device_count("mock"), 2);
    em_shutdown();
    unlink(path);
}

Test(loader, init_and_shutdown_can_repeat)
{
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(em_init(NULL), EM_OK, "round %d: %s", i, em_last_error());
        em_tensor *t = em_ones(EM_SHAPE(3), NULL);
        em_tensor *s = em_sum_all(t);
        cr_assert_float_eq(em_item(s), 3.0, 0);
        em_release(s);
        em_release(t);
        em_shutdown();
    }
}

Test(loader, a_backend_built_for_abi_1_2_reports_memory_in_its_own_layout)
{
    /* 1.3 put struct_size in front of em_memory_stats; a 1.2 plugin still fills the old one. */
    setenv("EMBER_PLUGIN_PATH", MOCK_1_2_PLUGIN_DIR, 1);
    setenv("EMBER_STRICT", "1", 1);
    cr_assert_eq(em_init(NULL), EM_OK, "%s", em_last_error());
    em_plugin_info p = find_plugin("/mockdev_1_2.so");
    cr_assert(p.ok, "%s", p.error ? p.error : "");
    cr_assert_eq(p.abi_minor, 2);
    em_device mock = em_device_parse("mock:1");
    size_t before = em_memory_allocated(mock);
    em_tensor *t = em_zeros(EM_SHAPE(256), &(em_opts){.device = mock});
    cr_assert(t, "%s", em_last_error());
    cr_assert_eq(em_memory_allocated(mock), before + 256 * sizeof(float));
    cr_assert_eq(em_memory_reserved(mock), before + 256 * sizeof(float) + 4096);
    cr_assert_eq(em_max_memory_allocated(mock), before + 256 * sizeof(float));
    em_release(t);
    em_shutdown();
}

Test(loader, a_disabled_plugin_is_found_but_not_initialised)
{
    setenv("EMBER_PLUGIN_PATH", MOCK_PLUGIN_DIR, 1);
    setenv("EMBER_DISABLE_PLUGINS", "mockdev, nosuch", 1);
    setenv("EMBER_STRICT", "1", 1);   /* disabling is not a failure */
    cr_assert_eq(em_init(NULL), EM_OK, "%s", em_last_error());
    em_plugin_info p = find_plugin("/mockdev.so");
    cr_assert_not(p.ok);
    cr_assert(p.disabled);
    cr_assert(strstr(p.error, "disabled by runtime.disable (env EMBER_DISABLE_PLUGINS)"), "%s",
              p.error);
    cr_assert_not(em_backend_available("mock"));
    cr_assert(em_backend_available("cpu"));
    em_shutdown();
}

/* Copies src to dst byte for byte (symlinks would resolve to one file, which loads once). */
static void copy_file(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    cr_assert(in && out, "copy %s to %s", src, dst);
    char buf[1 << 14];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        cr_assert_eq(fwrite(buf, 1, n, out), n, "write %s", dst);
    fclose(in);
    cr_assert_eq(fclose(out), 0, "close %s", dst);
}

enum { NOK = 20, NOOPS = 4 };

/* Plugin i of the many_plugins folder: ok_00 .. ok_19, then oops_20 .. oops_23 (name order is
 * load order). */
static void many_name(char *buf, size_t size, int i)
{
    snprintf(buf, size, i < NOK ? "ok_%02d" : "oops_%02d", i);
}

/* More plugins than the loader's first allocation of records (16). The registries keep a
 * pointer to the record that owns each op, and the "already registered by" message of each
 * oops_* plugin reads ok_00's path through it after more records were added. */
Test(loader, more_than_sixteen_plugins_are_each_reported_correctly)
{
    char tmpl[] = "/tmp/ember-plugins-XXXXXX", dir[PATH_MAX], file[PATH_MAX + 64];
    char name[16], want[PATH_MAX + 200];
    cr_assert_not_null(mkdtemp(tmpl));
    cr_assert_not_null(realpath(tmpl, dir));   /* the loader reports real paths */
    for (int i = 0; i < NOK + NOOPS; i++) {
        many_name(name, sizeof name, i);
        snprintf(file, sizeof file, "%s/%s.so", dir, name);
        copy_file(SELFNAMED_PLUGIN, file);
    }
    setenv("EMBER_PLUGIN_PATH", dir, 1);
    unsetenv("EMBER_STRICT");
    cr_assert_eq(em_init(NULL), EM_OK, "em_init: %s", em_last_error());
    cr_assert_gt(em_plugin_count(), NOK + NOOPS);

    for (int i = 0; i < NOK + NOOPS; i++) {
        many_name(name, sizeof name, i);
        snprintf(file, sizeof file, "%s/%s.so", dir, name);
        em_plugin_info p;
        cr_assert_eq(em_plugin_get(i, &p), EM_OK);
        cr_assert_str_eq(p.path, file);
        cr_assert_str_eq(p.name, name);
        cr_assert_str_eq(p.version, "1");
        cr_assert_eq(p.abi_major, 1);
        cr_assert_not(p.disabled);
        if (i < NOK) {
            cr_assert(p.ok, "%s: %s", name, p.error ? p.error : "");
            cr_assert_null(p.error);
            snprintf(want, sizeof want, "ops %s", name);
            cr_assert_str_eq(p.registered, want);
            cr_assert_geq(em_op_lookup(name), 0, "%s", em_last_error());
        } else {
            cr_assert_not(p.ok, "%s", name);
            snprintf(want, sizeof want,
                     "init failed: op 'ok_00' is already registered by plugin %s/ok_00.so", dir);
            cr_assert_str_eq(p.error, want);
            cr_assert_null(p.registered);
            cr_assert_lt(em_op_lookup(name), 0, "a failed plugin's op is dropped");
        }
    }
    em_shutdown();
    for (int i = 0; i < NOK + NOOPS; i++) {
        many_name(name, sizeof name, i);
        snprintf(file, sizeof file, "%s/%s.so", dir, name);
        unlink(file);
    }
    rmdir(dir);
}

Test(loader, a_backend_dropped_with_its_failed_plugin_is_not_listed)
{
    use_broken_dir();
    int n = em_backend_count();
    cr_assert_gt(n, 0, "the cpu backend is loaded");
    for (int i = 0; i < n; i++) {
        const char *name = em_backend_name(i);
        cr_assert_not_null(name, "backend %d of %d has no name", i, n);
        cr_assert_str_neq(name, "brokendev", "the failed plugin's backend is listed");
    }
    cr_assert_null(em_backend_name(n));
    em_shutdown();
}

/* ---- trust: who may have put the code there ---------------------------------------------- */

static char trust_dir[PATH_MAX];

/* A fresh folder (mode 0755) holding a copy of the mock device plugin (mode 0755). */
static const char *mock_copy(void)
{
    snprintf(trust_dir, sizeof trust_dir, "/tmp/ember-trust-XXXXXX");
    cr_assert_not_null(mkdtemp(trust_dir));
    cr_assert_eq(chmod(trust_dir, 0755), 0);
    char cmd[4 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "cp '%s/mockdev.so' '%s/mockdev.so' && chmod 0755 '%s/mockdev.so'",
             MOCK_PLUGIN_DIR, trust_dir, trust_dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    return trust_dir;
}

static void rm_trust_dir(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", trust_dir);
    cr_assert_eq(system(cmd), 0);
}

static const char *in_trust_dir(const char *name)
{
    static char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", trust_dir, name);
    return p;
}

/* em_init with only `dir` on EMBER_PLUGIN_PATH: the mock device is refused, and the record of
 * `refused` (a path ending) says why. */
static void assert_mock_refused(const char *dir, const char *refused, const char *why)
{
    setenv("EMBER_PLUGIN_PATH", dir, 1);
    unsetenv("EMBER_STRICT");
    unsetenv("EMBER_ALLOW_INSECURE_PLUGINS");
    cr_assert_eq(em_init(NULL), EM_OK, "em_init: %s", em_last_error());
    cr_assert_not(em_backend_available("mock"), "the plugin was loaded");
    em_plugin_info p = find_plugin(refused);
    cr_assert_not(p.ok);
    cr_assert(strstr(p.error, why), "%s: %s", p.path, p.error);
    cr_assert(strstr(p.error, "EMBER_ALLOW_INSECURE_PLUGINS=1"), "%s", p.error);
    em_shutdown();
    setenv("EMBER_ALLOW_INSECURE_PLUGINS", "1", 1);
    cr_assert_eq(em_init(NULL), EM_OK, "em_init: %s", em_last_error());
    cr_assert(em_backend_available("mock"), "EMBER_ALLOW_INSECURE_PLUGINS=1 did not load it");
    em_shutdown();
    unsetenv("EMBER_ALLOW_INSECURE_PLUGINS");
}

Test(loader, a_world_writable_plugin_folder_is_refused_naming_it)
{
    const char *dir = mock_copy();
    cr_assert_eq(chmod(dir, 0777), 0);
    assert_mock_refused(dir, strrchr(dir, '/'), "writable by other users (mode 0777)");
    rm_trust_dir();
}

Test(loader, a_group_writable_plugin_file_is_refused_naming_it)
{
    const char *dir = mock_copy();
    cr_assert_eq(chmod(in_trust_dir("mockdev.so"), 0775), 0);
    assert_mock_refused(dir, "/mockdev.so", "writable by other users (mode 0775)");
    rm_trust_dir();
}

Test(loader, a_plugin_owned_by_another_user_is_refused)
{
    const char *dir = mock_copy();
    if (chown(in_trust_dir("mockdev.so"), 12345, (gid_t)-1) != 0) {
        rm_trust_dir();
        cr_skip_test("cannot give a file to another user here (not root)");
    }
    assert_mock_refused(dir, "/mockdev.so", "owned by uid 12345");
    rm_trust_dir();
}

Test(loader, a_relative_entry_in_EMBER_PLUGIN_PATH_is_refused)
{
    const char *dir = mock_copy();
    cr_assert_eq(chdir("/tmp"), 0);
    char rel[PATH_MAX];
    snprintf(rel, sizeof rel, "%s", dir + strlen("/tmp/"));   /* resolves from /tmp */
    setenv("EMBER_PLUGIN_PATH", rel, 1);
    cr_assert_eq(em_init(NULL), EM_OK, "em_init: %s", em_last_error());
    cr_assert_not(em_backend_available("mock"), "a relative EMBER_PLUGIN_PATH entry was used");
    em_plugin_info p = find_plugin(rel);
    cr_assert_not(p.ok);
    cr_assert(strstr(p.error, "relative"), "%s", p.error);
    em_shutdown();
    rm_trust_dir();
}

Test(loader, a_relative_config_plugin_path_resolves_against_the_config_folder)
{
    const char *dir = mock_copy();
    cr_assert_eq(mkdir(in_trust_dir("conf"), 0755), 0);
    cr_assert_eq(mkdir(in_trust_dir("conf/plugins"), 0755), 0);
    char from[PATH_MAX + 64];
    snprintf(from, sizeof from, "%s", in_trust_dir("mockdev.so"));
    cr_assert_eq(rename(from, in_trust_dir("conf/plugins/mockdev.so")), 0);
    char ini[PATH_MAX + 64];
    snprintf(ini, sizeof ini, "%s", in_trust_dir("conf/ember.ini"));
    FILE *f = fopen(ini, "w");
    cr_assert_not_null(f);
    fputs("[runtime]\nplugin_path = plugins\n", f);
    fclose(f);
    cr_assert_eq(chdir(dir), 0);   /* ./plugins does not exist here */
    setenv("EMBER_PLUGIN_PATH", "", 1);
    cr_assert_eq(em_init(ini), EM_OK, "em_init: %s", em_last_error());
    cr_assert(em_backend_available("mock"), "plugin_path was not resolved from %s", ini);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/conf/plugins", dir);
    cr_assert_str_eq(em_config_get("runtime.plugin_path"), want);
    em_shutdown();
    rm_trust_dir();
}
