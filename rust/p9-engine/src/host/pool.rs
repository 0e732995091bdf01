// SPDX-License-Identifier: GPL-2.0-or-later
//! The pool of request threads that [`super::ThreadHost`]s share: a run
//! queue of sessions with work, served round-robin.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// A session with work, as the pool sees it.
pub(super) trait Lane: Send + Sync {
    /// On a pool thread: run the session's next request (all of them when
    /// it was closed: they only finish, unstarted).
    fn run_one(self: Arc<Self>);
}

pub(super) struct RunQueue {
    /// Sessions with queued work, each at most once, served in turn.
    lanes: VecDeque<Arc<dyn Lane>>,
    /// Threads waiting for work.
    idle: usize,
    /// [`Pool`] handles and hosts using the pool.
    users: usize,
    /// Set when the last user is gone: threads exit once `lanes` is empty.
    shutdown: bool,
    /// Hosts waiting in their drop for the threads to let go of them.
    release_waiters: usize,
}

pub(super) struct PoolInner {
    run: Mutex<RunQueue>,
    ready: Condvar,
    /// A thread let go of a session (see `wait_released`).
    released: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
    count: usize,
}

impl PoolInner {
    pub(super) fn lock(&self) -> MutexGuard<'_, RunQueue> {
        // Every critical section leaves the queue consistent.
        self.run.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Put a session with work at the end of the line.
    pub(super) fn schedule(&self, lane: Arc<dyn Lane>) {
        let mut rq = self.lock();
        rq.lanes.push_back(lane);
        let wake = rq.idle > 0;
        drop(rq);
        if wake {
            self.ready.notify_one();
        }
    }

    /// Wait until no pool thread holds a reference to `session` but the
    /// caller's.  The threads drop theirs under the run queue's lock.
    pub(super) fn wait_released<T: ?Sized>(&self, session: &Arc<T>) {
        let mut rq = self.lock();
        rq.release_waiters += 1;
        while Arc::strong_count(session) > 1 {
            rq = self
                .released
                .wait(rq)
                .unwrap_or_else(PoisonError::into_inner);
        }
        rq.release_waiters -= 1;
    }
}

/// A pool thread: run sessions' requests until shut down.
fn worker(pool: &PoolInner) {
    let mut prev: Option<Arc<dyn Lane>> = None;
    loop {
        let lane = {
            let mut rq = pool.lock();
            if let Some(p) = prev.take() {
                // Under the lock, so that `wait_released` sees it.
                drop(p);
                if rq.release_waiters > 0 {
                    pool.released.notify_all();
                }
            }
            loop {
                if let Some(lane) = rq.lanes.pop_front() {
                    break lane;
                }
                if rq.shutdown {
                    return;
                }
                rq.idle += 1;
                rq = pool.ready.wait(rq).unwrap_or_else(PoisonError::into_inner);
                rq.idle -= 1;
            }
        };
        Arc::clone(&lane).run_one();
        prev = Some(lane);
    }
}

/// Threads that run the requests of any number of sessions
/// ([`ThreadHost`](super::ThreadHost)s), round-robin between the sessions with work.
///
/// Cloning gives another handle to the same pool.  The threads stop once
/// every handle and every host on the pool is gone (the last one to go
/// joins them, unless it is one of them).
pub struct Pool {
    pub(super) inner: Arc<PoolInner>,
}

impl Pool {
    /// A pool of `threads` threads (0: as many as
    /// `std::thread::available_parallelism`, at least 2), named
    /// `p9-host-N`.
    ///
    /// # Errors
    /// If a thread cannot be spawned (the threads already started are
    /// stopped again).
    pub fn new(threads: usize) -> std::io::Result<Pool> {
        let n = if threads == 0 {
            std::thread::available_parallelism()
                .map(NonZeroUsize::get)
                .unwrap_or(2)
                .max(2)
        } else {
            threads
        };
        let pool = Pool {
            inner: Arc::new(PoolInner {
                run: Mutex::new(RunQueue {
                    lanes: VecDeque::new(),
                    idle: 0,
                    users: 1,
                    shutdown: false,
                    release_waiters: 0,
                }),
                ready: Condvar::new(),
                released: Condvar::new(),
                threads: Mutex::new(Vec::with_capacity(n)),
                count: n,
            }),
        };
        for i in 0..n {
            let inner = Arc::clone(&pool.inner);
            // On failure, dropping `pool` stops the threads started.
            let t = std::thread::Builder::new()
                .name(format!("p9-host-{i}"))
                .spawn(move || worker(&inner))?;
            pool.threads().push(t);
        }
        Ok(pool)
    }

    pub(super) fn threads(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.inner
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How many threads the pool runs.
    pub fn thread_count(&self) -> usize {
        self.inner.count
    }
}

impl Clone for Pool {
    fn clone(&self) -> Self {
        self.inner.lock().users += 1;
        Pool {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.inner.count)
            .finish_non_exhaustive()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let last = {
            let mut rq = self.inner.lock();
            rq.users -= 1;
            rq.shutdown = rq.users == 0;
            rq.shutdown
        };
        if !last {
            return;
        }
        self.inner.ready.notify_all();
        let me = std::thread::current().id();
        let threads = std::mem::take(&mut *self.threads());
        for t in threads {
            if t.thread().id() != me {
                // Panics are caught per request; a thread that still died
                // has nothing left to clean up.
                let _ = t.join();
            }
        }
    }
}
