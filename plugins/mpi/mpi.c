/* plugins/mpi/mpi.c - the `mpi` communicator: Ember's collectives on MPI (Open MPI, MPICH).
 *
 * Host buffers only (the core stages device tensors through the host). Every collective is a
 * nonblocking MPI call (MPI_Iallreduce, ...) on a duplicate of MPI_COMM_WORLD with
 * MPI_ERRORS_RETURN, so MPI errors come back as Ember errors; wait polls MPI_Test against a
 * deadline and, past it, names the collective and the rank and ends the job with MPI_Abort
 * (a job where a rank died cannot continue; the point is that nothing hangs). float16 and
 * bfloat16 reduce through user-defined MPI ops that add in float32.
 */
#include <dlfcn.h>
#include <mpi.h>
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

/* ---- float16 / bfloat16 reductions ------------------------------------------------------ */

#define HALF_OP(name, to32, from32, combine)                                             \
    static void name(void *in, void *inout, int *len, MPI_Datatype *dt)                  \
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
        err = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
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

/* ---- collectives ---------------------------------------------------------------------------- */

static int new_req(const char *what, int err, MPI_Request r, void **req)
{
    if (err != MPI_SUCCESS)
        return mpi_fail(what, err);
    MPI_Request *p = malloc(sizeof *p);
    if (!p) {
        MPI_Wait(&r, MPI_STATUS_IGNORE);
        return em_set_error(EM_ERR_NOMEM, "mpi: out of memory");
    }
    *p = r;
    *req = p;
    return EM_OK;
}

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

static int mpi_all_reduce(void *ctx, em_comm_buf *b, em_reduce_op op, void **req)
{
    comm_state *s = ctx;
    int rc = check_type("all_reduce", b->dtype, b->count);
    if (rc < 0)
        return rc;
    MPI_Request r;
    int err = MPI_Iallreduce(MPI_IN_PLACE, b->data, (int)b->count, mpi_type(b->dtype),
                             mpi_op(b->dtype, op), s->comm, &r);
    return new_req("MPI_Iallreduce", err, r, req);
}

static int mpi_broadcast(void *ctx, em_comm_buf *b, int root, void **req)
{
    comm_state *s = ctx;
    int rc = check_type("broadcast", b->dtype, b->count);
    if (rc < 0)
        return rc;
    MPI_Request r;
    int err = MPI_Ibcast(b->data, (int)b->count, mpi_type(b->dtype), root, s->comm, &r);
    return new_req("MPI_Ibcast", err, r, req);
}

static int mpi_all_gather(void *ctx, const em_comm_buf *send, em_comm_buf *recv, void **req)
{
    comm_state *s = ctx;
    int rc = check_type("all_gather", send->dtype, recv->count);
    if (rc < 0)
        return rc;
    MPI_Request r;
    MPI_Datatype t = mpi_type(send->dtype);
    int err = MPI_Iallgather(send->data, (int)send->count, t, recv->data, (int)send->count, t,
                             s->comm, &r);
    return new_req("MPI_Iallgather", err, r, req);
}

static int mpi_reduce_scatter(void *ctx, const em_comm_buf *send, em_comm_buf *recv,
                              em_reduce_op op, void **req)
{
    comm_state *s = ctx;
    int rc = check_type("reduce_scatter", send->dtype, send->count);
    if (rc < 0)
        return rc;
    MPI_Request r;
    int err = MPI_Ireduce_scatter_block(send->data, recv->data, (int)recv->count,
                                        mpi_type(send->dtype), mpi_op(send->dtype, op),
                                        s->comm, &r);
    return new_req("MPI_Ireduce_scatter_block", err, r, req);
}

static int mpi_barrier(void *ctx, void **req)
{
    comm_state *s = ctx;
    MPI_Request r;
    int err = MPI_Ibarrier(s->comm, &r);   /* before new_req reads r */
    return new_req("MPI_Ibarrier", err, r, req);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Polls the request; after a short spin it sleeps between polls so that oversubscribed ranks
 * (more ranks than cores) leave the CPU to the rank that has work. */
static int mpi_wait(void *ctx, void *req, double timeout_s, const char *what)
{
    comm_state *s = ctx;
    MPI_Request *r = req;
    double deadline = now_s() + timeout_s;
    int done = 0, err = MPI_SUCCESS;
    for (long spins = 0; !done; spins++) {
        if ((err = MPI_Test(r, &done, MPI_STATUS_IGNORE)) != MPI_SUCCESS)
            break;
        if (done)
            break;
        if (spins > 200) {
            struct timespec nap = {0, 50000};
            nanosleep(&nap, NULL);
            if ((spins & 255) == 0 && now_s() > deadline) {
                char msg[256];
                snprintf(msg, sizeof msg,
                         "mpi: %s timed out after %.0f s on rank %d of %d (another rank "
                         "died or stopped calling collectives); ending the job",
                         what, timeout_s, s->rank, s->size);
                fprintf(stderr, "ember: %s\n", msg);
                fflush(stderr);
                em_set_error(EM_ERR_STATE, "%s", msg);
                MPI_Abort(s->comm, 1);
                exit(1);
            }
        }
    }
    free(r);
    if (err != MPI_SUCCESS) {
        char name[64];
        snprintf(name, sizeof name, "%s (MPI_Test)", what);
        return mpi_fail(name, err);
    }
    return EM_OK;
}

static void mpi_progress(void *ctx)
{
    comm_state *s = ctx;
    int flag;
    if (s->started)
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, s->comm, &flag, MPI_STATUS_IGNORE);
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
    .progress = mpi_progress,
    .finish = mpi_finish,
};

static int plugin_init(em_registry *reg) { return em_register_communicator(reg, &mpi_ops, &g_state); }

__attribute__((visibility("default"))) const em_plugin *ember_plugin(void);
const em_plugin *ember_plugin(void)
{
    static const em_plugin desc = EM_PLUGIN_DESCRIPTOR_INIT(
        "mpi", "0.1", "communicator over MPI (host buffers; device tensors staged)",
        plugin_init, NULL);
    return &desc;
}
