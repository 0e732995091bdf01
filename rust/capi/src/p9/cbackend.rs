// SPDX-License-Identifier: GPL-2.0-or-later
//! `CBackend`: the engine's `Backend` over a `QrsP9BackendOps` vtable.
//!
//! The mapping follows QEMU's 9p.c over `FileOperations`:
//! - a node is the bytes `name_to_path` produced (QEMU's `V9fsPath`),
//!   copied, and handed back to C as a `QrsP9Path`;
//! - every created entry is reached again with `name_to_path` + `lstat`
//!   for its attributes, as 9p.c does after `mkdir`, `open2`...;
//! - with `QRS_P9_BACKEND_PATHNAMES` the paths are `/`-separated strings
//!   (9p-local: the root is `.`, its children `./a`, and the size counts a
//!   trailing NUL): Trename, Tremove, Tstat's name and the fix-up of every
//!   fid after a rename are string operations on them (`paths`), as in
//!   9p.c.
//!
//! Only a negative return is a failure (9p.c's `if (err < 0)`), so a
//! QEMU-style `open` returning its descriptor works; negative values that
//! are no errno become `EIO`.
//!
//! C is reached only through [`CVtable`]'s safe methods (`cvtable`), and
//! calls back only through `readdir`'s trampoline (`trampoline`): this
//! file has no `unsafe`.

mod cvtable;
mod paths;
mod trampoline;

use std::io::{IoSlice, IoSliceMut};
use std::sync::{Arc, Mutex, PoisonError};

use libc::stat;
use p9_engine::backend::{
    Attr, Backend, Cred, DirEntry, Lock, LockStatus, Renamed, Result, SetAttr, SetTime, Time,
};
use p9_wire::consts::lock_type;
use p9_wire::errno::{Errno, EBUSY, EINVAL, EIO, ENOENT, ENXIO, EOPNOTSUPP};
use p9_wire::types::StatFs;

use cvtable::timespec_of;
pub(crate) use cvtable::{CHandle, CVtable};
use paths::{basename, fix_path, is_entry_path, split_path, Node};
use trampoline::Dirent;

use super::vtable::{QrsP9Cred, QrsP9Lock, QRS_P9_BACKEND_PATHNAMES};

/// The result of Trenameat's two `name_to_path` calls, kept for the
/// `renamed` calls (one per fid) of the same rename.
struct RenameCache {
    olddir: Node,
    oldname: Box<[u8]>,
    newdir: Node,
    newname: Box<[u8]>,
    /// The old and new paths; `None` when `name_to_path` failed (then,
    /// as in 9p.c, no fid is fixed).
    paths: Option<(Node, Node)>,
}

/// A backend in C.
pub(crate) struct CBackend {
    vtable: Arc<CVtable>,
    /// `QRS_P9_BACKEND_PATHNAMES`.
    paths: bool,
    /// (dev, ino) of the export root at the last Tattach: `..` there
    /// stays there (9p.c's `root_st`).
    root: Mutex<Option<(u64, u64)>>,
    rename: Mutex<Option<RenameCache>>,
}

/// The one `stat` to `Attr` conversion.
// The field types differ between Linux architectures: some casts are
// no-ops here only.
#[allow(clippy::unnecessary_cast)]
fn attr_of(st: &stat) -> Attr {
    let t = |sec: i64, nsec: i64| Time {
        sec,
        nsec: nsec as u32,
    };
    Attr {
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
        mode: st.st_mode as u32,
        uid: st.st_uid as u32,
        gid: st.st_gid as u32,
        nlink: st.st_nlink as u64,
        rdev: st.st_rdev as u64,
        size: st.st_size as u64,
        blksize: st.st_blksize as u64,
        blocks: st.st_blocks as u64,
        atime: t(st.st_atime as i64, st.st_atime_nsec as i64),
        mtime: t(st.st_mtime as i64, st.st_mtime_nsec as i64),
        ctime: t(st.st_ctime as i64, st.st_ctime_nsec as i64),
        btime: None,
    }
}

fn is_dir(a: &Attr) -> bool {
    a.mode & libc::S_IFMT == libc::S_IFDIR
}

/// 9p.c's `cred_init`: everything "unset" (`-1`).
const CRED_UNSET: QrsP9Cred = QrsP9Cred {
    uid: u32::MAX,
    gid: u32::MAX,
    mode: u32::MAX,
    rdev: u64::MAX,
};

fn to_c_lock(l: &Lock) -> QrsP9Lock {
    QrsP9Lock {
        type_: l.typ,
        start: l.start,
        length: l.length,
        proc_id: l.proc_id,
    }
}

impl CBackend {
    /// A backend over `vtable`.
    pub(crate) fn new(vtable: CVtable) -> Self {
        CBackend {
            paths: vtable.flags() & QRS_P9_BACKEND_PATHNAMES != 0,
            vtable: Arc::new(vtable),
            root: Mutex::new(None),
            rename: Mutex::new(None),
        }
    }

    /// The path of `name` in `dir` (`None`: the root, with name `/`).
    fn name_to_path(&self, dir: Option<&[u8]>, name: &[u8]) -> Result<Node> {
        self.vtable.name_to_path(dir, name)
    }

    fn lstat(&self, p: &[u8]) -> Result<Attr> {
        self.vtable.lstat(p).map(|st| attr_of(&st))
    }

    /// `name_to_path(dir, name)` + `lstat`: a new or walked-to entry.
    fn entry(&self, dir: &[u8], name: &[u8]) -> Result<(Node, Attr)> {
        let p = self.name_to_path(Some(dir), name)?;
        let a = self.lstat(&p)?;
        Ok((p, a))
    }

    fn root_id(&self) -> Option<(u64, u64)> {
        *self.root.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_root(&self, a: &Attr) -> bool {
        self.root_id() == Some((a.dev, a.ino))
    }

    /// The old and new paths of a Trenameat, computed once per rename
    /// rather than once per fid.
    fn rename_paths(
        &self,
        olddir: &Node,
        oldname: &[u8],
        newdir: &Node,
        newname: &[u8],
    ) -> Option<(Node, Node)> {
        let same = |a: &Node, b: &Node| Arc::ptr_eq(a, b) || a == b;
        let mut cache = self.rename.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = cache.as_ref() {
            if same(&c.olddir, olddir)
                && *c.oldname == *oldname
                && same(&c.newdir, newdir)
                && *c.newname == *newname
            {
                return c.paths.clone();
            }
        }
        let paths = self
            .name_to_path(Some(olddir), oldname)
            .and_then(|o| Ok((o, self.name_to_path(Some(newdir), newname)?)))
            .ok();
        *cache = Some(RenameCache {
            olddir: Arc::clone(olddir),
            oldname: oldname.into(),
            newdir: Arc::clone(newdir),
            newname: newname.into(),
            paths: paths.clone(),
        });
        paths
    }

    /// The check 9p.c's Tlock and Tgetlock make before answering without
    /// a lock function: `fstat` of the handle must work.  `EOPNOTSUPP`
    /// passes (the handle is usable; only its attributes are not; 9p.c
    /// then asks `lstat` of the path, which lock functions do not have).
    fn fstat_check(&self, h: &CHandle) -> Result<()> {
        match self.vtable.fstat(h) {
            None | Some(Ok(_)) | Some(Err((EOPNOTSUPP, _))) => Ok(()),
            Some(Err((e, _))) => Err(e),
        }
    }
}

/// What a `readdir` call works with, entry by entry.
struct DirCtx<'a> {
    backend: &'a CBackend,
    dir: &'a [u8],
    want_attr: bool,
    sink: &'a mut dyn FnMut(&DirEntry<'_>) -> bool,
    /// The directory's own attributes, fetched at most once.
    dir_attr: Option<Attr>,
    /// Entries the sink took.
    taken: usize,
    error: Option<Errno>,
}

impl DirCtx<'_> {
    fn dir_attr(&mut self) -> Result<Attr> {
        if let Some(a) = self.dir_attr {
            return Ok(a);
        }
        let a = self.backend.lstat(self.dir)?;
        self.dir_attr = Some(a);
        Ok(a)
    }

    /// The attributes of entry `name` (9p.c codir.c: `name_to_path` +
    /// `lstat`; `.` is the directory, `..` of the root is the root).
    fn attr_of(&mut self, name: &[u8]) -> Result<Attr> {
        match name {
            b"." => self.dir_attr(),
            b".." => {
                let d = self.dir_attr()?;
                if self.backend.is_root(&d) {
                    return Ok(d);
                }
                self.backend.entry(self.dir, name).map(|(_, a)| a)
            }
            _ => self.backend.entry(self.dir, name).map(|(_, a)| a),
        }
    }

    /// What C reported next (`None`: a NULL entry): whether to go on.
    /// After an error every further entry stops the listing.
    fn take(&mut self, entry: Option<&Dirent<'_>>) -> bool {
        if self.error.is_some() {
            return false;
        }
        match entry {
            Some(e) => self.offer(e.ino, e.off, e.d_type, e.name),
            None => {
                self.error = Some(EIO);
                false
            }
        }
    }

    /// Offer one entry to the sink: whether to go on.
    fn offer(&mut self, ino: u64, next: u64, d_type: u8, name: &[u8]) -> bool {
        let attr = if self.want_attr {
            match self.attr_of(name) {
                Ok(a) => Some(a),
                // Gone since the directory was read: as if never listed.
                Err(ENOENT) => return true,
                Err(e) => {
                    // Fail only if nothing was taken; else the next
                    // Treaddir starts here and reports it.
                    if self.taken == 0 {
                        self.error = Some(e);
                    }
                    return false;
                }
            }
        } else {
            None
        };
        let e = DirEntry {
            ino,
            next,
            d_type,
            name,
            attr,
        };
        let more = (self.sink)(&e);
        if more {
            self.taken += 1;
        }
        more
    }
}

impl Backend for CBackend {
    type Node = Node;
    type Handle = CHandle;

    fn attach(&self, _aname: &[u8], _cred: &Cred) -> Result<(Node, Attr)> {
        let root = self.name_to_path(None, b"/")?;
        let a = self.lstat(&root)?;
        *self.root.lock().unwrap_or_else(PoisonError::into_inner) = Some((a.dev, a.ino));
        Ok((root, a))
    }

    fn walk(&self, dir: &Node, names: &[&[u8]]) -> Result<Vec<(Node, Attr)>> {
        let mut out: Vec<(Node, Attr)> = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let (cur, cur_attr) = match out.last() {
                Some((n, a)) => (n, Some(*a)),
                None => (dir, None),
            };
            // 9p.c `v9fs_walk`: `..` at the root stays at the root.
            let step = if *name == b".." {
                let a = match cur_attr {
                    Some(a) => Ok(a),
                    None => self.lstat(cur),
                };
                match a {
                    Ok(a) if self.is_root(&a) => Ok((Arc::clone(cur), a)),
                    Ok(_) => self.entry(cur, name),
                    Err(e) => Err(e),
                }
            } else {
                self.entry(cur, name)
            };
            match step {
                Ok(s) => out.push(s),
                Err(e) if i == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(out)
    }

    fn clone_node(&self, node: &Node) -> Result<Node> {
        Ok(Arc::clone(node))
    }

    fn getattr(&self, node: &Node) -> Result<Attr> {
        self.lstat(node)
    }

    /// cofile.c `v9fs_co_fstat`: the vtable's `fstat`; on `EOPNOTSUPP`
    /// `lstat` of the path, or what `fstat` could read if that `lstat`
    /// says `ENOENT`.  Without `fstat`: `lstat`.
    fn fstat(&self, node: &Node, h: &CHandle) -> Result<Attr> {
        match self.vtable.fstat(h) {
            None => self.lstat(node),
            Some(Ok(st)) => Ok(attr_of(&st)),
            Some(Err((EOPNOTSUPP, partial))) => match self.vtable.lstat(node) {
                Ok(st) => Ok(attr_of(&st)),
                Err(ENOENT) => Ok(attr_of(&partial)),
                Err(e) => Err(e),
            },
            Some(Err((e, _))) => Err(e),
        }
    }

    /// `get_st_gen` (cofile.c `v9fs_co_st_gen`); 0 without one.
    fn generation(&self, node: &Node, attr: &Attr) -> Result<u64> {
        self.vtable.get_st_gen(node, attr.mode).unwrap_or(Ok(0))
    }

    /// 9p.c `v9fs_setattr`'s order: mode, times, owner, size; all by path
    /// (`FileOperations` has no ftruncate, so `handle` is unused).
    fn setattr(&self, node: &Node, _handle: Option<&CHandle>, set: &SetAttr) -> Result<()> {
        if let Some(mode) = set.mode {
            self.vtable.chmod(node, &QrsP9Cred { mode, ..CRED_UNSET })?;
        }
        if set.atime != SetTime::Omit || set.mtime != SetTime::Omit {
            let times = [timespec_of(set.atime), timespec_of(set.mtime)];
            self.vtable.utimensat(node, &times)?;
        }
        if set.uid.is_some() || set.gid.is_some() {
            let cred = QrsP9Cred {
                uid: set.uid.unwrap_or(u32::MAX),
                gid: set.gid.unwrap_or(u32::MAX),
                ..CRED_UNSET
            };
            self.vtable.chown(node, &cred)?;
        }
        if let Some(size) = set.size {
            let size = i64::try_from(size).map_err(|_| EINVAL)?;
            self.vtable.truncate(node, size)?;
        }
        Ok(())
    }

    /// The engine opens directories with `opendir`; a directory reaching
    /// here is opened that way too, and special files are refused before
    /// C sees them (the C `open` must refuse them as well: this check
    /// races with changes on the host).
    fn open(&self, node: &Node, flags: i32) -> Result<CHandle> {
        let a = self.lstat(node)?;
        match a.mode & libc::S_IFMT {
            libc::S_IFDIR => return self.opendir(node),
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO | libc::S_IFSOCK => return Err(ENXIO),
            _ => {}
        }
        self.vtable.open(node, flags)
    }

    fn opendir(&self, node: &Node) -> Result<CHandle> {
        self.vtable.opendir(node)
    }

    fn create(
        &self,
        dir: &Node,
        name: &[u8],
        flags: i32,
        mode: u32,
        cred: &Cred,
    ) -> Result<(Node, CHandle, Attr)> {
        // cofile.c `v9fs_co_open2`.
        let c = QrsP9Cred {
            uid: cred.uid,
            gid: cred.gid,
            mode: mode & 0o7777,
            ..CRED_UNSET
        };
        let h = self.vtable.open2(dir, name, flags | libc::O_CREAT, &c)?;
        // On failure `h` drops here, closing the file (as 9p.c does).
        let (node, attr) = self.entry(dir, name)?;
        Ok((node, h, attr))
    }

    fn mkdir(&self, dir: &Node, name: &[u8], mode: u32, cred: &Cred) -> Result<Attr> {
        let c = QrsP9Cred {
            uid: cred.uid,
            gid: cred.gid,
            mode,
            ..CRED_UNSET
        };
        self.vtable.mkdir(dir, name, &c)?;
        self.entry(dir, name).map(|(_, a)| a)
    }

    fn symlink(&self, dir: &Node, name: &[u8], target: &[u8], cred: &Cred) -> Result<Attr> {
        // cofs.c `v9fs_co_symlink`: mode 0777.
        let c = QrsP9Cred {
            uid: cred.uid,
            gid: cred.gid,
            mode: 0o777,
            ..CRED_UNSET
        };
        self.vtable.symlink(target, dir, name, &c)?;
        self.entry(dir, name).map(|(_, a)| a)
    }

    fn mknod(&self, dir: &Node, name: &[u8], mode: u32, rdev: u64, cred: &Cred) -> Result<Attr> {
        let c = QrsP9Cred {
            uid: cred.uid,
            gid: cred.gid,
            mode,
            rdev,
        };
        self.vtable.mknod(dir, name, &c)?;
        self.entry(dir, name).map(|(_, a)| a)
    }

    fn link(&self, target: &Node, dir: &Node, name: &[u8]) -> Result<()> {
        self.vtable.link(target, dir, name)
    }

    fn readlink(&self, node: &Node) -> Result<Vec<u8>> {
        self.vtable.readlink(node)
    }

    fn rename(&self, olddir: &Node, oldname: &[u8], newdir: &Node, newname: &[u8]) -> Result<()> {
        self.vtable.renameat(olddir, oldname, newdir, newname)
    }

    fn unlink(&self, dir: &Node, name: &[u8], rmdir: bool) -> Result<()> {
        let flags = if rmdir { libc::AT_REMOVEDIR } else { 0 };
        self.vtable.unlinkat(dir, name, flags)
    }

    fn remove(&self, node: &Node) -> Result<()> {
        if let Some(r) = self.vtable.remove(node) {
            return r;
        }
        if !self.paths {
            return Err(EOPNOTSUPP);
        }
        // 9p-local `local_remove`: unlinkat of the parent and name.
        let (parent, name) = split_path(node).ok_or(EBUSY)?;
        let flags = if is_dir(&self.lstat(node)?) {
            libc::AT_REMOVEDIR
        } else {
            0
        };
        self.vtable.unlinkat(&parent, name, flags)
    }

    fn name(&self, node: &Node) -> Result<Vec<u8>> {
        if !self.paths {
            return Err(EOPNOTSUPP);
        }
        Ok(basename(node).to_vec())
    }

    fn read(&self, h: &CHandle, offset: u64, bufs: &mut [IoSliceMut<'_>]) -> Result<usize> {
        self.vtable.preadv(h, bufs, offset)
    }

    fn write(&self, h: &CHandle, offset: u64, bufs: &[IoSlice<'_>]) -> Result<usize> {
        self.vtable.pwritev(h, bufs, offset)
    }

    fn fsync(&self, h: &CHandle, datasync: bool) -> Result<()> {
        self.vtable.fsync(h, datasync)
    }

    fn readdir(
        &self,
        dir: &Node,
        h: &CHandle,
        offset: u64,
        want_attr: bool,
        sink: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<()> {
        let mut ctx = DirCtx {
            backend: self,
            dir,
            want_attr,
            sink,
            dir_attr: None,
            taken: 0,
            error: None,
        };
        let r = self.vtable.readdir(h, offset, &mut |e| ctx.take(e));
        if let Some(e) = ctx.error {
            return Err(e);
        }
        match r {
            // Entries already taken go out; the next Treaddir retries.
            Err(_) if ctx.taken > 0 => Ok(()),
            r => r,
        }
    }

    fn statfs(&self, node: &Node) -> Result<StatFs> {
        let st = self.vtable.statfs(node)?;
        Ok(p9_native::wire_statfs(&st))
    }

    fn getxattr(&self, node: &Node, name: &[u8], buf: &mut [u8]) -> Result<usize> {
        self.vtable.lgetxattr(node, name, buf)
    }

    fn listxattr(&self, node: &Node, buf: &mut [u8]) -> Result<usize> {
        self.vtable.llistxattr(node, buf)
    }

    fn setxattr(&self, node: &Node, name: &[u8], value: &[u8], flags: u32) -> Result<()> {
        self.vtable.lsetxattr(node, name, value, flags)
    }

    fn removexattr(&self, node: &Node, name: &[u8]) -> Result<()> {
        self.vtable.lremovexattr(node, name)
    }

    fn lock(&self, h: &CHandle, lock: &Lock) -> Result<LockStatus> {
        match self.vtable.lock(h, &to_c_lock(lock)) {
            Some(status) => status,
            None => {
                // 9p.c `v9fs_lock`: the fstat check, then success.
                self.fstat_check(h)?;
                Ok(LockStatus::Success)
            }
        }
    }

    fn getlock(&self, h: &CHandle, lock: &Lock) -> Result<Option<Lock>> {
        let l = match self.vtable.getlock(h, &to_c_lock(lock)) {
            Some(l) => l?,
            None => {
                // 9p.c `v9fs_getlock`: the fstat check, then no conflict.
                self.fstat_check(h)?;
                return Ok(None);
            }
        };
        Ok((l.type_ != lock_type::UNLCK).then_some(Lock {
            typ: l.type_,
            start: l.start,
            length: l.length,
            proc_id: l.proc_id,
        }))
    }

    /// 9p.c `v9fs_complete_rename`: the new path is made first, then the
    /// entry moved with `renameat` of its parent and name.
    fn rename_node(&self, node: &Node, newdir: Option<&Node>, newname: &[u8]) -> Result<Node> {
        if !self.paths {
            return Err(EOPNOTSUPP);
        }
        let (parent, name) = split_path(node).ok_or(EBUSY)?;
        let target: &[u8] = newdir.map_or(&parent, |d| d);
        let new = self.name_to_path(Some(target), newname)?;
        self.vtable.renameat(&parent, name, target, newname)?;
        Ok(new)
    }

    fn nodes_are_paths(&self) -> bool {
        self.paths
    }

    fn renamed(&self, node: &Node, how: &Renamed<'_, Node>) -> Option<Node> {
        if !self.paths {
            return None;
        }
        match how {
            Renamed::Node { old, new } => fix_path(node, old, new),
            Renamed::At {
                olddir,
                oldname,
                newdir,
                newname,
            } => {
                let (old, new) = self.rename_paths(olddir, oldname, newdir, newname)?;
                fix_path(node, &old, &new)
            }
        }
    }

    /// `node == name_to_path(dir, name)`, as the string `dir/name` (what a
    /// PATHNAMES backend's `name_to_path` makes), without calling C: this
    /// runs for every fid under the fid table's lock.
    fn is_entry(&self, node: &Node, dir: &Node, name: &[u8]) -> bool {
        if !self.paths {
            return false;
        }
        is_entry_path(node, dir, name)
    }
}
