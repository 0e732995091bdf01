// SPDX-License-Identifier: GPL-2.0-or-later
//! Every 9P2000.L operation and its error paths, against the engine with
//! the native passthrough backend on a tmpfs export, asserting what QEMU
//! 10.0.13's `hw/9pfs/9p.c` (with the `local` backend) answers.  Lock tests
//! follow the native backend's open-file-description locks instead of
//! 9p.c's "always granted".

mod common;

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{
    host_getxattr, host_mkfifo, host_setxattr, host_statfs, iounit_for, qid_version, Env, MSIZE,
};
use p9_engine::server::MSIZE_MAX_DEFAULT;
use p9_wire::consts::{
    dotl_open, getattr, lock_status, lock_type, qid_type, setattr, xattr_flags, AT_REMOVEDIR,
    NOFID, NOTAG,
};
use p9_wire::errno::{
    E2BIG, EBADF, EEXIST, EINVAL, EISDIR, EMSGSIZE, ENODATA, ENOENT, ENOSPC, ENOTDIR, ENOTEMPTY,
    ENXIO, EOPNOTSUPP, EPERM,
};
use p9_wire::{Flock, Getlock, P9String, Proto, Qid, Rmessage, SetAttr, Tmessage};

const DT_FIFO: u8 = 1;
const DT_DIR: u8 = 4;
const DT_REG: u8 = 8;
const DT_LNK: u8 = 10;

/// The qid 9p.c's `stat_to_qid` gives a host file (default `multidevs`).
fn host_qid(path: &std::path::Path) -> Qid {
    let m = std::fs::symlink_metadata(path).unwrap();
    let mut typ = 0;
    if m.file_type().is_dir() {
        typ |= qid_type::DIR;
    }
    if m.file_type().is_symlink() {
        typ |= qid_type::SYMLINK;
    }
    Qid {
        typ,
        version: qid_version(&m),
        path: m.ino(),
    }
}

fn ino(path: &std::path::Path) -> u64 {
    std::fs::symlink_metadata(path).unwrap().ino()
}

fn write_host(env: &Env, rel: &str, data: &[u8]) {
    std::fs::write(env.path(rel), data).unwrap();
}

fn rdwr() -> u32 {
    dotl_open::RDWR
}

// ----------------------------------------------------------------------
// Tversion

#[test]
fn version_negotiates_msize_and_dialect() {
    let env = Env::bare("version");
    assert_eq!(
        env.client.version(MSIZE, "9P2000.L"),
        Ok((MSIZE, "9P2000.L".to_string()))
    );
    assert_eq!(env.server().msize(), MSIZE);
    assert_eq!(env.server().proto(), Proto::DotL);
    assert_eq!(
        env.client.version(8192, "9P2000.u"),
        Ok((8192, "9P2000.u".to_string()))
    );
    assert_eq!(env.server().proto(), Proto::DotU);
    // The minimum msize is accepted.
    assert_eq!(
        env.client.version(4096, "9P2000.L"),
        Ok((4096, "9P2000.L".to_string()))
    );
}

#[test]
fn version_caps_msize_to_transport_limit() {
    let env = Env::bare("version-cap");
    let (msize, v) = env.client.version(u32::MAX, "9P2000.L").unwrap();
    assert_eq!((msize, v.as_str()), (MSIZE_MAX_DEFAULT, "9P2000.L"));
    assert_eq!(env.server().msize(), MSIZE_MAX_DEFAULT);
    let (msize, _) = env
        .client
        .version(MSIZE_MAX_DEFAULT + 1, "9P2000.L")
        .unwrap();
    assert_eq!(msize, MSIZE_MAX_DEFAULT);
}

#[test]
fn version_unknown_string_answers_unknown() {
    let env = Env::bare("version-unknown");
    for v in ["9P2000", "9P2000.l", "9P2000.L.extra", ""] {
        assert_eq!(
            env.client.version(8192, v),
            Ok((8192, "unknown".to_string())),
            "version {v:?}"
        );
    }
}

#[test]
fn version_unknown_string_has_priority_over_small_msize() {
    let env = Env::bare("version-unknown-small");
    // 9p.c: "skip min. msize check, reporting invalid version has priority".
    assert_eq!(
        env.client.version(1024, "9P1"),
        Ok((1024, "unknown".to_string()))
    );
}

#[test]
fn version_msize_below_minimum_is_emsgsize() {
    let env = Env::bare("version-small");
    // 9p.c switches the dialect before checking msize, so the error is an
    // Rlerror for 9P2000.L...
    assert_eq!(env.client.version(4095, "9P2000.L"), Err(EMSGSIZE));
    let bytes = Tmessage::Version {
        msize: 512,
        version: "9P2000.L".into(),
    }
    .encode_to_vec(NOTAG)
    .unwrap();
    let reply = env.client.raw(bytes).expect("a reply");
    assert_eq!(
        Rmessage::decode_slice(&reply, Proto::DotL, u32::MAX).unwrap(),
        (NOTAG, Rmessage::Lerror { ecode: EMSGSIZE })
    );
    // ...and an Rerror for 9P2000.u.
    let bytes = Tmessage::Version {
        msize: 512,
        version: "9P2000.u".into(),
    }
    .encode_to_vec(NOTAG)
    .unwrap();
    let reply = env.client.raw(bytes).expect("a reply");
    let (tag, msg) = Rmessage::decode_slice(&reply, Proto::DotU, u32::MAX).unwrap();
    assert_eq!(tag, NOTAG);
    assert!(
        matches!(msg, Rmessage::Error { errno, .. } if errno == EMSGSIZE),
        "{msg:?}"
    );
}

#[test]
fn version_clunks_all_fids() {
    let env = Env::new("version-reset");
    std::fs::create_dir(env.path("d")).unwrap();
    let d = env.walk("d").unwrap();
    assert!(env.client.getattr(d, getattr::BASIC).is_ok());
    env.client.version(MSIZE, "9P2000.L").unwrap();
    assert_eq!(env.client.getattr(d, getattr::BASIC).err(), Some(ENOENT));
    assert_eq!(
        env.client.getattr(env.root, getattr::BASIC).err(),
        Some(ENOENT)
    );
    // The root fid number is free again.
    env.client.attach(env.root, NOFID, "root", "", 0).unwrap();
}

// ----------------------------------------------------------------------
// Tattach, Tauth, unknown requests

#[test]
fn attach_returns_root_qid() {
    let env = Env::bare("attach");
    env.client.version(MSIZE, "9P2000.L").unwrap();
    let fid = env.client.alloc_fid();
    let qid = env.client.attach(fid, NOFID, "root", "", 0).unwrap();
    assert_eq!(qid, host_qid(&env.dir));
    assert_eq!(qid.typ, qid_type::DIR);
    assert_eq!(qid.path, ino(&env.dir));
}

#[test]
fn attach_fid_in_use_is_einval() {
    let env = Env::new("attach-inuse");
    assert_eq!(
        env.client.attach(env.root, NOFID, "root", "", 0),
        Err(EINVAL)
    );
    // The existing fid is unharmed.
    assert!(env.client.getattr(env.root, getattr::BASIC).is_ok());
}

#[test]
fn attach_user_owns_new_files() {
    let env = Env::new("attach-uid");
    let user = env.client.alloc_fid();
    env.client.attach(user, NOFID, "user", "", 1000).unwrap();
    env.client.mkdir(user, "d", 0o755, 1000).unwrap();
    let m = std::fs::metadata(env.path("d")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 1000));
    let f = env.client.alloc_fid();
    env.client.clone_fid(user, f).unwrap();
    env.client.lcreate(f, "f", rdwr(), 0o640, 1001).unwrap();
    let m = std::fs::metadata(env.path("f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 1001));
    assert_eq!(m.permissions().mode() & 0o7777, 0o640);
}

/// A write by a user other than root clears set-user-ID, and set-group-ID
/// with group-execute, as on a local file system; root's write keeps them.
#[test]
fn write_by_user_clears_set_id_bits() {
    let env = Env::new("write-set-id");
    for (name, mode) in [
        ("suid", 0o6777),
        ("sgid-no-gx", 0o2767),
        ("by-root", 0o6777),
    ] {
        write_host(&env, name, b"");
        std::fs::set_permissions(env.path(name), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let user = env.client.alloc_fid();
    env.client.attach(user, NOFID, "user", "", 1000).unwrap();
    let write_as = |root: u32, name: &str| {
        let f = env.client.alloc_fid();
        env.client.walk(root, f, &[name]).unwrap();
        env.client.lopen(f, libc::O_WRONLY as u32).unwrap();
        assert_eq!(env.client.write(f, 0, b"data").unwrap(), 4);
        let guest = env.client.getattr(f, getattr::BASIC).unwrap().mode & 0o7777;
        env.client.clunk(f).unwrap();
        let host = std::fs::metadata(env.path(name)).unwrap().mode() & 0o7777;
        (guest, host)
    };
    assert_eq!(write_as(user, "suid"), (0o777, 0o777));
    assert_eq!(write_as(user, "sgid-no-gx"), (0o2767, 0o2767));
    assert_eq!(write_as(env.root, "by-root"), (0o6777, 0o6777));
}

#[test]
fn auth_is_not_supported() {
    let env = Env::new("auth");
    let afid = env.client.alloc_fid();
    assert_eq!(env.client.auth(afid, "root", "", 0), Err(EOPNOTSUPP));
}

#[test]
fn unknown_message_type_is_eopnotsupp() {
    let env = Env::new("unknown-type");
    // size 7, type 200 (no such message), tag 5.
    let reply = env
        .client
        .raw(vec![7, 0, 0, 0, 200, 5, 0])
        .expect("a reply");
    assert_eq!(
        Rmessage::decode_slice(&reply, Proto::DotL, MSIZE).unwrap(),
        (5, Rmessage::Lerror { ecode: EOPNOTSUPP })
    );
}

// ----------------------------------------------------------------------
// Twalk

#[test]
fn walk_zero_names_clones() {
    let env = Env::new("walk-clone");
    let c = env.client.alloc_fid();
    assert_eq!(env.client.walk::<&str>(env.root, c, &[]), Ok(vec![]));
    let a = env.client.getattr(c, getattr::BASIC).unwrap();
    assert_eq!(a.qid.path, ino(&env.dir));
    // The clone is independent: clunking it leaves the root.
    env.client.clunk(c).unwrap();
    assert!(env.client.getattr(env.root, getattr::BASIC).is_ok());
}

#[test]
fn walk_many_names_returns_qid_per_name() {
    let env = Env::new("walk-many");
    std::fs::create_dir_all(env.path("a/b/c")).unwrap();
    write_host(&env, "a/b/c/file", b"12345");
    std::os::unix::fs::symlink("file", env.path("a/b/c/link")).unwrap();
    let f = env.client.alloc_fid();
    let qids = env
        .client
        .walk(env.root, f, &["a", "b", "c", "file"])
        .unwrap();
    let expect: Vec<Qid> = ["a", "a/b", "a/b/c", "a/b/c/file"]
        .iter()
        .map(|p| host_qid(&env.path(p)))
        .collect();
    assert_eq!(qids, expect);
    assert_eq!(qids[0].typ, qid_type::DIR);
    assert_eq!(qids[3].typ, qid_type::FILE);
    let l = env.client.alloc_fid();
    let qids = env
        .client
        .walk(env.root, l, &["a", "b", "c", "link"])
        .unwrap();
    assert_eq!(qids[3], host_qid(&env.path("a/b/c/link")));
    assert_eq!(qids[3].typ, qid_type::SYMLINK);
    // 16 names are allowed.
    let mut path = String::new();
    for _ in 0..16 {
        path.push_str("/x");
    }
    std::fs::create_dir_all(env.path(&path[1..])).unwrap();
    let deep = env.client.alloc_fid();
    let qids = env.client.walk(env.root, deep, &["x"; 16]).unwrap();
    assert_eq!(qids.len(), 16);
    assert_eq!(qids[15].path, ino(&env.path(&path[1..])));
}

#[test]
fn walk_partial_returns_fewer_qids_and_no_newfid() {
    let env = Env::new("walk-partial");
    std::fs::create_dir(env.path("a")).unwrap();
    write_host(&env, "a/file", b"x");
    let nf = env.client.alloc_fid();
    let qids = env
        .client
        .walk(env.root, nf, &["a", "missing", "b"])
        .unwrap();
    assert_eq!(qids, vec![host_qid(&env.path("a"))]);
    assert_eq!(env.client.getattr(nf, getattr::BASIC).err(), Some(ENOENT));
    assert_eq!(env.client.clunk(nf), Err(ENOENT));
    // Through a regular file: stops after it.
    let qids = env.client.walk(env.root, nf, &["a", "file", "x"]).unwrap();
    assert_eq!(qids.len(), 2);
    assert_eq!(env.client.clunk(nf), Err(ENOENT));
    // fid == newfid: a partial walk leaves the fid where it was.
    let a = env.walk("a").unwrap();
    let qids = env.client.walk(a, a, &["file", "nope"]).unwrap();
    assert_eq!(qids.len(), 1);
    assert_eq!(
        env.client.getattr(a, getattr::BASIC).unwrap().qid.path,
        ino(&env.path("a"))
    );
}

#[test]
fn walk_first_name_missing_is_enoent() {
    let env = Env::new("walk-missing");
    let nf = env.client.alloc_fid();
    assert_eq!(env.client.walk(env.root, nf, &["missing"]), Err(ENOENT));
    assert_eq!(
        env.client.walk(env.root, nf, &["missing", "x"]),
        Err(ENOENT)
    );
    assert_eq!(env.client.clunk(nf), Err(ENOENT));
    write_host(&env, "file", b"");
    // A name under a regular file.
    let f = env.walk("file").unwrap();
    assert_eq!(env.client.walk(f, nf, &["x"]), Err(ENOTDIR));
}

#[test]
fn walk_dotdot_at_root_stays_at_root() {
    let env = Env::new("walk-dotdot-root");
    let root_qid = host_qid(&env.dir);
    let nf = env.client.alloc_fid();
    let qids = env.client.walk(env.root, nf, &["..", ".."]).unwrap();
    assert_eq!(qids, vec![root_qid, root_qid]);
    assert_eq!(
        env.client.getattr(nf, getattr::BASIC).unwrap().qid.path,
        root_qid.path
    );
    // "." is a plain name for the backend: the same directory.
    let dot = env.client.alloc_fid();
    let qids = env.client.walk(env.root, dot, &["."]).unwrap();
    assert_eq!(qids[0].path, root_qid.path);
}

#[test]
fn walk_dotdot_from_subdir() {
    let env = Env::new("walk-dotdot");
    std::fs::create_dir_all(env.path("a/b")).unwrap();
    let nf = env.client.alloc_fid();
    let qids = env
        .client
        .walk(env.root, nf, &["a", "b", "..", ".."])
        .unwrap();
    assert_eq!(qids.len(), 4);
    assert_eq!(qids[2].path, ino(&env.path("a")));
    assert_eq!(qids[3].path, ino(&env.dir));
    assert_eq!(
        env.client.getattr(nf, getattr::BASIC).unwrap().qid.path,
        ino(&env.dir)
    );
}

#[test]
fn walk_open_fid_to_itself_is_einval() {
    let env = Env::new("walk-open-self");
    write_host(&env, "file", b"data");
    std::fs::create_dir(env.path("d")).unwrap();
    let f = env.open("file", dotl_open::RDONLY).unwrap();
    assert_eq!(env.client.walk::<&str>(f, f, &[]), Err(EINVAL));
    let d = env.opendir("d").unwrap();
    assert_eq!(env.client.walk(d, d, &[".."]), Err(EINVAL));
    // Walking from an open fid to another fid is allowed by 9p.c.
    let c = env.client.alloc_fid();
    assert_eq!(env.client.walk::<&str>(f, c, &[]), Ok(vec![]));
    assert!(env.client.getattr(c, getattr::BASIC).is_ok());
    // And the open fid still reads.
    assert_eq!(env.client.read(f, 0, 100).unwrap(), b"data");
}

#[test]
fn walk_same_fid_moves_it() {
    let env = Env::new("walk-self");
    std::fs::create_dir(env.path("d")).unwrap();
    let f = env.walk("").unwrap();
    let qids = env.client.walk(f, f, &["d"]).unwrap();
    assert_eq!(qids, vec![host_qid(&env.path("d"))]);
    assert_eq!(
        env.client.getattr(f, getattr::BASIC).unwrap().qid.path,
        ino(&env.path("d"))
    );
}

#[test]
fn walk_unknown_fid_is_enoent() {
    let env = Env::new("walk-unknown");
    let nf = env.client.alloc_fid();
    assert_eq!(env.client.walk(12345, nf, &["x"]), Err(ENOENT));
    assert_eq!(env.client.walk::<&str>(12345, nf, &[]), Err(ENOENT));
}

#[test]
fn walk_newfid_in_use_is_einval() {
    let env = Env::new("walk-inuse");
    std::fs::create_dir(env.path("d")).unwrap();
    let other = env.walk("").unwrap();
    assert_eq!(env.client.walk(env.root, other, &["d"]), Err(EINVAL));
    assert_eq!(env.client.walk::<&str>(env.root, other, &[]), Err(EINVAL));
    // `other` still refers to the root.
    assert_eq!(
        env.client.getattr(other, getattr::BASIC).unwrap().qid.path,
        ino(&env.dir)
    );
}

#[test]
fn walk_illegal_names_are_enoent() {
    let env = Env::new("walk-illegal");
    std::fs::create_dir_all(env.path("a/b")).unwrap();
    let nf = env.client.alloc_fid();
    assert_eq!(env.client.walk(env.root, nf, &["a/b"]), Err(ENOENT));
    assert_eq!(env.client.walk(env.root, nf, &[""]), Err(ENOENT));
    assert_eq!(env.client.walk(env.root, nf, &["a", ""]), Err(ENOENT));
    assert_eq!(env.client.clunk(nf), Err(ENOENT));
}

#[test]
fn walk_more_than_16_names_is_einval() {
    let env = Env::new("walk-17");
    let msg = Tmessage::Walk {
        fid: env.root,
        newfid: env.client.alloc_fid(),
        wnames: vec![P9String::from("x"); 17],
    };
    let reply = env
        .client
        .raw(msg.encode_to_vec(9).unwrap())
        .expect("a reply");
    assert_eq!(
        Rmessage::decode_slice(&reply, Proto::DotL, MSIZE).unwrap(),
        (9, Rmessage::Lerror { ecode: EINVAL })
    );
}

// ----------------------------------------------------------------------
// Tgetattr

#[test]
fn getattr_matches_host_metadata() {
    let env = Env::new("getattr");
    write_host(&env, "file", &[7u8; 5000]);
    std::fs::create_dir(env.path("d")).unwrap();
    std::os::unix::fs::symlink("file", env.path("link")).unwrap();
    for name in ["file", "d", "link", ""] {
        let fid = env.walk(name).unwrap();
        let a = env.client.getattr(fid, getattr::ALL).unwrap();
        let path = env.path(name);
        let m = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(a.valid & getattr::BASIC, getattr::BASIC, "{name}");
        assert_eq!(a.valid & !(getattr::BASIC | getattr::GEN), 0, "{name}");
        assert_eq!(a.qid, host_qid(&path), "{name}");
        assert_eq!(a.mode, m.mode(), "{name}");
        assert_eq!(a.uid, m.uid(), "{name}");
        assert_eq!(a.gid, m.gid(), "{name}");
        assert_eq!(a.nlink, m.nlink(), "{name}");
        assert_eq!(a.rdev, 0, "{name}");
        assert_eq!(a.size, m.size(), "{name}");
        assert_eq!(a.blocks, m.blocks(), "{name}");
        assert_eq!(
            a.blksize,
            u64::from(iounit_for(MSIZE, m.blksize())),
            "{name}"
        );
        assert_eq!(
            (a.atime_sec, a.atime_nsec),
            (m.atime() as u64, m.atime_nsec() as u64),
            "{name}"
        );
        assert_eq!(
            (a.mtime_sec, a.mtime_nsec),
            (m.mtime() as u64, m.mtime_nsec() as u64),
            "{name}"
        );
        assert_eq!(
            (a.ctime_sec, a.ctime_nsec),
            (m.ctime() as u64, m.ctime_nsec() as u64),
            "{name}"
        );
        // 9p.c reports no btime and no data version.
        assert_eq!((a.btime_sec, a.btime_nsec, a.data_version), (0, 0, 0));
    }
}

#[test]
fn getattr_of_open_unlinked_file() {
    let env = Env::new("getattr-unlinked");
    write_host(&env, "file", b"abc");
    let f = env.open("file", dotl_open::RDONLY).unwrap();
    let ino0 = ino(&env.path("file"));
    std::fs::remove_file(env.path("file")).unwrap();
    let a = env.client.getattr(f, getattr::BASIC).unwrap();
    assert_eq!((a.qid.path, a.nlink, a.size), (ino0, 0, 3));
}

#[test]
fn getattr_unknown_fid_is_enoent() {
    let env = Env::new("getattr-unknown");
    assert_eq!(env.client.getattr(4242, getattr::BASIC).err(), Some(ENOENT));
}

// ----------------------------------------------------------------------
// Tsetattr

#[test]
fn setattr_chmod() {
    let env = Env::new("setattr-chmod");
    write_host(&env, "file", b"");
    let f = env.walk("file").unwrap();
    let set = SetAttr {
        valid: setattr::MODE,
        mode: 0o4710,
        ..SetAttr::default()
    };
    env.client.setattr(f, set).unwrap();
    let m = std::fs::metadata(env.path("file")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4710);
    assert_eq!(
        env.client.getattr(f, getattr::BASIC).unwrap().mode & 0o7777,
        0o4710
    );
}

#[test]
fn setattr_truncate() {
    let env = Env::new("setattr-size");
    write_host(&env, "file", b"0123456789abcdef");
    let f = env.walk("file").unwrap();
    let set = |size| SetAttr {
        valid: setattr::SIZE,
        size,
        ..SetAttr::default()
    };
    env.client.setattr(f, set(4)).unwrap();
    assert_eq!(std::fs::read(env.path("file")).unwrap(), b"0123");
    env.client.setattr(f, set(10)).unwrap();
    assert_eq!(
        std::fs::read(env.path("file")).unwrap(),
        b"0123\0\0\0\0\0\0"
    );
    // Through an open fid too.
    let o = env.open("file", rdwr()).unwrap();
    env.client.setattr(o, set(1)).unwrap();
    assert_eq!(std::fs::read(env.path("file")).unwrap(), b"0");
}

#[test]
fn setattr_times_explicit() {
    let env = Env::new("setattr-times");
    write_host(&env, "file", b"");
    let f = env.walk("file").unwrap();
    let set = SetAttr {
        valid: setattr::ATIME | setattr::ATIME_SET | setattr::MTIME | setattr::MTIME_SET,
        atime_sec: 1_000_000_000,
        atime_nsec: 123_456_789,
        mtime_sec: 1_100_000_000,
        mtime_nsec: 987_654_321,
        ..SetAttr::default()
    };
    env.client.setattr(f, set).unwrap();
    let m = std::fs::metadata(env.path("file")).unwrap();
    assert_eq!((m.atime(), m.atime_nsec()), (1_000_000_000, 123_456_789));
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_100_000_000, 987_654_321));
    // Only mtime: atime is left alone.
    let set = SetAttr {
        valid: setattr::MTIME | setattr::MTIME_SET,
        mtime_sec: 1_200_000_000,
        ..SetAttr::default()
    };
    env.client.setattr(f, set).unwrap();
    let m = std::fs::metadata(env.path("file")).unwrap();
    assert_eq!((m.atime(), m.atime_nsec()), (1_000_000_000, 123_456_789));
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_200_000_000, 0));
}

#[test]
fn setattr_times_now() {
    let env = Env::new("setattr-now");
    write_host(&env, "file", b"");
    let f = env.walk("file").unwrap();
    let old = SetAttr {
        valid: setattr::ATIME | setattr::ATIME_SET | setattr::MTIME | setattr::MTIME_SET,
        atime_sec: 1000,
        mtime_sec: 2000,
        ..SetAttr::default()
    };
    env.client.setattr(f, old).unwrap();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // ATIME/MTIME without *_SET: the current time (even with times given).
    let now = SetAttr {
        valid: setattr::ATIME | setattr::MTIME,
        atime_sec: 5,
        mtime_sec: 5,
        ..SetAttr::default()
    };
    env.client.setattr(f, now).unwrap();
    let m = std::fs::metadata(env.path("file")).unwrap();
    assert!(m.atime() >= before - 1, "atime {}", m.atime());
    assert!(m.mtime() >= before - 1, "mtime {}", m.mtime());
    // Only atime "now": mtime stays.
    env.client.setattr(f, old).unwrap();
    let only_atime = SetAttr {
        valid: setattr::ATIME,
        ..SetAttr::default()
    };
    env.client.setattr(f, only_atime).unwrap();
    let m = std::fs::metadata(env.path("file")).unwrap();
    assert!(m.atime() >= before - 1);
    assert_eq!(m.mtime(), 2000);
}

#[test]
fn setattr_chown() {
    let env = Env::new("setattr-chown");
    write_host(&env, "file", b"");
    let f = env.walk("file").unwrap();
    let set = SetAttr {
        valid: setattr::UID | setattr::GID,
        uid: 1000,
        gid: 1001,
        ..SetAttr::default()
    };
    env.client.setattr(f, set).unwrap();
    let m = std::fs::metadata(env.path("file")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 1001));
    // Only the group.
    let set = SetAttr {
        valid: setattr::GID,
        uid: 7,
        gid: 1002,
        ..SetAttr::default()
    };
    env.client.setattr(f, set).unwrap();
    let m = std::fs::metadata(env.path("file")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 1002));
}

#[test]
fn setattr_ctime_only() {
    let env = Env::new("setattr-ctime");
    write_host(&env, "file", b"");
    let f = env.walk("file").unwrap();
    let before = std::fs::metadata(env.path("file")).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    // 9p.c: only CTIME set means chown(-1, -1), which updates ctime.
    let set = SetAttr {
        valid: setattr::CTIME,
        ..SetAttr::default()
    };
    env.client.setattr(f, set).unwrap();
    let after = std::fs::metadata(env.path("file")).unwrap();
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert!(
        (after.ctime(), after.ctime_nsec()) > (before.ctime(), before.ctime_nsec()),
        "ctime not updated"
    );
}

#[test]
fn setattr_unknown_fid_is_einval() {
    let env = Env::new("setattr-unknown");
    let set = SetAttr {
        valid: setattr::MODE,
        mode: 0o600,
        ..SetAttr::default()
    };
    assert_eq!(env.client.setattr(777, set), Err(EINVAL));
}

// ----------------------------------------------------------------------
// Tlopen

#[test]
fn lopen_file_qid_and_iounit() {
    let env = Env::new("lopen");
    write_host(&env, "file", b"abc");
    let f = env.walk("file").unwrap();
    let (qid, iounit) = env.client.lopen(f, dotl_open::RDONLY).unwrap();
    assert_eq!(qid, host_qid(&env.path("file")));
    // 9p.c's get_iounit: msize - 24 rounded down to the file system's
    // f_bsize.
    let st = host_statfs(&env.dir);
    assert_eq!(iounit, iounit_for(MSIZE, st.f_bsize as u64));
    assert!(iounit > 0 && iounit <= MSIZE - 24, "iounit {iounit}");
}

#[test]
fn lopen_directory_iounit_zero() {
    let env = Env::new("lopen-dir");
    std::fs::create_dir(env.path("d")).unwrap();
    let d = env.walk("d").unwrap();
    let (qid, iounit) = env.client.lopen(d, dotl_open::RDONLY).unwrap();
    assert_eq!(qid, host_qid(&env.path("d")));
    assert_eq!(qid.typ, qid_type::DIR);
    // 9p.c answers iounit 0 for directories.
    assert_eq!(iounit, 0);
}

#[test]
fn lopen_twice_is_einval() {
    let env = Env::new("lopen-twice");
    write_host(&env, "file", b"abc");
    let f = env.open("file", dotl_open::RDONLY).unwrap();
    assert_eq!(env.client.lopen(f, dotl_open::RDONLY), Err(EINVAL));
    assert_eq!(env.client.lopen(f, rdwr()), Err(EINVAL));
    // Still open and usable.
    assert_eq!(env.client.read(f, 0, 10).unwrap(), b"abc");
}

#[test]
fn lopen_unknown_fid_is_enoent() {
    let env = Env::new("lopen-unknown");
    assert_eq!(env.client.lopen(31337, dotl_open::RDONLY), Err(ENOENT));
}

#[test]
fn lopen_trunc_truncates() {
    let env = Env::new("lopen-trunc");
    write_host(&env, "file", b"abcdef");
    let f = env
        .open("file", dotl_open::WRONLY | dotl_open::TRUNC)
        .unwrap();
    assert_eq!(std::fs::read(env.path("file")).unwrap(), b"");
    env.client.write(f, 0, b"xy").unwrap();
    assert_eq!(std::fs::read(env.path("file")).unwrap(), b"xy");
}

#[test]
fn lopen_special_file_is_enxio() {
    let env = Env::new("lopen-fifo");
    host_mkfifo(&env.path("fifo"));
    let f = env.walk("fifo").unwrap();
    // CVE-2023-2861: 9p.c's local backend never opens special files.
    assert_eq!(env.client.lopen(f, dotl_open::RDONLY), Err(ENXIO));
}

// ----------------------------------------------------------------------
// Tread / Twrite

#[test]
fn write_then_read_back() {
    let env = Env::new("rw");
    let f = env.walk("").unwrap();
    env.client.lcreate(f, "file", rdwr(), 0o644, 0).unwrap();
    assert_eq!(env.client.write(f, 0, b"hello world"), Ok(11));
    assert_eq!(std::fs::read(env.path("file")).unwrap(), b"hello world");
    assert_eq!(env.client.read(f, 0, 5).unwrap(), b"hello");
    assert_eq!(env.client.read(f, 6, 5).unwrap(), b"world");
    assert_eq!(env.client.write(f, 6, b"WORLD"), Ok(5));
    assert_eq!(std::fs::read(env.path("file")).unwrap(), b"hello WORLD");
    // Host-side changes are visible.
    write_host(&env, "file", b"from host");
    assert_eq!(env.client.read(f, 0, 100).unwrap(), b"from host");
}

#[test]
fn read_short_at_eof_and_count_zero() {
    let env = Env::new("read-eof");
    write_host(&env, "file", b"0123456789");
    let f = env.open("file", dotl_open::RDONLY).unwrap();
    assert_eq!(env.client.read(f, 4, 100).unwrap(), b"456789");
    assert_eq!(env.client.read(f, 10, 100).unwrap(), b"");
    assert_eq!(env.client.read(f, 1000, 100).unwrap(), b"");
    assert_eq!(env.client.read(f, 0, 0).unwrap(), b"");
    assert_eq!(env.client.read(f, 1 << 40, 10).unwrap(), b"");
}

#[test]
fn write_at_offset_leaves_hole() {
    let env = Env::new("write-hole");
    write_host(&env, "file", b"");
    let f = env.open("file", dotl_open::WRONLY).unwrap();
    assert_eq!(env.client.write(f, 100, b"end"), Ok(3));
    let data = std::fs::read(env.path("file")).unwrap();
    assert_eq!(data.len(), 103);
    assert!(data[..100].iter().all(|&b| b == 0));
    assert_eq!(&data[100..], b"end");
    assert_eq!(env.client.write(f, 0, b""), Ok(0));
    assert_eq!(std::fs::metadata(env.path("file")).unwrap().len(), 103);
}

#[test]
fn read_write_large_file() {
    let env = Env::new("rw-large");
    let f = env.walk("").unwrap();
    let (_, iounit) = env.client.lcreate(f, "big", rdwr(), 0o644, 0).unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 255) as u8).collect();
    let mut off = 0;
    while off < data.len() {
        let end = (off + iounit as usize).min(data.len());
        let n = env.client.write(f, off as u64, &data[off..end]).unwrap();
        assert_eq!(n as usize, end - off);
        off = end;
    }
    assert_eq!(std::fs::read(env.path("big")).unwrap(), data);
    // Reads of the largest count give full replies.
    let max = MSIZE - 11;
    assert_eq!(env.client.read(f, 0, max).unwrap().len(), max as usize);
    assert_eq!(env.client.read_to_end(f, 0).unwrap(), data);
}

#[test]
fn read_write_bad_fids() {
    let env = Env::new("rw-badfid");
    write_host(&env, "file", b"abc");
    std::fs::create_dir(env.path("d")).unwrap();
    // 9p.c: an unknown fid is EINVAL for Tread/Twrite.
    assert_eq!(env.client.read(999, 0, 10), Err(EINVAL));
    assert_eq!(env.client.write(999, 0, b"x"), Err(EINVAL));
    // A fid that is not open.
    let f = env.walk("file").unwrap();
    assert_eq!(env.client.read(f, 0, 10), Err(EINVAL));
    assert_eq!(env.client.write(f, 0, b"x"), Err(EINVAL));
    // Writing a read-only open file: the host's EBADF.
    env.client.lopen(f, dotl_open::RDONLY).unwrap();
    assert_eq!(env.client.write(f, 0, b"x"), Err(EBADF));
    assert_eq!(std::fs::read(env.path("file")).unwrap(), b"abc");
    // Reading a write-only one.
    let w = env.open("file", dotl_open::WRONLY).unwrap();
    assert_eq!(env.client.read(w, 0, 10), Err(EBADF));
    // Tread on a directory is a 9P2000.u thing.
    let d = env.opendir("d").unwrap();
    assert_eq!(env.client.read(d, 0, 100), Err(EOPNOTSUPP));
    assert_eq!(env.client.write(d, 0, b"x"), Err(EINVAL));
}

// ----------------------------------------------------------------------
// Tlcreate

#[test]
fn lcreate_opens_new_file() {
    let env = Env::new("lcreate");
    std::fs::create_dir(env.path("d")).unwrap();
    let f = env.walk("d").unwrap();
    let (qid, iounit) = env.client.lcreate(f, "new", rdwr(), 0o640, 0).unwrap();
    let path = env.path("d/new");
    let m = std::fs::metadata(&path).unwrap();
    assert!(m.is_file());
    assert_eq!(m.mode() & 0o7777, 0o640);
    assert_eq!(qid, host_qid(&path));
    assert_eq!(qid.typ, qid_type::FILE);
    let st = host_statfs(&env.dir);
    assert_eq!(iounit, iounit_for(MSIZE, st.f_bsize as u64));
    // The fid is now the open new file.
    assert_eq!(
        env.client.getattr(f, getattr::BASIC).unwrap().qid.path,
        m.ino()
    );
    assert_eq!(env.client.write(f, 0, b"created"), Ok(7));
    assert_eq!(env.client.read(f, 0, 100).unwrap(), b"created");
    assert_eq!(std::fs::read(&path).unwrap(), b"created");
    // ...and cannot be opened again.
    assert_eq!(env.client.lopen(f, dotl_open::RDONLY), Err(EINVAL));
}

#[test]
fn lcreate_existing() {
    let env = Env::new("lcreate-exist");
    write_host(&env, "file", b"old");
    let f = env.walk("").unwrap();
    assert_eq!(
        env.client
            .lcreate(f, "file", rdwr() | dotl_open::EXCL, 0o644, 0),
        Err(EEXIST)
    );
    // The fid stays the (unopened) directory.
    assert_eq!(
        env.client.getattr(f, getattr::BASIC).unwrap().qid.path,
        ino(&env.dir)
    );
    // Without O_EXCL an existing file is opened, as open(2) does.
    let (qid, _) = env.client.lcreate(f, "file", rdwr(), 0o644, 0).unwrap();
    assert_eq!(qid.path, ino(&env.path("file")));
    assert_eq!(env.client.read(f, 0, 10).unwrap(), b"old");
}

#[test]
fn lcreate_bad_names_and_fids() {
    let env = Env::new("lcreate-bad");
    let f = env.walk("").unwrap();
    assert_eq!(env.client.lcreate(f, ".", rdwr(), 0o644, 0), Err(EEXIST));
    assert_eq!(env.client.lcreate(f, "..", rdwr(), 0o644, 0), Err(EEXIST));
    assert_eq!(env.client.lcreate(f, "a/b", rdwr(), 0o644, 0), Err(ENOENT));
    assert_eq!(env.client.lcreate(f, "", rdwr(), 0o644, 0), Err(ENOENT));
    assert_eq!(env.client.lcreate(5555, "x", rdwr(), 0o644, 0), Err(ENOENT));
    // An open fid.
    let d = env.opendir("").unwrap();
    assert_eq!(env.client.lcreate(d, "x", rdwr(), 0o644, 0), Err(EINVAL));
    assert!(!env.path("x").exists());
}

// ----------------------------------------------------------------------
// Tmkdir, Tsymlink, Tmknod, Tlink, Treadlink

#[test]
fn mkdir_creates_directory() {
    let env = Env::new("mkdir");
    let qid = env.client.mkdir(env.root, "d", 0o750, 0).unwrap();
    let m = std::fs::metadata(env.path("d")).unwrap();
    assert!(m.is_dir());
    assert_eq!(m.mode() & 0o7777, 0o750);
    assert_eq!(qid, host_qid(&env.path("d")));
    assert_eq!(qid.typ, qid_type::DIR);
    assert_eq!(env.client.mkdir(env.root, "d", 0o750, 0), Err(EEXIST));
    assert_eq!(env.client.mkdir(env.root, ".", 0o750, 0), Err(EEXIST));
    assert_eq!(env.client.mkdir(env.root, "..", 0o750, 0), Err(EEXIST));
    assert_eq!(env.client.mkdir(env.root, "a/b", 0o750, 0), Err(ENOENT));
    assert_eq!(env.client.mkdir(9191, "e", 0o750, 0), Err(ENOENT));
    // Nested, through a walked fid.
    let d = env.walk("d").unwrap();
    env.client.mkdir(d, "sub", 0o700, 0).unwrap();
    assert!(env.path("d/sub").is_dir());
}

#[test]
fn symlink_and_readlink() {
    let env = Env::new("symlink");
    let qid = env
        .client
        .symlink(env.root, "link", "some/target", 0)
        .unwrap();
    let path = env.path("link");
    assert_eq!(
        std::fs::read_link(&path).unwrap().to_str(),
        Some("some/target")
    );
    assert_eq!(qid, host_qid(&path));
    assert_eq!(qid.typ, qid_type::SYMLINK);
    let l = env.walk("link").unwrap();
    assert_eq!(env.client.readlink(l).unwrap(), b"some/target");
    // Host-made links too, dangling or not.
    std::os::unix::fs::symlink("/etc/passwd", env.path("abs")).unwrap();
    let a = env.walk("abs").unwrap();
    assert_eq!(env.client.readlink(a).unwrap(), b"/etc/passwd");
    // Errors.
    assert_eq!(env.client.symlink(env.root, "link", "x", 0), Err(EEXIST));
    assert_eq!(env.client.symlink(env.root, ".", "x", 0), Err(EEXIST));
    assert_eq!(env.client.symlink(env.root, "a/b", "x", 0), Err(ENOENT));
    // 9p.c: an unknown directory fid is EINVAL for Tsymlink.
    assert_eq!(env.client.symlink(8080, "x", "y", 0), Err(EINVAL));
    write_host(&env, "file", b"");
    let f = env.walk("file").unwrap();
    assert_eq!(env.client.readlink(f), Err(EINVAL));
    assert_eq!(env.client.readlink(8080), Err(ENOENT));
}

#[test]
fn mknod_fifo() {
    let env = Env::new("mknod");
    let qid = env
        .client
        .mknod(env.root, "fifo", libc::S_IFIFO | 0o640, 0, 0, 0)
        .unwrap();
    let path = env.path("fifo");
    let m = std::fs::symlink_metadata(&path).unwrap();
    assert!(m.file_type().is_fifo());
    assert_eq!(m.mode() & 0o7777, 0o640);
    assert_eq!(qid, host_qid(&path));
    assert_eq!(
        env.client
            .mknod(env.root, "fifo", libc::S_IFIFO | 0o640, 0, 0, 0),
        Err(EEXIST)
    );
    assert_eq!(
        env.client
            .mknod(env.root, "..", libc::S_IFIFO | 0o640, 0, 0, 0),
        Err(EEXIST)
    );
    assert_eq!(
        env.client.mknod(6060, "x", libc::S_IFIFO | 0o640, 0, 0, 0),
        Err(ENOENT)
    );
    // A socket node too.
    env.client
        .mknod(env.root, "sock", libc::S_IFSOCK | 0o600, 0, 0, 0)
        .unwrap();
    assert!(std::fs::symlink_metadata(env.path("sock"))
        .unwrap()
        .file_type()
        .is_socket());
}

#[test]
fn link_creates_hard_link() {
    let env = Env::new("link");
    write_host(&env, "file", b"shared");
    std::fs::create_dir(env.path("d")).unwrap();
    let f = env.walk("file").unwrap();
    let d = env.walk("d").unwrap();
    env.client.link(d, f, "hard").unwrap();
    let a = std::fs::metadata(env.path("file")).unwrap();
    let b = std::fs::metadata(env.path("d/hard")).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.nlink(), 2);
    assert_eq!(env.client.link(d, f, "hard"), Err(EEXIST));
    assert_eq!(env.client.link(d, f, "."), Err(EEXIST));
    assert_eq!(env.client.link(d, f, "x/y"), Err(ENOENT));
    assert_eq!(env.client.link(7070, f, "x"), Err(ENOENT));
    assert_eq!(env.client.link(d, 7070, "x"), Err(ENOENT));
    // Hard links to directories are refused by Linux.
    assert_eq!(env.client.link(env.root, d, "dirlink"), Err(EPERM));
}

// ----------------------------------------------------------------------
// Trename, Trenameat

#[test]
fn rename_moves_file_and_fid_follows() {
    let env = Env::new("rename");
    write_host(&env, "file", b"content");
    std::fs::create_dir(env.path("d")).unwrap();
    let inode = ino(&env.path("file"));
    let f = env.walk("file").unwrap();
    let d = env.walk("d").unwrap();
    env.client.rename(f, d, "moved").unwrap();
    assert!(!env.path("file").exists());
    assert_eq!(std::fs::read(env.path("d/moved")).unwrap(), b"content");
    // The fid follows the file.
    assert_eq!(
        env.client.getattr(f, getattr::BASIC).unwrap().qid.path,
        inode
    );
    env.client.lopen(f, dotl_open::RDONLY).unwrap();
    assert_eq!(env.client.read(f, 0, 100).unwrap(), b"content");
    // A directory, with a fid below it.
    std::fs::create_dir(env.path("d2")).unwrap();
    let below = env.walk("d/moved").unwrap();
    env.client.rename(d, env.root, "d3").unwrap();
    assert!(env.path("d3/moved").exists());
    assert_eq!(
        env.client.getattr(below, getattr::BASIC).unwrap().qid.path,
        inode
    );
    // Replacing an existing file.
    write_host(&env, "victim", b"v");
    let m = env.walk("d3/moved").unwrap();
    env.client.rename(m, env.root, "victim").unwrap();
    assert_eq!(std::fs::read(env.path("victim")).unwrap(), b"content");
}

#[test]
fn rename_errors() {
    let env = Env::new("rename-errors");
    write_host(&env, "file", b"");
    let f = env.walk("file").unwrap();
    assert_eq!(env.client.rename(f, env.root, "."), Err(EISDIR));
    assert_eq!(env.client.rename(f, env.root, ".."), Err(EISDIR));
    assert_eq!(env.client.rename(f, env.root, "a/b"), Err(ENOENT));
    assert_eq!(env.client.rename(f, env.root, ""), Err(ENOENT));
    assert_eq!(env.client.rename(5050, env.root, "x"), Err(ENOENT));
    assert_eq!(env.client.rename(f, 5050, "x"), Err(ENOENT));
    // An open fid cannot be renamed.
    let o = env.open("file", dotl_open::RDONLY).unwrap();
    assert_eq!(env.client.rename(o, env.root, "x"), Err(EINVAL));
    assert!(env.path("file").exists());
    // Into a missing directory path.
    let g = env.walk("file").unwrap();
    assert_eq!(env.client.rename(g, g, "x"), Err(ENOTDIR));
}

#[test]
fn renameat_moves_entry() {
    let env = Env::new("renameat");
    std::fs::create_dir(env.path("a")).unwrap();
    std::fs::create_dir(env.path("b")).unwrap();
    write_host(&env, "a/f", b"data");
    let inode = ino(&env.path("a/f"));
    let a = env.walk("a").unwrap();
    let b = env.walk("b").unwrap();
    let held = env.open("a/f", dotl_open::RDONLY).unwrap();
    env.client.renameat(a, "f", b, "g").unwrap();
    assert!(!env.path("a/f").exists());
    assert_eq!(ino(&env.path("b/g")), inode);
    // Fids on the renamed file keep working.
    assert_eq!(env.client.read(held, 0, 10).unwrap(), b"data");
    assert_eq!(
        env.client.getattr(held, getattr::BASIC).unwrap().qid.path,
        inode
    );
    // Same directory.
    env.client.renameat(b, "g", b, "h").unwrap();
    assert_eq!(ino(&env.path("b/h")), inode);
    // A directory, with fids below.
    let inside = env.walk("b/h").unwrap();
    env.client.renameat(env.root, "b", env.root, "c").unwrap();
    assert_eq!(ino(&env.path("c/h")), inode);
    assert_eq!(
        env.client.getattr(inside, getattr::BASIC).unwrap().qid.path,
        inode
    );
}

#[test]
fn renameat_errors() {
    let env = Env::new("renameat-errors");
    std::fs::create_dir_all(env.path("d/sub")).unwrap();
    write_host(&env, "d/sub/x", b"");
    let r = env.root;
    assert_eq!(env.client.renameat(r, "missing", r, "x"), Err(ENOENT));
    assert_eq!(env.client.renameat(r, ".", r, "x"), Err(EISDIR));
    assert_eq!(env.client.renameat(r, "d", r, ".."), Err(EISDIR));
    assert_eq!(env.client.renameat(r, "a/b", r, "x"), Err(ENOENT));
    assert_eq!(env.client.renameat(r, "d", r, ""), Err(ENOENT));
    assert_eq!(env.client.renameat(4040, "d", r, "x"), Err(ENOENT));
    assert_eq!(env.client.renameat(r, "d", 4040, "x"), Err(ENOENT));
    // Onto a non-empty directory.
    std::fs::create_dir(env.path("e")).unwrap();
    assert_eq!(env.client.renameat(r, "e", r, "d"), Err(ENOTEMPTY));
    // A directory into itself.
    let d = env.walk("d").unwrap();
    assert_eq!(env.client.renameat(r, "d", d, "inner"), Err(EINVAL));
}

// ----------------------------------------------------------------------
// Tunlinkat, Tremove, Tclunk

#[test]
fn unlinkat_file_and_dir() {
    let env = Env::new("unlinkat");
    write_host(&env, "file", b"");
    std::fs::create_dir(env.path("dir")).unwrap();
    env.client.unlinkat(env.root, "file", 0).unwrap();
    assert!(!env.path("file").exists());
    env.client.unlinkat(env.root, "dir", AT_REMOVEDIR).unwrap();
    assert!(!env.path("dir").exists());
    // Symlinks are removed, not followed.
    write_host(&env, "target", b"");
    std::os::unix::fs::symlink("target", env.path("link")).unwrap();
    env.client.unlinkat(env.root, "link", 0).unwrap();
    assert!(env.path("target").exists());
}

#[test]
fn unlinkat_errors() {
    let env = Env::new("unlinkat-errors");
    std::fs::create_dir_all(env.path("full/x")).unwrap();
    std::fs::create_dir(env.path("empty")).unwrap();
    write_host(&env, "file", b"");
    let r = env.root;
    assert_eq!(env.client.unlinkat(r, "full", AT_REMOVEDIR), Err(ENOTEMPTY));
    assert_eq!(env.client.unlinkat(r, "empty", 0), Err(EISDIR));
    assert_eq!(env.client.unlinkat(r, "file", AT_REMOVEDIR), Err(ENOTDIR));
    assert_eq!(env.client.unlinkat(r, "missing", 0), Err(ENOENT));
    assert_eq!(env.client.unlinkat(r, ".", AT_REMOVEDIR), Err(EINVAL));
    assert_eq!(env.client.unlinkat(r, "..", AT_REMOVEDIR), Err(ENOTEMPTY));
    assert_eq!(env.client.unlinkat(r, "a/b", 0), Err(ENOENT));
    assert_eq!(env.client.unlinkat(r, "", 0), Err(ENOENT));
    assert_eq!(env.client.unlinkat(r, "file", 1), Err(EINVAL));
    // 9p.c: an unknown directory fid is EINVAL for Tunlinkat.
    assert_eq!(env.client.unlinkat(3030, "file", 0), Err(EINVAL));
    assert!(env.path("full").exists() && env.path("empty").exists());
    assert!(env.path("file").exists());
}

#[test]
fn remove_file_and_clunks_fid() {
    let env = Env::new("remove");
    write_host(&env, "file", b"");
    std::fs::create_dir(env.path("dir")).unwrap();
    let f = env.walk("file").unwrap();
    env.client.remove(f).unwrap();
    assert!(!env.path("file").exists());
    assert_eq!(env.client.getattr(f, getattr::BASIC).err(), Some(ENOENT));
    assert_eq!(env.client.clunk(f), Err(ENOENT));
    let d = env.walk("dir").unwrap();
    env.client.remove(d).unwrap();
    assert!(!env.path("dir").exists());
    // An open file can be removed too.
    write_host(&env, "open", b"x");
    let o = env.open("open", dotl_open::RDONLY).unwrap();
    env.client.remove(o).unwrap();
    assert!(!env.path("open").exists());
}

#[test]
fn remove_failure_still_clunks() {
    let env = Env::new("remove-fail");
    std::fs::create_dir_all(env.path("full/x")).unwrap();
    let d = env.walk("full").unwrap();
    assert_eq!(env.client.remove(d), Err(ENOTEMPTY));
    assert!(env.path("full").exists());
    // 9p.c: "For TREMOVE we need to clunk the fid even on failed remove".
    assert_eq!(env.client.getattr(d, getattr::BASIC).err(), Some(ENOENT));
    // The root cannot be removed, and its fid goes too.
    let r = env.walk("").unwrap();
    assert!(env.client.remove(r).is_err());
    assert!(env.dir.exists());
    assert_eq!(env.client.clunk(r), Err(ENOENT));
}

#[test]
fn remove_after_renames() {
    let env = Env::new("remove-renamed");
    std::fs::create_dir(env.path("d")).unwrap();
    write_host(&env, "d/f", b"");
    write_host(&env, "g", b"");
    // 9p.c fixes the paths of fids when their file (or a directory above
    // it) is renamed by Trenameat, so a later Tremove removes the file
    // where it is now.
    let f = env.walk("d/f").unwrap();
    env.client.renameat(env.root, "d", env.root, "e").unwrap();
    env.client.remove(f).unwrap();
    assert!(!env.path("e/f").exists());
    let g = env.walk("g").unwrap();
    env.client.renameat(env.root, "g", env.root, "h").unwrap();
    env.client.remove(g).unwrap();
    assert!(!env.path("h").exists());
    // After Trename of the fid itself.
    write_host(&env, "i", b"");
    let i = env.walk("i").unwrap();
    env.client.rename(i, env.root, "j").unwrap();
    env.client.remove(i).unwrap();
    assert!(!env.path("j").exists());
}

#[test]
fn remove_unknown_fid_is_einval() {
    let env = Env::new("remove-unknown");
    assert_eq!(env.client.remove(2020), Err(EINVAL));
}

#[test]
fn clunk_then_use_is_enoent() {
    let env = Env::new("clunk");
    write_host(&env, "file", b"abc");
    let f = env.open("file", dotl_open::RDONLY).unwrap();
    env.client.clunk(f).unwrap();
    assert_eq!(env.client.getattr(f, getattr::BASIC).err(), Some(ENOENT));
    assert_eq!(env.client.clunk(f), Err(ENOENT));
    let nf = env.client.alloc_fid();
    assert_eq!(env.client.walk::<&str>(f, nf, &[]), Err(ENOENT));
    assert_eq!(env.client.lopen(f, dotl_open::RDONLY), Err(ENOENT));
    assert_eq!(env.client.read(f, 0, 1), Err(EINVAL));
    assert_eq!(env.client.clunk(1_000_000), Err(ENOENT));
    // The number can be reused.
    env.client.walk::<&str>(env.root, f, &[]).unwrap();
    assert!(env.client.getattr(f, getattr::BASIC).is_ok());
    env.wait_idle();
}

// ----------------------------------------------------------------------
// Tstatfs, Tfsync

#[test]
fn statfs_matches_host() {
    let env = Env::new("statfs");
    let s = env.client.statfs(env.root).unwrap();
    let h = host_statfs(&env.dir);
    // 9p.c scales the block size up to a multiple fitting msize.
    let factor = ((MSIZE - 24) as u64 / h.f_bsize as u64).max(1);
    assert_eq!(s.typ, h.f_type as u32);
    assert_eq!(u64::from(s.bsize), h.f_bsize as u64 * factor);
    assert_eq!(s.blocks, h.f_blocks / factor);
    assert_eq!(s.files, h.f_files);
    assert_eq!(s.namelen, h.f_namelen as u32);
    assert!(s.bfree <= s.blocks && s.bavail <= s.blocks);
    write_host(&env, "file", b"");
    let f = env.walk("file").unwrap();
    assert_eq!(env.client.statfs(f).unwrap().typ, s.typ);
    assert_eq!(env.client.statfs(1212).err(), Some(ENOENT));
}

#[test]
fn fsync_open_and_unopened() {
    let env = Env::new("fsync");
    write_host(&env, "file", b"");
    let f = env.walk("file").unwrap();
    assert_eq!(env.client.fsync(f, false), Err(EBADF));
    env.client.lopen(f, rdwr()).unwrap();
    env.client.write(f, 0, b"sync me").unwrap();
    env.client.fsync(f, false).unwrap();
    env.client.fsync(f, true).unwrap();
    let d = env.opendir("").unwrap();
    env.client.fsync(d, false).unwrap();
    assert_eq!(env.client.fsync(1313, false), Err(ENOENT));
}

// ----------------------------------------------------------------------
// Treaddir

#[test]
fn readdir_lists_all_entries_with_types() {
    let env = Env::new("readdir");
    std::fs::create_dir(env.path("d")).unwrap();
    write_host(&env, "d/file", b"");
    std::fs::create_dir(env.path("d/sub")).unwrap();
    std::os::unix::fs::symlink("file", env.path("d/link")).unwrap();
    host_mkfifo(&env.path("d/fifo"));
    let d = env.opendir("d").unwrap();
    let entries = env.client.readdir_all(d).unwrap();
    let got: BTreeMap<String, (u8, u64)> = entries
        .iter()
        .map(|e| (e.name.to_string_lossy().into_owned(), (e.typ, e.qid.path)))
        .collect();
    assert_eq!(entries.len(), got.len(), "duplicates in {entries:?}");
    let expect: BTreeMap<String, (u8, u64)> = [
        (".", DT_DIR, ino(&env.path("d"))),
        ("..", DT_DIR, ino(&env.dir)),
        ("file", DT_REG, ino(&env.path("d/file"))),
        ("sub", DT_DIR, ino(&env.path("d/sub"))),
        ("link", DT_LNK, ino(&env.path("d/link"))),
        ("fifo", DT_FIFO, ino(&env.path("d/fifo"))),
    ]
    .into_iter()
    .map(|(n, t, i)| (n.to_string(), (t, i)))
    .collect();
    assert_eq!(got, expect);
    // Reading again from offset 0 gives the same entries.
    let again = env.client.readdir_all(d).unwrap();
    assert_eq!(again, entries);
    // At the last entry's offset: nothing more.
    let last = entries.last().unwrap().offset;
    assert_eq!(env.client.readdir(d, last, MSIZE - 11).unwrap(), vec![]);
}

#[test]
fn readdir_resumes_by_offset_over_1000_files() {
    let env = Env::new("readdir-1000");
    std::fs::create_dir(env.path("many")).unwrap();
    let mut want = HashSet::new();
    for i in 0..1000 {
        let name = format!("file-{i:04}");
        write_host(&env, &format!("many/{name}"), b"");
        want.insert(name);
    }
    want.insert(".".into());
    want.insert("..".into());
    let d = env.opendir("many").unwrap();
    // Room for about three entries per call.
    let entries = env.client.readdir_all_count(d, 3 * (24 + 9)).unwrap();
    let mut seen = HashSet::new();
    for e in &entries {
        let name = e.name.to_string_lossy().into_owned();
        assert!(seen.insert(name.clone()), "duplicate entry {name}");
        if name.starts_with("file-") {
            assert_eq!(e.qid.path, ino(&env.path(&format!("many/{name}"))));
            assert_eq!(e.typ, DT_REG);
        }
    }
    assert_eq!(seen, want);
    // Each call returns what fits.
    let first = env.client.readdir(d, 0, 3 * (24 + 9)).unwrap();
    assert!(!first.is_empty() && first.len() <= 3, "{first:?}");
    // One big call returns everything the msize allows, in the same order.
    let big = env.client.readdir_all(d).unwrap();
    assert_eq!(big, entries);
}

#[test]
fn readdir_count_too_small_is_empty() {
    let env = Env::new("readdir-small");
    write_host(&env, "file", b"");
    let d = env.opendir("").unwrap();
    // No entry fits in fewer than 24 + 1 bytes.
    assert_eq!(env.client.readdir(d, 0, 0).unwrap(), vec![]);
    assert_eq!(env.client.readdir(d, 0, 24).unwrap(), vec![]);
    // "." fits in 25.
    let one = env.client.readdir(d, 0, 25).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].name, ".");
}

#[test]
fn readdir_count_above_msize_is_clamped() {
    let env = Env::new("readdir-clamp");
    for i in 0..50 {
        write_host(&env, &format!("f{i}"), b"");
    }
    let d = env.opendir("").unwrap();
    // 9p.c clamps a count above msize - 11 ("bad client") instead of
    // failing.
    let all = env.client.readdir(d, 0, MSIZE).unwrap();
    assert_eq!(all.len(), 52);
}

#[test]
fn readdir_errors() {
    let env = Env::new("readdir-errors");
    std::fs::create_dir(env.path("d")).unwrap();
    write_host(&env, "file", b"");
    // 9p.c: an unknown fid is EINVAL, a fid that is not an open directory
    // ENOTDIR.
    assert_eq!(env.client.readdir(2323, 0, 1000), Err(EINVAL));
    let d = env.walk("d").unwrap();
    assert_eq!(env.client.readdir(d, 0, 1000), Err(ENOTDIR));
    let f = env.open("file", dotl_open::RDONLY).unwrap();
    assert_eq!(env.client.readdir(f, 0, 1000), Err(ENOTDIR));
}

// ----------------------------------------------------------------------
// Txattrwalk, Txattrcreate

#[test]
fn xattrwalk_get_value() {
    let env = Env::new("xattr-get");
    write_host(&env, "file", b"");
    host_setxattr(&env.path("file"), "user.color", b"blue-green");
    let f = env.walk("file").unwrap();
    let x = env.client.alloc_fid();
    assert_eq!(env.client.xattrwalk(f, x, "user.color"), Ok(10));
    assert_eq!(env.client.read(x, 0, 100).unwrap(), b"blue-green");
    assert_eq!(env.client.read(x, 5, 3).unwrap(), b"gre");
    assert_eq!(env.client.read(x, 10, 100).unwrap(), b"");
    assert_eq!(env.client.read(x, 50, 100).unwrap(), b"");
    env.client.clunk(x).unwrap();
    assert_eq!(
        env.client.xattr_get(f, "user.color").unwrap(),
        b"blue-green"
    );
    // An empty value.
    host_setxattr(&env.path("file"), "user.empty", b"");
    let y = env.client.alloc_fid();
    assert_eq!(env.client.xattrwalk(f, y, "user.empty"), Ok(0));
    assert_eq!(env.client.read(y, 0, 10).unwrap(), b"");
    env.client.clunk(y).unwrap();
}

#[test]
fn xattrwalk_list() {
    let env = Env::new("xattr-list");
    write_host(&env, "file", b"");
    host_setxattr(&env.path("file"), "user.a", b"1");
    host_setxattr(&env.path("file"), "user.bb", b"22");
    let f = env.walk("file").unwrap();
    let list = env.client.xattr_get(f, "").unwrap();
    let names: HashSet<&[u8]> = list.split(|&b| b == 0).filter(|n| !n.is_empty()).collect();
    assert!(names.contains(&b"user.a"[..]), "{list:?}");
    assert!(names.contains(&b"user.bb"[..]), "{list:?}");
    assert_eq!(*list.last().unwrap(), 0);
}

#[test]
fn xattrwalk_errors() {
    let env = Env::new("xattr-walk-errors");
    write_host(&env, "file", b"");
    host_setxattr(&env.path("file"), "user.x", b"1");
    let f = env.walk("file").unwrap();
    let x = env.client.alloc_fid();
    assert_eq!(env.client.xattrwalk(f, x, "user.missing"), Err(ENODATA));
    // The new fid was not left behind.
    assert_eq!(env.client.clunk(x), Err(ENOENT));
    assert_eq!(env.client.xattrwalk(5656, x, "user.x"), Err(ENOENT));
    // newfid in use.
    let other = env.walk("").unwrap();
    assert_eq!(env.client.xattrwalk(f, other, "user.x"), Err(EINVAL));
    assert_eq!(
        env.client.getattr(other, getattr::BASIC).unwrap().qid.path,
        ino(&env.dir)
    );
    // An xattr fid cannot be opened, nor walked from to a useful place.
    env.client.xattrwalk(f, x, "user.x").unwrap();
    assert_eq!(env.client.lopen(x, dotl_open::RDONLY), Err(EINVAL));
}

#[test]
fn xattrcreate_write_clunk_sets() {
    let env = Env::new("xattr-create");
    write_host(&env, "file", b"");
    let f = env.walk("file").unwrap();
    let x = env.walk("file").unwrap();
    env.client.xattrcreate(x, "user.new", 5, 0).unwrap();
    // Not set before the clunk.
    assert_eq!(
        host_getxattr(&env.path("file"), "user.new"),
        Err(libc::ENODATA)
    );
    assert_eq!(env.client.write(x, 0, b"hel"), Ok(3));
    assert_eq!(env.client.write(x, 3, b"lo"), Ok(2));
    env.client.clunk(x).unwrap();
    assert_eq!(
        host_getxattr(&env.path("file"), "user.new").unwrap(),
        b"hello"
    );
    assert_eq!(env.client.xattr_get(f, "user.new").unwrap(), b"hello");
    // Replace it through the helper, and with XATTR_REPLACE.
    env.client
        .xattr_set(f, "user.new", b"v2", xattr_flags::REPLACE)
        .unwrap();
    assert_eq!(host_getxattr(&env.path("file"), "user.new").unwrap(), b"v2");
    // XATTR_CREATE on an existing attribute fails at the clunk.
    let y = env.walk("file").unwrap();
    env.client
        .xattrcreate(y, "user.new", 1, xattr_flags::CREATE)
        .unwrap();
    assert_eq!(env.client.write(y, 0, b"z"), Ok(1));
    assert_eq!(env.client.clunk(y), Err(EEXIST));
    assert_eq!(env.client.getattr(y, getattr::BASIC).err(), Some(ENOENT));
    assert_eq!(host_getxattr(&env.path("file"), "user.new").unwrap(), b"v2");
    // A directory's attributes too.
    let d = env.walk("").unwrap();
    env.client.xattr_set(d, "user.dir", b"yes", 0).unwrap();
    assert_eq!(host_getxattr(&env.dir, "user.dir").unwrap(), b"yes");
}

#[test]
fn xattrcreate_size_mismatch_is_einval() {
    let env = Env::new("xattr-mismatch");
    write_host(&env, "file", b"");
    let x = env.walk("file").unwrap();
    env.client.xattrcreate(x, "user.short", 5, 0).unwrap();
    assert_eq!(env.client.write(x, 0, b"abc"), Ok(3));
    assert_eq!(env.client.clunk(x), Err(EINVAL));
    assert_eq!(
        host_getxattr(&env.path("file"), "user.short"),
        Err(libc::ENODATA)
    );
    // The fid is gone anyway.
    assert_eq!(env.client.clunk(x), Err(ENOENT));
}

#[test]
fn xattrcreate_too_big_is_e2big() {
    let env = Env::new("xattr-big");
    write_host(&env, "file", b"");
    let x = env.walk("file").unwrap();
    assert_eq!(env.client.xattrcreate(x, "user.big", 65537, 0), Err(E2BIG));
    // The fid is still a plain fid.
    assert!(env.client.getattr(x, getattr::BASIC).is_ok());
    // 65536 is allowed.
    env.client.xattrcreate(x, "user.big", 65536, 0).unwrap();
}

#[test]
fn xattrcreate_size_zero_removes() {
    let env = Env::new("xattr-remove");
    write_host(&env, "file", b"");
    host_setxattr(&env.path("file"), "user.gone", b"bye");
    let x = env.walk("file").unwrap();
    env.client.xattrcreate(x, "user.gone", 0, 0).unwrap();
    env.client.clunk(x).unwrap();
    assert_eq!(
        host_getxattr(&env.path("file"), "user.gone"),
        Err(libc::ENODATA)
    );
    // Removing a missing attribute fails at the clunk.
    let y = env.walk("file").unwrap();
    env.client.xattrcreate(y, "user.gone", 0, 0).unwrap();
    assert_eq!(env.client.clunk(y), Err(ENODATA));
}

#[test]
fn xattrcreate_errors() {
    let env = Env::new("xattr-create-errors");
    write_host(&env, "file", b"");
    let x = env.walk("file").unwrap();
    assert_eq!(env.client.xattrcreate(x, "user.a", 1, 4), Err(EINVAL));
    // 9p.c: an unknown fid is EINVAL for Txattrcreate.
    assert_eq!(env.client.xattrcreate(6767, "user.a", 1, 0), Err(EINVAL));
    let o = env.open("file", dotl_open::RDONLY).unwrap();
    assert_eq!(env.client.xattrcreate(o, "user.a", 1, 0), Err(EINVAL));
    // An xattr fid cannot become another one.
    env.client.xattrcreate(x, "user.a", 1, 0).unwrap();
    assert_eq!(env.client.xattrcreate(x, "user.b", 1, 0), Err(EINVAL));
}

#[test]
fn xattr_write_bounds() {
    let env = Env::new("xattr-write");
    write_host(&env, "file", b"");
    let x = env.walk("file").unwrap();
    env.client.xattrcreate(x, "user.w", 4, 0).unwrap();
    // Writes are cut at the declared size...
    assert_eq!(env.client.write(x, 0, b"abcdef"), Ok(4));
    // ...and beyond it fail with ENOSPC.
    assert_eq!(env.client.write(x, 10, b"z"), Err(ENOSPC));
    env.client.clunk(x).unwrap();
    assert_eq!(host_getxattr(&env.path("file"), "user.w").unwrap(), b"abcd");
}

// ----------------------------------------------------------------------
// Tlock, Tgetlock

fn flock(typ: u8, start: u64, length: u64) -> Flock {
    Flock {
        typ,
        flags: 0,
        start,
        length,
        proc_id: 1234,
        client_id: "client".into(),
    }
}

fn getlock_req(typ: u8, start: u64, length: u64) -> Getlock {
    Getlock {
        typ,
        start,
        length,
        proc_id: 42,
        client_id: "asker".into(),
    }
}

#[test]
fn lock_and_unlock() {
    let env = Env::new("lock");
    write_host(&env, "file", b"0123456789");
    let f = env.open("file", rdwr()).unwrap();
    assert_eq!(
        env.client.lock(f, &flock(lock_type::WRLCK, 0, 0)),
        Ok(lock_status::SUCCESS)
    );
    assert_eq!(
        env.client.lock(f, &flock(lock_type::UNLCK, 0, 0)),
        Ok(lock_status::SUCCESS)
    );
    assert_eq!(
        env.client.lock(f, &flock(lock_type::RDLCK, 2, 3)),
        Ok(lock_status::SUCCESS)
    );
    // The BLOCK flag is accepted.
    let mut blocking = flock(lock_type::WRLCK, 0, 1);
    blocking.flags = p9_wire::consts::lock_flags::BLOCK;
    assert_eq!(env.client.lock(f, &blocking), Ok(lock_status::SUCCESS));
}

#[test]
fn lock_conflict_between_open_fids() {
    let env = Env::new("lock-conflict");
    write_host(&env, "file", b"0123456789");
    let a = env.open("file", rdwr()).unwrap();
    let b = env.open("file", rdwr()).unwrap();
    assert_eq!(
        env.client.lock(a, &flock(lock_type::WRLCK, 0, 100)),
        Ok(lock_status::SUCCESS)
    );
    // Open file description locks: the other open fid conflicts.
    assert_eq!(
        env.client.lock(b, &flock(lock_type::WRLCK, 50, 10)),
        Ok(lock_status::BLOCKED)
    );
    assert_eq!(
        env.client.lock(b, &flock(lock_type::RDLCK, 0, 0)),
        Ok(lock_status::BLOCKED)
    );
    // Outside the range: no conflict.
    assert_eq!(
        env.client.lock(b, &flock(lock_type::WRLCK, 100, 10)),
        Ok(lock_status::SUCCESS)
    );
    // The same fid may relock its own range.
    assert_eq!(
        env.client.lock(a, &flock(lock_type::RDLCK, 0, 100)),
        Ok(lock_status::SUCCESS)
    );
    // Released: b gets it.
    assert_eq!(
        env.client.lock(a, &flock(lock_type::UNLCK, 0, 0)),
        Ok(lock_status::SUCCESS)
    );
    assert_eq!(
        env.client.lock(b, &flock(lock_type::WRLCK, 0, 100)),
        Ok(lock_status::SUCCESS)
    );
    // Clunking an open fid drops its locks.
    env.client.clunk(b).unwrap();
    assert_eq!(
        env.client.lock(a, &flock(lock_type::WRLCK, 0, 0)),
        Ok(lock_status::SUCCESS)
    );
}

#[test]
fn getlock_reports_conflict() {
    let env = Env::new("getlock");
    write_host(&env, "file", b"0123456789");
    let a = env.open("file", rdwr()).unwrap();
    let b = env.open("file", rdwr()).unwrap();
    env.client
        .lock(a, &flock(lock_type::WRLCK, 10, 20))
        .unwrap();
    let got = env
        .client
        .getlock(b, &getlock_req(lock_type::RDLCK, 0, 0))
        .unwrap();
    assert_eq!(got.typ, lock_type::WRLCK);
    assert_eq!((got.start, got.length), (10, 20));
    // No conflict: the request comes back with type UNLCK, as 9p.c does.
    let free = env
        .client
        .getlock(b, &getlock_req(lock_type::WRLCK, 40, 5))
        .unwrap();
    assert_eq!(
        free,
        Getlock {
            typ: lock_type::UNLCK,
            ..getlock_req(lock_type::WRLCK, 40, 5)
        }
    );
    // Own locks never conflict.
    let own = env
        .client
        .getlock(a, &getlock_req(lock_type::WRLCK, 0, 0))
        .unwrap();
    assert_eq!(own.typ, lock_type::UNLCK);
}

#[test]
fn lock_errors() {
    let env = Env::new("lock-errors");
    write_host(&env, "file", b"x");
    let f = env.walk("file").unwrap();
    assert_eq!(
        env.client.lock(f, &flock(lock_type::WRLCK, 0, 0)),
        Err(EBADF)
    );
    assert_eq!(
        env.client.getlock(f, &getlock_req(lock_type::WRLCK, 0, 0)),
        Err(EBADF)
    );
    assert_eq!(
        env.client.lock(9898, &flock(lock_type::WRLCK, 0, 0)),
        Err(ENOENT)
    );
    assert_eq!(
        env.client
            .getlock(9898, &getlock_req(lock_type::WRLCK, 0, 0)),
        Err(ENOENT)
    );
    env.client.lopen(f, rdwr()).unwrap();
    let mut bad = flock(lock_type::WRLCK, 0, 0);
    bad.flags = p9_wire::consts::lock_flags::RECLAIM;
    assert_eq!(env.client.lock(f, &bad), Err(EINVAL));
}

// ----------------------------------------------------------------------
// Offloads: at most one per request

/// Run `f` and return its result with the number of offloads it made.
fn cost<R>(env: &Env, f: impl FnOnce() -> R) -> (R, u64) {
    let before = env.offloads();
    let r = f();
    (r, env.offloads() - before)
}

#[test]
fn one_offload_per_request() {
    let env = Env::bare("offloads");
    let c = &env.client;
    let (r, n) = cost(&env, || c.version(MSIZE, "9P2000.L"));
    r.unwrap();
    assert_eq!(n, 0, "Tversion");
    let root = c.alloc_fid();
    let (r, n) = cost(&env, || c.attach(root, NOFID, "root", "", 0));
    r.unwrap();
    assert!(n <= 1, "Tattach: {n} offloads");
    std::fs::create_dir_all(env.path("a/b/c/d/e")).unwrap();
    for i in 0..20 {
        write_host(&env, &format!("a/b/c/d/e/f{i}"), b"");
    }

    // Exactly one for requests doing backend work.
    let deep = c.alloc_fid();
    let (r, n) = cost(&env, || c.walk(root, deep, &["a", "b", "c", "d", "e"]));
    assert_eq!(r.unwrap().len(), 5);
    assert_eq!(n, 1, "Twalk of 5 names");
    let (r, n) = cost(&env, || c.getattr(deep, getattr::ALL));
    r.unwrap();
    assert_eq!(n, 1, "Tgetattr");
    let newf = c.alloc_fid();
    c.clone_fid(deep, newf).unwrap();
    let (r, n) = cost(&env, || c.lcreate(newf, "new", rdwr(), 0o644, 0));
    r.unwrap();
    assert_eq!(n, 1, "Tlcreate");
    let dir = c.alloc_fid();
    c.clone_fid(deep, dir).unwrap();
    c.lopen(dir, dotl_open::RDONLY | dotl_open::DIRECTORY)
        .unwrap();
    let (r, n) = cost(&env, || c.readdir(dir, 0, MSIZE - 11));
    assert!(r.unwrap().len() >= 20);
    assert_eq!(n, 1, "Treaddir");

    // None for requests that need no backend.
    let never_opened = c.alloc_fid();
    c.clone_fid(root, never_opened).unwrap();
    let (r, n) = cost(&env, || c.clunk(never_opened));
    r.unwrap();
    assert_eq!(n, 0, "Tclunk of a never-opened fid");
    let (r, n) = cost(&env, || c.flush(1234));
    r.unwrap();
    assert_eq!(n, 0, "Tflush");

    // At most one for everything else.
    let at_most_one = |what: &str, n: u64| assert!(n <= 1, "{what}: {n} offloads");
    let (r, n) = cost(&env, || c.write(newf, 0, b"data"));
    r.unwrap();
    at_most_one("Twrite", n);
    let (r, n) = cost(&env, || c.read(newf, 0, 100));
    r.unwrap();
    at_most_one("Tread", n);
    let (r, n) = cost(&env, || c.fsync(newf, false));
    r.unwrap();
    at_most_one("Tfsync", n);
    let (r, n) = cost(&env, || c.lock(newf, &flock(lock_type::WRLCK, 0, 0)));
    r.unwrap();
    at_most_one("Tlock", n);
    let (r, n) = cost(&env, || {
        c.getlock(newf, &getlock_req(lock_type::WRLCK, 0, 0))
    });
    r.unwrap();
    at_most_one("Tgetlock", n);
    let file = c.alloc_fid();
    c.walk(deep, file, &["f0"]).unwrap();
    let (r, n) = cost(&env, || c.lopen(file, dotl_open::RDONLY));
    r.unwrap();
    at_most_one("Tlopen", n);
    let (r, n) = cost(&env, || c.clunk(file));
    r.unwrap();
    at_most_one("Tclunk of an open fid", n);
    let set = SetAttr {
        valid: setattr::MODE,
        mode: 0o600,
        ..SetAttr::default()
    };
    let (r, n) = cost(&env, || c.setattr(deep, set));
    r.unwrap();
    at_most_one("Tsetattr", n);
    let (r, n) = cost(&env, || c.statfs(root));
    r.unwrap();
    at_most_one("Tstatfs", n);
    let (r, n) = cost(&env, || c.mkdir(root, "m", 0o755, 0));
    r.unwrap();
    at_most_one("Tmkdir", n);
    let (r, n) = cost(&env, || c.symlink(root, "s", "m", 0));
    r.unwrap();
    at_most_one("Tsymlink", n);
    let (r, n) = cost(&env, || c.mknod(root, "p", libc::S_IFIFO | 0o600, 0, 0, 0));
    r.unwrap();
    at_most_one("Tmknod", n);
    let link = c.alloc_fid();
    c.walk(root, link, &["s"]).unwrap();
    let (r, n) = cost(&env, || c.readlink(link));
    r.unwrap();
    at_most_one("Treadlink", n);
    let f1 = c.alloc_fid();
    c.walk(deep, f1, &["f1"]).unwrap();
    let (r, n) = cost(&env, || c.link(root, f1, "hard"));
    r.unwrap();
    at_most_one("Tlink", n);
    let (r, n) = cost(&env, || c.rename(f1, root, "renamed"));
    r.unwrap();
    at_most_one("Trename", n);
    let (r, n) = cost(&env, || c.renameat(root, "renamed", root, "renamed2"));
    r.unwrap();
    at_most_one("Trenameat", n);
    let (r, n) = cost(&env, || c.unlinkat(root, "hard", 0));
    r.unwrap();
    at_most_one("Tunlinkat", n);
    let f2 = c.alloc_fid();
    c.walk(deep, f2, &["f2"]).unwrap();
    let (r, n) = cost(&env, || c.remove(f2));
    r.unwrap();
    at_most_one("Tremove", n);
    let x = c.alloc_fid();
    c.clone_fid(deep, x).unwrap();
    let (r, n) = cost(&env, || c.xattrcreate(x, "user.k", 1, 0));
    r.unwrap();
    at_most_one("Txattrcreate", n);
    c.write(x, 0, b"v").unwrap();
    let (r, n) = cost(&env, || c.clunk(x));
    r.unwrap();
    at_most_one("Tclunk of an xattr fid", n);
    let y = c.alloc_fid();
    let (r, n) = cost(&env, || c.xattrwalk(deep, y, "user.k"));
    assert_eq!(r, Ok(1));
    at_most_one("Txattrwalk", n);
}

// ----------------------------------------------------------------------
// Tflush and concurrency

#[test]
fn flush_of_unknown_tag_replies() {
    let env = Env::new("flush-unknown");
    env.client.flush(77).unwrap();
    env.client.flush(NOTAG).unwrap();
    // A self-referencing flush is answered too.
    let p = env
        .client
        .send_with_tag(300, &Tmessage::Flush { oldtag: 300 });
    assert!(matches!(p.wait(), Some(Ok(_))));
}

#[test]
fn flush_answers_after_the_flushed_request() {
    let env = Env::new("flush-order");
    write_host(&env, "file", &[1u8; 100_000]);
    let f = env.open("file", dotl_open::RDONLY).unwrap();
    for _ in 0..20 {
        let reads: Vec<_> = (0..8)
            .map(|_| {
                env.client.send(&Tmessage::Read {
                    fid: f,
                    offset: 0,
                    count: MSIZE - 11,
                })
            })
            .collect();
        for r in &reads {
            env.client.flush(r.tag()).unwrap();
            // After Rflush, the flushed request has answered or never will.
            assert!(r.is_done(), "Rflush before the flushed request finished");
        }
        for r in reads {
            match r.wait() {
                None => {}
                Some(Ok(reply)) => match reply.msg() {
                    Rmessage::Read { data } => {
                        assert_eq!(data.len(), 100_000.min(MSIZE as usize - 11))
                    }
                    other => panic!("{other:?}"),
                },
                Some(Err(e)) => panic!("flushed read failed with {e:?}"),
            }
        }
    }
    env.wait_idle();
}

#[test]
fn many_requests_in_flight() {
    let env = Env::new("in-flight");
    for i in 0..32 {
        write_host(&env, &format!("f{i}"), format!("{i}").as_bytes());
    }
    let fids: Vec<u32> = (0..32)
        .map(|i| env.open(&format!("f{i}"), dotl_open::RDONLY).unwrap())
        .collect();
    let pending: Vec<_> = (0..256)
        .map(|i| {
            let fid = fids[i % 32];
            env.client.send(&Tmessage::Read {
                fid,
                offset: 0,
                count: 100,
            })
        })
        .collect();
    let tags: HashSet<u16> = pending.iter().map(|p| p.tag()).collect();
    assert!(!tags.contains(&NOTAG));
    for (i, p) in pending.into_iter().enumerate() {
        let reply = p.wait().expect("a reply").expect("Rread");
        match reply.msg() {
            Rmessage::Read { data } => assert_eq!(data.to_vec(), format!("{}", i % 32).as_bytes()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(env.client.tags_in_flight(), 0);
    // From several threads at once.
    std::thread::scope(|s| {
        for t in 0..4 {
            let env = &env;
            let fids = &fids;
            s.spawn(move || {
                for i in 0..100 {
                    let fid = fids[(t * 7 + i) % 32];
                    let a = env.client.getattr(fid, getattr::BASIC).unwrap();
                    assert!(a.size >= 1);
                }
            });
        }
    });
}
