// SPDX-License-Identifier: GPL-2.0-or-later
//! Attribute operations on a [`Node`]: generation, `chmod`, `chown`,
//! `truncate`, `utimes`, `statfs`, `readlink` (reading them: [`crate::stat`]).
//!
//! All work on the node's descriptor, so a file that is open but unlinked,
//! or renamed since the node was made, keeps working.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU8, Ordering};

use crate::errno::{self, cvt, cvt_long, retry_eintr, Errno, Result};
use crate::node::{file_type, fstat, is_reg_or_dir, Node, ProcPath};
use crate::open::open;
use crate::stat::Timespec;

/// The inode generation number (`FS_IOC_GETVERSION`), for 9P's `st_gen`.
///
/// Best effort, like QEMU's `local_ioc_getversion`: only regular files and
/// directories are opened (read-only, through [`open`]) to ask; for
/// anything else, and when the file system does not support the ioctl
/// (`ENOTTY`, `EOPNOTSUPP`, `EINVAL`: tmpfs, for example), the result is
/// `Ok(0)`.  The engine may treat any error as "no generation", as QEMU's
/// `Tgetattr` does.
///
/// # Errors
///
/// The errno of `fstat`, of opening the file (`EACCES` without read
/// permission, ...) or of the ioctl.
pub fn generation(node: &Node) -> Result<u64> {
    let st = fstat(node.as_fd())?;
    if !is_reg_or_dir(st.st_mode) {
        return Ok(0);
    }
    let fd = open(node, libc::O_RDONLY)?;
    let mut v: libc::c_long = 0;
    // SAFETY: FS_IOC_GETVERSION writes at most a `long` to the pointer,
    // which points to a live `c_long`.
    let r = cvt(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::FS_IOC_GETVERSION,
            &mut v as *mut libc::c_long,
        )
    });
    match r {
        // File systems store a 32-bit generation (ext4 writes an int).
        Ok(_) => Ok(u64::from(v as u32)),
        Err(errno::ENOTTY | errno::EOPNOTSUPP | errno::EINVAL) => Ok(0),
        Err(e) => Err(e),
    }
}

/// Changes the permission bits (`mode & 0o7777`) of the file held by
/// `node` (a [`Node`], or any descriptor of the file), without opening it: `fchmodat(AT_FDCWD, "/proc/self/fd/N")`,
/// which the kernel resolves to the node's own inode.  Works for devices,
/// FIFOs and sockets too.
///
/// # Errors
///
/// * `EOPNOTSUPP`: `node` is a symbolic link (what Linux's
///   `fchmodat2(AT_SYMLINK_NOFOLLOW)` gives; QEMU's `fchmodat_nofollow`
///   returns `ELOOP` here instead);
/// * otherwise the raw errno of `fstat`/`fchmodat` (`EPERM` if not the
///   owner, `EROFS`, ...).
pub fn chmod(node: impl AsFd, mode: libc::mode_t) -> Result<()> {
    let st = fstat(node.as_fd())?;
    chmod_known(node.as_fd(), st.st_mode, mode)
}

/// `fchmodat2(fd, "", AT_EMPTY_PATH)` works on `O_PATH` descriptors from
/// Linux 6.6 on: 0 untried, 1 works, 2 missing.
static FCHMODAT2: AtomicU8 = AtomicU8::new(0);

/// [`chmod`] for a node whose `st_mode` the caller already has.  Uses
/// `fchmodat2` on the descriptor where the kernel has it, which spares the
/// `/proc` path lookup.
pub(crate) fn chmod_known(
    node: BorrowedFd<'_>,
    st_mode: libc::mode_t,
    mode: libc::mode_t,
) -> Result<()> {
    if file_type(st_mode) == libc::S_IFLNK {
        return Err(errno::EOPNOTSUPP);
    }
    if FCHMODAT2.load(Ordering::Relaxed) != 2 {
        // SAFETY: the empty path is NUL-terminated; the descriptor is live.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fchmodat2,
                node.as_raw_fd(),
                c"".as_ptr(),
                mode & 0o7777,
                libc::AT_EMPTY_PATH,
            )
        };
        if r == 0 {
            FCHMODAT2.store(1, Ordering::Relaxed);
            return Ok(());
        }
        match Errno::last() {
            errno::ENOSYS | errno::EINVAL if FCHMODAT2.load(Ordering::Relaxed) == 0 => {
                FCHMODAT2.store(2, Ordering::Relaxed);
            }
            e => return Err(e),
        }
    }
    let p = ProcPath::new(node.as_raw_fd());
    // SAFETY: the path is NUL-terminated and outlives the call.
    cvt(unsafe { libc::fchmodat(libc::AT_FDCWD, p.as_cstr().as_ptr(), mode & 0o7777, 0) }).map(drop)
}

/// Changes owner and/or group of the file held by `node` (a [`Node`], or
/// any descriptor of the file; `None` leaves one unchanged), never
/// following a symbolic link:
/// `fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)`.
///
/// # Errors
///
/// The raw errno of `fchownat` (`EPERM`, `EINVAL` for an unmapped id,
/// `EROFS`, ...).
pub fn chown(node: impl AsFd, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
    let uid = uid.unwrap_or(u32::MAX);
    let gid = gid.unwrap_or(u32::MAX);
    // SAFETY: the empty path is NUL-terminated; the descriptor is live.
    cvt(unsafe {
        libc::fchownat(
            node.as_fd().as_raw_fd(),
            c"".as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// Sets the size of the regular file held by `node` (`Tsetattr` with
/// `P9_ATTR_SIZE`): opens it write-only with [`open`] and calls
/// `ftruncate`, like QEMU's `local_truncate`.
///
/// # Errors
///
/// * `EINVAL`: `size` above `i64::MAX`;
/// * `ELOOP` (symbolic link), `ENXIO` (device, FIFO, socket), `EISDIR`
///   (directory), `EACCES`...: from [`open`], as in QEMU;
/// * otherwise the raw errno of `ftruncate` (`EFBIG`, `EPERM`, ...).
pub fn truncate(node: &Node, size: u64) -> Result<()> {
    if i64::try_from(size).is_err() {
        return Err(errno::EINVAL);
    }
    let fd = open(node, libc::O_WRONLY)?;
    crate::io::ftruncate(&fd, size)
}

/// A timestamp to set with [`utimes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetTime {
    /// The current time (`UTIME_NOW`).
    Now,
    /// Leave unchanged (`UTIME_OMIT`).
    Omit,
    /// This time.
    At(Timespec),
}

impl SetTime {
    fn to_timespec(self) -> Result<libc::timespec> {
        Ok(match self {
            SetTime::Now => libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_NOW,
            },
            SetTime::Omit => libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            SetTime::At(t) => {
                if t.nsec >= 1_000_000_000 {
                    return Err(errno::EINVAL);
                }
                libc::timespec {
                    tv_sec: t.sec,
                    tv_nsec: libc::c_long::from(t.nsec),
                }
            }
        })
    }
}

/// Sets access and modification times of the file held by `node` (a
/// [`Node`], or any descriptor of the file), never following a symbolic
/// link (a symbolic link node gets its own times set).
///
/// Uses `utimensat(fd, "", times, AT_EMPTY_PATH)`, which works on `O_PATH`
/// descriptors of every file type.  Kernels that do not accept
/// `AT_EMPTY_PATH` there get `utimensat(AT_FDCWD, "/proc/self/fd/N", times,
/// 0)`: *without* `AT_SYMLINK_NOFOLLOW`, because with it the call would act
/// on the `/proc` link itself (silently doing nothing to the file), while
/// following our own magic link lands on the node's inode, the link itself
/// for a symbolic link node.
///
/// # Errors
///
/// * `EINVAL`: a nanosecond field of 10⁹ or more;
/// * otherwise the raw errno of `utimensat` (`EPERM`/`EACCES` when not
///   permitted, `EROFS`, ...).
pub fn utimes(node: impl AsFd, atime: SetTime, mtime: SetTime) -> Result<()> {
    let node = node.as_fd();
    let times = [atime.to_timespec()?, mtime.to_timespec()?];
    // SAFETY: the empty path is NUL-terminated; `times` holds the two
    // timespecs utimensat reads; the descriptor is live.
    let r = cvt(unsafe {
        libc::utimensat(
            node.as_raw_fd(),
            c"".as_ptr(),
            times.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    });
    match r {
        Ok(_) => Ok(()),
        // Kernels without AT_EMPTY_PATH support in utimensat.
        Err(errno::ENOENT | errno::EINVAL) => utimes_proc(&ProcPath::new(node.as_raw_fd()), &times),
        Err(e) => Err(e),
    }
}

pub(crate) fn utimes_proc(p: &ProcPath, times: &[libc::timespec; 2]) -> Result<()> {
    // SAFETY: the path is NUL-terminated and outlives the call; `times`
    // holds two timespecs.
    cvt(unsafe { libc::utimensat(libc::AT_FDCWD, p.as_cstr().as_ptr(), times.as_ptr(), 0) })
        .map(drop)
}

/// Statistics of the file system holding `node` (`fstatfs`, which works
/// on `O_PATH` descriptors, so no file is opened), as Rstatfs carries them.
/// The fsid packs the two halves of `f_fsid` as QEMU does
/// (`val[0] | val[1] << 32`).
///
/// # Errors
///
/// The raw errno of `fstatfs` (`ENOSYS` on some file systems, `EIO`...).
pub fn statfs(node: &Node) -> Result<p9_wire::types::StatFs> {
    let mut sf = MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `sf` is valid for writes of a `statfs`; the descriptor is live.
    cvt(unsafe { libc::fstatfs(node.as_raw_fd(), sf.as_mut_ptr()) })?;
    // SAFETY: fstatfs succeeded and filled the structure.
    Ok(wire_statfs(&unsafe { sf.assume_init() }))
}

/// Rstatfs's fields from a host `struct statfs`, the fsid packed from the
/// two halves of `f_fsid` as QEMU does (`val[0] | val[1] << 32`).  Shared
/// with backends that get a `struct statfs` from elsewhere (C vtables).
#[allow(clippy::unnecessary_cast)] // statfs field types vary by platform
pub fn wire_statfs(sf: &libc::statfs) -> p9_wire::types::StatFs {
    // SAFETY: `fsid_t` is `#[repr(C)] struct { int __val[2]; }`, so it has
    // the size and layout of `[c_int; 2]`; any bit pattern is valid.
    let val: [libc::c_int; 2] = unsafe { std::mem::transmute(sf.f_fsid) };
    p9_wire::types::StatFs {
        // File system magic numbers are 32-bit values.
        typ: sf.f_type as u32,
        bsize: u32::try_from(sf.f_bsize).unwrap_or(u32::MAX),
        blocks: sf.f_blocks as u64,
        bfree: sf.f_bfree as u64,
        bavail: sf.f_bavail as u64,
        files: sf.f_files as u64,
        ffree: sf.f_ffree as u64,
        fsid: u64::from(val[0] as u32) | (u64::from(val[1] as u32) << 32),
        namelen: u32::try_from(sf.f_namelen).unwrap_or(u32::MAX),
    }
}

/// The target of the symbolic link held by `node`
/// (`readlinkat(fd, "")`), as raw bytes.
///
/// # Errors
///
/// * `EINVAL`: `node` is not a symbolic link (what `readlink(2)` and QEMU's
///   `local_readlink` give);
/// * otherwise the raw errno of `readlinkat` (`EIO`, ...).
pub fn readlink(node: &Node) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    loop {
        let r = retry_eintr(|| {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes; the
            // empty path is NUL-terminated; the descriptor is live.
            let n = unsafe {
                libc::readlinkat(
                    node.as_raw_fd(),
                    c"".as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            cvt_long(n as libc::c_long)
        });
        match r {
            Ok(n) => {
                let n = n as usize;
                if n < buf.len() {
                    buf.truncate(n);
                    return Ok(buf);
                }
                // Possibly truncated: try again with more room.
                let more = buf.len() * 2;
                buf.resize(more, 0);
            }
            Err(errno::ENOENT) => {
                // readlinkat(fd, "") of a non-link says ENOENT.
                let st = fstat(node.as_fd())?;
                return Err(if file_type(st.st_mode) == libc::S_IFLNK {
                    errno::ENOENT
                } else {
                    errno::EINVAL
                });
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stat::{stat, stat_at};
    use crate::{create_file, lookup, symlink};

    struct Dir(std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A fresh directory on tmpfs (removed when the guard drops) and its
    /// node.
    fn temp_root(name: &str) -> (Dir, Node) {
        let path = std::path::PathBuf::from(format!(
            "/dev/shm/p9-native-unit-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).unwrap();
        let root = Node::open_root(&path).unwrap();
        (Dir(path), root)
    }

    /// [`stat_at`] stats a name beneath a directory without following a
    /// final symbolic link, and refuses `..` and paths.
    #[test]
    fn stat_at_names_one_entry() {
        let (_cleanup, root) = temp_root("statat");
        let (f, _) = create_file(&root, b"f", libc::O_RDWR, 0o644).unwrap();
        let s = symlink(&root, b"s", b"/").unwrap();
        assert_eq!(stat_at(&root, b"f").unwrap().ino, stat(&f).unwrap().ino);
        let st = stat_at(&root, b"s").unwrap();
        assert!(st.is_symlink());
        assert_eq!(st.ino, stat(&s).unwrap().ino);
        assert_eq!(stat_at(&root, b".").unwrap().ino, stat(&root).unwrap().ino);
        assert_eq!(stat_at(&root, b"..").unwrap_err(), errno::EINVAL);
        assert_eq!(stat_at(&root, b"s/x").unwrap_err(), errno::ENOENT);
        assert_eq!(stat_at(&root, b"").unwrap_err(), errno::ENOENT);
        assert_eq!(stat_at(&root, b"gone").unwrap_err(), errno::ENOENT);
        assert_eq!(stat_at(&f, b"x").unwrap_err(), errno::ENOTDIR);
    }

    /// The `/proc/self/fd` fallback of [`utimes`] (for kernels whose
    /// utimensat lacks `AT_EMPTY_PATH`) acts on a symbolic link node itself,
    /// never on its target.
    #[test]
    fn utimes_proc_fallback_acts_on_the_node() {
        let (_cleanup, root) = temp_root("utimes");
        let (f, _) = create_file(&root, b"f", libc::O_RDWR, 0o644).unwrap();
        let s = symlink(&root, b"s", b"f").unwrap();
        let old = libc::timespec {
            tv_sec: 100,
            tv_nsec: 0,
        };
        utimes_proc(&f.proc_path(), &[old, old]).unwrap();
        let new = libc::timespec {
            tv_sec: 200,
            tv_nsec: 3,
        };
        utimes_proc(&s.proc_path(), &[new, new]).unwrap();
        assert_eq!(stat(&s).unwrap().mtime, Timespec { sec: 200, nsec: 3 });
        assert_eq!(stat(&f).unwrap().mtime, Timespec { sec: 100, nsec: 0 });
        let again = lookup(&root, b"s").unwrap();
        assert_eq!(stat(&again).unwrap().atime, Timespec { sec: 200, nsec: 3 });
    }
}
