// SPDX-License-Identifier: GPL-2.0-or-later
//! The manager thread: it looks every `grow_after` while awake, grows the
//! pool when work waits behind workers blocked in the kernel, joins the
//! workers that retired, and sleeps while the pool is not saturated.

use std::sync::atomic::{fence, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use super::shared::{
    has_work, Shared, WorkerSlot, EXITED, FREE, HANDLES, MGR_ASLEEP, MGR_DEMAND, MGR_IDLE, RUNNING,
    SHARED, STARTING, THREADS_MAX,
};
use super::worker::spawn_worker;
use crate::sleep::futex_wait;

/// Looks without demand after which the manager sleeps until woken.
const QUIET_LOOKS: u32 = 32;

/// A sequence number no worker reaches: "not seen at the last look".
const UNSEEN: u64 = u64::MAX;

pub(super) fn manager_loop(ready: SyncSender<()>) {
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
