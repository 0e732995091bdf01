// SPDX-License-Identifier: GPL-2.0-or-later
//! Extended attributes of the file held by a [`Node`], for every file type,
//! without opening it.
//!
//! `f*xattr` refuse `O_PATH` descriptors (`EBADF`, still so on Linux 6.18,
//! as are the new `*xattrat(fd, "", AT_EMPTY_PATH)` calls), and opening the
//! file to get a real descriptor is not allowed for special files and may
//! be denied for others (write-only files).  Instead these functions use
//! the path calls on `/proc/self/fd/N`, our own descriptor's magic link,
//! with the *following* variants (`getxattr`, not `lgetxattr`): following
//! the magic link lands on the node's inode — for a symbolic link node the
//! link itself, not its target — while the `l` variants would act on the
//! `/proc` link (`lsetxattr` fails with `EPERM`, `llistxattr` lists
//! nothing).
//!
//! This matches QEMU's passthrough backend, which calls the `l` variants on
//! `/proc/self/fd/<dirfd>/<name>`, i.e. on the file itself, whatever its
//! type: the kernel then applies its own rules, e.g. `user.*` attributes
//! exist only on regular files and directories (`EPERM` on set, `ENODATA`
//! on get, for symbolic links and special files), while `trusted.*` and
//! `security.*` ones work on every type.  Which namespaces the guest may
//! use at all is policy, see [`crate::SecurityModel::check_xattr_name`].

use std::ffi::CString;

use crate::errno::{self, cvt, cvt_long, Result};
use crate::node::{Node, ProcPath};

fn xname(name: &[u8]) -> Result<CString> {
    CString::new(name).map_err(|_| errno::EINVAL)
}

/// Reads the attribute `name` into `buf`; with an empty `buf`, returns the
/// value's size without reading it (like `getxattr(2)` with size 0).
///
/// # Errors
///
/// * `EINVAL`: `name` contains a NUL byte;
/// * otherwise the raw errno of `getxattr` (`ENODATA` if absent, `ERANGE`
///   if `buf` is too small or `name` empty or too long, `EOPNOTSUPP`,
///   `E2BIG`, ...).
pub fn getxattr(node: &Node, name: &[u8], buf: &mut [u8]) -> Result<usize> {
    let n = xname(name)?;
    let p = node.proc_path();
    let (ptr, len) = if buf.is_empty() {
        (std::ptr::null_mut(), 0)
    } else {
        (buf.as_mut_ptr(), buf.len())
    };
    // SAFETY: path and name are NUL-terminated; `ptr` is null with length
    // 0 or points to `len` writable bytes borrowed for the call.
    let r = unsafe { libc::getxattr(p.as_cstr().as_ptr(), n.as_ptr(), ptr.cast(), len) };
    Ok(cvt_long(r as libc::c_long)? as usize)
}

/// Lists the attribute names (each NUL-terminated) into `buf`; with an
/// empty `buf`, returns the list's size (like `listxattr(2)` with size 0).
///
/// # Errors
///
/// The raw errno of `listxattr` (`ERANGE` if `buf` is too small,
/// `E2BIG`, ...).
pub fn listxattr(node: &Node, buf: &mut [u8]) -> Result<usize> {
    let p = node.proc_path();
    let (ptr, len) = if buf.is_empty() {
        (std::ptr::null_mut(), 0)
    } else {
        (buf.as_mut_ptr(), buf.len())
    };
    // SAFETY: the path is NUL-terminated; `ptr` is null with length 0 or
    // points to `len` writable bytes borrowed for the call.
    let r = unsafe { libc::listxattr(p.as_cstr().as_ptr(), ptr.cast(), len) };
    Ok(cvt_long(r as libc::c_long)? as usize)
}

/// Sets the attribute `name` to `value`; `flags` is 0, `XATTR_CREATE`
/// (fail if it exists) or `XATTR_REPLACE` (fail if it does not).
///
/// # Errors
///
/// * `EINVAL`: `name` contains a NUL byte, or bad `flags`;
/// * otherwise the raw errno of `setxattr` (`EEXIST`, `ENODATA`, `EPERM`
///   for `user.*` on a symbolic link or special file, `ENOSPC`, `E2BIG`,
///   `ERANGE`, `EOPNOTSUPP`, ...).
pub fn setxattr(node: &Node, name: &[u8], value: &[u8], flags: libc::c_int) -> Result<()> {
    setxattr_proc(&node.proc_path(), name, value, flags)
}

/// [`setxattr`] on the file a descriptor's `/proc/self/fd/N` link names
/// (a node's or an open file's).
pub(crate) fn setxattr_proc(
    p: &ProcPath,
    name: &[u8],
    value: &[u8],
    flags: libc::c_int,
) -> Result<()> {
    let n = xname(name)?;
    // SAFETY: path and name are NUL-terminated; `value` is readable for
    // its length during the call.
    cvt(unsafe {
        libc::setxattr(
            p.as_cstr().as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    })
    .map(drop)
}

/// Removes the attribute `name`.
///
/// # Errors
///
/// * `EINVAL`: `name` contains a NUL byte;
/// * otherwise the raw errno of `removexattr` (`ENODATA` if absent,
///   `EPERM`, `EOPNOTSUPP`, ...).
pub fn removexattr(node: &Node, name: &[u8]) -> Result<()> {
    let n = xname(name)?;
    let p = node.proc_path();
    // SAFETY: path and name are NUL-terminated.
    cvt(unsafe { libc::removexattr(p.as_cstr().as_ptr(), n.as_ptr()) }).map(drop)
}
