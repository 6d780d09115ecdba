/* backends/cuda/caching.h - the caching allocator's bookkeeping, in the manner of PyTorch's
 * CUDACachingAllocator, as pure C over an abstract raw allocator (cudaMalloc/cudaFree in the
 * plugin, malloc/free in tests/cuda/test_caching.c), so that it is tested without a GPU.
 *
 * Requests are rounded up to 512 bytes. Requests of at most 1 MiB come from the small pool,
 * whose segments (raw allocations) are 2 MiB; larger ones from the large pool, whose segments
 * are 20 MiB for requests under 10 MiB and the request rounded up to 2 MiB beyond. A request
 * takes the smallest free block of its pool that fits (best fit) and splits off the rest when
 * the rest is worth keeping (>= 512 bytes in the small pool, > 1 MiB in the large one). A
 * released block goes back to its pool, merged with free neighbours of its segment; nothing
 * is handed back to the raw allocator until em_cuda__pool_empty_cache(), which frees every
 * segment that is entirely free. When the raw allocator fails, the cache is emptied and the
 * raw allocation retried once; if that fails too the pool writes the out-of-memory message.
 *
 * Not thread-safe: the caller serialises calls on one pool (the plugin holds the device lock).
 * Reusing a released block at once is safe on the device because every kernel and copy of a
 * device runs on its one stream, in order.
 */
#ifndef EMBER_BACKENDS_CUDA_CACHING_H
#define EMBER_BACKENDS_CUDA_CACHING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EM_CUDA_ROUND ((size_t)512)
#define EM_CUDA_SMALL_MAX ((size_t)1 << 20)           /* requests <= 1 MiB: small pool */
#define EM_CUDA_SMALL_SEGMENT ((size_t)2 << 20)       /* small pool segments: 2 MiB */
#define EM_CUDA_LARGE_SEGMENT ((size_t)20 << 20)      /* large segments for requests < 10 MiB */
#define EM_CUDA_LARGE_DIRECT ((size_t)10 << 20)
#define EM_CUDA_LARGE_ROUND ((size_t)2 << 20)
#define EM_CUDA_POOL_BUCKETS 1024

/* The raw allocator: returns nbytes of device memory or NULL when out of memory; free gets
 * back exactly what alloc returned. free_mem (optional) is the device's free memory for the
 * out-of-memory message. */
typedef struct em_cuda_raw {
    void *(*alloc)(void *ctx, size_t nbytes);
    void (*free)(void *ctx, void *ptr, size_t nbytes);
    size_t (*free_mem)(void *ctx);
    void *ctx;
} em_cuda_raw;

typedef struct em_cuda_block em_cuda_block;
struct em_cuda_block {
    uintptr_t addr;
    size_t size;
    bool allocated;
    bool small;                        /* which pool */
    em_cuda_block *prev, *next;        /* address neighbours within the segment */
    em_cuda_block *fprev, *fnext;      /* the pool's free list, when free */
    em_cuda_block *hnext;              /* the live-block hash chain, when allocated */
};

typedef struct em_cuda_pool {
    em_cuda_raw raw;
    em_cuda_block *free_small, *free_large;
    em_cuda_block *live[EM_CUDA_POOL_BUCKETS];
    size_t allocated;                  /* bytes in live blocks (rounded sizes, as PyTorch) */
    size_t reserved;                   /* bytes in segments, cache included */
    size_t peak;                       /* max of allocated since start or reset */
    int segments;                      /* raw allocations held */
    int raw_allocs, raw_frees;         /* raw calls so far (for tests and `ember info`) */
    char oom[256];                     /* the last out-of-memory message */
} em_cuda_pool;

void em_cuda__pool_init(em_cuda_pool *p, const em_cuda_raw *raw);
/* Hands every segment back to the raw allocator (live blocks included) and clears p. */
void em_cuda__pool_destroy(em_cuda_pool *p);

/* The rounded size of a request. */
size_t em_cuda__pool_round(size_t nbytes);

/* A block of at least nbytes (nbytes may be 0). NULL when out of memory: p->oom then holds
 * "cuda: out of memory: tried to allocate X MiB (Y MiB allocated, Z MiB reserved, W MiB free
 * on the device)"; NULL with p->oom empty when ptr bookkeeping itself failed (malloc). */
void *em_cuda__pool_alloc(em_cuda_pool *p, size_t nbytes);
/* Releases a block em_cuda__pool_alloc returned; false if ptr is not a live block. */
bool em_cuda__pool_free(em_cuda_pool *p, void *ptr);
/* Frees every entirely free segment; returns the bytes handed back. */
size_t em_cuda__pool_empty_cache(em_cuda_pool *p);
void em_cuda__pool_reset_peak(em_cuda_pool *p);
/* The size of the live block at ptr, 0 if none. */
size_t em_cuda__pool_block_size(const em_cuda_pool *p, const void *ptr);

#ifdef __cplusplus
}
#endif
#endif
