// SPDX-License-Identifier: GPL-2.0-or-later
//! The process-wide key table.
//!
//! A key is an index into a fixed table plus the sequence number the table
//! entry had when the key was created.  Entries are claimed and released with
//! compare-and-swap on the sequence (odd: in use, even: free), so creating and
//! deleting keys takes no lock, and a value stored under a deleted key can
//! never be read back through a key that later reuses the same index.

use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::Error;

/// How many keys can exist at once (pthreads' `PTHREAD_KEYS_MAX`).
pub const KEYS_MAX: usize = 1024;
const INDEX_BITS: u32 = KEYS_MAX.trailing_zeros();
const INDEX_MASK: u64 = (KEYS_MAX as u64) - 1;

/// Called with a non-NULL value when the storage holding it is released.
pub type Destructor = unsafe extern "C" fn(value: *mut c_void);

/// A storage key.  The raw value 0 is never a valid key, so zero-initialised
/// key variables read as "no value" until a key is created.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
#[repr(transparent)]
pub struct Key(u64);

impl Key {
    /// The key with this raw value (as stored by C callers).  Any value is
    /// accepted; operations on a key that does not exist fail or read NULL.
    pub const fn from_raw(raw: u64) -> Key {
        Key(raw)
    }

    /// The raw value to hand to C.
    pub const fn as_raw(self) -> u64 {
        self.0
    }

    #[inline]
    pub(crate) const fn index(self) -> usize {
        (self.0 & INDEX_MASK) as usize
    }

    #[inline]
    const fn seq(self) -> u64 {
        self.0 >> INDEX_BITS
    }

    /// Create a key.  `destructor`, if any, is called for every non-NULL
    /// value still stored under the key when a storage is released.
    ///
    /// # Errors
    /// [`Error::Exhausted`] when [`KEYS_MAX`] keys exist.
    pub fn create(destructor: Option<Destructor>) -> Result<Key, Error> {
        for (index, entry) in KEYS.iter().enumerate() {
            let seq = entry.seq.load(Ordering::Relaxed);
            if seq % 2 == 1 {
                continue;
            }
            if entry
                .seq
                .compare_exchange(seq, seq + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                // No value can exist under the new key before we return it,
                // so publishing the destructor after the claim is race-free.
                entry
                    .destructor
                    .store(destructor.map_or(0, |d| d as usize), Ordering::Release);
                return Ok(Key(((seq + 1) << INDEX_BITS) | index as u64));
            }
        }
        Err(Error::Exhausted)
    }

    /// Delete the key.  Values still stored under it are forgotten without
    /// calling the destructor (as `pthread_key_delete`); they read as NULL.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] when the key does not exist (never created, or
    /// already deleted).
    pub fn delete(self) -> Result<(), Error> {
        let entry = self.entry().ok_or(Error::InvalidKey)?;
        entry
            .seq
            .compare_exchange(
                self.seq(),
                self.seq() + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .map_err(|_| Error::InvalidKey)?;
        Ok(())
    }

    /// Whether the key currently exists.
    #[inline]
    pub fn is_live(self) -> bool {
        self.entry().is_some()
    }

    /// The destructor of a live key.
    pub(crate) fn destructor(self) -> Option<Destructor> {
        let entry = self.entry()?;
        let raw = entry.destructor.load(Ordering::Acquire);
        if raw == 0 || entry.seq.load(Ordering::Acquire) != self.seq() {
            return None;
        }
        // SAFETY: non-zero values in `destructor` are only ever stored from a
        // `Destructor` in `create`, and fn pointers round-trip through usize.
        Some(unsafe { std::mem::transmute::<usize, Destructor>(raw) })
    }

    /// The table entry, if the key is live.
    #[inline]
    fn entry(self) -> Option<&'static KeyEntry> {
        let entry = &KEYS[self.index()];
        (self.seq() % 2 == 1 && entry.seq.load(Ordering::Acquire) == self.seq()).then_some(entry)
    }
}

struct KeyEntry {
    /// Odd while a key uses this entry; bumped on every create and delete.
    seq: AtomicU64,
    /// The key's `Destructor` as usize, 0 for none.
    destructor: AtomicUsize,
}

static KEYS: [KeyEntry; KEYS_MAX] = [const {
    KeyEntry {
        seq: AtomicU64::new(0),
        destructor: AtomicUsize::new(0),
    }
}; KEYS_MAX];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_never_a_key() {
        assert!(!Key::from_raw(0).is_live());
        assert_eq!(Key::from_raw(0).delete(), Err(Error::InvalidKey));
    }

    #[test]
    fn create_delete_and_stale_keys() {
        let k = Key::create(None).unwrap();
        assert!(k.is_live());
        assert_ne!(k.as_raw(), 0);
        k.delete().unwrap();
        assert!(!k.is_live());
        assert_eq!(k.delete(), Err(Error::InvalidKey));
        // A key forged from a live key's index with another sequence is not live.
        let k2 = Key::create(None).unwrap();
        let forged = Key::from_raw(k2.as_raw() + (2 << INDEX_BITS));
        assert!(!forged.is_live());
        assert_eq!(forged.delete(), Err(Error::InvalidKey));
        k2.delete().unwrap();
    }

    #[test]
    fn destructor_is_only_reported_for_live_keys() {
        unsafe extern "C" fn d(_: *mut c_void) {}
        let k = Key::create(Some(d)).unwrap();
        assert!(k.destructor().is_some());
        k.delete().unwrap();
        assert!(k.destructor().is_none());
        let k = Key::create(None).unwrap();
        assert!(k.destructor().is_none());
        k.delete().unwrap();
    }
}
