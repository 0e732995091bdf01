// SPDX-License-Identifier: GPL-2.0-or-later
//! Tflush through the engine (9p.c `v9fs_flush` / `pdu_complete`):
//!
//! * a Tflush marks its target cancelled and answers only once the target
//!   has finished; a target already inside its backend call finishes and
//!   replies (9p.c discards only a cancelled request's `-EINTR`), and that
//!   reply reaches the client before the Rflush;
//! * a target that had not reached its backend call gets no reply and has
//!   no effect;
//! * a Tflush of a tag not in flight is answered at once;
//! * many requests in flight at once each get exactly their own reply;
//! * backend reads, writes and reopens failing with `EINTR` are retried
//!   until they work or the request is flushed.
//!
//! Requests are held inside the backend by a gate (see `support_backends`),
//! so every ordering below is forced, not hoped for.

mod common;
mod support_backends;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use p9_client::{Client, Pending, Response};
use p9_engine::host::ThreadHost;
use p9_engine::{Config, Server};
use p9_native::NativeBackend;
use p9_wire::consts::{dotl_open, getattr};
use p9_wire::errno::{EINTR, ENOENT};
use p9_wire::msgtype::{RFLUSH, RREAD, TFLUSH, TREAD, TWRITE};
use p9_wire::{P9String, Qid, Rmessage, SgView, Tmessage};

use common::TempDir;
use support_backends::{Call, Event, Gate, Gated, Recorder};

type TestBackend = Gated<NativeBackend>;
type TestHost = ThreadHost<TestBackend>;

/// An export served by a gated native backend through a recording
/// transport, after Tversion and Tattach.
struct Env {
    // Dropped first: stops the host (the gate is released by `Drop`).
    client: Client<Recorder<TestHost>>,
    gate: Arc<Gate>,
    root: u32,
    dir: TempDir,
}

impl Env {
    fn new(name: &str, threads: usize) -> Env {
        Env::with_config(name, threads, Config::default())
    }

    fn with_config(name: &str, threads: usize, config: Config) -> Env {
        let dir = TempDir::new(name);
        let backend = Gated::new(common::native_backend(dir.path()));
        let gate = Arc::clone(&backend.gate);
        let host = common::host(backend, config, threads);
        let client = Client::new(Recorder::new(host));
        let (root, _) = common::session(&client, "9P2000.L");
        Env {
            client,
            gate,
            root,
            dir,
        }
    }

    fn server(&self) -> &Arc<Server<TestBackend>> {
        self.client.transport().inner.server()
    }

    fn recorder(&self) -> &Recorder<TestHost> {
        self.client.transport()
    }

    fn walk(&self, rel: &str) -> u32 {
        let names: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
        let (fid, qids) = self.client.walk_new(self.root, &names).expect("Twalk");
        assert_eq!(qids.len(), names.len(), "walk to {rel}");
        fid
    }

    fn open(&self, rel: &str, flags: u32) -> u32 {
        let fid = self.walk(rel);
        self.client.lopen(fid, flags).expect("Tlopen");
        fid
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // A failed assertion must not leave host threads blocked in the
        // gate: the host's drop joins them.
        self.gate.release();
    }
}

/// The content of test file `i`.
fn content(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 7 + j * 13 + 1) as u8).collect()
}

/// The data of an Rread.
fn read_data(r: Response, what: &str) -> Vec<u8> {
    let r = r.unwrap_or_else(|e| panic!("{what}: error reply {e}"));
    match r.msg() {
        Rmessage::Read { data } => data.to_vec(),
        other => panic!("{what}: {other:?}"),
    }
}

/// Where the completion of the request tagged `tag` of type `req_type`
/// arrived among `events`; exactly one must have.
fn position(events: &[Event], tag: u16, req_type: u8) -> usize {
    let found: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.tag == Some(tag) && e.req_type == Some(req_type))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "completions of tag {tag} (type {req_type}): {found:?} in {events:?}"
    );
    found[0]
}

fn tread(fid: u32, offset: u64, count: u32) -> Tmessage<'static> {
    Tmessage::Read { fid, offset, count }
}

/// A Tflush whose target is inside its backend call is answered only after
/// the target finished; the target still replies, with its data, and that
/// reply reaches the client before the Rflush.
#[test]
fn flush_waits_for_the_request_in_its_backend_call() {
    let e = Env::new("flush-waits", 4);
    let data = content(1, 1000);
    std::fs::write(e.dir.join("data"), &data).unwrap();
    let fid = e.open("data", dotl_open::RDONLY);
    let cancelled = e.server().stats().cancelled;
    e.recorder().clear();

    e.gate.hold(|c| matches!(c, Call::Read { .. }));
    let read = e.client.send(&tread(fid, 0, 4096));
    e.gate.wait_entered(1);
    let read_tag = read.tag();
    let flush = e.client.send(&Tmessage::Flush { oldtag: read_tag });
    let flush_tag = flush.tag();
    // The assertions below hold however long we wait; the pause gives a
    // wrong Rflush the chance to show up.
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !flush.is_done(),
        "Rflush sent while the flushed Tread is still inside its backend call \
         (9p.c v9fs_flush waits on the target's `complete` queue)"
    );
    assert!(
        !read.is_done(),
        "the gated Tread completed through the gate"
    );
    assert_eq!(e.server().stats().active, 2, "Tread and Tflush in flight");

    e.gate.release();
    let got = read
        .wait()
        .expect("a flushed Tread that was already in its backend call replies");
    assert_eq!(read_data(got, "flushed Tread"), data);
    let r = flush
        .wait()
        .expect("an Rflush")
        .expect("Rflush, not an error");
    assert!(matches!(r.msg(), Rmessage::Flush), "{r:?}");

    let events = e.recorder().events();
    let (ri, fi) = (
        position(&events, read_tag, TREAD),
        position(&events, flush_tag, TFLUSH),
    );
    assert!(
        ri < fi,
        "Rflush arrived before the flushed Tread's reply: {events:?}"
    );
    assert_eq!(events[ri].reply_type, Some(RREAD));
    assert_eq!(events[fi].reply_type, Some(RFLUSH));
    assert_eq!(
        e.server().stats().cancelled,
        cancelled,
        "a request that completed is not counted as cancelled"
    );
}

/// With one host thread busy, requests queued behind it and then flushed
/// never reach their backend calls: no reply, no effect, Rflush for each,
/// counted as cancelled.
#[test]
fn flush_cancels_queued_requests_without_reply_or_effect() {
    let e = Env::new("flush-cancel", 1);
    let data = content(2, 300);
    std::fs::write(e.dir.join("data"), &data).unwrap();
    let fid = e.open("data", dotl_open::RDONLY);
    let target = e.walk("data");
    let dir = e.client.alloc_fid();
    e.client.clone_fid(e.root, dir).expect("clone of the root");
    let newfid = e.client.alloc_fid();
    let before = e.server().stats();
    e.recorder().clear();

    // The only host thread blocks inside this Tread.
    e.gate.hold(|c| matches!(c, Call::Read { .. }));
    let blocker = e.client.send(&tread(fid, 0, 4096));
    e.gate.wait_entered(1);

    let create = e.client.send(&Tmessage::Lcreate {
        fid: dir,
        name: P9String::from("flushed"),
        flags: dotl_open::RDWR | dotl_open::CREATE,
        mode: 0o644,
        gid: 0,
    });
    let walk = e.client.send(&Tmessage::Walk {
        fid: e.root,
        newfid,
        wnames: vec![P9String::from("data")],
    });
    let getattr = e.client.send(&Tmessage::Getattr {
        fid: target,
        request_mask: getattr::ALL,
    });
    let tags = [create.tag(), walk.tag(), getattr.tag()];
    let flushes: Vec<Pending> = tags
        .iter()
        .map(|&tag| e.client.send(&Tmessage::Flush { oldtag: tag }))
        .collect();
    let flush_tags: Vec<u16> = flushes.iter().map(Pending::tag).collect();
    // The only thread is blocked: nothing queued can have run yet.
    for p in [&create, &walk, &getattr].into_iter().chain(&flushes) {
        assert!(
            !p.is_done(),
            "request {} done while the host is blocked",
            p.tag()
        );
    }
    assert_eq!(e.server().stats().active, 7);

    e.gate.release();
    let got = blocker.wait().expect("the blocking Tread replies");
    assert_eq!(read_data(got, "blocking Tread"), data);
    for (name, p) in [("Tlcreate", create), ("Twalk", walk), ("Tgetattr", getattr)] {
        let r = p.wait();
        assert!(
            r.is_none(),
            "a flushed {name} that never started got a reply: {r:?} \
             (9p.c pdu_complete drops a cancelled request's -EINTR reply)"
        );
    }
    for f in flushes {
        let r = f.wait().expect("an Rflush").expect("Rflush, not an error");
        assert!(matches!(r.msg(), Rmessage::Flush), "{r:?}");
    }

    // None of them reached the backend.
    let seen = e.gate.seen();
    assert!(
        seen.iter().all(|c| matches!(c, Call::Read { .. })),
        "flushed requests reached the backend: {seen:?}"
    );
    // None had an effect.
    assert!(
        !e.dir.join("flushed").exists(),
        "the flushed Tlcreate created its file"
    );
    assert_eq!(
        e.client.clunk(newfid),
        Err(ENOENT),
        "the flushed Twalk created its newfid"
    );
    // The directory fid was not turned into the created file: it is still
    // an unopened directory fid.
    e.client
        .lcreate(dir, "after", dotl_open::RDWR | dotl_open::CREATE, 0o644, 0)
        .expect("Tlcreate on the directory fid the flushed Tlcreate named");
    assert!(e.dir.join("after").exists());

    // Each flushed request's "no reply" reached the client before its
    // Rflush.
    let events = e.recorder().events();
    let types = [
        p9_wire::msgtype::TLCREATE,
        p9_wire::msgtype::TWALK,
        p9_wire::msgtype::TGETATTR,
    ];
    for ((tag, typ), ftag) in tags.iter().zip(types).zip(&flush_tags) {
        let (ti, fi) = (
            position(&events, *tag, typ),
            position(&events, *ftag, TFLUSH),
        );
        assert_eq!(events[ti].reply_type, None);
        assert!(
            ti < fi,
            "Rflush before the flushed request finished: {events:?}"
        );
    }
    assert_eq!(
        e.server().stats().cancelled,
        before.cancelled + 3,
        "stats().cancelled counts the three flushed requests"
    );
}

/// A Tflush of a tag not in flight (never used, or already answered) is
/// answered at once, even while another request is blocked.
#[test]
fn flush_of_unknown_or_finished_tag_answers_at_once() {
    let e = Env::new("flush-unknown", 4);
    std::fs::write(e.dir.join("data"), b"hello").unwrap();
    let fid = e.open("data", dotl_open::RDONLY);
    let cancelled = e.server().stats().cancelled;

    e.gate.hold(|c| matches!(c, Call::Read { .. }));
    let blocker = e.client.send(&tread(fid, 0, 64));
    e.gate.wait_entered(1);

    // Never used.
    e.client.flush(0x4242).expect("Rflush for an unknown tag");
    assert!(!blocker.is_done());
    // Already answered.
    let done = e.client.send(&Tmessage::Getattr {
        fid,
        request_mask: getattr::BASIC,
    });
    let done_tag = done.tag();
    done.wait().expect("a reply").expect("Rgetattr");
    e.client
        .flush(done_tag)
        .expect("Rflush for a finished request");
    assert!(
        !blocker.is_done(),
        "the blocked request finished while the gate was held"
    );
    // A Tflush naming itself (9p.c warns and answers).
    let own = e
        .client
        .send_with_tag(0x5151, &Tmessage::Flush { oldtag: 0x5151 });
    let r = own.wait().expect("an Rflush").expect("Rflush");
    assert!(matches!(r.msg(), Rmessage::Flush));

    e.gate.release();
    assert_eq!(read_data(blocker.wait().unwrap(), "Tread"), b"hello");
    assert_eq!(e.server().stats().cancelled, cancelled);
}

/// `n` files `f0`.. of 256 bytes, each opened read-only on its own fid.
fn open_files(e: &Env, n: usize) -> Vec<u32> {
    (0..n)
        .map(|i| {
            std::fs::write(e.dir.join(format!("f{i}")), content(i, 256)).unwrap();
            e.open(&format!("f{i}"), dotl_open::RDONLY)
        })
        .collect()
}

const IN_FLIGHT: usize = 128;
const THREADS: usize = 8;

/// 128 requests in flight at once (proven: all received, none finished),
/// of mixed kinds: each gets exactly one reply, the right one.
#[test]
fn many_requests_in_flight_all_get_their_own_reply() {
    let e = Env::new("flush-many", THREADS);
    let fids = open_files(&e, IN_FLIGHT);
    // Qids of the files, for the walks below.
    let qids: Vec<Qid> = (0..IN_FLIGHT)
        .map(|i| {
            e.client
                .getattr(fids[i], getattr::BASIC)
                .expect("Tgetattr")
                .qid
        })
        .collect();
    e.recorder().clear();

    // Everything blocks until all 128 are in flight.
    e.gate.hold(|_| true);
    let mut newfids = HashMap::new();
    let pending: Vec<Pending> = (0..IN_FLIGHT)
        .map(|i| match i % 4 {
            0 => e.client.send(&tread(fids[i], i as u64, 64)),
            1 => e.client.send(&Tmessage::Getattr {
                fid: fids[i],
                request_mask: getattr::BASIC,
            }),
            2 => {
                let newfid = e.client.alloc_fid();
                newfids.insert(i, newfid);
                e.client.send(&Tmessage::Walk {
                    fid: e.root,
                    newfid,
                    wnames: vec![P9String::from(format!("f{i}"))],
                })
            }
            _ => e.client.send(&Tmessage::Statfs { fid: fids[i] }),
        })
        .collect();
    e.gate.wait_entered(THREADS);
    assert_eq!(
        e.server().stats().active,
        IN_FLIGHT,
        "all requests received and none finished"
    );
    e.gate.release();

    let tags: Vec<u16> = pending.iter().map(Pending::tag).collect();
    assert_eq!(tags.iter().collect::<HashSet<_>>().len(), IN_FLIGHT);
    for (i, p) in pending.into_iter().enumerate() {
        let r = p
            .wait()
            .unwrap_or_else(|| panic!("request {i} got no reply"))
            .unwrap_or_else(|err| panic!("request {i}: error {err}"));
        match (i % 4, r.msg()) {
            (0, Rmessage::Read { data }) => {
                assert_eq!(data.to_vec(), content(i, 256)[i..i + 64], "Tread {i}")
            }
            (1, Rmessage::Getattr(st)) => {
                assert_eq!((st.size, st.qid), (256, qids[i]), "Tgetattr {i}")
            }
            (2, Rmessage::Walk { wqids }) => assert_eq!(wqids, vec![qids[i]], "Twalk {i}"),
            (3, Rmessage::Statfs(_)) => {}
            (_, other) => panic!("request {i}: unexpected reply {other:?}"),
        }
    }
    // The walked fids exist and are the files.
    for (i, newfid) in newfids {
        let st = e
            .client
            .getattr(newfid, getattr::BASIC)
            .expect("walked fid");
        assert_eq!(st.qid, qids[i]);
    }
    // One completion per request, none lost or duplicated.
    let events = e.recorder().events();
    assert_eq!(events.len(), IN_FLIGHT + IN_FLIGHT / 4, "{events:?}");
    let mut per_tag: HashMap<u16, usize> = HashMap::new();
    for ev in &events[..IN_FLIGHT] {
        *per_tag.entry(ev.tag.expect("tagged")).or_default() += 1;
        assert!(ev.reply_type.is_some(), "no reply: {ev:?}");
    }
    assert_eq!(per_tag.len(), IN_FLIGHT);
    assert!(per_tag.values().all(|&n| n == 1), "{per_tag:?}");
    assert_eq!(e.server().stats().cancelled, 0);
}

/// 128 Treads in flight, 64 of them flushed: every Tflush gets an Rflush;
/// every unflushed Tread its data; a flushed Tread that was already inside
/// its backend call its data before the Rflush (9p.c); a flushed Tread
/// still queued no reply, and it never reaches the backend.
#[test]
fn many_in_flight_with_half_flushed() {
    let e = Env::new("flush-half", THREADS);
    let fids = open_files(&e, IN_FLIGHT);
    let before = e.server().stats();
    e.recorder().clear();

    e.gate.hold(|c| matches!(c, Call::Read { .. }));
    // Read i reads at offset i: the gate's log tells which are inside the
    // backend.
    let reads: Vec<Pending> = (0..IN_FLIGHT)
        .map(|i| e.client.send(&tread(fids[i], i as u64, 64)))
        .collect();
    e.gate.wait_entered(THREADS);
    let inside: HashSet<u64> = e
        .gate
        .entered()
        .iter()
        .map(|c| match c {
            Call::Read { offset } => *offset,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(inside.len(), THREADS);
    let read_tags: Vec<u16> = reads.iter().map(Pending::tag).collect();
    let flushed: Vec<usize> = (0..IN_FLIGHT).step_by(2).collect();
    let flushes: Vec<(usize, Pending)> = flushed
        .iter()
        .map(|&i| {
            let p = e.client.send(&Tmessage::Flush {
                oldtag: read_tags[i],
            });
            (i, p)
        })
        .collect();
    assert_eq!(
        e.server().stats().active,
        IN_FLIGHT + flushed.len(),
        "everything received, nothing finished"
    );
    e.gate.release();

    let mut no_reply = 0;
    let mut replied_flushed = HashSet::new();
    for (i, p) in reads.into_iter().enumerate() {
        let expect = content(i, 256)[i..i + 64].to_vec();
        let got = p.wait();
        let was_flushed = i % 2 == 0;
        let was_inside = inside.contains(&(i as u64));
        match got {
            Some(r) => {
                assert_eq!(read_data(r, &format!("Tread {i}")), expect, "Tread {i}");
                if was_flushed {
                    assert!(
                        was_inside,
                        "flushed Tread {i} replied though it was queued when flushed"
                    );
                    replied_flushed.insert(i);
                }
            }
            None => {
                assert!(was_flushed, "unflushed Tread {i} got no reply");
                assert!(
                    !was_inside,
                    "flushed Tread {i} was inside its backend call but its \
                     result was dropped (9p.c replies unless the result is -EINTR)"
                );
                no_reply += 1;
            }
        }
    }
    // Flushed Treads still queued at flush time never reached the backend.
    let seen: HashSet<u64> = e
        .gate
        .seen()
        .iter()
        .filter_map(|c| match c {
            Call::Read { offset } => Some(*offset),
            _ => None,
        })
        .collect();
    for &i in &flushed {
        if !inside.contains(&(i as u64)) {
            assert!(
                !seen.contains(&(i as u64)),
                "flushed Tread {i} reached the backend"
            );
        }
    }
    let mut flush_tags = Vec::new();
    for (i, f) in flushes {
        let ftag = f.tag();
        let r = f
            .wait()
            .unwrap_or_else(|| panic!("no Rflush for Tread {i}"))
            .unwrap_or_else(|err| panic!("Tflush of Tread {i}: error {err}"));
        assert!(matches!(r.msg(), Rmessage::Flush));
        flush_tags.push((i, ftag));
    }
    // Every completion has arrived: the order they arrived in.
    let events = e.recorder().events();
    for (i, ftag) in flush_tags {
        let ri = position(&events, read_tags[i], TREAD);
        let fi = position(&events, ftag, TFLUSH);
        assert!(ri < fi, "Rflush for Tread {i} before its completion");
        if replied_flushed.contains(&i) {
            assert_eq!(events[ri].reply_type, Some(RREAD));
        } else {
            assert_eq!(events[ri].reply_type, None);
        }
    }
    assert_eq!(events.len(), IN_FLIGHT + flushed.len());
    let expected_cancelled = flushed
        .iter()
        .filter(|&&i| !inside.contains(&(i as u64)))
        .count();
    assert_eq!(no_reply, expected_cancelled);
    assert_eq!(
        e.server().stats().cancelled,
        before.cancelled + no_reply as u64,
        "stats().cancelled counts the requests answered with no reply"
    );
}

/// 9p.c retries a backend write that fails with `EINTR` until it is
/// cancelled (`do { ... } while (len == -EINTR && !pdu->cancelled)`; QEMU's
/// synth/flush/success qtest relies on it): the write keeps failing until
/// a Tflush arrives, then ends with no reply, ahead of the Rflush.
#[test]
fn a_write_failing_with_eintr_is_retried_until_flushed() {
    let e = Env::new("eintr-flush", 4);
    std::fs::write(e.dir.join("data"), b"").unwrap();
    let fid = e.open("data", dotl_open::RDWR);
    let cancelled = e.server().stats().cancelled;
    e.recorder().clear();

    e.gate
        .fail(|c| matches!(c, Call::Write { .. }), EINTR, usize::MAX);
    let write = e.client.send(&Tmessage::Write {
        fid,
        offset: 0,
        data: SgView::from_slice(b"never"),
    });
    // Retried: more than one failure, and still no reply.
    e.gate.wait_injected(3);
    assert!(!write.is_done(), "a write failing with EINTR was answered");
    let write_tag = write.tag();
    let flush = e.client.send(&Tmessage::Flush { oldtag: write_tag });
    let flush_tag = flush.tag();
    assert!(
        write.wait().is_none(),
        "a flushed write ending with EINTR got a reply"
    );
    let r = flush.wait().expect("an Rflush").expect("Rflush");
    assert!(matches!(r.msg(), Rmessage::Flush), "{r:?}");
    let events = e.recorder().events();
    assert!(position(&events, write_tag, TWRITE) < position(&events, flush_tag, TFLUSH));
    assert_eq!(e.server().stats().cancelled, cancelled + 1);
    // The retries stopped with the cancellation.
    let injected = e.gate.injected();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        e.gate.injected(),
        injected,
        "still retrying after the flush"
    );
    e.gate.stop_failing();
    assert_eq!(std::fs::read(e.dir.join("data")).unwrap(), b"");
}

/// A write failing with `EINTR` twice, then working, gets a normal Rwrite.
#[test]
fn a_write_failing_with_eintr_twice_then_succeeds() {
    let e = Env::new("eintr-twice", 2);
    std::fs::write(e.dir.join("data"), b"").unwrap();
    let fid = e.open("data", dotl_open::RDWR);
    e.gate.fail(|c| matches!(c, Call::Write { .. }), EINTR, 2);
    assert_eq!(e.client.write(fid, 0, b"written").unwrap(), 7);
    assert_eq!(e.gate.injected(), 2);
    assert_eq!(std::fs::read(e.dir.join("data")).unwrap(), b"written");
    // Reads too.
    e.gate.fail(|c| matches!(c, Call::Read { .. }), EINTR, 2);
    assert_eq!(e.client.read(fid, 0, 64).unwrap(), b"written");
    assert_eq!(e.gate.injected(), 2);
}

/// Reopening a handle that reclaim closed is retried on `EINTR` too (9p.c
/// `v9fs_reopen_fid`).
#[test]
fn a_reopen_failing_with_eintr_is_retried() {
    let config = Config {
        open_high_water: Some(1),
        ..Config::default()
    };
    let e = Env::with_config("eintr-reopen", 2, config);
    std::fs::write(e.dir.join("a"), b"file a").unwrap();
    std::fs::write(e.dir.join("b"), b"file b").unwrap();
    let a = e.open("a", dotl_open::RDONLY);
    // Opening b closes a's idle handle.
    let _b = e.open("b", dotl_open::RDONLY);
    assert!(
        e.server().stats().reclaimed >= 1,
        "{:?}",
        e.server().stats()
    );
    e.gate.fail(|c| *c == Call::Open, EINTR, 2);
    assert_eq!(e.client.read(a, 0, 64).unwrap(), b"file a");
    assert_eq!(e.gate.injected(), 2, "the reopen failed twice, then worked");
}
