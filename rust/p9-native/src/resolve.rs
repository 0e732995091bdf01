// SPDX-License-Identifier: GPL-2.0-or-later
//! Name validation and lookup of one component beneath a directory
//! [`Node`], with `openat2(RESOLVE_BENEATH)` where the kernel has it.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};

use crate::errno::{self, cvt, cvt_long, Result};
use crate::node::{file_type, fstat, owned, Node};

/// What a single name is about to be used for; decides the errno for the
/// special names `.` and `..`, mirroring QEMU's `9p.c` request handlers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameUse {
    /// [`lookup`]: `.` allowed, `..` is `EINVAL` (use [`parent`]).
    Lookup,
    /// Creating an entry (`Tlcreate`, `Tmkdir`, `Tsymlink`, `Tmknod`,
    /// `Tlink`): `.`/`..` are `EEXIST`.
    Create,
    /// `Tunlinkat`: `.` is `EINVAL`, `..` is `ENOTEMPTY`.
    Unlink,
    /// `Trenameat`: `.`/`..` are `EISDIR`.
    Rename,
}

/// Checks that `name` is a single path component and turns it into a C
/// string.
///
/// * empty, or containing `/`: `ENOENT` (QEMU's `name_is_illegal`);
/// * containing a NUL byte: `EINVAL` (cannot be passed to the kernel);
/// * `.` and `..`: per [`NameUse`].
pub(crate) fn component(name: &[u8], usage: NameUse) -> Result<CName> {
    if name.is_empty() || name.contains(&b'/') {
        return Err(errno::ENOENT);
    }
    let dot = name == b".";
    let dotdot = name == b"..";
    if dot || dotdot {
        let e = match usage {
            NameUse::Lookup if dot => None,
            NameUse::Lookup => Some(errno::EINVAL),
            NameUse::Create => Some(errno::EEXIST),
            NameUse::Unlink if dot => Some(errno::EINVAL),
            NameUse::Unlink => Some(errno::ENOTEMPTY),
            NameUse::Rename => Some(errno::EISDIR),
        };
        if let Some(e) = e {
            return Err(e);
        }
    }
    if name.contains(&0) {
        return Err(errno::EINVAL);
    }
    Ok(if name.len() < CNAME_INLINE {
        let mut buf = [0u8; CNAME_INLINE];
        buf[..name.len()].copy_from_slice(name);
        CName::Inline(buf, name.len())
    } else {
        CName::Heap(CString::new(name).map_err(|_| errno::EINVAL)?)
    })
}

/// Names shorter than this (every name a Linux file system takes: at
/// most 255 bytes) are kept on the stack by [`CName`].
const CNAME_INLINE: usize = 256;

/// A checked path component as a C string ([`component`]): on the stack
/// when short, so a lookup by name costs no allocation.
// On the stack for one call: the size is the point.
#[allow(clippy::large_enum_variant)]
pub(crate) enum CName {
    /// The bytes, NUL-terminated (zero-filled), and their length.
    Inline([u8; CNAME_INLINE], usize),
    Heap(CString),
}

impl CName {
    /// The bytes, without the NUL.
    #[cfg(test)]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            CName::Inline(buf, len) => &buf[..*len],
            CName::Heap(c) => c.as_bytes(),
        }
    }
}

impl std::fmt::Debug for CName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl std::ops::Deref for CName {
    type Target = CStr;

    fn deref(&self) -> &CStr {
        match self {
            // The name has no NUL (checked) and the buffer is zero past it.
            CName::Inline(buf, len) => CStr::from_bytes_with_nul(&buf[..=*len]).unwrap_or(c""),
            CName::Heap(c) => c,
        }
    }
}

const OPENAT2_UNKNOWN: u8 = 0;
const OPENAT2_YES: u8 = 1;
const OPENAT2_NO: u8 = 2;

/// Whether the kernel has `openat2`, probed once.
static OPENAT2: AtomicU8 = AtomicU8::new(OPENAT2_UNKNOWN);

/// `struct open_how` of `<linux/openat2.h>` (libc's is `non_exhaustive`).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn raw_openat2(
    dirfd: libc::c_int,
    name: &CStr,
    flags: libc::c_int,
    resolve: u64,
) -> Result<OwnedFd> {
    let how = OpenHow {
        // Open flags are a bit mask; reinterpreting the sign bit is intended.
        flags: u64::from(flags as u32),
        mode: 0,
        resolve,
    };
    // SAFETY: `name` is NUL-terminated and `how` is a properly laid-out
    // `struct open_how` whose size we pass; both outlive the call.
    let fd = cvt_long(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            name.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })?;
    // A successful openat2 returns a descriptor, which fits a c_int.
    Ok(owned(fd as libc::c_int))
}

/// Whether lookups use `openat2` (probed once per process: `ENOSYS`, or
/// `EPERM` from a seccomp filter, on opening `/` means "no").
#[must_use]
pub fn openat2_supported() -> bool {
    match OPENAT2.load(Ordering::Relaxed) {
        OPENAT2_YES => true,
        OPENAT2_NO => false,
        _ => {
            let ok = match raw_openat2(libc::AT_FDCWD, c"/", libc::O_PATH | libc::O_CLOEXEC, 0) {
                Ok(_) => true,
                Err(errno::ENOSYS | errno::EPERM) => false,
                // Anything else (EMFILE...) says nothing about support;
                // assume it is there and let lookups fall back on ENOSYS.
                Err(_) => true,
            };
            OPENAT2.store(if ok { OPENAT2_YES } else { OPENAT2_NO }, Ordering::Relaxed);
            ok
        }
    }
}

fn use_openat2() -> bool {
    !openat_fallback_forced() && openat2_supported()
}

/// Without the test hooks (module `testing`) nothing forces the
/// fallbacks, and the checks cost nothing.
#[cfg(not(any(test, feature = "test-hooks")))]
const fn openat_fallback_forced() -> bool {
    false
}

/// Whether [`crate::link`] must skip `linkat(AT_EMPTY_PATH)`: never
/// without the test hooks.
#[cfg(not(any(test, feature = "test-hooks")))]
pub(crate) const fn link_fallback_forced() -> bool {
    false
}

#[cfg(any(test, feature = "test-hooks"))]
pub(crate) use crate::testing::{link_fallback_forced, openat_fallback_forced};

/// Opens the single, validated component `name` beneath `dir` with `flags`
/// (which must include `O_NOFOLLOW`).  `openat2(RESOLVE_BENEATH |
/// RESOLVE_NO_MAGICLINKS)` when available, plain `openat` otherwise; the
/// fallback is just as safe because a single component without `/` that is
/// not `..` cannot leave `dir`, and `O_NOFOLLOW` keeps a final symbolic
/// link from being followed.  No `RESOLVE_NO_XDEV`: mounts inside the
/// export are reachable.
pub(crate) fn open_beneath(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: libc::c_int,
) -> Result<OwnedFd> {
    if use_openat2() {
        match raw_openat2(
            dir.as_raw_fd(),
            name,
            flags,
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
        ) {
            Err(errno::ENOSYS) => OPENAT2.store(OPENAT2_NO, Ordering::Relaxed),
            other => return other,
        }
    }
    // SAFETY: `name` is NUL-terminated and outlives the call; `dir` is live.
    let fd = cvt(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) })?;
    Ok(owned(fd))
}

/// `PATH_MAX`: the longest path one `openat2` takes, NUL included.
const PATH_MAX: usize = 4096;

/// How often [`open_path_beneath`] retries an `openat2` that failed with
/// `EAGAIN` (the kernel's answer to a scoped lookup racing a rename).
const EAGAIN_RETRIES: usize = 8;

/// Opens the file at the relative path `comps` (single, validated
/// components: never empty, `.`, `..`, nor containing `/` or NUL)
/// beneath the directory `root`, as an `O_PATH | O_NOFOLLOW | O_CLOEXEC`
/// descriptor, following no symbolic link on the way (a final one is
/// returned as the link itself).
///
/// With `openat2` (unless `fallback`, or the thread's test hook, asks for
/// the other way): one call per `PATH_MAX` worth of components, each
/// with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` (which implies
/// `RESOLVE_NO_MAGICLINKS`), each later chunk relative to the directory
/// the previous one reached.  Otherwise a walk of one `openat` per
/// component from `root`, `O_PATH | O_NOFOLLOW`, with `O_DIRECTORY` for
/// all but the last.  Either way the result was reached from `root` by
/// going down, never through a link: it is beneath `root` at the time of
/// the lookup (a host rename concurrent with the lookup that moves a
/// directory on the path elsewhere is the one way out, see the crate
/// documentation).
///
/// # Errors
///
/// `EINVAL` for an empty `comps` or a component with NUL; otherwise the
/// raw errno of the lookups: `ENOENT`, `ENOTDIR` (a component on the way
/// is no directory), `ELOOP` (a symbolic link on the way, `openat2`),
/// `EACCES`, `EMFILE`, ...
pub(crate) fn open_path_beneath(
    root: BorrowedFd<'_>,
    comps: &[impl AsRef<[u8]>],
    fallback: bool,
) -> Result<OwnedFd> {
    if comps.is_empty() {
        return Err(errno::EINVAL);
    }
    let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    if !fallback && use_openat2() {
        match open_chunks_openat2(root, comps, flags) {
            Err(errno::ENOSYS) => OPENAT2.store(OPENAT2_NO, Ordering::Relaxed),
            other => return other,
        }
    }
    let mut cur: Option<OwnedFd> = None;
    for (i, comp) in comps.iter().enumerate() {
        let c = CString::new(comp.as_ref()).map_err(|_| errno::EINVAL)?;
        let dir = cur.as_ref().map_or(root, AsFd::as_fd);
        let f = if i + 1 < comps.len() {
            flags | libc::O_DIRECTORY
        } else {
            flags
        };
        // SAFETY: `c` is NUL-terminated and outlives the call; `dir` is a
        // live descriptor; no mode argument without O_CREAT.
        let fd = cvt(unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), f) })?;
        cur = Some(owned(fd));
    }
    cur.ok_or(errno::EINVAL)
}

/// [`open_path_beneath`] with `openat2`, in chunks that fit `PATH_MAX`.
fn open_chunks_openat2(
    root: BorrowedFd<'_>,
    comps: &[impl AsRef<[u8]>],
    flags: libc::c_int,
) -> Result<OwnedFd> {
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    let mut cur: Option<OwnedFd> = None;
    // The path of one call, NUL-terminated, on the stack.
    let mut path = [0u8; PATH_MAX];
    let mut i = 0;
    while i < comps.len() {
        let mut len = 0;
        while i < comps.len() {
            let c = comps[i].as_ref();
            let sep = usize::from(len != 0);
            if len + sep + c.len() >= PATH_MAX {
                if len == 0 {
                    // One name longer than any path (not a name a file
                    // system has): what the kernel would say.
                    return Err(errno::ENAMETOOLONG);
                }
                break;
            }
            if sep == 1 {
                path[len] = b'/';
            }
            path[len + sep..len + sep + c.len()].copy_from_slice(c);
            len += sep + c.len();
            i += 1;
        }
        path[len] = 0;
        let last = i == comps.len();
        // A NUL inside (not in a checked name) is EINVAL, as CString said.
        let c = CStr::from_bytes_with_nul(&path[..=len]).map_err(|_| errno::EINVAL)?;
        let dir = cur.as_ref().map_or(root, AsFd::as_fd);
        let f = if last {
            flags
        } else {
            flags | libc::O_DIRECTORY
        };
        let mut tries = 0;
        let fd = loop {
            match raw_openat2(dir.as_raw_fd(), c, f, resolve) {
                Err(errno::EAGAIN) if tries < EAGAIN_RETRIES => tries += 1,
                other => break other?,
            }
        };
        cur = Some(fd);
    }
    cur.ok_or(errno::EINVAL)
}

/// Looks up the single component `name` beneath the directory `dir` and
/// returns it as an `O_PATH | O_NOFOLLOW | O_CLOEXEC` [`Node`].
///
/// A symbolic link is returned as the link itself, never followed; a
/// device, FIFO or socket is returned without being opened.  `.` gives a
/// new `Node` for `dir` itself.
///
/// # Errors
///
/// * `ENOENT`: `name` is empty or contains `/` (like QEMU's
///   `name_is_illegal` in `Twalk`);
/// * `EINVAL`: `name` contains a NUL byte, or is `..` (the engine walks
///   up with [`parent`], which stops at the export root);
/// * `ENOTDIR`: `dir` is not a directory (e.g. a symbolic link node);
/// * otherwise the raw errno of `openat2`/`openat` (`ENOENT`, `EACCES`,
///   `ENAMETOOLONG`, ...).
pub fn lookup(dir: &Node, name: &[u8]) -> Result<Node> {
    let c = component(name, NameUse::Lookup)?;
    lookup_c(dir, &c)
}

pub(crate) fn lookup_c(dir: &Node, name: &CStr) -> Result<Node> {
    let fd = open_beneath(
        dir.as_fd(),
        name,
        libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
    )?;
    Ok(Node::from_owned_fd(fd))
}

/// The parent directory of the directory `node`, stopping at the export
/// root: if `node` is `root` (same `st_dev` and `st_ino`), a new `Node`
/// for `root` is returned, as QEMU does for `..` of the root.
///
/// The parent is found through the kernel's `..` of the descriptor, not
/// through any name, so it is correct even after renames; but a directory
/// the *host* moves out of the export takes its `..` with it, to wherever
/// it went.  [`crate::NativeBackend`] therefore never uses this for
/// `Twalk`: its `..` is the parent it recorded, and its lookups start at
/// the export root.
///
/// # Errors
///
/// * `ENOTDIR`: `node` is not a directory;
/// * the errno of `fstat` or `openat(node, "..")` otherwise (`EMFILE`...;
///   `ENOENT` if `node` was removed).
pub fn parent(node: &Node, root: &Node) -> Result<Node> {
    let st = fstat(node.as_fd())?;
    if file_type(st.st_mode) != libc::S_IFDIR {
        return Err(errno::ENOTDIR);
    }
    let rst = fstat(root.as_fd())?;
    if st.st_dev == rst.st_dev && st.st_ino == rst.st_ino {
        return root.try_clone();
    }
    // SAFETY: the literal is NUL-terminated; `node` is a live descriptor.
    let fd = cvt(unsafe {
        libc::openat(
            node.as_raw_fd(),
            c"..".as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })?;
    Ok(Node::from_owned_fd(owned(fd)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn component_errnos() {
        use NameUse::*;
        for u in [Lookup, Create, Unlink, Rename] {
            assert_eq!(component(b"", u).unwrap_err(), errno::ENOENT);
            assert_eq!(component(b"a/b", u).unwrap_err(), errno::ENOENT);
            assert_eq!(component(b"/", u).unwrap_err(), errno::ENOENT);
            assert_eq!(component(b"a\0b", u).unwrap_err(), errno::EINVAL);
            assert_eq!(component(b"ok", u).unwrap().as_bytes(), b"ok");
            assert_eq!(component(b"...", u).unwrap().as_bytes(), b"...");
        }
        assert!(component(b".", Lookup).is_ok());
        assert_eq!(component(b"..", Lookup).unwrap_err(), errno::EINVAL);
        assert_eq!(component(b".", Create).unwrap_err(), errno::EEXIST);
        assert_eq!(component(b"..", Create).unwrap_err(), errno::EEXIST);
        assert_eq!(component(b".", Unlink).unwrap_err(), errno::EINVAL);
        assert_eq!(component(b"..", Unlink).unwrap_err(), errno::ENOTEMPTY);
        assert_eq!(component(b".", Rename).unwrap_err(), errno::EISDIR);
        assert_eq!(component(b"..", Rename).unwrap_err(), errno::EISDIR);
    }

    /// The hook really switches paths: only openat2's RESOLVE_BENEATH
    /// refuses a ".." that got past validation (EXDEV); plain openat of
    /// ".." is why `component` must reject it.
    #[test]
    fn fallback_hook_switches_the_syscall() {
        if !openat2_supported() {
            return;
        }
        let dir = Node::open_root(std::path::Path::new("/dev/shm")).unwrap();
        let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        assert_eq!(
            open_beneath(dir.as_fd(), c"..", flags).unwrap_err(),
            errno::EXDEV
        );
        testing::force_openat_fallback(true);
        let up = open_beneath(dir.as_fd(), c"..", flags);
        testing::force_openat_fallback(false);
        assert!(up.is_ok());
        assert_eq!(
            open_beneath(dir.as_fd(), c"..", flags).unwrap_err(),
            errno::EXDEV
        );
    }

    /// Both ways of [`open_path_beneath`] follow no link on the way (a
    /// final one is returned as the link), and paths longer than
    /// `PATH_MAX` are opened in chunks.  The errno for a link on the way
    /// tells which way was taken (`ELOOP`: `openat2`'s
    /// `RESOLVE_NO_SYMLINKS`; `ENOTDIR`: `O_DIRECTORY | O_NOFOLLOW`).
    #[test]
    fn path_lookups_follow_no_link_either_way() {
        use crate::{mkdir, symlink};
        let base = format!("/dev/shm/p9-native-resolve-{}", std::process::id());
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(format!("{base}/a/b")).unwrap();
        std::fs::write(format!("{base}/a/b/f"), b"f").unwrap();
        std::os::unix::fs::symlink("a", format!("{base}/l")).unwrap();
        std::os::unix::fs::symlink("/", format!("{base}/abs")).unwrap();
        let root = Node::open_root(std::path::Path::new(&base)).unwrap();
        // 24 levels of 200-byte names: 4824 bytes.
        let long = "x".repeat(200);
        let mut deep = Node::open_root(std::path::Path::new(&base)).unwrap();
        for _ in 0..24 {
            deep = mkdir(&deep, long.as_bytes(), 0o755).unwrap();
        }
        symlink(&deep, b"end", b"target").unwrap();
        let mut long_path: Vec<&str> = vec![&long; 24];
        long_path.push("end");
        let ino = |fd: &OwnedFd| fstat(fd.as_fd()).unwrap().st_ino;
        let f_ino = std::fs::metadata(format!("{base}/a/b/f")).unwrap().ino();
        use std::os::unix::fs::MetadataExt;
        let mut link_errors = Vec::new();
        for fallback in [false, true] {
            let r = root.as_fd();
            assert_eq!(
                ino(&open_path_beneath(r, &["a", "b", "f"], fallback).unwrap()),
                f_ino
            );
            let e = open_path_beneath(r, &["l", "b", "f"], fallback).unwrap_err();
            assert!(e == errno::ELOOP || e == errno::ENOTDIR, "{e:?}");
            link_errors.push(e);
            assert!(open_path_beneath(r, &["abs", "etc"], fallback).is_err());
            let l = open_path_beneath(r, &["l"], fallback).unwrap();
            assert_eq!(file_type(fstat(l.as_fd()).unwrap().st_mode), libc::S_IFLNK);
            let end = open_path_beneath(r, &long_path, fallback).unwrap();
            assert_eq!(
                file_type(fstat(end.as_fd()).unwrap().st_mode),
                libc::S_IFLNK
            );
            assert_eq!(
                open_path_beneath(r, &[] as &[&str], fallback).unwrap_err(),
                errno::EINVAL
            );
        }
        if openat2_supported() {
            assert_eq!(link_errors, [errno::ELOOP, errno::ENOTDIR]);
        }
        drop((root, deep));
        // remove_dir_all copes with the deep tree (it works by descriptor).
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn openat2_probe_matches_the_kernel() {
        let direct = raw_openat2(libc::AT_FDCWD, c"/", libc::O_PATH | libc::O_CLOEXEC, 0);
        assert_eq!(openat2_supported(), direct.is_ok());
    }
}
