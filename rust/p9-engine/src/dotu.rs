// SPDX-License-Identifier: GPL-2.0-or-later
//! Pure conversions between host file attributes and the 9P2000.u / .L wire
//! forms, as `hw/9pfs/9p.c` (QEMU 10.0) does them.
//!
//! | here | 9p.c |
//! |---|---|
//! | [`dotl_open_flags`] | `get_dotl_openflags(dotl_to_open_flags())` |
//! | [`omode_flags`] | `omode_to_uflags` |
//! | [`open_flags_write`] | the read-only export check of `v9fs_open` |
//! | [`setattr_from_wire`], [`setattr_ctime_only`] | `v9fs_setattr` |
//! | [`stat_to_v9mode`] / [`v9mode_to_mode`] | same names |
//! | [`stat_of`], [`stat_extension`], [`stat_extension_device`] | `stat_to_v9stat` |
//! | [`getattr_of`], [`blksize_to_iounit`], [`dotl_blksize`] | `stat_to_v9stat_dotl`, `v9fs_getattr` |
//! | [`create_kind`], [`create_mode`] | the dispatch of `v9fs_create` |
//! | [`wstat_changes`] | `v9fs_wstat` |
//!
//! Host numbers (`O_*`, `S_IF*`, `makedev`) are Linux/glibc ones; this crate
//! does not depend on `libc`, so they are spelled out here.

use p9_wire::consts::{dm, getattr, omode, setattr};
use p9_wire::errno::{Errno, EINVAL, EIO};
use p9_wire::types::{P9String, Qid, SetAttr as WireSetAttr, Stat, StatDotl};

use crate::backend::{Attr, SetAttr, SetTime, Time};

// ---------------------------------------------------------------------------
// Linux open(2) flags.  Most are the asm-generic values; arm/aarch64 swap
// DIRECTORY/NOFOLLOW/DIRECT/LARGEFILE around, so those four depend on the
// target.  glibc defines O_LARGEFILE as 0 on 64-bit hosts (the kernel
// forces it there), which is what a 64-bit QEMU maps P9_DOTL_LARGEFILE to.
// ---------------------------------------------------------------------------

/// Linux `O_ACCMODE`.
pub const O_ACCMODE: i32 = 0o3;
/// Linux `O_RDONLY`.
pub const O_RDONLY: i32 = 0o0;
/// Linux `O_WRONLY`.
pub const O_WRONLY: i32 = 0o1;
/// Linux `O_RDWR`.
pub const O_RDWR: i32 = 0o2;
/// Linux `O_CREAT`.
pub const O_CREAT: i32 = 0o100;
/// Linux `O_EXCL`.
pub const O_EXCL: i32 = 0o200;
/// Linux `O_NOCTTY`.
pub const O_NOCTTY: i32 = 0o400;
/// Linux `O_TRUNC`.
pub const O_TRUNC: i32 = 0o1000;
/// Linux `O_APPEND`.
pub const O_APPEND: i32 = 0o2000;
/// Linux `O_NONBLOCK`.
pub const O_NONBLOCK: i32 = 0o4000;
/// Linux `O_DSYNC`.
pub const O_DSYNC: i32 = 0o10000;
/// Linux `O_ASYNC` (the same bit as `FASYNC`).
pub const O_ASYNC: i32 = 0o20000;
/// Linux `O_NOATIME`.
pub const O_NOATIME: i32 = 0o1000000;
/// Linux `O_CLOEXEC` (9p.c never passes it on).
pub const O_CLOEXEC: i32 = 0o2000000;
/// Linux `O_SYNC` (`__O_SYNC | O_DSYNC`).
pub const O_SYNC: i32 = 0o4010000;

#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
mod arch_o {
    pub const O_DIRECTORY: i32 = 0o40000;
    pub const O_NOFOLLOW: i32 = 0o100000;
    pub const O_DIRECT: i32 = 0o200000;
    #[allow(dead_code)] // only used on 32-bit hosts
    pub const O_LARGEFILE_KERNEL: i32 = 0o400000;
}
#[cfg(not(any(target_arch = "aarch64", target_arch = "arm")))]
mod arch_o {
    pub const O_DIRECT: i32 = 0o40000;
    #[allow(dead_code)] // only used on 32-bit hosts
    pub const O_LARGEFILE_KERNEL: i32 = 0o100000;
    pub const O_DIRECTORY: i32 = 0o200000;
    pub const O_NOFOLLOW: i32 = 0o400000;
}
/// Linux `O_DIRECTORY` (of the target architecture).
pub const O_DIRECTORY: i32 = arch_o::O_DIRECTORY;
/// Linux `O_NOFOLLOW` (of the target architecture).
pub const O_NOFOLLOW: i32 = arch_o::O_NOFOLLOW;
/// Linux `O_DIRECT` (of the target architecture).
pub const O_DIRECT: i32 = arch_o::O_DIRECT;
/// glibc `O_LARGEFILE`: 0 on 64-bit hosts.
#[cfg(target_pointer_width = "64")]
pub const O_LARGEFILE: i32 = 0;
/// glibc `O_LARGEFILE`: the kernel's bit on 32-bit hosts.
#[cfg(not(target_pointer_width = "64"))]
pub const O_LARGEFILE: i32 = arch_o::O_LARGEFILE_KERNEL;

// File type and special mode bits, the same on every Linux architecture.

/// `S_IFMT`: the file type bits of a mode.
pub const S_IFMT: u32 = 0o170000;
/// `S_IFSOCK`.
pub const S_IFSOCK: u32 = 0o140000;
/// `S_IFLNK`.
pub const S_IFLNK: u32 = 0o120000;
/// `S_IFREG`.
pub const S_IFREG: u32 = 0o100000;
/// `S_IFBLK`.
pub const S_IFBLK: u32 = 0o060000;
/// `S_IFDIR`.
pub const S_IFDIR: u32 = 0o040000;
/// `S_IFCHR`.
pub const S_IFCHR: u32 = 0o020000;
/// `S_IFIFO`.
pub const S_IFIFO: u32 = 0o010000;
/// `S_ISUID`.
pub const S_ISUID: u32 = 0o4000;
/// `S_ISGID`.
pub const S_ISGID: u32 = 0o2000;
/// `S_ISVTX`.
pub const S_ISVTX: u32 = 0o1000;

// utimensat's special nanosecond values.
const UTIME_NOW: u64 = (1 << 30) - 1;
const UTIME_OMIT: u64 = (1 << 30) - 2;

fn is_type(mode: u32, typ: u32) -> bool {
    mode & S_IFMT == typ
}

// ---------------------------------------------------------------------------
// Open flags
// ---------------------------------------------------------------------------

/// The host open flags for a Tlopen/Tlcreate `flags` word: 9p.c's
/// `get_dotl_openflags(dotl_to_open_flags(flags))`.
///
/// The access mode is kept as it is (3, "no access", included); each
/// `P9_DOTL_*` bit 9p.c knows maps to its Linux `O_*` bit; the rest
/// (`P9_DOTL_CLOEXEC`, unknown bits) are dropped.  Then `O_NOCTTY`,
/// `O_ASYNC`, `O_CREAT` and `O_DIRECT` are removed, as 9p.c filters them.
pub fn dotl_open_flags(flags: u32) -> i32 {
    use p9_wire::consts::dotl_open as d;
    // 9p.c's dotl_oflag_map, in its order.
    const MAP: [(u32, i32); 14] = [
        (d::CREATE, O_CREAT),
        (d::EXCL, O_EXCL),
        (d::NOCTTY, O_NOCTTY),
        (d::TRUNC, O_TRUNC),
        (d::APPEND, O_APPEND),
        (d::NONBLOCK, O_NONBLOCK),
        (d::DSYNC, O_DSYNC),
        (d::FASYNC, O_ASYNC),
        (d::NOATIME, O_NOATIME),
        (d::DIRECT, O_DIRECT),
        (d::LARGEFILE, O_LARGEFILE),
        (d::DIRECTORY, O_DIRECTORY),
        (d::NOFOLLOW, O_NOFOLLOW),
        (d::SYNC, O_SYNC),
    ];
    let mut oflags = (flags & d::ACCMODE) as i32;
    for (dotl, host) in MAP {
        if flags & dotl != 0 {
            oflags |= host;
        }
    }
    oflags & !(O_NOCTTY | O_ASYNC | O_CREAT | O_DIRECT)
}

/// The host open flags for a 9P2000(.u) Topen/Tcreate mode byte: 9p.c's
/// `omode_to_uflags`.
///
/// `OEXEC` opens read-only; `ORCLOSE` and `OREXEC` are ignored (9p.c
/// implements neither).  Tcreate of a plain file adds `O_CREAT` itself.
pub fn omode_flags(mode: u8) -> i32 {
    let mut ret = match mode & 3 {
        omode::WRITE => O_WRONLY,
        omode::RDWR => O_RDWR,
        // READ and EXEC
        _ => 0,
    };
    if mode & omode::TRUNC != 0 {
        ret |= O_TRUNC;
    }
    if mode & omode::APPEND != 0 {
        ret |= O_APPEND;
    }
    if mode & omode::EXCL != 0 {
        ret |= O_EXCL;
    }
    ret
}

/// Whether host open `flags` could modify the file: 9p.c's read-only export
/// check in `v9fs_open` (`EROFS` when true).  It tests bits, so access
/// mode 3 counts as writing.
pub fn open_flags_write(flags: i32) -> bool {
    flags & (O_WRONLY | O_RDWR | O_APPEND | O_TRUNC) != 0
}

// ---------------------------------------------------------------------------
// Tsetattr
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Modes
// ---------------------------------------------------------------------------

/// A host `st_mode` as a 9P2000.u mode: the permission bits plus `DM*`
/// bits (9p.c `stat_to_v9mode`).  Both character and block devices are
/// `DMDEVICE`; the extension tells them apart.
pub fn stat_to_v9mode(mode: u32) -> u32 {
    let mut v = mode & 0o777;
    if is_type(mode, S_IFDIR) {
        v |= dm::DIR;
    }
    if is_type(mode, S_IFLNK) {
        v |= dm::SYMLINK;
    }
    if is_type(mode, S_IFSOCK) {
        v |= dm::SOCKET;
    }
    if is_type(mode, S_IFIFO) {
        v |= dm::NAMED_PIPE;
    }
    if is_type(mode, S_IFBLK) || is_type(mode, S_IFCHR) {
        v |= dm::DEVICE;
    }
    if mode & S_ISUID != 0 {
        v |= dm::SETUID;
    }
    if mode & S_ISGID != 0 {
        v |= dm::SETGID;
    }
    if mode & S_ISVTX != 0 {
        v |= dm::SETVTX;
    }
    v
}

/// A 9P2000.u mode as a host mode (9p.c `v9mode_to_mode`).
///
/// `DMDEVICE` is a character device when `extension` starts with `c`, a
/// block device otherwise.  Several type bits are OR-ed together as 9p.c
/// does; no type bit means a regular file.  `DMLINK` and the Plan 9 bits
/// (append, exclusive, ...) are ignored.
pub fn v9mode_to_mode(v9mode: u32, extension: &[u8]) -> u32 {
    let mut ret = v9mode & 0o777;
    if v9mode & dm::DIR != 0 {
        ret |= S_IFDIR;
    }
    if v9mode & dm::SYMLINK != 0 {
        ret |= S_IFLNK;
    }
    if v9mode & dm::SOCKET != 0 {
        ret |= S_IFSOCK;
    }
    if v9mode & dm::NAMED_PIPE != 0 {
        ret |= S_IFIFO;
    }
    if v9mode & dm::DEVICE != 0 {
        ret |= if extension.first() == Some(&b'c') {
            S_IFCHR
        } else {
            S_IFBLK
        };
    }
    // Checked before the special bits are added, as in 9p.c.
    if ret & !0o777 == 0 {
        ret |= S_IFREG;
    }
    if v9mode & dm::SETUID != 0 {
        ret |= S_ISUID;
    }
    if v9mode & dm::SETGID != 0 {
        ret |= S_ISGID;
    }
    if v9mode & dm::SETVTX != 0 {
        ret |= S_ISVTX;
    }
    ret
}

// ---------------------------------------------------------------------------
// Device numbers (glibc's encoding)
// ---------------------------------------------------------------------------

/// glibc `makedev`: a `dev_t` from major and minor numbers.
pub fn makedev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (u64::from(major), u64::from(minor));
    ((major & 0xffff_f000) << 32)
        | ((major & 0x0000_0fff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0x0000_00ff)
}

/// glibc `major`.
pub fn major(rdev: u64) -> u32 {
    (((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff)) as u32
}

/// glibc `minor`.
pub fn minor(rdev: u64) -> u32 {
    (((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff)) as u32
}

// ---------------------------------------------------------------------------
// Rstat
// ---------------------------------------------------------------------------

/// The 9P2000.u stat of a file (9p.c `stat_to_v9stat`).
///
/// `typ` and `dev` are 0; times are the seconds cut to 32 bits, as C's
/// assignment to `int32_t` does; the user/group/muid names are empty (9p.c
/// never looks them up) and `n_muid` is 0.  `name` is the basename and
/// `extension` what [`stat_extension`] says, or the target of a symlink.
pub fn stat_of(attr: &Attr, qid: Qid, name: &[u8], extension: &[u8]) -> Stat {
    Stat {
        typ: 0,
        dev: 0,
        qid,
        mode: stat_to_v9mode(attr.mode),
        atime: attr.atime.sec as u32,
        mtime: attr.mtime.sec as u32,
        length: attr.size,
        name: P9String::new(name),
        uid: P9String::default(),
        gid: P9String::default(),
        muid: P9String::default(),
        extension: P9String::new(extension),
        n_uid: attr.uid,
        n_gid: attr.gid,
        n_muid: 0,
    }
}

/// The extension text of a device node, 9p.c's `"%c %u %u"` (`"c 1 3"`,
/// `"b 8 0"`); empty for any other file.
pub fn stat_extension_device(attr: &Attr) -> Vec<u8> {
    let c = if is_type(attr.mode, S_IFCHR) {
        'c'
    } else if is_type(attr.mode, S_IFBLK) {
        'b'
    } else {
        return Vec::new();
    };
    format!("{c} {} {}", major(attr.rdev), minor(attr.rdev)).into_bytes()
}

/// The extension 9p.c's `stat_to_v9stat` puts in a stat, except for
/// symlinks, where it is the link target that only the caller can read
/// (a failing readlink fails the request): empty here.  Devices get the
/// device text, directories and regular files `"HARDLINKCOUNT n"`, FIFOs
/// and sockets nothing.
pub fn stat_extension(attr: &Attr) -> Vec<u8> {
    let m = attr.mode;
    if is_type(m, S_IFCHR) || is_type(m, S_IFBLK) {
        stat_extension_device(attr)
    } else if is_type(m, S_IFDIR) || is_type(m, S_IFREG) {
        format!("HARDLINKCOUNT {}", attr.nlink).into_bytes()
    } else {
        Vec::new()
    }
}

// ---------------------------------------------------------------------------
// Rgetattr
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Tcreate
// ---------------------------------------------------------------------------

/// What a 9P2000.u Tcreate makes, from its `perm` and `extension`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateKind {
    /// A regular file, created and opened with
    /// `omode_flags(mode) | O_CREAT`.
    File,
    /// A directory (opened for reading afterwards).
    Dir,
    /// A symbolic link to this target.
    Symlink(Vec<u8>),
    /// A hard link to the file of this fid.  9p.c answers `EINVAL` when
    /// the fid does not exist.
    Link(u32),
    /// A device node.
    Device {
        /// `S_IFCHR` or `S_IFBLK` plus `perm & 0777`.
        mode: u32,
        /// glibc `makedev(major, minor)`.
        rdev: u64,
    },
    /// A FIFO.
    Fifo,
    /// A Unix socket.
    Socket,
}

/// The bytes a C function sees: up to the first NUL.
fn c_str(s: &[u8]) -> &[u8] {
    s.iter().position(|&b| b == 0).map_or(s, |n| &s[..n])
}

/// C-locale `isspace`.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `strtol`/`strtoul` prefix: whitespace, sign, decimal digits.  Returns
/// (negative, magnitude saturated at u64::MAX plus an overflow flag, digit
/// count) and advances `pos` past the digits.
fn scan_decimal(s: &[u8], pos: &mut usize) -> (bool, u64, bool, usize) {
    while s.get(*pos).copied().is_some_and(is_c_space) {
        *pos += 1;
    }
    let mut neg = false;
    if let Some(&c @ (b'+' | b'-')) = s.get(*pos) {
        neg = c == b'-';
        *pos += 1;
    }
    let (mut mag, mut overflow, mut digits) = (0u64, false, 0usize);
    while let Some(&c) = s.get(*pos).filter(|c| c.is_ascii_digit()) {
        match mag
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(c - b'0')))
        {
            Some(m) => mag = m,
            None => overflow = true,
        }
        digits += 1;
        *pos += 1;
    }
    if overflow {
        mag = u64::MAX;
    }
    (neg, mag, overflow, digits)
}

/// glibc `atoi`: `(int) strtol(s, NULL, 10)`; no digits gives 0, overflow
/// saturates to `LONG_MAX`/`LONG_MIN` before the cut to 32 bits.
fn c_atoi(s: &[u8]) -> i32 {
    let (neg, mag, overflow, _) = scan_decimal(c_str(s), &mut 0);
    let long: i64 = match (neg, overflow || mag > i64::MAX as u64) {
        (false, false) => mag as i64,
        (false, true) => i64::MAX,
        (true, _) if mag == 1 << 63 && !overflow => i64::MIN,
        (true, false) => -(mag as i64),
        (true, true) => i64::MIN,
    };
    long as i32
}

/// One glibc `sscanf` `%u`: `strtoul` (a minus sign negates modulo 2^64,
/// overflow gives `ULONG_MAX`) stored into an `unsigned int`.  `None` on a
/// matching failure (no digits).
fn scan_u32(s: &[u8], pos: &mut usize) -> Option<u32> {
    let (neg, mag, overflow, digits) = scan_decimal(s, pos);
    if digits == 0 {
        return None;
    }
    let ul = if neg && !overflow {
        mag.wrapping_neg()
    } else {
        mag
    };
    Some(ul as u32)
}

/// `sscanf(ext, "%c %u %u", ...)` succeeding with all three conversions.
fn scan_device(ext: &[u8]) -> Option<(u8, u32, u32)> {
    let s = c_str(ext);
    // %c takes any byte, whitespace included.
    let ctype = *s.first()?;
    let mut pos = 1;
    // The blank in the format skips any run of whitespace, even none.
    while s.get(pos).copied().is_some_and(is_c_space) {
        pos += 1;
    }
    let major = scan_u32(s, &mut pos)?;
    let minor = scan_u32(s, &mut pos)?;
    Some((ctype, major, minor))
}

/// What a 9P2000.u Tcreate makes (the dispatch of 9p.c `v9fs_create`),
/// checking the type bits in 9p.c's order: `DMDIR`, `DMSYMLINK`, `DMLINK`,
/// `DMDEVICE`, `DMNAMEDPIPE`, `DMSOCKET`, else a regular file.
///
/// - `DMLINK`: the extension is read with C `atoi`, so text that is not a
///   number names fid 0, and an out-of-range one wraps; only the fid
///   lookup can fail (with `EINVAL`, by the caller).
/// - `DMDEVICE`: the extension is scanned like `sscanf("%c %u %u")`
///   (so `"c1 3"` and `"c 1 3 junk"` are fine, `" c 1 3"` is not).  A type
///   other than `c`/`b` is `EIO`, as in 9p.c.  When the scan fails 9p.c
///   answers `-errno`, but glibc's `sscanf` does not set `errno` there: it
///   holds a stale value, usually 0, and 9p.c then sends a malformed
///   zero-length "success" reply.  We answer `EINVAL` instead.
pub fn create_kind(perm: u32, extension: &[u8]) -> Result<CreateKind, Errno> {
    if perm & dm::DIR != 0 {
        Ok(CreateKind::Dir)
    } else if perm & dm::SYMLINK != 0 {
        Ok(CreateKind::Symlink(c_str(extension).to_vec()))
    } else if perm & dm::LINK != 0 {
        Ok(CreateKind::Link(c_atoi(extension) as u32))
    } else if perm & dm::DEVICE != 0 {
        let (ctype, major, minor) = scan_device(extension).ok_or(EINVAL)?;
        let typ = match ctype {
            b'c' => S_IFCHR,
            b'b' => S_IFBLK,
            _ => return Err(EIO),
        };
        Ok(CreateKind::Device {
            mode: typ | (perm & 0o777),
            rdev: makedev(major, minor),
        })
    } else if perm & dm::NAMED_PIPE != 0 {
        Ok(CreateKind::Fifo)
    } else if perm & dm::SOCKET != 0 {
        Ok(CreateKind::Socket)
    } else {
        Ok(CreateKind::File)
    }
}

/// The mode 9p.c's `v9fs_create` creates `kind` with: `perm & 07777` for
/// a file (`v9fs_co_open2` masks it so; the `DMSETUID`-style bits are not
/// translated), `perm & 0777` for a directory, `S_IFIFO`/`S_IFSOCK` plus
/// `perm & 0777` for FIFOs and sockets, the computed mode for devices, and
/// 0 for links, which take no mode.
pub fn create_mode(perm: u32, kind: &CreateKind) -> u32 {
    match kind {
        CreateKind::File => perm & 0o7777,
        CreateKind::Dir => perm & 0o777,
        CreateKind::Device { mode, .. } => *mode,
        CreateKind::Fifo => S_IFIFO | (perm & 0o777),
        CreateKind::Socket => S_IFSOCK | (perm & 0o777),
        CreateKind::Symlink(_) | CreateKind::Link(_) => 0,
    }
}

// ---------------------------------------------------------------------------
// Twstat
// ---------------------------------------------------------------------------

/// What a Twstat asks for, in the order 9p.c `v9fs_wstat` applies it:
///
/// 1. `sync`: every field is "don't touch", so 9p.c only fsyncs the fid's
///    open file (`EBADF` when the fid has none) and nothing else is set.
/// 2. `set`: chmod, then utimensat, then chown (`size` is always `None`).
/// 3. `rename_to`: rename within the same directory.  9p.c checks the
///    name only now, after step 2 took effect: `EOPNOTSUPP` for a
///    backend that is not path-based, then `p9_wire::NameRule::Rename`
///    (`ENOENT`, `EISDIR`).
/// 4. `truncate`: truncate (a signed offset in 9p.c, so above `i64::MAX`
///    fails there).
///
/// Each step stops the request at its first failure, leaving the earlier
/// ones done.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WstatChanges {
    /// Only fsync the fid's open file.
    pub sync: bool,
    /// Mode (the full [`v9mode_to_mode`] value, as 9p.c passes it to
    /// chmod), times and owner.
    pub set: SetAttr,
    /// New name.
    pub rename_to: Option<Vec<u8>>,
    /// New length.
    pub truncate: Option<u64>,
}

/// A Twstat's changes (9p.c `v9fs_wstat`); see [`WstatChanges`] for the
/// order.
///
/// `current_mode` is the file's `st_mode` (9p.c lstats the fid); it is
/// only looked at when `stat.mode` is not `u32::MAX`, so a caller may skip
/// the lookup otherwise.  Changing the file type through the `DM*` type
/// bits is `EIO` (9p.c's choice), before anything is changed.  The other
/// "don't touch" values are `u32::MAX`/`u64::MAX` and empty strings:
///
/// - atime/mtime: whole seconds (read as signed 32-bit, as 9p.c's
///   `int32_t` does), nsec 0, the other one omitted;
/// - `n_uid`/`n_gid`: chown, with `-1` (`None`) for the one not given;
///   the uid/gid/muid names are ignored;
/// - `length`, `name`: see [`WstatChanges`].
pub fn wstat_changes(stat: &Stat, current_mode: u32) -> Result<WstatChanges, Errno> {
    if stat.is_dont_touch() {
        return Ok(WstatChanges {
            sync: true,
            ..WstatChanges::default()
        });
    }
    let mut out = WstatChanges::default();
    if stat.mode != u32::MAX {
        if stat.mode & dm::TYPE_BITS != stat_to_v9mode(current_mode) & dm::TYPE_BITS {
            return Err(EIO);
        }
        out.set.mode = Some(v9mode_to_mode(stat.mode, &stat.extension));
    }
    let secs = |t: u32| {
        if t == u32::MAX {
            SetTime::Omit
        } else {
            SetTime::At(Time {
                sec: i64::from(t as i32),
                nsec: 0,
            })
        }
    };
    out.set.atime = secs(stat.atime);
    out.set.mtime = secs(stat.mtime);
    if stat.n_uid != u32::MAX || stat.n_gid != u32::MAX {
        // chown(n_uid, n_gid): -1 leaves that one alone.
        out.set.uid = (stat.n_uid != u32::MAX).then_some(stat.n_uid);
        out.set.gid = (stat.n_gid != u32::MAX).then_some(stat.n_gid);
    }
    if !stat.name.is_empty() {
        out.rename_to = Some(stat.name.as_bytes().to_vec());
    }
    if stat.length != u64::MAX {
        out.truncate = Some(stat.length);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p9_wire::consts::dotl_open as d;

    fn attr(mode: u32) -> Attr {
        Attr {
            mode,
            ..Attr::default()
        }
    }

    // ---- open flags ----

    #[test]
    fn dotl_access_modes_pass_through() {
        for m in 0..4 {
            assert_eq!(dotl_open_flags(m), m as i32);
        }
    }

    #[test]
    fn dotl_each_bit() {
        let cases: &[(u32, i32)] = &[
            (d::EXCL, 0o200),
            (d::TRUNC, 0o1000),
            (d::APPEND, 0o2000),
            (d::NONBLOCK, 0o4000),
            (d::DSYNC, 0o10000),
            (d::NOATIME, 0o1000000),
            (d::SYNC, 0o4010000),
            // Filtered out by get_dotl_openflags.
            (d::CREATE, 0),
            (d::NOCTTY, 0),
            (d::FASYNC, 0),
            (d::DIRECT, 0),
            // Not in 9p.c's map.
            (d::CLOEXEC, 0),
            (0x8000_0000, 0),
        ];
        for &(bit, want) in cases {
            assert_eq!(dotl_open_flags(bit), want, "dotl bit {bit:#o}");
        }
    }

    #[cfg(not(any(target_arch = "aarch64", target_arch = "arm")))]
    #[test]
    fn dotl_arch_bits_generic() {
        assert_eq!(dotl_open_flags(d::DIRECTORY), 0o200000);
        assert_eq!(dotl_open_flags(d::NOFOLLOW), 0o400000);
    }

    #[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
    #[test]
    fn dotl_arch_bits_arm() {
        assert_eq!(dotl_open_flags(d::DIRECTORY), 0o40000);
        assert_eq!(dotl_open_flags(d::NOFOLLOW), 0o100000);
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn dotl_largefile_is_zero_on_64_bit() {
        assert_eq!(dotl_open_flags(d::LARGEFILE), 0);
    }

    #[test]
    fn dotl_combination() {
        let f = d::RDWR | d::CREATE | d::EXCL | d::TRUNC | d::DIRECT | d::CLOEXEC;
        assert_eq!(dotl_open_flags(f), 0o2 | 0o200 | 0o1000);
    }

    #[test]
    fn omode_mapping() {
        assert_eq!(omode_flags(omode::READ), 0);
        assert_eq!(omode_flags(omode::WRITE), 1);
        assert_eq!(omode_flags(omode::RDWR), 2);
        assert_eq!(omode_flags(omode::EXEC), 0);
        assert_eq!(omode_flags(omode::EXCL), 0o200);
        assert_eq!(omode_flags(omode::TRUNC), 0o1000);
        assert_eq!(omode_flags(omode::APPEND), 0o2000);
        assert_eq!(omode_flags(omode::REXEC), 0);
        assert_eq!(omode_flags(omode::RCLOSE), 0);
        assert_eq!(
            omode_flags(omode::WRITE | omode::TRUNC | omode::APPEND | omode::RCLOSE),
            1 | 0o1000 | 0o2000
        );
        assert_eq!(omode_flags(0xff), 0o200 | 0o1000 | 0o2000);
    }

    #[test]
    fn write_check() {
        assert!(!open_flags_write(0));
        assert!(!open_flags_write(
            O_EXCL | O_NONBLOCK | O_DIRECTORY | O_NOFOLLOW
        ));
        assert!(open_flags_write(1));
        assert!(open_flags_write(2));
        assert!(open_flags_write(3));
        assert!(open_flags_write(O_APPEND));
        assert!(open_flags_write(O_TRUNC));
        assert!(open_flags_write(omode_flags(omode::READ | omode::TRUNC)));
        assert!(!open_flags_write(dotl_open_flags(d::RDONLY | d::CREATE)));
    }

    // ---- setattr ----

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

    // ---- modes ----

    #[test]
    fn v9mode_of_each_type() {
        assert_eq!(stat_to_v9mode(0o100644), 0o644);
        assert_eq!(stat_to_v9mode(0o040755), 0x8000_0000 | 0o755);
        assert_eq!(stat_to_v9mode(0o120777), 0x0200_0000 | 0o777);
        assert_eq!(stat_to_v9mode(0o140700), 0x0010_0000 | 0o700);
        assert_eq!(stat_to_v9mode(0o010600), 0x0020_0000 | 0o600);
        assert_eq!(stat_to_v9mode(0o020666), 0x0080_0000 | 0o666);
        assert_eq!(stat_to_v9mode(0o060660), 0x0080_0000 | 0o660);
        assert_eq!(stat_to_v9mode(0o104755), 0x0008_0000 | 0o755);
        assert_eq!(stat_to_v9mode(0o102755), 0x0004_0000 | 0o755);
        assert_eq!(stat_to_v9mode(0o041777), 0x8001_0000 | 0o777);
    }

    #[test]
    fn mode_of_each_dm_bit() {
        assert_eq!(v9mode_to_mode(0o644, b""), 0o100644);
        assert_eq!(v9mode_to_mode(dm::DIR | 0o755, b""), 0o040755);
        assert_eq!(v9mode_to_mode(dm::SYMLINK | 0o777, b"/x"), 0o120777);
        assert_eq!(v9mode_to_mode(dm::SOCKET, b""), 0o140000);
        assert_eq!(v9mode_to_mode(dm::NAMED_PIPE, b""), 0o010000);
        assert_eq!(v9mode_to_mode(dm::DEVICE | 0o600, b"c 1 3"), 0o020600);
        assert_eq!(v9mode_to_mode(dm::DEVICE | 0o600, b"b 8 0"), 0o060600);
        // Not 'c' (or empty): block.
        assert_eq!(v9mode_to_mode(dm::DEVICE, b""), 0o060000);
        assert_eq!(v9mode_to_mode(dm::DEVICE, b" c"), 0o060000);
        // Special bits never count as a type.
        assert_eq!(
            v9mode_to_mode(dm::SETUID | dm::SETGID | dm::SETVTX, b""),
            0o107000
        );
        // Ignored bits.
        assert_eq!(
            v9mode_to_mode(dm::LINK | dm::APPEND | dm::EXCL | 0o7000, b""),
            0o100000
        );
        // Several type bits are OR-ed.
        assert_eq!(v9mode_to_mode(dm::DIR | dm::SYMLINK, b""), 0o160000);
    }

    #[test]
    fn mode_round_trip() {
        let types: &[(u32, &[u8])] = &[
            (0o100000, b""),
            (0o040000, b""),
            (0o120000, b"target"),
            (0o140000, b""),
            (0o010000, b""),
            (0o020000, b"c 1 3"),
            (0o060000, b"b 8 0"),
        ];
        for &(t, ext) in types {
            for perm in [0, 0o644, 0o777, 0o4755, 0o2711, 0o1777, 0o7777] {
                let m = t | perm;
                assert_eq!(v9mode_to_mode(stat_to_v9mode(m), ext), m, "{m:#o}");
            }
        }
    }

    // ---- device numbers ----

    #[test]
    fn dev_numbers() {
        assert_eq!(makedev(1, 3), 0x103);
        assert_eq!(makedev(259, 0), 0x10300);
        assert_eq!(makedev(1, 0x100), 0x100100);
        assert_eq!(makedev(0x1000, 0), 0x1000_0000_0000);
        assert_eq!(makedev(u32::MAX, u32::MAX), u64::MAX);
        for (ma, mi) in [(0, 0), (8, 1), (0x12345, 0xabcdef), (u32::MAX, 7)] {
            let dev = makedev(ma, mi);
            assert_eq!((major(dev), minor(dev)), (ma, mi));
        }
    }

    // ---- stat ----

    #[test]
    fn device_extension_text() {
        let mut a = attr(0o020666);
        a.rdev = makedev(1, 3);
        assert_eq!(stat_extension_device(&a), b"c 1 3");
        let mut b = attr(0o060660);
        b.rdev = makedev(8, 0);
        assert_eq!(stat_extension_device(&b), b"b 8 0");
        b.rdev = makedev(259, 0x12345);
        assert_eq!(stat_extension_device(&b), b"b 259 74565");
        assert_eq!(stat_extension_device(&attr(0o100644)), b"");
        assert_eq!(stat_extension_device(&attr(0o010644)), b"");
    }

    #[test]
    fn whole_extension() {
        let mut a = attr(0o040755);
        a.nlink = 12;
        assert_eq!(stat_extension(&a), b"HARDLINKCOUNT 12");
        a.mode = 0o100644;
        assert_eq!(stat_extension(&a), b"HARDLINKCOUNT 12");
        a.mode = 0o120777;
        assert_eq!(stat_extension(&a), b"");
        a.mode = 0o010644;
        assert_eq!(stat_extension(&a), b"");
        a.mode = 0o140755;
        assert_eq!(stat_extension(&a), b"");
        a.mode = 0o020600;
        a.rdev = makedev(4, 64);
        assert_eq!(stat_extension(&a), b"c 4 64");
    }

    #[test]
    fn stat_fields() {
        let a = Attr {
            mode: 0o104755,
            uid: 1000,
            gid: 100,
            size: 1 << 40,
            atime: Time {
                sec: 0x1_0000_0005,
                nsec: 9,
            },
            mtime: Time { sec: -1, nsec: 0 },
            ..Attr::default()
        };
        let qid = Qid {
            typ: 0,
            version: 3,
            path: 4,
        };
        let s = stat_of(&a, qid, b"file", b"HARDLINKCOUNT 1");
        assert_eq!(s.typ, 0);
        assert_eq!(s.dev, 0);
        assert_eq!(s.qid, qid);
        assert_eq!(s.mode, dm::SETUID | 0o755);
        assert_eq!(s.atime, 5);
        assert_eq!(s.mtime, u32::MAX);
        assert_eq!(s.length, 1 << 40);
        assert_eq!(s.name.as_bytes(), b"file");
        assert!(s.uid.is_empty() && s.gid.is_empty() && s.muid.is_empty());
        assert_eq!(s.extension.as_bytes(), b"HARDLINKCOUNT 1");
        assert_eq!((s.n_uid, s.n_gid, s.n_muid), (1000, 100, 0));
    }

    // ---- getattr ----

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

    // ---- create ----

    #[test]
    fn create_dispatch_order() {
        let all = dm::DIR | dm::SYMLINK | dm::LINK | dm::DEVICE | dm::NAMED_PIPE | dm::SOCKET;
        assert_eq!(create_kind(all, b"c 1 3"), Ok(CreateKind::Dir));
        assert_eq!(
            create_kind(all & !dm::DIR, b"c 1 3"),
            Ok(CreateKind::Symlink(b"c 1 3".to_vec()))
        );
        assert_eq!(
            create_kind(dm::LINK | dm::DEVICE | dm::SOCKET, b"c 1 3"),
            Ok(CreateKind::Link(0))
        );
        assert_eq!(
            create_kind(dm::DEVICE | dm::SOCKET, b"c 1 3"),
            Ok(CreateKind::Device {
                mode: 0o020000,
                rdev: 0x103
            })
        );
        assert_eq!(
            create_kind(dm::NAMED_PIPE | dm::SOCKET, b""),
            Ok(CreateKind::Fifo)
        );
        assert_eq!(create_kind(dm::SOCKET, b""), Ok(CreateKind::Socket));
        assert_eq!(
            create_kind(dm::APPEND | dm::TMP | 0o644, b"x"),
            Ok(CreateKind::File)
        );
    }

    #[test]
    fn create_link_atoi() {
        let link = |e: &[u8]| create_kind(dm::LINK, e);
        assert_eq!(link(b"12"), Ok(CreateKind::Link(12)));
        assert_eq!(link(b" \t+7x"), Ok(CreateKind::Link(7)));
        assert_eq!(link(b"abc"), Ok(CreateKind::Link(0)));
        assert_eq!(link(b""), Ok(CreateKind::Link(0)));
        assert_eq!(link(b"-1"), Ok(CreateKind::Link(u32::MAX)));
        assert_eq!(link(b"4294967297"), Ok(CreateKind::Link(1)));
        // LONG_MAX and LONG_MIN cut to int.
        assert_eq!(
            link(b"99999999999999999999"),
            Ok(CreateKind::Link(u32::MAX))
        );
        assert_eq!(link(b"-99999999999999999999"), Ok(CreateKind::Link(0)));
        assert_eq!(link(b"-9223372036854775808"), Ok(CreateKind::Link(0)));
        assert_eq!(link(b"5\x009"), Ok(CreateKind::Link(5)));
    }

    #[test]
    fn create_device_scan() {
        let dev = |e: &[u8]| create_kind(dm::DEVICE | dm::SETUID | 0o4755, e);
        assert_eq!(
            dev(b"c 1 3"),
            Ok(CreateKind::Device {
                mode: 0o020755,
                rdev: makedev(1, 3)
            })
        );
        assert_eq!(
            dev(b"b 8 0"),
            Ok(CreateKind::Device {
                mode: 0o060755,
                rdev: makedev(8, 0)
            })
        );
        let rdev = |e: &[u8]| match dev(e) {
            Ok(CreateKind::Device { rdev, .. }) => Some((major(rdev), minor(rdev))),
            _ => None,
        };
        assert_eq!(rdev(b"c1 3"), Some((1, 3)));
        assert_eq!(rdev(b"c\t1\n3 junk"), Some((1, 3)));
        assert_eq!(rdev(b"c +5 -0"), Some((5, 0)));
        assert_eq!(rdev(b"c -1 3"), Some((u32::MAX, 3)));
        assert_eq!(rdev(b"c 4294967296 1"), Some((0, 1)));
        assert_eq!(rdev(b"c 99999999999999999999 1"), Some((u32::MAX, 1)));
        assert_eq!(rdev(b"b 259 74565"), Some((259, 74565)));
        // Bad type letter after a good scan: EIO.
        assert_eq!(dev(b"x 1 3"), Err(EIO));
        assert_eq!(dev(b"C 1 3"), Err(EIO));
        // Scan failures.
        assert_eq!(dev(b""), Err(EINVAL));
        assert_eq!(dev(b"c"), Err(EINVAL));
        assert_eq!(dev(b"c 1"), Err(EINVAL));
        assert_eq!(dev(b"c 1 x"), Err(EINVAL));
        assert_eq!(dev(b"c - 3"), Err(EINVAL));
        assert_eq!(dev(b"c 1 3\x00"), rdev_ok(1, 3));
        assert_eq!(dev(b"c 1\x003"), Err(EINVAL));
        // %c takes the blank, then "c" is no number.
        assert_eq!(dev(b" c 1 3"), Err(EINVAL));
        // %c takes the blank, then the numbers scan: the type is wrong.
        assert_eq!(dev(b" 1 3"), Err(EIO));
    }

    fn rdev_ok(ma: u32, mi: u32) -> Result<CreateKind, Errno> {
        Ok(CreateKind::Device {
            mode: 0o020755,
            rdev: makedev(ma, mi),
        })
    }

    #[test]
    fn create_modes() {
        let perm = dm::SETUID | 0o4755;
        assert_eq!(create_mode(perm, &CreateKind::File), 0o4755);
        assert_eq!(create_mode(perm, &CreateKind::Dir), 0o755);
        assert_eq!(create_mode(perm, &CreateKind::Fifo), 0o010755);
        assert_eq!(create_mode(perm, &CreateKind::Socket), 0o140755);
        let kind = create_kind(dm::DEVICE | perm, b"b 1 2").unwrap();
        assert_eq!(create_mode(perm, &kind), 0o060755);
        assert_eq!(create_mode(perm, &CreateKind::Link(3)), 0);
    }

    // ---- wstat ----

    #[test]
    fn wstat_sync() {
        let mut s = Stat::dont_touch();
        let sync = WstatChanges {
            sync: true,
            ..WstatChanges::default()
        };
        assert_eq!(wstat_changes(&s, 0o100644), Ok(sync.clone()));
        // The extension is not part of the check.
        s.extension = P9String::new(&b"c 1 3"[..]);
        assert_eq!(wstat_changes(&s, 0o100644), Ok(sync));
        // Any other field set: no sync, and here nothing to do either.
        s.typ = 0;
        assert_eq!(wstat_changes(&s, 0o100644), Ok(WstatChanges::default()));
        let mut s = Stat::dont_touch();
        s.uid = P9String::new(&b"bob"[..]);
        assert_eq!(wstat_changes(&s, 0o100644), Ok(WstatChanges::default()));
        let mut s = Stat::dont_touch();
        s.qid.path = 0;
        assert_eq!(wstat_changes(&s, 0o100644), Ok(WstatChanges::default()));
    }

    #[test]
    fn wstat_mode() {
        let mut s = Stat::dont_touch();
        s.mode = 0o600;
        let c = wstat_changes(&s, 0o100644).unwrap();
        assert_eq!(c.set.mode, Some(0o100600));
        assert!(!c.sync);
        s.mode = dm::DIR | 0o700;
        assert_eq!(wstat_changes(&s, 0o100644), Err(EIO));
        assert_eq!(
            wstat_changes(&s, 0o040755).unwrap().set.mode,
            Some(0o040700)
        );
        // Plain mode on a directory: the type would change.
        s.mode = 0o700;
        assert_eq!(wstat_changes(&s, 0o040755), Err(EIO));
        // DMLINK is a type bit no file has.
        s.mode = dm::LINK | 0o700;
        assert_eq!(wstat_changes(&s, 0o100644), Err(EIO));
        // Device: the extension picks char vs block.
        s.mode = dm::DEVICE | dm::SETGID | 0o640;
        s.extension = P9String::new(&b"c"[..]);
        assert_eq!(
            wstat_changes(&s, 0o020600).unwrap().set.mode,
            Some(0o022640)
        );
        s.extension = P9String::default();
        assert_eq!(
            wstat_changes(&s, 0o020600).unwrap().set.mode,
            Some(0o062640)
        );
        // Mode don't-touch: current mode unused.
        let mut s = Stat::dont_touch();
        s.length = 0;
        assert_eq!(wstat_changes(&s, 0).unwrap().set.mode, None);
    }

    #[test]
    fn wstat_times_owner_name_length() {
        let mut s = Stat::dont_touch();
        s.atime = 1000;
        let c = wstat_changes(&s, 0o100644).unwrap();
        assert_eq!(c.set.atime, SetTime::At(Time { sec: 1000, nsec: 0 }));
        assert_eq!(c.set.mtime, SetTime::Omit);
        s.atime = u32::MAX;
        s.mtime = 0x8000_0000;
        let c = wstat_changes(&s, 0o100644).unwrap();
        assert_eq!(c.set.atime, SetTime::Omit);
        assert_eq!(
            c.set.mtime,
            SetTime::At(Time {
                sec: -0x8000_0000,
                nsec: 0
            })
        );

        let mut s = Stat::dont_touch();
        s.n_gid = 50;
        let c = wstat_changes(&s, 0o100644).unwrap();
        assert_eq!((c.set.uid, c.set.gid), (None, Some(50)));
        s.n_uid = 60;
        s.n_gid = u32::MAX;
        let c = wstat_changes(&s, 0o100644).unwrap();
        assert_eq!((c.set.uid, c.set.gid), (Some(60), None));
        s.n_muid = 1;
        s.n_uid = u32::MAX;
        assert_eq!(wstat_changes(&s, 0o100644), Ok(WstatChanges::default()));

        let mut s = Stat::dont_touch();
        s.name = P9String::new(&b"new"[..]);
        s.length = 0;
        let c = wstat_changes(&s, 0o100644).unwrap();
        assert_eq!(c.rename_to.as_deref(), Some(&b"new"[..]));
        assert_eq!(c.truncate, Some(0));
        assert_eq!(c.set, SetAttr::default());
        assert!(!c.sync);
    }
}
