/* tests/faults/inject.h - test-only fault injection: the Nth heap allocation, or the Nth
 * write/fsync/rename, fails; a count of live heap blocks for leak checks; the largest
 * allocation request; and an in-process loop that fails each allocation of a call in turn.
 *
 * inject.c defines malloc, calloc, realloc, free, the aligned allocators, strdup, strndup,
 * write, fsync, fdatasync and rename in the test executable, so that libember, its plugins and
 * the libraries they use (jansson, zlib, libc's own fopen) all go through them. Each forwards
 * to the next definition found with dlsym(RTLD_NEXT): libc's, or the sanitizer's under ASan,
 * or valgrind's replacement of libc's under memcheck, so injection works in every build.
 * memcheck replaces a malloc defined in the executable too unless run with
 * --soname-synonyms=somalloc=nouserintercepts (tools/valgrind.sh does): nothing is injected
 * then. Calls that a sanitizer runtime makes for itself are neither counted nor failed.
 *
 * Not thread-safe to arm from two threads at once; the counters themselves are atomic, so
 * allocations on other threads while armed are counted (and can be the one that fails).
 */
#ifndef EMBER_TESTS_FAULTS_INJECT_H
#define EMBER_TESTS_FAULTS_INJECT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum fault_kind {
    FAULT_ALLOC,   /* malloc, calloc, realloc (not to 0 bytes), the aligned allocators, strdup */
    FAULT_IO,      /* write, fsync, fdatasync, rename */
} fault_kind;

/* Arms `kind`: its nth call from now fails (n >= 1); with `persistent`, every later call of
 * that kind fails too (SQLite's "persistent" malloc fault). n = 0 counts calls, fails none.
 * Resets the call count, the trace and the largest request. */
void fault_arm(fault_kind kind, long n, bool persistent);

/* Disarms; returns whether a call was made to fail since fault_arm (calling it again, before
 * the next fault_arm, returns the same). */
bool fault_disarm(void);

/* Calls of the armed kind counted since fault_arm. */
long fault_calls(void);

/* The largest allocation request (bytes) while FAULT_ALLOC was armed since fault_arm, failed
 * or not; 0 if none. */
size_t fault_largest(void);

/* The call stack of the first call made to fail since fault_arm (return addresses, innermost
 * first, starting at the caller of malloc/write/...); returns how many (0 if none failed). */
int fault_trace(void **frames, int max);

/* Heap blocks allocated and not yet freed, over the whole process. */
long fault_live_blocks(void);

/* Fails each call of `kind` in turn, in this process: for n = 1, 2, ... arms the nth call to
 * fail (not persistent) and runs step(ctx, n), which calls fault_disarm() as soon as the code
 * under test returns (its result says whether the fault was hit) and then checks the outcome.
 * Stops at the first n where no call failed (the whole sequence was covered) and returns it;
 * max + 1 if it never stopped. Leaves the injector disarmed. */
long fault_each(fault_kind kind, void (*step)(void *ctx, long n), void *ctx, long max);

#endif
