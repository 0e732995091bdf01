// SPDX-License-Identifier: GPL-2.0-or-later
//! The state the operations work on: the backend, the configuration, the
//! fid table, the qid map, the rename lock and the open-handle accounting
//! that drives reclaim.  The request lifecycle around it (tags, Tflush,
//! the negotiated session) is the server's.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use offload::{ReadGuard, RwLock, WriteGuard};
use p9_wire::errno::{Errno, EINTR, EINVAL, EIO, EMFILE, ENFILE, ENOENT, EROFS};
use p9_wire::Qid;

use crate::backend::{Attr, Backend, Renamed};
use crate::config::{Config, SessionHook};
use crate::fid::FidTable;
use crate::request::Cancel;
use crate::state::{Fid, FidState, Handle, Shared};

/// A fid of a backend.
pub(crate) type FidOf<B> = Fid<<B as Backend>::Node, <B as Backend>::Handle>;
/// A node of a backend.
pub(crate) type NodeOf<B> = <B as Backend>::Node;
/// An open handle of a backend, counted.
pub(crate) type HandleOf<B> = Arc<Handle<<B as Backend>::Handle>>;

/// The file-system side of one session.
pub(crate) struct Fs<B: Backend> {
    pub(crate) backend: B,
    pub(crate) config: Config,
    pub(crate) fids: FidTable<FidOf<B>>,
    /// Set by the first Tattach, from the export root's device.
    pub(crate) qids: OnceLock<crate::qid::QidMap>,
    /// Path-based backends only: renames write, everything else reads.
    rename_lock: RwLock,
    pub(crate) shared: Arc<Shared>,
    /// Offloads made (`offload::run_in_worker` calls).
    pub(crate) offloads: AtomicU64,
    /// Reclaim when more handles than this are open...
    open_hw: usize,
    /// ...closing up to this many.
    open_rc: usize,
    reclaiming: AtomicBool,
    /// Told of the session's first and last fid (see
    /// [`Server::with_session_hook`](crate::Server::with_session_hook)).
    pub(crate) session_hook: Option<Box<dyn SessionHook>>,
    /// Whether [`SessionHook::attached`] was the last hook call (the
    /// session lock; see [`Server::with_session_hook`](crate::Server::with_session_hook)).
    attached: Mutex<bool>,
}

impl<B: Backend> Fs<B> {
    /// The state for `backend`; `config` is already bounded by it.
    pub(crate) fn new(backend: B, config: Config) -> Self {
        let (open_hw, open_rc) = open_limits(config.open_high_water);
        Fs {
            backend,
            config,
            fids: FidTable::new(config.fids_max),
            qids: OnceLock::new(),
            rename_lock: RwLock::new(),
            shared: Arc::new(Shared::default()),
            offloads: AtomicU64::new(0),
            open_hw,
            open_rc,
            reclaiming: AtomicBool::new(false),
            session_hook: None,
            attached: Mutex::new(false),
        }
    }

    fn attached_lock(&self) -> MutexGuard<'_, bool> {
        // Every critical section leaves the flag consistent.
        self.attached.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Add fid `id` (made by `make`), telling the session hook when it is
    /// the session's first: `attach` for Tattach, which may attach a
    /// detached session; any other creation fails with `ENOENT` then.
    pub(crate) fn insert_fid(
        &self,
        id: u32,
        attach: bool,
        make: impl FnOnce() -> FidOf<B>,
    ) -> Result<Arc<FidOf<B>>, Errno> {
        let Some(hook) = &self.session_hook else {
            return self.fids.insert(id, make);
        };
        let mut attached = self.attached_lock();
        if !*attached {
            if !attach {
                return Err(ENOENT);
            }
            hook.attached()?;
            *attached = true;
        }
        let r = self.fids.insert(id, make);
        if r.is_err() && self.fids.is_empty() {
            // The Tattach that attached fails after all (or a removal
            // that emptied the table has not settled yet).
            *attached = false;
            hook.detached();
        }
        r
    }

    /// After fids were removed: tell the session hook if none is left.
    pub(crate) fn fids_removed(&self) {
        let Some(hook) = &self.session_hook else {
            return;
        };
        let mut attached = self.attached_lock();
        if *attached && self.fids.is_empty() {
            *attached = false;
            hook.detached();
        }
    }

    /// `EROFS` on a read-only export (`readonly=on`).
    pub(crate) fn check_writable(&self) -> Result<(), Errno> {
        if self.config.readonly {
            Err(EROFS)
        } else {
            Ok(())
        }
    }

    /// The qid of a file with attributes `attr`.
    pub(crate) fn qid(&self, attr: &Attr) -> Result<Qid, Errno> {
        self.qids.get().ok_or(EIO)?.qid(&attr.file_id())
    }

    /// Run `f` on a worker (one hop in coroutine mode), unless the request
    /// was cancelled: then `EINTR` without running it (9p.c checks
    /// `v9fs_request_cancelled` before each backend call).
    pub(crate) fn offload<R: Send>(
        &self,
        cancel: &Cancel,
        f: impl FnOnce() -> Result<R, Errno> + Send,
    ) -> Result<R, Errno> {
        if cancel.is_set() {
            return Err(EINTR);
        }
        self.offloads.fetch_add(1, Ordering::Relaxed);
        offload::run_in_worker(f)
    }

    /// [`Fs::offload`] for work that must happen even when cancelled
    /// (closing what a clunked fid held).
    pub(crate) fn offload_uncancellable<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.offloads.fetch_add(1, Ordering::Relaxed);
        offload::run_in_worker(f)
    }

    pub(crate) fn paths_read(&self) -> Option<ReadGuard<'_>> {
        self.backend
            .nodes_are_paths()
            .then(|| self.rename_lock.read())
    }

    pub(crate) fn paths_write(&self) -> Option<WriteGuard<'_>> {
        self.backend
            .nodes_are_paths()
            .then(|| self.rename_lock.write())
    }

    /// After opening, on the worker: above the high-water mark, close
    /// idle handles (9p.c `v9fs_reclaim_fd`, here inside the opening
    /// request's offload rather than a hop of its own).
    pub(crate) fn reclaim_if_over(&self) {
        if self.shared.open_handles.load(Ordering::Relaxed) >= self.open_hw {
            self.reclaim(self.open_rc);
        }
    }

    /// Close up to `max` idle handles (two passes: the first may only
    /// clear "recently used" marks); returns how many.  Runs on a worker.
    pub(crate) fn reclaim(&self, max: usize) -> usize {
        if self.reclaiming.swap(true, Ordering::Acquire) {
            return 0;
        }
        let mut taken = Vec::new();
        for _ in 0..2 {
            self.fids.for_each(|_, f| {
                if taken.len() < max {
                    if let Some(h) = f.take_idle_handle() {
                        taken.push(h);
                    }
                }
            });
            if !taken.is_empty() {
                break;
            }
        }
        let n = taken.len();
        // Closed here, outside the table's lock.
        drop(taken);
        self.shared.reclaimed.fetch_add(n as u64, Ordering::Relaxed);
        self.reclaiming.store(false, Ordering::Release);
        n
    }

    /// Run `f`; if it fails for lack of file descriptors, reclaim idle
    /// handles and try once more.  Runs on the worker.
    pub(crate) fn with_fd_retry<T>(
        &self,
        mut f: impl FnMut() -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        match f() {
            Err(e) if e == EMFILE || e == ENFILE => {
                if self.reclaim(self.open_rc) > 0 {
                    f()
                } else {
                    Err(e)
                }
            }
            r => r,
        }
    }

    /// The open handle of `f`, reopened if reclaim closed it (retried while
    /// it fails with `EINTR` and the request is not cancelled, as 9p.c's
    /// `v9fs_reopen_fid`).  Runs on the worker, inside the request's
    /// offload.
    pub(crate) fn handle_or_reopen(
        &self,
        cancel: &Cancel,
        f: &FidOf<B>,
        node: &NodeOf<B>,
        h: Option<HandleOf<B>>,
        flags: i32,
        dir: bool,
    ) -> Result<HandleOf<B>, Errno> {
        if let Some(h) = h {
            return Ok(h);
        }
        let h = self.with_fd_retry(|| {
            retry_eintr(cancel, || {
                if dir {
                    self.backend.opendir(node)
                } else {
                    self.backend.open(node, flags)
                }
            })
        })?;
        let h = f.reopened(Handle::new(h, &self.shared));
        self.reclaim_if_over();
        Ok(h)
    }

    /// After a rename, on the worker: let the backend move every fid at or
    /// under the renamed entry (9p.c `v9fs_fix_path` on every fid; under
    /// the rename lock for path-based backends).
    pub(crate) fn fix_paths(&self, how: &Renamed<'_, NodeOf<B>>) {
        self.fids.for_each(|_, f| {
            if let Some(n) = self.backend.renamed(&f.peek_node(), how) {
                f.set_node(Arc::new(n));
            }
        });
    }

    /// Tclunk: commit a pending xattr write, and close what the fid holds
    /// if this was its last user, on a worker.  Nothing to do, no offload.
    pub(crate) fn release(&self, f: Arc<FidOf<B>>) -> Result<(), Errno> {
        let pending_xattr = matches!(&*f.state(), FidState::Xattr(x) if !x.walk);
        let holds_handle = f.handle().is_some_and(|o| o.handle.is_some());
        let last_holder = holds_handle && Arc::strong_count(&f) == 1;
        if !pending_xattr && !last_holder {
            return Ok(());
        }
        self.offload_uncancellable(|| self.release_now(f))
    }

    /// Commit a pending xattr write of `f` and drop it.  Runs on the worker.
    pub(crate) fn release_now(&self, f: Arc<FidOf<B>>) -> Result<(), Errno> {
        let state = std::mem::replace(&mut *f.state(), FidState::None);
        let r = match state {
            FidState::Xattr(x) if !x.walk => {
                if x.copied != x.value.len() as u64 {
                    // Clunk after a partial write.
                    Err(EINVAL)
                } else if x.value.is_empty() {
                    self.backend.removexattr(&f.node(), &x.name)
                } else {
                    self.backend.setxattr(&f.node(), &x.name, &x.value, x.flags)
                }
            }
            // Handles close here, on the worker, if this is the last use.
            other => {
                drop(other);
                Ok(())
            }
        };
        drop(f);
        r
    }

    /// Drop every fid (Tversion, [`Server::reset`](crate::Server::reset)),
    /// committing pending xattr writes as 9p.c's `free_fid` does; the
    /// closes run on a worker.
    pub(crate) fn clunk_all(&self) {
        let fids = self.fids.clear();
        self.fids_removed();
        if fids.is_empty() {
            return;
        }
        self.offload_uncancellable(|| {
            for f in fids {
                let _ = self.release_now(f);
            }
        });
    }
}

/// 9p.c's `do { ... } while (err == -EINTR && !pdu->cancelled)` around
/// reads, writes and reopens: run `f` again while it fails with `EINTR`
/// and the request is not cancelled, yielding the CPU between tries.  A
/// cancelled request ends with the `EINTR` (and, being cancelled, sends no
/// reply).  Runs on the worker.
pub(crate) fn retry_eintr<T>(
    cancel: &Cancel,
    mut f: impl FnMut() -> Result<T, Errno>,
) -> Result<T, Errno> {
    loop {
        match f() {
            Err(e) if e == EINTR && !cancel.is_set() => std::thread::yield_now(),
            r => return r,
        }
    }
}

/// 9p.c's reclaim thresholds from `RLIMIT_NOFILE` (`open_fd_hw`,
/// `open_fd_rc`), or from a configured high-water mark.
fn open_limits(high_water: Option<usize>) -> (usize, usize) {
    let limit = match high_water {
        Some(hw) => return (hw, (hw / 2).max(1)),
        None => nofile_limit(),
    };
    (limit - (limit / 3).min(400), (limit / 2).max(1))
}

fn nofile_limit() -> usize {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid rlimit to write into.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    if r != 0 || rl.rlim_cur == libc::RLIM_INFINITY {
        return 1 << 20;
    }
    usize::try_from(rl.rlim_cur).unwrap_or(1 << 20)
}
