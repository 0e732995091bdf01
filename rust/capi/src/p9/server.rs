// SPDX-License-Identifier: GPL-2.0-or-later
//! `QrsP9Server`: the two host modes, reset, stats (its config is in
//! `config`, its transport in `transport`).

use std::ffi::c_void;
use std::sync::Arc;
use std::time::Duration;

use libc::iovec;
use p9_engine::backend::Backend;
use p9_engine::host::{Limits, Pool, Refusal, Refused, ThreadHost};
use p9_engine::{Config, Server, Ticket};
use p9_wire::errno::{Errno, EAGAIN, EOPNOTSUPP, EPIPE, ETIMEDOUT};

use super::backend::{BackendKind, QrsP9Backend};
use super::config::{engine_config, limits, QrsP9Config};
use super::transport::{CJob, CRoom, CSession, Pdu, QrsP9Transport, Transport};
use crate::errno::to_neg_errno;
use crate::{ffi_guard, PANIC_ERRNO};

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

/// One engine: its server, and its threads in thread mode.
struct Engine<B: Backend> {
    server: Arc<Server<B>>,
    host: Option<ThreadHost<B>>,
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
    ) -> Result<Self, Errno> {
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
            Threads::Own(n) => Some(host(&Pool::new(n as usize).map_err(|_| EAGAIN)?)),
            Threads::Shared(pool) => Some(host(pool)),
        };
        Ok(Engine { server, host })
    }

    fn receive(&self, pdu: Pdu) -> Box<QrsP9Request> {
        let ticket = self.server.receive(pdu.view());
        Box::new(QrsP9Request { ticket, pdu })
    }

    /// Thread mode's host; `EOPNOTSUPP` in coroutine mode.
    fn host(&self) -> Result<&ThreadHost<B>, Errno> {
        self.host.as_ref().ok_or(EOPNOTSUPP)
    }

    fn submit(&self, pdu: Pdu, t: Transport) -> Result<(), Errno> {
        match self.host()?.try_submit_job(Box::new(CJob { pdu, t })) {
            Ok(()) => Ok(()),
            Err(Refused {
                reason: Refusal::Full,
                ..
            }) => Err(EAGAIN),
            Err(Refused {
                reason: Refusal::Closed,
                ..
            }) => Err(EPIPE),
        }
    }

    fn wait_room(&self, bytes: usize, timeout: Option<Duration>) -> Result<(), Errno> {
        if self.host()?.wait_room(bytes, timeout) {
            Ok(())
        } else {
            Err(ETIMEDOUT)
        }
    }

    fn shutdown(&self) -> Result<(), Errno> {
        self.host()?.close();
        Ok(())
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
    let Some(c_transport) = Transport::new(transport, opaque) else {
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
    let session = CSession::new(transport, opaque);
    let room = CRoom::new(transport, opaque);
    let engine = match backend.kind {
        BackendKind::Native(b) => {
            Engine::new(b, cfg, threads, limits, session, room).map(AnyEngine::Native)
        }
        BackendKind::C(b) => Engine::new(*b, cfg, threads, limits, session, room).map(AnyEngine::C),
    };
    let engine = match engine {
        Ok(e) => e,
        Err(e) => return to_neg_errno(e),
    };
    let server = Box::new(QrsP9Server {
        engine,
        transport: c_transport,
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
        with_engine!(s, e => e.submit(pdu, s.transport)).map_or_else(to_neg_errno, |()| 0)
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
        with_engine!(s, e => e.wait_room(bytes, timeout)).map_or_else(to_neg_errno, |()| 0)
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
        with_engine!(s, e => e.shutdown()).map_or_else(to_neg_errno, |()| 0)
    })
}
