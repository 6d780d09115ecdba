/* tests/core/plain_check.h - CHECK for the plain (non-Criterion) test programs that also run
 * under ThreadSanitizer, where Criterion cannot start: on a failed condition, print the file,
 * line, condition, message and em_last_error(), and exit(1). */
#ifndef EMBER_TESTS_CORE_PLAIN_CHECK_H
#define EMBER_TESTS_CORE_PLAIN_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#include <ember/ember.h>

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fprintf(stderr, " (last error: %s)\n", em_last_error());                     \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

#endif
