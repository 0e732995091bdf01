// SPDX-License-Identifier: GPL-2.0-or-later
//! An eventcount on a futex: idle workers sleep on it, submitters wake one.
//!
//! A worker announces itself as a sleeper, re-checks for work, then waits
//! for the epoch to change; a submitter publishes its work, then wakes a
//! sleeper if there is one.  The sequentially consistent sleeper count and
//! the fence order those two steps so no wakeup is lost, and a submitter
//! with no sleeper to wake makes no system call.

use std::sync::atomic::{fence, AtomicU32, Ordering};

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
    pub(crate) fn wake_one(&self) {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            self.epoch.fetch_add(1, Ordering::SeqCst);
            futex_wake(&self.epoch, 1);
        }
    }

    /// Wake every sleeping worker (shutdown).
    pub(crate) fn wake_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        futex_wake(&self.epoch, i32::MAX);
    }

    /// Sleep until woken, unless `has_work()` (checked after announcing the
    /// sleep) says there is something to do.
    pub(crate) fn sleep_unless(&self, has_work: impl Fn() -> bool) {
        let epoch = self.epoch.load(Ordering::SeqCst);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        if !has_work() {
            futex_wait(&self.epoch, epoch);
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }
}

fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: FUTEX_WAIT reads the aligned u32 behind `word`, which lives
    // for the duration of the call; a changed value or a signal just returns.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

fn futex_wake(word: &AtomicU32, count: i32) {
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
