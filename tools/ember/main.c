/* tools/ember/main.c - the `ember` command: the list of subcommands, top-level help and
 * dispatch. Each subcommand parses its own options through args.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "figure.h"

const cli_cmd *const cli_commands[] = {&cli_train, &cli_eval, &cli_plot, &cli_summary,
                                       &cli_info, &cli_bench, &cli_conformance};
const int cli_ncommands = (int)(sizeof cli_commands / sizeof cli_commands[0]);
static int (*const k_run[])(int, char **) = {cmd_train, cmd_eval, cmd_plot, cmd_summary,
                                             cmd_info, cmd_bench, cmd_conformance};

/* Every variable the library, its plugins and the tool read (grep getenv). */
const char *const cli_environment[][2] = {
    {"EMBER_CONFIG", "the config file to read instead of the user's and\n"
                     "the system's; empty: none"},
    {"EMBER_BACKEND", "the default device: cpu, cuda, cuda:1, opencl:0"},
    {"EMBER_PLUGIN_PATH", "plugin folders (colon-separated), searched first"},
    {"EMBER_NUM_THREADS", "CPU threads (default: the online cores)"},
    {"EMBER_SEED", "the default random seed"},
    {"EMBER_STRICT", "1: a plugin that fails to load is an error"},
    {"EMBER_FALLBACK", "cpu: ops a backend lacks run on the CPU (warned)"},
    {"EMBER_DISABLE_PLUGINS", "plugins (comma-separated) to find but not initialise"},
    {"EMBER_ALLOW_INSECURE_PLUGINS", "1: load plugins from folders others can write to"},
    {"EMBER_GEMM_KERNEL", "the CPU GEMM kernel: avx512, avx2, generic, auto"},
    {"EMBER_DIST_TIMEOUT", "seconds a collective may wait (default 300)"},
    {"EMBER_CUDA_DETERMINISTIC", "1: CUDA scatter_add sums in index order"},
    {"EMBER_OPENCL_GPU_PATHS", "1: OpenCL CPU devices take the GPU kernels (testing)"},
    {"XDG_CONFIG_HOME", "the user's config is in $XDG_CONFIG_HOME/ember/\n"
                        "(default ~/.config/ember/ember.ini)"},
};
const int cli_nenvironment = (int)(sizeof cli_environment / sizeof cli_environment[0]);

static void usage(FILE *f)
{
    fprintf(f, "usage: ember COMMAND [OPTION]... [ARG]...\n"
               "\n"
               "Ember %s: a PyTorch-style deep-learning runtime in C with loadable backends.\n"
               "\n"
               "commands:\n",
            em_version());
    for (int i = 0; i < cli_ncommands; i++)
        fprintf(f, "  %-15s %s\n", cli_commands[i]->name, cli_commands[i]->summary);
    fprintf(f, "  %-15s %s\n", "help [COMMAND]", "this text, or a command's options");
    fprintf(f, "\n'ember COMMAND --help' describes every option of a command. Options take their\n"
               "value as --opt=value or --opt value.\n\nenvironment:\n");
    for (int i = 0; i < cli_nenvironment; i++) {
        /* a name too long for the column gets a line of its own */
        const char *name = cli_environment[i][0];
        fprintf(f, strlen(name) > 24 ? "  %s\n%27s" : "  %-24s ", name, "");
        cli_print_wrapped(f, cli_environment[i][1], 27);
    }
    fprintf(f, "\nconfig files (later wins): <sysconfdir>/ember/ember.ini, then\n"
               "$XDG_CONFIG_HOME/ember/ember.ini (or $EMBER_CONFIG instead of both), then the\n"
               "training config, then the environment, then the command line. Never a file in\n"
               "the current directory. `ember info` shows each value and where it came from.\n");
}

static int find_command(const char *name)
{
    for (int i = 0; i < cli_ncommands; i++)
        if (!strcmp(name, cli_commands[i]->name))
            return i;
    return -1;
}

/* `ember help`, `ember help CMD`, and the generated man page and completion script. */
static int help(int argc, char **argv)
{
    if (argc < 3) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[2], "--man")) {
        cli_print_man(stdout);
        return 0;
    }
    if (!strcmp(argv[2], "--bash-completion")) {
        cli_print_bash_completion(stdout);
        return 0;
    }
    int i = find_command(argv[2]);
    if (i < 0) {
        fprintf(stderr, "ember help: unknown command '%s'\n", argv[2]);
        return 2;
    }
    cli_print_help(cli_commands[i], stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
        return help(argc, argv);
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("ember %s\npictures: %s\n", em_version(),
               fig_png_available() ? "SVG and PNG (cairo)" : "SVG (built without cairo: no PNG)");
        return 0;
    }
    int i = find_command(cmd);
    if (i >= 0)
        return k_run[i](argc - 1, argv + 1);
    const char *names[16];
    for (int k = 0; k < cli_ncommands; k++)
        names[k] = cli_commands[k]->name;
    const char *best = em_closest_name(cmd, names, cli_ncommands);
    if (best)
        fprintf(stderr, "ember: unknown command '%s'; did you mean '%s'?\n", cmd, best);
    else
        fprintf(stderr, "ember: unknown command '%s'\n", cmd);
    fprintf(stderr, "Try 'ember --help'.\n");
    return 2;
}
