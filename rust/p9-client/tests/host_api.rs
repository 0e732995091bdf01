// SPDX-License-Identifier: GPL-2.0-or-later
//! The engine's host-facing API: reply buffers asked for by size,
//! `Handled` finishing a request only when dropped, `Server::reset`, and
//! the dialects a config allows.

mod common;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use p9_engine::{Config, ReplyBuffers, Server, Versions};
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
