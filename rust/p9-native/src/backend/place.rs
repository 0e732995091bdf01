// SPDX-License-Identifier: GPL-2.0-or-later
//! How [`NativeBackend`] finds a node's file: walk steps (`..` as
//! recorded), the checked place of a node, and the descriptor to open an
//! unlinked file with.

use std::sync::Arc;

use p9_engine::backend::{Attr, Result};

use super::convert::attr_of;
use super::{NativeBackend, NativeNode, Place};
use crate::budget::Held;
use crate::tree::Rec;
use crate::{errno, stat, stat_at, Errno, Stat};

impl NativeBackend {
    /// Attributes of `rec`'s file, through its descriptor.
    pub(super) fn stat_of(&self, rec: &Arc<Rec>) -> Result<Stat> {
        let h = self.tree.node(rec)?;
        self.guest_stat(rec, stat(&h)?)
    }

    /// One walk step from `cur`.
    pub(super) fn step(&self, cur: &NativeNode, name: &[u8]) -> Result<(NativeNode, Attr)> {
        let rec = match name {
            b"." => Arc::clone(&cur.rec),
            // The parent as recorded, never the kernel's `..` of a
            // descriptor (which follows the directory wherever the host
            // moves it); the root's is the root.
            b".." => {
                if !cur.rec.is_dir() {
                    return Err(errno::ENOTDIR);
                }
                self.dotdot(&cur.rec)?
            }
            _ => {
                self.model.check_name(name)?;
                let (rec, st) = self.tree.lookup(&cur.rec, name)?;
                let st = self.guest_stat(&rec, st)?;
                return Ok((NativeNode { rec }, attr_of(&st)));
            }
        };
        let st = self.stat_of(&rec)?;
        Ok((NativeNode { rec }, attr_of(&st)))
    }

    /// The node's descriptor to open the file with: found at its place
    /// beneath the root now; or, when it is no longer there, the cached
    /// descriptor of a file that has no name anywhere any more (unlinked,
    /// `st_nlink` 0: only descriptors reach it, so opening it reaches
    /// nothing outside the export).
    pub(super) fn openable(&self, rec: &Arc<Rec>) -> Result<Arc<Held>> {
        match self.tree.verified(rec) {
            Err(e @ (errno::ENOENT | errno::ESTALE)) => match rec.cached() {
                Some(h) if stat(&h).is_ok_and(|st| st.nlink == 0) => Ok(h),
                _ => Err(e),
            },
            r => r,
        }
    }

    /// The directory and name of `node`'s place, checked to still hold
    /// `node`'s file (`ENOENT` if the name is gone, `ESTALE` if it is
    /// another file's now), with the directory's descriptor; `at_root`
    /// for the export root (what the kernel says for `.`: `EINVAL` to
    /// unlink, `EBUSY` to rename).  The check and the use of the name are
    /// two calls, as in QEMU.
    pub(super) fn entry_of(&self, node: &NativeNode, at_root: Errno) -> Result<Place> {
        let Some((dir, name)) = node.rec.entry()? else {
            return Err(at_root);
        };
        // The file itself, held across the check.
        let _own = self.tree.node(&node.rec)?;
        let d = self.tree.verified(&dir)?;
        let cur = stat_at(&*d, &name)?;
        if !node.rec.is(&cur) {
            return Err(errno::ESTALE);
        }
        Ok(Place {
            dir,
            name,
            fd: d,
            st: cur,
        })
    }

    /// `..` of the directory `rec` as `Treaddir` reports it: the recorded
    /// parent (the root's is the root).
    pub(super) fn dotdot(&self, rec: &Arc<Rec>) -> crate::Result<Arc<Rec>> {
        Ok(match rec.entry()? {
            None => Arc::clone(rec),
            Some((parent, _)) => parent,
        })
    }
}
