// SPDX-License-Identifier: GPL-2.0-or-later
//! The request record of one offload and its completion handshake.
//!
//! The record lives on the suspended coroutine's stack, so an offload
//! allocates nothing.  Its `state` decides who resumes whom:
//!
//! - the coroutine, after submitting, moves PENDING -> WAITING and suspends;
//!   if the worker finished first (state already DONE) it does not suspend;
//! - the worker, after running the function, swaps in DONE; only if it saw
//!   WAITING does it ask the host to resume the coroutine.
//!
//! A resume therefore happens at most once and only after the coroutine has
//! committed to suspending.  It may still reach the host before the switch
//! away has completed; the host's resume must queue the coroutine to its home
//! thread, which cannot enter it before it has suspended (QEMU: `aio_co_wake`
//! from a worker thread schedules a bottom half in the home AioContext).

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::Hooks;

const PENDING: u32 = 0;
const WAITING: u32 = 1;
const DONE: u32 = 2;

/// The type-erased head of a request record.
#[repr(C)]
pub(crate) struct Job {
    /// Runs the work and stores its result in the enclosing record.
    run: unsafe fn(NonNull<Job>),
    state: AtomicU32,
    /// The host's handle of the waiting coroutine.
    co: *mut c_void,
    resume: unsafe extern "C" fn(co: *mut c_void),
}

/// A job pointer that crosses to a worker thread.
#[derive(Copy, Clone)]
pub(crate) struct JobPtr(pub(crate) NonNull<Job>);

// SAFETY: a JobPtr is handed to exactly one worker, and the record it points
// to stays alive (its coroutine waits) until the worker has marked it DONE.
unsafe impl Send for JobPtr {}

impl Job {
    /// A job whose `run` will be called on a worker with a pointer to this
    /// head, which must be the first field of a `#[repr(C)]` record.
    pub(crate) fn new(run: unsafe fn(NonNull<Job>), co: *mut c_void, hooks: &Hooks) -> Job {
        Job {
            run,
            state: AtomicU32::new(PENDING),
            co,
            resume: hooks.resume,
        }
    }

    /// On the coroutine, after submitting: suspend until the job is done.
    pub(crate) fn wait(&self, suspend: unsafe extern "C" fn()) {
        if self
            .state
            .compare_exchange(PENDING, WAITING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // Having published WAITING we must suspend even if the job is
            // already DONE: the worker saw WAITING and its resume is on the
            // way; skipping the suspend would leave that resume to enter us
            // later, at some unrelated point.  Loop so that a stray resume
            // cannot end the wait early.
            loop {
                // SAFETY: we are in the coroutine the host handle names; the
                // worker will resume it once, after marking the job DONE.
                unsafe { suspend() };
                if self.state.load(Ordering::Acquire) == DONE {
                    break;
                }
            }
        }
    }
}

/// On a worker: run the job, call `ran()`, then complete the job (resume
/// its coroutine if it waits).
///
/// # Safety
/// `job` was submitted by `run_in_worker` and not executed before.
pub(crate) unsafe fn execute(job: JobPtr, ran: impl FnOnce()) {
    let head = job.0.as_ptr();
    // SAFETY: the record is alive until we mark it DONE (see JobPtr), and
    // `co`/`resume` are read before that; after the swap the record may be
    // gone unless the coroutine is WAITING for our resume.
    unsafe {
        let (co, resume) = ((*head).co, (*head).resume);
        ((*head).run)(job.0);
        ran();
        if (*head).state.swap(DONE, Ordering::AcqRel) == WAITING {
            resume(co);
        }
    }
}
