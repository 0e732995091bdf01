/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Coroutine-specific storage, driven through the C API alone (qemurs.h and
 * libqemurs.a) with the minimal coroutine host of cohost.c: ucontext
 * coroutines with a per-coroutine slot, a pool that recycles them, and the
 * slot released inside the coroutine when its entry function returns, the
 * way the QEMU patch does it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cohost.h"
#include "harness.h"
#include "qemurs.h"


/* ---- destructor bookkeeping ------------------------------------------ */

static __thread int dtor_calls;
static __thread void *dtor_value;
static __thread Co *dtor_current;

static void counting_dtor(void *value)
{
    dtor_calls++;
    dtor_value = value;
    dtor_current = co_self();
}

static void reset_dtor(void)
{
    dtor_calls = 0;
    dtor_value = NULL;
    dtor_current = NULL;
}

/* ---- tests ----------------------------------------------------------- */

static QrsStorageKey key_a, key_b;

static void co_set_yield_check(void *arg)
{
    void *old = (void *)1;

    CHECK(qrs_storage_get(key_a) == NULL);
    CHECK(qrs_storage_set(key_a, arg, &old) == 0);
    CHECK(old == NULL);
    co_yield();
    CHECK(qrs_storage_get(key_a) == arg);
    CHECK(qrs_storage_set(key_a, NULL, &old) == 0);
    CHECK(old == arg);
}

static void test_per_coroutine_and_thread(void)
{
    int a, b, outer;
    void *old = (void *)1;
    Co *ca = co_create(co_set_yield_check, &a);
    Co *cb = co_create(co_set_yield_check, &b);

    CHECK(qrs_storage_set(key_a, &outer, &old) == 0);
    CHECK(old == NULL);
    co_enter(ca);
    co_enter(cb);
    CHECK(qrs_storage_get(key_a) == &outer);
    co_enter(ca);
    co_enter(cb);
    CHECK(co_terminated(ca) && co_terminated(cb));
    CHECK(qrs_storage_get(key_a) == &outer);
    CHECK(qrs_storage_set(key_a, NULL, &old) == 0);
    CHECK(old == &outer);
}

static void co_set_two(void *arg)
{
    CHECK(qrs_storage_set(key_a, arg, NULL) == 0);
    CHECK(qrs_storage_set(key_b, arg, NULL) == 0);
}

static void co_expect_empty(void *arg)
{
    CHECK(qrs_storage_get(key_a) == NULL);
    CHECK(qrs_storage_get(key_b) == NULL);
    *(bool *)arg = true;
}

static void test_release_and_recycle(void)
{
    int value;
    bool ran = false;
    Co *co = co_create(co_set_two, &value), *co2;

    reset_dtor();
    co_enter(co);
    /* key_b has the destructor, key_a has none: exactly one call. */
    CHECK(dtor_calls == 1);
    CHECK(dtor_value == &value);
    CHECK(dtor_current == co);
    CHECK(*co_slot(co) == NULL);

    co2 = co_create(co_expect_empty, &ran);
    CHECK(co2 == co);  /* really recycled */
    co_enter(co2);
    CHECK(ran);
    CHECK(dtor_calls == 1);
}

static void co_nothing(void *arg)
{
    (void)arg;
    /* Clearing a value that was never set allocates nothing. */
    CHECK(qrs_storage_set(key_b, NULL, NULL) == 0);
    CHECK(*co_slot(co_self()) == NULL);
}

static void test_lazy_allocation(void)
{
    Co *co = co_create(co_nothing, NULL);

    reset_dtor();
    co_enter(co);
    CHECK(dtor_calls == 0);
}

static void co_read_preset(void *arg)
{
    CHECK(qrs_storage_get(key_a) == arg);
}

static void test_set_before_enter(void)
{
    int value;
    void *old = (void *)1;
    Co *co = co_create(co_read_preset, &value);

    CHECK(qrs_storage_set_in(co_slot(co), key_a, &value, &old) == 0);
    CHECK(old == NULL);
    CHECK(qrs_storage_get_in(co_slot(co), key_a) == &value);
    CHECK(qrs_storage_get(key_a) == NULL);
    co_enter(co);
    CHECK(co_terminated(co));
}

static QrsStorageKey key_resurrect;
static __thread int resurrect_calls;

static void resurrecting_dtor(void *value)
{
    resurrect_calls++;
    CHECK(qrs_storage_set(key_resurrect, value, NULL) == 0);
}

static void co_set_resurrecting(void *arg)
{
    CHECK(qrs_storage_set(key_resurrect, arg, NULL) == 0);
}

static void test_destructor_rounds_bounded(void)
{
    int value;
    Co *co = co_create(co_set_resurrecting, &value);

    CHECK(qrs_storage_key_create(resurrecting_dtor, &key_resurrect) == 0);
    resurrect_calls = 0;
    co_enter(co);
    CHECK(resurrect_calls == QRS_STORAGE_DESTRUCTOR_ITERATIONS);
    CHECK(*co_slot(co) == NULL);
    CHECK(qrs_storage_key_delete(key_resurrect) == 0);
}

static int thread_dtor_calls;
static void *thread_dtor_value;

static void thread_dtor(void *value)
{
    __atomic_fetch_add(&thread_dtor_calls, 1, __ATOMIC_SEQ_CST);
    thread_dtor_value = value;
}

static QrsStorageKey key_thread;

static void *thread_sets_value(void *arg)
{
    CHECK(qrs_storage_set(key_thread, arg, NULL) == 0);
    CHECK(qrs_storage_get(key_thread) == arg);
    return NULL;
}

static void test_thread_exit_releases(void)
{
    pthread_t t;
    int value;

    CHECK(qrs_storage_key_create(thread_dtor, &key_thread) == 0);
    pthread_create(&t, NULL, thread_sets_value, &value);
    pthread_join(t, NULL);
    CHECK(thread_dtor_calls == 1);
    CHECK(thread_dtor_value == &value);
    CHECK(qrs_storage_get(key_thread) == NULL);
    CHECK(qrs_storage_key_delete(key_thread) == 0);
}

static void test_bad_keys_and_exhaustion(void)
{
    static QrsStorageKey keys[QRS_STORAGE_KEYS_MAX + 1];
    QrsStorageKey dead, again;
    int i, n = 0, ret = 0, x;
    void *old = (void *)1;

    CHECK(qrs_storage_get(0) == NULL);
    CHECK(qrs_storage_set(0, &x, &old) == -EINVAL);
    CHECK(old == (void *)1);    /* untouched on error */
    CHECK(qrs_storage_key_delete(0) == -EINVAL);
    CHECK(qrs_storage_key_create(NULL, NULL) == -EINVAL);
    CHECK(qrs_storage_set_in(NULL, key_a, &x, NULL) == -EINVAL);
    CHECK(qrs_storage_get_in(NULL, key_a) == NULL);
    qrs_storage_release(NULL);

    CHECK(qrs_storage_key_create(NULL, &dead) == 0);
    CHECK(qrs_storage_set(dead, &x, NULL) == 0);
    CHECK(qrs_storage_key_delete(dead) == 0);
    CHECK(qrs_storage_get(dead) == NULL);
    CHECK(qrs_storage_set(dead, &x, NULL) == -EINVAL);
    CHECK(qrs_storage_key_delete(dead) == -EINVAL);

    for (i = 0; i <= QRS_STORAGE_KEYS_MAX; i++) {
        ret = qrs_storage_key_create(counting_dtor, &keys[i]);
        if (ret < 0) {
            break;
        }
        n++;
    }
    CHECK(ret == -EAGAIN);
    CHECK(n >= 128);
    /* Values under every key at once, then a key freed and made again. */
    reset_dtor();
    for (i = 0; i < n; i++) {
        CHECK(qrs_storage_set(keys[i], &keys[i], NULL) == 0);
    }
    for (i = 0; i < n; i++) {
        CHECK(qrs_storage_get(keys[i]) == &keys[i]);
    }
    CHECK(qrs_storage_key_delete(keys[0]) == 0);
    CHECK(qrs_storage_key_create(NULL, &again) == 0);
    CHECK(qrs_storage_get(again) == NULL);  /* no stale value */
    CHECK(qrs_storage_key_create(NULL, &dead) == -EAGAIN);
    CHECK(qrs_storage_key_delete(again) == 0);
    for (i = 1; i < n; i++) {
        CHECK(qrs_storage_set(keys[i], NULL, NULL) == 0);
        CHECK(qrs_storage_key_delete(keys[i]) == 0);
    }
    CHECK(dtor_calls == 0);
}

/* Many threads, each running many short coroutines that set, yield and
 * check their own values while keys come and go. */
enum { STRESS_THREADS = 4, STRESS_COROUTINES = 2000 };

static int stress_dtor_calls;

static void stress_dtor(void *value)
{
    (void)value;
    __atomic_fetch_add(&stress_dtor_calls, 1, __ATOMIC_RELAXED);
}

static QrsStorageKey key_stress;

static void co_stress(void *arg)
{
    CHECK(qrs_storage_get(key_stress) == NULL);
    CHECK(qrs_storage_set(key_stress, arg, NULL) == 0);
    co_yield();
    CHECK(qrs_storage_get(key_stress) == arg);
}

static void *stress_thread(void *arg)
{
    enum { BATCH = 16 };
    char *base = arg;
    int i, j;

    (void)base;
    for (i = 0; i < STRESS_COROUTINES; i += BATCH) {
        Co *cos[BATCH];
        QrsStorageKey churn;

        for (j = 0; j < BATCH; j++) {
            cos[j] = co_create(co_stress, base + i + j);
            co_enter(cos[j]);
        }
        CHECK(qrs_storage_key_create(NULL, &churn) == 0);
        CHECK(qrs_storage_key_delete(churn) == 0);
        for (j = 0; j < BATCH; j++) {
            co_enter(cos[j]);
        }
    }
    cohost_thread_cleanup();
    return NULL;
}

static void test_stress_threads(void)
{
    static char values[STRESS_THREADS][STRESS_COROUTINES];
    pthread_t t[STRESS_THREADS];
    int i;

    CHECK(qrs_storage_key_create(stress_dtor, &key_stress) == 0);
    for (i = 0; i < STRESS_THREADS; i++) {
        pthread_create(&t[i], NULL, stress_thread, values[i]);
    }
    for (i = 0; i < STRESS_THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    CHECK(stress_dtor_calls == STRESS_THREADS * STRESS_COROUTINES);
    CHECK(qrs_storage_key_delete(key_stress) == 0);
}

int main(void)
{
    static const TestCase tests[] = {
        { "per_coroutine_and_thread", test_per_coroutine_and_thread },
        { "release_and_recycle", test_release_and_recycle },
        { "lazy_allocation", test_lazy_allocation },
        { "set_before_enter", test_set_before_enter },
        { "destructor_rounds_bounded", test_destructor_rounds_bounded },
        { "thread_exit_releases", test_thread_exit_releases },
        { "bad_keys_and_exhaustion", test_bad_keys_and_exhaustion },
        { "stress_threads", test_stress_threads },
    };
    int failed;

    cohost_register();
    if (qrs_storage_key_create(NULL, &key_a) != 0 ||
        qrs_storage_key_create(counting_dtor, &key_b) != 0) {
        BAIL_OUT("qrs_storage_key_create failed");
    }
    failed = run_tests("storage", tests, sizeof(tests) / sizeof(tests[0]));
    qrs_storage_key_delete(key_a);
    qrs_storage_key_delete(key_b);
    cohost_thread_cleanup();
    return failed != 0;
}
