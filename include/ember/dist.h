/* ember/dist.h - process groups, collectives on tensors, and data-parallel training.
 *
 * A process group is the set of processes of one job (launched by mpirun, srun, ...). Each has
 * a rank in [0, size) and a local rank among the processes on its machine. Collectives run on
 * tensors of any dtype a device holds, through a communicator plugin ("mpi", "nccl"); the core
 * links no MPI or NCCL library. Which communicator: `[runtime] dist = mpi` or EMBER_DIST=mpi,
 * else the first one loaded when the process was started by a launcher (OMPI_COMM_WORLD_SIZE,
 * PMI_SIZE or PMIX_RANK set). Without any, the process is rank 0 of a group of size 1 and every
 * collective is the identity, so single-process code needs no special case.
 *
 * Every collective can run asynchronously: *_start returns a handle and em_dist_wait finishes
 * it. A wait gives up after EMBER_DIST_TIMEOUT seconds (default 300): a rank that died or never
 * joined cannot hang the others. The communicator then reports which collective on which rank
 * timed out and ends the whole job (an MPI job with a lost rank cannot continue).
 *
 * Thread safety: collectives are issued in the same order on every rank, from one thread at a
 * time (the training loop's thread; autograd hooks run on it).
 */
#ifndef EMBER_DIST_H
#define EMBER_DIST_H

#include "module.h"
#include "tensor.h"
#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum em_reduce_op {
    EM_REDUCE_SUM = 1,
    EM_REDUCE_AVG,          /* the sum divided by size (floating dtypes only) */
    EM_REDUCE_MAX,
    EM_REDUCE_OP_COUNT
} em_reduce_op;

/* ---- the process group ---------------------------------------------------------------------- */

/* Starts the communicator the configuration or the launcher asks for (em_init calls it; later
 * calls return the first result). EM_OK with no communicator when none is asked for. Fails
 * (negative status, em_last_error names the communicator) when one was asked for by config or
 * EMBER_DIST and cannot start. */
EM_API int em_dist_init(void);
/* Whether a communicator is running (false for a single process). */
EM_API bool em_dist_is_active(void);
EM_API int em_dist_rank(void);          /* 0 without a communicator */
EM_API int em_dist_size(void);          /* 1 without a communicator */
EM_API int em_dist_local_rank(void);    /* 0 without a communicator */
/* The running communicator's name ("mpi"), or NULL. Borrowed. */
EM_API const char *em_dist_backend(void);
/* Registered communicators, in registration order (what `ember info` lists). Name (borrowed)
 * of communicator i and its state written into state ("running: rank 0 of 2 (local rank 0)",
 * "available", "unavailable: why"); NULL past the end. */
EM_API int em_dist_communicator_count(void);
EM_API const char *em_dist_communicator(int i, char *state, size_t size);
/* Ends the whole job (every rank) with exit status `code`, after printing msg to stderr with
 * this rank's number. Without a communicator: exit(code). Never returns. */
EM_NORETURN EM_API void em_dist_abort(int code, const char *msg);

/* ---- collectives ------------------------------------------------------------------------------ */

typedef struct em_dist_work em_dist_work;

/* In place on t, on every rank the same shape and dtype. t may be any view on any device; a
 * device the communicator cannot read is staged through host memory. The handle owns what it
 * needs (t is retained until the wait). Returns NULL with the error set on failure. */
EM_API em_dist_work *em_dist_all_reduce_start(em_tensor *t, em_reduce_op op);
EM_API em_dist_work *em_dist_broadcast_start(em_tensor *t, int root);
/* Waits for w and frees it, whatever the outcome. EM_OK, or a negative status. */
EM_API int em_dist_wait(em_dist_work *w);

/* Blocking forms (start + wait). */
EM_API int em_dist_all_reduce(em_tensor *t, em_reduce_op op);
EM_API int em_dist_broadcast(em_tensor *t, int root);
/* A new tensor [size * d0, d1, ...]: every rank's t (same shape everywhere), in rank order. */
EM_API em_tensor *em_dist_all_gather(em_tensor *t);
/* A new tensor [d0 / size, d1, ...]: this rank's slice of the reduction of every rank's t
 * (d0 must divide by size). */
EM_API em_tensor *em_dist_reduce_scatter(em_tensor *t, em_reduce_op op);
EM_API int em_dist_barrier(void);

/* For benchmarks: the running communicator's own library all-reduce (sum) on t (a contiguous
 * CPU tensor), `iters` calls back to back; *seconds gets the time per call. EM_ERR_UNSUPPORTED
 * without a communicator or when it offers no such baseline. */
EM_API int em_dist_bench_baseline(em_tensor *t, int iters, double *seconds);

/* ---- DistributedDataParallel ----------------------------------------------------------------- */

typedef struct em_ddp em_ddp;

typedef struct em_ddp_opts {
    size_t bucket_bytes;    /* 0: 25 MiB, PyTorch's default bucket_cap_mb */
    /* PyTorch's find_unused_parameters. false (the default): a parameter that gets no
     * gradient in a step is an error of em_ddp_finish. true: its gradient counts as zeros in
     * the average (so every rank still all-reduces every bucket), and one more small
     * all-reduce per step tells which parameters no rank used: those keep the .grad they had
     * (none after em_zero_grad), so optimizers skip them as a single process would. */
    bool find_unused_parameters;
    /* PyTorch's bf16_compress_hook. 0 or EM_F32 (the default): gradients travel as they are.
     * EM_BF16: each bucket's float32 gradients are rounded to bfloat16 (to nearest even, as
     * .to(torch.bfloat16)), divided by the number of ranks in bfloat16, summed over the ranks
     * in bfloat16 and widened back into .grad: half the bytes on the wire, at the cost of
     * gradients rounded to 8 significant bits. Every trainable parameter must then be float32
     * (em_ddp_new fails naming the first that is not); other values are refused. */
    em_dtype compress;
} em_ddp_opts;

/* Wraps m for data-parallel training (PyTorch's DistributedDataParallel): broadcasts m's
 * parameters and buffers from rank 0, then groups the parameters in reverse order into
 * buckets of about bucket_bytes; during each backward a bucket's all-reduce (average) starts as
 * soon as the last of its gradients is accumulated and every bucket before it has started
 * (buckets start in the same order on every rank), overlapping the rest of backward.
 * Call em_ddp_finish after backward and before the optimizer step. m is borrowed and must
 * outlive the handle; its parameters must not change (moving m to another device after
 * wrapping is not supported). Works with size 1 (no communication). NULL on failure. */
EM_API em_ddp *em_ddp_new(em_module *m, const em_ddp_opts *opts);
/* Starts the buckets that backward did not complete, waits for every bucket and writes the
 * averaged gradients into the parameters' .grad, so any optimizer works unchanged. A
 * parameter that got no gradient since the last synchronised step: with
 * find_unused_parameters its gradient counts as zeros (a parameter some rank used gets the
 * average, created if it had no .grad); without, EM_ERR_STATE naming the parameters, after
 * the buckets were still all-reduced (zeros in their place) so that the other ranks are not
 * left waiting; the gradients are then left as backward made them. A no-op while
 * synchronisation is off. */
EM_API int em_ddp_finish(em_ddp *d);
/* PyTorch's no_sync(): with on = false, backward passes accumulate gradients locally without
 * communication; the first backward after turning it back on averages the accumulated sum. */
EM_API int em_ddp_set_sync(em_ddp *d, bool on);
/* The number of buckets (for tests and `ember bench`). */
EM_API int em_ddp_bucket_count(const em_ddp *d);
/* Seconds spent waiting in em_ddp_finish and seconds of communication that overlapped
 * backward, summed since em_ddp_new (for `ember bench`). */
EM_API void em_ddp_times(const em_ddp *d, double *wait_s, double *overlap_s);
EM_API void em_ddp_free(em_ddp *d);

#ifdef __cplusplus
}
#endif
#endif
