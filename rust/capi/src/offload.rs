// SPDX-License-Identifier: GPL-2.0-or-later
//! The offload primitive: `qrs_offload_*` and `qrs_co_run_in_worker`.

use std::ffi::c_void;

use crate::{ffi_guard, PANIC_ERRNO};

/// The host's coroutine operations, registered once with
/// `qrs_offload_set_host`.  In QEMU: `qemu_coroutine_self()` when
/// `qemu_in_coroutine()` (else NULL), `qemu_coroutine_yield()` and
/// `aio_co_wake()`.
#[repr(C)]
pub struct QrsOffloadHooks {
    /// The calling coroutine's handle, or NULL when not in a coroutine.
    pub current: Option<unsafe extern "C" fn() -> *mut c_void>,
    /// Suspend the calling coroutine until it is resumed.
    pub suspend: Option<unsafe extern "C" fn()>,
    /// Resume `co` on its home thread.  Called from worker threads, possibly
    /// before `co` has finished suspending: the host must then enter `co`
    /// only after it has suspended, e.g. by queueing it to its home event
    /// loop (`aio_co_wake` does).  Called at most once per suspension.
    pub resume: Option<unsafe extern "C" fn(co: *mut c_void)>,
}

/// Register the host's hooks (copied).  Once per process; call it before
/// `qrs_offload_start`.  Returns 0, `-EINVAL` if `hooks` or one of its
/// functions is NULL, `-EALREADY` if hooks were registered before.
///
/// # Safety
/// `hooks` is NULL or points to a readable `QrsOffloadHooks`; its functions
/// behave as documented there and are callable from any thread.
#[no_mangle]
pub unsafe extern "C" fn qrs_offload_set_host(hooks: *const QrsOffloadHooks) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        // SAFETY: NULL or readable, per the contract.
        let Some(h) = (unsafe { hooks.as_ref() }) else {
            return -libc::EINVAL;
        };
        let (Some(current), Some(suspend), Some(resume)) = (h.current, h.suspend, h.resume) else {
            return -libc::EINVAL;
        };
        match offload::set_hooks(offload::Hooks {
            current,
            suspend,
            resume,
        }) {
            Ok(()) => 0,
            Err(_) => -libc::EALREADY,
        }
    })
}

/// Start the worker pool with `threads` workers; 0 means the environment
/// variable `QRS_OFFLOAD_THREADS`, else the number of CPUs (at least 2).
/// Thread-safe.  Returns the number of workers started, `-EALREADY` if the
/// pool is running, `-EAGAIN` if a thread could not be created.
#[no_mangle]
pub extern "C" fn qrs_offload_start(threads: u32) -> i32 {
    ffi_guard(PANIC_ERRNO, || match offload::start(threads as usize) {
        Ok(n) => i32::try_from(n).unwrap_or(i32::MAX),
        Err(offload::StartError::AlreadyRunning) => -libc::EALREADY,
        Err(offload::StartError::Spawn) => -libc::EAGAIN,
    })
}

/// Stop the worker pool: work already submitted completes (its coroutines
/// are resumed), later offloads run inline, and the workers are joined.  Do
/// not call it from a worker, nor from a home thread whose coroutines still
/// wait for offloads (it would wait for them while they cannot be resumed).
/// Returns 0, or `-EALREADY` if the pool was not running.
#[no_mangle]
pub extern "C" fn qrs_offload_stop() -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        if offload::stop() {
            0
        } else {
            -libc::EALREADY
        }
    })
}

/// Run `func(opaque)` on a worker thread and return its result.  Called in a
/// coroutine: the coroutine suspends and is resumed on its home thread when
/// `func` returns; nothing is allocated.  Called outside a coroutine, before
/// hooks are registered or while the pool is stopped: `func` runs inline.
///
/// # Safety
/// `func(opaque)` must be safe to run on another thread while the caller
/// waits; it must not unwind.
#[no_mangle]
pub unsafe extern "C" fn qrs_co_run_in_worker(
    func: Option<unsafe extern "C" fn(opaque: *mut c_void) -> i32>,
    opaque: *mut c_void,
) -> i32 {
    ffi_guard(PANIC_ERRNO, || match func {
        // SAFETY: per the contract.
        Some(f) => unsafe { offload::run_c_in_worker(f, opaque) },
        None => -libc::EINVAL,
    })
}
