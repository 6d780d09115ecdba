/* backends/cpu/threadpool.c - the CPU backend's persistent worker pool and parallel_for.
 *
 * One pool per process: em_config_threads() - 1 workers plus the calling thread, created at
 * the first loop big enough to split and joined by the plugin's shutdown hook. One loop runs
 * on the pool at a time; a second thread that asks while it is busy, and any loop started
 * from inside a chunk, runs inline instead of waiting (no deadlock, no oversubscription).
 * This is not a general task scheduler: chunks are claimed from a shared counter, the caller
 * works too, and workers spin briefly before sleeping so back-to-back big ops stay cheap. The
 * caller, once its own chunks are done, spins as briefly for the workers' last chunks and
 * then sleeps on a condition variable too; nothing here loops on sched_yield.
 *
 * fork(): the child of a process whose pool runs has none of its workers, and may have been
 * forked while a worker held the pool's lock. pthread_atfork handlers take both locks around
 * fork (so no loop is in flight and no lock is held by a thread the child lacks) and reset
 * the child's pool to "not started": its first big loop starts workers of its own. glibc drops
 * the handlers when the plugin is unloaded (dlclose), so a fork after em_shutdown is safe.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "cpu.h"

/* How long an idle worker spins on the job counter before sleeping on the condvar. */
#define SPIN_NS 50000

typedef struct pool_job {
    em_cpu_task_fn fn;
    void *ctx;
    int64_t n, chunk, nchunks;
} pool_job;

static struct {
    pthread_mutex_t lock;     /* guards everything below that is not atomic */
    pthread_cond_t wake;      /* a new job (gen moved) or stop */
    pthread_cond_t idle;      /* `active` dropped to 0 */
    pthread_cond_t finished;  /* the last chunk of a job is done */
    pthread_mutex_t submit;   /* held by the thread whose loop owns the pool */
    pthread_t *threads;
    int nworkers;
    int sleepers;
    int active;               /* workers holding a copy of the current job */
    bool stop;
    pool_job job;
    atomic_bool ready;
    atomic_uint gen;          /* bumped (under lock) for every job */
    atomic_int_fast64_t next; /* next chunk to claim */
    atomic_int_fast64_t done; /* chunks finished */
} pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .idle = PTHREAD_COND_INITIALIZER,
    .finished = PTHREAD_COND_INITIALIZER,
    .submit = PTHREAD_MUTEX_INITIALIZER,
};

static int pool_threads = 1;
static EM_PLUGIN_THREAD_LOCAL bool in_worker;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Claims and runs chunks of `job` until none is left. */
static void run_chunks(const pool_job *job)
{
    for (;;) {
        int64_t c = atomic_fetch_add_explicit(&pool.next, 1, memory_order_relaxed);
        if (c >= job->nchunks)
            return;
        int64_t b = c * job->chunk;
        int64_t e = b + job->chunk < job->n ? b + job->chunk : job->n;
        job->fn(job->ctx, b, e);
        if (atomic_fetch_add_explicit(&pool.done, 1, memory_order_acq_rel) + 1 == job->nchunks) {
            /* the last chunk: wake the caller if it went to sleep waiting for it */
            pthread_mutex_lock(&pool.lock);
            pthread_cond_signal(&pool.finished);
            pthread_mutex_unlock(&pool.lock);
        }
    }
}

/* Spins on `until` for up to SPIN_NS; true if it came true. */
static bool spin_until(bool (*until)(const void *), const void *arg)
{
    int64_t t0 = now_ns();
    for (int i = 0; !until(arg); i++) {
        cpu_relax();
        if ((i & 255) == 255 && now_ns() - t0 > SPIN_NS)
            return false;
    }
    return true;
}

static bool gen_moved(const void *seen)
{
    return atomic_load_explicit(&pool.gen, memory_order_acquire) != *(const unsigned *)seen;
}

static bool all_done(const void *nchunks)
{
    return atomic_load_explicit(&pool.done, memory_order_acquire) >= *(const int64_t *)nchunks;
}

static void *worker_main(void *arg)
{
    unsigned seen = (unsigned)(uintptr_t)arg;
    in_worker = true;
    for (;;) {
        /* Spin a little: the next op of a sequence usually comes within microseconds. */
        spin_until(gen_moved, &seen);
        pthread_mutex_lock(&pool.lock);
        while (atomic_load_explicit(&pool.gen, memory_order_relaxed) == seen && !pool.stop) {
            pool.sleepers++;
            pthread_cond_wait(&pool.wake, &pool.lock);
            pool.sleepers--;
        }
        if (pool.stop) {
            pthread_mutex_unlock(&pool.lock);
            return NULL;
        }
        seen = atomic_load_explicit(&pool.gen, memory_order_relaxed);
        pool_job job = pool.job;
        pool.active++;
        pthread_mutex_unlock(&pool.lock);

        run_chunks(&job);

        pthread_mutex_lock(&pool.lock);
        if (--pool.active == 0)
            pthread_cond_signal(&pool.idle);
        pthread_mutex_unlock(&pool.lock);
    }
}

/* ---- fork ----------------------------------------------------------------------------------- */

static void atfork_prepare(void)
{
    pthread_mutex_lock(&pool.submit);     /* waits for a loop in flight */
    pthread_mutex_lock(&pool.lock);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool.submit);
}

/* The child has only the forking thread: forget the parent's workers (their stacks are
 * mappings reclaimed at exec or exit; the threads array is the child's copy, freed here:
 * glibc's fork has unlocked malloc before child handlers run) and start afresh. The
 * locks and condition variables are made anew rather than unlocked: the copied condition
 * variables still count the parent's sleeping workers as waiters, and a signal meant for a
 * new worker could go to one of those phantoms (a child that hung so was caught by
 * tests/cpu/test_threadpool.c). */
static void atfork_child(void)
{
    free(pool.threads);
    pool.threads = NULL;
    pool.nworkers = 0;
    pool.sleepers = 0;
    pool.active = 0;
    pool.stop = false;
    atomic_store_explicit(&pool.ready, false, memory_order_relaxed);
    in_worker = false;
    pthread_mutex_init(&pool.lock, NULL);
    pthread_mutex_init(&pool.submit, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.idle, NULL);
    pthread_cond_init(&pool.finished, NULL);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_register(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

void em_cpu__pool_configure(int threads)
{
    pool_threads = threads > 0 ? threads : 1;
}

int em_cpu__pool_threads(void)
{
    return pool_threads;
}

/* Starts the workers once. Returns false (run inline) if threads cannot be created. */
static bool pool_start(void)
{
    if (atomic_load_explicit(&pool.ready, memory_order_acquire))
        return pool.nworkers > 0;
    pthread_once(&atfork_once, atfork_register);
    pthread_mutex_lock(&pool.lock);
    if (!atomic_load_explicit(&pool.ready, memory_order_relaxed)) {
        int want = pool_threads - 1;
        pool.threads = calloc((size_t)want, sizeof *pool.threads);
        pool.nworkers = 0;
        pool.stop = false;
        unsigned g = atomic_load_explicit(&pool.gen, memory_order_relaxed);
        for (int i = 0; pool.threads && i < want; i++) {
            if (pthread_create(&pool.threads[i], NULL, worker_main, (void *)(uintptr_t)g) != 0)
                break;
            pool.nworkers++;
        }
        atomic_store_explicit(&pool.ready, true, memory_order_release);
    }
    bool ok = pool.nworkers > 0;
    pthread_mutex_unlock(&pool.lock);
    return ok;
}

void em_cpu__pool_shutdown(void)
{
    pthread_mutex_lock(&pool.lock);
    if (!atomic_load_explicit(&pool.ready, memory_order_relaxed)) {
        pthread_mutex_unlock(&pool.lock);
        return;
    }
    pool.stop = true;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    for (int i = 0; i < pool.nworkers; i++)
        pthread_join(pool.threads[i], NULL);
    free(pool.threads);
    pool.threads = NULL;
    pool.nworkers = 0;
    pool.active = 0;
    pool.stop = false;
    atomic_store_explicit(&pool.ready, false, memory_order_release);
}

void em_cpu__parallel_for(int64_t n, int64_t grain, em_cpu_task_fn fn, void *ctx)
{
    if (grain < 1)
        grain = 1;
    if (n <= grain || pool_threads <= 1 || in_worker) {
        if (n > 0)
            fn(ctx, 0, n);
        return;
    }
    if (!pool_start() || pthread_mutex_trylock(&pool.submit) != 0) {
        fn(ctx, 0, n);
        return;
    }
    /* A few chunks per thread balance out workers that start late. */
    int64_t nthreads = pool.nworkers + 1;
    int64_t nchunks = (n + grain - 1) / grain;
    if (nchunks > nthreads * 4)
        nchunks = nthreads * 4;
    int64_t chunk = (n + nchunks - 1) / nchunks;
    if (chunk > 64)
        chunk = (chunk + 63) / 64 * 64;   /* chunk edges on cache-line multiples */
    nchunks = (n + chunk - 1) / chunk;

    pool_job job = {fn, ctx, n, chunk, nchunks};
    pthread_mutex_lock(&pool.lock);
    while (pool.active > 0)               /* a late worker still holds the last job */
        pthread_cond_wait(&pool.idle, &pool.lock);
    pool.job = job;
    atomic_store_explicit(&pool.next, 0, memory_order_relaxed);
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&pool.gen, 1, memory_order_release);
    if (pool.sleepers > 0)
        pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);

    in_worker = true;                     /* loops inside our own chunks run inline */
    run_chunks(&job);
    in_worker = false;
    /* Workers finish their last chunks: spin briefly, then sleep until the last one is done
     * (run_chunks signals `finished` after counting it, under the lock). */
    if (!spin_until(all_done, &nchunks)) {
        pthread_mutex_lock(&pool.lock);
        while (!all_done(&nchunks))
            pthread_cond_wait(&pool.finished, &pool.lock);
        pthread_mutex_unlock(&pool.lock);
    }
    pthread_mutex_unlock(&pool.submit);
}
