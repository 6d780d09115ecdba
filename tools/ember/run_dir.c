/* tools/ember/run_dir.c - where a training run writes, so that no run overwrites another.
 *
 * Without --out a run goes to runs/<name>/version_N, N one more than the highest version
 * there (as PyTorch Lightning's loggers number runs), and --resume continues the highest.
 * --out DIR names exactly one folder: a run already in it is refused unless --resume
 * (continue it) or --force (start over in it). The run state (epochs done, best accuracy)
 * sits in state.txt next to the checkpoints.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train.h"

static int mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0777) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(tmp, 0777) && errno != EEXIST ? -1 : 0;
}

static bool exists_in(const char *dir, const char *name)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* A folder holds a run when it has its metrics, state or last checkpoint. */
static bool holds_run(const char *dir)
{
    return exists_in(dir, "metrics.csv") || exists_in(dir, "state.txt") ||
           exists_in(dir, "last.safetensors");
}

/* The highest N of dir/version_N, or -1. */
static long highest_version(const char *dir)
{
    DIR *d = opendir(dir);
    long best = -1;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char *end;
        if (strncmp(e->d_name, "version_", 8) != 0)
            continue;
        long n = strtol(e->d_name + 8, &end, 10);
        if (end != e->d_name + 8 && !*end && n > best)
            best = n;
    }
    if (d)
        closedir(d);
    return best;
}

int run_dir_latest(const char *run, char *out, size_t size)
{
    long v = holds_run(run) ? -1 : highest_version(run);
    int n = v < 0 ? snprintf(out, size, "%s", run)
                  : snprintf(out, size, "%s/version_%ld", run, v);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

static int version_dir(run_cfg *c, const char *base, long v)
{
    int n = snprintf(c->out_dir, sizeof c->out_dir, "%s/version_%ld", base, v);
    if (n > 0 && (size_t)n < sizeof c->out_dir)
        return 0;
    errno = ENAMETOOLONG;
    return -1;
}

int run_dir_open(run_cfg *c, const train_opts *o)
{
    char base[PATH_MAX];
    snprintf(base, sizeof base, "%s", c->out_dir);
    if (c->out_given) {
        if (holds_run(base) && !o->resume && !o->force) {
            fprintf(stderr, "ember train: %s already holds a run\n"
                            "Continue it with --resume, start over in it with --force, or leave "
                            "out --out\nto get a new runs/%s/version_N.\n", base, c->name);
            return 2;
        }
    } else if (o->resume) {
        long v = highest_version(base);
        if (v < 0) {
            fprintf(stderr, "ember train: --resume: no run to continue in %s/\n", base);
            return 1;
        }
        if (version_dir(c, base, v) < 0)
            goto fail;
    } else {
        /* mkdir is the claim: two runs started at once take different numbers */
        if (mkdirs(base) < 0)
            goto fail;
        for (long v = highest_version(base) + 1;; v++) {
            if (version_dir(c, base, v) < 0)
                goto fail;
            if (mkdir(c->out_dir, 0777) == 0)
                return 0;
            if (errno != EEXIST)
                goto fail;
        }
    }
    if (o->resume && !holds_run(c->out_dir)) {
        fprintf(stderr, "ember train: --resume: no run state in %s\n", c->out_dir);
        return 1;
    }
    if (mkdirs(c->out_dir) == 0)
        return 0;
fail:
    fprintf(stderr, "ember train: cannot create %s: %s\n", c->out_dir, strerror(errno));
    return 1;
}

int run_state_save(const run_cfg *c, int epochs_done, double best)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 40];
    snprintf(path, sizeof path, "%s/state.txt", c->out_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    char num[32];
    em_snprintf(num, sizeof num, "%.17g", best);   /* the C locale's '.', as em_strtod reads */
    fprintf(f, "epochs_done=%d\nbest_accuracy=%s\n", epochs_done, num);
    int rc = fflush(f) || fsync(fileno(f));
    rc |= fclose(f);
    return rc || rename(tmp, path) ? -1 : 0;
}

int run_state_parse(const char *text, size_t size, int *epochs_done, double *best)
{
    char buf[128];
    if (!text || size == 0 || size >= sizeof buf)
        return -1;
    memcpy(buf, text, size);
    buf[size] = '\0';
    const char *key = "epochs_done=", *key2 = "\nbest_accuracy=";
    if (strncmp(buf, key, strlen(key)))
        return -1;
    char *end;
    long e = strtol(buf + strlen(key), &end, 10);
    if (end == buf + strlen(key) || e < 0 || e > INT_MAX || strncmp(end, key2, strlen(key2)))
        return -1;
    const char *num = end + strlen(key2);
    double b = em_strtod(num, &end);
    if (end == num || (*end && strcmp(end, "\n")))
        return -1;
    *epochs_done = (int)e;
    *best = b;
    return 0;
}
