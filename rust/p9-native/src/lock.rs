// SPDX-License-Identifier: GPL-2.0-or-later
//! Byte-range locks for `Tlock`/`Tgetlock`: open file description
//! (`F_OFD_*`) locks, which belong to the descriptor returned by
//! [`crate::open`] rather than to the process, so two fids of one process
//! conflict with each other as two guest processes would.

use std::os::fd::{AsFd, AsRawFd};

use crate::errno::{self, cvt, Result};

/// The kind of a byte-range lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockType {
    /// Shared (read) lock, `F_RDLCK`.
    Read,
    /// Exclusive (write) lock, `F_WRLCK`.
    Write,
    /// Release, `F_UNLCK`.
    Unlock,
}

impl LockType {
    fn raw(self) -> libc::c_short {
        (match self {
            LockType::Read => libc::F_RDLCK,
            LockType::Write => libc::F_WRLCK,
            LockType::Unlock => libc::F_UNLCK,
        }) as libc::c_short
    }
}

/// A lock that conflicts with a requested one, as reported by [`getlk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// Its kind ([`LockType::Read`] or [`LockType::Write`]).
    pub typ: LockType,
    /// First byte.
    pub start: u64,
    /// Length in bytes; 0 means "to the end of the file, however long".
    pub len: u64,
    /// Owning process, or -1 for an open file description lock.
    pub pid: i32,
}

fn flock_for(typ: LockType, start: u64, len: u64) -> Result<libc::flock64> {
    let start = i64::try_from(start).map_err(|_| errno::EINVAL)?;
    let len = i64::try_from(len).map_err(|_| errno::EINVAL)?;
    // SAFETY: `flock64` is a plain C structure of integers; all-zero is a
    // valid value (and l_pid must be 0 for F_OFD_* calls).
    let mut fl: libc::flock64 = unsafe { std::mem::zeroed() };
    fl.l_type = typ.raw();
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start;
    fl.l_len = len;
    Ok(fl)
}

/// Places or releases a lock on bytes `start .. start + len` (`len` 0:
/// to end of file, however long it grows), without waiting:
/// `fcntl(F_OFD_SETLK)`.  Locks held through the same descriptor never
/// conflict with each other (they merge or replace); locks through another
/// open of the file do.
///
/// # Errors
///
/// * `EAGAIN`: a conflicting lock is held (the kernel may say `EACCES`;
///   it is reported as `EAGAIN`, the 9P engine's "blocked");
/// * `EINVAL`: `start` or `len` above `i64::MAX`, or a range the kernel
///   refuses;
/// * `EBADF`: a read lock on a descriptor not open for reading, or a write
///   lock on one not open for writing;
/// * otherwise the raw errno of `fcntl` (`ENOLCK`, ...).
pub fn setlk(fd: impl AsFd, typ: LockType, start: u64, len: u64) -> Result<()> {
    let fl = flock_for(typ, start, len)?;
    // SAFETY: F_OFD_SETLK reads a `struct flock64`, which `fl` is; it lives
    // across the call.
    match cvt(unsafe {
        libc::fcntl(
            fd.as_fd().as_raw_fd(),
            libc::F_OFD_SETLK,
            &fl as *const libc::flock64,
        )
    }) {
        Ok(_) => Ok(()),
        Err(errno::EACCES) => Err(errno::EAGAIN),
        Err(e) => Err(e),
    }
}

/// Tests whether a lock of kind `typ` on `start .. start + len` could be
/// placed through `fd`: `fcntl(F_OFD_GETLK)`.  `None` if it could, else
/// one conflicting lock.
///
/// # Errors
///
/// * `EINVAL`: `typ` is [`LockType::Unlock`], or `start`/`len` above
///   `i64::MAX`;
/// * otherwise the raw errno of `fcntl`.
pub fn getlk(fd: impl AsFd, typ: LockType, start: u64, len: u64) -> Result<Option<Conflict>> {
    if typ == LockType::Unlock {
        return Err(errno::EINVAL);
    }
    let mut fl = flock_for(typ, start, len)?;
    // SAFETY: F_OFD_GETLK reads and writes a `struct flock64`, which `fl`
    // is; it lives across the call.
    cvt(unsafe {
        libc::fcntl(
            fd.as_fd().as_raw_fd(),
            libc::F_OFD_GETLK,
            &mut fl as *mut libc::flock64,
        )
    })?;
    let typ = match libc::c_int::from(fl.l_type) {
        libc::F_UNLCK => return Ok(None),
        libc::F_RDLCK => LockType::Read,
        _ => LockType::Write,
    };
    Ok(Some(Conflict {
        typ,
        start: u64::try_from(fl.l_start).unwrap_or(0),
        len: u64::try_from(fl.l_len).unwrap_or(0),
        pid: fl.l_pid,
    }))
}
