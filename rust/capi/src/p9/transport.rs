// SPDX-License-Identifier: GPL-2.0-or-later
//! `QrsP9Transport`: where replies go, and the host's hooks; and a
//! request's buffers (`Pdu`) on their way through the engine.

use std::ffi::{c_int, c_void};

use libc::iovec;
use p9_engine::backend::Backend;
use p9_engine::host::Job;
use p9_engine::{ReplyBuffers, Server, SessionHook, Ticket};
use p9_wire::{Errno, SgView};

use crate::errno::from_neg_errno;

/// Where replies go: the host's transport (QEMU's `V9fsTransport`), and
/// the host's optional hooks.  Every function gets the `opaque` given to
/// `qrs_p9_server_new`, and those about one request the `pdu` given with
/// it.  New members are added at the end.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct QrsP9Transport {
    /// Give the buffers for `pdu`'s reply of `size` bytes: store an array
    /// of `*niov` iovecs in `*iov`, valid and unused by anyone else until
    /// `complete` (QEMU: `init_in_iov_from_pdu`).  Return 0, or a negative
    /// errno when there are none (the request then completes with no
    /// reply).  May be called more than once per request; the reply is in
    /// the buffers given last.  Buffers smaller than `size` are used as
    /// far as they go.  Coroutine mode: called in the request's coroutine,
    /// which it may suspend (Xen waits for ring space).  Thread mode:
    /// called on a server thread.
    pub reply_buffers: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            pdu: *mut c_void,
            size: usize,
            iov: *mut *const iovec,
            niov: *mut usize,
        ) -> i32,
    >,
    /// `pdu` is finished: its reply is the first `len` bytes of the
    /// buffers, or there is no reply when `len` is 0 (it was cancelled by
    /// Tflush, or could not be answered); the host sends it and may free
    /// `pdu` and its buffers (QEMU: `push_and_notify`).  Called exactly once
    /// per request, from `qrs_p9_handle` in coroutine mode, on a server
    /// thread in thread mode; before any Tflush of this request is
    /// answered.
    pub complete: Option<unsafe extern "C" fn(opaque: *mut c_void, pdu: *mut c_void, len: usize)>,
    /// Optional (NULL: not used): called before every backend read
    /// (`is_write` 0) or write (`is_write` 1) of a Tread or Twrite on a
    /// regular file, once per request, with the byte count requested
    /// (Tread: its count, capped to what msize allows; Twrite: its data
    /// length; may be 0) (QEMU: `fsdev_co_throttle_request` in cofile.c).
    /// Called before the request's offload, with no lock of the server
    /// held.  Coroutine mode: called in the request's coroutine on the
    /// home thread, which it may suspend (QEMU's throttle sleeps the
    /// coroutine on a timer).  Thread mode: called on a server thread,
    /// which it may block.
    pub throttle: Option<
        unsafe extern "C" fn(opaque: *mut c_void, pdu: *mut c_void, is_write: c_int, bytes: usize),
    >,
    /// Optional (NULL: not used): the session gains its first fid
    /// (`attached` 1: a Tattach is about to succeed; return 0, or a
    /// negative errno to fail that Tattach with it, and no fid is created)
    /// or loses its last fid (`attached` 0: after a Tclunk or Tremove of
    /// the last fid, Tversion's clunk of every fid, `qrs_p9_server_reset`,
    /// or a Tattach that failed after its call with 1; the return value is
    /// ignored).  Calls alternate exactly 1, 0, 1, 0... (a call with 1
    /// that fails counts as none: the next call is 1 again), and are never
    /// concurrent with each other for one server (the server holds a lock
    /// of its own across them).  Must not block, suspend, or call the
    /// server (QEMU adds and removes its migration blocker here).
    /// Coroutine mode: called on the home thread (from
    /// `qrs_p9_server_reset`: on the thread calling it).  Thread mode: on
    /// a server thread (or the one calling `qrs_p9_server_reset`).
    pub session: Option<unsafe extern "C" fn(opaque: *mut c_void, attached: c_int) -> i32>,
    /// Optional (NULL: not used): called once per request just before its
    /// `complete`, on the same thread, with `reply` the message type of
    /// the reply sent (e.g. 7 for Rlerror, 107 for Rerror, 25 for
    /// Rgetattr), or 0 when no reply is sent (the request was cancelled by
    /// Tflush, or could not be answered); and `err` the errno of an error
    /// reply (the value in Rlerror, Rerror's errno), else 0.  For the
    /// host's trace events (QEMU: `v9fs_rerror`, `v9fs_rcancel`).  Must not
    /// call the server.
    pub trace:
        Option<unsafe extern "C" fn(opaque: *mut c_void, pdu: *mut c_void, reply: u8, err: i32)>,
    /// Optional (NULL: not used), thread mode: `qrs_p9_submit` refused a
    /// request with `-EAGAIN` (the server was at its bounds) and a request
    /// has finished since, so there may be room: submit the refused
    /// request again (which may be refused again: then this is called
    /// again later).  Called once per refusal at most, on a server thread
    /// just after a request finished, with no lock of the server held.
    /// Must not block; may call `qrs_p9_submit` (an event loop would
    /// rather wake itself, e.g. with an eventfd).  Not called after
    /// `qrs_p9_server_shutdown`.
    pub room: Option<unsafe extern "C" fn(opaque: *mut c_void)>,
}

type ThrottleFn = unsafe extern "C" fn(*mut c_void, *mut c_void, c_int, usize);
type SessionFn = unsafe extern "C" fn(*mut c_void, c_int) -> i32;
type TraceFn = unsafe extern "C" fn(*mut c_void, *mut c_void, u8, i32);
type RoomFn = unsafe extern "C" fn(*mut c_void);

/// The transport's `room`, callable from the pool's threads.
pub(super) struct CRoom {
    f: RoomFn,
    opaque: *mut c_void,
}

// SAFETY: `qrs_p9_server_new`'s contract: the transport's functions may be
// called from any thread with `opaque`.
unsafe impl Send for CRoom {}
// SAFETY: as above; nothing here is mutated.
unsafe impl Sync for CRoom {}

impl CRoom {
    /// `transport`'s `room` with `opaque`, if it has one.
    pub(super) fn new(transport: &QrsP9Transport, opaque: *mut c_void) -> Option<Self> {
        transport.room.map(|f| CRoom { f, opaque })
    }

    /// Tell the host there may be room for a refused request.
    pub(super) fn call(&self) {
        // SAFETY: the transport's contract.
        unsafe { (self.f)(self.opaque) };
    }
}

/// The transport with its functions checked.
#[derive(Clone, Copy)]
pub(super) struct Transport {
    reply_buffers:
        unsafe extern "C" fn(*mut c_void, *mut c_void, usize, *mut *const iovec, *mut usize) -> i32,
    complete: unsafe extern "C" fn(*mut c_void, *mut c_void, usize),
    /// `QrsP9Transport::throttle`.
    throttle: Option<ThrottleFn>,
    /// `QrsP9Transport::trace`.
    trace: Option<TraceFn>,
    opaque: *mut c_void,
}

/// The transport's `session`, as the engine's session hook.
pub(super) struct CSession {
    /// `QrsP9Transport::session`.
    f: SessionFn,
    /// The transport's `opaque`.
    opaque: *mut c_void,
}

// SAFETY: `qrs_p9_server_new`'s contract: the transport's functions may be
// called from any thread with `opaque`.
unsafe impl Send for CSession {}
// SAFETY: as above; nothing here is mutated.
unsafe impl Sync for CSession {}

impl CSession {
    /// `transport`'s `session` with `opaque`, if it has one.
    pub(super) fn new(transport: &QrsP9Transport, opaque: *mut c_void) -> Option<Self> {
        transport.session.map(|f| CSession { f, opaque })
    }
}

impl SessionHook for CSession {
    fn attached(&self) -> Result<(), Errno> {
        // SAFETY: the transport's contract.
        let r = unsafe { (self.f)(self.opaque, 1) };
        from_neg_errno(r).map(drop)
    }

    fn detached(&self) {
        // SAFETY: the transport's contract; the result is ignored.
        unsafe { (self.f)(self.opaque, 0) };
    }
}

// SAFETY: `qrs_p9_server_new`'s contract: the functions may be called from
// any thread with `opaque`.
unsafe impl Send for Transport {}
// SAFETY: as above; nothing here is mutated.
unsafe impl Sync for Transport {}

impl Transport {
    /// `transport` with `opaque`; `None` without its required
    /// `reply_buffers` and `complete`.
    pub(super) fn new(transport: &QrsP9Transport, opaque: *mut c_void) -> Option<Self> {
        Some(Transport {
            reply_buffers: transport.reply_buffers?,
            complete: transport.complete?,
            throttle: transport.throttle,
            trace: transport.trace,
            opaque,
        })
    }

    /// The host's `trace` of `pdu`'s reply (`reply`: its type, 0 for
    /// none; `err`: its errno, else 0), if it has one.
    fn trace(&self, pdu: *mut c_void, reply: u8, err: i32) {
        if let Some(trace) = self.trace {
            // SAFETY: the transport's contract.
            unsafe { trace(self.opaque, pdu, reply, err) };
        }
    }

    /// `pdu` is finished: its reply is the first `len` bytes.
    fn complete(&self, pdu: *mut c_void, len: usize) {
        // SAFETY: the transport's contract; the caller calls it once per
        // request.
        unsafe { (self.complete)(self.opaque, pdu, len) };
    }
}

/// A request's buffers as the host gave them.
pub(super) struct Pdu {
    pdu: *mut c_void,
    req: Vec<&'static [u8]>,
}

// SAFETY: the request's memory and `pdu` stay valid until `complete`, and
// the host lets any server thread use them (`qrs_p9_submit`'s contract).
unsafe impl Send for Pdu {}

impl Pdu {
    /// # Safety
    /// `iov` points to `niov` iovecs whose memory stays valid and
    /// unchanged until the request completes.
    pub(super) unsafe fn new(pdu: *mut c_void, iov: *const iovec, niov: usize) -> Option<Pdu> {
        if iov.is_null() && niov != 0 {
            return None;
        }
        let iov = if niov == 0 {
            &[][..]
        } else {
            // SAFETY: `niov` readable iovecs, per the contract.
            unsafe { std::slice::from_raw_parts(iov, niov) }
        };
        let mut req = Vec::with_capacity(niov);
        for v in iov {
            if v.iov_len == 0 {
                continue;
            }
            if v.iov_base.is_null() {
                return None;
            }
            // SAFETY: valid until completion, per the contract; the
            // `'static` never escapes this request.
            req.push(unsafe { std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len) });
        }
        Some(Pdu { pdu, req })
    }

    /// The request's bytes.
    pub(super) fn view(&self) -> SgView<'_> {
        SgView::new(&self.req)
    }

    /// Handle the request, send its reply through the transport, then
    /// finish it.
    pub(super) fn run<B: Backend>(self, server: &Server<B>, t: &Transport, ticket: Ticket) {
        let mut reply = CReply {
            t,
            pdu: self.pdu,
            segs: Vec::new(),
        };
        let handled = server.handle(ticket, self.view(), &mut reply);
        let len = handled.reply_len().unwrap_or(0);
        drop(reply);
        if t.trace.is_some() {
            let typ = handled.reply_type().unwrap_or(0);
            let err = handled.error().map_or(0, |e| e.0 as i32);
            t.trace(self.pdu, typ, err);
        }
        t.complete(self.pdu, len);
        drop(handled);
    }
}

/// Reply buffers from the transport's `reply_buffers`.
struct CReply<'t> {
    t: &'t Transport,
    pdu: *mut c_void,
    segs: Vec<&'static mut [u8]>,
}

impl ReplyBuffers<'static> for CReply<'_> {
    fn get(&mut self, size: usize) -> &mut [&'static mut [u8]] {
        self.segs.clear();
        let mut iov: *const iovec = std::ptr::null();
        let mut niov = 0usize;
        // SAFETY: the transport's contract.
        let r =
            unsafe { (self.t.reply_buffers)(self.t.opaque, self.pdu, size, &mut iov, &mut niov) };
        if r < 0 || iov.is_null() {
            return &mut self.segs;
        }
        // SAFETY: `niov` iovecs, per the contract.
        let iov = unsafe { std::slice::from_raw_parts(iov, niov) };
        for v in iov {
            if v.iov_len == 0 || v.iov_base.is_null() {
                continue;
            }
            // SAFETY: writable, ours alone until `complete`, per the
            // contract; dropped before `complete` is called.
            self.segs
                .push(unsafe { std::slice::from_raw_parts_mut(v.iov_base as *mut u8, v.iov_len) });
        }
        &mut self.segs
    }

    fn throttle(&mut self, write: bool, bytes: usize) {
        if let Some(f) = self.t.throttle {
            // SAFETY: the transport's contract.
            unsafe { f(self.t.opaque, self.pdu, c_int::from(write), bytes) };
        }
    }
}

/// A thread-mode request.
pub(super) struct CJob {
    pub(super) pdu: Pdu,
    pub(super) t: Transport,
}

impl<B: Backend> Job<B> for CJob {
    fn request(&self) -> SgView<'_> {
        self.pdu.view()
    }

    fn run(self: Box<Self>, server: &Server<B>, ticket: Ticket) {
        let CJob { pdu, t } = *self;
        pdu.run(server, &t, ticket);
    }
}
