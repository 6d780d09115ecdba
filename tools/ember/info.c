/* tools/ember/info.c - `ember info`: the environment check for every backend.
 *
 * The C counterpart of torch.__version__, torch.cuda.is_available(), device_count() and
 * get_device_name(0): what was loaded from where, what failed and why, and which
 * configuration value came from where.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void print_plugins(void)
{
    int n = em_plugin_count(), failed = 0;
    printf("\nplugins (%d found):\n", n);
    for (int i = 0; i < n; i++) {
        em_plugin_info p;
        if (em_plugin_get(i, &p) < 0)
            continue;
        if (p.ok) {
            printf("  %-10s %-8s %s\n", p.name, p.version ? p.version : "", p.path);
            if (p.registered && *p.registered)
                printf("  %-10s registered: %s\n", "", p.registered);
        } else if (p.disabled) {
            printf("  %-10s %-8s %s\n  %-10s %s\n", p.name, "", p.path, "", p.error);
        } else {
            failed++;
        }
    }
    if (!failed)
        return;
    printf("\nplugins that failed to load or were refused (%d):\n", failed);
    for (int i = 0; i < n; i++) {
        em_plugin_info p;
        if (em_plugin_get(i, &p) < 0 || p.ok || p.disabled)
            continue;
        printf("  %s\n    %s\n", p.path, p.error ? p.error : "unknown error");
    }
}

static bool backend_loaded(const char *name)
{
    for (int i = 0; i < em_backend_count(); i++) {
        const char *b = em_backend_name(i);
        if (b && !strcmp(b, name))
            return true;
    }
    return false;
}

static void print_backends(void)
{
    int n = em_backend_count();
    char db[32];
    printf("\nbackends (%d):\n", n);
    for (int i = 0; i < n; i++) {
        const char *name = em_backend_name(i);
        if (!name)
            continue;
        const char *why = em_backend_unavailable_reason(name);
        int count = em_device_count(name);
        printf("  %-8s available: %s, devices: %d%s%s\n", name,
               em_backend_available(name) ? "yes" : "no", count, why ? ", reason: " : "",
               why ? why : "");
        for (int k = 0; k < count; k++) {
            em_device d = em_device_parse(name);
            d.index = k;
            em_device_props pr;
            if (em_device_props_get(d, &pr) < 0)
                continue;
            char tot[32], fr[32];
            printf("    %-9s %s\n", em_device_str(d, db, sizeof db), pr.name);
            printf("    %-9s memory %s total, %s free; %d threads", "",
                   cli_bytes(pr.total_memory, tot, sizeof tot),
                   cli_bytes(pr.free_memory, fr, sizeof fr), pr.threads);
            if (pr.compute_major)
                printf("; compute capability %d.%d", pr.compute_major, pr.compute_minor);
            const char *kern = em_device_kernels(d);
            if (kern && *kern)
                printf("\n    %-9s kernels: %s", "", kern);
            char al[32], rs[32], pk[32];
            printf("\n    %-9s in use by Ember: %s allocated, %s reserved, %s peak\n", "",
                   cli_bytes(em_memory_allocated(d), al, sizeof al),
                   cli_bytes(em_memory_reserved(d), rs, sizeof rs),
                   cli_bytes(em_max_memory_allocated(d), pk, sizeof pk));
        }
    }
    /* The tutorial's torch.cuda.is_available() check, for the device backends Ember knows
     * about even when no plugin provides them. */
    static const char *const known[] = {"cuda", "opencl"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!backend_loaded(known[i]))
            printf("  %-8s available: no, devices: 0, reason: no plugin provides it\n", known[i]);
    printf("  default device: %s\n", em_device_str(em_default_device(), db, sizeof db));
}

static void print_communicators(void)
{
    int n = em_dist_communicator_count();
    printf("\ncommunicators (%d):\n", n);
    char state[160];
    for (int i = 0; i < n; i++) {
        const char *name = em_dist_communicator(i, state, sizeof state);
        if (name)
            printf("  %-8s %s\n", name, state);
    }
    printf("  process group: rank %d of %d (local rank %d), %s\n", em_dist_rank(),
           em_dist_size(), em_dist_local_rank(),
           em_dist_is_active() ? em_dist_backend() : "single process");
}

static void print_config(void)
{
    const char *file = em_config_file();
    char fb[PATH_MAX];
    printf("\nconfiguration (file: %s):\n", file && *file ? cli_source(file, fb, sizeof fb)
                                                       : "none");
    const char *k, *v, *s;
    char sb[PATH_MAX];
    for (int i = 0; em_config_entry(i, &k, &v, &s); i++)
        printf("  %-24s = %-20s (from %s)\n", k, v, cli_source(s, sb, sizeof sb));
    if (!em_config_get("runtime.threads")) {
        char n[16];
        snprintf(n, sizeof n, "%d", em_config_threads());
        printf("  %-24s = %-20s (from %s)\n", "runtime.threads", n, "default: online cores");
    }
}

enum { O_CONFIG };
static const cli_opt k_opts[] = {
    [O_CONFIG] = {"config", 'c', "FILE", "read FILE instead of $EMBER_CONFIG or the user's and\n"
                                          "the system's config"},
};
const cli_cmd cli_info = {
    .name = "info", .synopsis = "[OPTION]...",
    .summary = "versions, plugins, backends, devices, configuration",
    .about = "The environment check: every plugin found and what it registered, every one\n"
             "that failed to load and why, each backend's devices and memory, and each\n"
             "configuration value with where it came from.",
    CLI_OPTS(k_opts), .examples = "ember info\nember info --config examples/ember.ini",
};

int cmd_info(int argc, char **argv)
{
    cli_args a;
    int prc = cli_parse(&cli_info, argc, argv, &a);
    if (prc >= 0)
        return prc;
    const char *config = a.val[O_CONFIG];
    int major, minor;
    em_abi_version(&major, &minor);
    int rc = em_init(config);
    printf("Ember %s (plugin ABI %d.%d)\n", em_version(), major, minor);
    if (rc < 0) {
        /* Still show what was found: that is the point of `ember info`. */
        fprintf(stderr, "ember: init failed: %s\n", em_last_error());
        return 1;
    }
    print_plugins();
    print_backends();
    print_communicators();
    print_config();
    em_shutdown();
    return 0;
}
