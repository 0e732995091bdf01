// SPDX-License-Identifier: GPL-2.0-or-later
//! [`NativeBackend`]: the engine's [`Backend`] on top of this crate's
//! descriptor-based layer, the counterpart of QEMU's `hw/9pfs/9p-local.c`
//! with `security_model=passthrough` or `none`.
//!
//! * A fid's node is a [`NativeNode`]: the `O_PATH` [`Node`] behind an
//!   [`Arc`], plus where it was reached from (the parent directory's node
//!   and the entry name) for `Tremove`.  Clones share the descriptor, and
//!   a walk step's parent is the previous step's descriptor, so a walk of
//!   `n` names opens `n` descriptors and a clone opens none.  An `O_PATH`
//!   descriptor carries no state (no position, no locks), so sharing it is
//!   invisible.
//! * An open fid is a [`NativeHandle`]: a file descriptor, or a directory
//!   reader for `Treaddir`.
//! * Nodes are descriptors, not paths: renames never invalidate them
//!   ([`Backend::nodes_are_paths`] stays `false`).
//!
//! Errors are the layer's raw Linux errnos, passed to the guest unchanged.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use p9_engine::backend::{
    Attr, Backend, Cred, DirEntry, Lock, LockStatus, Renamed, Result, SetAttr,
    SetTime as EngineSetTime, Time,
};
use p9_wire::consts::lock_type;
use p9_wire::errno::Errno as WireErrno;
use p9_wire::types::StatFs as WireStatFs;

use crate::{
    chmod, chown, create_file, fsync, ftruncate, generation, getlk, link, lookup, mkdir, mknod,
    open, parent, pread, pwrite, readlink, renameat, setlk, stat, stat_at, statfs, symlink,
    truncate, unlinkat, utimes, DirReader, Errno, LockType, Node, SecurityModel, SetTime, Stat,
    Timespec,
};

/// The layer's errno as the engine's (both are positive Linux values).
fn werr(e: Errno) -> WireErrno {
    WireErrno(u32::try_from(e.0).unwrap_or(libc::EIO as u32))
}

/// Shorthand: run a layer call and convert its error.
fn w<T>(r: crate::Result<T>) -> Result<T> {
    r.map_err(werr)
}

fn time(t: Timespec) -> Time {
    Time {
        sec: t.sec,
        nsec: t.nsec,
    }
}

/// The engine's attributes from the layer's.
fn attr_of(st: &Stat) -> Attr {
    Attr {
        dev: st.dev,
        ino: st.ino,
        mode: st.mode,
        uid: st.uid,
        gid: st.gid,
        nlink: st.nlink,
        rdev: st.rdev,
        size: st.size,
        blksize: st.blksize,
        blocks: st.blocks,
        atime: time(st.atime),
        mtime: time(st.mtime),
        ctime: time(st.ctime),
        btime: st.btime.map(time),
    }
}

fn set_time(t: EngineSetTime) -> SetTime {
    match t {
        EngineSetTime::Omit => SetTime::Omit,
        EngineSetTime::Now => SetTime::Now,
        EngineSetTime::At(t) => SetTime::At(Timespec {
            sec: t.sec,
            nsec: t.nsec,
        }),
    }
}

fn same_file(a: &Stat, b: &Stat) -> bool {
    a.dev == b.dev && a.ino == b.ino
}

/// Where a node was reached from: its parent directory and entry name.
#[derive(Debug)]
struct Origin {
    dir: Arc<Node>,
    name: Box<[u8]>,
}

/// A file of the export as the engine holds it (one per fid): the `O_PATH`
/// [`Node`] and, for nodes reached by name, the directory and name they
/// were reached by (what [`Backend::remove`] unlinks, after checking that
/// the name still refers to this file).
///
/// Cloning shares the descriptor (see the module documentation).
#[derive(Clone, Debug)]
pub struct NativeNode {
    node: Arc<Node>,
    origin: Option<Arc<Origin>>,
}

impl NativeNode {
    /// The `O_PATH` descriptor of this file, for direct use of this crate's
    /// functions.
    #[must_use]
    pub fn node(&self) -> &Node {
        &self.node
    }

    fn child(dir: &NativeNode, node: impl Into<Arc<Node>>, name: &[u8]) -> NativeNode {
        NativeNode {
            node: node.into(),
            origin: Some(Arc::new(Origin {
                dir: Arc::clone(&dir.node),
                name: name.into(),
            })),
        }
    }
}

/// An open file or directory (one per open fid).
#[derive(Debug)]
pub enum NativeHandle {
    /// A regular file opened for I/O.
    File(OwnedFd),
    /// A directory opened for reading; the node is kept for the attributes
    /// of `..` in [`Backend::readdir`].
    Dir {
        /// The directory's node.
        node: Arc<Node>,
        /// Its reader; a mutex because `readdir` takes `&Handle` and seeks.
        reader: Mutex<DirReader>,
    },
}

impl NativeHandle {
    fn file(&self) -> Result<BorrowedFd<'_>> {
        match self {
            NativeHandle::File(fd) => Ok(fd.as_fd()),
            NativeHandle::Dir { .. } => Err(werr(Errno(libc::EISDIR))),
        }
    }

    /// Runs `f` with the handle's descriptor (file or directory).
    fn with_fd<T>(&self, f: impl FnOnce(BorrowedFd<'_>) -> T) -> T {
        match self {
            NativeHandle::File(fd) => f(fd.as_fd()),
            NativeHandle::Dir { reader, .. } => f(lock_reader(reader).as_fd()),
        }
    }
}

fn lock_reader(m: &Mutex<DirReader>) -> MutexGuard<'_, DirReader> {
    // A panic in another request while holding the lock leaves the reader
    // usable (every readdir seeks first), so poisoning is ignored.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The 9P backend serving one host directory with QEMU's `local` semantics,
/// fd-based and escape-proof (see the crate documentation).
#[derive(Debug)]
pub struct NativeBackend {
    root: Arc<Node>,
    root_dev: u64,
    root_ino: u64,
    model: SecurityModel,
    /// The export's file system keeps inode generations that
    /// `FS_IOC_GETVERSION` reports (QEMU's `local_ioc_getversion_init`
    /// decides the same once, from the root's file system type); on the
    /// others asking would cost an open per Tgetattr `P9_STATS_GEN` for
    /// nothing.
    generations: bool,
}

/// File systems with `FS_IOC_GETVERSION`: ext2/3/4, btrfs, reiserfs, xfs
/// (the list of QEMU's `local_ioc_getversion_init`).
fn has_generations(fs_type: u32) -> bool {
    matches!(fs_type, 0xEF53 | 0x9123_683E | 0x5265_4973 | 0x5846_5342)
}

/// Size of the `getdents64` buffer of one readdir batch.
const DIRENT_BUF: usize = 8192;

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
        let st = stat(&node)?;
        let generations = has_generations(statfs(&node)?.typ);
        Ok(NativeBackend {
            root: Arc::new(node),
            root_dev: st.dev,
            root_ino: st.ino,
            model,
            generations,
        })
    }

    /// The security model in use.
    #[must_use]
    pub fn model(&self) -> SecurityModel {
        self.model
    }

    fn is_root(&self, st: &Stat) -> bool {
        st.dev == self.root_dev && st.ino == self.root_ino
    }

    fn root_node(&self) -> NativeNode {
        NativeNode {
            node: Arc::clone(&self.root),
            origin: None,
        }
    }

    /// One walk step from `cur`.
    fn step(&self, cur: &NativeNode, name: &[u8]) -> Result<(NativeNode, Attr)> {
        let next = match name {
            b"." => cur.clone(),
            b".." => {
                let st = w(stat(&cur.node))?;
                if self.is_root(&st) {
                    self.root_node()
                } else {
                    NativeNode {
                        node: Arc::new(w(parent(&cur.node, &self.root))?),
                        origin: None,
                    }
                }
            }
            _ => NativeNode::child(cur, w(lookup(&cur.node, name))?, name),
        };
        let st = w(stat(&next.node))?;
        Ok((next, attr_of(&st)))
    }

    /// The directory and name of a directory node reached without a name
    /// (by `..`): found by scanning its parent for an entry that is it.
    fn find_name(&self, node: &Node, st: &Stat) -> Result<(Arc<Node>, Box<[u8]>)> {
        let dir = w(parent(node, &self.root))?;
        let mut reader = w(DirReader::open(&dir))?;
        let mut buf = [0u8; DIRENT_BUF];
        loop {
            let batch = w(reader.read_batch(&mut buf))?;
            let mut any = false;
            for e in batch {
                any = true;
                if e.ino != st.ino || e.name == b"." || e.name == b".." {
                    continue;
                }
                if let Ok(cur) = stat_at(&dir, e.name) {
                    if same_file(&cur, st) {
                        return Ok((Arc::new(dir), e.name.into()));
                    }
                }
            }
            if !any {
                return Err(werr(Errno(libc::ENOENT)));
            }
        }
    }

    /// The directory and name `node` was reached by (for a directory
    /// reached by `..`, the entry of its parent found by scanning), checked
    /// to still refer to this file: `ENOENT` if the name is gone, `ESTALE`
    /// if it now names another file (e.g. the file was renamed and
    /// replaced), `at_root` for the export root (what the kernel says for
    /// `.`: `EINVAL` to unlink, `EBUSY` to rename).  The check and the use of
    /// the name are two calls, as in QEMU.
    fn entry_of(&self, node: &NativeNode, at_root: i32) -> Result<(Arc<Node>, Box<[u8]>, Stat)> {
        let st = w(stat(&node.node))?;
        if self.is_root(&st) {
            return Err(werr(Errno(at_root)));
        }
        let (dir, name) = match &node.origin {
            Some(o) => (Arc::clone(&o.dir), o.name.clone()),
            None => self.find_name(&node.node, &st)?,
        };
        let cur = w(stat_at(&*dir, &name))?;
        if !same_file(&cur, &st) {
            return Err(werr(Errno(libc::ESTALE)));
        }
        Ok((dir, name, st))
    }

    /// Attributes of the `..` entry of the directory `dir` (never above the
    /// export root).
    fn dotdot_attr(&self, dir: &Node) -> crate::Result<Stat> {
        stat(&parent(dir, &self.root)?)
    }
}

impl Backend for NativeBackend {
    type Node = NativeNode;
    type Handle = NativeHandle;

    /// The export root; `aname` is ignored (one export per backend, as
    /// QEMU's local backend).
    fn attach(&self, _aname: &[u8], _cred: &Cred) -> Result<(NativeNode, Attr)> {
        let node = self.root_node();
        let attr = self.getattr(&node)?;
        Ok((node, attr))
    }

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

    /// `stat` of the node's descriptor (which works for open-but-unlinked
    /// files too, so the default [`Backend::fstat`] is this).
    fn getattr(&self, node: &NativeNode) -> Result<Attr> {
        Ok(attr_of(&w(stat(&node.node))?))
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
            libc::S_IFREG | libc::S_IFDIR => w(generation(&node.node)),
            _ => Err(werr(Errno(libc::ENOTTY))),
        }
    }

    /// Applies, in this order: size (through the handle's descriptor for an
    /// open file, so open-but-unlinked files work; else by opening the
    /// node write-only, as QEMU's `local_truncate`), owner, mode, times.
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
        if let Some(size) = set.size {
            match handle {
                Some(h @ NativeHandle::File(_)) => w(ftruncate(h.file()?, size))?,
                _ => w(truncate(&node.node, size))?,
            }
        }
        if set.uid.is_some() || set.gid.is_some() {
            w(chown(&node.node, set.uid, set.gid))?;
        }
        if let Some(mode) = set.mode {
            w(chmod(&node.node, mode))?;
        }
        if set.atime != EngineSetTime::Omit || set.mtime != EngineSetTime::Omit {
            w(utimes(&node.node, set_time(set.atime), set_time(set.mtime)))?;
        }
        Ok(())
    }

    /// Opens with [`open`] (flags sanitised; special files `ENXIO`,
    /// symbolic links `ELOOP`).  A directory gives a directory handle, so
    /// that `Tlopen` then `Treaddir` works whichever call the engine uses.
    fn open(&self, node: &NativeNode, flags: i32) -> Result<NativeHandle> {
        let st = w(stat(&node.node))?;
        let fd = w(open(&node.node, flags))?;
        Ok(if st.is_dir() {
            NativeHandle::Dir {
                node: Arc::clone(&node.node),
                reader: Mutex::new(DirReader::from_fd(fd)),
            }
        } else {
            NativeHandle::File(fd)
        })
    }

    fn opendir(&self, node: &NativeNode) -> Result<NativeHandle> {
        Ok(NativeHandle::Dir {
            node: Arc::clone(&node.node),
            reader: Mutex::new(w(DirReader::open(&node.node))?),
        })
    }

    /// [`create_file`], then [`SecurityModel::finish_create`] with the
    /// request's uid/gid and `mode` (which removes the file again if that
    /// fails).
    fn create(
        &self,
        dir: &NativeNode,
        name: &[u8],
        flags: i32,
        mode: u32,
        cred: &Cred,
    ) -> Result<(NativeNode, NativeHandle, Attr)> {
        let (node, fd) = w(create_file(&dir.node, name, flags, mode & 0o7777))?;
        w(self
            .model
            .finish_create(&dir.node, name, &node, cred.uid, cred.gid, mode))?;
        let st = w(stat(&node))?;
        Ok((
            NativeNode::child(dir, node, name),
            NativeHandle::File(fd),
            attr_of(&st),
        ))
    }

    fn mkdir(&self, dir: &NativeNode, name: &[u8], mode: u32, cred: &Cred) -> Result<Attr> {
        let node = w(mkdir(&dir.node, name, mode & 0o7777))?;
        w(self
            .model
            .finish_create(&dir.node, name, &node, cred.uid, cred.gid, mode))?;
        Ok(attr_of(&w(stat(&node))?))
    }

    fn symlink(&self, dir: &NativeNode, name: &[u8], target: &[u8], cred: &Cred) -> Result<Attr> {
        let node = w(symlink(&dir.node, name, target))?;
        w(self
            .model
            .finish_create(&dir.node, name, &node, cred.uid, cred.gid, 0o777))?;
        Ok(attr_of(&w(stat(&node))?))
    }

    fn mknod(
        &self,
        dir: &NativeNode,
        name: &[u8],
        mode: u32,
        rdev: u64,
        cred: &Cred,
    ) -> Result<Attr> {
        let node = w(mknod(&dir.node, name, mode, rdev))?;
        w(self
            .model
            .finish_create(&dir.node, name, &node, cred.uid, cred.gid, mode))?;
        Ok(attr_of(&w(stat(&node))?))
    }

    fn link(&self, target: &NativeNode, dir: &NativeNode, name: &[u8]) -> Result<()> {
        w(link(&target.node, &dir.node, name))
    }

    fn readlink(&self, node: &NativeNode) -> Result<Vec<u8>> {
        w(readlink(&node.node))
    }

    fn rename(
        &self,
        olddir: &NativeNode,
        oldname: &[u8],
        newdir: &NativeNode,
        newname: &[u8],
    ) -> Result<()> {
        w(renameat(&olddir.node, oldname, &newdir.node, newname))
    }

    /// Renames the entry the node was reached by, checked like
    /// [`Backend::remove`] (`ENOENT`, `ESTALE`, `EBUSY` for the root); the
    /// fid keeps its descriptor and records the new name.
    fn rename_node(
        &self,
        node: &NativeNode,
        newdir: Option<&NativeNode>,
        newname: &[u8],
    ) -> Result<NativeNode> {
        let (dir, name, _) = self.entry_of(node, libc::EBUSY)?;
        let newdir = match newdir {
            Some(d) => d.clone(),
            None => NativeNode {
                node: Arc::clone(&dir),
                origin: None,
            },
        };
        w(renameat(&dir, &name, &newdir.node, newname))?;
        Ok(NativeNode::child(&newdir, Arc::clone(&node.node), newname))
    }

    /// Keeps the name each node was reached by in step with renames made
    /// through the engine, so that a later Tremove or Trename of another
    /// fid of the moved file finds it (9p.c fixes fid paths the same way).
    /// The descriptor itself needs no fixing.
    fn renamed(&self, node: &NativeNode, how: &Renamed<'_, NativeNode>) -> Option<NativeNode> {
        let o = node.origin.as_ref()?;
        let same_dir =
            |a: &Arc<Node>, b: &Arc<Node>| Arc::ptr_eq(a, b) || a.same_inode(b).unwrap_or(false);
        match how {
            Renamed::At {
                olddir,
                oldname,
                newdir,
                newname,
            } => (&*o.name == *oldname && same_dir(&o.dir, &olddir.node))
                .then(|| NativeNode::child(newdir, Arc::clone(&node.node), newname)),
            Renamed::Node { old, new } => {
                let moved = match &old.origin {
                    _ if Arc::ptr_eq(&node.node, &old.node) => true,
                    Some(oo) => o.name == oo.name && same_dir(&o.dir, &oo.dir),
                    None => false,
                };
                moved.then(|| NativeNode {
                    node: Arc::clone(&node.node),
                    origin: new.origin.clone(),
                })
            }
        }
    }

    /// The name the node was reached by; `.` for the export root (9p.c:
    /// the base name of the root path); for a directory reached by `..`,
    /// found by scanning its parent.
    fn name(&self, node: &NativeNode) -> Result<Vec<u8>> {
        if let Some(o) = &node.origin {
            return Ok(o.name.to_vec());
        }
        let st = w(stat(&node.node))?;
        if self.is_root(&st) {
            return Ok(b".".to_vec());
        }
        Ok(self.find_name(&node.node, &st)?.1.into_vec())
    }

    fn unlink(&self, dir: &NativeNode, name: &[u8], rmdir: bool) -> Result<()> {
        w(unlinkat(&dir.node, name, rmdir))
    }

    /// Unlinks the name the node was reached by (for a directory reached
    /// by `..`, the entry of its parent found by scanning), after checking
    /// that the name still refers to this file: `ENOENT` if the name is
    /// gone, `ESTALE` if it now names another file (e.g. the file was
    /// renamed and replaced).  The check and the unlink are two calls, as
    /// in QEMU.  The export root gives `EINVAL` (QEMU: `unlinkat(".")`).
    fn remove(&self, node: &NativeNode) -> Result<()> {
        let (dir, name, st) = self.entry_of(node, libc::EINVAL)?;
        w(unlinkat(&dir, &name, st.is_dir()))
    }

    /// `EISDIR` on a directory handle (what `read(2)` of a directory says).
    fn read(
        &self,
        handle: &NativeHandle,
        offset: u64,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Result<usize> {
        w(pread(handle.file()?, bufs, offset))
    }

    /// `EISDIR` on a directory handle.
    fn write(&self, handle: &NativeHandle, offset: u64, bufs: &[IoSlice<'_>]) -> Result<usize> {
        w(pwrite(handle.file()?, bufs, offset))
    }

    /// Works on file and directory handles.
    fn fsync(&self, handle: &NativeHandle, datasync: bool) -> Result<()> {
        w(handle.with_fd(|fd| fsync(fd, datasync)))
    }

    /// Seeks to `offset` and passes entries to `sink`; every call seeks, so
    /// a refused entry comes again with the next call at the last accepted
    /// entry's `next`.  With `want_attr`, entries are stat'ed by name
    /// without following links and those that vanished meanwhile are
    /// skipped; `..` of the export root reports the root itself (ino and
    /// attributes), never the host directory above.  An error after some
    /// entries were accepted ends the call successfully (the guest gets
    /// them and meets the error at its next call); `EBADF` on a file
    /// handle.
    fn readdir(
        &self,
        _dir: &NativeNode,
        handle: &NativeHandle,
        offset: u64,
        want_attr: bool,
        sink: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<()> {
        let NativeHandle::Dir { node, reader } = handle else {
            return Err(werr(Errno(libc::EBADF)));
        };
        let mut reader = lock_reader(reader);
        // Cookies are opaque: the u64 goes back to the i64 it came from.
        w(reader.seek(offset as i64))?;
        let mut buf = [0u8; DIRENT_BUF];
        let mut delivered = false;
        let fail = |e: Errno, delivered: bool| {
            if delivered {
                Ok(())
            } else {
                Err(werr(e))
            }
        };
        loop {
            let batch = match reader.read_batch(&mut buf) {
                Ok(b) => b,
                Err(e) => return fail(e, delivered),
            };
            let mut any = false;
            for e in batch {
                any = true;
                let mut ino = e.ino;
                let mut attr = None;
                if e.name == b".." {
                    match self.dotdot_attr(node) {
                        Ok(st) => {
                            ino = st.ino;
                            attr = want_attr.then(|| attr_of(&st));
                        }
                        Err(err) => return fail(err, delivered),
                    }
                } else if want_attr {
                    match stat_at(&*reader, e.name) {
                        Ok(st) => attr = Some(attr_of(&st)),
                        Err(Errno(libc::ENOENT)) => continue,
                        Err(err) => return fail(err, delivered),
                    }
                }
                let entry = DirEntry {
                    ino,
                    next: e.off as u64,
                    d_type: e.d_type,
                    name: e.name,
                    attr,
                };
                if !sink(&entry) {
                    return Ok(());
                }
                delivered = true;
            }
            if !any {
                return Ok(());
            }
        }
    }

    fn statfs(&self, node: &NativeNode) -> Result<WireStatFs> {
        w(statfs(&node.node))
    }

    /// Through [`SecurityModel::getxattr`] (`EOPNOTSUPP` for namespaces the
    /// model does not pass through).
    fn getxattr(&self, node: &NativeNode, name: &[u8], buf: &mut [u8]) -> Result<usize> {
        w(self.model.getxattr(&node.node, name, buf))
    }

    /// Through [`SecurityModel::listxattr`]: only the names the model
    /// passes through.
    fn listxattr(&self, node: &NativeNode, buf: &mut [u8]) -> Result<usize> {
        w(self.model.listxattr(&node.node, buf))
    }

    /// Through [`SecurityModel::setxattr`]; `flags` above `i32::MAX` are
    /// `EINVAL`.
    fn setxattr(&self, node: &NativeNode, name: &[u8], value: &[u8], flags: u32) -> Result<()> {
        let flags = i32::try_from(flags).map_err(|_| werr(Errno(libc::EINVAL)))?;
        w(self.model.setxattr(&node.node, name, value, flags))
    }

    /// Through [`SecurityModel::removexattr`].
    fn removexattr(&self, node: &NativeNode, name: &[u8]) -> Result<()> {
        w(self.model.removexattr(&node.node, name))
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
            Err(Errno(libc::EAGAIN)) => Ok(LockStatus::Blocked),
            Err(e) => Err(werr(e)),
        }
    }

    /// [`getlk`] on the handle's descriptor; the conflicting lock's
    /// `proc_id` is the kernel's `l_pid` (-1, i.e. `u32::MAX`, for an open
    /// file description lock).  An unlock request conflicts with nothing.
    fn getlock(&self, handle: &NativeHandle, lock: &Lock) -> Result<Option<Lock>> {
        let typ = lock_kind(lock.typ)?;
        if typ == LockType::Unlock {
            return Ok(None);
        }
        let c = w(handle.with_fd(|fd| getlk(fd, typ, lock.start, lock.length)))?;
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
}

/// The layer's lock type for a 9P `P9_LOCK_TYPE_*`; `EINVAL` otherwise.
fn lock_kind(typ: u8) -> Result<LockType> {
    match typ {
        lock_type::RDLCK => Ok(LockType::Read),
        lock_type::WRLCK => Ok(LockType::Write),
        lock_type::UNLCK => Ok(LockType::Unlock),
        _ => Err(werr(Errno(libc::EINVAL))),
    }
}
