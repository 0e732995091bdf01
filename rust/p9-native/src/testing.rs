// SPDX-License-Identifier: GPL-2.0-or-later
//! Hooks for tests (cargo feature `test-hooks`): they force the fallback
//! code paths that the running kernel and privileges would otherwise not
//! take.  Each setting affects only the calling thread, so tests running
//! in parallel do not disturb each other.  Without the feature this module
//! does not exist and nothing can force a fallback.
//!
//! Also what the backend's tests and the engine's share to look at the
//! process from outside: [`set_nofile`] and [`OpenWatch`].

use std::cell::Cell;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

thread_local! {
    static FORCE_OPENAT: Cell<bool> = const { Cell::new(false) };
    static FORCE_LINK_PROC: Cell<bool> = const { Cell::new(false) };
}

/// With `true`, lookups on this thread use plain `openat` as on a
/// kernel without `openat2`.
pub fn force_openat_fallback(on: bool) {
    FORCE_OPENAT.with(|c| c.set(on));
}

/// With `true`, [`crate::link`] on this thread skips
/// `linkat(fd, "", AT_EMPTY_PATH)` and uses the `/proc/self/fd` path,
/// as without `CAP_DAC_READ_SEARCH`.
pub fn force_link_fallback(on: bool) {
    FORCE_LINK_PROC.with(|c| c.set(on));
}

/// Whether this thread's lookups must use plain `openat`.
pub(crate) fn openat_fallback_forced() -> bool {
    FORCE_OPENAT.with(Cell::get)
}

/// Whether [`crate::link`] on this thread must skip
/// `linkat(AT_EMPTY_PATH)`.
pub(crate) fn link_fallback_forced() -> bool {
    FORCE_LINK_PROC.with(Cell::get)
}

/// Sets this process's soft `RLIMIT_NOFILE` to `limit`.
///
/// # Panics
/// If the hard limit is below `limit` or a call fails.
pub fn set_nofile(limit: u64) {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid rlimit to write into.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
    assert!(
        rl.rlim_max >= limit,
        "hard RLIMIT_NOFILE {} below {limit}",
        rl.rlim_max
    );
    rl.rlim_cur = limit;
    // SAFETY: `rl` is a valid rlimit.
    let r = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) };
    assert_eq!(r, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// `IN_OPEN` events of the entries of one directory: an `O_PATH`
/// descriptor raises none, a real open does.
pub struct OpenWatch(OwnedFd);

impl OpenWatch {
    /// Watches `dir`.
    ///
    /// # Panics
    /// If inotify cannot be set up.
    #[must_use]
    pub fn new(dir: &Path) -> OpenWatch {
        // SAFETY: inotify_init1 takes flags only.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: inotify_init1 returned a fresh descriptor that we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let c = CString::new(dir.as_os_str().as_bytes()).expect("no NUL in the path");
        // SAFETY: `c` is NUL-terminated and outlives the call.
        let w = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), libc::IN_OPEN) };
        assert!(
            w >= 0,
            "inotify_add_watch: {}",
            std::io::Error::last_os_error()
        );
        OpenWatch(fd)
    }

    /// Names opened since the last call (or since [`OpenWatch::new`]).
    #[must_use]
    pub fn opened(&self) -> Vec<String> {
        const EVENT: usize = std::mem::size_of::<libc::inotify_event>();
        let mut names = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            // SAFETY: `buf` is valid for writes of its length.
            let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            let Ok(n) = usize::try_from(n) else {
                return names;
            };
            if n == 0 {
                return names;
            }
            let mut pos = 0;
            // Each event: wd, mask, cookie, len (4 bytes each), name[len].
            while pos + EVENT <= n {
                let len = u32::from_ne_bytes(buf[pos + 12..pos + 16].try_into().unwrap()) as usize;
                let name = &buf[pos + EVENT..pos + EVENT + len];
                let end = name.iter().position(|&c| c == 0).unwrap_or(len);
                names.push(String::from_utf8_lossy(&name[..end]).into_owned());
                pos += EVENT + len;
            }
        }
    }
}
