// SPDX-License-Identifier: GPL-2.0-or-later
//! The thread-mode host: a pool of request threads driving a [`Server`].
//!
//! For hosts without coroutines (tests, benchmarks, hypervisors that give
//! the engine its own threads).  [`ThreadHost::submit`] calls
//! [`Server::receive`] at once on the caller's thread, so requests are
//! registered in arrival order and a later Tflush finds an earlier request
//! even before it starts running; [`Server::handle`] then runs on one of the
//! host's threads (named `p9-host-N`), where `offload::run_in_worker` runs
//! its function inline and waiting (Tflush, the rename lock) parks the
//! thread.
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
use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use p9_wire::SgView;

use crate::backend::Backend;
use crate::server::{ReplyBuffers, Server, Ticket};

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

/// The queue shared by the submitters and the pool threads.
struct Queue<B: Backend> {
    jobs: VecDeque<(Ticket, Box<dyn Job<B>>)>,
    /// Set by `Drop`: threads exit once the queue is empty.
    shutdown: bool,
}

struct Shared<B: Backend> {
    queue: Mutex<Queue<B>>,
    ready: Condvar,
}

impl<B: Backend> Shared<B> {
    fn lock(&self) -> MutexGuard<'_, Queue<B>> {
        // Every critical section leaves the queue consistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs a [`Server`]'s requests on a pool of threads.
///
/// Dropping the host lets the queued requests finish, then joins the
/// threads.
pub struct ThreadHost<B: Backend> {
    server: Arc<Server<B>>,
    shared: Arc<Shared<B>>,
    threads: Vec<JoinHandle<()>>,
}

impl<B: Backend> ThreadHost<B> {
    /// A host running `server`'s requests on `threads` threads (0: as many
    /// as `std::thread::available_parallelism`, at least 2).
    ///
    /// # Errors
    /// If a thread cannot be spawned (the threads already started are
    /// stopped again).
    pub fn try_new(server: Arc<Server<B>>, threads: usize) -> std::io::Result<Self> {
        let n = if threads == 0 {
            std::thread::available_parallelism()
                .map(NonZeroUsize::get)
                .unwrap_or(2)
                .max(2)
        } else {
            threads
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                shutdown: false,
            }),
            ready: Condvar::new(),
        });
        let mut host = ThreadHost {
            server,
            shared,
            threads: Vec::with_capacity(n),
        };
        for i in 0..n {
            let server = Arc::clone(&host.server);
            let shared = Arc::clone(&host.shared);
            let t = std::thread::Builder::new()
                .name(format!("p9-host-{i}"))
                .spawn(move || worker(&server, &shared))?;
            host.threads.push(t);
        }
        Ok(host)
    }

    /// [`ThreadHost::try_new`].
    ///
    /// # Panics
    /// If a thread cannot be spawned.
    pub fn new(server: Arc<Server<B>>, threads: usize) -> Self {
        Self::try_new(server, threads).expect("spawning a p9-host thread")
    }

    /// The server this host drives.
    pub fn server(&self) -> &Arc<Server<B>> {
        &self.server
    }

    /// Queue one request: [`Server::receive`] of its bytes runs now, on the
    /// caller's thread; [`Job::run`] later on a pool thread.  A panic in
    /// it is caught on the pool thread.  Requests are started in submission
    /// order.
    pub fn submit_job(&self, job: Box<dyn Job<B>>) {
        // Receiving and queueing under one lock: the pool starts requests
        // in the order the server received them, so a Tflush never waits
        // for a request queued behind it.
        let mut q = self.shared.lock();
        let ticket = self.server.receive(job.request());
        q.jobs.push_back((ticket, job));
        drop(q);
        self.shared.ready.notify_one();
    }

    /// Queue one request (the bytes of exactly one 9P message, or anything
    /// else: the server answers malformed input).  `done` gets the reply
    /// bytes, or `None` when the server sends no reply (the request was
    /// flushed, or was too short to carry a tag).  `done` runs on a pool
    /// thread, and before the Rflush of a Tflush naming this request is
    /// delivered.
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
        self.shared.lock().shutdown = true;
        self.shared.ready.notify_all();
        for t in self.threads.drain(..) {
            // Panics are caught per request; a thread that still died has
            // nothing left to clean up.
            let _ = t.join();
        }
    }
}

/// A pool thread: run jobs until shut down and the queue is empty.
fn worker<B: Backend>(server: &Server<B>, shared: &Shared<B>) {
    loop {
        let (ticket, job) = {
            let mut q = shared.lock();
            loop {
                if let Some(job) = q.jobs.pop_front() {
                    break job;
                }
                if q.shutdown {
                    return;
                }
                q = shared.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let _ = catch_unwind(AssertUnwindSafe(|| job.run(server, ticket)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{IoSlice, IoSliceMut};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use p9_wire::errno::ENOSYS;
    use p9_wire::types::StatFs;
    use p9_wire::{Proto, Rmessage, Tmessage};

    use crate::backend::{Attr, Cred, DirEntry, Result, SetAttr};
    use crate::Config;

    /// A backend that refuses everything (Tversion needs none); `attach`
    /// first waits for the gate to open.
    #[derive(Default)]
    struct Nothing {
        gate: Arc<(Mutex<bool>, Condvar)>,
    }

    impl Backend for Nothing {
        type Node = ();
        type Handle = ();

        fn attach(&self, _: &[u8], _: &Cred) -> Result<((), Attr)> {
            let (open, cv) = &*self.gate;
            let mut open = open.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            Err(ENOSYS)
        }
        fn walk(&self, _: &(), _: &[&[u8]]) -> Result<Vec<((), Attr)>> {
            Err(ENOSYS)
        }
        fn clone_node(&self, _: &()) -> Result<()> {
            Err(ENOSYS)
        }
        fn getattr(&self, _: &()) -> Result<Attr> {
            Err(ENOSYS)
        }
        fn setattr(&self, _: &(), _: Option<&()>, _: &SetAttr) -> Result<()> {
            Err(ENOSYS)
        }
        fn open(&self, _: &(), _: i32) -> Result<()> {
            Err(ENOSYS)
        }
        fn opendir(&self, _: &()) -> Result<()> {
            Err(ENOSYS)
        }
        fn create(&self, _: &(), _: &[u8], _: i32, _: u32, _: &Cred) -> Result<((), (), Attr)> {
            Err(ENOSYS)
        }
        fn mkdir(&self, _: &(), _: &[u8], _: u32, _: &Cred) -> Result<Attr> {
            Err(ENOSYS)
        }
        fn symlink(&self, _: &(), _: &[u8], _: &[u8], _: &Cred) -> Result<Attr> {
            Err(ENOSYS)
        }
        fn mknod(&self, _: &(), _: &[u8], _: u32, _: u64, _: &Cred) -> Result<Attr> {
            Err(ENOSYS)
        }
        fn link(&self, _: &(), _: &(), _: &[u8]) -> Result<()> {
            Err(ENOSYS)
        }
        fn readlink(&self, _: &()) -> Result<Vec<u8>> {
            Err(ENOSYS)
        }
        fn rename(&self, _: &(), _: &[u8], _: &(), _: &[u8]) -> Result<()> {
            Err(ENOSYS)
        }
        fn unlink(&self, _: &(), _: &[u8], _: bool) -> Result<()> {
            Err(ENOSYS)
        }
        fn remove(&self, _: &()) -> Result<()> {
            Err(ENOSYS)
        }
        fn read(&self, _: &(), _: u64, _: &mut [IoSliceMut<'_>]) -> Result<usize> {
            Err(ENOSYS)
        }
        fn write(&self, _: &(), _: u64, _: &[IoSlice<'_>]) -> Result<usize> {
            Err(ENOSYS)
        }
        fn fsync(&self, _: &(), _: bool) -> Result<()> {
            Err(ENOSYS)
        }
        fn readdir(
            &self,
            _: &(),
            _: &(),
            _: u64,
            _: bool,
            _: &mut dyn FnMut(&DirEntry<'_>) -> bool,
        ) -> Result<()> {
            Err(ENOSYS)
        }
        fn statfs(&self, _: &()) -> Result<StatFs> {
            Err(ENOSYS)
        }
    }

    fn host(threads: usize) -> ThreadHost<Nothing> {
        ThreadHost::new(
            Arc::new(Server::new(Nothing::default(), Config::default())),
            threads,
        )
    }

    fn version(tag: u16, msize: u32) -> Vec<u8> {
        Tmessage::Version {
            msize,
            version: "9P2000.L".into(),
        }
        .encode_to_vec(tag)
        .unwrap()
    }

    #[test]
    fn version_round_trip() {
        let h = host(2);
        let reply = h.call(version(0xffff, 8192)).expect("a reply");
        let (tag, msg) = Rmessage::decode_slice(&reply, Proto::DotL, 8192).unwrap();
        assert_eq!(tag, 0xffff);
        assert_eq!(
            msg,
            Rmessage::Version {
                msize: 8192,
                version: "9P2000.L".into()
            }
        );
        assert_eq!(h.server().msize(), 8192);
        assert_eq!(h.server().proto(), Proto::DotL);
    }

    #[test]
    fn replies_carry_the_request_tag() {
        let h = host(2);
        for tag in [0, 1, 0x1234, 0xfffe, 0xffff] {
            let reply = h.call(version(tag, 8192)).expect("a reply");
            let hdr = p9_wire::Header::peek(SgView::from_slice(&reply)).unwrap();
            assert_eq!(hdr.tag, tag);
            assert_eq!(hdr.size as usize, reply.len());
        }
    }

    #[test]
    fn flushed_reply_is_delivered_before_rflush() {
        let h = host(4);
        h.call(version(0xffff, 8192)).expect("Rversion");
        let gate = Arc::clone(&h.server().backend().gate);
        let order = Arc::new(Mutex::new(Vec::new()));
        let attach = Tmessage::Attach {
            fid: 1,
            afid: u32::MAX,
            uname: "root".into(),
            aname: "".into(),
            n_uname: 0,
        };
        let o = Arc::clone(&order);
        h.submit(attach.encode_to_vec(7).unwrap(), move |r| {
            // Slow down the flushed request's delivery: the Rflush must
            // still come after it.
            std::thread::sleep(Duration::from_millis(50));
            o.lock().unwrap().push(("attach", r.is_some()));
        });
        let (tx, rx) = mpsc::channel();
        let o = Arc::clone(&order);
        let flush = Tmessage::Flush { oldtag: 7 };
        h.submit(flush.encode_to_vec(8).unwrap(), move |r| {
            o.lock().unwrap().push(("flush", r.is_some()));
            tx.send(()).unwrap();
        });
        std::thread::sleep(Duration::from_millis(50));
        {
            let (open, cv) = &*gate;
            *open.lock().unwrap() = true;
            cv.notify_all();
        }
        rx.recv_timeout(Duration::from_secs(10)).expect("Rflush");
        let order = order.lock().unwrap().clone();
        assert_eq!(order.len(), 2, "{order:?}");
        assert_eq!(order[0].0, "attach", "{order:?}");
        assert_eq!(order[1], ("flush", true), "{order:?}");
    }

    #[test]
    fn too_short_request_gets_no_reply() {
        let h = host(2);
        assert_eq!(h.call(vec![1, 2, 3]), None);
        // The host keeps working afterwards.
        assert!(h.call(version(1, 8192)).is_some());
    }

    #[test]
    fn default_thread_count_is_at_least_two() {
        let h = host(0);
        assert!(h.threads.len() >= 2);
        for t in &h.threads {
            let name = t.thread().name().unwrap();
            assert!(name.starts_with("p9-host-"), "{name}");
        }
    }

    #[test]
    fn drop_finishes_queued_requests() {
        let replied = Arc::new(AtomicUsize::new(0));
        {
            let h = host(2);
            for tag in 0..64 {
                let replied = Arc::clone(&replied);
                h.submit(version(tag, 8192), move |r| {
                    assert!(r.is_some());
                    replied.fetch_add(1, Ordering::SeqCst);
                });
            }
        }
        assert_eq!(replied.load(Ordering::SeqCst), 64);
    }

    #[test]
    fn many_submitters() {
        let h = host(4);
        std::thread::scope(|s| {
            for t in 0..8u16 {
                let h = &h;
                s.spawn(move || {
                    for i in 0..50u16 {
                        let tag = t * 100 + i;
                        let reply = h.call(version(tag, 8192)).unwrap();
                        let hdr = p9_wire::Header::peek(SgView::from_slice(&reply)).unwrap();
                        assert_eq!(hdr.tag, tag);
                    }
                });
            }
        });
    }

    #[test]
    fn panicking_callback_keeps_the_pool_alive() {
        let h = host(1);
        h.submit(version(1, 8192), |_| {
            panic!("callback panics (expected in this test)")
        });
        // The single thread survives and serves the next request.
        let (tx, rx) = mpsc::channel();
        h.submit(version(2, 8192), move |r| tx.send(r.is_some()).unwrap());
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(true));
    }
}
