// SPDX-License-Identifier: GPL-2.0-or-later
//! Steady-state allocations of offloads, counted by a global allocator.
//!
//! The offload path itself (request record on the coroutine stack, push on
//! the home thread's warm deque, steal, completion, resume) must allocate
//! nothing: the home thread, where the record and the push live, is held to
//! exactly 0.  Worker threads are held to a bound instead: crossbeam-epoch,
//! under crossbeam-deque's steal, occasionally allocates a garbage-bag node
//! (2304 bytes) while its collector drains garbage left from warm-up; that is
//! not per offload, and it is reported so that it stays visible.

mod host;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static HOME_TID: AtomicI32 = AtomicI32::new(0);
static HOME_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static WORKER_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn count() {
    if COUNTING.load(Ordering::Relaxed) {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        if tid == HOME_TID.load(Ordering::Relaxed) {
            HOME_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        } else {
            WORKER_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// SAFETY: forwards to the system allocator; counting has no effect on it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const WARMUP: usize = 5_000;
const MEASURED: usize = 40_000;
const IN_FLIGHT: usize = 64;

#[test]
fn offloads_allocate_nothing_in_steady_state() {
    host::setup(2);
    // SAFETY: gettid has no preconditions.
    HOME_TID.store(unsafe { libc::gettid() }, Ordering::SeqCst);
    let home = host::Home::current(4 * IN_FLIGHT);
    let done = Rc::new(Cell::new(0usize));
    let total = Rc::new(Cell::new(0usize));
    // Coroutines (and their stacks) exist before counting starts; each
    // offloads its share of WARMUP, then counting starts, then MEASURED.
    let cos: Vec<_> = (0..IN_FLIGHT)
        .map(|i| {
            let (done, total) = (done.clone(), total.clone());
            home.spawn(move || {
                for k in 0..(WARMUP + MEASURED) / IN_FLIGHT {
                    if k == WARMUP / IN_FLIGHT && i == 0 {
                        COUNTING.store(true, Ordering::SeqCst);
                    }
                    let v = offload::run_in_worker(move || i + k);
                    assert_eq!(v, i + k);
                    total.set(total.get() + 1);
                }
                done.set(done.get() + 1);
                if done.get() == IN_FLIGHT {
                    COUNTING.store(false, Ordering::SeqCst);
                }
            })
        })
        .collect();
    home.run();
    let on_home = HOME_ALLOCATIONS.load(Ordering::SeqCst);
    let on_workers = WORKER_ALLOCATIONS.load(Ordering::SeqCst);
    println!(
        "{} offloads: {on_home} allocations on the home thread, {on_workers} on workers",
        total.get()
    );
    assert_eq!(done.get(), IN_FLIGHT);
    assert_eq!(on_home, 0, "the offload path allocated on the home thread");
    assert!(
        on_workers * 1000 < MEASURED,
        "workers allocated {on_workers} times in {MEASURED} offloads"
    );
    drop(cos);
}
