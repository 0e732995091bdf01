// SPDX-License-Identifier: GPL-2.0-or-later
//! Coroutine-specific storage: `qrs_storage_*`.

use std::ffi::c_void;
use std::ptr;

use co_storage::{self as cs, Key};
use p9_wire::errno::Errno;

use crate::errno::to_neg_errno;
use crate::{ffi_guard, PANIC_ERRNO};

/// `e` as an export returns it: `-errno`.
fn neg_errno(e: cs::Error) -> i32 {
    to_neg_errno(Errno(e.errno().unsigned_abs()))
}

/// A storage key.  0 is never a valid key, so a zero-initialised key variable
/// reads as "no value" until the key is created.
pub type QrsStorageKey = u64;

/// Called with each non-NULL value still stored under a key when a storage is
/// released.  It runs in the context that calls `qrs_storage_release` and may
/// get and set values of that same storage.
pub type QrsStorageDestructor = Option<unsafe extern "C" fn(value: *mut c_void)>;

/// Returns the current coroutine's slot, or NULL outside a coroutine.
pub type QrsStorageSlotHook = Option<unsafe extern "C" fn() -> *mut *mut c_void>;

/// How many storage keys can exist at once.
pub const QRS_STORAGE_KEYS_MAX: u32 = 1024;
const _: () = assert!(QRS_STORAGE_KEYS_MAX as usize == cs::KEYS_MAX);

/// How many destructor rounds `qrs_storage_release` makes at most while
/// destructors keep storing values.
pub const QRS_STORAGE_DESTRUCTOR_ITERATIONS: u32 = 4;
const _: () = assert!(QRS_STORAGE_DESTRUCTOR_ITERATIONS as usize == cs::DESTRUCTOR_ITERATIONS);

/// Register the host's slot hook: `hook()` returns the address of the
/// current coroutine's slot (one pointer-sized field per coroutine that the
/// library owns, NULL-initialised by the host), or NULL when the caller is
/// not in a coroutine, in which case the calling thread's own slot is used
/// (released with destructors at thread exit).  `hook` is called from any
/// thread on every get and set: it must be cheap and must not block.
///
/// Register once, before any coroutine stores values.  NULL removes the
/// hook, so every caller uses its thread's slot.  Always returns 0.
#[no_mangle]
pub extern "C" fn qrs_storage_set_host(hook: QrsStorageSlotHook) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        cs::set_host_hook(hook);
        0
    })
}

/// Create a key, with an optional destructor.  Thread-safe, lock-free.
///
/// On success writes the key to `*key` and returns 0.  Returns `-EINVAL` if
/// `key` is NULL, `-EAGAIN` if `QRS_STORAGE_KEYS_MAX` keys exist already.
///
/// # Safety
/// `key` is NULL or points to writable memory for one key.
#[no_mangle]
pub unsafe extern "C" fn qrs_storage_key_create(
    destructor: QrsStorageDestructor,
    key: *mut QrsStorageKey,
) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        if key.is_null() {
            return -libc::EINVAL;
        }
        match Key::create(destructor) {
            Ok(k) => {
                // SAFETY: checked non-NULL; the caller passes a writable key.
                unsafe { key.write(k.as_raw()) };
                0
            }
            Err(e) => neg_errno(e),
        }
    })
}

/// Delete a key.  Values still stored under it are forgotten without calling
/// the destructor and read as NULL from now on; a key created later never
/// sees them.  Returns 0, or `-EINVAL` if the key does not exist.
#[no_mangle]
pub extern "C" fn qrs_storage_key_delete(key: QrsStorageKey) -> i32 {
    ffi_guard(PANIC_ERRNO, || match Key::from_raw(key).delete() {
        Ok(()) => 0,
        Err(e) => neg_errno(e),
    })
}

/// The current coroutine's value for `key` (the thread's outside a
/// coroutine); NULL if none is set or the key does not exist.  Lock-free,
/// no hashing, no allocation.
#[no_mangle]
pub extern "C" fn qrs_storage_get(key: QrsStorageKey) -> *mut c_void {
    ffi_guard(ptr::null_mut(), || cs::get(Key::from_raw(key)))
}

/// Set the current coroutine's value for `key` (the thread's outside a
/// coroutine).  The first non-NULL value allocates the storage.
///
/// Returns 0 and, if `old_value` is not NULL, writes the previous value
/// there.  Returns `-EINVAL` if the key does not exist, `-ENOMEM` if the
/// storage cannot be allocated; nothing changes on error.
///
/// # Safety
/// `old_value` is NULL or points to writable memory for one pointer.
#[no_mangle]
pub unsafe extern "C" fn qrs_storage_set(
    key: QrsStorageKey,
    value: *mut c_void,
    old_value: *mut *mut c_void,
) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        let result = cs::set(Key::from_raw(key), value);
        // SAFETY: `old_value` is NULL or writable, per the contract.
        unsafe { finish_set(result, old_value) }
    })
}

/// The value for `key` in the storage held by `*slot`: another coroutine's,
/// e.g. one created but not yet entered.  NULL if none, or if `slot` is NULL.
///
/// # Safety
/// `slot` is NULL or points to a slot that is NULL-initialised or was last
/// written by this library, and the coroutine owning it is not running on
/// another thread.
#[no_mangle]
pub unsafe extern "C" fn qrs_storage_get_in(
    slot: *const *mut c_void,
    key: QrsStorageKey,
) -> *mut c_void {
    ffi_guard(ptr::null_mut(), || {
        if slot.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: non-NULL, and valid per the contract.
        unsafe { cs::get_in(slot, Key::from_raw(key)) }
    })
}

/// Set the value for `key` in the storage held by `*slot` (another
/// coroutine's, e.g. one created but not yet entered); as `qrs_storage_set`
/// otherwise.  Returns `-EINVAL` if `slot` is NULL.
///
/// # Safety
/// As for `qrs_storage_get_in`; `old_value` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qrs_storage_set_in(
    slot: *mut *mut c_void,
    key: QrsStorageKey,
    value: *mut c_void,
    old_value: *mut *mut c_void,
) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        if slot.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: non-NULL, and valid per the contract.
        let result = unsafe { cs::set_in(slot, Key::from_raw(key), value) };
        // SAFETY: `old_value` is NULL or writable, per the contract.
        unsafe { finish_set(result, old_value) }
    })
}

/// Release the storage held by `*slot`, as the host does when the coroutine
/// owning it terminates: each live key's destructor is called once for every
/// non-NULL value (the value is cleared first), in rounds repeated while
/// destructors store new values, at most `QRS_STORAGE_DESTRUCTOR_ITERATIONS`
/// times; then the memory is freed and `*slot` is NULL.  A NULL `slot` or
/// `*slot` does nothing.  Call it from the coroutine itself, just before it
/// terminates, so destructors see it as the current coroutine.
///
/// # Safety
/// As for `qrs_storage_set_in`; the coroutine does not use the slot again
/// until it is reused (a reused coroutine starts from the NULL slot).
#[no_mangle]
pub unsafe extern "C" fn qrs_storage_release(slot: *mut *mut c_void) {
    ffi_guard((), || {
        if !slot.is_null() {
            // SAFETY: non-NULL, and valid per the contract.
            unsafe { cs::release(slot) }
        }
    })
}

/// # Safety
/// `old_value` is NULL or writable.
unsafe fn finish_set(result: Result<*mut c_void, cs::Error>, old_value: *mut *mut c_void) -> i32 {
    match result {
        Ok(old) => {
            if !old_value.is_null() {
                // SAFETY: non-NULL and writable per the caller's contract.
                unsafe { old_value.write(old) };
            }
            0
        }
        Err(e) => neg_errno(e),
    }
}
