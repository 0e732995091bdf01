// SPDX-License-Identifier: GPL-2.0-or-later
//! An eventcount on a futex: idle workers sleep on it, submitters wake one.
//!
//! A worker announces itself as a sleeper, re-checks for work, then waits
//! for the epoch to change; a submitter publishes its work, then wakes a
//! sleeper if there is one.  The sequentially consistent sleeper count and
//! the fence order those two steps so no wakeup is lost, and a submitter
//! with no sleeper to wake makes no system call.

use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::time::Duration;

pub(crate) struct Sleep {
    epoch: AtomicU32,
    sleepers: AtomicU32,
}

impl Sleep {
    pub(crate) const fn new() -> Sleep {
        Sleep {
            epoch: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
        }
    }

    /// Call after publishing work: wake one sleeping worker, if any.
    /// Returns whether there was one (false: every worker is running a job
    /// or looking for one).  Ends with a sequentially consistent fence
    /// after the publication, which the caller may rely on.
    pub(crate) fn wake_one(&self) -> bool {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            self.epoch.fetch_add(1, Ordering::SeqCst);
            futex_wake(&self.epoch, 1);
            true
        } else {
            false
        }
    }

    /// Wake every sleeping worker (shutdown).
    pub(crate) fn wake_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        futex_wake(&self.epoch, i32::MAX);
    }

    /// Sleep until woken or until `timeout` (None: no limit) has passed,
    /// unless `has_work()` (checked after announcing the sleep) says there
    /// is something to do.
    pub(crate) fn sleep_unless(&self, has_work: impl Fn() -> bool, timeout: Option<Duration>) {
        let epoch = self.epoch.load(Ordering::SeqCst);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        if !has_work() {
            futex_wait(&self.epoch, epoch, timeout);
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Wait while `word` holds `expected`, at most `timeout` (None: no limit).
/// Returns early on a wake, a changed value, a signal or a spurious wakeup:
/// callers re-check their condition.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
        // Below 10^9, so it fits every c_long.
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |ts| ts as *const libc::timespec);
    // SAFETY: FUTEX_WAIT reads the aligned u32 behind `word`, which lives
    // for the duration of the call, and the relative timeout behind `ts_ptr`
    // (NULL or `ts`, alive until the call returns); a changed value, a
    // timeout or a signal just returns.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ts_ptr,
        );
    }
}

/// Wake up to `count` threads waiting on `word`.
pub(crate) fn futex_wake(word: &AtomicU32, count: i32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            count,
        );
    }
}
