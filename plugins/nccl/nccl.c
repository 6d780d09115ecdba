/* plugins/nccl/nccl.c - the `nccl` communicator: collectives on CUDA tensors with NCCL.
 *
 * Device buffers in place (host_only is false): the core hands the CUDA tensor's own memory,
 * and stages any other tensor (a host one, another GPU's) onto this rank's GPU (nccl_device).
 * Bootstrapped through MPI: rank 0's ncclUniqueId is broadcast with MPI_Bcast, each rank uses
 * the GPU of its local rank (modulo the device count). Collectives are queued on a stream of
 * this plugin after the backend's work on the device has finished (em_synchronize), and a wait
 * polls an event against the deadline; past it the communicator is aborted (ncclCommAbort) and
 * the job ended with MPI_Abort. Not here: CUDA graphs, several GPUs per rank, NCCL's own
 * non-blocking error polling (ncclCommGetAsyncError is checked in wait).
 */
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <mpi.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ember/plugin.h"

typedef struct nccl_state {
    MPI_Comm mpi;
    ncclComm_t comm;
    cudaStream_t stream;
    int rank, size, device;
    bool we_initialised_mpi, started;
    char why[160];
} nccl_state;

static nccl_state g_state = {.mpi = MPI_COMM_NULL};

static int nccl_fail(const char *what, ncclResult_t r)
{
    return em_set_error(EM_ERR_PLUGIN, "nccl: %s failed on rank %d: %s", what, g_state.rank,
                        ncclGetErrorString(r));
}

static int cuda_fail(const char *what, cudaError_t e)
{
    return em_set_error(EM_ERR_DEVICE, "nccl: %s failed on rank %d: %s", what, g_state.rank,
                        cudaGetErrorString(e));
}

static const char *nccl_unavailable(void *ctx)
{
    nccl_state *s = ctx;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        snprintf(s->why, sizeof s->why, "no CUDA device (%s)",
                 e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return s->why;
    }
    return NULL;
}

static bool nccl_type(em_dtype dt, ncclDataType_t *t)
{
    switch (dt) {
    case EM_F32: *t = ncclFloat32; return true;
    case EM_F64: *t = ncclFloat64; return true;
    case EM_F16: *t = ncclFloat16; return true;
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 10, 0)
    case EM_BF16: *t = ncclBfloat16; return true;
#endif
    case EM_I64: *t = ncclInt64; return true;
    case EM_I32: *t = ncclInt32; return true;
    case EM_U8:
    case EM_BOOL: *t = ncclUint8; return true;
    default: return false;
    }
}

/* Sums of bool are logical or: max over 0/1 bytes. */
static ncclRedOp_t nccl_op(em_dtype dt, em_reduce_op op)
{
    return op == EM_REDUCE_MAX || dt == EM_BOOL ? ncclMax : ncclSum;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static int join_mpi(nccl_state *s)
{
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        Dl_info info;   /* Open MPI's components need libmpi's symbols global */
        int (*init)(int *, char ***) = MPI_Init;
        void *addr;
        memcpy(&addr, &init, sizeof addr);
        if (dladdr(addr, &info) && info.dli_fname)
            dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
            return em_set_error(EM_ERR_PLUGIN, "nccl: MPI_Init_thread failed");
        s->we_initialised_mpi = true;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &s->mpi);
    MPI_Comm_set_errhandler(s->mpi, MPI_ERRORS_RETURN);
    MPI_Comm_rank(s->mpi, &s->rank);
    MPI_Comm_size(s->mpi, &s->size);
    return EM_OK;
}

static int nccl_start(void *ctx, int *rank, int *size, int *local_rank)
{
    nccl_state *s = ctx;
    int rc = join_mpi(s);
    if (rc < 0)
        return rc;
    MPI_Comm node;
    int local = 0, ndev = 0;
    if (MPI_Comm_split_type(s->mpi, MPI_COMM_TYPE_SHARED, s->rank, MPI_INFO_NULL, &node) ==
        MPI_SUCCESS) {
        MPI_Comm_rank(node, &local);
        MPI_Comm_free(&node);
    }
    cudaError_t e = cudaGetDeviceCount(&ndev);
    if (e != cudaSuccess || ndev == 0)
        return e != cudaSuccess ? cuda_fail("cudaGetDeviceCount", e)
                                : em_set_error(EM_ERR_DEVICE, "nccl: no CUDA device");
    s->device = local % ndev;
    if ((e = cudaSetDevice(s->device)) != cudaSuccess)
        return cuda_fail("cudaSetDevice", e);
    ncclUniqueId id;
    ncclResult_t r;
    if (s->rank == 0 && (r = ncclGetUniqueId(&id)) != ncclSuccess)
        return nccl_fail("ncclGetUniqueId", r);
    if (MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, s->mpi) != MPI_SUCCESS)
        return em_set_error(EM_ERR_PLUGIN, "nccl: broadcasting the NCCL id failed");
    if ((r = ncclCommInitRank(&s->comm, s->size, id, s->rank)) != ncclSuccess)
        return nccl_fail("ncclCommInitRank", r);
    if ((e = cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking)) != cudaSuccess)
        return cuda_fail("cudaStreamCreate", e);
    s->started = true;
    *rank = s->rank;
    *size = s->size;
    *local_rank = local;
    return EM_OK;
}

static void nccl_finish(void *ctx)
{
    nccl_state *s = ctx;
    if (!s->started)
        return;
    cudaStreamSynchronize(s->stream);
    ncclCommDestroy(s->comm);
    cudaStreamDestroy(s->stream);
    MPI_Comm_free(&s->mpi);
    if (s->we_initialised_mpi)
        MPI_Finalize();
    s->started = false;
}

static void nccl_abort(void *ctx, int code, const char *msg)
{
    nccl_state *s = ctx;
    (void)msg;
    if (s->started)
        ncclCommAbort(s->comm);
    MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
    exit(code ? code : 1);
}

/* ---- collectives ---------------------------------------------------------------------------- */

/* Checks a buffer is CUDA memory of a supported dtype and orders the stream after the
 * backend's pending work on it. */
static int prepare(const char *what, const em_comm_buf *b, ncclDataType_t *t)
{
    char dev[32];
    em_device_str(b->device, dev, sizeof dev);
    if (strncmp(dev, "cuda", 4) != 0)
        return em_set_error(EM_ERR_DEVICE, "nccl: %s: the tensor is on %s; the nccl "
                                           "communicator takes CUDA tensors (use dist = mpi "
                                           "for others)",
                            what, dev);
    if (!nccl_type(b->dtype, t))
        return em_set_error(EM_ERR_UNSUPPORTED, "nccl: %s: no NCCL type for %s", what,
                            em_dtype_name(b->dtype));
    return em_synchronize(b->device);
}

/* Records the event that wait polls. */
static int enqueued(nccl_state *s, const char *what, ncclResult_t r, void **req)
{
    if (r != ncclSuccess)
        return nccl_fail(what, r);
    cudaEvent_t ev;
    cudaError_t e = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
    if (e == cudaSuccess)
        e = cudaEventRecord(ev, s->stream);
    if (e != cudaSuccess)
        return cuda_fail("cudaEventRecord", e);
    *req = ev;
    return EM_OK;
}

typedef enum coll_kind { COLL_ALL_REDUCE, COLL_BROADCAST, COLL_ALL_GATHER,
                         COLL_REDUCE_SCATTER } coll_kind;
static const char *const k_coll_names[] = {"all_reduce", "broadcast", "all_gather",
                                           "reduce_scatter"};

/* Enqueues one collective: send and recv are the same buffer for all_reduce and broadcast;
 * counts are as em_comm_ops documents (recv->count per rank for reduce_scatter). */
static int launch(nccl_state *s, coll_kind kind, const em_comm_buf *send, em_comm_buf *recv,
                  em_reduce_op op, int root, void **req)
{
    ncclDataType_t t;
    const char *what = k_coll_names[kind];
    int rc = prepare(what, send, &t);
    if (rc < 0)
        return rc;
    ncclRedOp_t rop = nccl_op(send->dtype, op);
    ncclResult_t r;
    switch (kind) {
    case COLL_ALL_REDUCE:
        r = ncclAllReduce(send->data, recv->data, send->count, t, rop, s->comm, s->stream);
        break;
    case COLL_BROADCAST:
        r = ncclBroadcast(send->data, recv->data, send->count, t, root, s->comm, s->stream);
        break;
    case COLL_ALL_GATHER:
        r = ncclAllGather(send->data, recv->data, send->count, t, s->comm, s->stream);
        break;
    default:
        r = ncclReduceScatter(send->data, recv->data, recv->count, t, rop, s->comm, s->stream);
        break;
    }
    return enqueued(s, what, r, req);
}

static int nccl_all_reduce(void *ctx, em_comm_buf *b, em_reduce_op op, void **req)
{
    return launch(ctx, COLL_ALL_REDUCE, b, b, op, 0, req);
}

static int nccl_broadcast(void *ctx, em_comm_buf *b, int root, void **req)
{
    return launch(ctx, COLL_BROADCAST, b, b, EM_REDUCE_SUM, root, req);
}

static int nccl_all_gather(void *ctx, const em_comm_buf *send, em_comm_buf *recv, void **req)
{
    return launch(ctx, COLL_ALL_GATHER, send, recv, EM_REDUCE_SUM, 0, req);
}

static int nccl_reduce_scatter(void *ctx, const em_comm_buf *send, em_comm_buf *recv,
                               em_reduce_op op, void **req)
{
    return launch(ctx, COLL_REDUCE_SCATTER, send, recv, op, 0, req);
}

/* A barrier through MPI (NCCL has none); completed before wait. */
static int nccl_barrier(void *ctx, void **req)
{
    nccl_state *s = ctx;
    if (MPI_Barrier(s->mpi) != MPI_SUCCESS)
        return em_set_error(EM_ERR_PLUGIN, "nccl: MPI_Barrier failed on rank %d", s->rank);
    return enqueued(s, "barrier", ncclSuccess, req);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int nccl_wait(void *ctx, void *req, double timeout_s, const char *what)
{
    nccl_state *s = ctx;
    cudaEvent_t ev = req;
    double deadline = now_s() + timeout_s;
    cudaError_t e;
    while ((e = cudaEventQuery(ev)) == cudaErrorNotReady) {
        ncclResult_t async = ncclSuccess;
        ncclCommGetAsyncError(s->comm, &async);
        if (async != ncclSuccess) {
            cudaEventDestroy(ev);
            return nccl_fail(what, async);
        }
        if (now_s() > deadline) {
            fprintf(stderr, "ember: nccl: %s timed out after %.0f s on rank %d of %d; ending "
                            "the job\n",
                    what, timeout_s, s->rank, s->size);
            fflush(stderr);
            nccl_abort(s, 1, NULL);
        }
        struct timespec nap = {0, 20000};
        nanosleep(&nap, NULL);
    }
    cudaEventDestroy(ev);
    return e == cudaSuccess ? EM_OK : cuda_fail(what, e);
}

/* The GPU this rank's communicator runs on (chosen in nccl_start): the core stages host
 * tensors and other GPUs' there. */
static int nccl_device(void *ctx, em_device *dev)
{
    nccl_state *s = ctx;
    char name[32];
    snprintf(name, sizeof name, "cuda:%d", s->device);
    *dev = em_device_parse(name);
    if (dev->index < 0)
        return em_set_error(EM_ERR_DEVICE, "nccl: the communicator runs on %s, which Ember's "
                                           "backends do not offer (is the cuda plugin loaded?)",
                            name);
    return EM_OK;
}

static const em_comm_ops nccl_ops = {
    .struct_size = sizeof(em_comm_ops),
    .name = "nccl",
    .host_only = false,
    .unavailable_reason = nccl_unavailable,
    .start = nccl_start,
    .all_reduce = nccl_all_reduce,
    .broadcast = nccl_broadcast,
    .all_gather = nccl_all_gather,
    .reduce_scatter = nccl_reduce_scatter,
    .barrier = nccl_barrier,
    .wait = nccl_wait,
    .abort = nccl_abort,
    .finish = nccl_finish,
    .device = nccl_device,
};

static int plugin_init(em_registry *reg)
{
    return em_register_communicator(reg, &nccl_ops, &g_state);
}

EM_PLUGIN_DEFINE(
    "nccl", "0.1", "communicator over NCCL for CUDA tensors (bootstrapped through MPI)",
    plugin_init, NULL)
