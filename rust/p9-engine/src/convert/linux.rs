// SPDX-License-Identifier: GPL-2.0-or-later
//! Linux and glibc numbers the conversions use (`O_*`, `S_IF*`,
//! `makedev`), defined once for the whole engine.  They are spelled out
//! here, the same on every host the engine builds for, rather than taken
//! from `libc`, so that the conversions are plain functions of their
//! arguments.

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
/// `S_IXGRP`: execute by the group.
pub const S_IXGRP: u32 = 0o010;

// utimensat's special nanosecond values.
pub(crate) const UTIME_NOW: u64 = (1 << 30) - 1;
pub(crate) const UTIME_OMIT: u64 = (1 << 30) - 2;

pub(crate) fn is_type(mode: u32, typ: u32) -> bool {
    mode & S_IFMT == typ
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
