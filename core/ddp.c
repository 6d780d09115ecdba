/* core/ddp.c - DistributedDataParallel: parameters broadcast once, gradients averaged in
 * buckets whose all-reduce starts from autograd's post-accumulate-grad hooks.
 *
 * Buckets hold parameters in reverse registration order (the order backward usually produces
 * their gradients), up to bucket_bytes each and one dtype per bucket, as PyTorch's DDP does.
 * A bucket owns a flat contiguous CPU buffer: when the last of its gradients has been
 * accumulated, the gradients are copied into it and an asynchronous all-reduce (average)
 * starts while backward goes on; em_ddp_finish waits and copies the averages back into .grad.
 * Not here: PyTorch's find_unused_parameters (a parameter without a gradient is refused),
 * gradient-as-bucket-view (the copy in and out costs two memory passes per step).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define DEFAULT_BUCKET_BYTES ((size_t)25 << 20)

typedef struct ddp_bucket {
    int first, count;            /* slice of em_ddp.params (reverse order) */
    int64_t numel;
    em_dtype dtype;
    em_tensor *flat;             /* CPU, contiguous */
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
    bool seen;
} ddp_param;

struct em_ddp {
    em_module *m;
    int np, nb;
    ddp_param *params;
    ddp_bucket *buckets;
    bool sync;
    double wait_s, overlap_s;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int launch(em_ddp *d, ddp_bucket *b)
{
    char *base = em_data_ptr(b->flat);
    size_t es = em_dtype_size(b->dtype);
    for (int i = b->first; i < b->first + b->count; i++) {
        ddp_param *p = &d->params[i];
        em_tensor *g = em_grad(p->t);
        size_t nbytes = (size_t)em_numel(p->t) * es;
        if (em_copy_to_host(g, base + (size_t)p->offset * es, nbytes) < 0)
            return em_last_status();
    }
    b->work = em_dist_all_reduce_start(b->flat, EM_REDUCE_AVG);
    b->launched_at = now_s();
    return b->work ? EM_OK : em_last_status();
}

/* Runs on the backward thread after p's gradient was accumulated. A failure to launch is kept
 * for em_ddp_finish (a hook cannot fail the backward). */
static void on_grad(em_tensor *t, void *ctx)
{
    (void)t;
    ddp_param *p = ctx;
    em_ddp *d = p->d;
    if (!d->sync || p->seen)
        return;
    p->seen = true;
    ddp_bucket *b = &d->buckets[p->bucket];
    if (++b->ready == b->count && launch(d, b) < 0)
        em_warn("DistributedDataParallel: bucket %d: %s", p->bucket, em_last_error());
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
    for (int k = 0; k < d->nb; k++) {
        int64_t n = d->buckets[k].numel;
        d->buckets[k].flat =
            em__tensor_alloc((em_device){cpu->id, 0}, d->buckets[k].dtype, 1, &n);
        if (!d->buckets[k].flat)
            return em_last_status();
    }
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
    for (int i = n - 1; i >= 0; i--) {   /* reverse order, trainable parameters only */
        em_tensor *t = em_module_param(m, i);
        if (t && em_requires_grad(t))
            d->params[d->np++] = (ddp_param){d, t, em_module_param_name(m, i), 0, 0, false};
    }
    size_t cap = opts && opts->bucket_bytes ? opts->bucket_bytes : DEFAULT_BUCKET_BYTES;
    int rc = broadcast_state(m);
    if (rc == EM_OK)
        rc = build_buckets(d, cap);
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

static void reset_step(em_ddp *d)
{
    for (int i = 0; i < d->np; i++)
        d->params[i].seen = false;
    for (int k = 0; k < d->nb; k++)
        d->buckets[k].ready = 0;
}

/* Writes bucket b's averages back into the gradients. */
static int scatter_back(em_ddp *d, ddp_bucket *b)
{
    char *base = em_data_ptr(b->flat);
    size_t es = em_dtype_size(b->dtype);
    int rc = EM_OK;
    bool g = em_set_grad_enabled(false);
    for (int i = b->first; rc == EM_OK && i < b->first + b->count; i++) {
        ddp_param *p = &d->params[i];
        em_tensor *src = em_tensor_from_blob(base + (size_t)p->offset * es, b->dtype,
                                             em_ndim(p->t), em_shape(p->t), NULL, NULL);
        em_tensor *r = src ? em_copy_(em_grad(p->t), src) : NULL;
        if (!r)
            rc = em_last_status();
        em_release(r);
        em_release(src);
    }
    em_set_grad_enabled(g);
    return rc;
}

static int ddp_finish_body(em_ddp *d)
{
    if (!d)
        return em__null_arg("em_ddp_finish", "d");
    if (!d->sync)
        return EM_OK;
    double t0 = now_s();
    int rc = EM_OK;
    for (int i = 0; rc == EM_OK && i < d->np; i++)
        if (!d->params[i].seen)
            rc = em_set_error(EM_ERR_STATE,
                              "DistributedDataParallel: parameter '%s' received no gradient "
                              "in this backward; every parameter must take part in the loss "
                              "(unused parameters are not supported)",
                              d->params[i].name);
    for (int k = 0; k < d->nb; k++) {
        ddp_bucket *b = &d->buckets[k];
        if (rc == EM_OK && !b->work)
            rc = em_set_error(EM_ERR_STATE, "DistributedDataParallel: bucket %d was not "
                                            "launched (an error in a gradient hook)", k);
        if (!b->work)
            continue;
        d->overlap_s += t0 - b->launched_at;
        int w = em_dist_wait(b->work);
        b->work = NULL;
        if (rc == EM_OK && w < 0)
            rc = w;
        if (rc == EM_OK)
            rc = scatter_back(d, b);
    }
    d->wait_s += now_s() - t0;
    reset_step(d);
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
    reset_step(d);
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
    }
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
