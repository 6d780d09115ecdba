/* tests/fault/failmalloc.h - test-only allocation failure: the Nth malloc/calloc/realloc fails.
 *
 * Linking failmalloc.c into a test executable interposes malloc, calloc and realloc for the
 * whole process (libember and the libraries it uses included); each forwards to the next
 * definition (libc's, or the sanitizer's) unless armed. Armed with n, the nth allocation call
 * from then on returns NULL with errno ENOMEM, and with `sticky` every later one too, until
 * disarmed. Counting is process-wide (all threads); arm around single-threaded code.
 * A sweep (failmalloc_sweep) covers every allocation of a call, one failing at a time.
 */
#ifndef EMBER_TESTS_FAILMALLOC_H
#define EMBER_TESTS_FAILMALLOC_H

#include <stdbool.h>
#include <stddef.h>

void failmalloc_arm(long n, bool sticky);
void failmalloc_disarm(void);
/* Whether an allocation failed since the last arm. */
bool failmalloc_fired(void);
/* Allocation calls seen since the last arm (armed or not counts the same). */
long failmalloc_count(void);
/* The largest request (bytes) since the last arm, failed or not; failmalloc_arm(0, false)
 * resets it without arming. */
size_t failmalloc_largest(void);

/* Runs step(ctx, n) for n = 1, 2, ... with the nth allocation armed to fail (not sticky);
 * step calls failmalloc_disarm() as soon as the code under test returns, then checks the
 * outcome. Stops at the first n where nothing failed (the whole allocation sequence was
 * covered) and returns it; max + 1 if it never stopped. */
long failmalloc_sweep(void (*step)(void *ctx, long n), void *ctx, long max);

#endif
