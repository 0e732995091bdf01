// SPDX-License-Identifier: GPL-2.0-or-later
//! The native backend's mapped security models over the wire: 9P2000.L
//! requests of a guest user (uid 1000) against the engine, and the host
//! side as QEMU's `9p-local.c` leaves it (`user.virtfs.*` attributes,
//! `.virtfs_metadata` files, host modes 0600/0700).

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{host, host_getxattr, host_setxattr, lstat, TempDir, TestClient, MSIZE};
use p9_engine::Config;
use p9_native::{HostModes, NativeBackend, SecurityModel};
use p9_wire::consts::{dotl_open, getattr, qid_type, setattr, NOFID};
use p9_wire::errno::{EACCES, EINVAL, ENODATA};
use p9_wire::SetAttr;

const UID: u32 = 1000;
const GID: u32 = 1001;

/// A client of `dir` served with `model`, after Tversion and a Tattach as
/// uid 1000: the client and the root fid.
fn attach(dir: &Path, model: SecurityModel) -> (TestClient, u32) {
    let b = NativeBackend::new(dir, model).expect("backend");
    let client = p9_client::Client::new(host(b, Config::default(), 2));
    client.version(MSIZE, "9P2000.L").unwrap();
    let root = client.alloc_fid();
    client.attach(root, NOFID, "user", "", UID).unwrap();
    (client, root)
}

/// Whether the file system of `dir` has `user.` attributes (else the test
/// says so and is skipped).
fn user_xattrs(dir: &Path) -> bool {
    let p = dir.join(".probe");
    std::fs::write(&p, b"").unwrap();
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: path and name are NUL-terminated; the value is 1 byte.
    let r = unsafe {
        libc::setxattr(
            c.as_ptr(),
            c"user.probe".as_ptr(),
            b"1".as_ptr().cast(),
            1,
            0,
        )
    };
    std::fs::remove_file(&p).unwrap();
    if r != 0 {
        eprintln!("SKIP: {} has no user xattrs", dir.display());
    }
    r == 0
}

fn walk(c: &TestClient, root: u32, name: &str) -> Result<u32, p9_wire::Errno> {
    let fid = c.alloc_fid();
    c.walk(root, fid, &[name])?;
    Ok(fid)
}

fn clone_root(c: &TestClient, root: u32) -> u32 {
    let f = c.alloc_fid();
    c.walk(root, f, &[] as &[&str]).unwrap();
    f
}

fn names(c: &TestClient, dir: u32) -> Vec<(String, u8)> {
    let d = clone_root(c, dir);
    c.lopen(d, dotl_open::RDONLY | dotl_open::DIRECTORY)
        .unwrap();
    let mut v: Vec<(String, u8)> = c
        .readdir_all(d)
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                String::from_utf8_lossy(e.name.as_bytes()).into_owned(),
                e.typ,
            )
        })
        .collect();
    c.clunk(d).unwrap();
    v.sort();
    v
}

#[test]
fn mapped_xattr_over_the_wire() {
    let dir = TempDir::new("mapped-xattr");
    if !user_xattrs(&dir) {
        return;
    }
    let (c, root) = attach(&dir, SecurityModel::MappedXattr);

    let f = clone_root(&c, root);
    let (qid, _) = c.lcreate(f, "f", dotl_open::RDWR, 0o640, GID).unwrap();
    assert_eq!(qid.typ, 0);
    let st = c.getattr(f, getattr::BASIC).unwrap();
    assert_eq!((st.uid, st.gid, st.mode), (UID, GID, libc::S_IFREG | 0o640));
    let hf = dir.join("f");
    assert_eq!(lstat(&hf).mode(), libc::S_IFREG | 0o600);
    assert_eq!(lstat(&hf).uid(), 0);
    assert_eq!(
        host_getxattr(&hf, "user.virtfs.uid"),
        Ok(UID.to_le_bytes().to_vec())
    );
    assert_eq!(
        host_getxattr(&hf, "user.virtfs.gid"),
        Ok(GID.to_le_bytes().to_vec())
    );

    let q = c.mkdir(root, "d", 0o755, GID).unwrap();
    assert_eq!(q.typ, qid_type::DIR);
    assert_eq!(lstat(&dir.join("d")).mode(), libc::S_IFDIR | 0o700);

    let q = c
        .mknod(root, "c", libc::S_IFCHR | 0o620, 4, 5, GID)
        .unwrap();
    assert_eq!(q.typ, 0);
    let dev = p9_engine::convert::makedev(4, 5);
    let cf = walk(&c, root, "c").unwrap();
    let st = c.getattr(cf, getattr::BASIC).unwrap();
    assert_eq!((st.mode, st.rdev), (libc::S_IFCHR | 0o620, dev));
    assert!(lstat(&dir.join("c")).file_type().is_file());
    assert_eq!(
        host_getxattr(&dir.join("c"), "user.virtfs.rdev"),
        Ok(dev.to_le_bytes().to_vec())
    );

    let q = c.symlink(root, "l", "/some/target", GID).unwrap();
    assert_eq!(q.typ, qid_type::SYMLINK);
    assert_eq!(std::fs::read(dir.join("l")).unwrap(), b"/some/target");
    let lf = walk(&c, root, "l").unwrap();
    assert_eq!(c.readlink(lf).unwrap(), b"/some/target");

    // chmod/chown: the attributes change, the host file does not.
    c.setattr(
        f,
        SetAttr {
            valid: setattr::MODE | setattr::UID,
            mode: libc::S_IFREG | 0o700,
            uid: 4242,
            ..SetAttr::default()
        },
    )
    .unwrap();
    let st = c.getattr(f, getattr::BASIC).unwrap();
    assert_eq!((st.uid, st.mode), (4242, libc::S_IFREG | 0o700));
    assert_eq!(
        (lstat(&hf).uid(), lstat(&hf).mode()),
        (0, libc::S_IFREG | 0o600)
    );

    // Listings: no host types.
    let l = names(&c, root);
    assert_eq!(
        l.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        [".", "..", "c", "d", "f", "l"]
    );
    assert!(l.iter().all(|e| e.1 == libc::DT_UNKNOWN));

    // The model's attributes are out of the guest's reach.
    assert_eq!(c.xattr_get(f, "user.virtfs.uid"), Err(ENODATA));
    assert_eq!(c.xattr_set(f, "user.virtfs.uid", &[0; 4], 0), Err(EACCES));
    c.xattr_set(f, "user.mine", b"v", 0).unwrap();
    assert_eq!(c.xattr_get(f, "").unwrap(), b"user.mine\0");
    assert_eq!(
        host_getxattr(&hf, "user.virtfs.uid"),
        Ok(4242u32.to_le_bytes().to_vec())
    );
}

/// An export QEMU's mapped-xattr wrote (made by hand) served back.
#[test]
fn mapped_xattr_serves_an_upstream_export() {
    let dir = TempDir::new("mapped-xattr-upstream");
    if !user_xattrs(&dir) {
        return;
    }
    let p = dir.join("tty0");
    std::fs::write(&p, b"").unwrap();
    host_setxattr(&p, "user.virtfs.uid", &0u32.to_le_bytes());
    host_setxattr(&p, "user.virtfs.gid", &5u32.to_le_bytes());
    host_setxattr(
        &p,
        "user.virtfs.mode",
        &(libc::S_IFCHR | 0o620).to_le_bytes(),
    );
    host_setxattr(&p, "user.virtfs.rdev", &((4u64 << 8) | 1).to_le_bytes());
    let (c, root) = attach(&dir, SecurityModel::MappedXattr);
    let f = walk(&c, root, "tty0").unwrap();
    let st = c.getattr(f, getattr::BASIC).unwrap();
    assert_eq!(
        (st.uid, st.gid, st.mode, st.rdev),
        (0, 5, libc::S_IFCHR | 0o620, (4 << 8) | 1)
    );
}

#[test]
fn mapped_file_over_the_wire() {
    let dir = TempDir::new("mapped-file");
    let (c, root) = attach(&dir, SecurityModel::MappedFile);
    let md = dir.join(".virtfs_metadata");

    let f = clone_root(&c, root);
    c.lcreate(f, "f", dotl_open::RDWR, 0o640, GID).unwrap();
    assert_eq!(
        std::fs::read_to_string(md.join("f")).unwrap(),
        "virtfs.uid=1000\nvirtfs.gid=1001\nvirtfs.mode=33184\n"
    );
    assert_eq!(lstat(&md).mode(), libc::S_IFDIR | 0o700);
    assert_eq!(lstat(&md.join("f")).mode(), libc::S_IFREG | 0o600);
    assert_eq!(lstat(&dir.join("f")).mode(), libc::S_IFREG | 0o600);
    let st = c.getattr(f, getattr::BASIC).unwrap();
    assert_eq!((st.uid, st.gid, st.mode), (UID, GID, libc::S_IFREG | 0o640));
    c.mknod(root, "p", libc::S_IFIFO | 0o600, 0, 0, GID)
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(md.join("p")).unwrap(),
        format!(
            "virtfs.uid=1000\nvirtfs.gid=1001\nvirtfs.mode={}\nvirtfs.rdev=0\n",
            libc::S_IFIFO | 0o600
        )
    );

    // Hidden and refused names.
    assert_eq!(
        names(&c, root)
            .iter()
            .map(|e| e.0.as_str())
            .collect::<Vec<_>>(),
        [".", "..", "f", "p"]
    );
    assert_eq!(walk(&c, root, ".virtfs_metadata"), Err(EINVAL));
    let d = clone_root(&c, root);
    assert_eq!(
        c.lcreate(d, ".virtfs_metadata_root", dotl_open::RDWR, 0o600, GID),
        Err(EINVAL)
    );
    assert_eq!(c.renameat(root, "f", root, ".virtfs_metadata"), Err(EINVAL));

    // Metadata follows renames and unlinks.
    c.renameat(root, "f", root, "g").unwrap();
    assert!(!md.join("f").exists());
    assert!(md.join("g").exists());
    let g = walk(&c, root, "g").unwrap();
    assert_eq!(
        c.getattr(g, getattr::BASIC).unwrap().mode,
        libc::S_IFREG | 0o640
    );
    c.unlinkat(root, "g", 0).unwrap();
    assert!(!md.join("g").exists());
}

/// A write by a user other than root clears set-user-ID (and set-group-ID
/// with group-execute) in the stored mode, as on a local file system; the
/// file stays readable through the mapped model afterwards.
#[test]
fn mapped_xattr_write_by_user_clears_set_id_bits() {
    let dir = TempDir::new("mapped-xattr-setid");
    if !user_xattrs(&dir) {
        return;
    }
    let (c, root) = attach(&dir, SecurityModel::MappedXattr);
    let f = clone_root(&c, root);
    c.lcreate(f, "f", dotl_open::RDWR, 0o6777, GID).unwrap();
    c.clunk(f).unwrap();
    let mode_of = |fid: u32| c.getattr(fid, getattr::BASIC).unwrap().mode;
    let f = walk(&c, root, "f").unwrap();
    assert_eq!(mode_of(f) & 0o7777, 0o6777);
    c.lopen(f, dotl_open::WRONLY).unwrap();
    assert_eq!(c.write(f, 0, b"data").unwrap(), 4);
    assert_eq!(mode_of(f), libc::S_IFREG | 0o777);
    c.clunk(f).unwrap();
    let g = walk(&c, root, "f").unwrap();
    assert_eq!(mode_of(g), libc::S_IFREG | 0o777);
    // The host file keeps mapped-xattr's own mode; the stored one changed.
    assert_eq!(lstat(&dir.join("f")).mode() & 0o7777, 0o600);
}

/// QEMU's `fmode`/`dmode`: what the mapped models create gets the host
/// modes the backend was given (the metadata keeps 0600/0700), and the
/// guest sees its own modes all the same.
#[test]
fn mapped_file_host_modes() {
    let dir = TempDir::new("mapped-file-modes");
    let b = NativeBackend::new(&dir, SecurityModel::MappedFile)
        .expect("backend")
        .with_host_modes(HostModes {
            file: 0o604,
            dir: 0o705,
        });
    let c = p9_client::Client::new(host(b, Config::default(), 2));
    c.version(MSIZE, "9P2000.L").unwrap();
    let root = c.alloc_fid();
    c.attach(root, NOFID, "user", "", UID).unwrap();

    let f = clone_root(&c, root);
    c.lcreate(f, "f", dotl_open::RDWR, 0o640, GID).unwrap();
    c.mkdir(root, "d", 0o750, GID).unwrap();
    c.mknod(root, "p", libc::S_IFIFO | 0o620, 0, 0, GID)
        .unwrap();
    c.symlink(root, "l", "f", GID).unwrap();
    for (name, host_mode) in [
        ("f", libc::S_IFREG | 0o604),
        ("d", libc::S_IFDIR | 0o705),
        ("p", libc::S_IFREG | 0o604),
        ("l", libc::S_IFREG | 0o604),
    ] {
        assert_eq!(lstat(&dir.join(name)).mode(), host_mode, "{name}");
    }
    let md = dir.join(".virtfs_metadata");
    assert_eq!(lstat(&md).mode(), libc::S_IFDIR | 0o700);
    assert_eq!(lstat(&md.join("f")).mode(), libc::S_IFREG | 0o600);
    let st = c.getattr(f, getattr::BASIC).unwrap();
    assert_eq!(st.mode, libc::S_IFREG | 0o640);
    let d = walk(&c, root, "d").unwrap();
    assert_eq!(
        c.getattr(d, getattr::BASIC).unwrap().mode,
        libc::S_IFDIR | 0o750
    );
}
