// SPDX-License-Identifier: GPL-2.0-or-later
//! Every entry of both tables round-trips, and every type number a table
//! lists decodes to its own variant: a message declared without a working
//! codec fails here.

use crate::msgtype;
use crate::proto::Proto;
use crate::{Rmessage, Tmessage};

const PROTOS: [Proto; 3] = [Proto::Unnegotiated, Proto::DotU, Proto::DotL];
/// Large enough for the sample Tread count (the Tread limit has its own
/// tests).
const MSIZE: u32 = u32::MAX;

/// Each sample of a table encodes to its own type byte and size, and
/// decodes back to itself exactly in the dialects its type exists in.
macro_rules! round_trip_test {
    ($test:ident, $msg:ident, $allowed:path, $listed:path) => {
        #[test]
        fn $test() {
            let samples = $msg::samples();
            for msg in &samples {
                let typ = msg.msg_type();
                let bytes = msg.encode_to_vec(7).unwrap();
                assert_eq!(bytes.len(), msg.byte_size(), "{}", msg.name());
                assert_eq!(bytes[4], typ, "{}", msg.name());
                for proto in PROTOS {
                    let decoded = $msg::decode_slice(&bytes, proto, MSIZE);
                    if $allowed(typ, proto) {
                        assert_eq!(decoded, Ok((7, msg.clone())), "{} in {proto:?}", msg.name());
                    } else {
                        assert!(decoded.is_err(), "{} in {proto:?}", msg.name());
                    }
                }
            }
            let listed = (0..=255u8).filter(|&t| $listed(t)).count();
            assert_eq!(samples.len(), listed);
        }
    };
}

round_trip_test!(
    every_request_round_trips_in_its_dialects,
    Tmessage,
    msgtype::t_allowed,
    msgtype::is_t_type
);
round_trip_test!(
    every_reply_round_trips_in_its_dialects,
    Rmessage,
    msgtype::r_allowed,
    msgtype::is_r_type
);

#[test]
fn every_known_type_number_decodes() {
    let requests: Vec<_> = Tmessage::samples()
        .iter()
        .map(|m| m.encode_to_vec(1).unwrap())
        .collect();
    let replies: Vec<_> = Rmessage::samples()
        .iter()
        .map(|m| m.encode_to_vec(1).unwrap())
        .collect();
    for typ in 0..=255u8 {
        let request = requests.iter().find(|b| b[4] == typ);
        let reply = replies.iter().find(|b| b[4] == typ);
        assert_eq!(request.is_some(), msgtype::is_t_type(typ), "T type {typ}");
        assert_eq!(reply.is_some(), msgtype::is_r_type(typ), "R type {typ}");
        for proto in PROTOS {
            if let Some(bytes) = request.filter(|_| msgtype::t_allowed(typ, proto)) {
                let (_, msg) = Tmessage::decode_slice(bytes, proto, MSIZE).unwrap();
                assert_eq!(msg.msg_type(), typ);
                assert_eq!(msgtype::name(typ), Some(msg.name()));
            }
            if let Some(bytes) = reply.filter(|_| msgtype::r_allowed(typ, proto)) {
                let (_, msg) = Rmessage::decode_slice(bytes, proto, MSIZE).unwrap();
                assert_eq!(msg.msg_type(), typ);
                assert_eq!(msgtype::name(typ), Some(msg.name()));
            }
        }
    }
}

#[test]
fn replies_exist_where_their_requests_do() {
    for typ in (0..=255u8).filter(|&t| msgtype::is_r_type(t)) {
        if typ == msgtype::RLERROR || typ == msgtype::RERROR {
            continue;
        }
        for proto in PROTOS {
            assert_eq!(
                msgtype::r_allowed(typ, proto),
                msgtype::t_allowed(typ - 1, proto),
                "type {typ} in {proto:?}"
            );
        }
    }
}
