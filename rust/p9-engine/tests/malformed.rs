// SPDX-License-Identifier: GPL-2.0-or-later
//! Malformed and hostile requests: each gets the error reply for its tag
//! (or, without a 7-byte header, no reply) and the server stays usable.
//!
//! Errnos follow `hw/9pfs/9p.c` (QEMU 10.0.13) where it answers, and the
//! engine's documented choices where 9p.c has no answer (the codec: a
//! malformed body or a size field that disagrees with the bytes present is
//! `EINVAL`, a size over msize or a Tread/Treaddir count over `msize - 11`
//! is `EMSGSIZE`, a type unknown or outside the negotiated dialect, or any
//! request before Tversion, is `EOPNOTSUPP`).

mod common;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use common::{TempDir, TestClient, TestServer, MSIZE};
use p9_client::CallError;
use p9_engine::server::MSIZE_MAX_DEFAULT;
use p9_engine::Config;
use p9_wire::consts::{dotl_open, getattr, omode, NOFID};
use p9_wire::errno::{self, Errno};
use p9_wire::msgtype as mt;
use p9_wire::{Flock, Getlock, P9String, Proto, Rmessage, SetAttr, SgView, Stat, Tmessage};

const ROOT: u32 = 1;
/// A fid number never handed out.
const UNKNOWN: u32 = 0x00de_ad00;

struct Env {
    client: TestClient,
    dir: TempDir,
}

impl Env {
    /// A server and client before Tversion.
    fn bare(name: &str) -> Env {
        let dir = TempDir::new(name);
        let client = common::serve(&dir, Config::default(), 4);
        // Fids below 1000 are the tests' own numbers ([`ROOT`], the fuzz
        // fids): the client's allocator starts above them.
        while client.alloc_fid() < 1000 {}
        Env { client, dir }
    }

    /// Tversion `version` and Tattach of fid [`ROOT`].
    fn new(name: &str, version: &str) -> Env {
        let env = Env::bare(name);
        common::session_on(&env.client, version, ROOT);
        env
    }

    fn server(&self) -> &Arc<TestServer> {
        self.client.transport().server()
    }

    /// Send raw bytes whose header carries `tag`; the reply must be an
    /// error reply for that tag, in the session's dialect: its errno.
    fn err(&self, bytes: Vec<u8>, tag: u16) -> Errno {
        let reply = self.client.raw(bytes);
        match self.client.check_reply(reply, Some(tag), None) {
            Err(CallError::Errno(e)) => e,
            other => panic!("expected an error reply for tag {tag:#x}, got {other:?}"),
        }
    }

    /// [`Env::err`] for an encoded message.
    fn msg_err(&self, msg: &Tmessage<'_>) -> Errno {
        let tag = 0x1234;
        self.err(msg.encode_to_vec(tag).unwrap(), tag)
    }

    /// A valid request still works.
    fn assert_alive(&self) {
        match self.client.proto() {
            Proto::DotL => {
                let st = self.client.getattr(ROOT, getattr::BASIC).unwrap();
                assert_eq!(st.qid.typ, p9_wire::consts::qid_type::DIR);
            }
            Proto::DotU => {
                let st = self.client.stat(ROOT).unwrap();
                assert_eq!(st.qid.typ, p9_wire::consts::qid_type::DIR);
            }
            Proto::Unnegotiated => panic!("no session"),
        }
    }

    fn host_entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

/// `size[4] type[1] tag[2] body` with a correct size field.
fn frame(typ: u8, tag: u16, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(7 + body.len());
    v.extend_from_slice(&((7 + body.len()) as u32).to_le_bytes());
    v.push(typ);
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(body);
    v
}

fn set_size(bytes: &mut [u8], size: u32) {
    bytes[..4].copy_from_slice(&size.to_le_bytes());
}

fn s(x: &str) -> P9String {
    P9String::from(x)
}

fn nb(x: &[u8]) -> P9String {
    P9String::new(x.to_vec())
}

// ---------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------

#[test]
fn fewer_than_seven_bytes_get_no_reply() {
    let env = Env::new("short", "9P2000.L");
    let clunk = Tmessage::Clunk { fid: ROOT }.encode_to_vec(3).unwrap();
    for len in 0..7 {
        assert_eq!(env.client.raw(clunk[..len].to_vec()), None, "{len} bytes");
        assert_eq!(env.client.raw(vec![0xff; len]), None, "{len} junk bytes");
    }
    // Nothing was clunked.
    env.assert_alive();
}

#[test]
fn truncated_bodies_are_einval() {
    let env = Env::new("trunc", "9P2000.L");
    let msgs = [
        Tmessage::Walk {
            fid: ROOT,
            newfid: 50,
            wnames: vec![s("a"), s("bb")],
        },
        Tmessage::Getattr {
            fid: ROOT,
            request_mask: getattr::BASIC,
        },
        Tmessage::Lcreate {
            fid: 60,
            name: s("file"),
            flags: dotl_open::RDWR,
            mode: 0o644,
            gid: 0,
        },
        Tmessage::Attach {
            fid: 70,
            afid: NOFID,
            uname: s("root"),
            aname: s(""),
            n_uname: 0,
        },
        Tmessage::Write {
            fid: ROOT,
            offset: 0,
            data: SgView::from_slice(b"0123456789"),
        },
        Tmessage::Clunk { fid: ROOT },
        Tmessage::Version {
            msize: MSIZE,
            version: s("9P2000.L"),
        },
    ];
    for msg in &msgs {
        let full = msg.encode_to_vec(0x0101).unwrap();
        for cut in 7..full.len() {
            // The size field says what is there: the body is short.
            let mut b = full[..cut].to_vec();
            set_size(&mut b, cut as u32);
            assert_eq!(
                env.err(b, 0x0101),
                errno::EINVAL,
                "{} cut at {cut}",
                msg.name()
            );
            // The size field says more than is there.
            let b = full[..cut].to_vec();
            assert_eq!(
                env.err(b, 0x0101),
                errno::EINVAL,
                "{} cut at {cut} (size kept)",
                msg.name()
            );
        }
    }
    // No fid was created or clunked, no file made, no session reset.
    assert_eq!(env.client.getattr(50, getattr::BASIC), Err(errno::ENOENT));
    assert_eq!(env.client.getattr(70, getattr::BASIC), Err(errno::ENOENT));
    assert!(env.host_entries().is_empty());
    env.assert_alive();
}

#[test]
fn size_field_disagreeing_with_the_bytes() {
    let env = Env::new("size", "9P2000.L");
    let good = Tmessage::Getattr {
        fid: ROOT,
        request_mask: getattr::BASIC,
    }
    .encode_to_vec(0x0202)
    .unwrap();
    let len = good.len() as u32;
    for size in [len + 1, len + 100, len + 4000, len - 1, len - 5] {
        let mut b = good.clone();
        set_size(&mut b, size);
        assert_eq!(
            env.err(b, 0x0202),
            errno::EINVAL,
            "size {size} for {len} bytes"
        );
    }
    // Trailing bytes after a correct size field: the buffers are longer
    // than the message (a virtio descriptor chain may be), and the size
    // field is the truth: the message is served, the bytes after it
    // ignored.
    let mut b = good.clone();
    b.extend_from_slice(&[0xff; 9]);
    let reply = env.client.raw(b);
    let reply = env.client.check_reply(reply, Some(0x0202), None);
    match reply.as_ref().map(|r| r.msg()) {
        Ok(Rmessage::Getattr(st)) => {
            assert_eq!(st.qid.typ, p9_wire::consts::qid_type::DIR, "trailing bytes")
        }
        other => panic!("trailing bytes: expected Rgetattr, got {other:?}"),
    }
    // A size field below the header size.
    for size in 0..7u32 {
        let mut b = good.clone();
        set_size(&mut b, size);
        assert_eq!(env.err(b, 0x0202), errno::EINVAL, "size {size}");
    }
    // Above msize (whatever the bytes): EMSGSIZE.
    for size in [MSIZE + 1, 1 << 24, u32::MAX] {
        let mut b = good.clone();
        set_size(&mut b, size);
        assert_eq!(env.err(b, 0x0202), errno::EMSGSIZE, "size {size}");
    }
    // A real message of msize + 1 bytes, and one of exactly msize.
    let f = env.client.alloc_fid();
    env.client.clone_fid(ROOT, f).unwrap();
    env.client
        .lcreate(f, "f", dotl_open::RDWR, 0o644, 0)
        .unwrap();
    let payload = vec![0x5a; (MSIZE - 23 + 1) as usize];
    let big = Tmessage::Write {
        fid: f,
        offset: 0,
        data: SgView::from_slice(&payload),
    }
    .encode_to_vec(0x0203)
    .unwrap();
    assert_eq!(big.len() as u32, MSIZE + 1);
    assert_eq!(env.err(big, 0x0203), errno::EMSGSIZE);
    assert_eq!(std::fs::metadata(env.dir.join("f")).unwrap().len(), 0);
    let n = env
        .client
        .write(f, 0, &payload[..(MSIZE - 23) as usize])
        .unwrap();
    assert_eq!(n, MSIZE - 23);
    env.assert_alive();
}

#[test]
fn string_lengths_past_the_end_are_einval() {
    let env = Env::new("strings", "9P2000.L");
    // Twalk: fid newfid nwname=1, name length 0xffff, 3 bytes of name.
    let mut body = Vec::new();
    body.extend_from_slice(&ROOT.to_le_bytes());
    body.extend_from_slice(&77u32.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0xffffu16.to_le_bytes());
    body.extend_from_slice(b"abc");
    assert_eq!(env.err(frame(mt::TWALK, 9, &body), 9), errno::EINVAL);
    // Tattach with a uname claiming 60000 bytes.
    let mut body = Vec::new();
    body.extend_from_slice(&80u32.to_le_bytes());
    body.extend_from_slice(&NOFID.to_le_bytes());
    body.extend_from_slice(&60000u16.to_le_bytes());
    body.extend_from_slice(b"root");
    assert_eq!(env.err(frame(mt::TATTACH, 10, &body), 10), errno::EINVAL);
    // Tlcreate whose name length runs into the following fields.
    let mut body = Vec::new();
    body.extend_from_slice(&ROOT.to_le_bytes());
    body.extend_from_slice(&13u16.to_le_bytes());
    body.extend_from_slice(b"name");
    body.extend_from_slice(&[0; 8]);
    assert_eq!(env.err(frame(mt::TLCREATE, 11, &body), 11), errno::EINVAL);
    // Tversion with a version string longer than the message.
    let mut body = Vec::new();
    body.extend_from_slice(&MSIZE.to_le_bytes());
    body.extend_from_slice(&500u16.to_le_bytes());
    body.extend_from_slice(b"9P2000.L");
    assert_eq!(env.err(frame(mt::TVERSION, 12, &body), 12), errno::EINVAL);
    assert_eq!(env.client.getattr(77, getattr::BASIC), Err(errno::ENOENT));
    assert!(env.host_entries().is_empty());
    env.assert_alive();
}

/// 9p.c `v9fs_walk`: `nwnames > P9_MAXWELEM` is EINVAL, checked before the
/// names are read.
#[test]
fn walk_with_17_names_is_einval() {
    let env = Env::new("walk17", "9P2000.L");
    let names17: Vec<P9String> = (0..17).map(|_| s(".")).collect();
    let msg = Tmessage::Walk {
        fid: ROOT,
        newfid: 5,
        wnames: names17,
    };
    assert_eq!(env.msg_err(&msg), errno::EINVAL);
    // nwname = 17 and no names at all.
    let mut body = Vec::new();
    body.extend_from_slice(&ROOT.to_le_bytes());
    body.extend_from_slice(&5u32.to_le_bytes());
    body.extend_from_slice(&17u16.to_le_bytes());
    assert_eq!(env.err(frame(mt::TWALK, 21, &body), 21), errno::EINVAL);
    // nwname = 0xffff.
    let mut body = Vec::new();
    body.extend_from_slice(&ROOT.to_le_bytes());
    body.extend_from_slice(&5u32.to_le_bytes());
    body.extend_from_slice(&0xffffu16.to_le_bytes());
    assert_eq!(env.err(frame(mt::TWALK, 22, &body), 22), errno::EINVAL);
    assert_eq!(env.client.getattr(5, getattr::BASIC), Err(errno::ENOENT));
    // Sixteen is fine.
    let names16 = vec!["."; 16];
    let qids = env.client.walk(ROOT, 5, &names16).unwrap();
    assert_eq!(qids.len(), 16);
    env.assert_alive();
}

/// Tread: a count whose reply cannot fit in msize is EMSGSIZE (the
/// engine's documented answer; 9p.c would overrun the transport's buffer).
/// Treaddir: 9p.c `v9fs_readdir` clamps the count to `msize - 11` ("bad
/// client" warning) and answers.
#[test]
fn read_counts_over_msize_minus_11() {
    let env = Env::new("count", "9P2000.L");
    std::fs::write(env.dir.join("f"), vec![1u8; 100_000]).unwrap();
    // Enough entries for far more than msize of Rreaddir data.
    for i in 0..2000 {
        std::fs::write(env.dir.join(format!("{i:04}-{}", "n".repeat(40))), b"").unwrap();
    }
    let f = env.client.alloc_fid();
    env.client.walk(ROOT, f, &["f"]).unwrap();
    env.client.lopen(f, dotl_open::RDONLY).unwrap();
    let d = env.client.alloc_fid();
    env.client.clone_fid(ROOT, d).unwrap();
    env.client
        .lopen(d, dotl_open::RDONLY | dotl_open::DIRECTORY)
        .unwrap();
    let max = MSIZE - 11;
    assert_eq!(env.client.read(f, 0, max).unwrap().len(), max as usize);
    let entry = 24 + 45;
    for count in [max + 1, MSIZE, 1 << 24, u32::MAX] {
        let msg = Tmessage::Read {
            fid: f,
            offset: 0,
            count,
        };
        assert_eq!(env.msg_err(&msg), errno::EMSGSIZE, "Tread count {count}");
        let reply = env
            .client
            .try_call(&Tmessage::Readdir {
                fid: d,
                offset: 0,
                count,
            })
            .unwrap_or_else(|e| panic!("Treaddir count {count}: {e}"));
        assert!(reply.bytes().len() <= MSIZE as usize);
        let Rmessage::Readdir { data } = reply.msg() else {
            unreachable!("checked reply type");
        };
        assert!(
            data.len() <= max as usize && data.len() > (max - entry) as usize,
            "Treaddir count {count}: {} bytes of entries",
            data.len()
        );
    }
    env.assert_alive();
}

// ---------------------------------------------------------------------------
// Types, dialects, Tversion
// ---------------------------------------------------------------------------

#[test]
fn unknown_message_types_are_eopnotsupp() {
    for version in ["9P2000.L", "9P2000.u"] {
        let env = Env::new("types", version);
        // Not requests at all, R types, Tlerror/Terror, and holes.
        let types = [
            0u8, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 13, 28, 29, 34, 39, 41, 56, 69, 77, 78, 99, 101,
            103, 105, 106, 107, 109, 111, 127, 128, 129, 200, 254, 255,
        ];
        for (i, typ) in types.into_iter().enumerate() {
            let tag = 0x300 + i as u16;
            assert_eq!(
                env.err(frame(typ, tag, &ROOT.to_le_bytes()), tag),
                errno::EOPNOTSUPP,
                "{version}: type {typ}"
            );
            // Header only.
            assert_eq!(
                env.err(frame(typ, tag, &[]), tag),
                errno::EOPNOTSUPP,
                "{version}: type {typ}, no body"
            );
        }
        env.assert_alive();
    }
}

#[test]
fn requests_of_the_other_dialect_are_eopnotsupp() {
    // 9P2000.u requests in a 9P2000.L session: Rlerror.
    let env = Env::new("dialectL", "9P2000.L");
    let dotu: Vec<Tmessage<'_>> = vec![
        Tmessage::Stat { fid: ROOT },
        Tmessage::Wstat {
            fid: ROOT,
            stat: Stat::dont_touch(),
        },
        Tmessage::Open {
            fid: ROOT,
            mode: omode::READ,
        },
        Tmessage::Create {
            fid: ROOT,
            name: s("x"),
            perm: 0o644,
            mode: omode::RDWR,
            extension: s(""),
        },
    ];
    for msg in &dotu {
        assert_eq!(env.msg_err(msg), errno::EOPNOTSUPP, "{} in .L", msg.name());
    }
    // 9p.c v9fs_read: Tread on a directory outside 9P2000.u is EOPNOTSUPP.
    let d = env.client.alloc_fid();
    env.client.clone_fid(ROOT, d).unwrap();
    env.client.lopen(d, dotl_open::RDONLY).unwrap();
    assert_eq!(env.client.read(d, 0, 1000), Err(errno::EOPNOTSUPP));
    assert!(env.host_entries().is_empty());
    env.assert_alive();

    // 9P2000.L requests in a 9P2000.u session: Rerror.
    let env = Env::new("dialectU", "9P2000.u");
    let dotl: Vec<Tmessage<'_>> = vec![
        Tmessage::Getattr {
            fid: ROOT,
            request_mask: getattr::BASIC,
        },
        Tmessage::Lopen {
            fid: ROOT,
            flags: 0,
        },
        Tmessage::Readdir {
            fid: ROOT,
            offset: 0,
            count: 100,
        },
        Tmessage::Mkdir {
            dfid: ROOT,
            name: s("x"),
            mode: 0o755,
            gid: 0,
        },
    ];
    for msg in &dotl {
        assert_eq!(env.msg_err(msg), errno::EOPNOTSUPP, "{} in .u", msg.name());
    }
    assert!(env.host_entries().is_empty());
    env.assert_alive();
}

#[test]
fn requests_before_tversion_are_eopnotsupp() {
    let env = Env::bare("early");
    let msgs: Vec<Tmessage<'_>> = vec![
        Tmessage::Attach {
            fid: ROOT,
            afid: NOFID,
            uname: s("root"),
            aname: s(""),
            n_uname: 0,
        },
        Tmessage::Walk {
            fid: ROOT,
            newfid: 2,
            wnames: vec![],
        },
        Tmessage::Getattr {
            fid: ROOT,
            request_mask: getattr::BASIC,
        },
        Tmessage::Stat { fid: ROOT },
        Tmessage::Clunk { fid: ROOT },
        Tmessage::Flush { oldtag: 1 },
        Tmessage::Mkdir {
            dfid: ROOT,
            name: s("x"),
            mode: 0o755,
            gid: 0,
        },
    ];
    for msg in &msgs {
        // Unnegotiated: the error is an Rerror (9p.c's non-.L format).
        let tag = 0x4321;
        let reply = env.client.raw(msg.encode_to_vec(tag).unwrap()).unwrap();
        match Rmessage::decode_slice(&reply, Proto::DotU, MSIZE) {
            Ok((t, Rmessage::Error { ename, errno })) => {
                assert_eq!(t, tag);
                assert_eq!(errno, errno::EOPNOTSUPP, "{}", msg.name());
                assert_eq!(ename.as_bytes(), b"Operation not supported");
            }
            other => panic!("{} before Tversion: {other:?}", msg.name()),
        }
    }
    assert!(env.host_entries().is_empty());
    env.client.version(MSIZE, "9P2000.L").unwrap();
    env.client.attach(ROOT, NOFID, "root", "", 0).unwrap();
    env.assert_alive();
}

/// 9p.c `v9fs_version`: the dialect is switched before the msize check, so
/// a too-small msize gets EMSGSIZE in the requested dialect's format.
#[test]
fn tversion_msize_below_4096_is_emsgsize_in_the_requested_dialect() {
    let env = Env::bare("msize");
    let tag = 0xffff;
    let msg = Tmessage::Version {
        msize: 4095,
        version: s("9P2000.L"),
    };
    let reply = env.client.raw(msg.encode_to_vec(tag).unwrap()).unwrap();
    assert_eq!(
        Rmessage::decode_slice(&reply, Proto::DotL, MSIZE).unwrap(),
        (
            tag,
            Rmessage::Lerror {
                ecode: errno::EMSGSIZE
            }
        )
    );
    let msg = Tmessage::Version {
        msize: 512,
        version: s("9P2000.u"),
    };
    let reply = env.client.raw(msg.encode_to_vec(tag).unwrap()).unwrap();
    assert_eq!(
        Rmessage::decode_slice(&reply, Proto::DotU, MSIZE).unwrap(),
        (
            tag,
            Rmessage::Error {
                ename: s("Message too long"),
                errno: errno::EMSGSIZE
            }
        )
    );
    assert_eq!(env.client.version(0, "9P2000.L"), Err(errno::EMSGSIZE));
    // An unknown version has priority over the msize check: Rversion
    // "unknown" with the client's msize.
    let msg = Tmessage::Version {
        msize: 100,
        version: s("9P2000"),
    };
    let reply = env.client.raw(msg.encode_to_vec(tag).unwrap()).unwrap();
    assert_eq!(
        Rmessage::decode_slice(&reply, Proto::DotU, MSIZE).unwrap(),
        (
            tag,
            Rmessage::Version {
                msize: 100,
                version: s("unknown")
            }
        )
    );
    // 4096 is accepted as is; a huge msize is capped to the transport's.
    assert_eq!(
        env.client.version(4096, "9P2000.L").unwrap(),
        (4096, "9P2000.L".to_string())
    );
    assert_eq!(
        env.client.version(u32::MAX, "9P2000.L").unwrap(),
        (MSIZE_MAX_DEFAULT, "9P2000.L".to_string())
    );
    env.client.version(MSIZE, "9P2000.L").unwrap();
    env.client.attach(ROOT, NOFID, "root", "", 0).unwrap();
    env.assert_alive();
    // Tversion drops every fid (9p.c virtfs_reset).
    env.client.version(MSIZE, "9P2000.L").unwrap();
    assert_eq!(env.client.getattr(ROOT, getattr::BASIC), Err(errno::ENOENT));
}

// ---------------------------------------------------------------------------
// Fids
// ---------------------------------------------------------------------------

/// The errno 9p.c answers a request naming a fid that does not exist,
/// handler by handler (`get_fid` failing).
fn unknown_fid_cases(proto: Proto) -> Vec<(Tmessage<'static>, Errno, &'static str)> {
    let u = UNKNOWN;
    let lock = Flock {
        typ: 0,
        flags: 0,
        start: 0,
        length: 0,
        proc_id: 1,
        client_id: s("c"),
    };
    let getlock = Getlock {
        typ: 0,
        start: 0,
        length: 0,
        proc_id: 1,
        client_id: s("c"),
    };
    let mut v: Vec<(Tmessage<'static>, Errno, &'static str)> = vec![
        (
            Tmessage::Walk {
                fid: u,
                newfid: 900,
                wnames: vec![],
            },
            errno::ENOENT,
            "9p.c:1930",
        ),
        (
            Tmessage::Read {
                fid: u,
                offset: 0,
                count: 10,
            },
            errno::EINVAL,
            "9p.c:2482",
        ),
        (
            Tmessage::Write {
                fid: u,
                offset: 0,
                data: SgView::from_slice(b"x"),
            },
            errno::EINVAL,
            "9p.c:2831",
        ),
        (Tmessage::Clunk { fid: u }, errno::ENOENT, "9p.c v9fs_clunk"),
        (Tmessage::Remove { fid: u }, errno::EINVAL, "9p.c:3252"),
    ];
    match proto {
        Proto::DotL => v.extend([
            (Tmessage::Statfs { fid: u }, errno::ENOENT, "9p.c:3793"),
            (
                Tmessage::Lopen { fid: u, flags: 0 },
                errno::ENOENT,
                "9p.c:2113",
            ),
            (
                Tmessage::Lcreate {
                    fid: u,
                    name: s("n"),
                    flags: 2,
                    mode: 0o644,
                    gid: 0,
                },
                errno::ENOENT,
                "9p.c:2214",
            ),
            (
                Tmessage::Symlink {
                    fid: u,
                    name: s("n"),
                    symtgt: s("t"),
                    gid: 0,
                },
                errno::EINVAL,
                "9p.c:3121",
            ),
            (
                Tmessage::Mknod {
                    dfid: u,
                    name: s("n"),
                    mode: 0o010644,
                    major: 0,
                    minor: 0,
                    gid: 0,
                },
                errno::ENOENT,
                "9p.c:3846",
            ),
            (
                Tmessage::Rename {
                    fid: u,
                    dfid: ROOT,
                    name: s("n"),
                },
                errno::ENOENT,
                "9p.c:3451",
            ),
            (Tmessage::Readlink { fid: u }, errno::ENOENT, "9p.c:4270"),
            (
                Tmessage::Getattr {
                    fid: u,
                    request_mask: getattr::BASIC,
                },
                errno::ENOENT,
                "9p.c:1678",
            ),
            (
                Tmessage::Setattr {
                    fid: u,
                    attr: SetAttr::default(),
                },
                errno::EINVAL,
                "9p.c:1757",
            ),
            (
                Tmessage::Xattrwalk {
                    fid: u,
                    newfid: 901,
                    name: s(""),
                },
                errno::ENOENT,
                "9p.c:4062",
            ),
            (
                Tmessage::Xattrcreate {
                    fid: u,
                    name: s("user.x"),
                    attr_size: 1,
                    flags: 0,
                },
                errno::EINVAL,
                "9p.c:4222",
            ),
            (
                Tmessage::Readdir {
                    fid: u,
                    offset: 0,
                    count: 100,
                },
                errno::EINVAL,
                "9p.c:2727",
            ),
            (
                Tmessage::Fsync {
                    fid: u,
                    datasync: 0,
                },
                errno::ENOENT,
                "9p.c:2273",
            ),
            (Tmessage::Lock { fid: u, lock }, errno::ENOENT, "9p.c:3907"),
            (
                Tmessage::Getlock {
                    fid: u,
                    lock: getlock,
                },
                errno::ENOENT,
                "9p.c:3956",
            ),
            (
                Tmessage::Link {
                    dfid: u,
                    fid: ROOT,
                    name: s("n"),
                },
                errno::ENOENT,
                "9p.c:3214",
            ),
            (
                Tmessage::Link {
                    dfid: ROOT,
                    fid: u,
                    name: s("n"),
                },
                errno::ENOENT,
                "9p.c:3220",
            ),
            (
                Tmessage::Mkdir {
                    dfid: u,
                    name: s("n"),
                    mode: 0o755,
                    gid: 0,
                },
                errno::ENOENT,
                "9p.c:4016",
            ),
            (
                Tmessage::Renameat {
                    olddirfid: u,
                    oldname: s("a"),
                    newdirfid: ROOT,
                    newname: s("b"),
                },
                errno::ENOENT,
                "9p.c:3530",
            ),
            (
                Tmessage::Unlinkat {
                    dirfid: u,
                    name: s("n"),
                    flags: 0,
                },
                errno::EINVAL,
                "9p.c:3322",
            ),
        ]),
        Proto::DotU => v.extend([
            (
                Tmessage::Open {
                    fid: u,
                    mode: omode::READ,
                },
                errno::ENOENT,
                "9p.c:2113",
            ),
            (
                Tmessage::Create {
                    fid: u,
                    name: s("n"),
                    perm: 0o644,
                    mode: omode::RDWR,
                    extension: s(""),
                },
                errno::EINVAL,
                "9p.c:2927",
            ),
            (Tmessage::Stat { fid: u }, errno::ENOENT, "9p.c:1626"),
            (
                Tmessage::Wstat {
                    fid: u,
                    stat: Stat {
                        mode: 0o600,
                        ..Stat::dont_touch()
                    },
                },
                errno::EINVAL,
                "9p.c:3633",
            ),
        ]),
        Proto::Unnegotiated => {}
    }
    v
}

fn check_unknown_fids(version: &str, proto: Proto) {
    let env = Env::new("unknownfid", version);
    let mut wrong = Vec::new();
    for (msg, want, line) in unknown_fid_cases(proto) {
        let got = env.msg_err(&msg);
        if got != want {
            wrong.push(format!(
                "{}: got {got:?}, 9p.c answers {want:?} ({line})",
                msg.name()
            ));
        }
    }
    assert!(env.host_entries().is_empty());
    env.assert_alive();
    assert!(
        wrong.is_empty(),
        "{version}, unknown fid:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn unknown_fid_errno_per_request_dotl() {
    check_unknown_fids("9P2000.L", Proto::DotL);
}

#[test]
fn unknown_fid_errno_per_request_dotu() {
    check_unknown_fids("9P2000.u", Proto::DotU);
}

#[test]
fn fids_before_any_attach_do_not_exist() {
    let env = Env::bare("unattached");
    env.client.version(MSIZE, "9P2000.L").unwrap();
    assert_eq!(env.client.walk::<&str>(0, 2, &[]), Err(errno::ENOENT));
    assert_eq!(env.client.walk::<&str>(ROOT, 2, &[]), Err(errno::ENOENT));
    assert_eq!(env.client.getattr(ROOT, getattr::BASIC), Err(errno::ENOENT));
    assert_eq!(env.client.clunk(ROOT), Err(errno::ENOENT));
    assert_eq!(env.client.lopen(ROOT, 0), Err(errno::ENOENT));
    // NOFID is never a valid fid either.
    assert_eq!(
        env.client.getattr(NOFID, getattr::BASIC),
        Err(errno::ENOENT)
    );
    env.client.attach(ROOT, NOFID, "root", "", 0).unwrap();
    env.assert_alive();
}

#[test]
fn fid_reuse_and_double_clunk() {
    let env = Env::new("reuse", "9P2000.L");
    std::fs::write(env.dir.join("f"), b"x").unwrap();
    // 9p.c v9fs_attach: alloc_fid fails -> EINVAL.
    assert_eq!(
        env.client.attach(ROOT, NOFID, "root", "", 0),
        Err(errno::EINVAL)
    );
    // v9fs_walk: newfid in use -> EINVAL, and the existing fid is intact.
    env.client.walk(ROOT, 2, &["f"]).unwrap();
    assert_eq!(env.client.walk::<&str>(ROOT, 2, &[]), Err(errno::EINVAL));
    assert_eq!(env.client.walk(ROOT, 2, &["f"]), Err(errno::EINVAL));
    let st = env.client.getattr(2, getattr::BASIC).unwrap();
    assert_eq!(st.mode & 0o170000, 0o100000, "fid 2 still the file");
    // v9fs_xattrwalk: newfid in use -> EINVAL.
    assert_eq!(env.client.xattrwalk(ROOT, 2, ""), Err(errno::EINVAL));
    // Walking an open fid onto itself: EINVAL (fid_type != P9_FID_NONE).
    env.client.lopen(2, dotl_open::RDONLY).unwrap();
    assert_eq!(env.client.walk::<&str>(2, 2, &[]), Err(errno::EINVAL));
    // ...but to another fid it may.
    env.client.walk::<&str>(2, 3, &[]).unwrap();
    // Clunk twice: the second is ENOENT (clunk_fid fails).
    env.client.clunk(2).unwrap();
    assert_eq!(env.client.clunk(2), Err(errno::ENOENT));
    assert_eq!(env.client.getattr(2, getattr::BASIC), Err(errno::ENOENT));
    // The number is free again.
    env.client.walk::<&str>(ROOT, 2, &[]).unwrap();
    env.client.clunk(2).unwrap();
    env.client.clunk(3).unwrap();
    // Attaching a second root on a free fid works.
    env.client.attach(4, NOFID, "root", "", 0).unwrap();
    // Walking names from an open directory onto itself: 9p.c checks
    // fid_type after the walk (EINVAL) and leaves the fid as it was.
    std::fs::create_dir(env.dir.join("sub")).unwrap();
    env.client
        .lopen(4, dotl_open::RDONLY | dotl_open::DIRECTORY)
        .unwrap();
    let before = env.client.getattr(4, getattr::BASIC).unwrap().qid;
    assert_eq!(env.client.walk(4, 4, &["sub"]), Err(errno::EINVAL));
    assert_eq!(env.client.getattr(4, getattr::BASIC).unwrap().qid, before);
    assert_eq!(env.client.readdir_all(4).unwrap().len(), 4);
    env.client.walk(4, 5, &["sub"]).unwrap();
    env.assert_alive();
}

/// Requests on a fid that is not what they need, with 9p.c's errnos.
#[test]
fn operations_on_the_wrong_kind_of_fid() {
    let env = Env::new("wrongkind", "9P2000.L");
    std::fs::write(env.dir.join("f"), b"data").unwrap();
    let fid = |names: &[&str]| {
        let f = env.client.alloc_fid();
        env.client.walk(ROOT, f, names).unwrap();
        f
    };
    // Twrite on an open directory: neither P9_FID_FILE nor XATTR -> EINVAL
    // (9p.c v9fs_write).
    let d = fid(&[]);
    env.client
        .lopen(d, dotl_open::RDONLY | dotl_open::DIRECTORY)
        .unwrap();
    assert_eq!(
        env.client.write(d, 0, b"x"),
        Err(errno::EINVAL),
        "Twrite dir"
    );
    // Tread / Twrite on an unopened fid: EINVAL.
    let f = fid(&["f"]);
    assert_eq!(
        env.client.read(f, 0, 10),
        Err(errno::EINVAL),
        "Tread unopened"
    );
    assert_eq!(
        env.client.write(f, 0, b"x"),
        Err(errno::EINVAL),
        "Twrite unopened"
    );
    // Treaddir on anything but an open directory: fid_type != P9_FID_DIR
    // -> ENOTDIR (9p.c v9fs_readdir).
    assert_eq!(
        env.client.readdir(f, 0, 100),
        Err(errno::ENOTDIR),
        "Treaddir unopened file"
    );
    let u = fid(&[]);
    assert_eq!(
        env.client.readdir(u, 0, 100),
        Err(errno::ENOTDIR),
        "Treaddir unopened dir"
    );
    env.client.lopen(f, dotl_open::RDWR).unwrap();
    assert_eq!(
        env.client.readdir(f, 0, 100),
        Err(errno::ENOTDIR),
        "Treaddir open file"
    );
    // Tfsync needs a file handle: EBADF without one; an open directory has
    // one.
    assert_eq!(
        env.client.fsync(u, false),
        Err(errno::EBADF),
        "Tfsync unopened"
    );
    env.client.fsync(d, false).unwrap();
    env.client.fsync(f, true).unwrap();
    // Tlopen of an open fid: EINVAL.
    assert_eq!(env.client.lopen(f, dotl_open::RDONLY), Err(errno::EINVAL));
    // Tlcreate on a fid that is open: EINVAL; on a file: ENOTDIR (host).
    assert_eq!(
        env.client.lcreate(d, "n", dotl_open::RDWR, 0o644, 0),
        Err(errno::EINVAL)
    );
    let g = fid(&["f"]);
    assert_eq!(
        env.client.lcreate(g, "n", dotl_open::RDWR, 0o644, 0),
        Err(errno::ENOTDIR)
    );
    assert_eq!(std::fs::read(env.dir.join("f")).unwrap(), b"data");
    env.assert_alive();
}

/// 9p.c has no Tauth handler (`#if 0`): EOPNOTSUPP.  Tattach ignores the
/// afid entirely.
#[test]
fn tauth_is_eopnotsupp_and_tattach_ignores_afid() {
    for version in ["9P2000.L", "9P2000.u"] {
        let env = Env::new("auth", version);
        let msg = Tmessage::Auth {
            afid: 9,
            uname: s("root"),
            aname: s(""),
            n_uname: 0,
        };
        assert_eq!(env.msg_err(&msg), errno::EOPNOTSUPP, "{version}");
        assert_eq!(env.client.auth(9, "root", "", 0), Err(errno::EOPNOTSUPP));
        // afid 9 does not exist; the attach works anyway.
        let qid = env.client.attach(10, 9, "root", "", 0).unwrap();
        assert_eq!(qid.typ, p9_wire::consts::qid_type::DIR);
        env.assert_alive();
    }
}

/// 9p.c `v9fs_flush`: a Tflush naming no request in flight is answered at
/// once.
#[test]
fn tflush_of_an_idle_tag_is_answered() {
    let env = Env::new("flushidle", "9P2000.L");
    for oldtag in [0u16, 1, 0x1234, 0xfffe, 0xffff] {
        env.client.flush(oldtag).unwrap();
    }
    env.assert_alive();
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

#[test]
fn illegal_names_get_9p_c_errnos() {
    let env = Env::new("names", "9P2000.L");
    std::fs::write(env.dir.join("f"), b"x").unwrap();
    std::fs::create_dir(env.dir.join("d")).unwrap();
    let before = env.host_entries();
    let dirfid = || {
        let d = env.client.alloc_fid();
        env.client.clone_fid(ROOT, d).unwrap();
        d
    };
    let file = env.client.alloc_fid();
    env.client.walk(ROOT, file, &["f"]).unwrap();

    // Twalk: name_is_illegal -> ENOENT; a NUL is refused by the decoder
    // (EINVAL; 9p.c would cut the name at the NUL).
    for (name, want) in [
        (&b"a/b"[..], errno::ENOENT),
        (b"/", errno::ENOENT),
        (b"", errno::ENOENT),
        (b"../..", errno::ENOENT),
        (b"f\0x", errno::EINVAL),
    ] {
        let msg = Tmessage::Walk {
            fid: ROOT,
            newfid: 40,
            wnames: vec![s("d"), nb(name)],
        };
        assert_eq!(env.msg_err(&msg), want, "walk {:?}", name.escape_ascii());
    }

    // Longer than NAME_MAX: the host's ENAMETOOLONG.
    let long = "n".repeat(256);
    assert_eq!(
        env.client.walk(ROOT, 40, &[long.as_str()]),
        Err(errno::ENAMETOOLONG)
    );
    assert_eq!(
        env.client.mkdir(ROOT, long.as_str(), 0o755, 0),
        Err(errno::ENAMETOOLONG)
    );
    assert_eq!(
        env.client
            .lcreate(dirfid(), long.as_str(), dotl_open::RDWR, 0o644, 0),
        Err(errno::ENAMETOOLONG)
    );

    // Creating names: name_is_illegal -> ENOENT, "." and ".." -> EEXIST.
    let create_cases = [
        (&b"a/b"[..], errno::ENOENT),
        (b"", errno::ENOENT),
        (b"/", errno::ENOENT),
        (b".", errno::EEXIST),
        (b"..", errno::EEXIST),
        (b"x\0y", errno::EINVAL),
    ];
    for (name, want) in create_cases {
        let n = nb(name);
        let msgs = vec![
            Tmessage::Lcreate {
                fid: dirfid(),
                name: n.clone(),
                flags: dotl_open::RDWR,
                mode: 0o644,
                gid: 0,
            },
            Tmessage::Mkdir {
                dfid: ROOT,
                name: n.clone(),
                mode: 0o755,
                gid: 0,
            },
            Tmessage::Symlink {
                fid: ROOT,
                name: n.clone(),
                symtgt: s("f"),
                gid: 0,
            },
            Tmessage::Mknod {
                dfid: ROOT,
                name: n.clone(),
                mode: 0o010644,
                major: 0,
                minor: 0,
                gid: 0,
            },
            Tmessage::Link {
                dfid: ROOT,
                fid: file,
                name: n.clone(),
            },
        ];
        for msg in &msgs {
            assert_eq!(
                env.msg_err(msg),
                want,
                "{} {:?}",
                msg.name(),
                name.escape_ascii()
            );
        }
    }

    // Tunlinkat: ENOENT, "." -> EINVAL, ".." -> ENOTEMPTY; bad flags EINVAL.
    for (name, flags, want) in [
        (&b"d/x"[..], 0, errno::ENOENT),
        (b"", 0, errno::ENOENT),
        (b".", 0, errno::EINVAL),
        (b"..", 0, errno::ENOTEMPTY),
        (b"f", 1, errno::EINVAL),
    ] {
        let msg = Tmessage::Unlinkat {
            dirfid: ROOT,
            name: nb(name),
            flags,
        };
        assert_eq!(
            env.msg_err(&msg),
            want,
            "unlinkat {:?}",
            name.escape_ascii()
        );
    }

    // Trename / Trenameat: ENOENT, then "."/".." -> EISDIR.
    for (name, want) in [
        (&b"a/b"[..], errno::ENOENT),
        (b"", errno::ENOENT),
        (b".", errno::EISDIR),
        (b"..", errno::EISDIR),
    ] {
        let msg = Tmessage::Rename {
            fid: file,
            dfid: ROOT,
            name: nb(name),
        };
        assert_eq!(env.msg_err(&msg), want, "rename {:?}", name.escape_ascii());
        let msg = Tmessage::Renameat {
            olddirfid: ROOT,
            oldname: s("f"),
            newdirfid: ROOT,
            newname: nb(name),
        };
        assert_eq!(
            env.msg_err(&msg),
            want,
            "renameat to {:?}",
            name.escape_ascii()
        );
        let msg = Tmessage::Renameat {
            olddirfid: ROOT,
            oldname: nb(name),
            newdirfid: ROOT,
            newname: s("g"),
        };
        assert_eq!(
            env.msg_err(&msg),
            want,
            "renameat from {:?}",
            name.escape_ascii()
        );
    }
    // ENOENT (illegal) wins over EISDIR (dots) across the two names.
    let msg = Tmessage::Renameat {
        olddirfid: ROOT,
        oldname: s(".."),
        newdirfid: ROOT,
        newname: s("a/b"),
    };
    assert_eq!(env.msg_err(&msg), errno::ENOENT);

    assert_eq!(env.host_entries(), before);
    assert_eq!(std::fs::read(env.dir.join("f")).unwrap(), b"x");
    env.assert_alive();
}

#[test]
fn illegal_names_in_dotu_tcreate() {
    let env = Env::new("unames", "9P2000.u");
    for (name, want) in [
        ("a/b", errno::ENOENT),
        ("", errno::ENOENT),
        (".", errno::EEXIST),
        ("..", errno::EEXIST),
    ] {
        for perm in [0o644, p9_wire::consts::dm::DIR | 0o755] {
            let d = env.client.alloc_fid();
            env.client.clone_fid(ROOT, d).unwrap();
            assert_eq!(
                env.client.create(d, name, perm, omode::RDWR, ""),
                Err(want),
                "Tcreate {name:?} perm {perm:#x}"
            );
        }
    }
    assert!(env.host_entries().is_empty());
    env.assert_alive();
}

// ---------------------------------------------------------------------------
// Fuzz
// ---------------------------------------------------------------------------

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

const FILE: u32 = 2;
const DIR: u32 = 3;

/// Fids 1 (root), 2 (file "f", open read/write), 3 (the root, open as a
/// directory) in a fresh 9P2000.L session.
fn fuzz_setup(env: &Env) {
    env.client.version(MSIZE, "9P2000.L").unwrap();
    let ok = std::fs::write(env.dir.join("f"), b"fuzz file contents").is_ok();
    if !ok {
        // Whatever the fuzzer made of "f", start over.
        let _ = std::fs::remove_dir_all(env.dir.join("f"));
        let _ = std::fs::remove_file(env.dir.join("f"));
        std::fs::write(env.dir.join("f"), b"fuzz file contents").unwrap();
    }
    env.client.attach(ROOT, NOFID, "root", "", 0).unwrap();
    env.client.walk(ROOT, FILE, &["f"]).unwrap();
    env.client.lopen(FILE, dotl_open::RDWR).unwrap();
    env.client.walk::<&str>(ROOT, DIR, &[]).unwrap();
    env.client.lopen(DIR, dotl_open::RDONLY).unwrap();
}

fn fuzz_corpus() -> Vec<Vec<u8>> {
    let lock = Flock {
        typ: 1,
        flags: 0,
        start: 0,
        length: 10,
        proc_id: 7,
        client_id: s("fuzz"),
    };
    let getlock = Getlock {
        typ: 1,
        start: 0,
        length: 10,
        proc_id: 7,
        client_id: s("fuzz"),
    };
    let st = Stat {
        mode: 0o644,
        ..Stat::dont_touch()
    };
    let msgs: Vec<Tmessage<'static>> = vec![
        Tmessage::Version {
            msize: MSIZE,
            version: s("9P2000.L"),
        },
        Tmessage::Attach {
            fid: 10,
            afid: NOFID,
            uname: s("root"),
            aname: s(""),
            n_uname: 0,
        },
        Tmessage::Auth {
            afid: 11,
            uname: s("root"),
            aname: s(""),
            n_uname: 0,
        },
        Tmessage::Flush { oldtag: 5 },
        Tmessage::Walk {
            fid: ROOT,
            newfid: 12,
            wnames: vec![s("f")],
        },
        Tmessage::Walk {
            fid: ROOT,
            newfid: 13,
            wnames: vec![s(".."), s("."), s("sub"), s("x")],
        },
        Tmessage::Read {
            fid: FILE,
            offset: 0,
            count: 100,
        },
        Tmessage::Read {
            fid: DIR,
            offset: 0,
            count: 100,
        },
        Tmessage::Write {
            fid: FILE,
            offset: 3,
            data: SgView::from_slice(b"written by the fuzzer"),
        },
        Tmessage::Clunk { fid: 12 },
        Tmessage::Remove { fid: 13 },
        Tmessage::Statfs { fid: ROOT },
        Tmessage::Lopen { fid: 12, flags: 2 },
        Tmessage::Lcreate {
            fid: 12,
            name: s("new"),
            flags: 0o102,
            mode: 0o644,
            gid: 0,
        },
        Tmessage::Symlink {
            fid: ROOT,
            name: s("sl"),
            symtgt: s("f"),
            gid: 0,
        },
        Tmessage::Mknod {
            dfid: ROOT,
            name: s("pipe"),
            mode: 0o010644,
            major: 0,
            minor: 0,
            gid: 0,
        },
        Tmessage::Rename {
            fid: 12,
            dfid: ROOT,
            name: s("renamed"),
        },
        Tmessage::Readlink { fid: 12 },
        Tmessage::Getattr {
            fid: FILE,
            request_mask: getattr::ALL,
        },
        Tmessage::Setattr {
            fid: FILE,
            attr: SetAttr {
                valid: 0x1f,
                mode: 0o600,
                uid: 0,
                gid: 0,
                size: 5,
                ..SetAttr::default()
            },
        },
        Tmessage::Xattrwalk {
            fid: ROOT,
            newfid: 14,
            name: s(""),
        },
        Tmessage::Xattrcreate {
            fid: 12,
            name: s("user.fuzz"),
            attr_size: 4,
            flags: 0,
        },
        Tmessage::Readdir {
            fid: DIR,
            offset: 0,
            count: 500,
        },
        Tmessage::Fsync {
            fid: FILE,
            datasync: 1,
        },
        Tmessage::Lock { fid: FILE, lock },
        Tmessage::Getlock {
            fid: FILE,
            lock: getlock,
        },
        Tmessage::Link {
            dfid: ROOT,
            fid: FILE,
            name: s("hard"),
        },
        Tmessage::Mkdir {
            dfid: ROOT,
            name: s("sub"),
            mode: 0o755,
            gid: 0,
        },
        Tmessage::Renameat {
            olddirfid: ROOT,
            oldname: s("hard"),
            newdirfid: ROOT,
            newname: s("hard2"),
        },
        Tmessage::Unlinkat {
            dirfid: ROOT,
            name: s("sub"),
            flags: 0x200,
        },
        // 9P2000.u messages (refused in .L unless a mutation negotiates .u).
        Tmessage::Open {
            fid: 12,
            mode: omode::RDWR,
        },
        Tmessage::Create {
            fid: 12,
            name: s("ucreate"),
            perm: 0o644,
            mode: omode::RDWR,
            extension: s(""),
        },
        Tmessage::Stat { fid: ROOT },
        Tmessage::Wstat {
            fid: FILE,
            stat: st,
        },
    ];
    msgs.iter()
        .enumerate()
        .map(|(i, m)| m.encode_to_vec(i as u16).unwrap())
        .collect()
}

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut m = corpus[rng.below(corpus.len())].clone();
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        match rng.below(9) {
            0 => {
                for _ in 0..1 + rng.below(4) {
                    if !m.is_empty() {
                        let i = rng.below(m.len());
                        m[i] ^= 1 << rng.below(8);
                    }
                }
            }
            1 => {
                for _ in 0..1 + rng.below(4) {
                    if !m.is_empty() {
                        let i = rng.below(m.len());
                        m[i] = rng.byte();
                    }
                }
            }
            2 => {
                let len = rng.below(m.len() + 1);
                m.truncate(len);
            }
            3 => {
                for _ in 0..1 + rng.below(16) {
                    m.push(rng.byte());
                }
            }
            4 => {
                if m.len() > 4 {
                    m[4] = rng.byte();
                }
            }
            5 => {
                // A 16-bit field (string length, count) set to something big.
                if m.len() > 9 {
                    let i = 7 + rng.below(m.len() - 8);
                    let v: u16 = match rng.below(3) {
                        0 => 0xffff,
                        1 => 0,
                        _ => rng.next() as u16,
                    };
                    m[i..i + 2].copy_from_slice(&v.to_le_bytes());
                }
            }
            6 => {
                // A 32-bit field (fid, count, size) set to an edge value.
                if m.len() > 11 {
                    let i = 7 + rng.below(m.len() - 10);
                    let v: u32 = match rng.below(4) {
                        0 => u32::MAX,
                        1 => 0,
                        2 => MSIZE,
                        _ => rng.next() as u32,
                    };
                    m[i..i + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            7 => {
                let len = rng.below(48);
                m = (0..len).map(|_| rng.byte()).collect();
            }
            _ => {
                // Splice the tail of another message.
                let other = &corpus[rng.below(corpus.len())];
                let at = rng.below(m.len() + 1);
                let from = rng.below(other.len() + 1);
                m.truncate(at);
                m.extend_from_slice(&other[from..]);
            }
        }
    }
    // Usually keep the size field consistent, so the body decoders are
    // reached.
    if m.len() >= 4 && rng.below(4) != 0 {
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_le_bytes());
    }
    m
}

/// A few thousand random and bit-flipped messages: the server never
/// panics or hangs, answers every message that has a header with a reply
/// for its tag that decodes (an error or the request's reply type), and
/// none without one.
#[test]
fn fuzzed_messages_never_panic_or_hang() {
    let env = Env::bare("fuzz");
    fuzz_setup(&env);
    let corpus = fuzz_corpus();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let iterations = 20_000;
    let mut errors = 0usize;
    let mut ok = 0usize;
    for i in 0..iterations {
        if i % 64 == 0 {
            fuzz_setup(&env);
        }
        let req = mutate(&mut rng, &corpus);
        let before = (env.server().proto(), env.server().msize());
        let (tx, rx) = mpsc::channel();
        env.client.transport().submit(req.clone(), move |r| {
            let _ = tx.send(r);
        });
        let reply = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(r) => r,
            Err(_) => {
                let hex: String = req.iter().map(|b| format!("{b:02x}")).collect();
                // The server is stuck: do not wait for its threads.
                std::mem::forget(env);
                panic!("iteration {i}: no answer within 20 s to {hex}");
            }
        };
        let after = (env.server().proto(), env.server().msize());
        let hex: String = req.iter().take(64).map(|b| format!("{b:02x}")).collect();
        if req.len() < 7 {
            assert_eq!(reply, None, "iteration {i}: reply to {} bytes", req.len());
            continue;
        }
        let reply =
            reply.unwrap_or_else(|| panic!("iteration {i}: no reply to {hex} (not a flush)"));
        let tag = u16::from_le_bytes([req[5], req[6]]);
        let typ = req[4];
        let bound = before.1.max(after.1);
        let protos: &[Proto] = if typ == mt::TVERSION {
            &[Proto::DotL, Proto::DotU, Proto::Unnegotiated]
        } else {
            assert_eq!(before.0, after.0, "iteration {i}: dialect changed by {hex}");
            std::slice::from_ref(&before.0)
        };
        let decoded = protos
            .iter()
            .find_map(|p| Rmessage::decode_slice(&reply, *p, bound).ok());
        let Some((rtag, msg)) = decoded else {
            let rhex: String = reply.iter().take(64).map(|b| format!("{b:02x}")).collect();
            panic!("iteration {i}: undecodable reply {rhex} to {hex}");
        };
        assert_eq!(rtag, tag, "iteration {i}: reply tag for {hex}");
        match msg {
            Rmessage::Lerror { .. } | Rmessage::Error { .. } => errors += 1,
            other => {
                assert_eq!(
                    other.msg_type(),
                    typ.wrapping_add(1),
                    "iteration {i}: {other:?} answers {hex}"
                );
                ok += 1;
            }
        }
        if typ == mt::TVERSION {
            fuzz_setup(&env);
        }
    }
    eprintln!("fuzz: {ok} replies, {errors} error replies");
    assert!(ok > 50, "the fuzzer hardly reached a handler: {ok} replies");
    fuzz_setup(&env);
    env.assert_alive();
    assert_eq!(
        env.client.read(FILE, 0, 100).unwrap(),
        b"fuzz file contents"
    );
}
