// SPDX-License-Identifier: GPL-2.0-or-later
//! The hooks of [`NativeBackend`] for the mapped security models
//! (`crate::mapped` has the on-disk format): what the guest sees of a
//! file's owner, mode and device number, `Tsetattr`, and `mapped-file`'s
//! metadata following links, renames and removals.  Each hook costs
//! nothing in the `passthrough` and `none` models.
//!
//! Metadata is only reached from directories found at their place beneath
//! the export root (`Tree::verified`), or from descriptors the backend
//! already holds of the very file concerned.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use p9_engine::backend::{Attr, Result, SetAttr};

use super::convert::{attr_of, set_attrs};
use super::handle::{HandleKind, NativeHandle};
use super::{NativeBackend, NativeNode};
use crate::errno;
use crate::mapped::{self, Cred};
use crate::tree::Rec;
use crate::{ftruncate, renameat, stat, truncate, unlinkat, Node, SecurityModel, Stat};

impl NativeBackend {
    /// `st` of `rec`'s file as the guest sees it: overlaid with the
    /// credentials the model keeps (QEMU's `local_lstat`).  Fails only
    /// for want of descriptors or memory.
    pub(super) fn guest_stat(&self, rec: &Arc<Rec>, st: Stat) -> crate::Result<Stat> {
        match self.model {
            SecurityModel::Passthrough | SecurityModel::None => Ok(st),
            SecurityModel::MappedXattr => {
                let h = self.tree.node(rec)?;
                let mut st = st;
                mapped::overlay_xattr(h.as_fd(), &mut st);
                Ok(st)
            }
            SecurityModel::MappedFile => self.file_overlay(rec, st),
        }
    }

    /// As [`Self::guest_stat`] for `st` from the open descriptor `fd` of
    /// `rec`'s file (QEMU's `local_fstat`; `mapped-xattr` reads the
    /// attributes through `fd`, so an open-but-unlinked file keeps them).
    pub(super) fn guest_fstat(
        &self,
        rec: &Arc<Rec>,
        fd: BorrowedFd<'_>,
        st: Stat,
    ) -> crate::Result<Stat> {
        match self.model {
            SecurityModel::Passthrough | SecurityModel::None => Ok(st),
            SecurityModel::MappedXattr => {
                let mut st = st;
                mapped::overlay_xattr(fd, &mut st);
                Ok(st)
            }
            // QEMU's local_fstat fails with EOPNOTSUPP here, and
            // v9fs_co_fstat then takes lstat of the fid's path, or the
            // host's fstat if that is gone: the metadata at the file's
            // place, if any.
            SecurityModel::MappedFile => self.file_overlay(rec, st),
        }
    }

    /// As [`Self::guest_stat`] for the entry `name` of the directory `rec`
    /// (`here`, found at its place) that `Treaddir` stat'ed through the
    /// open directory `dirfd`.
    pub(super) fn entry_stat(
        &self,
        rec: &Arc<Rec>,
        here: &Node,
        dirfd: BorrowedFd<'_>,
        name: &[u8],
        st: Stat,
    ) -> crate::Result<Stat> {
        let mut st = st;
        match self.model {
            SecurityModel::Passthrough | SecurityModel::None => {}
            SecurityModel::MappedXattr => mapped::overlay_xattr_at(dirfd, name, &mut st),
            SecurityModel::MappedFile if name == b"." => return self.file_overlay(rec, st),
            SecurityModel::MappedFile => mapped::overlay_file(here, name, &mut st)?,
        }
        Ok(st)
    }

    /// As [`Self::guest_stat`] for `st` of the entry `name` just made in
    /// the directory `d` (found at its place), `node` being its file.
    pub(super) fn new_stat(
        &self,
        d: &Node,
        name: &[u8],
        node: &Node,
        st: Stat,
    ) -> crate::Result<Stat> {
        let mut st = st;
        match self.model {
            SecurityModel::Passthrough | SecurityModel::None => {}
            SecurityModel::MappedXattr => mapped::overlay_xattr(node.as_fd(), &mut st),
            SecurityModel::MappedFile => mapped::overlay_file(d, name, &mut st)?,
        }
        Ok(st)
    }

    /// The attributes of the entry `name` just made in the directory `d`,
    /// `node` being its file, as [`Self::new_stat`] has them.
    pub(super) fn new_attr(&self, d: &Node, name: &[u8], node: &Node) -> Result<Attr> {
        let st = stat(node)?;
        Ok(attr_of(&self.new_stat(d, name, node, st)?))
    }

    /// `mapped-file`'s overlay of `rec`'s file: the metadata at its place
    /// (none if the place cannot be reached: a file the host moved or
    /// removed, as 9p.c's fallback to `fstat`).
    fn file_overlay(&self, rec: &Arc<Rec>, st: Stat) -> crate::Result<Stat> {
        let mut st = st;
        let (dir, name) = match rec.entry() {
            Ok(None) => (Arc::clone(self.tree.root()), Arc::from(&b"."[..])),
            Ok(Some(e)) => e,
            Err(_) => return Ok(st),
        };
        match self.tree.verified(&dir) {
            Ok(d) => mapped::overlay_file(&d, &name, &mut st)?,
            Err(e @ (errno::EMFILE | errno::ENFILE | errno::ENOMEM)) => return Err(e),
            Err(_) => {}
        }
        Ok(st)
    }

    /// `Tsetattr` in the mapped models: size as in passthrough, owner and
    /// mode stored as the model keeps them (QEMU's `local_chown` and
    /// `local_chmod`: the guest's mode value as it comes), times on the
    /// host file (and `chown(-1, -1)` there for an owner change naming
    /// neither, as QEMU).
    pub(super) fn setattr_mapped(
        &self,
        node: &NativeNode,
        handle: Option<&NativeHandle>,
        set: &SetAttr,
    ) -> Result<()> {
        let held = match handle {
            Some(_) => None,
            None => Some(self.tree.node(&node.rec)?),
        };
        if let Some(size) = set.size {
            match (handle, &held) {
                (Some(h), _) => match &h.kind {
                    HandleKind::File(fd) => ftruncate(fd, size)?,
                    HandleKind::Dir(_) => return Err(errno::EISDIR),
                },
                (None, Some(n)) => truncate(n, size)?,
                (None, None) => {}
            }
        }
        let cred = Cred::new(set.uid, set.gid, set.mode, None);
        if cred != Cred::default() {
            match self.model {
                SecurityModel::MappedXattr => match (handle, &held) {
                    (Some(h), _) => h.with_fd(|fd| mapped::set_xattr_cred(fd, &cred))?,
                    (None, Some(n)) => mapped::set_xattr_cred(n.as_fd(), &cred)?,
                    (None, None) => {}
                },
                _ => {
                    let (dir, name) = match node.rec.entry()? {
                        None => (Arc::clone(self.tree.root()), Arc::from(&b"."[..])),
                        Some(e) => e,
                    };
                    let d = self.tree.verified(&dir)?;
                    mapped::set_file_cred(&d, &name, &cred)?;
                }
            }
        }
        // QEMU's local_chown with uid and gid both -1 (Tsetattr of ctime
        // alone) calls fchownat(-1, -1) on the host file in every model.
        let host_owner =
            (set.uid.is_some() || set.gid.is_some()) && cred.uid.is_none() && cred.gid.is_none();
        let times = SetAttr {
            uid: host_owner.then_some(u32::MAX),
            gid: host_owner.then_some(u32::MAX),
            mode: None,
            size: None,
            ..*set
        };
        match (handle, &held) {
            (Some(h), _) => h.with_fd(|fd| set_attrs(fd, &times)),
            (None, Some(n)) => set_attrs(n.as_fd(), &times),
            (None, None) => Ok(()),
        }
    }

    /// After `Tlink` made `name` in `d` for `target`: `mapped-file`'s
    /// metadata linked along (QEMU's `local_link`), else the link undone.
    pub(super) fn linked_meta(&self, target: &NativeNode, d: &Node, name: &[u8]) -> Result<()> {
        if self.model != SecurityModel::MappedFile {
            return Ok(());
        }
        let r = match target.rec.entry() {
            Ok(Some((odir, oname))) => self
                .tree
                .verified(&odir)
                .and_then(|o| mapped::link_meta(&o, &oname, d, name)),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if r.is_err() {
            let _ = unlinkat(d, name, false);
        }
        r
    }

    /// After renaming `oldname` in `o` to `newname` in `n`: `mapped-file`'s
    /// metadata renamed along (QEMU's `local_renameat`), else the rename
    /// undone.
    pub(super) fn renamed_meta(
        &self,
        o: &Node,
        oldname: &[u8],
        n: &Node,
        newname: &[u8],
    ) -> Result<()> {
        if self.model != SecurityModel::MappedFile {
            return Ok(());
        }
        let r = mapped::rename_meta(o, oldname, n, newname);
        if r.is_err() {
            let _ = renameat(n, newname, o, oldname);
        }
        r
    }

    /// Before removing `name` from `d`: in `mapped-file`, the directory's
    /// own (empty) metadata directory (QEMU's `local_unlinkat_common`).
    pub(super) fn unlinking_meta(&self, d: &Node, name: &[u8], is_dir: bool) -> Result<()> {
        if self.model == SecurityModel::MappedFile && is_dir {
            mapped::unlink_dir_meta(d, name)?;
        }
        Ok(())
    }

    /// After removing `name` from `d`: in `mapped-file`, its metadata file
    /// (best effort: the entry is gone already; QEMU removes it just
    /// before).
    pub(super) fn unlinked_meta(&self, d: &Node, name: &[u8]) {
        if self.model == SecurityModel::MappedFile {
            let _ = mapped::unlink_meta(d, name);
        }
    }
}
