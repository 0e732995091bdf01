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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use offload::WaitCell;
use p9_wire::consts::{HEADER_SIZE, P9_MIN_MSIZE};
use p9_wire::errno::{Errno, EINTR, EIO};
use p9_wire::{Header, Proto, Rmessage, SgView, Tmessage};

use crate::backend::Backend;
use crate::fs::Fs;
use crate::hash::FastMap;
use crate::ops::Ctx;
use crate::request::{Cancel, LiveSession, Reply, Session};

mod dispatch;
mod ticket;

pub use crate::config::{Config, SessionHook, Versions, MAX_XATTR_DEFAULT, MSIZE_MAX_DEFAULT};
pub use crate::request::ReplyBuffers;
pub use ticket::Ticket;
use ticket::{Active, DynBuffers, Request, Sent, FREE_RECORDS};

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

/// A 9P server for one transport.
pub struct Server<B: Backend> {
    /// What the operations work on.
    fs: Fs<B>,
    /// The session in force (Tversion).
    session: LiveSession,
    active: WaitCell<Active>,
    counters: Counters,
}

/// Counters of the request lifecycle.
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    cancelled: AtomicU64,
}

impl<B: Backend> Server<B> {
    /// A server for `backend`.
    pub fn new(backend: B, mut config: Config) -> Self {
        config.msize_max = config.msize_max.max(P9_MIN_MSIZE);
        if let Some(max) = backend.fids_max() {
            config.fids_max = config.fids_max.min(max.max(1));
        }
        Server {
            fs: Fs::new(backend, config),
            session: LiveSession::new(config.msize_max),
            active: WaitCell::new(Active {
                tags: FastMap::default(),
                count: 0,
                free: Vec::with_capacity(FREE_RECORDS),
            }),
            counters: Counters::default(),
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
        self.fs.session_hook = Some(Box::new(hook));
        self
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.fs.backend
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.fs.config
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

    fn session(&self) -> Session {
        self.session.get()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            requests: self.counters.requests.load(Ordering::Relaxed),
            offloads: self.fs.offloads.load(Ordering::Relaxed),
            cancelled: self.counters.cancelled.load(Ordering::Relaxed),
            active: self.active.with(|a| a.count),
            fids: self.fs.fids.len(),
            open_handles: self.fs.shared.open_handles.load(Ordering::Relaxed),
            reclaimed: self.fs.shared.reclaimed.load(Ordering::Relaxed),
            xattr_fids: self.fs.shared.xattr_fids.load(Ordering::Relaxed),
        }
    }

    /// Wait until every request received so far has finished (in a
    /// coroutine: suspended; on a thread: parked), then clunk every fid,
    /// closing what they hold, and forget the negotiated session: what a
    /// transport reset or unplug needs (QEMU `v9fs_reset`).  Requests
    /// received meanwhile are waited for too.  Must not be called from a
    /// request, nor from a thread a request needs in order to finish.
    pub fn reset(&self) {
        self.active.wait_for(|a| (a.count == 0).then_some(()));
        self.fs.clunk_all();
        self.session.set(Session {
            proto: Proto::Unnegotiated,
            msize: self.fs.config.msize_max,
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
                target.cancelled.set();
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
                    r.cancelled = Cancel::default();
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
        let mut ctx = Ctx::new(
            &self.fs,
            &state.cancelled,
            tag,
            session,
            &self.session,
            reply,
        );
        let result =
            match Tmessage::decode_with(req, session.proto, session.msize, Default::default()) {
                Ok((_, msg)) => match msg.check_args() {
                    // An R-message's type is its T-message's plus one.
                    Ok(()) => {
                        let rtype = msg.msg_type() + 1;
                        self.dispatch(&mut ctx, state, msg).map(|r| (r, rtype))
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
                ctx.encode(&msg).map(|len| Sent {
                    len,
                    typ: msg.msg_type(),
                    err,
                })
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(sent) => Some(sent),
            Err(e) if e == EINTR && state.cancelled.is_set() => {
                self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(e) => self.error_reply(tag, e, ctx.out),
        }
    }
}

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
