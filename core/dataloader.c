/* core/dataloader.c - the DataLoader: batches of a dataset in order or shuffled with a seed,
 * drop_last, delivery on a target device, and one background thread that collates the next
 * batches while the caller computes.
 *
 * Threads: the prefetch thread only collates (em__collate: CPU tensor allocation and memcpy,
 * plus a user get_item for user datasets) and hands finished CPU batches over through a small
 * ring under a mutex. Everything else, including em_to for a non-CPU target (backends are not
 * required to be thread safe), runs on the caller's thread in em_dataloader_next. The thread
 * lives for one epoch: it starts at the first batch of the epoch and is joined at its end, at
 * reset, and by em_dataloader_free.
 *
 * Not here: datasets and collation (core/data.c).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"

/* The shuffle stream's domain, apart from random_split's (core/data.c). */
#define SHUFFLE_KEY_SALT UINT64_C(0xDA7A10ADE25EED5)
/* Philox blocks reserved per epoch: epoch k draws from counters k * 2^40 on, which is room for
 * 2^41 samples per epoch. */
#define EPOCH_STRIDE (UINT64_C(1) << 40)

typedef struct batch {
    em_tensor *x, *y;
    int status;          /* EM_OK, or the error the worker hit (message in msg) */
    char *msg;
} batch;

struct em_dataloader {
    em__dsource *src;    /* one reference */
    int64_t *map;        /* the dataset's split map (copied), or NULL */
    int64_t map_n;
    int64_t batch_size;
    bool shuffle;
    uint64_t seed;
    bool drop_last;
    int prefetch;
    bool device_set;
    em_device device;
    int shard_rank, shard_world;   /* world 1: not sharded */
    em_shard_mode shard_mode;

    /* the current epoch */
    int64_t epoch;
    bool prepared;       /* order and nbatches are set for `epoch` */
    bool started;        /* a batch of `epoch` was taken */
    int64_t n;           /* samples this epoch */
    int64_t nbatches;
    int64_t taken;       /* batches handed to the caller */
    int64_t *order;      /* source indices in epoch order */
    em_device cpu;

    /* the prefetch thread and its ring (guarded by mu) */
    pthread_t thread;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t not_full, not_empty;
    batch *ring;
    int cap, head, count;
    bool stop;           /* the consumer wants the thread gone */
    bool done;           /* the thread has produced its last batch (or failed) */
};

/* ---- lifecycle ------------------------------------------------------------------------------- */

em_dataloader *em_dataloader_new(em_dataset *d, int64_t batch_size, bool shuffle, uint64_t seed)
{
    const char *fn = "em_dataloader_new";
    if (em__require_init(fn) < 0)
        return NULL;
    if (!d)
        return em__null_arg(fn, "dataset"), NULL;
    if (batch_size < 1)
        return em_set_error(EM_ERR_INVALID, "%s: batch_size is %lld; need at least 1", fn,
                            (long long)batch_size),
               NULL;
    em_dataloader *dl = calloc(1, sizeof *dl);
    if (!dl)
        return em_set_error(EM_ERR_NOMEM, "%s: out of memory", fn), NULL;
    if (d->map) {
        if (!(dl->map = malloc((size_t)(d->n ? d->n : 1) * sizeof *dl->map))) {
            free(dl);
            return em_set_error(EM_ERR_NOMEM, "%s: out of memory", fn), NULL;
        }
        memcpy(dl->map, d->map, (size_t)d->n * sizeof *dl->map);
        dl->map_n = d->n;
    }
    em__dsource_retain(d->src);
    dl->src = d->src;
    dl->batch_size = batch_size;
    dl->shuffle = shuffle;
    dl->seed = seed;
    dl->prefetch = 2;
    dl->shard_world = 1;
    dl->shard_mode = EM_SHARD_PAD;
    pthread_mutex_init(&dl->mu, NULL);
    pthread_cond_init(&dl->not_full, NULL);
    pthread_cond_init(&dl->not_empty, NULL);
    return dl;
}

static void free_batch(batch *b)
{
    em_release(b->x);
    em_release(b->y);
    free(b->msg);
    memset(b, 0, sizeof *b);
}

/* Stops and joins the prefetch thread and drops the batches it prepared. */
static void stop_worker(em_dataloader *dl)
{
    if (dl->running) {
        pthread_mutex_lock(&dl->mu);
        dl->stop = true;
        pthread_cond_broadcast(&dl->not_full);
        pthread_mutex_unlock(&dl->mu);
        pthread_join(dl->thread, NULL);
        dl->running = false;
    }
    for (; dl->count > 0; dl->count--) {
        free_batch(&dl->ring[dl->head]);
        dl->head = (dl->head + 1) % dl->cap;
    }
    free(dl->ring);
    dl->ring = NULL;
    dl->cap = dl->head = 0;
    dl->stop = dl->done = false;
}

/* Forgets the prepared epoch (the next call prepares `epoch` afresh). */
static void unprepare(em_dataloader *dl)
{
    stop_worker(dl);
    free(dl->order);
    dl->order = NULL;
    dl->prepared = dl->started = false;
    dl->taken = 0;
}

void em_dataloader_free(em_dataloader *dl)
{
    if (!dl)
        return;
    unprepare(dl);
    pthread_cond_destroy(&dl->not_empty);
    pthread_cond_destroy(&dl->not_full);
    pthread_mutex_destroy(&dl->mu);
    em__dsource_release(dl->src);
    free(dl->map);
    free(dl);
}

/* ---- settings -------------------------------------------------------------------------------- */

static int check_between_epochs(em_dataloader *dl, const char *fn)
{
    if (!dl)
        return em__null_arg(fn, "dl");
    if (dl->started)
        return em_set_error(EM_ERR_STATE, "%s: an epoch is in progress (batch %lld of %lld); "
                                          "change settings before iterating or after an epoch "
                                          "ends",
                            fn, (long long)dl->taken, (long long)dl->nbatches);
    unprepare(dl);   /* a prefetch started for the old settings is dropped */
    return EM_OK;
}

int em_dataloader_set_drop_last(em_dataloader *dl, bool drop_last)
{
    int rc = check_between_epochs(dl, "em_dataloader_set_drop_last");
    if (rc == EM_OK)
        dl->drop_last = drop_last;
    return rc;
}

int em_dataloader_set_device(em_dataloader *dl, em_device d)
{
    const char *fn = "em_dataloader_set_device";
    int rc = check_between_epochs(dl, fn);
    if (rc == EM_OK && (rc = em__device_check(fn, em__resolve_device(d))) == EM_OK) {
        dl->device = d;
        dl->device_set = true;
    }
    return rc;
}

int em_dataloader_set_prefetch(em_dataloader *dl, int batches)
{
    const char *fn = "em_dataloader_set_prefetch";
    int rc = check_between_epochs(dl, fn);
    if (rc == EM_OK && batches < 0)
        rc = em_set_error(EM_ERR_INVALID, "%s: %d batches; use 0 to collate on the calling "
                                          "thread",
                          fn, batches);
    if (rc == EM_OK)
        dl->prefetch = batches;
    return rc;
}

int em_dataloader_set_shard(em_dataloader *dl, int rank, int world, em_shard_mode mode)
{
    const char *fn = "em_dataloader_set_shard";
    int rc = check_between_epochs(dl, fn);
    if (rc == EM_OK && (world < 1 || rank < 0 || rank >= world))
        rc = em_set_error(EM_ERR_INVALID, "%s: rank %d of world %d is not a rank", fn, rank,
                          world);
    if (rc == EM_OK && (mode < EM_SHARD_PAD || mode >= EM_SHARD_MODE_COUNT))
        rc = em_set_error(EM_ERR_INVALID, "%s: unknown mode %d", fn, (int)mode);
    if (rc == EM_OK) {
        dl->shard_rank = rank;
        dl->shard_world = world;
        dl->shard_mode = mode;
    }
    return rc;
}

/* ---- epochs ---------------------------------------------------------------------------------- */

/* This rank's number of samples out of n (all of them when not sharded). */
static int64_t shard_len(const em_dataloader *dl, int64_t n)
{
    int64_t w = dl->shard_world, r = dl->shard_rank;
    if (w == 1)
        return n;
    switch (dl->shard_mode) {
    case EM_SHARD_PAD: return n == 0 ? 0 : (n + w - 1) / w;
    case EM_SHARD_DROP: return n / w;
    default: return n / w + (r < n % w ? 1 : 0);
    }
}

/* Keeps this rank's positions r, r + w, ... of the epoch order (len n > 0) at the front of
 * `order`, padding by wrapping around to the start; `head` receives a copy of the first
 * min(n, w) entries first (the padding reads from there, the rest of the copy is in place
 * because position r + k w >= k). Returns the share's length. */
static int64_t shard_order(const em_dataloader *dl, int64_t *order, int64_t n, int64_t *head)
{
    int64_t m = shard_len(dl, n), w = dl->shard_world;
    memcpy(head, order, (size_t)(n < w ? n : w) * sizeof *head);
    for (int64_t k = 0; k < m; k++) {
        int64_t p = dl->shard_rank + k * w;
        order[k] = p < n ? order[p] : head[p % n];
    }
    return m;
}

static int64_t count_batches(const em_dataloader *dl, int64_t n)
{
    n = shard_len(dl, n);
    return dl->drop_last ? n / dl->batch_size : (n + dl->batch_size - 1) / dl->batch_size;
}

int64_t em_dataloader_num_batches(const em_dataloader *dl)
{
    if (!dl)
        return em__null_arg("em_dataloader_num_batches", "dl");
    if (dl->prepared)
        return dl->nbatches;
    int64_t n = dl->map ? dl->map_n : em__dsource_len(dl->src);
    return n < 0 ? n : count_batches(dl, n);
}

int64_t em_dataloader_epoch(const em_dataloader *dl) { return dl ? dl->epoch : -1; }

int em_dataloader_reset(em_dataloader *dl)
{
    if (!dl)
        return em__null_arg("em_dataloader_reset", "dl");
    if (dl->started) {
        unprepare(dl);
        dl->epoch++;
    }
    return EM_OK;
}

int em_dataloader_set_epoch(em_dataloader *dl, int64_t epoch)
{
    if (!dl)
        return em__null_arg("em_dataloader_set_epoch", "dl");
    if (epoch < 0)
        return em_set_error(EM_ERR_INVALID, "em_dataloader_set_epoch: epoch %lld is negative",
                            (long long)epoch);
    unprepare(dl);
    dl->epoch = epoch;
    return EM_OK;
}

static void *worker_main(void *arg);

/* Fixes the order of `epoch` and starts the prefetch thread. */
static int prepare(em_dataloader *dl)
{
    const char *fn = "em_dataloader_next";
    int rc = em__dsource_check_ready(dl->src, fn);
    if (rc < 0)
        return rc;
    em_backend *cpu = em__cpu_backend();
    if (!cpu)
        return EM_ERR_DEVICE;
    dl->cpu = (em_device){cpu->id, 0};
    int64_t n = dl->map ? dl->map_n : em__dsource_len(dl->src);
    if (n < 0)
        return (int)n;
    int64_t *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    if (!order)
        return em_set_error(EM_ERR_NOMEM, "%s: out of memory for the order of %lld samples", fn,
                            (long long)n);
    if (dl->shuffle) {
        em__philox_permutation(order, n, dl->seed ^ SHUFFLE_KEY_SALT,
                               (uint64_t)dl->epoch * EPOCH_STRIDE);
    } else {
        for (int64_t i = 0; i < n; i++)
            order[i] = i;
    }
    if (dl->map)
        for (int64_t i = 0; i < n; i++)
            order[i] = dl->map[order[i]];
    dl->order = order;
    dl->nbatches = count_batches(dl, n);
    dl->n = n;
    if (dl->shard_world > 1 && n > 0) {
        int64_t *head = malloc((size_t)dl->shard_world * sizeof *head);
        if (!head)
            return em_set_error(EM_ERR_NOMEM, "%s: out of memory", fn);
        dl->n = shard_order(dl, order, n, head);
        free(head);
    }
    dl->taken = 0;
    dl->prepared = true;
    if (dl->prefetch > 0 && dl->nbatches > 0) {
        dl->cap = dl->prefetch;
        if (!(dl->ring = calloc((size_t)dl->cap, sizeof *dl->ring)))
            return em_set_error(EM_ERR_NOMEM, "%s: out of memory", fn);
        dl->head = dl->count = 0;
        dl->stop = dl->done = false;
        if (pthread_create(&dl->thread, NULL, worker_main, dl) != 0) {
            free(dl->ring);
            dl->ring = NULL;
            dl->cap = 0;
            return em_set_error(EM_ERR_INTERNAL, "%s: cannot start the prefetch thread "
                                                 "(set_prefetch(dl, 0) collates without one)",
                                fn);
        }
        dl->running = true;
    }
    return EM_OK;
}

static int collate_batch(em_dataloader *dl, int64_t b, em_tensor **x, em_tensor **y)
{
    int64_t start = b * dl->batch_size;
    int64_t count = dl->n - start < dl->batch_size ? dl->n - start : dl->batch_size;
    return em__collate(dl->src, dl->order + start, count, dl->cpu, x, y);
}

/* The prefetch thread: batches 0 .. nbatches-1 of the prepared epoch, in order, into the ring.
 * It reads only what prepare() fixed before starting it (order, n, cpu, batch_size), so the
 * only shared state is the ring and the stop/done flags under mu. */
static void *worker_main(void *arg)
{
    em_dataloader *dl = arg;
    for (int64_t b = 0; b < dl->nbatches; b++) {
        pthread_mutex_lock(&dl->mu);
        while (dl->count == dl->cap && !dl->stop)
            pthread_cond_wait(&dl->not_full, &dl->mu);
        bool stop = dl->stop;
        pthread_mutex_unlock(&dl->mu);
        if (stop)
            break;
        batch out = {0};
        out.status = collate_batch(dl, b, &out.x, &out.y);
        if (out.status < 0) {
            const char *e = em_last_error();
            out.msg = strdup(e && *e ? e : "collation failed");
        }
        pthread_mutex_lock(&dl->mu);
        dl->ring[(dl->head + dl->count) % dl->cap] = out;
        dl->count++;
        bool failed = out.status < 0;
        pthread_cond_signal(&dl->not_empty);
        pthread_mutex_unlock(&dl->mu);
        if (failed)
            break;
    }
    pthread_mutex_lock(&dl->mu);
    dl->done = true;
    pthread_cond_signal(&dl->not_empty);
    pthread_mutex_unlock(&dl->mu);
    return NULL;
}

/* The next collated CPU batch: from the ring, or collated here without prefetching. */
static int take(em_dataloader *dl, em_tensor **x, em_tensor **y)
{
    if (!dl->running)
        return collate_batch(dl, dl->taken, x, y);
    pthread_mutex_lock(&dl->mu);
    while (dl->count == 0 && !dl->done)
        pthread_cond_wait(&dl->not_empty, &dl->mu);
    batch b = {0};
    bool have = dl->count > 0;
    if (have) {
        b = dl->ring[dl->head];
        memset(&dl->ring[dl->head], 0, sizeof b);
        dl->head = (dl->head + 1) % dl->cap;
        dl->count--;
        pthread_cond_signal(&dl->not_full);
    }
    pthread_mutex_unlock(&dl->mu);
    if (!have)
        return em_set_error(EM_ERR_INTERNAL, "em_dataloader_next: the prefetch thread ended "
                                             "early");
    if (b.status < 0) {
        int rc = em_set_error(b.status, "%s", b.msg ? b.msg : "collation failed");
        free_batch(&b);
        return rc;
    }
    free(b.msg);
    *x = b.x;
    *y = b.y;
    return EM_OK;
}

/* Moves a CPU batch tensor to the target device on this thread; consumes t. */
static em_tensor *deliver(em_tensor *t, em_device target)
{
    if (!t || em_device_eq(em__tensor_device(t), target))
        return t;
    em__api_depth++;
    em_tensor *r = em_to(t, target);
    em__api_depth--;
    em_release(t);
    return r;
}

bool em_dataloader_next(em_dataloader *dl, em_tensor **x, em_tensor **y)
{
    if (x)
        *x = NULL;
    if (y)
        *y = NULL;
    if (!dl || !x || !y)
        return em__null_arg("em_dataloader_next", !dl ? "dl" : !x ? "x" : "y"), false;
    if (!dl->prepared) {
        int rc = prepare(dl);
        if (rc < 0) {
            unprepare(dl);
            return false;
        }
    }
    if (dl->taken >= dl->nbatches) {
        /* End of the epoch: the next call starts the next one. */
        unprepare(dl);
        dl->epoch++;
        em_clear_error();
        return false;
    }
    dl->started = true;
    em_tensor *bx = NULL, *by = NULL;
    int rc = take(dl, &bx, &by);
    em_device target = em__resolve_device(dl->device_set ? dl->device : (em_device){0, 0});
    if (rc == EM_OK) {
        bool labeled = by != NULL;
        bx = deliver(bx, target);
        by = deliver(by, target);
        if (!bx || (labeled && !by))
            rc = em_last_status() < 0 ? em_last_status() : EM_ERR_INTERNAL;
    }
    if (rc < 0) {
        /* Keep the message, drop the rest of the epoch. */
        em_release(bx);
        em_release(by);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", em_last_error());
        unprepare(dl);
        dl->epoch++;
        em_set_error(rc, "%s", msg);
        return false;
    }
    dl->taken++;
    if (dl->taken == dl->nbatches)
        stop_worker(dl);   /* its last batch is out: join it now rather than at the next call */
    if (em__scope_depth > 0 && em__api_depth == 0) {
        em__scope_track(bx);
        if (by)
            em__scope_track(by);
    }
    *x = bx;
    *y = by;
    return true;
}
