// SPDX-License-Identifier: GPL-2.0-or-later
//! The C-vtable backend (`qrs_p9_backend_c_new`) end to end: a
//! `QrsP9BackendOps` in Rust `extern "C"` functions over a host directory,
//! the way QEMU's 9p-local works (see `support`), served through the C API
//! in thread mode and driven with 9P2000.L requests.  Every test checks
//! the host side too, and that the library closed every open state and
//! kept the vtable's contract (`support::finish`).

mod support;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::sync::atomic::Ordering;

use p9_wire::consts::{
    dotl_open, getattr, lock_status, lock_type, qid_type, setattr, AT_REMOVEDIR,
};
use p9_wire::errno::{
    EBUSY, EEXIST, EINVAL, EISDIR, ENODATA, ENOENT, ENOTDIR, ENOTEMPTY, ENXIO, EOPNOTSUPP,
};
use p9_wire::{Flock, Getlock, SetAttr};
use qemurs::*;
use support::*;

fn lstat(p: &std::path::Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("lstat {p:?}: {e}"))
}

fn uid_gid() -> (u32, u32) {
    // SAFETY: always succeed.
    unsafe { (libc::getuid(), libc::getgid()) }
}

// ----- creation of the backend -----

#[test]
fn a_null_required_function_is_refused() {
    let dir = TempDir::new("null");
    let fs = LocalFs::new(dir.root());
    let opaque = std::sync::Arc::as_ptr(&fs) as *mut std::ffi::c_void;
    type Clear = fn(&mut QrsP9BackendOps);
    let required: &[(&str, Clear)] = &[
        ("name_to_path", |o| o.name_to_path = None),
        ("lstat", |o| o.lstat = None),
        ("readlink", |o| o.readlink = None),
        ("statfs", |o| o.statfs = None),
        ("chmod", |o| o.chmod = None),
        ("chown", |o| o.chown = None),
        ("utimensat", |o| o.utimensat = None),
        ("truncate", |o| o.truncate = None),
        ("mknod", |o| o.mknod = None),
        ("mkdir", |o| o.mkdir = None),
        ("symlink", |o| o.symlink = None),
        ("link", |o| o.link = None),
        ("renameat", |o| o.renameat = None),
        ("unlinkat", |o| o.unlinkat = None),
        ("open", |o| o.open = None),
        ("opendir", |o| o.opendir = None),
        ("open2", |o| o.open2 = None),
        ("close", |o| o.close = None),
        ("closedir", |o| o.closedir = None),
        ("preadv", |o| o.preadv = None),
        ("pwritev", |o| o.pwritev = None),
        ("fsync", |o| o.fsync = None),
        ("readdir", |o| o.readdir = None),
    ];
    for (name, clear) in required {
        let mut ops = local_ops();
        clear(&mut ops);
        let mut out: *mut QrsP9Backend = 0x1 as *mut _;
        // SAFETY: a readable vtable and a writable out-pointer.
        let r = unsafe { qrs_p9_backend_c_new(&ops, opaque, &mut out) };
        assert_eq!(r, -libc::EINVAL, "{name} NULL");
        assert_eq!(out, 0x1 as *mut _, "{name} NULL: out written");
    }
    // The optional ones may all be NULL.
    let mut ops = local_ops();
    ops.get_st_gen = None;
    ops.remove = None;
    ops.lgetxattr = None;
    ops.llistxattr = None;
    ops.lsetxattr = None;
    ops.lremovexattr = None;
    ops.lock = None;
    ops.getlock = None;
    ops.fstat = None;
    ops.flags = 0;
    let mut out: *mut QrsP9Backend = std::ptr::null_mut();
    // SAFETY: as above.
    assert_eq!(unsafe { qrs_p9_backend_c_new(&ops, opaque, &mut out) }, 0);
    assert!(!out.is_null());
    // SAFETY: an unused backend.
    unsafe { qrs_p9_backend_free(out) };
    // NULL ops.
    // SAFETY: NULL is allowed.
    let r = unsafe { qrs_p9_backend_c_new(std::ptr::null(), opaque, &mut out) };
    assert_eq!(r, -libc::EINVAL);
    assert_eq!(fs.open_handles.load(Ordering::SeqCst), 0);
}

// ----- lookups and attributes -----

#[test]
fn attach_walk_getattr() {
    let dir = TempDir::new("walk");
    std::fs::create_dir(dir.path("a")).unwrap();
    std::fs::write(dir.path("a/f"), b"hello").unwrap();
    let fs = LocalFs::new(dir.root());
    let c = serve_with(&fs, &local_ops(), QRS_P9_MULTIDEVS_WARN);

    let root = c.getattr(ROOT, getattr::ALL).unwrap();
    let host = lstat(dir.root());
    assert_eq!(root.qid.typ, qid_type::DIR);
    assert_eq!(root.qid.path, host.ino());
    assert_eq!(root.mode, host.mode());

    let (f, qids) = c.walk_new(ROOT, &["a", "f"]).unwrap();
    assert_eq!(qids.len(), 2);
    let hf = lstat(&dir.path("a/f"));
    assert_eq!(qids[0].path, lstat(&dir.path("a")).ino());
    assert_eq!(qids[1].path, hf.ino());
    let st = c.getattr(f, getattr::ALL).unwrap();
    assert_eq!(st.qid.path, hf.ino());
    assert_eq!(st.qid.typ, qid_type::FILE);
    assert_eq!(st.mode, hf.mode());
    assert_eq!((st.uid, st.gid), (hf.uid(), hf.gid()));
    assert_eq!(st.nlink, hf.nlink());
    assert_eq!(st.size, 5);
    assert_eq!(st.blocks, hf.blocks());
    assert_eq!(
        (st.mtime_sec, st.mtime_nsec),
        (hf.mtime() as u64, hf.mtime_nsec() as u64)
    );
    assert_eq!(
        (st.ctime_sec, st.ctime_nsec),
        (hf.ctime() as u64, hf.ctime_nsec() as u64)
    );
    assert_eq!(st.gen, GEN, "get_st_gen's value");
    // A directory: get_st_gen fails, which is ignored.
    let (a, _) = c.walk_new(ROOT, &["a"]).unwrap();
    assert_eq!(c.getattr(a, getattr::ALL).unwrap().gen, 0);

    // Errors: the first name missing is an error, a later one a short walk.
    assert_eq!(c.walk_new(ROOT, &["missing"]).unwrap_err(), ENOENT);
    assert_eq!(c.walk_new(ROOT, &["a", "missing", "x"]).unwrap().1.len(), 1);
    assert_eq!(c.walk_new(ROOT, &["a", "f", "x"]).unwrap().1.len(), 2);
    // A clone walks nothing and refers to the same file.
    let g = c.alloc_fid();
    c.clone_fid(f, g).unwrap();
    assert_eq!(c.getattr(g, getattr::BASIC).unwrap().qid.path, hf.ino());
    finish(c);
}

#[test]
fn dotdot_at_the_root_stays_there() {
    let dir = TempDir::new("dotdot");
    std::fs::create_dir_all(dir.path("a/b")).unwrap();
    let fs = LocalFs::new(dir.root());
    let c = serve_with(&fs, &local_ops(), QRS_P9_MULTIDEVS_WARN);
    let root_ino = lstat(dir.root()).ino();

    let (_, q) = c.walk_new(ROOT, &[".."]).unwrap();
    assert_eq!(q[0].path, root_ino);
    let (_, q) = c.walk_new(ROOT, &["..", "..", "a"]).unwrap();
    assert_eq!(
        q.iter().map(|q| q.path).collect::<Vec<_>>(),
        [root_ino, root_ino, lstat(&dir.path("a")).ino()]
    );
    let (x, q) = c
        .walk_new(ROOT, &["a", "b", "..", "..", "..", "a"])
        .unwrap();
    let a_ino = lstat(&dir.path("a")).ino();
    assert_eq!(
        q.iter().map(|q| q.path).collect::<Vec<_>>(),
        [
            a_ino,
            lstat(&dir.path("a/b")).ino(),
            a_ino,
            root_ino,
            root_ino,
            a_ino
        ]
    );
    assert_eq!(c.getattr(x, getattr::BASIC).unwrap().qid.path, a_ino);
    // From a fid on the root (not the attach fid).
    let (r2, _) = c.walk_new(ROOT, &["a", ".."]).unwrap();
    let (_, q) = c.walk_new(r2, &[".."]).unwrap();
    assert_eq!(q[0].path, root_ino);
    // `..` of the root is never asked of name_to_path (finish checks).
    finish(c);
}

// ----- files -----

#[test]
fn lopen_read_write_fsync() {
    let dir = TempDir::new("rw");
    std::fs::write(dir.path("f"), b"0123456789").unwrap();
    let fs = LocalFs::new(dir.root());
    let c = serve(&fs);

    let (f, _) = c.walk_new(ROOT, &["f"]).unwrap();
    c.lopen(f, dotl_open::RDWR).unwrap();
    assert_eq!(c.read(f, 0, 100).unwrap(), b"0123456789");
    assert_eq!(c.read(f, 4, 3).unwrap(), b"456");
    assert_eq!(c.read(f, 10, 100).unwrap(), b"");
    assert_eq!(c.write(f, 8, b"abcdef").unwrap(), 6);
    assert_eq!(std::fs::read(dir.path("f")).unwrap(), b"01234567abcdef");
    // A big write and read back (several pieces of the reply).
    let big: Vec<u8> = (0..60_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(c.write(f, 0, &big).unwrap() as usize, big.len());
    assert_eq!(c.read_to_end(f, 0).unwrap(), big);
    assert_eq!(std::fs::read(dir.path("f")).unwrap(), big);

    fs.clear_log();
    c.fsync(f, false).unwrap();
    c.fsync(f, true).unwrap();
    let (d, _) = c.walk_new(ROOT, &[] as &[&str]).unwrap();
    c.lopen(d, dotl_open::RDONLY).unwrap();
    c.fsync(d, false).unwrap();
    assert_eq!(
        fs.log(),
        [
            "fsync dir 0 datasync 0",
            "fsync dir 0 datasync 1",
            "fsync dir 1 datasync 0"
        ]
    );
    assert_eq!(client_stats_handles(&c), 2);
    c.clunk(f).unwrap();
    c.clunk(d).unwrap();
    assert_eq!(fs.open_handles.load(Ordering::SeqCst), 0, "clunk closes");
    finish(c);
}

/// Tgetattr of an open fid goes through the vtable's `fstat`, so an
/// open-but-unlinked file answers; an unopened fid (and every fid without
/// `fstat`) uses `lstat` of its path.
#[test]
fn getattr_of_an_open_fid_uses_fstat() {
    let dir = TempDir::new("fstat");
    std::fs::write(dir.path("f"), b"12345").unwrap();
    let fs = LocalFs::new(dir.root());
    let c = serve(&fs);
    let (f, _) = c.walk_new(ROOT, &["f"]).unwrap();
    let (g, _) = c.walk_new(ROOT, &["f"]).unwrap();
    c.lopen(f, dotl_open::RDONLY).unwrap();
    let (d, _) = c.walk_new(ROOT, &[] as &[&str]).unwrap();
    c.lopen(d, dotl_open::RDONLY).unwrap();
    let calls = || fs.fstat_calls.load(Ordering::SeqCst);
    assert_eq!(c.getattr(g, getattr::BASIC).unwrap().size, 5);
    assert_eq!(calls(), 0, "an unopened fid: lstat");
    assert_eq!(c.getattr(f, getattr::BASIC).unwrap().size, 5);
    assert_eq!(calls(), 1);
    // A directory handle (fstat_fn checks `is_dir`: `finish` reports it).
    assert_eq!(c.getattr(d, getattr::BASIC).unwrap().qid.typ, qid_type::DIR);
    assert_eq!(calls(), 2);
    std::fs::remove_file(dir.path("f")).unwrap();
    let st = c.getattr(f, getattr::BASIC).unwrap();
    assert_eq!((st.size, st.nlink), (5, 0), "open but unlinked");
    assert_eq!(c.getattr(g, getattr::BASIC).unwrap_err(), ENOENT);
    // Locks (the vtable's own) do not ask fstat.
    let status = c
        .lock(
            f,
            &Flock {
                typ: lock_type::RDLCK,
                flags: 0,
                start: 0,
                length: 0,
                proc_id: 1,
                client_id: "c".into(),
            },
        )
        .unwrap();
    assert_eq!(status, lock_status::SUCCESS);
    assert_eq!(calls(), 3);
    finish(c);

    // Without fstat: lstat, which fails for the unlinked file.
    let dir = TempDir::new("no-fstat");
    std::fs::write(dir.path("f"), b"12345").unwrap();
    let fs = LocalFs::new(dir.root());
    let mut ops = local_ops();
    ops.fstat = None;
    let c = serve_with(&fs, &ops, QRS_P9_MULTIDEVS_WARN);
    let (f, _) = c.walk_new(ROOT, &["f"]).unwrap();
    c.lopen(f, dotl_open::RDONLY).unwrap();
    assert_eq!(c.getattr(f, getattr::BASIC).unwrap().size, 5);
    std::fs::remove_file(dir.path("f")).unwrap();
    assert_eq!(c.getattr(f, getattr::BASIC).unwrap_err(), ENOENT);
    finish(c);
}

fn client_stats_handles(c: &p9_client::Client<CServer>) -> u64 {
    c.transport().stats().open_handles
}

#[test]
fn special_files_are_never_opened() {
    let dir = TempDir::new("fifo");
    let p = CString::new(dir.path("fifo").as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(p.as_ptr(), 0o644) }, 0);
    let fs = LocalFs::new(dir.root());
    let c = serve(&fs);
    let (f, _) = c.walk_new(ROOT, &["fifo"]).unwrap();
    // Opening a FIFO on the host would block: refused.
    assert_eq!(c.lopen(f, dotl_open::RDONLY).unwrap_err(), ENXIO);
    assert_eq!(fs.open_handles.load(Ordering::SeqCst), 0);
    finish(c);
}

#[test]
fn create_mkdir_symlink_mknod_link_readlink() {
    let dir = TempDir::new("create");
    let fs = LocalFs::new(dir.root());
    let c = serve_with(&fs, &local_ops(), QRS_P9_MULTIDEVS_WARN);
    let (uid, gid) = uid_gid();

    // Tlcreate: open2 with O_CREAT, the mode's permission bits, the gid.
    let (f, _) = c.walk_new(ROOT, &[] as &[&str]).unwrap();
    fs.clear_log();
    let (q, _) = c.lcreate(f, "new", dotl_open::RDWR, 0o100640, gid).unwrap();
    let h = lstat(&dir.path("new"));
    assert!(h.is_file());
    assert_eq!(h.mode() & 0o7777, 0o640);
    assert_eq!(q.path, h.ino());
    assert_eq!(
        fs.log(),
        [
            "open2 ./new",
            &format!("open2 creat true mode 640 uid 0 gid {gid}")
        ]
    );
    assert_eq!(c.write(f, 0, b"created").unwrap(), 7);
    assert_eq!(std::fs::read(dir.path("new")).unwrap(), b"created");
    // The fid now is the new file.
    assert_eq!(c.getattr(f, getattr::BASIC).unwrap().qid.path, h.ino());
    let (g, _) = c.walk_new(ROOT, &[] as &[&str]).unwrap();
    assert_eq!(
        c.lcreate(g, "new", dotl_open::RDWR | dotl_open::EXCL, 0o644, gid)
            .unwrap_err(),
        EEXIST
    );

    // Tmkdir.
    let q = c.mkdir(ROOT, "d", 0o750, gid).unwrap();
    let h = lstat(&dir.path("d"));
    assert!(h.is_dir());
    assert_eq!(h.mode() & 0o7777, 0o750);
    assert_eq!((q.path, q.typ), (h.ino(), qid_type::DIR));
    assert_eq!(c.mkdir(ROOT, "d", 0o750, gid).unwrap_err(), EEXIST);
    assert_eq!(c.mkdir(f, "x", 0o750, gid).unwrap_err(), ENOTDIR);

    // Tsymlink + Treadlink.
    let (d, _) = c.walk_new(ROOT, &["d"]).unwrap();
    let q = c.symlink(d, "l", "../target/x", gid).unwrap();
    let h = lstat(&dir.path("d/l"));
    assert!(h.file_type().is_symlink());
    assert_eq!(q.path, h.ino());
    assert_eq!(q.typ, qid_type::SYMLINK);
    assert_eq!(
        std::fs::read_link(dir.path("d/l"))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        b"../target/x"
    );
    let (l, _) = c.walk_new(d, &["l"]).unwrap();
    assert_eq!(c.readlink(l).unwrap(), b"../target/x");
    // A long target (past the first readlink buffer).
    let long = "t/".repeat(1000) + "end";
    c.symlink(d, "long", &long, gid).unwrap();
    let (l2, _) = c.walk_new(d, &["long"]).unwrap();
    assert_eq!(c.readlink(l2).unwrap(), long.as_bytes());
    // Treadlink of a file.
    let (nf, _) = c.walk_new(ROOT, &["new"]).unwrap();
    assert_eq!(c.readlink(nf).unwrap_err(), EINVAL);

    // Tmknod of a FIFO: the mode carries the type.
    fs.clear_log();
    let q = c.mknod(d, "p", libc::S_IFIFO | 0o600, 0, 0, gid).unwrap();
    let h = lstat(&dir.path("d/p"));
    assert!(h.file_type().is_fifo());
    assert_eq!(h.mode() & 0o7777, 0o600);
    assert_eq!(q.path, h.ino());
    assert!(
        fs.log().contains(&"mknod mode 10600 rdev 0".to_string()),
        "{:?}",
        fs.log()
    );

    // Tlink.
    c.link(d, nf, "hard").unwrap();
    let a = lstat(&dir.path("new"));
    let b = lstat(&dir.path("d/hard"));
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.nlink(), 2);
    assert_eq!(c.link(d, nf, "hard").unwrap_err(), EEXIST);
    let _ = uid;
    finish(c);
}

// ----- directories -----

#[test]
fn readdir_sees_every_entry_once_at_any_count() {
    let dir = TempDir::new("readdir");
    let mut want: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for i in 0..60 {
        let name = format!("entry-{i:03}-{}", "x".repeat(i % 37));
        if i % 5 == 0 {
            std::fs::create_dir(dir.path(&name)).unwrap();
        } else {
            std::fs::write(dir.path(&name), b"").unwrap();
        }
        want.insert(name.into_bytes(), 0);
    }
    want.insert(b".".to_vec(), 0);
    want.insert(b"..".to_vec(), 0);
    for (k, v) in want.iter_mut() {
        let p = if k == b"." || k == b".." {
            dir.root().to_path_buf()
        } else {
            dir.path(std::str::from_utf8(k).unwrap())
        };
        *v = lstat(&p).ino();
    }
    let fs = LocalFs::new(dir.root());
    for multidevs in [QRS_P9_MULTIDEVS_WARN, QRS_P9_MULTIDEVS_REMAP] {
        let c = serve_with(&fs, &local_ops(), multidevs);
        let (d, _) = c.walk_new(ROOT, &[] as &[&str]).unwrap();
        c.lopen(d, dotl_open::RDONLY).unwrap();
        // The smallest fits the longest entry (24 + 46 bytes) alone.
        for count in [70u32, 71, 100, 150, 257, 1000, 8192] {
            let got = c.readdir_all_count(d, count).unwrap();
            let mut seen: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
            for e in &got {
                *seen.entry(e.name.as_bytes().to_vec()).or_default() += 1;
                if multidevs == QRS_P9_MULTIDEVS_WARN && e.name.as_bytes() != b".." {
                    assert_eq!(e.qid.path, want[e.name.as_bytes()], "ino of {:?}", e.name);
                }
                let is_dir = e.name.as_bytes().starts_with(b".")
                    || e.name.to_string_lossy().starts_with("entry-")
                        && e.name.to_string_lossy()[6..9].parse::<usize>().unwrap() % 5 == 0;
                assert_eq!(e.typ == libc::DT_DIR, is_dir, "{:?}", e.name);
            }
            assert_eq!(
                seen.keys().collect::<Vec<_>>(),
                want.keys().collect::<Vec<_>>(),
                "count {count}"
            );
            assert!(seen.values().all(|&n| n == 1), "count {count}: {seen:?}");
        }
        // A fid that is not an open directory.
        let (f, _) = c.walk_new(ROOT, &["entry-001-x"]).unwrap();
        assert_eq!(c.readdir(f, 0, 100).unwrap_err(), ENOTDIR);
        finish(c);
    }
}

#[test]
fn readdir_of_a_subdirectory_with_remap() {
    // `.` and `..` of a non-root directory: their attributes come from the
    // directory itself and its parent.
    let dir = TempDir::new("readdir-sub");
    std::fs::create_dir_all(dir.path("a/b")).unwrap();
    std::fs::write(dir.path("a/b/f"), b"").unwrap();
    let fs = LocalFs::new(dir.root());
    let c = serve(&fs);
    let (d, _) = c.walk_new(ROOT, &["a", "b"]).unwrap();
    c.lopen(d, dotl_open::RDONLY).unwrap();
    let got = c.readdir_all_count(d, 4096).unwrap();
    let mut names: Vec<_> = got
        .iter()
        .map(|e| e.name.to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [".", "..", "f"]);
    // In remap mode each qid is derived from the entry's own attributes:
    // `.` is the directory, so it equals the walked qid.
    let self_qid = c.getattr(d, getattr::BASIC).unwrap().qid;
    let dot = got.iter().find(|e| e.name.as_bytes() == b".").unwrap();
    assert_eq!(dot.qid.path, self_qid.path);
    let (p, _) = c.walk_new(ROOT, &["a"]).unwrap();
    let parent_qid = c.getattr(p, getattr::BASIC).unwrap().qid;
    let dotdot = got.iter().find(|e| e.name.as_bytes() == b"..").unwrap();
    assert_eq!(dotdot.qid.path, parent_qid.path);
    finish(c);
}

#[test]
fn statfs_matches_the_host() {
    let dir = TempDir::new("statfs");
    let fs = LocalFs::new(dir.root());
    let c = serve(&fs);
    let st = c.statfs(ROOT).unwrap();
    let p = CString::new(dir.root().as_os_str().as_bytes()).unwrap();
    // SAFETY: an all-zero statfs is a valid value.
    let mut h: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a writable statfs.
    assert_eq!(unsafe { libc::statfs(p.as_ptr(), &mut h) }, 0);
    // SAFETY: fsid_t is two ints.
    let fsid: [i32; 2] = unsafe { std::mem::transmute(h.f_fsid) };
    assert_eq!(st.typ, h.f_type as u32);
    assert_eq!(st.namelen, h.f_namelen as u32);
    assert_eq!(st.files, h.f_files);
    assert_eq!(
        st.fsid,
        (fsid[0] as u32 as u64) | ((fsid[1] as u32 as u64) << 32)
    );
    assert!(st.bsize > 0);
    finish(c);
}

// ----- changes -----

#[test]
fn setattr_mode_times_owner_size_in_order() {
    let dir = TempDir::new("setattr");
    std::fs::write(dir.path("f"), b"some content").unwrap();
    let fs = LocalFs::new(dir.root());
    let c = serve(&fs);
    let (uid, gid) = uid_gid();
    let (f, _) = c.walk_new(ROOT, &["f"]).unwrap();

    // Each alone.
    c.setattr(
        f,
        SetAttr {
            valid: setattr::MODE,
            mode: 0o100604,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(lstat(&dir.path("f")).permissions().mode() & 0o7777, 0o604);
    c.setattr(
        f,
        SetAttr {
            valid: setattr::SIZE,
            size: 4,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(std::fs::read(dir.path("f")).unwrap(), b"some");
    c.setattr(
        f,
        SetAttr {
            valid: setattr::ATIME | setattr::ATIME_SET | setattr::MTIME | setattr::MTIME_SET,
            atime_sec: 1_000_000_000,
            atime_nsec: 123,
            mtime_sec: 1_100_000_000,
            mtime_nsec: 456_789,
            ..Default::default()
        },
    )
    .unwrap();
    let h = lstat(&dir.path("f"));
    assert_eq!((h.atime(), h.atime_nsec()), (1_000_000_000, 123));
    assert_eq!((h.mtime(), h.mtime_nsec()), (1_100_000_000, 456_789));
    let st = c.getattr(f, getattr::ALL).unwrap();
    assert_eq!((st.mtime_sec, st.mtime_nsec), (1_100_000_000, 456_789));
    assert_eq!((st.atime_sec, st.atime_nsec), (1_000_000_000, 123));

    // Only the mtime, to "now": the atime is omitted.
    fs.clear_log();
    c.setattr(
        f,
        SetAttr {
            valid: setattr::MTIME,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(fs.log(), ["utimensat ./f omit now"]);
    let h = lstat(&dir.path("f"));
    assert_eq!(h.atime(), 1_000_000_000);
    assert!(h.mtime() > 1_100_000_000);

    // All at once: 9p.c's order, gid only (uid left as -1).
    fs.clear_log();
    c.setattr(
        f,
        SetAttr {
            valid: setattr::MODE
                | setattr::GID
                | setattr::SIZE
                | setattr::ATIME
                | setattr::ATIME_SET,
            mode: 0o640,
            gid,
            size: 2,
            atime_sec: 5,
            atime_nsec: 6,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        fs.log(),
        [
            "chmod ./f 640".to_string(),
            "utimensat ./f 5.6 omit".to_string(),
            format!("chown ./f -1 {gid}"),
            "truncate ./f 2".to_string(),
        ]
    );
    let h = lstat(&dir.path("f"));
    assert_eq!(h.mode() & 0o7777, 0o640);
    assert_eq!(
        (h.size(), h.atime(), h.atime_nsec(), h.gid()),
        (2, 5, 6, gid)
    );
    // Owner to ourselves works for anyone.
    c.setattr(
        f,
        SetAttr {
            valid: setattr::UID,
            uid,
            ..Default::default()
        },
    )
    .unwrap();
    // Errors pass through: truncating a directory.
    let (d, _) = c.walk_new(ROOT, &[] as &[&str]).unwrap();
    assert_eq!(
        c.setattr(
            d,
            SetAttr {
                valid: setattr::SIZE,
                size: 0,
                ..Default::default()
            }
        )
        .unwrap_err(),
        EISDIR
    );
    finish(c);
}

#[test]
fn xattr_set_get_list_remove() {
    let dir = TempDir::new("xattr");
    std::fs::write(dir.path("f"), b"").unwrap();
    let fs = LocalFs::new(dir.root());
    let c = serve(&fs);
    let (f, _) = c.walk_new(ROOT, &["f"]).unwrap();
    match c.xattr_set(f, "user.k", b"value-1", 0) {
        Ok(()) => {}
        Err(e) if e == EOPNOTSUPP => {
            eprintln!("no user xattrs on this filesystem: skipped");
            finish(c);
            return;
        }
        Err(e) => panic!("xattr_set: {e:?}"),
    }
    let p = CString::new(dir.path("f").as_os_str().as_bytes()).unwrap();
    let n = CString::new("user.k").unwrap();
    let mut buf = [0u8; 64];
    // SAFETY: NUL-terminated strings and a buffer as long as passed.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), 64) };
    assert_eq!(&buf[..r as usize], b"value-1", "host value");
    assert_eq!(c.xattr_get(f, "user.k").unwrap(), b"value-1");
    c.xattr_set(f, "user.other", b"2", 0).unwrap();
    let list = c.xattr_get(f, "").unwrap();
    let mut names: Vec<&[u8]> = list.split(|&b| b == 0).filter(|s| !s.is_empty()).collect();
    names.sort();
    assert_eq!(names, [&b"user.k"[..], b"user.other"]);
    assert_eq!(c.xattr_get(f, "user.missing").unwrap_err(), ENODATA);
    // XATTR_CREATE on an existing name.
    assert_eq!(c.xattr_set(f, "user.k", b"x", 1).unwrap_err(), EEXIST);
    // An empty value removes the attribute.
    fs.clear_log();
    c.xattr_set(f, "user.k", b"", 0).unwrap();
    assert_eq!(fs.log(), ["lremovexattr"]);
    // SAFETY: as above.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), 64) };
    assert_eq!(r, -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::ENODATA)
    );
    finish(c);
}

#[test]
fn xattr_functions_absent_answer_eopnotsupp() {
    let dir = TempDir::new("noxattr");
    std::fs::write(dir.path("f"), b"").unwrap();
    let fs = LocalFs::new(dir.root());
    let mut ops = local_ops();
    ops.lgetxattr = None;
    ops.llistxattr = None;
    ops.lsetxattr = None;
    ops.lremovexattr = None;
    let c = serve_with(&fs, &ops, QRS_P9_MULTIDEVS_WARN);
    let (f, _) = c.walk_new(ROOT, &["f"]).unwrap();
    assert_eq!(c.xattr_get(f, "user.k").unwrap_err(), EOPNOTSUPP);
    assert_eq!(c.xattr_get(f, "").unwrap_err(), EOPNOTSUPP);
    assert_eq!(c.xattr_set(f, "user.k", b"v", 0).unwrap_err(), EOPNOTSUPP);
    finish(c);
}

// ----- renames -----

#[test]
fn renameat_moves_the_fids_under_it() {
    let dir = TempDir::new("renameat");
    std::fs::create_dir_all(dir.path("d1/sub")).unwrap();
    std::fs::create_dir(dir.path("d1x")).unwrap();
    std::fs::create_dir(dir.path("other")).unwrap();
    std::fs::write(dir.path("d1/sub/f"), b"payload").unwrap();
    let fs = LocalFs::new(dir.root());
    let c = serve(&fs);

    let (file, _) = c.walk_new(ROOT, &["d1", "sub", "f"]).unwrap();
    let (sub, _) = c.walk_new(ROOT, &["d1", "sub"]).unwrap();
    let (d1, _) = c.walk_new(ROOT, &["d1"]).unwrap();
    let (d1x, _) = c.walk_new(ROOT, &["d1x"]).unwrap();
    let (open, _) = c.walk_new(ROOT, &["d1", "sub", "f"]).unwrap();
    c.lopen(open, dotl_open::RDONLY).unwrap();
    let (other, _) = c.walk_new(ROOT, &["other"]).unwrap();

    c.renameat(ROOT, "d1", other, "d2").unwrap();
    assert!(!dir.path("d1").exists());
    assert_eq!(
        std::fs::read(dir.path("other/d2/sub/f")).unwrap(),
        b"payload"
    );

    // Path-only fids follow: getattr, walk, open by path.
    let ino = lstat(&dir.path("other/d2/sub/f")).ino();
    assert_eq!(c.getattr(file, getattr::BASIC).unwrap().qid.path, ino);
    let (again, _) = c.walk_new(sub, &["f"]).unwrap();
    assert_eq!(c.getattr(again, getattr::BASIC).unwrap().size, 7);
    c.lopen(file, dotl_open::RDONLY).unwrap();
    assert_eq!(c.read(file, 0, 100).unwrap(), b"payload");
    let (x, _) = c.walk_new(d1, &["sub", "f"]).unwrap();
    assert_eq!(c.getattr(x, getattr::BASIC).unwrap().qid.path, ino);
    // A fid whose path merely starts with the same bytes is untouched.
    assert_eq!(
        c.getattr(d1x, getattr::BASIC).unwrap().qid.path,
        lstat(&dir.path("d1x")).ino()
    );
    // The open fid keeps reading.
    assert_eq!(c.read(open, 0, 3).unwrap(), b"pay");
    // New entries made through a moved fid land in the new place.
    c.mkdir(sub, "made", 0o755, 0).unwrap();
    assert!(dir.path("other/d2/sub/made").is_dir());

    // Errors.
    assert_eq!(c.renameat(ROOT, "missing", ROOT, "y").unwrap_err(), ENOENT);
    std::fs::write(dir.path("other/d2/sub/made/inner"), b"").unwrap();
    std::fs::create_dir(dir.path("full")).unwrap();
    std::fs::write(dir.path("full/x"), b"").unwrap();
    assert_eq!(
        c.renameat(other, "d2", ROOT, "full").unwrap_err(),
        ENOTEMPTY
    );
    finish(c);
}

#[test]
fn trename_moves_the_fids_under_it() {
    let dir = TempDir::new("trename");
    std::fs::create_dir(dir.path("m")).unwrap();
    std::fs::create_dir(dir.path("dest")).unwrap();
    std::fs::write(dir.path("m/file"), b"inside").unwrap();
    std::fs::write(dir.path("top"), b"t").unwrap();
    let fs = LocalFs::new(dir.root());
    let c = serve(&fs);

    let (m, _) = c.walk_new(ROOT, &["m"]).unwrap();
    let (inner, _) = c.walk_new(ROOT, &["m", "file"]).unwrap();
    let (dest, _) = c.walk_new(ROOT, &["dest"]).unwrap();
    // Into another directory.
    c.rename(m, dest, "n").unwrap();
    assert!(!dir.path("m").exists());
    assert_eq!(std::fs::read(dir.path("dest/n/file")).unwrap(), b"inside");
    // The second fid, on a file inside, still works.
    c.lopen(inner, dotl_open::RDWR).unwrap();
    assert_eq!(c.read(inner, 0, 100).unwrap(), b"inside");
    c.write(inner, 0, b"IN").unwrap();
    assert_eq!(std::fs::read(dir.path("dest/n/file")).unwrap(), b"INside");
    // And the renamed fid itself.
    let (again, _) = c.walk_new(m, &["file"]).unwrap();
    assert_eq!(
        c.getattr(again, getattr::BASIC).unwrap().qid.path,
        lstat(&dir.path("dest/n/file")).ino()
    );

    // A top-level file renamed in place (its parent is the root, ".").
    let (top, _) = c.walk_new(ROOT, &["top"]).unwrap();
    let (top2, _) = c.walk_new(ROOT, &["top"]).unwrap();
    c.rename(top, ROOT, "top-renamed").unwrap();
    assert_eq!(std::fs::read(dir.path("top-renamed")).unwrap(), b"t");
    assert_eq!(c.getattr(top2, getattr::BASIC).unwrap().size, 1);
    c.lopen(top2, dotl_open::RDONLY).unwrap();
    assert_eq!(c.read(top2, 0, 10).unwrap(), b"t");

    // Renaming the root is refused.
    let (r, _) = c.walk_new(ROOT, &[] as &[&str]).unwrap();
    assert_eq!(c.rename(r, dest, "root").unwrap_err(), EBUSY);
    finish(c);
}

#[test]
fn trename_without_pathnames_is_eopnotsupp() {
    let dir = TempDir::new("trename-opaque");
    std::fs::write(dir.path("f"), b"").unwrap();
    let fs = LocalFs::new(dir.root());
    let mut ops = local_ops();
    ops.flags = 0;
    let c = serve_with(&fs, &ops, QRS_P9_MULTIDEVS_WARN);
    let (f, _) = c.walk_new(ROOT, &["f"]).unwrap();
    assert_eq!(c.rename(f, ROOT, "g").unwrap_err(), EOPNOTSUPP);
    assert!(dir.path("f").exists());
    // Tremove needs PATHNAMES or a `remove` function.
    let (f, _) = c.walk_new(ROOT, &["f"]).unwrap();
    assert_eq!(c.remove(f).unwrap_err(), EOPNOTSUPP);
    assert!(dir.path("f").exists());
    // Trenameat works (paths are still fixed only with PATHNAMES).
    c.renameat(ROOT, "f", ROOT, "g").unwrap();
    assert!(dir.path("g").exists());
    finish(c);
}

// ----- removal -----

#[test]
fn unlinkat_and_remove() {
    let dir = TempDir::new("unlink");
    std::fs::create_dir_all(dir.path("d/e")).unwrap();
    std::fs::write(dir.path("d/f"), b"").unwrap();
    std::fs::write(dir.path("g"), b"").unwrap();
    std::fs::create_dir(dir.path("empty")).unwrap();
    let fs = LocalFs::new(dir.root());
    let c = serve(&fs);

    let (d, _) = c.walk_new(ROOT, &["d"]).unwrap();
    c.unlinkat(d, "f", 0).unwrap();
    assert!(!dir.path("d/f").exists());
    assert_eq!(c.unlinkat(d, "f", 0).unwrap_err(), ENOENT);
    assert_eq!(c.unlinkat(d, "e", 0).unwrap_err(), EISDIR);
    assert_eq!(c.unlinkat(ROOT, "d", AT_REMOVEDIR).unwrap_err(), ENOTEMPTY);
    c.unlinkat(d, "e", AT_REMOVEDIR).unwrap();
    assert!(!dir.path("d/e").exists());

    // Tremove falls back to unlinkat of the parent and name.
    fs.clear_log();
    let (g, _) = c.walk_new(ROOT, &["g"]).unwrap();
    c.remove(g).unwrap();
    assert!(!dir.path("g").exists());
    let (e, _) = c.walk_new(ROOT, &["empty"]).unwrap();
    c.remove(e).unwrap();
    assert!(!dir.path("empty").exists());
    assert_eq!(
        fs.log(),
        [
            "unlinkat ./g",
            "unlinkat flags 0x0",
            "unlinkat ./empty",
            "unlinkat flags 0x200"
        ]
    );
    // The fid is gone either way; the root cannot be removed.
    assert_eq!(c.getattr(g, getattr::BASIC).unwrap_err(), ENOENT);
    let (r, _) = c.walk_new(ROOT, &[] as &[&str]).unwrap();
    assert_eq!(c.remove(r).unwrap_err(), EBUSY);
    // A fid whose file was unlinked reports ENOENT.
    std::fs::write(dir.path("h"), b"").unwrap();
    let (h, _) = c.walk_new(ROOT, &["h"]).unwrap();
    c.unlinkat(ROOT, "h", 0).unwrap();
    assert_eq!(c.getattr(h, getattr::BASIC).unwrap_err(), ENOENT);
    finish(c);
}

#[test]
fn tremove_uses_the_vtable_remove_when_there_is_one() {
    let dir = TempDir::new("remove-fn");
    std::fs::create_dir(dir.path("d")).unwrap();
    std::fs::write(dir.path("d/f"), b"").unwrap();
    let fs = LocalFs::new(dir.root());
    let mut ops = local_ops();
    ops.remove = Some(remove_fn);
    let c = serve_with(&fs, &ops, QRS_P9_MULTIDEVS_WARN);
    fs.clear_log();
    let (f, _) = c.walk_new(ROOT, &["d", "f"]).unwrap();
    c.remove(f).unwrap();
    assert!(!dir.path("d/f").exists());
    assert_eq!(fs.log(), ["remove ./d/f"]);
    finish(c);
}

// ----- locks -----

#[test]
fn lock_and_getlock() {
    let dir = TempDir::new("lock");
    std::fs::write(dir.path("f"), b"0123456789").unwrap();
    let fs = LocalFs::new(dir.root());
    let c = serve(&fs);
    let (a, _) = c.walk_new(ROOT, &["f"]).unwrap();
    let (b, _) = c.walk_new(ROOT, &["f"]).unwrap();
    c.lopen(a, dotl_open::RDWR).unwrap();
    c.lopen(b, dotl_open::RDWR).unwrap();
    let fl = |typ, start, length| Flock {
        typ,
        flags: 0,
        start,
        length,
        proc_id: 7,
        client_id: "c".into(),
    };
    assert_eq!(
        c.lock(a, &fl(lock_type::WRLCK, 0, 5)).unwrap(),
        lock_status::SUCCESS
    );
    // Another open file conflicts.
    assert_eq!(
        c.lock(b, &fl(lock_type::WRLCK, 2, 1)).unwrap(),
        lock_status::BLOCKED
    );
    assert_eq!(
        c.lock(b, &fl(lock_type::WRLCK, 5, 5)).unwrap(),
        lock_status::SUCCESS
    );
    let gl = |typ, start, length| Getlock {
        typ,
        start,
        length,
        proc_id: 9,
        client_id: "c".into(),
    };
    let r = c.getlock(b, &gl(lock_type::RDLCK, 0, 3)).unwrap();
    assert_eq!(
        (r.typ, r.start, r.length, r.proc_id),
        (lock_type::WRLCK, 0, 5, 4242)
    );
    let r = c.getlock(a, &gl(lock_type::RDLCK, 0, 5)).unwrap();
    assert_eq!(r.typ, lock_type::UNLCK, "own lock is no conflict");
    // Released: b can take it.
    assert_eq!(
        c.lock(a, &fl(lock_type::UNLCK, 0, 5)).unwrap(),
        lock_status::SUCCESS
    );
    assert_eq!(
        c.lock(b, &fl(lock_type::WRLCK, 0, 5)).unwrap(),
        lock_status::SUCCESS
    );
    finish(c);
}

#[test]
fn without_lock_functions_everything_is_granted() {
    let dir = TempDir::new("nolock");
    std::fs::write(dir.path("f"), b"").unwrap();
    let fs = LocalFs::new(dir.root());
    let mut ops = local_ops();
    ops.lock = None;
    ops.getlock = None;
    let c = serve_with(&fs, &ops, QRS_P9_MULTIDEVS_WARN);
    let (a, _) = c.walk_new(ROOT, &["f"]).unwrap();
    let (b, _) = c.walk_new(ROOT, &["f"]).unwrap();
    c.lopen(a, dotl_open::RDWR).unwrap();
    c.lopen(b, dotl_open::RDWR).unwrap();
    let fl = Flock {
        typ: lock_type::WRLCK,
        flags: 0,
        start: 0,
        length: 0,
        proc_id: 1,
        client_id: "c".into(),
    };
    assert_eq!(c.lock(a, &fl).unwrap(), lock_status::SUCCESS);
    assert_eq!(c.lock(b, &fl).unwrap(), lock_status::SUCCESS);
    let gl = Getlock {
        typ: lock_type::WRLCK,
        start: 0,
        length: 0,
        proc_id: 1,
        client_id: "c".into(),
    };
    assert_eq!(c.getlock(b, &gl).unwrap().typ, lock_type::UNLCK);
    finish(c);
}

// ----- long paths -----

#[test]
fn paths_longer_than_path_max() {
    // 20 directories of 240-byte names: the path passes PATH_MAX, so
    // name_to_path is retried with a bigger buffer.
    let dir = TempDir::new("deep");
    let names: Vec<String> = (0..20)
        .map(|i| format!("{i:02}{}", "d".repeat(238)))
        .collect();
    let root = CString::new(dir.root().as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    let mut fd = unsafe { libc::open(root.as_ptr(), libc::O_PATH | libc::O_DIRECTORY) };
    assert!(fd >= 0);
    for n in &names {
        let c = CString::new(n.as_str()).unwrap();
        // SAFETY: a live descriptor and a NUL-terminated name.
        assert_eq!(unsafe { libc::mkdirat(fd, c.as_ptr(), 0o755) }, 0);
        // SAFETY: as above.
        let next = unsafe { libc::openat(fd, c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY) };
        assert!(next >= 0);
        // SAFETY: ours.
        unsafe { libc::close(fd) };
        fd = next;
    }
    let fs = LocalFs::new(dir.root());
    let c = serve(&fs);
    let (mid, q) = c.walk_new(ROOT, &names[..10]).unwrap();
    assert_eq!(q.len(), 10);
    let (deep, q) = c.walk_new(mid, &names[10..]).unwrap();
    assert_eq!(q.len(), 10);
    let (qid, _) = c.lcreate(deep, "leaf", dotl_open::RDWR, 0o644, 0).unwrap();
    c.write(deep, 0, b"deep data").unwrap();
    let leaf = CString::new("leaf").unwrap();
    // SAFETY: an all-zero stat is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a live descriptor, a NUL-terminated name, a writable stat.
    assert_eq!(unsafe { libc::fstatat(fd, leaf.as_ptr(), &mut st, 0) }, 0);
    // SAFETY: ours.
    unsafe { libc::close(fd) };
    assert_eq!(st.st_size, 9);
    let _ = qid;
    // A rename above it fixes the long paths too.
    let (d0, _) = c.walk_new(ROOT, &names[..1]).unwrap();
    c.rename(d0, ROOT, "short").unwrap();
    assert_eq!(c.getattr(deep, getattr::BASIC).unwrap().size, 9);
    finish(c);
}
