/* tools/ember/train.c - `ember train CONFIG` and `ember eval CONFIG --checkpoint FILE`.
 *
 * The tutorial's training section as a command: a dataset and its split from [data], a model
 * and loss from [model], an optimizer (and scheduler) from [train]; per epoch the train loop,
 * the test loop, a metrics row, and the last and best checkpoints. Paths inside the config are
 * relative to the config file; output paths and paths on the command line are relative to the
 * current directory. Ctrl-C saves the last checkpoint and exits cleanly.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* ---- the run's settings -------------------------------------------------------------------- */

typedef struct run_cfg {
    const char *config;      /* the file, absolute */
    char dir[PATH_MAX];      /* its folder: data paths are relative to it */
    const char *dataset, *test_dataset, *model, *loss, *optimizer, *scheduler;
    double split;
    bool shuffle;
    int64_t batch_size;
    int epochs;
    uint64_t seed;
    char out_dir[PATH_MAX];
    bool quiet;
} run_cfg;

typedef struct key_rule {
    const char *key;         /* "data.dataset" */
    bool required;
} key_rule;

static const key_rule known_keys[] = {
    {"data.dataset", true},   {"data.test_dataset", false}, {"data.split", false},
    {"data.batch_size", false}, {"data.shuffle", false},
    {"model.spec", true},     {"model.loss", false},        {"train.optimizer", true},
    {"train.scheduler", false}, {"train.epochs", false},    {"train.seed", false},
    {"train.out_dir", false},
};
#define NKEYS (int)(sizeof known_keys / sizeof known_keys[0])

static int bad_value(const char *key, const char *what)
{
    fprintf(stderr, "ember: %s: %s: %s, got '%s'\n", em_config_source(key), key, what,
            em_config_get(key));
    return 2;
}

static double edit_ratio(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), d[40][40];
    if (la >= 40 || lb >= 40)
        return 99;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t s = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            size_t x = d[i - 1][j] + 1, y = d[i][j - 1] + 1;
            d[i][j] = s < x ? (s < y ? s : y) : (x < y ? x : y);
        }
    return (double)d[la][lb];
}

/* Every [data]/[model]/[train] key must be known: a typo is an error with a suggestion. */
static int check_keys(void)
{
    const char *k, *v, *src;
    for (int i = 0; em_config_entry(i, &k, &v, &src); i++) {
        if (!strncmp(k, "runtime.", 8))
            continue;
        bool known = false;
        const char *best = NULL;
        double bd = 99;
        for (int j = 0; j < NKEYS && !known; j++) {
            known = !strcmp(k, known_keys[j].key);
            double d = edit_ratio(k, known_keys[j].key);
            if (d < bd) {
                bd = d;
                best = known_keys[j].key;
            }
        }
        if (!known) {
            if (best && bd <= 3)
                fprintf(stderr, "ember: %s: unknown key '%s'; did you mean '%s'?\n", src, k,
                        best);
            else
                fprintf(stderr, "ember: %s: unknown key '%s'\n", src, k);
            return 2;
        }
    }
    for (int j = 0; j < NKEYS; j++)
        if (known_keys[j].required && !em_config_get(known_keys[j].key)) {
            const char *dot = strchr(known_keys[j].key, '.');
            fprintf(stderr, "ember: %s: missing [%.*s] %s\n", em_config_file(),
                    (int)(dot - known_keys[j].key), known_keys[j].key, dot + 1);
            return 2;
        }
    return 0;
}

static bool parse_bool(const char *s, bool *out)
{
    if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "yes"))
        return *out = true, true;
    if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "no"))
        return *out = false, true;
    return false;
}

static int load_cfg(run_cfg *c, const char *config, const char *out_override)
{
    if (check_keys())
        return 2;
    char real[PATH_MAX];
    if (!realpath(config, real))
        snprintf(real, sizeof real, "%s", config);
    snprintf(c->dir, sizeof c->dir, "%s", real);
    char *slash = strrchr(c->dir, '/');
    if (slash)
        *slash = '\0';
    c->dataset = em_config_get("data.dataset");
    c->test_dataset = em_config_get("data.test_dataset");
    c->model = em_config_get("model.spec");
    c->loss = em_config_get("model.loss") ? em_config_get("model.loss") : "CrossEntropyLoss()";
    c->optimizer = em_config_get("train.optimizer");
    c->scheduler = em_config_get("train.scheduler");
    const char *v;
    char *end;
    c->split = 0.8;
    if ((v = em_config_get("data.split"))) {
        c->split = strtod(v, &end);
        if (*end || !(c->split > 0 && c->split < 1))
            return bad_value("data.split", "expected a fraction between 0 and 1");
    }
    c->batch_size = 64;
    if ((v = em_config_get("data.batch_size"))) {
        c->batch_size = strtoll(v, &end, 10);
        if (*end || c->batch_size < 1)
            return bad_value("data.batch_size", "expected a positive integer");
    }
    c->shuffle = true;
    if ((v = em_config_get("data.shuffle")) && !parse_bool(v, &c->shuffle))
        return bad_value("data.shuffle", "expected true or false");
    c->epochs = 10;
    if ((v = em_config_get("train.epochs"))) {
        long e = strtol(v, &end, 10);
        if (*end || e < 1 || e > 1000000)
            return bad_value("train.epochs", "expected a positive integer");
        c->epochs = (int)e;
    }
    c->seed = 0;
    if ((v = em_config_get("train.seed"))) {
        c->seed = strtoull(v, &end, 10);
        if (*end)
            return bad_value("train.seed", "expected a non-negative integer");
    }
    if (out_override) {
        snprintf(c->out_dir, sizeof c->out_dir, "%s", out_override);
    } else if ((v = em_config_get("train.out_dir"))) {
        snprintf(c->out_dir, sizeof c->out_dir, "%s", v);
    } else {
        const char *base = strrchr(real, '/') ? strrchr(real, '/') + 1 : real;
        snprintf(c->out_dir, sizeof c->out_dir, "runs/%.*s", (int)strcspn(base, "."), base);
    }
    return 0;
}

/* ---- data ------------------------------------------------------------------------------ */

/* Builds a dataset with the config's folder as the current directory, so that relative paths
 * in its spec are relative to the config file. */
static em_dataset *dataset_in(const run_cfg *c, const char *spec)
{
    int here = open(".", O_RDONLY | O_DIRECTORY);
    if (here < 0 || chdir(c->dir) != 0) {
        if (here >= 0)
            close(here);
        em_dataset *d = em_dataset_new(spec);
        return d;
    }
    em_dataset *d = em_dataset_new(spec);
    if (fchdir(here) != 0)
        fprintf(stderr, "ember: warning: cannot return to the working directory\n");
    close(here);
    return d;
}

typedef struct data {
    em_dataset *all, *train, *test;
    int64_t num_classes;
} data;

static void data_free(data *d)
{
    em_dataset_free(d->train);
    em_dataset_free(d->test);
    em_dataset_free(d->all);
    memset(d, 0, sizeof *d);
}

static int data_open(const run_cfg *c, data *d)
{
    memset(d, 0, sizeof *d);
    if (!(d->all = dataset_in(c, c->dataset)))
        return cli_fail("[data] dataset");
    if (c->test_dataset) {
        d->train = d->all;
        d->all = NULL;
        if (!(d->test = dataset_in(c, c->test_dataset)))
            return cli_fail("[data] test_dataset");
    } else {
        /* counts rather than fractions: 1 - 0.8 is 0.19999999999999996 in binary */
        int64_t n = em_dataset_len(d->all);
        double ntrain = floor(c->split * (double)n + 1e-9);
        em_dataset *parts[2];
        if (n < 0 ||
            em_random_split(d->all, 2, (const double[]){ntrain, (double)n - ntrain}, c->seed,
                            parts) < 0)
            return cli_fail("[data] split");
        d->train = parts[0];
        d->test = parts[1];
    }
    /* CSV(..., standardize=true): statistics from the training split only */
    em_dataset *base = d->all ? d->all : d->train;
    if (em_dataset_needs_scaler(base) && em_dataset_fit_scaler(base, d->train) < 0)
        return cli_fail("[data] standardize");
    if (c->test_dataset && em_dataset_needs_scaler(d->test) &&
        em_dataset_fit_scaler(d->test, d->train) < 0)
        return cli_fail("[data] test_dataset standardize");
    em_sample_info info;
    if (em_dataset_sample_info(d->train, &info) == EM_OK)
        d->num_classes = info.num_classes;
    return 0;
}

/* ---- evaluation ------------------------------------------------------------------------- */

typedef struct eval_result {
    double loss, accuracy;
    int64_t n;
    int64_t *confusion;   /* [classes][classes], rows = truth, or NULL */
    int64_t classes;
} eval_result;

/* Test loop: eval mode, no grad; loss averaged over samples; accuracy from argmax. */
static int evaluate(em_module *model, em_module *loss_fn, em_dataset *ds, const run_cfg *c,
                    em_device dev, eval_result *r, bool want_confusion)
{
    r->loss = r->accuracy = 0;
    r->n = 0;   /* classes and confusion are the caller's */
    em_dataloader *dl = em_dataloader_new(ds, c->batch_size, false, c->seed);
    if (!dl || em_dataloader_set_device(dl, dev) < 0)
        return em_dataloader_free(dl), cli_fail("test loader");
    if (train_dist_shard_eval(dl))
        return em_dataloader_free(dl), 1;
    em_module_train(model, false);
    bool prev = em_set_grad_enabled(false);
    double loss_sum = 0;
    int64_t correct = 0;
    em_tensor *x, *y;
    int rc = 0;
    while (em_dataloader_next(dl, &x, &y)) {
        em_scope_begin();
        em_tensor *out = em_forward(model, x);
        em_tensor *l = out ? em_loss(loss_fn, out, y) : NULL;
        em_tensor *pred = out ? em_argmax(out, -1, false) : NULL;
        int64_t b = em_shape(x)[0];
        if (!l || !pred) {
            rc = cli_fail("evaluate");
            em_scope_end();
            em_release(x);
            em_release(y);
            break;
        }
        loss_sum += em_item(l) * (double)b;
        em_tensor *eq = em_eq(pred, y), *s = em_sum_all(eq);
        correct += (int64_t)em_item(s);
        if (want_confusion && r->classes > 0) {
            int64_t *pv = malloc((size_t)b * sizeof *pv), *yv = malloc((size_t)b * sizeof *yv);
            em_tensor *yl = em_to_dtype(y, EM_I64);
            if (pv && yv && em_copy_to_host(pred, pv, (size_t)b * 8) == EM_OK &&
                em_copy_to_host(yl, yv, (size_t)b * 8) == EM_OK)
                for (int64_t i = 0; i < b; i++)
                    if (yv[i] >= 0 && yv[i] < r->classes && pv[i] >= 0 && pv[i] < r->classes)
                        r->confusion[yv[i] * r->classes + pv[i]]++;
            free(pv);
            free(yv);
        }
        r->n += b;
        em_scope_end();
        em_release(x);
        em_release(y);
    }
    if (!rc && em_last_status() < 0)
        rc = cli_fail("test loader");
    double sums[3] = {loss_sum, (double)correct, (double)r->n};
    if (!rc && !(rc = train_dist_sum(sums, 3)) && want_confusion && r->classes > 0)
        rc = train_dist_sum_i64(r->confusion, r->classes * r->classes);
    loss_sum = sums[0];
    correct = (int64_t)sums[1];
    r->n = (int64_t)sums[2];
    em_set_grad_enabled(prev);
    em_module_train(model, true);
    em_dataloader_free(dl);
    r->loss = r->n ? loss_sum / (double)r->n : NAN;
    r->accuracy = r->n ? (double)correct / (double)r->n : NAN;
    return rc;
}

/* ---- progress --------------------------------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void progress(int epoch, int epochs, int64_t done, int64_t total, double loss,
                     double rate, double eta)
{
    int width = 24, fill = total ? (int)(width * done / total) : width;
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[width] = '\0';
    fprintf(stdout, "\repoch %d/%d [%s] %lld/%lld loss %.4f %.0f samples/s ETA %.0fs   ", epoch,
            epochs, bar, (long long)done, (long long)total, loss, rate, eta);
    fflush(stdout);
}

/* ---- run state (resume) ------------------------------------------------------------------- */

static void out_path(const run_cfg *c, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", c->out_dir, name);
}

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

static int save_state(const run_cfg *c, int epochs_done, double best)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 40];
    out_path(c, "state.txt", path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "epochs_done=%d\nbest_accuracy=%.17g\n", epochs_done, best);
    int rc = fflush(f) || fsync(fileno(f));
    rc |= fclose(f);
    return rc || rename(tmp, path) ? -1 : 0;
}

static int load_state(const run_cfg *c, int *epochs_done, double *best)
{
    char path[PATH_MAX + 32];
    out_path(c, "state.txt", path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int ok = fscanf(f, "epochs_done=%d\nbest_accuracy=%lf", epochs_done, best) == 2;
    fclose(f);
    return ok ? 0 : -1;
}

static int save_checkpoint(const run_cfg *c, const char *stem, em_module *model, em_optimizer *opt)
{
    char a[PATH_MAX + 64], b[PATH_MAX + 64];
    snprintf(a, sizeof a, "%s/%s.safetensors", c->out_dir, stem);
    snprintf(b, sizeof b, "%s/%s.optim.safetensors", c->out_dir, stem);
    if (em_module_save(model, a) < 0 || (opt && em_optimizer_save(opt, b) < 0))
        return cli_fail("checkpoint");
    return 0;
}

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* ---- train -------------------------------------------------------------------------------- */

typedef struct objects {
    data d;
    em_module *model, *loss;
    em_optimizer *opt;
    em_scheduler *sched;
    em_dataloader *dl;
    em_ddp *ddp;          /* with several ranks */
} objects;

static void objects_free(objects *o)
{
    em_ddp_free(o->ddp);
    em_dataloader_free(o->dl);
    em_scheduler_free(o->sched);
    em_optimizer_free(o->opt);
    em_module_free(o->loss);
    em_module_free(o->model);
    data_free(&o->d);
}

static int build(const run_cfg *c, objects *o, em_device dev, bool with_optimizer)
{
    memset(o, 0, sizeof *o);
    em_manual_seed(c->seed);
    if (data_open(c, &o->d))
        return 1;
    if (!(o->model = em_module_new(c->model)))
        return cli_fail("[model] spec");
    if (!(o->loss = em_module_new(c->loss)))
        return cli_fail("[model] loss");
    if (em_module_to(o->model, dev) < 0)
        return cli_fail("--device");
    if (!with_optimizer)
        return 0;
    if (!(o->opt = em_optimizer_new(c->optimizer, o->model)))
        return cli_fail("[train] optimizer");
    if (c->scheduler && !(o->sched = em_scheduler_new(c->scheduler, o->opt)))
        return cli_fail("[train] scheduler");
    if (!(o->dl = em_dataloader_new(o->d.train, c->batch_size, c->shuffle, c->seed)) ||
        em_dataloader_set_device(o->dl, dev) < 0)
        return cli_fail("train loader");
    return train_dist_setup(o->model, o->dl, &o->ddp);
}

/* One epoch of the train loop; returns the mean training loss (NAN with *rc set on error). */
static double train_epoch(const run_cfg *c, objects *o, int epoch, bool tty, int *rc)
{
    em_module_train(o->model, true);
    int64_t nb = em_dataloader_num_batches(o->dl), done = 0, seen = 0;
    double loss_sum = 0, t0 = now();
    em_tensor *x, *y;
    while (!interrupted && em_dataloader_next(o->dl, &x, &y)) {
        em_scope_begin();
        em_zero_grad(o->opt);
        em_tensor *out = em_forward(o->model, x);
        em_tensor *l = out ? em_loss(o->loss, out, y) : NULL;
        int bad = !l || em_backward(l, NULL, false) < 0 ||
                  (o->ddp && em_ddp_finish(o->ddp) < 0) || em_step(o->opt) < 0;
        int64_t b = em_shape(x)[0];
        double lv = bad ? NAN : em_item(l);
        em_scope_end();
        em_release(x);
        em_release(y);
        if (bad) {
            *rc = cli_fail("train step");
            return NAN;
        }
        loss_sum += lv * (double)b;
        seen += b;
        done++;
        if (tty && !c->quiet && train_dist_is_root()) {
            double el = now() - t0;
            progress(epoch, c->epochs, done, nb, loss_sum / (double)seen, (double)seen / el,
                     el / (double)done * (double)(nb - done));
        }
    }
    if (!interrupted && em_last_status() < 0) {
        *rc = cli_fail("train loader");
        return NAN;
    }
    double sums[2] = {loss_sum, (double)seen};
    if ((*rc = train_dist_sum(sums, 2)) != 0)
        return NAN;
    return sums[1] > 0 ? sums[0] / sums[1] : NAN;
}

static void print_usage_train(FILE *f)
{
    fprintf(f, "usage: ember train CONFIG [--device DEV] [--epochs N] [--out DIR] [--resume] "
               "[--quiet]\n");
}

int cmd_train(int argc, char **argv)
{
    const char *config = NULL, *device = NULL, *out = NULL;
    int epochs_override = 0;
    bool resume = false, quiet = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc)
            device = argv[++i];
        else if (!strcmp(argv[i], "--epochs") && i + 1 < argc)
            epochs_override = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--resume"))
            resume = true;
        else if (!strcmp(argv[i], "--quiet"))
            quiet = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return print_usage_train(stdout), 0;
        else if (argv[i][0] != '-' && !config)
            config = argv[i];
        else {
            fprintf(stderr, "ember train: unknown argument '%s'\n", argv[i]);
            print_usage_train(stderr);
            return 2;
        }
    }
    if (!config) {
        print_usage_train(stderr);
        return 2;
    }
    if (access(config, R_OK) != 0) {
        fprintf(stderr, "ember train: %s: %s\n", config, strerror(errno));
        return 2;
    }
    if (em_init(config) < 0)
        return cli_fail("init");
    run_cfg c = {0};
    c.config = config;
    int rc = load_cfg(&c, config, out);
    if (rc)
        return train_dist_end(rc);
    if (epochs_override > 0)
        c.epochs = epochs_override;
    c.quiet = quiet;
    em_device dev = device ? em_device_parse(device) : em_default_device();
    if (dev.index < 0) {
        em_shutdown();
        return cli_fail("--device");
    }
    objects o;
    if ((rc = build(&c, &o, dev, true)) != 0) {
        objects_free(&o);
        return train_dist_end(rc);
    }
    if (mkdirs(c.out_dir) < 0) {
        fprintf(stderr, "ember train: cannot create %s: %s\n", c.out_dir, strerror(errno));
        objects_free(&o);
        return train_dist_end(1);
    }
    int start = 0;
    double best = -1;
    char path[PATH_MAX + 64];
    if (resume) {
        char a[PATH_MAX + 64], b[PATH_MAX + 64];
        snprintf(a, sizeof a, "%s/last.safetensors", c.out_dir);
        snprintf(b, sizeof b, "%s/last.optim.safetensors", c.out_dir);
        if (load_state(&c, &start, &best) < 0 || em_module_load(o.model, a) < 0 ||
            em_optimizer_load(o.opt, b) < 0) {
            rc = em_last_status() < 0 ? cli_fail("--resume")
                                      : (fprintf(stderr, "ember train: --resume: no run state "
                                                         "in %s\n",
                                                 c.out_dir),
                                         1);
            objects_free(&o);
            return train_dist_end(rc);
        }
        for (int e = 0; e < start && o.sched; e++)
            em_scheduler_step(o.sched);
        em_dataloader_set_epoch(o.dl, start);
    }
    out_path(&c, "metrics.csv", path, sizeof path);
    FILE *metrics = train_dist_is_root() ? fopen(path, resume ? "a" : "w") : NULL;
    if (!metrics && train_dist_is_root()) {
        fprintf(stderr, "ember train: cannot write %s: %s\n", path, strerror(errno));
        objects_free(&o);
        return train_dist_end(1);
    }
    if (!resume && metrics)
        fprintf(metrics, "epoch,train_loss,test_loss,test_accuracy,lr,seconds\n");
    bool tty = isatty(STDOUT_FILENO), root = train_dist_is_root();
    char db[32];
    if (root)
        printf("ember train: %s on %s, %lld training and %lld test samples, %d epochs, model "
               "%s%s\n",
               config, em_device_str(dev, db, sizeof db), (long long)em_dataset_len(o.d.train),
               (long long)em_dataset_len(o.d.test), c.epochs, c.model, train_dist_banner());
    fflush(stdout);
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old);
    for (int epoch = start; epoch < c.epochs && !rc; epoch++) {
        double t0 = now(), lr = em_optimizer_lr(o.opt);
        double train_loss = train_epoch(&c, &o, epoch + 1, tty, &rc);
        if (rc)
            break;
        if (interrupted) {
            if (tty && !quiet)
                printf("\n");
            rc = root && (save_checkpoint(&c, "last", o.model, o.opt) ||
                          save_state(&c, epoch, best));
            printf("interrupted in epoch %d: saved %s/last.safetensors; continue with "
                   "--resume\n",
                   epoch + 1, c.out_dir);
            rc = rc ? 1 : 130;
            break;
        }
        eval_result r = {0};
        if ((rc = evaluate(o.model, o.loss, o.d.test, &c, dev, &r, false)) != 0)
            break;
        double secs = now() - t0;
        if (o.sched)
            em_scheduler_step(o.sched);
        bool improved = r.accuracy > best;
        if (improved)
            best = r.accuracy;
        if (!root)
            continue;
        if (tty && !quiet)
            printf("\r\033[K");
        printf("epoch %d/%d: train loss %.4f, test loss %.4f, test accuracy %.2f%% (%.2fs)\n",
               epoch + 1, c.epochs, train_loss, r.loss, 100 * r.accuracy, secs);
        fflush(stdout);
        fprintf(metrics, "%d,%.6f,%.6f,%.6f,%.6g,%.3f\n", epoch + 1, train_loss, r.loss,
                r.accuracy, lr, secs);
        fflush(metrics);
        if ((rc = save_checkpoint(&c, "last", o.model, o.opt)) != 0)
            break;
        if (improved && (rc = save_checkpoint(&c, "best", o.model, NULL)) != 0)
            break;
        if (save_state(&c, epoch + 1, best) < 0) {
            fprintf(stderr, "ember train: cannot write %s/state.txt\n", c.out_dir);
            rc = 1;
        }
    }
    sigaction(SIGINT, &old, NULL);
    if (metrics)
        fclose(metrics);
    if (!rc && root)
        printf("best test accuracy %.2f%%; checkpoints and metrics.csv in %s/\n", 100 * best,
               c.out_dir);
    objects_free(&o);
    return train_dist_end(rc);
}

/* ---- eval ---------------------------------------------------------------------------------- */

int cmd_eval(int argc, char **argv)
{
    const char *config = NULL, *checkpoint = NULL, *device = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--checkpoint") && i + 1 < argc)
            checkpoint = argv[++i];
        else if (!strcmp(argv[i], "--device") && i + 1 < argc)
            device = argv[++i];
        else if (argv[i][0] != '-' && !config)
            config = argv[i];
        else {
            fprintf(stderr, "ember eval: unknown argument '%s'\n"
                            "usage: ember eval CONFIG --checkpoint FILE [--device DEV]\n",
                    argv[i]);
            return 2;
        }
    }
    if (!config || !checkpoint) {
        fprintf(stderr, "usage: ember eval CONFIG --checkpoint FILE [--device DEV]\n");
        return 2;
    }
    if (em_init(config) < 0)
        return cli_fail("init");
    run_cfg c = {0};
    int rc = load_cfg(&c, config, NULL);
    em_device dev = device ? em_device_parse(device) : em_default_device();
    objects o = {0};
    if (!rc && dev.index < 0)
        rc = cli_fail("--device");
    if (!rc)
        rc = build(&c, &o, dev, false);
    if (!rc && em_module_load(o.model, checkpoint) < 0)
        rc = cli_fail("--checkpoint");
    eval_result r = {0};
    if (!rc) {
        r.classes = o.d.num_classes > 0 && o.d.num_classes <= 100 ? o.d.num_classes : 0;
        r.confusion = r.classes ? calloc((size_t)(r.classes * r.classes), sizeof *r.confusion) : NULL;
        rc = evaluate(o.model, o.loss, o.d.test, &c, dev, &r, r.confusion != NULL);
    }
    if (!rc) {
        printf("test samples: %lld\ntest loss: %.4f\ntest accuracy: %.2f%%\n", (long long)r.n,
               r.loss, 100 * r.accuracy);
        if (r.confusion) {
            printf("confusion matrix (rows: true class, columns: predicted):\n     ");
            for (int64_t j = 0; j < r.classes; j++)
                printf("%6lld", (long long)j);
            printf("\n");
            for (int64_t i = 0; i < r.classes; i++) {
                printf("%5lld", (long long)i);
                for (int64_t j = 0; j < r.classes; j++)
                    printf("%6lld", (long long)r.confusion[i * r.classes + j]);
                printf("\n");
            }
        }
    }
    free(r.confusion);
    objects_free(&o);
    em_shutdown();
    return rc;
}
