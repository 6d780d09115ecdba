/* tests/faults/sweep.h - the fault sweep: an operation run once per injection point N, each
 * run in a child process, judged against a run without faults.
 *
 * For every N (every call of the kind, or every stride-th one) the operation must either give
 * the same state as the fault-free run, with nothing printed to stderr (a warning with success
 * is a silent degradation), or fail with a negative status, a non-empty em_last_error(), the
 * state as it was before, and target-specific checks passing (an old checkpoint intact, no
 * temporary file left) -- or, for a save whose new file is in place when syncing its folder
 * fails, the fault-free state with a message that says "written, but". In both cases the live heap blocks after `cleanup` must be as many as
 * before the operation, and the child must neither crash, abort nor hang. Every violation is
 * printed as "faults: TARGET KIND N=..: what"; the counts come back for the test to assert on.
 *
 * The process must run ember with one CPU thread (EMBER_NUM_THREADS=1): a forked child has
 * no worker threads.
 */
#ifndef EMBER_TESTS_FAULTS_SWEEP_H
#define EMBER_TESTS_FAULTS_SWEEP_H

#include <stddef.h>

#include "inject.h"

typedef struct fault_target {
    const char *name;
    void *ctx;
    /* Optional: puts the files the operation reads or replaces in place (unarmed; in the
     * parent before the sweep and in every child before its run). */
    void (*prepare)(void *ctx);
    /* The operation under test, armed: EM_OK (0) or a negative status. */
    int (*run)(void *ctx);
    /* Releases what `run` produced (unarmed), so the live block count can be compared. */
    void (*cleanup)(void *ctx);
    /* Writes the state that must be unchanged on failure and equal to the fault-free run's on
     * success (parameters, optimizer slots, a dataset's contents...) into buf; returns its
     * size (at most cap), or (size_t)-1 if it cannot be read. */
    size_t (*snapshot)(void *ctx, unsigned char *buf, size_t cap);
    /* Optional: checks after a failed run (why: a message of at most n bytes). */
    int (*check_failed)(void *ctx, char *why, size_t n);
    /* Optional: checks after a successful run. */
    int (*check_ok)(void *ctx, char *why, size_t n);
} fault_target;

typedef struct sweep_result {
    long points;        /* injection points the fault-free run makes (calls of the kind) */
    long tried;         /* runs with a fault injected */
    long succeeded;     /* ... that gave the fault-free result anyway */
    long clean_errors;  /* ... that failed cleanly */
    long problems;      /* ... that broke a rule (each printed) */
} sweep_result;

/* Sweeps `kind` over t. stride 1 tries every N; stride s > 1 tries N = 1..8 and then every
 * s-th. EMBER_FAULT_STRIDE in the environment overrides `stride` (tools/fault-sweep.sh sets 1).
 * Prints one summary line per sweep. */
sweep_result fault_sweep(const fault_target *t, fault_kind kind, bool persistent, long stride);

#endif
