// SPDX-License-Identifier: GPL-2.0-or-later
//! The mapped security models of [`NativeBackend`] through the engine's
//! [`Backend`] trait, checked against the bytes QEMU's `9p-local.c` writes
//! on the host (`user.virtfs.*` attributes, `.virtfs_metadata` files), and
//! exports written by hand in that format read back.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{lstat, TempDir};
use p9_engine::backend::{Attr, Backend, Cred, DirEntry, SetAttr};
use p9_native::backend::NativeNode;
use p9_native::{NativeBackend, SecurityModel};
use p9_wire::errno::{EACCES, EINVAL, ENODATA, ENOENT, EOPNOTSUPP};

const ROOT: Cred = Cred { uid: 0, gid: 0 };
const GUEST: Cred = Cred {
    uid: 1000,
    gid: 1001,
};

/// A fresh export with `model`, or `None` (with a message) if the file
/// system of the test directory has no `user.` extended attributes.
fn setup(tag: &str, model: SecurityModel) -> Option<(TempDir, NativeBackend, NativeNode)> {
    let t = TempDir::new(tag);
    let probe = t.path.join("probe");
    std::fs::write(&probe, b"").unwrap();
    if let Err(e) = host_set(&probe, "user.probe", b"1") {
        eprintln!(
            "SKIP: {} has no user xattrs ({e}); the mapped models need them",
            t.path.display()
        );
        return None;
    }
    let b = NativeBackend::new(&t.export(), model).expect("backend");
    let (root, _) = b.attach(b"", &ROOT).expect("attach");
    Some((t, b, root))
}

fn c(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// `lsetxattr` on the host.
fn host_set(p: &Path, name: &str, v: &[u8]) -> std::io::Result<()> {
    let (p, n) = (c(p), CString::new(name).unwrap());
    // SAFETY: both strings are NUL-terminated; `v` is readable for its
    // length.
    let r = unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), v.as_ptr().cast(), v.len(), 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `lgetxattr` on the host; `None` if absent.
fn host_get(p: &Path, name: &str) -> Option<Vec<u8>> {
    let (p, n) = (c(p), CString::new(name).unwrap());
    let mut buf = [0u8; 256];
    // SAFETY: both strings are NUL-terminated; `buf` is writable for its
    // length.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| buf[..r as usize].to_vec())
}

/// The host's attribute names of `p`.
fn host_list(p: &Path) -> Vec<String> {
    let p = c(p);
    let mut buf = [0u8; 1024];
    // SAFETY: the path is NUL-terminated; `buf` is writable for its length.
    let r = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(r >= 0);
    let mut v: Vec<String> = buf[..r as usize]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    v.sort();
    v
}

fn le32(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn walk1(b: &NativeBackend, dir: &NativeNode, name: &[u8]) -> (NativeNode, Attr) {
    let mut v = b.walk(dir, &[name]).expect("walk");
    v.pop().expect("one step")
}

/// (name, d_type, attr) of every entry of `dir`, with attributes.
fn list(b: &NativeBackend, dir: &NativeNode) -> Vec<(Vec<u8>, u8, Attr)> {
    let h = b.opendir(dir).unwrap();
    let mut out = Vec::new();
    let mut off = 0;
    loop {
        let mut got = false;
        b.readdir(dir, &h, off, true, &mut |e: &DirEntry<'_>| {
            out.push((e.name.to_vec(), e.d_type, e.attr.unwrap()));
            off = e.next;
            got = true;
            true
        })
        .unwrap();
        if !got {
            break;
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn names(entries: &[(Vec<u8>, u8, Attr)]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.0).into_owned())
        .collect()
}

fn host_mode(p: &Path) -> u32 {
    lstat(p).mode()
}

const DEV: u64 = (4 << 8) | 5; // makedev(4, 5)

#[test]
fn mapped_xattr_creates_files_as_qemu_does() {
    let Some((t, b, root)) = setup("mx-create", SecurityModel::MappedXattr) else {
        return;
    };
    let ex = t.export();

    let (f, fh, a) = b.create(&root, b"f", libc::O_RDWR, 0o640, &GUEST).unwrap();
    assert_eq!((a.uid, a.gid, a.mode), (1000, 1001, libc::S_IFREG | 0o640));
    let hf = ex.join("f");
    assert_eq!(host_mode(&hf), libc::S_IFREG | 0o600);
    assert_eq!((lstat(&hf).uid(), lstat(&hf).gid()), (0, 0));
    assert_eq!(host_get(&hf, "user.virtfs.uid"), Some(le32(1000)));
    assert_eq!(host_get(&hf, "user.virtfs.gid"), Some(le32(1001)));
    assert_eq!(
        host_get(&hf, "user.virtfs.mode"),
        Some(le32(libc::S_IFREG | 0o640))
    );
    assert_eq!(host_get(&hf, "user.virtfs.rdev"), None);

    let a = b.mkdir(&root, b"d", 0o755, &GUEST).unwrap();
    assert_eq!(a.mode, libc::S_IFDIR | 0o755);
    let hd = ex.join("d");
    assert_eq!(host_mode(&hd), libc::S_IFDIR | 0o700);
    assert_eq!(
        host_get(&hd, "user.virtfs.mode"),
        Some(le32(libc::S_IFDIR | 0o755))
    );

    // Special files are regular host files, the type in the mode.
    for (name, typ) in [
        (&b"chr"[..], libc::S_IFCHR),
        (b"blk", libc::S_IFBLK),
        (b"fifo", libc::S_IFIFO),
        (b"sock", libc::S_IFSOCK),
    ] {
        let a = b.mknod(&root, name, typ | 0o620, DEV, &GUEST).unwrap();
        assert_eq!((a.mode, a.rdev, a.uid), (typ | 0o620, DEV, 1000));
        let hp = ex.join(std::str::from_utf8(name).unwrap());
        assert_eq!(host_mode(&hp), libc::S_IFREG | 0o600);
        assert_eq!(host_get(&hp, "user.virtfs.mode"), Some(le32(typ | 0o620)));
        assert_eq!(
            host_get(&hp, "user.virtfs.rdev"),
            Some(DEV.to_le_bytes().to_vec())
        );
    }

    // A symbolic link is a regular file holding the target.
    let a = b.symlink(&root, b"l", b"../some/where", &GUEST).unwrap();
    assert_eq!(a.mode, libc::S_IFLNK | 0o777);
    let hl = ex.join("l");
    assert_eq!(host_mode(&hl), libc::S_IFREG | 0o600);
    assert_eq!(std::fs::read(&hl).unwrap(), b"../some/where");
    assert_eq!(
        host_get(&hl, "user.virtfs.mode"),
        Some(le32(libc::S_IFLNK | 0o777))
    );
    let (l, la) = walk1(&b, &root, b"l");
    assert_eq!(la.mode, libc::S_IFLNK | 0o777);
    assert_eq!(b.readlink(&l).unwrap(), b"../some/where");

    // chmod and chown write the attributes, the host file stays as is.
    b.setattr(
        &f,
        None,
        &SetAttr {
            mode: Some(libc::S_IFREG | 0o4711),
            uid: Some(7),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert_eq!(host_mode(&hf), libc::S_IFREG | 0o600);
    assert_eq!(lstat(&hf).uid(), 0);
    assert_eq!(host_get(&hf, "user.virtfs.uid"), Some(le32(7)));
    assert_eq!(host_get(&hf, "user.virtfs.gid"), Some(le32(1001)));
    assert_eq!(
        host_get(&hf, "user.virtfs.mode"),
        Some(le32(libc::S_IFREG | 0o4711))
    );
    let a = b.getattr(&f).unwrap();
    assert_eq!((a.uid, a.gid, a.mode), (7, 1001, libc::S_IFREG | 0o4711));
    // Through the open handle too (QEMU's local_fstat), and the size.
    b.setattr(
        &f,
        Some(&fh),
        &SetAttr {
            gid: Some(8),
            size: Some(3),
            ..SetAttr::default()
        },
    )
    .unwrap();
    let a = b.fstat(&f, &fh).unwrap();
    assert_eq!((a.uid, a.gid, a.size), (7, 8, 3));
    // Still through the handle once the name is gone.
    b.unlink(&root, b"f", false).unwrap();
    assert_eq!(b.fstat(&f, &fh).unwrap().gid, 8);

    // Listings: the guest's types are not the host's (DT_UNKNOWN, as
    // QEMU), attributes overlaid.
    let l = list(&b, &root);
    assert_eq!(
        names(&l),
        [".", "..", "blk", "chr", "d", "fifo", "l", "sock"]
    );
    for (name, d_type, attr) in &l {
        assert_eq!(*d_type, libc::DT_UNKNOWN, "{name:?}");
        if name == b"chr" {
            assert_eq!((attr.mode, attr.rdev), (libc::S_IFCHR | 0o620, DEV));
        }
        if name == b"d" {
            assert_eq!(attr.mode, libc::S_IFDIR | 0o755);
        }
    }

    // Links and renames carry the attributes with the inode.
    let (chr, _) = walk1(&b, &root, b"chr");
    let (d, _) = walk1(&b, &root, b"d");
    b.link(&chr, &d, b"chr2").unwrap();
    b.rename(&root, b"blk", &d, b"blk2").unwrap();
    let (_, a) = walk1(&b, &d, b"chr2");
    assert_eq!(a.mode, libc::S_IFCHR | 0o620);
    let (_, a) = walk1(&b, &d, b"blk2");
    assert_eq!((a.mode, a.rdev), (libc::S_IFBLK | 0o620, DEV));
}

#[test]
fn mapped_xattr_hides_its_attributes_and_maps_acls() {
    let Some((t, b, root)) = setup("mx-xattr", SecurityModel::MappedXattr) else {
        return;
    };
    let hf = t.export().join("f");
    let (f, _, _) = b.create(&root, b"f", libc::O_RDWR, 0o644, &GUEST).unwrap();
    b.setxattr(&f, b"user.k", b"v", 0).unwrap();
    let mut buf = [0u8; 64];

    // user.virtfs.*: invisible and untouchable (QEMU's mp_user_*).
    assert_eq!(
        b.getxattr(&f, b"user.virtfs.uid", &mut buf).unwrap_err(),
        ENODATA
    );
    assert_eq!(
        b.setxattr(&f, b"user.virtfs.uid", &le32(0), 0).unwrap_err(),
        EACCES
    );
    assert_eq!(
        b.setxattr(&f, b"user.virtfs.new", b"x", 0).unwrap_err(),
        EACCES
    );
    assert_eq!(b.removexattr(&f, b"user.virtfs.mode").unwrap_err(), EACCES);
    assert_eq!(host_get(&hf, "user.virtfs.uid"), Some(le32(1000)));
    assert_eq!(host_get(&hf, "user.virtfs.new"), None);

    // POSIX ACLs live in user.virtfs.system.posix_acl_*.
    let acl = [2u8, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff];
    b.setxattr(&f, b"system.posix_acl_access", &acl, 0).unwrap();
    assert_eq!(
        host_get(&hf, "user.virtfs.system.posix_acl_access"),
        Some(acl.to_vec())
    );
    assert_eq!(host_get(&hf, "system.posix_acl_access"), None);
    let n = b
        .getxattr(&f, b"system.posix_acl_access", &mut buf)
        .unwrap();
    assert_eq!(&buf[..n], acl);
    assert_eq!(
        b.getxattr(&f, b"system.posix_acl_default", &mut buf)
            .unwrap_err(),
        ENODATA
    );
    // Removing an absent ACL is no error (mp_dacl_removexattr).
    b.removexattr(&f, b"system.posix_acl_default").unwrap();

    let size = b.listxattr(&f, &mut []).unwrap();
    let mut l = vec![0u8; size];
    let n = b.listxattr(&f, &mut l).unwrap();
    assert_eq!(n, size);
    let mut shown: Vec<&[u8]> = l[..n]
        .split(|&c| c == 0)
        .filter(|s| !s.is_empty())
        .collect();
    shown.sort();
    assert_eq!(shown, [&b"system.posix_acl_access"[..], b"user.k"]);
    assert_eq!(
        host_list(&hf),
        [
            "user.k",
            "user.virtfs.gid",
            "user.virtfs.mode",
            "user.virtfs.system.posix_acl_access",
            "user.virtfs.uid"
        ]
    );
    b.removexattr(&f, b"system.posix_acl_access").unwrap();
    assert_eq!(host_get(&hf, "user.virtfs.system.posix_acl_access"), None);

    for name in [
        &b"trusted.x"[..],
        b"security.capability",
        b"system.nfs4_acl",
    ] {
        assert_eq!(b.setxattr(&f, name, b"v", 0).unwrap_err(), EOPNOTSUPP);
        assert_eq!(b.getxattr(&f, name, &mut buf).unwrap_err(), EOPNOTSUPP);
    }
}

/// An export as upstream QEMU's mapped-xattr writes it, made by hand.
#[test]
fn mapped_xattr_reads_an_upstream_export() {
    let Some((t, _, _)) = setup("mx-upstream", SecurityModel::MappedXattr) else {
        return;
    };
    let ex = t.export();
    let mk = |name: &str, body: &[u8], uid: u32, gid: u32, mode: u32, rdev: Option<u64>| {
        let p = ex.join(name);
        if mode & libc::S_IFMT == libc::S_IFDIR {
            std::fs::create_dir(&p).unwrap();
            std::fs::set_permissions(&p, PermissionsExt::from_mode(0o700)).unwrap();
        } else {
            std::fs::write(&p, body).unwrap();
            std::fs::set_permissions(&p, PermissionsExt::from_mode(0o600)).unwrap();
        }
        host_set(&p, "user.virtfs.uid", &uid.to_le_bytes()).unwrap();
        host_set(&p, "user.virtfs.gid", &gid.to_le_bytes()).unwrap();
        host_set(&p, "user.virtfs.mode", &mode.to_le_bytes()).unwrap();
        if let Some(r) = rdev {
            host_set(&p, "user.virtfs.rdev", &r.to_le_bytes()).unwrap();
        }
    };
    let rdev = (8 << 8) | 1;
    mk("home", b"", 1000, 100, libc::S_IFDIR | 0o750, None);
    mk("sda1", b"", 0, 6, libc::S_IFBLK | 0o660, Some(rdev));
    mk(
        "link",
        b"/etc/passwd",
        1000,
        100,
        libc::S_IFLNK | 0o777,
        None,
    );
    mk(
        "prog",
        b"#!/bin/sh\n",
        1000,
        100,
        libc::S_IFREG | 0o4755,
        None,
    );
    std::fs::write(ex.join("plain"), b"no attributes").unwrap();

    let b = NativeBackend::new(&ex, SecurityModel::MappedXattr).unwrap();
    let (root, _) = b.attach(b"", &ROOT).unwrap();
    let (_, a) = walk1(&b, &root, b"home");
    assert_eq!((a.uid, a.gid, a.mode), (1000, 100, libc::S_IFDIR | 0o750));
    let (_, a) = walk1(&b, &root, b"sda1");
    assert_eq!(
        (a.uid, a.gid, a.mode, a.rdev),
        (0, 6, libc::S_IFBLK | 0o660, rdev)
    );
    let (link, a) = walk1(&b, &root, b"link");
    assert_eq!(a.mode, libc::S_IFLNK | 0o777);
    assert_eq!(b.readlink(&link).unwrap(), b"/etc/passwd");
    let (prog, a) = walk1(&b, &root, b"prog");
    assert_eq!((a.uid, a.mode), (1000, libc::S_IFREG | 0o4755));
    let h = b.open(&prog, libc::O_RDONLY).unwrap();
    assert_eq!(b.fstat(&prog, &h).unwrap().mode, libc::S_IFREG | 0o4755);
    // Without attributes: the host's view.
    let (_, a) = walk1(&b, &root, b"plain");
    assert_eq!(a.mode, lstat(&ex.join("plain")).mode());
    let l = list(&b, &root);
    let sda = l.iter().find(|e| e.0 == b"sda1").unwrap();
    assert_eq!((sda.2.mode, sda.2.rdev), (libc::S_IFBLK | 0o660, rdev));
}

fn meta(p: &Path) -> String {
    String::from_utf8(std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn mapped_file_creates_files_as_qemu_does() {
    let Some((t, b, root)) = setup("mf-create", SecurityModel::MappedFile) else {
        return;
    };
    let ex = t.export();
    let md = ex.join(".virtfs_metadata");

    let (f, fh, a) = b.create(&root, b"f", libc::O_RDWR, 0o640, &GUEST).unwrap();
    assert_eq!((a.uid, a.gid, a.mode), (1000, 1001, libc::S_IFREG | 0o640));
    assert_eq!(host_mode(&ex.join("f")), libc::S_IFREG | 0o600);
    assert_eq!(host_mode(&md), libc::S_IFDIR | 0o700);
    assert_eq!(host_mode(&md.join("f")), libc::S_IFREG | 0o600);
    assert_eq!(
        meta(&md.join("f")),
        "virtfs.uid=1000\nvirtfs.gid=1001\nvirtfs.mode=33184\n"
    );
    assert!(host_list(&ex.join("f")).is_empty());
    assert_eq!(b.fstat(&f, &fh).unwrap().mode, libc::S_IFREG | 0o640);

    let a = b.mkdir(&root, b"d", 0o755, &GUEST).unwrap();
    assert_eq!(a.mode, libc::S_IFDIR | 0o755);
    assert_eq!(host_mode(&ex.join("d")), libc::S_IFDIR | 0o700);
    assert_eq!(
        meta(&md.join("d")),
        format!(
            "virtfs.uid=1000\nvirtfs.gid=1001\nvirtfs.mode={}\n",
            libc::S_IFDIR | 0o755
        )
    );
    let a = b
        .mknod(&root, b"chr", libc::S_IFCHR | 0o620, DEV, &GUEST)
        .unwrap();
    assert_eq!((a.mode, a.rdev), (libc::S_IFCHR | 0o620, DEV));
    assert_eq!(host_mode(&ex.join("chr")), libc::S_IFREG | 0o600);
    assert_eq!(
        meta(&md.join("chr")),
        format!(
            "virtfs.uid=1000\nvirtfs.gid=1001\nvirtfs.mode={}\nvirtfs.rdev={DEV}\n",
            libc::S_IFCHR | 0o620
        )
    );
    b.symlink(&root, b"l", b"tgt", &GUEST).unwrap();
    assert_eq!(std::fs::read(ex.join("l")).unwrap(), b"tgt");
    let (l, a) = walk1(&b, &root, b"l");
    assert_eq!(a.mode, libc::S_IFLNK | 0o777);
    assert_eq!(b.readlink(&l).unwrap(), b"tgt");

    // chmod/chown rewrite the file, keeping the other fields.
    b.setattr(
        &f,
        None,
        &SetAttr {
            gid: Some(5),
            mode: Some(libc::S_IFREG | 0o600),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert_eq!(
        meta(&md.join("f")),
        "virtfs.uid=1000\nvirtfs.gid=5\nvirtfs.mode=33152\n"
    );
    assert_eq!(lstat(&ex.join("f")).gid(), 0);
    // The export root's own file.
    b.setattr(
        &root,
        None,
        &SetAttr {
            uid: Some(1000),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert_eq!(meta(&ex.join(".virtfs_metadata_root")), "virtfs.uid=1000\n");
    assert_eq!(b.getattr(&root).unwrap().uid, 1000);

    // A subdirectory gets its own metadata directory.
    let (d, _) = walk1(&b, &root, b"d");
    b.create(&d, b"inner", libc::O_RDWR, 0o644, &GUEST).unwrap();
    assert_eq!(
        meta(&ex.join("d/.virtfs_metadata/inner")),
        "virtfs.uid=1000\nvirtfs.gid=1001\nvirtfs.mode=33188\n"
    );

    // Metadata is hidden from listings and unusable as a name.
    let l = list(&b, &root);
    assert_eq!(names(&l), [".", "..", "chr", "d", "f", "l"]);
    assert!(l.iter().all(|e| e.1 == libc::DT_UNKNOWN));
    let chr = l.iter().find(|e| e.0 == b"chr").unwrap();
    assert_eq!((chr.2.mode, chr.2.rdev), (libc::S_IFCHR | 0o620, DEV));
    let dot = l.iter().find(|e| e.0 == b".").unwrap();
    assert_eq!(dot.2.uid, 1000);
    for name in [&b".virtfs_metadata"[..], b".virtfs_metadata_root"] {
        assert_eq!(b.walk(&root, &[name]).unwrap_err(), EINVAL);
        assert_eq!(b.walk(&d, &[name]).unwrap_err(), EINVAL);
        assert_eq!(
            b.create(&root, name, libc::O_RDWR, 0o644, &GUEST)
                .unwrap_err(),
            EINVAL
        );
        assert_eq!(b.mkdir(&d, name, 0o755, &GUEST).unwrap_err(), EINVAL);
        assert_eq!(b.symlink(&d, name, b"x", &GUEST).unwrap_err(), EINVAL);
        assert_eq!(
            b.mknod(&d, name, libc::S_IFIFO | 0o644, 0, &GUEST)
                .unwrap_err(),
            EINVAL
        );
        assert_eq!(b.link(&f, &d, name).unwrap_err(), EINVAL);
        assert_eq!(b.rename(&root, b"f", &d, name).unwrap_err(), EINVAL);
        assert_eq!(b.rename(&root, name, &d, b"x").unwrap_err(), EINVAL);
        assert_eq!(b.unlink(&root, name, true).unwrap_err(), EINVAL);
    }
    assert!(md.join("f").exists());

    // Metadata follows renames (also into another directory) ...
    b.rename(&root, b"f", &d, b"g").unwrap();
    assert!(!md.join("f").exists());
    assert_eq!(
        meta(&ex.join("d/.virtfs_metadata/g")),
        "virtfs.uid=1000\nvirtfs.gid=5\nvirtfs.mode=33152\n"
    );
    let (g, a) = walk1(&b, &d, b"g");
    assert_eq!((a.gid, a.mode), (5, libc::S_IFREG | 0o600));
    // ... links ...
    b.link(&g, &root, b"g2").unwrap();
    let (_, a) = walk1(&b, &root, b"g2");
    assert_eq!(a.gid, 5);
    assert_eq!(
        lstat(&md.join("g2")).ino(),
        lstat(&ex.join("d/.virtfs_metadata/g")).ino()
    );
    // ... and removals.
    b.unlink(&root, b"g2", false).unwrap();
    assert!(!md.join("g2").exists());
    b.remove(&g).unwrap();
    assert!(!ex.join("d/.virtfs_metadata/g").exists());
    b.unlink(&d, b"inner", false).unwrap();
    b.unlink(&root, b"d", true).unwrap();
    assert!(!ex.join("d").exists());
    assert!(!md.join("d").exists());
    assert_eq!(b.walk(&root, &[b"d"]).unwrap_err(), ENOENT);
}

/// An export as upstream QEMU's mapped-file writes it, made by hand.
#[test]
fn mapped_file_reads_an_upstream_export() {
    let t = TempDir::new("mf-upstream");
    let ex = t.export();
    let md = ex.join(".virtfs_metadata");
    std::fs::create_dir(&md).unwrap();
    std::fs::create_dir(ex.join("home")).unwrap();
    std::fs::create_dir(ex.join("home/.virtfs_metadata")).unwrap();
    std::fs::write(ex.join("home/note"), b"hi").unwrap();
    std::fs::write(
        ex.join("home/.virtfs_metadata/note"),
        "virtfs.uid=1000\nvirtfs.gid=100\nvirtfs.mode=33188\n",
    )
    .unwrap();
    std::fs::write(
        md.join("home"),
        format!(
            "virtfs.uid=1000\nvirtfs.gid=100\nvirtfs.mode={}\n",
            libc::S_IFDIR | 0o750
        ),
    )
    .unwrap();
    std::fs::write(ex.join("tty"), b"").unwrap();
    // rdev as QEMU's %d of an int.
    std::fs::write(
        md.join("tty"),
        format!(
            "virtfs.uid=0\nvirtfs.gid=5\nvirtfs.mode={}\nvirtfs.rdev=1024\n",
            libc::S_IFCHR | 0o620
        ),
    )
    .unwrap();
    std::fs::write(ex.join("ln"), b"home/note").unwrap();
    std::fs::write(
        md.join("ln"),
        format!(
            "virtfs.uid=1000\nvirtfs.gid=100\nvirtfs.mode={}\n",
            libc::S_IFLNK | 0o777
        ),
    )
    .unwrap();
    std::fs::write(
        ex.join(".virtfs_metadata_root"),
        "virtfs.uid=0\nvirtfs.gid=0\nvirtfs.mode=16877\n",
    )
    .unwrap();

    let b = NativeBackend::new(&ex, SecurityModel::MappedFile).unwrap();
    let (root, a) = b.attach(b"", &ROOT).unwrap();
    assert_eq!(a.mode, libc::S_IFDIR | 0o755);
    let (home, a) = walk1(&b, &root, b"home");
    assert_eq!((a.uid, a.gid, a.mode), (1000, 100, libc::S_IFDIR | 0o750));
    let (_, a) = walk1(&b, &home, b"note");
    assert_eq!((a.uid, a.gid, a.mode), (1000, 100, libc::S_IFREG | 0o644));
    let (_, a) = walk1(&b, &root, b"tty");
    assert_eq!((a.gid, a.mode, a.rdev), (5, libc::S_IFCHR | 0o620, 1024));
    let (ln, a) = walk1(&b, &root, b"ln");
    assert_eq!(a.mode, libc::S_IFLNK | 0o777);
    assert_eq!(b.readlink(&ln).unwrap(), b"home/note");
    assert_eq!(names(&list(&b, &root)), [".", "..", "home", "ln", "tty"]);
    assert_eq!(names(&list(&b, &home)), [".", "..", "note"]);
}

/// Metadata files that are not regular files are never opened (a FIFO
/// would block, a device would be opened on the host), nor followed.
#[test]
fn mapped_file_never_opens_special_or_linked_metadata() {
    let t = TempDir::new("mf-special");
    let ex = t.export();
    let md = ex.join(".virtfs_metadata");
    std::fs::create_dir(&md).unwrap();
    std::fs::write(ex.join("a"), b"").unwrap();
    common::mkfifo(&md.join("a"));
    std::fs::write(ex.join("b"), b"").unwrap();
    std::fs::write(t.outside().join("secret"), "virtfs.uid=4242\n").unwrap();
    std::os::unix::fs::symlink(t.outside().join("secret"), md.join("b")).unwrap();
    let b = NativeBackend::new(&ex, SecurityModel::MappedFile).unwrap();
    let (root, _) = b.attach(b"", &ROOT).unwrap();
    let (_, a) = walk1(&b, &root, b"a");
    assert_eq!(a.uid, 0);
    let (_, a) = walk1(&b, &root, b"b");
    assert_eq!(a.uid, 0);
}

/// A rename or link whose metadata cannot follow (the target directory's
/// `.virtfs_metadata` is no directory) is undone, as 9p-local does; on
/// both lookup paths.
#[test]
fn mapped_file_undoes_what_metadata_cannot_follow() {
    common::both_paths(|how| {
        let t = TempDir::new(&format!("mf-undo-{how}"));
        let ex = t.export();
        let b = NativeBackend::new(&ex, SecurityModel::MappedFile).unwrap();
        let (root, _) = b.attach(b"", &ROOT).unwrap();
        let (f, _, _) = b.create(&root, b"f", libc::O_RDWR, 0o640, &GUEST).unwrap();
        b.mkdir(&root, b"d", 0o755, &GUEST).unwrap();
        let (d, _) = walk1(&b, &root, b"d");
        std::fs::write(ex.join("d/.virtfs_metadata"), b"not a directory").unwrap();
        assert_eq!(
            b.rename(&root, b"f", &d, b"g").unwrap_err(),
            p9_wire::errno::ENOTDIR
        );
        assert!(ex.join("f").exists() && !ex.join("d/g").exists());
        assert_eq!(b.link(&f, &d, b"h").unwrap_err(), p9_wire::errno::ENOTDIR);
        assert!(!ex.join("d/h").exists());
        // The fid still is at its place, with its metadata.
        let a = b.getattr(&f).unwrap();
        assert_eq!((a.uid, a.mode), (1000, libc::S_IFREG | 0o640));
        assert_eq!(b.walk(&root, &[b"f"]).unwrap()[0].1.uid, 1000);
    });
}
