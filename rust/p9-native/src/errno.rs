// SPDX-License-Identifier: GPL-2.0-or-later
//! Error type: a positive Linux errno, kept raw so the engine can send it to
//! the guest unchanged (9P2000.L `Rlerror` carries a Linux errno).

use std::fmt;
use std::io;

/// A positive Linux `errno` value.
///
/// Every fallible function of this crate returns one.  The value is the raw
/// errno of the failing system call unless the function's `# Errors`
/// section says otherwise, so it can go to the guest as is.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, Errno>;

impl Errno {
    /// `errno` of the calling thread, as left by the last failing libc call.
    ///
    /// Falls back to `EIO` if the OS reports no error number (never
    /// expected on Linux).
    #[must_use]
    pub fn last() -> Errno {
        Errno::from_io(&io::Error::last_os_error())
    }

    /// The errno inside an [`io::Error`]; `EIO` if it carries none (an error
    /// made by Rust code rather than by the OS).
    #[must_use]
    pub fn from_io(err: &io::Error) -> Errno {
        Errno(err.raw_os_error().filter(|&e| e > 0).unwrap_or(libc::EIO))
    }

    /// The raw positive errno value.
    #[must_use]
    pub fn raw(self) -> i32 {
        self.0
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Errno({}: {})",
            self.0,
            io::Error::from_raw_os_error(self.0)
        )
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&io::Error::from_raw_os_error(self.0), f)
    }
}

impl std::error::Error for Errno {}

impl From<io::Error> for Errno {
    fn from(err: io::Error) -> Errno {
        Errno::from_io(&err)
    }
}

impl From<Errno> for io::Error {
    fn from(err: Errno) -> io::Error {
        io::Error::from_raw_os_error(err.0)
    }
}

/// Turns a libc-style `int` return (`-1` and `errno` on failure) into a
/// [`Result`].
pub(crate) fn cvt(ret: libc::c_int) -> Result<libc::c_int> {
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// Like [`cvt`] for `ssize_t`/`long` returns (`read`-like calls, `syscall`).
pub(crate) fn cvt_long(ret: libc::c_long) -> Result<libc::c_long> {
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// Runs `f` again while it fails with `EINTR`.
pub(crate) fn retry_eintr<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    loop {
        match f() {
            Err(Errno(libc::EINTR)) => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_keep_the_raw_errno() {
        let e = Errno(libc::ENOENT);
        let io: io::Error = e.into();
        assert_eq!(io.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(Errno::from(io), e);
        assert_eq!(Errno::from_io(&io::Error::other("x")), Errno(libc::EIO));
        assert!(format!("{e:?}").contains("2"));
        assert!(!e.to_string().is_empty());
    }

    #[test]
    fn cvt_reports_errno() {
        // SAFETY: close(-1) touches no memory; it just fails with EBADF.
        let r = cvt(unsafe { libc::close(-1) });
        assert_eq!(r, Err(Errno(libc::EBADF)));
        assert_eq!(cvt(3), Ok(3));
    }
}
