// SPDX-License-Identifier: GPL-2.0-or-later
//! [`NativeHandle`], an open fid of [`NativeBackend`](super::NativeBackend):
//! a file descriptor for I/O, or a directory reader with its `getdents64`
//! buffer (kept for the next directory when closed).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

use p9_engine::backend::Result;

use crate::budget::HandleToken;
use crate::errno;
use crate::tree::Rec;
use crate::DirReader;

/// An open file or directory (one per open fid), counted against the
/// descriptor budget.  It needs no node descriptor of its own: `Tgetattr`
/// and `Tsetattr` of an open fid go through the handle (so they work for
/// open-but-unlinked files whatever the budget did to the node).
#[derive(Debug)]
pub struct NativeHandle {
    pub(super) kind: HandleKind,
    pub(super) rec: Arc<Rec>,
    _token: HandleToken,
}

/// What a [`NativeHandle`] holds open.
#[derive(Debug)]
pub(super) enum HandleKind {
    /// A regular file opened for I/O.
    File(OwnedFd),
    /// A directory opened for reading; a mutex because `readdir` takes
    /// `&Handle` and seeks.
    Dir(Mutex<DirState>),
}

/// An open directory and where its descriptor is.
pub(super) struct DirState {
    pub(super) reader: DirReader,
    /// The cookie the next `getdents64` continues from, when known: 0
    /// when just opened, the last entry's `d_off` after a batch was taken
    /// whole (the kernel leaves the position there), unchanged at the
    /// end; `None` otherwise (a batch cut short, an error, a panic), so
    /// the next readdir seeks.  A readdir from where the descriptor is
    /// needs no `lseek`.
    pub(super) at: Option<i64>,
    /// The `getdents64` buffer, taken at the first readdir (from
    /// [`DIRENT_BUFS`] when one is there) and given back when closed.
    pub(super) buf: Vec<u8>,
}

/// `getdents64` buffers of closed directories, for the next ones (a
/// Tlopen + Treaddir + Tclunk then costs no allocation and no zeroing).
static DIRENT_BUFS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Buffers kept in [`DIRENT_BUFS`].
const DIRENT_BUFS_KEPT: usize = 8;

pub(super) fn dirent_bufs() -> MutexGuard<'static, Vec<Vec<u8>>> {
    // The list is consistent at every step.
    DIRENT_BUFS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Drop for DirState {
    fn drop(&mut self) {
        if self.buf.len() == DIRENT_BUF {
            let mut bufs = dirent_bufs();
            if bufs.len() < DIRENT_BUFS_KEPT {
                if bufs.capacity() == 0 {
                    bufs.reserve_exact(DIRENT_BUFS_KEPT);
                }
                bufs.push(std::mem::take(&mut self.buf));
            }
        }
    }
}

impl std::fmt::Debug for DirState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirState")
            .field("reader", &self.reader)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl DirState {
    pub(super) fn new(reader: DirReader) -> Mutex<DirState> {
        Mutex::new(DirState {
            reader,
            at: Some(0),
            buf: Vec::new(),
        })
    }
}

impl NativeHandle {
    /// A handle of `rec`'s file, holding `kind` open and `token` of the
    /// descriptor budget.
    pub(super) fn new(kind: HandleKind, rec: &Arc<Rec>, token: HandleToken) -> NativeHandle {
        NativeHandle {
            kind,
            rec: Arc::clone(rec),
            _token: token,
        }
    }

    /// Whether this is a directory (opened for `Treaddir`).
    #[must_use]
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, HandleKind::Dir(_))
    }

    /// The descriptor of a file handle; `EISDIR` for a directory.
    pub(super) fn file(&self) -> Result<BorrowedFd<'_>> {
        match &self.kind {
            HandleKind::File(fd) => Ok(fd.as_fd()),
            HandleKind::Dir(_) => Err(errno::EISDIR),
        }
    }

    /// Runs `f` with the handle's descriptor (file or directory).
    pub(super) fn with_fd<T>(&self, f: impl FnOnce(BorrowedFd<'_>) -> T) -> T {
        match &self.kind {
            HandleKind::File(fd) => f(fd.as_fd()),
            HandleKind::Dir(dir) => f(lock_dir(dir).reader.as_fd()),
        }
    }
}

/// Locks an open directory.
pub(super) fn lock_dir(m: &Mutex<DirState>) -> MutexGuard<'_, DirState> {
    // A panic in another request while holding the lock leaves the reader
    // usable (a readdir cut short leaves the position unknown, so the
    // next one seeks), so poisoning is ignored.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Size of the `getdents64` buffer of one readdir batch: about a thousand
/// entries with short names, what one Treaddir of a usual size takes.
pub(super) const DIRENT_BUF: usize = 32 * 1024;
