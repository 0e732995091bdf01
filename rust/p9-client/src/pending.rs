// SPDX-License-Identifier: GPL-2.0-or-later
//! A request in flight.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use p9_wire::Proto;

use crate::reply::{check, check_or_panic, CallError, Reply, Response};

/// Where a reply lands: outer `None` while in flight, then the reply bytes
/// or `None` for "no reply".
#[derive(Default)]
pub(crate) struct Slot {
    state: Mutex<Option<Option<Vec<u8>>>>,
    cv: Condvar,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Option<Option<Vec<u8>>>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn fill(&self, reply: Option<Vec<u8>>) {
        *self.lock() = Some(reply);
        self.cv.notify_all();
    }
}

/// How a pending reply is decoded.
#[derive(Clone, Copy)]
pub(crate) struct Expect {
    /// The request's tag, if it has one.
    pub(crate) tag: Option<u16>,
    /// The reply type that answers it (`None`: any).
    pub(crate) typ: Option<u8>,
    /// The request's name, for messages.
    pub(crate) name: &'static str,
    /// Decode with this protocol and msize instead of the session's.
    pub(crate) session: Option<(Proto, u32)>,
}

/// The negotiated session, shared by a client and its pending requests
/// (replies are decoded in the session in force when they are looked at).
pub(crate) struct SessionCell(Mutex<(Proto, u32)>);

impl SessionCell {
    pub(crate) fn new(proto: Proto, msize: u32) -> Self {
        SessionCell(Mutex::new((proto, msize)))
    }

    pub(crate) fn get(&self) -> (Proto, u32) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set(&self, proto: Proto, msize: u32) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = (proto, msize);
    }
}

/// A request sent with [`crate::Client::send`] and friends, whose reply may
/// not have arrived yet.
///
/// Replies are checked as [`crate::Client::call`] checks them: an error
/// reply is `Err(errno)`, no reply is `None`, and a malformed reply (wrong
/// tag or type, undecodable) panics; [`Pending::wait_checked`] and
/// [`Pending::wait_raw`] do not panic.
pub struct Pending {
    pub(crate) slot: Arc<Slot>,
    pub(crate) expect: Expect,
    pub(crate) session: Arc<SessionCell>,
}

impl Pending {
    /// The request's tag (`None` for raw bytes too short to carry one).
    pub fn tag(&self) -> u16 {
        self.expect.tag.unwrap_or(p9_wire::consts::NOTAG)
    }

    /// Whether the reply (or the news that none will come) has arrived.
    pub fn is_done(&self) -> bool {
        self.slot.lock().is_some()
    }

    fn session(&self) -> (Proto, u32) {
        self.expect.session.unwrap_or_else(|| self.session.get())
    }

    fn decode(&self, bytes: Option<Vec<u8>>) -> Option<Response> {
        let (proto, msize) = self.session();
        let what = format!("reply to {} (tag {})", self.expect.name, self.tag());
        check_or_panic(&what, bytes, self.expect.tag, self.expect.typ, proto, msize)
    }

    /// The raw outcome, waiting at most until `deadline` (`None`: forever).
    /// Outer `None`: still in flight at the deadline.
    fn raw_until(&self, deadline: Option<Instant>) -> Option<Option<Vec<u8>>> {
        let mut state = self.slot.lock();
        loop {
            if let Some(r) = state.as_ref() {
                return Some(r.clone());
            }
            match deadline {
                None => {
                    state = self
                        .slot
                        .cv
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    state = self
                        .slot
                        .cv
                        .wait_timeout(state, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
    }

    /// Wait for the reply: `None` when the server sends none (a flushed
    /// request), else the reply or the errno of an error reply.
    ///
    /// # Panics
    /// On a malformed reply (see [`crate::Client`]).
    pub fn wait(self) -> Option<Response> {
        let raw = self.raw_until(None).flatten();
        self.decode(raw)
    }

    /// Wait for the reply and return its bytes unchecked (`None`: no
    /// reply).
    pub fn wait_raw(self) -> Option<Vec<u8>> {
        self.raw_until(None).flatten()
    }

    /// Wait for the reply and check it without panicking.
    pub fn wait_checked(self) -> Result<Reply, CallError> {
        let raw = self.raw_until(None).flatten();
        let (proto, msize) = self.session();
        check(raw, self.expect.tag, self.expect.typ, proto, msize)
    }

    /// The reply if it has arrived: `None` while in flight, `Some(None)`
    /// when the server sent no reply, else as [`Pending::wait`].
    ///
    /// # Panics
    /// On a malformed reply.
    pub fn try_wait(&self) -> Option<Option<Response>> {
        self.wait_timeout(Duration::ZERO)
    }

    /// As [`Pending::try_wait`], waiting at most `timeout` for the reply.
    ///
    /// # Panics
    /// On a malformed reply.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Option<Response>> {
        let raw = self.raw_until(Some(Instant::now() + timeout))?;
        Some(self.decode(raw))
    }
}
