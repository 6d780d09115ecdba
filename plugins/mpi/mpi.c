/* plugins/mpi/mpi.c - the `mpi` communicator: Ember's collectives on MPI (Open MPI, MPICH).
 *
 * Host buffers only (the core stages device tensors through the host). Collectives are queued
 * to one communication thread that runs them as blocking MPI calls on a duplicate of
 * MPI_COMM_WORLD with MPI_ERRORS_RETURN, so MPI errors come back as Ember errors and
 * communication progresses while the caller computes; a wait has a deadline and, past it,
 * names the collective and the rank and ends the job with MPI_Abort (a job where a rank died
 * cannot continue; the point is that nothing hangs). float16 and bfloat16 reduce through
 * user-defined MPI ops that add in float32. MPI is initialised with MPI_THREAD_MULTIPLE (the
 * thread calls MPI while the main thread may call MPI_Abort); SERIALIZED is enough otherwise.
 */
#include <dlfcn.h>
#include <mpi.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ember/plugin.h"

typedef struct comm_state {
    MPI_Comm comm;
    int rank, size;
    bool we_initialised;
    bool started;
    MPI_Op f16_sum, f16_max, bf16_sum, bf16_max;
} comm_state;

static comm_state g_state = {.comm = MPI_COMM_NULL};

static int worker_start(comm_state *s);   /* the communication thread, below */
static void worker_stop(void);

/* ---- float16 / bfloat16 reductions ------------------------------------------------------ */

/* The reductions run over whole buckets of gradients (bf16 compression in DDP): an AVX2 clone
 * picked at load time where the CPU has it, and meson.build's flags let the rounding's selects
 * vectorise; four times the scalar loop's speed, the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HALF_OP_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define HALF_OP_CLONES
#endif

#define HALF_OP(name, to32, from32, combine)                                             \
    HALF_OP_CLONES static void name(void *in, void *inout, int *len, MPI_Datatype *dt)   \
    {                                                                                    \
        (void)dt;                                                                        \
        const uint16_t *a = in;                                                          \
        uint16_t *b = inout;                                                             \
        for (int i = 0; i < *len; i++) {                                                 \
            float x = to32(a[i]), y = to32(b[i]);                                        \
            b[i] = from32(combine);                                                      \
        }                                                                                \
    }
HALF_OP(f16_sum, em_f16_to_f32, em_f32_to_f16, x + y)
HALF_OP(f16_max, em_f16_to_f32, em_f32_to_f16, x > y || y != y ? x : y)
HALF_OP(bf16_sum, em_bf16_to_f32, em_f32_to_bf16, x + y)
HALF_OP(bf16_max, em_bf16_to_f32, em_f32_to_bf16, x > y || y != y ? x : y)

static int mpi_fail(const char *what, int err)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(err, msg, &len);
    return em_set_error(EM_ERR_PLUGIN, "mpi: %s failed on rank %d: %.*s", what, g_state.rank,
                        len, msg);
}

static MPI_Datatype mpi_type(em_dtype dt)
{
    switch (dt) {
    case EM_F32: return MPI_FLOAT;
    case EM_F64: return MPI_DOUBLE;
    case EM_F16:
    case EM_BF16: return MPI_UINT16_T;
    case EM_I64: return MPI_INT64_T;
    case EM_I32: return MPI_INT32_T;
    case EM_U8:
    case EM_BOOL: return MPI_UINT8_T;
    default: return MPI_DATATYPE_NULL;
    }
}

static MPI_Op mpi_op(em_dtype dt, em_reduce_op op)
{
    bool sum = op == EM_REDUCE_SUM;
    switch (dt) {
    case EM_F16: return sum ? g_state.f16_sum : g_state.f16_max;
    case EM_BF16: return sum ? g_state.bf16_sum : g_state.bf16_max;
    case EM_BOOL: return sum ? MPI_LOR : MPI_MAX;
    default: return sum ? MPI_SUM : MPI_MAX;
    }
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

/* The plugin is dlopen'ed RTLD_LOCAL; Open MPI's own components expect libmpi's symbols to be
 * global, so libmpi is promoted to RTLD_GLOBAL before MPI_Init. */
static void promote_libmpi(void)
{
    Dl_info info;
    int (*init)(int *, char ***) = MPI_Init;
    void *addr;
    memcpy(&addr, &init, sizeof addr);
    if (dladdr(addr, &info) && info.dli_fname)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
}

static int mpi_start(void *ctx, int *rank, int *size, int *local_rank)
{
    comm_state *s = ctx;
    int inited = 0, provided = 0, err;
    MPI_Initialized(&inited);
    if (!inited) {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (finalized)
            return em_set_error(EM_ERR_STATE, "mpi: MPI was finalised in this process (a "
                                              "process can join one job only)");
        promote_libmpi();
        err = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
        if (err != MPI_SUCCESS)
            return em_set_error(EM_ERR_PLUGIN, "mpi: MPI_Init_thread failed (%d)", err);
        s->we_initialised = true;
    } else {
        MPI_Query_thread(&provided);
    }
    if (provided < MPI_THREAD_SERIALIZED)
        em_warn("mpi: the MPI library gives thread level %d, below MPI_THREAD_SERIALIZED",
                provided);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if ((err = MPI_Comm_dup(MPI_COMM_WORLD, &s->comm)) != MPI_SUCCESS)
        return mpi_fail("MPI_Comm_dup", err);
    MPI_Comm_set_errhandler(s->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(s->comm, &s->rank);
    MPI_Comm_size(s->comm, &s->size);
    MPI_Comm node;
    int local = 0;
    if (MPI_Comm_split_type(s->comm, MPI_COMM_TYPE_SHARED, s->rank, MPI_INFO_NULL, &node) ==
        MPI_SUCCESS) {
        MPI_Comm_rank(node, &local);
        MPI_Comm_free(&node);
    }
    MPI_Op_create(f16_sum, 1, &s->f16_sum);
    MPI_Op_create(f16_max, 1, &s->f16_max);
    MPI_Op_create(bf16_sum, 1, &s->bf16_sum);
    MPI_Op_create(bf16_max, 1, &s->bf16_max);
    int rc = worker_start(s);
    if (rc < 0)
        return rc;
    s->started = true;
    *rank = s->rank;
    *size = s->size;
    *local_rank = local;
    return EM_OK;
}

static void mpi_finish(void *ctx)
{
    comm_state *s = ctx;
    if (!s->started)
        return;
    worker_stop();
    MPI_Op_free(&s->f16_sum);
    MPI_Op_free(&s->f16_max);
    MPI_Op_free(&s->bf16_sum);
    MPI_Op_free(&s->bf16_max);
    MPI_Comm_free(&s->comm);
    if (s->we_initialised)
        MPI_Finalize();
    s->started = false;
}

static void mpi_abort(void *ctx, int code, const char *msg)
{
    comm_state *s = ctx;
    (void)msg;   /* the core printed it with the rank */
    MPI_Abort(s->started ? s->comm : MPI_COMM_WORLD, code ? code : 1);
    exit(code ? code : 1);   /* MPI_Abort does not return; this is for a broken MPI */
}

/* ---- the communication thread ------------------------------------------------------------ */

/* Collectives run on one worker thread as blocking MPI calls, in the order they were started
 * (the order every rank starts them in). Blocking calls use the library's tuned algorithms and
 * progress on their own while the caller computes (Open MPI's nonblocking collectives advance
 * only inside MPI calls and ran at half the bandwidth here), and a wait is a condition
 * variable with a deadline, so a timeout never depends on MPI returning. */
typedef enum job_kind { JOB_ALL_REDUCE, JOB_BROADCAST, JOB_ALL_GATHER, JOB_REDUCE_SCATTER,
                        JOB_BARRIER } job_kind;

typedef struct job {
    job_kind kind;
    const void *send;
    void *buf;
    int count;
    MPI_Datatype type;
    MPI_Op op;
    int root;
    int err;
    bool done;
    struct job *next;
} job;

typedef struct worker {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    job *head, *tail;
    bool running, stop;
} worker;

static worker g_worker = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int run_job(comm_state *s, job *j)
{
    switch (j->kind) {
    case JOB_ALL_REDUCE:
        return MPI_Allreduce(MPI_IN_PLACE, j->buf, j->count, j->type, j->op, s->comm);
    case JOB_BROADCAST: return MPI_Bcast(j->buf, j->count, j->type, j->root, s->comm);
    case JOB_ALL_GATHER:
        return MPI_Allgather(j->send, j->count, j->type, j->buf, j->count, j->type, s->comm);
    case JOB_REDUCE_SCATTER:
        return MPI_Reduce_scatter_block(j->send, j->buf, j->count, j->type, j->op, s->comm);
    default: return MPI_Barrier(s->comm);
    }
}

static void *worker_main(void *arg)
{
    comm_state *s = arg;
    worker *w = &g_worker;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stop)
            pthread_cond_wait(&w->work, &w->mu);
        if (!w->head)
            break;
        job *j = w->head;
        w->head = j->next;
        if (!w->head)
            w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        int err = run_job(s, j);
        pthread_mutex_lock(&w->mu);
        j->err = err;
        j->done = true;
        pthread_cond_broadcast(&w->done);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int worker_start(comm_state *s)
{
    worker *w = &g_worker;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* deadlines immune to clock changes */
    pthread_cond_init(&w->done, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&w->work, NULL);
    w->stop = false;
    if (pthread_create(&w->thread, NULL, worker_main, s) != 0)
        return em_set_error(EM_ERR_INTERNAL, "mpi: cannot start the communication thread");
    w->running = true;
    return EM_OK;
}

/* Runs every job already queued, then joins the thread. */
static void worker_stop(void)
{
    worker *w = &g_worker;
    if (!w->running)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->done);
    w->running = false;
}

/* ---- collectives ---------------------------------------------------------------------------- */

static int check_type(const char *what, em_dtype dt, size_t count)
{
    if (mpi_type(dt) == MPI_DATATYPE_NULL)
        return em_set_error(EM_ERR_UNSUPPORTED, "mpi: %s: no MPI type for %s", what,
                            em_dtype_name(dt));
    if (count > (size_t)0x7fffffff)
        return em_set_error(EM_ERR_UNSUPPORTED, "mpi: %s: %zu elements is more than MPI's "
                                                "int count allows",
                            what, count);
    return EM_OK;
}

/* Queues a job built from `proto` for the communication thread; *req receives it. */
static int submit(const char *what, const job *proto, em_dtype dt, size_t count, void **req)
{
    if (proto->kind != JOB_BARRIER) {
        int rc = check_type(what, dt, count);
        if (rc < 0)
            return rc;
    }
    job *j = malloc(sizeof *j);
    if (!j)
        return em_set_error(EM_ERR_NOMEM, "mpi: %s: out of memory", what);
    *j = *proto;
    j->next = NULL;
    j->done = false;
    worker *w = &g_worker;
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    *req = j;
    return EM_OK;
}

static int mpi_all_reduce(void *ctx, em_comm_buf *b, em_reduce_op op, void **req)
{
    (void)ctx;
    job j = {.kind = JOB_ALL_REDUCE, .buf = b->data, .count = (int)b->count,
             .type = mpi_type(b->dtype), .op = mpi_op(b->dtype, op)};
    return submit("all_reduce", &j, b->dtype, b->count, req);
}

static int mpi_broadcast(void *ctx, em_comm_buf *b, int root, void **req)
{
    (void)ctx;
    job j = {.kind = JOB_BROADCAST, .buf = b->data, .count = (int)b->count,
             .type = mpi_type(b->dtype), .root = root};
    return submit("broadcast", &j, b->dtype, b->count, req);
}

static int mpi_all_gather(void *ctx, const em_comm_buf *send, em_comm_buf *recv, void **req)
{
    (void)ctx;
    job j = {.kind = JOB_ALL_GATHER, .send = send->data, .buf = recv->data,
             .count = (int)send->count, .type = mpi_type(send->dtype)};
    return submit("all_gather", &j, send->dtype, recv->count, req);
}

static int mpi_reduce_scatter(void *ctx, const em_comm_buf *send, em_comm_buf *recv,
                              em_reduce_op op, void **req)
{
    (void)ctx;
    job j = {.kind = JOB_REDUCE_SCATTER, .send = send->data, .buf = recv->data,
             .count = (int)recv->count, .type = mpi_type(send->dtype),
             .op = mpi_op(send->dtype, op)};
    return submit("reduce_scatter", &j, send->dtype, send->count, req);
}

static int mpi_barrier(void *ctx, void **req)
{
    (void)ctx;
    job j = {.kind = JOB_BARRIER};
    return submit("barrier", &j, EM_F32, 0, req);
}

/* Reports a collective that did not finish in time and ends the job: a rank that died or
 * stopped calling collectives cannot be waited for, and the others must not hang. */
static _Noreturn void time_out(comm_state *s, const char *what, double timeout_s)
{
    char msg[256];
    snprintf(msg, sizeof msg,
             "mpi: %s timed out after %.0f s on rank %d of %d (another rank died or stopped "
             "calling collectives); ending the job",
             what, timeout_s, s->rank, s->size);
    fprintf(stderr, "ember: %s\n", msg);
    fflush(stderr);
    em_set_error(EM_ERR_STATE, "%s", msg);
    MPI_Abort(s->comm, 1);
    exit(1);
}

static int mpi_wait(void *ctx, void *req, double timeout_s, const char *what)
{
    comm_state *s = ctx;
    job *j = req;
    worker *w = &g_worker;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)timeout_s;
    pthread_mutex_lock(&w->mu);
    while (!j->done)
        if (pthread_cond_timedwait(&w->done, &w->mu, &deadline) == ETIMEDOUT && !j->done) {
            pthread_mutex_unlock(&w->mu);
            time_out(s, what, timeout_s);
        }
    pthread_mutex_unlock(&w->mu);
    int err = j->err;
    free(j);
    if (err != MPI_SUCCESS) {
        char name[64];
        snprintf(name, sizeof name, "%s", what);
        return mpi_fail(name, err);
    }
    return EM_OK;
}

static int mpi_bench_all_reduce(void *ctx, void *buf, size_t count, em_dtype dtype, int iters,
                                double *seconds)
{
    comm_state *s = ctx;
    int rc = check_type("bench", dtype, count);
    if (rc < 0)
        return rc;
    double t0 = MPI_Wtime();
    for (int i = 0; i < iters; i++) {
        int err = MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, mpi_type(dtype),
                                mpi_op(dtype, EM_REDUCE_SUM), s->comm);
        if (err != MPI_SUCCESS)
            return mpi_fail("MPI_Allreduce", err);
    }
    *seconds = (MPI_Wtime() - t0) / (iters > 0 ? iters : 1);
    return EM_OK;
}

static const em_comm_ops mpi_ops = {
    .struct_size = sizeof(em_comm_ops),
    .name = "mpi",
    .host_only = true,
    .start = mpi_start,
    .all_reduce = mpi_all_reduce,
    .broadcast = mpi_broadcast,
    .all_gather = mpi_all_gather,
    .reduce_scatter = mpi_reduce_scatter,
    .barrier = mpi_barrier,
    .wait = mpi_wait,
    .abort = mpi_abort,
    .finish = mpi_finish,
    .bench_all_reduce = mpi_bench_all_reduce,
};

static int plugin_init(em_registry *reg) { return em_register_communicator(reg, &mpi_ops, &g_state); }

EM_PLUGIN_DEFINE(
    "mpi", "0.1", "communicator over MPI (host buffers; device tensors staged)",
    plugin_init, NULL)
