// SPDX-License-Identifier: GPL-2.0-or-later
//! `CVtable`: a backend's `QrsP9BackendOps` and `opaque`, reached only
//! through safe methods, one per vtable entry.  This file holds every call
//! into the C backend (and `trampoline.rs` the one call back out of it).
//!
//! Each call relies on "the contract" (its SAFETY comments say so): the
//! promises of `qrs_p9_backend_c_new`'s caller, which [`CVtable::new`]'s
//! caller passes on: the functions behave as `QrsP9BackendOps` documents
//! them (buffer lengths included) and may be called with `opaque` from
//! any thread, concurrently, until the backend is dropped.  The methods
//! supply the rest of each function's preconditions: paths are
//! `QrsP9Path`s over borrowed bytes, live for the call; names are
//! NUL-terminated; buffers are writable for the length passed with them;
//! open state is what the matching open function stored, used until its
//! one close.  What C returns is not trusted: a byte count beyond the
//! buffer given is `EIO`, as is a negative value that is no errno.

use std::ffi::{c_int, c_void};
use std::io::{IoSlice, IoSliceMut};
use std::panic::resume_unwind;
use std::ptr::{null, null_mut};
use std::sync::Arc;

use libc::{iovec, stat, timespec};
use p9_engine::backend::{LockStatus, Result, SetTime};
use p9_wire::errno::{Errno, EINVAL, EIO, ENAMETOOLONG, ENOSYS, EOPNOTSUPP};

use super::paths::{with_name, Node};
use super::trampoline::{emit_dirent, Dirent, EmitCtx};
use crate::errno::from_neg_errno;
use crate::p9::vtable::{QrsP9BackendOps, QrsP9Cred, QrsP9DirentFn, QrsP9Lock, QrsP9Path};

/// `PATH_MAX`: the first `name_to_path` buffer holds a path this long plus
/// its NUL, and `readlink` targets are at most this long (Linux's bound).
const PATH_MAX: usize = libc::PATH_MAX as usize;

/// Bound on what `name_to_path` may produce: 9p-local's paths are
/// unbounded strings (it resolves them one component at a time, so they
/// may exceed `PATH_MAX` in deep trees); past 1 MiB we answer
/// `ENAMETOOLONG` rather than keep growing.
const PATH_LIMIT: usize = 1 << 20;

/// The first `readlink` buffer; a target that fills it is read again into
/// `PATH_MAX` bytes.
const READLINK_FIRST: usize = 256;

/// `IOV_MAX`: longer scatter lists are passed in pieces.
const IOV_MAX: usize = 1024;

/// A C backend: its functions, checked by [`CVtable::new`], and the
/// `opaque` they get.
pub(crate) struct CVtable {
    ops: QrsP9BackendOps,
    opaque: *mut c_void,
}

// SAFETY: `qrs_p9_backend_c_new`'s contract: the functions may be called
// from any thread, concurrently, with `opaque`.
unsafe impl Send for CVtable {}
// SAFETY: as above; nothing here is mutated.
unsafe impl Sync for CVtable {}

/// An open file or directory: the state `open`, `open2` or `opendir`
/// stored, closed with `close` or `closedir` on drop.
pub(crate) struct CHandle {
    vtable: Arc<CVtable>,
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
        let close = if self.dir {
            self.vtable.ops.closedir
        } else {
            self.vtable.ops.close
        };
        if let Some(close) = close {
            // SAFETY: the contract; `raw` came from the matching open function
            // and is closed exactly once, here.
            unsafe { close(self.vtable.opaque, self.raw) };
        }
    }
}

/// An `int` result: only negative values fail.
fn check(r: c_int) -> Result<()> {
    from_neg_errno(r).map(drop)
}

/// A byte count result, at most `max`.
fn check_len(r: isize, max: usize) -> Result<usize> {
    match from_neg_errno(r)? {
        n if n <= max => Ok(n),
        _ => Err(EIO),
    }
}

/// A function `new` checked is there (never `ENOSYS` in practice).
fn req<F>(f: Option<F>) -> Result<F> {
    f.ok_or(ENOSYS)
}

/// `p` as C sees it, borrowed for one call.
fn cpath(p: &[u8]) -> QrsP9Path {
    QrsP9Path {
        data: p.as_ptr(),
        size: p.len(),
    }
}

fn zeroed_stat() -> stat {
    // SAFETY: stat is plain integers; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// `t` as `utimensat(2)` takes it.
pub(super) fn timespec_of(t: SetTime) -> timespec {
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

/// Pass `iov` to `call` (`preadv` or `pwritev`) at `offset`, in pieces of
/// at most `IOV_MAX`; stops at the first short transfer.
fn vectored(
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

impl CVtable {
    /// Check that every required function of `ops` is there (`EINVAL`
    /// otherwise) and keep a copy.
    ///
    /// # Safety
    /// As `qrs_p9_backend_c_new`: the functions of `ops` behave as
    /// `QrsP9BackendOps` documents and may be called from any thread,
    /// concurrently, with `opaque`, until the `CVtable` and every
    /// [`CHandle`] it made are dropped.
    pub(crate) unsafe fn new(
        ops: &QrsP9BackendOps,
        opaque: *mut c_void,
    ) -> std::result::Result<Self, Errno> {
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
            return Err(EINVAL);
        }
        Ok(CVtable { ops: *ops, opaque })
    }

    /// `QrsP9BackendOps.flags`.
    pub(crate) fn flags(&self) -> u32 {
        self.ops.flags
    }

    /// One `name_to_path` call into `out`: the length, or `None` when the
    /// path does not fit.
    fn name_to_path_into(
        &self,
        dir: Option<&QrsP9Path>,
        name: &std::ffi::CStr,
        out: &mut [u8],
    ) -> Result<Option<usize>> {
        let f = req(self.ops.name_to_path)?;
        let dir = dir.map_or(null(), |d| d as *const QrsP9Path);
        // SAFETY: the contract; `dir` is NULL or a live path, `name`
        // NUL-terminated, and `out` writable for `out.len()` bytes, as the
        // function expects.
        let r = unsafe { f(self.opaque, dir, name.as_ptr(), out.as_mut_ptr(), out.len()) };
        match check_len(r, out.len()) {
            Err(ENAMETOOLONG) => Ok(None),
            r => r.map(Some),
        }
    }

    /// `name_to_path`: the path of `name` in `dir` (`None`: the root, with
    /// name `/`), in a buffer grown until it fits (up to `PATH_LIMIT`).
    pub(crate) fn name_to_path(&self, dir: Option<&[u8]>, name: &[u8]) -> Result<Node> {
        let d = dir.map(cpath);
        with_name(name, |cname| {
            let mut buf = [0u8; PATH_MAX + 1];
            if let Some(n) = self.name_to_path_into(d.as_ref(), cname, &mut buf)? {
                return Ok(buf[..n].into());
            }
            // Longer than PATH_MAX: grow on the heap, up to PATH_LIMIT.
            let mut size = (PATH_MAX + 1) * 4;
            while size <= PATH_LIMIT {
                let mut v = vec![0u8; size];
                if let Some(n) = self.name_to_path_into(d.as_ref(), cname, &mut v)? {
                    v.truncate(n);
                    return Ok(v.into());
                }
                size *= 4;
            }
            Err(ENAMETOOLONG)
        })
    }

    /// `lstat` of `path`.
    pub(crate) fn lstat(&self, path: &[u8]) -> Result<stat> {
        let f = req(self.ops.lstat)?;
        let p = cpath(path);
        let mut st = zeroed_stat();
        // SAFETY: the contract; a live path and a writable stat.
        check(unsafe { f(self.opaque, &p, &mut st) })?;
        Ok(st)
    }

    /// `get_st_gen` of `path` with mode `mode`; `None` without one.
    pub(crate) fn get_st_gen(&self, path: &[u8], mode: u32) -> Option<Result<u64>> {
        let f = self.ops.get_st_gen?;
        let p = cpath(path);
        let mut gen = 0u64;
        // SAFETY: the contract; a live path and a writable u64.
        let r = unsafe { f(self.opaque, &p, mode, &mut gen) };
        Some(check(r).map(|()| gen))
    }

    /// `readlink` of `path`: the target, read again into `PATH_MAX` bytes
    /// when it fills the first buffer; `ENAMETOOLONG` past that.
    pub(crate) fn readlink(&self, path: &[u8]) -> Result<Vec<u8>> {
        let f = req(self.ops.readlink)?;
        let p = cpath(path);
        let mut size = READLINK_FIRST;
        loop {
            let mut buf = vec![0u8; size];
            // SAFETY: the contract; a live path and `size` writable bytes.
            let r = unsafe { f(self.opaque, &p, buf.as_mut_ptr().cast(), size) };
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

    /// `statfs` of the file system holding `path`.
    pub(crate) fn statfs(&self, path: &[u8]) -> Result<libc::statfs> {
        let f = req(self.ops.statfs)?;
        let p = cpath(path);
        // SAFETY: statfs is plain integers; all-zero is a valid value.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: the contract; a live path and a writable statfs.
        check(unsafe { f(self.opaque, &p, &mut st) })?;
        Ok(st)
    }

    /// `chmod` of `path` to `cred.mode`.
    pub(crate) fn chmod(&self, path: &[u8], cred: &QrsP9Cred) -> Result<()> {
        let f = req(self.ops.chmod)?;
        let p = cpath(path);
        // SAFETY: the contract; a live path and cred.
        check(unsafe { f(self.opaque, &p, cred) })
    }

    /// `chown` of `path` to `cred.uid`, `cred.gid`.
    pub(crate) fn chown(&self, path: &[u8], cred: &QrsP9Cred) -> Result<()> {
        let f = req(self.ops.chown)?;
        let p = cpath(path);
        // SAFETY: the contract; a live path and cred.
        check(unsafe { f(self.opaque, &p, cred) })
    }

    /// `utimensat` of `path`: access time, then modification time.
    pub(crate) fn utimensat(&self, path: &[u8], times: &[timespec; 2]) -> Result<()> {
        let f = req(self.ops.utimensat)?;
        let p = cpath(path);
        // SAFETY: the contract; a live path and two timespecs.
        check(unsafe { f(self.opaque, &p, times.as_ptr()) })
    }

    /// `truncate` of `path` to `size` bytes.
    pub(crate) fn truncate(&self, path: &[u8], size: i64) -> Result<()> {
        let f = req(self.ops.truncate)?;
        let p = cpath(path);
        // SAFETY: the contract; a live path.
        check(unsafe { f(self.opaque, &p, size) })
    }

    /// `mknod` of `name` in `dir`.
    pub(crate) fn mknod(&self, dir: &[u8], name: &[u8], cred: &QrsP9Cred) -> Result<()> {
        let f = req(self.ops.mknod)?;
        let d = cpath(dir);
        with_name(name, |n| {
            // SAFETY: the contract; a live path, NUL-terminated name and cred.
            check(unsafe { f(self.opaque, &d, n.as_ptr(), cred) })
        })
    }

    /// `mkdir` of `name` in `dir`.
    pub(crate) fn mkdir(&self, dir: &[u8], name: &[u8], cred: &QrsP9Cred) -> Result<()> {
        let f = req(self.ops.mkdir)?;
        let d = cpath(dir);
        with_name(name, |n| {
            // SAFETY: the contract; a live path, NUL-terminated name and cred.
            check(unsafe { f(self.opaque, &d, n.as_ptr(), cred) })
        })
    }

    /// `symlink`: `name` in `dir`, pointing to `target`.
    pub(crate) fn symlink(
        &self,
        target: &[u8],
        dir: &[u8],
        name: &[u8],
        cred: &QrsP9Cred,
    ) -> Result<()> {
        let f = req(self.ops.symlink)?;
        let d = cpath(dir);
        with_name(target, |t| {
            with_name(name, |n| {
                // SAFETY: the contract; NUL-terminated target and name, a live
                // path and cred.
                check(unsafe { f(self.opaque, t.as_ptr(), &d, n.as_ptr(), cred) })
            })
        })
    }

    /// `link`: `name` in `dir`, to the file at `target`.
    pub(crate) fn link(&self, target: &[u8], dir: &[u8], name: &[u8]) -> Result<()> {
        let f = req(self.ops.link)?;
        let (t, d) = (cpath(target), cpath(dir));
        with_name(name, |n| {
            // SAFETY: the contract; live paths and a NUL-terminated name.
            check(unsafe { f(self.opaque, &t, &d, n.as_ptr()) })
        })
    }

    /// `renameat` of `oldname` in `olddir` to `newname` in `newdir`.
    pub(crate) fn renameat(
        &self,
        olddir: &[u8],
        oldname: &[u8],
        newdir: &[u8],
        newname: &[u8],
    ) -> Result<()> {
        let f = req(self.ops.renameat)?;
        let (od, nd) = (cpath(olddir), cpath(newdir));
        with_name(oldname, |on| {
            with_name(newname, |nn| {
                // SAFETY: the contract; live paths and NUL-terminated names.
                check(unsafe { f(self.opaque, &od, on.as_ptr(), &nd, nn.as_ptr()) })
            })
        })
    }

    /// `unlinkat` of `name` in `dir` (`flags`: 0 or `AT_REMOVEDIR`).
    pub(crate) fn unlinkat(&self, dir: &[u8], name: &[u8], flags: c_int) -> Result<()> {
        let f = req(self.ops.unlinkat)?;
        let d = cpath(dir);
        with_name(name, |n| {
            // SAFETY: the contract; a live path and a NUL-terminated name.
            check(unsafe { f(self.opaque, &d, n.as_ptr(), flags) })
        })
    }

    /// `remove` of `path`; `None` without one.
    pub(crate) fn remove(&self, path: &[u8]) -> Option<Result<()>> {
        let f = self.ops.remove?;
        let p = cpath(path);
        // SAFETY: the contract; a live path.
        Some(check(unsafe { f(self.opaque, &p) }))
    }

    /// The open state `open` stores in its handle slot, as a [`CHandle`].
    fn open_state(
        self: &Arc<Self>,
        dir: bool,
        open: impl FnOnce(*mut *mut c_void) -> c_int,
    ) -> Result<CHandle> {
        let mut raw: *mut c_void = null_mut();
        check(open(&mut raw))?;
        Ok(CHandle {
            vtable: Arc::clone(self),
            raw,
            dir,
        })
    }

    /// `open` of the file at `path` with Linux open flags `flags`.
    pub(crate) fn open(self: &Arc<Self>, path: &[u8], flags: c_int) -> Result<CHandle> {
        let f = req(self.ops.open)?;
        let p = cpath(path);
        // SAFETY: the contract; a live path and a writable handle slot.
        self.open_state(false, |h| unsafe { f(self.opaque, &p, flags, h) })
    }

    /// `opendir` of the directory at `path`.
    pub(crate) fn opendir(self: &Arc<Self>, path: &[u8]) -> Result<CHandle> {
        let f = req(self.ops.opendir)?;
        let p = cpath(path);
        // SAFETY: the contract; a live path and a writable handle slot.
        self.open_state(true, |h| unsafe { f(self.opaque, &p, h) })
    }

    /// `open2`: create and open `name` in `dir`.
    pub(crate) fn open2(
        self: &Arc<Self>,
        dir: &[u8],
        name: &[u8],
        flags: c_int,
        cred: &QrsP9Cred,
    ) -> Result<CHandle> {
        let f = req(self.ops.open2)?;
        let d = cpath(dir);
        with_name(name, |n| {
            // SAFETY: the contract; a live path, NUL-terminated name, cred and
            // a writable handle slot.
            self.open_state(false, |h| unsafe {
                f(self.opaque, &d, n.as_ptr(), flags, cred, h)
            })
        })
    }

    /// `preadv` of `h` at `offset` into `bufs` (in pieces of `IOV_MAX`).
    pub(crate) fn preadv(
        &self,
        h: &CHandle,
        bufs: &mut [IoSliceMut<'_>],
        offset: u64,
    ) -> Result<usize> {
        let f = req(self.ops.preadv)?;
        // SAFETY: `IoSliceMut` is ABI-compatible with `iovec` (std's
        // guarantee on Unix); the iovecs are only read while `bufs` is
        // borrowed here.
        let iov =
            unsafe { std::slice::from_raw_parts(bufs.as_mut_ptr().cast::<iovec>(), bufs.len()) };
        vectored(iov, offset, |v, cnt, off| {
            // SAFETY: the contract; `cnt` iovecs over the caller's writable
            // buffers, and the handle's open state.
            unsafe { f(self.opaque, h.raw, v, cnt, off) }
        })
    }

    /// `pwritev` of `bufs` to `h` at `offset` (in pieces of `IOV_MAX`).
    pub(crate) fn pwritev(&self, h: &CHandle, bufs: &[IoSlice<'_>], offset: u64) -> Result<usize> {
        let f = req(self.ops.pwritev)?;
        // SAFETY: `IoSlice` is ABI-compatible with `iovec` (std's guarantee
        // on Unix); pwritev only reads through it.
        let iov = unsafe { std::slice::from_raw_parts(bufs.as_ptr().cast::<iovec>(), bufs.len()) };
        vectored(iov, offset, |v, cnt, off| {
            // SAFETY: the contract; `cnt` iovecs over the caller's buffers, and
            // the handle's open state.
            unsafe { f(self.opaque, h.raw, v, cnt, off) }
        })
    }

    /// `fsync` (`fdatasync` when `datasync`) of `h`.
    pub(crate) fn fsync(&self, h: &CHandle, datasync: bool) -> Result<()> {
        let f = req(self.ops.fsync)?;
        let (is_dir, datasync) = (c_int::from(h.dir), c_int::from(datasync));
        // SAFETY: the contract; the handle's open state.
        check(unsafe { f(self.opaque, h.raw, is_dir, datasync) })
    }

    /// `readdir` of `h` from position `offset`, calling `each` with every
    /// entry (`None` for a NULL one) until it returns false.  A panic in
    /// `each` is resumed here, once C has returned.
    pub(crate) fn readdir(
        &self,
        h: &CHandle,
        offset: u64,
        each: &mut dyn FnMut(Option<&Dirent<'_>>) -> bool,
    ) -> Result<()> {
        let f = req(self.ops.readdir)?;
        let off = i64::try_from(offset).map_err(|_| EINVAL)?;
        let mut ctx = EmitCtx::new(each);
        let emit: QrsP9DirentFn = emit_dirent;
        // SAFETY: the contract; the handle's open state; `ctx` outlives the
        // call and is used only by `emit_dirent`, on this thread, during it.
        let r = unsafe {
            f(
                self.opaque,
                h.raw,
                off,
                emit,
                (&mut ctx as *mut EmitCtx<'_>).cast(),
            )
        };
        if let Some(p) = ctx.panic.take() {
            resume_unwind(p);
        }
        check(r)
    }

    /// `lgetxattr` of `name` of `path` into `buf` (empty: the size);
    /// `EOPNOTSUPP` without one.
    pub(crate) fn lgetxattr(&self, path: &[u8], name: &[u8], buf: &mut [u8]) -> Result<usize> {
        let f = self.ops.lgetxattr.ok_or(EOPNOTSUPP)?;
        let p = cpath(path);
        let (ptr, max) = out_buffer(buf);
        with_name(name, |n| {
            // SAFETY: the contract; a live path, a NUL-terminated name, and
            // `buf.len()` writable bytes (or NULL, 0: a size query).
            let r = unsafe { f(self.opaque, &p, n.as_ptr(), ptr, buf.len()) };
            check_len(r, max)
        })
    }

    /// `llistxattr` of `path` into `buf` (empty: the size); `EOPNOTSUPP`
    /// without one.
    pub(crate) fn llistxattr(&self, path: &[u8], buf: &mut [u8]) -> Result<usize> {
        let f = self.ops.llistxattr.ok_or(EOPNOTSUPP)?;
        let p = cpath(path);
        let (ptr, max) = out_buffer(buf);
        // SAFETY: the contract; a live path and `buf.len()` writable bytes (or
        // NULL, 0).
        let r = unsafe { f(self.opaque, &p, ptr, buf.len()) };
        check_len(r, max)
    }

    /// `lsetxattr` of `name` of `path` to `value`; `EOPNOTSUPP` without
    /// one, `EINVAL` for flags beyond a C `int`.
    pub(crate) fn lsetxattr(
        &self,
        path: &[u8],
        name: &[u8],
        value: &[u8],
        flags: u32,
    ) -> Result<()> {
        let f = self.ops.lsetxattr.ok_or(EOPNOTSUPP)?;
        let p = cpath(path);
        let flags = c_int::try_from(flags).map_err(|_| EINVAL)?;
        let (v, len) = (value.as_ptr().cast(), value.len());
        with_name(name, |n| {
            // SAFETY: the contract; a live path, a NUL-terminated name and
            // `value`.
            check(unsafe { f(self.opaque, &p, n.as_ptr(), v, len, flags) })
        })
    }

    /// `lremovexattr` of `name` of `path`; `EOPNOTSUPP` without one.
    pub(crate) fn lremovexattr(&self, path: &[u8], name: &[u8]) -> Result<()> {
        let f = self.ops.lremovexattr.ok_or(EOPNOTSUPP)?;
        let p = cpath(path);
        // SAFETY: the contract; a live path and a NUL-terminated name.
        with_name(name, |n| check(unsafe { f(self.opaque, &p, n.as_ptr()) }))
    }

    /// `lock` on `h`; `None` without one.
    pub(crate) fn lock(&self, h: &CHandle, lock: &QrsP9Lock) -> Option<Result<LockStatus>> {
        let f = self.ops.lock?;
        // SAFETY: the contract; the handle's open state and a live lock.
        Some(match unsafe { f(self.opaque, h.raw, lock) } {
            1 => Ok(LockStatus::Blocked),
            r => check(r).map(|()| LockStatus::Success),
        })
    }

    /// `getlock` on `h`: `lock` as C overwrote it; `None` without one.
    pub(crate) fn getlock(&self, h: &CHandle, lock: &QrsP9Lock) -> Option<Result<QrsP9Lock>> {
        let f = self.ops.getlock?;
        let mut l = *lock;
        // SAFETY: the contract; the handle's open state and a writable lock.
        let r = unsafe { f(self.opaque, h.raw, &mut l) };
        Some(check(r).map(|()| l))
    }

    /// `fstat` of `h`: `None` without one; on failure the errno and what
    /// it left in the `stat`.
    pub(crate) fn fstat(&self, h: &CHandle) -> Option<std::result::Result<stat, (Errno, stat)>> {
        let f = self.ops.fstat?;
        let mut st = zeroed_stat();
        // SAFETY: the contract; the handle's open state and a writable stat.
        let r = unsafe { f(self.opaque, h.raw, c_int::from(h.dir), &mut st) };
        Some(check(r).map(|()| st).map_err(|e| (e, st)))
    }
}

/// `buf` as an xattr function's out-buffer: NULL for a size query (empty
/// `buf`), and the largest length the answer may have.
fn out_buffer(buf: &mut [u8]) -> (*mut c_void, usize) {
    if buf.is_empty() {
        (null_mut(), isize::MAX as usize)
    } else {
        (buf.as_mut_ptr().cast(), buf.len())
    }
}
