// SPDX-License-Identifier: GPL-2.0-or-later
//! Opening a [`Node`] for I/O, and creating regular files.
//!
//! Host special files (devices, FIFOs, sockets) are never opened
//! (CVE-2023-2861, QEMU's `close_if_special_file`): the type is checked on
//! the `O_PATH` descriptor *before* anything is opened, and checked again on
//! the opened descriptor.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::errno::{self, cvt, Result};
use crate::node::{file_type, fstat, is_reg_or_dir, owned, Node, ProcPath};
use crate::resolve::{component, lookup_c, NameUse};
use crate::stat::{stat, Stat};

/// The `O_TMPFILE` bit without the `O_DIRECTORY` it is defined with.
const O_TMPFILE_BIT: libc::c_int = libc::O_TMPFILE & !libc::O_DIRECTORY;

/// Filters open flags coming from the guest (already mapped from
/// 9P2000.L `P9_DOTL_*` to Linux `O_*` by the engine).
///
/// Mirrors QEMU's `get_dotl_openflags`: drops `O_CREAT`, `O_NOCTTY`,
/// `O_ASYNC` (`FASYNC`) and `O_DIRECT` (direct I/O is not supported).  It
/// also drops what only this layer may decide: `O_EXCL` (meaningful
/// without `O_CREAT` only for block devices, which are never opened; file
/// creation goes through [`create_file`]), `O_PATH`, the `O_TMPFILE` bit
/// and `O_NOFOLLOW` (symbolic links are refused anyway, see [`open`]).  It
/// always adds `O_CLOEXEC`.  The access mode, `O_TRUNC`, `O_APPEND`,
/// `O_NONBLOCK`, `O_DSYNC`, `O_SYNC`, `O_NOATIME`, `O_DIRECTORY` and
/// `O_LARGEFILE` are kept.
#[must_use]
pub fn sanitize_open_flags(flags: libc::c_int) -> libc::c_int {
    let drop = libc::O_CREAT
        | libc::O_EXCL
        | libc::O_NOCTTY
        | libc::O_ASYNC
        | libc::O_DIRECT
        | libc::O_PATH
        | O_TMPFILE_BIT
        | libc::O_NOFOLLOW;
    (flags & !drop) | libc::O_CLOEXEC
}

/// Opens `path` (a `/proc/self/fd/N` magic link or a single name beneath
/// `dir`), retrying without `O_NOATIME` on `EPERM` like QEMU's
/// `openat_file`.  Returns the descriptor and the flags that were used.
fn open_retry_noatime(
    mut flags: libc::c_int,
    mut open_fn: impl FnMut(libc::c_int) -> Result<OwnedFd>,
) -> Result<(OwnedFd, libc::c_int)> {
    loop {
        match open_fn(flags) {
            Err(errno::EPERM) if flags & libc::O_NOATIME != 0 => {
                // The guest asked for O_NOATIME but we may not honour it:
                // open(2) says it may be ignored, so drop it (as QEMU does).
                flags &= !libc::O_NOATIME;
            }
            Err(e) => return Err(e),
            Ok(fd) => return Ok((fd, flags)),
        }
    }
}

/// After opening with `O_NONBLOCK` added, restores the requested status
/// flags (`F_SETFL` only changes `O_APPEND`, `O_ASYNC`, `O_DIRECT`,
/// `O_NOATIME` and `O_NONBLOCK`).
fn restore_status_flags(fd: BorrowedFd<'_>, flags: libc::c_int) -> Result<()> {
    if flags & libc::O_NONBLOCK != 0 {
        return Ok(());
    }
    // SAFETY: F_SETFL takes an int argument and touches no memory.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) }).map(drop)
}

/// Opens the file held by `node` for I/O with the Linux open `flags`
/// (filtered by [`sanitize_open_flags`]).  Directories are opened the same
/// way (with `O_RDONLY | O_DIRECTORY` typically) for [`crate::DirReader`].
///
/// The `O_PATH` descriptor is re-opened through `/proc/self/fd/N`: that
/// magic link designates our own descriptor's inode, whatever has happened
/// to its name since.  Before, the node must be a regular file or a
/// directory; the open adds `O_NONBLOCK | O_NOCTTY` (so nothing can block
/// or become a controlling terminal) and removes `O_NONBLOCK` afterwards
/// unless requested, like QEMU's `openat_file`; after, the opened
/// descriptor must still be the same inode and a regular file or
/// directory, else it is closed.  `O_NOFOLLOW` cannot be used on the magic
/// link (it would refuse the link itself with `ELOOP`); symbolic links are
/// refused by the type check instead.  `O_NOATIME` is dropped if it is not
/// permitted (`EPERM`), as QEMU does.
///
/// # Errors
///
/// * `ELOOP`: `node` is a symbolic link (what `open(O_NOFOLLOW)` of it
///   gives, and QEMU's `openat_file`);
/// * `ENXIO`: `node` is a device, FIFO or socket (QEMU's
///   `close_if_special_file`), or the opened file is not a regular file or
///   directory;
/// * `ESTALE`: the opened file is not the node's inode (not expected);
/// * otherwise the errno of `fstat`, `open` or `fcntl` (`EACCES`,
///   `EISDIR` for writing a directory, `ENOTDIR` for `O_DIRECTORY` on a
///   file, `ENOENT` if `/proc` is not mounted, ...).
pub fn open(node: &Node, flags: libc::c_int) -> Result<OwnedFd> {
    let st = fstat(node.as_fd())?;
    open_known(node, st.st_mode, st.st_dev, st.st_ino, flags)
}

/// [`open`] for a node whose type (`st_mode`) and identity the caller
/// already has (the backend's records know both), without asking again.
/// Directories are opened without `O_NONBLOCK` (opening one cannot
/// block), so no `fcntl` is needed after.
pub(crate) fn open_known(
    node: &Node,
    st_mode: libc::mode_t,
    dev: u64,
    ino: u64,
    flags: libc::c_int,
) -> Result<OwnedFd> {
    let dir = match file_type(st_mode) {
        libc::S_IFREG => false,
        libc::S_IFDIR => true,
        // What open(2) with O_NOFOLLOW says for a symlink, as QEMU's
        // openat_file gets it: ENOTDIR when a directory was asked for.
        libc::S_IFLNK if flags & libc::O_DIRECTORY != 0 => return Err(errno::ENOTDIR),
        libc::S_IFLNK => return Err(errno::ELOOP),
        _ => return Err(errno::ENXIO),
    };
    let path = node.proc_path();
    let flags = sanitize_open_flags(flags);
    let nonblock = if dir { 0 } else { libc::O_NONBLOCK };
    let (fd, used) =
        open_retry_noatime(flags, |f| open_proc(&path, f | nonblock | libc::O_NOCTTY))?;
    let post = fstat(fd.as_fd())?;
    if !is_reg_or_dir(post.st_mode) {
        return Err(errno::ENXIO);
    }
    if post.st_dev != dev || post.st_ino != ino {
        return Err(errno::ESTALE);
    }
    if !dir {
        restore_status_flags(fd.as_fd(), used)?;
    }
    Ok(fd)
}

fn open_proc(path: &ProcPath, flags: libc::c_int) -> Result<OwnedFd> {
    // SAFETY: the path is NUL-terminated and outlives the call; no mode
    // argument is needed without O_CREAT.
    let fd = cvt(unsafe { libc::open(path.as_cstr().as_ptr(), flags) })?;
    Ok(owned(fd))
}

/// An `O_PATH` node for the inode an open descriptor refers to.
fn node_of_fd(fd: BorrowedFd<'_>) -> Result<Node> {
    let path = ProcPath::new(fd.as_raw_fd());
    Ok(Node::from_owned_fd(open_proc(
        &path,
        libc::O_PATH | libc::O_CLOEXEC,
    )?))
}

fn create_excl(dir: &Node, name: &CStr, flags: libc::c_int, mode: libc::mode_t) -> Result<OwnedFd> {
    // No O_NONBLOCK (nor the fcntl to take it off again): O_EXCL only
    // ever opens the regular file it creates, which cannot block.
    let flags =
        flags | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_CLOEXEC;
    // Plain openat is safe for a single validated component, and O_EXCL
    // never follows a symbolic link nor opens an existing file.
    // SAFETY: `name` is NUL-terminated and outlives the call; the mode is
    // passed as the variadic argument O_CREAT requires.
    let fd = cvt(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags,
            libc::c_uint::from(mode),
        )
    })?;
    Ok(owned(fd))
}

/// How many times [`create_file`] retries when the name keeps appearing
/// and disappearing under it.
const CREATE_RETRIES: usize = 16;

/// Creates (or, without `O_EXCL`, opens an existing) regular file `name`
/// in the directory `dir`: `Tlcreate`.  Returns the new file's [`Node`] and
/// a descriptor open with `flags` (filtered by [`sanitize_open_flags`]).
///
/// `mode` is the permission bits, subject to the process umask; use
/// [`crate::SecurityModel::finish_create`] to set owner and exact mode as
/// QEMU does.  The file is always created with `O_CREAT | O_EXCL |
/// O_NOFOLLOW`, so an existing entry is never opened by the create itself:
/// without `O_EXCL` in `flags`, an existing entry is looked up and opened
/// with [`open`], so existing special files and symbolic links are refused
/// (`ENXIO`/`ELOOP`) without ever being opened on the host — stricter than
/// QEMU, which opens first and checks after.
///
/// # Errors
///
/// * name errors: `ENOENT` (empty or contains `/`), `EINVAL` (NUL byte),
///   `EEXIST` (`.` or `..`, like QEMU's `Tlcreate`);
/// * `EEXIST`: `O_EXCL` given and `name` exists (any type, including a
///   dangling symbolic link);
/// * errors of [`open`] for an existing entry (`ELOOP`, `ENXIO`, `EISDIR`,
///   ...);
/// * otherwise the raw errno of `openat` (`EACCES`, `ENOSPC`, `EDQUOT`,
///   `EROFS`, ...).
pub fn create_file(
    dir: &Node,
    name: &[u8],
    flags: libc::c_int,
    mode: libc::mode_t,
) -> Result<(Node, OwnedFd)> {
    create_file_stat(dir, name, flags, mode).map(|(node, fd, _)| (node, fd))
}

/// [`create_file`], also returning the new node's attributes (as
/// [`stat`] gives them just after the creation or the open).
pub(crate) fn create_file_stat(
    dir: &Node,
    name: &[u8],
    flags: libc::c_int,
    mode: libc::mode_t,
) -> Result<(Node, OwnedFd, Stat)> {
    let cname = component(name, NameUse::Create)?;
    let excl = flags & libc::O_EXCL != 0;
    let flags = sanitize_open_flags(flags);
    let mut last = errno::EEXIST;
    for _ in 0..CREATE_RETRIES {
        match open_retry_noatime(flags, |f| create_excl(dir, &cname, f, mode)) {
            Ok((fd, _)) => {
                // The node of the descriptor itself (the name may already
                // be another file's): the inode just created, whose type
                // is checked all the same.
                let node = node_of_fd(fd.as_fd())?;
                let st = stat(&node)?;
                if st.file_type() != libc::S_IFREG {
                    return Err(errno::ENXIO);
                }
                return Ok((node, fd, st));
            }
            Err(errno::EEXIST) if !excl => match lookup_c(dir, &cname) {
                Ok(node) => {
                    let fd = open(&node, flags)?;
                    let st = stat(&node)?;
                    return Ok((node, fd, st));
                }
                // Removed between the two calls: try creating again.
                Err(e @ errno::ENOENT) => last = e,
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
    Err(last)
}
