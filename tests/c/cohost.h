/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A minimal coroutine host for the C tests, the way a hypervisor without
 * QEMU would bind the library: ucontext coroutines with a storage slot each,
 * a per-thread pool that recycles them, the slot released inside the
 * coroutine when its entry returns, and per-thread "homes" whose run queue
 * another thread can push to (the resume hook, like QEMU's aio_co_wake).
 */
#ifndef COHOST_H
#define COHOST_H

#include <stdbool.h>

typedef struct Co Co;
typedef struct CoHome CoHome;
typedef void CoEntry(void *arg);

/* Register the storage and offload hooks of this host with the library. */
void cohost_register(void);

/* The calling thread's home (created on first use). */
CoHome *cohome_self(void);
/* Create a coroutine (recycled from the thread's pool when possible). */
Co *co_create(CoEntry *entry, void *arg);
/* Enter @co now, from its home thread. */
void co_enter(Co *co);
/* Queue @co to run on its home thread: callable from any thread. */
void co_wake(Co *co);
/* Run queued coroutines until every coroutine of this home has terminated. */
void cohome_run(CoHome *home);
/* Run the coroutines queued now (at most @max entries), without waiting;
 * returns how many were entered. */
unsigned cohome_poll(CoHome *home, unsigned max);
void co_yield(void);
Co *co_self(void);
bool co_terminated(Co *co);
void **co_slot(Co *co);
/* How often @co was resumed through the offload hook, and suspended. */
unsigned co_resumes(Co *co);
unsigned co_suspends(Co *co);
/* Free the calling thread's pool of terminated coroutines. */
void cohost_thread_cleanup(void);

#endif
