// SPDX-License-Identifier: GPL-2.0-or-later
//! Each home thread's own deque: claimed from a free slot on its first
//! submission, returned to the slot when the thread exits.

use std::cell::RefCell;
use std::sync::atomic::Ordering;

use crossbeam_deque::Worker;

use super::shared::SHARED;
use crate::job::JobPtr;

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

/// Push `job` to the calling thread's own deque, claiming one on first
/// use.  Returns false when every slot is taken (the caller then uses the
/// shared overflow queue).
pub(super) fn push(job: JobPtr) -> bool {
    HOME.with(|home| {
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
    })
}
