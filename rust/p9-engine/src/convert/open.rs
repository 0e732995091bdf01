// SPDX-License-Identifier: GPL-2.0-or-later
//! Open flags: the host `O_*` flags of Tlopen/Tlcreate `flags` words and
//! Topen/Tcreate mode bytes, and the read-only export check.

use p9_wire::consts::omode;

use super::*;

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

#[cfg(test)]
mod tests {
    use super::*;
    use p9_wire::consts::dotl_open as d;

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
}
