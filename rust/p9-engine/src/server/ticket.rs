// SPDX-License-Identifier: GPL-2.0-or-later
//! A request's life in the server: its [`Ticket`] from arrival, its record
//! (cancellation, the Tflush naming it, who waits for it), and the
//! [`Handled`](super::Handled) that finishes it once its reply is sent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use offload::WaitCell;
use p9_wire::errno::Errno;

use crate::hash::FastMap;
use crate::request::{Cancel, ReplyBuffers};

/// A received request, to be passed to [`Server::handle`](super::Server::handle).
#[must_use = "a received request must be handled"]
pub struct Ticket {
    pub(super) tag: Option<u16>,
    pub(super) req: Arc<Request>,
}

impl Ticket {
    /// Make sure the request never starts: [`Server::handle`](super::Server::handle) then
    /// finishes it at once with no reply, as a request flushed before it
    /// started (for a host dropping the queued work of a session whose
    /// peer went away).
    pub fn cancel(&self) {
        self.req.drop_unstarted();
    }

    /// Whether [`Server::handle`](super::Server::handle) will finish the request at once with no
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

/// Makes an unsized [`ReplyBuffers`] usable as `dyn`.
pub(super) struct DynBuffers<'r, R: ?Sized>(pub(super) &'r mut R);

impl<'b, R: ReplyBuffers<'b> + ?Sized> ReplyBuffers<'b> for DynBuffers<'_, R> {
    fn get(&mut self, size: usize) -> &mut [&'b mut [u8]] {
        self.0.get(size)
    }

    fn throttle(&mut self, write: bool, bytes: usize) {
        self.0.throttle(write, bytes);
    }
}

/// The requests received and not yet finished.
pub(super) struct Active {
    /// By tag: what a Tflush looks for.
    pub(super) tags: FastMap<u16, Arc<Request>>,
    /// Every one, tagged or not: what [`Server::reset`](super::Server::reset) waits for.
    pub(super) count: usize,
    /// Records of finished requests, reused by the next ones (a request
    /// costs no allocation in steady state).  At most [`FREE_RECORDS`].
    pub(super) free: Vec<Arc<Request>>,
}

/// Request records kept for reuse.
pub(super) const FREE_RECORDS: usize = 64;

/// What a request's reply is.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sent {
    /// Its length in the reply buffers.
    pub(super) len: usize,
    /// Its message type.
    pub(super) typ: u8,
    /// The errno of an error reply.
    pub(super) err: Option<Errno>,
}

/// What runs once a request has finished.
pub(super) type Then = Box<dyn FnOnce() + Send>;

/// Whether a request has finished, and what waits for it.
pub(super) struct Done {
    /// Set once its reply is pushed (or it was cancelled).
    pub(super) done: bool,
    /// Deferred Tflushes naming it ([`Ticket::defer`]), run once `done`.
    pub(super) then: Vec<Then>,
}

/// The shared state of one in-flight request.
pub(super) struct Request {
    /// Set by Tflush (or the host): the request stops at its next check
    /// point, or never starts (a Tflush still starts: see `dropped`).
    pub(super) cancelled: Cancel,
    /// Set by the host ([`Ticket::cancel`], [`Server::cancel_all`](super::Server::cancel_all)): not
    /// even a Tflush starts.
    pub(super) dropped: AtomicBool,
    /// A Tflush (whatever its target).
    pub(super) is_flush: bool,
    /// A Tflush: the request it names, found when it arrived.  Only a
    /// request that arrived earlier can be one, so the requests Tflushes
    /// wait for form no cycle.
    pub(super) target: Option<Arc<Request>>,
    /// Named by a Tflush (set under the active lock, while the request's
    /// tag is registered): only then is `done` kept, since only then
    /// does anyone wait for it.
    pub(super) watched: AtomicBool,
    /// Kept only when `watched`.
    pub(super) done: WaitCell<Done>,
}

impl Request {
    pub(super) fn new(is_flush: bool, target: Option<Arc<Request>>) -> Request {
        Request {
            cancelled: Cancel::default(),
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

    /// Whether it is to finish unstarted, with no reply.  A Tflush named
    /// by a later Tflush still runs and answers (as in 9p.c): a client
    /// learns from its Rflush that the request it named is over, and the
    /// later Tflush's Rflush follows it.
    pub(super) fn skips(&self) -> bool {
        self.dropped.load(Ordering::Relaxed) || (self.cancelled.is_set() && !self.is_flush)
    }

    pub(super) fn drop_unstarted(&self) {
        self.cancelled.set();
        self.dropped.store(true, Ordering::Relaxed);
    }
}
