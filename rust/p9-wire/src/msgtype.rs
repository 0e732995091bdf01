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

use crate::proto::Proto;

/// Tlerror (not a real request; never valid).
pub const TLERROR: u8 = 6;
/// Rlerror: 9P2000.L error reply.
pub const RLERROR: u8 = 7;
/// Tstatfs.
pub const TSTATFS: u8 = 8;
/// Rstatfs.
pub const RSTATFS: u8 = 9;
/// Tlopen.
pub const TLOPEN: u8 = 12;
/// Rlopen.
pub const RLOPEN: u8 = 13;
/// Tlcreate.
pub const TLCREATE: u8 = 14;
/// Rlcreate.
pub const RLCREATE: u8 = 15;
/// Tsymlink.
pub const TSYMLINK: u8 = 16;
/// Rsymlink.
pub const RSYMLINK: u8 = 17;
/// Tmknod.
pub const TMKNOD: u8 = 18;
/// Rmknod.
pub const RMKNOD: u8 = 19;
/// Trename.
pub const TRENAME: u8 = 20;
/// Rrename.
pub const RRENAME: u8 = 21;
/// Treadlink.
pub const TREADLINK: u8 = 22;
/// Rreadlink.
pub const RREADLINK: u8 = 23;
/// Tgetattr.
pub const TGETATTR: u8 = 24;
/// Rgetattr.
pub const RGETATTR: u8 = 25;
/// Tsetattr.
pub const TSETATTR: u8 = 26;
/// Rsetattr.
pub const RSETATTR: u8 = 27;
/// Txattrwalk.
pub const TXATTRWALK: u8 = 30;
/// Rxattrwalk.
pub const RXATTRWALK: u8 = 31;
/// Txattrcreate.
pub const TXATTRCREATE: u8 = 32;
/// Rxattrcreate.
pub const RXATTRCREATE: u8 = 33;
/// Treaddir.
pub const TREADDIR: u8 = 40;
/// Rreaddir.
pub const RREADDIR: u8 = 41;
/// Tfsync.
pub const TFSYNC: u8 = 50;
/// Rfsync.
pub const RFSYNC: u8 = 51;
/// Tlock.
pub const TLOCK: u8 = 52;
/// Rlock.
pub const RLOCK: u8 = 53;
/// Tgetlock.
pub const TGETLOCK: u8 = 54;
/// Rgetlock.
pub const RGETLOCK: u8 = 55;
/// Tlink.
pub const TLINK: u8 = 70;
/// Rlink.
pub const RLINK: u8 = 71;
/// Tmkdir.
pub const TMKDIR: u8 = 72;
/// Rmkdir.
pub const RMKDIR: u8 = 73;
/// Trenameat.
pub const TRENAMEAT: u8 = 74;
/// Rrenameat.
pub const RRENAMEAT: u8 = 75;
/// Tunlinkat.
pub const TUNLINKAT: u8 = 76;
/// Runlinkat.
pub const RUNLINKAT: u8 = 77;
/// Tversion.
pub const TVERSION: u8 = 100;
/// Rversion.
pub const RVERSION: u8 = 101;
/// Tauth.
pub const TAUTH: u8 = 102;
/// Rauth.
pub const RAUTH: u8 = 103;
/// Tattach.
pub const TATTACH: u8 = 104;
/// Rattach.
pub const RATTACH: u8 = 105;
/// Terror (not a real request; never valid).
pub const TERROR: u8 = 106;
/// Rerror: 9P2000(.u) error reply.
pub const RERROR: u8 = 107;
/// Tflush.
pub const TFLUSH: u8 = 108;
/// Rflush.
pub const RFLUSH: u8 = 109;
/// Twalk.
pub const TWALK: u8 = 110;
/// Rwalk.
pub const RWALK: u8 = 111;
/// Topen.
pub const TOPEN: u8 = 112;
/// Ropen.
pub const ROPEN: u8 = 113;
/// Tcreate.
pub const TCREATE: u8 = 114;
/// Rcreate.
pub const RCREATE: u8 = 115;
/// Tread.
pub const TREAD: u8 = 116;
/// Rread.
pub const RREAD: u8 = 117;
/// Twrite.
pub const TWRITE: u8 = 118;
/// Rwrite.
pub const RWRITE: u8 = 119;
/// Tclunk.
pub const TCLUNK: u8 = 120;
/// Rclunk.
pub const RCLUNK: u8 = 121;
/// Tremove.
pub const TREMOVE: u8 = 122;
/// Rremove.
pub const RREMOVE: u8 = 123;
/// Tstat.
pub const TSTAT: u8 = 124;
/// Rstat.
pub const RSTAT: u8 = 125;
/// Twstat.
pub const TWSTAT: u8 = 126;
/// Rwstat.
pub const RWSTAT: u8 = 127;

/// Which dialects a request type belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    /// Tversion: always.
    Version,
    /// Both .u and .L.
    Common,
    /// 9P2000.u only.
    DotU,
    /// 9P2000.L only.
    DotL,
}

fn t_family(typ: u8) -> Option<Family> {
    Some(match typ {
        TVERSION => Family::Version,
        TAUTH | TATTACH | TFLUSH | TWALK | TREAD | TWRITE | TCLUNK | TREMOVE => Family::Common,
        TOPEN | TCREATE | TSTAT | TWSTAT => Family::DotU,
        TSTATFS | TLOPEN | TLCREATE | TSYMLINK | TMKNOD | TRENAME | TREADLINK | TGETATTR
        | TSETATTR | TXATTRWALK | TXATTRCREATE | TREADDIR | TFSYNC | TLOCK | TGETLOCK | TLINK
        | TMKDIR | TRENAMEAT | TUNLINKAT => Family::DotL,
        _ => return None,
    })
}

fn family_allowed(f: Family, proto: Proto) -> bool {
    matches!(
        (f, proto),
        (Family::Version, _)
            | (Family::Common, Proto::DotU | Proto::DotL)
            | (Family::DotU, Proto::DotU)
            | (Family::DotL, Proto::DotL)
    )
}

/// Whether `typ` is a request type at all (in some dialect).
pub fn is_t_type(typ: u8) -> bool {
    t_family(typ).is_some()
}

/// Whether `typ` is a reply type at all (in some dialect).
pub fn is_r_type(typ: u8) -> bool {
    typ == RLERROR || typ == RERROR || (typ % 2 == 1 && is_t_type(typ - 1))
}

/// Whether request type `typ` exists in `proto`.
pub fn t_allowed(typ: u8, proto: Proto) -> bool {
    t_family(typ).is_some_and(|f| family_allowed(f, proto))
}

/// Whether reply type `typ` exists in `proto`.
pub fn r_allowed(typ: u8, proto: Proto) -> bool {
    match typ {
        RLERROR => proto == Proto::DotL,
        RERROR => proto != Proto::DotL,
        _ => typ % 2 == 1 && t_allowed(typ - 1, proto),
    }
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
    Some(match typ {
        TLERROR => "Tlerror",
        RLERROR => "Rlerror",
        TSTATFS => "Tstatfs",
        RSTATFS => "Rstatfs",
        TLOPEN => "Tlopen",
        RLOPEN => "Rlopen",
        TLCREATE => "Tlcreate",
        RLCREATE => "Rlcreate",
        TSYMLINK => "Tsymlink",
        RSYMLINK => "Rsymlink",
        TMKNOD => "Tmknod",
        RMKNOD => "Rmknod",
        TRENAME => "Trename",
        RRENAME => "Rrename",
        TREADLINK => "Treadlink",
        RREADLINK => "Rreadlink",
        TGETATTR => "Tgetattr",
        RGETATTR => "Rgetattr",
        TSETATTR => "Tsetattr",
        RSETATTR => "Rsetattr",
        TXATTRWALK => "Txattrwalk",
        RXATTRWALK => "Rxattrwalk",
        TXATTRCREATE => "Txattrcreate",
        RXATTRCREATE => "Rxattrcreate",
        TREADDIR => "Treaddir",
        RREADDIR => "Rreaddir",
        TFSYNC => "Tfsync",
        RFSYNC => "Rfsync",
        TLOCK => "Tlock",
        RLOCK => "Rlock",
        TGETLOCK => "Tgetlock",
        RGETLOCK => "Rgetlock",
        TLINK => "Tlink",
        RLINK => "Rlink",
        TMKDIR => "Tmkdir",
        RMKDIR => "Rmkdir",
        TRENAMEAT => "Trenameat",
        RRENAMEAT => "Rrenameat",
        TUNLINKAT => "Tunlinkat",
        RUNLINKAT => "Runlinkat",
        TVERSION => "Tversion",
        RVERSION => "Rversion",
        TAUTH => "Tauth",
        RAUTH => "Rauth",
        TATTACH => "Tattach",
        RATTACH => "Rattach",
        TERROR => "Terror",
        RERROR => "Rerror",
        TFLUSH => "Tflush",
        RFLUSH => "Rflush",
        TWALK => "Twalk",
        RWALK => "Rwalk",
        TOPEN => "Topen",
        ROPEN => "Ropen",
        TCREATE => "Tcreate",
        RCREATE => "Rcreate",
        TREAD => "Tread",
        RREAD => "Rread",
        TWRITE => "Twrite",
        RWRITE => "Rwrite",
        TCLUNK => "Tclunk",
        RCLUNK => "Rclunk",
        TREMOVE => "Tremove",
        RREMOVE => "Rremove",
        TSTAT => "Tstat",
        RSTAT => "Rstat",
        TWSTAT => "Twstat",
        RWSTAT => "Rwstat",
        _ => return None,
    })
}

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
