// SPDX-License-Identifier: GPL-2.0-or-later
//! What a 9P2000.u Tcreate makes, from its `perm` and `extension`.

use p9_wire::consts::dm;
use p9_wire::errno::{Errno, EINVAL, EIO};

use super::{makedev, S_IFBLK, S_IFCHR, S_IFIFO, S_IFSOCK};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::{major, minor};

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
}
