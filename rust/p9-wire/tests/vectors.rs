// SPDX-License-Identifier: GPL-2.0-or-later
//! Byte-exact vectors for every T and R message: encode, decode, round
//! trip, every segmentation, truncation at every byte, lying size fields,
//! trailing bytes, msize, and dialect membership.

mod common;

use common::*;
use p9_wire::{DecodeErrorKind, Framing, Proto, Rmessage, SgView, Tmessage};

/// Generates the vector tests for one side (T or R).
macro_rules! vector_tests {
    ($modname:ident, $vectors:ident, $msg:ident) => {
        mod $modname {
            use super::*;

            fn decode<'a>(
                sg: SgView<'a>,
                proto: Proto,
                msize: u32,
                framing: Framing,
            ) -> Result<(u16, $msg<'a>), p9_wire::DecodeError> {
                $msg::decode_with(sg, proto, msize, framing)
            }

            #[test]
            fn encode_matches_hex() {
                for v in $vectors() {
                    let want = hex(v.hex);
                    let got = v.msg.encode_to_vec(v.tag).unwrap();
                    assert_eq!(got, want, "{}: encode_to_vec", v.name);
                    assert_eq!(v.msg.byte_size(), want.len(), "{}: byte_size", v.name);
                    let mut buf = vec![0xaau8; want.len() + 3];
                    let n = v.msg.encode_into(v.tag, &mut buf).unwrap();
                    assert_eq!(n, want.len(), "{}", v.name);
                    assert_eq!(&buf[..n], &want[..], "{}: encode_into", v.name);
                    assert_eq!(&buf[n..], &[0xaa; 3], "{}: wrote past the end", v.name);
                    let mut small = vec![0u8; want.len() - 1];
                    let err = v.msg.encode_into(v.tag, &mut small).unwrap_err();
                    assert_eq!(err.errno(), p9_wire::errno::ENOBUFS, "{}", v.name);
                }
            }

            #[test]
            fn encode_into_segments() {
                for v in $vectors() {
                    let want = hex(v.hex);
                    for cut in 0..=want.len() {
                        let mut a = vec![0u8; cut];
                        let mut b = vec![0u8; 0];
                        let mut c = vec![0u8; want.len() - cut];
                        let mut out: [&mut [u8]; 3] = [&mut a, &mut b, &mut c];
                        let n = v.msg.encode(v.tag, &mut out).unwrap();
                        assert_eq!(n, want.len());
                        let mut got = a.clone();
                        got.extend_from_slice(&c);
                        assert_eq!(got, want, "{} cut {}", v.name, cut);
                    }
                    let mut ones: Vec<Vec<u8>> = vec![vec![0u8; 1]; want.len()];
                    let mut out: Vec<&mut [u8]> = ones.iter_mut().map(|v| &mut v[..]).collect();
                    v.msg.encode(v.tag, &mut out).unwrap();
                    let got: Vec<u8> = ones.concat();
                    assert_eq!(got, want, "{} one byte per segment", v.name);
                }
            }

            #[test]
            fn decode_matches_value_in_its_dialects() {
                for v in $vectors() {
                    let bytes = hex(v.hex);
                    for proto in ALL_PROTOS {
                        let res = $msg::decode_slice(&bytes, proto, MSIZE);
                        if v.protos.contains(&proto) {
                            let (tag, msg) =
                                res.unwrap_or_else(|e| panic!("{} in {proto:?}: {e}", v.name));
                            assert_eq!(tag, v.tag, "{}", v.name);
                            assert_eq!(msg, v.msg, "{}", v.name);
                            let again = msg.encode_to_vec(tag).unwrap();
                            assert_eq!(again, bytes, "{}: round trip", v.name);
                        } else {
                            let e = res.expect_err(v.name);
                            assert_eq!(
                                e.kind(),
                                DecodeErrorKind::NotInProtocol {
                                    typ: bytes[4],
                                    proto
                                },
                                "{}",
                                v.name
                            );
                            assert_eq!(e.tag(), Some(v.tag));
                            assert_eq!(e.msg_type(), Some(bytes[4]));
                            assert_eq!(e.errno(), p9_wire::errno::EOPNOTSUPP);
                        }
                    }
                }
            }

            #[test]
            fn decode_every_segmentation() {
                for v in $vectors() {
                    let bytes = hex(v.hex);
                    let proto = v.protos[0];
                    for segs in segmentations(&bytes) {
                        let (tag, msg) = $msg::decode(&segs, proto, MSIZE)
                            .unwrap_or_else(|e| panic!("{} {:?}: {e}", v.name, segs));
                        assert_eq!((tag, &msg), (v.tag, &v.msg), "{} {:?}", v.name, segs);
                    }
                }
            }

            #[test]
            fn truncated_at_every_byte() {
                for v in $vectors() {
                    let bytes = hex(v.hex);
                    let proto = v.protos[0];
                    for k in 0..bytes.len() {
                        // The size field still claims the full length.
                        let e = $msg::decode_slice(&bytes[..k], proto, MSIZE).unwrap_err();
                        assert_eq!(e.errno(), p9_wire::errno::EINVAL, "{} k={k}", v.name);
                        if k < 7 {
                            assert_eq!(e.kind(), DecodeErrorKind::ShortHeader { available: k });
                            assert_eq!(e.tag(), None);
                        } else {
                            assert!(
                                matches!(e.kind(), DecodeErrorKind::SizeMismatch { .. }),
                                "{} k={k}: {e}",
                                v.name
                            );
                            assert_eq!(e.tag(), Some(v.tag));
                        }
                        // The size field agrees with the truncated length:
                        // the body itself is short.
                        if k >= 7 {
                            let mut t = bytes[..k].to_vec();
                            t[..4].copy_from_slice(&(k as u32).to_le_bytes());
                            let e = $msg::decode_slice(&t, proto, MSIZE).unwrap_err();
                            assert_eq!(e.errno(), p9_wire::errno::EINVAL, "{} k={k}", v.name);
                            assert_eq!(e.tag(), Some(v.tag));
                            assert!(
                                matches!(
                                    e.kind(),
                                    DecodeErrorKind::Truncated
                                        | DecodeErrorKind::CountMismatch { .. }
                                        | DecodeErrorKind::BadStatSize
                                ),
                                "{} k={k}: {e}",
                                v.name
                            );
                        }
                    }
                }
            }

            #[test]
            fn size_field_lies() {
                for v in $vectors() {
                    let bytes = hex(v.hex);
                    let proto = v.protos[0];
                    let len = bytes.len() as u32;
                    for size in [0, 1, 6, 7, len - 1, len + 1, u32::MAX] {
                        if size == len {
                            continue;
                        }
                        let mut t = bytes.clone();
                        t[..4].copy_from_slice(&size.to_le_bytes());
                        let e = $msg::decode_slice(&t, proto, MSIZE).unwrap_err();
                        assert_eq!(e.tag(), Some(v.tag), "{} size {size}", v.name);
                        let want = if size < 7 {
                            DecodeErrorKind::SizeTooSmall { size }
                        } else if size > MSIZE {
                            DecodeErrorKind::SizeExceedsMsize { size, msize: MSIZE }
                        } else {
                            DecodeErrorKind::SizeMismatch {
                                size,
                                available: bytes.len(),
                            }
                        };
                        assert_eq!(e.kind(), want, "{} size {size}", v.name);
                    }
                }
            }

            #[test]
            fn size_over_msize() {
                for v in $vectors() {
                    let bytes = hex(v.hex);
                    let len = bytes.len() as u32;
                    let proto = v.protos[0];
                    // At msize == size the message itself is accepted (Tread and
                    // Treaddir then fail on their count instead).
                    match $msg::decode_slice(&bytes, proto, len) {
                        Ok(_) => {}
                        Err(e) => assert!(
                            matches!(e.kind(), DecodeErrorKind::CountTooLarge { .. }),
                            "{}: {e}",
                            v.name
                        ),
                    }
                    let e = $msg::decode_slice(&bytes, proto, len - 1).unwrap_err();
                    assert_eq!(
                        e.kind(),
                        DecodeErrorKind::SizeExceedsMsize {
                            size: len,
                            msize: len - 1
                        }
                    );
                    assert_eq!(e.errno(), p9_wire::errno::EMSGSIZE);
                    assert_eq!(e.tag(), Some(v.tag));
                }
            }

            #[test]
            fn trailing_bytes() {
                for v in $vectors() {
                    let mut bytes = hex(v.hex);
                    let proto = v.protos[0];
                    bytes.push(0x55);
                    let size = bytes.len() as u32;
                    bytes[..4].copy_from_slice(&size.to_le_bytes());
                    let e = $msg::decode_slice(&bytes, proto, MSIZE).unwrap_err();
                    assert_eq!(e.errno(), p9_wire::errno::EINVAL, "{}", v.name);
                    assert_eq!(e.tag(), Some(v.tag));
                    assert!(
                        matches!(
                            e.kind(),
                            DecodeErrorKind::TrailingBytes { extra: 1 }
                                | DecodeErrorKind::CountMismatch { .. }
                        ),
                        "{}: {e}",
                        v.name
                    );
                }
            }

            #[test]
            fn prefix_framing_ignores_excess() {
                for v in $vectors() {
                    let mut bytes = hex(v.hex);
                    let n = bytes.len();
                    let proto = v.protos[0];
                    bytes.extend_from_slice(&[1, 2, 3]);
                    let e = $msg::decode_slice(&bytes, proto, MSIZE).unwrap_err();
                    assert!(matches!(e.kind(), DecodeErrorKind::SizeMismatch { .. }));
                    let (tag, msg) =
                        decode(SgView::from_slice(&bytes), proto, MSIZE, Framing::Prefix).unwrap();
                    assert_eq!((tag, &msg), (v.tag, &v.msg), "{}", v.name);
                    let e = decode(
                        SgView::from_slice(&bytes[..n - 1]),
                        proto,
                        MSIZE,
                        Framing::Prefix,
                    )
                    .unwrap_err();
                    if n - 1 < 7 {
                        assert!(matches!(e.kind(), DecodeErrorKind::ShortHeader { .. }));
                    } else {
                        assert!(matches!(e.kind(), DecodeErrorKind::SizeMismatch { .. }));
                    }
                }
            }
        }
    };
}

vector_tests!(t_side, t_vectors, Tmessage);
vector_tests!(r_side, r_vectors, Rmessage);

#[test]
fn every_message_type_has_a_vector() {
    let t: std::collections::BTreeSet<u8> = t_vectors().iter().map(|v| v.msg.msg_type()).collect();
    let r: std::collections::BTreeSet<u8> = r_vectors().iter().map(|v| v.msg.msg_type()).collect();
    for typ in 0..=255u8 {
        assert_eq!(
            p9_wire::msgtype::is_t_type(typ),
            t.contains(&typ),
            "T type {typ}"
        );
        assert_eq!(
            p9_wire::msgtype::is_r_type(typ),
            r.contains(&typ),
            "R type {typ}"
        );
    }
    for v in t_vectors() {
        assert_eq!(hex(v.hex)[4], v.msg.msg_type(), "{}", v.name);
        assert_eq!(v.msg.name(), v.name.split('_').next().unwrap());
    }
    for v in r_vectors() {
        assert_eq!(hex(v.hex)[4], v.msg.msg_type(), "{}", v.name);
        assert_eq!(v.msg.name(), v.name.split('_').next().unwrap());
    }
}

#[test]
fn t_and_r_decoders_refuse_each_other() {
    for v in t_vectors() {
        let bytes = hex(v.hex);
        let e = Rmessage::decode_slice(&bytes, v.protos[0], MSIZE).unwrap_err();
        assert_eq!(
            e.kind(),
            DecodeErrorKind::UnknownType(bytes[4]),
            "{}",
            v.name
        );
        assert_eq!(e.tag(), Some(v.tag));
    }
    for v in r_vectors() {
        let bytes = hex(v.hex);
        let e = Tmessage::decode_slice(&bytes, v.protos[0], MSIZE).unwrap_err();
        assert_eq!(
            e.kind(),
            DecodeErrorKind::UnknownType(bytes[4]),
            "{}",
            v.name
        );
        assert_eq!(e.errno(), p9_wire::errno::EOPNOTSUPP);
    }
}
