/* core/ddp.c - DistributedDataParallel: parameters broadcast once, gradients averaged in
 * buckets whose all-reduce starts from autograd's post-accumulate-grad hooks.
 *
 * Buckets hold parameters in reverse registration order (the order backward usually produces
 * their gradients), up to bucket_bytes each and one dtype per bucket, as PyTorch's DDP does.
 * A bucket owns a flat contiguous CPU buffer: when the last of its gradients has been
 * accumulated, the gradients are copied into it and an asynchronous all-reduce (average)
 * starts while backward goes on; em_ddp_finish waits and copies the averages back into .grad.
 * Buckets start strictly in order, as PyTorch's reducer starts them: a rank whose backward
 * skipped a parameter must not issue its all-reduces in another order than the others.
 * A parameter without a gradient counts as zeros in its bucket; em_ddp_finish starts the
 * buckets backward left incomplete and either refuses the step (the default) or, with
 * find_unused_parameters, all-reduces a map of who used what so that a parameter no rank used
 * keeps its .grad untouched. With compress = EM_BF16 (PyTorch's bf16_compress_hook) a bucket
 * also owns a bfloat16 twin of its buffer: the gradients are rounded into it, divided by the
 * number of ranks there, summed over the ranks in bfloat16, and widened back into .grad from
 * it. Not here: gradient-as-bucket-view (the copy in and out costs two memory passes per step).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define DEFAULT_BUCKET_BYTES ((size_t)25 << 20)
#define MAX_NAMED_UNUSED 6      /* parameter names listed in the error; the rest are counted */

typedef struct ddp_bucket {
    int first, count;            /* slice of em_ddp.params (reverse order) */
    int64_t numel;
    em_dtype dtype;
    em_tensor *flat;             /* CPU, contiguous */
    em_tensor *wire;             /* compress: the bfloat16 copy that travels (CPU), else NULL */
    int ready;                   /* gradients accumulated in this backward */
    em_dist_work *work;          /* the all-reduce in flight, or NULL */
    double launched_at;
} ddp_bucket;

typedef struct ddp_param {
    struct em_ddp *d;
    em_tensor *t;                /* borrowed from the module */
    const char *name;            /* borrowed */
    int bucket;
    int64_t offset;              /* elements into the bucket's flat buffer */
    bool seen;                   /* counted in its bucket's `ready` in this backward */
    bool used;                   /* a gradient since the last synchronised step (no_sync too) */
} ddp_param;

struct em_ddp {
    em_module *m;
    int np, nb;
    ddp_param *params;
    ddp_bucket *buckets;
    int next;                    /* the next bucket to start: they start in order */
    bool sync, find_unused;
    em_tensor *users;            /* find_unused: int32 [np], how many ranks used params[i] */
    em_dtype compress;           /* EM_BF16, or 0 */
    em_tensor *world;            /* compress: the number of ranks, a wrapped scalar */
    double wait_s, overlap_s;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Copies bucket b's gradients into its flat buffer (zeros for a parameter without one) and
 * starts its all-reduce. */
static int launch(em_ddp *d, ddp_bucket *b)
{
    char *base = em_data_ptr(b->flat);
    size_t es = em_dtype_size(b->dtype);
    for (int i = b->first; i < b->first + b->count; i++) {
        ddp_param *p = &d->params[i];
        em_tensor *g = p->used ? em_grad(p->t) : NULL;
        size_t nbytes = (size_t)em_numel(p->t) * es;
        char *dst = base + (size_t)p->offset * es;
        if (!g)
            memset(dst, 0, nbytes);   /* 0.0 in every floating dtype */
        else if (em_copy_to_host(g, dst, nbytes) < 0)
            return em_last_status();
    }
    if (b->wire) {
        /* bf16_compress_hook: buffer.to(torch.bfloat16).div_(world_size), then a sum */
        int rc = em__inplace_status(em_copy_(b->wire, b->flat));
        if (rc == EM_OK)
            rc = em__inplace_status(em_div_(b->wire, d->world));
        b->work = rc == EM_OK ? em_dist_all_reduce_start(b->wire, EM_REDUCE_SUM) : NULL;
    } else {
        b->work = em_dist_all_reduce_start(b->flat, EM_REDUCE_AVG);
    }
    b->launched_at = now_s();
    return b->work ? EM_OK : em_last_status();
}

/* Starts the complete buckets from d->next on, in order, so that every rank issues the same
 * all-reduces in the same order whatever order its backward produced the gradients in. A
 * bucket that fails to start is left without work (em_ddp_finish reports it); the next ones
 * still start, so that the other ranks' all-reduces find their partners. */
static int launch_ready(em_ddp *d)
{
    int rc = EM_OK;
    while (d->next < d->nb && d->buckets[d->next].ready == d->buckets[d->next].count) {
        int k = d->next++;
        if (launch(d, &d->buckets[k]) < 0 && rc == EM_OK)
            rc = em_set_error(em_last_status(), "DistributedDataParallel: bucket %d: %s", k,
                              em_last_error());
    }
    return rc;
}

/* Runs on the backward thread after p's gradient was accumulated. A failure to launch is kept
 * for em_ddp_finish (a hook cannot fail the backward). */
static void on_grad(em_tensor *t, void *ctx)
{
    (void)t;
    ddp_param *p = ctx;
    em_ddp *d = p->d;
    p->used = true;
    if (!d->sync || p->seen)
        return;
    p->seen = true;
    d->buckets[p->bucket].ready++;
    if (launch_ready(d) < 0)
        em_warn("%s", em_last_error());
    em__dist_progress();
}

static int build_buckets(em_ddp *d, size_t cap)
{
    d->buckets = calloc((size_t)(d->np ? d->np : 1), sizeof *d->buckets);
    if (!d->buckets)
        return em_set_error(EM_ERR_NOMEM, "em_ddp_new: out of memory");
    ddp_bucket *b = NULL;
    for (int i = 0; i < d->np; i++) {
        ddp_param *p = &d->params[i];
        em_dtype dt = em_dtype_of(p->t);
        size_t bytes = (size_t)em_numel(p->t) * em_dtype_size(dt);
        if (!b || b->dtype != dt ||
            (b->numel * (int64_t)em_dtype_size(dt) + (int64_t)bytes > (int64_t)cap)) {
            b = &d->buckets[d->nb++];
            b->first = i;
            b->dtype = dt;
        }
        p->bucket = (int)(b - d->buckets);
        p->offset = b->numel;
        b->numel += em_numel(p->t);
        b->count++;
    }
    em_backend *cpu = em__cpu_backend();
    if (!cpu)
        return EM_ERR_DEVICE;
    em_device host = {cpu->id, 0};
    for (int k = 0; k < d->nb; k++) {
        ddp_bucket *bk = &d->buckets[k];
        if (!(bk->flat = em__tensor_alloc(host, bk->dtype, 1, &bk->numel)))
            return em_last_status();
        if (d->compress == EM_BF16 && !(bk->wire = em__tensor_alloc(host, EM_BF16, 1, &bk->numel)))
            return em_last_status();
    }
    if (d->compress == EM_BF16 && d->nb > 0 &&
        !(d->world = em__wrapped_scalar(d->buckets[0].wire, em_dist_size())))
        return em_last_status();
    return EM_OK;
}

/* The compress option: none, or bfloat16 over float32 parameters only (PyTorch's hook would
 * narrow a float64 bucket too; refusing keeps the precision a model asked for). */
static int check_compress(const em_ddp *d, em_dtype compress)
{
    if (compress != 0 && compress != EM_F32 && compress != EM_BF16)
        return em_set_error(EM_ERR_INVALID, "em_ddp_new: compress must be 0/float32 (none) or "
                                            "bfloat16, got %s",
                            em_dtype_name(compress));
    for (int i = d->np - 1; compress == EM_BF16 && i >= 0; i--)   /* registration order */
        if (em_dtype_of(d->params[i].t) != EM_F32)
            return em_set_error(EM_ERR_INVALID, "em_ddp_new: compress = bfloat16 needs float32 "
                                                "gradients; parameter '%s' is %s",
                                d->params[i].name, em_dtype_name(em_dtype_of(d->params[i].t)));
    return EM_OK;
}

/* Rank 0's parameters and buffers everywhere. */
static int broadcast_state(em_module *m)
{
    for (int i = 0; i < em_module_state_count(m); i++) {
        em_tensor *t = em_module_state_tensor(m, i);
        if (t && em_dist_broadcast(t, 0) < 0)
            return em_set_error(em_last_status(), "em_ddp_new: broadcast of '%s': %s",
                                em_module_state_name(m, i), em_last_error());
    }
    return EM_OK;
}

static em_ddp *ddp_new_body(em_module *m, const em_ddp_opts *opts)
{
    const char *fn = "em_ddp_new";
    if (em__require_init(fn) < 0)
        return NULL;
    if (!m)
        return em__null_arg(fn, "m"), NULL;
    em_ddp *d = calloc(1, sizeof *d);
    int n = em_module_param_count(m);
    if (!d || !(d->params = calloc((size_t)(n ? n : 1), sizeof *d->params))) {
        free(d);
        return em_set_error(EM_ERR_NOMEM, "%s: out of memory", fn), NULL;
    }
    d->m = m;
    d->sync = true;
    d->find_unused = opts && opts->find_unused_parameters;
    for (int i = n - 1; i >= 0; i--) {   /* reverse order, trainable parameters only */
        em_tensor *t = em_module_param(m, i);
        if (t && em_requires_grad(t))
            d->params[d->np++] =
                (ddp_param){.d = d, .t = t, .name = em_module_param_name(m, i)};
    }
    size_t cap = opts && opts->bucket_bytes ? opts->bucket_bytes : DEFAULT_BUCKET_BYTES;
    em_dtype compress = opts ? opts->compress : 0;
    int rc = check_compress(d, compress);   /* before any collective: every rank fails alike */
    d->compress = compress == EM_BF16 ? EM_BF16 : 0;
    if (rc == EM_OK)
        rc = broadcast_state(m);
    if (rc == EM_OK)
        rc = build_buckets(d, cap);
    if (rc == EM_OK && d->find_unused) {
        int64_t n_users = d->np ? d->np : 1;
        em_backend *cpu = em__cpu_backend();
        d->users = cpu ? em__tensor_alloc((em_device){cpu->id, 0}, EM_I32, 1, &n_users) : NULL;
        if (!d->users)
            rc = em_last_status() < 0 ? em_last_status() : EM_ERR_DEVICE;
    }
    int hooked = 0;
    for (; rc == EM_OK && hooked < d->np; hooked++)
        rc = em_register_post_accumulate_grad_hook(d->params[hooked].t, on_grad,
                                                   &d->params[hooked]);
    if (rc < 0) {
        d->np = hooked;   /* only the hooks that were registered are removed */
        em_ddp_free(d);
        return NULL;
    }
    return d;
}

em_ddp *em_ddp_new(em_module *m, const em_ddp_opts *opts)
{
    EM_UNSCOPED(em_ddp *, ddp_new_body(m, opts));
}

/* Forgets this backward's bucket progress; with clear_used also which parameters got a
 * gradient (after a synchronised step; not when no_sync turns on or off). */
static void reset_step(em_ddp *d, bool clear_used)
{
    for (int i = 0; i < d->np; i++) {
        d->params[i].seen = false;
        if (clear_used)
            d->params[i].used = false;
    }
    for (int k = 0; k < d->nb; k++)
        d->buckets[k].ready = 0;
    d->next = 0;
}

/* The error for parameters that got no gradient, naming them and the way to allow it. */
static int refuse_unused(const em_ddp *d)
{
    int n = 0;
    for (int i = 0; i < d->np; i++)
        n += !d->params[i].used;
    if (n == 0)
        return EM_OK;
    em_strbuf sb = {0};
    if (n == 1)
        em__sb_printf(&sb, "parameter");
    else
        em__sb_printf(&sb, "%d parameters", n);
    /* registration order (d->params is reversed), as the user wrote the model */
    for (int i = d->np - 1, listed = 0; i >= 0 && listed < MAX_NAMED_UNUSED; i--)
        if (!d->params[i].used)
            em__sb_printf(&sb, "%s'%s'", listed++ ? ", " : " ", d->params[i].name);
    if (n > MAX_NAMED_UNUSED)
        em__sb_printf(&sb, " and %d more", n - MAX_NAMED_UNUSED);
    char *names = em__sb_take(&sb);
    int rc = em_set_error(EM_ERR_STATE,
                          "DistributedDataParallel: %s received no gradient in this step "
                          "(took no part in the loss); set find_unused_parameters "
                          "(em_ddp_opts, or [train] find_unused_parameters = true) to count "
                          "the missing gradients as zeros",
                          names ? names : "a parameter");
    free(names);
    return rc;
}

/* Gives p the gradient src (a CPU view of a bucket) when backward gave it none. The
 * parameter's autograd record exists: it holds this handle's hook. */
static int set_grad(ddp_param *p, em_tensor *src)
{
    EM_ASSERT(p->t->ag && !p->t->ag->grad);
    em_tensor *g = em_zeros_like(p->t);
    em_tensor *r = g ? em_copy_(g, src) : NULL;
    em_release(r);
    if (!r) {
        em_release(g);
        return em_last_status();
    }
    p->t->ag->grad = g;
    return EM_OK;
}

/* Writes bucket b's averages back into the gradients; with users (find_unused), a parameter
 * no rank used keeps the .grad it had. */
static int scatter_back(em_ddp *d, ddp_bucket *b, const int32_t *users)
{
    em_tensor *from = b->wire ? b->wire : b->flat;   /* em_copy_ widens bfloat16 */
    em_dtype dt = em_dtype_of(from);
    char *base = em_data_ptr(from);
    size_t es = em_dtype_size(dt);
    int rc = EM_OK;
    bool g = em_set_grad_enabled(false);
    for (int i = b->first; rc == EM_OK && i < b->first + b->count; i++) {
        ddp_param *p = &d->params[i];
        if (users && users[i] == 0)
            continue;
        em_tensor *src = em_tensor_from_blob(base + (size_t)p->offset * es, dt,
                                             em_ndim(p->t), em_shape(p->t), NULL, NULL);
        em_tensor *grad = em_grad(p->t);
        if (!src) {
            rc = em_last_status();
        } else if (grad) {
            rc = em__inplace_status(em_copy_(grad, src));
        } else {
            rc = set_grad(p, src);
        }
        em_release(src);
    }
    em_set_grad_enabled(g);
    return rc;
}

/* find_unused: starts the all-reduce of how many ranks used each parameter. */
static em_dist_work *start_users(em_ddp *d)
{
    int32_t *u = em_data_ptr(d->users);
    for (int i = 0; i < d->np; i++)
        u[i] = d->params[i].used;
    return em_dist_all_reduce_start(d->users, EM_REDUCE_SUM);
}

static int ddp_finish_body(em_ddp *d)
{
    if (!d)
        return em__null_arg("em_ddp_finish", "d");
    if (!d->sync)
        return EM_OK;
    double t0 = now_s();
    int rc = d->find_unused ? EM_OK : refuse_unused(d);
    /* Buckets backward left incomplete (a parameter without a gradient, zeros in its place)
     * start now, in order, on every rank alike: even a refused step all-reduces every bucket,
     * so that a rank that did get every gradient is not left waiting. */
    for (int k = d->next; k < d->nb; k++)
        d->buckets[k].ready = d->buckets[k].count;
    int lr = launch_ready(d);
    if (rc == EM_OK)
        rc = lr;
    em_dist_work *uw = d->find_unused ? start_users(d) : NULL;
    if (d->find_unused && !uw && rc == EM_OK)
        rc = em_last_status();
    for (int k = 0; k < d->nb; k++) {
        ddp_bucket *b = &d->buckets[k];
        if (rc == EM_OK && !b->work)
            rc = em_set_error(EM_ERR_STATE, "DistributedDataParallel: bucket %d was not "
                                            "launched (an error in a gradient hook)", k);
        if (!b->work)
            continue;
        d->overlap_s += fmax(0, t0 - b->launched_at);
        int w = em_dist_wait(b->work);
        b->work = NULL;
        if (rc == EM_OK && w < 0)
            rc = w;
    }
    if (uw) {
        int w = em_dist_wait(uw);
        if (rc == EM_OK && w < 0)
            rc = w;
    }
    const int32_t *users = d->find_unused ? em_data_ptr(d->users) : NULL;
    for (int k = 0; rc == EM_OK && k < d->nb; k++)
        rc = scatter_back(d, &d->buckets[k], users);
    d->wait_s += now_s() - t0;
    reset_step(d, true);
    return rc;
}

int em_ddp_finish(em_ddp *d)
{
    EM_UNSCOPED(int, ddp_finish_body(d));
}

int em_ddp_set_sync(em_ddp *d, bool on)
{
    if (!d)
        return em__null_arg("em_ddp_set_sync", "d");
    d->sync = on;
    reset_step(d, false);
    return EM_OK;
}

int em_ddp_bucket_count(const em_ddp *d) { return d ? d->nb : 0; }

void em_ddp_times(const em_ddp *d, double *wait_s, double *overlap_s)
{
    if (wait_s)
        *wait_s = d ? d->wait_s : 0;
    if (overlap_s)
        *overlap_s = d ? d->overlap_s : 0;
}

static void ddp_free_body(em_ddp *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->np; i++)
        em_remove_post_accumulate_grad_hook(d->params[i].t, on_grad, &d->params[i]);
    for (int k = 0; d->buckets && k < d->nb; k++) {
        if (d->buckets[k].work)
            em_dist_wait(d->buckets[k].work);
        em_release(d->buckets[k].flat);
        em_release(d->buckets[k].wire);
    }
    em_release(d->users);
    em_release(d->world);
    free(d->buckets);
    free(d->params);
    free(d);
}

void em_ddp_free(em_ddp *d)
{
    em__api_depth++;   /* tensors returned inside are released here, not by a scope */
    ddp_free_body(d);
    em__api_depth--;
}
