// SPDX-License-Identifier: GPL-2.0-or-later
//! Many coroutines offloading at once, from one and from several home
//! threads, with functions that return at once (often before the coroutine
//! has suspended) and slowly: every coroutine gets its own result, on its
//! home thread, and is resumed at most once, exactly when it suspended.

mod host;

use std::cell::Cell;
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use host::{Co, Home};

const COROUTINES: usize = 1000;

/// Run `n` coroutines on the calling thread, each offloading `rounds` times.
fn run_home(n: usize, rounds: usize) -> (u32, u32) {
    let home = Home::current(2 * n);
    let checked = Rc::new(Cell::new(0usize));
    let cos: Vec<Box<Co>> = (0..n)
        .map(|i| {
            let home_id = home.id;
            let checked = checked.clone();
            home.spawn(move || {
                for round in 0..rounds {
                    let input = i * 1000 + round;
                    let out = offload::run_in_worker(move || {
                        assert_ne!(thread::current().id(), home_id, "ran on the home thread");
                        match (i + round) % 4 {
                            0 => {}                                         // instant
                            1 => thread::yield_now(),                       // short
                            2 => thread::sleep(Duration::from_micros(200)), // slow
                            _ => std::hint::black_box(()),
                        }
                        input * 2
                    });
                    assert_eq!(out, input * 2, "got another coroutine's result");
                    assert_eq!(
                        thread::current().id(),
                        home_id,
                        "resumed off its home thread"
                    );
                }
                checked.set(checked.get() + 1);
            })
        })
        .collect();
    home.run();
    assert_eq!(checked.get(), n);
    let (mut resumes, mut early) = (0, 0);
    for co in &cos {
        assert!(co.done);
        let r = co.resumes.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            r, co.suspends,
            "each suspend is matched by exactly one resume"
        );
        assert!(r <= rounds as u32);
        resumes += r;
        early += co.early_resumes.load(std::sync::atomic::Ordering::SeqCst);
    }
    (resumes, early)
}

#[test]
fn thousand_coroutines_one_home_thread() {
    host::setup(4);
    let (resumes, early) = run_home(COROUTINES, 3);
    println!("resumes {resumes}, of which before the suspend completed: {early}");
    assert!(resumes > 0, "no offload ever suspended");
}

#[test]
fn thousand_coroutines_each_on_four_home_threads() {
    host::setup(4);
    let threads: Vec<_> = (0..4)
        .map(|_| thread::spawn(|| run_home(COROUTINES, 2)))
        .collect();
    for t in threads {
        let (resumes, _) = t.join().unwrap();
        assert!(resumes > 0);
    }
}

#[test]
fn outside_a_coroutine_runs_inline() {
    host::setup(4);
    let me = thread::current().id();
    assert_eq!(offload::run_in_worker(|| thread::current().id()), me);
}

#[test]
fn a_panic_reaches_the_caller_on_its_home_thread() {
    host::setup(4);
    let home = Home::current(4);
    let caught = Rc::new(Cell::new(false));
    let c = caught.clone();
    let home_id = home.id;
    let _co = home.spawn(move || {
        let r = std::panic::catch_unwind(|| offload::run_in_worker(|| panic!("worker bug")));
        assert_eq!(thread::current().id(), home_id);
        let msg = r.unwrap_err().downcast::<&str>().map(|s| *s).unwrap_or("?");
        assert_eq!(msg, "worker bug");
        c.set(true);
    });
    home.run();
    assert!(caught.get());
}
