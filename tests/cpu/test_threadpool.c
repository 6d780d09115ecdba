/* tests/cpu/test_threadpool.c - the CPU backend's thread pool (backends/cpu/threadpool.c,
 * compiled into this test): what runs inline, that every index runs once, that the thread
 * count is respected, that concurrent and nested loops neither deadlock nor lose work, and
 * that a forked child gets a working pool of its own.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cpu.h"

#define MAX_SEEN 64

/* What a loop saw: calls, the threads that ran them, and how often each index ran. */
typedef struct record {
    atomic_int calls;
    pthread_mutex_t lock;
    pthread_t threads[MAX_SEEN];
    int nthreads;
    atomic_int *hits;
    int64_t n;
    int64_t first_begin, first_end;
    long sleep_ns;              /* per chunk, so that workers get a chance to join */
} record;

static void record_init(record *r, int64_t n, long sleep_ns)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    r->n = n;
    r->hits = calloc((size_t)(n > 0 ? n : 1), sizeof *r->hits);
    r->sleep_ns = sleep_ns;
    cr_assert_not_null(r->hits);
}

static void record_free(record *r)
{
    free(r->hits);
    pthread_mutex_destroy(&r->lock);
}

static void note(void *ctx, int64_t b, int64_t e)
{
    record *r = ctx;
    if (atomic_fetch_add(&r->calls, 1) == 0) {
        r->first_begin = b;
        r->first_end = e;
    }
    pthread_mutex_lock(&r->lock);
    bool known = false;
    for (int i = 0; i < r->nthreads; i++)
        known |= pthread_equal(r->threads[i], pthread_self());
    if (!known && r->nthreads < MAX_SEEN)
        r->threads[r->nthreads++] = pthread_self();
    pthread_mutex_unlock(&r->lock);
    for (int64_t i = b; i < e; i++)
        atomic_fetch_add(&r->hits[i], 1);
    if (r->sleep_ns) {
        struct timespec ts = {0, r->sleep_ns};
        nanosleep(&ts, NULL);
    }
}

static void assert_each_index_once(const record *r)
{
    for (int64_t i = 0; i < r->n; i++)
        cr_assert_eq(atomic_load(&r->hits[i]), 1, "index %lld ran %d times", (long long)i,
                     atomic_load(&r->hits[i]));
}

static void fini(void) { em_cpu__pool_shutdown(); }

TestSuite(threadpool, .fini = fini);

Test(threadpool, a_loop_no_bigger_than_its_grain_runs_inline_in_one_call)
{
    em_cpu__pool_configure(4);
    record r;
    record_init(&r, 1000, 0);
    em_cpu__parallel_for(1000, 1000, note, &r);
    cr_assert_eq(atomic_load(&r.calls), 1);
    cr_assert_eq(r.first_begin, 0);
    cr_assert_eq(r.first_end, 1000);
    cr_assert_eq(r.nthreads, 1);
    cr_assert(pthread_equal(r.threads[0], pthread_self()), "ran on the calling thread");
    assert_each_index_once(&r);
    record_free(&r);
}

Test(threadpool, an_empty_loop_calls_nothing)
{
    em_cpu__pool_configure(4);
    record r;
    record_init(&r, 0, 0);
    em_cpu__parallel_for(0, 16, note, &r);
    cr_assert_eq(atomic_load(&r.calls), 0);
    record_free(&r);
}

Test(threadpool, a_big_loop_runs_each_index_once_on_no_more_threads_than_configured)
{
    for (int threads = 1; threads <= 3; threads++) {
        em_cpu__pool_shutdown();
        em_cpu__pool_configure(threads);
        cr_assert_eq(em_cpu__pool_threads(), threads);
        for (int rep = 0; rep < 20; rep++) {
            record r;
            record_init(&r, 100000, rep < 2 ? 200000 : 0);
            em_cpu__parallel_for(r.n, 1000, note, &r);
            assert_each_index_once(&r);
            cr_assert_leq(r.nthreads, threads, "%d threads ran a loop on a pool of %d",
                          r.nthreads, threads);
            if (threads == 1)
                cr_assert_eq(atomic_load(&r.calls), 1, "one thread: one inline call");
            record_free(&r);
        }
    }
}

/* An inner loop started from a chunk runs inline, in one call on the chunk's thread. */
typedef struct nested {
    atomic_int bad, inner_calls;
} nested;

static void inner(void *ctx, int64_t b, int64_t e)
{
    nested *x = ctx;
    atomic_fetch_add(&x->inner_calls, 1);
    if (b != 0 || e != 50000)
        atomic_fetch_add(&x->bad, 1);
}

static void outer(void *ctx, int64_t b, int64_t e)
{
    nested *x = ctx;
    for (int64_t i = b; i < e; i++)
        em_cpu__parallel_for(50000, 10, inner, x);
}

Test(threadpool, a_loop_inside_a_chunk_runs_inline)
{
    em_cpu__pool_configure(2);
    nested x = {0};
    em_cpu__parallel_for(64, 1, outer, &x);
    cr_assert_eq(atomic_load(&x.inner_calls), 64, "one call per inner loop");
    cr_assert_eq(atomic_load(&x.bad), 0, "an inner loop was split");
}

static void *caller(void *arg)
{
    (void)arg;
    for (int rep = 0; rep < 50; rep++) {
        record r;
        record_init(&r, 20000, 0);
        em_cpu__parallel_for(r.n, 100, note, &r);
        for (int64_t i = 0; i < r.n; i++)
            if (atomic_load(&r.hits[i]) != 1)
                return (void *)1;
        record_free(&r);
    }
    return NULL;
}

Test(threadpool, concurrent_callers_each_get_all_their_work_done, .timeout = 60)
{
    em_cpu__pool_configure(2);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, caller, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        cr_assert_null(rc, "caller %d lost or repeated work", i);
    }
}

/* A child forked after the workers started has none of them: its loops must still finish
 * (on workers of its own), and so must the parent's after the fork. */
Test(threadpool, a_forked_child_runs_loops_on_a_pool_of_its_own, .timeout = 60)
{
    em_cpu__pool_configure(2);
    record r;
    record_init(&r, 100000, 0);
    em_cpu__parallel_for(r.n, 1000, note, &r);   /* starts the workers */
    record_free(&r);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        alarm(20);   /* a hang becomes a signal, not a stuck test */
        for (int rep = 0; rep < 20; rep++) {
            record c;
            /* the first loop's chunks take 20 ms each, time enough for a worker to join */
            record_init(&c, 100000, rep == 0 ? 20000000 : 0);
            em_cpu__parallel_for(c.n, 1000, note, &c);
            for (int64_t i = 0; i < c.n; i++)
                if (atomic_load(&c.hits[i]) != 1)
                    _exit(2);
            if (c.nthreads > 2)
                _exit(3);
            if (rep == 0 && c.nthreads < 2)
                _exit(4);   /* the child ran everything alone: it has no workers */
            record_free(&c);
        }
        em_cpu__pool_shutdown();
        _exit(0);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "the child died of signal %d",
              WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    cr_assert_eq(WEXITSTATUS(status), 0, "the child's loop failed (%d)", WEXITSTATUS(status));
    record_init(&r, 100000, 0);
    em_cpu__parallel_for(r.n, 1000, note, &r);
    assert_each_index_once(&r);
    record_free(&r);
}
