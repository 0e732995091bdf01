// SPDX-License-Identifier: GPL-2.0-or-later
//! The on-disk format of QEMU's mapped security models
//! (`hw/9pfs/9p-local.c`), byte for byte, so that an export written by
//! QEMU's `local` driver and one written by [`crate::NativeBackend`] are
//! interchangeable:
//!
//! * `mapped-xattr` (`local_set_xattrat`, `local_lstat`): the guest's
//!   credentials in the extended attributes `user.virtfs.uid`, `.gid`,
//!   `.mode` (4 bytes each) and `.rdev` (8 bytes), little-endian (QEMU's
//!   `cpu_to_le32`/`cpu_to_le64`);
//! * `mapped-file` (`local_set_mapped_file_attrat`,
//!   `local_mapped_file_attr`): the same in a text file, one
//!   `virtfs.uid=%d\n` line per known field, named like the entry in the
//!   directory `.virtfs_metadata` beside it (the export root's in
//!   `.virtfs_metadata_root`), mode 0600 in a 0700 directory.
//!
//! Files themselves are created with mode 0600 (directories 0700), owned
//! by the server: `fmode`/`dmode` defaults `SM_LOCAL_MODE_BITS` and
//! `SM_LOCAL_DIR_MODE_BITS`.
//!
//! Every file reached here is reached from a directory descriptor the
//! caller found beneath the export root, one component at a time, without
//! following symbolic links ([`lookup`]), and metadata files are only
//! opened if they are regular files ([`open()`]).

use std::ffi::CString;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use crate::dirops::{link, renameat, unlinkat};
use crate::errno::{self, cvt, Errno, Result};
use crate::io::{pread, pwrite};
use crate::node::{fstat, Node, ProcPath};
use crate::open::{create_file, open};
use crate::resolve::{component, lookup, NameUse};
use crate::stat::Stat;

/// `fmode` of QEMU's mapped models: host mode of new files.
pub(crate) const FILE_MODE: libc::mode_t = 0o600;
/// `dmode` of QEMU's mapped models: host mode of new directories.
pub(crate) const DIR_MODE: libc::mode_t = 0o700;

/// QEMU's `VIRTFS_META_DIR`.
pub(crate) const META_DIR: &[u8] = b".virtfs_metadata";
/// QEMU's `VIRTFS_META_ROOT_FILE`.
pub(crate) const META_ROOT: &[u8] = b".virtfs_metadata_root";

/// The extended attributes of the `mapped-xattr` model.
pub(crate) const XATTR_UID: &[u8] = b"user.virtfs.uid";
pub(crate) const XATTR_GID: &[u8] = b"user.virtfs.gid";
pub(crate) const XATTR_MODE: &[u8] = b"user.virtfs.mode";
pub(crate) const XATTR_RDEV: &[u8] = b"user.virtfs.rdev";

/// QEMU's `local_is_mapped_file_metadata`: the names `mapped-file` keeps
/// for itself (hidden from listings, `EINVAL` as a name from the guest).
#[must_use]
pub(crate) fn is_metadata_name(name: &[u8]) -> bool {
    name == META_DIR || name == META_ROOT
}

/// QEMU's `FsCred` for the mapped models: the fields to store, `None`
/// where QEMU has `-1` (left as they are).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cred {
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) mode: Option<u32>,
    pub(crate) rdev: Option<u64>,
}

impl Cred {
    /// A field given as QEMU's `-1` (all bits set) is "not given".
    pub(crate) fn new(
        uid: Option<u32>,
        gid: Option<u32>,
        mode: Option<u32>,
        rdev: Option<u64>,
    ) -> Cred {
        Cred {
            uid: uid.filter(|&v| v != u32::MAX),
            gid: gid.filter(|&v| v != u32::MAX),
            mode: mode.filter(|&v| v != u32::MAX),
            rdev: rdev.filter(|&v| v != u64::MAX),
        }
    }
}

// ---------------------------------------------------------------- xattr

/// QEMU's `local_set_xattrat`: each given field into its attribute (flags
/// 0: created or replaced), in the order uid, gid, mode, rdev, on the file
/// `fd` is a descriptor of (a node or an open file, through its
/// `/proc/self/fd/N` magic link); the first failure is returned.
pub(crate) fn set_xattr_cred(fd: BorrowedFd<'_>, cred: &Cred) -> Result<()> {
    let p = ProcPath::new(fd.as_raw_fd());
    let set = |name: &[u8], value: &[u8]| crate::xattr::setxattr_proc(&p, name, value, 0);
    if let Some(uid) = cred.uid {
        set(XATTR_UID, &uid.to_le_bytes())?;
    }
    if let Some(gid) = cred.gid {
        set(XATTR_GID, &gid.to_le_bytes())?;
    }
    if let Some(mode) = cred.mode {
        set(XATTR_MODE, &mode.to_le_bytes())?;
    }
    if let Some(rdev) = cred.rdev {
        set(XATTR_RDEV, &rdev.to_le_bytes())?;
    }
    Ok(())
}

/// Reads up to `N` bytes of attribute `name` of the file at `path`
/// (`getxattr`, or `lgetxattr` with `nofollow`); `None` unless the value
/// has 1 to `N` bytes (QEMU: `> 0`, a larger one is `ERANGE`).
fn get_small<const N: usize>(
    path: &std::ffi::CStr,
    name: &[u8],
    nofollow: bool,
) -> Option<[u8; N]> {
    let n = CString::new(name).ok()?;
    let mut buf = [0u8; N];
    // SAFETY: path and name are NUL-terminated; `buf` is valid for writes
    // of `N` bytes during the call.
    let r = unsafe {
        if nofollow {
            libc::lgetxattr(path.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), N)
        } else {
            libc::getxattr(path.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), N)
        }
    };
    (r > 0).then_some(buf)
}

/// QEMU's overlay in `local_lstat`/`local_fstat`: each attribute present
/// replaces the field (`st_mode` entirely, type bits included).
fn overlay_xattr_path(path: &std::ffi::CStr, nofollow: bool, st: &mut Stat) {
    if let Some(v) = get_small::<4>(path, XATTR_UID, nofollow) {
        st.uid = u32::from_le_bytes(v);
    }
    if let Some(v) = get_small::<4>(path, XATTR_GID, nofollow) {
        st.gid = u32::from_le_bytes(v);
    }
    if let Some(v) = get_small::<4>(path, XATTR_MODE, nofollow) {
        st.mode = u32::from_le_bytes(v);
    }
    if let Some(v) = get_small::<8>(path, XATTR_RDEV, nofollow) {
        st.rdev = u64::from_le_bytes(v);
    }
}

/// The `mapped-xattr` overlay of the file `fd` is a descriptor of (a node
/// or an open file: through the `/proc/self/fd/N` magic link, which lands
/// on that very inode).
pub(crate) fn overlay_xattr(fd: BorrowedFd<'_>, st: &mut Stat) {
    let p = ProcPath::new(fd.as_raw_fd());
    overlay_xattr_path(p.as_cstr(), false, st);
}

/// The `mapped-xattr` overlay of the entry `name` of the open directory
/// `dir` (QEMU's `fgetxattrat_nofollow`: `lgetxattr` of
/// `/proc/self/fd/N/name`, one component below our own descriptor, not
/// following a final symbolic link).
pub(crate) fn overlay_xattr_at(dir: BorrowedFd<'_>, name: &[u8], st: &mut Stat) {
    if component(name, NameUse::Lookup).is_err() {
        return;
    }
    let p = ProcPath::new(dir.as_raw_fd());
    let mut path = p.as_cstr().to_bytes().to_vec();
    path.push(b'/');
    path.extend_from_slice(name);
    if let Ok(c) = CString::new(path) {
        overlay_xattr_path(&c, true, st);
    }
}

// ----------------------------------------------------------- mapped-file

/// Most bytes of a metadata file read (QEMU's lines are at most 99 bytes
/// and four of them are written).
const META_MAX: usize = 64 * 1024;

/// The fields of a metadata file as QEMU parses them (`None`: no line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FileCred {
    pub(crate) uid: Option<i32>,
    pub(crate) gid: Option<i32>,
    pub(crate) mode: Option<i32>,
    pub(crate) rdev: Option<i32>,
}

/// glibc's `atoi` (`(int) strtol(s, NULL, 10)`): leading white space, a
/// sign, digits up to the first other byte; out of range saturates to
/// `LONG_MIN`/`LONG_MAX` before the cast to `int`.
fn atoi(s: &[u8]) -> i32 {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let mut v: i64 = 0;
    let mut sat = false;
    while i < s.len() && s[i].is_ascii_digit() {
        let d = i64::from(s[i] - b'0');
        match v.checked_mul(10).and_then(|v| v.checked_add(d)) {
            Some(n) => v = n,
            None => sat = true,
        }
        i += 1;
    }
    let v = match (sat, neg) {
        (true, false) => i64::MAX,
        (true, true) => i64::MIN,
        (false, false) => v,
        (false, true) => -v,
    };
    v as i32
}

/// Parses a metadata file exactly as QEMU's `fgets(buf, 100)` loop does:
/// chunks of at most 99 bytes ending at a newline, each compared with
/// `strncmp` and converted with `atoi`; later lines win.
pub(crate) fn parse_meta(text: &[u8]) -> FileCred {
    let mut c = FileCred::default();
    let mut rest = text;
    while !rest.is_empty() {
        let max = rest.len().min(99);
        let len = rest[..max]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(max, |p| p + 1);
        let mut buf = [0u8; 100];
        buf[..len].copy_from_slice(&rest[..len]);
        rest = &rest[len..];
        // strncmp stops at a NUL: a NUL among the compared bytes is a
        // mismatch, which the plain comparison gives too.
        if buf.starts_with(b"virtfs.uid") {
            c.uid = Some(atoi(cstr(&buf[11..])));
        } else if buf.starts_with(b"virtfs.gid") {
            c.gid = Some(atoi(cstr(&buf[11..])));
        } else if buf.starts_with(b"virtfs.mode") {
            c.mode = Some(atoi(cstr(&buf[12..])));
        } else if buf.starts_with(b"virtfs.rdev") {
            c.rdev = Some(atoi(cstr(&buf[12..])));
        }
    }
    c
}

/// The bytes before the first NUL.
fn cstr(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |p| &b[..p])
}

/// The text QEMU writes for `c` (`fprintf(fp, "virtfs.uid=%d\n", uid)`
/// and so on; absent fields and fields of `-1`, QEMU's "unset", left
/// out).
pub(crate) fn format_meta(c: &FileCred) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, v) in [
        ("uid", c.uid),
        ("gid", c.gid),
        ("mode", c.mode),
        ("rdev", c.rdev),
    ] {
        if let Some(v) = v.filter(|&v| v != -1) {
            out.extend_from_slice(format!("virtfs.{key}={v}\n").as_bytes());
        }
    }
    out
}

/// The metadata directory of `dir`, if it is a directory.
fn meta_dir(dir: &Node) -> Result<Node> {
    let m = lookup(dir, META_DIR)?;
    if fstat(m.as_fd())?.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(errno::ENOTDIR);
    }
    Ok(m)
}

/// The contents of the regular file `name` of `dir` (`ENXIO`/`ELOOP`
/// for anything else: never opened).
fn read_file(dir: &Node, name: &[u8]) -> Result<Vec<u8>> {
    let node = lookup(dir, name)?;
    let fd = open(&node, libc::O_RDONLY)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < META_MAX {
        let n = pread(&fd, &mut [IoSliceMut::new(&mut buf)], out.len() as u64)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok(out)
}

/// The directory holding the metadata file of `name` in `dir` and that
/// file's name: `dir` itself and [`META_ROOT`] for `.` (the export root),
/// else `dir/.virtfs_metadata` and `name`.
fn meta_file(dir: &Node, name: &[u8]) -> Result<(Node, Vec<u8>)> {
    if name == b"." {
        Ok((dir.try_clone()?, META_ROOT.to_vec()))
    } else {
        Ok((meta_dir(dir)?, name.to_vec()))
    }
}

/// Whether a failure to read metadata is the system's (out of descriptors
/// or memory: the request fails, so that the engine can reclaim and retry)
/// rather than the file's (missing, not a regular file, unreadable: no
/// metadata, as QEMU ignores every failure there).
fn resource_error(e: Errno) -> bool {
    matches!(e, errno::EMFILE | errno::ENFILE | errno::ENOMEM)
}

/// QEMU's `local_mapped_file_attr`: the fields of the metadata file of
/// entry `name` of `dir` (`.`: the export root, `dir` being the root),
/// none if there is no such file or it cannot be read.
///
/// # Errors
///
/// `EMFILE`, `ENFILE`, `ENOMEM` (any other failure means no metadata).
pub(crate) fn read_file_cred(dir: &Node, name: &[u8]) -> Result<FileCred> {
    let r = meta_file(dir, name).and_then(|(mdir, mname)| read_file(&mdir, &mname));
    match r {
        Ok(t) => Ok(parse_meta(&t)),
        Err(e) if resource_error(e) => Err(e),
        Err(_) => Ok(FileCred::default()),
    }
}

/// The `mapped-file` overlay of `st` (QEMU's `local_mapped_file_attr`:
/// each field present replaces the host's; `atoi`'s `int` widened as C
/// assigns it).
///
/// # Errors
///
/// Those of [`read_file_cred`].
pub(crate) fn overlay_file(dir: &Node, name: &[u8], st: &mut Stat) -> Result<()> {
    let c = read_file_cred(dir, name)?;
    if let Some(v) = c.uid {
        st.uid = v as u32;
    }
    if let Some(v) = c.gid {
        st.gid = v as u32;
    }
    if let Some(v) = c.mode {
        st.mode = v as u32;
    }
    if let Some(v) = c.rdev {
        st.rdev = i64::from(v) as u64;
    }
    Ok(())
}

/// `mkdirat(dir, ".virtfs_metadata", 0700)`, an existing one is fine.
fn make_meta_dir(dir: &Node) -> Result<()> {
    let c = component(META_DIR, NameUse::Create)?;
    // SAFETY: `c` is NUL-terminated and outlives the call; `dir` is live.
    match cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), DIR_MODE) }) {
        Ok(_) | Err(errno::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

/// QEMU's `local_set_mapped_file_attrat`: merges `cred` into the metadata
/// file of entry `name` of `dir` (`.`: the export root) and rewrites it
/// (mode 0600), creating `.virtfs_metadata` (0700) as needed.
pub(crate) fn set_file_cred(dir: &Node, name: &[u8], cred: &Cred) -> Result<()> {
    if name != b"." {
        make_meta_dir(dir)?;
    }
    let (mdir, mname) = meta_file(dir, name)?;
    let mut c = match read_file(&mdir, &mname) {
        Ok(t) => parse_meta(&t),
        Err(errno::ENOENT) => FileCred::default(),
        Err(e) => return Err(e),
    };
    // C's conversions of FsCred's fields to `int`.
    if let Some(v) = cred.uid {
        c.uid = Some(v as i32);
    }
    if let Some(v) = cred.gid {
        c.gid = Some(v as i32);
    }
    if let Some(v) = cred.mode {
        c.mode = Some(v as i32);
    }
    if let Some(v) = cred.rdev {
        c.rdev = Some(v as i32);
    }
    write_file(&mdir, &mname, &format_meta(&c))
}

/// QEMU's `local_fopenat(.., "w")`: creates or truncates the regular file
/// `name` of `dir` (an existing special file or link is refused, never
/// opened), mode 0600, and writes `data`.
fn write_file(dir: &Node, name: &[u8], data: &[u8]) -> Result<()> {
    let (_node, fd) = create_file(dir, name, libc::O_WRONLY, FILE_MODE)?;
    // SAFETY: the descriptor is live.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), 0) })?;
    // SAFETY: the descriptor is live.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), FILE_MODE) })?;
    let mut done = 0;
    while done < data.len() {
        let n = pwrite(&fd, &[IoSlice::new(&data[done..])], done as u64)?;
        if n == 0 {
            return Err(errno::EIO);
        }
        done += n;
    }
    Ok(())
}

/// The metadata part of QEMU's `local_link`, after the entry was linked:
/// `.virtfs_metadata` made in `ndir`, then `odir`'s metadata file of
/// `oname` linked as `nname` there (none to link is fine: a file not
/// made in this model, and so is an `odir` without metadata directory).
/// The caller undoes the entry's link on failure.
pub(crate) fn link_meta(odir: &Node, oname: &[u8], ndir: &Node, nname: &[u8]) -> Result<()> {
    make_meta_dir(ndir)?;
    let omap = match meta_dir(odir) {
        Ok(m) => m,
        Err(errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    let nmap = meta_dir(ndir)?;
    let src = match lookup(&omap, oname) {
        Ok(n) => n,
        Err(errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    match link(&src, &nmap, nname) {
        Ok(()) | Err(errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The metadata part of QEMU's `local_renameat`, after the entry was
/// renamed: `.virtfs_metadata` made in `ndir`, then the metadata file
/// renamed along.  Where the entry had no metadata file, one the replaced
/// target had is removed (so the renamed file does not take over the
/// replaced one's owner and mode).  The caller undoes the rename on
/// failure.
pub(crate) fn rename_meta(odir: &Node, oname: &[u8], ndir: &Node, nname: &[u8]) -> Result<()> {
    make_meta_dir(ndir)?;
    let nmap = meta_dir(ndir)?;
    let moved = match meta_dir(odir) {
        Ok(omap) => renameat(&omap, oname, &nmap, nname),
        Err(e) => Err(e),
    };
    match moved {
        Ok(()) => Ok(()),
        Err(errno::ENOENT) => match unlinkat(&nmap, nname, false) {
            Ok(()) | Err(errno::ENOENT) => Ok(()),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Before removing the directory `name` of `dir`: its (empty)
/// `.virtfs_metadata` removed (QEMU's `local_unlinkat_common`; one still
/// holding files fails with `ENOTEMPTY`).
pub(crate) fn unlink_dir_meta(dir: &Node, name: &[u8]) -> Result<()> {
    let d = lookup(dir, name)?;
    match unlinkat(&d, META_DIR, true) {
        Ok(()) | Err(errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// After removing entry `name` of `dir`: its metadata file removed (none
/// is fine, as in QEMU's `local_unlinkat_common`).
pub(crate) fn unlink_meta(dir: &Node, name: &[u8]) -> Result<()> {
    let map = match meta_dir(dir) {
        Ok(m) => m,
        Err(errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    match unlinkat(&map, name, false) {
        Ok(()) | Err(errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_text_as_qemu_writes_and_reads_it() {
        let c = FileCred {
            uid: Some(1000),
            gid: Some(-1),
            mode: Some(0o100644),
            rdev: Some(0),
        };
        assert_eq!(
            format_meta(&c),
            b"virtfs.uid=1000\nvirtfs.mode=33188\nvirtfs.rdev=0\n".to_vec()
        );
        assert_eq!(parse_meta(&format_meta(&c)), FileCred { gid: None, ..c });
        // atoi: white space, signs, trailing junk, saturation.
        let p = parse_meta(b"virtfs.uid= -7x\nvirtfs.gid=+12\nvirtfs.mode=99999999999999999999\n");
        assert_eq!(
            (p.uid, p.gid, p.mode, p.rdev),
            (Some(-7), Some(12), Some(-1), None)
        );
        // The character after the key is skipped whatever it is; unknown
        // lines are ignored; the last line wins.
        let p = parse_meta(b"virtfs.uid:5\nfoo=1\nvirtfs.uid=6\nvirtfs.gidx");
        assert_eq!((p.uid, p.gid), (Some(6), Some(0)));
        // fgets(100): a 99-byte chunk ends a "line".
        let mut long = vec![b'x'; 99];
        long.extend_from_slice(b"virtfs.gid=3\n");
        assert_eq!(parse_meta(&long).gid, Some(3));
        assert!(is_metadata_name(b".virtfs_metadata"));
        assert!(is_metadata_name(b".virtfs_metadata_root"));
        assert!(!is_metadata_name(b".virtfs_metadata2"));
    }
}
