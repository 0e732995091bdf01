// SPDX-License-Identifier: GPL-2.0-or-later
//! Directory-entry operations under a directory [`Node`]: `mkdir`,
//! `symlink`, `mknod`, `link`, `unlinkat`, `renameat`.
//!
//! Each takes a single validated name; none follows a symbolic link in the
//! final component.

use std::ffi::CString;
use std::os::fd::AsRawFd;

use crate::errno::{self, cvt, Result};
use crate::node::Node;
use crate::resolve::{component, link_fallback_forced, lookup_c, NameUse};

/// Creates the directory `name` in `dir` (`Tmkdir`) and returns its node.
///
/// `mode` is subject to the process umask (see
/// [`crate::SecurityModel::finish_create`]).  The returned node is looked up
/// after creation, without following symbolic links.
///
/// # Errors
///
/// * name errors: `ENOENT` (empty or contains `/`), `EINVAL` (NUL byte),
///   `EEXIST` (`.` or `..`, like QEMU's `Tmkdir`);
/// * otherwise the raw errno of `mkdirat` (`EEXIST`, `EACCES`, `ENOSPC`,
///   ...) or of the lookup.
pub fn mkdir(dir: &Node, name: &[u8], mode: libc::mode_t) -> Result<Node> {
    let c = component(name, NameUse::Create)?;
    // SAFETY: `c` is NUL-terminated and outlives the call; `dir` is live.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode) })?;
    lookup_c(dir, &c)
}

/// Creates the symbolic link `name` in `dir` pointing to `target`
/// (`Tsymlink`) and returns the link's node.
///
/// `target` is stored verbatim; it is never resolved by this crate (an
/// absolute or `..` target is harmless: lookups never follow links).
///
/// # Errors
///
/// * name errors as for [`mkdir`];
/// * `EINVAL`: `target` contains a NUL byte;
/// * otherwise the raw errno of `symlinkat` (`EEXIST`, `ENOENT` for an
///   empty target, `ENAMETOOLONG`, ...) or of the lookup.
pub fn symlink(dir: &Node, name: &[u8], target: &[u8]) -> Result<Node> {
    let c = component(name, NameUse::Create)?;
    let t = CString::new(target).map_err(|_| errno::EINVAL)?;
    // SAFETY: both strings are NUL-terminated and outlive the call.
    cvt(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), c.as_ptr()) })?;
    lookup_c(dir, &c)
}

/// Creates the node `name` in `dir` with `mode` (type and permission
/// bits) and device number `rdev` (`Tmknod`), returning its node.
///
/// As in QEMU's passthrough model, device nodes, FIFOs and sockets may be
/// created on the host: the point of the CVE-2023-2861 fix is that they are
/// never *opened* ([`crate::open`] refuses them).
///
/// # Errors
///
/// * name errors as for [`mkdir`];
/// * otherwise the raw errno of `mknodat` (`EEXIST`, `EPERM` without
///   `CAP_MKNOD` or for a directory type, `EINVAL`, ...) or of the lookup.
pub fn mknod(dir: &Node, name: &[u8], mode: libc::mode_t, rdev: libc::dev_t) -> Result<Node> {
    let c = component(name, NameUse::Create)?;
    // SAFETY: `c` is NUL-terminated and outlives the call; `dir` is live.
    cvt(unsafe { libc::mknodat(dir.as_raw_fd(), c.as_ptr(), mode, rdev) })?;
    lookup_c(dir, &c)
}

/// Makes `name` in `dir` a new hard link to the file held by `target`
/// (`Tlink`).
///
/// First `linkat(target, "", dir, name, AT_EMPTY_PATH)`, which needs
/// `CAP_DAC_READ_SEARCH` (since Linux 6.10, or the descriptor having been
/// opened with the caller's current credentials); when that fails with
/// `ENOENT` or `EPERM` it
/// falls back to `linkat(AT_FDCWD, "/proc/self/fd/N", dir, name,
/// AT_SYMLINK_FOLLOW)`: following *our own* descriptor's magic link gives
/// exactly the node's inode (a symbolic link node is linked as the link
/// itself, not its target).
///
/// # Errors
///
/// * name errors as for [`mkdir`];
/// * otherwise the raw errno of `linkat` (`EEXIST`, `EPERM` for a
///   directory, `EXDEV` across file systems, `ENOENT` if the file has no
///   links left, `EMLINK`, ...).
pub fn link(target: &Node, dir: &Node, name: &[u8]) -> Result<()> {
    let c = component(name, NameUse::Create)?;
    if !link_fallback_forced() {
        // SAFETY: both strings are NUL-terminated and outlive the call;
        // the descriptors are live.
        let r = cvt(unsafe {
            libc::linkat(
                target.as_raw_fd(),
                c"".as_ptr(),
                dir.as_raw_fd(),
                c.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        });
        match r {
            Ok(_) => return Ok(()),
            Err(errno::ENOENT | errno::EPERM) => {}
            Err(e) => return Err(e),
        }
    }
    let p = target.proc_path();
    // SAFETY: both strings are NUL-terminated and outlive the call.
    cvt(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            p.as_cstr().as_ptr(),
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })
    .map(drop)
}

/// Removes `name` from `dir` (`Tunlinkat`, `Tremove`): a directory with
/// `is_dir` (`AT_REMOVEDIR`), anything else without.
///
/// Existing nodes of the removed file stay usable.
///
/// # Errors
///
/// * `ENOENT`: `name` empty or containing `/`; `EINVAL`: NUL byte or `.`;
///   `ENOTEMPTY`: `..` (all as QEMU's `Tunlinkat`);
/// * otherwise the raw errno of `unlinkat` (`ENOENT`, `EISDIR` for a
///   directory without `is_dir`, `ENOTDIR` for a non-directory with it,
///   `ENOTEMPTY`, `EBUSY` for a mount point, ...).
pub fn unlinkat(dir: &Node, name: &[u8], is_dir: bool) -> Result<()> {
    let c = component(name, NameUse::Unlink)?;
    let flags = if is_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: `c` is NUL-terminated and outlives the call; `dir` is live.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), flags) }).map(drop)
}

/// Renames `oldname` in `olddir` to `newname` in `newdir` (`Trenameat`,
/// `Trename`), replacing an existing target like `rename(2)`.
///
/// Nodes of the renamed file, and of anything beneath a renamed directory,
/// stay valid.
///
/// # Errors
///
/// * `ENOENT`: a name empty or containing `/`; `EINVAL`: a NUL byte;
///   `EISDIR`: a name is `.` or `..` (as QEMU's `Trenameat`);
/// * otherwise the raw errno of `renameat2(.., 0)` (`ENOENT`, `EXDEV`,
///   `ENOTEMPTY`, `EISDIR`, `ENOTDIR`, `EINVAL` for moving a directory
///   into itself, `EBUSY`, ...).
pub fn renameat(olddir: &Node, oldname: &[u8], newdir: &Node, newname: &[u8]) -> Result<()> {
    let o = component(oldname, NameUse::Rename)?;
    let n = component(newname, NameUse::Rename)?;
    // SAFETY: both names are NUL-terminated and outlive the call; the
    // descriptors are live; flags 0 is a plain rename.
    cvt(unsafe {
        libc::renameat2(
            olddir.as_raw_fd(),
            o.as_ptr(),
            newdir.as_raw_fd(),
            n.as_ptr(),
            0,
        )
    })
    .map(drop)
}
