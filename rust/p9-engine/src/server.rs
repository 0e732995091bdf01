// SPDX-License-Identifier: GPL-2.0-or-later
//! The server: one 9P session over one transport, generic over a backend.
//!
//! A host drives it in two steps per request:
//!
//! 1. [`Server::receive`] when the request arrives, on the receiving thread
//!    and in arrival order: it registers the tag so that a later Tflush can
//!    find the request even before it starts running;
//! 2. [`Server::handle`] to run it, in a coroutine (QEMU: one per PDU) or on
//!    a thread of the host's pool.  Blocking backend calls go through one
//!    `offload::run_in_worker` per request where the operation allows; the
//!    reply is encoded into buffers the host gives once its size is known
//!    ([`ReplyBuffers`]).  The host sends it, then drops the returned
//!    [`Handled`]: only then is a Tflush waiting for the request answered.
//!
//! [`Server::process`] does both for a host that handles one request at a
//! time.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use offload::{ReadGuard, RwLock, WaitCell, WriteGuard};
use p9_wire::consts::{HEADER_SIZE, P9_MIN_MSIZE};
use p9_wire::errno::{Errno, EINTR, EIO, EMSGSIZE, ENOENT};
use p9_wire::{Header, Proto, Rmessage, SgView, Tmessage};

use crate::backend::Backend;
use crate::fid::{FidTable, FIDS_MAX};
use crate::hash::FastMap;
use crate::ops::{FidOf, Reply};
use crate::qid::{MultiDevs, QidMap};
use crate::state::Shared;

/// QEMU's virtio transport limit: `(VIRTQUEUE_MAX_SIZE - 2) * 4096`.
pub const MSIZE_MAX_DEFAULT: u32 = (1024 - 2) * 4096;

/// 10.0.13's default bound on xattr fids (`max_xattr`,
/// `V9FS_MAX_XATTR_DEFAULT`).
pub const MAX_XATTR_DEFAULT: u32 = 1024;

/// How a server behaves (QEMU: the `-fsdev`/`-virtfs` options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The largest msize the transport can carry; Tversion caps the
    /// client's msize to it.
    pub msize_max: u32,
    /// Files on other devices than the export root (`multidevs=`).
    pub multidevs: MultiDevs,
    /// Refuse every change with `EROFS` (`readonly=on`).
    pub readonly: bool,
    /// Bound on live xattr fids (`max_xattr=`; 0: unbounded); beyond it
    /// Txattrwalk/Txattrcreate get `ENOSPC`.
    pub max_xattr: u32,
    /// Bound on live fids; beyond it new fids get `ENFILE`.  A backend
    /// may bound it lower ([`Backend::fids_max`]); [`Server::config`]
    /// reports the bound in force.
    pub fids_max: usize,
    /// Open files and directories above which idle ones are closed (to be
    /// reopened on next use); `None`: from `RLIMIT_NOFILE` as 9p.c does
    /// (`rlim_cur - min(400, rlim_cur / 3)`).
    pub open_high_water: Option<usize>,
    /// The dialects Tversion may negotiate; any other gets "unknown".
    pub versions: Versions,
}

/// A set of 9P dialects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Versions {
    /// 9P2000.L.
    pub dotl: bool,
    /// 9P2000.u.
    pub dotu: bool,
}

impl Versions {
    /// Both dialects (QEMU's behaviour).
    pub const ALL: Versions = Versions {
        dotl: true,
        dotu: true,
    };

    /// Whether `proto` is in the set.
    pub fn allows(&self, proto: Proto) -> bool {
        match proto {
            Proto::DotL => self.dotl,
            Proto::DotU => self.dotu,
            Proto::Unnegotiated => false,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            msize_max: MSIZE_MAX_DEFAULT,
            multidevs: MultiDevs::Warn,
            readonly: false,
            max_xattr: MAX_XATTR_DEFAULT,
            fids_max: FIDS_MAX,
            open_high_water: None,
            versions: Versions::ALL,
        }
    }
}

/// Counters, for tests, benchmarks and monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests handled (replied to or cancelled).
    pub requests: u64,
    /// Offloads made (`offload::run_in_worker` calls): the thread hops of
    /// coroutine mode.
    pub offloads: u64,
    /// Requests cancelled by Tflush (no reply sent).
    pub cancelled: u64,
    /// Live fids.
    pub fids: usize,
    /// Open file and directory handles.
    pub open_handles: usize,
    /// Handles closed by reclaim.
    pub reclaimed: u64,
    /// Live xattr fids.
    pub xattr_fids: u32,
    /// Requests received and not yet finished.
    pub active: usize,
}

/// A received request, to be passed to [`Server::handle`].
#[must_use = "a received request must be handled"]
pub struct Ticket {
    tag: Option<u16>,
    req: Arc<Request>,
}

impl Ticket {
    /// Make sure the request never starts: [`Server::handle`] then
    /// finishes it at once with no reply, as a request flushed before it
    /// started (for a host dropping the queued work of a session whose
    /// peer went away).
    pub fn cancel(&self) {
        self.req.drop_unstarted();
    }

    /// Whether [`Server::handle`] will finish the request at once with no
    /// reply: a request other than a Tflush that a Tflush named, or any
    /// request [`Ticket::cancel`] dropped.
    pub fn is_cancelled(&self) -> bool {
        self.req.skips()
    }

    /// For thread-mode hosts, so that a Tflush never parks a thread while
    /// its target runs: if this request is a Tflush whose target (the
    /// request it names, found when it arrived) has not finished yet,
    /// keep it and `payload` and return `Ok(())`; `then(ticket, payload)`
    /// runs when the target finishes (on the thread that finishes it,
    /// just after, with no lock of the server held), and the host handles
    /// the ticket then, which answers at once.  Otherwise (any other
    /// request, a Tflush with no target or whose target has finished)
    /// `Err` gives both back: handle the ticket now.
    ///
    /// A Tflush only ever waits for a request that arrived before it, so
    /// deferred Tflushes never wait on each other in a cycle.
    ///
    /// # Errors
    /// The ticket and `payload`, when there is nothing to wait for.
    #[allow(clippy::result_large_err)]
    pub fn defer<P: Send + 'static>(
        self,
        payload: P,
        then: impl FnOnce(Ticket, P) + Send + 'static,
    ) -> Result<(), (Ticket, P)> {
        let Some(target) = self.req.target.clone().filter(|_| !self.req.skips()) else {
            return Err((self, payload));
        };
        let mut slot = Some((self, payload, then));
        target.done.update(|d| {
            if !d.done {
                if let Some((ticket, payload, then)) = slot.take() {
                    d.then.push(Box::new(move || then(ticket, payload)));
                }
            }
        });
        match slot {
            None => Ok(()),
            Some((ticket, payload, _)) => Err((ticket, payload)),
        }
    }
}

/// Where a request's reply goes: the host's buffers, asked for once the
/// reply's size is known (QEMU: the transport's `init_in_iov_from_pdu`,
/// which may suspend the calling coroutine on Xen until the ring has room).
///
/// May be asked more than once per request (a read that fails after
/// getting its buffers then asks for room for its error); the reply is in
/// the buffers returned last.  Buffers smaller than asked for are used as
/// far as they go: bulk replies are cut to fit, others fail with
/// `EMSGSIZE`.
pub trait ReplyBuffers<'b> {
    /// Buffers for a reply of `size` bytes.
    fn get(&mut self, size: usize) -> &mut [&'b mut [u8]];

    /// Called before the backend reads (`write` false) or writes (`write`
    /// true) `bytes` bytes of a regular file for a Tread or Twrite, once
    /// per request, before its offload and with no lock held (QEMU:
    /// `fsdev_co_throttle_request` in cofile.c).  May suspend the
    /// request's coroutine or block its thread, as a rate limit does.  The
    /// default does nothing.
    fn throttle(&mut self, _write: bool, _bytes: usize) {}
}

/// Buffers that already exist: every size gets all of them.
impl<'b> ReplyBuffers<'b> for [&'b mut [u8]] {
    fn get(&mut self, _size: usize) -> &mut [&'b mut [u8]] {
        self
    }
}

/// Makes an unsized [`ReplyBuffers`] usable as `dyn`.
struct DynBuffers<'r, R: ?Sized>(&'r mut R);

impl<'b, R: ReplyBuffers<'b> + ?Sized> ReplyBuffers<'b> for DynBuffers<'_, R> {
    fn get(&mut self, size: usize) -> &mut [&'b mut [u8]] {
        self.0.get(size)
    }

    fn throttle(&mut self, write: bool, bytes: usize) {
        self.0.throttle(write, bytes);
    }
}

/// Told when a server's session gains its first fid or loses its last one
/// (QEMU adds and removes its migration blocker there).  Set with
/// [`Server::with_session_hook`].
///
/// Calls alternate strictly, `attached` first, and are never concurrent
/// with each other for one server.  They run with the server's session
/// lock held (see [`Server::with_session_hook`]), so they must not block,
/// suspend, or call back into the server.
pub trait SessionHook: Send + Sync {
    /// A Tattach is about to create the session's first fid.  An error
    /// fails that Tattach with it, and no fid is created (and the call
    /// counts as none: the next is `attached` again).
    fn attached(&self) -> Result<(), Errno>;

    /// The session's last fid is gone (Tclunk, Tremove, the clunk of every
    /// fid by Tversion or [`Server::reset`], or a Tattach that failed
    /// after [`SessionHook::attached`]).
    fn detached(&self);
}

/// A shared hook (the host keeps a reference, e.g. to inspect it).
impl<T: SessionHook + ?Sized> SessionHook for Arc<T> {
    fn attached(&self) -> Result<(), Errno> {
        (**self).attached()
    }

    fn detached(&self) {
        (**self).detached();
    }
}

/// The requests received and not yet finished.
struct Active {
    /// By tag: what a Tflush looks for.
    tags: FastMap<u16, Arc<Request>>,
    /// Every one, tagged or not: what [`Server::reset`] waits for.
    count: usize,
    /// Records of finished requests, reused by the next ones (a request
    /// costs no allocation in steady state).  At most [`FREE_RECORDS`].
    free: Vec<Arc<Request>>,
}

/// Request records kept for reuse.
const FREE_RECORDS: usize = 64;

/// A handled request, its reply in the host's buffers.  Dropping it
/// finishes the request: drop it once the reply is sent (or queued in
/// order), never before.
#[must_use = "dropping a Handled finishes the request; send its reply first"]
pub struct Handled<'s, B: Backend> {
    server: &'s Server<B>,
    tag: Option<u16>,
    /// `None` only once dropped.
    state: Option<Arc<Request>>,
    sent: Option<Sent>,
}

/// What a request's reply is.
#[derive(Clone, Copy, Debug)]
struct Sent {
    /// Its length in the reply buffers.
    len: usize,
    /// Its message type.
    typ: u8,
    /// The errno of an error reply.
    err: Option<Errno>,
}

impl<B: Backend> Handled<'_, B> {
    /// The reply's length in the reply buffers, or `None` when there is no
    /// reply to send (the request was cancelled by Tflush, or was too short
    /// to carry a tag, or its reply fitted in no buffer).
    pub fn reply_len(&self) -> Option<usize> {
        self.sent.map(|s| s.len)
    }

    /// The reply's message type (e.g. `RGETATTR`, or `RLERROR`/`RERROR`
    /// for an error), or `None` when there is no reply to send.
    pub fn reply_type(&self) -> Option<u8> {
        self.sent.map(|s| s.typ)
    }

    /// The errno of an error reply (the value in Rlerror, Rerror's errno),
    /// or `None` for a reply that is no error, or no reply.
    pub fn error(&self) -> Option<Errno> {
        self.sent.and_then(|s| s.err)
    }
}

impl<B: Backend> Drop for Handled<'_, B> {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            self.server.finish(self.tag, state);
        }
    }
}

/// What runs once a request has finished.
type Then = Box<dyn FnOnce() + Send>;

/// Whether a request has finished, and what waits for it.
struct Done {
    /// Set once its reply is pushed (or it was cancelled).
    done: bool,
    /// Deferred Tflushes naming it ([`Ticket::defer`]), run once `done`.
    then: Vec<Then>,
}

/// The shared state of one in-flight request.
pub(crate) struct Request {
    /// Set by Tflush (or the host): the request stops at its next check
    /// point, or never starts (a Tflush still starts: see `dropped`).
    cancelled: AtomicBool,
    /// Set by the host ([`Ticket::cancel`], [`Server::cancel_all`]): not
    /// even a Tflush starts.
    dropped: AtomicBool,
    /// A Tflush (whatever its target).
    is_flush: bool,
    /// A Tflush: the request it names, found when it arrived.  Only a
    /// request that arrived earlier can be one, so the requests Tflushes
    /// wait for form no cycle.
    target: Option<Arc<Request>>,
    /// Named by a Tflush (set under the active lock, while the request's
    /// tag is registered): only then is `done` kept, since only then
    /// does anyone wait for it.
    watched: AtomicBool,
    /// Kept only when `watched`.
    done: WaitCell<Done>,
}

impl Request {
    fn new(is_flush: bool, target: Option<Arc<Request>>) -> Request {
        Request {
            cancelled: AtomicBool::new(false),
            dropped: AtomicBool::new(false),
            is_flush,
            target,
            watched: AtomicBool::new(false),
            done: WaitCell::new(Done {
                done: false,
                then: Vec::new(),
            }),
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Whether it is to finish unstarted, with no reply.  A Tflush named
    /// by a later Tflush still runs and answers (as in 9p.c): a client
    /// learns from its Rflush that the request it named is over, and the
    /// later Tflush's Rflush follows it.
    fn skips(&self) -> bool {
        self.dropped.load(Ordering::Relaxed) || (self.is_cancelled() && !self.is_flush)
    }

    fn drop_unstarted(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
        self.dropped.store(true, Ordering::Relaxed);
    }
}

/// The negotiated session.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Session {
    pub(crate) proto: Proto,
    pub(crate) msize: u32,
}

const PROTO_NONE: u8 = 0;
const PROTO_U: u8 = 1;
const PROTO_L: u8 = 2;

/// A 9P server for one transport.
pub struct Server<B: Backend> {
    pub(crate) backend: B,
    pub(crate) config: Config,
    proto: AtomicU8,
    msize: AtomicU32,
    active: WaitCell<Active>,
    pub(crate) counters: Counters,
    pub(crate) fids: FidTable<FidOf<B>>,
    /// Set by the first Tattach, from the export root's device.
    pub(crate) qids: OnceLock<QidMap>,
    /// Path-based backends only: renames write, everything else reads.
    rename_lock: RwLock,
    pub(crate) shared: Arc<Shared>,
    /// Reclaim when more handles than this are open...
    open_hw: usize,
    /// ...closing up to this many.
    pub(crate) open_rc: usize,
    reclaiming: AtomicBool,
    /// Told of the session's first and last fid (see
    /// [`Server::with_session_hook`]).
    session_hook: Option<Box<dyn SessionHook>>,
    /// Whether [`SessionHook::attached`] was the last hook call (the
    /// session lock; see [`Server::with_session_hook`]).
    attached: Mutex<bool>,
}

/// Counters shared by the server and its fids.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) offloads: AtomicU64,
    pub(crate) cancelled: AtomicU64,
}

impl<B: Backend> Server<B> {
    /// A server for `backend`.
    pub fn new(backend: B, mut config: Config) -> Self {
        config.msize_max = config.msize_max.max(P9_MIN_MSIZE);
        if let Some(max) = backend.fids_max() {
            config.fids_max = config.fids_max.min(max.max(1));
        }
        let (open_hw, open_rc) = open_limits(config.open_high_water);
        Server {
            backend,
            config,
            proto: AtomicU8::new(PROTO_NONE),
            msize: AtomicU32::new(config.msize_max),
            active: WaitCell::new(Active {
                tags: FastMap::default(),
                count: 0,
                free: Vec::with_capacity(FREE_RECORDS),
            }),
            counters: Counters::default(),
            fids: FidTable::new(config.fids_max),
            qids: OnceLock::new(),
            rename_lock: RwLock::new(),
            shared: Arc::new(Shared::default()),
            open_hw,
            open_rc,
            reclaiming: AtomicBool::new(false),
            session_hook: None,
            attached: Mutex::new(false),
        }
    }

    /// This server, telling `hook` when its session gains its first fid
    /// and loses its last one.
    ///
    /// Race-free in thread mode too: every fid creation and every removal
    /// that may leave the table empty take the session lock, in this
    /// order: the session lock, then the fid table's lock (never the
    /// other way round; removals release the table's lock before taking
    /// the session lock).  A Twalk or Txattrwalk whose source fid was
    /// clunked meanwhile, so that the session is detached when it creates
    /// its new fid, fails with `ENOENT` (the fid it started from is gone)
    /// rather than create a fid the hook was not told about.
    pub fn with_session_hook(mut self, hook: impl SessionHook + 'static) -> Self {
        self.session_hook = Some(Box::new(hook));
        self
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

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The negotiated protocol (`Unnegotiated` before a successful
    /// Tversion).
    pub fn proto(&self) -> Proto {
        self.session().proto
    }

    /// The negotiated msize (before Tversion: `msize_max`).
    pub fn msize(&self) -> u32 {
        self.session().msize
    }

    pub(crate) fn session(&self) -> Session {
        let proto = match self.proto.load(Ordering::Acquire) {
            PROTO_U => Proto::DotU,
            PROTO_L => Proto::DotL,
            _ => Proto::Unnegotiated,
        };
        Session {
            proto,
            msize: self.msize.load(Ordering::Acquire),
        }
    }

    pub(crate) fn set_session(&self, s: Session) {
        self.msize.store(s.msize, Ordering::Release);
        let p = match s.proto {
            Proto::DotU => PROTO_U,
            Proto::DotL => PROTO_L,
            Proto::Unnegotiated => PROTO_NONE,
        };
        self.proto.store(p, Ordering::Release);
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            requests: self.counters.requests.load(Ordering::Relaxed),
            offloads: self.counters.offloads.load(Ordering::Relaxed),
            cancelled: self.counters.cancelled.load(Ordering::Relaxed),
            active: self.active.with(|a| a.count),
            fids: self.fids.len(),
            open_handles: self.shared.open_handles.load(Ordering::Relaxed),
            reclaimed: self.shared.reclaimed.load(Ordering::Relaxed),
            xattr_fids: self.shared.xattr_fids.load(Ordering::Relaxed),
        }
    }

    /// Run `f` on a worker (one hop in coroutine mode), unless the request
    /// was cancelled: then `EINTR` without running it (9p.c checks
    /// `v9fs_request_cancelled` before each backend call).
    pub(crate) fn offload<R: Send>(
        &self,
        req: &Request,
        f: impl FnOnce() -> Result<R, Errno> + Send,
    ) -> Result<R, Errno> {
        if req.is_cancelled() {
            return Err(EINTR);
        }
        self.counters.offloads.fetch_add(1, Ordering::Relaxed);
        offload::run_in_worker(f)
    }

    /// [`Server::offload`] for work that must happen even when cancelled
    /// (closing what a clunked fid held).
    pub(crate) fn offload_uncancellable<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.counters.offloads.fetch_add(1, Ordering::Relaxed);
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

    /// Wait until every request received so far has finished (in a
    /// coroutine: suspended; on a thread: parked), then clunk every fid,
    /// closing what they hold, and forget the negotiated session: what a
    /// transport reset or unplug needs (QEMU `v9fs_reset`).  Requests
    /// received meanwhile are waited for too.  Must not be called from a
    /// request, nor from a thread a request needs in order to finish.
    pub fn reset(&self) {
        self.active.wait_for(|a| (a.count == 0).then_some(()));
        self.clunk_all();
        self.set_session(Session {
            proto: Proto::Unnegotiated,
            msize: self.config.msize_max,
        });
    }

    /// Register a request that just arrived (see the module
    /// documentation).  Cheap and non-blocking; no I/O.  `req` may be
    /// longer than the message (a virtio descriptor chain longer than what
    /// it carries): the size in the header is the message's.
    pub fn receive(&self, req: SgView<'_>) -> Ticket {
        let (req, header) = message_view(req);
        let tag = header.map(|h| h.tag);
        // A Tflush names its target now, in arrival order: a request
        // arriving later with that tag is not the one it flushes (so two
        // Tflushes naming each other cannot wait for each other), and a
        // Tflush naming its own tag waits for nothing (9p.c warns and
        // answers).
        let is_flush = header.is_some_and(|h| h.typ == p9_wire::msgtype::TFLUSH);
        let oldtag = header
            .filter(|h| h.typ == p9_wire::msgtype::TFLUSH && h.size == 9 && req.len() == 9)
            .and_then(|h| {
                let mut old = [0u8; 2];
                req.slice(7, 2)?.copy_to(&mut old);
                let old = u16::from_le_bytes(old);
                (old != h.tag).then_some(old)
            });
        let state = self.active.update(|active| {
            active.count += 1;
            // A Tflush cancels its target on arrival, so that a target
            // still waiting for a thread never starts.
            let target = oldtag.and_then(|old| active.tags.get(&old).cloned());
            if let Some(target) = &target {
                target.cancelled.store(true, Ordering::Relaxed);
                target.watched.store(true, Ordering::Relaxed);
            }
            // A finished request's record if there is one (records in the
            // free list are unshared and reset).
            let state = match active.free.pop() {
                Some(mut r) => match Arc::get_mut(&mut r) {
                    Some(fresh) => {
                        fresh.is_flush = is_flush;
                        fresh.target = target;
                        r
                    }
                    None => Arc::new(Request::new(is_flush, target)),
                },
                None => Arc::new(Request::new(is_flush, target)),
            };
            // A tag reused while in flight: the newer request is the one a
            // Tflush names from now on.
            if let Some(h) = header {
                active.tags.insert(h.tag, state.clone());
            }
            state
        });
        Ticket { tag, req: state }
    }

    /// Mark every request received and not finished as cancelled: those
    /// not started never start (no reply), those running stop at their
    /// next check point (a backend call not yet made fails with `EINTR`,
    /// and a cancelled request's `EINTR` gets no reply).  For a host whose
    /// transport's peer went away.
    pub fn cancel_all(&self) {
        self.active.with(|a| {
            for r in a.tags.values() {
                r.drop_unstarted();
            }
        });
    }

    /// Run a received request: decode `req` (the same bytes given to
    /// [`Server::receive`]; buffers longer than the message are cut to the
    /// size in its header), execute it, and encode the reply into the
    /// buffers `reply` gives.  The returned [`Handled`] tells the reply's
    /// length; the host sends the reply, then drops it, which finishes the
    /// request (its tag becomes free, and a Tflush waiting for it is
    /// answered only then, so the reply always precedes the Rflush).
    pub fn handle<'b, R: ReplyBuffers<'b> + ?Sized>(
        &self,
        ticket: Ticket,
        req: SgView<'_>,
        reply: &mut R,
    ) -> Handled<'_, B> {
        let Ticket { tag, req: state } = ticket;
        let (req, _) = message_view(req);
        let reply: &mut dyn ReplyBuffers<'b> = &mut DynBuffers(reply);
        let sent = match tag {
            // Flushed (or dropped by the host) before it started: it never
            // starts and gets no reply.
            Some(_) if state.skips() => {
                self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
                None
            }
            // A bug must not leave the tag active forever (a Tflush of it
            // would never be answered) nor unwind into the host: the
            // request fails with EIO instead.
            Some(tag) => match catch_unwind(AssertUnwindSafe(|| self.run(tag, &state, req, reply)))
            {
                Ok(len) => len,
                Err(_) => self.error_reply(tag, EIO, reply),
            },
            None => None,
        };
        Handled {
            server: self,
            tag,
            state: Some(state),
            sent,
        }
    }

    /// [`Server::receive`] and [`Server::handle`] for one contiguous request
    /// and reply buffer; returns the reply length, `None` for no reply.
    pub fn process(&self, req: &[u8], reply: &mut [u8]) -> Option<usize> {
        let view = SgView::from_slice(req);
        let ticket = self.receive(view);
        self.handle(ticket, view, &mut [reply][..]).reply_len()
    }

    fn finish(&self, tag: Option<u16>, mut state: Arc<Request>) {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        // Unregistered under the active lock, where a Tflush sets
        // `watched`: once the tag is gone no Tflush can name the request,
        // so an unwatched one has no one to tell.
        let watched = self.active.update(|active| {
            active.count -= 1;
            if let Some(tag) = tag {
                if active
                    .tags
                    .get(&tag)
                    .is_some_and(|r| Arc::ptr_eq(r, &state))
                {
                    active.tags.remove(&tag);
                }
            }
            let watched = state.watched.load(Ordering::Relaxed);
            if !watched && active.free.len() < FREE_RECORDS {
                // Unshared (no Tflush names it, nothing else holds it):
                // reset for reuse.
                if let Some(r) = Arc::get_mut(&mut state) {
                    // `done` was never touched (nothing watched it).
                    r.cancelled = AtomicBool::new(false);
                    r.dropped = AtomicBool::new(false);
                    r.is_flush = false;
                    r.target = None;
                    active.free.push(state);
                    return None;
                }
            }
            Some((watched, state))
        });
        let Some((true, state)) = watched else {
            return;
        };
        let then = state.done.update(|d| {
            d.done = true;
            std::mem::take(&mut d.then)
        });
        // Deferred Tflushes naming this request may go on now.  They are
        // the host's code: a panic there must not unwind out of a drop.
        for f in then {
            let _ = catch_unwind(AssertUnwindSafe(f));
        }
    }

    /// Encode the error reply for `e` in the dialect in force now (Tversion
    /// may have changed it, and 9p.c answers in the new one).
    fn error_reply(&self, tag: u16, e: Errno, reply: &mut dyn ReplyBuffers<'_>) -> Option<Sent> {
        let proto = self.session().proto;
        let msg = Rmessage::error(proto, e);
        let len = msg.encode(tag, reply.get(msg.byte_size())).ok()?;
        Some(Sent {
            len,
            typ: msg.msg_type(),
            err: Some(e),
        })
    }

    /// Decode, execute and encode one request; what was sent, or `None`.
    fn run(
        &self,
        tag: u16,
        state: &Request,
        req: SgView<'_>,
        reply: &mut dyn ReplyBuffers<'_>,
    ) -> Option<Sent> {
        let session = self.session();
        let result =
            match Tmessage::decode_with(req, session.proto, session.msize, Default::default()) {
                Ok((_, msg)) => match msg.check_args() {
                    // An R-message's type is its T-message's plus one.
                    Ok(()) => {
                        let rtype = msg.msg_type() + 1;
                        self.dispatch(tag, state, session, msg, reply)
                            .map(|r| (r, rtype))
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e.errno()),
            };
        let result = match result {
            Ok((Reply::Written(len), typ)) => Ok(Sent {
                len,
                typ,
                err: None,
            }),
            Ok((Reply::Msg(msg), _)) => {
                // Tversion answers some failures with an error reply of
                // its own.
                let err = match &msg {
                    Rmessage::Lerror { ecode } => Some(*ecode),
                    Rmessage::Error { errno, .. } => Some(*errno),
                    _ => None,
                };
                self.encode_reply(tag, session, &msg, reply)
                    .map(|len| Sent {
                        len,
                        typ: msg.msg_type(),
                        err,
                    })
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(sent) => Some(sent),
            Err(e) if e == EINTR && state.is_cancelled() => {
                self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(e) => self.error_reply(tag, e, reply),
        }
    }

    /// Encode `msg` (no error reply) into the reply buffers; its length.
    /// Handlers of frequent requests call it with the message they built
    /// on their stack and return [`Reply::Written`], instead of moving the
    /// message out through their callers.
    pub(crate) fn encode_reply(
        &self,
        tag: u16,
        session: Session,
        msg: &Rmessage<'_>,
        reply: &mut dyn ReplyBuffers<'_>,
    ) -> Result<usize, Errno> {
        self.encode_sized(session, msg.byte_size(), reply, |out| msg.encode(tag, out))
    }

    /// Encode a reply of `size` bytes with `encode` into the reply
    /// buffers, with [`Server::encode_reply`]'s checks; its length.
    pub(crate) fn encode_sized(
        &self,
        session: Session,
        size: usize,
        reply: &mut dyn ReplyBuffers<'_>,
        encode: impl FnOnce(&mut [&mut [u8]]) -> Result<usize, p9_wire::EncodeError>,
    ) -> Result<usize, Errno> {
        if size > session.msize.max(self.msize()) as usize {
            return Err(EMSGSIZE);
        }
        encode(reply.get(size)).map_err(|_| EMSGSIZE)
    }

    /// Tflush: wait until the request it named when it arrived (already
    /// cancelled then) is finished (its reply pushed, or dropped).  That
    /// request arrived earlier, so no chain of Tflushes waits in a cycle.
    /// A Tflush named by a later Tflush waits and answers all the same.
    pub(crate) fn flush(&self, own: &Request) {
        if let Some(target) = &own.target {
            target.done.wait_for(|d| d.done.then_some(()));
        }
    }
}

/// The message in `req`: its first `size` bytes (from the header) when
/// the buffers are longer; else all of it (buffers shorter than `size`,
/// or a `size` too small for the header itself, fail to decode and get an
/// error reply for the tag).  With its header, if it has one.
fn message_view(req: SgView<'_>) -> (SgView<'_>, Option<Header>) {
    let header = Header::peek(req);
    let view = match header {
        Some(h) if (h.size as usize) < req.len() && h.size as usize >= HEADER_SIZE => {
            req.slice(0, h.size as usize).unwrap_or(req)
        }
        _ => req,
    };
    (view, header)
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
