// SPDX-License-Identifier: GPL-2.0-or-later
//! A file's attributes, [`Stat`]: `statx` of a [`Node`](crate::Node)(crate::Node)'s
//! descriptor (or of a name in a directory), `fstatat` where the kernel
//! has no `statx`.
//!
//! Through the descriptor, so a file that is open but unlinked, or renamed
//! since the node was made, keeps its attributes.

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use crate::errno::{self, cvt, Result};
use crate::resolve::{component, NameUse};

/// A point in time: seconds and nanoseconds since the epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timespec {
    /// Seconds since 1970-01-01 00:00 UTC (negative before).
    pub sec: i64,
    /// Nanoseconds, `0..1_000_000_000`.
    pub nsec: u32,
}

/// File attributes, with what a 9P2000.L `Rgetattr` needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Device of the file system holding the file (`st_dev`).
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Type and permission bits (`st_mode`).
    pub mode: u32,
    /// Number of hard links.
    pub nlink: u64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number, for device nodes.
    pub rdev: u64,
    /// Size in bytes.
    pub size: u64,
    /// Preferred I/O block size.
    pub blksize: u64,
    /// Allocated 512-byte blocks.
    pub blocks: u64,
    /// Last access.
    pub atime: Timespec,
    /// Last data modification.
    pub mtime: Timespec,
    /// Last status change.
    pub ctime: Timespec,
    /// Creation time, when the file system reports it.
    pub btime: Option<Timespec>,
}

impl Stat {
    /// The type bits of `mode` (`S_IFREG`, `S_IFDIR`, ...).
    #[must_use]
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    /// Whether this is a directory.
    #[must_use]
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }

    /// Whether this is a regular file.
    #[must_use]
    pub fn is_file(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }

    /// Whether this is a symbolic link.
    #[must_use]
    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }

    /// Whether this is a device, FIFO or socket: a file never opened on the
    /// host.
    #[must_use]
    pub fn is_special(&self) -> bool {
        !matches!(
            self.file_type(),
            libc::S_IFREG | libc::S_IFDIR | libc::S_IFLNK
        )
    }

    fn from_stat64(st: &libc::stat64) -> Stat {
        let ts = |sec: i64, nsec: i64| Timespec {
            sec,
            nsec: u32::try_from(nsec).unwrap_or(0),
        };
        Stat {
            dev: st.st_dev,
            ino: st.st_ino,
            mode: st.st_mode,
            nlink: st.st_nlink,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev,
            size: u64::try_from(st.st_size).unwrap_or(0),
            blksize: u64::try_from(st.st_blksize).unwrap_or(0),
            blocks: u64::try_from(st.st_blocks).unwrap_or(0),
            atime: ts(st.st_atime, st.st_atime_nsec),
            mtime: ts(st.st_mtime, st.st_mtime_nsec),
            ctime: ts(st.st_ctime, st.st_ctime_nsec),
            btime: None,
        }
    }

    fn from_statx(stx: &libc::statx) -> Stat {
        let ts = |t: &libc::statx_timestamp| Timespec {
            sec: t.tv_sec,
            nsec: t.tv_nsec,
        };
        Stat {
            dev: libc::makedev(stx.stx_dev_major, stx.stx_dev_minor),
            ino: stx.stx_ino,
            mode: u32::from(stx.stx_mode),
            nlink: u64::from(stx.stx_nlink),
            uid: stx.stx_uid,
            gid: stx.stx_gid,
            rdev: libc::makedev(stx.stx_rdev_major, stx.stx_rdev_minor),
            size: stx.stx_size,
            blksize: u64::from(stx.stx_blksize),
            blocks: stx.stx_blocks,
            atime: ts(&stx.stx_atime),
            mtime: ts(&stx.stx_mtime),
            ctime: ts(&stx.stx_ctime),
            btime: (stx.stx_mask & libc::STATX_BTIME != 0).then(|| ts(&stx.stx_btime)),
        }
    }
}

/// Attributes of the file held by `node` (a [`Node`](crate::Node), or any descriptor of
/// the file, such as an open one), never following a symbolic link:
/// `statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)`, or `fstatat` on
/// kernels without `statx` (then `btime` is `None`).
///
/// # Errors
///
/// The raw errno of `statx`/`fstatat` (`EBADF`, `ENOMEM`, `EOVERFLOW`...).
pub fn stat(node: impl AsFd) -> Result<Stat> {
    statx_at(
        node.as_fd(),
        c"",
        libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
    )
}

/// Attributes of the entry `name` of the directory `dir` (a directory
/// [`Node`](crate::Node), or an open directory such as a [`crate::DirReader`]), never
/// following a symbolic link: `statx(dir, name, AT_SYMLINK_NOFOLLOW)`, or
/// `fstatat` on kernels without `statx`.  For `Treaddir` with attributes,
/// without opening a descriptor per entry.
///
/// `name` is a single component; `.` (the directory itself) is accepted,
/// `..` is not (it could name a directory above the export root: use
/// [`crate::parent`]).
///
/// # Errors
///
/// * `ENOENT`: `name` is empty or contains `/`;
/// * `EINVAL`: `name` contains a NUL byte, or is `..`;
/// * otherwise the raw errno of `statx`/`fstatat` (`ENOENT` if the entry
///   is gone, `ENOTDIR`, `EACCES`, ...).
pub fn stat_at(dir: impl AsFd, name: &[u8]) -> Result<Stat> {
    let c = component(name, NameUse::Lookup)?;
    statx_at(dir.as_fd(), &c, libc::AT_SYMLINK_NOFOLLOW)
}

/// `statx(fd, name, flags | AT_STATX_SYNC_AS_STAT)` with the basic fields
/// and btime, falling back to `fstatat64` on `ENOSYS`.
fn statx_at(fd: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> Result<Stat> {
    let mut stx = MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: `name` is NUL-terminated and outlives the call, `stx` is valid
    // for writes of a `struct statx`, and the descriptor is live.
    let r = cvt(unsafe {
        libc::statx(
            fd.as_raw_fd(),
            name.as_ptr(),
            flags | libc::AT_STATX_SYNC_AS_STAT,
            libc::STATX_BASIC_STATS | libc::STATX_BTIME,
            stx.as_mut_ptr(),
        )
    });
    match r {
        // SAFETY: the buffer was zero-initialised (a valid bit pattern for
        // this plain-integer structure) and statx filled it.
        Ok(_) => Ok(Stat::from_statx(unsafe { stx.assume_init_ref() })),
        Err(errno::ENOSYS) => {
            let mut st = MaybeUninit::<libc::stat64>::uninit();
            // SAFETY: `name` is NUL-terminated and outlives the call; `st`
            // is valid for writes of a `stat64`; the descriptor is live.
            cvt(unsafe { libc::fstatat64(fd.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), flags) })?;
            // SAFETY: fstatat64 succeeded, so it filled the whole structure.
            Ok(Stat::from_stat64(unsafe { st.assume_init_ref() }))
        }
        Err(e) => Err(e),
    }
}
