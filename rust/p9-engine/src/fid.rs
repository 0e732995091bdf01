// SPDX-License-Identifier: GPL-2.0-or-later
//! The fid table, with 9p.c's lifetime rules expressed as reference counts.
//!
//! 9p.c counts the requests using a fid (`get_fid`/`put_fid`), and a clunk
//! of a fid still in use only unlinks it from the table: the fid is freed
//! (its file closed) when the last request using it finishes.  Here a fid is
//! an `Arc`: the table holds one reference, each request holding the fid
//! holds another, clunk removes the table's, and the fid's resources are
//! released by `Drop` when the last one goes.  A fid number is free again as
//! soon as it is clunked, as in 9p.c.
//!
//! Errors follow 9p.c: an unknown fid is `ENOENT` (`get_fid` failing), a
//! fid number already in use is `EINVAL` (`alloc_fid` failing).  Unlike
//! 9p.c the table is bounded, so a guest cannot grow it without limit:
//! beyond the bound, new fids get `ENFILE`.

use std::sync::{Arc, Mutex, MutexGuard};

use p9_wire::errno::{Errno, EINVAL, ENFILE, ENOENT};

use crate::hash::FastMap;

/// Default bound on live fids per server.
pub const FIDS_MAX: usize = 1 << 20;

/// Fid number → fid.
pub struct FidTable<T> {
    fids: Mutex<FastMap<u32, Arc<T>>>,
    max: usize,
}

impl<T> FidTable<T> {
    /// An empty table holding at most `max` fids.
    pub fn new(max: usize) -> Self {
        FidTable {
            fids: Mutex::new(FastMap::default()),
            max,
        }
    }

    fn lock(&self) -> MutexGuard<'_, FastMap<u32, Arc<T>>> {
        // Every critical section leaves the map consistent.
        self.fids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fid `id`, held for the caller's request.
    ///
    /// # Errors
    /// `ENOENT` if no such fid exists.
    pub fn get(&self, id: u32) -> Result<Arc<T>, Errno> {
        self.lock().get(&id).cloned().ok_or(ENOENT)
    }

    /// Add fid `id`, made by `make` only if the number is free.
    ///
    /// # Errors
    /// `EINVAL` if `id` is in use, `ENFILE` if the table is full.
    pub fn insert(&self, id: u32, make: impl FnOnce() -> T) -> Result<Arc<T>, Errno> {
        let mut fids = self.lock();
        if fids.contains_key(&id) {
            return Err(EINVAL);
        }
        if fids.len() >= self.max {
            return Err(ENFILE);
        }
        let fid = Arc::new(make());
        fids.insert(id, fid.clone());
        Ok(fid)
    }

    /// Whether fid `id` exists.
    pub fn contains(&self, id: u32) -> bool {
        self.lock().contains_key(&id)
    }

    /// Remove fid `id` (Tclunk, Tremove); requests still using it keep it
    /// alive until they finish.
    ///
    /// # Errors
    /// `ENOENT` if no such fid exists.
    pub fn remove(&self, id: u32) -> Result<Arc<T>, Errno> {
        self.lock().remove(&id).ok_or(ENOENT)
    }

    /// Remove every fid (Tversion, device reset); returned so the caller
    /// decides where the last references are dropped.
    pub fn clear(&self) -> Vec<Arc<T>> {
        self.lock().drain().map(|(_, fid)| fid).collect()
    }

    /// How many fids the table holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the table holds no fid.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Call `f` on every fid (e.g. fix paths after a rename, pick open files
    /// to reclaim); `f` runs under the table's lock and must not block.
    pub fn for_each(&self, mut f: impl FnMut(u32, &Arc<T>)) {
        for (id, fid) in self.lock().iter() {
            f(*id, fid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Tracked(Arc<AtomicUsize>);
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn unknown_and_duplicate_fids() {
        let t = FidTable::new(8);
        assert_eq!(t.get(1).err(), Some(ENOENT));
        t.insert(1, || 10).unwrap();
        assert_eq!(t.insert(1, || 11).err(), Some(EINVAL));
        assert_eq!(*t.get(1).unwrap(), 10);
        assert_eq!(t.remove(2).err(), Some(ENOENT));
    }

    #[test]
    fn clunk_while_in_use_frees_after_the_last_user() {
        let freed = Arc::new(AtomicUsize::new(0));
        let t = FidTable::new(8);
        t.insert(5, || Tracked(freed.clone())).unwrap();
        let in_flight = t.get(5).unwrap();
        drop(t.remove(5).unwrap());
        // Gone from the table, the number is reusable, but not yet freed.
        assert_eq!(t.get(5).err(), Some(ENOENT));
        assert_eq!(freed.load(Ordering::SeqCst), 0);
        t.insert(5, || Tracked(freed.clone())).unwrap();
        drop(in_flight);
        assert_eq!(freed.load(Ordering::SeqCst), 1);
        drop(t.clear());
        assert_eq!(freed.load(Ordering::SeqCst), 2);
        assert!(t.is_empty());
    }

    #[test]
    fn table_is_bounded() {
        let t = FidTable::new(3);
        for i in 0..3 {
            t.insert(i, || i).unwrap();
        }
        assert_eq!(t.insert(9, || 9).err(), Some(ENFILE));
        t.remove(0).unwrap();
        t.insert(9, || 9).unwrap();
        assert_eq!(t.len(), 3);
    }
}
