/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The C tests' harness.  A test binary speaks TAP (version 13) on stdout,
 * so that any TAP harness (meson's `protocol: 'tap'`, prove) can run it:
 *
 *     TAP version 13
 *     1..N
 *     ok 1 - suite/name
 *     not ok 2 - suite/name
 *     # diagnostics
 *     # N passed, N failed
 *
 * CHECK() records a failure (from any thread) without stopping the test and
 * prints the failed condition as a diagnostic; DIAG() prints a diagnostic;
 * run_tests() runs a table of tests; BAIL_OUT() gives up before or between
 * tests (a setup failure).  stdout is line-buffered, so that what was
 * printed before an abort() or a sanitizer report is not lost.
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int failures_in_test;

/* A TAP diagnostic line, `# ...`, whole even when threads print at once. */
static inline void __attribute__((format(printf, 1, 2)))
tap_diag(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    flockfile(stdout);
    fputs("# ", stdout);
    vprintf(fmt, ap);
    putchar('\n');
    funlockfile(stdout);
    va_end(ap);
}

#define DIAG(...) tap_diag(__VA_ARGS__)

/* Exits with status 1 after TAP's `Bail out!` line. */
#define BAIL_OUT(reason)                                                     \
    do {                                                                     \
        printf("Bail out! %s\n", (reason));                                  \
        fflush(stdout);                                                      \
        exit(1);                                                             \
    } while (0)

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            DIAG("  %s:%d: CHECK(%s) failed", __FILE__, __LINE__, #cond);    \
            __atomic_fetch_add(&failures_in_test, 1, __ATOMIC_SEQ_CST);      \
        }                                                                    \
    } while (0)

typedef struct TestCase {
    const char *name;
    void (*fn)(void);
} TestCase;

/*
 * Prints the TAP header and plan, runs the tests, and prints one test line
 * each and the closing `# N passed, N failed` comment.  Call it before
 * anything else is printed on stdout.  Returns the number of failed tests.
 */
static inline int run_tests(const char *suite, const TestCase *tests, int n)
{
    int passed = 0, failed = 0, i;

    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("TAP version 13\n1..%d\n", n);
    for (i = 0; i < n; i++) {
        failures_in_test = 0;
        tests[i].fn();
        printf("%s %d - %s/%s\n", failures_in_test ? "not ok" : "ok", i + 1,
               suite, tests[i].name);
        if (failures_in_test) {
            failed++;
        } else {
            passed++;
        }
    }
    printf("# %d passed, %d failed\n", passed, failed);
    return failed;
}

#endif
