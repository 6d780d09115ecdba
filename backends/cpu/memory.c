/* backends/cpu/memory.c - host memory for the CPU backend: caches of freed blocks, small ones
 * by size class and large ones by size.
 *
 * Small buffers (under 1 MiB) are 64-byte aligned malloc blocks rounded up to a size class:
 * multiples of 64 bytes up to 256, then four classes per power of two (320, 384, 448, 512,
 * 640, ...), so no block wastes more than a quarter of itself. At free a block goes onto its
 * class's free list (a bounded total, EM_CPU_SMALL_CACHE_MAX), and the next buffer of that
 * class takes it back: a training step in steady state allocates the same sizes every time,
 * so after the first step it runs on cached blocks with no malloc, no mmap and no page fault
 * (glibc serves blocks over 128 KiB with a fresh mmap each time, and even smaller ones fault
 * when its heap is trimmed). Large buffers are 2 MiB-aligned, rounded up to whole 2 MiB
 * pages and advised as transparent huge pages; at free they go into a cache instead of back
 * to the system, so the next tensor of a similar size reuses memory whose pages are already
 * mapped (a fresh 64 MB output otherwise costs 16,384 page faults, which dominated an
 * elementwise op on 16M floats). The cache is bounded (EM_CPU_CACHE_MAX bytes);
 * em_empty_cache() hands both caches back. This is the CPU
 * counterpart of PyTorch's CUDA caching allocator: memory_reserved = the live blocks' rounded
 * sizes + the cached blocks.
 *
 * Thread safety: every function may be called from any thread; the small classes each have a
 * lock, the large cache one.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cpu.h"

#define ALIGN 64
#define LARGE_MIN ((size_t)1 << 20)
#define HUGE_PAGE ((size_t)2 << 20)
#define EM_CPU_CACHE_MAX ((size_t)1 << 30)
#define CACHE_SLOTS 64
#define EM_CPU_SMALL_CACHE_MAX ((size_t)256 << 20)
#define SMALL_CLASSES 52   /* 4 below 256 bytes, then 4 per power of two up to 1 MiB */

/* Live bytes as callers asked for them, bytes held in live buffers (rounded), bytes cached,
 * and the peak of the first. Relaxed atomics: statistics, not synchronisation. */
static atomic_size_t requested, held, peak;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    void *p;
    size_t size;
} cache[CACHE_SLOTS];
static int ncached;
static size_t cached_bytes;

/* malloc(size + align) with the address malloc returned stored just below the aligned block:
 * much cheaper than aligned_alloc for the many small buffers of small ops. */
static void *aligned_block(size_t size, size_t align)
{
    char *raw = malloc(size + align);
    if (!raw)
        return NULL;
    char *p = (char *)(((uintptr_t)raw + align) & ~(uintptr_t)(align - 1));
    memcpy(p - sizeof raw, &raw, sizeof raw);
    return p;
}

static void free_block(void *p)
{
    char *raw;
    memcpy(&raw, (char *)p - sizeof raw, sizeof raw);
    free(raw);
}

/* ---- small blocks: size classes ------------------------------------------------------------ */

/* The class of a small request: 0..3 are 64..256 bytes, then class 4 + 4 (k - 8) + j - 1 is
 * 2^k + j 2^(k-2) bytes (j = 1..4) for requests in (2^k, 2^(k+1)]. */
static int small_class(size_t nbytes)
{
    if (nbytes <= 256)
        return nbytes == 0 ? 0 : (int)((nbytes - 1) / 64);
    int k = 63 - __builtin_clzll((unsigned long long)(nbytes - 1));   /* 2^k < nbytes */
    size_t quarter = (size_t)1 << (k - 2);
    int j = (int)((nbytes - ((size_t)1 << k) + quarter - 1) / quarter);
    return 4 + 4 * (k - 8) + j - 1;
}

static size_t class_size(int c)
{
    if (c < 4)
        return (size_t)(c + 1) * 64;
    int k = 8 + (c - 4) / 4, j = (c - 4) % 4 + 1;
    return ((size_t)1 << k) + (size_t)j * ((size_t)1 << (k - 2));
}

/* Free blocks of each class, linked through their first bytes. */
static struct {
    pthread_mutex_t lock;
    void *head;
} small[SMALL_CLASSES];
static atomic_size_t small_cached;   /* bytes on the free lists */
static pthread_once_t small_once = PTHREAD_ONCE_INIT;

static void small_init(void)
{
    for (int c = 0; c < SMALL_CLASSES; c++)
        pthread_mutex_init(&small[c].lock, NULL);
}

static void *small_take(int c)
{
    pthread_once(&small_once, small_init);
    pthread_mutex_lock(&small[c].lock);
    void *p = small[c].head;
    if (p) {
        memcpy(&small[c].head, p, sizeof p);
        atomic_fetch_sub_explicit(&small_cached, class_size(c), memory_order_relaxed);
    }
    pthread_mutex_unlock(&small[c].lock);
    return p;
}

/* Keeps a freed small block unless the small cache is full; false if the caller must free it. */
static bool small_put(int c, void *p)
{
    size_t size = class_size(c);
    size_t now = atomic_fetch_add_explicit(&small_cached, size, memory_order_relaxed) + size;
    if (now > EM_CPU_SMALL_CACHE_MAX) {
        atomic_fetch_sub_explicit(&small_cached, size, memory_order_relaxed);
        return false;
    }
    pthread_mutex_lock(&small[c].lock);
    memcpy(p, &small[c].head, sizeof p);
    small[c].head = p;
    pthread_mutex_unlock(&small[c].lock);
    return true;
}

static void small_empty(void)
{
    pthread_once(&small_once, small_init);
    for (int c = 0; c < SMALL_CLASSES; c++) {
        pthread_mutex_lock(&small[c].lock);
        void *p = small[c].head;
        small[c].head = NULL;
        pthread_mutex_unlock(&small[c].lock);
        while (p) {
            void *next;
            memcpy(&next, p, sizeof next);
            free_block(p);
            atomic_fetch_sub_explicit(&small_cached, class_size(c), memory_order_relaxed);
            p = next;
        }
    }
}

/* ---- large blocks ---------------------------------------------------------------------------- */

static size_t block_size(size_t nbytes)
{
    if (nbytes >= LARGE_MIN)
        return (nbytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    return class_size(small_class(nbytes));
}

/* The smallest cached block that fits without wasting more than half of it. */
static void *cache_take(size_t size)
{
    void *p = NULL;
    pthread_mutex_lock(&cache_lock);
    int best = -1;
    for (int i = 0; i < ncached; i++)
        if (cache[i].size >= size && cache[i].size / 2 <= size &&
            (best < 0 || cache[i].size < cache[best].size))
            best = i;
    if (best >= 0) {
        p = cache[best].p;
        size = cache[best].size;
        cache[best] = cache[--ncached];
        cached_bytes -= size;
    }
    pthread_mutex_unlock(&cache_lock);
    return p;
}

/* Keeps a freed large block unless the cache is full; returns false if the caller must
 * free it. */
static bool cache_put(void *p, size_t size)
{
    bool kept = false;
    pthread_mutex_lock(&cache_lock);
    if (ncached < CACHE_SLOTS && cached_bytes + size <= EM_CPU_CACHE_MAX) {
        cache[ncached].p = p;
        cache[ncached++].size = size;
        cached_bytes += size;
        kept = true;
    }
    pthread_mutex_unlock(&cache_lock);
    return kept;
}

void *em_cpu__alloc(size_t nbytes)
{
    if (nbytes > SIZE_MAX / 2) {
        em_set_error(EM_ERR_NOMEM, "cpu: cannot allocate %zu bytes", nbytes);
        return NULL;
    }
    size_t size = block_size(nbytes);
    bool large = nbytes >= LARGE_MIN;
    void *p = large ? cache_take(size) : small_take(small_class(nbytes));
    if (!p) {
        p = aligned_block(size, large ? HUGE_PAGE : ALIGN);
        if (!p && large) {
            em_cpu__empty_cache();   /* the cache may be what is in the way: retry once */
            p = aligned_block(size, HUGE_PAGE);
        }
        if (!p) {
            em_set_error(EM_ERR_NOMEM, "cpu: out of memory allocating %zu bytes", nbytes);
            return NULL;
        }
#ifdef MADV_HUGEPAGE
        if (large)
            madvise(p, size, MADV_HUGEPAGE);   /* advice only */
#endif
    }
    atomic_fetch_add_explicit(&held, size, memory_order_relaxed);
    size_t now = atomic_fetch_add_explicit(&requested, nbytes, memory_order_relaxed) + nbytes;
    size_t pk = atomic_load_explicit(&peak, memory_order_relaxed);
    while (now > pk && !atomic_compare_exchange_weak_explicit(&peak, &pk, now,
                                                              memory_order_relaxed,
                                                              memory_order_relaxed))
        ;
    return p;
}

void em_cpu__free(void *p, size_t nbytes)
{
    if (!p)
        return;
    size_t size = block_size(nbytes);
    atomic_fetch_sub_explicit(&requested, nbytes, memory_order_relaxed);
    atomic_fetch_sub_explicit(&held, size, memory_order_relaxed);
    if (nbytes >= LARGE_MIN ? cache_put(p, size) : small_put(small_class(nbytes), p))
        return;
    free_block(p);
}

void em_cpu__memory_stats(em_memory_stats *out)
{
    out->allocated = atomic_load_explicit(&requested, memory_order_relaxed);
    pthread_mutex_lock(&cache_lock);
    out->reserved = atomic_load_explicit(&held, memory_order_relaxed) + cached_bytes +
                    atomic_load_explicit(&small_cached, memory_order_relaxed);
    pthread_mutex_unlock(&cache_lock);
    out->peak = atomic_load_explicit(&peak, memory_order_relaxed);
}

void em_cpu__reset_peak(void)
{
    atomic_store_explicit(&peak, atomic_load_explicit(&requested, memory_order_relaxed),
                          memory_order_relaxed);
}

void em_cpu__empty_cache(void)
{
    small_empty();
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < ncached; i++)
        free_block(cache[i].p);
    ncached = 0;
    cached_bytes = 0;
    pthread_mutex_unlock(&cache_lock);
}
