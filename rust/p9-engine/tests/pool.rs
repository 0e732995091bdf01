// SPDX-License-Identifier: GPL-2.0-or-later
//! The thread-mode host's pool and sessions (`p9_engine::host`):
//!
//! * one pool serves many sessions, round-robin: a flood queued by one
//!   session does not delay another session's request behind it;
//! * a session's requests and bytes in flight are bounded: beyond them a
//!   submission is refused (or waits), and the host is told when there is
//!   room again;
//! * closing a session drops its queued requests (never run, no reply, no
//!   effect), lets the running ones finish, and refuses later ones;
//! * a host on a shared pool can be dropped while the others go on.
//!
//! Requests are held inside the backend by a gate, so the orderings are
//! forced, not hoped for.  Each test runs under a deadline.

mod common;
mod support_backends;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use p9_client::{Client, Pending, Transport};
use p9_engine::host::{request_cost, Job, Limits, Pool, Refusal, ThreadHost};
use p9_engine::{Config, Server, Ticket};
use p9_native::NativeBackend;
use p9_wire::consts::{dotl_open, getattr};
use p9_wire::{SgView, Tmessage};

use common::TempDir;
use support_backends::{within_deadline, Call, Gate, Gated};

type TestBackend = Gated<NativeBackend>;
type TestHost = ThreadHost<TestBackend>;

const PATIENCE: Duration = Duration::from_secs(20);

/// A transport stamping each completion with a sequence number shared by
/// every session of a test.
struct Stamped {
    host: TestHost,
    clock: Arc<AtomicU64>,
    log: Arc<Mutex<Vec<(u64, u16)>>>,
}

impl Transport for Stamped {
    fn submit(&self, req: Vec<u8>, done: Box<dyn FnOnce(Option<Vec<u8>>) + Send>) {
        let tag = u16::from_le_bytes([req[5], req[6]]);
        let (clock, log) = (Arc::clone(&self.clock), Arc::clone(&self.log));
        self.host.submit(req, move |r| {
            let t = clock.fetch_add(1, Ordering::SeqCst);
            log.lock().unwrap().push((t, tag));
            done(r);
        });
    }
}

struct Env {
    client: Client<Stamped>,
    gate: Arc<Gate>,
    root: u32,
    dir: TempDir,
}

impl Env {
    fn new(name: &str, pool: &Pool, limits: Limits, clock: &Arc<AtomicU64>) -> Env {
        Env::with_hook(name, pool, limits, clock, || {})
    }

    fn with_hook(
        name: &str,
        pool: &Pool,
        limits: Limits,
        clock: &Arc<AtomicU64>,
        on_room: impl Fn() + Send + Sync + 'static,
    ) -> Env {
        let dir = TempDir::new(name);
        std::fs::write(dir.join("data"), b"0123456789").unwrap();
        let backend = Gated::new(common::native_backend(dir.path()));
        let gate = Arc::clone(&backend.gate);
        let server = Arc::new(Server::new(backend, Config::default()));
        let host = ThreadHost::on_pool(server, pool, limits).on_room(on_room);
        let client = Client::new(Stamped {
            host,
            clock: Arc::clone(clock),
            log: Arc::default(),
        });
        let (root, _) = common::session(&client, "9P2000.L");
        Env {
            client,
            gate,
            root,
            dir,
        }
    }

    fn host(&self) -> &TestHost {
        &self.client.transport().host
    }

    fn open(&self, name: &str, flags: u32) -> u32 {
        let (fid, _) = self.client.walk_new(self.root, &[name]).expect("Twalk");
        self.client.lopen(fid, flags).expect("Tlopen");
        fid
    }

    fn log(&self) -> Vec<(u64, u16)> {
        self.client.transport().log.lock().unwrap().clone()
    }

    fn getattr(&self) -> Pending {
        self.client.send(&Tmessage::Getattr {
            fid: self.root,
            request_mask: getattr::BASIC,
        })
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.gate.release();
    }
}

fn settle(p: &Pending, what: &str) -> Option<p9_client::Response> {
    p.wait_timeout(PATIENCE).unwrap_or_else(|| {
        panic!(
            "{what} (tag {}): still in flight after {PATIENCE:?}",
            p.tag()
        )
    })
}

/// A request as raw bytes, with a completion counter, for `try_submit_job`.
struct Raw {
    req: Vec<u8>,
    done: Arc<Mutex<Vec<Option<Vec<u8>>>>>,
}

impl Job<TestBackend> for Raw {
    fn request(&self) -> SgView<'_> {
        SgView::from_slice(&self.req)
    }

    fn run(self: Box<Self>, server: &Server<TestBackend>, ticket: Ticket) {
        let mut buf = vec![0u8; 8192];
        let handled = server.handle(
            ticket,
            SgView::from_slice(&self.req),
            &mut [&mut buf[..]][..],
        );
        let reply = handled.reply_len().map(|n| buf[..n].to_vec());
        self.done.lock().unwrap().push(reply);
        drop(handled);
    }
}

fn raw(msg: &Tmessage<'_>, tag: u16, done: &Arc<Mutex<Vec<Option<Vec<u8>>>>>) -> Box<Raw> {
    Box::new(Raw {
        req: msg.encode_to_vec(tag).unwrap(),
        done: Arc::clone(done),
    })
}

/// One pool thread, held by session A's blocked read; A queues 100
/// requests, then B one.  Once the read returns, B's request runs after at
/// most one more of A's, not after all of them.
#[test]
fn sessions_are_served_round_robin() {
    within_deadline("round robin", || {
        let pool = Pool::new(1).expect("pool");
        let clock = Arc::new(AtomicU64::new(0));
        let a = Env::new("rr-a", &pool, Limits::default(), &clock);
        let b = Env::new("rr-b", &pool, Limits::default(), &clock);
        let fid = a.open("data", dotl_open::RDONLY);
        a.gate.hold(|c| matches!(c, Call::Read { .. }));
        let read = a.client.send(&Tmessage::Read {
            fid,
            offset: 0,
            count: 4,
        });
        a.gate.wait_entered(1);
        let flood: Vec<Pending> = (0..100).map(|_| a.getattr()).collect();
        let mine = b.getattr();
        let start = clock.load(Ordering::SeqCst);
        a.gate.release();
        settle(&read, "the blocked read");
        settle(&mine, "B's request")
            .expect("a reply")
            .expect("Rgetattr");
        for p in &flood {
            settle(p, "A's flood");
        }
        let b_at = b
            .log()
            .iter()
            .find(|(_, tag)| *tag == mine.tag())
            .map(|(t, _)| *t)
            .expect("B's completion");
        let a_before = a
            .log()
            .iter()
            .filter(|(t, _)| *t > start && *t < b_at)
            .count();
        // The read itself, then at most one of the flood.
        assert!(
            a_before <= 2,
            "{a_before} of session A's requests completed before B's one request"
        );
    });
}

/// At most `max_requests` in flight: the next is refused, the room hook
/// fires once a request finishes, and the refused request then goes in.
#[test]
fn requests_in_flight_are_bounded() {
    within_deadline("request bound", || {
        let pool = Pool::new(2).expect("pool");
        let clock = Arc::new(AtomicU64::new(0));
        let limits = Limits {
            max_requests: 4,
            max_bytes: usize::MAX,
        };
        let rooms = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&rooms);
        let e = Env::with_hook("bound-requests", &pool, limits, &clock, move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        let fid = e.open("data", dotl_open::RDONLY);
        let (h, gate) = (e.host(), &e.gate);
        let done = Arc::new(Mutex::new(Vec::new()));
        // A reply reaches the client just before its request finishes.
        support_backends::eventually("idle", || h.in_flight().0 == 0);
        gate.hold(|c| matches!(c, Call::Read { .. }));
        for i in 0..4u16 {
            let read = Tmessage::Read {
                fid,
                offset: 0,
                count: 4,
            };
            assert!(h.try_submit_job(raw(&read, 10 + i, &done)).is_ok());
        }
        gate.wait_entered(2);
        let (n, _, refused) = h.in_flight();
        assert_eq!((n, refused), (4, 0));
        let stat = Tmessage::Getattr {
            fid: e.root,
            request_mask: getattr::BASIC,
        };
        let back = h.try_submit_job(raw(&stat, 20, &done)).unwrap_err();
        assert_eq!(back.reason, Refusal::Full);
        assert_eq!(h.in_flight().2, 1);
        assert!(
            !h.wait_room(0, Some(Duration::from_millis(50))),
            "room while full"
        );
        assert_eq!(rooms.load(Ordering::SeqCst), 0);
        gate.release();
        support_backends::eventually("the room hook", || rooms.load(Ordering::SeqCst) >= 1);
        assert!(
            h.try_submit_job(back.job).is_ok(),
            "the refused request, again"
        );
        support_backends::eventually("all done", || h.in_flight().0 == 0);
        let replies = done.lock().unwrap();
        assert_eq!(replies.len(), 5);
        assert!(replies.iter().all(Option::is_some));
    });
}

/// Bytes in flight are bounded too, counting a Tread's count; a request
/// bigger than the bound goes in alone.
#[test]
fn bytes_in_flight_are_bounded() {
    within_deadline("byte bound", || {
        let pool = Pool::new(2).expect("pool");
        let clock = Arc::new(AtomicU64::new(0));
        let limits = Limits {
            max_requests: 1000,
            max_bytes: 10_000,
        };
        let e = Env::new("bound-bytes", &pool, limits, &clock);
        let fid = e.open("data", dotl_open::RDWR);
        let read = |count| Tmessage::Read {
            fid,
            offset: 0,
            count,
        };
        let enc = read(4000).encode_to_vec(1).unwrap();
        assert_eq!(
            request_cost(SgView::from_slice(&enc), 65536),
            enc.len() + 4000
        );
        assert_eq!(
            request_cost(SgView::from_slice(&enc), 1000),
            enc.len() + 1000
        );
        let h = e.host();
        support_backends::eventually("idle", || h.in_flight().0 == 0);
        e.gate
            .hold(|c| matches!(c, Call::Read { .. } | Call::Write { .. }));
        let done = Arc::new(Mutex::new(Vec::new()));
        assert!(h.try_submit_job(raw(&read(4000), 1, &done)).is_ok());
        assert!(h.try_submit_job(raw(&read(4000), 2, &done)).is_ok());
        let back = h.try_submit_job(raw(&read(4000), 3, &done)).unwrap_err();
        assert_eq!(back.reason, Refusal::Full);
        // The request bound has room and 0 bytes fit, but after a refusal
        // waiting for room waits for a request to finish (no busy retry).
        assert!(!h.wait_room(0, Some(Duration::from_millis(50))));
        let small = Tmessage::Write {
            fid,
            offset: 0,
            data: SgView::from_slice(&[7u8; 100]),
        };
        assert!(h.try_submit_job(raw(&small, 4, &done)).is_ok());
        e.gate.wait_entered(2);
        e.gate.release();
        support_backends::eventually("drained", || h.in_flight().0 == 0);
        // Alone, a request costing more than the bound goes in.
        let big = vec![1u8; 20_000];
        let w = Tmessage::Write {
            fid,
            offset: 0,
            data: SgView::from_slice(&big),
        };
        e.gate.hold(|c| matches!(c, Call::Write { .. }));
        assert!(h.try_submit_job(raw(&w, 5, &done)).is_ok());
        e.gate.wait_entered(1);
        assert_eq!(
            h.try_submit_job(raw(&small, 6, &done)).unwrap_err().reason,
            Refusal::Full
        );
        e.gate.release();
        support_backends::eventually("drained", || h.in_flight().0 == 0);
        assert_eq!(std::fs::read(e.dir.join("data")).unwrap(), big);
    });
}

/// Closing a session: the queued requests never run (no reply, no
/// effect), the running one finishes, later submissions are refused, and
/// the host drops at once; another session on the pool goes on.
#[test]
fn close_drops_queued_work() {
    within_deadline("close", || {
        let pool = Pool::new(1).expect("pool");
        let clock = Arc::new(AtomicU64::new(0));
        let e = Env::new("close", &pool, Limits::default(), &clock);
        let other = Env::new("close-other", &pool, Limits::default(), &clock);
        let rfid = e.open("data", dotl_open::RDONLY);
        let wfid = e.open("data", dotl_open::WRONLY);
        e.gate.hold(|c| matches!(c, Call::Read { .. }));
        let read = e.client.send(&Tmessage::Read {
            fid: rfid,
            offset: 0,
            count: 4,
        });
        e.gate.wait_entered(1);
        let writes: Vec<Pending> = (0..50u64)
            .map(|i| {
                e.client.send(&Tmessage::Write {
                    fid: wfid,
                    offset: 100 + i,
                    data: SgView::from_slice(b"X"),
                })
            })
            .collect();
        e.host().close();
        let done = Arc::new(Mutex::new(Vec::new()));
        let refused = e
            .host()
            .try_submit_job(raw(&Tmessage::Clunk { fid: rfid }, 999, &done))
            .unwrap_err();
        assert_eq!(refused.reason, Refusal::Closed);
        e.gate.release();
        assert!(
            settle(&read, "the running read").is_some(),
            "it was running: it replies"
        );
        for w in &writes {
            assert!(
                settle(w, "a dropped write").is_none(),
                "a dropped write replied"
            );
        }
        assert_eq!(
            std::fs::read(e.dir.join("data")).unwrap(),
            b"0123456789",
            "a dropped write reached the file"
        );
        assert!(e
            .gate
            .seen()
            .iter()
            .all(|c| !matches!(c, Call::Write { .. })));
        // The read's reply goes out before its worker counts it finished;
        // the dropped writes never counted.
        let deadline = std::time::Instant::now() + PATIENCE;
        while e.host().in_flight().0 != 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(e.host().in_flight().0, 0);
        // A blocking submit on a closed session ends at once, unanswered.
        assert!(settle(&e.getattr(), "a request after close").is_none());
        drop(e);
        settle(&other.getattr(), "the other session")
            .expect("reply")
            .expect("Rgetattr");
    });
}

/// Dropping one host of a shared pool waits only for its own requests;
/// the pool keeps serving the others, and stops with its last user.
#[test]
fn hosts_come_and_go_on_a_shared_pool() {
    within_deadline("hosts on a shared pool", || {
        let pool = Pool::new(2).expect("pool");
        assert_eq!(pool.thread_count(), 2);
        let clock = Arc::new(AtomicU64::new(0));
        let keep = Env::new("share-keep", &pool, Limits::default(), &clock);
        for i in 0..20 {
            let e = Env::new(&format!("share-{i}"), &pool, Limits::default(), &clock);
            let ps: Vec<Pending> = (0..10).map(|_| e.getattr()).collect();
            for p in &ps {
                settle(p, "request").expect("reply").expect("Rgetattr");
            }
            drop(e);
            settle(&keep.getattr(), "the lasting session")
                .expect("reply")
                .expect("Rgetattr");
        }
        drop(pool);
        // The hosts hold the pool: still served.
        settle(&keep.getattr(), "after the handle went")
            .expect("reply")
            .expect("Rgetattr");
    });
}
