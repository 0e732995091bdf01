// SPDX-License-Identifier: GPL-2.0-or-later
//! The "negative errno" convention at the C boundary, both ways (as QEMU's
//! `rust/common/src/errno.rs`): C functions report failure as `-errno`
//! and success as a non-negative value.  Every conversion between that
//! convention and [`Errno`] goes through [`to_neg_errno`] and
//! [`from_neg_errno`].

use std::ffi::c_int;

use p9_wire::errno::{Errno, EIO};

/// The largest value Linux uses as an errno (`MAX_ERRNO`): a negative
/// return below `-MAX_ERRNO` is no errno.
const MAX_ERRNO: u32 = 4095;

/// `e` as a C function returns it: `-errno`.  A value that is no errno
/// (0, or above `MAX_ERRNO`) becomes `-EIO`, so that a failure never
/// reads as success.
pub(crate) fn to_neg_errno(e: Errno) -> c_int {
    match e.raw() {
        raw @ 1..=MAX_ERRNO => -(raw as c_int),
        _ => -libc::EIO,
    }
}

/// A C return value that follows the convention.
pub(crate) trait NegErrno: Copy {
    /// What a success carries.
    type Ok;
    /// `Ok(self)` when it is not negative, else the errno it encodes.
    fn into_result(self) -> Result<Self::Ok, Errno>;
}

/// The errno of a negative `ret` (its magnitude); `EIO` for values that
/// are none.
fn errno_of_negative(magnitude: u64) -> Errno {
    match u32::try_from(magnitude) {
        Ok(raw @ 1..=MAX_ERRNO) => Errno(raw),
        _ => EIO,
    }
}

impl NegErrno for c_int {
    type Ok = c_int;
    fn into_result(self) -> Result<c_int, Errno> {
        if self < 0 {
            Err(errno_of_negative(u64::from(self.unsigned_abs())))
        } else {
            Ok(self)
        }
    }
}

impl NegErrno for isize {
    type Ok = usize;
    fn into_result(self) -> Result<usize, Errno> {
        if self < 0 {
            Err(errno_of_negative(self.unsigned_abs() as u64))
        } else {
            Ok(self.unsigned_abs())
        }
    }
}

/// A C function's return value as a `Result`: only negative values fail
/// (9p.c's `if (err < 0)`), and negative values that are no errno (below
/// `-4095`) become `EIO`.
pub(crate) fn from_neg_errno<T: NegErrno>(ret: T) -> Result<T::Ok, Errno> {
    ret.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;
    use p9_wire::errno::ENOENT;

    #[test]
    fn negative_errno_round_trips() {
        assert_eq!(from_neg_errno(-2isize), Err(ENOENT));
        assert_eq!(from_neg_errno(isize::MIN), Err(EIO));
        assert_eq!(from_neg_errno(-5000isize), Err(EIO));
        assert_eq!(from_neg_errno(7isize), Ok(7));
        assert_eq!(from_neg_errno(-2 as c_int), Err(ENOENT));
        assert_eq!(from_neg_errno(c_int::MIN), Err(EIO));
        assert_eq!(from_neg_errno(1 as c_int), Ok(1));
        assert_eq!(to_neg_errno(ENOENT), -libc::ENOENT);
        assert_eq!(to_neg_errno(Errno(0)), -libc::EIO);
        assert_eq!(to_neg_errno(Errno(u32::MAX)), -libc::EIO);
        assert_eq!(from_neg_errno(to_neg_errno(ENOENT)), Err(ENOENT));
    }
}
