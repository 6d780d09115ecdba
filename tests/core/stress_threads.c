/* tests/core/stress_threads.c - the CPU backend's thread pool under load, for
 * ThreadSanitizer: big ops split over two workers (matmul, elementwise, reductions, softmax,
 * training steps of an MLP), two user threads sharing the pool (one runs inline while the
 * other owns it), and em_shutdown/em_init cycles that join and restart the workers. Results
 * are checked against the same work done on one thread.
 *
 * A plain program, not a Criterion suite: Criterion cannot start under ThreadSanitizer
 * (Snaipe/Criterion#274). Exits non-zero on the first failed check. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ember/ember.h>

#include "plain_check.h"

#define N 192          /* matmul side: big enough to split */
#define BIG (1 << 20)  /* elements of the elementwise and reduction inputs */

/* Sum of every element of a float32 tensor, in double (called inside a scope, which
 * releases the temporaries). */
static double total(em_tensor *t)
{
    CHECK(t, "NULL tensor");
    em_tensor *s = em_sum_all(em_to_dtype(t, EM_F64));
    CHECK(s, "sum");
    return em_item(s);
}

/* One fixed workload. Its inputs and module are made on the main thread (the random
 * generator is process-wide: two threads drawing from it would each see a different
 * sequence); the ops and training steps run on whichever thread calls job_run. */
typedef struct job {
    em_tensor *a, *b, *x, *in, *y;
    em_module *m, *loss;
    em_optimizer *o;
    double sum;
} job;

static void job_make(job *j, uint64_t seed)
{
    em_manual_seed(seed);
    j->a = em_randn(2, (int64_t[]){N, N}, NULL);
    j->b = em_randn(2, (int64_t[]){N, N}, NULL);
    j->x = em_rand(1, (int64_t[]){BIG}, NULL);
    j->in = em_randn(2, (int64_t[]){512, 64}, NULL);
    int64_t labels[512];
    for (int i = 0; i < 512; i++)
        labels[i] = i % 10;
    j->y = em_tensor_from_data(labels, EM_I64, 1, (int64_t[]){512}, NULL);
    j->m = em_module_new("Sequential(Linear(64, 256), ReLU(), Linear(256, 10))");
    j->loss = em_module_new("CrossEntropyLoss()");
    j->o = j->m ? em_optimizer_new("Adam(lr=0.01)", j->m) : NULL;
    CHECK(j->a && j->b && j->x && j->in && j->y && j->loss && j->o, "job inputs");
}

static void job_free(job *j)
{
    em_optimizer_free(j->o);
    em_module_free(j->loss);
    em_module_free(j->m);
    em_release(j->a);
    em_release(j->b);
    em_release(j->x);
    em_release(j->in);
    em_release(j->y);
}

static void *job_run(void *arg)
{
    job *j = arg;
    em_scope_begin();
    double sum = total(em_matmul(j->a, j->b));
    sum += total(em_exp(em_add(j->x, j->x)));
    sum += total(em_softmax(em_reshape(j->x, 2, (int64_t[]){1024, BIG / 1024}), 1));
    em_tensor *mx = em_amax(j->x, 0, NULL, false);
    CHECK(mx, "amax");
    sum += em_item(mx);
    for (int step = 0; step < 3; step++) {
        CHECK(em_zero_grad(j->o) == EM_OK, "zero_grad");
        em_tensor *l = em_loss(j->loss, em_forward(j->m, j->in), j->y);
        CHECK(l && em_backward(l, NULL, false) == EM_OK, "backward");
        CHECK(em_step(j->o) == EM_OK, "step");
        sum += em_item(l);
    }
    em_scope_end();
    j->sum = sum;
    return NULL;
}

static void init(const char *threads)
{
    setenv("EMBER_NUM_THREADS", threads, 1);
    CHECK(em_init(NULL) == EM_OK, "em_init with %s threads", threads);
}

static bool close_to(double got, double ref) { return fabs(got - ref) <= 1e-5 * fabs(ref) + 1e-5; }

int main(void)
{
    setenv("EMBER_CONFIG", "", 0);
    setenv("EMBER_BACKEND", "cpu", 1);   /* the pool under test is the CPU backend's */
    init("1");
    job j;
    job_make(&j, 7);
    job_run(&j);
    double ref = j.sum;
    job_free(&j);
    em_shutdown();

    for (int cycle = 0; cycle < 2; cycle++) {   /* the pool joined and started again */
        init("2");
        job_make(&j, 7);
        job_run(&j);
        CHECK(close_to(j.sum, ref), "2 threads: %.9g, 1 thread: %.9g", j.sum, ref);
        job_free(&j);
        job js[2];
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            job_make(&js[i], 7);
        for (int i = 0; i < 2; i++)
            CHECK(pthread_create(&t[i], NULL, job_run, &js[i]) == 0, "pthread_create");
        for (int i = 0; i < 2; i++) {
            pthread_join(t[i], NULL);
            CHECK(close_to(js[i].sum, ref), "user thread %d: %.9g, 1 thread: %.9g", i, js[i].sum,
                  ref);
            job_free(&js[i]);
        }
        em_shutdown();
    }
    printf("stress_threads: ok (checksum %.9g)\n", ref);
    return 0;
}
