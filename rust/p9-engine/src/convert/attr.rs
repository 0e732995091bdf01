// SPDX-License-Identifier: GPL-2.0-or-later
//! 9P2000.L attributes: Tsetattr changes and the Rgetattr body.

use p9_wire::consts::{getattr, setattr};
use p9_wire::types::{Qid, SetAttr as WireSetAttr, StatDotl};

use super::{UTIME_NOW, UTIME_OMIT};
use crate::backend::{Attr, SetAttr, SetTime, Time};

/// One Tsetattr timestamp, as 9p.c builds the `utimensat` argument.
fn wire_time(valid: u32, update: u32, given: u32, sec: u64, nsec: u64) -> SetTime {
    if valid & update == 0 {
        return SetTime::Omit;
    }
    if valid & given == 0 {
        return SetTime::Now;
    }
    // 9p.c copies the client's nsec into tv_nsec unchecked, so the
    // kernel's special values keep their meaning.
    match nsec {
        UTIME_NOW => SetTime::Now,
        UTIME_OMIT => SetTime::Omit,
        _ => SetTime::At(Time {
            // int64 on the C side: wraps like C's conversion.
            sec: sec as i64,
            // Saturate: anything >= 1e9 stays invalid, so utimensat still
            // answers EINVAL as it does for 9p.c.
            nsec: u32::try_from(nsec).unwrap_or(u32::MAX),
        }),
    }
}

/// The changes a Tsetattr asks for (9p.c `v9fs_setattr`).
///
/// - `MODE`, `UID`, `GID`, `SIZE`: the value as sent (9p.c passes the mode
///   to `chmod` unmasked, and the size to `truncate` as a signed offset,
///   so a size above `i64::MAX` fails there with `EINVAL`).
/// - `ATIME`/`MTIME`: the given time with `ATIME_SET`/`MTIME_SET`, else now;
///   without `ATIME`/`MTIME` the `*_SET` bits and times are ignored.  A
///   given nsec of `UTIME_NOW`/`UTIME_OMIT` means now/omit, as it does to
///   the `utimensat` 9p.c calls; other out-of-range nsecs saturate to
///   `u32::MAX` so the host still refuses them.
/// - `CTIME`: nothing here.  When it is the only bit below `ATIME_SET`,
///   9p.c calls `chown(-1, -1)`, which only sets ctime to now (and, on
///   Linux, clears set-uid/set-gid of non-directories); [`SetAttr`] cannot
///   say that, see [`setattr_ctime_only`].  Otherwise ctime changes as a
///   side effect of the other changes.
///
/// 9p.c applies them in the order chmod, utimensat, chown, truncate,
/// stopping at the first failure.
pub fn setattr_from_wire(w: &WireSetAttr) -> SetAttr {
    let v = w.valid;
    let pick = |bit: u32, val| (v & bit != 0).then_some(val);
    SetAttr {
        mode: pick(setattr::MODE, w.mode),
        uid: pick(setattr::UID, w.uid),
        gid: pick(setattr::GID, w.gid),
        size: (v & setattr::SIZE != 0).then_some(w.size),
        atime: wire_time(
            v,
            setattr::ATIME,
            setattr::ATIME_SET,
            w.atime_sec,
            w.atime_nsec,
        ),
        mtime: wire_time(
            v,
            setattr::MTIME,
            setattr::MTIME_SET,
            w.mtime_sec,
            w.mtime_nsec,
        ),
    }
}

/// Whether a Tsetattr is the "ctime only" case: `CTIME` set and no other
/// bit of `P9_ATTR_MASK`.  9p.c then calls `chown(path, -1, -1)`, whose
/// only effect is ctime = now (plus Linux's set-uid/set-gid clearing on
/// non-directories); [`setattr_from_wire`] returns an empty [`SetAttr`]
/// for it.
pub fn setattr_ctime_only(w: &WireSetAttr) -> bool {
    w.valid & setattr::CTIME != 0 && (w.valid & setattr::MASK) & !setattr::CTIME == 0
}

/// 9p.c `blksize_to_iounit`: the largest multiple of `blksize` that fits
/// in `msize - P9_IOHDRSZ`, or that room itself when there is none.  C
/// truncates the block size to `int32_t` and divides unsigned; the result
/// is the `int32_t` bit pattern (Ropen/Rcreate/Rlopen `iounit`).
pub fn blksize_to_iounit(msize: u32, blksize: u64) -> u32 {
    let room = msize.wrapping_sub(p9_wire::consts::P9_IOHDRSZ);
    let b = blksize as u32;
    let iounit = room.checked_div(b).map_or(0, |n| n * b);
    if iounit == 0 {
        room
    } else {
        iounit
    }
}

/// Rgetattr's `st_blksize`: 9p.c reports [`blksize_to_iounit`], not the
/// host's block size, sign-extended from `int32_t`.
pub fn dotl_blksize(msize: u32, blksize: u64) -> u64 {
    blksize_to_iounit(msize, blksize) as i32 as i64 as u64
}

/// The Rgetattr body of a file (9p.c `stat_to_v9stat_dotl` plus
/// `v9fs_getattr`'s generation step).
///
/// `valid` is `P9_STATS_BASIC` whatever was asked ("we only support BASIC
/// fields"); btime and data_version stay 0.  `gen` is the generation when
/// the request mask has `P9_STATS_GEN` and the backend gave one: then it
/// fills `gen` and `GEN` is added to `valid`.  9p.c asks for it only when
/// requested, and leaves `GEN` out when its hook fails (special files on
/// ext2-4/btrfs/xfs); backends without the hook report 0.
///
/// `blksize` is `attr.blksize` as is: 9p.c reports
/// [`dotl_blksize`]`(msize, attr.blksize)` there, and the caller, which
/// knows msize, must put that in.
pub fn getattr_of(attr: &Attr, qid: Qid, gen: Option<u64>) -> StatDotl {
    StatDotl {
        valid: getattr::BASIC | if gen.is_some() { getattr::GEN } else { 0 },
        qid,
        mode: attr.mode,
        uid: attr.uid,
        gid: attr.gid,
        nlink: attr.nlink,
        rdev: attr.rdev,
        size: attr.size,
        blksize: attr.blksize,
        blocks: attr.blocks,
        // time_t into uint64_t: wraps like C.
        atime_sec: attr.atime.sec as u64,
        atime_nsec: u64::from(attr.atime.nsec),
        mtime_sec: attr.mtime.sec as u64,
        mtime_nsec: u64::from(attr.mtime.nsec),
        ctime_sec: attr.ctime.sec as u64,
        ctime_nsec: u64::from(attr.ctime.nsec),
        btime_sec: 0,
        btime_nsec: 0,
        gen: gen.unwrap_or(0),
        data_version: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::makedev;

    #[test]
    fn setattr_fields() {
        let w = WireSetAttr {
            valid: setattr::MODE | setattr::UID | setattr::GID | setattr::SIZE,
            mode: 0o100644,
            uid: 7,
            gid: 8,
            size: 9,
            atime_sec: 1,
            mtime_sec: 2,
            ..WireSetAttr::default()
        };
        let s = setattr_from_wire(&w);
        assert_eq!(s.mode, Some(0o100644));
        assert_eq!(s.uid, Some(7));
        assert_eq!(s.gid, Some(8));
        assert_eq!(s.size, Some(9));
        assert_eq!(s.atime, SetTime::Omit);
        assert_eq!(s.mtime, SetTime::Omit);
        assert!(!setattr_ctime_only(&w));
        assert_eq!(
            setattr_from_wire(&WireSetAttr::default()),
            SetAttr::default()
        );
    }

    #[test]
    fn setattr_times() {
        let mut w = WireSetAttr {
            valid: setattr::ATIME | setattr::MTIME | setattr::MTIME_SET,
            atime_sec: 5,
            atime_nsec: 6,
            mtime_sec: 100,
            mtime_nsec: 200,
            ..WireSetAttr::default()
        };
        let s = setattr_from_wire(&w);
        assert_eq!(s.atime, SetTime::Now);
        assert_eq!(
            s.mtime,
            SetTime::At(Time {
                sec: 100,
                nsec: 200
            })
        );

        // *_SET without the update bit does nothing.
        w.valid = setattr::ATIME_SET | setattr::MTIME_SET;
        let s = setattr_from_wire(&w);
        assert_eq!((s.atime, s.mtime), (SetTime::Omit, SetTime::Omit));

        // Special nsec values, wrapping seconds, saturating nsec.
        w.valid = setattr::ATIME | setattr::ATIME_SET | setattr::MTIME | setattr::MTIME_SET;
        w.atime_nsec = UTIME_NOW;
        w.mtime_nsec = UTIME_OMIT;
        let s = setattr_from_wire(&w);
        assert_eq!((s.atime, s.mtime), (SetTime::Now, SetTime::Omit));
        w.atime_sec = u64::MAX;
        w.atime_nsec = (1 << 32) + 5;
        let s = setattr_from_wire(&w);
        assert_eq!(
            s.atime,
            SetTime::At(Time {
                sec: -1,
                nsec: u32::MAX
            })
        );
    }

    #[test]
    fn setattr_ctime() {
        let mut w = WireSetAttr {
            valid: setattr::CTIME,
            ..WireSetAttr::default()
        };
        assert!(setattr_ctime_only(&w));
        assert_eq!(setattr_from_wire(&w), SetAttr::default());
        // The *_SET bits are outside P9_ATTR_MASK.
        w.valid = setattr::CTIME | setattr::ATIME_SET | setattr::MTIME_SET;
        assert!(setattr_ctime_only(&w));
        w.valid = setattr::CTIME | setattr::ATIME;
        assert!(!setattr_ctime_only(&w));
        w.valid = setattr::CTIME | setattr::SIZE;
        assert!(!setattr_ctime_only(&w));
        w.valid = setattr::ATIME_SET;
        assert!(!setattr_ctime_only(&w));
    }

    #[test]
    fn getattr_fields() {
        let a = Attr {
            dev: 1,
            ino: 2,
            mode: 0o020600,
            uid: 3,
            gid: 4,
            nlink: 5,
            rdev: makedev(1, 3),
            size: 6,
            blksize: 4096,
            blocks: 8,
            atime: Time { sec: 10, nsec: 11 },
            mtime: Time { sec: -2, nsec: 13 },
            ctime: Time { sec: 14, nsec: 15 },
            btime: Some(Time { sec: 16, nsec: 17 }),
        };
        let qid = Qid {
            typ: 0,
            version: 0,
            path: 2,
        };
        let g = getattr_of(&a, qid, None);
        assert_eq!(g.valid, 0x7ff);
        assert_eq!(g.qid, qid);
        assert_eq!((g.mode, g.uid, g.gid, g.nlink), (0o020600, 3, 4, 5));
        assert_eq!((g.rdev, g.size, g.blksize, g.blocks), (0x103, 6, 4096, 8));
        assert_eq!((g.atime_sec, g.atime_nsec), (10, 11));
        assert_eq!((g.mtime_sec, g.mtime_nsec), (u64::MAX - 1, 13));
        assert_eq!((g.ctime_sec, g.ctime_nsec), (14, 15));
        assert_eq!(
            (g.btime_sec, g.btime_nsec, g.gen, g.data_version),
            (0, 0, 0, 0)
        );

        let g = getattr_of(&a, qid, Some(18));
        assert_eq!(g.valid, 0x7ff | 0x1000);
        assert_eq!(g.gen, 18);
        // A generation of 0 (backends without one) is still reported.
        let g = getattr_of(&a, qid, Some(0));
        assert_eq!((g.valid, g.gen), (0x7ff | 0x1000, 0));
    }

    #[test]
    fn iounit() {
        assert_eq!(blksize_to_iounit(8192, 4096), 4096);
        assert_eq!(blksize_to_iounit(8192, 512), 7680);
        assert_eq!(blksize_to_iounit(8192, 0), 8168);
        assert_eq!(blksize_to_iounit(8192, 65536), 8168);
        // int32_t truncation: 1 << 32 is 0.
        assert_eq!(blksize_to_iounit(8192, 1 << 32), 8168);
        assert_eq!(blksize_to_iounit(0, 0), u32::MAX - 23);
        assert_eq!(dotl_blksize(8192, 4096), 4096);
        assert_eq!(dotl_blksize(0, 0), (-24i64) as u64);
    }
}
