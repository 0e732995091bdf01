// SPDX-License-Identifier: GPL-2.0-or-later
//! `co_run_in_worker`: from a coroutine on an event-loop thread, run a
//! blocking function on a worker pool and resume the coroutine on its home
//! thread with the result.
//!
//! Unlike QEMU's `v9fs_co_run_in_worker` (`hw/9pfs/coth.h`), the coroutine
//! never leaves its home thread: the work moves, not the coroutine, so no
//! compiler-cached thread-local address can go stale across a switch, and a
//! worker never enters a coroutine.  The host provides three hooks
//! ([`Hooks`]): the current coroutine, suspend it, and resume a coroutine
//! from any thread (QEMU: `qemu_coroutine_self`, `qemu_coroutine_yield`,
//! `aio_co_wake`).  Outside a coroutine, or without hooks, the function runs
//! inline: hosts without coroutines call it from their own worker threads.
//!
//! The request record lives on the suspended coroutine's stack and the
//! per-home-thread deques stop growing once warm, so an offload performs no
//! heap allocation in steady state.
//!
//! A panic in an offloaded closure is caught on the worker and resumed on
//! the calling coroutine, on its home thread, as if the closure had run
//! there.
//!
//! The pool ([`start`], [`start_with`]) starts one worker per CPU, grows up
//! to 64 (like QEMU's thread pool) when queued work waits behind calls that
//! block in the kernel, and shrinks back after 10 s of idleness; [`stats`]
//! counts its threads.  Its threads block every asynchronous signal, as
//! QEMU's threads do.
#![warn(missing_docs)]

mod job;
mod pool;
mod signals;
mod sleep;
mod wait;

use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

use std::sync::OnceLock;

pub use pool::{
    is_running, max_thread_count, start, start_with, stats, stop, thread_count, Config, StartError,
    Stats, GROW_AFTER_DEFAULT, IDLE_TIMEOUT_DEFAULT, MAX_THREADS_DEFAULT, MAX_THREADS_ENV,
    THREADS_ENV, THREADS_MAX,
};
pub use wait::{ReadGuard, RwLock, WaitCell, WriteGuard};

use job::{Job, JobPtr};

/// The host's coroutine operations.
#[derive(Copy, Clone, Debug)]
#[repr(C)]
pub struct Hooks {
    /// The calling coroutine's handle, or NULL when not in a coroutine.
    pub current: unsafe extern "C" fn() -> *mut c_void,
    /// Suspend the calling coroutine until it is resumed.
    pub suspend: unsafe extern "C" fn(),
    /// Resume `co` on its home thread; callable from any thread, possibly
    /// before `co` has finished suspending: the host must then enter it only
    /// once it has suspended (e.g. by queueing it to its home event loop).
    pub resume: unsafe extern "C" fn(co: *mut c_void),
}

static HOOKS: OnceLock<Hooks> = OnceLock::new();

/// Register the host's hooks, once per process.
///
/// # Errors
/// Returns the hooks already registered if there are any.
pub fn set_hooks(hooks: Hooks) -> Result<(), Hooks> {
    HOOKS
        .set(hooks)
        .map_err(|_| *HOOKS.get().expect("set failed, so hooks exist"))
}

/// Run `f` on a worker thread while the calling coroutine is suspended, and
/// return its result on the coroutine's home thread.  Outside a coroutine,
/// without registered hooks, or while the pool is stopped, `f` runs inline.
///
/// A panic in `f` is resumed here, on the caller.
pub fn run_in_worker<F, R>(f: F) -> R
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    let Some(hooks) = HOOKS.get() else {
        return f();
    };
    // SAFETY: the host's hook is callable from any thread.
    let co = unsafe { (hooks.current)() };
    if co.is_null() {
        return f();
    }

    // The record: Job head first, so the worker can find the rest.
    #[repr(C)]
    struct Record<F, R> {
        job: Job,
        f: UnsafeCell<Option<F>>,
        out: UnsafeCell<Option<std::thread::Result<R>>>,
    }

    /// # Safety
    /// `job` is the head of a live `Record<F, R>` that no one else touches
    /// until the job is marked done.
    unsafe fn run<F: FnOnce() -> R, R>(job: NonNull<Job>) {
        let rec = job.cast::<Record<F, R>>().as_ptr();
        // SAFETY: per the contract, we have exclusive access to f and out.
        unsafe {
            if let Some(f) = (*(*rec).f.get()).take() {
                *(*rec).out.get() = Some(catch_unwind(AssertUnwindSafe(f)));
            }
        }
    }

    let rec = Record {
        job: Job::new(run::<F, R>, co, hooks),
        f: UnsafeCell::new(Some(f)),
        out: UnsafeCell::new(None),
    };
    let job = JobPtr(NonNull::from(&rec.job));
    if pool::submit(job) {
        // Suspend; the worker's completion makes `out` visible (Acquire).
        rec.job.wait(hooks.suspend);
    } else {
        // SAFETY: the job was not submitted, so it is ours to run.
        unsafe { run::<F, R>(job.0) };
    }
    match rec.out.into_inner() {
        Some(Ok(r)) => r,
        Some(Err(panic)) => resume_unwind(panic),
        None => unreachable!("offloaded job completed without a result"),
    }
}

/// A C function and its argument, sent to a worker.
struct CCall {
    func: unsafe extern "C" fn(opaque: *mut c_void) -> i32,
    opaque: *mut c_void,
}

// SAFETY: the C caller of `run_c_in_worker` promises that `func(opaque)` may
// run on another thread.
unsafe impl Send for CCall {}

/// [`run_in_worker`] for a C function: returns `func(opaque)`.
///
/// # Safety
/// `func(opaque)` is safe to call on any thread while the caller waits.
pub unsafe fn run_c_in_worker(
    func: unsafe extern "C" fn(*mut c_void) -> i32,
    opaque: *mut c_void,
) -> i32 {
    let call = CCall { func, opaque };
    run_in_worker(move || {
        let call = call;
        // SAFETY: per the contract.
        unsafe { (call.func)(call.opaque) }
    })
}
