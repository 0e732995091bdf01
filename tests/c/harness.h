/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The C tests' harness: CHECK() records a failure (from any thread) without
 * stopping the test, and run_tests() runs a table of tests, printing one
 * line each and the closing `N passed, N failed` line.
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <stdio.h>

static int failures_in_test;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__,         \
                    __LINE__, #cond);                                        \
            __atomic_fetch_add(&failures_in_test, 1, __ATOMIC_SEQ_CST);      \
        }                                                                    \
    } while (0)

typedef struct TestCase {
    const char *name;
    void (*fn)(void);
} TestCase;

/* Returns the number of failed tests. */
static inline int run_tests(const char *suite, const TestCase *tests, int n)
{
    int passed = 0, failed = 0, i;

    for (i = 0; i < n; i++) {
        failures_in_test = 0;
        tests[i].fn();
        printf("%s %s/%s\n", failures_in_test ? "FAIL" : "ok  ", suite,
               tests[i].name);
        if (failures_in_test) {
            failed++;
        } else {
            passed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed;
}

#endif
