/* tests/faults/test_alloc_failure.c - every allocation that can fail, failing: each call either
 * succeeds or returns a clean error with an out-of-memory message, and leaves its objects as
 * they were; never an abort, a crash or a warning-only degradation.
 *
 * Each test sweeps n = 1, 2, ...: the nth allocation inside the call fails (inject.h),
 * until a run sees no failure (the call's whole allocation sequence has been covered).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "ember/spec.h"
#include "inject.h"

#define SWEEP_MAX 100000

/* Runs the sweep of `step`, which must cover more than `least` allocations, and says how many
 * it covered (--verbose). */
#define sweep(step, ctx, least) sweep_(#step, step, ctx, least)
static void sweep_(const char *name, void (*step)(void *, long), void *ctx, long least)
{
    long n = fault_each(FAULT_ALLOC, step, ctx, SWEEP_MAX);
    cr_assert(n > least && n <= SWEEP_MAX, "%s: the sweep covered %ld allocations", name, n);
    cr_log_info("%s: each of %ld allocations failed in turn", name, n - 1);
}

/* Asserts that a failed call left an out-of-memory error whose message says so ("out of
 * memory", "out of host memory"). */
static void assert_nomem_was(int status, const char *msg, const char *what, long n)
{
    cr_assert_eq(status, EM_ERR_NOMEM, "%s, allocation %ld failing: status %d (%s)", what, n,
                 status, msg);
    cr_assert(strstr(msg, "out of") && strstr(msg, "memory"),
              "%s, allocation %ld failing: message \"%s\"", what, n, msg);
}

static void assert_nomem(const char *what, long n)
{
    assert_nomem_was(em_last_status(), em_last_error(), what, n);
}

/* ---- spec strings ------------------------------------------------------------------------ */

static void parse_step(void *ctx, long n)
{
    (void)ctx;
    em_clear_error();
    em_spec *s = em_spec_parse("Sequential(Linear(3, 64, bias=true), ReLU(), Dropout(p=0.5), "
                               "Conv2d(1, 2, kernel_size=[3, 3], padding='same'), Linear(a=1, "
                               "b=2, c=3, d=4, e=5, f=\"a long string that needs to grow its "
                               "buffer\"))",
                               NULL);
    bool fired = fault_disarm();
    if (!s) {
        cr_assert(fired, "parse failed with no allocation failing: %s",
                  em_last_error());
        assert_nomem("em_spec_parse", n);
        return;
    }
    char *back = em_spec_str(s);
    cr_assert_not_null(back);
    cr_assert(strstr(back, "Conv2d(1, 2, kernel_size=[3, 3], padding=\"same\")"),
              "allocation %ld failing gave a different spec: %s", n, back);
    free(back);
    em_spec_free(s);
}

Test(alloc_failure, spec_parsing_reports_out_of_memory_at_every_allocation)
{
    sweep(parse_step, NULL, 10);
}

static const em_param_decl sgd_params[] = {
    {"lr", EM_PARAM_FLOAT, "0.001"},
    {"betas", EM_PARAM_FLOATS, "[0.9, 0.999, 0.5, 0.25, 0.125]"},
    {"name", EM_PARAM_STRING, "\"a default string longer than sixteen bytes\""},
    {"inner", EM_PARAM_SPEC, "Linear(3, 4)"},
};

static void bind_step(void *ctx, long n)
{
    em_clear_error();
    em_args *a = em_args_bind(ctx, 4, sgd_params);
    bool fired = fault_disarm();
    if (!a) {
        cr_assert(fired, "bind failed with no allocation failing: %s",
                  em_last_error());
        assert_nomem("em_args_bind", n);
        return;
    }
    cr_assert_float_eq(em_args_float(a, "lr"), 0.5, 0);
    cr_assert_eq(em_args_count(a, "betas"), 5, "allocation %ld failing", n);
    cr_assert_str_eq(em_args_str(a, "name"), "a default string longer than sixteen bytes");
    cr_assert_str_eq(em_spec_name(em_args_spec(a, "inner")), "Linear");
    em_args_free(a);
}

Test(alloc_failure, binding_declared_defaults_reports_out_of_memory_instead_of_aborting)
{
    em_spec *s = em_spec_parse("SGD(lr=0.5)", NULL);
    cr_assert_not_null(s, "%s", em_last_error());
    sweep(bind_step, s, 5);
    em_spec_free(s);
}

/* ---- autograd ------------------------------------------------------------------------------ */

typedef struct graph_case {
    em_tensor *w, *b, *x;
} graph_case;

/* loss = sum(exp(transpose(x @ w) * 0.5 + b) ) in float64, through a matmul, a view, an
 * elementwise chain, a broadcast and a cast: dloss/dw and dloss/db are checked against the
 * values the same graph gives with no allocation failing. */
static em_tensor *graph_loss(graph_case *g)
{
    em_tensor *y = em_matmul(g->x, g->w);                 /* (2, 3) @ (3, 2) -> (2, 2) */
    em_tensor *t = em_transpose(y, 0, 1);
    em_tensor *h = em_mul_scalar(t, 0.5);
    em_tensor *a = em_add(h, g->b);
    em_tensor *c = em_to_dtype(a, EM_F64);
    em_tensor *e = em_exp(c);
    em_tensor *l = em_sum_all(e);
    em_release(y);
    em_release(t);
    em_release(h);
    em_release(a);
    em_release(c);
    em_release(e);
    return l;
}

static void graph_grads(graph_case *g, double *gw, double *gb)
{
    cr_assert_not_null(em_grad(g->w), "w got no gradient");
    cr_assert_not_null(em_grad(g->b), "b got no gradient");
    em_tensor *cw = em_to_dtype(em_grad(g->w), EM_F64), *cb = em_to_dtype(em_grad(g->b), EM_F64);
    cr_assert_eq(em_copy_to_host(cw, gw, 6 * sizeof *gw), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_copy_to_host(cb, gb, 2 * sizeof *gb), EM_OK, "%s", em_last_error());
    em_release(cw);
    em_release(cb);
    em_grad_clear(g->w);
    em_grad_clear(g->b);
}

typedef struct graph_sweep {
    graph_case g;
    double want_w[6], want_b[2];
} graph_sweep;

/* The leaves' gradients equal those of a run with nothing failing; clears them. */
static void assert_grads(graph_sweep *s, long n)
{
    double gw[6], gb[2];
    graph_grads(&s->g, gw, gb);
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq(gw[i], s->want_w[i], 1e-12, "allocation %ld failing: dw[%d]", n, i);
    for (int i = 0; i < 2; i++)
        cr_assert_float_eq(gb[i], s->want_b[i], 1e-12, "allocation %ld failing: db[%d]", n, i);
}

static void graph_step(void *ctx, long n)
{
    graph_sweep *s = ctx;
    em_clear_error();
    em_tensor *l = graph_loss(&s->g);
    bool fired = fault_disarm();
    if (!l) {
        cr_assert(fired, "forward failed with no allocation failing: %s",
                  em_last_error());
        assert_nomem("forward", n);
        return;
    }
    cr_assert_eq(em_backward(l, NULL, false), EM_OK, "allocation %ld: %s", n, em_last_error());
    em_release(l);
    assert_grads(s, n);
}

static void backward_step(void *ctx, long n)
{
    graph_sweep *s = ctx;
    fault_disarm();
    em_tensor *l = graph_loss(&s->g);
    cr_assert_not_null(l, "%s", em_last_error());
    em_clear_error();
    fault_arm(FAULT_ALLOC, n, false);
    int rc = em_backward(l, NULL, false);
    bool fired = fault_disarm();
    em_release(l);
    if (rc < 0) {
        cr_assert(fired, "backward failed with no allocation failing: %s",
                  em_last_error());
        assert_nomem("backward", n);
        em_grad_clear(s->g.w);
        em_grad_clear(s->g.b);
        return;
    }
    assert_grads(s, n);
}

static void graph_setup(graph_sweep *s)
{
    flt_setup();
    em_opts grad = {.dtype = EM_F64, .requires_grad = true};
    s->g.w = em_tensor_from_data((double[]){0.1, -0.2, 0.3, 0.4, -0.5, 0.6}, EM_F64,
                                 EM_SHAPE(3, 2), &grad);
    s->g.b = em_tensor_from_data((double[]){0.25, -0.75}, EM_F64, EM_SHAPE(2, 1), &grad);
    s->g.x = em_tensor_from_data((double[]){1, 2, 3, -1, 0.5, 2}, EM_F64, EM_SHAPE(2, 3), NULL);
    em_tensor *l = graph_loss(&s->g);
    cr_assert_not_null(l, "%s", em_last_error());
    cr_assert_eq(em_backward(l, NULL, false), EM_OK, "%s", em_last_error());
    em_release(l);
    graph_grads(&s->g, s->want_w, s->want_b);
}

static void graph_teardown(graph_sweep *s)
{
    em_release(s->g.w);
    em_release(s->g.b);
    em_release(s->g.x);
    em_shutdown();
}

Test(alloc_failure, autograd_that_cannot_record_a_node_fails_the_op)
{
    graph_sweep s;
    graph_setup(&s);
    sweep(graph_step, &s, 10);
    graph_teardown(&s);
}

Test(alloc_failure, backward_out_of_memory_is_an_error_or_the_right_gradients)
{
    graph_sweep s;
    graph_setup(&s);
    sweep(backward_step, &s, 5);
    graph_teardown(&s);
}

/* ---- checkpoints ------------------------------------------------------------------------- */

#define CKPT_SPEC "Sequential(Linear(3, 4), ReLU(), Linear(4, 2))"

typedef struct ckpt_case {
    char dir[PATH_MAX];
    char path[PATH_MAX + 32], snap[PATH_MAX + 32];
    em_module *m;              /* the module under test */
    em_module *other;          /* another instance (different weights) */
    em_optimizer *o;
    void *old_bytes, *new_bytes;   /* snapshots compared byte for byte */
    size_t old_size, new_size;
} ckpt_case;

/* The module's (or optimizer's) state as the bytes of a checkpoint of it, saved with nothing
 * failing: two states are equal when their snapshots are. */
static void *snapshot(ckpt_case *c, bool optimizer, size_t *size)
{
    int rc = optimizer ? em_optimizer_save(c->o, c->snap) : em_module_save(c->m, c->snap);
    cr_assert_eq(rc, EM_OK, "%s", em_last_error());
    void *bytes = flt_read_all(c->snap, size);
    cr_assert_not_null(bytes, "%s", c->snap);
    return bytes;
}

static void assert_same(const void *a, size_t na, const void *b, size_t nb, const char *what,
                        long n)
{
    cr_assert(na == nb && !memcmp(a, b, na), "allocation %ld failing: %s changed", n, what);
}

static void ckpt_setup(ckpt_case *c)
{
    flt_setup();
    flt_mkdir(c->dir, "fault");
    snprintf(c->path, sizeof c->path, "%s/model.safetensors", c->dir);
    snprintf(c->snap, sizeof c->snap, "%s/snapshot.safetensors", c->dir);
    em_manual_seed(1);
    c->m = em_module_new(CKPT_SPEC);
    c->other = em_module_new(CKPT_SPEC);
    cr_assert(c->m && c->other, "%s", em_last_error());
}

static void ckpt_teardown(ckpt_case *c)
{
    free(c->old_bytes);
    free(c->new_bytes);
    em_optimizer_free(c->o);
    em_module_free(c->m);
    em_module_free(c->other);
    flt_rmdir(c->dir);
    em_shutdown();
}

/* Saving `other` over the checkpoint of `m`: either the file then holds other's state, or the
 * save failed with an out-of-memory error and the file still holds m's. */
static void save_step(void *ctx, long n)
{
    ckpt_case *c = ctx;
    em_clear_error();
    int rc = em_module_save(c->other, c->path);
    bool fired = fault_disarm();
    size_t size;
    void *now;
    if (rc < 0) {
        cr_assert(fired, "save failed with no allocation failing: %s",
                  em_last_error());
        assert_nomem("em_module_save", n);
        now = flt_read_all(c->path, &size);
        cr_assert_not_null(now, "allocation %ld failing: the checkpoint is gone", n);
        assert_same(now, size, c->old_bytes, c->old_size, "the old checkpoint", n);
    } else {
        now = flt_read_all(c->path, &size);
        cr_assert_not_null(now, "allocation %ld failing: the checkpoint is gone", n);
        assert_same(now, size, c->new_bytes, c->new_size, "the new checkpoint", n);
        cr_assert_eq(em_module_save(c->m, c->path), EM_OK, "%s", em_last_error());
    }
    free(now);
}

Test(alloc_failure, a_save_that_runs_out_of_memory_fails_and_keeps_the_old_file)
{
    ckpt_case c = {0};
    ckpt_setup(&c);
    cr_assert_eq(em_module_save(c.other, c.path), EM_OK, "%s", em_last_error());
    c.new_bytes = flt_read_all(c.path, &c.new_size);
    cr_assert_eq(em_module_save(c.m, c.path), EM_OK, "%s", em_last_error());
    c.old_bytes = flt_read_all(c.path, &c.old_size);
    sweep(save_step, &c, 5);
    ckpt_teardown(&c);
}

/* Loading c->path into m (or, when `optimizer`, into c->o): it then holds the file's state,
 * or the load failed with an out-of-memory error and it is exactly as it was. After a load
 * that worked, the old state comes back from <dir>/old.safetensors for the next run. */
static void check_load(ckpt_case *c, long n, bool optimizer)
{
    const char *fn = optimizer ? "em_optimizer_load" : "em_module_load";
    char keep[PATH_MAX + 32];
    snprintf(keep, sizeof keep, "%s/old.safetensors", c->dir);
    em_clear_error();
    int rc = optimizer ? em_optimizer_load(c->o, c->path) : em_module_load(c->m, c->path);
    bool fired = fault_disarm();
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", em_last_error());
    size_t size;
    void *now = snapshot(c, optimizer, &size);
    if (rc < 0) {
        cr_assert(fired, "load failed with no allocation failing: %s", msg);
        assert_nomem_was(rc, msg, fn, n);
        assert_same(now, size, c->old_bytes, c->old_size,
                    optimizer ? "the optimizer state" : "the module", n);
    } else {
        assert_same(now, size, c->new_bytes, c->new_size,
                    optimizer ? "the loaded optimizer state" : "the loaded module", n);
        rc = optimizer ? em_optimizer_load(c->o, keep) : em_module_load(c->m, keep);
        cr_assert_eq(rc, EM_OK, "%s", em_last_error());
    }
    free(now);
}

static void load_step(void *ctx, long n) { check_load(ctx, n, false); }
static void optim_load_step(void *ctx, long n) { check_load(ctx, n, true); }

Test(alloc_failure, a_load_that_runs_out_of_memory_leaves_the_module_unchanged)
{
    ckpt_case c = {0};
    ckpt_setup(&c);
    char keep[PATH_MAX + 32];
    snprintf(keep, sizeof keep, "%s/old.safetensors", c.dir);
    cr_assert_eq(em_module_save(c.m, keep), EM_OK, "%s", em_last_error());
    c.old_bytes = flt_read_all(keep, &c.old_size);
    cr_assert_eq(em_module_save(c.other, c.path), EM_OK, "%s", em_last_error());
    c.new_bytes = flt_read_all(c.path, &c.new_size);
    sweep(load_step, &c, 5);
    ckpt_teardown(&c);
}

/* One Adam step on m, so that the optimizer has moment buffers and a step count. */
static void adam_step(ckpt_case *c)
{
    em_tensor *x = em_ones(EM_SHAPE(5, 3), NULL);
    em_tensor *y = em_forward(c->m, x);
    em_tensor *l = em_sum_all(y);
    cr_assert_not_null(l, "%s", em_last_error());
    cr_assert_eq(em_backward(l, NULL, false), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_step(c->o), EM_OK, "%s", em_last_error());
    em_release(x);
    em_release(y);
    em_release(l);
}

Test(alloc_failure, an_optimizer_load_that_runs_out_of_memory_leaves_the_state_unchanged)
{
    ckpt_case c = {0};
    ckpt_setup(&c);
    c.o = em_optimizer_new("Adam(lr=0.01)", c.m);
    cr_assert_not_null(c.o, "%s", em_last_error());
    adam_step(&c);
    adam_step(&c);
    cr_assert_eq(em_optimizer_save(c.o, c.path), EM_OK, "%s", em_last_error());
    c.new_bytes = flt_read_all(c.path, &c.new_size);
    adam_step(&c);
    char keep[PATH_MAX + 32];
    snprintf(keep, sizeof keep, "%s/old.safetensors", c.dir);
    cr_assert_eq(em_optimizer_save(c.o, keep), EM_OK, "%s", em_last_error());
    c.old_bytes = flt_read_all(keep, &c.old_size);
    sweep(optim_load_step, &c, 5);
    ckpt_teardown(&c);
}

/* Freeing a graph whose release keeps many nodes pending at once (x = exp(w) + x, a hundred
 * times: each step leaves an ExpBackward node waiting) must not need memory: it runs in
 * em_release, which cannot fail. */
Test(alloc_failure, releasing_a_wide_graph_needs_no_memory, .init = flt_setup,
     .fini = em_shutdown)
{
    em_opts grad = {.requires_grad = true};
    em_tensor *w = em_ones(EM_SHAPE(2), &grad);
    em_tensor *x = em_zeros(EM_SHAPE(2), NULL);
    for (int i = 0; i < 200; i++) {
        em_tensor *e = em_exp(w);
        em_tensor *s = em_add(e, x);
        cr_assert_not_null(s, "%s", em_last_error());
        em_release(e);
        em_release(x);
        x = s;
    }
    fault_arm(FAULT_ALLOC, 1, true);
    em_release(x);
    fault_disarm();
    em_release(w);
}

static void optim_save_step(void *ctx, long n)
{
    ckpt_case *c = ctx;
    em_clear_error();
    int rc = em_optimizer_save(c->o, c->path);
    bool fired = fault_disarm();
    size_t size;
    void *now = flt_read_all(c->path, &size);
    cr_assert_not_null(now, "allocation %ld failing: the checkpoint is gone", n);
    if (rc < 0) {
        cr_assert(fired, "save failed with no allocation failing: %s",
                  em_last_error());
        assert_nomem("em_optimizer_save", n);
        assert_same(now, size, c->old_bytes, c->old_size, "the old optimizer checkpoint", n);
    } else {
        assert_same(now, size, c->new_bytes, c->new_size, "the new optimizer checkpoint", n);
        char keep[PATH_MAX + 32];
        snprintf(keep, sizeof keep, "%s/old.safetensors", c->dir);
        cr_assert_eq(rename(keep, c->path), 0);
        cr_assert_eq(link(c->path, keep), 0);
    }
    free(now);
}

Test(alloc_failure, an_optimizer_save_that_runs_out_of_memory_keeps_the_old_file)
{
    ckpt_case c = {0};
    ckpt_setup(&c);
    c.o = em_optimizer_new("Adam(lr=0.01)", c.m);
    cr_assert_not_null(c.o, "%s", em_last_error());
    adam_step(&c);
    char keep[PATH_MAX + 32];
    snprintf(keep, sizeof keep, "%s/old.safetensors", c.dir);
    cr_assert_eq(em_optimizer_save(c.o, keep), EM_OK, "%s", em_last_error());
    c.old_bytes = flt_read_all(keep, &c.old_size);
    cr_assert_eq(link(keep, c.path), 0);
    adam_step(&c);
    c.new_bytes = snapshot(&c, true, &c.new_size);
    sweep(optim_save_step, &c, 5);
    ckpt_teardown(&c);
}

/* One training step (forward, loss, backward, Adam step) with an allocation failing: it
 * either completes or fails with an out-of-memory error; never an abort or a crash. */
static void train_step(void *ctx, long n)
{
    ckpt_case *c = ctx;
    em_clear_error();
    em_tensor *x = em_ones(EM_SHAPE(5, 3), NULL);
    em_tensor *y = em_forward(c->m, x);
    em_tensor *l = em_sum_all(y);
    int rc = l ? em_backward(l, NULL, false) : em_last_status();
    if (rc == EM_OK)
        rc = em_step(c->o);
    bool fired = fault_disarm();
    if (rc < 0) {
        cr_assert(fired, "the step failed with no allocation failing: %s",
                  em_last_error());
        assert_nomem("a training step", n);
    }
    em_release(x);
    em_release(y);
    em_release(l);
    em_zero_grad(c->o);
}

Test(alloc_failure, a_training_step_that_runs_out_of_memory_fails_cleanly)
{
    ckpt_case c = {0};
    ckpt_setup(&c);
    c.o = em_optimizer_new("Adam(lr=0.01)", c.m);
    cr_assert_not_null(c.o, "%s", em_last_error());
    adam_step(&c);
    sweep(train_step, &c, 10);
    ckpt_teardown(&c);
}
