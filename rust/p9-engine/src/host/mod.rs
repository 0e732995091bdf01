// SPDX-License-Identifier: GPL-2.0-or-later
//! The thread-mode host: pools of request threads driving [`Server`]s.
//!
//! For hosts without coroutines (tests, benchmarks, hypervisors that give
//! the engine its own threads).  A [`ThreadHost`] is one session (one
//! server, one transport); its requests run on a [`Pool`] of threads that
//! one host owns alone ([`ThreadHost::new`]) or that many share
//! ([`ThreadHost::on_pool`]: one pool for every connection of a server
//! process, instead of threads per connection).
//!
//! [`ThreadHost::submit_job`] calls [`Server::receive`] at once on the
//! caller's thread, so requests are registered in arrival order and a
//! later Tflush finds an earlier request even before it starts running;
//! [`Server::handle`] then runs on one of the pool's threads (named
//! `p9-host-N`), where `offload::run_in_worker` runs its function inline
//! and waiting (the rename lock) parks the thread.
//!
//! **Scheduling.**  Each session has its own queue, started in submission
//! order; the pool serves the sessions with work round-robin, one request
//! per turn, so a flood from one session delays another's requests by at
//! most one request per busy session, not by the flood.
//!
//! **Tflush.**  A Tflush whose target has not finished does not take a
//! thread while it waits: it is set aside ([`Ticket::defer`]) and queued
//! again, at the head of its session's queue, when the target finishes; it
//! is then answered at once.  So Tflushes cannot hold every thread of the
//! pool, whatever their targets do.
//!
//! **Bounds and back-pressure.**  A session holds at most
//! [`Limits::max_requests`] requests in flight (submitted and not
//! finished) costing at most [`Limits::max_bytes`] bytes ([`request_cost`]:
//! the request's bytes plus, for Tread and Treaddir, the count asked);
//! a request is always admitted when the session has none in flight.
//! [`ThreadHost::try_submit_job`] refuses a request beyond the bounds
//! (the host stops reading its transport and retries when told there is
//! room: [`ThreadHost::on_room`], [`ThreadHost::wait_room`]);
//! [`ThreadHost::submit_job`] waits for room instead.
//!
//! **Closing.**  [`ThreadHost::close`] is for a transport whose peer went
//! away: queued requests are dropped (they never start and complete with
//! no reply, promptly, on a pool thread), running ones are cancelled at
//! their next check point, and later submissions are refused.
//!
//! Replies are delivered in the order 9P requires around Tflush: a flushed
//! request's reply (if it sends one) reaches its callback before the
//! Rflush reaches the Tflush's callback, because a request is finished
//! (dropping its [`crate::Handled`]) only after its callback returned.
//!
//! [`Server::handle`] answers a panic inside a request with `EIO`; a panic
//! in a completion callback is caught on the pool thread, which goes on
//! with the next request.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use p9_wire::msgtype::{TREAD, TREADDIR};
use p9_wire::SgView;

use crate::backend::Backend;
use crate::server::{ReplyBuffers, Server, Ticket};

mod pool;

pub use pool::Pool;
use pool::{Lane, PoolInner};

/// Default bound on one session's requests in flight.
pub const MAX_REQUESTS_DEFAULT: usize = 256;
/// Default bound on the bytes one session's requests in flight cost
/// (8 MiB).
pub const MAX_BYTES_DEFAULT: usize = 8 << 20;

/// Bounds on the work one session ([`ThreadHost`]) has in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Requests submitted and not finished (`usize::MAX`: no bound).
    pub max_requests: usize,
    /// Their total [`request_cost`] (`usize::MAX`: no bound).
    pub max_bytes: usize,
}

impl Limits {
    /// No bound at all.
    pub const UNBOUNDED: Limits = Limits {
        max_requests: usize::MAX,
        max_bytes: usize::MAX,
    };
}

impl Default for Limits {
    /// [`MAX_REQUESTS_DEFAULT`] and [`MAX_BYTES_DEFAULT`].
    fn default() -> Self {
        Limits {
            max_requests: MAX_REQUESTS_DEFAULT,
            max_bytes: MAX_BYTES_DEFAULT,
        }
    }
}

/// What a request in flight costs a session, in bytes: its length, plus,
/// for Tread and Treaddir, the count it asks for (capped to `msize`),
/// which is what its reply may take.  Other replies are small.
pub fn request_cost(req: SgView<'_>, msize: u32) -> usize {
    let len = req.len();
    let mut hdr = [0u8; 23];
    if len < hdr.len() || req.copy_to(&mut hdr) < hdr.len() {
        return len;
    }
    if hdr[4] != TREAD && hdr[4] != TREADDIR {
        return len;
    }
    let count = u32::from_le_bytes([hdr[19], hdr[20], hdr[21], hdr[22]]);
    len.saturating_add(count.min(msize) as usize)
}

/// A request queued to a [`ThreadHost`]: its bytes, and what a pool thread
/// does with it.
pub trait Job<B: Backend>: Send + 'static {
    /// The request bytes (read by [`Server::receive`] at submission and by
    /// [`Server::handle`] later).
    fn request(&self) -> SgView<'_>;

    /// On a pool thread: pass `ticket` to [`Server::handle`] with
    /// [`Job::request`]'s bytes, send the reply, then drop the
    /// [`crate::Handled`].
    fn run(self: Box<Self>, server: &Server<B>, ticket: Ticket);
}

/// Why [`ThreadHost::try_submit_job`] refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The session is at its [`Limits`]: retry once there is room.
    Full,
    /// The session was closed ([`ThreadHost::close`]).
    Closed,
}

/// A request [`ThreadHost::try_submit_job`] did not take: nothing was done
/// with it.
pub struct Refused<B: Backend> {
    /// The request, as submitted.
    pub job: Box<dyn Job<B>>,
    /// Why.
    pub reason: Refusal,
}

impl<B: Backend> std::fmt::Debug for Refused<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refused")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

// ----- sessions -----

/// A request waiting for a thread.
struct Queued<B: Backend> {
    ticket: Ticket,
    job: Box<dyn Job<B>>,
    cost: usize,
}

/// A session's queue and what it has in flight.
struct Queue<B: Backend> {
    jobs: VecDeque<Queued<B>>,
    /// In the pool's run queue, or being run with more to come.
    scheduled: bool,
    /// Requests submitted and not finished, and their cost.
    requests: usize,
    bytes: usize,
    /// Refusing everything ([`ThreadHost::close`]).
    closed: bool,
    /// A submission was refused since the last finish: tell the host
    /// when there is room.
    refused: bool,
    /// Submissions refused so far.
    refusals: u64,
    /// Threads waiting on `room`.
    waiters: usize,
}

type RoomHook = Box<dyn Fn() + Send + Sync>;

struct Session<B: Backend> {
    server: Arc<Server<B>>,
    pool: Arc<PoolInner>,
    limits: Limits,
    queue: Mutex<Queue<B>>,
    /// A request finished (for waiters for room, and for the drop).
    room: Condvar,
    on_room: OnceLock<RoomHook>,
}

impl<B: Backend> Session<B> {
    fn lock(&self) -> MutexGuard<'_, Queue<B>> {
        // Every critical section leaves the queue consistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fits(&self, q: &Queue<B>, cost: usize) -> bool {
        q.closed
            || q.requests == 0
            || (q.requests < self.limits.max_requests
                && q.bytes.saturating_add(cost) <= self.limits.max_bytes)
    }

    /// A request of `cost` finished (or was never run).
    fn finished(&self, cost: usize) {
        let mut q = self.lock();
        q.requests -= 1;
        q.bytes -= cost;
        let announce = std::mem::take(&mut q.refused);
        if q.waiters > 0 {
            self.room.notify_all();
        }
        drop(q);
        if announce {
            if let Some(f) = self.on_room.get() {
                let _ = catch_unwind(AssertUnwindSafe(f));
            }
        }
    }

    /// A deferred Tflush whose target finished: first in line (on a
    /// closed session it only finishes).
    fn requeue(self: Arc<Self>, ticket: Ticket, job: Box<dyn Job<B>>, cost: usize) {
        let mut q = self.lock();
        if q.closed {
            ticket.cancel();
        }
        q.jobs.push_front(Queued { ticket, job, cost });
        let schedule = !std::mem::replace(&mut q.scheduled, true);
        drop(q);
        if schedule {
            let pool = Arc::clone(&self.pool);
            pool.schedule(self);
        }
    }

    fn run(self: &Arc<Self>, item: Queued<B>) {
        let Queued { ticket, job, cost } = item;
        let me = Arc::clone(self);
        match ticket.defer((job, cost), move |t, (job, cost)| me.requeue(t, job, cost)) {
            // Queued again when its target finishes.
            Ok(()) => {}
            Err((ticket, (job, cost))) => {
                let _ = catch_unwind(AssertUnwindSafe(|| job.run(&self.server, ticket)));
                self.finished(cost);
            }
        }
    }
}

impl<B: Backend> Lane for Session<B> {
    fn run_one(self: Arc<Self>) {
        loop {
            let (item, closed) = {
                let mut q = self.lock();
                let item = q.jobs.pop_front();
                let more = !q.jobs.is_empty();
                if !more {
                    q.scheduled = false;
                }
                if more && !q.closed {
                    // Back in line behind the other sessions, so that
                    // another thread may start the next request meanwhile.
                    self.pool.schedule(Arc::clone(&self) as Arc<dyn Lane>);
                }
                (item, q.closed)
            };
            let Some(item) = item else { return };
            self.run(item);
            if !closed {
                return;
            }
            // Closed: finish everything queued now, none of it starts.
        }
    }
}

/// Runs a [`Server`]'s requests on a [`Pool`]: one session.
///
/// Dropping the host lets the queued requests finish (or, after
/// [`ThreadHost::close`], drops them), waits for the running ones, then
/// lets go of the pool (joining its threads if it was the last user).
pub struct ThreadHost<B: Backend> {
    session: Arc<Session<B>>,
    pool: Pool,
}

impl<B: Backend> ThreadHost<B> {
    /// A host running `server`'s requests on a pool of its own of
    /// `threads` threads (0: as many as
    /// `std::thread::available_parallelism`, at least 2), with the default
    /// [`Limits`].
    ///
    /// # Errors
    /// If a thread cannot be spawned (the threads already started are
    /// stopped again).
    pub fn try_new(server: Arc<Server<B>>, threads: usize) -> std::io::Result<Self> {
        Ok(Self::on_pool(
            server,
            &Pool::new(threads)?,
            Limits::default(),
        ))
    }

    /// [`ThreadHost::try_new`].
    ///
    /// # Panics
    /// If a thread cannot be spawned.
    pub fn new(server: Arc<Server<B>>, threads: usize) -> Self {
        Self::try_new(server, threads).expect("spawning a p9-host thread")
    }

    /// A host running `server`'s requests on `pool`, shared with other
    /// hosts, with at most `limits` in flight.  Bounds of 0 count as 1.
    pub fn on_pool(server: Arc<Server<B>>, pool: &Pool, limits: Limits) -> Self {
        let limits = Limits {
            max_requests: limits.max_requests.max(1),
            max_bytes: limits.max_bytes.max(1),
        };
        let pool = pool.clone();
        ThreadHost {
            session: Arc::new(Session {
                server,
                pool: Arc::clone(&pool.inner),
                limits,
                queue: Mutex::new(Queue {
                    jobs: VecDeque::new(),
                    scheduled: false,
                    requests: 0,
                    bytes: 0,
                    closed: false,
                    refused: false,
                    refusals: 0,
                    waiters: 0,
                }),
                room: Condvar::new(),
                on_room: OnceLock::new(),
            }),
            pool,
        }
    }

    /// This host, calling `f` when a submission
    /// ([`ThreadHost::try_submit_job`]) was refused because the session
    /// was full and a request has finished since: once per refusal, on
    /// the thread that finished the request (a pool thread), with no
    /// lock held.  `f` must not block; it may submit.
    pub fn on_room(self, f: impl Fn() + Send + Sync + 'static) -> Self {
        // A fresh host: never set before.
        let _ = self.session.on_room.set(Box::new(f));
        self
    }

    /// The server this host drives.
    pub fn server(&self) -> &Arc<Server<B>> {
        &self.session.server
    }

    /// The pool running its requests.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Its bounds.
    pub fn limits(&self) -> Limits {
        self.session.limits
    }

    /// Requests in flight (submitted and not finished), their cost in
    /// bytes, and how many submissions were refused for lack of room.
    pub fn in_flight(&self) -> (usize, usize, u64) {
        let q = self.session.lock();
        (q.requests, q.bytes, q.refusals)
    }

    /// Queue one request, unless the session is at its [`Limits`] or
    /// closed: then nothing happens and the request is handed back.
    /// [`Server::receive`] of its bytes runs now, on the caller's thread;
    /// [`Job::run`] later on a pool thread.  Requests are started in
    /// submission order.
    ///
    /// # Errors
    /// [`Refused`], with the job: [`Refusal::Full`] (retry once there is
    /// room: [`ThreadHost::on_room`], [`ThreadHost::wait_room`]) or
    /// [`Refusal::Closed`].
    #[allow(clippy::result_large_err)]
    pub fn try_submit_job(&self, job: Box<dyn Job<B>>) -> Result<(), Refused<B>> {
        let s = &self.session;
        let cost = request_cost(job.request(), s.server.msize());
        let mut q = s.lock();
        if q.closed {
            return Err(Refused {
                job,
                reason: Refusal::Closed,
            });
        }
        if !s.fits(&q, cost) {
            q.refused = true;
            q.refusals += 1;
            return Err(Refused {
                job,
                reason: Refusal::Full,
            });
        }
        // Receiving and queueing under one lock: the pool starts requests
        // in the order the server received them.
        let ticket = s.server.receive(job.request());
        q.requests += 1;
        q.bytes += cost;
        q.jobs.push_back(Queued { ticket, job, cost });
        let schedule = !std::mem::replace(&mut q.scheduled, true);
        drop(q);
        if schedule {
            s.pool.schedule(Arc::clone(s) as Arc<dyn Lane>);
        }
        Ok(())
    }

    /// Wait until a request costing `cost` bytes fits in the session's
    /// bounds and, if a submission was refused, a request has finished
    /// since (so that retrying always follows progress, whatever `cost`
    /// the caller guessed), or the session is closed; for at most
    /// `timeout` (`None`: for ever).  Returns false on timeout.  Must not
    /// be called from a pool thread.
    pub fn wait_room(&self, cost: usize, timeout: Option<Duration>) -> bool {
        let s = &self.session;
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut q = s.lock();
        q.waiters += 1;
        let fits = loop {
            // After a refusal, a request must finish first (which clears
            // `refused`): a retry then always follows some progress.
            if q.closed || (!q.refused && s.fits(&q, cost)) {
                break true;
            }
            match deadline {
                None => q = s.room.wait(q).unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break false;
                    }
                    q = s
                        .room
                        .wait_timeout(q, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        };
        q.waiters -= 1;
        fits
    }

    /// Queue one request, waiting for room first while the session is at
    /// its [`Limits`] (back-pressure on the caller).  On a closed session
    /// the request never starts: it finishes at once, on the caller's
    /// thread, with no reply.  Must not be called from a pool thread.
    pub fn submit_job(&self, job: Box<dyn Job<B>>) {
        let mut job = job;
        loop {
            match self.try_submit_job(job) {
                Ok(()) => return,
                Err(Refused {
                    job: j,
                    reason: Refusal::Full,
                }) => {
                    let cost = request_cost(j.request(), self.server().msize());
                    self.wait_room(cost, None);
                    job = j;
                }
                Err(Refused {
                    job: j,
                    reason: Refusal::Closed,
                }) => {
                    let ticket = self.server().receive(j.request());
                    ticket.cancel();
                    j.run(self.server(), ticket);
                    return;
                }
            }
        }
    }

    /// The transport's peer went away: refuse later submissions, drop the
    /// queued requests (they never start: each completes with no reply,
    /// soon, on a pool thread), and cancel the running ones at their next
    /// check point.  Does not wait.
    pub fn close(&self) {
        let s = &self.session;
        let mut q = s.lock();
        q.closed = true;
        for item in &q.jobs {
            item.ticket.cancel();
        }
        q.refused = false;
        if q.waiters > 0 {
            s.room.notify_all();
        }
        drop(q);
        s.server.cancel_all();
    }

    /// Queue one request (the bytes of exactly one 9P message, or anything
    /// else: the server answers malformed input), waiting for room while
    /// the session is full.  `done` gets the reply bytes, or `None` when
    /// the server sends no reply (the request was flushed, or was too
    /// short to carry a tag).  `done` runs on a pool thread, and before
    /// the Rflush of a Tflush naming this request is delivered.
    pub fn submit(&self, req: Vec<u8>, done: impl FnOnce(Option<Vec<u8>>) + Send + 'static) {
        self.submit_job(Box::new(VecJob {
            req,
            done: Box::new(done),
        }));
    }

    /// [`ThreadHost::submit`], then wait for the reply.
    pub fn call(&self, req: Vec<u8>) -> Option<Vec<u8>> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(req, move |reply| {
            // The receiver only goes away if the caller is gone.
            let _ = tx.send(reply);
        });
        // A callback dropped without being called (it cannot be: the pool
        // calls every one) would read as "no reply".
        rx.recv().ok().flatten()
    }
}

/// A request in a `Vec`, its reply delivered in another.
struct VecJob {
    req: Vec<u8>,
    done: Box<dyn FnOnce(Option<Vec<u8>>) + Send + 'static>,
}

impl<B: Backend> Job<B> for VecJob {
    fn request(&self) -> SgView<'_> {
        SgView::from_slice(&self.req)
    }

    fn run(self: Box<Self>, server: &Server<B>, ticket: Ticket) {
        let VecJob { req, done } = *self;
        let mut buf = Vec::new();
        let mut out = VecReply::new(&mut buf);
        let handled = server.handle(ticket, SgView::from_slice(&req), &mut out);
        let reply = handled.reply_len().map(|n| {
            buf.truncate(n);
            buf
        });
        // Should `done` panic, unwinding still drops `handled` (finishing
        // the request) and the pool thread catches the panic.
        done(reply);
        drop(handled);
    }
}

/// Reply buffers in a `Vec`, sized by the first request for them.
struct VecReply<'v> {
    vec: Option<&'v mut Vec<u8>>,
    seg: [&'v mut [u8]; 1],
}

impl<'v> VecReply<'v> {
    /// At least this much, so that an error reply always fits after a bulk
    /// request asked for less (a .u Rerror carries a message).
    const MIN: usize = 256;

    fn new(vec: &'v mut Vec<u8>) -> Self {
        VecReply {
            vec: Some(vec),
            seg: [&mut []],
        }
    }
}

impl<'v> ReplyBuffers<'v> for VecReply<'v> {
    fn get(&mut self, size: usize) -> &mut [&'v mut [u8]] {
        if let Some(vec) = self.vec.take() {
            vec.resize(size.max(Self::MIN), 0);
            self.seg = [vec.as_mut_slice()];
        }
        &mut self.seg
    }
}

impl<B: Backend> Drop for ThreadHost<B> {
    fn drop(&mut self) {
        let s = &self.session;
        {
            let mut q = s.lock();
            q.waiters += 1;
            while q.requests > 0 {
                q = s.room.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
            q.waiters -= 1;
        }
        // No pool thread may keep the session (and so the server and its
        // backend) past this drop.
        s.pool.wait_released(s);
    }
}

#[cfg(test)]
mod tests;
