// SPDX-License-Identifier: GPL-2.0-or-later
//! Message type numbers and which messages exist in which protocol.
//!
//! # Protocol membership
//!
//! | messages | 9P2000.L | 9P2000.u | unnegotiated |
//! |---|---|---|---|
//! | Tversion | yes | yes | yes |
//! | Tauth Tattach Tflush Twalk Tread Twrite Tclunk Tremove | yes | yes | no |
//! | Topen Tcreate Tstat Twstat | no | yes | no |
//! | Tstatfs … Tunlinkat (types 8–76) | yes | no | no |
//!
//! Replies follow their requests, plus Rlerror (.L only) and Rerror (.u and
//! unnegotiated).  Tlerror (6) and Terror (106) are never valid.
//!
//! This is stricter than 9p.c, whose dispatcher (`pdu_submit`,
//! `pdu_co_handlers`) runs every handler in either dialect and only refuses
//! Tread on a directory outside .u and Treaddir outside .L (both
//! `-EOPNOTSUPP`).  A message outside its dialect gets the same
//! `EOPNOTSUPP` here, but from the decoder.  The .L set matches what the
//! Linux client sends in .L mode (it uses Tgetattr, never Tstat).
//!
//! The type numbers, names and dialects are those of the message tables
//! in [`crate::msg`]; only the two types that are never valid, and 9p.c's
//! read-only list, are spelled out here.

pub use crate::msg::r_types::*;
pub use crate::msg::t_types::*;
use crate::msg::{Rmessage, Tmessage};
use crate::proto::Proto;

/// Tlerror (not a real request; never valid).
pub const TLERROR: u8 = 6;
/// Terror (not a real request; never valid).
pub const TERROR: u8 = 106;

/// Whether `typ` is a request type at all (in some dialect).
pub fn is_t_type(typ: u8) -> bool {
    Tmessage::dialects_of(typ).is_some()
}

/// Whether `typ` is a reply type at all (in some dialect).
pub fn is_r_type(typ: u8) -> bool {
    Rmessage::dialects_of(typ).is_some()
}

/// Whether request type `typ` exists in `proto`.
pub fn t_allowed(typ: u8, proto: Proto) -> bool {
    Tmessage::dialects_of(typ).is_some_and(|d| d.allows(proto))
}

/// Whether reply type `typ` exists in `proto`.
pub fn r_allowed(typ: u8, proto: Proto) -> bool {
    Rmessage::dialects_of(typ).is_some_and(|d| d.allows(proto))
}

/// Requests that do not modify the export: 9p.c's `is_read_only_op`, used
/// to answer `EROFS` to everything else on a read-only export.
pub fn is_read_only_op(typ: u8) -> bool {
    matches!(
        typ,
        TREADDIR
            | TSTATFS
            | TGETATTR
            | TXATTRWALK
            | TLOCK
            | TGETLOCK
            | TREADLINK
            | TVERSION
            | TLOPEN
            | TATTACH
            | TSTAT
            | TWALK
            | TCLUNK
            | TFSYNC
            | TOPEN
            | TREAD
            | TAUTH
            | TFLUSH
    )
}

/// The conventional name of a message type (`"Twalk"`), for logs.
pub fn name(typ: u8) -> Option<&'static str> {
    match typ {
        TLERROR => Some("Tlerror"),
        TERROR => Some("Terror"),
        _ => Tmessage::name_of(typ).or_else(|| Rmessage::name_of(typ)),
    }
}

/// The tables seen through this module: every entry round-trips, every
/// listed type number decodes to its own variant.
#[cfg(test)]
mod table_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership() {
        let all = [Proto::Unnegotiated, Proto::DotU, Proto::DotL];
        for p in all {
            assert!(t_allowed(TVERSION, p));
            assert!(r_allowed(RVERSION, p));
            assert!(!t_allowed(TLERROR, p));
            assert!(!t_allowed(TERROR, p));
            assert!(!t_allowed(RVERSION, p));
        }
        assert!(!t_allowed(TWALK, Proto::Unnegotiated));
        assert!(t_allowed(TWALK, Proto::DotU) && t_allowed(TWALK, Proto::DotL));
        assert!(t_allowed(TSTAT, Proto::DotU) && !t_allowed(TSTAT, Proto::DotL));
        assert!(!t_allowed(TLOPEN, Proto::DotU) && t_allowed(TLOPEN, Proto::DotL));
        assert!(t_allowed(TREADDIR, Proto::DotL) && !t_allowed(TREADDIR, Proto::DotU));
        assert!(r_allowed(RLERROR, Proto::DotL) && !r_allowed(RLERROR, Proto::DotU));
        assert!(r_allowed(RERROR, Proto::DotU) && r_allowed(RERROR, Proto::Unnegotiated));
        assert!(!r_allowed(RERROR, Proto::DotL));
        assert!(!r_allowed(RWALK, Proto::Unnegotiated));
        assert!(!r_allowed(TWALK, Proto::DotL));
        let t_count = (0..=255u8).filter(|&t| is_t_type(t)).count();
        let r_count = (0..=255u8).filter(|&t| is_r_type(t)).count();
        assert_eq!(t_count, 32);
        assert_eq!(r_count, 34);
        for t in 0..=255u8 {
            if is_t_type(t) || is_r_type(t) {
                assert!(name(t).is_some(), "{t}");
            }
        }
        assert_eq!(name(TWALK), Some("Twalk"));
        assert_eq!(name(200), None);
        assert!(is_read_only_op(TWALK) && !is_read_only_op(TWRITE));
    }
}
