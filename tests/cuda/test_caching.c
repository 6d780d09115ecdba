/* tests/cuda/test_caching.c - the CUDA caching allocator's bookkeeping (backends/cuda/
 * caching.c) over a fake raw allocator (malloc with a budget): runs everywhere, no GPU.
 * Rounding, pools, splitting, reuse, coalescing, stats, empty_cache, the out-of-memory retry
 * and its message. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "caching.h"

#define MiB ((size_t)1 << 20)

typedef struct fake {
    size_t budget;                 /* bytes the fake device may hand out */
    size_t used;
    int allocs, frees, failures;
    size_t free_reported;
} fake;

static void *fake_alloc(void *ctx, size_t n)
{
    fake *f = ctx;
    if (f->used + n > f->budget) {
        f->failures++;
        return NULL;
    }
    void *p = malloc(n);
    if (p) {
        f->used += n;
        f->allocs++;
    }
    return p;
}

static void fake_free(void *ctx, void *p, size_t n)
{
    fake *f = ctx;
    f->used -= n;
    f->frees++;
    free(p);
}

static size_t fake_free_mem(void *ctx)
{
    fake *f = ctx;
    return f->free_reported ? f->free_reported : f->budget - f->used;
}

static fake F;
static em_cuda_pool P;

static void setup(void)
{
    memset(&F, 0, sizeof F);
    F.budget = (size_t)1 << 40;
    em_cuda_raw raw = {fake_alloc, fake_free, fake_free_mem, &F};
    em_cuda__pool_init(&P, &raw);
}

static void teardown(void)
{
    em_cuda__pool_destroy(&P);
    cr_expect_eq(F.used, 0, "destroy left %zu bytes with the raw allocator", F.used);
    cr_expect_eq(F.allocs, F.frees);
}

TestSuite(caching, .init = setup, .fini = teardown);

Test(caching, rounds_to_512_bytes)
{
    cr_assert_eq(em_cuda__pool_round(0), 512);
    cr_assert_eq(em_cuda__pool_round(1), 512);
    cr_assert_eq(em_cuda__pool_round(512), 512);
    cr_assert_eq(em_cuda__pool_round(513), 1024);
    cr_assert_eq(em_cuda__pool_round(3 * MiB + 1), 3 * MiB + 512);
}

Test(caching, small_requests_share_a_2_mib_segment)
{
    void *a = em_cuda__pool_alloc(&P, 100);
    void *b = em_cuda__pool_alloc(&P, 1000);
    void *c = em_cuda__pool_alloc(&P, 0);
    cr_assert(a && b && c);
    cr_assert_eq(F.allocs, 1, "one segment for three small blocks");
    cr_assert_eq(P.reserved, 2 * MiB);
    cr_assert_eq(P.allocated, 512 + 1024 + 512);
    cr_assert_eq(P.peak, P.allocated);
    /* split blocks are adjacent in the segment */
    cr_assert_eq((uintptr_t)b, (uintptr_t)a + 512);
    cr_assert_eq((uintptr_t)c, (uintptr_t)b + 1024);
    cr_assert_eq(em_cuda__pool_block_size(&P, b), 1024);
}

Test(caching, large_requests_use_20_mib_segments_below_10_mib)
{
    void *a = em_cuda__pool_alloc(&P, 3 * MiB);
    cr_assert_not_null(a);
    cr_assert_eq(P.reserved, 20 * MiB);
    void *b = em_cuda__pool_alloc(&P, 5 * MiB);
    cr_assert_eq(F.allocs, 1, "the second large block comes from the split rest");
    cr_assert_eq((uintptr_t)b, (uintptr_t)a + 3 * MiB);
    void *c = em_cuda__pool_alloc(&P, 13 * MiB);        /* > the 12 MiB rest: own segment */
    cr_assert_not_null(c);
    cr_assert_eq(F.allocs, 2);
    cr_assert_eq(P.reserved, 34 * MiB, "13 MiB rounds to a 14 MiB segment");
    void *d = em_cuda__pool_alloc(&P, 11 * MiB);        /* fits the 12 MiB rest of the first */
    cr_assert_eq((uintptr_t)d, (uintptr_t)b + 5 * MiB);
    cr_assert_eq(F.allocs, 2);
    /* a small request never takes large-pool memory */
    void *s = em_cuda__pool_alloc(&P, 4096);
    cr_assert_eq(F.allocs, 3);
    cr_assert_eq(P.reserved, 36 * MiB);
    cr_assert(s);
}

Test(caching, release_caches_and_reuses_without_raw_free)
{
    void *a = em_cuda__pool_alloc(&P, 4 * MiB);
    cr_assert(em_cuda__pool_free(&P, a));
    cr_assert_eq(F.frees, 0, "release must not hand memory back");
    cr_assert_eq(P.allocated, 0);
    cr_assert_eq(P.reserved, 20 * MiB);
    void *b = em_cuda__pool_alloc(&P, 4 * MiB);
    cr_assert_eq(b, a, "the cached block is reused");
    cr_assert_eq(F.allocs, 1);
    cr_assert_not(em_cuda__pool_free(&P, (char *)b + 512), "not a block start");
    cr_assert(em_cuda__pool_free(&P, b));
    cr_assert_not(em_cuda__pool_free(&P, b), "double free is refused");
}

Test(caching, best_fit_takes_the_smallest_block_that_fits)
{
    void *a = em_cuda__pool_alloc(&P, 4096);
    void *gap1 = em_cuda__pool_alloc(&P, 512);
    void *b = em_cuda__pool_alloc(&P, 1024);
    void *gap2 = em_cuda__pool_alloc(&P, 512);
    cr_assert(gap1 && gap2);
    em_cuda__pool_free(&P, a);                      /* free 4096 */
    em_cuda__pool_free(&P, b);                      /* free 1024 */
    void *c = em_cuda__pool_alloc(&P, 1000);
    cr_assert_eq(c, b, "1000 bytes go into the 1024-byte hole, not the 4096-byte one");
    void *d = em_cuda__pool_alloc(&P, 2048);
    cr_assert_eq(d, a, "2048 bytes split the 4096-byte hole");
    cr_assert_eq(em_cuda__pool_block_size(&P, d), 2048);
    cr_assert_eq(F.allocs, 1);
}

Test(caching, free_neighbours_coalesce)
{
    void *a = em_cuda__pool_alloc(&P, 512);
    void *b = em_cuda__pool_alloc(&P, 512);
    void *c = em_cuda__pool_alloc(&P, 512);
    em_cuda__pool_free(&P, a);
    em_cuda__pool_free(&P, c);                      /* c merges with the segment's free rest */
    em_cuda__pool_free(&P, b);                      /* b merges with a and c: one free block */
    cr_assert_eq(P.allocated, 0);
    cr_assert_not_null(P.free_small);
    cr_assert_null(P.free_small->fnext, "the whole segment is one free block again");
    cr_assert_eq(P.free_small->size, 2 * MiB);
    void *big = em_cuda__pool_alloc(&P, 1 * MiB);   /* fits only because of the merge */
    cr_assert_eq(big, a);
    cr_assert_eq(F.allocs, 1);
}

Test(caching, empty_cache_frees_whole_free_segments_only)
{
    void *a = em_cuda__pool_alloc(&P, 512);         /* small segment, stays in use */
    void *b = em_cuda__pool_alloc(&P, 12 * MiB);    /* large segment, freed below */
    void *c = em_cuda__pool_alloc(&P, 2 * MiB);     /* 20 MiB segment, freed below */
    cr_assert(a && b && c);
    cr_assert_eq(P.reserved, 2 * MiB + 12 * MiB + 20 * MiB);
    em_cuda__pool_free(&P, b);
    em_cuda__pool_free(&P, c);
    size_t freed = em_cuda__pool_empty_cache(&P);
    cr_assert_eq(freed, 32 * MiB);
    cr_assert_eq(P.reserved, 2 * MiB);
    cr_assert_eq(F.frees, 2);
    cr_assert_eq(P.allocated, 512);
    em_cuda__pool_free(&P, a);
    cr_assert_eq(em_cuda__pool_empty_cache(&P), 2 * MiB);
    cr_assert_eq(P.reserved, 0);
    cr_assert_eq(P.segments, 0);
}

Test(caching, peak_and_reset)
{
    void *a = em_cuda__pool_alloc(&P, 3 * MiB);
    void *b = em_cuda__pool_alloc(&P, 1 * MiB);
    em_cuda__pool_free(&P, a);
    cr_assert_eq(P.peak, 4 * MiB);
    cr_assert_eq(P.allocated, 1 * MiB);
    em_cuda__pool_reset_peak(&P);
    cr_assert_eq(P.peak, 1 * MiB);
    em_cuda__pool_free(&P, b);
}

Test(caching, out_of_memory_empties_the_cache_and_retries_once)
{
    F.budget = 40 * MiB;
    void *a = em_cuda__pool_alloc(&P, 12 * MiB);    /* 12 MiB segment */
    void *b = em_cuda__pool_alloc(&P, 16 * MiB);    /* 16 MiB segment: 28 used */
    cr_assert(a && b);
    em_cuda__pool_free(&P, a);                      /* cached, 12 MiB of it free */
    void *c = em_cuda__pool_alloc(&P, 20 * MiB);    /* needs 20: fails, frees a's, retries */
    cr_assert_not_null(c, "%s", P.oom);
    cr_assert_eq(F.failures, 1);
    cr_assert_eq(F.frees, 1);
    cr_assert_eq(P.oom[0], '\0');
    cr_assert_eq(P.reserved, 36 * MiB);
    em_cuda__pool_free(&P, b);
    em_cuda__pool_free(&P, c);
}

Test(caching, out_of_memory_message)
{
    F.budget = 24 * MiB;
    F.free_reported = 3 * MiB;
    void *a = em_cuda__pool_alloc(&P, 12 * MiB);
    cr_assert_not_null(a);
    void *b = em_cuda__pool_alloc(&P, 30 * MiB);
    cr_assert_null(b);
    cr_assert_eq(F.failures, 2, "tried, emptied the cache, tried once more");
    cr_assert_str_eq(P.oom, "cuda: out of memory: tried to allocate 30.00 MiB (12.00 MiB "
                            "allocated, 12.00 MiB reserved, 3.00 MiB free on the device)");
    cr_assert_eq(P.allocated, 12 * MiB, "a failed allocation changes no statistic");
    em_cuda__pool_free(&P, a);
}

Test(caching, many_blocks_survive_a_random_workout)
{
    enum { N = 400 };
    void *live[N] = {0};
    size_t sz[N] = {0};
    srand(7);
    for (int it = 0; it < 20000; it++) {
        int i = rand() % N;
        if (live[i]) {
            cr_assert(em_cuda__pool_free(&P, live[i]));
            live[i] = NULL;
        } else {
            sz[i] = (rand() % 4 == 0) ? (size_t)(rand() % (16 << 20)) : (size_t)(rand() % 70000);
            live[i] = em_cuda__pool_alloc(&P, sz[i]);
            cr_assert_not_null(live[i]);
            memset(live[i], i & 0xff, sz[i] < 64 ? sz[i] : 64);
        }
    }
    size_t total = 0;
    for (int i = 0; i < N; i++)
        if (live[i])
            total += em_cuda__pool_round(sz[i]) <= em_cuda__pool_block_size(&P, live[i])
                         ? em_cuda__pool_block_size(&P, live[i]) : 0;
    cr_assert_eq(total, P.allocated);
    cr_assert_leq(P.allocated, P.reserved);
    for (int i = 0; i < N; i++)
        if (live[i])
            em_cuda__pool_free(&P, live[i]);
    cr_assert_eq(P.allocated, 0);
    em_cuda__pool_empty_cache(&P);
    cr_assert_eq(P.reserved, 0, "every segment coalesced back into one free block");
}
