/* backends/cuda/caching.c - the caching allocator's block and segment bookkeeping (see
 * caching.h). Pure C: no CUDA call here, the raw allocator is a pair of function pointers. */
#include "caching.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double MIB = 1024.0 * 1024.0;

size_t em_cuda__pool_round(size_t nbytes)
{
    if (nbytes < EM_CUDA_ROUND)
        return EM_CUDA_ROUND;
    return (nbytes + EM_CUDA_ROUND - 1) / EM_CUDA_ROUND * EM_CUDA_ROUND;
}

static size_t segment_size(size_t size)
{
    if (size <= EM_CUDA_SMALL_MAX)
        return EM_CUDA_SMALL_SEGMENT;
    if (size < EM_CUDA_LARGE_DIRECT)
        return EM_CUDA_LARGE_SEGMENT;
    return (size + EM_CUDA_LARGE_ROUND - 1) / EM_CUDA_LARGE_ROUND * EM_CUDA_LARGE_ROUND;
}

static size_t bucket(uintptr_t addr)
{
    return (size_t)((addr >> 9) * 2654435761u) % EM_CUDA_POOL_BUCKETS;
}

void em_cuda__pool_init(em_cuda_pool *p, const em_cuda_raw *raw)
{
    memset(p, 0, sizeof *p);
    p->raw = *raw;
}

static em_cuda_block **free_list(em_cuda_pool *p, bool small)
{
    return small ? &p->free_small : &p->free_large;
}

static void free_insert(em_cuda_pool *p, em_cuda_block *b)
{
    em_cuda_block **head = free_list(p, b->small);
    b->fprev = NULL;
    b->fnext = *head;
    if (*head)
        (*head)->fprev = b;
    *head = b;
}

static void free_remove(em_cuda_pool *p, em_cuda_block *b)
{
    if (b->fprev)
        b->fprev->fnext = b->fnext;
    else
        *free_list(p, b->small) = b->fnext;
    if (b->fnext)
        b->fnext->fprev = b->fprev;
    b->fprev = b->fnext = NULL;
}

static void live_insert(em_cuda_pool *p, em_cuda_block *b)
{
    size_t h = bucket(b->addr);
    b->hnext = p->live[h];
    p->live[h] = b;
}

static em_cuda_block *live_find(const em_cuda_pool *p, uintptr_t addr)
{
    for (em_cuda_block *b = p->live[bucket(addr)]; b; b = b->hnext)
        if (b->addr == addr)
            return b;
    return NULL;
}

static void live_remove(em_cuda_pool *p, em_cuda_block *b)
{
    em_cuda_block **pp = &p->live[bucket(b->addr)];
    while (*pp && *pp != b)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = b->hnext;
    b->hnext = NULL;
}

/* Smallest free block of the pool of at least `size` bytes. */
static em_cuda_block *best_fit(em_cuda_pool *p, bool small, size_t size)
{
    em_cuda_block *best = NULL;
    for (em_cuda_block *b = *free_list(p, small); b; b = b->fnext)
        if (b->size >= size && (!best || b->size < best->size ||
                                (b->size == best->size && b->addr < best->addr)))
            best = b;
    return best;
}

static bool is_whole_segment(const em_cuda_block *b)
{
    return !b->prev && !b->next;
}

size_t em_cuda__pool_empty_cache(em_cuda_pool *p)
{
    size_t freed = 0;
    for (int s = 0; s < 2; s++) {
        em_cuda_block *b = *free_list(p, s == 0);
        while (b) {
            em_cuda_block *next = b->fnext;
            if (is_whole_segment(b)) {
                free_remove(p, b);
                p->raw.free(p->raw.ctx, (void *)b->addr, b->size);
                p->raw_frees++;
                p->reserved -= b->size;
                p->segments--;
                freed += b->size;
                free(b);
            }
            b = next;
        }
    }
    return freed;
}

static void set_oom(em_cuda_pool *p, size_t nbytes)
{
    size_t dev_free = p->raw.free_mem ? p->raw.free_mem(p->raw.ctx) : 0;
    snprintf(p->oom, sizeof p->oom,
             "cuda: out of memory: tried to allocate %.2f MiB (%.2f MiB allocated, "
             "%.2f MiB reserved, %.2f MiB free on the device)",
             (double)nbytes / MIB, (double)p->allocated / MIB, (double)p->reserved / MIB,
             (double)dev_free / MIB);
}

void *em_cuda__pool_alloc(em_cuda_pool *p, size_t nbytes)
{
    p->oom[0] = '\0';
    size_t size = em_cuda__pool_round(nbytes);
    if (size < nbytes) {                    /* wrapped around */
        set_oom(p, nbytes);
        return NULL;
    }
    bool small = size <= EM_CUDA_SMALL_MAX;
    em_cuda_block *b = best_fit(p, small, size);
    if (b) {
        free_remove(p, b);
    } else {
        size_t seg = segment_size(size);
        b = calloc(1, sizeof *b);
        if (!b)
            return NULL;
        void *mem = p->raw.alloc(p->raw.ctx, seg);
        p->raw_allocs++;
        if (!mem) {
            /* Hand the cache back to the driver and try once more. */
            em_cuda__pool_empty_cache(p);
            mem = p->raw.alloc(p->raw.ctx, seg);
            p->raw_allocs++;
        }
        if (!mem) {
            free(b);
            set_oom(p, nbytes);
            return NULL;
        }
        b->addr = (uintptr_t)mem;
        b->size = seg;
        b->small = small;
        p->reserved += seg;
        p->segments++;
    }
    /* Split off the rest when it is worth keeping. */
    size_t rest = b->size - size;
    if (small ? rest >= EM_CUDA_ROUND : rest > EM_CUDA_SMALL_MAX) {
        em_cuda_block *r = calloc(1, sizeof *r);
        if (r) {
            r->addr = b->addr + size;
            r->size = rest;
            r->small = b->small;
            r->prev = b;
            r->next = b->next;
            if (b->next)
                b->next->prev = r;
            b->next = r;
            b->size = size;
            free_insert(p, r);
        }
    }
    b->allocated = true;
    live_insert(p, b);
    p->allocated += b->size;
    if (p->allocated > p->peak)
        p->peak = p->allocated;
    return (void *)b->addr;
}

/* Merges b's free neighbour `n` (b->next) into b. */
static void merge_next(em_cuda_pool *p, em_cuda_block *b)
{
    em_cuda_block *n = b->next;
    free_remove(p, n);
    b->size += n->size;
    b->next = n->next;
    if (n->next)
        n->next->prev = b;
    free(n);
}

bool em_cuda__pool_free(em_cuda_pool *p, void *ptr)
{
    em_cuda_block *b = live_find(p, (uintptr_t)ptr);
    if (!b || !b->allocated)
        return false;
    live_remove(p, b);
    b->allocated = false;
    p->allocated -= b->size;
    if (b->next && !b->next->allocated)
        merge_next(p, b);
    if (b->prev && !b->prev->allocated) {
        em_cuda_block *prev = b->prev;
        free_insert(p, b);
        merge_next(p, prev);
        return true;
    }
    free_insert(p, b);
    return true;
}

size_t em_cuda__pool_block_size(const em_cuda_pool *p, const void *ptr)
{
    const em_cuda_block *b = live_find(p, (uintptr_t)ptr);
    return b ? b->size : 0;
}

void em_cuda__pool_reset_peak(em_cuda_pool *p)
{
    p->peak = p->allocated;
}

void em_cuda__pool_destroy(em_cuda_pool *p)
{
    /* Put the live blocks on the free lists too. */
    for (size_t h = 0; h < EM_CUDA_POOL_BUCKETS; h++) {
        em_cuda_block *b = p->live[h];
        while (b) {
            em_cuda_block *n = b->hnext;
            b->allocated = false;
            b->hnext = NULL;
            free_insert(p, b);
            b = n;
        }
        p->live[h] = NULL;
    }
    /* Now every block is on a free list: merge each segment into one, then free it. */
    for (int s = 0; s < 2; s++) {
        for (em_cuda_block *b = *free_list(p, s == 0); b; b = b->fnext)
            while (b->next)
                merge_next(p, b);
        /* merge_next removed merged blocks from the list; heads remain */
        em_cuda_block *b = *free_list(p, s == 0);
        while (b) {
            em_cuda_block *n = b->fnext;
            if (!b->prev) {
                p->raw.free(p->raw.ctx, (void *)b->addr, b->size);
                p->raw_frees++;
            }
            free(b);
            b = n;
        }
    }
    em_cuda_raw raw = p->raw;
    memset(p, 0, sizeof *p);
    p->raw = raw;
}
