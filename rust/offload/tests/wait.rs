// SPDX-License-Identifier: GPL-2.0-or-later
//! The wait primitives in coroutine mode: coroutines suspend (never block
//! their home thread) while waiting for a value that a plain thread or
//! another coroutine changes, and the rwlock keeps writers exclusive across
//! offloads.

mod host;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use host::Home;
use offload::{RwLock, WaitCell};

#[test]
fn coroutines_wait_for_a_thread() {
    host::setup(2);
    let home = Home::current(256);
    let cell = Arc::new(WaitCell::new(0usize));
    let woke = Rc::new(Cell::new(0usize));
    let cos: Vec<_> = (1..=100)
        .map(|i| {
            let (cell, woke) = (cell.clone(), woke.clone());
            home.spawn(move || {
                let seen = cell.wait_for(|v| (*v >= i).then_some(*v));
                assert!(seen >= i);
                woke.set(woke.get() + 1);
            })
        })
        .collect();
    let setter = {
        let cell = cell.clone();
        std::thread::spawn(move || {
            for n in 1..=100 {
                if n % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
                cell.update(|v| *v = n);
            }
        })
    };
    home.run();
    setter.join().unwrap();
    assert_eq!(woke.get(), 100);
    // They waited by suspending, not by parking the home thread.
    assert!(cos.iter().map(|co| co.suspends).sum::<u32>() > 0);
    for co in &cos {
        assert!(co.done);
        assert_eq!(co.resumes.load(Ordering::SeqCst), co.suspends);
    }
}

#[test]
fn rwlock_across_offloads_in_coroutines() {
    host::setup(2);
    let home = Home::current(256);
    let lock = Arc::new(RwLock::new());
    let inside = Arc::new(AtomicUsize::new(0));
    let cos: Vec<_> = (0..64)
        .map(|i| {
            let (lock, inside) = (lock.clone(), inside.clone());
            home.spawn(move || {
                for round in 0..8 {
                    if (i + round) % 5 == 0 {
                        let _w = lock.write();
                        assert_eq!(inside.fetch_add(1000, Ordering::SeqCst), 0);
                        // Suspend while holding it: others must wait.
                        offload::run_in_worker(std::thread::yield_now);
                        inside.fetch_sub(1000, Ordering::SeqCst);
                    } else {
                        let _r = lock.read();
                        assert!(inside.fetch_add(1, Ordering::SeqCst) < 1000);
                        offload::run_in_worker(std::thread::yield_now);
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    home.run();
    for co in &cos {
        assert!(co.done);
        assert_eq!(co.resumes.load(Ordering::SeqCst), co.suspends);
    }
    assert_eq!(inside.load(Ordering::SeqCst), 0);
}
