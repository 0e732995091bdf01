// SPDX-License-Identifier: GPL-2.0-or-later
//! What one request carries from the server into the operations: where its
//! reply goes ([`ReplyBuffers`]), its cancellation flag, the session it
//! was decoded in, and what the operation answers ([`Reply`]).
//!
//! Below both the server (request lifecycle) and the operations, so that
//! neither needs the other.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};

use p9_wire::{Proto, Rmessage};

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

/// A request's cancellation flag: set by a Tflush naming it (or by the
/// host); the request stops at its next check point.
#[derive(Default)]
pub(crate) struct Cancel(AtomicBool);

impl Cancel {
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The negotiated session, as a request sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Session {
    pub(crate) proto: Proto,
    pub(crate) msize: u32,
}

const PROTO_NONE: u8 = 0;
const PROTO_U: u8 = 1;
const PROTO_L: u8 = 2;

/// The session in force now (Tversion changes it while other requests
/// run).
pub(crate) struct LiveSession {
    proto: AtomicU8,
    msize: AtomicU32,
}

impl LiveSession {
    /// Unnegotiated, with `msize`.
    pub(crate) fn new(msize: u32) -> Self {
        LiveSession {
            proto: AtomicU8::new(PROTO_NONE),
            msize: AtomicU32::new(msize),
        }
    }

    pub(crate) fn get(&self) -> Session {
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

    pub(crate) fn set(&self, s: Session) {
        self.msize.store(s.msize, Ordering::Release);
        let p = match s.proto {
            Proto::DotU => PROTO_U,
            Proto::DotL => PROTO_L,
            Proto::Unnegotiated => PROTO_NONE,
        };
        self.proto.store(p, Ordering::Release);
    }
}

/// The reply of one request: encoded by the caller, or already written
/// into the reply buffers (bulk replies).
// One per request, on the stack: boxing the message would cost an
// allocation per request.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Reply {
    Msg(Rmessage<'static>),
    Written(usize),
}
