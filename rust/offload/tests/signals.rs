// SPDX-License-Identifier: GPL-2.0-or-later
//! Pool threads block every asynchronous signal (as QEMU's threads do), keep
//! the synchronous ones deliverable, and starting the pool leaves the
//! creating thread's own mask as it was.

mod host;

use std::cell::RefCell;
use std::collections::HashSet;
use std::mem::MaybeUninit;
use std::rc::Rc;
use std::time::Duration;

use host::Home;

/// The calling thread's signal mask.
fn current_mask() -> libc::sigset_t {
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: with a NULL new set, pthread_sigmask only writes the current
    // mask into `old`.
    unsafe {
        assert_eq!(
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), old.as_mut_ptr()),
            0
        );
        old.assume_init()
    }
}

fn blocked(set: &libc::sigset_t, sig: libc::c_int) -> bool {
    // SAFETY: `set` is an initialised signal set; sigismember only reads it.
    unsafe { libc::sigismember(set, sig) == 1 }
}

/// Every signal number's membership, to compare two masks.
fn members(set: &libc::sigset_t) -> Vec<bool> {
    (1..=64).map(|sig| blocked(set, sig)).collect()
}

/// The mask and kernel thread id of the worker that ran the offload.
#[derive(Clone, Copy)]
struct Sample {
    mask: libc::sigset_t,
    tid: libc::pid_t,
}

const ASYNCHRONOUS: [(libc::c_int, &str); 9] = [
    (libc::SIGINT, "SIGINT"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGALRM, "SIGALRM"),
    (libc::SIGCHLD, "SIGCHLD"),
    (libc::SIGIO, "SIGIO"),
    (libc::SIGPIPE, "SIGPIPE"),
];

const SYNCHRONOUS: [(libc::c_int, &str); 6] = [
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGTRAP, "SIGTRAP"),
    (libc::SIGSYS, "SIGSYS"),
];

#[test]
fn workers_block_asynchronous_signals_and_the_creator_keeps_its_mask() {
    // Give the creating thread a mask of its own (SIGUSR2 blocked, SIGINT
    // not), so a change in either direction shows.
    // SAFETY: sigemptyset/sigaddset initialise and fill a local set;
    // pthread_sigmask blocks SIGUSR2 in this test thread only.
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGUSR2);
        libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut());
    }
    let before = current_mask();
    assert!(blocked(&before, libc::SIGUSR2) && !blocked(&before, libc::SIGINT));

    host::setup(2);
    assert_eq!(
        members(&current_mask()),
        members(&before),
        "start changed the creating thread's signal mask"
    );

    // Enough slow offloads at once that every worker runs some.
    let home = Home::current(64);
    let samples = Rc::new(RefCell::new(Vec::new()));
    let _cos: Vec<_> = (0..8)
        .map(|_| {
            let samples = samples.clone();
            home.spawn(move || {
                let s = offload::run_in_worker(|| {
                    std::thread::sleep(Duration::from_millis(20));
                    // SAFETY: gettid has no preconditions.
                    let tid = unsafe { libc::gettid() };
                    Sample {
                        mask: current_mask(),
                        tid,
                    }
                });
                samples.borrow_mut().push(s);
            })
        })
        .collect();
    home.run();

    let samples = samples.borrow();
    assert_eq!(samples.len(), 8);
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() };
    let workers: HashSet<_> = samples.iter().map(|s| s.tid).collect();
    assert!(!workers.contains(&me), "an offload ran on the home thread");
    assert!(workers.len() >= 2, "only {} worker sampled", workers.len());
    for s in samples.iter() {
        for (sig, name) in ASYNCHRONOUS {
            assert!(blocked(&s.mask, sig), "{name} is deliverable on a worker");
        }
        for (sig, name) in SYNCHRONOUS {
            assert!(!blocked(&s.mask, sig), "{name} is blocked on a worker");
        }
    }

    assert!(offload::stop());
    assert_eq!(members(&current_mask()), members(&before));
}
