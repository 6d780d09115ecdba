/* tests/fault/failmalloc.c - interposed malloc/calloc/realloc that fail on demand (tests only).
 *
 * The real functions are found with dlsym(RTLD_NEXT), so a sanitizer's allocator stays in
 * charge. dlsym may allocate while it resolves: those calls (a flag says so) get NULL, which
 * dlsym tolerates. Not for production code: interposing malloc is a test-binary trick.
 */
#include "failmalloc.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* The build hides symbols by default; these must be visible to interpose. Under ASan they
 * run before the sanitizer has mapped its shadow memory (its start-up allocates), so nothing
 * here may be instrumented. */
#define FM_RAW __attribute__((no_sanitize("address", "undefined")))
#define FM_EXPORT __attribute__((visibility("default"))) FM_RAW

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static _Thread_local int resolving;

static atomic_bool armed, sticky_mode, fired;
static atomic_long left;           /* armed: the call that finds 1 here fails */
static atomic_long seen;
static atomic_size_t largest;

FM_RAW static void resolve(void)
{
    if (real_malloc && real_calloc && real_realloc)
        return;
    resolving = 1;
    /* POSIX guarantees a dlsym result converts to a function pointer; ISO C does not. */
    *(void **)&real_malloc = dlsym(RTLD_NEXT, "malloc");
    *(void **)&real_calloc = dlsym(RTLD_NEXT, "calloc");
    *(void **)&real_realloc = dlsym(RTLD_NEXT, "realloc");
    resolving = 0;
}

/* Whether this allocation call (of n bytes) must fail. */
FM_RAW static int should_fail(size_t n)
{
    atomic_fetch_add(&seen, 1);
    for (size_t l = atomic_load(&largest); n > l && !atomic_compare_exchange_weak(&largest, &l, n);)
        ;
    if (!atomic_load(&armed))
        return 0;
    long l = atomic_fetch_sub(&left, 1);
    if (l == 1 || (l < 1 && atomic_load(&sticky_mode))) {
        atomic_store(&fired, true);
        return 1;
    }
    return 0;
}

void failmalloc_arm(long n, bool sticky)
{
    atomic_store(&armed, false);
    atomic_store(&fired, false);
    atomic_store(&sticky_mode, sticky);
    atomic_store(&seen, 0);
    atomic_store(&largest, 0);
    atomic_store(&left, n);
    atomic_store(&armed, n > 0);
}

void failmalloc_disarm(void) { atomic_store(&armed, false); }
bool failmalloc_fired(void) { return atomic_load(&fired); }
long failmalloc_count(void) { return atomic_load(&seen); }
size_t failmalloc_largest(void) { return atomic_load(&largest); }

long failmalloc_sweep(void (*step)(void *ctx, long n), void *ctx, long max)
{
    for (long n = 1; n <= max; n++) {
        failmalloc_arm(n, false);
        step(ctx, n);
        failmalloc_disarm();
        if (!failmalloc_fired())
            return n;
    }
    return max + 1;
}

/* Whether this call must fail (errno is then ENOMEM); finds the real functions first. */
FM_RAW static int intercept(size_t n)
{
    resolve();
    if (!should_fail(n))
        return 0;
    errno = ENOMEM;
    return 1;
}

FM_EXPORT void *malloc(size_t n) { return resolving || intercept(n) ? NULL : real_malloc(n); }

FM_EXPORT void *calloc(size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes))
        bytes = SIZE_MAX;
    return resolving || intercept(bytes) ? NULL : real_calloc(n, size);
}

/* realloc(p, 0) frees, which cannot fail. */
FM_EXPORT void *realloc(void *p, size_t n)
{
    return resolving || (n && intercept(n)) ? NULL : real_realloc(p, n);
}
