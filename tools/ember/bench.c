/* tools/ember/bench.c - `ember bench`: the core's performance figures, measured side by side.
 *
 * Each figure is the median of several timed repetitions, next to a reference measured in the
 * same run: a STREAM-style loop for memory bandwidth, an FMA loop (the CPU's floating-point
 * peak, on 1 thread and on the backend's threads) for matmul. Timings are benchmarks, never
 * pass/fail tests: machines here are shared and noisy.
 */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* ---- dispatch overhead ------------------------------------------------------------- */

static double bench_dispatch(int reps, int iters)
{
    float one = 1.0f;
    em_tensor *a = em_tensor_from_data(&one, EM_F32, EM_SHAPE(1), NULL);
    em_tensor *b = em_tensor_from_data(&one, EM_F32, EM_SHAPE(1), NULL);
    double t[32];
    for (int r = 0; r < reps; r++) {
        double t0 = cli_now();
        for (int i = 0; i < iters; i++)
            em_release(em_add(a, b));
        t[r] = (cli_now() - t0) / iters * 1e6;
    }
    em_release(a);
    em_release(b);
    return cli_median(t, reps);
}

/* ---- autograd overhead ------------------------------------------------------------------ */

static void bench_autograd(int reps, int iters)
{
    float one = 1.0f;
    em_tensor *plain = em_tensor_from_data(&one, EM_F32, EM_SHAPE(1), NULL);
    em_tensor *leaf = em_tensor_from_data(&one, EM_F32, EM_SHAPE(1), &(em_opts){.requires_grad = true});
    double tp[32], tr[32], tb[32];
    int chain = 10000;
    for (int r = 0; r < reps; r++) {
        double t0 = cli_now();
        for (int i = 0; i < iters; i++)
            em_release(em_mul(plain, plain));
        tp[r] = (cli_now() - t0) / iters * 1e6;
        t0 = cli_now();
        for (int i = 0; i < iters; i++)
            em_release(em_mul(leaf, leaf));
        tr[r] = (cli_now() - t0) / iters * 1e6;
        /* backward through a chain of `chain` MulBackward0 nodes */
        em_tensor *y = leaf;
        em_retain(y);
        for (int i = 0; i < chain; i++) {
            em_tensor *n = em_mul(y, leaf);
            em_release(y);
            y = n;
        }
        t0 = cli_now();
        em_backward(y, NULL, false);
        tb[r] = (cli_now() - t0) / chain * 1e6;
        em_release(y);
        em_grad_clear(leaf);
    }
    double mp = cli_median(tp, reps), mr = cli_median(tr, reps);
    printf("\nautograd, 1-element f32 (us, median of %d):\n", reps);
    printf("  %-44s %8.3f\n", "em_mul, no input requires grad", mp);
    printf("  %-44s %8.3f   (+%.3f for recording)\n", "em_mul, recorded (MulBackward0)", mr, mr - mp);
    printf("  %-44s %8.3f\n", "em_backward, per MulBackward0 node", cli_median(tb, reps));
    em_release(plain);
    em_release(leaf);
}

/* ---- a device backend (opencl, cuda): the same figures, synchronised ------------------- */

static void bench_device(em_device d, int reps, bool quick)
{
    char db[32];
    em_device_str(d, db, sizeof db);
    em_opts on = {.device = d};
    double t[32];
    em_tensor *a = em_ones(EM_SHAPE(1), &on), *b = em_ones(EM_SHAPE(1), &on);
    int iters = quick ? 2000 : 20000;
    for (int r = 0; r < reps; r++) {
        double t0 = cli_now();
        for (int i = 0; i < iters; i++)
            em_release(em_add(a, b));
        em_synchronize(d);
        t[r] = (cli_now() - t0) / iters * 1e6;
    }
    em_release(a);
    em_release(b);
    printf("\n%s: dispatch of a 1-element em_add (enqueue, one sync per %d calls): %.3f us\n", db,
           iters, cli_median(t, reps));
    int64_t n = quick ? (int64_t)1 << 22 : (int64_t)1 << 24;
    a = em_rand(EM_SHAPE(n), &on);
    b = em_rand(EM_SHAPE(n), &on);
    em_release(em_add(a, b));   /* warm-up: builds the device program */
    em_synchronize(d);
    for (int r = 0; r < reps; r++) {
        double t0 = cli_now();
        em_release(em_add(a, b));
        em_synchronize(d);
        t[r] = 3.0 * (double)n * 4 / 1e9 / (cli_now() - t0);
    }
    printf("%s: em_add on %lld f32: %.2f GB/s (median of %d)\n", db, (long long)n,
           cli_median(t, reps), reps);
    em_release(a);
    em_release(b);
    printf("%s: f32 matmul n x n x n (GFLOP/s):", db);
    for (int64_t m = 128; m <= (quick ? 256 : 1024); m *= 2) {
        a = em_rand(EM_SHAPE(m, m), &on);
        b = em_rand(EM_SHAPE(m, m), &on);
        em_release(em_matmul(a, b));
        em_synchronize(d);
        int rr = reps < 5 ? reps : 5;
        for (int r = 0; r < rr; r++) {
            double t0 = cli_now();
            em_release(em_matmul(a, b));
            em_synchronize(d);
            t[r] = 2.0 * (double)(m * m * m) / 1e9 / (cli_now() - t0);
        }
        printf(" %lld: %.1f", (long long)m, cli_median(t, rr));
        em_release(a);
        em_release(b);
    }
    printf("\n");
}

/* ---- STREAM-style references, threaded like the backend ------------------------------ */

typedef struct {
    const float *a, *b;
    float *c;
    size_t lo, hi;
    int kind;   /* 0 copy, 1 add, 2 add in place */
} stream_job;

static void *stream_worker(void *p)
{
    stream_job *j = p;
    if (j->kind == 0)
        for (size_t i = j->lo; i < j->hi; i++)
            j->c[i] = j->a[i];
    else if (j->kind == 1)
        for (size_t i = j->lo; i < j->hi; i++)
            j->c[i] = j->a[i] + j->b[i];
    else
        for (size_t i = j->lo; i < j->hi; i++)
            j->c[i] += j->b[i];
    return NULL;
}

static void stream_run(int kind, const float *a, const float *b, float *c, size_t n, int nt)
{
    pthread_t th[64];
    stream_job jobs[64];
    for (int k = 0; k < nt; k++) {
        jobs[k] = (stream_job){a, b, c, n * (size_t)k / (size_t)nt,
                               n * (size_t)(k + 1) / (size_t)nt, kind};
        if (k)
            pthread_create(&th[k], NULL, stream_worker, &jobs[k]);
    }
    stream_worker(&jobs[0]);
    for (int k = 1; k < nt; k++)
        pthread_join(th[k], NULL);
}

static void bench_bandwidth(int reps, size_t n)
{
    int nt = em_config_threads();
    if (nt > 64)
        nt = 64;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    for (size_t i = 0; i < n; i++) {
        a[i] = (float)i;
        b[i] = 1.0f;
        c[i] = 0.0f;
    }
    double copy[32], add[32], addi[32], eadd[32], eadd_[32];
    em_tensor *ta = em_tensor_from_blob(a, EM_F32, EM_SHAPE((int64_t)n), NULL, NULL);
    em_tensor *tb = em_tensor_from_blob(b, EM_F32, EM_SHAPE((int64_t)n), NULL, NULL);
    em_tensor *tc = em_tensor_from_blob(c, EM_F32, EM_SHAPE((int64_t)n), NULL, NULL);
    double gb = (double)n * sizeof(float) / 1e9;
    for (int r = 0; r < reps; r++) {
        double t0 = cli_now();
        stream_run(0, a, NULL, c, n, nt);
        copy[r] = 2 * gb / (cli_now() - t0);
        t0 = cli_now();
        stream_run(1, a, b, c, n, nt);
        add[r] = 3 * gb / (cli_now() - t0);
        t0 = cli_now();
        stream_run(2, a, b, c, n, nt);
        addi[r] = 3 * gb / (cli_now() - t0);
        t0 = cli_now();
        em_release(em_add(ta, tb));
        eadd[r] = 3 * gb / (cli_now() - t0);
        t0 = cli_now();
        em_release(em_add_(tc, tb));
        eadd_[r] = 3 * gb / (cli_now() - t0);
    }
    double mc = cli_median(copy, reps), ma = cli_median(add, reps), mai = cli_median(addi, reps);
    double me = cli_median(eadd, reps), mi = cli_median(eadd_, reps);
    printf("\nelementwise, %zu f32 elements, %d threads (GB/s counting 3 arrays for add, 2 for\n"
           "copy; median of %d):\n", n, nt, reps);
    printf("  %-36s %8.2f\n", "STREAM copy c = a (reference)", mc);
    printf("  %-36s %8.2f\n", "STREAM add c = a + b (reference)", ma);
    printf("  %-36s %8.2f\n", "STREAM add c += b (reference)", mai);
    printf("  %-36s %8.2f   %5.1f%% of STREAM add\n", "em_add (allocates its output)", me,
           100 * me / ma);
    printf("  %-36s %8.2f   %5.1f%% of STREAM add in place\n", "em_add_ (in place)", mi,
           100 * mi / mai);
    em_release(ta);
    em_release(tb);
    em_release(tc);
    free(a);
    free(b);
    free(c);
}

/* ---- FMA peak: independent chains of fused multiply-adds, the widest the CPU runs -------- */

/* The chain loops are unrolled fully so that the accumulators live in registers. */

/* Enough independent chains to cover FMA latency x ports, few enough to stay in registers:
 * 16 of AVX-512's 32 zmm; 12 of AVX2's 16 ymm (16 spilled with the two constants and read 94
 * GFLOP/s where 10 to 14 read 111-118 on the Xeon model 167); 8 groups of multiplies and 8 of
 * adds in baseline SSE. */
#define FMA_CHAINS 16
#define FMA_CHAINS_AVX2 12
#define FMA_CHAINS_PORTABLE 8

typedef struct fma_job {
    int64_t iters;
    float sink;
} fma_job;

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f"))) static void *fma_avx512(void *p)
{
    fma_job *j = p;
    __m512 m = _mm512_set1_ps(0.9999f), a = _mm512_set1_ps(1e-4f), acc[FMA_CHAINS];
    for (int c = 0; c < FMA_CHAINS; c++)
        acc[c] = _mm512_set1_ps((float)c);
    for (int64_t i = 0; i < j->iters; i++)
#pragma GCC unroll 16
        for (int c = 0; c < FMA_CHAINS; c++)
            acc[c] = _mm512_fmadd_ps(acc[c], m, a);
    for (int c = 1; c < FMA_CHAINS; c++)
        acc[0] = _mm512_add_ps(acc[0], acc[c]);
    j->sink = _mm512_reduce_add_ps(acc[0]);
    return NULL;
}

__attribute__((target("avx2,fma"))) static void *fma_avx2(void *p)
{
    fma_job *j = p;
    __m256 m = _mm256_set1_ps(0.9999f), a = _mm256_set1_ps(1e-4f), acc[FMA_CHAINS_AVX2];
    for (int c = 0; c < FMA_CHAINS_AVX2; c++)
        acc[c] = _mm256_set1_ps((float)c);
    for (int64_t i = 0; i < j->iters; i++)
#pragma GCC unroll 16
        for (int c = 0; c < FMA_CHAINS_AVX2; c++)
            acc[c] = _mm256_fmadd_ps(acc[c], m, a);
    float out[8];
    for (int c = 1; c < FMA_CHAINS_AVX2; c++)
        acc[0] = _mm256_add_ps(acc[0], acc[c]);
    _mm256_storeu_ps(out, acc[0]);
    j->sink = out[0] + out[7];
    return NULL;
}
#endif

/* Multiplies and adds with no FMA instruction assumed, in the compiler's baseline vectors:
 * independent chains of multiplies and of adds (a multiply feeding an add would double the
 * latency to cover), 4-float groups; each multiply and each add counts one flop per lane. */
static void *fma_portable(void *p)
{
    fma_job *j = p;
    float mul[FMA_CHAINS_PORTABLE * 2], add[FMA_CHAINS_PORTABLE * 2];
    for (int c = 0; c < FMA_CHAINS_PORTABLE * 2; c++)
        mul[c] = add[c] = (float)c;
    for (int64_t i = 0; i < j->iters; i++)
        for (int c = 0; c < FMA_CHAINS_PORTABLE * 2; c++) {
            mul[c] = mul[c] * 1.0000001f; /* grows by e^1.2 in 10^7 steps: no denormals */
            add[c] = add[c] + 1e-4f;
        }
    j->sink = mul[0] + add[FMA_CHAINS_PORTABLE * 2 - 1];
    return NULL;
}

typedef struct fma_kind {
    const char *name;
    void *(*fn)(void *);
    int lanes;                 /* floats per FMA x chains, per iteration */
} fma_kind;

/* The widest loop the CPU runs, or the one the GEMM kernel in use is written for (forced with
 * EMBER_GEMM_KERNEL: "GEMM avx2 ...", "GEMM generic ..." in `kernels`), so that the
 * fraction of peak compares a kernel with the loop of its own instruction set. */
static fma_kind fma_pick(const char *kernels)
{
    bool avx2_kernel = kernels && strstr(kernels, "GEMM avx2");
    bool generic_kernel = kernels && strstr(kernels, "GEMM generic");
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && !avx2_kernel && !generic_kernel)
        return (fma_kind){"AVX-512 FMA", fma_avx512, 16 * FMA_CHAINS};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !generic_kernel)
        return (fma_kind){"AVX2 FMA", fma_avx2, 8 * FMA_CHAINS_AVX2};
#else
    (void)avx2_kernel, (void)generic_kernel;
#endif
    return (fma_kind){"portable multiply-add", fma_portable, 4 * FMA_CHAINS_PORTABLE};
}

/* f32 GFLOP/s of nt threads each running the loop: the best of reps, since a peak is what the
 * CPU can do (on a shared machine, a median would measure the other jobs too). */
static double best_of(const double *v, int n)
{
    double b = v[0];
    for (int i = 1; i < n; i++)
        b = v[i] > b ? v[i] : b;
    return b;
}

static double fma_peak(const fma_kind *k, int nt, int reps, int64_t iters)
{
    pthread_t th[64];
    fma_job jobs[64];
    double t[32];
    for (int r = 0; r < reps; r++) {
        double t0 = cli_now();
        for (int i = 0; i < nt; i++) {
            jobs[i] = (fma_job){iters, 0};
            if (i)
                pthread_create(&th[i], NULL, k->fn, &jobs[i]);
        }
        k->fn(&jobs[0]);
        for (int i = 1; i < nt; i++)
            pthread_join(th[i], NULL);
        t[r] = 2.0 * (double)k->lanes * (double)iters * nt / 1e9 / (cli_now() - t0);
    }
    return best_of(t, reps);
}

/* ---- matmul ------------------------------------------------------------------------------ */

static void bench_matmul(int reps, int max_n, bool quick)
{
    int nt = em_config_threads();
    if (nt > 64)
        nt = 64;
    const char *kern = em_device_kernels(em_device_parse("cpu"));
    fma_kind k = fma_pick(kern);
    int64_t iters = quick ? 2000000 : 10000000;
    double p1 = fma_peak(&k, 1, reps < 5 ? reps : 5, iters);
    double pn = nt > 1 ? fma_peak(&k, nt, reps < 5 ? reps : 5, iters) : p1;
    printf("\nFMA peak (f32, %s loop, best of %d): %.1f GFLOP/s on 1 thread", k.name,
           reps < 5 ? reps : 5, p1);
    if (nt > 1)
        printf(", %.1f on %d", pn, nt);
    printf("\nf32 matmul, n x n x n, %d thread%s (GFLOP/s, median and best of %d; %s):\n",
           nt, nt == 1 ? "" : "s", reps, kern && *kern ? kern : "kernel unknown");
    printf("  %6s %10s %10s %20s\n", "n", "median", "best", "of FMA peak (m / b)");
    for (int n = 64; n <= max_n; n *= 2) {
        em_tensor *a = em_randn(EM_SHAPE(n, n), NULL), *b = em_randn(EM_SHAPE(n, n), NULL);
        double flop = 2.0 * n * n * n / 1e9, te[32];
        int r_here = n >= 1024 ? (reps < 5 ? reps : 5) : reps;
        em_release(em_matmul(a, b));   /* warm-up */
        for (int r = 0; r < r_here; r++) {
            double t0 = cli_now();
            em_release(em_matmul(a, b));
            te[r] = flop / (cli_now() - t0);
        }
        double me = cli_median(te, r_here), be = best_of(te, r_here);
        printf("  %6d %10.1f %10.1f %12.1f%% / %4.1f%%\n", n, me, be, 100 * me / pn,
               100 * be / pn);
        em_release(a);
        em_release(b);
    }
}

enum { O_QUICK, O_TRAIN, O_DIST, O_DEVICE, O_CONFIG };
static const cli_opt k_opts[] = {
    [O_QUICK] = {"quick", 'q', NULL, "fewer repetitions, smaller sizes (seconds, not a\n"
                                "minute)"},
    [O_TRAIN] = {"train", 't', NULL, "only the training-step and data-epoch figures (with\n"
                                     "--dist: only the training throughput)"},
    [O_DIST] = {"dist", 0, NULL, "under mpirun (mpirun -np 2 ember bench --dist):\n"
                                 "all-reduce against MPI_Allreduce, and data-parallel\n"
                                 "training throughput"},
    [O_DEVICE] = {"device", 'd', "DEV", "run on DEV (cpu, cuda:0, opencl:0): on a device, its\n"
                                         "transfer and kernel figures, then the training steps"},
    [O_CONFIG] = {"config", 'c', "FILE", "read FILE as the runtime config"},
};
const cli_cmd cli_bench = {
    .name = "bench", .synopsis = "[OPTION]...",
    .summary = "dispatch, bandwidth, matmul, autograd, training steps",
    .about = "Measures dispatch overhead, elementwise bandwidth against a STREAM-style loop,\n"
             "f32 matmul as a fraction of the CPU's FMA peak (naming the GEMM kernel),\n"
             "autograd overhead and training steps, side by side in one run. Medians of\n"
             "repeated runs.",
    CLI_OPTS(k_opts),
    .examples = "ember bench --quick\nember bench --train --quick",
};

int cmd_bench(int argc, char **argv)
{
    cli_args a;
    int prc = cli_parse(&cli_bench, argc, argv, &a);
    if (prc >= 0)
        return prc;
    const char *config = a.val[O_CONFIG], *device = a.val[O_DEVICE];
    bool quick = cli_has(&a, O_QUICK), train_only = cli_has(&a, O_TRAIN);
    if (em_init(config) < 0)
        return cli_fail("init");
    int reps = quick ? 3 : 9;
    if (device) {
        em_device d = em_device_parse(device);
        if (d.index < 0 || em_set_default_device(d) < 0) {
            em_shutdown();
            return cli_fail("--device");
        }
    }
    /* --dist (under mpirun or alone): all-reduce bandwidth and data-parallel training only;
     * rank 0 prints */
    if (cli_has(&a, O_DIST)) {
        int rc = bench_dist(quick, train_only);
        em_shutdown();
        return rc;
    }
    char db[32];
    const char *kern = em_device_kernels(em_default_device());
    printf("Ember %s bench on %s (%s)%s%s\n", em_version(),
           em_device_str(em_default_device(), db, sizeof db), em_device_name(em_default_device()),
           kern && *kern ? "; " : "", kern && *kern ? kern : "");
    /* --train: the training steps only, on the default (or --device) device */
    if (train_only) {
        int rc = bench_train(quick);
        em_shutdown();
        return rc;
    }
    /* another device: its own figures (transfers, kernels), then the training steps there */
    if (device && strncmp(device, "cpu", 3) != 0) {
        bench_device(em_default_device(), reps, quick);
        int rc = bench_train(quick);
        em_shutdown();
        return rc;
    }
    printf("\ndispatch overhead: em_add of two 1-element f32 tensors (incl. output "
           "allocation and release):\n  %.3f us per call (median of %d x %d calls)\n",
           bench_dispatch(reps, quick ? 20000 : 200000), reps, quick ? 20000 : 200000);
    bench_autograd(reps, quick ? 20000 : 100000);
    bench_bandwidth(reps, quick ? ((size_t)1 << 22) : ((size_t)1 << 24));
    bench_matmul(reps, quick ? 512 : 2048, quick);
    int rc = bench_train(quick);
    em_shutdown();
    return rc;
}
