// SPDX-License-Identifier: GPL-2.0-or-later
//! The in-place reply writers: Rread, Rreaddir and .u directory reads,
//! across several output segments and with too-small buffers.

mod common;

use common::*;
use p9_wire::consts::RREAD_HEADER_SIZE;
use p9_wire::errno;
use p9_wire::{
    Dirent, EncodeError, Fit, Proto, Qid, ReadReply, ReaddirReply, Rmessage, SgView, Stat,
    StatDirReply,
};

/// Output buffers of the given sizes, pre-filled with a marker.
fn bufs(sizes: &[usize]) -> Vec<Vec<u8>> {
    sizes.iter().map(|&n| vec![0xeeu8; n]).collect()
}

fn concat(bufs: &[Vec<u8>], len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = bufs.concat();
    v.truncate(len);
    v
}

#[test]
fn rread_data_area_spans_segments() {
    let payload: Vec<u8> = (0..100u8).collect();
    for sizes in [
        vec![200],
        vec![3, 5, 0, 7, 200],
        vec![11, 50, 50, 50],
        vec![1; 150],
        vec![12, 0, 99],
    ] {
        let mut b = bufs(&sizes);
        let mut out: Vec<&mut [u8]> = b.iter_mut().map(|v| &mut v[..]).collect();
        let mut reply = ReadReply::new(&mut out, 0x0102, 8192, 100).unwrap();
        assert_eq!(reply.capacity(), 100);
        let mut data = reply.data();
        assert_eq!(data.len(), 100);
        // Write through the pieces, as a preadv into iovecs would.
        let mut off = 0;
        for piece in data.pieces_mut() {
            piece.copy_from_slice(&payload[off..off + piece.len()]);
            off += piece.len();
        }
        assert_eq!(off, 100);
        let n = reply.finish(100).unwrap();
        assert_eq!(n, 111);
        let bytes = concat(&b, n);
        assert_eq!(&bytes[..11], &hex("6f000000 75 0201 64000000")[..]);
        assert_eq!(&bytes[11..], &payload[..]);
        let (tag, msg) = Rmessage::decode_slice(&bytes, Proto::DotL, 8192).unwrap();
        assert_eq!(tag, 0x0102);
        assert_eq!(
            msg,
            Rmessage::Read {
                data: SgView::from_slice(&payload)
            }
        );
    }
}

#[test]
fn rread_short_read_and_zero_read() {
    let mut b = bufs(&[4, 60]);
    let mut out: Vec<&mut [u8]> = b.iter_mut().map(|v| &mut v[..]).collect();
    let mut reply = ReadReply::new(&mut out, 9, 8192, 50).unwrap();
    assert_eq!(reply.data().write_at(0, b"xyz"), 3);
    let n = reply.finish(3).unwrap();
    let bytes = concat(&b, n);
    assert_eq!(bytes, hex("0e000000 75 0900 03000000 78797a"));
    // Bytes after the message are untouched.
    assert_eq!(b[1][n - 4..], vec![0xee; 64 - n]);

    let mut b = bufs(&[11]);
    let mut out: Vec<&mut [u8]> = b.iter_mut().map(|v| &mut v[..]).collect();
    let reply = ReadReply::new(&mut out, 9, 8192, 50).unwrap();
    assert_eq!(reply.capacity(), 0);
    assert_eq!(reply.finish(0).unwrap(), 11);
    assert_eq!(b[0], hex("0b000000 75 0900 00000000"));
}

#[test]
fn rread_capacity_is_the_smallest_limit() {
    let mut b = bufs(&[100, 100]);
    let mut out: Vec<&mut [u8]> = b.iter_mut().map(|v| &mut v[..]).collect();
    // Limited by count.
    assert_eq!(
        ReadReply::new(&mut out, 1, 8192, 20).unwrap().capacity(),
        20
    );
    // Limited by msize - 11.
    assert_eq!(
        ReadReply::new(&mut out, 1, 50, 1000).unwrap().capacity(),
        39
    );
    // Limited by the buffers.
    assert_eq!(
        ReadReply::new(&mut out, 1, 8192, 1000).unwrap().capacity(),
        189
    );
    // A silly msize yields an empty data area, not a panic.
    assert_eq!(ReadReply::new(&mut out, 1, 3, 1000).unwrap().capacity(), 0);
}

#[test]
fn too_small_buffers() {
    for sizes in [vec![], vec![10], vec![5, 0, 5], vec![0]] {
        let mut b = bufs(&sizes);
        let mut out: Vec<&mut [u8]> = b.iter_mut().map(|v| &mut v[..]).collect();
        let total: usize = sizes.iter().sum();
        let want = EncodeError::BufferTooSmall {
            needed: 11,
            available: total,
        };
        assert_eq!(ReadReply::new(&mut out, 1, 8192, 10).err(), Some(want));
        assert_eq!(ReaddirReply::new(&mut out, 1, 8192, 10).err(), Some(want));
        assert_eq!(StatDirReply::new(&mut out, 1, 8192, 10).err(), Some(want));
        assert_eq!(want.errno(), errno::ENOBUFS);
        // Nothing was written.
        assert!(b.iter().flatten().all(|&x| x == 0xee));
    }
    // Finishing with more than the data area is refused.
    let mut b = bufs(&[20]);
    let mut out: Vec<&mut [u8]> = b.iter_mut().map(|v| &mut v[..]).collect();
    let reply = ReadReply::new(&mut out, 1, 8192, 100).unwrap();
    assert_eq!(
        reply.finish(10),
        Err(EncodeError::CountExceedsCapacity {
            count: 10,
            capacity: 9
        })
    );
    assert!(b[0].iter().all(|&x| x == 0xee));
}

fn sample_dirents() -> Vec<Dirent> {
    vec![
        Dirent {
            qid: Qid {
                typ: 0x80,
                version: 0x11223344,
                path: 0x0102030405060708,
            },
            offset: 1,
            typ: 4,
            name: ".".into(),
        },
        Dirent {
            qid: Qid {
                typ: 0x02,
                version: 7,
                path: 0x99,
            },
            offset: 0x7fffffffffffffff,
            typ: 8,
            name: "file.txt".into(),
        },
    ]
}

#[test]
fn dirent_layout_matches_vector() {
    // DIRENTS was produced by the independent marshaller ("Qqbs").
    let mut bytes = Vec::new();
    for d in sample_dirents() {
        bytes.extend_from_slice(&d.to_bytes().unwrap());
        assert_eq!(d.wire_size(), 24 + d.name.len());
    }
    assert_eq!(bytes, DIRENTS);
    let parsed: Vec<Dirent> = Dirent::iter(SgView::from_slice(DIRENTS))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(parsed, sample_dirents());
}

#[test]
fn rreaddir_fills_until_full() {
    let ents = sample_dirents();
    // Room for exactly the two sample entries (25 + 32 bytes).
    let exact = ents[0].wire_size() + ents[1].wire_size();
    for sizes in [
        vec![11 + exact],
        vec![2, 9, 1, 30, 0, 100],
        vec![1; 11 + exact],
    ] {
        let mut b = bufs(&sizes);
        let mut out: Vec<&mut [u8]> = b.iter_mut().map(|v| &mut v[..]).collect();
        let mut reply = ReaddirReply::new(&mut out, 0x33, 8192, exact as u32).unwrap();
        assert!(reply.is_empty());
        assert_eq!(reply.push_dirent(&ents[0]), Ok(Fit::Added));
        assert_eq!(reply.push_dirent(&ents[1]), Ok(Fit::Added));
        assert_eq!(reply.len(), exact);
        // Not even a one-byte name fits any more.
        assert_eq!(reply.push(&Qid::default(), 3, 0, b"z"), Ok(Fit::Full));
        assert_eq!(reply.push(&Qid::default(), 3, 0, b""), Ok(Fit::Full));
        let n = reply.finish().unwrap();
        assert_eq!(n, 11 + exact);
        let bytes = concat(&b, n);
        let want = Rmessage::Readdir {
            data: SgView::from_slice(DIRENTS),
        }
        .encode_to_vec(0x33)
        .unwrap();
        assert_eq!(bytes, want);
    }
}

#[test]
fn rreaddir_full_writes_nothing() {
    let ents = sample_dirents();
    let mut b = bufs(&[7, 40]);
    let mut out: Vec<&mut [u8]> = b.iter_mut().map(|v| &mut v[..]).collect();
    let mut reply = ReaddirReply::new(&mut out, 1, 8192, 1000).unwrap();
    assert_eq!(reply.capacity(), 36);
    assert_eq!(reply.push_dirent(&ents[0]), Ok(Fit::Added));
    // The second entry (32 bytes) does not fit in the 11 left.
    assert_eq!(reply.push_dirent(&ents[1]), Ok(Fit::Full));
    let n = reply.finish().unwrap();
    assert_eq!(n, 11 + 25);
    let all = b.concat();
    assert!(all[n..].iter().all(|&x| x == 0xee));
    let (_, msg) = Rmessage::decode_slice(&all[..n], Proto::DotL, 8192).unwrap();
    let Rmessage::Readdir { data } = msg else {
        panic!("not Rreaddir")
    };
    let got: Vec<Dirent> = Dirent::iter(data).collect::<Result<_, _>>().unwrap();
    assert_eq!(got, ents[..1]);
    // A name longer than a 9P string is an error, not Full.
    let mut b = bufs(&[100]);
    let mut out: Vec<&mut [u8]> = b.iter_mut().map(|v| &mut v[..]).collect();
    let mut reply = ReaddirReply::new(&mut out, 1, 8192, 1000).unwrap();
    let long = vec![b'a'; 65536];
    assert_eq!(
        reply.push(&Qid::default(), 0, 0, &long),
        Err(EncodeError::StringTooLong { len: 65536 })
    );
}

#[test]
fn rreaddir_respects_count_and_msize() {
    let ents = sample_dirents();
    let mut b = bufs(&[1000]);
    let mut out: Vec<&mut [u8]> = b.iter_mut().map(|v| &mut v[..]).collect();
    // count = 24 + 1 - 1: the "." entry (25 bytes) does not fit.
    let mut reply = ReaddirReply::new(&mut out, 1, 8192, 24).unwrap();
    assert_eq!(reply.push_dirent(&ents[0]), Ok(Fit::Full));
    assert_eq!(reply.finish().unwrap(), 11);
    // msize 36 leaves 25 bytes: exactly the "." entry.
    let mut reply = ReaddirReply::new(&mut out, 1, 36, 1000).unwrap();
    assert_eq!(reply.push_dirent(&ents[0]), Ok(Fit::Added));
    assert_eq!(reply.push_dirent(&ents[0]), Ok(Fit::Full));
    assert_eq!(reply.finish().unwrap(), 36);
}

fn sample_stat() -> Stat {
    Stat {
        typ: 0x1234,
        dev: 0x89abcdef,
        qid: Qid {
            typ: 0x80,
            version: 0x11223344,
            path: 0x0102030405060708,
        },
        mode: 0x800001ed,
        atime: 0x5f5e1000,
        mtime: 0x5f5e1001,
        length: 0x1000,
        name: "file".into(),
        uid: "root".into(),
        gid: "wheel".into(),
        muid: "".into(),
        extension: "ext".into(),
        n_uid: 0,
        n_gid: 10,
        n_muid: 0xffffffff,
    }
}

#[test]
fn stat_layout_matches_vector() {
    let st = sample_stat();
    assert_eq!(st.to_bytes().unwrap(), STAT_DATA);
    assert_eq!(st.wire_size(), STAT_DATA.len());
    let parsed: Vec<Stat> = Stat::iter(SgView::from_slice(STAT_DATA))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(parsed, [st]);
}

#[test]
fn dotu_directory_read() {
    let st = sample_stat();
    let one = st.wire_size();
    let mut other = st.clone();
    other.name = "another-name".into();
    for sizes in [
        vec![500],
        vec![3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 500],
        vec![1; 11 + 2 * one],
    ] {
        let mut b = bufs(&sizes);
        let mut out: Vec<&mut [u8]> = b.iter_mut().map(|v| &mut v[..]).collect();
        let mut reply = StatDirReply::new(&mut out, 4, 8192, (2 * one) as u32).unwrap();
        assert_eq!(reply.push(&st), Ok(Fit::Added));
        assert_eq!(reply.push(&st), Ok(Fit::Added));
        assert_eq!(reply.push(&other), Ok(Fit::Full));
        assert_eq!(reply.len(), 2 * one);
        let n = reply.finish().unwrap();
        assert_eq!(n, RREAD_HEADER_SIZE + 2 * one);
        let bytes = concat(&b, n);
        let (tag, msg) = Rmessage::decode_slice(&bytes, Proto::DotU, 8192).unwrap();
        assert_eq!(tag, 4);
        let Rmessage::Read { data } = msg else {
            panic!("not Rread")
        };
        let got: Vec<Stat> = Stat::iter(data).collect::<Result<_, _>>().unwrap();
        assert_eq!(got, [st.clone(), st.clone()]);
    }
}

#[test]
fn writers_random_segmentations() {
    // Random names and random output segmentations: whatever was Added
    // comes back out, in order, and Full is final for an entry that
    // cannot fit.
    let mut rng = Rng::new(0x9e3779b97f4a7c15);
    for _ in 0..300 {
        let total = 11 + rng.below(400);
        let mut sizes = Vec::new();
        let mut left = total;
        while left > 0 {
            let n = (1 + rng.below(40)).min(left);
            sizes.push(n);
            left -= n;
            if rng.below(4) == 0 {
                sizes.push(0);
            }
        }
        let count = rng.below(500) as u32;
        let msize = 11 + rng.below(600) as u32;
        let mut b = bufs(&sizes);
        let mut out: Vec<&mut [u8]> = b.iter_mut().map(|v| &mut v[..]).collect();
        let mut reply = ReaddirReply::new(&mut out, 7, msize, count).unwrap();
        let cap = (count as usize).min(msize as usize - 11).min(total - 11);
        assert_eq!(reply.capacity(), cap);
        let mut added = Vec::new();
        for i in 0..20u64 {
            let name: Vec<u8> = (0..rng.below(30))
                .map(|_| b'a' + rng.below(26) as u8)
                .collect();
            let d = Dirent {
                qid: Qid {
                    typ: rng.next() as u8,
                    version: rng.next() as u32,
                    path: rng.next(),
                },
                offset: i,
                typ: rng.next() as u8,
                name: name.into(),
            };
            let room = cap - reply.len();
            match reply.push_dirent(&d).unwrap() {
                Fit::Added => {
                    assert!(d.wire_size() <= room);
                    added.push(d);
                }
                Fit::Full => assert!(d.wire_size() > room),
            }
        }
        let n = reply.finish().unwrap();
        let bytes = concat(&b, n);
        let (_, msg) = Rmessage::decode_slice(&bytes, Proto::DotL, msize).unwrap();
        let Rmessage::Readdir { data } = msg else {
            panic!("not Rreaddir")
        };
        let got: Vec<Dirent> = Dirent::iter(data).collect::<Result<_, _>>().unwrap();
        assert_eq!(got, added);
    }
}
