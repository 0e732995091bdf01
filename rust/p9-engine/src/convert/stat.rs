// SPDX-License-Identifier: GPL-2.0-or-later
//! 9P2000.u stat: modes both ways, the Rstat structure and its extension,
//! and the changes a Twstat asks for.

use p9_wire::consts::dm;
use p9_wire::errno::{Errno, EIO};
use p9_wire::types::{P9String, Qid, Stat};

use super::*;
use crate::backend::{Attr, SetAttr, SetTime, Time};

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

    fn attr(mode: u32) -> Attr {
        Attr {
            mode,
            ..Attr::default()
        }
    }

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
