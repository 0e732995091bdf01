// SPDX-License-Identifier: GPL-2.0-or-later
//! Views, readers and writers across segment boundaries.

use super::*;

fn segs_of<'a>(buf: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut prev = 0;
    for &c in cuts {
        out.push(&buf[prev..c]);
        prev = c;
    }
    out.push(&buf[prev..]);
    out
}

#[test]
fn view_basics() {
    let buf: Vec<u8> = (0..20).collect();
    let segs = segs_of(&buf, &[0, 3, 3, 10, 19]);
    let v = SgView::new(&segs);
    assert_eq!(v.len(), 20);
    assert_eq!(v.to_vec(), buf);
    assert!(v.eq_bytes(&buf));
    assert!(!v.eq_bytes(&buf[1..]));
    assert_eq!(v.pieces().count(), 4);
    assert!(v.as_contiguous().is_none());
    let s = v.slice(2, 9).unwrap();
    assert_eq!(s.to_vec(), &buf[2..11]);
    assert_eq!(s.pieces().map(|p| p.len()).collect::<Vec<_>>(), [1, 7, 1]);
    let s = v.slice(3, 7).unwrap();
    assert_eq!(s.as_contiguous(), Some(&buf[3..10]));
    assert!(v.slice(15, 6).is_none());
    assert!(v.slice(usize::MAX, 2).is_none());
    assert_eq!(v.slice(20, 0).unwrap().len(), 0);
    let (a, b) = v.split_at(5).unwrap();
    assert_eq!(a.to_vec(), &buf[..5]);
    assert_eq!(b.to_vec(), &buf[5..]);
    assert!(v.split_at(21).is_none());
    let mut small = [0u8; 4];
    assert_eq!(v.slice(1, 3).unwrap().copy_to(&mut small), 3);
    assert_eq!(&small[..3], &[1, 2, 3]);
    assert_eq!(SgView::new(&[]).len(), 0);
    assert_eq!(SgView::new(&[]).as_contiguous(), Some(&[][..]));
    assert_eq!(v, SgView::from_slice(&buf));
    assert_ne!(v, SgView::from_slice(&buf[..19]));
    let mut other = buf.clone();
    other[7] = 99;
    assert_ne!(v, SgView::from_slice(&other));
}

#[test]
fn reader_reads_across_segments() {
    let buf: Vec<u8> = (1..=15).collect();
    for cut in 0..=buf.len() {
        let segs = segs_of(&buf, &[cut]);
        let mut r = SgReader::new(SgView::new(&segs));
        assert_eq!(r.u8().unwrap(), 1);
        assert_eq!(r.u16().unwrap(), u16::from_le_bytes([2, 3]));
        assert_eq!(r.u32().unwrap(), u32::from_le_bytes([4, 5, 6, 7]));
        assert_eq!(
            r.u64().unwrap(),
            u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15])
        );
        assert_eq!(r.remaining(), 0);
        assert_eq!(r.u8(), Err(DecodeErrorKind::Truncated));
    }
}

#[test]
fn reader_string_checks() {
    let mut r = SgReader::new(SgView::from_slice(&[3, 0, b'a', b'b']));
    assert_eq!(r.string(), Err(DecodeErrorKind::Truncated));
    let mut r = SgReader::new(SgView::from_slice(&[2, 0, b'a', 0]));
    assert_eq!(r.string(), Err(DecodeErrorKind::NulInString));
    let mut r = SgReader::new(SgView::from_slice(&[2, 0, b'a', b'b', 9]));
    assert_eq!(r.string().unwrap(), b"ab");
    assert_eq!(r.remaining(), 1);
}

#[test]
fn writer_and_view_mut() {
    let mut a = [0u8; 3];
    let mut b = [0u8; 0];
    let mut c = [0u8; 5];
    let mut segs: [&mut [u8]; 3] = [&mut a, &mut b, &mut c];
    assert_eq!(total_len_mut(&segs), 8);
    {
        let mut w = SgWriter::at(&mut segs, 2);
        w.u32(0x0403_0201).unwrap();
        assert!(w.put(&[5, 6, 7]).is_err());
    }
    assert_eq!(a, [0, 0, 1]);
    assert_eq!(c[..3], [2, 3, 4]);
    {
        let mut segs: [&mut [u8]; 3] = [&mut a, &mut b, &mut c];
        let mut v = SgViewMut::new(&mut segs, 1, 6).unwrap();
        assert_eq!(v.len(), 6);
        let lens: Vec<usize> = v.pieces_mut().map(|p| p.len()).collect();
        assert_eq!(lens, [2, 4]);
        assert_eq!(v.write_at(4, &[9, 9, 9]), 2);
        assert_eq!(v.write_at(6, &[9]), 0);
        v.pieces_mut().next().unwrap()[0] = 7;
    }
    assert_eq!(a, [0, 7, 1]);
    assert_eq!(c, [2, 3, 9, 9, 6]);
    let mut segs: [&mut [u8]; 3] = [&mut a, &mut b, &mut c];
    SgViewMut::new(&mut segs, 1, 6).unwrap().zero();
    assert_eq!(a, [0, 0, 0]);
    assert_eq!(c, [0, 0, 0, 0, 6]);
    let mut segs: [&mut [u8]; 3] = [&mut a, &mut b, &mut c];
    assert!(SgViewMut::new(&mut segs, 4, 5).is_none());
}
