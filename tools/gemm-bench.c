/* tools/gemm-bench.c - f32 GEMM as a fraction of the FMA peak, best of many runs (a benchmark).
 *
 * `ember bench` quotes medians, which a shared machine drags down; this driver takes the
 * fastest of many repetitions, for the FMA-peak loop and for each product alike, so that the
 * ratio between them (the GEMM's efficiency) holds up under other load. Built (x86-64 only,
 * not installed) as build/tools/gemm-bench; the thread count comes from the environment:
 *
 *   EMBER_NUM_THREADS=1 build/tools/gemm-bench [REPS] [SIZE...]
 *
 * A SIZE is N (an N x N x N product) or MxKxN[:AB], C[M, N] = A[M, K] @ B[K, N], where A and B
 * are each n (stored as they are used) or t (the transpose of a stored matrix: a training
 * step's forward x @ W^T is 64x784x256:nt, its backward g @ W 64x256x784:nn and g^T @ x
 * 256x64x784:tn).
 * On a machine others are using, `chrt -f 50 build/tools/gemm-bench` (root) keeps their jobs from
 * preempting the runs for the few seconds it takes. The peak loop is the one `ember bench`
 * runs (16 independent chains of AVX-512 FMAs), on as many threads as the product uses; a CPU
 * without AVX-512 is refused. Each product's result is released before the next run, so the
 * allocator's cache hands the same output block back (no page faults in the timed runs).
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ember/ember.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define CHAINS 16
#define ITERS 4000000

__attribute__((target("avx512f"))) static void *fma_loop(void *p)
{
    float *sink = p;
    __m512 m = _mm512_set1_ps(0.9999f), a = _mm512_set1_ps(1e-4f), acc[CHAINS];
    for (int c = 0; c < CHAINS; c++)
        acc[c] = _mm512_set1_ps((float)c);
    for (int64_t i = 0; i < ITERS; i++)
#pragma GCC unroll 16
        for (int c = 0; c < CHAINS; c++)
            acc[c] = _mm512_fmadd_ps(acc[c], m, a);
    for (int c = 1; c < CHAINS; c++)
        acc[0] = _mm512_add_ps(acc[0], acc[c]);
    *sink = _mm512_reduce_add_ps(acc[0]);
    return NULL;
}

/* Best GFLOP/s of nt threads running the peak loop at once. */
static double peak(int nt, int reps)
{
    double best = 0;
    for (int r = 0; r < reps; r++) {
        pthread_t th[8];
        float sink[8];
        double t0 = now();
        for (int i = 1; i < nt; i++)
            pthread_create(&th[i], NULL, fma_loop, &sink[i]);
        fma_loop(&sink[0]);
        for (int i = 1; i < nt; i++)
            pthread_join(th[i], NULL);
        double g = 2.0 * 16 * CHAINS * (double)ITERS * nt / 1e9 / (now() - t0);
        best = g > best ? g : best;
    }
    return best;
}

/* A rows x cols operand, stored transposed (then a view) if t. */
static em_tensor *operand(int64_t rows, int64_t cols, bool t)
{
    if (!t)
        return em_randn(EM_SHAPE(rows, cols), NULL);
    em_tensor *s = em_randn(EM_SHAPE(cols, rows), NULL), *v = em_t(s);
    em_release(s);
    return v;
}

int main(int argc, char **argv)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) {
        fprintf(stderr, "gemm-bench: this CPU has no AVX-512 (the peak loop needs it)\n");
        return 1;
    }
    if (em_init(NULL) != EM_OK) {
        fprintf(stderr, "gemm-bench: %s\n", em_last_error());
        return 1;
    }
    int reps = argc > 1 ? atoi(argv[1]) : 20;
    int nt = em_config_threads();
    double pk = peak(nt > 8 ? 8 : nt, reps);
    printf("threads %d, FMA peak (best of %d) %.1f GFLOP/s; %s\n", nt, reps, pk,
           em_device_kernels(em_device_parse("cpu")));
    static const int def[] = {512, 1024, 2048};
    int nn = argc > 2 ? argc - 2 : 3;
    for (int s = 0; s < nn; s++) {
        long long m, k, n;
        char ta = 'n', tb = 'n';
        const char *arg = argc > 2 ? argv[s + 2] : NULL;
        if (!arg) {
            m = k = n = def[s];
        } else if (sscanf(arg, "%lldx%lldx%lld:%c%c", &m, &k, &n, &ta, &tb) < 3) {
            m = k = n = atoll(arg);
        }
        if (m <= 0 || k <= 0 || n <= 0 || !strchr("nt", ta) || !strchr("nt", tb)) {
            fprintf(stderr, "gemm-bench: bad size '%s' (N or MxKxN[:AB], A, B n or t)\n", arg);
            return 1;
        }
        em_tensor *a = operand(m, k, ta == 't'), *b = operand(k, n, tb == 't');
        double flop = 2.0 * (double)m * (double)k * (double)n / 1e9, best = 0;
        em_release(em_matmul(a, b));
        int r_here = flop >= 16 ? (reps + 3) / 4 : reps;
        for (int r = 0; r < r_here; r++) {
            double t0 = now();
            em_tensor *c = em_matmul(a, b);
            double g = flop / (now() - t0);
            em_release(c);
            best = g > best ? g : best;
        }
        printf("  %5lld x %5lld x %5lld :%c%c  %7.1f GFLOP/s  %5.1f%% of peak\n", m, k, n, ta, tb,
               best, 100 * best / pk);
        em_release(a);
        em_release(b);
    }
    em_shutdown();
    return 0;
}
