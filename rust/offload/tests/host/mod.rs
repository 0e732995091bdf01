// SPDX-License-Identifier: GPL-2.0-or-later
//! A minimal coroutine host for the tests: ucontext coroutines, one run
//! queue per home thread, and a resume hook that queues the coroutine to its
//! home thread like QEMU's `aio_co_wake` does.  Entering a coroutine that is
//! still running panics, so the "re-entered recursively" bug cannot hide.
#![allow(dead_code)]

use std::cell::Cell;
use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::{self, Thread, ThreadId};
use std::time::Duration;

const STACK_SIZE: usize = 256 * 1024;

pub struct Co {
    ctx: libc::ucontext_t,
    caller: libc::ucontext_t,
    _stack: Box<[u8]>,
    entry: Option<Box<dyn FnOnce()>>,
    home: Arc<Home>,
    running: AtomicBool,
    pub done: bool,
    pub suspends: u32,
    pub resumes: AtomicU32,
    /// Resumes that arrived while the coroutine was still running.
    pub early_resumes: AtomicU32,
}

pub struct Home {
    queue: Mutex<VecDeque<usize>>,
    thread: Thread,
    pub id: ThreadId,
    live: AtomicUsize,
}

thread_local! {
    static CURRENT: Cell<*mut Co> = const { Cell::new(std::ptr::null_mut()) };
}

unsafe extern "C" fn hook_current() -> *mut c_void {
    CURRENT.with(Cell::get).cast()
}

unsafe extern "C" fn hook_suspend() {
    let co = CURRENT.with(Cell::get);
    assert!(!co.is_null(), "suspend outside a coroutine");
    // SAFETY: `co` is the running coroutine, entered by `enter` below.
    unsafe {
        (*co).suspends += 1;
        libc::swapcontext(&mut (*co).ctx, &(*co).caller);
    }
}

unsafe extern "C" fn hook_resume(co: *mut c_void) {
    let co = co.cast::<Co>();
    // SAFETY: a resumed coroutine is alive: it waits for this resume.
    unsafe {
        (*co).resumes.fetch_add(1, Ordering::SeqCst);
        if (*co).running.load(Ordering::SeqCst) {
            (*co).early_resumes.fetch_add(1, Ordering::SeqCst);
        }
        let home = &(*co).home;
        home.queue.lock().unwrap().push_back(co as usize);
        home.thread.unpark();
    }
}

/// Register the hooks (once per test binary), without starting the pool.
pub fn set_hooks() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        offload::set_hooks(offload::Hooks {
            current: hook_current,
            suspend: hook_suspend,
            resume: hook_resume,
        })
        .unwrap();
    });
}

/// Register the hooks and start the pool (once per test binary).
pub fn setup(threads: usize) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        set_hooks();
        offload::start(threads).unwrap();
    });
}

extern "C" fn trampoline() {
    let co = CURRENT.with(Cell::get);
    // SAFETY: `enter` set CURRENT to this fresh coroutine before switching.
    unsafe {
        if let Some(f) = (*co).entry.take() {
            f();
        }
        (*co).done = true;
        libc::swapcontext(&mut (*co).ctx, &(*co).caller);
    }
    unreachable!("a finished coroutine was entered");
}

impl Home {
    /// A home for coroutines run by the calling thread.
    pub fn current(capacity: usize) -> Arc<Home> {
        Arc::new(Home {
            queue: Mutex::new(VecDeque::with_capacity(capacity)),
            thread: thread::current(),
            id: thread::current().id(),
            live: AtomicUsize::new(0),
        })
    }

    /// Create a coroutine of this home; it runs when `run` gets to it.
    pub fn spawn(self: &Arc<Home>, f: impl FnOnce() + 'static) -> Box<Co> {
        assert_eq!(thread::current().id(), self.id);
        // SAFETY: ucontext_t is plain data; all-zero is a valid value that
        // getcontext/swapcontext overwrite before use.
        let blank: libc::ucontext_t = unsafe { std::mem::zeroed() };
        let mut co = Box::new(Co {
            ctx: blank,
            caller: blank,
            _stack: vec![0u8; STACK_SIZE].into_boxed_slice(),
            entry: Some(Box::new(f)),
            home: self.clone(),
            running: AtomicBool::new(false),
            done: false,
            suspends: 0,
            resumes: AtomicU32::new(0),
            early_resumes: AtomicU32::new(0),
        });
        // SAFETY: the context gets a stack owned by the coroutine, which
        // outlives every switch into it (the Box is kept by the caller).
        unsafe {
            libc::getcontext(&mut co.ctx);
            co.ctx.uc_stack.ss_sp = co._stack.as_mut_ptr().cast();
            co.ctx.uc_stack.ss_size = STACK_SIZE;
            co.ctx.uc_link = std::ptr::null_mut();
            libc::makecontext(&mut co.ctx, trampoline, 0);
        }
        self.live.fetch_add(1, Ordering::SeqCst);
        self.queue
            .lock()
            .unwrap()
            .push_back(&mut *co as *mut Co as usize);
        co
    }

    /// Run queued coroutines until every coroutine of this home is done.
    pub fn run(&self) {
        assert_eq!(thread::current().id(), self.id);
        while self.live.load(Ordering::SeqCst) > 0 {
            let next = self.queue.lock().unwrap().pop_front();
            match next {
                Some(co) => self.enter(co as *mut Co),
                None => thread::park_timeout(Duration::from_millis(50)),
            }
        }
    }

    fn enter(&self, co: *mut Co) {
        // SAFETY: queued coroutines are alive and belong to this home.
        unsafe {
            assert!(
                !(*co).running.swap(true, Ordering::SeqCst),
                "coroutine re-entered recursively"
            );
            assert!(
                !(*co).done,
                "entered a finished coroutine (suspends {}, resumes {}, early {})",
                (*co).suspends,
                (*co).resumes.load(Ordering::SeqCst),
                (*co).early_resumes.load(Ordering::SeqCst)
            );
            let prev = CURRENT.with(|c| c.replace(co));
            libc::swapcontext(&mut (*co).caller, &(*co).ctx);
            CURRENT.with(|c| c.set(prev));
            (*co).running.store(false, Ordering::SeqCst);
            if (*co).done {
                self.live.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}
