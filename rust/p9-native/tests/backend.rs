// SPDX-License-Identifier: GPL-2.0-or-later
//! [`NativeBackend`] driven through the engine's [`Backend`] trait only, on
//! a temporary export under /dev/shm.

mod common;

use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::mpsc;
use std::time::Duration;

use common::{drop_cap, lstat, TempDir, CAP_CHOWN};
use p9_engine::backend::{Backend, Cred, DirEntry, Lock, LockStatus, SetAttr, SetTime, Time};
use p9_native::backend::{NativeHandle, NativeNode};
use p9_native::{NativeBackend, SecurityModel};
use p9_wire::consts::lock_type;
use p9_wire::errno::{
    EBADF, EEXIST, EINVAL, EISDIR, ELOOP, ENODATA, ENOENT, ENOTDIR, ENXIO, EOPNOTSUPP, EPERM,
    ESTALE,
};

const ROOT: Cred = Cred { uid: 0, gid: 0 };

fn setup(tag: &str, model: SecurityModel) -> (TempDir, NativeBackend, NativeNode) {
    let t = TempDir::new(tag);
    let b = NativeBackend::new(&t.export(), model).expect("backend");
    let (root, attr) = b.attach(b"", &ROOT).expect("attach");
    assert_eq!(attr.ino, lstat(&t.export()).ino());
    assert_eq!(attr.mode & libc::S_IFMT, libc::S_IFDIR);
    (t, b, root)
}

fn walk1(b: &NativeBackend, dir: &NativeNode, name: &str) -> NativeNode {
    let mut v = b.walk(dir, &[name.as_bytes()]).expect("walk");
    assert_eq!(v.len(), 1);
    v.pop().expect("one step").0
}

fn read_all(b: &NativeBackend, h: &NativeHandle) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = b
        .read(h, 0, &mut [IoSliceMut::new(&mut buf)])
        .expect("read");
    buf.truncate(n);
    buf
}

#[test]
fn walk_several_partial_and_failing() {
    let (t, b, root) = setup("walk", SecurityModel::Passthrough);
    std::fs::create_dir_all(t.export().join("a/b/c")).unwrap();
    let names: [&[u8]; 3] = [b"a", b"b", b"c"];
    let v = b.walk(&root, &names).unwrap();
    assert_eq!(v.len(), 3);
    assert_eq!(v[0].1.ino, lstat(&t.export().join("a")).ino());
    assert_eq!(v[1].1.ino, lstat(&t.export().join("a/b")).ino());
    assert_eq!(v[2].1.ino, lstat(&t.export().join("a/b/c")).ino());
    assert_eq!(b.getattr(&v[2].0).unwrap().ino, v[2].1.ino);

    // Second name missing: only the first step.
    let v = b.walk(&root, &[b"a", b"missing", b"c"]).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].1.ino, lstat(&t.export().join("a")).ino());
    // First name missing: an error.
    assert_eq!(b.walk(&root, &[b"missing", b"a"]).unwrap_err(), ENOENT);
    // Walking from a file.
    std::fs::write(t.export().join("f"), b"x").unwrap();
    let f = walk1(&b, &root, "f");
    assert_eq!(b.walk(&f, &[b"x"]).unwrap_err(), ENOTDIR);
    // No names: nothing.
    assert!(b.walk(&root, &[]).unwrap().is_empty());

    // `.` and `..`.
    let root_ino = lstat(&t.export()).ino();
    let v = b.walk(&root, &[b"a", b"b", b"..", b".", b".."]).unwrap();
    assert_eq!(v.len(), 5);
    assert_eq!(v[2].1.ino, v[0].1.ino);
    assert_eq!(v[3].1.ino, v[0].1.ino);
    assert_eq!(v[4].1.ino, root_ino);
    let clone = b.clone_node(&v[1].0).unwrap();
    assert_eq!(b.getattr(&clone).unwrap().ino, v[1].1.ino);
}

#[test]
fn dotdot_at_root_and_symlinks_never_leave_the_export() {
    let (t, b, root) = setup("escape", SecurityModel::Passthrough);
    let outside = t.outside();
    std::fs::write(outside.join("secret"), b"s").unwrap();
    let root_ino = lstat(&t.export()).ino();

    let v = b.walk(&root, &[b"..", b"..", b".."]).unwrap();
    assert_eq!(v.len(), 3);
    assert!(v.iter().all(|(_, a)| a.ino == root_ino));
    // `..` then the sibling of the export: stays inside, so not found.
    let v = b.walk(&root, &[b"..", b"outside", b"secret"]).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].1.ino, root_ino);

    std::os::unix::fs::symlink("/", t.export().join("abs")).unwrap();
    std::os::unix::fs::symlink("../..", t.export().join("up")).unwrap();
    std::os::unix::fs::symlink("../outside", t.export().join("out")).unwrap();
    for name in ["abs", "up", "out"] {
        // The link itself is reached...
        let v = b.walk(&root, &[name.as_bytes()]).unwrap();
        assert_eq!(v[0].1.mode & libc::S_IFMT, libc::S_IFLNK, "{name}");
        // ...but never followed.
        let v = b
            .walk(&root, &[name.as_bytes(), b"outside", b"secret"])
            .unwrap();
        assert_eq!(v.len(), 1, "{name}");
        let e = b.walk(&v[0].0, &[b"secret"]).unwrap_err();
        assert!(e == ENOTDIR || e == ELOOP, "{name}: {e:?}");
        assert_eq!(b.walk(&v[0].0, &[b".."]).unwrap_err(), ENOTDIR);
        assert_eq!(b.open(&v[0].0, libc::O_RDONLY).unwrap_err(), ELOOP);
        // QEMU: open(O_DIRECTORY | O_NOFOLLOW) of a symlink is ENOTDIR.
        assert_eq!(b.opendir(&v[0].0).unwrap_err(), ENOTDIR);
    }
}

#[test]
fn create_write_read_round_trip() {
    let (t, b, root) = setup("io", SecurityModel::Passthrough);
    let (f, h, attr) = b
        .create(&root, b"f", libc::O_RDWR, 0o640, &Cred { uid: 12, gid: 34 })
        .unwrap();
    assert_eq!(attr.mode, libc::S_IFREG | 0o640);
    assert_eq!((attr.uid, attr.gid), (12, 34));
    let host = lstat(&t.export().join("f"));
    assert_eq!(host.mode(), libc::S_IFREG | 0o640);
    assert_eq!((host.uid(), host.gid()), (12, 34));

    let n = b
        .write(
            &h,
            0,
            &[
                IoSlice::new(b"hello "),
                IoSlice::new(b""),
                IoSlice::new(b"world"),
            ],
        )
        .unwrap();
    assert_eq!(n, 11);
    let n = b.write(&h, 11, &[IoSlice::new(b"!")]).unwrap();
    assert_eq!(n, 1);
    let (mut a, mut c) = ([0u8; 3], [0u8; 20]);
    let n = b
        .read(
            &h,
            0,
            &mut [IoSliceMut::new(&mut a), IoSliceMut::new(&mut c)],
        )
        .unwrap();
    assert_eq!(n, 12);
    assert_eq!(&a, b"hel");
    assert_eq!(&c[..9], b"lo world!");
    // Offset read, and at end of file.
    let mut d = [0u8; 4];
    assert_eq!(b.read(&h, 6, &mut [IoSliceMut::new(&mut d)]).unwrap(), 4);
    assert_eq!(&d, b"worl");
    assert_eq!(b.read(&h, 100, &mut [IoSliceMut::new(&mut d)]).unwrap(), 0);
    b.fsync(&h, false).unwrap();
    b.fsync(&h, true).unwrap();
    assert_eq!(
        std::fs::read(t.export().join("f")).unwrap(),
        b"hello world!"
    );
    assert_eq!(b.getattr(&f).unwrap().size, 12);

    // A second open, read-only: reads, refuses writes.
    let f2 = walk1(&b, &root, "f");
    let r = b.open(&f2, libc::O_RDONLY).unwrap();
    assert_eq!(read_all(&b, &r), b"hello world!");
    assert_eq!(b.write(&r, 0, &[IoSlice::new(b"x")]).unwrap_err(), EBADF);

    // Create without O_EXCL opens the existing file; with it, EEXIST.
    let (_, h3, a3) = b.create(&root, b"f", libc::O_RDONLY, 0o600, &ROOT).unwrap();
    assert_eq!(a3.ino, attr.ino);
    assert_eq!(read_all(&b, &h3), b"hello world!");
    let excl = b.create(&root, b"f", libc::O_RDWR | libc::O_EXCL, 0o600, &ROOT);
    assert_eq!(excl.err(), Some(EEXIST));
    assert_eq!(
        b.create(&root, b".", libc::O_RDWR, 0o600, &ROOT).err(),
        Some(EEXIST)
    );

    // Directory handles: no data I/O, but fsync works.
    let dh = b.opendir(&root).unwrap();
    assert_eq!(read_all_err(&b, &dh), EISDIR);
    assert_eq!(b.write(&dh, 0, &[IoSlice::new(b"x")]).unwrap_err(), EISDIR);
    b.fsync(&dh, false).unwrap();
    // open() of a directory gives a directory handle too.
    let dh2 = b.open(&root, libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
    assert!(dh2.is_dir());
    assert_eq!(b.opendir(&f).unwrap_err(), ENOTDIR);
    // readdir on a file handle.
    assert_eq!(
        b.readdir(&root, &h, 0, false, &mut |_: &DirEntry<'_>| true)
            .unwrap_err(),
        EBADF
    );
}

fn read_all_err(b: &NativeBackend, h: &NativeHandle) -> p9_wire::errno::Errno {
    let mut buf = [0u8; 8];
    b.read(h, 0, &mut [IoSliceMut::new(&mut buf)]).unwrap_err()
}

/// FIFOs and devices made through the trait are never opened, and opening
/// them never blocks (a FIFO without writer would).
#[test]
fn special_files_are_refused_without_blocking() {
    let (t, b, root) = setup("special", SecurityModel::Passthrough);
    let fifo = b
        .mknod(&root, b"fifo", libc::S_IFIFO | 0o644, 0, &ROOT)
        .unwrap();
    assert_eq!(fifo.mode, libc::S_IFIFO | 0o644);
    let rdev = libc::makedev(1, 3);
    let chr = b
        .mknod(&root, b"null", libc::S_IFCHR | 0o666, rdev, &ROOT)
        .unwrap();
    assert_eq!(chr.mode, libc::S_IFCHR | 0o666);
    assert_eq!(chr.rdev, rdev);
    assert_eq!(lstat(&t.export().join("null")).rdev(), rdev);

    let (tx, rx) = mpsc::channel();
    let export = t.export();
    std::thread::spawn(move || {
        let b = NativeBackend::new(&export, SecurityModel::Passthrough).unwrap();
        let (root, _) = b.attach(b"", &ROOT).unwrap();
        let mut errs = Vec::new();
        for name in ["fifo", "null"] {
            let n = walk1(&b, &root, name);
            for flags in [libc::O_RDONLY, libc::O_WRONLY, libc::O_RDWR] {
                errs.push(b.open(&n, flags).err());
            }
            errs.push(b.opendir(&n).err());
            // Truncating opens too: refused the same way.
            let set = SetAttr {
                size: Some(0),
                ..SetAttr::default()
            };
            errs.push(b.setattr(&n, None, &set).err());
        }
        let _ = tx.send(errs);
    });
    let errs = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("opening a special file blocked");
    assert_eq!(errs.len(), 10);
    assert!(errs.iter().all(|e| *e == Some(ENXIO)), "{errs:?}");
    // Creating over a special file does not open it either.
    assert_eq!(
        b.create(&root, b"fifo", libc::O_RDONLY, 0o644, &ROOT).err(),
        Some(ENXIO)
    );
}

#[test]
fn setattr_mode_owner_size_times() {
    let (t, b, root) = setup("setattr", SecurityModel::Passthrough);
    let (f, h, _) = b.create(&root, b"f", libc::O_RDWR, 0o644, &ROOT).unwrap();
    let path = t.export().join("f");

    let set = |s: SetAttr| b.setattr(&f, None, &s);
    set(SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    })
    .unwrap();
    assert_eq!(lstat(&path).permissions().mode() & 0o7777, 0o600);
    set(SetAttr {
        uid: Some(1234),
        gid: Some(5678),
        ..SetAttr::default()
    })
    .unwrap();
    let a = b.getattr(&f).unwrap();
    assert_eq!((a.uid, a.gid), (1234, 5678));
    set(SetAttr {
        gid: Some(42),
        ..SetAttr::default()
    })
    .unwrap();
    let a = b.getattr(&f).unwrap();
    assert_eq!((a.uid, a.gid), (1234, 42));

    // Owner and set-id mode in one request: the mode survives the chown.
    set(SetAttr {
        mode: Some(0o4755),
        uid: Some(7),
        ..SetAttr::default()
    })
    .unwrap();
    assert_eq!(b.getattr(&f).unwrap().mode, libc::S_IFREG | 0o4755);

    // Size without a handle.
    b.write(&h, 0, &[IoSlice::new(&[7u8; 100])]).unwrap();
    set(SetAttr {
        size: Some(30),
        ..SetAttr::default()
    })
    .unwrap();
    assert_eq!(lstat(&path).len(), 30);

    // Times.
    let at = |sec, nsec| SetTime::At(Time { sec, nsec });
    set(SetAttr {
        atime: at(100, 5),
        mtime: at(200, 7),
        ..SetAttr::default()
    })
    .unwrap();
    let a = b.getattr(&f).unwrap();
    assert_eq!(a.atime, Time { sec: 100, nsec: 5 });
    assert_eq!(a.mtime, Time { sec: 200, nsec: 7 });
    set(SetAttr {
        atime: SetTime::Omit,
        mtime: SetTime::Now,
        ..SetAttr::default()
    })
    .unwrap();
    let a = b.getattr(&f).unwrap();
    assert_eq!(a.atime, Time { sec: 100, nsec: 5 });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((a.mtime.sec - now).abs() < 60, "{:?}", a.mtime);
    // Size and times together: the requested mtime wins.
    set(SetAttr {
        size: Some(3),
        mtime: at(300, 0),
        ..SetAttr::default()
    })
    .unwrap();
    let a = b.getattr(&f).unwrap();
    assert_eq!((a.size, a.mtime), (3, Time { sec: 300, nsec: 0 }));
    assert_eq!(
        set(SetAttr {
            atime: at(1, 1_000_000_000),
            ..SetAttr::default()
        })
        .unwrap_err(),
        EINVAL
    );

    // Truncate through the handle of an open but unlinked file.
    let (u, uh, _) = b.create(&root, b"u", libc::O_RDWR, 0o644, &ROOT).unwrap();
    b.write(&uh, 0, &[IoSlice::new(&[1u8; 100])]).unwrap();
    b.unlink(&root, b"u", false).unwrap();
    assert!(!t.export().join("u").exists());
    b.setattr(
        &u,
        Some(&uh),
        &SetAttr {
            size: Some(10),
            mode: Some(0o640),
            ..SetAttr::default()
        },
    )
    .unwrap();
    let a = b.getattr(&u).unwrap();
    assert_eq!((a.size, a.nlink, a.mode), (10, 0, libc::S_IFREG | 0o640));
    let mut buf = [0u8; 64];
    assert_eq!(
        b.read(&uh, 0, &mut [IoSliceMut::new(&mut buf)]).unwrap(),
        10
    );

    // A directory cannot be truncated.
    assert_eq!(
        b.setattr(
            &root,
            None,
            &SetAttr {
                size: Some(0),
                ..SetAttr::default()
            }
        )
        .unwrap_err(),
        EISDIR
    );
}

/// Without CAP_CHOWN: `none` ignores the failing chown of a new file,
/// `passthrough` fails the create (and removes the file); an explicit
/// chown fails in both, as in QEMU.
#[test]
fn security_models_and_chown_failures() {
    for model in [SecurityModel::None, SecurityModel::Passthrough] {
        let (t, b, root) = setup("models", model);
        let other = Cred {
            uid: 4321,
            gid: 4321,
        };
        let _guard = drop_cap(CAP_CHOWN);
        let r = b.create(&root, b"f", libc::O_RDWR, 0o640, &other);
        let m = b.mkdir(&root, b"d", 0o750, &other);
        match model {
            SecurityModel::None => {
                let (f, _, a) = r.unwrap();
                assert_eq!((a.uid, a.mode), (0, libc::S_IFREG | 0o640));
                assert_eq!(m.unwrap().mode, libc::S_IFDIR | 0o750);
                let e = b
                    .setattr(
                        &f,
                        None,
                        &SetAttr {
                            uid: Some(99),
                            ..SetAttr::default()
                        },
                    )
                    .unwrap_err();
                assert_eq!(e, EPERM);
            }
            SecurityModel::Passthrough => {
                assert_eq!(r.err(), Some(EPERM));
                assert_eq!(m.unwrap_err(), EPERM);
                assert!(!t.export().join("f").exists());
                assert!(!t.export().join("d").exists());
            }
            _ => unreachable!("only the two models above"),
        }
    }
}

#[test]
fn mkdir_symlink_readlink_mknod_link() {
    let (t, b, root) = setup("dirops", SecurityModel::Passthrough);
    let cred = Cred {
        uid: 1000,
        gid: 1001,
    };
    let d = b.mkdir(&root, b"d", 0o750, &cred).unwrap();
    assert_eq!(d.mode, libc::S_IFDIR | 0o750);
    assert_eq!((d.uid, d.gid), (1000, 1001));
    let host = lstat(&t.export().join("d"));
    assert_eq!((host.ino(), host.mode()), (d.ino, libc::S_IFDIR | 0o750));
    assert_eq!(b.mkdir(&root, b"d", 0o750, &cred).unwrap_err(), EEXIST);
    assert_eq!(b.mkdir(&root, b"..", 0o750, &cred).unwrap_err(), EEXIST);

    let dn = walk1(&b, &root, "d");
    let s = b.symlink(&dn, b"s", b"../target/x", &cred).unwrap();
    assert_eq!(s.mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!((s.uid, s.gid), (1000, 1001));
    assert_eq!(
        std::fs::read_link(t.export().join("d/s")).unwrap(),
        std::path::Path::new("../target/x")
    );
    let sn = walk1(&b, &dn, "s");
    assert_eq!(b.readlink(&sn).unwrap(), b"../target/x");
    assert_eq!(b.readlink(&dn).unwrap_err(), EINVAL);

    let sock = b
        .mknod(&dn, b"sock", libc::S_IFSOCK | 0o600, 0, &cred)
        .unwrap();
    assert_eq!(sock.mode, libc::S_IFSOCK | 0o600);
    assert_eq!(sock.uid, 1000);

    let (f, _, fa) = b.create(&root, b"f", libc::O_RDWR, 0o644, &ROOT).unwrap();
    assert_eq!(fa.nlink, 1);
    b.link(&f, &dn, b"g").unwrap();
    assert_eq!(b.getattr(&f).unwrap().nlink, 2);
    assert_eq!(lstat(&t.export().join("d/g")).ino(), fa.ino);
    assert_eq!(b.link(&f, &dn, b"g").unwrap_err(), EEXIST);
    // A hard link to a symbolic link is the link itself.
    b.link(&sn, &root, b"s2").unwrap();
    assert_eq!(lstat(&t.export().join("s2")).ino(), s.ino);
}

#[test]
fn rename_keeps_nodes_usable() {
    let (t, b, root) = setup("rename", SecurityModel::Passthrough);
    let (f, h, fa) = b.create(&root, b"f", libc::O_RDWR, 0o644, &ROOT).unwrap();
    b.write(&h, 0, &[IoSlice::new(b"abc")]).unwrap();
    b.mkdir(&root, b"d", 0o755, &ROOT).unwrap();
    let d = walk1(&b, &root, "d");
    b.mkdir(&d, b"sub", 0o755, &ROOT).unwrap();
    let sub = walk1(&b, &d, "sub");

    b.rename(&root, b"f", &d, b"g").unwrap();
    assert!(!t.export().join("f").exists());
    assert_eq!(b.getattr(&f).unwrap().ino, fa.ino);
    let h2 = b.open(&f, libc::O_RDONLY).unwrap();
    assert_eq!(read_all(&b, &h2), b"abc");
    assert_eq!(walk1(&b, &d, "g").ino(&b), fa.ino);

    // Renaming a directory keeps nodes beneath it working, and `..`
    // follows the move.
    b.rename(&root, b"d", &root, b"e").unwrap();
    b.mkdir(&sub, b"inner", 0o755, &ROOT).unwrap();
    assert!(t.export().join("e/sub/inner").is_dir());
    let v = b.walk(&sub, &[b".."]).unwrap();
    assert_eq!(v[0].1.ino, lstat(&t.export().join("e")).ino());

    assert_eq!(b.rename(&root, b"nope", &root, b"x").unwrap_err(), ENOENT);
    assert_eq!(b.rename(&root, b".", &root, b"x").unwrap_err(), EISDIR);
}

trait InoOf {
    fn ino(&self, b: &NativeBackend) -> u64;
}

impl InoOf for NativeNode {
    fn ino(&self, b: &NativeBackend) -> u64 {
        b.getattr(self).unwrap().ino
    }
}

#[test]
fn unlink_and_rmdir_flag() {
    let (t, b, root) = setup("unlink", SecurityModel::Passthrough);
    b.create(&root, b"f", libc::O_RDWR, 0o644, &ROOT).unwrap();
    b.mkdir(&root, b"d", 0o755, &ROOT).unwrap();
    assert_eq!(b.unlink(&root, b"d", false).unwrap_err(), EISDIR);
    assert_eq!(b.unlink(&root, b"f", true).unwrap_err(), ENOTDIR);
    b.unlink(&root, b"f", false).unwrap();
    b.unlink(&root, b"d", true).unwrap();
    assert!(!t.export().join("f").exists());
    assert!(!t.export().join("d").exists());
    assert_eq!(b.unlink(&root, b"f", false).unwrap_err(), ENOENT);
    assert_eq!(b.unlink(&root, b".", true).unwrap_err(), EINVAL);
}

#[test]
fn remove_checks_the_name_still_is_the_node() {
    let (t, b, root) = setup("remove", SecurityModel::Passthrough);
    let ex = t.export();
    // As QEMU's unlinkat(dirfd, ".", AT_REMOVEDIR).
    assert_eq!(b.remove(&root).unwrap_err(), EINVAL);
    // `..` back to the root is the root too.
    let v = b.walk(&root, &[b".."]).unwrap();
    assert_eq!(b.remove(&v[0].0).unwrap_err(), EINVAL);

    // A file from create, a file and a directory from walk.
    let (f, _, _) = b.create(&root, b"f", libc::O_RDWR, 0o644, &ROOT).unwrap();
    b.remove(&f).unwrap();
    assert!(!ex.join("f").exists());
    std::fs::write(ex.join("g"), b"").unwrap();
    std::fs::create_dir(ex.join("d")).unwrap();
    b.remove(&walk1(&b, &root, "g")).unwrap();
    b.remove(&walk1(&b, &root, "d")).unwrap();
    assert!(!ex.join("g").exists() && !ex.join("d").exists());

    // A directory reached by `..` (no name recorded): found by its inode.
    std::fs::create_dir_all(ex.join("p/q")).unwrap();
    let v = b.walk(&root, &[b"p", b"q", b"..", b"."]).unwrap();
    assert_eq!(v.len(), 4);
    assert_eq!(b.remove(&v[3].0).unwrap_err(), p9_wire::errno::ENOTEMPTY);
    b.remove(&v[1].0).unwrap();
    b.remove(&v[3].0).unwrap();
    assert!(!ex.join("p").exists());

    // The name now refers to another file: ESTALE, nothing removed.
    std::fs::write(ex.join("x"), b"old").unwrap();
    let x = walk1(&b, &root, "x");
    std::fs::rename(ex.join("x"), ex.join("y")).unwrap();
    std::fs::write(ex.join("x"), b"new").unwrap();
    assert_eq!(b.remove(&x).unwrap_err(), ESTALE);
    assert_eq!(std::fs::read(ex.join("x")).unwrap(), b"new");
    assert!(ex.join("y").exists());
    // The name is gone: ENOENT.
    std::fs::write(ex.join("z"), b"").unwrap();
    let z = walk1(&b, &root, "z");
    std::fs::remove_file(ex.join("z")).unwrap();
    assert_eq!(b.remove(&z).unwrap_err(), ENOENT);
    // Removed twice through clones: the second finds nothing.
    std::fs::write(ex.join("w"), b"").unwrap();
    let w = walk1(&b, &root, "w");
    let w2 = b.clone_node(&w).unwrap();
    b.remove(&w).unwrap();
    assert_eq!(b.remove(&w2).unwrap_err(), ENOENT);
}

#[test]
fn statfs_is_sane() {
    let (_t, b, root) = setup("statfs", SecurityModel::Passthrough);
    let s = b.statfs(&root).unwrap();
    assert_eq!(s.typ, libc::TMPFS_MAGIC as u32);
    assert!(s.bsize > 0);
    assert_eq!(s.namelen, 255);
    assert!(s.bfree <= s.blocks && s.bavail <= s.blocks);
    assert!(s.ffree <= s.files);
}

/// What [`read_dir_in_steps`] saw of one entry: name, ino, attributes.
type Seen = (Vec<u8>, u64, Option<p9_engine::backend::Attr>);

fn read_dir_in_steps(
    b: &NativeBackend,
    h: &NativeHandle,
    per_call: usize,
    want_attr: bool,
) -> (Vec<Seen>, usize) {
    let mut out = Vec::new();
    let mut offset = 0u64;
    let mut calls = 0;
    // The native backend reads through the handle alone; any node will do.
    let (node, _) = b.attach(b"", &Default::default()).unwrap();
    loop {
        calls += 1;
        assert!(calls < 10_000, "readdir does not progress");
        let mut got = 0;
        b.readdir(&node, h, offset, want_attr, &mut |e: &DirEntry<'_>| {
            if got == per_call {
                return false;
            }
            got += 1;
            assert_eq!(e.attr.is_some(), want_attr);
            out.push((e.name.to_vec(), e.ino, e.attr));
            offset = e.next;
            true
        })
        .unwrap();
        if got == 0 {
            return (out, calls);
        }
    }
}

#[test]
fn readdir_resumes_without_loss_or_repeat() {
    const N: usize = 1000;
    let (t, b, root) = setup("readdir", SecurityModel::Passthrough);
    let d = t.export().join("big");
    std::fs::create_dir(&d).unwrap();
    let names: Vec<String> = (0..N)
        .map(|i| format!("entry-{i:04}-{}", "x".repeat(i % 41)))
        .collect();
    for n in &names {
        std::fs::write(d.join(n), b"").unwrap();
    }
    std::os::unix::fs::symlink("/", d.join("link")).unwrap();
    let dn = walk1(&b, &root, "big");
    let h = b.opendir(&dn).unwrap();

    for want_attr in [false, true] {
        let (seen, calls) = read_dir_in_steps(&b, &h, 7, want_attr);
        assert!(calls >= (N + 3) / 7, "{calls}");
        let mut count: HashMap<Vec<u8>, usize> = HashMap::new();
        for (name, ino, attr) in &seen {
            *count.entry(name.clone()).or_default() += 1;
            if let Some(a) = attr {
                assert_eq!(a.ino, *ino, "{}", String::from_utf8_lossy(name));
            }
            let host = match &name[..] {
                b"." => lstat(&d),
                b".." => lstat(&t.export()),
                n => lstat(&d.join(std::str::from_utf8(n).unwrap())),
            };
            assert_eq!(*ino, host.ino());
            if let Some(a) = attr {
                assert_eq!(a.mode, host.mode());
            }
        }
        for n in &names {
            assert_eq!(count.get(n.as_bytes()), Some(&1), "{n}");
        }
        for n in [&b"."[..], b"..", b"link"] {
            assert_eq!(count.get(n), Some(&1));
        }
        assert_eq!(count.len(), N + 3);
    }

    // A refused entry comes again; a sink that refuses everything gets
    // the same first entry each time.
    let mut first = Vec::new();
    for _ in 0..2 {
        let mut calls = 0;
        b.readdir(&root, &h, 0, false, &mut |e: &DirEntry<'_>| {
            calls += 1;
            if first.len() < 2 {
                first.push(e.name.to_vec());
            }
            false
        })
        .unwrap();
        assert_eq!(calls, 1);
    }
    assert_eq!(first[0], first[1]);

    // `..` of the export root is the root, not the host directory above.
    let rh = b.opendir(&root).unwrap();
    let root_ino = lstat(&t.export()).ino();
    let mut dotdot = None;
    b.readdir(&root, &rh, 0, true, &mut |e: &DirEntry<'_>| {
        if e.name == b".." {
            dotdot = Some((e.ino, e.attr.map(|a| a.ino)));
        }
        true
    })
    .unwrap();
    assert_eq!(dotdot, Some((root_ino, Some(root_ino))));

    // Entries removed after the directory was read are skipped with
    // attributes (they cannot be stat'ed), listed without.
    let sd = t.export().join("small");
    std::fs::create_dir(&sd).unwrap();
    for n in ["a", "b", "c"] {
        std::fs::write(sd.join(n), b"").unwrap();
    }
    let sh = b.opendir(&walk1(&b, &root, "small")).unwrap();
    let (all, _) = read_dir_in_steps(&b, &sh, 100, false);
    assert_eq!(all.len(), 5);
    std::fs::remove_file(sd.join("b")).unwrap();
    let (after, _) = read_dir_in_steps(&b, &sh, 100, true);
    assert!(after.iter().all(|(n, _, _)| n != b"b"));
    assert_eq!(after.len(), 4);
}

#[test]
fn xattrs_follow_the_model_policy() {
    for model in [SecurityModel::None, SecurityModel::Passthrough] {
        let (t, b, root) = setup("xattr", model);
        let (f, _, _) = b.create(&root, b"f", libc::O_RDWR, 0o644, &ROOT).unwrap();
        b.setxattr(&f, b"user.k", b"value", 0).unwrap();
        assert_eq!(
            b.setxattr(&f, b"user.k", b"v2", libc::XATTR_CREATE as u32)
                .unwrap_err(),
            EEXIST
        );
        assert_eq!(b.getxattr(&f, b"user.k", &mut []).unwrap(), 5);
        let mut buf = [0u8; 16];
        let n = b.getxattr(&f, b"user.k", &mut buf).unwrap();
        assert_eq!(&buf[..n], b"value");
        let size = b.listxattr(&f, &mut []).unwrap();
        let mut list = vec![0u8; size];
        let n = b.listxattr(&f, &mut list).unwrap();
        assert_eq!(&list[..n], b"user.k\0");

        // Namespaces the model does not pass through, even as root.
        for name in [&b"trusted.x"[..], b"security.capability"] {
            assert_eq!(b.setxattr(&f, name, b"v", 0).unwrap_err(), EOPNOTSUPP);
            assert_eq!(b.getxattr(&f, name, &mut buf).unwrap_err(), EOPNOTSUPP);
            assert_eq!(b.removexattr(&f, name).unwrap_err(), EOPNOTSUPP);
        }
        let mut host = [0u8; 256];
        let c = common::cstr(&t.export().join("f"));
        // SAFETY: `c` is NUL-terminated; `host` is writable for its length.
        let r = unsafe { libc::listxattr(c.as_ptr(), host.as_mut_ptr().cast(), host.len()) };
        assert_eq!(&host[..r as usize], b"user.k\0");

        b.removexattr(&f, b"user.k").unwrap();
        assert_eq!(b.getxattr(&f, b"user.k", &mut buf).unwrap_err(), ENODATA);
        assert_eq!(b.listxattr(&f, &mut []).unwrap(), 0);
    }
}

#[test]
fn ofd_locks_conflict_between_handles() {
    let (_t, b, root) = setup("lock", SecurityModel::Passthrough);
    let (f, h1, _) = b.create(&root, b"f", libc::O_RDWR, 0o644, &ROOT).unwrap();
    let h2 = b.open(&f, libc::O_RDWR).unwrap();
    let lk = |typ, start, length| Lock {
        typ,
        start,
        length,
        proc_id: 77,
    };
    use lock_type::{RDLCK, UNLCK, WRLCK};

    assert_eq!(b.lock(&h1, &lk(WRLCK, 0, 10)).unwrap(), LockStatus::Success);
    // The same handle never conflicts with itself.
    assert_eq!(b.lock(&h1, &lk(WRLCK, 5, 10)).unwrap(), LockStatus::Success);
    assert_eq!(b.getlock(&h1, &lk(WRLCK, 0, 0)).unwrap(), None);
    assert_eq!(b.lock(&h2, &lk(WRLCK, 5, 5)).unwrap(), LockStatus::Blocked);
    assert_eq!(b.lock(&h2, &lk(RDLCK, 14, 1)).unwrap(), LockStatus::Blocked);
    let c = b.getlock(&h2, &lk(RDLCK, 0, 0)).unwrap().expect("conflict");
    assert_eq!((c.typ, c.start, c.length), (WRLCK, 0, 15));
    // l_pid -1: an OFD lock
    assert_eq!(c.proc_id, u32::MAX);
    // UNLCK (what Linux's client sends for F_GETLK) tests as a write lock.
    let c = b.getlock(&h2, &lk(UNLCK, 0, 0)).unwrap().expect("conflict");
    assert_eq!((c.typ, c.start, c.length), (WRLCK, 0, 15));
    // Beyond the range: free.
    assert_eq!(b.lock(&h2, &lk(WRLCK, 15, 5)).unwrap(), LockStatus::Success);

    assert_eq!(b.lock(&h1, &lk(UNLCK, 0, 0)).unwrap(), LockStatus::Success);
    assert_eq!(b.getlock(&h2, &lk(WRLCK, 0, 0)).unwrap(), None);
    assert_eq!(b.lock(&h2, &lk(WRLCK, 5, 10)).unwrap(), LockStatus::Success);
    let c = b.getlock(&h1, &lk(WRLCK, 0, 0)).unwrap().expect("conflict");
    assert_eq!((c.typ, c.start, c.length), (WRLCK, 5, 15));

    // Length 0: to end of file, however far.
    assert_eq!(b.lock(&h2, &lk(UNLCK, 0, 0)).unwrap(), LockStatus::Success);
    assert_eq!(
        b.lock(&h1, &lk(RDLCK, 100, 0)).unwrap(),
        LockStatus::Success
    );
    assert_eq!(
        b.lock(&h2, &lk(RDLCK, 1 << 40, 1)).unwrap(),
        LockStatus::Success
    );
    assert_eq!(
        b.lock(&h2, &lk(WRLCK, 1 << 40, 1)).unwrap(),
        LockStatus::Blocked
    );
    assert_eq!(
        b.lock(&h2, &lk(WRLCK, 0, 100)).unwrap(),
        LockStatus::Success
    );

    // Bad type, bad range, write lock through a read-only handle.
    assert_eq!(b.lock(&h1, &lk(9, 0, 0)).unwrap_err(), EINVAL);
    assert_eq!(b.lock(&h1, &lk(WRLCK, u64::MAX, 1)).unwrap_err(), EINVAL);
    let ro = b.open(&f, libc::O_RDONLY).unwrap();
    assert_eq!(b.lock(&ro, &lk(WRLCK, 0, 0)).unwrap_err(), EBADF);
    // Dropping a handle releases its locks.
    drop(h1);
    assert_eq!(b.lock(&h2, &lk(WRLCK, 0, 0)).unwrap(), LockStatus::Success);
}
