// SPDX-License-Identifier: GPL-2.0-or-later
//! Support for the C-vtable tests: a `QrsP9BackendOps` written as Rust
//! `extern "C"` functions over a host directory the way QEMU's 9p-local
//! does it (NUL-terminated paths relative to the export, `.` the root,
//! `./a` its children, every lookup done one component at a time with
//! `O_NOFOLLOW` from a root directory descriptor, open state holding an fd
//! or a `DIR *`), and a thread-mode server made through the C API whose
//! transport hands replies to a `p9_client::Client`.
#![allow(dead_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use libc::{dirent, iovec, stat, statfs, timespec};
use p9_client::{Client, Transport};
use p9_wire::consts::NOFID;
use qemurs::*;

/// The msize the tests negotiate.
pub const MSIZE: u32 = 65536;

/// `get_st_gen`'s answer for regular files.
pub const GEN: u64 = 0x5eed;

// ----- the export directory -----

/// The engine tests' setup, for its export directories.
#[path = "../../../p9-engine/tests/common/mod.rs"]
mod p9_client_common;

/// A fresh directory on tmpfs (user xattrs work there), removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory for test `name`.
    pub fn new(name: &str) -> TempDir {
        TempDir(p9_client_common::temp_dir(&format!("cvtable-{name}")))
    }

    /// `rel` under the directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ----- the backend -----

/// The backend's state (the vtable's `opaque`).
pub struct LocalFs {
    root: OwnedFd,
    root_path: PathBuf,
    /// Open states alive (opened and not yet closed).
    pub open_handles: AtomicIsize,
    /// `fstat` calls so far.
    pub fstat_calls: AtomicIsize,
    log: Mutex<Vec<String>>,
    violations: Mutex<Vec<String>>,
}

/// An open file or directory.
enum OpenState {
    File(OwnedFd),
    Dir(*mut libc::DIR),
}

fn last_errno() -> c_int {
    -std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn cstring(b: &[u8]) -> Result<CString, c_int> {
    CString::new(b).map_err(|_| -libc::EINVAL)
}

impl LocalFs {
    /// A backend exporting `root`.
    pub fn new(root: &Path) -> Arc<LocalFs> {
        let c = CString::new(root.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY) };
        assert!(
            fd >= 0,
            "open {root:?}: {}",
            std::io::Error::last_os_error()
        );
        Arc::new(LocalFs {
            // SAFETY: a descriptor we just opened and own.
            root: unsafe { OwnedFd::from_raw_fd(fd) },
            root_path: root.to_path_buf(),
            open_handles: AtomicIsize::new(0),
            fstat_calls: AtomicIsize::new(0),
            log: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
        })
    }

    /// The calls logged so far (state-changing ones, with arguments).
    pub fn log(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forget the log.
    pub fn clear_log(&self) {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Calls that broke the vtable's contract.
    pub fn violations(&self) -> Vec<String> {
        self.violations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn note(&self, s: String) {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(s);
    }

    fn violation(&self, s: String) {
        self.violations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(s);
    }

    /// A name as the contract says: one component, not `.` or `..`.
    fn check_name(&self, op: &str, n: &[u8]) -> Result<(), c_int> {
        if n.is_empty() || n == b"." || n == b".." || n.contains(&b'/') {
            self.violation(format!("{op}: bad name {:?}", String::from_utf8_lossy(n)));
            return Err(-libc::EINVAL);
        }
        Ok(())
    }

    fn openat(&self, dir: RawFd, name: &CStr, flags: c_int, mode: u32) -> Result<OwnedFd, c_int> {
        // SAFETY: a live descriptor and a NUL-terminated name.
        let fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, mode) };
        if fd < 0 {
            return Err(last_errno());
        }
        // SAFETY: a descriptor we just opened and own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// The directory holding the last component of `path`, and that
    /// component (`.` for the root), reached one component at a time
    /// without following symlinks (9p-local's `local_opendir_nofollow`).
    fn resolve(&self, path: &[u8]) -> Result<(OwnedFd, CString), c_int> {
        let comps: Vec<&[u8]> = path
            .split(|&c| c == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .collect();
        if comps.contains(&&b".."[..]) {
            self.violation(format!("path with ..: {}", String::from_utf8_lossy(path)));
            return Err(-libc::EINVAL);
        }
        let mut dir = self.root.try_clone().map_err(|_| -libc::EMFILE)?;
        let Some((last, walk)) = comps.split_last() else {
            return Ok((dir, c".".into()));
        };
        for c in walk {
            let c = cstring(c)?;
            dir = self.openat(
                dir.as_raw_fd(),
                &c,
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )?;
        }
        Ok((dir, cstring(last)?))
    }

    /// The directory at `path`, as an `O_PATH` descriptor.
    fn open_dir(&self, path: &[u8]) -> Result<OwnedFd, c_int> {
        let (p, n) = self.resolve(path)?;
        self.openat(
            p.as_raw_fd(),
            &n,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )
    }
}

/// The backend behind `opaque`.
///
/// # Safety
/// `o` is the `Arc<LocalFs>` pointer `serve` passed.
unsafe fn fs<'a>(o: *mut c_void) -> &'a LocalFs {
    // SAFETY: per the contract; the server is freed before the Arc.
    unsafe { &*o.cast::<LocalFs>() }
}

/// The string of a path, without its NUL.
///
/// # Safety
/// `p` is NULL or a live `QrsP9Path`.
unsafe fn path_of<'a>(fs: &LocalFs, p: *const QrsP9Path) -> Result<&'a [u8], c_int> {
    if p.is_null() {
        fs.violation("NULL path".into());
        return Err(-libc::EINVAL);
    }
    // SAFETY: a live path whose data has `size` bytes.
    let s = unsafe { std::slice::from_raw_parts((*p).data, (*p).size) };
    match s.split_last() {
        Some((0, rest)) if !rest.contains(&0) => Ok(rest),
        _ => {
            fs.violation(format!("path not NUL-terminated: {s:?}"));
            Err(-libc::EINVAL)
        }
    }
}

/// # Safety
/// `n` is a NUL-terminated string.
unsafe fn name_of<'a>(n: *const c_char) -> &'a [u8] {
    // SAFETY: per the contract.
    unsafe { CStr::from_ptr(n) }.to_bytes()
}

/// A C return type: an errno becomes it.
trait FromErrno {
    fn from_errno(e: c_int) -> Self;
}

impl FromErrno for c_int {
    fn from_errno(e: c_int) -> Self {
        e
    }
}

impl FromErrno for isize {
    fn from_errno(e: c_int) -> Self {
        e as isize
    }
}

/// Run a vtable function body; a panic becomes `-EIO` (it must not
/// unwind into the library).
fn guard<R: FromErrno>(f: impl FnOnce() -> Result<R, c_int>) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => R::from_errno(e),
        Err(_) => R::from_errno(-libc::EIO),
    }
}

fn zero_or_errno(r: c_int) -> Result<c_int, c_int> {
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(0)
    }
}

unsafe extern "C" fn name_to_path(
    o: *mut c_void,
    dir: *const QrsP9Path,
    name: *const c_char,
    out: *mut u8,
    out_size: usize,
) -> isize {
    guard(|| {
        // SAFETY: the vtable's contract for every function below.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let name = unsafe { name_of(name) };
        let mut p: Vec<u8> = if dir.is_null() {
            if name != b"/" {
                fs.violation(format!("root name {:?}", String::from_utf8_lossy(name)));
            }
            b".".to_vec()
        } else {
            // SAFETY: as above.
            let d = unsafe { path_of(fs, dir) }?;
            match name {
                b"." => d.to_vec(),
                b".." if d == b"." => {
                    fs.violation("name_to_path(\".\", \"..\")".into());
                    b".".to_vec()
                }
                b".." => {
                    let i = d.iter().rposition(|&c| c == b'/').unwrap_or(0);
                    if i == 0 {
                        b".".to_vec()
                    } else {
                        d[..i].to_vec()
                    }
                }
                n => {
                    fs.check_name("name_to_path", n)?;
                    [d, b"/", n].concat()
                }
            }
        };
        p.push(0);
        if p.len() > out_size {
            return Err(-libc::ENAMETOOLONG);
        }
        // SAFETY: `out` has `out_size` writable bytes.
        unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), out, p.len()) };
        Ok(p.len() as isize)
    })
}

unsafe extern "C" fn lstat_fn(o: *mut c_void, path: *const QrsP9Path, st: *mut stat) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let (d, n) = fs.resolve(unsafe { path_of(fs, path) }?)?;
        // SAFETY: a live descriptor, a NUL-terminated name, a writable stat.
        zero_or_errno(unsafe {
            libc::fstatat(d.as_raw_fd(), n.as_ptr(), st, libc::AT_SYMLINK_NOFOLLOW)
        })
    })
}

unsafe extern "C" fn get_st_gen(
    _o: *mut c_void,
    _path: *const QrsP9Path,
    mode: u32,
    gen: *mut u64,
) -> c_int {
    if mode & libc::S_IFMT != libc::S_IFREG {
        return -libc::ENOTTY;
    }
    // SAFETY: a writable u64, per the contract.
    unsafe { *gen = GEN };
    0
}

unsafe extern "C" fn readlink_fn(
    o: *mut c_void,
    path: *const QrsP9Path,
    buf: *mut c_char,
    size: usize,
) -> isize {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let (d, n) = fs.resolve(unsafe { path_of(fs, path) }?)?;
        // SAFETY: `buf` has `size` writable bytes.
        let r = unsafe { libc::readlinkat(d.as_raw_fd(), n.as_ptr(), buf, size) };
        if r < 0 {
            Err(last_errno())
        } else {
            Ok(r)
        }
    })
}

unsafe extern "C" fn statfs_fn(o: *mut c_void, path: *const QrsP9Path, st: *mut statfs) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let (d, n) = fs.resolve(unsafe { path_of(fs, path) }?)?;
        let f = fs.openat(d.as_raw_fd(), &n, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
        // SAFETY: a live descriptor and a writable statfs.
        zero_or_errno(unsafe { libc::fstatfs(f.as_raw_fd(), st) })
    })
}

unsafe extern "C" fn chmod_fn(
    o: *mut c_void,
    path: *const QrsP9Path,
    cred: *const QrsP9Cred,
) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let (fs, cred) = unsafe { (fs(o), *cred) };
        // SAFETY: as above.
        let p = unsafe { path_of(fs, path) }?;
        fs.note(format!(
            "chmod {} {:o}",
            String::from_utf8_lossy(p),
            cred.mode
        ));
        let (d, n) = fs.resolve(p)?;
        // SAFETY: a live descriptor and a NUL-terminated name.
        zero_or_errno(unsafe { libc::fchmodat(d.as_raw_fd(), n.as_ptr(), cred.mode, 0) })
    })
}

unsafe extern "C" fn chown_fn(
    o: *mut c_void,
    path: *const QrsP9Path,
    cred: *const QrsP9Cred,
) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let (fs, cred) = unsafe { (fs(o), *cred) };
        // SAFETY: as above.
        let p = unsafe { path_of(fs, path) }?;
        fs.note(format!(
            "chown {} {} {}",
            String::from_utf8_lossy(p),
            cred.uid as i32,
            cred.gid as i32
        ));
        let (d, n) = fs.resolve(p)?;
        // SAFETY: a live descriptor and a NUL-terminated name.
        zero_or_errno(unsafe {
            libc::fchownat(
                d.as_raw_fd(),
                n.as_ptr(),
                cred.uid,
                cred.gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })
    })
}

unsafe extern "C" fn utimensat_fn(
    o: *mut c_void,
    path: *const QrsP9Path,
    times: *const timespec,
) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let p = unsafe { path_of(fs, path) }?;
        // SAFETY: two timespecs, per the contract.
        let t = unsafe { [*times, *times.add(1)] };
        let show = |t: &timespec| match t.tv_nsec {
            libc::UTIME_OMIT => "omit".to_string(),
            libc::UTIME_NOW => "now".to_string(),
            n => format!("{}.{n}", t.tv_sec),
        };
        fs.note(format!(
            "utimensat {} {} {}",
            String::from_utf8_lossy(p),
            show(&t[0]),
            show(&t[1])
        ));
        let (d, n) = fs.resolve(p)?;
        // SAFETY: a live descriptor, a NUL-terminated name, two timespecs.
        zero_or_errno(unsafe {
            libc::utimensat(
                d.as_raw_fd(),
                n.as_ptr(),
                t.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })
    })
}

unsafe extern "C" fn truncate_fn(o: *mut c_void, path: *const QrsP9Path, size: i64) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let p = unsafe { path_of(fs, path) }?;
        fs.note(format!("truncate {} {size}", String::from_utf8_lossy(p)));
        let (d, n) = fs.resolve(p)?;
        let f = fs.openat(d.as_raw_fd(), &n, libc::O_WRONLY | libc::O_NOFOLLOW, 0)?;
        // SAFETY: a live descriptor.
        zero_or_errno(unsafe { libc::ftruncate(f.as_raw_fd(), size) })
    })
}

/// The directory `dir` and the checked `name` of a create-style call.
///
/// # Safety
/// As the vtable's contract: live `dir`, NUL-terminated `name`.
unsafe fn dir_and_name(
    fs: &LocalFs,
    op: &str,
    dir: *const QrsP9Path,
    name: *const c_char,
) -> Result<(OwnedFd, CString), c_int> {
    // SAFETY: per the contract.
    let (d, n) = unsafe { (path_of(fs, dir)?, name_of(name)) };
    fs.check_name(op, n)?;
    fs.note(format!(
        "{op} {}/{}",
        String::from_utf8_lossy(d),
        String::from_utf8_lossy(n)
    ));
    Ok((fs.open_dir(d)?, cstring(n)?))
}

unsafe extern "C" fn mknod_fn(
    o: *mut c_void,
    dir: *const QrsP9Path,
    name: *const c_char,
    cred: *const QrsP9Cred,
) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let (fs, cred) = unsafe { (fs(o), *cred) };
        // SAFETY: as above.
        let (d, n) = unsafe { dir_and_name(fs, "mknod", dir, name) }?;
        fs.note(format!("mknod mode {:o} rdev {}", cred.mode, cred.rdev));
        // SAFETY: a live descriptor and a NUL-terminated name.
        zero_or_errno(unsafe { libc::mknodat(d.as_raw_fd(), n.as_ptr(), cred.mode, cred.rdev) })
    })
}

unsafe extern "C" fn mkdir_fn(
    o: *mut c_void,
    dir: *const QrsP9Path,
    name: *const c_char,
    cred: *const QrsP9Cred,
) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let (fs, cred) = unsafe { (fs(o), *cred) };
        // SAFETY: as above.
        let (d, n) = unsafe { dir_and_name(fs, "mkdir", dir, name) }?;
        // SAFETY: a live descriptor and a NUL-terminated name.
        zero_or_errno(unsafe { libc::mkdirat(d.as_raw_fd(), n.as_ptr(), cred.mode & 0o7777) })
    })
}

unsafe extern "C" fn symlink_fn(
    o: *mut c_void,
    target: *const c_char,
    dir: *const QrsP9Path,
    name: *const c_char,
    _cred: *const QrsP9Cred,
) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let (d, n) = unsafe { dir_and_name(fs, "symlink", dir, name) }?;
        // SAFETY: NUL-terminated strings and a live descriptor.
        zero_or_errno(unsafe { libc::symlinkat(target, d.as_raw_fd(), n.as_ptr()) })
    })
}

unsafe extern "C" fn link_fn(
    o: *mut c_void,
    target: *const QrsP9Path,
    dir: *const QrsP9Path,
    name: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let (tp, tn) = fs.resolve(unsafe { path_of(fs, target) }?)?;
        // SAFETY: as above.
        let (d, n) = unsafe { dir_and_name(fs, "link", dir, name) }?;
        // SAFETY: live descriptors and NUL-terminated names.
        zero_or_errno(unsafe {
            libc::linkat(tp.as_raw_fd(), tn.as_ptr(), d.as_raw_fd(), n.as_ptr(), 0)
        })
    })
}

unsafe extern "C" fn renameat_fn(
    o: *mut c_void,
    olddir: *const QrsP9Path,
    oldname: *const c_char,
    newdir: *const QrsP9Path,
    newname: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let (od, on) = unsafe { dir_and_name(fs, "renameat-from", olddir, oldname) }?;
        // SAFETY: as above.
        let (nd, nn) = unsafe { dir_and_name(fs, "renameat-to", newdir, newname) }?;
        // SAFETY: live descriptors and NUL-terminated names.
        zero_or_errno(unsafe {
            libc::renameat(od.as_raw_fd(), on.as_ptr(), nd.as_raw_fd(), nn.as_ptr())
        })
    })
}

unsafe extern "C" fn unlinkat_fn(
    o: *mut c_void,
    dir: *const QrsP9Path,
    name: *const c_char,
    flags: c_int,
) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let (d, n) = unsafe { dir_and_name(fs, "unlinkat", dir, name) }?;
        fs.note(format!("unlinkat flags {flags:#x}"));
        // SAFETY: a live descriptor and a NUL-terminated name.
        zero_or_errno(unsafe { libc::unlinkat(d.as_raw_fd(), n.as_ptr(), flags) })
    })
}

/// The optional `remove`, for the variant that has one.
pub unsafe extern "C" fn remove_fn(o: *mut c_void, path: *const QrsP9Path) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let p = unsafe { path_of(fs, path) }?;
        fs.note(format!("remove {}", String::from_utf8_lossy(p)));
        let (d, n) = fs.resolve(p)?;
        // SAFETY: an all-zero stat is a valid value.
        let mut st: stat = unsafe { std::mem::zeroed() };
        // SAFETY: a live descriptor, a NUL-terminated name, a writable stat.
        zero_or_errno(unsafe {
            libc::fstatat(
                d.as_raw_fd(),
                n.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        let flags = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            libc::AT_REMOVEDIR
        } else {
            0
        };
        // SAFETY: a live descriptor and a NUL-terminated name.
        zero_or_errno(unsafe { libc::unlinkat(d.as_raw_fd(), n.as_ptr(), flags) })
    })
}

fn new_handle(fs: &LocalFs, s: OpenState, out: *mut *mut c_void) -> Result<c_int, c_int> {
    fs.open_handles.fetch_add(1, Ordering::SeqCst);
    // SAFETY: a writable slot, per the contract.
    unsafe { *out = Box::into_raw(Box::new(s)).cast() };
    Ok(0)
}

/// 9p-local's `close_if_special_file` (CVE-2023-2861).
fn refuse_special(f: &OwnedFd) -> Result<(), c_int> {
    // SAFETY: an all-zero stat is a valid value.
    let mut st: stat = unsafe { std::mem::zeroed() };
    // SAFETY: a live descriptor and a writable stat.
    zero_or_errno(unsafe { libc::fstat(f.as_raw_fd(), &mut st) })?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFDIR => Ok(()),
        _ => Err(-libc::ENXIO),
    }
}

unsafe extern "C" fn open_fn(
    o: *mut c_void,
    path: *const QrsP9Path,
    flags: c_int,
    handle: *mut *mut c_void,
) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let p = unsafe { path_of(fs, path) }?;
        if flags & libc::O_CREAT != 0 {
            fs.violation("open with O_CREAT".into());
        }
        let (d, n) = fs.resolve(p)?;
        let f = fs.openat(
            d.as_raw_fd(),
            &n,
            (flags & !libc::O_CREAT) | libc::O_NOFOLLOW,
            0,
        )?;
        refuse_special(&f)?;
        new_handle(fs, OpenState::File(f), handle)
    })
}

unsafe extern "C" fn opendir_fn(
    o: *mut c_void,
    path: *const QrsP9Path,
    handle: *mut *mut c_void,
) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let (d, n) = fs.resolve(unsafe { path_of(fs, path) }?)?;
        let f = fs.openat(
            d.as_raw_fd(),
            &n,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )?;
        let raw = f.into_raw_fd();
        // SAFETY: a directory descriptor we own; the DIR takes it.
        let dir = unsafe { libc::fdopendir(raw) };
        if dir.is_null() {
            let e = last_errno();
            // SAFETY: still ours when fdopendir fails.
            unsafe { libc::close(raw) };
            return Err(e);
        }
        new_handle(fs, OpenState::Dir(dir), handle)
    })
}

unsafe extern "C" fn open2_fn(
    o: *mut c_void,
    dir: *const QrsP9Path,
    name: *const c_char,
    flags: c_int,
    cred: *const QrsP9Cred,
    handle: *mut *mut c_void,
) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let (fs, cred) = unsafe { (fs(o), *cred) };
        // SAFETY: as above.
        let (d, n) = unsafe { dir_and_name(fs, "open2", dir, name) }?;
        fs.note(format!(
            "open2 creat {} mode {:o} uid {} gid {}",
            flags & libc::O_CREAT != 0,
            cred.mode,
            cred.uid,
            cred.gid
        ));
        let f = fs.openat(d.as_raw_fd(), &n, flags | libc::O_NOFOLLOW, cred.mode)?;
        new_handle(fs, OpenState::File(f), handle)
    })
}

/// # Safety
/// `h` is a handle from `new_handle`, not used afterwards.
unsafe fn take_handle(fs: &LocalFs, h: *mut c_void) -> OpenState {
    fs.open_handles.fetch_sub(1, Ordering::SeqCst);
    // SAFETY: per the contract.
    *unsafe { Box::from_raw(h.cast::<OpenState>()) }
}

unsafe extern "C" fn close_fn(o: *mut c_void, h: *mut c_void) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above: a file handle, closed once.
        match unsafe { take_handle(fs, h) } {
            OpenState::File(f) => drop(f),
            OpenState::Dir(d) => {
                fs.violation("close of a directory".into());
                // SAFETY: a DIR we own.
                unsafe { libc::closedir(d) };
            }
        }
        Ok(0)
    })
}

unsafe extern "C" fn closedir_fn(o: *mut c_void, h: *mut c_void) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above: a directory handle, closed once.
        match unsafe { take_handle(fs, h) } {
            // SAFETY: a DIR we own.
            OpenState::Dir(d) => unsafe { libc::closedir(d) },
            OpenState::File(_) => {
                fs.violation("closedir of a file".into());
                0
            }
        };
        Ok(0)
    })
}

/// # Safety
/// `h` is a live handle.
unsafe fn fd_of(h: *mut c_void) -> RawFd {
    // SAFETY: per the contract.
    match unsafe { &*h.cast::<OpenState>() } {
        OpenState::File(f) => f.as_raw_fd(),
        // SAFETY: a live DIR.
        OpenState::Dir(d) => unsafe { libc::dirfd(*d) },
    }
}

unsafe extern "C" fn preadv_fn(
    _o: *mut c_void,
    h: *mut c_void,
    iov: *const iovec,
    iovcnt: c_int,
    offset: i64,
) -> isize {
    // SAFETY: a live handle and `iovcnt` iovecs, per the contract.
    let r = unsafe { libc::preadv(fd_of(h), iov, iovcnt, offset) };
    if r < 0 {
        last_errno() as isize
    } else {
        r
    }
}

unsafe extern "C" fn pwritev_fn(
    _o: *mut c_void,
    h: *mut c_void,
    iov: *const iovec,
    iovcnt: c_int,
    offset: i64,
) -> isize {
    // SAFETY: a live handle and `iovcnt` iovecs, per the contract.
    let r = unsafe { libc::pwritev(fd_of(h), iov, iovcnt, offset) };
    if r < 0 {
        last_errno() as isize
    } else {
        r
    }
}

unsafe extern "C" fn fsync_fn(
    o: *mut c_void,
    h: *mut c_void,
    is_dir: c_int,
    datasync: c_int,
) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let actual_dir = matches!(unsafe { &*h.cast::<OpenState>() }, OpenState::Dir(_));
        if actual_dir != (is_dir != 0) {
            fs.violation(format!("fsync is_dir {is_dir} on a dir: {actual_dir}"));
        }
        fs.note(format!("fsync dir {is_dir} datasync {datasync}"));
        // SAFETY: a live handle.
        let fd = unsafe { fd_of(h) };
        // SAFETY: a live descriptor.
        zero_or_errno(unsafe {
            if datasync != 0 {
                libc::fdatasync(fd)
            } else {
                libc::fsync(fd)
            }
        })
    })
}

unsafe extern "C" fn fstat_fn(
    o: *mut c_void,
    h: *mut c_void,
    is_dir: c_int,
    st: *mut stat,
) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let actual_dir = matches!(unsafe { &*h.cast::<OpenState>() }, OpenState::Dir(_));
        if actual_dir != (is_dir != 0) {
            fs.violation(format!("fstat is_dir {is_dir} on a dir: {actual_dir}"));
        }
        fs.fstat_calls.fetch_add(1, Ordering::SeqCst);
        // SAFETY: a live handle and a writable stat.
        zero_or_errno(unsafe { libc::fstat(fd_of(h), st) })
    })
}

unsafe extern "C" fn readdir_fn(
    o: *mut c_void,
    h: *mut c_void,
    offset: i64,
    emit: QrsP9DirentFn,
    ctx: *mut c_void,
) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let OpenState::Dir(d) = (unsafe { &*h.cast::<OpenState>() }) else {
            fs.violation("readdir of a file".into());
            return Err(-libc::ENOTDIR);
        };
        let d = *d;
        // SAFETY: a live DIR; offsets are ones it reported (telldir).
        unsafe {
            if offset == 0 {
                libc::rewinddir(d);
            } else {
                libc::seekdir(d, offset as libc::c_long);
            }
        }
        loop {
            // SAFETY: errno is thread-local.
            unsafe { *libc::__errno_location() = 0 };
            // SAFETY: a live DIR.
            let e: *mut dirent = unsafe { libc::readdir(d) };
            if e.is_null() {
                let err = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                return if err == 0 { Ok(0) } else { Err(-err) };
            }
            // SAFETY: the caller's emit and ctx, with an entry valid until
            // the next readdir.
            if unsafe { emit(ctx, e) } != 0 {
                return Ok(0);
            }
        }
    })
}

/// `/proc/self/fd/N/name` for the xattr calls (there are no `*at` ones),
/// as 9p-local does.
fn proc_path(fs: &LocalFs, path: &[u8]) -> Result<(OwnedFd, CString), c_int> {
    let (d, n) = fs.resolve(path)?;
    let mut s = format!("/proc/self/fd/{}/", d.as_raw_fd()).into_bytes();
    s.extend_from_slice(n.as_bytes());
    Ok((d, cstring(&s)?))
}

unsafe extern "C" fn lgetxattr_fn(
    o: *mut c_void,
    path: *const QrsP9Path,
    name: *const c_char,
    value: *mut c_void,
    size: usize,
) -> isize {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let (_d, p) = proc_path(fs, unsafe { path_of(fs, path) }?)?;
        // SAFETY: NUL-terminated strings; `value` has `size` bytes.
        let r = unsafe { libc::lgetxattr(p.as_ptr(), name, value, size) };
        if r < 0 {
            Err(last_errno())
        } else {
            Ok(r)
        }
    })
}

unsafe extern "C" fn llistxattr_fn(
    o: *mut c_void,
    path: *const QrsP9Path,
    list: *mut c_void,
    size: usize,
) -> isize {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let (_d, p) = proc_path(fs, unsafe { path_of(fs, path) }?)?;
        // SAFETY: a NUL-terminated path; `list` has `size` bytes.
        let r = unsafe { libc::llistxattr(p.as_ptr(), list.cast(), size) };
        if r < 0 {
            Err(last_errno())
        } else {
            Ok(r)
        }
    })
}

unsafe extern "C" fn lsetxattr_fn(
    o: *mut c_void,
    path: *const QrsP9Path,
    name: *const c_char,
    value: *const c_void,
    size: usize,
    flags: c_int,
) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let (_d, p) = proc_path(fs, unsafe { path_of(fs, path) }?)?;
        // SAFETY: NUL-terminated strings; `value` has `size` bytes.
        zero_or_errno(unsafe { libc::lsetxattr(p.as_ptr(), name, value, size, flags) })
    })
}

unsafe extern "C" fn lremovexattr_fn(
    o: *mut c_void,
    path: *const QrsP9Path,
    name: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: the vtable's contract.
        let fs = unsafe { fs(o) };
        // SAFETY: as above.
        let (_d, p) = proc_path(fs, unsafe { path_of(fs, path) }?)?;
        fs.note("lremovexattr".into());
        // SAFETY: NUL-terminated strings.
        zero_or_errno(unsafe { libc::lremovexattr(p.as_ptr(), name) })
    })
}

fn flock_of(l: &QrsP9Lock) -> libc::flock {
    // SAFETY: an all-zero flock is a valid value.
    let mut f: libc::flock = unsafe { std::mem::zeroed() };
    f.l_type = match l.type_ {
        0 => libc::F_RDLCK,
        1 => libc::F_WRLCK,
        _ => libc::F_UNLCK,
    } as libc::c_short;
    f.l_whence = libc::SEEK_SET as libc::c_short;
    f.l_start = l.start as i64;
    f.l_len = l.length as i64;
    f
}

unsafe extern "C" fn lock_fn(_o: *mut c_void, h: *mut c_void, l: *const QrsP9Lock) -> c_int {
    // SAFETY: a live lock, per the contract.
    let f = flock_of(unsafe { &*l });
    // SAFETY: a live handle and flock (open file description locks, so
    // two fids of this process conflict).
    let r = unsafe { libc::fcntl(fd_of(h), libc::F_OFD_SETLK, &f) };
    match r {
        0 => 0,
        _ => match last_errno() {
            e if e == -libc::EAGAIN || e == -libc::EACCES => 1,
            e => e,
        },
    }
}

unsafe extern "C" fn getlock_fn(_o: *mut c_void, h: *mut c_void, l: *mut QrsP9Lock) -> c_int {
    // SAFETY: a live lock, per the contract.
    let mut f = flock_of(unsafe { &*l });
    // SAFETY: a live handle and a writable flock.
    if unsafe { libc::fcntl(fd_of(h), libc::F_OFD_GETLK, &mut f) } != 0 {
        return last_errno();
    }
    // SAFETY: a writable lock, per the contract.
    let l = unsafe { &mut *l };
    if f.l_type == libc::F_UNLCK as libc::c_short {
        l.type_ = 2;
    } else {
        l.type_ = if f.l_type == libc::F_RDLCK as libc::c_short {
            0
        } else {
            1
        };
        l.start = f.l_start as u64;
        l.length = f.l_len as u64;
        l.proc_id = 4242;
    }
    0
}

/// The full vtable (PATHNAMES, every optional function but `remove`).
pub fn local_ops() -> QrsP9BackendOps {
    QrsP9BackendOps {
        flags: QRS_P9_BACKEND_PATHNAMES,
        name_to_path: Some(name_to_path),
        lstat: Some(lstat_fn),
        get_st_gen: Some(get_st_gen),
        readlink: Some(readlink_fn),
        statfs: Some(statfs_fn),
        chmod: Some(chmod_fn),
        chown: Some(chown_fn),
        utimensat: Some(utimensat_fn),
        truncate: Some(truncate_fn),
        mknod: Some(mknod_fn),
        mkdir: Some(mkdir_fn),
        symlink: Some(symlink_fn),
        link: Some(link_fn),
        renameat: Some(renameat_fn),
        unlinkat: Some(unlinkat_fn),
        remove: None,
        open: Some(open_fn),
        opendir: Some(opendir_fn),
        open2: Some(open2_fn),
        close: Some(close_fn),
        closedir: Some(closedir_fn),
        preadv: Some(preadv_fn),
        pwritev: Some(pwritev_fn),
        fsync: Some(fsync_fn),
        readdir: Some(readdir_fn),
        lgetxattr: Some(lgetxattr_fn),
        llistxattr: Some(llistxattr_fn),
        lsetxattr: Some(lsetxattr_fn),
        lremovexattr: Some(lremovexattr_fn),
        lock: Some(lock_fn),
        getlock: Some(getlock_fn),
        fstat: Some(fstat_fn),
    }
}

// ----- the server and its transport -----

/// Where a reply goes.
type Done = Box<dyn FnOnce(Option<Vec<u8>>) + Send>;

/// A request in flight: its bytes and reply buffer live here until
/// `complete`.
struct Pdu {
    req: Vec<u8>,
    req_iov: iovec,
    reply: Vec<u8>,
    reply_iov: iovec,
    done: Option<Done>,
}

unsafe extern "C" fn reply_buffers(
    _opaque: *mut c_void,
    pdu: *mut c_void,
    size: usize,
    iov: *mut *const iovec,
    niov: *mut usize,
) -> i32 {
    // SAFETY: our Pdu, used by its request's thread only until complete.
    let pdu = unsafe { &mut *pdu.cast::<Pdu>() };
    pdu.reply = vec![0; size];
    pdu.reply_iov = iovec {
        iov_base: pdu.reply.as_mut_ptr().cast(),
        iov_len: size,
    };
    // SAFETY: writable out-pointers, per the transport's contract.
    unsafe {
        *iov = &pdu.reply_iov;
        *niov = 1;
    }
    0
}

unsafe extern "C" fn complete(_opaque: *mut c_void, pdu: *mut c_void, len: usize) {
    // SAFETY: our Pdu, completed once: we own it again.
    let mut pdu = unsafe { Box::from_raw(pdu.cast::<Pdu>()) };
    let reply = (len > 0).then(|| pdu.reply[..len].to_vec());
    if let Some(done) = pdu.done.take() {
        done(reply);
    }
}

/// A thread-mode server over a `LocalFs` made through the C API; the
/// client's transport.
pub struct CServer {
    server: *mut QrsP9Server,
    fs: Arc<LocalFs>,
}

// SAFETY: the server's functions are thread-safe (`qrs_p9_submit` is
// serialised by the client's callers as its contract asks: the tests
// submit from one thread at a time).
unsafe impl Send for CServer {}
// SAFETY: as above.
unsafe impl Sync for CServer {}

impl CServer {
    /// The backend.
    pub fn fs(&self) -> &Arc<LocalFs> {
        &self.fs
    }

    /// The server's counters.
    pub fn stats(&self) -> QrsP9Stats {
        let mut s = QrsP9Stats::default();
        // SAFETY: a live server and a writable struct.
        assert_eq!(unsafe { qrs_p9_server_stats(self.server, &mut s) }, 0);
        s
    }
}

impl Drop for CServer {
    fn drop(&mut self) {
        // SAFETY: ours, freed once, no request of ours still running
        // (the client waited for every reply).
        unsafe { qrs_p9_server_free(self.server) };
    }
}

impl Transport for CServer {
    fn submit(&self, req: Vec<u8>, done: Box<dyn FnOnce(Option<Vec<u8>>) + Send>) {
        let mut pdu = Box::new(Pdu {
            req,
            req_iov: iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
            reply: Vec::new(),
            reply_iov: iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
            done: Some(done),
        });
        pdu.req_iov = iovec {
            iov_base: pdu.req.as_mut_ptr().cast(),
            iov_len: pdu.req.len(),
        };
        let raw = Box::into_raw(pdu);
        let r = loop {
            // SAFETY: a live server; the request's iovec and memory stay
            // in the Pdu until `complete` frees it.
            let r = unsafe { qrs_p9_submit(self.server, raw.cast(), &(*raw).req_iov, 1) };
            if r != -libc::EAGAIN {
                break r;
            }
            // At the server's bounds: wait for room (back-pressure).
            // SAFETY: a live server; not a transport function.
            unsafe { qrs_p9_server_wait_room(self.server, 0, -1) };
        };
        if r != 0 {
            // SAFETY: not taken by the server (complete is not called).
            let mut pdu = unsafe { Box::from_raw(raw) };
            if let Some(done) = pdu.done.take() {
                done(None);
            }
        }
    }
}

/// A server over `fs` with `ops`, `multidevs` (`QRS_P9_MULTIDEVS_*`) and
/// two threads; its client after Tversion and a Tattach of fid `ROOT`.
pub fn serve_with(fs: &Arc<LocalFs>, ops: &QrsP9BackendOps, multidevs: u32) -> Client<CServer> {
    let mut backend: *mut QrsP9Backend = std::ptr::null_mut();
    let opaque = Arc::as_ptr(fs) as *mut c_void;
    // SAFETY: a readable vtable whose functions are thread-safe; `opaque`
    // outlives the server (CServer holds the Arc).
    let r = unsafe { qrs_p9_backend_c_new(ops, opaque, &mut backend) };
    assert_eq!(r, 0);
    // SAFETY: an all-zero config is a valid value; init fills it.
    let mut config: QrsP9Config = unsafe { std::mem::zeroed() };
    // SAFETY: writable.
    unsafe { qrs_p9_config_init(&mut config) };
    config.threads = 2;
    config.multidevs = multidevs;
    let transport = QrsP9Transport {
        reply_buffers: Some(reply_buffers),
        complete: Some(complete),
        throttle: None,
        session: None,
        trace: None,
        room: None,
    };
    let mut server: *mut QrsP9Server = std::ptr::null_mut();
    // SAFETY: readable config and transport, an unused backend, a
    // writable out-pointer.
    let r = unsafe {
        qrs_p9_server_new(
            &config,
            backend,
            &transport,
            std::ptr::null_mut(),
            &mut server,
        )
    };
    assert_eq!(r, 0);
    let client = Client::new(CServer {
        server,
        fs: Arc::clone(fs),
    });
    client.version(MSIZE, "9P2000.L").expect("Tversion");
    client.attach(ROOT, NOFID, "root", "", 0).expect("Tattach");
    client
}

/// The fid `serve_with` attaches.
pub const ROOT: u32 = 0;

/// A PATHNAMES server with every optional function but `remove`, in
/// `multidevs=remap` mode (so that readdir asks for attributes).
pub fn serve(fs: &Arc<LocalFs>) -> Client<CServer> {
    serve_with(fs, &local_ops(), QRS_P9_MULTIDEVS_REMAP)
}

/// Free the server and check that every open state was closed and that
/// the library kept the vtable's contract.
pub fn finish(client: Client<CServer>) {
    let fs = Arc::clone(client.transport().fs());
    drop(client);
    assert_eq!(
        fs.open_handles.load(Ordering::SeqCst),
        0,
        "open states leaked"
    );
    assert_eq!(fs.violations(), Vec::<String>::new(), "contract violations");
}
