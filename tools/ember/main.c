/* tools/ember/main.c - the `ember` command: dispatches to subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ember <command> [options]\n"
            "\n"
            "Ember %s: a PyTorch-style deep-learning runtime in C with loadable backends.\n"
            "\n"
            "commands:\n"
            "  train CONFIG [--device DEV] [--epochs N] [--out DIR] [--resume] [--quiet]\n"
            "                              train a model as the config file says\n"
            "  eval CONFIG --checkpoint FILE [--device DEV]\n"
            "                              test loss, accuracy and confusion matrix\n"
            "  summary SPEC --input SHAPE  torchsummary's table for a model spec\n"
            "  info [--config FILE]        versions, plugins, backends, devices, configuration\n"
            "  bench [--config FILE] [--quick]\n"
            "                              dispatch overhead, elementwise bandwidth, matmul\n"
            "  conformance --backend NAME [--op OP] [--dtype D] [--junit FILE]\n"
            "              [--support [--markdown FILE]] [--list]\n"
            "                              the conformance suite against one backend\n"
            "  help                        this text\n"
            "\n"
            "environment: EMBER_CONFIG, EMBER_PLUGIN_PATH, EMBER_BACKEND, EMBER_NUM_THREADS,\n"
            "             EMBER_STRICT, EMBER_SEED (see `ember info` for the effective values)\n",
            em_version());
}

int cli_fail(const char *what)
{
    fprintf(stderr, "ember: %s: %s\n", what, em_last_error());
    return 1;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cli_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

const char *cli_bytes(size_t n, char *buf, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("ember %s\n", em_version());
        return 0;
    }
    if (!strcmp(cmd, "train"))
        return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval"))
        return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "summary"))
        return cmd_summary(argc - 1, argv + 1);
    if (!strcmp(cmd, "info"))
        return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench"))
        return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "conformance"))
        return cmd_conformance(argc - 1, argv + 1);
    fprintf(stderr, "ember: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
