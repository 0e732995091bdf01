// SPDX-License-Identifier: GPL-2.0-or-later
//! What a fid holds: its node, its user, and what it is open as (9p.c's
//! `V9fsFidState`), plus the open-handle accounting that drives reclaim.
//!
//! Locking: a fid's node and open state sit behind short `std` mutexes that
//! are never held across an offload or a suspend; a request copies out the
//! `Arc`s it needs and works on those.  An open handle is an `Arc` too: a
//! request using it holds a second reference, which is how reclaim tells an
//! idle handle (one reference: the fid's) from a busy one.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use p9_wire::errno::{Errno, ENOSPC};

/// Counters the fids update as handles and xattr fids come and go.
#[derive(Default)]
pub(crate) struct Shared {
    /// Open handles (files and directories) in existence.
    pub(crate) open_handles: AtomicUsize,
    /// Handles closed by reclaim.
    pub(crate) reclaimed: AtomicU64,
    /// Live xattr fids (10.0.13's `xattr_fid_count`).
    pub(crate) xattr_fids: AtomicU32,
}

/// An open file or directory handle, counted while it exists.
pub(crate) struct Handle<H> {
    pub(crate) h: H,
    shared: Arc<Shared>,
}

impl<H> Handle<H> {
    pub(crate) fn new(h: H, shared: &Arc<Shared>) -> Arc<Self> {
        shared.open_handles.fetch_add(1, Ordering::Relaxed);
        Arc::new(Handle {
            h,
            shared: shared.clone(),
        })
    }
}

impl<H> Drop for Handle<H> {
    fn drop(&mut self) {
        self.shared.open_handles.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A file or directory a fid has open.  `handle` is `None` after reclaim
/// closed it; the next request reopens it with `flags`.
pub(crate) struct Open<H> {
    pub(crate) handle: Option<Arc<Handle<H>>>,
    /// Linux open flags used to (re)open it (directories: unused).
    pub(crate) flags: i32,
    /// `false` when reopening could not give the same file back (O_EXCL
    /// creations, path-based nodes whose path was unlinked): never
    /// reclaimed, as 9p.c's `FID_NON_RECLAIMABLE`.
    pub(crate) reclaimable: bool,
}

/// An xattr fid (Txattrwalk's value or listing, or Txattrcreate's pending
/// value).  Holds one slot of the xattr-fid bound while it exists.
pub(crate) struct Xattr {
    /// Txattrwalk (read) rather than Txattrcreate (write).
    pub(crate) walk: bool,
    pub(crate) name: Vec<u8>,
    pub(crate) flags: u32,
    /// The value: its length is the declared size, at most 64 KiB.
    pub(crate) value: Vec<u8>,
    /// Bytes written so far (Txattrcreate).
    pub(crate) copied: u64,
    _slot: XattrSlot,
}

impl Xattr {
    pub(crate) fn new(
        walk: bool,
        name: Vec<u8>,
        flags: u32,
        value: Vec<u8>,
        slot: XattrSlot,
    ) -> Self {
        Xattr {
            walk,
            name,
            flags,
            value,
            copied: 0,
            _slot: slot,
        }
    }
}

/// One unit of the xattr-fid bound, returned when dropped.
pub(crate) struct XattrSlot(Arc<Shared>);

impl XattrSlot {
    /// Take a slot, or `ENOSPC` when `max` (0: unbounded) are taken.
    pub(crate) fn take(shared: &Arc<Shared>, max: u32) -> Result<XattrSlot, Errno> {
        let taken = shared
            .xattr_fids
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (max == 0 || n < max).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(XattrSlot(shared.clone())),
            Err(_) => Err(ENOSPC),
        }
    }
}

impl Drop for XattrSlot {
    fn drop(&mut self) {
        self.0.xattr_fids.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A request's view of an open fid.
pub(crate) struct OpenRef<H> {
    /// The handle; `None` if reclaim closed it (reopen with `flags`).
    pub(crate) handle: Option<Arc<Handle<H>>>,
    pub(crate) flags: i32,
    /// A directory rather than a file.
    pub(crate) dir: bool,
}

/// What a fid is open as.
pub(crate) enum FidState<H> {
    /// Not open.
    None,
    /// An open file.
    File(Open<H>),
    /// An open directory; `pos` is where the next 9P2000.u directory Tread
    /// continues (Treaddir carries its own offset).
    Dir(Open<H>, u64),
    /// An xattr fid.
    Xattr(Box<Xattr>),
}

impl<H> FidState<H> {
    pub(crate) fn is_none(&self) -> bool {
        matches!(self, FidState::None)
    }

    pub(crate) fn open_mut(&mut self) -> Option<&mut Open<H>> {
        match self {
            FidState::File(o) | FidState::Dir(o, _) => Some(o),
            _ => None,
        }
    }
}

/// A fid.
pub(crate) struct Fid<N, H> {
    /// The user the fid acts for (Tattach's `n_uname`).
    pub(crate) uid: u32,
    node: Mutex<Arc<N>>,
    state: Mutex<FidState<H>>,
    /// Used since the last reclaim pass (9p.c's `FID_REFERENCED`: a second
    /// chance before its handle is closed).
    referenced: AtomicBool,
}

impl<N, H> Fid<N, H> {
    pub(crate) fn new(uid: u32, node: Arc<N>, state: FidState<H>) -> Self {
        Fid {
            uid,
            node: Mutex::new(node),
            state: Mutex::new(state),
            referenced: AtomicBool::new(true),
        }
    }

    /// The node, for this request.
    pub(crate) fn node(&self) -> Arc<N> {
        self.referenced.store(true, Ordering::Relaxed);
        lock(&self.node).clone()
    }

    /// The node, without marking the fid used (bookkeeping passes over
    /// every fid must not count as use for reclaim).
    pub(crate) fn peek_node(&self) -> Arc<N> {
        lock(&self.node).clone()
    }

    /// Replace the node (walk to itself, create, rename).
    pub(crate) fn set_node(&self, node: Arc<N>) -> Arc<N> {
        std::mem::replace(&mut *lock(&self.node), node)
    }

    /// The open state, locked briefly (never across an offload).
    pub(crate) fn state(&self) -> MutexGuard<'_, FidState<H>> {
        lock(&self.state)
    }

    /// What the fid has open; `None` if it is not an open file or
    /// directory.
    pub(crate) fn handle(&self) -> Option<OpenRef<H>> {
        self.referenced.store(true, Ordering::Relaxed);
        let st = self.state();
        let (o, dir) = match &*st {
            FidState::File(o) => (o, false),
            FidState::Dir(o, _) => (o, true),
            _ => return None,
        };
        Some(OpenRef {
            handle: o.handle.clone(),
            flags: o.flags,
            dir,
        })
    }

    /// Install a reopened handle unless another request did first; returns
    /// the handle to use.
    pub(crate) fn reopened(&self, h: Arc<Handle<H>>) -> Arc<Handle<H>> {
        let mut st = self.state();
        match st.open_mut() {
            Some(o) => match &o.handle {
                Some(existing) => existing.clone(),
                None => {
                    o.handle = Some(h.clone());
                    h
                }
            },
            // Clunked meanwhile: use ours for this request, then drop it.
            None => h,
        }
    }

    /// Reclaim: take the handle if it is idle, reclaimable, and was not
    /// used since the last pass (which this call clears).
    pub(crate) fn take_idle_handle(&self) -> Option<Arc<Handle<H>>> {
        let mut st = self.state.try_lock().ok()?;
        let o = st.open_mut()?;
        if !o.reclaimable {
            return None;
        }
        let idle = o.handle.as_ref().is_some_and(|h| Arc::strong_count(h) == 1);
        if !idle {
            return None;
        }
        if self.referenced.swap(false, Ordering::Relaxed) {
            return None;
        }
        o.handle.take()
    }

    /// Mark the open handle as one reclaim must keep.
    pub(crate) fn keep_open(&self) {
        if let Some(o) = self.state().open_mut() {
            o.reclaimable = false;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the value consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_counted_until_dropped() {
        let shared = Arc::new(Shared::default());
        let h = Handle::new(1u8, &shared);
        let h2 = Handle::new(2u8, &shared);
        assert_eq!(shared.open_handles.load(Ordering::Relaxed), 2);
        drop(h);
        assert_eq!(shared.open_handles.load(Ordering::Relaxed), 1);
        drop(h2);
        assert_eq!(shared.open_handles.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn xattr_slots_are_bounded() {
        let shared = Arc::new(Shared::default());
        let a = XattrSlot::take(&shared, 2).unwrap();
        let _b = XattrSlot::take(&shared, 2).unwrap();
        assert_eq!(XattrSlot::take(&shared, 2).err(), Some(ENOSPC));
        drop(a);
        let _c = XattrSlot::take(&shared, 2).unwrap();
        // 0 means unbounded.
        let more: Vec<_> = (0..10)
            .map(|_| XattrSlot::take(&shared, 0).unwrap())
            .collect();
        assert_eq!(shared.xattr_fids.load(Ordering::Relaxed), 12);
        drop(more);
        assert_eq!(shared.xattr_fids.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn reclaim_takes_only_idle_unreferenced_handles() {
        let shared = Arc::new(Shared::default());
        let open = |h| Open {
            handle: Some(h),
            flags: 0,
            reclaimable: true,
        };
        let fid: Fid<(), u8> = Fid::new(
            0,
            Arc::new(()),
            FidState::File(open(Handle::new(1, &shared))),
        );
        // Just created: referenced, so the first pass only clears the bit.
        assert!(fid.take_idle_handle().is_none());
        // In use by a request: kept.
        let busy = fid.handle().unwrap().handle.unwrap();
        assert!(fid.take_idle_handle().is_none());
        assert!(fid.take_idle_handle().is_none());
        drop(busy);
        // Idle, but referenced by the use above; then taken.
        assert!(fid.take_idle_handle().is_none());
        let taken = fid.take_idle_handle().expect("idle handle is reclaimed");
        drop(taken);
        assert_eq!(shared.open_handles.load(Ordering::Relaxed), 0);
        assert!(fid.handle().is_some_and(|o| o.handle.is_none() && !o.dir));
        // Reopen installs once.
        let h = fid.reopened(Handle::new(2, &shared));
        let again = fid.reopened(Handle::new(3, &shared));
        assert!(Arc::ptr_eq(&h, &again));
        // Not reclaimable: never taken.
        fid.keep_open();
        drop((h, again));
        assert!(fid.take_idle_handle().is_none());
        assert!(fid.take_idle_handle().is_none());
    }
}
