// SPDX-License-Identifier: GPL-2.0-or-later
//! One coroutine's (or thread's) storage, reached through its slot.
//!
//! A slot is one pointer-sized field owned by the host (QEMU: a field of
//! `struct Coroutine`).  It is NULL until the first non-NULL value is set;
//! then it points to a single allocation: a capacity followed by one entry
//! per key index.  An entry remembers the full key it was written with, so a
//! read under a deleted or recreated key sees NULL.  A storage belongs to one
//! coroutine at a time; nothing here is synchronised.

use std::alloc::{self, Layout};
use std::ffi::c_void;
use std::ptr::{self, addr_of_mut};

use crate::{Error, Key};

/// How many destructor rounds a release makes while destructors keep storing
/// values (pthreads' `PTHREAD_DESTRUCTOR_ITERATIONS`); values still present
/// after the last round are dropped without a destructor call.
pub const DESTRUCTOR_ITERATIONS: usize = 4;

/// A host-owned, pointer-sized field that holds a storage (or NULL).
pub type Slot = *mut c_void;

#[repr(C)]
struct Entry {
    key: u64,
    value: *mut c_void,
}

#[repr(C)]
struct Storage {
    cap: usize,
    entries: [Entry; 0],
}

fn layout(cap: usize) -> Layout {
    let size = std::mem::size_of::<Storage>() + cap * std::mem::size_of::<Entry>();
    // cap <= KEYS_MAX, so the size cannot overflow.
    Layout::from_size_align(size, std::mem::align_of::<Storage>()).expect("storage layout")
}

/// The entry for `index`, or NULL if the storage is absent or too small.
///
/// # Safety
/// `storage` is NULL or a live storage allocated by `grow`.
#[inline(always)]
unsafe fn entry(storage: *mut Storage, index: usize) -> *mut Entry {
    // SAFETY: per the contract, a non-NULL `storage` is live; index < cap
    // keeps the pointer inside the allocation.
    unsafe {
        if storage.is_null() || index >= (*storage).cap {
            return ptr::null_mut();
        }
        addr_of_mut!((*storage).entries).cast::<Entry>().add(index)
    }
}

/// The value stored under `key` in the storage held by `slot`, or NULL.
///
/// # Safety
/// `slot` points to a readable slot that is NULL or was last written by this
/// module, and no other thread uses the storage concurrently.
#[inline]
pub unsafe fn get_in(slot: *const Slot, key: Key) -> *mut c_void {
    // SAFETY: per the contract; `entry` handles NULL and short storages.
    unsafe {
        let e = entry((*slot).cast(), key.index());
        // The liveness check (one shared, read-mostly load) makes a deleted
        // key read NULL even in storages written before it was deleted.
        if !e.is_null() && (*e).key == key.as_raw() && key.is_live() {
            (*e).value
        } else {
            ptr::null_mut()
        }
    }
}

/// Store `value` under `key` in the storage held by `slot`, allocating the
/// storage (or growing it) if needed; returns the previous value.
///
/// # Errors
/// [`Error::InvalidKey`] if the key does not exist, [`Error::NoMemory`] if
/// the storage cannot be allocated.  Nothing changes on error.
///
/// # Safety
/// `slot` points to a writable slot that is NULL or was last written by this
/// module, and no other thread uses the storage concurrently.
pub unsafe fn set_in(slot: *mut Slot, key: Key, value: *mut c_void) -> Result<*mut c_void, Error> {
    if !key.is_live() {
        return Err(Error::InvalidKey);
    }
    // SAFETY: per the contract.
    unsafe {
        let mut e = entry((*slot).cast(), key.index());
        if e.is_null() {
            if value.is_null() {
                return Ok(ptr::null_mut()); // clearing needs no storage
            }
            grow(slot, key.index())?;
            e = entry((*slot).cast(), key.index());
        }
        let old = if (*e).key == key.as_raw() {
            (*e).value
        } else {
            ptr::null_mut()
        };
        (*e).key = key.as_raw();
        (*e).value = value;
        Ok(old)
    }
}

/// Make the storage in `slot` large enough for `index`.
///
/// # Safety
/// As for [`set_in`].
unsafe fn grow(slot: *mut Slot, index: usize) -> Result<(), Error> {
    let cap = (index + 1).next_power_of_two().max(4);
    // SAFETY: the layout has non-zero size; the old storage (if any) is
    // live, smaller than the new one, and freed with the layout it was
    // allocated with.
    unsafe {
        let new: *mut Storage = alloc::alloc_zeroed(layout(cap)).cast();
        if new.is_null() {
            return Err(Error::NoMemory);
        }
        (*new).cap = cap;
        let old: *mut Storage = (*slot).cast();
        if !old.is_null() {
            let old_cap = (*old).cap;
            ptr::copy_nonoverlapping(
                addr_of_mut!((*old).entries).cast::<Entry>(),
                addr_of_mut!((*new).entries).cast::<Entry>(),
                old_cap,
            );
            alloc::dealloc(old.cast(), layout(old_cap));
        }
        *slot = new.cast();
    }
    Ok(())
}

/// Release the storage held by `slot`: call the destructor of every live key
/// with a non-NULL value (the entry is cleared first), repeat while
/// destructors store new values (at most [`DESTRUCTOR_ITERATIONS`] rounds),
/// free the memory and leave the slot NULL.  A NULL slot costs nothing.
///
/// Destructors may get and set values in this same storage (it stays in the
/// slot until the end), which is how a value stored during a round is found
/// by the next one.
///
/// # Safety
/// As for [`set_in`]; destructors are called with the values they were
/// registered for.
pub unsafe fn release(slot: *mut Slot) {
    // SAFETY: per the contract.  The storage may be reallocated by a
    // destructor's set, so it is re-read through the slot after every call
    // and no reference into it is held across one.
    unsafe {
        for _ in 0..DESTRUCTOR_ITERATIONS {
            let mut called = false;
            let mut index = 0;
            loop {
                let e = entry((*slot).cast(), index);
                if e.is_null() {
                    break;
                }
                let value = std::mem::replace(&mut (*e).value, ptr::null_mut());
                if !value.is_null() {
                    if let Some(destructor) = Key::from_raw((*e).key).destructor() {
                        destructor(value);
                        called = true;
                    }
                }
                index += 1;
            }
            if !called {
                break;
            }
        }
        let storage: *mut Storage = (*slot).cast();
        if !storage.is_null() {
            *slot = ptr::null_mut();
            alloc::dealloc(storage.cast(), layout((*storage).cap));
        }
    }
}

/// Whether the slot holds a storage (used by tests to show laziness and
/// that release leaves nothing behind).
pub fn is_allocated(slot: &Slot) -> bool {
    !slot.is_null()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn p(n: usize) -> *mut c_void {
        n as *mut c_void
    }

    #[test]
    fn lazily_allocated_and_clearing_needs_no_memory() {
        let k = Key::create(None).unwrap();
        let mut slot: Slot = ptr::null_mut();
        // SAFETY: `slot` is a local NULL-initialised slot used only here.
        unsafe {
            assert_eq!(get_in(&slot, k), ptr::null_mut());
            assert_eq!(set_in(&mut slot, k, ptr::null_mut()), Ok(ptr::null_mut()));
            assert!(!is_allocated(&slot));
            assert_eq!(set_in(&mut slot, k, p(1)), Ok(ptr::null_mut()));
            assert!(is_allocated(&slot));
            assert_eq!(set_in(&mut slot, k, p(2)), Ok(p(1)));
            assert_eq!(get_in(&slot, k), p(2));
            release(&mut slot);
        }
        assert!(!is_allocated(&slot));
        k.delete().unwrap();
    }

    #[test]
    fn grows_and_keeps_values_across_indices() {
        let keys: Vec<Key> = (0..40).map(|_| Key::create(None).unwrap()).collect();
        let mut slot: Slot = ptr::null_mut();
        // SAFETY: `slot` is a local NULL-initialised slot used only here.
        unsafe {
            for (i, k) in keys.iter().enumerate().rev() {
                set_in(&mut slot, *k, p(i + 100)).unwrap();
            }
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(get_in(&slot, *k), p(i + 100));
            }
            release(&mut slot);
        }
        for k in keys {
            k.delete().unwrap();
        }
    }

    #[test]
    fn deleted_key_reads_null_and_cannot_be_set() {
        let k = Key::create(None).unwrap();
        let mut slot: Slot = ptr::null_mut();
        // SAFETY: `slot` is a local NULL-initialised slot used only here.
        unsafe {
            set_in(&mut slot, k, p(7)).unwrap();
            k.delete().unwrap();
            assert_eq!(get_in(&slot, k), ptr::null_mut());
            assert_eq!(set_in(&mut slot, k, p(8)), Err(Error::InvalidKey));
            // A new key may reuse the index; it must not see the stale value.
            let k2 = Key::create(None).unwrap();
            assert_eq!(get_in(&slot, k2), ptr::null_mut());
            assert_eq!(set_in(&mut slot, k2, p(9)), Ok(ptr::null_mut()));
            release(&mut slot);
            k2.delete().unwrap();
        }
    }

    thread_local! {
        static CALLS: Cell<usize> = const { Cell::new(0) };
        static SELF_SLOT: Cell<*mut Slot> = const { Cell::new(ptr::null_mut()) };
        static SELF_KEY: Cell<u64> = const { Cell::new(0) };
    }

    unsafe extern "C" fn count(value: *mut c_void) {
        assert!(!value.is_null());
        CALLS.with(|c| c.set(c.get() + 1));
    }

    /// Stores a value again every time: release must stop after the bound.
    unsafe extern "C" fn resurrect(value: *mut c_void) {
        CALLS.with(|c| c.set(c.get() + 1));
        let slot = SELF_SLOT.with(Cell::get);
        let key = Key::from_raw(SELF_KEY.with(Cell::get));
        // SAFETY: the test points SELF_SLOT at the slot being released.
        unsafe { set_in(slot, key, value).unwrap() };
    }

    #[test]
    fn destructor_called_once_per_value() {
        let k1 = Key::create(Some(count)).unwrap();
        let k2 = Key::create(Some(count)).unwrap();
        let k3 = Key::create(None).unwrap();
        let mut slot: Slot = ptr::null_mut();
        CALLS.with(|c| c.set(0));
        // SAFETY: `slot` is a local NULL-initialised slot used only here.
        unsafe {
            set_in(&mut slot, k1, p(1)).unwrap();
            set_in(&mut slot, k2, p(2)).unwrap();
            set_in(&mut slot, k2, ptr::null_mut()).unwrap(); // cleared: no call
            set_in(&mut slot, k3, p(3)).unwrap(); // no destructor
            release(&mut slot);
        }
        assert_eq!(CALLS.with(Cell::get), 1);
        assert!(!is_allocated(&slot));
        for k in [k1, k2, k3] {
            k.delete().unwrap();
        }
    }

    #[test]
    fn destructor_rounds_are_bounded() {
        let k = Key::create(Some(resurrect)).unwrap();
        let mut slot: Slot = ptr::null_mut();
        CALLS.with(|c| c.set(0));
        SELF_SLOT.with(|s| s.set(&mut slot));
        SELF_KEY.with(|s| s.set(k.as_raw()));
        // SAFETY: `slot` is a local NULL-initialised slot used only here.
        unsafe {
            set_in(&mut slot, k, p(5)).unwrap();
            release(&mut slot);
        }
        assert_eq!(CALLS.with(Cell::get), DESTRUCTOR_ITERATIONS);
        assert!(!is_allocated(&slot));
        k.delete().unwrap();
    }
}
