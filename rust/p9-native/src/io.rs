// SPDX-License-Identifier: GPL-2.0-or-later
//! Data I/O on descriptors returned by [`crate::open`] and
//! [`crate::create_file`]: vectored positional read/write, `fsync`,
//! `ftruncate`.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd};

use crate::errno::{self, cvt, cvt_long, retry_eintr, Result};

/// At most this many buffers go to one `preadv`/`pwritev` (the kernel's
/// `UIO_MAXIOV`); the rest are left for the caller to retry, as with any
/// short transfer.
const MAX_IOV: usize = libc::UIO_MAXIOV as usize;

fn to_off(off: u64) -> Result<libc::off64_t> {
    libc::off64_t::try_from(off).map_err(|_| errno::EINVAL)
}

/// Reads at `offset` into `bufs` (`preadv`), returning the number of
/// bytes read; fewer than requested at end of file, 0 at or past it.
/// Retried on `EINTR`.
///
/// # Errors
///
/// * `EINVAL`: `offset` above `i64::MAX`;
/// * otherwise the raw errno of `preadv` (`EISDIR`, `EBADF` if not open
///   for reading, `EIO`, ...).
pub fn pread(fd: impl AsFd, bufs: &mut [IoSliceMut<'_>], offset: u64) -> Result<usize> {
    let off = to_off(offset)?;
    let fd = fd.as_fd();
    let cnt = bufs.len().min(MAX_IOV);
    let n = retry_eintr(|| {
        // SAFETY: `IoSliceMut` is guaranteed ABI-compatible with `struct
        // iovec` on Unix, each one describes a live, writable buffer
        // borrowed for this call, and `cnt` does not exceed `bufs.len()`.
        let r = unsafe {
            libc::preadv64(
                fd.as_raw_fd(),
                bufs.as_mut_ptr().cast(),
                cnt as libc::c_int,
                off,
            )
        };
        cvt_long(r as libc::c_long)
    })?;
    Ok(n as usize)
}

/// Writes `bufs` at `offset` (`pwritev`), returning the number of bytes
/// written (possibly fewer than given).  Retried on `EINTR`.  As with
/// `pwritev(2)`, a descriptor opened with `O_APPEND` appends whatever the
/// offset.
///
/// # Errors
///
/// * `EINVAL`: `offset` above `i64::MAX`;
/// * otherwise the raw errno of `pwritev` (`ENOSPC`, `EDQUOT`, `EFBIG`,
///   `EBADF` if not open for writing, ...).
pub fn pwrite(fd: impl AsFd, bufs: &[IoSlice<'_>], offset: u64) -> Result<usize> {
    let off = to_off(offset)?;
    let fd = fd.as_fd();
    let cnt = bufs.len().min(MAX_IOV);
    let n = retry_eintr(|| {
        // SAFETY: `IoSlice` is guaranteed ABI-compatible with `struct
        // iovec` on Unix, each one describes a live buffer borrowed for this
        // call (only read by the kernel), and `cnt` does not exceed
        // `bufs.len()`.
        let r = unsafe {
            libc::pwritev64(
                fd.as_raw_fd(),
                bufs.as_ptr().cast(),
                cnt as libc::c_int,
                off,
            )
        };
        cvt_long(r as libc::c_long)
    })?;
    Ok(n as usize)
}

/// Flushes the file to stable storage: `fdatasync` with `datasync`,
/// `fsync` otherwise (`Tfsync`).
///
/// # Errors
///
/// The raw errno of the call (`EIO`, `ENOSPC`, `EROFS`/`EINVAL` for
/// descriptors that do not support syncing, ...).
pub fn fsync(fd: impl AsFd, datasync: bool) -> Result<()> {
    let fd = fd.as_fd().as_raw_fd();
    // SAFETY: fsync/fdatasync take only a descriptor and touch no memory.
    cvt(unsafe {
        if datasync {
            libc::fdatasync(fd)
        } else {
            libc::fsync(fd)
        }
    })
    .map(drop)
}

/// Sets the size of an open regular file (`ftruncate`).
///
/// # Errors
///
/// * `EINVAL`: `size` above `i64::MAX`;
/// * otherwise the raw errno of `ftruncate` (`EINVAL`/`EBADF` if not open
///   for writing, `EFBIG`, `EPERM`, ...).
pub fn ftruncate(fd: impl AsFd, size: u64) -> Result<()> {
    let size = to_off(size)?;
    let fd = fd.as_fd();
    // SAFETY: ftruncate takes only a descriptor and a length.
    retry_eintr(|| cvt(unsafe { libc::ftruncate64(fd.as_raw_fd(), size) })).map(drop)
}
