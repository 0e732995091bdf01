// SPDX-License-Identifier: GPL-2.0-or-later
//! The worker pool.
//!
//! Every home thread (a thread whose coroutines offload: QEMU's main loop,
//! an IOThread) pushes to its own crossbeam FIFO deque, and workers steal
//! from all of them.  The home thread never pops its own deque, so the deque
//! only ever grows and, once warm, a submission allocates nothing.  Deques
//! of exited home threads are kept in their slot for the next home thread.
//! Idle workers spin briefly, then sleep on an eventcount; how long they
//! spin adapts to the gaps between jobs (see `Spin`), so that spinning is
//! done only when it saves a wake-up.  Workers block every asynchronous
//! signal (see `signals`).
//!
//! # Growing and shrinking
//!
//! `start` creates `min` workers (the CPU count by default); the pool grows
//! up to `max` (64 by default, QEMU's `thread_pool_max`) when backend calls
//! block, and workers beyond `min` exit after an idle period (10 s, as in
//! QEMU's `util/thread-pool.c`).  Threads are created by a manager thread,
//! never on a submitter's path.  The rule: the manager looks every
//! `grow_after` (2 ms by default) while it is awake, and grows when
//!
//! 1. fewer jobs were started since the last look than were waiting at it,
//!    so some job has waited a whole interval (workers take jobs about in
//!    order), and work is still queued;
//! 2. every worker is inside the call of a job now (none is starting);
//! 3. some of those workers are blocked in the kernel in their call
//!    (sleeping, in I/O), as read from `/proc/self/task/<tid>/stat`, only
//!    when 1 and 2 hold.
//!
//! It then adds one worker per blocked one (a blocked worker uses no CPU,
//! so its replacement does not compete with the others), no more than the
//! jobs waiting and the room below `max`.  A worker that computes, or that
//! waits for a CPU on a busy machine, does not count: a thread more would
//! only compete for the same CPUs (the start count is the CPU count).  So
//! short work never grows the pool, however deep the queue, even when the
//! workers are descheduled in the middle of it; 32 calls stuck for 100 ms
//! take 2, 4, 8, 16 then 32 threads, a doubling per look; calls that each
//! block for 2 ms with 64 in flight (an NFS-backed export) grow it until the
//! queue drains within an interval.  QEMU instead spawns a thread whenever
//! work is submitted while no thread is idle, short work included.
//!
//! What the manager reads, the workers publish cheaply: each worker slot has
//! a sequence number that its worker bumps, with plain stores to its own
//! cache line, when it takes a job and when the job's function has returned
//! (odd: inside a call; the host's resume is not part of it).
//!
//! The manager sleeps, with no timer, while the pool is not saturated.  It
//! is woken by a submitter that finds no sleeping worker, or by a worker
//! that takes a job and still sees work queued; while the manager is awake
//! they only read its state (and write it once per look), and it stays
//! awake as long as that demand recurs or work is queued with every worker
//! busy, so in steady state an offload makes no system call for it.  After
//! 32 looks without either it sleeps again.
//!
//! Retirement: a worker whose idle sleep outlasts the idle period while
//! more than `min` workers are alive exits (the alive count is decremented
//! by compare-and-swap, so the pool never goes below `min`); the manager
//! joins it at its next look, `stop` joins everyone.

use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::thread::{Builder, JoinHandle};
use std::time::Duration;

mod home;
mod manager;
mod shared;
mod worker;

use crate::job::JobPtr;
use crate::signals;
use crate::sleep::futex_wake;
use manager::manager_loop;
pub use shared::THREADS_MAX;
use shared::{demand, FREE, HANDLES, MGR_IDLE, SHARED};
use worker::spawn_worker;

/// The environment variable that sets the default worker count.
pub const THREADS_ENV: &str = "QRS_OFFLOAD_THREADS";
/// The environment variable that sets the default maximum worker count.
pub const MAX_THREADS_ENV: &str = "QRS_OFFLOAD_MAX_THREADS";
/// The default maximum worker count (QEMU's `thread_pool_max`).
pub const MAX_THREADS_DEFAULT: usize = 64;
/// The default idle period after which a worker beyond the start count
/// exits (QEMU's thread pool: 10 s).
pub const IDLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// The default interval between the manager's looks: how long a job must
/// have waited, with every worker in a call, before the pool grows.
pub const GROW_AFTER_DEFAULT: Duration = Duration::from_millis(2);
/// The shortest `grow_after` accepted (shorter values are raised to it).
const GROW_AFTER_MIN: Duration = Duration::from_micros(100);

/// The manager's join handle; its lock also serialises start and stop.
static MANAGER: Mutex<Option<JoinHandle<()>>> = Mutex::new(None);

/// Why the pool could not start.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum StartError {
    /// The pool is already running.
    AlreadyRunning,
    /// A worker thread could not be created.
    Spawn,
}

/// How the pool is sized; [`Config::default`] is what [`start`] uses.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Config {
    /// Workers started, and the floor the pool never shrinks below; 0: see
    /// [`thread_count`].
    pub threads: usize,
    /// The most workers the pool grows to; 0: see [`max_thread_count`].
    pub max_threads: usize,
    /// How long a worker beyond `threads` stays idle before it exits.
    pub idle_timeout: Duration,
    /// The interval between the manager's looks: how long a job must have
    /// waited, with every worker in a call, before the pool grows (at least
    /// 100 us).
    pub grow_after: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            threads: 0,
            max_threads: 0,
            idle_timeout: IDLE_TIMEOUT_DEFAULT,
            grow_after: GROW_AFTER_DEFAULT,
        }
    }
}

/// Counters of the pool, since its last start.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct Stats {
    /// Worker threads alive now.
    pub threads: usize,
    /// The start count, below which the pool does not shrink.
    pub min_threads: usize,
    /// The most workers the pool may grow to.
    pub max_threads: usize,
    /// Worker threads created, the initial ones included.
    pub spawned: u64,
    /// Workers that exited after the idle period.
    pub retired: u64,
    /// The most workers alive at once.
    pub peak: usize,
}

/// The worker count to use for `requested` (0: the environment variable
/// `QRS_OFFLOAD_THREADS`, else the number of CPUs, at least 2).
pub fn thread_count(requested: usize) -> usize {
    let n = if requested > 0 {
        requested
    } else if let Some(n) = std::env::var(THREADS_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        n
    } else {
        std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(2)
    };
    n.clamp(1, THREADS_MAX)
}

/// The maximum worker count to use for `requested` with `threads` started
/// (0: the environment variable `QRS_OFFLOAD_MAX_THREADS`, else 64); never
/// below `threads`, never above [`THREADS_MAX`].  Equal to `threads`, the
/// pool does not grow.
pub fn max_thread_count(requested: usize, threads: usize) -> usize {
    let n = if requested > 0 {
        requested
    } else {
        std::env::var(MAX_THREADS_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(MAX_THREADS_DEFAULT)
    };
    n.clamp(threads.clamp(1, THREADS_MAX), THREADS_MAX)
}

/// Start `thread_count(requested)` workers, growing up to
/// `max_thread_count(0, ...)`, with the default idle period.
///
/// # Errors
/// [`StartError::AlreadyRunning`], or [`StartError::Spawn`] (then no worker
/// is left running).
pub fn start(requested: usize) -> Result<usize, StartError> {
    start_with(&Config {
        threads: requested,
        ..Config::default()
    })
}

/// Start the pool as `config` says; returns the number of workers started.
/// Returns once every worker and the manager have done their one-time
/// setup, so that no thread start-up allocation lands in the caller's
/// steady state.
///
/// # Errors
/// [`StartError::AlreadyRunning`], or [`StartError::Spawn`] (then no worker
/// is left running).
pub fn start_with(config: &Config) -> Result<usize, StartError> {
    let mut manager = MANAGER.lock().unwrap_or_else(|e| e.into_inner());
    let shared = &*SHARED;
    if shared.running.load(Ordering::Acquire) {
        return Err(StartError::AlreadyRunning);
    }
    let n = thread_count(config.threads);
    let max = max_thread_count(config.max_threads, n);
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    shared.min.store(n, Ordering::SeqCst);
    shared.max.store(max, Ordering::SeqCst);
    shared
        .idle_timeout_ns
        .store(nanos(config.idle_timeout), Ordering::SeqCst);
    shared.grow_after_ns.store(
        nanos(config.grow_after.max(GROW_AFTER_MIN)),
        Ordering::SeqCst,
    );
    shared.spawned.store(0, Ordering::SeqCst);
    shared.retired.store(0, Ordering::SeqCst);
    shared.peak.store(0, Ordering::SeqCst);
    shared.mgr_state.store(MGR_IDLE, Ordering::SeqCst);
    shared.stopping.store(false, Ordering::SeqCst);

    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(n + 1);
    {
        let mut handles = HANDLES.lock().unwrap_or_else(|e| e.into_inner());
        for slot in 0..n {
            if spawn_worker(shared, &mut handles, slot, Some(ready_tx.clone())).is_err() {
                drop(handles);
                shutdown(&mut manager);
                return Err(StartError::Spawn);
            }
        }
    }
    let ready = ready_tx.clone();
    let builder = Builder::new().name("qrs-offload-mgr".into());
    match signals::spawn(builder, move || manager_loop(ready)) {
        Ok(h) => *manager = Some(h),
        Err(_) => {
            shutdown(&mut manager);
            return Err(StartError::Spawn);
        }
    }
    drop(ready_tx);
    // Every thread sends once; a thread that died early drops its sender.
    while ready_rx.recv().is_ok() {}
    shared.running.store(true, Ordering::Release);
    Ok(n)
}

/// Stop the pool: offloads submitted before finish, later ones run inline;
/// the manager and every worker, grown ones included, are joined.  Returns
/// whether the pool was running.
pub fn stop() -> bool {
    let mut manager = MANAGER.lock().unwrap_or_else(|e| e.into_inner());
    let was_running = SHARED.running.swap(false, Ordering::AcqRel);
    shutdown(&mut manager);
    was_running
}

fn shutdown(manager: &mut Option<JoinHandle<()>>) {
    let shared = &*SHARED;
    shared.stopping.store(true, Ordering::SeqCst);
    // The manager first, so that nothing spawns while the workers are
    // joined; work in flight finishes on the workers there are.
    shared.mgr_word.fetch_add(1, Ordering::SeqCst);
    futex_wake(&shared.mgr_word, i32::MAX);
    if let Some(h) = manager.take() {
        let _ = h.join();
    }
    shared.sleep.wake_all();
    let mut handles = HANDLES.lock().unwrap_or_else(|e| e.into_inner());
    for (slot, handle) in handles.iter_mut().enumerate() {
        if let Some(h) = handle.take() {
            let _ = h.join();
            shared.workers[slot].state.store(FREE, Ordering::SeqCst);
        }
    }
}

/// Whether the pool is running (offloads go to workers).
pub fn is_running() -> bool {
    SHARED.running.load(Ordering::Acquire)
}

/// The pool's counters since its last start (after a stop: `threads` is 0,
/// the others describe the last run).
pub fn stats() -> Stats {
    let shared = &*SHARED;
    Stats {
        threads: shared.alive.load(Ordering::SeqCst),
        min_threads: shared.min.load(Ordering::SeqCst),
        max_threads: shared.max.load(Ordering::SeqCst),
        spawned: shared.spawned.load(Ordering::SeqCst),
        retired: shared.retired.load(Ordering::SeqCst),
        peak: shared.peak.load(Ordering::SeqCst),
    }
}

/// Hand `job` to the pool.  Returns false if the pool is not running; the
/// caller then runs the job inline.
pub(crate) fn submit(job: JobPtr) -> bool {
    let shared = &*SHARED;
    shared.in_flight.fetch_add(1, Ordering::SeqCst);
    if !shared.running.load(Ordering::SeqCst) || shared.stopping.load(Ordering::SeqCst) {
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        return false;
    }
    if !home::push(job) {
        shared.overflow.push(job);
    }
    if !shared.sleep.wake_one() {
        // No worker is asleep: they may all be stuck in long calls.  The
        // fence in wake_one orders our push before this read, against the
        // manager's announcement of its sleep before its last look.
        demand(shared);
    }
    true
}
