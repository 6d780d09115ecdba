/* tools/ember/util.c - the small helpers every subcommand shares: error lines, timing,
 * medians, byte counts and config-source paths for people. No main(): the fuzz harness of the
 * training config links this file too. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

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

const char *cli_source(const char *source, char *buf, size_t size)
{
    char cwd[PATH_MAX];
    const char *home = getenv("HOME");
    size_t n;
    if (getcwd(cwd, sizeof cwd) && (n = strlen(cwd)) > 1 && !strncmp(source, cwd, n) &&
        source[n] == '/')
        snprintf(buf, size, "%s", source + n + 1);
    else if (home && (n = strlen(home)) > 1 && !strncmp(source, home, n) && source[n] == '/')
        snprintf(buf, size, "~%s", source + n);
    else
        snprintf(buf, size, "%s", source);
    return buf;
}
