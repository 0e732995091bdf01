// SPDX-License-Identifier: GPL-2.0-or-later
//! Tag allocation: unique among the requests in flight, never `NOTAG`.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

use p9_wire::consts::NOTAG;

/// The tags in flight.
#[derive(Default)]
pub(crate) struct Tags {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    used: HashSet<u16>,
    /// Where the next search starts (round robin, so a tag is not reused
    /// right after its reply: stale replies would be easier to miss).
    next: u16,
}

impl Tags {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A free tag, now in flight.
    ///
    /// # Panics
    /// When all 65535 tags are in flight.
    pub(crate) fn alloc(&self) -> u16 {
        let mut t = self.lock();
        assert!(
            t.used.len() < usize::from(NOTAG),
            "p9-client: all 65535 tags are in flight"
        );
        loop {
            let tag = t.next;
            t.next = if tag == NOTAG - 1 { 0 } else { tag + 1 };
            if tag != NOTAG && t.used.insert(tag) {
                return tag;
            }
        }
    }

    /// Mark `tag` in flight if it is free; whether it was.
    pub(crate) fn claim(&self, tag: u16) -> bool {
        self.lock().used.insert(tag)
    }

    /// The reply for `tag` arrived (or never will).
    pub(crate) fn release(&self, tag: u16) {
        self.lock().used.remove(&tag);
    }

    /// How many tags are in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.lock().used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_notag_and_unique() {
        let t = Tags::default();
        let mut seen = HashSet::new();
        for _ in 0..NOTAG {
            let tag = t.alloc();
            assert_ne!(tag, NOTAG);
            assert!(seen.insert(tag));
        }
        assert_eq!(t.in_flight(), 65535);
        t.release(77);
        assert_eq!(t.alloc(), 77);
        assert!(!t.claim(5));
        t.release(5);
        assert!(t.claim(5));
    }
}
