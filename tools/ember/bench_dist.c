/* tools/ember/bench_dist.c - `ember bench --dist` under mpirun: all-reduce bandwidth against the
 * MPI library's own MPI_Allreduce on the same buffers (OSU style), and data-parallel training
 * throughput with float32 gradients and with bf16 compression, with the time spent waiting for
 * the gradients.
 *
 * Times are the slowest rank's (each figure is all-reduced with max); medians of repetitions,
 * alternating Ember and the baseline, or the two gradient formats, so that machine noise hits
 * both alike. The training figures use a synthetic set shaped like Fashion-MNIST (784 features,
 * 10 classes) with a batch per rank, as `mpirun -np N ember train` reads a config's batch_size
 * (weak scaling): the examples/fashion-mnist.ini MLP at 64 a rank, and ggml mnist-train's
 * 784-500-10 AdamW at 1000 a rank (`ember bench`'s epoch). The same command without mpirun
 * measures one rank on the same per-rank batch, the baseline of the scaling figure;
 * tools/bench-dist.sh alternates the two and prints the ratio.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* buckets of 256 KiB rather than DDP's 25 MiB default: a parameter that would overflow a
 * bucket starts the next, so the MLP's 0.94 MB of gradients make 2 buckets (every parameter
 * but the first weight, 0.14 MB, then that weight's 0.80 MB alone), and the first can overlap
 * the rest of backward; 784-500-10's 1.6 MB make 2 as well (the first weight last, alone) */
#define BUCKET_BYTES ((size_t)256 << 10)

/* The slowest rank's value. */
static double slowest(double v)
{
    int64_t one = 1;
    em_tensor *t = em_tensor_from_blob(&v, EM_F64, 1, &one, NULL, NULL);
    em_dist_all_reduce(t, EM_REDUCE_MAX);
    em_release(t);
    return v;
}

static double ember_all_reduce(em_tensor *t, int iters)
{
    em_dist_barrier();
    double t0 = cli_now();
    for (int i = 0; i < iters; i++)
        if (em_dist_all_reduce(t, EM_REDUCE_SUM) < 0)
            return -1;
    return slowest((cli_now() - t0) / iters);
}

static int bench_all_reduce(bool quick, bool root)
{
    int n = em_dist_size(), reps = quick ? 3 : 5;
    if (root)
        printf("\nall-reduce (sum, float32), %d ranks: time per call (slowest rank, median of "
               "%d) and bus bandwidth = bytes x 2(N-1)/N / time\n"
               "  %10s %12s %12s %12s %12s %8s\n",
               n, reps, "bytes", "ember us", "MPI us", "ember GB/s", "MPI GB/s", "ratio");
    size_t max_bytes = quick ? ((size_t)4 << 20) : ((size_t)64 << 20);
    for (size_t bytes = 4096; bytes <= max_bytes; bytes *= 4) {
        int64_t count = (int64_t)(bytes / 4);
        em_tensor *t = em_zeros(1, &count, NULL);
        int iters = (int)((1 << 24) / bytes);
        iters = iters < 2 ? 2 : iters > 200 ? 200 : iters;
        double te[8], tm[8], s;
        if (!t || ember_all_reduce(t, 1) < 0 || em_dist_bench_baseline(t, 1, &s) < 0) {
            em_release(t);
            return cli_fail("all-reduce bench");
        }
        for (int k = 0; k < reps; k++) {
            te[k] = ember_all_reduce(t, iters);
            em_dist_barrier();
            if (em_dist_bench_baseline(t, iters, &s) < 0) {
                em_release(t);
                return cli_fail("MPI_Allreduce baseline");
            }
            tm[k] = slowest(s);
        }
        em_release(t);
        double e = cli_median(te, reps), m = cli_median(tm, reps), f = 2.0 * (n - 1) / n * (double)bytes;
        if (root)
            printf("  %10zu %12.1f %12.1f %12.3f %12.3f %7.0f%%\n", bytes, e * 1e6, m * 1e6,
                   f / e * 1e-9, f / m * 1e-9, 100 * m / e);
    }
    return 0;
}

/* What one training epoch needs; the same model and optimizer go on through every epoch. */
typedef struct train_setup {
    em_module *model, *loss;
    em_optimizer *opt;
    em_dataloader *dl;
} train_setup;

/* One epoch of the synthetic set through ddp (NULL: one process); the slowest rank's
 * seconds in *seconds. 0, or 1 after a message. */
static int epoch(const train_setup *ts, em_ddp *ddp, double *seconds)
{
    int rc = 0;
    em_dist_barrier();
    double t0 = cli_now();
    em_tensor *bx, *by;
    while (em_dataloader_next(ts->dl, &bx, &by)) {
        em_scope_begin();
        em_zero_grad(ts->opt);
        em_tensor *l = em_loss(ts->loss, em_forward(ts->model, bx), by);
        if (!l || em_backward(l, NULL, false) < 0 || (ddp && em_ddp_finish(ddp) < 0) ||
            em_step(ts->opt) < 0)
            rc = cli_fail("training bench step");
        em_scope_end();
        em_release(bx);
        em_release(by);
        if (rc)
            break;
    }
    *seconds = slowest(cli_now() - t0);
    return rc;
}

/* What alternate() measures for each gradient format: medians of epoch seconds, and per
 * epoch (means, rank 0) the seconds waiting in em_ddp_finish and the seconds of all-reduces
 * in flight while backward went on. */
typedef struct mode_times {
    double epoch, wait, overlap;
} mode_times;

/* Epochs of DDP with float32 gradients and with bf16 compression, alternating (the order
 * swapped every round, so that machine noise hits both alike); one process runs plain epochs.
 * `reps` epochs each into m[0] (float32) and m[1] (bf16); *buckets gets the bucket count.
 * The first epoch warms the caches up. */
static int alternate(const train_setup *ts, int reps, mode_times m[2], int *buckets)
{
    int n = em_dist_size(), modes = n > 1 ? 2 : 1;
    double ep[2][8] = {{0}}, warm;
    int rc = epoch(ts, NULL, &warm);   /* no gradient exchange: the same arithmetic to warm */
    for (int r = 0; r < reps && !rc; r++)
        for (int k = 0; k < modes && !rc; k++) {
            int mode = (r + k) % modes;
            em_ddp *ddp = NULL;
            if (n > 1 && !(ddp = em_ddp_new(ts->model,
                                            &(em_ddp_opts){.bucket_bytes = BUCKET_BYTES,
                                                           .compress = mode ? EM_BF16 : 0})))
                return cli_fail("DistributedDataParallel for the training bench");
            rc = epoch(ts, ddp, &ep[mode][r]);
            double wait_s = 0, overlap_s = 0;
            em_ddp_times(ddp, &wait_s, &overlap_s);
            m[mode].wait += wait_s / reps;
            m[mode].overlap += overlap_s / reps;
            *buckets = em_ddp_bucket_count(ddp);
            em_ddp_free(ddp);
        }
    for (int mode = 0; mode < modes; mode++)
        m[mode].epoch = cli_median(ep[mode], reps);
    return rc;
}

/* One training case: a model and optimizer, the batch each rank takes, and the optimizer
 * steps an epoch makes (per rank; --quick: a quarter). */
typedef struct train_case {
    const char *name, *spec, *optim;
    int64_t batch;
    int steps;
} train_case;

static const train_case k_cases[] = {
    {"784-256-128-10 SGD momentum (examples/fashion-mnist.ini)",
     "Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))",
     "SGD(lr=0.05, momentum=0.9)", 64, 240},
    {"784-500-10 AdamW (ggml mnist-train, ember bench's epoch)",
     "Sequential(Linear(784, 500), ReLU(), Linear(500, 10))",
     "AdamW(lr=0.001, weight_decay=0.01)", 1000, 24},
};

/* Samples per second over all ranks for one case, with and without bf16 gradient
 * compression when there are several ranks. */
static int bench_case(const train_case *c, bool quick, bool root)
{
    int n = em_dist_size(), r = em_dist_rank(), reps = quick ? 3 : 5;
    int steps = quick ? (c->steps + 3) / 4 : c->steps;
    int64_t samples = (int64_t)steps * c->batch * n;
    em_manual_seed(3);
    em_tensor *x = em_randn(EM_SHAPE(samples, 784), NULL);
    em_tensor *y = em_randint(0, 10, EM_SHAPE(samples), NULL);
    em_dataset *ds = x && y ? em_dataset_from_tensors(x, y) : NULL;
    train_setup ts = {.model = em_module_new(c->spec),
                      .loss = em_module_new("CrossEntropyLoss()")};
    ts.opt = ts.model ? em_optimizer_new(c->optim, ts.model) : NULL;
    ts.dl = ds ? em_dataloader_new(ds, c->batch, true, 0) : NULL;
    int rc = 0;
    mode_times m[2] = {{0}};
    int buckets = 0;
    if (!ts.opt || !ts.loss || !ts.dl ||
        (n > 1 && em_dataloader_set_shard(ts.dl, r, n, EM_SHARD_PAD) < 0))
        rc = cli_fail("training bench setup");
    else
        rc = alternate(&ts, reps, m, &buckets);
    int th = em_config_threads();
    if (!rc && root)
        printf("\n%s, batch %lld a rank, %lld samples an epoch; median of %d epochs%s:\n",
               c->name, (long long)c->batch, (long long)samples, reps,
               n > 1 ? " each, float32 and bf16 gradients alternating" : "");
    const char *what[2] = {"float32 gradients", "bf16 gradients   "};
    for (int mode = 0; !rc && root && mode < (n > 1 ? 2 : 1); mode++) {
        double sps = (double)samples / m[mode].epoch;
        printf("  %d rank%s x %d thread%s", n, n == 1 ? "" : "s", th, th == 1 ? "" : "s");
        if (n > 1)
            printf(", %s: %7.0f samples/s (epoch %.3f s; rank 0: %.3f s of it waiting in "
                   "em_ddp_finish, %.3f s of all-reduces in flight while backward went on)\n",
                   what[mode], sps, m[mode].epoch, m[mode].wait, m[mode].overlap);
        else
            printf(": %.0f samples/s (epoch %.3f s)\n", sps, m[mode].epoch);
    }
    if (!rc && root && n > 1)
        printf("  bf16 / float32 throughput: %.2f (%d buckets)\n", m[0].epoch / m[1].epoch,
               buckets);
    em_dataloader_free(ts.dl);
    em_optimizer_free(ts.opt);
    em_module_free(ts.loss);
    em_module_free(ts.model);
    em_dataset_free(ds);
    em_release(x);
    em_release(y);
    return rc;
}

static int bench_training(bool quick, bool root)
{
    int rc = 0;
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0] && !rc; i++)
        rc = bench_case(&k_cases[i], quick, root);
    return rc;
}

int bench_dist(bool quick, bool train_only)
{
    bool root = em_dist_rank() == 0;
    if (root)
        printf("\ndistributed: %s, %d rank%s, %d thread%s per rank\n",
               em_dist_is_active() ? em_dist_backend() : "single process", em_dist_size(),
               em_dist_size() == 1 ? "" : "s", em_config_threads(),
               em_config_threads() == 1 ? "" : "s");
    int rc = em_dist_size() > 1 && !train_only ? bench_all_reduce(quick, root) : 0;
    return rc ? rc : bench_training(quick, root);
}
