// SPDX-License-Identifier: GPL-2.0-or-later
//! [`NativeBackend`]: the engine's [`Backend`] on top of this crate's
//! descriptor-based layer, the counterpart of QEMU's `hw/9pfs/9p-local.c`
//! with any of its security models ([`SecurityModel`]; the mapped ones'
//! hooks are in the child module `mapped`).
//!
//! * A fid's node is a [`NativeNode`]: a record of the backend's tree (see
//!   `crate::tree`): the file's identity (`st_dev`, `st_ino`, and its file
//!   handle once needed), its place (parent record and name, kept in step
//!   with renames made through the backend), and its `O_PATH` descriptor
//!   as a cache.  Clones and fids of the same place share the record and
//!   the descriptor; an `O_PATH` descriptor carries no state (no position,
//!   no locks), so sharing it is invisible.
//! * Descriptors are a budget (`crate::budget`): beyond it, idle nodes
//!   give theirs back and are found again at their place when used.
//! * Nothing outside the export is reached: names are looked up from the
//!   export root's descriptor along the directory's place
//!   (`openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, or one
//!   `openat(O_NOFOLLOW)` per component), `..` is the recorded parent, and
//!   opening, listing and using a directory check that the file is still
//!   at its place beneath the root.  A directory the host moves out of
//!   the export is therefore no way out: walks from it find nothing
//!   (`ENOENT`), opening or listing it fails, `..` leads back to its
//!   recorded parent inside the export.
//! * An open fid is a [`NativeHandle`]: a file descriptor, or a directory
//!   reader for `Treaddir`.
//!
//! Errors are the layer's raw Linux errnos, passed to the guest unchanged.
//!
//! The child modules: `place` finds a node's file (walk steps, checked
//! places), `handle` holds open fids, `readdir` lists directories,
//! `convert` translates the engine's types, `mapped` has the mapped
//! models' hooks.

mod convert;
mod handle;
mod mapped;
mod place;
mod readdir;

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;

use p9_engine::backend::{Attr, Backend, Cred, DirEntry, Lock, LockStatus, Result, SetAttr};
use p9_wire::consts::lock_type;
use p9_wire::types::StatFs as WireStatFs;

use convert::{attr_of, lock_kind, set_attrs};
pub use handle::NativeHandle;
use handle::{DirState, HandleKind};

use crate::budget::{HandleToken, Held};
use crate::errno;
use crate::open::{create_file_stat, open_known};
use crate::tree::{Rec, Tree};
use crate::{
    fsync, ftruncate, generation, getlk, link, mkdir, mknod, pread, pwrite, renameat, setlk, stat,
    statfs, truncate, unlinkat, DirReader, HostModes, LockType, NewEntry, Node, SecurityModel,
    Stat,
};

/// A file of the export as the engine holds it (one per fid): its record
/// in the backend's tree (see the module documentation).  Cloning shares
/// the record, and with it the cached descriptor.
#[derive(Clone, Debug)]
pub struct NativeNode {
    rec: Arc<Rec>,
}

/// A node's place, checked by [`NativeBackend::entry_of`].
struct Place {
    /// The directory's record.
    dir: Arc<Rec>,
    /// The entry's name.
    name: Arc<[u8]>,
    /// The directory, found at its place.
    fd: Arc<Held>,
    /// The entry's attributes (the node's file).
    st: Stat,
}

/// The default bound on fids per session ([`Backend::fids_max`]) of a
/// [`NativeBackend`]: a fid costs no descriptor beyond the budget, but a
/// few hundred bytes of memory (its record and the engine's fid), so
/// 65536 fids are about 20 MiB per session.
pub const FIDS_MAX_DEFAULT: usize = 1 << 16;

/// The 9P backend serving one host directory with QEMU's `local` semantics,
/// fd-based and escape-proof (see the crate documentation).
#[derive(Debug)]
pub struct NativeBackend {
    tree: Tree,
    model: SecurityModel,
    /// The export's file system keeps inode generations that
    /// `FS_IOC_GETVERSION` reports (QEMU's `local_ioc_getversion_init`
    /// decides the same once, from the root's file system type); on the
    /// others asking would cost an open per Tgetattr `P9_STATS_GEN` for
    /// nothing.
    generations: bool,
    fids_max: Option<usize>,
    /// What the mapped models create on the host with.
    host_modes: HostModes,
}

/// File systems with `FS_IOC_GETVERSION`: ext2/3/4, btrfs, reiserfs, xfs
/// (the list of QEMU's `local_ioc_getversion_init`).
fn has_generations(fs_type: u32) -> bool {
    matches!(fs_type, 0xEF53 | 0x9123_683E | 0x5265_4973 | 0x5846_5342)
}

impl NativeBackend {
    /// Serves the directory `root` (host configuration, resolved normally)
    /// with the security model `model`.
    ///
    /// # Errors
    ///
    /// Those of [`Node::open_root`] (`ENOENT`, `ENOTDIR`, `EACCES`, `EINVAL`
    /// for a NUL byte) and of [`stat`].
    pub fn new(root: &Path, model: SecurityModel) -> crate::Result<NativeBackend> {
        let node = Node::open_root(root)?;
        let generations = has_generations(statfs(&node)?.typ);
        Ok(NativeBackend {
            tree: Tree::new(node)?,
            model,
            generations,
            fids_max: Some(FIDS_MAX_DEFAULT),
            host_modes: HostModes::default(),
        })
    }

    /// The host permission bits the mapped models create files and
    /// directories with (QEMU's `fmode` and `dmode`; 0600 and 0700 unless
    /// set here); the other models ignore them.
    #[must_use]
    pub fn with_host_modes(mut self, modes: HostModes) -> NativeBackend {
        self.host_modes = modes;
        self
    }

    /// The security model in use.
    #[must_use]
    pub fn model(&self) -> SecurityModel {
        self.model
    }

    /// Finds files with the per-component `openat` walk (as on a kernel
    /// without `openat2`, or where a seccomp filter refuses it) even where
    /// `openat2` works: for tests of that path, which must be just as
    /// escape-proof.  A test hook: only with the cargo feature
    /// `test-hooks`.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn force_openat_fallback(&mut self, on: bool) {
        self.tree.fallback = on;
    }

    /// Bounds the fids of a session over this backend to `max` (`None`: no
    /// bound of the backend's own; the engine's `Config::fids_max` still
    /// applies).  The default is [`FIDS_MAX_DEFAULT`].
    pub fn set_fids_max(&mut self, max: Option<usize>) {
        self.fids_max = max;
    }

    /// Gives back the `O_PATH` descriptor of every node of this backend
    /// that no request is using, as budget pressure
    /// does to the least recently used ones (they are found again by their
    /// place when next used); returns how many.  For tests, and for hosts
    /// that want to shed descriptors.
    pub fn give_back_idle(&self) -> usize {
        self.tree.give_back_idle()
    }
}

impl Backend for NativeBackend {
    type Node = NativeNode;
    type Handle = NativeHandle;

    /// The export root; `aname` is ignored (one export per backend, as
    /// QEMU's local backend).
    fn attach(&self, _aname: &[u8], _cred: &Cred) -> Result<(NativeNode, Attr)> {
        let node = NativeNode {
            rec: Arc::clone(self.tree.root()),
        };
        let attr = self.getattr(&node)?;
        Ok((node, attr))
    }

    /// Each name is looked up from the export root along the directory's
    /// place; `..` is the recorded parent.
    fn walk(&self, dir: &NativeNode, names: &[&[u8]]) -> Result<Vec<(NativeNode, Attr)>> {
        let mut out: Vec<(NativeNode, Attr)> = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let cur = match out.last() {
                Some((n, _)) => n,
                None => dir,
            };
            match self.step(cur, name) {
                Ok(s) => out.push(s),
                Err(e) if i == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(out)
    }

    fn clone_node(&self, node: &NativeNode) -> Result<NativeNode> {
        Ok(node.clone())
    }

    /// `stat` of the node's descriptor (found again at its place if it
    /// was given back).
    fn getattr(&self, node: &NativeNode) -> Result<Attr> {
        Ok(attr_of(&self.stat_of(&node.rec)?))
    }

    /// `stat` of the open handle's descriptor (works for open-but-unlinked
    /// files, as 9p.c's `fstat`).
    fn fstat(&self, _node: &NativeNode, handle: &NativeHandle) -> Result<Attr> {
        let st = handle.with_fd(|fd| self.guest_fstat(&handle.rec, fd, stat(fd)?))?;
        Ok(attr_of(&st))
    }

    /// QEMU's `local_ioc_getversion`: where the export's file system keeps
    /// generations, [`generation`] (which opens the file to ask); special
    /// files are never opened and fail with `ENOTTY`, so that Tgetattr
    /// leaves `P9_STATS_GEN` out for them, as 9p.c does.  On other file
    /// systems 0, as QEMU without the hook.
    fn generation(&self, node: &NativeNode, attr: &Attr) -> Result<u64> {
        if !self.generations {
            return Ok(0);
        }
        match attr.mode & libc::S_IFMT {
            libc::S_IFREG | libc::S_IFDIR => generation(&*self.tree.node(&node.rec)?),
            _ => Err(errno::ENOTTY),
        }
    }

    /// Applies, through the open handle's descriptor when there is one (so
    /// open-but-unlinked files work), else through the node's, in this
    /// order: size (`ftruncate` of an open file, else by opening the node
    /// write-only, as QEMU's `local_truncate`), owner, mode, times.
    /// (QEMU's order is mode, times, owner, size; here the owner change
    /// comes before `chmod` so that requested set-id bits survive it, and
    /// times come last so that requested times are not overwritten by the
    /// truncation.)  The first failure is returned; earlier changes stay.
    /// A failing `chown` fails the request in both security models, as in
    /// QEMU's `local_chown` (the `none` model only ignores it when
    /// creating files).
    fn setattr(
        &self,
        node: &NativeNode,
        handle: Option<&NativeHandle>,
        set: &SetAttr,
    ) -> Result<()> {
        if self.model.is_mapped() {
            return self.setattr_mapped(node, handle, set);
        }
        let Some(h) = handle else {
            let n = self.tree.node(&node.rec)?;
            if let Some(size) = set.size {
                truncate(&n, size)?;
            }
            return set_attrs(n.as_fd(), set);
        };
        if let Some(size) = set.size {
            match &h.kind {
                HandleKind::File(fd) => ftruncate(fd, size)?,
                HandleKind::Dir(_) => return Err(errno::EISDIR),
            }
        }
        h.with_fd(|fd| set_attrs(fd, set))
    }

    /// Opens with [`open`](crate::open()) (flags sanitised; special files `ENXIO`,
    /// symbolic links `ELOOP`) the file found at the node's place beneath
    /// the export root (`ENOENT` if it is no longer there, `ESTALE` if
    /// another file is; an unlinked file, which has no place anywhere, is
    /// opened through the node's descriptor).  A directory gives a
    /// directory handle, so that `Tlopen` then `Treaddir` works whichever
    /// call the engine uses.  `EMFILE` when the descriptor budget is used
    /// up and this backend holds its share of open handles.
    fn open(&self, node: &NativeNode, flags: i32) -> Result<NativeHandle> {
        let held = self.openable(&node.rec)?;
        let token = HandleToken::take(self.tree.account())?;
        // The record knows its file's type and identity (the descriptor
        // is that file: `openable` checked).
        let rec = &node.rec;
        let fd = open_known(&held, rec.kind(), rec.dev(), rec.ino(), flags)?;
        let kind = if rec.is_dir() {
            HandleKind::Dir(DirState::new(DirReader::from_fd(fd)))
        } else {
            HandleKind::File(fd)
        };
        Ok(NativeHandle::new(kind, &node.rec, token))
    }

    /// As [`Backend::open`], for reading a directory.
    fn opendir(&self, node: &NativeNode) -> Result<NativeHandle> {
        let held = self.openable(&node.rec)?;
        let token = HandleToken::take(self.tree.account())?;
        let rec = &node.rec;
        let fd = open_known(
            &held,
            rec.kind(),
            rec.dev(),
            rec.ino(),
            libc::O_RDONLY | libc::O_DIRECTORY,
        )?;
        let reader = DirReader::from_fd(fd);
        Ok(NativeHandle::new(
            HandleKind::Dir(DirState::new(reader)),
            &node.rec,
            token,
        ))
    }

    /// [`create_file`](crate::create_file) in the directory found at its place beneath the
    /// root, then [`SecurityModel::finish_create`] with the request's
    /// uid/gid and `mode` (which removes the file again if that fails).
    fn create(
        &self,
        dir: &NativeNode,
        name: &[u8],
        flags: i32,
        mode: u32,
        cred: &Cred,
    ) -> Result<(NativeNode, NativeHandle, Attr)> {
        self.model.check_name(name)?;
        let d = self.tree.verified(&dir.rec)?;
        let token = HandleToken::take(self.tree.account())?;
        let host_mode = self.model.host_file_mode(mode & 0o7777, self.host_modes);
        let (node, fd, mut st) = create_file_stat(&d, name, flags, host_mode)?;
        let entry = NewEntry {
            dir: &d,
            name,
            node: &node,
        };
        let mode = (mode & 0o7777) | libc::S_IFREG;
        let cur = (st.mode, st.uid, st.gid);
        let chowned = self
            .model
            .finish_create_known(entry, cur, cred.uid, cred.gid, mode, None)?;
        // What the owner and mode change did, without asking again (the
        // identity, type, size and times the qid is made of are the same);
        // the mapped models left the host file alone and overlay theirs.
        if !self.model.is_mapped() {
            if chowned {
                if cred.uid != u32::MAX {
                    st.uid = cred.uid;
                }
                if cred.gid != u32::MAX {
                    st.gid = cred.gid;
                }
            }
            st.mode = mode;
        }
        let guest = self.new_stat(&d, name, &node, st)?;
        let (rec, _) = self.tree.adopt(&dir.rec, name, Held::new(node), &st);
        let handle = NativeHandle::new(HandleKind::File(fd), &rec, token);
        Ok((NativeNode { rec }, handle, attr_of(&guest)))
    }

    fn mkdir(&self, dir: &NativeNode, name: &[u8], mode: u32, cred: &Cred) -> Result<Attr> {
        self.model.check_name(name)?;
        let d = self.tree.verified(&dir.rec)?;
        let node = mkdir(
            &d,
            name,
            self.model.host_dir_mode(mode & 0o7777, self.host_modes),
        )?;
        let mode = mode | libc::S_IFDIR;
        self.model
            .finish_create(&d, name, &node, cred.uid, cred.gid, mode)?;
        self.new_attr(&d, name, &node)
    }

    fn symlink(&self, dir: &NativeNode, name: &[u8], target: &[u8], cred: &Cred) -> Result<Attr> {
        self.model.check_name(name)?;
        let d = self.tree.verified(&dir.rec)?;
        let node = self.model.symlink(&d, name, target, self.host_modes)?;
        let mode = 0o777 | libc::S_IFLNK;
        self.model
            .finish_create(&d, name, &node, cred.uid, cred.gid, mode)?;
        self.new_attr(&d, name, &node)
    }

    fn mknod(
        &self,
        dir: &NativeNode,
        name: &[u8],
        mode: u32,
        rdev: u64,
        cred: &Cred,
    ) -> Result<Attr> {
        self.model.check_name(name)?;
        let d = self.tree.verified(&dir.rec)?;
        let (host_mode, host_rdev) = self.model.host_mknod(mode, rdev, self.host_modes);
        let node = mknod(&d, name, host_mode, host_rdev)?;
        let entry = NewEntry {
            dir: &d,
            name,
            node: &node,
        };
        self.model
            .finish_create_dev(entry, cred.uid, cred.gid, mode, Some(rdev))?;
        self.new_attr(&d, name, &node)
    }

    /// Links the file found at `target`'s place (so a file the host moved
    /// out of the export is not brought back in) into the directory.
    fn link(&self, target: &NativeNode, dir: &NativeNode, name: &[u8]) -> Result<()> {
        self.model.check_name(name)?;
        let t = self.tree.verified(&target.rec)?;
        let d = self.tree.verified(&dir.rec)?;
        link(&t, &d, name)?;
        self.linked_meta(target, &d, name)
    }

    fn readlink(&self, node: &NativeNode) -> Result<Vec<u8>> {
        let n = self.tree.node(&node.rec)?;
        self.model.readlink(&n)
    }

    /// Renames between the directories found at their places, then moves
    /// the record of the renamed entry (so every fid at or under it
    /// follows).
    fn rename(
        &self,
        olddir: &NativeNode,
        oldname: &[u8],
        newdir: &NativeNode,
        newname: &[u8],
    ) -> Result<()> {
        self.model.check_name(oldname)?;
        self.model.check_name(newname)?;
        let o = self.tree.verified(&olddir.rec)?;
        let n = if Arc::ptr_eq(&olddir.rec, &newdir.rec) {
            Arc::clone(&o)
        } else {
            self.tree.verified(&newdir.rec)?
        };
        renameat(&o, oldname, &n, newname)?;
        self.renamed_meta(&o, oldname, &n, newname)?;
        self.tree.moved(&olddir.rec, oldname, &newdir.rec, newname);
        Ok(())
    }

    /// Renames the entry the node was reached by, checked like
    /// [`Backend::remove`] (`ENOENT`, `ESTALE`, `EBUSY` for the root); the
    /// fid keeps its node, whose record moves.
    fn rename_node(
        &self,
        node: &NativeNode,
        newdir: Option<&NativeNode>,
        newname: &[u8],
    ) -> Result<NativeNode> {
        self.model.check_name(newname)?;
        let Place {
            dir, name, fd: d, ..
        } = self.entry_of(node, errno::EBUSY)?;
        let (newdir, n) = match newdir {
            Some(nd) if !Arc::ptr_eq(&nd.rec, &dir) => {
                (Arc::clone(&nd.rec), self.tree.verified(&nd.rec)?)
            }
            _ => (Arc::clone(&dir), Arc::clone(&d)),
        };
        renameat(&d, &name, &n, newname)?;
        self.renamed_meta(&d, &name, &n, newname)?;
        self.tree.moved(&dir, &name, &newdir, newname);
        Ok(node.clone())
    }

    /// The name of the node's place; `.` for the export root (9p.c: the
    /// base name of the root path).
    fn name(&self, node: &NativeNode) -> Result<Vec<u8>> {
        Ok(node
            .rec
            .name()
            .map_or_else(|| b".".to_vec(), |n| n.to_vec()))
    }

    fn unlink(&self, dir: &NativeNode, name: &[u8], rmdir: bool) -> Result<()> {
        self.model.check_name(name)?;
        let d = self.tree.verified(&dir.rec)?;
        self.unlinking_meta(&d, name, rmdir)?;
        unlinkat(&d, name, rmdir)?;
        self.unlinked_meta(&d, name);
        self.tree.removed(&dir.rec, name);
        Ok(())
    }

    /// Unlinks the node's place, after checking that the name still
    /// refers to this file: `ENOENT` if the name is gone, `ESTALE` if it
    /// now names another file (e.g. the file was renamed and replaced).
    /// The check and the unlink are two calls, as in QEMU.  The export
    /// root gives `EINVAL` (QEMU: `unlinkat(".")`).
    fn remove(&self, node: &NativeNode) -> Result<()> {
        let Place {
            dir,
            name,
            fd: d,
            st,
        } = self.entry_of(node, errno::EINVAL)?;
        self.unlinking_meta(&d, &name, st.is_dir())?;
        unlinkat(&d, &name, st.is_dir())?;
        self.unlinked_meta(&d, &name);
        self.tree.removed(&dir, &name);
        Ok(())
    }

    /// `EISDIR` on a directory handle (what `read(2)` of a directory says).
    fn read(
        &self,
        handle: &NativeHandle,
        offset: u64,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Result<usize> {
        pread(handle.file()?, bufs, offset)
    }

    /// `EISDIR` on a directory handle.
    fn write(&self, handle: &NativeHandle, offset: u64, bufs: &[IoSlice<'_>]) -> Result<usize> {
        pwrite(handle.file()?, bufs, offset)
    }

    /// Works on file and directory handles.
    fn fsync(&self, handle: &NativeHandle, datasync: bool) -> Result<()> {
        handle.with_fd(|fd| fsync(fd, datasync))
    }

    /// Checks first that the directory is still at its place beneath the
    /// export root (`ENOENT`/`ESTALE` otherwise: a directory the host
    /// moved away is not listed), then seeks to `offset` and passes
    /// entries to `sink`; every call seeks, so a refused entry comes again
    /// with the next call at the last accepted entry's `next`.  With
    /// `want_attr`, entries are stat'ed by name without following links
    /// and those that vanished meanwhile are skipped; `..` reports the
    /// recorded parent (the export root's: the root itself), never the
    /// host directory above.  An error after some entries were accepted
    /// ends the call successfully (the guest gets them and meets the error
    /// at its next call); `EBADF` on a file handle.
    fn readdir(
        &self,
        _dir: &NativeNode,
        handle: &NativeHandle,
        offset: u64,
        want_attr: bool,
        sink: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<()> {
        self.read_dir(handle, offset, want_attr, sink)
    }

    fn statfs(&self, node: &NativeNode) -> Result<WireStatFs> {
        statfs(&*self.tree.node(&node.rec)?)
    }

    /// Through [`SecurityModel::getxattr`] (`EOPNOTSUPP` for namespaces the
    /// model does not pass through).
    fn getxattr(&self, node: &NativeNode, name: &[u8], buf: &mut [u8]) -> Result<usize> {
        let n = self.tree.node(&node.rec)?;
        self.model.getxattr(&n, name, buf)
    }

    /// Through [`SecurityModel::listxattr`]: only the names the model
    /// passes through.
    fn listxattr(&self, node: &NativeNode, buf: &mut [u8]) -> Result<usize> {
        let n = self.tree.node(&node.rec)?;
        self.model.listxattr(&n, buf)
    }

    /// Through [`SecurityModel::setxattr`]; `flags` above `i32::MAX` are
    /// `EINVAL`.
    fn setxattr(&self, node: &NativeNode, name: &[u8], value: &[u8], flags: u32) -> Result<()> {
        let flags = i32::try_from(flags).map_err(|_| errno::EINVAL)?;
        let n = self.tree.node(&node.rec)?;
        self.model.setxattr(&n, name, value, flags)
    }

    /// Through [`SecurityModel::removexattr`].
    fn removexattr(&self, node: &NativeNode, name: &[u8]) -> Result<()> {
        let n = self.tree.node(&node.rec)?;
        self.model.removexattr(&n, name)
    }

    /// An open file description lock ([`setlk`]) on the handle's
    /// descriptor: a conflict is [`LockStatus::Blocked`].  `EINVAL` for an
    /// unknown lock type or a range above `i64::MAX`; `EBADF` for a read
    /// lock on a handle not open for reading or a write lock on one not
    /// open for writing.
    fn lock(&self, handle: &NativeHandle, lock: &Lock) -> Result<LockStatus> {
        let typ = lock_kind(lock.typ)?;
        match handle.with_fd(|fd| setlk(fd, typ, lock.start, lock.length)) {
            Ok(()) => Ok(LockStatus::Success),
            Err(errno::EAGAIN) => Ok(LockStatus::Blocked),
            Err(e) => Err(e),
        }
    }

    /// Yes: the backend writes as the server's user, so a write by an
    /// unprivileged guest user would otherwise keep set-id bits a local
    /// file system clears (in the mapped models the bits are the stored
    /// mode's, which the engine's `setattr` changes).
    fn clears_set_id_on_write(&self) -> bool {
        true
    }

    /// [`getlk`] on the handle's descriptor; the conflicting lock's
    /// `proc_id` is the kernel's `l_pid` (-1, i.e. `u32::MAX`, for an open
    /// file description lock).  An unlock request tests as a write lock.
    fn getlock(&self, handle: &NativeHandle, lock: &Lock) -> Result<Option<Lock>> {
        // Linux's client asks with type UNLCK: its F_GETLK first tests its
        // own lock table, which resets the type when nothing conflicts
        // there.  Test such a request as a write lock, so that any lock
        // another owner holds on the range (a host process's included) is
        // reported, rather than answering "unlocked" to every Linux guest.
        let typ = match lock_kind(lock.typ)? {
            LockType::Unlock => LockType::Write,
            typ => typ,
        };
        let c = handle.with_fd(|fd| getlk(fd, typ, lock.start, lock.length))?;
        Ok(c.map(|c| Lock {
            typ: match c.typ {
                LockType::Read => lock_type::RDLCK,
                LockType::Write => lock_type::WRLCK,
                LockType::Unlock => lock_type::UNLCK,
            },
            start: c.start,
            length: c.len,
            proc_id: c.pid as u32,
        }))
    }

    /// Nodes are found by their place (the descriptor is a cache), so the
    /// engine must keep a rename and the record update that follows it
    /// atomic for the session's other requests: yes.  The records follow
    /// renames made through the backend by themselves, so
    /// [`Backend::renamed`] keeps its default.
    fn nodes_are_paths(&self) -> bool {
        true
    }

    /// Whether `node`'s place is `name` in `dir` (the engine then never
    /// reclaims an open handle of it when `name` is unlinked: a reopen by
    /// place would fail).
    fn is_entry(&self, node: &NativeNode, dir: &NativeNode, name: &[u8]) -> bool {
        node.rec.is_entry_of(&dir.rec, name)
    }

    /// [`NativeBackend::set_fids_max`], [`FIDS_MAX_DEFAULT`] by default.
    fn fids_max(&self) -> Option<usize> {
        self.fids_max
    }
}
