// SPDX-License-Identifier: GPL-2.0-or-later
//! Tflushes naming Tflushes (thread mode), as a hostile client sends them:
//! two naming each other, chains, a cycle of three, a random burst,
//! flushes of flushes of a read blocked in the backend, and as many
//! Tflushes as the pool has threads.  Every request must end within a
//! bounded time, with a reply or, for a request other than a Tflush that a
//! later Tflush named, no reply; every Tflush gets its Rflush (as in 9p.c,
//! even one a later Tflush named, so that a client learns the request it
//! named is over); a flushed request's reply (if any) precedes the Rflush
//! of the Tflush naming it; later requests are answered, and the server
//! can be reset and freed.
//!
//! Each test runs under a deadline: a deadlock fails it rather than hangs
//! the run (the stuck host is then leaked).

mod common;
mod support_backends;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use p9_client::{Client, Pending, Response};
use p9_engine::host::{Pool, ThreadHost};
use p9_engine::{Config, Server};
use p9_native::NativeBackend;
use p9_wire::consts::{dotl_open, getattr};
use p9_wire::msgtype::{RFLUSH, RREAD, TFLUSH};
use p9_wire::{Rmessage, Tmessage};

use common::TempDir;
use support_backends::{within_deadline, Call, Event, Gate, Gated, Recorder};

type TestBackend = Gated<NativeBackend>;
type TestHost = ThreadHost<TestBackend>;

/// How long one request may take to end before the test calls it stuck.
const PATIENCE: Duration = Duration::from_secs(20);

struct Env {
    // Dropped first: stops the host (the gate is released by `Drop`).
    client: Client<Recorder<TestHost>>,
    gate: Arc<Gate>,
    root: u32,
    _dir: TempDir,
}

impl Env {
    fn new(name: &str, threads: usize) -> Env {
        let pool = Pool::new(threads).expect("pool");
        Env::on_pool(name, &pool)
    }

    fn on_pool(name: &str, pool: &Pool) -> Env {
        let dir = TempDir::new(name);
        let backend = Gated::new(common::native_backend(dir.path()));
        let gate = Arc::clone(&backend.gate);
        let server = Arc::new(Server::new(backend, Config::default()));
        let host = ThreadHost::on_pool(server, pool, Default::default());
        let client = Client::new(Recorder::new(host));
        let (root, _) = common::session(&client, "9P2000.L");
        std::fs::write(dir.join("data"), b"0123456789").unwrap();
        Env {
            client,
            gate,
            root,
            _dir: dir,
        }
    }

    fn server(&self) -> &Arc<Server<TestBackend>> {
        self.client.transport().inner.server()
    }

    fn recorder(&self) -> &Recorder<TestHost> {
        self.client.transport()
    }

    fn open_data(&self) -> u32 {
        let (fid, _) = self.client.walk_new(self.root, &["data"]).expect("Twalk");
        self.client.lopen(fid, dotl_open::RDONLY).expect("Tlopen");
        fid
    }

    /// Hold every pool thread inside a backend read: `n` Treads, each
    /// blocked in the gate.
    fn block_pool(&self, n: usize) -> Vec<Pending> {
        let fid = self.open_data();
        self.gate.hold(|c| matches!(c, Call::Read { .. }));
        let reads: Vec<Pending> = (0..n)
            .map(|i| self.client.send(&tread(fid, i as u64)))
            .collect();
        self.gate.wait_entered(n);
        reads
    }

    fn flush(&self, tag: u16, oldtag: u16) -> Pending {
        self.client.send_with_tag(tag, &Tmessage::Flush { oldtag })
    }

    fn getattr_with_tag(&self, tag: u16) -> Pending {
        self.client.send_with_tag(
            tag,
            &Tmessage::Getattr {
                fid: self.root,
                request_mask: getattr::BASIC,
            },
        )
    }

    /// The session still works, and the server resets (every request
    /// finished) within the deadline; then a new session starts.
    fn still_serves_and_resets(&self) {
        let st = self
            .client
            .getattr(self.root, getattr::BASIC)
            .expect("Tgetattr after the flushes");
        assert!(st.qid.typ & 0x80 != 0);
        let server = Arc::clone(self.server());
        within_deadline("reset after the flushes", move || server.reset());
        assert_eq!(self.server().stats().active, 0);
        common::session_on(&self.client, "9P2000.L", self.root);
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.gate.release();
    }
}

fn tread(fid: u32, offset: u64) -> Tmessage<'static> {
    Tmessage::Read {
        fid,
        offset,
        count: 4,
    }
}

/// Wait (bounded) for `p` to end: its reply, or `None` for no reply.
fn settle(p: &Pending, what: &str) -> Option<Response> {
    p.wait_timeout(PATIENCE).unwrap_or_else(|| {
        panic!(
            "{what} (tag {}): still in flight after {PATIENCE:?}",
            p.tag()
        )
    })
}

fn is_rflush(r: &Option<Response>) -> bool {
    matches!(r, Some(Ok(reply)) if matches!(reply.msg(), Rmessage::Flush))
}

/// The one completion of the request tagged `tag` of type `typ`.
fn position(events: &[Event], tag: u16, typ: u8) -> usize {
    let found: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.tag == Some(tag) && e.req_type == Some(typ))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(found.len(), 1, "completions of tag {tag}: {events:?}");
    found[0]
}

/// Run `f` on its own thread, failing the test if it does not finish in
/// time (a deadlock must fail the test, not hang the run).
fn bounded(name: &'static str, f: impl FnOnce() + Send + 'static) {
    within_deadline(name, f);
}

/// Two Tflushes naming each other, sent back to back while the pool is
/// busy (so both are received before either runs): the first names a tag
/// not in flight when it arrived, the second names the first.  Both end;
/// the second gets its Rflush, after the first's reply if it has one.
#[test]
fn two_flushes_naming_each_other() {
    bounded("two flushes naming each other", || {
        let e = Env::new("flush-mutual", 2);
        let reads = e.block_pool(2);
        e.recorder().clear();
        let f1 = e.flush(1, 2);
        let f2 = e.flush(2, 1);
        e.gate.release();
        for r in reads {
            settle(&r, "blocking Tread").expect("Rread").expect("Rread");
        }
        let r1 = settle(&f1, "Tflush 1 naming 2");
        let r2 = settle(&f2, "Tflush 2 naming 1");
        assert!(is_rflush(&r2), "the second Tflush: {r2:?}");
        assert!(r1.is_none() || is_rflush(&r1), "the first Tflush: {r1:?}");
        if r1.is_some() {
            let ev = e.recorder().events();
            assert!(
                position(&ev, 1, TFLUSH) < position(&ev, 2, TFLUSH),
                "{ev:?}"
            );
        }
        e.still_serves_and_resets();

        // And as they come, with the pool idle, many times over.
        for round in 0..50u16 {
            let (a, b) = (100 + 2 * round, 101 + 2 * round);
            let f1 = e.flush(a, b);
            let f2 = e.flush(b, a);
            let r1 = settle(&f1, "Tflush naming the next");
            let r2 = settle(&f2, "Tflush naming the previous");
            assert!(
                is_rflush(&r1) && is_rflush(&r2),
                "round {round}: {r1:?} {r2:?}"
            );
        }
        e.still_serves_and_resets();
    });
}

/// Chains: each Tflush naming the one sent after it (forward), and each
/// naming the one sent before it (backward).
#[test]
fn flush_chains() {
    bounded("flush chains", || {
        const N: u16 = 8;
        let e = Env::new("flush-chains", 2);
        let reads = e.block_pool(2);
        e.recorder().clear();
        // Forward: 10 names 11, ..., 17 names 18 (never used).
        let fwd: Vec<Pending> = (0..N).map(|i| e.flush(10 + i, 11 + i)).collect();
        // Backward: 30 names 29 (never used), 31 names 30, ...
        let back: Vec<Pending> = (0..N).map(|i| e.flush(30 + i, 29 + i)).collect();
        e.gate.release();
        for r in reads {
            settle(&r, "blocking Tread");
        }
        // Forward: none was in flight when its Tflush arrived.
        for p in &fwd {
            let r = settle(p, "forward chain");
            assert!(is_rflush(&r), "tag {}: {r:?}", p.tag());
        }
        let outcomes: Vec<Option<Response>> =
            back.iter().map(|p| settle(p, "backward chain")).collect();
        // The last one is named by nothing: it answers.
        assert!(is_rflush(&outcomes[N as usize - 1]));
        let ev = e.recorder().events();
        for i in 0..N as usize - 1 {
            assert!(
                outcomes[i].is_none() || is_rflush(&outcomes[i]),
                "{i}: {:?}",
                outcomes[i]
            );
            // A flushed request ends before the Rflush naming it.
            let (t, next) = (30 + i as u16, 31 + i as u16);
            if is_rflush(&outcomes[i + 1]) {
                assert!(
                    position(&ev, t, TFLUSH) < position(&ev, next, TFLUSH),
                    "{ev:?}"
                );
            }
        }
        e.still_serves_and_resets();
    });
}

/// A cycle of three: 1 names 3, 2 names 1, 3 names 2.
#[test]
fn flush_cycle_of_three() {
    bounded("a cycle of three Tflushes", || {
        let e = Env::new("flush-cycle", 2);
        let reads = e.block_pool(2);
        e.recorder().clear();
        let fs = [e.flush(1, 3), e.flush(2, 1), e.flush(3, 2)];
        e.gate.release();
        for r in reads {
            settle(&r, "blocking Tread");
        }
        let rs: Vec<Option<Response>> = fs.iter().map(|p| settle(p, "cycle")).collect();
        let ev = e.recorder().events();
        for (i, r) in rs.iter().enumerate() {
            assert!(is_rflush(r), "Tflush {}: {r:?}", i + 1);
        }
        for (flushed, by) in [(1u16, 2u16), (2, 3)] {
            assert!(
                position(&ev, flushed, TFLUSH) < position(&ev, by, TFLUSH),
                "{ev:?}"
            );
        }
        e.still_serves_and_resets();
    });
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// A burst of 96 requests, two thirds Tflushes naming random tags of the
/// burst (before or after them, themselves, each other), the rest Tgetattrs
/// and Treads, sent while the pool is busy, several times over.  Every
/// request ends; only a request a later Tflush named may go unanswered;
/// every Rflush comes after the end of the request its Tflush named.
#[test]
fn flush_burst() {
    bounded("a burst of Tflushes", || {
        const N: u16 = 96;
        let e = Env::new("flush-burst", 3);
        let fid = e.open_data();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..6 {
            let reads = e.block_pool(3);
            e.recorder().clear();
            let base = 1000 + round * 200;
            // (tag, Some(oldtag) for a Tflush)
            let plan: Vec<(u16, Option<u16>)> = (0..N)
                .map(|i| {
                    let tag = base + i;
                    match rng.below(3) {
                        0 => (tag, None),
                        _ => (tag, Some(base + rng.below(u64::from(N)) as u16)),
                    }
                })
                .collect();
            let sent: Vec<Pending> = plan
                .iter()
                .map(|&(tag, old)| match old {
                    Some(old) => e.flush(tag, old),
                    None if tag % 2 == 0 => e.getattr_with_tag(tag),
                    None => e.client.send_with_tag(tag, &tread(fid, 0)),
                })
                .collect();
            e.gate.release();
            for r in reads {
                settle(&r, "blocking Tread");
            }
            let outcomes: Vec<Option<Response>> =
                sent.iter().map(|p| settle(p, "burst request")).collect();
            let ev = e.recorder().events();
            for (i, &(tag, old)) in plan.iter().enumerate() {
                // Named by a Tflush sent after it?
                let named_later = plan[i + 1..].iter().any(|&(_, o)| o == Some(tag));
                if outcomes[i].is_none() {
                    assert!(
                        named_later,
                        "request {tag} got no reply though no Tflush named it"
                    );
                }
                if let Some(old) = old {
                    assert!(
                        outcomes[i].is_none() || is_rflush(&outcomes[i]),
                        "Tflush {tag}: {:?}",
                        outcomes[i]
                    );
                    // Its target: the request tagged `old` sent before it.
                    let target = plan[..i].iter().position(|&(t, _)| t == old);
                    if let (Some(t), true) = (target, is_rflush(&outcomes[i])) {
                        let typ = match plan[t].1 {
                            Some(_) => TFLUSH,
                            None if old % 2 == 0 => p9_wire::msgtype::TGETATTR,
                            None => p9_wire::msgtype::TREAD,
                        };
                        assert!(
                            position(&ev, old, typ) < position(&ev, tag, TFLUSH),
                            "Rflush {tag} before the end of {old}: {ev:?}"
                        );
                    }
                }
            }
            let ours = ev
                .iter()
                .filter(|x| x.tag.is_some_and(|t| (base..base + N).contains(&t)))
                .count();
            assert_eq!(ours, N as usize, "one completion per request");
        }
        e.still_serves_and_resets();
    });
}

/// Tflushes of Tflushes of a read blocked in the backend: while the read
/// is blocked, the Tflushes hold no thread (another request is answered on
/// the pool's other thread); once it returns, its reply comes first, then
/// the last Tflush's Rflush; the others end too.
#[test]
fn flushes_of_flushes_of_a_blocked_read() {
    bounded("flushes of flushes of a blocked read", || {
        let e = Env::new("flush-of-flush", 2);
        let fid = e.open_data();
        e.recorder().clear();
        e.gate.hold(|c| matches!(c, Call::Read { .. }));
        let read = e.client.send_with_tag(50, &tread(fid, 0));
        e.gate.wait_entered(1);
        let f1 = e.flush(51, 50);
        let f2 = e.flush(52, 51);
        let f3 = e.flush(53, 52);
        // The read is blocked and the flushes wait: the other thread is
        // free all the same.
        let g = e.getattr_with_tag(60);
        let r = settle(&g, "Tgetattr while Tflushes wait for a blocked read");
        assert!(matches!(r, Some(Ok(_))), "{r:?}");
        for p in [&read, &f1, &f2, &f3] {
            assert!(
                !p.is_done(),
                "tag {} ended while the read is blocked",
                p.tag()
            );
        }
        e.gate.release();
        let rr = settle(&read, "the blocked Tread");
        match &rr {
            Some(Ok(reply)) => assert!(matches!(reply.msg(), Rmessage::Read { .. })),
            other => panic!("the read was in its backend call: it replies ({other:?})"),
        }
        let outs = [
            settle(&f1, "Tflush 51"),
            settle(&f2, "Tflush 52"),
            settle(&f3, "Tflush 53"),
        ];
        for (i, o) in outs.iter().enumerate() {
            assert!(is_rflush(o), "{i}: {o:?}");
        }
        let ev = e.recorder().events();
        let read_at = position(&ev, 50, p9_wire::msgtype::TREAD);
        assert_eq!(ev[read_at].reply_type, Some(RREAD));
        // The read, then each Tflush in turn.
        let at: Vec<usize> = (51..=53).map(|t| position(&ev, t, TFLUSH)).collect();
        assert!(read_at < at[0] && at[0] < at[1] && at[1] < at[2], "{ev:?}");
        assert_eq!(ev[at[2]].reply_type, Some(RFLUSH));
        e.still_serves_and_resets();
    });
}

/// As many Tflushes as the pool has threads.  (a) Each names a request
/// sent after it (a tag not in flight when the Tflush arrived): answered
/// at once, and the later requests run.  (b) Each names a read blocked in
/// the backend: they hold no thread, so a later request is answered while
/// the read is still blocked.
#[test]
fn tflushes_cannot_hold_the_pool() {
    bounded("Tflushes holding every thread", || {
        let e = Env::new("flush-pool", 2);
        let reads = e.block_pool(2);
        let f1 = e.flush(70, 80);
        let f2 = e.flush(71, 81);
        let g1 = e.getattr_with_tag(80);
        let g2 = e.getattr_with_tag(81);
        e.gate.release();
        for r in reads {
            settle(&r, "blocking Tread");
        }
        for (p, what) in [(&f1, "Tflush 70"), (&f2, "Tflush 71")] {
            let r = settle(p, what);
            assert!(is_rflush(&r), "{what}: {r:?}");
        }
        for (p, what) in [(&g1, "Tgetattr 80"), (&g2, "Tgetattr 81")] {
            let r = settle(p, what);
            assert!(matches!(r, Some(Ok(_))), "{what}: {r:?}");
        }

        // (b)
        let fid = e.open_data();
        e.gate.hold(|c| matches!(c, Call::Read { .. }));
        let read = e.client.send_with_tag(90, &tread(fid, 0));
        e.gate.wait_entered(1);
        let fa = e.flush(91, 90);
        let fb = e.flush(92, 90);
        let g = e.getattr_with_tag(93);
        let r = settle(&g, "Tgetattr behind two Tflushes of a blocked read");
        assert!(matches!(r, Some(Ok(_))), "{r:?}");
        assert!(!fa.is_done() && !fb.is_done() && !read.is_done());
        e.gate.release();
        assert!(settle(&read, "the blocked Tread").is_some());
        assert!(is_rflush(&settle(&fa, "Tflush 91")));
        assert!(is_rflush(&settle(&fb, "Tflush 92")));
        let ev = e.recorder().events();
        let read_at = position(&ev, 90, p9_wire::msgtype::TREAD);
        assert!(read_at < position(&ev, 91, TFLUSH) && read_at < position(&ev, 92, TFLUSH));
        e.still_serves_and_resets();
    });
}

/// Sessions sharing a pool: one session's Tflushes waiting for its blocked
/// read take none of the pool's threads from another session.
#[test]
fn flushes_on_a_shared_pool_leave_other_sessions_served() {
    bounded("Tflushes on a shared pool", || {
        let pool = Pool::new(2).expect("pool");
        let a = Env::on_pool("flush-shared-a", &pool);
        let b = Env::on_pool("flush-shared-b", &pool);
        let fid = a.open_data();
        a.gate.hold(|c| matches!(c, Call::Read { .. }));
        let read = a.client.send_with_tag(5, &tread(fid, 0));
        a.gate.wait_entered(1);
        let flushes: Vec<Pending> = (0..4).map(|i| a.flush(6 + i, 5)).collect();
        let mut answered = HashMap::new();
        for i in 0..20u16 {
            let r = settle(&b.getattr_with_tag(100 + i), "the other session's Tgetattr");
            answered.insert(i, r.is_some());
        }
        assert!(answered.values().all(|&x| x), "{answered:?}");
        assert!(!read.is_done());
        a.gate.release();
        assert!(settle(&read, "the blocked Tread").is_some());
        for f in &flushes {
            assert!(is_rflush(&settle(f, "Tflush of the read")));
        }
        a.still_serves_and_resets();
        b.still_serves_and_resets();
    });
}
