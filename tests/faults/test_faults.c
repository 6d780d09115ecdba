/* tests/faults/test_faults.c - allocation and I/O fault sweeps (SQLite-style) over a training
 * step, checkpoint and optimizer save/load, dataset loading and spec parsing.
 *
 * Each test builds its objects, then fault_sweep() runs the operation once per injection point
 * in a forked child with the Nth allocation (or write/fsync/rename) failing, and checks every
 * run: the fault-free result or a clean error with a message, state unchanged on error, no
 * leaked block, no crash, nothing printed on success (sweep.h). The suite samples injection
 * points (every stride-th after the first 8); tools/fault-sweep.sh sets EMBER_FAULT_STRIDE=1
 * to try them all. Linked with inject.c, so it only runs in builds without a sanitizer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <criterion/criterion.h>

#include "ember/ember.h"
#include "state.h"
#include "sweep.h"

static char dir[256];

static void setup(void)
{
    setenv("EMBER_CONFIG", "", 1);
    setenv("EMBER_NUM_THREADS", "1", 1);   /* a forked child has no pool workers */
    /* The sweep is about the CPU path; PoCL's threads do not survive fork, and its own
     * allocations would be counted (the opencl stage of tools/test.sh sets EMBER_BACKEND). */
    setenv("EMBER_BACKEND", "cpu", 1);
    setenv("EMBER_DISABLE_PLUGINS", "opencl,cuda", 1);
    cr_assert_eq(em_init(NULL), EM_OK, "em_init: %s", em_last_error());
    snprintf(dir, sizeof dir, "/tmp/ember-faults-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
    em_shutdown();
}

static const char *path_in(const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

static int status_or(int fallback)
{
    return em_last_status() < 0 ? em_last_status() : fallback;
}

/* Asserts the sweep found no problem and injected at least one fault. */
static void expect_clean(sweep_result r, const char *what)
{
    cr_expect_gt(r.tried, 0, "%s: no injection point was tried", what);
    cr_expect_eq(r.problems, 0, "%s: %ld of %ld injected faults broke a rule (listed on stderr)",
                 what, r.problems, r.tried);
}

#define MLP "Sequential(Linear(4, 8), ReLU(), Linear(8, 3))"

static em_module *mlp(uint64_t seed)
{
    em_manual_seed(seed);
    em_module *m = em_module_new(MLP);
    cr_assert_not_null(m, "%s", em_last_error());
    return m;
}

/* ---- a training step ----------------------------------------------------------------------- */

typedef struct train_ctx {
    em_module *m, *loss;
    em_optimizer *o;
    em_tensor *x, *y, *out, *l;
    const char *spec;   /* the optimizer's */
} train_ctx;

static int train_run(void *p)
{
    train_ctx *c = p;
    c->out = em_forward(c->m, c->x);
    c->l = em_loss(c->loss, c->out, c->y);
    if (!c->l)
        return status_or(-1);
    int rc = em_backward(c->l, NULL, false);
    return rc < 0 ? rc : em_step(c->o);
}

static void train_cleanup(void *p)
{
    train_ctx *c = p;
    em_release(c->out);
    em_release(c->l);
    c->out = c->l = NULL;
    em_zero_grad(c->o);
}

static size_t train_snapshot(void *p, unsigned char *buf, size_t cap)
{
    train_ctx *c = p;
    size_t off = 0;
    snap_module(c->m, buf, cap, &off);
    snap_optimizer(c->o, buf, cap, &off);
    return off;
}

static void sweep_training_step(const char *optimizer)
{
    static const float xs[6 * 4] = {0.5f, -1, 2,  0.25f, 1, 1,   -0.5f, 0,  3, -2, 1,  0.5f,
                                    -1,   2,  -3, 1,     0, 0.5f, 0.5f, -1, 2, 1,  -1, 0};
    static const int64_t ys[6] = {0, 1, 2, 1, 0, 2};
    train_ctx c = {.m = mlp(1)};
    c.loss = em_module_new("CrossEntropyLoss()");
    c.o = em_optimizer_new(optimizer, c.m);
    c.x = em_tensor_from_data(xs, EM_F32, 2, (int64_t[]){6, 4}, NULL);
    c.y = em_tensor_from_data(ys, EM_I64, 1, (int64_t[]){6}, NULL);
    cr_assert(c.loss && c.o && c.x && c.y, "%s", em_last_error());
    /* Two steps outside the sweep: lazily created state (gradients, the optimizer's slots
     * and, from the second step, em_step's undo copies of them) exists before the live
     * blocks are counted. */
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(train_run(&c), EM_OK, "%s", em_last_error());
        train_cleanup(&c);
    }
    char name[96];
    snprintf(name, sizeof name, "train step %.60s", optimizer);
    fault_target t = {.name = name, .ctx = &c, .run = train_run, .cleanup = train_cleanup,
                      .snapshot = train_snapshot};
    expect_clean(fault_sweep(&t, FAULT_ALLOC, false, 7), name);
    expect_clean(fault_sweep(&t, FAULT_ALLOC, true, 23), name);
    em_release(c.x);
    em_release(c.y);
    em_optimizer_free(c.o);
    em_module_free(c.loss);
    em_module_free(c.m);
}

TestSuite(faults, .init = setup, .fini = teardown, .timeout = 240);

Test(faults, a_training_step_with_sgd_momentum_survives_every_failed_allocation)
{
    sweep_training_step("SGD(lr=0.1, momentum=0.9)");
}

Test(faults, a_training_step_with_adam_survives_every_failed_allocation)
{
    sweep_training_step("Adam(lr=0.01)");
}

/* ---- an optimizer step alone: all or nothing ----------------------------------------------- */

static void no_cleanup(void *p) { (void)p; }

static int step_run(void *p) { return em_step(((train_ctx *)p)->o); }

/* A fresh optimizer in place of the stepped one: its state (slots, undo copies) goes, so the
 * live blocks are as before the step and the next run is a first step again. */
static void step_cleanup(void *p)
{
    train_ctx *c = p;
    em_optimizer_free(c->o);
    c->o = em_optimizer_new(c->spec, c->m);
    cr_assert_not_null(c->o, "%s", em_last_error());
}

static size_t params_snapshot(void *p, unsigned char *buf, size_t cap)
{
    size_t off = 0;
    snap_module(((train_ctx *)p)->m, buf, cap, &off);
    return off;
}

/* Regression: SGD and Adam updated the first parameters, then failed on an allocation for a
 * later one and returned the error with the module half stepped. The first step is swept: it
 * allocates the optimizer's state; later steps allocate nothing (checked too). */
static void sweep_step(const char *optimizer)
{
    train_ctx c = {.m = mlp(7), .spec = optimizer};
    c.loss = em_module_new("MSELoss()");
    c.o = em_optimizer_new(optimizer, c.m);
    c.x = em_ones(2, (int64_t[]){2, 4}, NULL);
    c.y = em_zeros(2, (int64_t[]){2, 3}, NULL);
    cr_assert(c.loss && c.o && c.x && c.y, "%s", em_last_error());
    c.out = em_forward(c.m, c.x);
    c.l = em_loss(c.loss, c.out, c.y);
    cr_assert(c.l && em_backward(c.l, NULL, false) == EM_OK, "%s", em_last_error());
    char name[96];
    snprintf(name, sizeof name, "first step %.60s", optimizer);
    fault_target t = {.name = name, .ctx = &c, .run = step_run, .cleanup = step_cleanup,
                      .snapshot = params_snapshot};
    expect_clean(fault_sweep(&t, FAULT_ALLOC, false, 1), name);
    expect_clean(fault_sweep(&t, FAULT_ALLOC, true, 1), name);

    /* Once the state exists, a step on the CPU takes its memory from the allocator's cache. */
    em_device cpu = em_device_parse("cpu");
    if (em_device_eq(em_default_device(), cpu)) {
        for (int i = 0; i < 2; i++)
            cr_assert_eq(em_step(c.o), EM_OK, "%s", em_last_error());
        fault_arm(FAULT_ALLOC, 0, false);
        int rc = em_step(c.o);
        fault_disarm();
        cr_assert_eq(rc, EM_OK, "%s", em_last_error());
        cr_expect_eq(fault_calls(), 0, "%s: a step with its state in place made %ld heap "
                     "allocations", optimizer, fault_calls());
    }
    em_release(c.out);
    em_release(c.l);
    em_release(c.x);
    em_release(c.y);
    em_optimizer_free(c.o);
    em_module_free(c.loss);
    em_module_free(c.m);
}

Test(faults, a_failed_sgd_step_leaves_parameters_and_momentum_as_they_were)
{
    sweep_step("SGD(lr=0.1, momentum=0.9, nesterov=true, weight_decay=0.01)");
}

Test(faults, a_failed_adam_step_leaves_parameters_and_moments_as_they_were)
{
    sweep_step("Adam(lr=0.01, amsgrad=true, weight_decay=0.01)");
}

/* ---- saving: the old file stays whole, no temporary file is left ----------------------------- */

typedef struct save_ctx {
    em_module *m;
    em_optimizer *o;       /* saving the optimizer's state instead of the module, when set */
    unsigned char *old;    /* the previous checkpoint at the same path */
    size_t old_size;
} save_ctx;

static void save_prepare(void *p)
{
    save_ctx *c = p;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -f '%s'/*", dir);
    if (system(cmd) != 0)
        return;
    FILE *f = fopen(path_in("ckpt.safetensors"), "wb");
    if (f) {
        fwrite(c->old, 1, c->old_size, f);
        fclose(f);
    }
}

static int save_run(void *p)
{
    save_ctx *c = p;
    const char *path = path_in("ckpt.safetensors");
    return c->o ? em_optimizer_save(c->o, path) : em_module_save(c->m, path);
}

static size_t save_snapshot(void *p, unsigned char *buf, size_t cap)
{
    (void)p;
    size_t off = 0;
    snap_file(dir, "ckpt.safetensors", buf, cap, &off);
    return off;
}

/* The file now at the path loads back (the bytes are the fault-free run's already). */
static int save_check_ok(void *p, char *why, size_t n)
{
    save_ctx *c = p;
    const char *path = path_in("ckpt.safetensors");
    int rc = c->o ? em_optimizer_load(c->o, path) : em_module_load(c->m, path);
    if (rc < 0)
        snprintf(why, n, "the file it wrote does not load: %s", em_last_error());
    return rc;
}

/* Reads the file at path into memory (malloc'd). */
static unsigned char *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*size ? *size : 1);
    cr_assert_eq(fread(b, 1, *size, f), *size);
    fclose(f);
    return b;
}

static void sweep_save(bool optimizer)
{
    save_ctx c = {.m = mlp(2)};
    em_module *older = mlp(3);
    em_optimizer *old_o = NULL;
    const char *path = path_in("ckpt.safetensors");
    if (optimizer) {
        train_ctx tc = {.m = c.m};
        c.o = em_optimizer_new("Adam(lr=0.01)", c.m);
        old_o = em_optimizer_new("Adam(lr=0.01)", older);
        cr_assert(c.o && old_o, "%s", em_last_error());
        tc.o = c.o;
        tc.loss = em_module_new("MSELoss()");
        tc.x = em_ones(2, (int64_t[]){2, 4}, NULL);
        tc.y = em_zeros(2, (int64_t[]){2, 3}, NULL);
        cr_assert_eq(train_run(&tc), EM_OK, "%s", em_last_error());
        train_cleanup(&tc);
        em_release(tc.x);
        em_release(tc.y);
        em_module_free(tc.loss);
        cr_assert_eq(em_optimizer_save(old_o, path), EM_OK, "%s", em_last_error());
    } else {
        cr_assert_eq(em_module_save(older, path), EM_OK, "%s", em_last_error());
    }
    c.old = slurp(path, &c.old_size);
    /* One save outside the sweep, so that first-use allocations are not counted as leaks. */
    cr_assert_eq(save_run(&c), EM_OK, "%s", em_last_error());
    const char *name = optimizer ? "optimizer save" : "module save";
    fault_target t = {.name = name, .ctx = &c, .prepare = save_prepare, .run = save_run,
                      .cleanup = no_cleanup, .snapshot = save_snapshot,
                      .check_ok = save_check_ok};
    expect_clean(fault_sweep(&t, FAULT_ALLOC, false, 1), name);
    expect_clean(fault_sweep(&t, FAULT_IO, false, 1), name);
    expect_clean(fault_sweep(&t, FAULT_IO, true, 1), name);
    free(c.old);
    em_optimizer_free(c.o);
    em_optimizer_free(old_o);
    em_module_free(older);
    em_module_free(c.m);
}

Test(faults, a_checkpoint_save_survives_every_failed_allocation_write_fsync_and_rename)
{
    sweep_save(false);
}

Test(faults, an_optimizer_save_survives_every_failed_allocation_write_fsync_and_rename)
{
    sweep_save(true);
}

/* ---- loading: all or nothing ----------------------------------------------------------------- */

typedef struct load_ctx {
    em_module *m;
    em_optimizer *o;   /* loading the optimizer's state, when set */
} load_ctx;

static int load_run(void *p)
{
    load_ctx *c = p;
    const char *path = path_in("load.safetensors");
    return c->o ? em_optimizer_load(c->o, path) : em_module_load(c->m, path);
}

static size_t load_snapshot(void *p, unsigned char *buf, size_t cap)
{
    load_ctx *c = p;
    size_t off = 0;
    snap_module(c->m, buf, cap, &off);
    if (c->o)
        snap_optimizer(c->o, buf, cap, &off);
    return off;
}

static void sweep_load(bool optimizer)
{
    load_ctx c = {.m = mlp(4)};
    em_module *other = mlp(5);
    const char *path = path_in("load.safetensors");
    em_optimizer *other_o = NULL;
    if (optimizer) {
        c.o = em_optimizer_new("SGD(lr=0.1, momentum=0.9)", c.m);
        other_o = em_optimizer_new("SGD(lr=0.1, momentum=0.9)", other);
        /* Both take steps, so that loading replaces slots rather than adding them (new
         * state is not a leak, but the live-block count cannot tell). */
        train_ctx tc = {.m = other, .o = other_o, .loss = em_module_new("MSELoss()")};
        tc.x = em_ones(2, (int64_t[]){2, 4}, NULL);
        tc.y = em_zeros(2, (int64_t[]){2, 3}, NULL);
        cr_assert_eq(train_run(&tc), EM_OK, "%s", em_last_error());
        train_cleanup(&tc);
        cr_assert_eq(train_run(&tc), EM_OK, "%s", em_last_error());
        train_cleanup(&tc);
        tc.m = c.m;
        tc.o = c.o;
        cr_assert_eq(train_run(&tc), EM_OK, "%s", em_last_error());
        train_cleanup(&tc);
        em_release(tc.x);
        em_release(tc.y);
        em_module_free(tc.loss);
        cr_assert_eq(em_optimizer_save(other_o, path), EM_OK, "%s", em_last_error());
    } else {
        cr_assert_eq(em_module_save(other, path), EM_OK, "%s", em_last_error());
    }
    /* A load outside the sweep (into the objects the file came from), so that first-use
     * allocations are not counted as leaks. */
    int rc = optimizer ? em_optimizer_load(other_o, path) : em_module_load(other, path);
    cr_assert_eq(rc, EM_OK, "%s", em_last_error());
    const char *name = optimizer ? "optimizer load" : "module load";
    fault_target t = {.name = name, .ctx = &c, .run = load_run, .cleanup = no_cleanup,
                      .snapshot = load_snapshot};
    expect_clean(fault_sweep(&t, FAULT_ALLOC, false, 1), name);
    expect_clean(fault_sweep(&t, FAULT_ALLOC, true, 1), name);
    em_optimizer_free(c.o);
    em_optimizer_free(other_o);
    em_module_free(other);
    em_module_free(c.m);
}

Test(faults, a_checkpoint_load_survives_every_failed_allocation)
{
    sweep_load(false);
}

Test(faults, an_optimizer_state_load_survives_every_failed_allocation)
{
    sweep_load(true);
}

/* ---- datasets: build from a spec, read one shuffled epoch ------------------------------------ */

typedef struct data_ctx {
    const char *spec;
    em_dataset *d;
    em_dataloader *dl;
    unsigned char seen[1 << 16];   /* every batch's bytes, in order */
    size_t nseen;
} data_ctx;

static int data_run(void *p)
{
    data_ctx *c = p;
    c->nseen = 0;
    c->d = em_dataset_new(c->spec);
    c->dl = c->d ? em_dataloader_new(c->d, 4, true, 7) : NULL;
    if (!c->dl) {
        c->nseen = 0;
        return status_or(-1);
    }
    em_tensor *x, *y;
    while (em_dataloader_next(c->dl, &x, &y)) {
        size_t off = c->nseen;
        snap_tensor(c->seen, sizeof c->seen, &off, "x", x);
        snap_tensor(c->seen, sizeof c->seen, &off, "y", y);
        em_release(x);
        em_release(y);
        if (off == SNAP_FAIL) {
            c->nseen = 0;
            return em_set_error(EM_ERR_INTERNAL, "test: batches do not fit the buffer");
        }
        c->nseen = off;
    }
    if (em_last_status() < 0) {
        c->nseen = 0;   /* what a failed epoch delivered before it failed does not count */
        return em_last_status();
    }
    return EM_OK;
}

static void data_cleanup(void *p)
{
    data_ctx *c = p;
    em_dataloader_free(c->dl);
    em_dataset_free(c->d);
    c->dl = NULL;
    c->d = NULL;
}

/* What was read: on failure the sweep expects the state before, which is nothing. */
static size_t data_snapshot(void *p, unsigned char *buf, size_t cap)
{
    data_ctx *c = p;
    size_t off = 0;
    snap_put(buf, cap, &off, c->seen, c->nseen);
    c->nseen = 0;
    return off;
}

static void sweep_dataset(const char *name, const char *spec)
{
    static data_ctx c;
    memset(&c, 0, sizeof c);
    c.spec = spec;
    cr_assert_eq(data_run(&c), EM_OK, "%s: %s", spec, em_last_error());
    data_cleanup(&c);
    c.nseen = 0;
    fault_target t = {.name = name, .ctx = &c, .run = data_run, .cleanup = data_cleanup,
                      .snapshot = data_snapshot};
    expect_clean(fault_sweep(&t, FAULT_ALLOC, false, 1), name);
}

Test(faults, a_csv_dataset_survives_every_failed_allocation)
{
    FILE *f = fopen(path_in("d.csv"), "w");
    cr_assert_not_null(f);
    fputs("a,b,c,label\n", f);
    for (int i = 0; i < 10; i++)
        fprintf(f, "%d,%g,%d,%d\n", i, i * 0.5, 10 - i, i % 3);
    fclose(f);
    char spec[600];
    snprintf(spec, sizeof spec, "CSV(path=\"%s\", label=\"label\", scale=0.5)",
             path_in("d.csv"));
    sweep_dataset("CSV dataset", spec);
}

static void write_gz(const char *name, const unsigned char *head, size_t nhead,
                     const unsigned char *data, size_t n)
{
    gzFile f = gzopen(path_in(name), "wb");
    cr_assert_not_null(f);
    gzwrite(f, head, (unsigned)nhead);
    gzwrite(f, data, (unsigned)n);
    gzclose(f);
}

Test(faults, an_idx_dataset_survives_every_failed_allocation)
{
    unsigned char img[10 * 6], lab[10];
    for (int i = 0; i < 10; i++) {
        for (int k = 0; k < 6; k++)
            img[i * 6 + k] = (unsigned char)(i * 50 + k * 40);
        lab[i] = (unsigned char)(i % 10);
    }
    static const unsigned char ihead[16] = {0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 3, 0, 0, 0, 2};
    static const unsigned char lhead[8] = {0, 0, 8, 1, 0, 0, 0, 10};
    write_gz("train-images-idx3-ubyte.gz", ihead, sizeof ihead, img, sizeof img);
    write_gz("train-labels-idx1-ubyte.gz", lhead, sizeof lhead, lab, sizeof lab);
    char spec[600];
    snprintf(spec, sizeof spec, "MNIST(root=\"%s\")", dir);
    sweep_dataset("IDX dataset (MNIST)", spec);
}

/* ---- spec strings ---------------------------------------------------------------------------- */

typedef struct spec_ctx {
    const char *text;
    em_module *m;
    em_optimizer *o;
    char printed[512];
} spec_ctx;

/* Parses a module spec (defaults bound, children built) and an optimizer spec over it, and
 * prints the module back. */
static int spec_run(void *p)
{
    spec_ctx *c = p;
    c->printed[0] = '\0';
    c->m = em_module_new(c->text);
    c->o = c->m ? em_optimizer_new("Adam(lr=0.001, betas=[0.8, 0.9], amsgrad=True)", c->m) : NULL;
    char *s = c->o ? em_module_str(c->m) : NULL;
    if (!s)
        return status_or(-1);
    snprintf(c->printed, sizeof c->printed, "%s", s);
    free(s);
    return EM_OK;
}

static void spec_cleanup(void *p)
{
    spec_ctx *c = p;
    em_optimizer_free(c->o);
    em_module_free(c->m);
    c->o = NULL;
    c->m = NULL;
}

static size_t spec_snapshot(void *p, unsigned char *buf, size_t cap)
{
    spec_ctx *c = p;
    size_t off = 0;
    snap_put(buf, cap, &off, c->printed, strlen(c->printed));
    c->printed[0] = '\0';
    return off;
}

/* Regression: em_module_str, em_module_repr (and every string built with the core's string buffer) returned
 * NULL on a failed allocation with no message in em_last_error(). */
static int print_run(void *p)
{
    spec_ctx *c = p;
    c->printed[0] = '\0';
    char *s = em_module_str(c->m);
    char *r = s ? em_module_repr(c->m) : NULL;
    if (r)
        snprintf(c->printed, sizeof c->printed, "%s\n%s", s, r);
    free(s);
    free(r);
    return r ? EM_OK : status_or(-1);
}

Test(faults, printing_a_module_that_runs_out_of_memory_says_why)
{
    static spec_ctx c;
    c.m = em_module_new("Sequential(Linear(4, 8, bias=false), ReLU(), Dropout(p=0.25))");
    cr_assert_not_null(c.m, "%s", em_last_error());
    cr_assert_eq(print_run(&c), EM_OK, "%s", em_last_error());
    c.printed[0] = '\0';
    fault_target t = {.name = "module printing", .ctx = &c, .run = print_run,
                      .cleanup = no_cleanup, .snapshot = spec_snapshot};
    expect_clean(fault_sweep(&t, FAULT_ALLOC, false, 1), "module printing");
    em_module_free(c.m);
}

Test(faults, spec_parsing_survives_every_failed_allocation)
{
    static spec_ctx c = {.text = "Sequential(Linear(4, 8, bias=false), ReLU(), Dropout(p=0.25), "
                                 "Linear(in_features=8, out_features=2), Softmax(dim=1))"};
    cr_assert_eq(spec_run(&c), EM_OK, "%s", em_last_error());
    spec_cleanup(&c);
    c.printed[0] = '\0';
    fault_target t = {.name = "spec parsing", .ctx = &c, .run = spec_run,
                      .cleanup = spec_cleanup, .snapshot = spec_snapshot};
    expect_clean(fault_sweep(&t, FAULT_ALLOC, false, 1), "spec parsing");
    expect_clean(fault_sweep(&t, FAULT_ALLOC, true, 1), "spec parsing");
}
