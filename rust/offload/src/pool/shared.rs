// SPDX-License-Identifier: GPL-2.0-or-later
//! The pool's state shared by its submitters, workers and manager: the
//! home threads' deques and where workers look for jobs, each worker's
//! published state, the manager's state, and the counters.

use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
use std::sync::{LazyLock, Mutex, OnceLock};
use std::thread::JoinHandle;

use crossbeam_deque::{Injector, Steal, Stealer, Worker};

use crate::job::JobPtr;
use crate::sleep::{futex_wake, Sleep};

/// Home threads with a deque of their own; further ones share `overflow`.
pub(super) const HOMES_MAX: usize = 128;
/// Upper bound on worker threads.
pub const THREADS_MAX: usize = 256;

/// Worker slot states: no thread.
pub(super) const FREE: u8 = 0;
/// Spawned, not yet taking work.
pub(super) const STARTING: u8 = 1;
pub(super) const RUNNING: u8 = 2;
/// The thread has left its loop; its handle still needs joining.
pub(super) const EXITED: u8 = 3;

/// Manager states: asleep until woken.
pub(super) const MGR_ASLEEP: u32 = 0;
/// Awake, and no demand since its last look.
pub(super) const MGR_IDLE: u32 = 1;
/// Awake, and someone saw work waiting without a sleeping worker.
pub(super) const MGR_DEMAND: u32 = 2;

pub(super) struct HomeSlot {
    pub(super) stealer: OnceLock<Stealer<JobPtr>>,
    /// The deque while no home thread owns it.
    pub(super) spare: Mutex<Option<Worker<JobPtr>>>,
    pub(super) claimed: AtomicBool,
}

/// One worker's published state, on a cache line of its own.
#[repr(align(128))]
pub(super) struct WorkerSlot {
    /// Bumped when the worker takes a job and when the job's function has
    /// returned: odd while it runs one.  Written only by the slot's worker.
    pub(super) seq: AtomicU64,
    pub(super) state: AtomicU8,
    /// The worker's kernel thread id, set before it is RUNNING.
    pub(super) tid: AtomicI32,
}

pub(super) struct Shared {
    pub(super) homes: Box<[HomeSlot]>,
    /// Slots ever claimed: workers scan `homes[..homes_used]`.
    pub(super) homes_used: AtomicUsize,
    pub(super) overflow: Injector<JobPtr>,
    pub(super) sleep: Sleep,
    /// Submitted and not yet completed; workers exit on stop only at 0.
    pub(super) in_flight: AtomicUsize,
    pub(super) running: AtomicBool,
    pub(super) stopping: AtomicBool,
    pub(super) workers: Box<[WorkerSlot]>,
    /// Workers alive (spawned and not exited).
    pub(super) alive: AtomicUsize,
    /// The start count: the pool never shrinks below it.
    pub(super) min: AtomicUsize,
    /// The pool never grows beyond it.
    pub(super) max: AtomicUsize,
    pub(super) idle_timeout_ns: AtomicU64,
    pub(super) grow_after_ns: AtomicU64,
    /// `MGR_*`.
    pub(super) mgr_state: AtomicU32,
    /// The manager sleeps on it; bumped to wake it.
    pub(super) mgr_word: AtomicU32,
    pub(super) spawned: AtomicU64,
    pub(super) retired: AtomicU64,
    pub(super) peak: AtomicUsize,
}

pub(super) static SHARED: LazyLock<Shared> = LazyLock::new(|| Shared {
    homes: (0..HOMES_MAX)
        .map(|_| HomeSlot {
            stealer: OnceLock::new(),
            spare: Mutex::new(None),
            claimed: AtomicBool::new(false),
        })
        .collect(),
    homes_used: AtomicUsize::new(0),
    overflow: Injector::new(),
    sleep: Sleep::new(),
    in_flight: AtomicUsize::new(0),
    running: AtomicBool::new(false),
    stopping: AtomicBool::new(false),
    workers: (0..THREADS_MAX)
        .map(|_| WorkerSlot {
            seq: AtomicU64::new(0),
            state: AtomicU8::new(FREE),
            tid: AtomicI32::new(0),
        })
        .collect(),
    alive: AtomicUsize::new(0),
    min: AtomicUsize::new(0),
    max: AtomicUsize::new(0),
    idle_timeout_ns: AtomicU64::new(0),
    grow_after_ns: AtomicU64::new(0),
    mgr_state: AtomicU32::new(MGR_IDLE),
    mgr_word: AtomicU32::new(0),
    spawned: AtomicU64::new(0),
    retired: AtomicU64::new(0),
    peak: AtomicUsize::new(0),
});

/// Worker join handles, by slot.
pub(super) static HANDLES: Mutex<[Option<JoinHandle<()>>; THREADS_MAX]> =
    Mutex::new([const { None }; THREADS_MAX]);

/// Tell the manager that work waits with no sleeping worker: a plain load
/// while it is awake with demand noted, a store once per look otherwise, a
/// wake-up only when it sleeps.
pub(super) fn demand(shared: &Shared) {
    let mut state = shared.mgr_state.load(Ordering::SeqCst);
    loop {
        match state {
            MGR_DEMAND => return,
            MGR_IDLE => {
                match shared.mgr_state.compare_exchange(
                    MGR_IDLE,
                    MGR_DEMAND,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                ) {
                    Ok(_) => return,
                    // The manager went to sleep (or demand was noted).
                    Err(now) => state = now,
                }
            }
            _ => {
                if shared.mgr_state.swap(MGR_DEMAND, Ordering::SeqCst) == MGR_ASLEEP {
                    shared.mgr_word.fetch_add(1, Ordering::SeqCst);
                    futex_wake(&shared.mgr_word, 1);
                }
                return;
            }
        }
    }
}

pub(super) fn find_job(shared: &Shared, start: usize) -> Option<JobPtr> {
    let used = shared.homes_used.load(Ordering::Acquire);
    loop {
        let mut retry = false;
        for k in 0..used {
            let Some(stealer) = shared.homes[(start + k) % used].stealer.get() else {
                continue;
            };
            match stealer.steal() {
                Steal::Success(job) => return Some(job),
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
        }
        match shared.overflow.steal() {
            Steal::Success(job) => return Some(job),
            Steal::Retry => retry = true,
            Steal::Empty => {}
        }
        if !retry {
            return None;
        }
    }
}

pub(super) fn has_work(shared: &Shared) -> bool {
    let used = shared.homes_used.load(Ordering::Acquire);
    shared.homes[..used]
        .iter()
        .any(|h| h.stealer.get().is_some_and(|s| !s.is_empty()))
        || !shared.overflow.is_empty()
}
