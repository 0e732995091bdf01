// SPDX-License-Identifier: GPL-2.0-or-later
//! Finding the current slot: the host's hook, else the thread's own slot.
//!
//! The host registers one function that returns the current coroutine's slot
//! (QEMU: `&qemu_coroutine_self()->storage`), or NULL when the caller is not
//! in a coroutine.  Then the library uses a slot of its own per thread,
//! released with destructors when the thread exits.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::storage::{self, Slot};

/// Returns the current coroutine's slot, or NULL outside a coroutine.
/// Called on every get and set: it must be cheap and must not block.
pub type SlotHook = unsafe extern "C" fn() -> *mut Slot;

static HOOK: AtomicPtr<()> = AtomicPtr::new(ptr::null_mut());

/// Register (or with `None`, remove) the host's slot hook.  Register it
/// before any coroutine uses storage: values set through one hook are not
/// visible through another.
pub fn set_host_hook(hook: Option<SlotHook>) {
    HOOK.store(
        hook.map_or(ptr::null_mut(), |h| h as *mut ()),
        Ordering::Release,
    );
}

thread_local! {
    /// The thread's own slot.  No destructor, so it stays usable while other
    /// thread-locals (including `THREAD_RELEASE`) are being destroyed.
    static THREAD_SLOT: Cell<Slot> = const { Cell::new(ptr::null_mut()) };
    /// Registered on first use; releases `THREAD_SLOT` at thread exit.
    static THREAD_RELEASE: ThreadRelease = const { ThreadRelease };
}

struct ThreadRelease;

impl Drop for ThreadRelease {
    fn drop(&mut self) {
        // SAFETY: THREAD_SLOT is this thread's own slot, used by no one else.
        THREAD_SLOT.with(|s| unsafe { storage::release(s.as_ptr()) });
    }
}

/// The slot of the calling coroutine, or of the calling thread outside one.
#[inline]
pub fn current_slot() -> *mut Slot {
    let hook = HOOK.load(Ordering::Acquire);
    if !hook.is_null() {
        // SAFETY: non-NULL values in HOOK are only ever stored from a SlotHook.
        let hook = unsafe { std::mem::transmute::<*mut (), SlotHook>(hook) };
        // SAFETY: the host promises the hook is callable from any thread.
        let slot = unsafe { hook() };
        if !slot.is_null() {
            return slot;
        }
    }
    thread_slot()
}

/// The calling thread's own slot.
fn thread_slot() -> *mut Slot {
    THREAD_SLOT.with(Cell::as_ptr)
}

/// Make sure a thread slot that is about to hold a storage is released at
/// thread exit.  Only the set path pays for this, and only for thread slots.
pub(crate) fn arm_thread_release(slot: *mut Slot) {
    if slot == thread_slot() {
        // Accessing the thread-local registers its destructor; during thread
        // teardown it may already be gone, and the release in progress (if
        // any) picks the value up in its next round.
        let _ = THREAD_RELEASE.try_with(|_| ());
    }
}
