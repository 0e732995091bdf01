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
//!   fid after a rename are string operations on them, as in 9p.c.
//!
//! Only a negative return is a failure (9p.c's `if (err < 0)`), so a
//! QEMU-style `open` returning its descriptor works; negative values that
//! are no errno become `EIO`.

use std::any::Any;
use std::ffi::{c_char, c_int, c_void};
use std::io::{IoSlice, IoSliceMut};
use std::mem::size_of;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr::{addr_of, null, null_mut};
use std::sync::{Arc, Mutex, PoisonError};

use libc::{dirent, iovec, stat, timespec};
use p9_engine::backend::{
    Attr, Backend, Cred, DirEntry, Lock, LockStatus, Renamed, Result, SetAttr, SetTime, Time,
};
use p9_wire::consts::lock_type;
use p9_wire::errno::{Errno, EBUSY, EINVAL, EIO, ENAMETOOLONG, ENOENT, ENOSYS, ENXIO, EOPNOTSUPP};
use p9_wire::types::StatFs;

use super::vtable::{
    QrsP9BackendOps, QrsP9Cred, QrsP9DirentFn, QrsP9Lock, QrsP9Path, QRS_P9_BACKEND_PATHNAMES,
};

/// A node: the bytes of a `QrsP9Path`.
type Node = Arc<[u8]>;

/// `PATH_MAX`: the first `name_to_path` buffer holds a path this long plus
/// its NUL, and `readlink` targets are at most this long (Linux's bound).
const PATH_MAX: usize = libc::PATH_MAX as usize;

/// Bound on what `name_to_path` may produce: 9p-local's paths are
/// unbounded strings (it resolves them one component at a time, so they
/// may exceed `PATH_MAX` in deep trees); past 1 MiB we answer
/// `ENAMETOOLONG` rather than keep growing.
const PATH_LIMIT: usize = 1 << 20;

/// Names up to this long (NUL included) go to C from a stack buffer.
const NAME_STACK: usize = 256;

/// iovec arrays up to this long are built on the stack.
const IOV_STACK: usize = 16;

/// `IOV_MAX`: longer scatter lists are passed in pieces.
const IOV_MAX: usize = 1024;

/// What `new` checked, and every handle shares (so that a handle's `Drop`
/// can close it).
struct Inner {
    ops: QrsP9BackendOps,
    opaque: *mut c_void,
}

// SAFETY: `qrs_p9_backend_c_new`'s contract: the functions may be called
// from any thread, concurrently, with `opaque`.
unsafe impl Send for Inner {}
// SAFETY: as above; nothing here is mutated.
unsafe impl Sync for Inner {}

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
    inner: Arc<Inner>,
    /// `QRS_P9_BACKEND_PATHNAMES`.
    paths: bool,
    /// (dev, ino) of the export root at the last Tattach: `..` there
    /// stays there (9p.c's `root_st`).
    root: Mutex<Option<(u64, u64)>>,
    rename: Mutex<Option<RenameCache>>,
}

/// An open file or directory: the state `open`, `open2` or `opendir`
/// stored, closed with `close` or `closedir` on drop.
pub(crate) struct CHandle {
    inner: Arc<Inner>,
    raw: *mut c_void,
    dir: bool,
}

// SAFETY: the open state belongs to this handle alone, and the vtable's
// contract lets its functions use it from any thread, concurrently.
unsafe impl Send for CHandle {}
// SAFETY: as above.
unsafe impl Sync for CHandle {}

impl Drop for CHandle {
    fn drop(&mut self) {
        let f = if self.dir {
            self.inner.ops.closedir
        } else {
            self.inner.ops.close
        };
        if let Some(f) = f {
            // SAFETY: `raw` came from the matching open function and is
            // closed exactly once, here.
            unsafe { f(self.inner.opaque, self.raw) };
        }
    }
}

/// The errno of a negative C return; `EIO` for values that are none.
fn errno_of(r: isize) -> Errno {
    match u32::try_from(r.unsigned_abs()) {
        Ok(e @ 1..=4095) => Errno(e),
        _ => EIO,
    }
}

/// An `int` result: only negative values fail.
fn check(r: c_int) -> Result<()> {
    if r < 0 {
        Err(errno_of(r as isize))
    } else {
        Ok(())
    }
}

/// A byte count result, at most `max`.
fn check_len(r: isize, max: usize) -> Result<usize> {
    if r < 0 {
        return Err(errno_of(r));
    }
    match usize::try_from(r) {
        Ok(n) if n <= max => Ok(n),
        _ => Err(EIO),
    }
}

/// A function `new` checked is there (never `ENOSYS` in practice).
fn req<F>(f: Option<F>) -> Result<F> {
    f.ok_or(ENOSYS)
}

fn cpath(p: &[u8]) -> QrsP9Path {
    QrsP9Path {
        data: p.as_ptr(),
        size: p.len(),
    }
}

/// Run `f` with `name` as a NUL-terminated C string.
fn with_name<R>(name: &[u8], f: impl FnOnce(*const c_char) -> Result<R>) -> Result<R> {
    if name.contains(&0) {
        return Err(EINVAL);
    }
    if name.len() < NAME_STACK {
        let mut buf = [0u8; NAME_STACK];
        buf[..name.len()].copy_from_slice(name);
        f(buf.as_ptr().cast())
    } else {
        let mut v = Vec::with_capacity(name.len() + 1);
        v.extend_from_slice(name);
        v.push(0);
        f(v.as_ptr().cast())
    }
}

/// `p` without its trailing NUL, and whether it had one.
fn strip_nul(p: &[u8]) -> (&[u8], bool) {
    match p.split_last() {
        Some((0, s)) => (s, true),
        _ => (p, false),
    }
}

/// `parts` joined as a node, NUL-terminated when `nul` (the convention
/// of the path it was derived from).
fn node_of(parts: &[&[u8]], nul: bool) -> Node {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut v = Vec::with_capacity(len + 1);
    for p in parts {
        v.extend_from_slice(p);
    }
    if nul {
        v.push(0);
    }
    v.into()
}

/// The name of a path: what follows its last `/` (the whole path if it
/// has none; so the root `.` is named `.`, as in 9p.c's Tstat).
fn basename(p: &[u8]) -> &[u8] {
    let (s, _) = strip_nul(p);
    match s.iter().rposition(|&c| c == b'/') {
        Some(i) => &s[i + 1..],
        None => s,
    }
}

/// The parent path and the name of `p` (9p.c: `g_path_get_dirname` and
/// the last component; the parent of `./a` is `.`); `None` for the root
/// or anything without a proper last component.
fn split_path(p: &[u8]) -> Option<(Node, &[u8])> {
    let (s, nul) = strip_nul(p);
    let (parent, name): (&[u8], &[u8]) = match s.iter().rposition(|&c| c == b'/') {
        None => (b".", s),
        Some(i) => {
            let mut d = &s[..i];
            while d.len() > 1 && d.ends_with(b"/") {
                d = &d[..d.len() - 1];
            }
            (if d.is_empty() { b"/" } else { d }, &s[i + 1..])
        }
    };
    if name.is_empty() || name == b"." || name == b".." {
        return None;
    }
    Some((node_of(&[parent], nul), name))
}

/// 9p.c `v9fs_path_is_ancestor` + `v9fs_fix_path`: `node` with its prefix
/// `old` replaced by `new`, if it is `old` or under `old/`.
fn fix_path(node: &[u8], old: &[u8], new: &[u8]) -> Option<Node> {
    let (n, _) = strip_nul(node);
    let (o, _) = strip_nul(old);
    let (nw, nw_nul) = strip_nul(new);
    if o.is_empty() || o == nw {
        return None;
    }
    let rest = n.strip_prefix(o)?;
    if !rest.is_empty() && rest[0] != b'/' {
        return None;
    }
    Some(node_of(&[nw, rest], nw_nul))
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

fn timespec_of(t: SetTime) -> timespec {
    // SAFETY: timespec is plain integers; all-zero is a valid value (and
    // covers any padding fields).
    let mut ts: timespec = unsafe { std::mem::zeroed() };
    match t {
        SetTime::Omit => ts.tv_nsec = libc::UTIME_OMIT,
        SetTime::Now => ts.tv_nsec = libc::UTIME_NOW,
        SetTime::At(t) => {
            ts.tv_sec = t.sec as libc::time_t;
            ts.tv_nsec = t.nsec as _;
        }
    }
    ts
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

const EMPTY_IOV: iovec = iovec {
    iov_base: null_mut(),
    iov_len: 0,
};

/// Run `f` with `n` iovecs made by `fill` (on the stack when few).
fn with_iovecs<R>(n: usize, fill: impl Iterator<Item = iovec>, f: impl FnOnce(&[iovec]) -> R) -> R {
    if n <= IOV_STACK {
        let mut a = [EMPTY_IOV; IOV_STACK];
        let mut k = 0;
        for (slot, v) in a.iter_mut().zip(fill) {
            *slot = v;
            k += 1;
        }
        f(&a[..k])
    } else {
        let v: Vec<iovec> = fill.collect();
        f(&v)
    }
}

impl CBackend {
    /// # Safety
    /// As `qrs_p9_backend_c_new`: the functions of `ops` behave as
    /// `QrsP9BackendOps` documents and may be called from any thread,
    /// concurrently, with `opaque`, until the backend is dropped.
    pub(crate) unsafe fn new(
        ops: &QrsP9BackendOps,
        opaque: *mut c_void,
    ) -> std::result::Result<Self, i32> {
        let o = ops;
        let required = [
            o.name_to_path.is_some(),
            o.lstat.is_some(),
            o.readlink.is_some(),
            o.statfs.is_some(),
            o.chmod.is_some(),
            o.chown.is_some(),
            o.utimensat.is_some(),
            o.truncate.is_some(),
            o.mknod.is_some(),
            o.mkdir.is_some(),
            o.symlink.is_some(),
            o.link.is_some(),
            o.renameat.is_some(),
            o.unlinkat.is_some(),
            o.open.is_some(),
            o.opendir.is_some(),
            o.open2.is_some(),
            o.close.is_some(),
            o.closedir.is_some(),
            o.preadv.is_some(),
            o.pwritev.is_some(),
            o.fsync.is_some(),
            o.readdir.is_some(),
        ];
        if required.contains(&false) {
            return Err(-libc::EINVAL);
        }
        Ok(CBackend {
            inner: Arc::new(Inner { ops: *ops, opaque }),
            paths: ops.flags & QRS_P9_BACKEND_PATHNAMES != 0,
            root: Mutex::new(None),
            rename: Mutex::new(None),
        })
    }

    fn ops(&self) -> &QrsP9BackendOps {
        &self.inner.ops
    }

    fn opaque(&self) -> *mut c_void {
        self.inner.opaque
    }

    /// One `name_to_path` call into `out`: the length, or `None` when the
    /// path does not fit.
    fn name_to_path_into(
        &self,
        dir: *const QrsP9Path,
        name: *const c_char,
        out: &mut [u8],
    ) -> Result<Option<usize>> {
        let f = req(self.ops().name_to_path)?;
        // SAFETY: `dir` is NULL or a live path, `name` NUL-terminated, and
        // `out` writable for `out.len()` bytes, as the function expects.
        let r = unsafe { f(self.opaque(), dir, name, out.as_mut_ptr(), out.len()) };
        if r == -(libc::ENAMETOOLONG as isize) {
            return Ok(None);
        }
        check_len(r, out.len()).map(Some)
    }

    /// The path of `name` in `dir` (`None`: the root, with name `/`).
    fn name_to_path(&self, dir: Option<&[u8]>, name: &[u8]) -> Result<Node> {
        let d = dir.map(cpath);
        let dptr = d.as_ref().map_or(null(), |d| d as *const QrsP9Path);
        with_name(name, |cname| {
            let mut buf = [0u8; PATH_MAX + 1];
            if let Some(n) = self.name_to_path_into(dptr, cname, &mut buf)? {
                return Ok(buf[..n].into());
            }
            // Longer than PATH_MAX: grow on the heap, up to PATH_LIMIT.
            let mut size = (PATH_MAX + 1) * 4;
            while size <= PATH_LIMIT {
                let mut v = vec![0u8; size];
                if let Some(n) = self.name_to_path_into(dptr, cname, &mut v)? {
                    v.truncate(n);
                    return Ok(v.into());
                }
                size *= 4;
            }
            Err(ENAMETOOLONG)
        })
    }

    fn lstat_raw(&self, p: &[u8]) -> Result<stat> {
        let f = req(self.ops().lstat)?;
        let path = cpath(p);
        // SAFETY: stat is plain integers; all-zero is a valid value.
        let mut st: stat = unsafe { std::mem::zeroed() };
        // SAFETY: a live path and a writable stat.
        check(unsafe { f(self.opaque(), &path, &mut st) })?;
        Ok(st)
    }

    fn lstat(&self, p: &[u8]) -> Result<Attr> {
        self.lstat_raw(p).map(|st| attr_of(&st))
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

    fn open_state(
        &self,
        dir: bool,
        open: impl FnOnce(*mut *mut c_void) -> c_int,
    ) -> Result<CHandle> {
        let mut raw: *mut c_void = null_mut();
        check(open(&mut raw))?;
        Ok(CHandle {
            inner: Arc::clone(&self.inner),
            raw,
            dir,
        })
    }

    fn renameat_raw(
        &self,
        olddir: &[u8],
        oldname: &[u8],
        newdir: &[u8],
        newname: &[u8],
    ) -> Result<()> {
        let f = req(self.ops().renameat)?;
        let (od, nd) = (cpath(olddir), cpath(newdir));
        with_name(oldname, |on| {
            with_name(newname, |nn| {
                // SAFETY: live paths and NUL-terminated names.
                check(unsafe { f(self.opaque(), &od, on, &nd, nn) })
            })
        })
    }

    fn unlinkat_raw(&self, dir: &[u8], name: &[u8], flags: c_int) -> Result<()> {
        let f = req(self.ops().unlinkat)?;
        let d = cpath(dir);
        // SAFETY: a live path and a NUL-terminated name.
        with_name(name, |n| check(unsafe { f(self.opaque(), &d, n, flags) }))
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

    /// The vtable's `fstat` of `h`: `None` without one; on failure the
    /// errno and what it left in the `stat`.
    fn fstat_raw(&self, h: &CHandle) -> Option<std::result::Result<stat, (Errno, stat)>> {
        let f = self.ops().fstat?;
        // SAFETY: stat is plain integers; all-zero is a valid value.
        let mut st: stat = unsafe { std::mem::zeroed() };
        // SAFETY: the handle's open state and a writable stat.
        let r = unsafe { f(self.opaque(), h.raw, c_int::from(h.dir), &mut st) };
        Some(check(r).map(|()| st).map_err(|e| (e, st)))
    }

    /// The check 9p.c's Tlock and Tgetlock make before answering without
    /// a lock function: `fstat` of the handle must work.  `EOPNOTSUPP`
    /// passes (the handle is usable; only its attributes are not; 9p.c
    /// then asks `lstat` of the path, which lock functions do not have).
    fn fstat_check(&self, h: &CHandle) -> Result<()> {
        match self.fstat_raw(h) {
            None | Some(Ok(_)) | Some(Err((EOPNOTSUPP, _))) => Ok(()),
            Some(Err((e, _))) => Err(e),
        }
    }

    /// Pass `iov` to `call` (`preadv` or `pwritev`) at `offset`, in pieces
    /// of at most `IOV_MAX`; stops at the first short transfer.
    fn vectored(
        &self,
        iov: &[iovec],
        offset: u64,
        call: impl Fn(*const iovec, c_int, i64) -> isize,
    ) -> Result<usize> {
        let mut off = i64::try_from(offset).map_err(|_| EINVAL)?;
        let mut done = 0usize;
        for piece in iov.chunks(IOV_MAX) {
            let want: usize = piece.iter().map(|v| v.iov_len).sum();
            let r = call(piece.as_ptr(), piece.len() as c_int, off);
            let n = match check_len(r, want) {
                Ok(n) => n,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            done += n;
            if n < want {
                break;
            }
            off = off.checked_add(n as i64).ok_or(EINVAL)?;
        }
        Ok(done)
    }
}

/// What the `readdir` trampoline works with.
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
    panic: Option<Box<dyn Any + Send>>,
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

/// The `emit` given to the vtable's `readdir`.
///
/// # Safety
/// `ctx` is the `DirCtx` `CBackend::readdir` passed, `entry` NULL or a
/// readable `struct dirent` with a NUL-terminated name.
#[allow(clippy::unnecessary_cast)] // d_ino's type varies by platform
unsafe extern "C" fn emit_dirent(ctx: *mut c_void, entry: *const dirent) -> c_int {
    // SAFETY: `readdir` passes its own live, exclusively borrowed DirCtx.
    let ctx = unsafe { &mut *ctx.cast::<DirCtx<'_>>() };
    if ctx.panic.is_some() || ctx.error.is_some() {
        return 1;
    }
    if entry.is_null() {
        ctx.error = Some(EIO);
        return 1;
    }
    // SAFETY: a readable dirent, per the contract; fields are read through
    // raw pointers because glibc's records may be shorter than the struct.
    let (ino, off, d_type, name) = unsafe {
        let base = addr_of!((*entry).d_name).cast::<u8>();
        // d_name's size (and the struct's tail padding): a name without
        // a NUL in there is malformed anyway.
        let max = size_of::<dirent>() - std::mem::offset_of!(dirent, d_name);
        let mut len = 0;
        while len < max && *base.add(len) != 0 {
            len += 1;
        }
        (
            addr_of!((*entry).d_ino).read_unaligned(),
            addr_of!((*entry).d_off).read_unaligned(),
            addr_of!((*entry).d_type).read_unaligned(),
            std::slice::from_raw_parts(base, len),
        )
    };
    match catch_unwind(AssertUnwindSafe(|| {
        ctx.offer(ino as u64, off as u64, d_type, name)
    })) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(p) => {
            ctx.panic = Some(p);
            1
        }
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
        match self.fstat_raw(h) {
            None => self.lstat(node),
            Some(Ok(st)) => Ok(attr_of(&st)),
            Some(Err((EOPNOTSUPP, partial))) => match self.lstat_raw(node) {
                Ok(st) => Ok(attr_of(&st)),
                Err(ENOENT) => Ok(attr_of(&partial)),
                Err(e) => Err(e),
            },
            Some(Err((e, _))) => Err(e),
        }
    }

    /// `get_st_gen` (cofile.c `v9fs_co_st_gen`); 0 without one.
    fn generation(&self, node: &Node, attr: &Attr) -> Result<u64> {
        let Some(f) = self.ops().get_st_gen else {
            return Ok(0);
        };
        let p = cpath(node);
        let mut gen = 0u64;
        // SAFETY: a live path and a writable u64.
        check(unsafe { f(self.opaque(), &p, attr.mode, &mut gen) })?;
        Ok(gen)
    }

    /// 9p.c `v9fs_setattr`'s order: mode, times, owner, size; all by path
    /// (`FileOperations` has no ftruncate, so `handle` is unused).
    fn setattr(&self, node: &Node, _handle: Option<&CHandle>, set: &SetAttr) -> Result<()> {
        let p = cpath(node);
        if let Some(mode) = set.mode {
            let f = req(self.ops().chmod)?;
            let cred = QrsP9Cred { mode, ..CRED_UNSET };
            // SAFETY: a live path and cred.
            check(unsafe { f(self.opaque(), &p, &cred) })?;
        }
        if set.atime != SetTime::Omit || set.mtime != SetTime::Omit {
            let f = req(self.ops().utimensat)?;
            let times = [timespec_of(set.atime), timespec_of(set.mtime)];
            // SAFETY: a live path and two timespecs.
            check(unsafe { f(self.opaque(), &p, times.as_ptr()) })?;
        }
        if set.uid.is_some() || set.gid.is_some() {
            let f = req(self.ops().chown)?;
            let cred = QrsP9Cred {
                uid: set.uid.unwrap_or(u32::MAX),
                gid: set.gid.unwrap_or(u32::MAX),
                ..CRED_UNSET
            };
            // SAFETY: a live path and cred.
            check(unsafe { f(self.opaque(), &p, &cred) })?;
        }
        if let Some(size) = set.size {
            let f = req(self.ops().truncate)?;
            let size = i64::try_from(size).map_err(|_| EINVAL)?;
            // SAFETY: a live path.
            check(unsafe { f(self.opaque(), &p, size) })?;
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
        let f = req(self.ops().open)?;
        let p = cpath(node);
        // SAFETY: a live path and a writable handle slot.
        self.open_state(false, |h| unsafe { f(self.opaque(), &p, flags, h) })
    }

    fn opendir(&self, node: &Node) -> Result<CHandle> {
        let f = req(self.ops().opendir)?;
        let p = cpath(node);
        // SAFETY: a live path and a writable handle slot.
        self.open_state(true, |h| unsafe { f(self.opaque(), &p, h) })
    }

    fn create(
        &self,
        dir: &Node,
        name: &[u8],
        flags: i32,
        mode: u32,
        cred: &Cred,
    ) -> Result<(Node, CHandle, Attr)> {
        let f = req(self.ops().open2)?;
        let d = cpath(dir);
        // cofile.c `v9fs_co_open2`.
        let c = QrsP9Cred {
            uid: cred.uid,
            gid: cred.gid,
            mode: mode & 0o7777,
            ..CRED_UNSET
        };
        let h = with_name(name, |n| {
            // SAFETY: a live path, NUL-terminated name, cred and a
            // writable handle slot.
            self.open_state(false, |h| unsafe {
                f(self.opaque(), &d, n, flags | libc::O_CREAT, &c, h)
            })
        })?;
        // On failure `h` drops here, closing the file (as 9p.c does).
        let (node, attr) = self.entry(dir, name)?;
        Ok((node, h, attr))
    }

    fn mkdir(&self, dir: &Node, name: &[u8], mode: u32, cred: &Cred) -> Result<Attr> {
        let f = req(self.ops().mkdir)?;
        let d = cpath(dir);
        let c = QrsP9Cred {
            uid: cred.uid,
            gid: cred.gid,
            mode,
            ..CRED_UNSET
        };
        // SAFETY: a live path, NUL-terminated name and cred.
        with_name(name, |n| check(unsafe { f(self.opaque(), &d, n, &c) }))?;
        self.entry(dir, name).map(|(_, a)| a)
    }

    fn symlink(&self, dir: &Node, name: &[u8], target: &[u8], cred: &Cred) -> Result<Attr> {
        let f = req(self.ops().symlink)?;
        let d = cpath(dir);
        // cofs.c `v9fs_co_symlink`: mode 0777.
        let c = QrsP9Cred {
            uid: cred.uid,
            gid: cred.gid,
            mode: 0o777,
            ..CRED_UNSET
        };
        with_name(target, |t| {
            with_name(name, |n| {
                // SAFETY: NUL-terminated target and name, a live path and
                // cred.
                check(unsafe { f(self.opaque(), t, &d, n, &c) })
            })
        })?;
        self.entry(dir, name).map(|(_, a)| a)
    }

    fn mknod(&self, dir: &Node, name: &[u8], mode: u32, rdev: u64, cred: &Cred) -> Result<Attr> {
        let f = req(self.ops().mknod)?;
        let d = cpath(dir);
        let c = QrsP9Cred {
            uid: cred.uid,
            gid: cred.gid,
            mode,
            rdev,
        };
        // SAFETY: a live path, NUL-terminated name and cred.
        with_name(name, |n| check(unsafe { f(self.opaque(), &d, n, &c) }))?;
        self.entry(dir, name).map(|(_, a)| a)
    }

    fn link(&self, target: &Node, dir: &Node, name: &[u8]) -> Result<()> {
        let f = req(self.ops().link)?;
        let (t, d) = (cpath(target), cpath(dir));
        // SAFETY: live paths and a NUL-terminated name.
        with_name(name, |n| check(unsafe { f(self.opaque(), &t, &d, n) }))
    }

    fn readlink(&self, node: &Node) -> Result<Vec<u8>> {
        let f = req(self.ops().readlink)?;
        let p = cpath(node);
        let mut size = 256;
        loop {
            let mut buf = vec![0u8; size];
            // SAFETY: a live path and `size` writable bytes.
            let r = unsafe { f(self.opaque(), &p, buf.as_mut_ptr().cast(), size) };
            let n = check_len(r, size)?;
            if n < size {
                buf.truncate(n);
                return Ok(buf);
            }
            // Maybe cut short: retry bigger, up to PATH_MAX.
            if size >= PATH_MAX {
                return Err(ENAMETOOLONG);
            }
            size = PATH_MAX;
        }
    }

    fn rename(&self, olddir: &Node, oldname: &[u8], newdir: &Node, newname: &[u8]) -> Result<()> {
        self.renameat_raw(olddir, oldname, newdir, newname)
    }

    fn unlink(&self, dir: &Node, name: &[u8], rmdir: bool) -> Result<()> {
        let flags = if rmdir { libc::AT_REMOVEDIR } else { 0 };
        self.unlinkat_raw(dir, name, flags)
    }

    fn remove(&self, node: &Node) -> Result<()> {
        if let Some(f) = self.ops().remove {
            let p = cpath(node);
            // SAFETY: a live path.
            return check(unsafe { f(self.opaque(), &p) });
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
        self.unlinkat_raw(&parent, name, flags)
    }

    fn name(&self, node: &Node) -> Result<Vec<u8>> {
        if !self.paths {
            return Err(EOPNOTSUPP);
        }
        Ok(basename(node).to_vec())
    }

    fn read(&self, h: &CHandle, offset: u64, bufs: &mut [IoSliceMut<'_>]) -> Result<usize> {
        let f = req(self.ops().preadv)?;
        let n = bufs.len();
        let iov = bufs.iter_mut().map(|b| iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        });
        with_iovecs(n, iov, |iov| {
            self.vectored(iov, offset, |v, cnt, off| {
                // SAFETY: `cnt` iovecs over the caller's writable buffers,
                // and the handle's open state.
                unsafe { f(self.opaque(), h.raw, v, cnt, off) }
            })
        })
    }

    fn write(&self, h: &CHandle, offset: u64, bufs: &[IoSlice<'_>]) -> Result<usize> {
        let f = req(self.ops().pwritev)?;
        let iov = bufs.iter().map(|b| iovec {
            // pwritev only reads through it.
            iov_base: b.as_ptr() as *mut c_void,
            iov_len: b.len(),
        });
        with_iovecs(bufs.len(), iov, |iov| {
            self.vectored(iov, offset, |v, cnt, off| {
                // SAFETY: `cnt` iovecs over the caller's buffers, and the
                // handle's open state.
                unsafe { f(self.opaque(), h.raw, v, cnt, off) }
            })
        })
    }

    fn fsync(&self, h: &CHandle, datasync: bool) -> Result<()> {
        let f = req(self.ops().fsync)?;
        // SAFETY: the handle's open state.
        check(unsafe {
            f(
                self.opaque(),
                h.raw,
                c_int::from(h.dir),
                c_int::from(datasync),
            )
        })
    }

    fn readdir(
        &self,
        dir: &Node,
        h: &CHandle,
        offset: u64,
        want_attr: bool,
        sink: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<()> {
        let f = req(self.ops().readdir)?;
        let off = i64::try_from(offset).map_err(|_| EINVAL)?;
        let mut ctx = DirCtx {
            backend: self,
            dir,
            want_attr,
            sink,
            dir_attr: None,
            taken: 0,
            error: None,
            panic: None,
        };
        let emit: QrsP9DirentFn = emit_dirent;
        // SAFETY: the handle's open state; `ctx` outlives the call and is
        // used only by `emit_dirent`, on this thread, during it.
        let r = unsafe {
            f(
                self.opaque(),
                h.raw,
                off,
                emit,
                (&mut ctx as *mut DirCtx<'_>).cast(),
            )
        };
        if let Some(p) = ctx.panic.take() {
            resume_unwind(p);
        }
        if let Some(e) = ctx.error {
            return Err(e);
        }
        match check(r) {
            // Entries already taken go out; the next Treaddir retries.
            Err(_) if ctx.taken > 0 => Ok(()),
            r => r,
        }
    }

    fn statfs(&self, node: &Node) -> Result<StatFs> {
        let f = req(self.ops().statfs)?;
        let p = cpath(node);
        // SAFETY: statfs is plain integers; all-zero is a valid value.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: a live path and a writable statfs.
        check(unsafe { f(self.opaque(), &p, &mut st) })?;
        Ok(p9_native::wire_statfs(&st))
    }

    fn getxattr(&self, node: &Node, name: &[u8], buf: &mut [u8]) -> Result<usize> {
        let f = self.ops().lgetxattr.ok_or(EOPNOTSUPP)?;
        let p = cpath(node);
        let ptr = if buf.is_empty() {
            null_mut()
        } else {
            buf.as_mut_ptr().cast()
        };
        with_name(name, |n| {
            // SAFETY: a live path, a NUL-terminated name, and `buf.len()`
            // writable bytes (or NULL, 0: a size query).
            let r = unsafe { f(self.opaque(), &p, n, ptr, buf.len()) };
            check_len(
                r,
                if buf.is_empty() {
                    isize::MAX as usize
                } else {
                    buf.len()
                },
            )
        })
    }

    fn listxattr(&self, node: &Node, buf: &mut [u8]) -> Result<usize> {
        let f = self.ops().llistxattr.ok_or(EOPNOTSUPP)?;
        let p = cpath(node);
        let ptr = if buf.is_empty() {
            null_mut()
        } else {
            buf.as_mut_ptr().cast()
        };
        // SAFETY: a live path and `buf.len()` writable bytes (or NULL, 0).
        let r = unsafe { f(self.opaque(), &p, ptr, buf.len()) };
        check_len(
            r,
            if buf.is_empty() {
                isize::MAX as usize
            } else {
                buf.len()
            },
        )
    }

    fn setxattr(&self, node: &Node, name: &[u8], value: &[u8], flags: u32) -> Result<()> {
        let f = self.ops().lsetxattr.ok_or(EOPNOTSUPP)?;
        let p = cpath(node);
        let flags = c_int::try_from(flags).map_err(|_| EINVAL)?;
        with_name(name, |n| {
            // SAFETY: a live path, a NUL-terminated name and `value`.
            check(unsafe {
                f(
                    self.opaque(),
                    &p,
                    n,
                    value.as_ptr().cast(),
                    value.len(),
                    flags,
                )
            })
        })
    }

    fn removexattr(&self, node: &Node, name: &[u8]) -> Result<()> {
        let f = self.ops().lremovexattr.ok_or(EOPNOTSUPP)?;
        let p = cpath(node);
        // SAFETY: a live path and a NUL-terminated name.
        with_name(name, |n| check(unsafe { f(self.opaque(), &p, n) }))
    }

    fn lock(&self, h: &CHandle, lock: &Lock) -> Result<LockStatus> {
        let Some(f) = self.ops().lock else {
            // 9p.c `v9fs_lock`: the fstat check, then success.
            self.fstat_check(h)?;
            return Ok(LockStatus::Success);
        };
        let l = to_c_lock(lock);
        // SAFETY: the handle's open state and a live lock.
        match unsafe { f(self.opaque(), h.raw, &l) } {
            1 => Ok(LockStatus::Blocked),
            r => check(r).map(|()| LockStatus::Success),
        }
    }

    fn getlock(&self, h: &CHandle, lock: &Lock) -> Result<Option<Lock>> {
        let Some(f) = self.ops().getlock else {
            // 9p.c `v9fs_getlock`: the fstat check, then no conflict.
            self.fstat_check(h)?;
            return Ok(None);
        };
        let mut l = to_c_lock(lock);
        // SAFETY: the handle's open state and a writable lock.
        check(unsafe { f(self.opaque(), h.raw, &mut l) })?;
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
        self.renameat_raw(&parent, name, target, newname)?;
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
        let (n, _) = strip_nul(node);
        let (d, _) = strip_nul(dir);
        n.len() == d.len() + 1 + name.len()
            && n.starts_with(d)
            && n[d.len()] == b'/'
            && n.ends_with(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_helpers() {
        assert_eq!(basename(b"./a/b\0"), b"b");
        assert_eq!(basename(b".\0"), b".");
        let (p, n) = split_path(b"./a\0").unwrap();
        assert_eq!((&*p, n), (&b".\0"[..], &b"a"[..]));
        let (p, n) = split_path(b"./a/b").unwrap();
        assert_eq!((&*p, n), (&b"./a"[..], &b"b"[..]));
        let (p, n) = split_path(b"/x\0").unwrap();
        assert_eq!((&*p, n), (&b"/\0"[..], &b"x"[..]));
        assert!(split_path(b".\0").is_none());
        assert!(split_path(b"./..\0").is_none());
        let f = |n: &[u8], o: &[u8], w: &[u8]| fix_path(n, o, w).map(|p| p.to_vec());
        assert_eq!(f(b"./a\0", b"./a\0", b"./b\0"), Some(b"./b\0".to_vec()));
        assert_eq!(
            f(b"./a/x\0", b"./a\0", b"./c/d\0"),
            Some(b"./c/d/x\0".to_vec())
        );
        assert_eq!(f(b"./ab\0", b"./a\0", b"./b\0"), None);
        assert_eq!(f(b"./b\0", b"./a\0", b"./c\0"), None);
        assert_eq!(errno_of(-2), ENOENT);
        assert_eq!(errno_of(isize::MIN), EIO);
        assert_eq!(errno_of(-5000), EIO);
    }
}
