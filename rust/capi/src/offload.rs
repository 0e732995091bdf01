// SPDX-License-Identifier: GPL-2.0-or-later
//! The offload primitive: `qrs_offload_*` and `qrs_co_run_in_worker`.

use std::ffi::c_void;

use p9_wire::errno::{EAGAIN, EALREADY};

use crate::errno::to_neg_errno;
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

/// How the worker pool is sized.  Fill it with `qrs_offload_config_init`,
/// then change what differs; 0 in any field means its default.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QrsOffloadConfig {
    /// Workers started, and the floor the pool never shrinks below; 0: the
    /// environment variable `QRS_OFFLOAD_THREADS`, else the number of CPUs
    /// (at least 2).
    pub threads: u32,
    /// The most workers the pool grows to; 0: the environment variable
    /// `QRS_OFFLOAD_MAX_THREADS`, else 64.  Raised to `threads` if below
    /// (equal: the pool does not grow), capped at 256.
    pub max_threads: u32,
    /// How long, in milliseconds, a worker beyond `threads` stays idle
    /// before it exits; 0: 10000 (QEMU's thread pool).
    pub idle_timeout_ms: u32,
    /// How long, in microseconds, queued work must wait with every worker
    /// in a call before the pool grows; 0: 2000.  At least 100.
    pub grow_after_us: u32,
}

/// Counters of the worker pool since its last start.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QrsOffloadStats {
    /// Worker threads alive now (0 once stopped).
    pub threads: u32,
    /// The start count, below which the pool does not shrink.
    pub min_threads: u32,
    /// The most workers the pool may grow to.
    pub max_threads: u32,
    /// The most workers alive at once.
    pub peak_threads: u32,
    /// Worker threads created, the initial ones included.
    pub spawned: u64,
    /// Workers that exited after the idle period.
    pub retired: u64,
}

fn config_from_c(c: &QrsOffloadConfig) -> offload::Config {
    let d = offload::Config::default();
    offload::Config {
        threads: c.threads as usize,
        max_threads: c.max_threads as usize,
        idle_timeout: match c.idle_timeout_ms {
            0 => d.idle_timeout,
            ms => std::time::Duration::from_millis(u64::from(ms)),
        },
        grow_after: match c.grow_after_us {
            0 => d.grow_after,
            us => std::time::Duration::from_micros(u64::from(us)),
        },
    }
}

fn start_with(config: &offload::Config) -> i32 {
    match offload::start_with(config) {
        Ok(n) => i32::try_from(n).unwrap_or(i32::MAX),
        Err(offload::StartError::AlreadyRunning) => to_neg_errno(EALREADY),
        Err(offload::StartError::Spawn) => to_neg_errno(EAGAIN),
    }
}

/// Fill `config` with the defaults (every field 0 but `idle_timeout_ms`
/// 10000 and `grow_after_us` 2000).  A NULL `config` is ignored.
///
/// # Safety
/// `config` is NULL or points to a writable `QrsOffloadConfig`.
#[no_mangle]
pub unsafe extern "C" fn qrs_offload_config_init(config: *mut QrsOffloadConfig) {
    ffi_guard((), || {
        if config.is_null() {
            return;
        }
        let d = offload::Config::default();
        let c = QrsOffloadConfig {
            threads: 0,
            max_threads: 0,
            idle_timeout_ms: u32::try_from(d.idle_timeout.as_millis()).unwrap_or(u32::MAX),
            grow_after_us: u32::try_from(d.grow_after.as_micros()).unwrap_or(u32::MAX),
        };
        // SAFETY: non-NULL and writable, per the contract.
        unsafe { config.write(c) };
    })
}

/// Start the worker pool with `threads` workers; 0 means the environment
/// variable `QRS_OFFLOAD_THREADS`, else the number of CPUs (at least 2).
///
/// The pool grows on demand, as QEMU's thread pool does, up to the
/// environment variable `QRS_OFFLOAD_MAX_THREADS` (else 64) workers: when
/// queued work has waited 2 ms with every worker inside a call and some of
/// them blocked in the kernel (a stuck NFS or FUSE mount, a slow disk),
/// a manager thread adds one worker per blocked one.  Short work never
/// grows it.  Workers beyond `threads` exit after 10 s without work; the
/// pool never shrinks below `threads`.  `qrs_offload_start_config` sets
/// these.  Pool threads block every asynchronous signal (SIGINT, SIGTERM,
/// SIGALRM, SIGCHLD, SIGUSR1, ...; not SIGSEGV, SIGBUS, SIGFPE, SIGILL,
/// SIGTRAP, SIGSYS), as QEMU's threads do; the caller's mask is unchanged.
///
/// Thread-safe.  Returns once every thread has done its start-up, with the
/// number of workers started; `-EALREADY` if the pool is running, `-EAGAIN`
/// if a thread could not be created.
#[no_mangle]
pub extern "C" fn qrs_offload_start(threads: u32) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        start_with(&offload::Config {
            threads: threads as usize,
            ..offload::Config::default()
        })
    })
}

/// `qrs_offload_start` with every setting from `config` (copied).  Returns
/// the number of workers started, `-EINVAL` if `config` is NULL,
/// `-EALREADY` if the pool is running, `-EAGAIN` if a thread could not be
/// created.
///
/// # Safety
/// `config` is NULL or points to a readable `QrsOffloadConfig`.
#[no_mangle]
pub unsafe extern "C" fn qrs_offload_start_config(config: *const QrsOffloadConfig) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        // SAFETY: NULL or readable, per the contract.
        match unsafe { config.as_ref() } {
            Some(c) => start_with(&config_from_c(c)),
            None => -libc::EINVAL,
        }
    })
}

/// Write the pool's counters since its last start to `*stats` (after a
/// stop: `threads` is 0, the rest describes the last run).  Thread-safe.
/// Returns 0, or `-EINVAL` if `stats` is NULL.
///
/// # Safety
/// `stats` is NULL or points to a writable `QrsOffloadStats`.
#[no_mangle]
pub unsafe extern "C" fn qrs_offload_stats(stats: *mut QrsOffloadStats) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        if stats.is_null() {
            return -libc::EINVAL;
        }
        let s = offload::stats();
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        let out = QrsOffloadStats {
            threads: n(s.threads),
            min_threads: n(s.min_threads),
            max_threads: n(s.max_threads),
            peak_threads: n(s.peak),
            spawned: s.spawned,
            retired: s.retired,
        };
        // SAFETY: non-NULL and writable, per the contract.
        unsafe { stats.write(out) };
        0
    })
}

/// Stop the worker pool: work already submitted completes (its coroutines
/// are resumed), later offloads run inline, and every thread of the pool,
/// grown workers included, is joined.  Do not call it from a worker, nor
/// from a home thread whose coroutines still wait for offloads (it would
/// wait for them while they cannot be resumed).
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
