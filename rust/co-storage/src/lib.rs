// SPDX-License-Identifier: GPL-2.0-or-later
//! Coroutine-specific storage.
//!
//! Keys with one value per coroutine (per thread outside coroutines), in the
//! spirit of pthreads' thread-specific data: values live in a storage that is
//! allocated on the first non-NULL set and released by the host when the
//! coroutine terminates, running each key's destructor once per value.
//!
//! The host's part is one pointer-sized slot per coroutine that this crate
//! owns, a hook returning the current coroutine's slot ([`set_host_hook`]),
//! and a call to [`release`] when a coroutine terminates (QEMU does it just
//! before the coroutine returns to its pool).  The get path takes no lock and
//! does no hashing: hook, slot, index, compare.
#![warn(missing_docs)]

mod host;
mod key;
mod storage;

use std::ffi::c_void;

pub use host::{current_slot, set_host_hook, SlotHook};
pub use key::{Destructor, Key, KEYS_MAX};
pub use storage::{get_in, is_allocated, release, set_in, Slot, DESTRUCTOR_ITERATIONS};

/// Why a storage operation failed.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Error {
    /// The key was never created or has been deleted.
    InvalidKey,
    /// All [`KEYS_MAX`] keys are in use.
    Exhausted,
    /// A storage could not be allocated.
    NoMemory,
}

impl Error {
    /// The errno value (positive) that C callers receive negated.
    pub fn errno(self) -> i32 {
        match self {
            Error::InvalidKey => libc::EINVAL,
            Error::Exhausted => libc::EAGAIN,
            Error::NoMemory => libc::ENOMEM,
        }
    }
}

/// The current coroutine's (or thread's) value for `key`, NULL if none.
#[inline]
pub fn get(key: Key) -> *mut c_void {
    // SAFETY: current_slot returns the caller's own live slot.
    unsafe { get_in(current_slot(), key) }
}

/// Set the current coroutine's (or thread's) value for `key`; returns the
/// previous value.
///
/// # Errors
/// As [`set_in`].
// `value` is stored, never dereferenced: an opaque pointer, not a borrow.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn set(key: Key, value: *mut c_void) -> Result<*mut c_void, Error> {
    let slot = current_slot();
    if !value.is_null() {
        host::arm_thread_release(slot);
    }
    // SAFETY: current_slot returns the caller's own live slot.
    unsafe { set_in(slot, key, value) }
}
