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

use std::cell::RefCell;
use std::sync::atomic::{
    fence, AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
use std::sync::mpsc::SyncSender;
use std::sync::Mutex;
use std::thread::{Builder, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use once_cell::sync::{Lazy, OnceCell};

use crate::job::{self, JobPtr};
use crate::signals;
use crate::sleep::{futex_wait, futex_wake, Sleep};

/// Home threads with a deque of their own; further ones share `overflow`.
const HOMES_MAX: usize = 128;
/// The longest an idle worker spins for work before it sleeps, when
/// spinning pays (see `Spin`).
const SPIN_MAX: Duration = Duration::from_micros(20);
/// Below this a spin is not worth the clock reads: the worker sleeps.
const SPIN_MIN: Duration = Duration::from_micros(1);
/// Polls between two looks at the clock while spinning.
const SPIN_POLLS_PER_CLOCK: u32 = 16;
/// The environment variable that sets the default worker count.
pub const THREADS_ENV: &str = "QRS_OFFLOAD_THREADS";
/// The environment variable that sets the default maximum worker count.
pub const MAX_THREADS_ENV: &str = "QRS_OFFLOAD_MAX_THREADS";
/// The default maximum worker count (QEMU's `thread_pool_max`).
pub const MAX_THREADS_DEFAULT: usize = 64;
/// Upper bound on worker threads.
pub const THREADS_MAX: usize = 256;
/// The default idle period after which a worker beyond the start count
/// exits (QEMU's thread pool: 10 s).
pub const IDLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// The default interval between the manager's looks: how long a job must
/// have waited, with every worker in a call, before the pool grows.
pub const GROW_AFTER_DEFAULT: Duration = Duration::from_millis(2);
/// The shortest `grow_after` accepted (shorter values are raised to it).
const GROW_AFTER_MIN: Duration = Duration::from_micros(100);
/// Looks without demand after which the manager sleeps until woken.
const QUIET_LOOKS: u32 = 32;

/// Worker slot states: no thread.
const FREE: u8 = 0;
/// Spawned, not yet taking work.
const STARTING: u8 = 1;
const RUNNING: u8 = 2;
/// The thread has left its loop; its handle still needs joining.
const EXITED: u8 = 3;

/// Manager states: asleep until woken.
const MGR_ASLEEP: u32 = 0;
/// Awake, and no demand since its last look.
const MGR_IDLE: u32 = 1;
/// Awake, and someone saw work waiting without a sleeping worker.
const MGR_DEMAND: u32 = 2;

struct HomeSlot {
    stealer: OnceCell<Stealer<JobPtr>>,
    /// The deque while no home thread owns it.
    spare: Mutex<Option<Worker<JobPtr>>>,
    claimed: AtomicBool,
}

/// One worker's published state, on a cache line of its own.
#[repr(align(128))]
struct WorkerSlot {
    /// Bumped when the worker takes a job and when the job's function has
    /// returned: odd while it runs one.  Written only by the slot's worker.
    seq: AtomicU64,
    state: AtomicU8,
    /// The worker's kernel thread id, set before it is RUNNING.
    tid: AtomicI32,
}

struct Shared {
    homes: Box<[HomeSlot]>,
    /// Slots ever claimed: workers scan `homes[..homes_used]`.
    homes_used: AtomicUsize,
    overflow: Injector<JobPtr>,
    sleep: Sleep,
    /// Submitted and not yet completed; workers exit on stop only at 0.
    in_flight: AtomicUsize,
    running: AtomicBool,
    stopping: AtomicBool,
    workers: Box<[WorkerSlot]>,
    /// Workers alive (spawned and not exited).
    alive: AtomicUsize,
    /// The start count: the pool never shrinks below it.
    min: AtomicUsize,
    /// The pool never grows beyond it.
    max: AtomicUsize,
    idle_timeout_ns: AtomicU64,
    grow_after_ns: AtomicU64,
    /// `MGR_*`.
    mgr_state: AtomicU32,
    /// The manager sleeps on it; bumped to wake it.
    mgr_word: AtomicU32,
    spawned: AtomicU64,
    retired: AtomicU64,
    peak: AtomicUsize,
}

static SHARED: Lazy<Shared> = Lazy::new(|| Shared {
    homes: (0..HOMES_MAX)
        .map(|_| HomeSlot {
            stealer: OnceCell::new(),
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

/// The manager's join handle; its lock also serialises start and stop.
static MANAGER: Mutex<Option<JoinHandle<()>>> = Mutex::new(None);
/// Worker join handles, by slot.
static HANDLES: Mutex<[Option<JoinHandle<()>>; THREADS_MAX]> =
    Mutex::new([const { None }; THREADS_MAX]);

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

/// Create the worker of `slot` (which is FREE).
fn spawn_worker(
    shared: &Shared,
    handles: &mut [Option<JoinHandle<()>>; THREADS_MAX],
    slot: usize,
    ready: Option<SyncSender<()>>,
) -> std::io::Result<()> {
    shared.workers[slot].state.store(STARTING, Ordering::SeqCst);
    let alive = shared.alive.fetch_add(1, Ordering::SeqCst) + 1;
    let builder = Builder::new().name(format!("qrs-worker-{slot}"));
    match signals::spawn(builder, move || worker_loop(slot, ready)) {
        Ok(h) => {
            handles[slot] = Some(h);
            shared.spawned.fetch_add(1, Ordering::Relaxed);
            shared.peak.fetch_max(alive, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => {
            shared.alive.fetch_sub(1, Ordering::SeqCst);
            shared.workers[slot].state.store(FREE, Ordering::SeqCst);
            Err(e)
        }
    }
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
    let pushed = HOME.with(|home| {
        let mut home = home.borrow_mut();
        if home.is_none() {
            *home = claim_home();
        }
        match &*home {
            Some(h) => {
                h.worker.push(job);
                true
            }
            None => false,
        }
    });
    if !pushed {
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

/// Tell the manager that work waits with no sleeping worker: a plain load
/// while it is awake with demand noted, a store once per look otherwise, a
/// wake-up only when it sleeps.
fn demand(shared: &Shared) {
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

/// This thread's own deque, returned to its slot when the thread exits.
struct HomeQueue {
    worker: Worker<JobPtr>,
    slot: usize,
}

impl Drop for HomeQueue {
    fn drop(&mut self) {
        let slot = &SHARED.homes[self.slot];
        let worker = std::mem::replace(&mut self.worker, Worker::new_fifo());
        *slot.spare.lock().unwrap_or_else(|e| e.into_inner()) = Some(worker);
        slot.claimed.store(false, Ordering::Release);
    }
}

thread_local! {
    static HOME: RefCell<Option<HomeQueue>> = const { RefCell::new(None) };
}

fn claim_home() -> Option<HomeQueue> {
    let shared = &*SHARED;
    for (i, slot) in shared.homes.iter().enumerate() {
        if slot
            .claimed
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            continue;
        }
        let worker = slot
            .spare
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| {
                let w = Worker::new_fifo();
                // First use of the slot: publish its stealer.
                let _ = slot.stealer.set(w.stealer());
                w
            });
        shared.homes_used.fetch_max(i + 1, Ordering::AcqRel);
        return Some(HomeQueue { worker, slot: i });
    }
    None
}

fn find_job(shared: &Shared, start: usize) -> Option<JobPtr> {
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

fn has_work(shared: &Shared) -> bool {
    let used = shared.homes_used.load(Ordering::Acquire);
    shared.homes[..used]
        .iter()
        .any(|h| h.stealer.get().is_some_and(|s| !s.is_empty()))
        || !shared.overflow.is_empty()
}

/// A worker's one-time setup: everything that allocates on first use in a
/// thread (std's thread info, the crossbeam-epoch participant registered by
/// the first steal) happens here, before the worker reports ready.
fn worker_warm_up() {
    let deque = Worker::<()>::new_fifo();
    let _ = deque.stealer().steal();
    let _ = std::thread::current().name();
}

fn worker_loop(slot: usize, ready: Option<SyncSender<()>>) {
    let shared = &*SHARED;
    let me = &shared.workers[slot];
    let idle_timeout = Duration::from_nanos(shared.idle_timeout_ns.load(Ordering::SeqCst));
    let mut seq = me.seq.load(Ordering::Relaxed);
    let mut spin = Spin::new();
    // When this worker last went idle (None: it ran a job since it slept).
    let mut idle_since: Option<Instant> = None;
    worker_warm_up();
    // SAFETY: gettid has no preconditions.
    me.tid.store(unsafe { libc::gettid() }, Ordering::SeqCst);
    me.state.store(RUNNING, Ordering::SeqCst);
    if let Some(ready) = ready {
        let _ = ready.send(());
    }
    loop {
        if let Some(job) = find_job(shared, slot) {
            seq += 1;
            me.seq.store(seq, Ordering::Relaxed);
            // More work queued behind this job: the manager must be awake
            // to see whether it waits too long.  The fence orders what
            // has_work read before the read of the manager's state (against
            // the manager's announcement of its sleep before its last look).
            if has_work(shared) {
                fence(Ordering::SeqCst);
                if shared.mgr_state.load(Ordering::Relaxed) == MGR_ASLEEP {
                    demand(shared);
                }
            }
            // SAFETY: every submitted job is stolen exactly once.
            unsafe {
                // Out of the job once its function has returned: the
                // host's resume is not a backend call.
                job::execute(job, || me.seq.store(seq + 1, Ordering::Relaxed));
            }
            seq += 1;
            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
            spin.reset();
            idle_since = None;
            continue;
        }
        if shared.stopping.load(Ordering::SeqCst) && shared.in_flight.load(Ordering::SeqCst) == 0 {
            shared.alive.fetch_sub(1, Ordering::SeqCst);
            break;
        }
        if spin.more() {
            std::hint::spin_loop();
            continue;
        }
        // Only a worker beyond the start count times its sleep.
        let mut timeout = None;
        if shared.alive.load(Ordering::SeqCst) > shared.min.load(Ordering::SeqCst) {
            let now = Instant::now();
            let idle = now - *idle_since.get_or_insert(now);
            if idle >= idle_timeout {
                // Nothing was queued just now (find_job above): leave,
                // unless that would take the pool below its start count.
                if retire(shared) {
                    break;
                }
            } else {
                timeout = Some(idle_timeout - idle);
            }
        }
        let asleep = Instant::now();
        shared.sleep.sleep_unless(
            || has_work(shared) || shared.stopping.load(Ordering::SeqCst),
            timeout,
        );
        spin.slept(asleep.elapsed());
    }
    me.state.store(EXITED, Ordering::SeqCst);
}

/// A worker's spin budget: how long it looks for work, after its last job,
/// before it sleeps.  Spinning saves the wake-up of a sleeping worker (a
/// futex wake and, on an idle CPU, the CPU's own wake-up: 5 to 10 us on
/// these machines) only when the next job comes within the spin; when jobs
/// come further apart, every spin is CPU taken from the vCPUs for nothing.
/// So the budget follows how long the worker's sleeps last: a sleep shorter
/// than `SPIN_MAX` (the job came soon after the worker gave up) restores
/// the full budget, a longer one halves it, down to no spinning at all.
/// In the second half of a spin the worker yields its CPU at every clock
/// read: a vCPU thread (or the home thread) waiting for that CPU gets it,
/// and the worker still sees a job within a few microseconds when the CPU
/// is free (measured: the round trip's p99 halves on busy cores, the
/// 64-in-flight throughput stays).  One clock read per
/// `SPIN_POLLS_PER_CLOCK` polls; two per sleep.
struct Spin {
    budget: Duration,
    deadline: Option<Instant>,
    polls: u32,
}

impl Spin {
    fn new() -> Spin {
        Spin {
            budget: SPIN_MAX,
            deadline: None,
            polls: 0,
        }
    }

    /// A job was found: the next idle period starts a new spin.
    fn reset(&mut self) {
        self.deadline = None;
        self.polls = 0;
    }

    /// Whether to poll once more before sleeping.
    fn more(&mut self) -> bool {
        if self.budget < SPIN_MIN {
            return false;
        }
        self.polls += 1;
        if self.polls % SPIN_POLLS_PER_CLOCK != 0 {
            return true;
        }
        let now = Instant::now();
        let deadline = *self.deadline.get_or_insert(now + self.budget);
        if now < deadline {
            if deadline - now < self.budget / 2 {
                std::thread::yield_now();
            }
            return true;
        }
        self.reset();
        false
    }

    /// The worker slept for `d` (until woken for a job, or a timeout).
    fn slept(&mut self, d: Duration) {
        self.budget = if d < SPIN_MAX {
            SPIN_MAX
        } else {
            self.budget / 2
        };
        self.reset();
    }
}

/// Count this worker out if more than `min` are alive.
fn retire(shared: &Shared) -> bool {
    let min = shared.min.load(Ordering::SeqCst);
    let left = shared
        .alive
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |a| {
            (a > min).then(|| a - 1)
        })
        .is_ok();
    if left {
        shared.retired.fetch_add(1, Ordering::Relaxed);
    }
    left
}

/// A sequence number no worker reaches: "not seen at the last look".
const UNSEEN: u64 = u64::MAX;

fn manager_loop(ready: SyncSender<()>) {
    let shared = &*SHARED;
    let grow_after = Duration::from_nanos(shared.grow_after_ns.load(Ordering::SeqCst));
    let max = shared.max.load(Ordering::SeqCst);
    // Each worker's sequence number at the last look (or at its spawn).
    let mut seen = [UNSEEN; THREADS_MAX];
    // Jobs waiting at the last look (0: none, or not known).
    let mut waiting_before = 0;
    let mut quiet = QUIET_LOOKS;
    let _ = ready.send(());
    drop(ready);
    loop {
        if quiet >= QUIET_LOOKS {
            if !manager_sleep(shared) {
                return;
            }
            quiet = 0;
            seen = [UNSEEN; THREADS_MAX];
            waiting_before = 0;
        }
        if !manager_wait(shared, grow_after) {
            return;
        }
        reap(shared, max);
        let queued = has_work(shared);
        // Jobs started since the last look, whether every worker is inside
        // a call (none is starting), and whether every worker was seen then.
        let mut started = 0;
        let mut all_busy = true;
        let mut all_seen = true;
        let mut busy = 0;
        for (slot, seen) in shared.workers[..max].iter().zip(seen.iter_mut()) {
            match slot.state.load(Ordering::SeqCst) {
                RUNNING => {
                    let seq = slot.seq.load(Ordering::Relaxed);
                    let in_call = seq & 1 == 1;
                    busy += usize::from(in_call);
                    all_busy &= in_call;
                    if *seen == UNSEEN {
                        all_seen = false;
                    } else {
                        // Odd numbers in (seen, seq]: calls begun.
                        started += seq.div_ceil(2).saturating_sub(seen.div_ceil(2));
                    }
                    *seen = seq;
                }
                // Keeps the number seen at its spawn.
                STARTING => all_busy = false,
                _ => *seen = UNSEEN,
            }
        }
        let waiting = if queued {
            shared.in_flight.load(Ordering::SeqCst).saturating_sub(busy)
        } else {
            0
        };
        // Fewer jobs were started in the interval than waited at its start,
        // so one of those has waited a whole interval, and every worker is
        // in a call.
        let slow = queued
            && all_busy
            && all_seen
            && started < u64::try_from(waiting_before).unwrap_or(u64::MAX);
        waiting_before = waiting;
        // Stay awake while the pool looks saturated: someone found no
        // sleeping worker, or work is queued with every worker in a call.
        let demanded = shared.mgr_state.swap(MGR_IDLE, Ordering::SeqCst) == MGR_DEMAND;
        if demanded || (queued && all_busy) {
            quiet = 0;
        } else {
            quiet += 1;
        }
        if slow {
            grow(shared, waiting, max, &mut seen);
        }
    }
}

/// Whether thread `tid` of this process is blocked in the kernel (sleeping,
/// in I/O, stopped: anything but running or waiting for a CPU).  Unknown
/// (no `/proc`): blocked, so the pool grows as QEMU's would.
fn blocked_in_kernel(tid: i32) -> bool {
    use std::io::{Read, Write};
    let mut path = [0u8; 48];
    let mut w = &mut path[..];
    if write!(w, "/proc/self/task/{tid}/stat").is_err() {
        return true;
    }
    let len = 48 - w.len();
    let Ok(path) = std::str::from_utf8(&path[..len]) else {
        return true;
    };
    let Ok(mut file) = std::fs::File::open(path) else {
        return true;
    };
    // "tid (comm) S ...": the state follows the last ')' (comm may hold
    // anything) and a space.
    let mut buf = [0u8; 256];
    let n = file.read(&mut buf).unwrap_or(0);
    let stat = &buf[..n];
    match stat.iter().rposition(|&b| b == b')') {
        Some(i) => stat.get(i + 2).map_or(true, |&state| state != b'R'),
        None => true,
    }
}

/// Sleep until there is demand.  Returns false if the pool is stopping.
fn manager_sleep(shared: &Shared) -> bool {
    let word = shared.mgr_word.load(Ordering::SeqCst);
    if shared
        .mgr_state
        .compare_exchange(MGR_IDLE, MGR_ASLEEP, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        // Demand arrived since the last look.
        return !shared.stopping.load(Ordering::SeqCst);
    }
    // Announce, then look: work queued before the announcement is seen
    // here, work queued after it finds MGR_ASLEEP (see `demand`).
    fence(Ordering::SeqCst);
    if !has_work(shared) && !shared.stopping.load(Ordering::SeqCst) {
        futex_wait(&shared.mgr_word, word, None);
    }
    shared.mgr_state.store(MGR_IDLE, Ordering::SeqCst);
    !shared.stopping.load(Ordering::SeqCst)
}

/// Wait `d` (only a stop cuts it short).  Returns false if the pool is
/// stopping.
fn manager_wait(shared: &Shared, d: Duration) -> bool {
    let deadline = Instant::now() + d;
    loop {
        let word = shared.mgr_word.load(Ordering::SeqCst);
        if shared.stopping.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        futex_wait(&shared.mgr_word, word, Some(deadline - now));
    }
}

/// Join the workers that retired.
fn reap(shared: &Shared, max: usize) {
    let exited = |s: &WorkerSlot| s.state.load(Ordering::SeqCst) == EXITED;
    if !shared.workers[..max].iter().any(exited) {
        return;
    }
    let mut handles = HANDLES.lock().unwrap_or_else(|e| e.into_inner());
    for (slot, handle) in shared.workers[..max].iter().zip(handles.iter_mut()) {
        if exited(slot) {
            if let Some(h) = handle.take() {
                let _ = h.join();
            }
            slot.state.store(FREE, Ordering::SeqCst);
        }
    }
}

/// Work waits too long with every worker in a call: add one worker for
/// each worker blocked in the kernel in its call (a worker that computes or
/// waits for a CPU would only compete with a new one for the same CPUs), no
/// more than the jobs `waiting` and the room below `max`.  A new worker's
/// `seen` is its sequence number at spawn.
fn grow(shared: &Shared, waiting: usize, max: usize, seen: &mut [u64; THREADS_MAX]) {
    let alive = shared.alive.load(Ordering::SeqCst);
    let limit = max.saturating_sub(alive).min(waiting);
    // Reading a thread's state costs system calls: only as many as needed.
    let n = shared.workers[..max]
        .iter()
        .filter(|w| {
            w.state.load(Ordering::SeqCst) == RUNNING
                && w.seq.load(Ordering::Relaxed) & 1 == 1
                && blocked_in_kernel(w.tid.load(Ordering::SeqCst))
        })
        .take(limit)
        .count();
    if n == 0 {
        return;
    }
    let mut handles = HANDLES.lock().unwrap_or_else(|e| e.into_inner());
    let mut added = 0;
    for (slot, seen) in seen[..max].iter_mut().enumerate() {
        if added == n {
            break;
        }
        let worker = &shared.workers[slot];
        if worker.state.load(Ordering::SeqCst) != FREE {
            continue;
        }
        *seen = worker.seq.load(Ordering::Relaxed);
        if spawn_worker(shared, &mut handles, slot, None).is_err() {
            // Out of threads for now; the next look tries again.
            *seen = UNSEEN;
            break;
        }
        added += 1;
    }
}

#[cfg(test)]
mod spin_tests {
    use super::*;

    #[test]
    fn spin_budget_follows_the_gaps_between_jobs() {
        let mut spin = Spin::new();
        assert_eq!(spin.budget, SPIN_MAX);
        // Jobs far apart: every spin is wasted, the budget shrinks to none.
        for _ in 0..8 {
            spin.slept(SPIN_MAX * 3);
        }
        assert!(spin.budget < SPIN_MIN);
        assert!(!spin.more(), "no budget: the worker sleeps at once");
        // A job soon after the worker gave up: spinning would have paid.
        spin.slept(SPIN_MAX / 4);
        assert_eq!(spin.budget, SPIN_MAX);
        let t0 = Instant::now();
        let mut polls = 0u64;
        while spin.more() {
            polls += 1;
        }
        let spun = t0.elapsed();
        assert!(
            polls > 0 && spun >= SPIN_MAX,
            "spun {spun:?} in {polls} polls"
        );
        // The next idle period spins again from the start.
        assert!(spin.more());
    }
}
