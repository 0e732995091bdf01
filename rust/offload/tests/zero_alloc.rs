// SPDX-License-Identifier: GPL-2.0-or-later
//! Steady-state allocations of offloads, counted by a global allocator.
//!
//! The offload path itself (request record on the coroutine stack, push on
//! the home thread's warm deque, steal, completion, resume) must allocate
//! nothing, on the home thread and on the workers alike.  Other threads (the
//! test harness's own bookkeeping runs concurrently) are counted apart and
//! only reported.  `pool::start` returns once every worker has done its
//! one-time setup, so no thread start-up allocation lands in the window.

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
static OTHER_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

/// Whether the calling thread is a pool worker, by its kernel-side name
/// (`qrs-worker-N`); asking the kernel allocates nothing.
fn on_worker_thread() -> bool {
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes into the buffer given.
    let ret = unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
    ret == 0 && name.starts_with(b"qrs-worker-")
}

fn count() {
    if COUNTING.load(Ordering::Relaxed) {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        if tid == HOME_TID.load(Ordering::Relaxed) {
            HOME_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        } else if on_worker_thread() {
            WORKER_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        } else {
            OTHER_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
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
    let elsewhere = OTHER_ALLOCATIONS.load(Ordering::SeqCst);
    println!(
        "{} offloads: {on_home} allocations on the home thread, {on_workers} on workers \
         ({elsewhere} on other threads, not counted)",
        total.get()
    );
    assert_eq!(done.get(), IN_FLIGHT);
    assert_eq!(on_home, 0, "the offload path allocated on the home thread");
    assert_eq!(on_workers, 0, "the offload path allocated on a worker");
    drop(cos);
}
