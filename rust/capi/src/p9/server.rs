// SPDX-License-Identifier: GPL-2.0-or-later
//! `QrsP9Server`: config, transport, the two host modes, reset, stats.

use std::ffi::{c_int, c_void};
use std::sync::Arc;
use std::time::Duration;

use libc::iovec;
use p9_engine::backend::Backend;
use p9_engine::host::{Job, Limits, Pool, Refusal, Refused, ThreadHost};
use p9_engine::qid::MultiDevs;
use p9_engine::{Config, ReplyBuffers, Server, SessionHook, Ticket, Versions};
use p9_wire::{Errno, SgView};

use super::backend::{BackendKind, QrsP9Backend};
use crate::{ffi_guard, PANIC_ERRNO};

/// `QrsP9Config.versions`: 9P2000.L.
pub const QRS_P9_VERSION_DOTL: u32 = 1;
/// `QrsP9Config.versions`: 9P2000.u.
pub const QRS_P9_VERSION_DOTU: u32 = 2;

/// `QrsP9Config.multidevs`: use inode numbers as they are, warn once about
/// files on other devices (QEMU's `multidevs=warn`; QEMU 10 defaults
/// to remap).
pub const QRS_P9_MULTIDEVS_WARN: u32 = 0;
/// `QrsP9Config.multidevs`: remap (device, inode) to distinct qid paths
/// (`multidevs=remap`).
pub const QRS_P9_MULTIDEVS_REMAP: u32 = 1;
/// `QrsP9Config.multidevs`: refuse files on other devices with `ENODEV`
/// (`multidevs=forbid`).
pub const QRS_P9_MULTIDEVS_FORBID: u32 = 2;

/// How a server behaves.  Fill it with `qrs_p9_config_init`, then change
/// what differs.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QrsP9Config {
    /// The largest msize the transport carries (QEMU: its `msize_limit`);
    /// Tversion caps the client's msize to it.  At least 4096.
    pub msize_max: u32,
    /// `QRS_P9_VERSION_*` bits: the dialects Tversion may negotiate.
    pub versions: u32,
    /// A `QRS_P9_MULTIDEVS_*` value.
    pub multidevs: u32,
    /// Bound on live xattr fids (`max_xattr=`); 0: unbounded.
    pub max_xattr: u32,
    /// Bound on live fids; beyond it new fids get `ENFILE`.
    pub fids_max: u32,
    /// Open files above which idle ones are closed and later reopened;
    /// 0: from `RLIMIT_NOFILE`, as 9p.c does.
    pub open_high_water: u32,
    /// 0: coroutine mode (`qrs_p9_receive`, `qrs_p9_handle`); else thread
    /// mode with a pool of this many request threads of the server's own
    /// (`qrs_p9_submit`).  Ignored by `qrs_p9_server_new_on_pool` (thread
    /// mode on that pool's threads).
    pub threads: u32,
    /// Non-zero: refuse every change with `EROFS` (`readonly=on`).
    pub readonly: u8,
    /// Thread mode: bound on the requests in flight (submitted with
    /// `qrs_p9_submit` and not yet completed); beyond it `qrs_p9_submit`
    /// returns `-EAGAIN`.  0: no bound.  Default 256
    /// (`QRS_P9_MAX_REQUESTS_DEFAULT`).  Ignored in coroutine mode (the
    /// host's queue bounds it: QEMU's virtqueue).
    pub max_requests: u32,
    /// Thread mode: bound on the bytes the requests in flight cost: each
    /// costs its length plus, for Tread and Treaddir, the count it asks
    /// (capped to msize), which its reply may take.  Beyond it
    /// `qrs_p9_submit` returns `-EAGAIN`, except that a request is always
    /// taken when none is in flight (so one bigger than the bound still
    /// runs, alone).  0: no bound.  Default 8 MiB
    /// (`QRS_P9_MAX_BYTES_DEFAULT`).  Ignored in coroutine mode.
    pub max_bytes: u64,
}

/// The default of `QrsP9Config.max_requests`.
pub const QRS_P9_MAX_REQUESTS_DEFAULT: u32 = 256;
/// The default of `QrsP9Config.max_bytes` (8 MiB).
pub const QRS_P9_MAX_BYTES_DEFAULT: u64 = 8 << 20;

/// Counters of a server.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QrsP9Stats {
    /// Requests finished (replied to or cancelled).
    pub requests: u64,
    /// Offloads made: worker hops in coroutine mode.
    pub offloads: u64,
    /// Requests cancelled by Tflush (completed with no reply).
    pub cancelled: u64,
    /// Live fids.
    pub fids: u64,
    /// Open file and directory handles.
    pub open_handles: u64,
    /// Handles closed by reclaim.
    pub reclaimed: u64,
    /// Live xattr fids (what QEMU's synth backend reports in
    /// `/stat/xattr_count`).
    pub xattr_fids: u64,
    /// Requests received and not yet finished.
    pub active: u64,
    /// Thread mode: what the requests in flight cost, in bytes (see
    /// `QrsP9Config.max_bytes`); 0 in coroutine mode.
    pub inflight_bytes: u64,
    /// Thread mode: submissions refused with `-EAGAIN` so far.
    pub refused: u64,
}

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
struct CRoom {
    f: RoomFn,
    opaque: *mut c_void,
}

// SAFETY: `qrs_p9_server_new`'s contract: the transport's functions may be
// called from any thread with `opaque`.
unsafe impl Send for CRoom {}
// SAFETY: as above; nothing here is mutated.
unsafe impl Sync for CRoom {}

impl CRoom {
    fn call(&self) {
        // SAFETY: the transport's contract.
        unsafe { (self.f)(self.opaque) };
    }
}

/// The transport with its functions checked.
#[derive(Clone, Copy)]
struct Transport {
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
struct CSession {
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

impl SessionHook for CSession {
    fn attached(&self) -> Result<(), Errno> {
        // SAFETY: the transport's contract.
        let r = unsafe { (self.f)(self.opaque, 1) };
        if r >= 0 {
            return Ok(());
        }
        match r.unsigned_abs() {
            e @ 1..=4095 => Err(Errno(e)),
            _ => Err(p9_wire::errno::EIO),
        }
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

/// A request's buffers as the host gave them.
struct Pdu {
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
    unsafe fn new(pdu: *mut c_void, iov: *const iovec, niov: usize) -> Option<Pdu> {
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

    fn view(&self) -> SgView<'_> {
        SgView::new(&self.req)
    }

    /// Handle the request, send its reply through the transport, then
    /// finish it.
    fn run<B: Backend>(self, server: &Server<B>, t: &Transport, ticket: Ticket) {
        let mut reply = CReply {
            t,
            pdu: self.pdu,
            segs: Vec::new(),
        };
        let handled = server.handle(ticket, self.view(), &mut reply);
        let len = handled.reply_len().unwrap_or(0);
        drop(reply);
        if let Some(trace) = t.trace {
            let typ = handled.reply_type().unwrap_or(0);
            let err = handled.error().map_or(0, |e| e.0 as i32);
            // SAFETY: the transport's contract.
            unsafe { trace(t.opaque, self.pdu, typ, err) };
        }
        // SAFETY: the transport's contract; once per request.
        unsafe { (t.complete)(t.opaque, self.pdu, len) };
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

/// One engine: its server, and its threads in thread mode.
struct Engine<B: Backend> {
    server: Arc<Server<B>>,
    host: Option<ThreadHost<B>>,
}

/// A thread-mode request.
struct CJob {
    pdu: Pdu,
    t: Transport,
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

/// Where a thread-mode server runs its requests.
enum Threads<'p> {
    /// Coroutine mode.
    None,
    /// A pool of its own of this many threads.
    Own(u32),
    /// A shared pool.
    Shared(&'p Pool),
}

impl<B: Backend> Engine<B> {
    fn new(
        backend: B,
        config: Config,
        threads: Threads<'_>,
        limits: Limits,
        session: Option<CSession>,
        room: Option<CRoom>,
    ) -> Result<Self, i32> {
        let server = Server::new(backend, config);
        let server = Arc::new(match session {
            Some(hook) => server.with_session_hook(hook),
            None => server,
        });
        let host = |pool: &Pool| {
            let host = ThreadHost::on_pool(Arc::clone(&server), pool, limits);
            match room {
                Some(room) => host.on_room(move || room.call()),
                None => host,
            }
        };
        let host = match threads {
            Threads::None => None,
            Threads::Own(n) => Some(host(&Pool::new(n as usize).map_err(|_| -libc::EAGAIN)?)),
            Threads::Shared(pool) => Some(host(pool)),
        };
        Ok(Engine { server, host })
    }

    fn receive(&self, pdu: Pdu) -> Box<QrsP9Request> {
        let ticket = self.server.receive(pdu.view());
        Box::new(QrsP9Request { ticket, pdu })
    }

    fn submit(&self, pdu: Pdu, t: Transport) -> i32 {
        let Some(host) = &self.host else {
            return -libc::EOPNOTSUPP;
        };
        match host.try_submit_job(Box::new(CJob { pdu, t })) {
            Ok(()) => 0,
            Err(Refused {
                reason: Refusal::Full,
                ..
            }) => -libc::EAGAIN,
            Err(Refused {
                reason: Refusal::Closed,
                ..
            }) => -libc::EPIPE,
        }
    }

    fn wait_room(&self, bytes: usize, timeout: Option<Duration>) -> i32 {
        let Some(host) = &self.host else {
            return -libc::EOPNOTSUPP;
        };
        if host.wait_room(bytes, timeout) {
            0
        } else {
            -libc::ETIMEDOUT
        }
    }

    fn shutdown(&self) -> i32 {
        let Some(host) = &self.host else {
            return -libc::EOPNOTSUPP;
        };
        host.close();
        0
    }

    fn stats(&self) -> QrsP9Stats {
        let s = self.server.stats();
        let (_, bytes, refused) = self.host.as_ref().map_or((0, 0, 0), |h| h.in_flight());
        QrsP9Stats {
            requests: s.requests,
            offloads: s.offloads,
            cancelled: s.cancelled,
            fids: s.fids as u64,
            open_handles: s.open_handles as u64,
            reclaimed: s.reclaimed,
            xattr_fids: u64::from(s.xattr_fids),
            active: s.active as u64,
            inflight_bytes: bytes as u64,
            refused,
        }
    }
}

enum AnyEngine {
    Native(Engine<p9_native::NativeBackend>),
    C(Engine<super::cbackend::CBackend>),
}

/// Run `$body` with `$e` bound to the server's engine, whatever its
/// backend.
macro_rules! with_engine {
    ($s:expr, $e:ident => $body:expr) => {
        match &$s.engine {
            AnyEngine::Native($e) => $body,
            AnyEngine::C($e) => $body,
        }
    };
}

/// A 9P server (opaque).
pub struct QrsP9Server {
    engine: AnyEngine,
    transport: Transport,
}

/// A pool of request threads that many thread-mode servers share
/// (`qrs_p9_pool_new`, `qrs_p9_server_new_on_pool`) (opaque).
pub struct QrsP9Pool {
    pool: Pool,
}

/// A received request, to be run by `qrs_p9_handle` (opaque).
pub struct QrsP9Request {
    ticket: Ticket,
    pdu: Pdu,
}

/// Fill `*config` with the defaults: msize up to QEMU's virtio limit
/// (`(1024 - 2) * 4096`), both dialects, `multidevs=warn`, 1024 xattr fids,
/// the engine's fid bound, reclaim from `RLIMIT_NOFILE`, coroutine mode,
/// writable, and (thread mode) at most 256 requests and 8 MiB in flight.
/// NULL is ignored.  Thread-safe.
///
/// # Safety
/// `config` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_config_init(config: *mut QrsP9Config) {
    ffi_guard((), || {
        if config.is_null() {
            return;
        }
        let d = Config::default();
        let c = QrsP9Config {
            msize_max: d.msize_max,
            versions: QRS_P9_VERSION_DOTL | QRS_P9_VERSION_DOTU,
            multidevs: QRS_P9_MULTIDEVS_WARN,
            max_xattr: d.max_xattr,
            fids_max: u32::try_from(d.fids_max).unwrap_or(u32::MAX),
            open_high_water: 0,
            threads: 0,
            readonly: 0,
            max_requests: QRS_P9_MAX_REQUESTS_DEFAULT,
            max_bytes: QRS_P9_MAX_BYTES_DEFAULT,
        };
        // SAFETY: non-NULL and writable, per the contract.
        unsafe { config.write(c) };
    })
}

/// The thread-mode bounds of `c` (0: none).
fn limits(c: &QrsP9Config) -> Limits {
    Limits {
        max_requests: match c.max_requests {
            0 => usize::MAX,
            n => n as usize,
        },
        max_bytes: match c.max_bytes {
            0 => usize::MAX,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        },
    }
}

fn engine_config(c: &QrsP9Config) -> Option<Config> {
    let multidevs = match c.multidevs {
        QRS_P9_MULTIDEVS_WARN => MultiDevs::Warn,
        QRS_P9_MULTIDEVS_REMAP => MultiDevs::Remap,
        QRS_P9_MULTIDEVS_FORBID => MultiDevs::Forbid,
        _ => return None,
    };
    let all = QRS_P9_VERSION_DOTL | QRS_P9_VERSION_DOTU;
    if c.versions == 0
        || c.versions & !all != 0
        || c.msize_max < p9_wire::consts::P9_MIN_MSIZE
        || c.fids_max == 0
    {
        return None;
    }
    Some(Config {
        msize_max: c.msize_max,
        multidevs,
        readonly: c.readonly != 0,
        max_xattr: c.max_xattr,
        fids_max: c.fids_max as usize,
        open_high_water: (c.open_high_water != 0).then_some(c.open_high_water as usize),
        versions: Versions {
            dotl: c.versions & QRS_P9_VERSION_DOTL != 0,
            dotu: c.versions & QRS_P9_VERSION_DOTU != 0,
        },
    })
}

/// Make a server for `backend` with `config` (copied), sending replies
/// through `transport` (copied) with `opaque`.  The server takes
/// `backend`, also when it fails.  Thread mode starts `config->threads`
/// threads, the server's own.  On success `*out` is the new server, owned
/// by the caller (`qrs_p9_server_free`).
///
/// Returns 0; `-EINVAL` if a pointer, `transport->reply_buffers` or
/// `transport->complete` is NULL, or
/// `config` is invalid (msize below 4096, no or unknown versions, unknown
/// multidevs, fids_max 0); `-EAGAIN` if a thread cannot be created.
///
/// # Safety
/// `config` and `transport` are NULL or readable; `backend` is NULL or an
/// unused backend from `qrs_p9_backend_*_new`; `out` is NULL or writable.
/// The transport's functions may be called with `opaque` from the server's
/// threads (thread mode) or the host's home thread (coroutine mode) until
/// `qrs_p9_server_free` returns.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_server_new(
    config: *const QrsP9Config,
    backend: *mut QrsP9Backend,
    transport: *const QrsP9Transport,
    opaque: *mut c_void,
    out: *mut *mut QrsP9Server,
) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        // SAFETY: per the contract.
        unsafe { server_new(config, None, backend, transport, opaque, out) }
    })
}

/// Make a thread-mode server as `qrs_p9_server_new` does, whose requests
/// run on `pool`'s threads (shared with the other servers on it) instead
/// of threads of its own; `config->threads` is ignored.  Its bounds
/// (`config->max_requests`, `config->max_bytes`) are its own, and the
/// pool serves its servers in turn (one request each), so a flood on one
/// server does not starve the others.  The server keeps the pool alive
/// until `qrs_p9_server_free` (freeing the pool handle first is fine).
///
/// Returns as `qrs_p9_server_new`; `-EINVAL` also if `pool` is NULL.
///
/// # Safety
/// As for `qrs_p9_server_new`; `pool` is NULL or a live pool.  The
/// transport's functions may be called from the pool's threads.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_server_new_on_pool(
    config: *const QrsP9Config,
    pool: *const QrsP9Pool,
    backend: *mut QrsP9Backend,
    transport: *const QrsP9Transport,
    opaque: *mut c_void,
    out: *mut *mut QrsP9Server,
) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        // SAFETY: NULL or live, per the contract.
        let Some(pool) = (unsafe { pool.as_ref() }) else {
            if !backend.is_null() {
                // SAFETY: an unused backend, which we now own.
                drop(unsafe { Box::from_raw(backend) });
            }
            return -libc::EINVAL;
        };
        // SAFETY: per the contract.
        unsafe { server_new(config, Some(&pool.pool), backend, transport, opaque, out) }
    })
}

/// `qrs_p9_server_new` and `qrs_p9_server_new_on_pool`.
///
/// # Safety
/// As for `qrs_p9_server_new`.
unsafe fn server_new(
    config: *const QrsP9Config,
    pool: Option<&Pool>,
    backend: *mut QrsP9Backend,
    transport: *const QrsP9Transport,
    opaque: *mut c_void,
    out: *mut *mut QrsP9Server,
) -> i32 {
    if backend.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: an unused backend, which we now own, per the contract.
    let backend = unsafe { Box::from_raw(backend) };
    // SAFETY: NULL or readable, per the contract.
    let (Some(config), Some(transport)) =
        (unsafe { config.as_ref() }, unsafe { transport.as_ref() })
    else {
        return -libc::EINVAL;
    };
    let (Some(reply_buffers), Some(complete)) = (transport.reply_buffers, transport.complete)
    else {
        return -libc::EINVAL;
    };
    if out.is_null() {
        return -libc::EINVAL;
    }
    let Some(cfg) = engine_config(config) else {
        return -libc::EINVAL;
    };
    let threads = match (pool, config.threads) {
        (Some(pool), _) => Threads::Shared(pool),
        (None, 0) => Threads::None,
        (None, n) => Threads::Own(n),
    };
    let limits = limits(config);
    let session = transport.session.map(|f| CSession { f, opaque });
    let room = transport.room.map(|f| CRoom { f, opaque });
    let engine = match backend.kind {
        BackendKind::Native(b) => {
            Engine::new(b, cfg, threads, limits, session, room).map(AnyEngine::Native)
        }
        BackendKind::C(b) => Engine::new(*b, cfg, threads, limits, session, room).map(AnyEngine::C),
    };
    let engine = match engine {
        Ok(e) => e,
        Err(e) => return e,
    };
    let server = Box::new(QrsP9Server {
        engine,
        transport: Transport {
            reply_buffers,
            complete,
            throttle: transport.throttle,
            trace: transport.trace,
            opaque,
        },
    });
    // SAFETY: non-NULL and writable, per the contract.
    unsafe { *out = Box::into_raw(server) };
    0
}

/// Make a pool of `threads` request threads (0: one per CPU, at least 2)
/// for thread-mode servers to share (`qrs_p9_server_new_on_pool`).  On
/// success `*out` is the pool, owned by the caller (`qrs_p9_pool_free`).
/// The threads are named `p9-host-N` and inherit the caller's signal
/// mask.  Thread-safe.
///
/// Returns 0; `-EINVAL` if `out` is NULL; `-EAGAIN` if a thread cannot be
/// created.
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_pool_new(threads: u32, out: *mut *mut QrsP9Pool) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        if out.is_null() {
            return -libc::EINVAL;
        }
        let Ok(pool) = Pool::new(threads as usize) else {
            return -libc::EAGAIN;
        };
        // SAFETY: non-NULL and writable, per the contract.
        unsafe { *out = Box::into_raw(Box::new(QrsP9Pool { pool })) };
        0
    })
}

/// How many threads `pool` runs; 0 if `pool` is NULL.  Thread-safe.
///
/// # Safety
/// `pool` is NULL or a live pool.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_pool_threads(pool: *const QrsP9Pool) -> u32 {
    ffi_guard(0, || {
        // SAFETY: NULL or live, per the contract.
        unsafe { pool.as_ref() }.map_or(0, |p| {
            u32::try_from(p.pool.thread_count()).unwrap_or(u32::MAX)
        })
    })
}

/// Let go of the caller's handle on `pool`.  The threads stop (and are
/// joined) once the handle and every server made on the pool are freed:
/// here if none is left, else in the last `qrs_p9_server_free`.  NULL is
/// ignored.
///
/// # Safety
/// `pool` is NULL or a live pool, not used by the caller afterwards (the
/// servers on it keep working); not called from a transport or backend
/// function.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_pool_free(pool: *mut QrsP9Pool) {
    ffi_guard((), || {
        if !pool.is_null() {
            // SAFETY: ours and live, per the contract.
            drop(unsafe { Box::from_raw(pool) });
        }
    })
}

/// Free a server and its backend.  Thread mode: requests already submitted
/// run to completion first (after `qrs_p9_server_shutdown`: the queued
/// ones complete unrun), then the server's own threads are joined (on a
/// shared pool: the pool's threads are joined if the pool's handle was
/// freed and this was its last server).  Coroutine mode: no request may be
/// in flight (call `qrs_p9_server_reset` first).  NULL is ignored.
///
/// # Safety
/// `server` is NULL or a live server from `qrs_p9_server_new`, not used by
/// any other thread during or after the call; not called from a transport
/// function or a backend function.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_server_free(server: *mut QrsP9Server) {
    ffi_guard((), || {
        if !server.is_null() {
            // SAFETY: ours and live, per the contract.
            drop(unsafe { Box::from_raw(server) });
        }
    })
}

/// Reset the server, as a transport reset or unplug needs (QEMU
/// `v9fs_reset`): wait for every request received so far to finish, clunk
/// every fid (closing what it holds, committing pending xattr writes), and
/// forget the negotiated session.  Coroutine mode: call it in a coroutine
/// on the home thread (it suspends while it waits; QEMU polls its event
/// loop until that coroutine ends) or outside coroutines on a thread that
/// the requests do not need.  Thread mode: call it from any thread but the
/// server's own.  Requests that never finish (e.g. a read the backend
/// blocks until flushed) make it wait forever, as in QEMU.
///
/// Returns 0, or `-EINVAL` if `server` is NULL.
///
/// # Safety
/// `server` is NULL or a live server; not called from a transport or
/// backend function.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_server_reset(server: *const QrsP9Server) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        // SAFETY: NULL or live, per the contract.
        let Some(s) = (unsafe { server.as_ref() }) else {
            return -libc::EINVAL;
        };
        with_engine!(s, e => e.server.reset());
        0
    })
}

/// Copy the server's counters into `*out`.  Thread-safe; callable from
/// backend functions (QEMU's synth backend reads `xattr_fids`).
///
/// Returns 0, or `-EINVAL` if a pointer is NULL.
///
/// # Safety
/// `server` is NULL or a live server; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_server_stats(
    server: *const QrsP9Server,
    out: *mut QrsP9Stats,
) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        // SAFETY: NULL or live, per the contract.
        let Some(s) = (unsafe { server.as_ref() }) else {
            return -libc::EINVAL;
        };
        if out.is_null() {
            return -libc::EINVAL;
        }
        let stats = with_engine!(s, e => e.stats());
        // SAFETY: non-NULL and writable, per the contract.
        unsafe { out.write(stats) };
        0
    })
}

/// Coroutine mode, step 1: a request arrived.  `req` is `niov` iovecs
/// holding the request's bytes (QEMU: the element's `out_sg`; they may be
/// longer than the message: the size in its header counts); `pdu` is
/// the host's handle for it, passed back to the transport.  Call it on the
/// home thread, in arrival order, and without waiting: it registers the
/// tag so that a later Tflush finds the request even before it runs.  On
/// success `*out` is the request, which must be passed to `qrs_p9_handle`
/// exactly once.  Also usable in thread mode by hosts with threads of
/// their own.
///
/// Returns 0, or `-EINVAL` if `server` or `out` is NULL, or `req` is NULL
/// with `niov` non-zero, or an iovec with a length has a NULL base.
///
/// # Safety
/// `server` is NULL or a live server; `req` is NULL or `niov` readable
/// iovecs whose memory stays valid and unchanged until the transport's
/// `complete` for `pdu`; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_receive(
    server: *const QrsP9Server,
    pdu: *mut c_void,
    req: *const iovec,
    niov: usize,
    out: *mut *mut QrsP9Request,
) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        // SAFETY: NULL or live, per the contract.
        let Some(s) = (unsafe { server.as_ref() }) else {
            return -libc::EINVAL;
        };
        if out.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: per the contract.
        let Some(pdu) = (unsafe { Pdu::new(pdu, req, niov) }) else {
            return -libc::EINVAL;
        };
        let r = with_engine!(s, e => e.receive(pdu));
        // SAFETY: non-NULL and writable, per the contract.
        unsafe { *out = Box::into_raw(r) };
        0
    })
}

/// Coroutine mode, step 2: run `request` (from `qrs_p9_receive`) in the
/// calling coroutine, which it may suspend (offloads, Tflush waits, the
/// transport's `reply_buffers`), and complete it through the transport
/// before returning.  Frees `request`.  NULL `request` is ignored.  Call
/// it in a coroutine on the home thread (outside a coroutine, backend
/// calls and waits block the calling thread instead).
///
/// # Safety
/// `server` is the live server `request` was received by; `request` is
/// NULL or from `qrs_p9_receive` and not handled before.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_handle(server: *const QrsP9Server, request: *mut QrsP9Request) {
    ffi_guard((), || {
        if request.is_null() {
            return;
        }
        // SAFETY: ours and unhandled, per the contract.
        let r = unsafe { Box::from_raw(request) };
        // SAFETY: live, per the contract.
        let Some(s) = (unsafe { server.as_ref() }) else {
            return;
        };
        let QrsP9Request { ticket, pdu } = *r;
        with_engine!(s, e => pdu.run(&e.server, &s.transport, ticket));
    })
}

/// Thread mode: a request arrived (as for `qrs_p9_receive`); it runs on
/// one of the server's (or its pool's) threads, which call the
/// transport's `reply_buffers` and `complete` for it.  Requests start in
/// submission order; call it from one thread per transport, or serialise
/// the calls.
///
/// Back-pressure: when the server already has `config->max_requests`
/// requests in flight, or taking this one would exceed
/// `config->max_bytes`, the request is not taken and `-EAGAIN` is
/// returned: keep it, stop reading the transport, and submit it again
/// once there is room (the transport's `room` hook says when, or wait
/// with `qrs_p9_server_wait_room`).  A request is always taken when none
/// is in flight.
///
/// Returns 0; `-EINVAL` as for `qrs_p9_receive`; `-EAGAIN` at the bounds;
/// `-EPIPE` after `qrs_p9_server_shutdown`; `-EOPNOTSUPP` in coroutine
/// mode.  On failure the request is not taken: `complete` is not called
/// for it.
///
/// # Safety
/// As for `qrs_p9_receive`; `pdu` and the request's memory may be used by
/// the server's threads until `complete`.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_submit(
    server: *const QrsP9Server,
    pdu: *mut c_void,
    req: *const iovec,
    niov: usize,
) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        // SAFETY: NULL or live, per the contract.
        let Some(s) = (unsafe { server.as_ref() }) else {
            return -libc::EINVAL;
        };
        // SAFETY: per the contract.
        let Some(pdu) = (unsafe { Pdu::new(pdu, req, niov) }) else {
            return -libc::EINVAL;
        };
        with_engine!(s, e => e.submit(pdu, s.transport))
    })
}

/// Thread mode: wait until a request costing `bytes` bytes (see
/// `QrsP9Config.max_bytes`; 0 for "any request") fits in the server's
/// bounds and, if `qrs_p9_submit` returned `-EAGAIN`, a request has
/// finished since (so a retry always follows progress, whatever `bytes`
/// said), for at most `timeout_ms` milliseconds (negative: no limit),
/// parking the calling thread.  For hosts with a thread per transport;
/// an event loop uses the transport's `room` hook instead.  The retry may
/// still return `-EAGAIN` (the request did not fit yet, or another thread
/// took the room): then wait again.
///
/// Returns 0 (there may be room, or the server was shut down: submitting
/// then fails with `-EPIPE`); `-ETIMEDOUT`; `-EINVAL` if `server` is
/// NULL; `-EOPNOTSUPP` in coroutine mode.
///
/// # Safety
/// `server` is NULL or a live server; not called from a transport or
/// backend function.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_server_wait_room(
    server: *const QrsP9Server,
    bytes: usize,
    timeout_ms: i64,
) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        // SAFETY: NULL or live, per the contract.
        let Some(s) = (unsafe { server.as_ref() }) else {
            return -libc::EINVAL;
        };
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        with_engine!(s, e => e.wait_room(bytes, timeout))
    })
}

/// Thread mode: the transport's peer is gone (the connection closed).
/// Requests submitted and not started are dropped: they never run, and
/// each is completed with no reply (`complete(pdu, 0)`) soon, on a server
/// thread; running requests are cancelled at their next check point (a
/// backend call not yet made is not made) and complete as usual; later
/// `qrs_p9_submit` calls fail with `-EPIPE`.  Does not wait: free the
/// server afterwards (`qrs_p9_server_free` waits for the running
/// requests).  Thread-safe.
///
/// Returns 0; `-EINVAL` if `server` is NULL; `-EOPNOTSUPP` in coroutine
/// mode.
///
/// # Safety
/// `server` is NULL or a live server.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_server_shutdown(server: *const QrsP9Server) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        // SAFETY: NULL or live, per the contract.
        let Some(s) = (unsafe { server.as_ref() }) else {
            return -libc::EINVAL;
        };
        with_engine!(s, e => e.shutdown())
    })
}
