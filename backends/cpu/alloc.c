/* backends/cpu/alloc.c - host memory for the CPU backend: small buffers from malloc, large
 * ones from a cache of freed blocks.
 *
 * Small buffers (under 1 MiB) are 64-byte aligned malloc blocks, returned at free. Large
 * buffers are 2 MiB-aligned, rounded up to whole 2 MiB pages and advised as transparent huge
 * pages; at free they go into a cache instead of back to the system, so the next tensor of a
 * similar size reuses memory whose pages are already mapped (a fresh 64 MB output otherwise
 * costs 16,384 page faults, which dominated an elementwise op on 16M floats). The cache is
 * bounded (EM_CPU_CACHE_MAX bytes); em_empty_cache() hands it back. This is the CPU
 * counterpart of PyTorch's CUDA caching allocator: memory_reserved = allocated + cached.
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

static size_t block_size(size_t nbytes)
{
    if (nbytes >= LARGE_MIN)
        return (nbytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    return nbytes == 0 ? ALIGN : (nbytes + ALIGN - 1) / ALIGN * ALIGN;
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
    void *p = large ? cache_take(size) : NULL;
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
    if (nbytes >= LARGE_MIN && cache_put(p, size))
        return;
    free_block(p);
}

void em_cpu__memory_stats(em_memory_stats *out)
{
    out->allocated = atomic_load_explicit(&requested, memory_order_relaxed);
    pthread_mutex_lock(&cache_lock);
    out->reserved = atomic_load_explicit(&held, memory_order_relaxed) + cached_bytes;
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
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < ncached; i++)
        free_block(cache[i].p);
    ncached = 0;
    cached_bytes = 0;
    pthread_mutex_unlock(&cache_lock);
}
