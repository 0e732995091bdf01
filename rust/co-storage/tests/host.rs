// SPDX-License-Identifier: GPL-2.0-or-later
//! The current-slot resolution with a host hook, and thread storage.
//!
//! The fake host keeps "the current coroutine's slot" in a thread-local
//! pointer, like QEMU's `qemu_coroutine_self()`; NULL means "not in a
//! coroutine", where the library falls back to the thread's own slot.

use std::cell::Cell;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use co_storage::{get, get_in, is_allocated, release, set, set_host_hook, Key, Slot};

thread_local! {
    static CURRENT: Cell<*mut Slot> = const { Cell::new(ptr::null_mut()) };
}

unsafe extern "C" fn hook() -> *mut Slot {
    CURRENT.with(Cell::get)
}

/// Run `f` "inside the coroutine" whose slot is `slot`.
fn inside<R>(slot: &mut Slot, f: impl FnOnce() -> R) -> R {
    set_host_hook(Some(hook));
    let prev = CURRENT.with(|c| c.replace(slot));
    let r = f();
    CURRENT.with(|c| c.set(prev));
    r
}

fn p(n: usize) -> *mut c_void {
    n as *mut c_void
}

#[test]
fn coroutines_and_thread_are_separate() {
    set_host_hook(Some(hook));
    let k = Key::create(None).unwrap();
    let (mut a, mut b): (Slot, Slot) = (ptr::null_mut(), ptr::null_mut());
    assert_eq!(set(k, p(1)), Ok(ptr::null_mut())); // thread slot
    inside(&mut a, || assert_eq!(set(k, p(2)), Ok(ptr::null_mut())));
    inside(&mut b, || {
        assert_eq!(get(k), ptr::null_mut());
        assert_eq!(set(k, p(3)), Ok(ptr::null_mut()));
    });
    assert_eq!(get(k), p(1));
    inside(&mut a, || assert_eq!(get(k), p(2)));
    // SAFETY: `b` is a local slot written only by the library.
    assert_eq!(unsafe { get_in(&b, k) }, p(3));
    // SAFETY: as above; the "coroutines" are done with their slots.
    unsafe {
        release(&mut a);
        release(&mut b);
    }
    assert!(!is_allocated(&a) && !is_allocated(&b));
    assert_eq!(set(k, ptr::null_mut()), Ok(p(1)));
    k.delete().unwrap();
}

static THREAD_DTOR_CALLS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn thread_dtor(value: *mut c_void) {
    assert_eq!(value, p(42));
    THREAD_DTOR_CALLS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn thread_storage_is_released_at_thread_exit() {
    set_host_hook(Some(hook));
    let k = Key::create(Some(thread_dtor)).unwrap();
    std::thread::spawn(move || {
        set(k, p(42)).unwrap();
        assert_eq!(get(k), p(42));
    })
    .join()
    .unwrap();
    assert_eq!(THREAD_DTOR_CALLS.load(Ordering::SeqCst), 1);
    // A thread that only cleared values had nothing to release.
    std::thread::spawn(move || {
        set(k, ptr::null_mut()).unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(THREAD_DTOR_CALLS.load(Ordering::SeqCst), 1);
    k.delete().unwrap();
}
