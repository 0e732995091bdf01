// SPDX-License-Identifier: GPL-2.0-or-later
//! [`Node`]: an `O_PATH` file descriptor standing for one file of the export.

use std::ffi::{CStr, CString};
use std::fmt;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::errno::{self, cvt, Errno, Result};

/// One file of the export, held as an `O_PATH | O_NOFOLLOW | O_CLOEXEC`
/// file descriptor: the engine keeps one per fid.
///
/// An `O_PATH` descriptor pins the inode without opening it, so holding a
/// `Node` for a device, FIFO or socket has no effect on the host, and a
/// symbolic link is held as the link itself, never its target.  Every
/// operation of this crate works on the descriptor (or on a single
/// validated name beneath a directory `Node`), never on a path string
/// from the guest, so renames elsewhere in the tree and unlinking the file
/// itself do not disturb an existing `Node`.
pub struct Node {
    fd: OwnedFd,
}

impl Node {
    /// Opens the export root `path` as a directory `Node`.
    ///
    /// `path` comes from the host configuration, not from the guest; it is
    /// resolved normally (symbolic links in it are followed), and must name
    /// a directory.
    ///
    /// # Errors
    ///
    /// `EINVAL` if `path` contains a NUL byte, otherwise the errno of
    /// `open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)` (`ENOENT`, `ENOTDIR`,
    /// `EACCES`, ...).
    pub fn open_root(path: &Path) -> Result<Node> {
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| errno::EINVAL)?;
        // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
        let fd = cvt(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?;
        Ok(Node { fd: owned(fd) })
    }

    /// Wraps an existing descriptor.
    ///
    /// Meant for descriptors made the way this crate makes them
    /// (`O_PATH | O_NOFOLLOW | O_CLOEXEC`); any descriptor of a file works,
    /// but the "never opened" guarantee for special files only holds for
    /// `O_PATH` ones.
    #[must_use]
    pub fn from_owned_fd(fd: OwnedFd) -> Node {
        Node { fd }
    }

    /// Gives the descriptor back.
    #[must_use]
    pub fn into_owned_fd(self) -> OwnedFd {
        self.fd
    }

    /// A second `Node` for the same file (`F_DUPFD_CLOEXEC`).
    ///
    /// # Errors
    ///
    /// `EMFILE` when out of descriptors.
    pub fn try_clone(&self) -> Result<Node> {
        Ok(Node {
            fd: self.fd.try_clone().map_err(Errno::from)?,
        })
    }

    /// Whether `self` and `other` are the same inode (same `st_dev` and
    /// `st_ino`).
    ///
    /// # Errors
    ///
    /// The errno of `fstat` on either descriptor.
    pub fn same_inode(&self, other: &Node) -> Result<bool> {
        let a = fstat(self.as_fd())?;
        let b = fstat(other.as_fd())?;
        Ok(a.st_dev == b.st_dev && a.st_ino == b.st_ino)
    }

    /// `/proc/self/fd/N` for this descriptor.
    pub(crate) fn proc_path(&self) -> ProcPath {
        ProcPath::new(self.fd.as_raw_fd())
    }
}

impl AsFd for Node {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Node {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl IntoRawFd for Node {
    fn into_raw_fd(self) -> RawFd {
        self.fd.into_raw_fd()
    }
}

impl From<Node> for OwnedFd {
    fn from(node: Node) -> OwnedFd {
        node.fd
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("fd", &self.fd.as_raw_fd())
            .finish()
    }
}

/// `"/proc/self/fd/<fd>"` as a NUL-terminated string on the stack.
///
/// This is a magic link to our *own* descriptor: resolving it jumps straight
/// to the inode the descriptor holds, without looking at any name, and a
/// symbolic link held by an `O_PATH` descriptor is not followed further.
/// So the non-`l` path calls (`getxattr`, `chmod`, `utimensat` without
/// `AT_SYMLINK_NOFOLLOW`, `open`) act on exactly that inode.  The `l`
/// variants and `AT_SYMLINK_NOFOLLOW` must *not* be used with it: they act
/// on the `/proc` link itself.
pub(crate) struct ProcPath {
    buf: [u8; 32],
}

impl ProcPath {
    pub(crate) fn new(fd: RawFd) -> ProcPath {
        const PREFIX: &[u8] = b"/proc/self/fd/";
        let mut buf = [0u8; 32];
        buf[..PREFIX.len()].copy_from_slice(PREFIX);
        let mut digits = [0u8; 12];
        let mut n = u32::try_from(fd).unwrap_or(0);
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            buf[PREFIX.len() + i] = digits[len - 1 - i];
        }
        // buf[PREFIX.len() + len] is already the terminating NUL.
        ProcPath { buf }
    }

    pub(crate) fn as_cstr(&self) -> &CStr {
        // The buffer always holds the prefix, at most 10 digits and a NUL,
        // so this cannot fail; fall back to an empty string to stay
        // panic-free.
        CStr::from_bytes_until_nul(&self.buf).unwrap_or(c"")
    }
}

/// `fstat` on any descriptor (works on `O_PATH` ones).
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> Result<libc::stat64> {
    let mut st = MaybeUninit::<libc::stat64>::uninit();
    // SAFETY: `st` is valid for writes of a `stat64`; `fd` is a live
    // descriptor borrowed for the duration of the call.
    cvt(unsafe { libc::fstat64(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat64 succeeded, so it filled the whole structure.
    Ok(unsafe { st.assume_init() })
}

/// File type bits of a `st_mode`.
pub(crate) fn file_type(mode: libc::mode_t) -> libc::mode_t {
    mode & libc::S_IFMT
}

/// Regular file or directory: the only types this crate ever opens.
pub(crate) fn is_reg_or_dir(mode: libc::mode_t) -> bool {
    matches!(file_type(mode), libc::S_IFREG | libc::S_IFDIR)
}

/// Wraps a fresh descriptor returned by a successful system call.
pub(crate) fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass a descriptor that a system call just returned
    // to us and that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_path_formats_fd() {
        assert_eq!(ProcPath::new(0).as_cstr(), c"/proc/self/fd/0");
        assert_eq!(ProcPath::new(7).as_cstr(), c"/proc/self/fd/7");
        assert_eq!(ProcPath::new(1234567).as_cstr(), c"/proc/self/fd/1234567");
        assert_eq!(
            ProcPath::new(i32::MAX).as_cstr(),
            c"/proc/self/fd/2147483647"
        );
    }

    #[test]
    fn open_root_rejects_nul_and_missing() {
        assert_eq!(
            Node::open_root(Path::new("/no/such/dir/x")).unwrap_err(),
            errno::ENOENT
        );
        let p = std::ffi::OsStr::from_bytes(b"/tmp\0x");
        assert_eq!(Node::open_root(Path::new(p)).unwrap_err(), errno::EINVAL);
        let root = Node::open_root(Path::new("/")).unwrap();
        let again = root.try_clone().unwrap();
        assert!(root.same_inode(&again).unwrap());
    }
}
