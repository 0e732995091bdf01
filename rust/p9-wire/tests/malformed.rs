// SPDX-License-Identifier: GPL-2.0-or-later
//! Specific malformed inputs, dialect rules, the zero-copy Twrite view,
//! argument checks and error replies.

mod common;

use common::*;
use p9_wire::consts::{NOTAG, P9_MAXWELEM};
use p9_wire::errno::{self, Errno};
use p9_wire::{
    encode_error, max_read_count, DecodeErrorKind, Flock, Header, P9String, Proto, Qid, Rmessage,
    SgView, Stat, Tmessage,
};

/// Build a raw message from a type, tag and body.
fn raw(typ: u8, tag: u16, body: &[u8]) -> Vec<u8> {
    let mut v = ((7 + body.len()) as u32).to_le_bytes().to_vec();
    v.push(typ);
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(body);
    v
}

fn kind_t(bytes: &[u8], proto: Proto) -> DecodeErrorKind {
    Tmessage::decode_slice(bytes, proto, MSIZE)
        .unwrap_err()
        .kind()
}

#[test]
fn empty_and_tiny_inputs_have_no_tag() {
    for n in 0..7 {
        let buf = vec![0u8; n];
        let e = Tmessage::decode_slice(&buf, Proto::DotL, MSIZE).unwrap_err();
        assert_eq!(e.kind(), DecodeErrorKind::ShortHeader { available: n });
        assert_eq!((e.tag(), e.msg_type()), (None, None));
        assert_eq!(e.errno(), errno::EINVAL);
    }
    let e = Tmessage::decode(&[], Proto::DotL, MSIZE).unwrap_err();
    assert_eq!(e.kind(), DecodeErrorKind::ShortHeader { available: 0 });
}

#[test]
fn header_peek() {
    let bytes = hex("0b000000 78 3412 01000000");
    assert_eq!(
        Header::peek(SgView::from_slice(&bytes)),
        Some(Header {
            size: 11,
            typ: 120,
            tag: 0x1234
        })
    );
    let segs: [&[u8]; 3] = [&bytes[..1], &bytes[1..6], &bytes[6..7]];
    assert_eq!(Header::peek(SgView::new(&segs)).unwrap().tag, 0x1234);
    assert_eq!(Header::peek(SgView::from_slice(&bytes[..6])), None);
}

#[test]
fn size_below_header_reports_tag() {
    let mut m = raw(120, 0x4242, &1u32.to_le_bytes());
    m[..4].copy_from_slice(&6u32.to_le_bytes());
    let e = Tmessage::decode_slice(&m, Proto::DotL, MSIZE).unwrap_err();
    assert_eq!(e.kind(), DecodeErrorKind::SizeTooSmall { size: 6 });
    assert_eq!(e.tag(), Some(0x4242));
    assert_eq!(e.msg_type(), Some(120));
}

#[test]
fn unknown_types_report_tag_and_eopnotsupp() {
    for typ in [0u8, 6, 10, 28, 99, 106, 128, 200, 255] {
        let m = raw(typ, 77, &[1, 2, 3]);
        for proto in ALL_PROTOS {
            let e = Tmessage::decode_slice(&m, proto, MSIZE).unwrap_err();
            assert_eq!(e.kind(), DecodeErrorKind::UnknownType(typ), "{typ}");
            assert_eq!(e.tag(), Some(77));
            assert_eq!(e.errno(), errno::EOPNOTSUPP);
        }
    }
}

#[test]
fn unnegotiated_accepts_only_tversion() {
    let walk = Tmessage::Walk {
        fid: 1,
        newfid: 2,
        wnames: vec![],
    };
    let bytes = walk.encode_to_vec(3).unwrap();
    let e = Tmessage::decode_slice(&bytes, Proto::Unnegotiated, MSIZE).unwrap_err();
    assert_eq!(
        e.kind(),
        DecodeErrorKind::NotInProtocol {
            typ: 110,
            proto: Proto::Unnegotiated
        }
    );
    assert_eq!((e.tag(), e.errno()), (Some(3), errno::EOPNOTSUPP));
    let version = Tmessage::Version {
        msize: 65536,
        version: "9P2000.u".into(),
    };
    let bytes = version.encode_to_vec(NOTAG).unwrap();
    let (tag, msg) = Tmessage::decode_slice(&bytes, Proto::Unnegotiated, MSIZE).unwrap();
    assert_eq!((tag, msg), (NOTAG, version));
}

#[test]
fn walk_element_limit() {
    let mk = |n: usize| Tmessage::Walk {
        fid: 1,
        newfid: 2,
        wnames: (0..n).map(|i| P9String::from(format!("d{i}"))).collect(),
    };
    let ok = mk(P9_MAXWELEM).encode_to_vec(1).unwrap();
    assert!(Tmessage::decode_slice(&ok, Proto::DotL, MSIZE).is_ok());
    let bad = mk(17).encode_to_vec(1).unwrap();
    let e = Tmessage::decode_slice(&bad, Proto::DotL, MSIZE).unwrap_err();
    assert_eq!(e.kind(), DecodeErrorKind::TooManyWalkElements(17));
    assert_eq!((e.tag(), e.errno()), (Some(1), errno::EINVAL));
    // nwname 0xffff with no names behind it: refused before reading names.
    let mut body = vec![1, 0, 0, 0, 2, 0, 0, 0];
    body.extend_from_slice(&u16::MAX.to_le_bytes());
    assert_eq!(
        kind_t(&raw(110, 1, &body), Proto::DotL),
        DecodeErrorKind::TooManyWalkElements(u16::MAX)
    );
    // And the reply side.
    let rwalk = Rmessage::Walk {
        wqids: vec![Qid::default(); 17],
    };
    let bytes = rwalk.encode_to_vec(1).unwrap();
    let e = Rmessage::decode_slice(&bytes, Proto::DotL, MSIZE).unwrap_err();
    assert_eq!(e.kind(), DecodeErrorKind::TooManyWalkElements(17));
}

#[test]
fn string_length_past_end() {
    // Tversion whose version string claims 0xffff bytes.
    let mut body = 8192u32.to_le_bytes().to_vec();
    body.extend_from_slice(&u16::MAX.to_le_bytes());
    body.extend_from_slice(b"9P2000.L");
    let e =
        Tmessage::decode_slice(&raw(100, NOTAG, &body), Proto::Unnegotiated, MSIZE).unwrap_err();
    assert_eq!(e.kind(), DecodeErrorKind::Truncated);
    assert_eq!((e.tag(), e.errno()), (Some(NOTAG), errno::EINVAL));
    // A string one byte longer than what is left.
    let mut body = 5u32.to_le_bytes().to_vec();
    body.extend_from_slice(&4u16.to_le_bytes());
    body.extend_from_slice(b"abc");
    assert_eq!(
        kind_t(&raw(22 + 50, 1, &body), Proto::DotL),
        DecodeErrorKind::Truncated
    );
}

#[test]
fn nul_in_strings_is_refused() {
    let m = Tmessage::Mkdir {
        dfid: 1,
        name: P9String::new(b"a\0b".to_vec()),
        mode: 0o755,
        gid: 0,
    };
    let bytes = m.encode_to_vec(4).unwrap();
    let e = Tmessage::decode_slice(&bytes, Proto::DotL, MSIZE).unwrap_err();
    assert_eq!(e.kind(), DecodeErrorKind::NulInString);
    assert_eq!((e.tag(), e.errno()), (Some(4), errno::EINVAL));
    // Non-UTF-8 names are fine.
    let m = Tmessage::Mkdir {
        dfid: 1,
        name: P9String::new(b"\xff\xfe".to_vec()),
        mode: 0o755,
        gid: 0,
    };
    let bytes = m.encode_to_vec(4).unwrap();
    assert_eq!(
        Tmessage::decode_slice(&bytes, Proto::DotL, MSIZE)
            .unwrap()
            .1,
        m
    );
}

#[test]
fn twrite_count_must_match_data() {
    let body = |count: u32, data: &[u8]| {
        let mut b = 9u32.to_le_bytes().to_vec();
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(data);
        b
    };
    for (count, data) in [
        (6u32, &b"hello"[..]),
        (4, b"hello"),
        (u32::MAX, b"x"),
        (1, b""),
    ] {
        let e = Tmessage::decode_slice(&raw(118, 8, &body(count, data)), Proto::DotL, MSIZE)
            .unwrap_err();
        assert_eq!(
            e.kind(),
            DecodeErrorKind::CountMismatch {
                count,
                available: data.len()
            }
        );
        assert_eq!((e.tag(), e.errno()), (Some(8), errno::EINVAL));
    }
    // Rread likewise.
    let mut b = 3u32.to_le_bytes().to_vec();
    b.extend_from_slice(b"ab");
    let e = Rmessage::decode_slice(&raw(117, 8, &b), Proto::DotL, MSIZE).unwrap_err();
    assert_eq!(
        e.kind(),
        DecodeErrorKind::CountMismatch {
            count: 3,
            available: 2
        }
    );
}

#[test]
fn read_counts_are_limited_by_msize() {
    let msize = 4096;
    assert_eq!(max_read_count(msize), 4085);
    assert_eq!(max_read_count(5), 0);
    let read = |count| Tmessage::Read {
        fid: 1,
        offset: 0,
        count,
    };
    let ok = read(msize - 11).encode_to_vec(2).unwrap();
    assert!(Tmessage::decode_slice(&ok, Proto::DotL, msize).is_ok());
    for count in [msize - 10, msize, u32::MAX] {
        let bad = read(count).encode_to_vec(2).unwrap();
        let e = Tmessage::decode_slice(&bad, Proto::DotL, msize).unwrap_err();
        assert_eq!(
            e.kind(),
            DecodeErrorKind::CountTooLarge {
                count,
                max: msize - 11
            }
        );
        assert_eq!((e.tag(), e.errno()), (Some(2), errno::EMSGSIZE));
    }
}

/// Treaddir counts above msize - 11 decode as sent: 9p.c clamps them (the
/// reply writer caps the entries at msize - 11).
#[test]
fn readdir_counts_above_msize_are_kept_for_clamping() {
    let msize = 4096;
    for count in [msize - 11, msize - 10, msize, u32::MAX] {
        let msg = Tmessage::Readdir {
            fid: 1,
            offset: 0,
            count,
        };
        let bytes = msg.encode_to_vec(2).unwrap();
        let (tag, got) = Tmessage::decode_slice(&bytes, Proto::DotL, msize).unwrap();
        assert_eq!((tag, got), (2, msg));
    }
}

#[test]
fn stat_size_field_must_match() {
    let stat = Stat {
        name: "f".into(),
        ..Stat::default()
    };
    let good = Tmessage::Wstat { fid: 1, stat }.encode_to_vec(3).unwrap();
    assert!(Tmessage::decode_slice(&good, Proto::DotU, MSIZE).is_ok());
    // The inner size field sits after fid[4] n[2].
    let inner = 7 + 4 + 2;
    for delta in [-1i32, 1, -60] {
        let mut bad = good.clone();
        let v = u16::from_le_bytes([bad[inner], bad[inner + 1]]) as i32 + delta;
        bad[inner..inner + 2].copy_from_slice(&(v as u16).to_le_bytes());
        let e = Tmessage::decode_slice(&bad, Proto::DotU, MSIZE).unwrap_err();
        assert_eq!(e.errno(), errno::EINVAL, "delta {delta}");
        assert!(
            matches!(
                e.kind(),
                DecodeErrorKind::BadStatSize | DecodeErrorKind::Truncated
            ),
            "delta {delta}: {e}"
        );
    }
    // The outer n[2] is ignored, as by 9p.c and Linux: QEMU itself sends 0
    // in Rstat.
    let rstat = Rmessage::Stat {
        stat: Stat::dont_touch(),
    };
    let mut bytes = rstat.encode_to_vec(9).unwrap();
    bytes[7..9].copy_from_slice(&0u16.to_le_bytes());
    let (_, got) = Rmessage::decode_slice(&bytes, Proto::DotU, MSIZE).unwrap();
    assert_eq!(got, rstat);
    // Stats inside .u directory data are delimited by their size fields.
    let mut data = Stat::dont_touch().to_bytes().unwrap();
    data.extend_from_slice(&Stat::default().to_bytes().unwrap());
    let got: Vec<Stat> = Stat::iter(SgView::from_slice(&data))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got, [Stat::dont_touch(), Stat::default()]);
    data.pop();
    let got: Vec<_> = Stat::iter(SgView::from_slice(&data)).collect();
    assert_eq!(got.len(), 2);
    assert!(got[0].is_ok());
    assert_eq!(
        got[1].as_ref().unwrap_err().kind(),
        DecodeErrorKind::Truncated
    );
}

#[test]
fn twrite_data_is_borrowed_not_copied() {
    let msg = Tmessage::Write {
        fid: 3,
        offset: 77,
        data: SgView::from_slice(b"The quick brown fox"),
    };
    let bytes = msg.encode_to_vec(1).unwrap();
    for segs in segmentations(&bytes) {
        let (_, got) = Tmessage::decode(&segs, Proto::DotL, MSIZE).unwrap();
        let Tmessage::Write { data, .. } = got else {
            panic!("not a Twrite");
        };
        assert_eq!(data.len(), 19);
        assert_eq!(data.to_vec(), b"The quick brown fox");
        let mut total = 0;
        for piece in data.pieces() {
            assert!(!piece.is_empty());
            // Every piece lies inside one of the input segments.
            let inside = segs.iter().any(|s| {
                let r = s.as_ptr_range();
                let p = piece.as_ptr_range();
                r.start <= p.start && p.end <= r.end
            });
            assert!(inside, "piece not borrowed from the input");
            total += piece.len();
        }
        assert_eq!(total, 19);
        // Pieces are the data's part of each segment, so their count is
        // the number of non-empty segments the data touches.
        let data_start = 23;
        let mut off = 0;
        let mut touched = 0;
        for s in &segs {
            let (a, b) = (off, off + s.len());
            if a.max(data_start) < b.min(bytes.len()) {
                touched += 1;
            }
            off = b;
        }
        assert_eq!(data.pieces().count(), touched);
        let mut copy = [0u8; 5];
        assert_eq!(data.copy_to(&mut copy), 5);
        assert_eq!(&copy, b"The q");
    }
}

#[test]
fn check_args_mirrors_9p_c() {
    use p9_wire::consts::{lock_flags, xattr_flags, AT_REMOVEDIR, XATTR_SIZE_MAX};
    let s = |x: &str| P9String::from(x);
    let walk = |names: &[&str]| Tmessage::Walk {
        fid: 0,
        newfid: 1,
        wnames: names.iter().map(|n| s(n)).collect(),
    };
    let cases: Vec<(Tmessage<'static>, Result<(), Errno>)> = vec![
        (walk(&["a", "..", "."]), Ok(())),
        (walk(&["a", "", "b/c"]), Err(errno::ENOENT)),
        (walk(&["a/b"]), Err(errno::ENOENT)),
        (
            Tmessage::Lcreate {
                fid: 0,
                name: s(".."),
                flags: 0,
                mode: 0,
                gid: 0,
            },
            Err(errno::EEXIST),
        ),
        (
            Tmessage::Create {
                fid: 0,
                name: s("."),
                perm: 0,
                mode: 0,
                extension: s(""),
            },
            Err(errno::EEXIST),
        ),
        (
            Tmessage::Symlink {
                fid: 0,
                name: s("ok"),
                symtgt: s("../../x/.."),
                gid: 0,
            },
            Ok(()),
        ),
        (
            Tmessage::Symlink {
                fid: 0,
                name: s(""),
                symtgt: s("t"),
                gid: 0,
            },
            Err(errno::ENOENT),
        ),
        (
            Tmessage::Mknod {
                dfid: 0,
                name: s("."),
                mode: 0,
                major: 0,
                minor: 0,
                gid: 0,
            },
            Err(errno::EEXIST),
        ),
        (
            Tmessage::Mkdir {
                dfid: 0,
                name: s("x/"),
                mode: 0,
                gid: 0,
            },
            Err(errno::ENOENT),
        ),
        (
            Tmessage::Link {
                dfid: 0,
                fid: 1,
                name: s(".."),
            },
            Err(errno::EEXIST),
        ),
        (
            Tmessage::Unlinkat {
                dirfid: 0,
                name: s("."),
                flags: 0,
            },
            Err(errno::EINVAL),
        ),
        (
            Tmessage::Unlinkat {
                dirfid: 0,
                name: s(".."),
                flags: 0,
            },
            Err(errno::ENOTEMPTY),
        ),
        (
            Tmessage::Unlinkat {
                dirfid: 0,
                name: s("d"),
                flags: AT_REMOVEDIR,
            },
            Ok(()),
        ),
        (
            Tmessage::Unlinkat {
                dirfid: 0,
                name: s("d"),
                flags: 1,
            },
            Err(errno::EINVAL),
        ),
        (
            Tmessage::Rename {
                fid: 0,
                dfid: 1,
                name: s(".."),
            },
            Err(errno::EISDIR),
        ),
        (
            Tmessage::Renameat {
                olddirfid: 0,
                oldname: s("."),
                newdirfid: 1,
                newname: s(""),
            },
            Err(errno::ENOENT),
        ),
        (
            Tmessage::Renameat {
                olddirfid: 0,
                oldname: s("a"),
                newdirfid: 1,
                newname: s(".."),
            },
            Err(errno::EISDIR),
        ),
        (
            Tmessage::Wstat {
                fid: 0,
                stat: Stat::dont_touch(),
            },
            Ok(()),
        ),
        (
            Tmessage::Wstat {
                fid: 0,
                stat: Stat {
                    name: s(".."),
                    ..Stat::dont_touch()
                },
            },
            Err(errno::EISDIR),
        ),
        (
            Tmessage::Xattrwalk {
                fid: 0,
                newfid: 1,
                name: s(""),
            },
            Ok(()),
        ),
        (
            Tmessage::Xattrcreate {
                fid: 0,
                name: s("user.a"),
                attr_size: XATTR_SIZE_MAX,
                flags: xattr_flags::CREATE | xattr_flags::REPLACE,
            },
            Ok(()),
        ),
        (
            Tmessage::Xattrcreate {
                fid: 0,
                name: s("user.a"),
                attr_size: XATTR_SIZE_MAX + 1,
                flags: 0,
            },
            Err(errno::E2BIG),
        ),
        (
            Tmessage::Xattrcreate {
                fid: 0,
                name: s("user.a"),
                attr_size: XATTR_SIZE_MAX + 1,
                flags: 4,
            },
            Err(errno::EINVAL),
        ),
        (
            Tmessage::Lock {
                fid: 0,
                lock: Flock {
                    flags: lock_flags::BLOCK,
                    ..Flock::default()
                },
            },
            Ok(()),
        ),
        (
            Tmessage::Lock {
                fid: 0,
                lock: Flock {
                    flags: lock_flags::RECLAIM,
                    ..Flock::default()
                },
            },
            Err(errno::EINVAL),
        ),
        (
            Tmessage::Attach {
                fid: 0,
                afid: u32::MAX,
                uname: s(""),
                aname: s("/a/b"),
                n_uname: 0,
            },
            Ok(()),
        ),
    ];
    for (msg, want) in cases {
        assert_eq!(msg.check_args(), want, "{msg:?}");
    }
}

#[test]
fn error_replies() {
    // 9P2000.L: Rlerror carries only the errno.
    let mut buf = [0u8; 64];
    let n = encode_error(Proto::DotL, 5, errno::ENOENT, &mut [&mut buf[..]]).unwrap();
    assert_eq!(&buf[..n], &hex("0b000000 07 0500 02000000")[..]);
    // 9P2000.u: Rerror with strerror() text and the errno, as pdu_complete.
    let n = encode_error(Proto::DotU, 5, errno::EACCES, &mut [&mut buf[..]]).unwrap();
    assert_eq!(
        &buf[..n],
        &hex("1e000000 6b 0500 1100 5065726d697373696f6e2064656e696564 0d000000")[..]
    );
    // Before negotiation 9p.c takes the non-.L branch too.
    assert_eq!(
        Rmessage::error(Proto::Unnegotiated, errno::EMSGSIZE),
        Rmessage::Error {
            ename: "Message too long".into(),
            errno: errno::EMSGSIZE
        }
    );
    assert_eq!(
        Rmessage::error(Proto::DotU, Errno(4000)),
        Rmessage::Error {
            ename: "Unknown error 4000".into(),
            errno: Errno(4000)
        }
    );
    // The error from a decode failure can be sent right back.
    let bytes = raw(230, 12, &[]);
    let e = Tmessage::decode_slice(&bytes, Proto::DotL, MSIZE).unwrap_err();
    let reply = Rmessage::error(Proto::DotL, e.errno());
    let out = reply.encode_to_vec(e.tag().unwrap()).unwrap();
    let (tag, back) = Rmessage::decode_slice(&out, Proto::DotL, MSIZE).unwrap();
    assert_eq!(tag, 12);
    assert_eq!(
        back,
        Rmessage::Lerror {
            ecode: errno::EOPNOTSUPP
        }
    );
}

#[test]
fn encode_limits() {
    let long = P9String::new(vec![b'x'; 65536]);
    let m = Tmessage::Mkdir {
        dfid: 1,
        name: long,
        mode: 0,
        gid: 0,
    };
    assert_eq!(m.byte_size(), usize::MAX);
    let e = m.encode_to_vec(1).unwrap_err();
    assert_eq!(e.errno(), errno::ENAMETOOLONG);
    let max = P9String::new(vec![b'x'; 65535]);
    let m = Tmessage::Mkdir {
        dfid: 1,
        name: max,
        mode: 0,
        gid: 0,
    };
    assert_eq!(m.byte_size(), 7 + 4 + 2 + 65535 + 8);
    let m = Rmessage::Walk {
        wqids: vec![Qid::default(); 65536],
    };
    assert_eq!(m.encode_to_vec(1).unwrap_err().errno(), errno::E2BIG);
}

#[test]
fn version_strings() {
    assert_eq!(Proto::from_version(b"9P2000.L"), Some(Proto::DotL));
    assert_eq!(Proto::from_version(b"9P2000.u"), Some(Proto::DotU));
    assert_eq!(Proto::from_version(b"9P2000"), None);
    assert_eq!(Proto::from_version(b"9P2000.L.x"), None);
    assert_eq!(Proto::DotL.version_str(), Some("9P2000.L"));
    assert_eq!(Proto::Unnegotiated.version_str(), None);
}
