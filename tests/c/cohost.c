/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The minimal coroutine host of the C tests; see cohost.h. */
#define _GNU_SOURCE
#include "cohost.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

#include "qemurs.h"

enum { STACK_SIZE = 256 * 1024 };

struct Co {
    ucontext_t ctx;
    ucontext_t caller;
    void *storage;          /* the slot the library owns */
    CoEntry *entry;
    void *arg;
    CoHome *home;
    bool terminated;
    bool running;
    unsigned resumes;       /* atomic: incremented by workers */
    unsigned suspends;
    Co *next;               /* pool or run queue */
    char *stack;
};

struct CoHome {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    Co *head, *tail;        /* run queue */
    unsigned live;          /* created and not yet terminated */
};

static __thread Co *current;
static __thread Co *pool;
static __thread CoHome *home;

static void fail(const char *msg)
{
    fprintf(stderr, "cohost: %s\n", msg);
    abort();
}

CoHome *cohome_self(void)
{
    if (!home) {
        home = calloc(1, sizeof(*home));
        pthread_mutex_init(&home->lock, NULL);
        pthread_cond_init(&home->cond, NULL);
    }
    return home;
}

static void trampoline(unsigned lo, unsigned hi)
{
    Co *co = (Co *)(((uintptr_t)hi << 32) | lo);

    co->entry(co->arg);
    qrs_storage_release(&co->storage);  /* inside the coroutine */
    co->terminated = true;
    swapcontext(&co->ctx, &co->caller);
    fail("terminated coroutine entered");
}

/* Separate from co_create so that no local is live across getcontext(). */
static void init_context(Co *co)
{
    getcontext(&co->ctx);
    co->ctx.uc_stack.ss_sp = co->stack;
    co->ctx.uc_stack.ss_size = STACK_SIZE;
    co->ctx.uc_link = NULL;
    makecontext(&co->ctx, (void (*)(void))trampoline, 2,
                (unsigned)(uintptr_t)co, (unsigned)((uintptr_t)co >> 32));
}

Co *co_create(CoEntry *entry, void *arg)
{
    Co *co = pool;

    if (co) {
        pool = co->next;
    } else {
        co = calloc(1, sizeof(*co));
        co->stack = malloc(STACK_SIZE);
    }
    co->entry = entry;
    co->arg = arg;
    co->home = cohome_self();
    co->home->live++;
    co->terminated = false;
    co->running = false;
    co->resumes = 0;
    co->suspends = 0;
    co->next = NULL;
    co->storage = NULL;     /* a recycled coroutine starts empty */
    init_context(co);
    return co;
}

void co_enter(Co *co)
{
    Co *prev = current;

    if (co->running) {
        fail("coroutine re-entered recursively");
    }
    if (co->home != home) {
        fail("coroutine entered off its home thread");
    }
    co->running = true;
    current = co;
    swapcontext(&co->caller, &co->ctx);
    current = prev;
    co->running = false;
    if (co->terminated) {
        co->home->live--;
        co->next = pool;
        pool = co;
    }
}

void co_yield(void)
{
    Co *co = current;

    current = NULL;
    swapcontext(&co->ctx, &co->caller);
    current = co;
}

void co_wake(Co *co)
{
    CoHome *h = co->home;

    pthread_mutex_lock(&h->lock);
    co->next = NULL;
    if (h->tail) {
        h->tail->next = co;
    } else {
        h->head = co;
    }
    h->tail = co;
    pthread_cond_signal(&h->cond);
    pthread_mutex_unlock(&h->lock);
}

void cohome_run(CoHome *h)
{
    while (h->live > 0) {
        Co *co;

        pthread_mutex_lock(&h->lock);
        while (!h->head) {
            pthread_cond_wait(&h->cond, &h->lock);
        }
        co = h->head;
        h->head = co->next;
        if (!h->head) {
            h->tail = NULL;
        }
        pthread_mutex_unlock(&h->lock);
        co_enter(co);
    }
}

unsigned cohome_poll(CoHome *h, unsigned max)
{
    unsigned n = 0;

    while (n < max) {
        Co *co;

        pthread_mutex_lock(&h->lock);
        co = h->head;
        if (co) {
            h->head = co->next;
            if (!h->head) {
                h->tail = NULL;
            }
        }
        pthread_mutex_unlock(&h->lock);
        if (!co) {
            break;
        }
        co_enter(co);
        n++;
    }
    return n;
}

Co *co_self(void) { return current; }
bool co_terminated(Co *co) { return co->terminated; }
void **co_slot(Co *co) { return &co->storage; }
unsigned co_resumes(Co *co) { return __atomic_load_n(&co->resumes, __ATOMIC_SEQ_CST); }
unsigned co_suspends(Co *co) { return co->suspends; }

void cohost_thread_cleanup(void)
{
    while (pool) {
        Co *co = pool;
        pool = co->next;
        free(co->stack);
        free(co);
    }
    if (home) {
        pthread_mutex_destroy(&home->lock);
        pthread_cond_destroy(&home->cond);
        free(home);
        home = NULL;
    }
}

/* ---- library hooks ---- */

static void **hook_storage_slot(void)
{
    return current ? &current->storage : NULL;
}

static void *hook_current(void)
{
    return current;
}

static void hook_suspend(void)
{
    current->suspends++;
    co_yield();
}

static void hook_resume(void *opaque)
{
    Co *co = opaque;

    __atomic_fetch_add(&co->resumes, 1, __ATOMIC_SEQ_CST);
    co_wake(co);
}

void cohost_register(void)
{
    static const QrsOffloadHooks hooks = {
        .current = hook_current,
        .suspend = hook_suspend,
        .resume = hook_resume,
    };

    if (qrs_storage_set_host(hook_storage_slot) != 0 ||
        qrs_offload_set_host(&hooks) != 0) {
        fail("registering hooks failed");
    }
}
