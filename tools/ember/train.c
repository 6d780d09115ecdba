/* tools/ember/train.c - `ember train CONFIG` and `ember eval CONFIG --checkpoint FILE`.
 *
 * The tutorial's training section as a command: a dataset and its split from [data], a model
 * and loss from [model], an optimizer (and scheduler) from [train]; per epoch the train loop,
 * the test loop, a metrics row, and the last and best checkpoints; at the end the pictures.
 * cmd_train runs named steps: train_setup (options, config layers, device), build (data,
 * model, optimizer), run_dir_open (the run folder), train_resume, train_loop (epochs,
 * checkpoints), train_finish. Paths inside the config are relative to the config file; output
 * paths and paths on the command line are relative to the current directory. Ctrl-C saves
 * the last checkpoint and exits cleanly; under mpirun, where ranks see a SIGINT at different
 * steps (srun forwards it to every rank; mpirun itself ends the job), the ranks agree on it
 * at the end of the epoch, which they all finish and checkpoint first.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train.h"

/* ---- options -------------------------------------------------------------------------------- */

enum { T_DEVICE, T_EPOCHS, T_BATCH, T_SEED, T_OUT, T_RESUME, T_FORCE, T_QUIET, T_NO_PLOT };
static const cli_opt k_train_opts[] = {
    [T_DEVICE] = {"device", 'd', "DEV", "train on DEV: cpu, cuda, cuda:1, opencl:0 (default:\n"
                                         "[runtime] backend or EMBER_BACKEND)"},
    [T_EPOCHS] = {"epochs", 'e', "N", "train N epochs in all (over [train] epochs)"},
    [T_BATCH] = {"batch-size", 'b', "N", "samples per batch (over [data] batch_size)"},
    [T_SEED] = {"seed", 's', "N", "seed of the split, the shuffle and the initial weights\n"
                                  "(over [train] seed)"},
    [T_OUT] = {"out", 'o', "DIR", "write the run to exactly DIR (default: a new\n"
                                  "runs/<config name>/version_N for each run)"},
    [T_RESUME] = {"resume", 'r', NULL, "continue the latest run (or the one in --out DIR) from\n"
                                       "its last checkpoint"},
    [T_FORCE] = {"force", 'f', NULL, "with --out: start over in DIR even if it holds a run"},
    [T_QUIET] = {"quiet", 'q', NULL, "no settings list, no progress bar: one line per\n"
                                      "epoch"},
    [T_NO_PLOT] = {"no-plot", 0, NULL, "do not draw the loss, accuracy and confusion pictures"},
};
const cli_cmd cli_train = {
    .name = "train", .synopsis = "CONFIG [OPTION]...",
    .summary = "train a model as the config file says",
    .about = "Trains the model of CONFIG's [model] on its [data] with its [train] optimizer;\n"
             "per epoch a test pass, a row of metrics.csv, and the last and best checkpoints\n"
             "(safetensors). Each run gets its own folder, runs/<name>/version_N, and is never\n"
             "overwritten; at the end `ember plot` draws its curves there. Settings come from\n"
             "defaults < system config < user config < CONFIG < environment < these options.\n"
             "Ctrl-C saves the last checkpoint; --resume continues bit for bit.",
    CLI_OPTS(k_train_opts), .min_positional = 1, .max_positional = 1,
    .positional_name = "CONFIG (a training config such as examples/digits.ini)",
    .examples = "ember train examples/digits.ini\n"
                "ember train examples/digits.ini --epochs 5 --seed 1\n"
                "ember train examples/digits.ini --resume",
};

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


/* ---- checkpoints ----------------------------------------------------------------------- */

static int save_checkpoint(const run_cfg *c, const char *stem, em_module *model, em_optimizer *opt)
{
    char a[PATH_MAX + 64], b[PATH_MAX + 64];
    snprintf(a, sizeof a, "%s/%s.safetensors", c->out_dir, stem);
    snprintf(b, sizeof b, "%s/%s.optim.safetensors", c->out_dir, stem);
    if (em_module_save(model, a) < 0 || (opt && em_optimizer_save(opt, b) < 0))
        return cli_fail("checkpoint");
    return 0;
}

/* ---- the objects of a run ---------------------------------------------------------------- */

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
    return train_dist_setup(o->model, o->dl,
                            &(em_ddp_opts){.find_unused_parameters = c->find_unused,
                                           .compress = c->ddp_compress},
                            &o->ddp);
}


/* ---- the train loop ---------------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Whether to leave the epoch now: one process stops at once; ranks finish the epoch in step
 * (a rank leaving early would break the order of the collectives) and agree at its end. */
static bool stop_in_epoch(void) { return interrupted && em_dist_size() == 1; }

/* Under mpirun: set when the ranks have agreed (in an epoch's sums) that one was interrupted.
 * Ranks stop on this, never on their own flag, which a signal may set on one rank between
 * the epoch's sums and its end (in the evaluation or the checkpoint). */
static bool stop_agreed;

/* One epoch of the train loop; returns the mean training loss (NAN with *rc set on error). */
static double train_epoch(const run_cfg *c, objects *o, int epoch, progress *bar, int *rc)
{
    em_module_train(o->model, true);
    int64_t nb = em_dataloader_num_batches(o->dl), done = 0, seen = 0;
    double loss_sum = 0;
    char label[32];
    snprintf(label, sizeof label, "epoch %d/%d", epoch, c->epochs);
    progress_start(bar, bar->on);
    em_tensor *x, *y;
    while (!stop_in_epoch() && em_dataloader_next(o->dl, &x, &y)) {
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
        progress_update(bar, label, done, nb, seen, loss_sum / (double)seen);
    }
    if (!stop_in_epoch() && em_last_status() < 0) {
        *rc = cli_fail("train loader");
        return NAN;
    }
    double sums[3] = {loss_sum, (double)seen, interrupted ? 1 : 0};
    if ((*rc = train_dist_sum(sums, 3)) != 0)
        return NAN;
    if (sums[2] > 0)
        stop_agreed = true;   /* some rank was: every rank stops after this epoch */
    return sums[1] > 0 ? sums[0] / sums[1] : NAN;
}

/* The state the loop carries from epoch to epoch (and across --resume). */
typedef struct loop_state {
    int start;               /* epochs already done */
    double best;             /* best test accuracy so far (-1: none) */
    FILE *metrics;
    em_device dev;
} loop_state;

/* Step: options, config layers, device. Returns -1 to go on, else the exit status. */
static int train_setup(int argc, char **argv, train_opts *opt, run_cfg *c, em_device *dev)
{
    cli_args a;
    int rc = cli_parse(&cli_train, argc, argv, &a);
    if (rc >= 0)
        return rc;
    *opt = (train_opts){.config = a.pos[0], .device = a.val[T_DEVICE], .out = a.val[T_OUT],
                        .epochs = a.val[T_EPOCHS], .seed = a.val[T_SEED],
                        .batch_size = a.val[T_BATCH], .resume = cli_has(&a, T_RESUME),
                        .force = cli_has(&a, T_FORCE), .quiet = cli_has(&a, T_QUIET),
                        .no_plot = cli_has(&a, T_NO_PLOT)};
    long n;
    uint64_t u;
    if ((opt->epochs && cli_long(&cli_train, "epochs", opt->epochs, 1, 1000000, &n)) ||
        (opt->batch_size && cli_long(&cli_train, "batch-size", opt->batch_size, 1, 1L << 30, &n)) ||
        (opt->seed && cli_u64(&cli_train, "seed", opt->seed, &u)))
        return 2;
    if (opt->resume && opt->force)
        return cli_usage_error(&cli_train, "--resume and --force contradict each other");
    if (access(opt->config, R_OK) != 0) {
        fprintf(stderr, "ember train: %s: %s\n", opt->config, strerror(errno));
        return 2;
    }
    if (em_init_layered(opt->config) < 0)
        return cli_fail("init");
    if ((rc = train_config_load(c, opt)) != 0)
        return em_shutdown(), rc;
    *dev = opt->device ? em_device_parse(opt->device) : em_default_device();
    if (dev->index < 0)
        return em_shutdown(), cli_fail("--device");
    return -1;
}

/* The run's state, weights and optimizer state from its folder, which under mpirun rank 0
 * alone reads (train_dist_read sends the files to the others). 0, or 1 after a message. */
static int resume_state(const run_cfg *c, objects *o, loop_state *s)
{
    static const char *const names[] = {"state.txt", "last.safetensors", "last.optim.safetensors"};
    char path[3][PATH_MAX + 64];
    unsigned char *img[3] = {NULL, NULL, NULL};
    size_t size[3] = {0, 0, 0};
    int rc = 0;
    for (int i = 0; i < 3 && !rc; i++) {
        snprintf(path[i], sizeof path[i], "%s/%s", c->out_dir, names[i]);
        int err = train_dist_read(path[i], &img[i], &size[i]);
        if (err && train_dist_is_root()) {
            if (err == ENOENT)
                fprintf(stderr, "ember train: --resume: no run state in %s (%s is missing)\n",
                        c->out_dir, names[i]);
            else
                fprintf(stderr, "ember train: --resume: %s: %s\n", path[i], strerror(err));
        }
        rc = err ? 1 : 0;
    }
    if (!rc && run_state_parse((const char *)img[0], size[0], &s->start, &s->best) < 0) {
        if (train_dist_is_root())
            fprintf(stderr, "ember train: --resume: %s: not a run state (epochs_done=N, "
                            "best_accuracy=X)\n", path[0]);
        rc = 1;
    }
    if (!rc && (em_module_load_bytes(o->model, img[1], size[1], path[1]) < 0 ||
                em_optimizer_load_bytes(o->opt, img[2], size[2], path[2]) < 0))
        rc = cli_fail("--resume");
    for (int i = 0; i < 3; i++)
        free(img[i]);
    return rc;
}

/* Step: continue a run (--resume) or start its metrics file. */
static int train_resume(const run_cfg *c, const train_opts *opt, objects *o, loop_state *s)
{
    char path[PATH_MAX + 64];
    s->start = 0;
    s->best = -1;
    if (opt->resume) {
        int rc = resume_state(c, o, s);
        if (rc)
            return rc;
        if (s->start >= c->epochs && train_dist_is_root())
            printf("the run in %s/ has done %d epochs already; --epochs N (more than %d) "
                   "trains it further\n", c->out_dir, s->start, s->start);
        for (int e = 0; e < s->start && o->sched; e++)
            em_scheduler_step(o->sched);
        em_dataloader_set_epoch(o->dl, s->start);
    }
    if (!train_dist_is_root())
        return 0;   /* under mpirun, rank 0 alone writes files */
    snprintf(path, sizeof path, "%s/metrics.csv", c->out_dir);
    s->metrics = fopen(path, opt->resume ? "a" : "w");
    if (!s->metrics) {
        fprintf(stderr, "ember train: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (!opt->resume)
        fprintf(s->metrics, "epoch,train_loss,test_loss,test_accuracy,lr,seconds\n");
    return 0;
}

/* Step: after an epoch, its metrics row, the scheduler, and the checkpoints. */
static int train_checkpoint(const run_cfg *c, objects *o, loop_state *s, int epoch,
                            double train_loss, const eval_result *r, double lr, double secs)
{
    if (o->sched)
        em_scheduler_step(o->sched);
    if (!train_dist_is_root()) {   /* the others keep the best figure, write nothing */
        s->best = r->accuracy > s->best ? r->accuracy : s->best;
        return 0;
    }
    fprintf(s->metrics, "%d,%.6f,%.6f,%.6f,%.6g,%.3f\n", epoch + 1, train_loss, r->loss,
            r->accuracy, lr, secs);
    fflush(s->metrics);
    int rc = save_checkpoint(c, "last", o->model, o->opt);
    if (!rc && r->accuracy > s->best) {
        s->best = r->accuracy;
        rc = save_checkpoint(c, "best", o->model, NULL);
    }
    if (!rc && run_state_save(c, epoch + 1, s->best) < 0) {
        fprintf(stderr, "ember train: cannot write %s/state.txt\n", c->out_dir);
        rc = 1;
    }
    if (!rc && r->confusion) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/confusion.csv", c->out_dir);
        rc = write_confusion_csv(path, r->confusion, r->classes) ? 1 : 0;
    }
    return rc;
}

/* Step: the epochs. The last one also records the confusion matrix. */
static int train_loop(const run_cfg *c, objects *o, loop_state *s)
{
    bool root = train_dist_is_root();
    /* no bar under mpirun: it hands every rank a pty whatever its own output is */
    progress bar = {.on = cli_terminal_width() > 0 && !c->quiet && em_dist_size() == 1};
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old);
    int rc = 0;
    int64_t classes = o->d.num_classes > 0 && o->d.num_classes <= 1000 ? o->d.num_classes : 0;
    for (int epoch = s->start; epoch < c->epochs && !rc; epoch++) {
        double t0 = cli_now(), lr = em_optimizer_lr(o->opt);
        double train_loss = train_epoch(c, o, epoch + 1, &bar, &rc);
        progress_clear(&bar);
        if (rc)
            break;
        if (stop_in_epoch()) {
            rc = root && (save_checkpoint(c, "last", o->model, o->opt) ||
                          run_state_save(c, epoch, s->best));
            if (root)
                printf("interrupted in epoch %d: saved %s/last.safetensors; continue with "
                       "--resume%s%s\n",
                       epoch + 1, c->out_dir, c->out_given ? " --out " : "",
                       c->out_given ? c->out_dir : "");
            rc = rc ? 1 : 130;
            break;
        }
        bool last = epoch + 1 == c->epochs;
        eval_result r = {.classes = last ? classes : 0};
        r.confusion = r.classes ? calloc((size_t)(r.classes * r.classes), sizeof *r.confusion)
                                : NULL;
        rc = evaluate(o->model, o->loss, o->d.test, c, s->dev, &r, r.confusion != NULL);
        double secs = cli_now() - t0;
        if (!rc && root) {
            printf("epoch %d/%d: train loss %.4f, test loss %.4f, test accuracy %.2f%% "
                   "(%.*f %s)\n",
                   epoch + 1, c->epochs, train_loss, r.loss, 100 * r.accuracy, secs < 1 ? 0 : 2,
                   secs < 1 ? secs * 1e3 : secs, secs < 1 ? "ms" : "s");
            fflush(stdout);
        }
        if (!rc)
            rc = train_checkpoint(c, o, s, epoch, train_loss, &r, lr, secs);
        free(r.confusion);
        /* several ranks: the epoch was finished and saved (one process stops in the next) */
        if (!rc && stop_agreed) {
            if (root)
                printf("interrupted: stopped after epoch %d, saved in %s/; continue with "
                       "--resume%s%s\n",
                       epoch + 1, c->out_dir, c->out_given ? " --out " : "",
                       c->out_given ? c->out_dir : "");
            rc = 130;
        }
    }
    sigaction(SIGINT, &old, NULL);
    return rc;
}

/* Step: say what runs where, and where it writes. */
static void train_announce(const run_cfg *c, const train_opts *opt, const objects *o,
                           em_device dev)
{
    char db[32];
    if (!train_dist_is_root())
        return;
    if (!opt->quiet)
        train_config_print(c, opt, stdout, cli_terminal_width());
    printf("training on %s: %lld training and %lld test samples, %d epoch%s%s\n"
           "writing to %s/\n",
           em_device_str(dev, db, sizeof db), (long long)em_dataset_len(o->d.train),
           (long long)em_dataset_len(o->d.test), c->epochs, c->epochs == 1 ? "" : "s",
           train_dist_banner(), c->out_dir);
    fflush(stdout);
}

/* Step: the closing line and the pictures. */
static int train_finish(const run_cfg *c, const train_opts *opt, const loop_state *s)
{
    if (!train_dist_is_root())
        return 0;
    printf("best test accuracy %.2f%%; the run is in %s/\n", 100 * s->best, c->out_dir);
    fflush(stdout);
    return opt->no_plot ? 0 : plot_run(c->out_dir);
}

int cmd_train(int argc, char **argv)
{
    train_opts opt;
    run_cfg c = {0};
    loop_state s = {0};
    int rc = train_setup(argc, argv, &opt, &c, &s.dev);
    if (rc >= 0)
        return rc;
    objects o;
    rc = build(&c, &o, s.dev, true);
    /* under mpirun the other ranks neither write nor read the run folder */
    if (!rc && train_dist_is_root())
        rc = run_dir_open(&c, &opt);
    if (!rc) {
        train_announce(&c, &opt, &o, s.dev);
        rc = train_resume(&c, &opt, &o, &s);
    }
    if (!rc)
        rc = train_loop(&c, &o, &s);
    if (s.metrics)
        fclose(s.metrics);
    if (!rc)
        rc = train_finish(&c, &opt, &s);
    objects_free(&o);
    return train_dist_end("train", rc);
}

/* ---- eval ---------------------------------------------------------------------------------- */

enum { E_CHECKPOINT, E_DEVICE, E_PLOT };
static const cli_opt k_eval_opts[] = {
    [E_CHECKPOINT] = {"checkpoint", 'k', "FILE", "the weights to test (a run's best.safetensors,\n"
                                                 "or any safetensors file of the same model)"},
    [E_DEVICE] = {"device", 'd', "DEV", "evaluate on DEV: cpu, cuda, opencl:0"},
    [E_PLOT] = {"plot", 'p', "FILE", "also draw the confusion matrix to FILE (.svg, or .png\n"
                                     "when built with cairo)"},
};
const cli_cmd cli_eval = {
    .name = "eval", .synopsis = "CONFIG --checkpoint FILE [OPTION]...",
    .summary = "test loss, accuracy and confusion matrix of a checkpoint",
    .about = "Builds CONFIG's model and test split (the same split as `ember train`), loads\n"
             "the checkpoint, and prints the test loss, accuracy and confusion matrix.\n"
             "Under mpirun each rank tests its shard of the test set; rank 0 prints the\n"
             "figures of the whole set.",
    CLI_OPTS(k_eval_opts), .min_positional = 1, .max_positional = 1,
    .positional_name = "CONFIG (the training config the checkpoint came from)",
    .examples = "ember eval examples/digits.ini \\\n"
                "    --checkpoint runs/digits/version_0/best.safetensors --plot confusion.svg",
};

static void print_confusion(const eval_result *r)
{
    printf("confusion matrix (rows: true class, columns: predicted):\n     ");
    for (int64_t j = 0; j < r->classes; j++)
        printf("%6lld", (long long)j);
    printf("\n");
    for (int64_t i = 0; i < r->classes; i++) {
        printf("%5lld", (long long)i);
        for (int64_t j = 0; j < r->classes; j++)
            printf("%6lld", (long long)r->confusion[i * r->classes + j]);
        printf("\n");
    }
}

int cmd_eval(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli_eval, argc, argv, &a);
    if (rc >= 0)
        return rc;
    train_opts opt = {.config = a.pos[0], .device = a.val[E_DEVICE]};
    const char *checkpoint = a.val[E_CHECKPOINT];
    if (!checkpoint)
        return cli_usage_error(&cli_eval, "missing --checkpoint FILE");
    if (access(opt.config, R_OK) != 0) {
        fprintf(stderr, "ember eval: %s: %s\n", opt.config, strerror(errno));
        return 2;
    }
    if (em_init_layered(opt.config) < 0)
        return cli_fail("init");
    /* under mpirun rank 0 alone reads the checkpoint (and sends it to the others) */
    if (train_dist_is_root() && access(checkpoint, R_OK) != 0) {
        fprintf(stderr, "ember eval: %s: %s\n", checkpoint, strerror(errno));
        return train_dist_end("eval", 2);
    }
    run_cfg c = {0};
    rc = train_config_load(&c, &opt);
    em_device dev = opt.device ? em_device_parse(opt.device) : em_default_device();
    objects o = {0};
    if (!rc && dev.index < 0)
        rc = cli_fail("--device");
    if (!rc)
        rc = build(&c, &o, dev, false);
    unsigned char *img = NULL;
    size_t img_size = 0;
    if (!rc) {
        int err = train_dist_read(checkpoint, &img, &img_size);
        if (err && train_dist_is_root())
            fprintf(stderr, "ember eval: --checkpoint: %s: %s\n", checkpoint, strerror(err));
        rc = err ? 1 : 0;
    }
    if (!rc && em_module_load_bytes(o.model, img, img_size, checkpoint) < 0)
        rc = cli_fail("--checkpoint");
    free(img);
    eval_result r = {0};
    if (!rc) {
        r.classes = o.d.num_classes > 0 && o.d.num_classes <= 1000 ? o.d.num_classes : 0;
        r.confusion = r.classes ? calloc((size_t)(r.classes * r.classes), sizeof *r.confusion) : NULL;
        rc = evaluate(o.model, o.loss, o.d.test, &c, dev, &r, r.confusion != NULL);
    }
    if (!rc && train_dist_is_root()) {   /* the figures are already the whole set's */
        printf("test samples: %lld\ntest loss: %.4f\ntest accuracy: %.2f%%\n", (long long)r.n,
               r.loss, 100 * r.accuracy);
        if (r.confusion && r.classes <= 100)
            print_confusion(&r);
        if (a.val[E_PLOT]) {
            char title[256];
            snprintf(title, sizeof title, "%s: confusion matrix (accuracy %.2f%%)", c.name,
                     100 * r.accuracy);
            if (!r.confusion) {
                fprintf(stderr, "ember eval: --plot: the dataset does not say its classes\n");
                rc = 1;
            } else if (plot_confusion_file(a.val[E_PLOT], r.confusion, r.classes, title) == 0) {
                printf("wrote %s\n", a.val[E_PLOT]);
            } else {
                rc = 1;
            }
        }
    }
    free(r.confusion);
    objects_free(&o);
    return train_dist_end("eval", rc);
}
