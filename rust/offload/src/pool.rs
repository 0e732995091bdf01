// SPDX-License-Identifier: GPL-2.0-or-later
//! The worker pool.
//!
//! Every home thread (a thread whose coroutines offload: QEMU's main loop,
//! an IOThread) pushes to its own crossbeam FIFO deque, and workers steal
//! from all of them.  The home thread never pops its own deque, so the deque
//! only ever grows and, once warm, a submission allocates nothing.  Deques
//! of exited home threads are kept in their slot for the next home thread.
//! Idle workers spin briefly, then sleep on an eventcount.  Workers block
//! every asynchronous signal (see `signals`).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread::JoinHandle;

use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use once_cell::sync::{Lazy, OnceCell};

use crate::job::{self, JobPtr};
use crate::signals;
use crate::sleep::Sleep;

/// Home threads with a deque of their own; further ones share `overflow`.
const HOMES_MAX: usize = 128;
/// How many empty polls an idle worker makes before it sleeps.
const SPIN_POLLS: u32 = 200;
/// The environment variable that sets the default worker count.
pub const THREADS_ENV: &str = "QRS_OFFLOAD_THREADS";
/// Upper bound on worker threads.
pub const THREADS_MAX: usize = 256;

struct HomeSlot {
    stealer: OnceCell<Stealer<JobPtr>>,
    /// The deque while no home thread owns it.
    spare: Mutex<Option<Worker<JobPtr>>>,
    claimed: AtomicBool,
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
});

/// Worker join handles; also serialises start and stop.
static WORKERS: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// Why the pool could not start.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum StartError {
    /// The pool is already running.
    AlreadyRunning,
    /// A worker thread could not be created.
    Spawn,
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

/// Start `thread_count(requested)` workers.
///
/// # Errors
/// [`StartError::AlreadyRunning`], or [`StartError::Spawn`] (then no worker
/// is left running).
pub fn start(requested: usize) -> Result<usize, StartError> {
    let mut workers = WORKERS.lock().unwrap_or_else(|e| e.into_inner());
    let shared = &*SHARED;
    if shared.running.load(Ordering::Acquire) {
        return Err(StartError::AlreadyRunning);
    }
    let n = thread_count(requested);
    shared.stopping.store(false, Ordering::SeqCst);
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(n);
    for i in 0..n {
        let ready = ready_tx.clone();
        let builder = std::thread::Builder::new().name(format!("qrs-worker-{i}"));
        match signals::spawn(builder, move || worker_loop(i, ready)) {
            Ok(h) => workers.push(h),
            Err(_) => {
                shutdown(&mut workers);
                return Err(StartError::Spawn);
            }
        }
    }
    // Return only once every worker has done its one-time setup, so that
    // no thread start-up allocation lands in the caller's steady state.
    for _ in 0..n {
        let _ = ready_rx.recv();
    }
    shared.running.store(true, Ordering::Release);
    Ok(n)
}

/// Stop the pool: offloads submitted before finish, later ones run inline;
/// the workers are joined.  Returns whether the pool was running.
pub fn stop() -> bool {
    let mut workers = WORKERS.lock().unwrap_or_else(|e| e.into_inner());
    let was_running = SHARED.running.swap(false, Ordering::AcqRel);
    shutdown(&mut workers);
    was_running
}

fn shutdown(workers: &mut Vec<JoinHandle<()>>) {
    SHARED.stopping.store(true, Ordering::SeqCst);
    SHARED.sleep.wake_all();
    for h in workers.drain(..) {
        let _ = h.join();
    }
}

/// Whether the pool is running (offloads go to workers).
pub fn is_running() -> bool {
    SHARED.running.load(Ordering::Acquire)
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
    shared.sleep.wake_one();
    true
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

fn worker_loop(index: usize, ready: std::sync::mpsc::SyncSender<()>) {
    let shared = &*SHARED;
    let mut idle_polls = 0;
    worker_warm_up();
    let _ = ready.send(());
    drop(ready);
    loop {
        if let Some(job) = find_job(shared, index) {
            // SAFETY: every submitted job is stolen exactly once.
            unsafe { job::execute(job) };
            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
            idle_polls = 0;
            continue;
        }
        if shared.stopping.load(Ordering::SeqCst) && shared.in_flight.load(Ordering::SeqCst) == 0 {
            return;
        }
        if idle_polls < SPIN_POLLS {
            idle_polls += 1;
            std::hint::spin_loop();
            continue;
        }
        idle_polls = 0;
        shared
            .sleep
            .sleep_unless(|| has_work(shared) || shared.stopping.load(Ordering::SeqCst));
    }
}
