/* tests/faults/inject.h - fault injection for the sweeps: the Nth heap allocation, or the Nth
 * write/fsync/rename, fails; and a count of live heap blocks for leak checks.
 *
 * inject.c defines malloc, calloc, realloc, free, the aligned allocators, write, fsync,
 * fdatasync and rename in the test executable, so that libember, its plugins and the libraries
 * they use (jansson, zlib, libc's own strdup and fopen) all go through them. It is linked into
 * a plain (not sanitized) build only: ASan and valgrind replace malloc themselves.
 *
 * Not thread-safe to arm from two threads at once; the counters themselves are atomic, so
 * allocations on other threads while armed are counted (and can be the one that fails).
 */
#ifndef EMBER_TESTS_FAULTS_INJECT_H
#define EMBER_TESTS_FAULTS_INJECT_H

#include <stdbool.h>

typedef enum fault_kind {
    FAULT_ALLOC,   /* malloc, calloc, realloc (growing or new), the aligned allocators */
    FAULT_IO,      /* write, fsync, fdatasync, rename */
} fault_kind;

/* Arms `kind`: its nth call from now fails (n >= 1); with `persistent`, every later call of
 * that kind fails too (SQLite's "persistent" malloc fault). n = 0 counts calls, fails none. */
void fault_arm(fault_kind kind, long n, bool persistent);

/* Disarms; returns whether a call was made to fail since fault_arm. */
bool fault_disarm(void);

/* Calls of the armed kind counted since fault_arm. */
long fault_calls(void);

/* The call stack of the first call made to fail since fault_arm (return addresses, innermost
 * first, starting at the caller of malloc/write/...); returns how many (0 if none failed). */
int fault_trace(void **frames, int max);

/* Heap blocks allocated and not yet freed, over the whole process. */
long fault_live_blocks(void);

#endif
