// SPDX-License-Identifier: GPL-2.0-or-later
//! Errors: the workspace's one errno type ([`p9_wire::errno::Errno`], a
//! positive Linux errno kept raw so the engine can send it to the guest
//! unchanged; 9P2000.L `Rlerror` carries a Linux errno), its constants,
//! and the C library's return conventions turned into [`Result`]s.

pub use p9_wire::errno::*;

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, Errno>;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_keep_the_raw_errno() {
        let e = Errno::from_raw(libc::ENOENT);
        let io: std::io::Error = e.into();
        assert_eq!(io.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(Errno::from(io), e);
        assert_eq!(
            Errno::from_io_error(&std::io::Error::other("x")),
            Errno::from_raw(libc::EIO)
        );
        assert!(format!("{e:?}").contains("ENOENT"));
        assert!(!e.to_string().is_empty());
    }

    #[test]
    fn cvt_reports_errno() {
        // SAFETY: close(-1) touches no memory; it just fails with EBADF.
        let r = cvt(unsafe { libc::close(-1) });
        assert_eq!(r, Err(Errno::from_raw(libc::EBADF)));
        assert_eq!(cvt(3), Ok(3));
    }

    /// The wire's constants, which this crate returns, are the host's
    /// (`libc`) numbers.
    #[test]
    fn constants_are_the_host_numbers() {
        let pairs = [
            (EPERM, libc::EPERM),
            (ENOENT, libc::ENOENT),
            (EINTR, libc::EINTR),
            (EIO, libc::EIO),
            (ENXIO, libc::ENXIO),
            (EBADF, libc::EBADF),
            (EAGAIN, libc::EAGAIN),
            (ENOMEM, libc::ENOMEM),
            (EACCES, libc::EACCES),
            (EEXIST, libc::EEXIST),
            (EXDEV, libc::EXDEV),
            (ENOTDIR, libc::ENOTDIR),
            (EISDIR, libc::EISDIR),
            (EINVAL, libc::EINVAL),
            (ENFILE, libc::ENFILE),
            (EMFILE, libc::EMFILE),
            (ENOTTY, libc::ENOTTY),
            (ERANGE, libc::ERANGE),
            (ENAMETOOLONG, libc::ENAMETOOLONG),
            (ENOSYS, libc::ENOSYS),
            (ENOTEMPTY, libc::ENOTEMPTY),
            (ELOOP, libc::ELOOP),
            (ENODATA, libc::ENODATA),
            (EOPNOTSUPP, libc::EOPNOTSUPP),
            (ESTALE, libc::ESTALE),
        ];
        for (wire, host) in pairs {
            assert_eq!(wire, Errno::from_raw(host));
        }
    }
}
