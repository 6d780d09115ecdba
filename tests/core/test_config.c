/* tests/core/test_config.c - the config file parser, its search order and env overrides. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "internal.h"

static const char *const k_env_vars[] = {
    "EMBER_CONFIG",   "EMBER_BACKEND",     "EMBER_NUM_THREADS", "EMBER_SEED",
    "EMBER_STRICT",   "EMBER_FALLBACK",    "EMBER_PLUGIN_PATH", "XDG_CONFIG_HOME",
};

/* The temporary file of the test (one per test process) and its resolved path. */
static char g_file[64];
static char g_abs[PATH_MAX];

static void setup(void)
{
    for (size_t i = 0; i < sizeof k_env_vars / sizeof k_env_vars[0]; i++)
        unsetenv(k_env_vars[i]);
    g_file[0] = '\0';
}

static void teardown(void)
{
    em__config_free();
    if (g_file[0])
        unlink(g_file);
}

TestSuite(config, .init = setup, .fini = teardown);

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* Writes `text` to a fresh temporary file; g_file names it, g_abs its real path. */
static const char *config_file(const char *text)
{
    snprintf(g_file, sizeof g_file, "/tmp/ember-config-XXXXXX");
    int fd = mkstemp(g_file);
    cr_assert_geq(fd, 0, "mkstemp failed");
    close(fd);
    write_file(g_file, text);
    cr_assert_not_null(realpath(g_file, g_abs));
    return g_file;
}

/* "<real path>:<line>", the source of a value read from line `line` of the test file. */
static const char *at_line(int line)
{
    static char buf[PATH_MAX + 16];
    snprintf(buf, sizeof buf, "%s:%d", g_abs, line);
    return buf;
}

/* Loading `text` must fail with `status` and the message "<file>:<rest>". */
static void expect_error(const char *text, int status, const char *rest)
{
    const char *path = config_file(text);
    cr_assert_eq(em__config_load(path), status, "got: %s", em_last_error());
    char want[512];
    snprintf(want, sizeof want, "%s:%s", path, rest);
    cr_assert_str_eq(em_last_error(), want);
}

Test(config, reads_runtime_keys_and_records_file_and_line)
{
    const char *path = config_file("[runtime]\n"
                                   "backend = cuda:0\n"
                                   "threads = 4\n"
                                   "\n"
                                   "seed = 1234\n");
    cr_assert_eq(em__config_load(path), EM_OK, "%s", em_last_error());
    cr_assert_str_eq(em_config_get("runtime.backend"), "cuda:0");
    cr_assert_str_eq(em_config_source("runtime.backend"), at_line(2));
    cr_assert_str_eq(em_config_get("runtime.threads"), "4");
    cr_assert_str_eq(em_config_source("runtime.threads"), at_line(3));
    cr_assert_str_eq(em_config_get("runtime.seed"), "1234");
    cr_assert_str_eq(em_config_source("runtime.seed"), at_line(5));
    cr_assert_eq(em_config_threads(), 4);
    cr_assert_str_eq(em__config_path(), g_abs);
}

Test(config, comments_blank_lines_quotes_and_whitespace_are_handled)
{
    const char *path = config_file("# a comment\n"
                                   "; another comment\n"
                                   "   \n"
                                   "  [ runtime ]  \n"
                                   "  plugin_path   =   \"/opt/my plugins\"  \n"
                                   "\tfallback=cpu\n"
                                   "[train]\n"
                                   "epochs = 10\n"
                                   "name = \"say \"hi\"\"\n");
    cr_assert_eq(em__config_load(path), EM_OK, "%s", em_last_error());
    cr_assert_str_eq(em_config_get("runtime.plugin_path"), "/opt/my plugins");
    cr_assert_str_eq(em_config_get("runtime.fallback"), "cpu");
    cr_assert_str_eq(em_config_source("runtime.fallback"), at_line(6));
    cr_assert_str_eq(em_config_get("train.epochs"), "10");
    cr_assert_str_eq(em_config_get("train.name"), "say \"hi\"");
    cr_assert_null(em_config_get("train.missing"));
    cr_assert_null(em_config_get("nonsense"));
}

Test(config, repeated_plugin_path_keeps_every_value_in_order)
{
    const char *path = config_file("[runtime]\n"
                                   "plugin_path = /a\n"
                                   "threads = 2\n"
                                   "plugin_path = /b\n");
    cr_assert_eq(em__config_load(path), EM_OK, "%s", em_last_error());
    const char **dirs = NULL;
    cr_assert_eq(em__config_multi("runtime.plugin_path", &dirs), 2);
    cr_assert_str_eq(dirs[0], "/a");
    cr_assert_str_eq(dirs[1], "/b");
    cr_assert_str_eq(em_config_get("runtime.plugin_path"), "/a:/b");
    cr_assert_str_eq(em_config_source("runtime.plugin_path"), at_line(2));
}

Test(config, a_later_line_replaces_a_single_valued_key)
{
    const char *path = config_file("[runtime]\nthreads = 2\nthreads = 6\n");
    cr_assert_eq(em__config_load(path), EM_OK, "%s", em_last_error());
    cr_assert_str_eq(em_config_get("runtime.threads"), "6");
    cr_assert_str_eq(em_config_source("runtime.threads"), at_line(3));
}

Test(config, defaults_apply_without_a_file)
{
    setenv("EMBER_CONFIG", "", 1);
    cr_assert_eq(em__config_load(NULL), EM_OK, "%s", em_last_error());
    cr_assert_str_eq(em__config_path(), "");
    cr_assert_str_eq(em_config_get("runtime.backend"), "cpu");
    cr_assert_str_eq(em_config_source("runtime.backend"), "default");
    cr_assert_str_eq(em_config_get("runtime.fallback"), "none");
    cr_assert_str_eq(em_config_get("runtime.strict"), "0");
    cr_assert_null(em_config_get("runtime.threads"));
    cr_assert_null(em_config_source("runtime.threads"));
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cr_assert_eq(em_config_threads(), cores > 0 ? (int)cores : 1);
    const char **dirs = (const char **)1;
    cr_assert_eq(em__config_multi("runtime.plugin_path", &dirs), 0);
}

Test(config, entries_list_every_setting_with_its_source)
{
    const char *path = config_file("[runtime]\nthreads = 3\n");
    setenv("EMBER_SEED", "7", 1);
    cr_assert_eq(em__config_load(path), EM_OK, "%s", em_last_error());
    bool seen_backend = false, seen_threads = false, seen_seed = false;
    const char *key, *value, *source;
    for (int i = 0; em__config_entry(i, &key, &value, &source); i++) {
        if (strcmp(key, "runtime.backend") == 0)
            seen_backend = strcmp(value, "cpu") == 0 && strcmp(source, "default") == 0;
        if (strcmp(key, "runtime.threads") == 0)
            seen_threads = strcmp(value, "3") == 0 && strcmp(source, at_line(2)) == 0;
        if (strcmp(key, "runtime.seed") == 0)
            seen_seed = strcmp(value, "7") == 0 && strcmp(source, "env EMBER_SEED") == 0;
    }
    cr_assert(seen_backend && seen_threads && seen_seed);
    cr_assert_not(em__config_entry(-1, &key, &value, &source));
}

Test(config, strict_and_fallback_values_are_normalised)
{
    const char *path = config_file("[runtime]\nstrict = Yes\nfallback = CPU\n");
    cr_assert_eq(em__config_load(path), EM_OK, "%s", em_last_error());
    cr_assert_str_eq(em_config_get("runtime.strict"), "1");
    cr_assert_str_eq(em_config_get("runtime.fallback"), "cpu");
}

/* ---- errors -------------------------------------------------------------------- */

Test(config, a_line_without_equals_is_an_error)
{
    expect_error("[runtime]\n\n\nthreads 4\n", EM_ERR_IO,
                 "4: expected 'key = value', got 'threads 4'");
}

Test(config, an_unknown_section_is_an_error_with_a_suggestion)
{
    expect_error("# hi\n[runtme]\n", EM_ERR_IO, "2: unknown section [runtme]; did you mean [runtime]?");
}

Test(config, an_unrelated_unknown_section_lists_the_known_ones)
{
    expect_error("[plugins]\n", EM_ERR_IO,
                 "1: unknown section [plugins]; expected runtime, data, model or train");
}

Test(config, an_unknown_runtime_key_suggests_the_closest_known_key)
{
    expect_error("[runtime]\nbackend = cpu\n\n\n\n\nthread = 4\n", EM_ERR_IO,
                 "7: [runtime] unknown key 'thread'; did you mean 'threads'?");
}

Test(config, an_unknown_runtime_key_without_a_close_match_lists_the_keys)
{
    expect_error("[runtime]\nvolume = 11\n", EM_ERR_IO,
                 "2: [runtime] unknown key 'volume'; known keys: backend, plugin_path, "
                 "threads, seed, fallback, strict, disable, dist");
}

Test(config, threads_must_be_a_positive_integer)
{
    expect_error("[runtime]\nthreads = abc\n", EM_ERR_INVALID,
                 "2: [runtime] threads: expected a positive integer, got 'abc'");
    em__config_free();
    unlink(g_file);
    expect_error("[runtime]\nthreads = 0\n", EM_ERR_INVALID,
                 "2: [runtime] threads: expected a positive integer, got '0'");
}

Test(config, fallback_and_strict_values_are_checked)
{
    expect_error("[runtime]\nfallback = gpu\n", EM_ERR_INVALID,
                 "2: [runtime] fallback: expected 'cpu' or 'none', got 'gpu'");
    em__config_free();
    unlink(g_file);
    expect_error("[runtime]\nstrict = maybe\n", EM_ERR_INVALID,
                 "2: [runtime] strict: expected a boolean (1/0/true/false/yes/no), got 'maybe'");
}

Test(config, a_key_before_any_section_is_an_error)
{
    expect_error("threads = 4\n", EM_ERR_IO, "1: 'threads' comes before any [section] header");
}

Test(config, an_unterminated_quote_is_an_error)
{
    expect_error("[data]\npath = \"x.csv\n", EM_ERR_IO, "2: unterminated quoted value for 'path'");
}

Test(config, a_missing_file_is_an_error)
{
    cr_assert_eq(em__config_load("/nonexistent/ember.ini"), EM_ERR_IO);
    cr_assert_str_eq(em_last_error(),
                     "/nonexistent/ember.ini: cannot read config file: No such file or directory");
}

Test(config, a_missing_file_named_by_ember_config_is_an_error)
{
    setenv("EMBER_CONFIG", "/nonexistent/ember.ini", 1);
    cr_assert_eq(em__config_load(NULL), EM_ERR_IO);
    cr_assert(strstr(em_last_error(), "EMBER_CONFIG") != NULL, "%s", em_last_error());
    cr_assert(strstr(em_last_error(), "/nonexistent/ember.ini") != NULL, "%s", em_last_error());
}

Test(config, a_failed_load_leaves_nothing_and_a_later_load_works)
{
    expect_error("[runtime]\nthreads = -1\n", EM_ERR_INVALID,
                 "2: [runtime] threads: expected a positive integer, got '-1'");
    cr_assert_null(em_config_get("runtime.backend"));
    cr_assert_str_eq(em__config_path(), "");
    write_file(g_file, "[runtime]\nthreads = 5\n");
    cr_assert_eq(em__config_load(g_file), EM_OK, "%s", em_last_error());
    cr_assert_str_eq(em_config_get("runtime.threads"), "5");
}

/* ---- environment ----------------------------------------------------------------- */

Test(config, environment_beats_the_file)
{
    const char *path = config_file("[runtime]\nthreads = 4\nbackend = cpu\nseed = 1\n");
    setenv("EMBER_NUM_THREADS", "8", 1);
    setenv("EMBER_BACKEND", "cuda:1", 1);
    cr_assert_eq(em__config_load(path), EM_OK, "%s", em_last_error());
    cr_assert_str_eq(em_config_get("runtime.threads"), "8");
    cr_assert_str_eq(em_config_source("runtime.threads"), "env EMBER_NUM_THREADS");
    cr_assert_str_eq(em_config_get("runtime.backend"), "cuda:1");
    cr_assert_str_eq(em_config_source("runtime.backend"), "env EMBER_BACKEND");
    cr_assert_str_eq(em_config_get("runtime.seed"), "1");
    cr_assert_str_eq(em_config_source("runtime.seed"), at_line(4));
    cr_assert_eq(em_config_threads(), 8);
}

Test(config, a_bad_environment_value_is_an_error)
{
    setenv("EMBER_CONFIG", "", 1);
    setenv("EMBER_NUM_THREADS", "abc", 1);
    cr_assert_eq(em__config_load(NULL), EM_ERR_INVALID);
    cr_assert_str_eq(em_last_error(), "EMBER_NUM_THREADS: expected a positive integer, got 'abc'");
}

Test(config, ember_strict_and_fallback_come_from_the_environment)
{
    setenv("EMBER_CONFIG", "", 1);
    setenv("EMBER_STRICT", "true", 1);
    setenv("EMBER_FALLBACK", "cpu", 1);
    cr_assert_eq(em__config_load(NULL), EM_OK, "%s", em_last_error());
    cr_assert_str_eq(em_config_get("runtime.strict"), "1");
    cr_assert_str_eq(em_config_source("runtime.strict"), "env EMBER_STRICT");
    cr_assert_str_eq(em_config_get("runtime.fallback"), "cpu");
}

Test(config, ember_plugin_path_is_split_and_kept_apart_from_the_file)
{
    const char *path = config_file("[runtime]\nplugin_path = /from/file\n");
    setenv("EMBER_PLUGIN_PATH", "/env/a::/env/b:", 1);
    cr_assert_eq(em__config_load(path), EM_OK, "%s", em_last_error());
    const char **dirs;
    cr_assert_eq(em__config_multi("runtime.env_plugin_path", &dirs), 2);
    cr_assert_str_eq(dirs[0], "/env/a");
    cr_assert_str_eq(dirs[1], "/env/b");
    cr_assert_str_eq(em_config_source("runtime.env_plugin_path"), "env EMBER_PLUGIN_PATH");
    cr_assert_eq(em__config_multi("runtime.plugin_path", &dirs), 1);
    cr_assert_str_eq(dirs[0], "/from/file");
}

/* ---- the search ------------------------------------------------------------------- */

Test(config, ember_config_names_the_file)
{
    const char *path = config_file("[runtime]\nseed = 42\n");
    setenv("EMBER_CONFIG", path, 1);
    cr_assert_eq(em__config_load(NULL), EM_OK, "%s", em_last_error());
    cr_assert_str_eq(em_config_get("runtime.seed"), "42");
    cr_assert_str_eq(em__config_path(), g_abs);
}

Test(config, xdg_config_home_is_searched_and_the_current_directory_never_is)
{
    char dir[] = "/tmp/ember-xdg-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char sub[PATH_MAX], file[PATH_MAX], cwd_file[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/ember", dir);
    snprintf(file, sizeof file, "%s/ember/ember.ini", dir);
    snprintf(cwd_file, sizeof cwd_file, "%s/ember.ini", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    write_file(file, "[runtime]\nthreads = 9\n");
    write_file(cwd_file, "[runtime]\nthreads = 13\n");   /* must never be read */
    cr_assert_eq(chdir(dir), 0);

    setenv("XDG_CONFIG_HOME", dir, 1);
    cr_assert_eq(em__config_load(NULL), EM_OK, "%s", em_last_error());
    cr_assert_str_eq(em_config_get("runtime.threads"), "9");
    em__config_free();

    /* A relative XDG_CONFIG_HOME is ignored (XDG spec), and so is ./ember.ini; $HOME
     * points at an empty folder, so only the system file could still be found. */
    setenv("XDG_CONFIG_HOME", ".", 1);
    setenv("HOME", "/nonexistent", 1);
    cr_assert_eq(em__config_load(NULL), EM_OK, "%s", em_last_error());
    const char *threads = em_config_get("runtime.threads");
    cr_assert(threads == NULL || strcmp(threads, "13") != 0, "read ./ember.ini");
    cr_assert_str_neq(em__config_path(), cwd_file);

    unlink(file);
    unlink(cwd_file);
    rmdir(sub);
    rmdir(dir);
}

Test(config, home_dot_config_is_used_when_xdg_config_home_is_unset)
{
    char dir[] = "/tmp/ember-home-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char d1[PATH_MAX], d2[PATH_MAX], file[PATH_MAX];
    snprintf(d1, sizeof d1, "%s/.config", dir);
    snprintf(d2, sizeof d2, "%s/.config/ember", dir);
    snprintf(file, sizeof file, "%s/.config/ember/ember.ini", dir);
    cr_assert_eq(mkdir(d1, 0700), 0);
    cr_assert_eq(mkdir(d2, 0700), 0);
    write_file(file, "[model]\nspec = \"Linear(3, 1)\"\n");
    setenv("HOME", dir, 1);
    cr_assert_eq(em__config_load(NULL), EM_OK, "%s", em_last_error());
    cr_assert_str_eq(em_config_get("model.spec"), "Linear(3, 1)");
    unlink(file);
    rmdir(d2);
    rmdir(d1);
    rmdir(dir);
}

Test(config, a_layered_load_reads_the_user_file_then_the_given_file_over_it)
{
    char dir[] = "/tmp/ember-layer-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char sub[PATH_MAX], user[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/ember", dir);
    snprintf(user, sizeof user, "%s/ember/ember.ini", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    write_file(user, "[runtime]\nthreads = 3\nseed = 5\n");
    setenv("XDG_CONFIG_HOME", dir, 1);
    const char *job = config_file("[runtime]\nseed = 7\n[train]\nepochs = 4\n");
    char user_abs[PATH_MAX], src[PATH_MAX + 8];
    cr_assert_not_null(realpath(user, user_abs));

    cr_assert_eq(em__config_load_layered(job), EM_OK, "%s", em_last_error());
    cr_assert_str_eq(em_config_get("runtime.threads"), "3");
    snprintf(src, sizeof src, "%s:2", user_abs);
    cr_assert_str_eq(em_config_source("runtime.threads"), src);
    cr_assert_str_eq(em_config_get("runtime.seed"), "7", "the job's file wins over the user's");
    cr_assert_str_eq(em_config_source("runtime.seed"), at_line(2));
    cr_assert_str_eq(em_config_get("train.epochs"), "4");
    cr_assert_str_eq(em__config_path(), g_abs);
    em__config_free();

    /* em__config_load(path) still reads only path */
    cr_assert_eq(em__config_load(job), EM_OK, "%s", em_last_error());
    cr_assert_null(em_config_get("runtime.threads"));
    unlink(user);
    rmdir(sub);
    rmdir(dir);
}
