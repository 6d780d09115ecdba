/* core/dist.c - the communicator registry, the process group and collectives on tensors.
 *
 * The core keeps the registered communicators, starts at most one (config, EMBER_DIST or the
 * launcher's environment), and turns tensor collectives into calls on contiguous buffers:
 * host memory for a host_only communicator (device tensors and strided views are staged
 * through a CPU copy), the communicator's own device for one that names it (NCCL's GPU: host
 * tensors and other devices' are staged there), the tensor's own buffer otherwise. It links
 * no MPI; a single process runs every collective as the identity.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_COMMS 8
#define DEFAULT_TIMEOUT_S 300.0

typedef struct comm_rec {
    const em_comm_ops *ops;
    void *ctx;
    em_plugin_rec *owner;
} comm_rec;

static comm_rec comms[MAX_COMMS];
static int ncomms;
static comm_rec *active;          /* the started communicator, or NULL */
static bool comm_dev_set;         /* active names the device its buffers must be on: */
static em_device comm_dev;
static bool dist_inited;
static int dist_rc;
static int g_rank, g_size = 1, g_local;

int em_register_communicator(em_registry *reg, const em_comm_ops *ops, void *ctx)
{
    if (!ops || ops->struct_size < offsetof(em_comm_ops, progress) || !ops->name ||
        !ops->name[0])
        return em_set_error(EM_ERR_INVALID, "em_register_communicator: incomplete table");
    if (!ops->start || !ops->all_reduce || !ops->broadcast || !ops->all_gather ||
        !ops->reduce_scatter || !ops->barrier || !ops->wait || !ops->abort)
        return em_set_error(EM_ERR_INVALID,
                            "em_register_communicator: '%s' lacks a required function",
                            ops->name);
    for (int i = 0; i < ncomms; i++)
        if (comms[i].ops && strcmp(comms[i].ops->name, ops->name) == 0)
            return em_set_error(EM_ERR_INVALID, "communicator '%s' is already registered",
                                ops->name);
    if (ncomms == MAX_COMMS)
        return em_set_error(EM_ERR_INVALID, "too many communicators (at most %d)", MAX_COMMS);
    comms[ncomms++] = (comm_rec){ops, ctx, reg ? reg->rec : NULL};
    return EM_OK;
}

/* Optional table slots, read only when the plugin's struct_size covers them. */
#define COMM_SLOT(c, field)                                                              \
    ((c)->ops->struct_size >= offsetof(em_comm_ops, field) + sizeof((c)->ops->field)     \
         ? (c)->ops->field                                                               \
         : NULL)

void em__dist_forget(em_plugin_rec *rec)
{
    for (int i = 0; i < ncomms; i++)
        if (comms[i].owner == rec)
            comms[i].ops = NULL;
}

void em__dist_describe(em_plugin_rec *rec, em_strbuf *sb)
{
    for (int i = 0; i < ncomms; i++)
        if (comms[i].ops && comms[i].owner == rec)
            em__sb_printf(sb, "%scommunicator %s", sb->len ? "; " : "", comms[i].ops->name);
}

void em__dist_shutdown(void)
{
    if (active && COMM_SLOT(active, finish))
        active->ops->finish(active->ctx);
    memset(comms, 0, sizeof comms);
    ncomms = 0;
    active = NULL;
    comm_dev_set = false;
    dist_inited = false;
    dist_rc = EM_OK;
    g_rank = g_local = 0;
    g_size = 1;
}

static const char *why_not(const comm_rec *c)
{
    const char *(*f)(void *) = COMM_SLOT(c, unavailable_reason);
    return f ? f(c->ctx) : NULL;
}

int em_dist_communicator_count(void) { return ncomms; }

const char *em_dist_communicator(int i, char *state, size_t size)
{
    if (i < 0 || i >= ncomms || !comms[i].ops)
        return NULL;
    const char *why = why_not(&comms[i]);
    if (&comms[i] == active)
        snprintf(state, size, "running: rank %d of %d (local rank %d)", g_rank, g_size,
                 g_local);
    else if (why)
        snprintf(state, size, "unavailable: %s", why);
    else
        snprintf(state, size, "available");
    return comms[i].ops->name;
}

static bool launched_by_mpi(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

static comm_rec *find_comm(const char *name)
{
    for (int i = 0; i < ncomms; i++)
        if (comms[i].ops && strcmp(comms[i].ops->name, name) == 0)
            return &comms[i];
    return NULL;
}

static int start(comm_rec *c)
{
    int rank = 0, size = 1, local = 0;
    int rc = c->ops->start(c->ctx, &rank, &size, &local);
    if (rc < 0)
        return rc;
    if (size < 1 || rank < 0 || rank >= size)
        return em_set_error(EM_ERR_PLUGIN, "communicator '%s' reported rank %d of %d",
                            c->ops->name, rank, size);
    comm_dev_set = false;
    if (!c->ops->host_only && COMM_SLOT(c, device)) {
        if ((rc = c->ops->device(c->ctx, &comm_dev)) < 0)
            return rc;
        if (!em__backend(comm_dev.backend))
            return em_set_error(EM_ERR_PLUGIN, "communicator '%s' named a device of no loaded "
                                               "backend", c->ops->name);
        comm_dev_set = true;
    }
    active = c;
    g_rank = rank;
    g_size = size;
    g_local = local;
    return EM_OK;
}

int em_dist_init(void)
{
    if (dist_inited)
        return dist_rc;
    dist_inited = true;
    const char *want = em_config_get("runtime.dist");
    if (want && (!*want || strcmp(want, "none") == 0))
        return dist_rc = EM_OK;
    if (want) {
        comm_rec *c = find_comm(want);
        if (!c) {
            const char *src = em_config_source("runtime.dist");
            return dist_rc = em_set_error(EM_ERR_PLUGIN,
                                          "dist: communicator '%s' (from %s) is not loaded "
                                          "(is its plugin built? see `ember info`)",
                                          want, src ? src : "config");
        }
        const char *why = why_not(c);
        if (why)
            return dist_rc = em_set_error(EM_ERR_PLUGIN, "dist: communicator '%s' cannot run: "
                                                         "%s", want, why);
        return dist_rc = start(c);
    }
    if (!launched_by_mpi())
        return dist_rc = EM_OK;
    comm_rec *c = find_comm("mpi");
    for (int i = 0; !c && i < ncomms; i++)
        if (comms[i].ops && comms[i].ops->host_only && !why_not(&comms[i]))
            c = &comms[i];
    if (!c) {
        em_warn("launched by an MPI launcher but no communicator plugin is loaded: running as "
                "a single process (build the 'mpi' plugin, see docs/distributed.md)");
        return dist_rc = EM_OK;
    }
    return dist_rc = start(c);
}

bool em_dist_is_active(void) { return active != NULL; }
int em_dist_rank(void) { return g_rank; }
int em_dist_size(void) { return g_size; }
int em_dist_local_rank(void) { return g_local; }
const char *em_dist_backend(void) { return active ? active->ops->name : NULL; }

_Noreturn void em_dist_abort(int code, const char *msg)
{
    fprintf(stderr, "ember: rank %d of %d: %s\n", g_rank, g_size, msg ? msg : "aborting");
    fflush(stderr);
    if (active)
        active->ops->abort(active->ctx, code, msg);
    exit(code);
}

static double timeout_s(void)
{
    const char *s = getenv("EMBER_DIST_TIMEOUT");
    double t = s ? strtod(s, NULL) : 0;
    return t > 0 ? t : DEFAULT_TIMEOUT_S;
}

/* ---- tensor collectives -------------------------------------------------------------------- */

struct em_dist_work {
    const char *what;       /* "all_reduce" */
    void *req;              /* the communicator's request; NULL when nothing is in flight */
    em_tensor *t;           /* the caller's tensor (retained), written back after the wait */
    em_tensor *stage;       /* a contiguous copy the communicator works on, or NULL */
    em_tensor *extra;       /* all_gather/reduce_scatter: the result buffer (retained) */
    bool avg;               /* divide by size after the sum */
};

/* Describes t's data for the communicator, staging it when the communicator cannot read it in
 * place. `copy_in` fills the stage with t's values (not needed for a pure output). */
static int comm_buf(em_tensor *t, bool copy_in, em_comm_buf *b, em_tensor **stage)
{
    *stage = NULL;
    em_device dev = em__tensor_device(t);
    em_backend *be = em__backend(dev.backend);
    /* where the communicator reads: host memory, its own device, or anywhere */
    bool usable = active->ops->host_only ? be->ops->host_accessible
                  : comm_dev_set ? dev.backend == comm_dev.backend && dev.index == comm_dev.index
                                 : true;
    if (!em_is_contiguous(t) || !usable) {
        em_device target = comm_dev_set ? comm_dev : dev;
        if (active->ops->host_only) {
            em_backend *cpu = em__cpu_backend();
            if (!cpu)
                return EM_ERR_DEVICE;
            target = (em_device){cpu->id, 0};
        }
        *stage = em__tensor_alloc(target, t->dtype, t->ndim, t->shape);
        if (!*stage)
            return em_last_status();
        if (copy_in) {
            bool g = em_set_grad_enabled(false);
            em_tensor *r = em_copy_(*stage, t);
            em_set_grad_enabled(g);
            if (!r)
                return em_last_status();
            em_release(r);
        }
        t = *stage;
        be = em__backend(em__tensor_device(t).backend);
    }
    size_t es = em_dtype_size(t->dtype);
    b->data = (char *)t->storage->buf + (size_t)t->offset * es;
    b->count = (size_t)t->numel;
    b->dtype = t->dtype;
    b->device = em__tensor_device(t);
    return EM_OK;
}

static em_dist_work *work_new(const char *what, em_tensor *t)
{
    em_dist_work *w = calloc(1, sizeof *w);
    if (!w)
        return em_set_error(EM_ERR_NOMEM, "dist %s: out of memory", what), NULL;
    w->what = what;
    if (t) {
        em_retain(t);
        w->t = t;
    }
    return w;
}

static void work_free(em_dist_work *w)
{
    em_release(w->t);
    em_release(w->stage);
    em_release(w->extra);
    free(w);
}

static em_dist_work *work_fail(em_dist_work *w)
{
    work_free(w);
    return NULL;
}

static int check_tensor(const char *what, em_tensor *t)
{
    if (em__require_init(what) < 0)
        return EM_ERR_STATE;
    if (!t)
        return em__null_arg(what, "t");
    return EM_OK;
}

static em_dist_work *all_reduce_start_body(em_tensor *t, em_reduce_op op)
{
    const char *what = "all_reduce";
    if (check_tensor(what, t) < 0)
        return NULL;
    if (op < EM_REDUCE_SUM || op >= EM_REDUCE_OP_COUNT)
        return em_set_error(EM_ERR_INVALID, "all_reduce: unknown reduce op %d", (int)op), NULL;
    if (op == EM_REDUCE_AVG && !em_dtype_is_float(t->dtype))
        return em_set_error(EM_ERR_INVALID, "all_reduce: average needs a floating dtype, got "
                                            "%s", em_dtype_name(t->dtype)),
               NULL;
    em_dist_work *w = work_new(what, t);
    if (!w || !active || t->numel == 0)
        return w;
    em_comm_buf b;
    if (comm_buf(t, true, &b, &w->stage) < 0)
        return work_fail(w);
    w->avg = op == EM_REDUCE_AVG;
    if (active->ops->all_reduce(active->ctx, &b, w->avg ? EM_REDUCE_SUM : op, &w->req) < 0)
        return work_fail(w);
    return w;
}

em_dist_work *em_dist_all_reduce_start(em_tensor *t, em_reduce_op op)
{
    EM_UNSCOPED(em_dist_work *, all_reduce_start_body(t, op));
}

static em_dist_work *broadcast_start_body(em_tensor *t, int root)
{
    const char *what = "broadcast";
    if (check_tensor(what, t) < 0)
        return NULL;
    if (root < 0 || root >= g_size)
        return em_set_error(EM_ERR_INVALID, "broadcast: root %d is not a rank (size %d)", root,
                            g_size),
               NULL;
    em_dist_work *w = work_new(what, t);
    if (!w || !active || t->numel == 0)
        return w;
    em_comm_buf b;
    if (comm_buf(t, g_rank == root, &b, &w->stage) < 0)
        return work_fail(w);
    if (active->ops->broadcast(active->ctx, &b, root, &w->req) < 0)
        return work_fail(w);
    return w;
}

em_dist_work *em_dist_broadcast_start(em_tensor *t, int root)
{
    EM_UNSCOPED(em_dist_work *, broadcast_start_body(t, root));
}

int em__inplace_status(em_tensor *r)
{
    if (!r)
        return em_last_status();
    em_release(r);
    return EM_OK;
}

static int wait_body(em_dist_work *w)
{
    if (!w)
        return em__null_arg("em_dist_wait", "w");
    int rc = EM_OK;
    if (w->req)
        rc = active->ops->wait(active->ctx, w->req, timeout_s(), w->what);
    w->req = NULL;
    /* the sum lands in the caller's tensor (from the stage, if any), which an average then
     * divides: the communicator's own device need not have the kernel */
    em_tensor *res = w->t ? w->t : w->stage;
    bool g = em_set_grad_enabled(false);
    if (rc == EM_OK && w->stage && w->t)
        rc = em__inplace_status(em_copy_(w->t, w->stage));
    else if (rc == EM_OK && res && !w->stage && active)
        atomic_fetch_add(&res->storage->version, 1);   /* written behind the dispatcher */
    if (rc == EM_OK && res && w->avg)
        rc = em__inplace_status(em_mul_scalar_(res, 1.0 / g_size));
    em_set_grad_enabled(g);
    work_free(w);
    return rc;
}

int em_dist_wait(em_dist_work *w)
{
    EM_UNSCOPED(int, wait_body(w));
}

int em_dist_all_reduce(em_tensor *t, em_reduce_op op)
{
    em_dist_work *w = em_dist_all_reduce_start(t, op);
    return w ? em_dist_wait(w) : em_last_status();
}

int em_dist_broadcast(em_tensor *t, int root)
{
    em_dist_work *w = em_dist_broadcast_start(t, root);
    return w ? em_dist_wait(w) : em_last_status();
}

int em_dist_barrier(void)
{
    if (em__require_init("barrier") < 0)
        return EM_ERR_STATE;
    if (!active)
        return EM_OK;
    em_dist_work *w = work_new("barrier", NULL);
    if (!w)
        return em_last_status();
    if (active->ops->barrier(active->ctx, &w->req) < 0) {
        work_free(w);
        return em_last_status();
    }
    return em_dist_wait(w);
}

/* all_gather and reduce_scatter: `send` (contiguous, staged as needed) into a fresh output of
 * shape out_shape on t's device; the communicator writes a contiguous buffer `out_stage`. */
static em_tensor *gather_like(const char *what, em_tensor *t, int64_t d0, em_reduce_op op)
{
    int64_t shape[EM_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[0] = d0;
    em_tensor *out = em__tensor_alloc(em__tensor_device(t), t->dtype, t->ndim, shape);
    em_dist_work *w = out ? work_new(what, out) : NULL;
    if (!w) {
        em_release(out);
        return NULL;
    }
    em_tensor *in_stage = NULL;
    em_comm_buf sb, rb;
    int rc = comm_buf(t, true, &sb, &in_stage);
    if (rc == EM_OK)
        rc = comm_buf(out, false, &rb, &w->stage);
    w->extra = in_stage;   /* kept alive until the wait */
    if (rc == EM_OK && strcmp(what, "all_gather") == 0)
        rc = active->ops->all_gather(active->ctx, &sb, &rb, &w->req);
    else if (rc == EM_OK) {
        w->avg = op == EM_REDUCE_AVG;
        rc = active->ops->reduce_scatter(active->ctx, &sb, &rb, w->avg ? EM_REDUCE_SUM : op,
                                         &w->req);
    }
    if (rc < 0) {
        work_free(w);
        em_release(out);
        return NULL;
    }
    if (em_dist_wait(w) < 0) {
        em_release(out);
        return NULL;
    }
    return out;
}

static em_tensor *all_gather_body(em_tensor *t)
{
    if (check_tensor("all_gather", t) < 0)
        return NULL;
    if (t->ndim == 0)
        return em_set_error(EM_ERR_INVALID, "all_gather: needs at least one dimension"), NULL;
    if (!active)
        return em_clone(t);
    return gather_like("all_gather", t, t->shape[0] * g_size, EM_REDUCE_SUM);
}

em_tensor *em_dist_all_gather(em_tensor *t)
{
    EM_WRAP(all_gather_body(t));
}

static em_tensor *reduce_scatter_body(em_tensor *t, em_reduce_op op)
{
    if (check_tensor("reduce_scatter", t) < 0)
        return NULL;
    if (t->ndim == 0 || t->shape[0] % g_size != 0)
        return em_set_error(EM_ERR_INVALID, "reduce_scatter: dim 0 (%lld) must divide by the "
                                            "group size %d",
                            t->ndim ? (long long)t->shape[0] : 0LL, g_size),
               NULL;
    if (op == EM_REDUCE_AVG && !em_dtype_is_float(t->dtype))
        return em_set_error(EM_ERR_INVALID, "reduce_scatter: average needs a floating dtype"),
               NULL;
    if (!active)
        return em_clone(t);
    return gather_like("reduce_scatter", t, t->shape[0] / g_size, op);
}

em_tensor *em_dist_reduce_scatter(em_tensor *t, em_reduce_op op)
{
    EM_WRAP(reduce_scatter_body(t, op));
}

int em_dist_bench_baseline(em_tensor *t, int iters, double *seconds)
{
    const char *fn = "em_dist_bench_baseline";
    if (check_tensor(fn, t) < 0)
        return em_last_status();
    int (*f)(void *, void *, size_t, em_dtype, int, double *) =
        active ? COMM_SLOT(active, bench_all_reduce) : NULL;
    if (!f)
        return em_set_error(EM_ERR_UNSUPPORTED, "%s: %s", fn,
                            active ? "the communicator offers no baseline"
                                   : "no communicator is running");
    void *p = em_data_ptr(t);
    if (!p || !em_is_contiguous(t))
        return em_set_error(EM_ERR_INVALID, "%s: needs a contiguous CPU tensor", fn);
    return f(active->ctx, p, (size_t)t->numel, t->dtype, iters, seconds);
}

/* Lets the communicator progress outstanding requests (from autograd hooks). */
void em__dist_progress(void)
{
    if (active && COMM_SLOT(active, progress))
        active->ops->progress(active->ctx);
}
