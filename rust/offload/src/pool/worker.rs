// SPDX-License-Identifier: GPL-2.0-or-later
//! The workers: how they are spawned, find and run jobs, spin, sleep and
//! retire.

use std::sync::atomic::{fence, Ordering};
use std::sync::mpsc::SyncSender;
use std::thread::{Builder, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_deque::Worker;

use super::shared::{
    demand, find_job, has_work, Shared, EXITED, FREE, MGR_ASLEEP, RUNNING, SHARED, STARTING,
    THREADS_MAX,
};
use crate::job;
use crate::signals;

/// The longest an idle worker spins for work before it sleeps, when
/// spinning pays (see `Spin`).
const SPIN_MAX: Duration = Duration::from_micros(20);
/// Below this a spin is not worth the clock reads: the worker sleeps.
const SPIN_MIN: Duration = Duration::from_micros(1);
/// Polls between two looks at the clock while spinning.
const SPIN_POLLS_PER_CLOCK: u32 = 16;

/// Create the worker of `slot` (which is FREE).
pub(super) fn spawn_worker(
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

#[cfg(test)]
mod tests;
