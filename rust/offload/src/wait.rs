// SPDX-License-Identifier: GPL-2.0-or-later
//! Waiting that works the same for coroutines and for plain threads.
//!
//! A [`WaitCell`] is a value under a lock plus the list of tasks waiting for
//! it to reach some state.  A waiter in a coroutine suspends through the
//! host's hooks and is resumed through them; a waiter outside a coroutine
//! parks its thread.  The engine builds its waits on it (a request waiting
//! for a flushed one, the rename lock), so one code path serves both host
//! modes.  No lock is held while a task is suspended or parked.

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::Thread;

use crate::HOOKS;

/// How to wake one waiting task.
enum Waker {
    /// A coroutine, resumed with the host's hook.
    Co {
        co: *mut c_void,
        resume: unsafe extern "C" fn(*mut c_void),
    },
    /// A thread, unparked.
    Thread(Thread),
}

// SAFETY: the coroutine handle is only passed back to the host's resume
// hook, which is callable from any thread.
unsafe impl Send for Waker {}

impl Waker {
    fn wake(self) {
        match self {
            // SAFETY: `co` was registered by a coroutine that suspends right
            // after releasing the lock and is resumed exactly once per
            // registration (each registration is drained exactly once).
            Waker::Co { co, resume } => unsafe { resume(co) },
            Waker::Thread(t) => t.unpark(),
        }
    }
}

/// How the calling task waits: suspend its coroutine or park its thread.
enum Sleeper {
    Co {
        co: *mut c_void,
        suspend: unsafe extern "C" fn(),
        resume: unsafe extern "C" fn(*mut c_void),
    },
    Thread,
}

impl Sleeper {
    fn current() -> Sleeper {
        if let Some(hooks) = HOOKS.get() {
            // SAFETY: the host's hook is callable from any thread.
            let co = unsafe { (hooks.current)() };
            if !co.is_null() {
                return Sleeper::Co {
                    co,
                    suspend: hooks.suspend,
                    resume: hooks.resume,
                };
            }
        }
        Sleeper::Thread
    }

    fn waker(&self) -> Waker {
        match *self {
            Sleeper::Co { co, resume, .. } => Waker::Co { co, resume },
            Sleeper::Thread => Waker::Thread(std::thread::current()),
        }
    }

    fn sleep(&self) {
        match *self {
            // SAFETY: we are the coroutine `co`; our waker is registered, so
            // exactly one resume will follow.
            Sleeper::Co { suspend, .. } => unsafe { suspend() },
            // A spurious or early wake-up only makes the caller re-check.
            Sleeper::Thread => std::thread::park(),
        }
    }
}

struct Inner<T> {
    value: T,
    waiters: Vec<Waker>,
}

/// A value under a lock, with tasks waiting for it to reach a state.
pub struct WaitCell<T> {
    inner: Mutex<Inner<T>>,
}

impl<T> WaitCell<T> {
    /// A cell holding `value`, with no waiters.
    pub const fn new(value: T) -> Self {
        WaitCell {
            inner: Mutex::new(Inner {
                value,
                waiters: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // A panic under the lock leaves the value as the closure left it;
        // the cell's users keep it consistent at every step.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait until `ready(&mut value)` returns `Some`, and return that.
    /// `ready` runs under the lock, so it may also claim what it found
    /// (e.g. take a reader slot); it must not block.
    pub fn wait_for<R>(&self, mut ready: impl FnMut(&mut T) -> Option<R>) -> R {
        let sleeper = Sleeper::current();
        loop {
            {
                let mut inner = self.lock();
                if let Some(r) = ready(&mut inner.value) {
                    return r;
                }
                inner.waiters.push(sleeper.waker());
            }
            sleeper.sleep();
        }
    }

    /// Change the value and wake every waiter, which then re-checks.
    pub fn update<R>(&self, change: impl FnOnce(&mut T) -> R) -> R {
        let (r, waiters) = {
            let mut inner = self.lock();
            let r = change(&mut inner.value);
            (r, std::mem::take(&mut inner.waiters))
        };
        for w in waiters {
            w.wake();
        }
        r
    }

    /// Read the value without waiting.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.lock().value)
    }
}

struct RwState {
    writer: bool,
    writers_waiting: usize,
}

/// In [`RwLock::fast`]: a writer holds the lock or waits for it.
const WRITER: usize = 1 << (usize::BITS - 1);

/// A readers-writer lock whose waiters suspend their coroutine (or park
/// their thread) instead of blocking the home thread.  Writers have
/// priority over new readers, so a rename is not starved by a stream of
/// lookups.
///
/// Readers count themselves in one atomic word; while no writer holds or
/// wants the lock, taking and releasing a read lock is one atomic each and
/// touches no mutex.  A writer sets the `WRITER` bit in that word (under the
/// cell's lock), which sends new readers to the slow path, and waits in
/// the cell for the count to drain; the reader that brings it to zero
/// wakes it.
pub struct RwLock {
    /// Readers holding the lock, plus [`WRITER`].
    fast: AtomicUsize,
    state: WaitCell<RwState>,
}

impl Default for RwLock {
    fn default() -> Self {
        RwLock::new()
    }
}

/// Shared access; released on drop.
pub struct ReadGuard<'a>(&'a RwLock);
/// Exclusive access; released on drop.
pub struct WriteGuard<'a>(&'a RwLock);

impl RwLock {
    /// An unlocked lock.
    pub const fn new() -> Self {
        RwLock {
            fast: AtomicUsize::new(0),
            state: WaitCell::new(RwState {
                writer: false,
                writers_waiting: 0,
            }),
        }
    }

    /// Take shared access, waiting while a writer holds or wants the lock.
    pub fn read(&self) -> ReadGuard<'_> {
        let mut cur = self.fast.load(Ordering::Relaxed);
        while cur & WRITER == 0 {
            match self.fast.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return ReadGuard(self),
                Err(now) => cur = now,
            }
        }
        // A writer holds or wants the lock.  `WRITER` is cleared only
        // under the cell's lock, when no writer holds or waits; counting
        // ourselves there keeps a writer that comes next waiting for us.
        self.state.wait_for(|s| {
            (!s.writer && s.writers_waiting == 0).then(|| {
                self.fast.fetch_add(1, Ordering::Acquire);
            })
        });
        ReadGuard(self)
    }

    /// Take exclusive access, waiting for readers and writers to leave.
    pub fn write(&self) -> WriteGuard<'_> {
        self.state.update(|s| {
            s.writers_waiting += 1;
            self.fast.fetch_or(WRITER, Ordering::AcqRel);
        });
        self.state.wait_for(|s| {
            (!s.writer && self.fast.load(Ordering::Acquire) & !WRITER == 0).then(|| {
                s.writers_waiting -= 1;
                s.writer = true;
            })
        });
        WriteGuard(self)
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        let before = self.0.fast.fetch_sub(1, Ordering::Release);
        if before == WRITER + 1 {
            // The last reader, and a writer waits: wake it (through the
            // cell's lock, so the wake-up cannot fall between its check
            // and its sleep).
            self.0.state.update(|_| ());
        }
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        let fast = &self.0.fast;
        self.0.state.update(|s| {
            s.writer = false;
            if s.writers_waiting == 0 {
                fast.fetch_and(!WRITER, Ordering::Release);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn threads_wait_for_a_value() {
        let cell = Arc::new(WaitCell::new(0u32));
        let waiters: Vec<_> = (1..=4)
            .map(|i| {
                let cell = cell.clone();
                (
                    i,
                    std::thread::spawn(move || cell.wait_for(|v| (*v >= i).then_some(*v))),
                )
            })
            .collect();
        for n in 1..=4 {
            std::thread::sleep(Duration::from_millis(2));
            cell.update(|v| *v = n);
        }
        for (i, w) in waiters {
            let got = w.join().unwrap();
            assert!(got >= i, "waiter for {i} woke at {got}");
        }
    }

    #[test]
    fn rwlock_excludes_writers_from_readers() {
        let lock = Arc::new(RwLock::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let (lock, inside) = (lock.clone(), inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        if i % 3 == 0 {
                            let _w = lock.write();
                            assert_eq!(inside.fetch_add(1000, Ordering::SeqCst), 0);
                            std::thread::yield_now();
                            inside.fetch_sub(1000, Ordering::SeqCst);
                        } else {
                            let _r = lock.read();
                            assert!(inside.fetch_add(1, Ordering::SeqCst) < 1000);
                            std::thread::yield_now();
                            inside.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(inside.load(Ordering::SeqCst), 0);
    }
}
