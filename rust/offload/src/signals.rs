// SPDX-License-Identifier: GPL-2.0-or-later
//! The signal mask of the pool's threads.
//!
//! Like every thread QEMU creates (`qemu_thread_create` in
//! `util/qemu-thread-posix.c`), a pool thread blocks every asynchronous
//! signal, so that signals meant for the main loop (SIGTERM, SIGINT, SIGHUP,
//! SIGALRM, SIGUSR1/2, SIGCHLD, SIGIO, ...) are never delivered to a worker,
//! where a handler would run at a random point of a backend call or a
//! blocking system call would fail with `EINTR`.  The synchronous signals,
//! raised by the faulting instruction itself, stay deliverable: SIGSEGV,
//! SIGBUS, SIGFPE, SIGILL, SIGTRAP and SIGSYS.  QEMU unblocks SIGSEGV,
//! SIGFPE and SIGILL (SIGBUS is a macOS TODO there); Linux delivers a
//! blocked synchronous signal by resetting it to its default action, so a
//! handler (QEMU's SIGBUS handler, a seccomp SIGSYS handler) would never
//! run and the process would die instead.
//!
//! The mask is set in the creating thread around the spawn and restored
//! right after, as QEMU does: a new thread inherits its creator's mask
//! atomically, when the kernel creates it.  Setting the mask as the first
//! thing the new thread does would leave a window (the thread's start-up in
//! libc and std runs before our code) in which the kernel may pick the new
//! thread for a process-directed signal.  The creating thread blocks
//! signals only for the duration of `pthread_create`; a process-directed
//! signal arriving then is delivered to another thread or, once the mask is
//! restored, to this one.

use std::io;
use std::mem::MaybeUninit;
use std::thread::{Builder, JoinHandle};

/// Synchronous signals: raised by the faulting instruction itself, so they
/// must stay deliverable.
pub(crate) const SYNCHRONOUS: [libc::c_int; 6] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGSYS,
];

/// The mask of a pool thread: everything but [`SYNCHRONOUS`].
fn pool_mask() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset initialises the set it is given; sigdelset then
    // only clears bits of that initialised set (valid signal numbers).
    unsafe {
        libc::sigfillset(set.as_mut_ptr());
        for sig in SYNCHRONOUS {
            libc::sigdelset(set.as_mut_ptr(), sig);
        }
        set.assume_init()
    }
}

/// Restores the creating thread's mask, also if the spawn unwinds.
struct Restore(libc::sigset_t);

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: the set was filled in by pthread_sigmask below; setting a
        // mask has no other precondition.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

/// Spawn a pool thread whose signal mask is the pool's (every asynchronous
/// signal blocked) from its first instruction; the caller's mask is the same
/// after the call as before.
pub(crate) fn spawn<F>(builder: Builder, f: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    let mask = pool_mask();
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `mask` is an initialised set and `old` a writable one, which
    // pthread_sigmask fills in (it cannot fail with a valid `how`).
    let old = unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &mask, old.as_mut_ptr());
        old.assume_init()
    };
    let _restore = Restore(old);
    builder.spawn(f)
}
