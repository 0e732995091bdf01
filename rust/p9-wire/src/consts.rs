// SPDX-License-Identifier: GPL-2.0-or-later
//! Protocol constants: sizes, special values, and flag bits (the values of
//! `hw/9pfs/9p.h`, `hw/9pfs/9p.c` and Linux `include/net/9p/9p.h`).

/// Message header: `size[4] type[1] tag[2]`.
pub const HEADER_SIZE: usize = 7;
/// Header of Rread and Rreaddir: `size[4] type[1] tag[2] count[4]`.
pub const RREAD_HEADER_SIZE: usize = 11;
/// Header of Twrite: `size[4] type[1] tag[2] fid[4] offset[8] count[4]`.
pub const TWRITE_HEADER_SIZE: usize = 23;
/// Room the client reserves for a Tread/Twrite header (`P9_IOHDRSZ`); the
/// iounit is computed against `msize - P9_IOHDRSZ`.
pub const P9_IOHDRSZ: u32 = 24;
/// Maximum number of walk elements in one Twalk/Rwalk (`P9_MAXWELEM`).
pub const P9_MAXWELEM: usize = 16;
/// Smallest msize 9p.c accepts in Tversion (`P9_MIN_MSIZE`); smaller
/// requests get `EMSGSIZE`.
pub const P9_MIN_MSIZE: u32 = 4096;
/// The "no tag" tag, used by Tversion (`P9_NOTAG`).
pub const NOTAG: u16 = u16::MAX;
/// The "no fid" fid, e.g. Tattach's afid without authentication
/// (`P9_NOFID`).
pub const NOFID: u32 = u32::MAX;
/// "No numeric user" in Tattach/Tauth `n_uname` (`P9_NONUNAME`).
pub const NONUNAME: u32 = u32::MAX;
/// Size of a qid on the wire: `type[1] version[4] path[8]`.
pub const QID_SIZE: usize = 13;
/// Size of an Rreaddir entry without its name: `qid[13] offset[8] type[1]
/// name_len[2]` (9p.c `v9fs_readdir_response_size`).
pub const DIRENT_HEADER_SIZE: usize = 24;
/// Size of the Rgetattr body.
pub const STAT_DOTL_SIZE: usize = 153;
/// Size of the Rstatfs body.
pub const STATFS_SIZE: usize = 60;
/// Size of a 9P2000.u stat with all five strings empty, including its own
/// `size[2]` field; 9p.c's `stat_to_v9stat` stores 61 (this minus 2) plus
/// the string lengths in the size field.
pub const STAT_FIXED_SIZE: usize = 63;
/// Largest xattr value 9p.c accepts in Txattrcreate (Linux
/// `XATTR_SIZE_MAX`); larger sizes get `E2BIG`.
pub const XATTR_SIZE_MAX: u64 = 65536;

/// Qid types (`qid.type`, `P9_QT*`).
pub mod qid_type {
    /// Directory.
    pub const DIR: u8 = 0x80;
    /// Append-only file.
    pub const APPEND: u8 = 0x40;
    /// Exclusive-use file.
    pub const EXCL: u8 = 0x20;
    /// Mount point.
    pub const MOUNT: u8 = 0x10;
    /// Authentication file.
    pub const AUTH: u8 = 0x08;
    /// Temporary file.
    pub const TMP: u8 = 0x04;
    /// Symbolic link (9P2000.u/.L).
    pub const SYMLINK: u8 = 0x02;
    /// Hard link (9P2000.u).
    pub const LINK: u8 = 0x01;
    /// Plain file.
    pub const FILE: u8 = 0x00;
}

/// Tgetattr `request_mask` / Rgetattr `valid` bits (`P9_STATS_*`).
pub mod getattr {
    /// `st_mode`.
    pub const MODE: u64 = 0x0000_0001;
    /// `st_nlink`.
    pub const NLINK: u64 = 0x0000_0002;
    /// `st_uid`.
    pub const UID: u64 = 0x0000_0004;
    /// `st_gid`.
    pub const GID: u64 = 0x0000_0008;
    /// `st_rdev`.
    pub const RDEV: u64 = 0x0000_0010;
    /// `st_atime`.
    pub const ATIME: u64 = 0x0000_0020;
    /// `st_mtime`.
    pub const MTIME: u64 = 0x0000_0040;
    /// `st_ctime`.
    pub const CTIME: u64 = 0x0000_0080;
    /// `st_ino` (the qid path).
    pub const INO: u64 = 0x0000_0100;
    /// `st_size`.
    pub const SIZE: u64 = 0x0000_0200;
    /// `st_blocks`.
    pub const BLOCKS: u64 = 0x0000_0400;
    /// Birth time.
    pub const BTIME: u64 = 0x0000_0800;
    /// Inode generation.
    pub const GEN: u64 = 0x0000_1000;
    /// Data version.
    pub const DATA_VERSION: u64 = 0x0000_2000;
    /// All fields up to `BLOCKS` (`P9_STATS_BASIC`).
    pub const BASIC: u64 = 0x0000_07ff;
    /// All fields (`P9_STATS_ALL`).
    pub const ALL: u64 = 0x0000_3fff;
}

/// Tsetattr `valid` bits (`P9_ATTR_*`).
pub mod setattr {
    /// Set the mode.
    pub const MODE: u32 = 1 << 0;
    /// Set the owner.
    pub const UID: u32 = 1 << 1;
    /// Set the group.
    pub const GID: u32 = 1 << 2;
    /// Truncate to `size`.
    pub const SIZE: u32 = 1 << 3;
    /// Update atime (to now unless `ATIME_SET`).
    pub const ATIME: u32 = 1 << 4;
    /// Update mtime (to now unless `MTIME_SET`).
    pub const MTIME: u32 = 1 << 5;
    /// Update ctime.
    pub const CTIME: u32 = 1 << 6;
    /// atime is given in `atime_sec`/`atime_nsec`.
    pub const ATIME_SET: u32 = 1 << 7;
    /// mtime is given in `mtime_sec`/`mtime_nsec`.
    pub const MTIME_SET: u32 = 1 << 8;
    /// 9p.c's `P9_ATTR_MASK`: the bits below `ATIME_SET`.
    pub const MASK: u32 = 127;
}

/// Tlock/Tgetlock lock types (`P9_LOCK_TYPE_*`).
pub mod lock_type {
    /// Read lock.
    pub const RDLCK: u8 = 0;
    /// Write lock.
    pub const WRLCK: u8 = 1;
    /// Unlock.
    pub const UNLCK: u8 = 2;
}

/// Rlock status values (`P9_LOCK_*`).
pub mod lock_status {
    /// Granted.
    pub const SUCCESS: u8 = 0;
    /// Would block.
    pub const BLOCKED: u8 = 1;
    /// Error.
    pub const ERROR: u8 = 2;
    /// Grace period.
    pub const GRACE: u8 = 3;
}

/// Tlock flags (`P9_LOCK_FLAGS_*`).  9p.c refuses any flag but `BLOCK`
/// with `EINVAL`.
pub mod lock_flags {
    /// Blocking request.
    pub const BLOCK: u32 = 1;
    /// Reclaim after server restart.
    pub const RECLAIM: u32 = 2;
}

/// 9P2000.L open/create flags (`P9_DOTL_*`, Linux octal values).
pub mod dotl_open {
    /// Read only.
    pub const RDONLY: u32 = 0o0;
    /// Write only.
    pub const WRONLY: u32 = 0o1;
    /// Read/write.
    pub const RDWR: u32 = 0o2;
    /// No access.
    pub const NOACCESS: u32 = 0o3;
    /// Access mode mask.
    pub const ACCMODE: u32 = 0o3;
    /// Create.
    pub const CREATE: u32 = 0o100;
    /// Exclusive create.
    pub const EXCL: u32 = 0o200;
    /// No controlling tty.
    pub const NOCTTY: u32 = 0o400;
    /// Truncate.
    pub const TRUNC: u32 = 0o1000;
    /// Append.
    pub const APPEND: u32 = 0o2000;
    /// Non-blocking.
    pub const NONBLOCK: u32 = 0o4000;
    /// Data sync.
    pub const DSYNC: u32 = 0o10000;
    /// Async notification.
    pub const FASYNC: u32 = 0o20000;
    /// Direct I/O.
    pub const DIRECT: u32 = 0o40000;
    /// Large file.
    pub const LARGEFILE: u32 = 0o100000;
    /// Must be a directory.
    pub const DIRECTORY: u32 = 0o200000;
    /// Do not follow symlinks.
    pub const NOFOLLOW: u32 = 0o400000;
    /// Do not update atime.
    pub const NOATIME: u32 = 0o1000000;
    /// Close on exec.
    pub const CLOEXEC: u32 = 0o2000000;
    /// Full sync.
    pub const SYNC: u32 = 0o4000000;
}

/// Tunlinkat flag: remove a directory (`P9_DOTL_AT_REMOVEDIR`).  9p.c
/// refuses any other flag with `EINVAL`.
pub const AT_REMOVEDIR: u32 = 0x200;

/// Txattrcreate flags (`P9_XATTR_*`, the Linux values).  9p.c refuses any
/// other flag with `EINVAL`.
pub mod xattr_flags {
    /// Fail if the attribute exists.
    pub const CREATE: u32 = 1;
    /// Fail if the attribute does not exist.
    pub const REPLACE: u32 = 2;
}

/// 9P2000(.u) Topen/Tcreate mode byte, as 9p.c's `omode_to_uflags` reads
/// it.
pub mod omode {
    /// Read.
    pub const READ: u8 = 0x00;
    /// Write.
    pub const WRITE: u8 = 0x01;
    /// Read/write.
    pub const RDWR: u8 = 0x02;
    /// Execute (opened read-only by 9p.c).
    pub const EXEC: u8 = 0x03;
    /// Exclusive: 9p.c's `Oexcl` (the Plan 9 `OEXCL` 0x1000 does not fit in
    /// the mode byte).
    pub const EXCL: u8 = 0x04;
    /// Truncate.
    pub const TRUNC: u8 = 0x10;
    /// Close on exec.
    pub const REXEC: u8 = 0x20;
    /// Remove on close.
    pub const RCLOSE: u8 = 0x40;
    /// Append.
    pub const APPEND: u8 = 0x80;
}

/// 9P2000(.u) stat `mode` / Tcreate `perm` type bits (`P9_STAT_MODE_*`,
/// Plan 9 `DM*`).
pub mod dm {
    /// Directory.
    pub const DIR: u32 = 0x8000_0000;
    /// Append only.
    pub const APPEND: u32 = 0x4000_0000;
    /// Exclusive use.
    pub const EXCL: u32 = 0x2000_0000;
    /// Mount point.
    pub const MOUNT: u32 = 0x1000_0000;
    /// Authentication file.
    pub const AUTH: u32 = 0x0800_0000;
    /// Temporary file.
    pub const TMP: u32 = 0x0400_0000;
    /// Symbolic link (.u).
    pub const SYMLINK: u32 = 0x0200_0000;
    /// Hard link (.u).
    pub const LINK: u32 = 0x0100_0000;
    /// Device file (.u).
    pub const DEVICE: u32 = 0x0080_0000;
    /// Named pipe (.u).
    pub const NAMED_PIPE: u32 = 0x0020_0000;
    /// Socket (.u).
    pub const SOCKET: u32 = 0x0010_0000;
    /// Set-uid (.u).
    pub const SETUID: u32 = 0x0008_0000;
    /// Set-gid (.u).
    pub const SETGID: u32 = 0x0004_0000;
    /// Sticky (.u).
    pub const SETVTX: u32 = 0x0001_0000;
    /// The file-type bits (9p.c `P9_STAT_MODE_TYPE_BITS`).
    pub const TYPE_BITS: u32 = DIR | SYMLINK | LINK | DEVICE | NAMED_PIPE | SOCKET;
}
