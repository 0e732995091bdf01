/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qrs_co_run_in_worker through the C API alone, with the minimal coroutine
 * host of cohost.c: thousands of coroutines offloading at once from one and
 * from several home threads, instant and slow functions; each gets its own
 * result, on its home thread, and is resumed exactly once per suspension
 * (a recursive entry would abort in cohost.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cohost.h"
#include "harness.h"
#include "qemurs.h"


enum { COROUTINES = 1000, ROUNDS = 3, HOMES = 4 };

typedef struct Work {
    pthread_t home;
    int input;
    int kind;
} Work;

static int work(void *opaque)
{
    Work *w = opaque;
    struct timespec ts = { 0, 100 * 1000 };

    CHECK(!pthread_equal(pthread_self(), w->home));
    switch (w->kind % 3) {
    case 0:
        break;                      /* instant: often done before the suspend */
    case 1:
        sched_yield();
        break;
    default:
        nanosleep(&ts, NULL);       /* slow */
    }
    return w->input * 2 + 1;
}

typedef struct Task {
    int id;
    Co *co;
    int ok_rounds;
} Task;

static void offloading_coroutine(void *arg)
{
    Task *t = arg;
    int round;

    for (round = 0; round < ROUNDS; round++) {
        Work w = {
            .home = pthread_self(),
            .input = t->id * 100 + round,
            .kind = t->id + round,
        };
        int r = qrs_co_run_in_worker(work, &w);

        CHECK(r == w.input * 2 + 1);
        CHECK(pthread_equal(pthread_self(), w.home));
        if (r == w.input * 2 + 1) {
            t->ok_rounds++;
        }
    }
}

/* Run COROUTINES offloading coroutines on the calling thread. */
static void *run_home(void *unused)
{
    Task *tasks = calloc(COROUTINES, sizeof(*tasks));
    unsigned suspends = 0;
    int i;

    (void)unused;
    for (i = 0; i < COROUTINES; i++) {
        tasks[i].id = i;
        tasks[i].co = co_create(offloading_coroutine, &tasks[i]);
        co_wake(tasks[i].co);
    }
    cohome_run(cohome_self());
    for (i = 0; i < COROUTINES; i++) {
        CHECK(tasks[i].ok_rounds == ROUNDS);
    }
    /* Resumes are counted per coroutine object; pooled objects are reused
     * only after termination, so compare totals over the live run. */
    for (i = 0; i < COROUTINES; i++) {
        CHECK(co_terminated(tasks[i].co));
        CHECK(co_resumes(tasks[i].co) == co_suspends(tasks[i].co));
        suspends += co_suspends(tasks[i].co);
    }
    CHECK(suspends > 0);
    free(tasks);
    cohost_thread_cleanup();
    return NULL;
}

static void test_many_coroutines_one_home(void)
{
    run_home(NULL);
}

static void test_many_coroutines_several_homes(void)
{
    pthread_t t[HOMES];
    int i;

    for (i = 0; i < HOMES; i++) {
        pthread_create(&t[i], NULL, run_home, NULL);
    }
    for (i = 0; i < HOMES; i++) {
        pthread_join(t[i], NULL);
    }
}

static int where(void *opaque)
{
    *(pthread_t *)opaque = pthread_self();
    return 7;
}

static void test_outside_coroutine_runs_inline(void)
{
    pthread_t ran;

    CHECK(qrs_co_run_in_worker(where, &ran) == 7);
    CHECK(pthread_equal(ran, pthread_self()));
}

static void test_errors(void)
{
    static const QrsOffloadHooks null_hooks = { 0 };

    CHECK(qrs_co_run_in_worker(NULL, NULL) == -EINVAL);
    CHECK(qrs_offload_set_host(NULL) == -EINVAL);
    CHECK(qrs_offload_set_host(&null_hooks) == -EINVAL);
    CHECK(qrs_offload_start(2) == -EALREADY);
}

/* Stop while offloads are in flight: they complete, their coroutines are
 * resumed; afterwards offloads run inline; the pool can start again. */
static int submitted;

static int slow(void *opaque)
{
    struct timespec ts = { 0, 2 * 1000 * 1000 };

    (void)opaque;
    nanosleep(&ts, NULL);
    return 1;
}

static void slow_coroutine(void *arg)
{
    __atomic_fetch_add(&submitted, 1, __ATOMIC_SEQ_CST);
    *(int *)arg = qrs_co_run_in_worker(slow, NULL);
}

static void *stop_home(void *arg)
{
    int *results = arg;
    int i;

    for (i = 0; i < 100; i++) {
        co_wake(co_create(slow_coroutine, &results[i]));
    }
    cohome_run(cohome_self());
    cohost_thread_cleanup();
    return NULL;
}

static void inline_coroutine(void *arg)
{
    pthread_t ran;

    CHECK(qrs_co_run_in_worker(where, &ran) == 7);
    *(int *)arg = pthread_equal(ran, pthread_self());
}

static void test_stop_drains_then_inline(void)
{
    static int results[100];
    pthread_t t;
    int i, inline_ok = 0;
    Co *co;

    pthread_create(&t, NULL, stop_home, results);
    while (__atomic_load_n(&submitted, __ATOMIC_SEQ_CST) < 50) {
        sched_yield();
    }
    CHECK(qrs_offload_stop() == 0);
    pthread_join(t, NULL);
    for (i = 0; i < 100; i++) {
        CHECK(results[i] == 1);
    }
    CHECK(qrs_offload_stop() == -EALREADY);

    co = co_create(inline_coroutine, &inline_ok);
    co_enter(co);
    CHECK(inline_ok == 1);
    CHECK(qrs_offload_start(3) == 3);
}

/*
 * The pool grows while calls block and work waits, up to its maximum, and
 * shrinks back to its start count once idle; its threads block the
 * asynchronous signals.
 */
enum { SLOW_CALLS = 16 };

typedef struct Probe {
    pthread_t ran_on;
    int signals_ok;
} Probe;

static int blocking_probe(void *opaque)
{
    Probe *p = opaque;
    struct timespec ts = { 0, 50 * 1000 * 1000 };
    sigset_t mask;

    nanosleep(&ts, NULL);
    pthread_sigmask(SIG_BLOCK, NULL, &mask);
    p->ran_on = pthread_self();
    p->signals_ok = sigismember(&mask, SIGINT) == 1 &&
                    sigismember(&mask, SIGTERM) == 1 &&
                    sigismember(&mask, SIGUSR1) == 1 &&
                    sigismember(&mask, SIGALRM) == 1 &&
                    sigismember(&mask, SIGCHLD) == 1 &&
                    sigismember(&mask, SIGSEGV) == 0;
    return 1;
}

static void probe_coroutine(void *arg)
{
    CHECK(qrs_co_run_in_worker(blocking_probe, arg) == 1);
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_pool_grows_and_shrinks(void)
{
    static Probe probes[SLOW_CALLS];
    QrsOffloadConfig config;
    QrsOffloadStats stats;
    sigset_t before, after;
    double t0, elapsed;
    int i, threads;

    CHECK(qrs_offload_stats(NULL) == -EINVAL);
    CHECK(qrs_offload_start_config(NULL) == -EINVAL);
    qrs_offload_config_init(NULL);
    qrs_offload_config_init(&config);
    CHECK(config.threads == 0 && config.max_threads == 0);
    CHECK(config.idle_timeout_ms == 10000 && config.grow_after_us == 2000);

    CHECK(qrs_offload_stop() == 0);
    config.threads = 2;
    config.max_threads = 6;
    config.idle_timeout_ms = 200;
    pthread_sigmask(SIG_BLOCK, NULL, &before);
    CHECK(qrs_offload_start_config(&config) == 2);
    pthread_sigmask(SIG_BLOCK, NULL, &after);
    for (i = 1; i < 64; i++) {
        CHECK(sigismember(&before, i) == sigismember(&after, i));
    }
    CHECK(qrs_offload_start_config(&config) == -EALREADY);
    CHECK(qrs_offload_stats(&stats) == 0);
    CHECK(stats.threads == 2 && stats.min_threads == 2);
    CHECK(stats.max_threads == 6 && stats.spawned == 2);

    /* 16 calls of 50 ms: 8 rounds (400 ms) on 2 workers, 3 on 6. */
    t0 = now_seconds();
    for (i = 0; i < SLOW_CALLS; i++) {
        co_wake(co_create(probe_coroutine, &probes[i]));
    }
    cohome_run(cohome_self());
    elapsed = now_seconds() - t0;
    CHECK(qrs_offload_stats(&stats) == 0);
    DIAG("  %d x 50 ms on 2 to 6 workers: %.0f ms, peak %u threads",
         SLOW_CALLS, elapsed * 1e3, stats.peak_threads);
    CHECK(stats.peak_threads == 6);
    CHECK(stats.spawned <= 6);
    CHECK(elapsed >= 0.150);            /* at least 3 rounds on 6 workers */
    for (i = 0; i < SLOW_CALLS; i++) {
        CHECK(probes[i].signals_ok);
        CHECK(!pthread_equal(probes[i].ran_on, pthread_self()));
    }

    /* Back to the start count once idle for 200 ms, never below. */
    for (i = 0; i < 500; i++) {
        CHECK(qrs_offload_stats(&stats) == 0);
        if (stats.threads == 2) {
            break;
        }
        usleep(10 * 1000);
    }
    CHECK(stats.threads == 2);
    CHECK(stats.retired == stats.spawned - 2);
    usleep(400 * 1000);
    CHECK(qrs_offload_stats(&stats) == 0);
    CHECK(stats.threads == 2);

    CHECK(qrs_offload_stop() == 0);
    CHECK(qrs_offload_stats(&stats) == 0);
    CHECK(stats.threads == 0);
    threads = qrs_offload_start(4);
    CHECK(threads == 4);
}

int main(void)
{
    static const TestCase tests[] = {
        { "outside_coroutine_runs_inline", test_outside_coroutine_runs_inline },
        { "errors", test_errors },
        { "many_coroutines_one_home", test_many_coroutines_one_home },
        { "many_coroutines_several_homes", test_many_coroutines_several_homes },
        { "stop_drains_then_inline", test_stop_drains_then_inline },
        { "many_coroutines_after_restart", test_many_coroutines_one_home },
        { "pool_grows_and_shrinks", test_pool_grows_and_shrinks },
    };
    int failed;

    cohost_register();
    if (qrs_offload_start(4) != 4) {
        BAIL_OUT("qrs_offload_start failed");
    }
    failed = run_tests("offload", tests, sizeof(tests) / sizeof(tests[0]));
    qrs_offload_stop();
    cohost_thread_cleanup();
    return failed != 0;
}
