// SPDX-License-Identifier: GPL-2.0-or-later
//! The engine's host-facing API: reply buffers asked for by size,
//! `Handled` finishing a request only when dropped, `Server::reset`, and
//! the dialects a config allows.

mod common;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use p9_engine::{Config, ReplyBuffers, Server, SessionHook, Versions};
use p9_wire::consts::{dotl_open, getattr};
use p9_wire::{Proto, Rmessage, SgView, Tmessage};

/// Reply buffers that record every size asked for and hand out exactly
/// that much.
struct Recording {
    asked: Vec<usize>,
    buf: Vec<u8>,
    seg: Vec<&'static mut [u8]>,
}

impl Recording {
    fn new() -> Recording {
        Recording {
            asked: Vec::new(),
            buf: Vec::new(),
            seg: Vec::new(),
        }
    }
}

impl ReplyBuffers<'static> for Recording {
    fn get(&mut self, size: usize) -> &mut [&'static mut [u8]] {
        self.asked.push(size);
        self.seg.clear();
        self.buf = vec![0xa5; size];
        // SAFETY: `buf` is neither touched nor reallocated while `seg`
        // refers to it: `seg` is cleared before `buf` is replaced, and the
        // test reads `buf` only after handling finished.
        let s = unsafe { std::slice::from_raw_parts_mut(self.buf.as_mut_ptr(), size) };
        self.seg.push(s);
        &mut self.seg
    }
}

/// Send `msg` through receive + handle with recording buffers; the reply's
/// bytes, and the sizes asked for.
fn exchange(
    server: &Server<p9_native::NativeBackend>,
    tag: u16,
    msg: &Tmessage<'_>,
) -> (Vec<u8>, Vec<usize>) {
    let req = msg.encode_to_vec(tag).unwrap();
    let ticket = server.receive(SgView::from_slice(&req));
    let mut out = Recording::new();
    let handled = server.handle(ticket, SgView::from_slice(&req), &mut out);
    let len = handled.reply_len().expect("a reply");
    drop(handled);
    out.seg.clear();
    let bytes = out.buf[..len].to_vec();
    let (rtag, _) = Rmessage::decode_slice(&bytes, Proto::DotL, MSIZE).unwrap();
    assert_eq!(rtag, tag);
    (bytes, out.asked)
}

/// A 9P2000.L reply's message.
fn msg(bytes: &[u8]) -> Rmessage<'_> {
    Rmessage::decode_slice(bytes, Proto::DotL, MSIZE).unwrap().1
}

fn attach(server: &Server<p9_native::NativeBackend>) {
    let (r, _) = exchange(
        server,
        1,
        &Tmessage::Version {
            msize: MSIZE,
            version: "9P2000.L".into(),
        },
    );
    assert!(matches!(msg(&r), Rmessage::Version { .. }));
    let (r, _) = exchange(
        server,
        2,
        &Tmessage::Attach {
            fid: 0,
            afid: u32::MAX,
            uname: "root".into(),
            aname: "".into(),
            n_uname: 0,
        },
    );
    assert!(matches!(msg(&r), Rmessage::Attach { .. }));
}

#[test]
fn replies_ask_for_exactly_their_size() {
    let dir = TempDir::new("sizes");
    std::fs::write(dir.join("f"), vec![7u8; 5000]).unwrap();
    let server = Server::new(native_backend(&dir), Config::default());
    attach(&server);

    // A fixed-size reply: one request for its exact encoded size.
    let (r, asked) = exchange(
        &server,
        3,
        &Tmessage::Getattr {
            fid: 0,
            request_mask: getattr::BASIC,
        },
    );
    assert_eq!(asked, vec![r.len()]);

    // Tread: the header and the count asked for (within msize), once.
    exchange(
        &server,
        4,
        &Tmessage::Walk {
            fid: 0,
            newfid: 1,
            wnames: vec!["f".into()],
        },
    );
    exchange(
        &server,
        5,
        &Tmessage::Lopen {
            fid: 1,
            flags: dotl_open::RDONLY,
        },
    );
    let (r, asked) = exchange(
        &server,
        6,
        &Tmessage::Read {
            fid: 1,
            offset: 0,
            count: 4096,
        },
    );
    assert_eq!(asked, vec![11 + 4096]);
    assert!(matches!(msg(&r), Rmessage::Read { data } if data.len() == 4096));

    // An error: only room for the Rlerror.
    let (r, asked) = exchange(
        &server,
        7,
        &Tmessage::Getattr {
            fid: 99,
            request_mask: getattr::BASIC,
        },
    );
    assert_eq!(asked, vec![11]);
    assert!(matches!(msg(&r), Rmessage::Lerror { .. }));

    // A failed read asks for the data room first, then for the error.
    let (r, asked) = exchange(
        &server,
        8,
        &Tmessage::Read {
            fid: 0,
            offset: 0,
            count: 100,
        },
    );
    assert!(matches!(msg(&r), Rmessage::Lerror { .. }));
    assert_eq!(asked.last(), Some(&11), "{asked:?}");
}

#[test]
fn a_request_stays_active_until_its_handled_is_dropped() {
    let dir = TempDir::new("handled");
    let server = Server::new(native_backend(&dir), Config::default());
    attach(&server);
    let req = Tmessage::Getattr {
        fid: 0,
        request_mask: getattr::BASIC,
    }
    .encode_to_vec(9)
    .unwrap();
    let ticket = server.receive(SgView::from_slice(&req));
    assert_eq!(server.stats().active, 1);
    let mut buf = vec![0u8; 512];
    let handled = server.handle(ticket, SgView::from_slice(&req), &mut [&mut buf[..]][..]);
    assert!(handled.reply_len().is_some());
    assert_eq!(
        server.stats().active,
        1,
        "finished before the host sent the reply"
    );
    drop(handled);
    assert_eq!(server.stats().active, 0);
}

#[test]
fn reset_waits_for_requests_then_clunks_every_fid() {
    let dir = TempDir::new("reset");
    std::fs::write(dir.join("f"), b"x").unwrap();
    let host = Arc::new(host(native_backend(&dir), Config::default(), 2));
    let client = p9_client::Client::new(Arc::clone(&host));
    let (root, _) = session(&client, "9P2000.L");
    let f = client.alloc_fid();
    client.walk(root, f, &["f"]).unwrap();
    client.lopen(f, dotl_open::RDONLY).unwrap();
    let server = Arc::clone(host.server());
    assert_eq!(server.stats().fids, 2);
    assert_eq!(server.stats().open_handles, 1);

    // A request received but not yet handled holds the reset back.
    let req = Tmessage::Clunk { fid: root }.encode_to_vec(77).unwrap();
    let ticket = server.receive(SgView::from_slice(&req));
    let (tx, rx) = mpsc::channel();
    let s2 = Arc::clone(&server);
    let resetter = std::thread::spawn(move || {
        s2.reset();
        tx.send(()).unwrap();
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "reset did not wait for the pending request"
    );
    let mut buf = vec![0u8; 512];
    drop(server.handle(ticket, SgView::from_slice(&req), &mut [&mut buf[..]][..]));
    rx.recv_timeout(Duration::from_secs(10))
        .expect("reset finished");
    resetter.join().unwrap();

    let st = server.stats();
    assert_eq!((st.fids, st.open_handles, st.active), (0, 0, 0), "{st:?}");
    assert_eq!(server.proto(), Proto::Unnegotiated);
    // The session starts over.
    let (root, _) = session(&client, "9P2000.L");
    assert!(client.getattr(root, getattr::BASIC).is_ok());
}

#[test]
fn a_config_can_refuse_a_dialect() {
    let dir = TempDir::new("versions");
    let only_l = Config {
        versions: Versions {
            dotl: true,
            dotu: false,
        },
        ..Config::default()
    };
    let server = Server::new(native_backend(&dir), only_l);
    let (r, _) = exchange(
        &server,
        1,
        &Tmessage::Version {
            msize: MSIZE,
            version: "9P2000.u".into(),
        },
    );
    assert_eq!(
        msg(&r),
        Rmessage::Version {
            msize: MSIZE,
            version: "unknown".into()
        }
    );
    assert_eq!(server.proto(), Proto::Unnegotiated);
    let (r, _) = exchange(
        &server,
        2,
        &Tmessage::Version {
            msize: MSIZE,
            version: "9P2000.L".into(),
        },
    );
    assert!(
        matches!(msg(&r), Rmessage::Version { version, .. } if version.as_bytes() == b"9P2000.L")
    );
    assert_eq!(server.proto(), Proto::DotL);
}

/// Reply buffers that also record the throttle calls.
struct Throttled {
    inner: Recording,
    throttled: Vec<(bool, usize)>,
}

impl ReplyBuffers<'static> for Throttled {
    fn get(&mut self, size: usize) -> &mut [&'static mut [u8]] {
        self.inner.get(size)
    }

    fn throttle(&mut self, write: bool, bytes: usize) {
        self.throttled.push((write, bytes));
    }
}

/// What [`run_raw`] saw: the reply bytes (none: no reply), what `Handled`
/// said of its type and errno, and the throttle calls.
type Ran = (
    Option<Vec<u8>>,
    Option<u8>,
    Option<p9_wire::Errno>,
    Vec<(bool, usize)>,
);

/// Run `req` (whole buffers given to the server as they are).
fn run_raw(server: &Server<p9_native::NativeBackend>, req: SgView<'_>) -> Ran {
    let ticket = server.receive(req);
    let mut out = Throttled {
        inner: Recording::new(),
        throttled: Vec::new(),
    };
    let handled = server.handle(ticket, req, &mut out);
    let (len, typ, err) = (handled.reply_len(), handled.reply_type(), handled.error());
    drop(handled);
    out.inner.seg.clear();
    let bytes = len.map(|n| out.inner.buf[..n].to_vec());
    (bytes, typ, err, out.throttled)
}

/// A request in buffers longer than the message (a virtio descriptor
/// chain may be): the size field rules, the bytes after it are ignored.
#[test]
fn requests_in_longer_buffers_are_cut_to_their_size_field() {
    let dir = TempDir::new("padded");
    std::fs::write(dir.join("f"), b"").unwrap();
    let server = Server::new(native_backend(&dir), Config::default());
    attach(&server);
    exchange(
        &server,
        3,
        &Tmessage::Walk {
            fid: 0,
            newfid: 1,
            wnames: vec!["f".into()],
        },
    );
    exchange(
        &server,
        4,
        &Tmessage::Lopen {
            fid: 1,
            flags: dotl_open::RDWR,
        },
    );
    // A Twrite split over two segments, 50 bytes of garbage after it.
    let twrite = Tmessage::Write {
        fid: 1,
        offset: 0,
        data: SgView::from_slice(b"exactly this"),
    }
    .encode_to_vec(5)
    .unwrap();
    let (a, b) = twrite.split_at(twrite.len() / 2);
    let mut b = b.to_vec();
    b.extend_from_slice(&[0xee; 50]);
    let segs: [&[u8]; 2] = [a, &b];
    let (reply, typ, err, throttled) = run_raw(&server, SgView::new(&segs));
    let reply = reply.expect("Rwrite");
    assert_eq!(msg(&reply), Rmessage::Write { count: 12 });
    assert_eq!((typ, err), (Some(p9_wire::msgtype::RWRITE), None));
    assert_eq!(throttled, vec![(true, 12)]);
    assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"exactly this");

    // A padded Tflush received after a request cancels it on arrival (the
    // target never starts), as an exact one does.
    let target = Tmessage::Read {
        fid: 1,
        offset: 0,
        count: 64,
    }
    .encode_to_vec(6)
    .unwrap();
    let ticket = server.receive(SgView::from_slice(&target));
    let mut flush = Tmessage::Flush { oldtag: 6 }.encode_to_vec(7).unwrap();
    flush.extend_from_slice(&[0; 7]);
    let (rflush, typ) = {
        let fview = SgView::from_slice(&flush);
        let fticket = server.receive(fview);
        let mut out = Throttled {
            inner: Recording::new(),
            throttled: Vec::new(),
        };
        let handled = server.handle(ticket, SgView::from_slice(&target), &mut out);
        assert_eq!(handled.reply_len(), None, "the flushed Tread replied");
        assert_eq!((handled.reply_type(), handled.error()), (None, None));
        assert!(out.throttled.is_empty(), "a cancelled Tread was throttled");
        drop(handled);
        let mut out = Recording::new();
        let handled = server.handle(fticket, fview, &mut out);
        let len = handled.reply_len().expect("Rflush");
        let typ = handled.reply_type();
        drop(handled);
        out.seg.clear();
        (out.buf[..len].to_vec(), typ)
    };
    assert_eq!(msg(&rflush), Rmessage::Flush);
    assert_eq!(typ, Some(p9_wire::msgtype::RFLUSH));

    // Buffers shorter than the size field: an error reply, as before.
    let mut short = Tmessage::Clunk { fid: 1 }.encode_to_vec(8).unwrap();
    let size = short.len() as u32 + 1;
    short[..4].copy_from_slice(&size.to_le_bytes());
    let (reply, typ, err, _) = run_raw(&server, SgView::from_slice(&short));
    assert!(matches!(msg(&reply.unwrap()), Rmessage::Lerror { .. }));
    assert_eq!(typ, Some(p9_wire::msgtype::RLERROR));
    assert_eq!(err, Some(p9_wire::errno::EINVAL));
}

/// `ReplyBuffers::throttle` comes once per file Tread/Twrite, before the
/// backend call, with the byte count; `Handled` tells the reply's type
/// and errno.
#[test]
fn throttle_and_what_handled_tells() {
    let dir = TempDir::new("throttle");
    std::fs::write(dir.join("f"), vec![1u8; 100]).unwrap();
    let server = Server::new(native_backend(&dir), Config::default());
    attach(&server);
    let run = |m: &Tmessage<'_>| {
        let req = m.encode_to_vec(9).unwrap();
        run_raw(&server, SgView::from_slice(&req))
    };
    run(&Tmessage::Walk {
        fid: 0,
        newfid: 1,
        wnames: vec!["f".into()],
    });
    let (_, typ, err, thr) = run(&Tmessage::Read {
        fid: 1,
        offset: 0,
        count: 10,
    });
    // Not open: EINVAL, no throttle.
    assert_eq!(
        (typ, err),
        (
            Some(p9_wire::msgtype::RLERROR),
            Some(p9_wire::errno::EINVAL)
        )
    );
    assert!(thr.is_empty());
    run(&Tmessage::Lopen {
        fid: 1,
        flags: dotl_open::RDWR,
    });
    // A count above msize - 11 fails before anything.
    let (_, typ, err, thr) = run(&Tmessage::Read {
        fid: 1,
        offset: 0,
        count: 1 << 20,
    });
    assert_eq!(typ, Some(p9_wire::msgtype::RLERROR));
    assert_eq!(err, Some(p9_wire::errno::EMSGSIZE));
    assert!(thr.is_empty());
    let (reply, typ, err, thr) = run(&Tmessage::Read {
        fid: 1,
        offset: 0,
        count: MSIZE - 11,
    });
    assert!(matches!(msg(&reply.unwrap()), Rmessage::Read { data } if data.len() == 100));
    assert_eq!((typ, err), (Some(p9_wire::msgtype::RREAD), None));
    assert_eq!(thr, vec![(false, (MSIZE - 11) as usize)]);
    let data = [2u8; 33];
    let (_, typ, _, thr) = run(&Tmessage::Write {
        fid: 1,
        offset: 0,
        data: SgView::from_slice(&data),
    });
    assert_eq!(typ, Some(p9_wire::msgtype::RWRITE));
    assert_eq!(thr, vec![(true, 33)]);
    // Other requests are not throttled.
    let (_, typ, _, thr) = run(&Tmessage::Getattr {
        fid: 1,
        request_mask: getattr::BASIC,
    });
    assert_eq!(typ, Some(p9_wire::msgtype::RGETATTR));
    assert!(thr.is_empty());
}

/// A session hook recording its calls, and whether two ever overlapped.
#[derive(Default)]
struct SessionLog {
    calls: std::sync::Mutex<Vec<bool>>,
    inside: std::sync::atomic::AtomicBool,
    overlapped: std::sync::atomic::AtomicBool,
    /// `attached` fails with this errno while set.
    fail: std::sync::Mutex<Option<p9_wire::Errno>>,
}

impl SessionLog {
    fn enter(&self, attached: bool) {
        use std::sync::atomic::Ordering::SeqCst;
        if self.inside.swap(true, SeqCst) {
            self.overlapped.store(true, SeqCst);
        }
        self.calls.lock().unwrap().push(attached);
        // Widen the window for an overlapping call to show up.
        std::thread::yield_now();
        self.inside.store(false, SeqCst);
    }

    fn calls(&self) -> Vec<bool> {
        self.calls.lock().unwrap().clone()
    }
}

impl SessionHook for SessionLog {
    fn attached(&self) -> Result<(), p9_wire::Errno> {
        self.enter(true);
        match *self.fail.lock().unwrap() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn detached(&self) {
        self.enter(false);
    }
}

/// The session hook hears of the first fid and of the last one, strictly
/// alternating and never concurrently, however Tattach, Twalk and Tclunk
/// race in thread mode; a failing hook fails the Tattach.
#[test]
fn the_session_hook_alternates_under_races() {
    use p9_engine::host::ThreadHost;
    let dir = TempDir::new("session");
    let log = Arc::new(SessionLog::default());
    let server =
        Server::new(native_backend(&dir), Config::default()).with_session_hook(Arc::clone(&log));
    let host = ThreadHost::new(Arc::new(server), 4);
    let call = |tag: u16, m: Tmessage<'_>| -> Rmessage<'static> {
        let reply = host.call(m.encode_to_vec(tag).unwrap()).expect("a reply");
        match Rmessage::decode_slice(&reply, Proto::DotL, MSIZE)
            .unwrap()
            .1
        {
            Rmessage::Lerror { ecode } => Rmessage::Lerror { ecode },
            Rmessage::Attach { qid } => Rmessage::Attach { qid },
            Rmessage::Walk { wqids } => Rmessage::Walk { wqids },
            Rmessage::Clunk => Rmessage::Clunk,
            Rmessage::Version { msize, .. } => Rmessage::Version {
                msize,
                version: "9P2000.L".into(),
            },
            other => panic!("unexpected {other:?}"),
        }
    };
    call(
        1,
        Tmessage::Version {
            msize: MSIZE,
            version: "9P2000.L".into(),
        },
    );
    assert!(log.calls().is_empty());
    let attach = |fid: u32| Tmessage::Attach {
        fid,
        afid: u32::MAX,
        uname: "root".into(),
        aname: "".into(),
        n_uname: 0,
    };
    // A failing hook: the Tattach fails with its errno, no fid is made.
    *log.fail.lock().unwrap() = Some(p9_wire::errno::EBUSY);
    assert_eq!(
        call(2, attach(0)),
        Rmessage::Lerror {
            ecode: p9_wire::errno::EBUSY
        }
    );
    assert_eq!(host.server().stats().fids, 0);
    assert_eq!(log.calls(), vec![true]);
    *log.fail.lock().unwrap() = None;
    log.calls.lock().unwrap().clear();

    // Eight threads, each attaching, walking and clunking its own fids:
    // the session's fid count goes through zero again and again.
    std::thread::scope(|s| {
        for t in 0..8u32 {
            let call = &call;
            s.spawn(move || {
                for i in 0..200u32 {
                    let tag = (t * 1000 + i) as u16;
                    let (root, other) = (10 + 2 * t, 11 + 2 * t);
                    assert!(matches!(call(tag, attach(root)), Rmessage::Attach { .. }));
                    let walk = Tmessage::Walk {
                        fid: root,
                        newfid: other,
                        wnames: vec![],
                    };
                    assert!(matches!(call(tag, walk), Rmessage::Walk { .. }));
                    if i % 2 == 0 {
                        assert_eq!(call(tag, Tmessage::Clunk { fid: root }), Rmessage::Clunk);
                        assert_eq!(call(tag, Tmessage::Clunk { fid: other }), Rmessage::Clunk);
                    } else {
                        assert_eq!(call(tag, Tmessage::Clunk { fid: other }), Rmessage::Clunk);
                        assert_eq!(call(tag, Tmessage::Clunk { fid: root }), Rmessage::Clunk);
                    }
                }
            });
        }
    });
    let calls = log.calls();
    assert!(
        !log.overlapped.load(std::sync::atomic::Ordering::SeqCst),
        "two session hook calls overlapped"
    );
    assert!(calls.len() >= 2, "{calls:?}");
    for (i, c) in calls.iter().enumerate() {
        assert_eq!(*c, i % 2 == 0, "call {i} of {calls:?}");
    }
    assert_eq!(calls.last(), Some(&false), "every fid is gone: detached");
    assert_eq!(host.server().stats().fids, 0);
    // A reset with fids: one detach; with none: nothing.
    assert!(matches!(call(3, attach(0)), Rmessage::Attach { .. }));
    host.server().reset();
    host.server().reset();
    let n = calls.len();
    assert_eq!(log.calls()[n..], [true, false]);
}
