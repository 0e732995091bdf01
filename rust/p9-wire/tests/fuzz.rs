// SPDX-License-Identifier: GPL-2.0-or-later
//! Deterministic fuzzing: mutated valid messages, random dialects, msizes
//! and segmentations.  Decoding must never panic, must never allocate more
//! than the input can justify, and whatever decodes must re-encode to a
//! message of the same length that decodes to the same value.

mod common;

use common::*;
use p9_wire::consts::P9_MAXWELEM;
use p9_wire::{DecodeErrorKind, Dirent, P9String, Proto, Rmessage, SgView, Stat, Tmessage};

/// The strings a request owns, moved out (so their capacities are the
/// decoder's allocations), and the capacity of its list, if any.
fn t_heap(m: Tmessage<'_>) -> (Vec<P9String>, usize) {
    let mut list_cap = 0;
    let strings = match m {
        Tmessage::Lcreate { name, .. }
        | Tmessage::Mknod { name, .. }
        | Tmessage::Rename { name, .. }
        | Tmessage::Xattrwalk { name, .. }
        | Tmessage::Xattrcreate { name, .. }
        | Tmessage::Link { name, .. }
        | Tmessage::Mkdir { name, .. }
        | Tmessage::Unlinkat { name, .. } => vec![name],
        Tmessage::Symlink { name, symtgt, .. } => vec![name, symtgt],
        Tmessage::Lock { lock, .. } => vec![lock.client_id],
        Tmessage::Getlock { lock, .. } => vec![lock.client_id],
        Tmessage::Renameat {
            oldname, newname, ..
        } => vec![oldname, newname],
        Tmessage::Version { version, .. } => vec![version],
        Tmessage::Auth { uname, aname, .. } | Tmessage::Attach { uname, aname, .. } => {
            vec![uname, aname]
        }
        Tmessage::Walk { wnames, .. } => {
            list_cap = wnames.capacity();
            wnames
        }
        Tmessage::Create {
            name, extension, ..
        } => vec![name, extension],
        Tmessage::Wstat { stat, .. } => stat_strings(stat),
        _ => vec![],
    };
    (strings, list_cap)
}

fn stat_strings(s: Stat) -> Vec<P9String> {
    vec![s.name, s.uid, s.gid, s.muid, s.extension]
}

fn r_heap(m: Rmessage<'_>) -> (Vec<P9String>, usize) {
    match m {
        Rmessage::Readlink { target } => (vec![target], 0),
        Rmessage::Getlock(g) => (vec![g.client_id], 0),
        Rmessage::Version { version, .. } => (vec![version], 0),
        Rmessage::Error { ename, .. } => (vec![ename], 0),
        Rmessage::Stat { stat } => (stat_strings(stat), 0),
        Rmessage::Walk { wqids } => (vec![], wqids.capacity()),
        _ => (vec![], 0),
    }
}

/// Check the allocation bound: string bytes never exceed the input size,
/// and lists never exceed the walk limit.
fn check_heap(strings: Vec<P9String>, list_cap: usize, input_len: usize) {
    let string_bytes: usize = strings.into_iter().map(|s| s.into_bytes().capacity()).sum();
    assert!(
        string_bytes <= input_len,
        "{string_bytes} string bytes from {input_len} input bytes"
    );
    assert!(list_cap <= P9_MAXWELEM, "list capacity {list_cap}");
}

/// One random mutation of `buf`.
fn mutate(rng: &mut Rng, buf: &mut Vec<u8>, donors: &[Vec<u8>]) {
    match rng.below(9) {
        0 if !buf.is_empty() => {
            let i = rng.below(buf.len());
            buf[i] ^= 1 << rng.below(8);
        }
        1 if !buf.is_empty() => {
            let i = rng.below(buf.len());
            buf[i] = [0, 1, 0x7f, 0x80, 0xfe, 0xff, rng.next() as u8][rng.below(7)];
        }
        2 => {
            let n = rng.below(buf.len() + 1);
            buf.truncate(n);
        }
        3 => {
            let i = rng.below(buf.len() + 1);
            let extra: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
            buf.splice(i..i, extra);
        }
        4 if buf.len() > 4 => {
            // Any known type, so every body decoder sees foreign bodies.
            let types: Vec<u8> = (0..=255u8)
                .filter(|&t| p9_wire::msgtype::is_t_type(t) || p9_wire::msgtype::is_r_type(t))
                .collect();
            buf[4] = types[rng.below(types.len())];
        }
        5 if buf.len() > 8 => {
            // A 16-bit length or count somewhere set to an edge value.
            let i = 7 + rng.below(buf.len() - 8);
            let v: u16 = [0, 1, 16, 17, 0x7fff, 0xffff][rng.below(6)];
            buf[i..i + 2].copy_from_slice(&v.to_le_bytes());
        }
        6 if buf.len() > 10 => {
            let i = 7 + rng.below(buf.len() - 10);
            let v: u32 = [0, 1, 0xffff, 0x7fff_ffff, u32::MAX][rng.below(5)];
            buf[i..i + 4].copy_from_slice(&v.to_le_bytes());
        }
        7 if !donors.is_empty() => {
            // Splice a slice of another message in.
            let d = &donors[rng.below(donors.len())];
            let a = rng.below(d.len() + 1);
            let b = a + rng.below(d.len() - a + 1);
            let at = rng.below(buf.len() + 1);
            buf.splice(at..at, d[a..b].iter().copied());
        }
        _ if !buf.is_empty() => {
            let i = rng.below(buf.len());
            buf[i] = buf[i].wrapping_add(1);
        }
        _ => buf.push(rng.next() as u8),
    }
}

#[test]
fn mutated_messages_never_panic_or_overallocate() {
    // Each seed with the dialects it is valid in.
    let seeded: Vec<(Vec<u8>, &[Proto])> = t_vectors()
        .iter()
        .map(|v| (hex(v.hex), v.protos))
        .chain(r_vectors().iter().map(|v| (hex(v.hex), v.protos)))
        .collect();
    let seeds: Vec<Vec<u8>> = seeded.iter().map(|(b, _)| b.clone()).collect();
    let mut rng = Rng::new(0x0123_4567_89ab_cdef);
    let mut decoded = 0u32;
    let mut errors = std::collections::BTreeMap::new();
    const ITERS: usize = 60_000;
    for _ in 0..ITERS {
        let (seed, protos) = &seeded[rng.below(seeded.len())];
        let mut buf = seed.clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut buf, &seeds);
        }
        // Usually fix the size field so the body decoders are reached.
        if buf.len() >= 4 && rng.below(4) != 0 {
            let n = buf.len() as u32;
            buf[..4].copy_from_slice(&n.to_le_bytes());
        }
        let proto = if rng.below(4) == 0 {
            ALL_PROTOS[rng.below(3)]
        } else {
            protos[rng.below(protos.len())]
        };
        let msize = match rng.below(8) {
            0 => 64,
            1 => u32::MAX,
            2 => rng.next() as u32 % 512,
            _ => MSIZE,
        };
        let segs = random_segments(&mut rng, &buf);

        match Tmessage::decode(&segs, proto, msize) {
            Ok((tag, msg)) => {
                decoded += 1;
                let again = msg.encode_to_vec(tag).unwrap();
                assert_eq!(again.len(), buf.len());
                assert_eq!(msg.byte_size(), buf.len());
                let (tag2, msg2) = Tmessage::decode_slice(&again, proto, msize).unwrap();
                assert_eq!((tag2, &msg2), (tag, &msg));
                let _ = msg.check_args();
                let (strings, cap) = t_heap(msg);
                check_heap(strings, cap, buf.len());
            }
            Err(e) => {
                *errors
                    .entry(
                        format!("{:?}", e.kind())
                            .split([' ', '('])
                            .next()
                            .unwrap()
                            .to_owned(),
                    )
                    .or_insert(0u32) += 1;
                if buf.len() >= 7 {
                    assert_eq!(e.tag(), Some(u16::from_le_bytes([buf[5], buf[6]])));
                } else {
                    assert_eq!(e.tag(), None);
                }
                assert!(e.errno().raw() != 0);
                let _ = e.to_string();
            }
        }
        match Rmessage::decode(&segs, proto, msize) {
            Ok((tag, msg)) => {
                decoded += 1;
                let again = msg.encode_to_vec(tag).unwrap();
                assert_eq!(again.len(), buf.len());
                let (tag2, msg2) = Rmessage::decode_slice(&again, proto, msize).unwrap();
                assert_eq!((tag2, &msg2), (tag, &msg));
                match &msg {
                    Rmessage::Readdir { data } => Dirent::iter(*data).for_each(drop),
                    Rmessage::Read { data } => Stat::iter(*data).for_each(drop),
                    _ => {}
                }
                let (strings, cap) = r_heap(msg);
                check_heap(strings, cap, buf.len());
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    eprintln!("decoded {decoded}, errors {errors:?}");
    // The loop must actually reach both the success and the error paths.
    assert!(decoded > 1000, "only {decoded} mutated messages decoded");
    for kind in [
        "Truncated",
        "TrailingBytes",
        "SizeMismatch",
        "UnknownType",
        "NotInProtocol",
        "CountMismatch",
        "SizeExceedsMsize",
    ] {
        assert!(errors.contains_key(kind), "never hit {kind}: {errors:?}");
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng::new(42);
    for _ in 0..20_000 {
        let len = rng.below(64);
        let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if len >= 4 && rng.below(2) == 0 {
            buf[..4].copy_from_slice(&(len as u32).to_le_bytes());
        }
        for proto in ALL_PROTOS {
            let _ = Tmessage::decode_slice(&buf, proto, MSIZE);
            let _ = Rmessage::decode_slice(&buf, proto, MSIZE);
        }
        Dirent::iter(SgView::from_slice(&buf)).for_each(drop);
        Stat::iter(SgView::from_slice(&buf)).for_each(drop);
    }
}

#[test]
fn huge_declared_lengths_do_not_allocate() {
    // A Twalk claiming 16 names, the first of 65535 bytes, with nothing
    // behind it and an unlimited msize: the string length is checked
    // against the bytes present before anything is allocated.
    let mut body = vec![0u8; 8];
    body.extend_from_slice(&16u16.to_le_bytes());
    body.extend_from_slice(&u16::MAX.to_le_bytes());
    let mut m = ((7 + body.len()) as u32).to_le_bytes().to_vec();
    m.extend_from_slice(&[110, 0, 0]);
    m.extend_from_slice(&body);
    let e = Tmessage::decode_slice(&m, Proto::DotL, u32::MAX).unwrap_err();
    assert_eq!(e.kind(), DecodeErrorKind::Truncated);
}
