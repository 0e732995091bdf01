// SPDX-License-Identifier: GPL-2.0-or-later
//! Nodes are found by their place beneath the export root:
//!
//! * a directory the host moves out of the export is no way out (`..` is
//!   the recorded parent, names are looked up from the root, opening and
//!   listing check the place), with `openat2` and with the per-component
//!   `openat` walk;
//! * a node whose descriptor was given back is found again at its place
//!   and checked to be the same file: `ENOENT` when nothing is there,
//!   `ESTALE` when another file is (by file handle too, where the inode
//!   number was reused).

mod common;

use std::io::IoSliceMut;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{lstat, TempDir};
use p9_engine::backend::{Backend, Cred, DirEntry};
use p9_native::backend::{NativeHandle, NativeNode};
use p9_native::{testing, NativeBackend, SecurityModel};
use p9_wire::errno::{ENOENT, ENOTDIR, ESTALE};

const ROOT: Cred = Cred { uid: 0, gid: 0 };

fn walk(b: &NativeBackend, dir: &NativeNode, names: &[&str]) -> Vec<(NativeNode, u64)> {
    let names: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
    b.walk(dir, &names)
        .unwrap_or_else(|e| panic!("walk {names:?}: {e:?}"))
        .into_iter()
        .map(|(n, a)| (n, a.ino))
        .collect()
}

fn walk1(b: &NativeBackend, dir: &NativeNode, name: &str) -> NativeNode {
    let mut v = walk(b, dir, &[name]);
    assert_eq!(v.len(), 1, "walk {name}");
    v.pop().unwrap().0
}

fn names_of(
    b: &NativeBackend,
    dir: &NativeNode,
    h: &NativeHandle,
) -> Result<Vec<String>, p9_wire::Errno> {
    let mut names = Vec::new();
    b.readdir(dir, h, 0, true, &mut |e: &DirEntry<'_>| {
        names.push(String::from_utf8_lossy(e.name).into_owned());
        true
    })?;
    names.sort();
    Ok(names)
}

fn read_all(b: &NativeBackend, h: &NativeHandle) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = b
        .read(h, 0, &mut [IoSliceMut::new(&mut buf)])
        .expect("read");
    buf.truncate(n);
    buf
}

/// The export at `<base>/export` holds `d/{f, sub/g}`; `<base>/away`
/// holds a marker.  Fids (nodes) are taken on `d`, `d/f`, `d/sub`, and an
/// open directory handle of `d`; then the host moves `d` to
/// `<base>/away/d`.
fn moved_directory(tag: &str, fallback: bool) {
    let t = TempDir::new(tag);
    let ex = t.export();
    let away = t.path.join("away");
    std::fs::create_dir_all(ex.join("d/sub")).unwrap();
    std::fs::write(ex.join("d/f"), b"in d").unwrap();
    std::fs::write(ex.join("d/sub/g"), b"in sub").unwrap();
    std::fs::create_dir(&away).unwrap();
    std::fs::write(away.join("marker"), b"host secret").unwrap();
    let mut b = NativeBackend::new(&ex, SecurityModel::Passthrough).unwrap();
    b.force_openat_fallback(fallback);
    let (root, ra) = b.attach(b"", &ROOT).unwrap();
    let d = walk1(&b, &root, "d");
    let f = walk1(&b, &d, "f");
    let sub = walk1(&b, &d, "sub");
    let dh = b.opendir(&d).unwrap();
    assert!(names_of(&b, &d, &dh).unwrap().contains(&"f".to_string()));

    std::fs::rename(ex.join("d"), away.join("d")).unwrap();
    let away_ino = lstat(&away).ino();
    let base_ino = lstat(&t.path).ino();

    // `..` is the recorded parent: the export root, never `away`.
    let v = walk(&b, &d, &[".."]);
    assert_eq!(v.iter().map(|s| s.1).collect::<Vec<_>>(), [ra.ino]);
    let v = walk(&b, &d, &["..", "..", ".."]);
    assert_eq!(v.iter().map(|s| s.1).collect::<Vec<_>>(), [ra.ino; 3]);
    let v = walk(&b, &sub, &["..", "..", ".."]);
    assert!(
        v.iter().all(|s| s.1 != away_ino && s.1 != base_ino),
        "{v:?}"
    );
    assert_eq!(v[1].1, ra.ino);
    // The marker next to the moved directory is reached by no walk.
    let v = walk(&b, &d, &["..", "marker"]);
    assert_eq!(v.len(), 1);
    for names in [["marker"], ["f"], ["sub"]] {
        assert_eq!(
            b.walk(&d, &[names[0].as_bytes()]).unwrap_err(),
            ENOENT,
            "{names:?}"
        );
    }
    assert_eq!(b.walk(&sub, &[b"g"]).unwrap_err(), ENOENT);
    // Neither opened, nor listed, nor used as a directory.
    assert_eq!(b.opendir(&d).unwrap_err(), ENOENT);
    assert_eq!(
        b.open(&d, libc::O_RDONLY | libc::O_DIRECTORY).unwrap_err(),
        ENOENT
    );
    assert_eq!(b.open(&f, libc::O_RDONLY).unwrap_err(), ENOENT);
    assert_eq!(names_of(&b, &d, &dh).unwrap_err(), ENOENT);
    assert_eq!(
        b.create(&d, b"new", libc::O_RDWR, 0o644, &ROOT)
            .unwrap_err(),
        ENOENT
    );
    assert_eq!(b.mkdir(&d, b"newdir", 0o755, &ROOT).unwrap_err(), ENOENT);
    assert_eq!(b.symlink(&d, b"l", b"x", &ROOT).unwrap_err(), ENOENT);
    assert_eq!(b.unlink(&d, b"f", false).unwrap_err(), ENOENT);
    assert_eq!(b.remove(&f).unwrap_err(), ENOENT);
    assert_eq!(b.rename(&d, b"f", &root, b"stolen").unwrap_err(), ENOENT);
    assert_eq!(b.link(&f, &root, b"stolen").unwrap_err(), ENOENT);
    assert_eq!(
        b.rename_node(&f, Some(&root), b"stolen").unwrap_err(),
        ENOENT
    );
    assert!(!ex.join("stolen").exists());
    assert_eq!(
        std::fs::read_dir(away.join("d"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect::<std::collections::BTreeSet<_>>(),
        ["f", "sub"].map(String::from).into()
    );
    assert_eq!(std::fs::read(away.join("marker")).unwrap(), b"host secret");

    // Moved back: everything works again (the places hold the same files).
    std::fs::rename(away.join("d"), ex.join("d")).unwrap();
    assert_eq!(walk(&b, &d, &["f"])[0].1, lstat(&ex.join("d/f")).ino());
    assert_eq!(read_all(&b, &b.open(&f, libc::O_RDONLY).unwrap()), b"in d");
    assert!(names_of(&b, &d, &dh).unwrap().contains(&"sub".to_string()));
}

#[test]
fn host_moved_directory_is_no_way_out_openat2() {
    moved_directory("moved2", false);
}

#[test]
fn host_moved_directory_is_no_way_out_openat_walk() {
    moved_directory("movedw", true);
}

/// The thread's test hook forces the per-component walk too.
#[test]
fn host_moved_directory_is_no_way_out_thread_hook() {
    testing::force_openat_fallback(true);
    let r = std::panic::catch_unwind(|| moved_directory("movedh", false));
    testing::force_openat_fallback(false);
    r.unwrap();
}

/// Moving the export's parent or a directory inside the export elsewhere
/// inside it: `..` follows the records, lookups the tree as it is.
#[test]
fn dotdot_of_a_host_moved_subdirectory_stays_inside() {
    let t = TempDir::new("inner");
    let ex = t.export();
    std::fs::create_dir_all(ex.join("a/b/c")).unwrap();
    std::fs::create_dir_all(ex.join("z")).unwrap();
    let b = NativeBackend::new(&ex, SecurityModel::Passthrough).unwrap();
    let (root, ra) = b.attach(b"", &ROOT).unwrap();
    let c = walk(&b, &root, &["a", "b", "c"]).pop().unwrap().0;
    std::fs::rename(ex.join("a/b"), ex.join("z/b")).unwrap();
    // The records still say a/b/c: `..` twice is `a`, three times the root.
    let v = walk(&b, &c, &["..", "..", "..", ".."]);
    assert_eq!(v[1].1, lstat(&ex.join("a")).ino());
    assert_eq!(v[2].1, ra.ino);
    assert_eq!(v[3].1, ra.ino);
    // c is not where its record says: not listed, nothing looked up in it.
    assert_eq!(b.opendir(&c).unwrap_err(), ENOENT);
    assert_eq!(b.walk(&c, &[b"x"]).unwrap_err(), ENOENT);
    // Found anew at its new place, it works.
    let c2 = walk(&b, &root, &["z", "b", "c"]).pop().unwrap().0;
    assert!(b.opendir(&c2).is_ok());
}

/// A scratch directory on the file system of `std::env::temp_dir()`
/// (ext4 on these machines, which reuses inode numbers at once).
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("p9-native-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn reresolution_in(ex: &Path) {
    std::fs::write(ex.join("kept"), b"kept").unwrap();
    std::fs::write(ex.join("moved"), b"moved").unwrap();
    std::fs::write(ex.join("replaced"), b"old").unwrap();
    std::fs::create_dir_all(ex.join("dir/inner")).unwrap();
    std::fs::write(ex.join("dir/x"), b"old x").unwrap();
    let b = NativeBackend::new(ex, SecurityModel::Passthrough).unwrap();
    let (root, _) = b.attach(b"", &ROOT).unwrap();
    let kept = walk1(&b, &root, "kept");
    let moved = walk1(&b, &root, "moved");
    let replaced = walk1(&b, &root, "replaced");
    let dir = walk1(&b, &root, "dir");
    let inner = walk1(&b, &dir, "inner");
    let old_ino = lstat(&ex.join("replaced")).ino();
    assert!(
        b.give_back_idle() >= 5,
        "every idle node gives its descriptor back"
    );

    // Renamed by the host within the export: nothing at the place.
    std::fs::rename(ex.join("moved"), ex.join("moved2")).unwrap();
    assert_eq!(b.getattr(&moved).unwrap_err(), ENOENT);
    assert_eq!(b.open(&moved, libc::O_RDONLY).unwrap_err(), ENOENT);
    // Deleted and replaced by a new file of the same name (on ext4 with
    // the same inode number, which only the file handle tells apart).
    std::fs::remove_file(ex.join("replaced")).unwrap();
    let mut reused = false;
    for i in 0..8 {
        std::fs::write(ex.join("replaced"), b"new").unwrap();
        reused = lstat(&ex.join("replaced")).ino() == old_ino;
        if reused || i == 7 {
            break;
        }
        // Keep this inode busy so that the next file gets another.
        std::fs::rename(ex.join("replaced"), ex.join(format!("busy{i}"))).unwrap();
    }
    eprintln!("inode number reused: {reused}");
    assert_eq!(b.getattr(&replaced).unwrap_err(), ESTALE);
    assert_eq!(b.open(&replaced, libc::O_RDONLY).unwrap_err(), ESTALE);
    assert_eq!(b.remove(&replaced).unwrap_err(), ESTALE);
    assert_eq!(std::fs::read(ex.join("replaced")).unwrap(), b"new");
    // A directory replaced by another one: not looked into.
    std::fs::rename(ex.join("dir"), ex.join("olddir")).unwrap();
    std::fs::create_dir_all(ex.join("dir/inner")).unwrap();
    std::fs::write(ex.join("dir/x"), b"new x").unwrap();
    assert_eq!(b.walk(&dir, &[b"x"]).unwrap_err(), ESTALE);
    assert_eq!(b.opendir(&dir).unwrap_err(), ESTALE);
    assert_eq!(b.getattr(&inner).unwrap_err(), ESTALE);
    assert_eq!(b.walk(&inner, &[b".."]).unwrap_err(), ESTALE);
    // Untouched: found again, same file, and usable as before.
    assert_eq!(b.getattr(&kept).unwrap().ino, lstat(&ex.join("kept")).ino());
    assert_eq!(
        read_all(&b, &b.open(&kept, libc::O_RDONLY).unwrap()),
        b"kept"
    );
    // And the new files, walked anew, are theirs.
    let fresh = walk1(&b, &root, "replaced");
    assert_eq!(
        read_all(&b, &b.open(&fresh, libc::O_RDONLY).unwrap()),
        b"new"
    );
    let x = walk(&b, &root, &["dir", "x"]).pop().unwrap().0;
    assert_eq!(read_all(&b, &b.open(&x, libc::O_RDONLY).unwrap()), b"new x");
}

#[test]
fn given_back_nodes_are_checked_when_found_again_tmpfs() {
    let t = TempDir::new("reresolve");
    reresolution_in(&t.export());
}

#[test]
fn given_back_nodes_are_checked_when_found_again_reused_inodes() {
    let s = Scratch::new("reresolve");
    reresolution_in(&s.0);
}

/// An open handle needs no node descriptor: with the node's given back
/// and the file unlinked, the handle still reads, answers `fstat` and
/// takes attribute changes; the export root never gives its descriptor
/// back.
#[test]
fn open_handles_outlive_given_back_nodes() {
    let t = TempDir::new("inuse");
    let ex = t.export();
    std::fs::write(ex.join("open"), b"open").unwrap();
    let b = NativeBackend::new(&ex, SecurityModel::Passthrough).unwrap();
    let (root, ra) = b.attach(b"", &ROOT).unwrap();
    let f = walk1(&b, &root, "open");
    let h = b.open(&f, libc::O_RDWR).unwrap();
    assert_eq!(b.give_back_idle(), 1, "the file's node, not the root's");
    assert_eq!(b.give_back_idle(), 0);
    assert_eq!(b.getattr(&root).unwrap().ino, ra.ino);
    b.unlink(&root, b"open", false).unwrap();
    assert_eq!(read_all(&b, &h), b"open");
    let set = p9_engine::backend::SetAttr {
        size: Some(2),
        mode: Some(0o600),
        ..Default::default()
    };
    b.setattr(&f, Some(&h), &set).unwrap();
    let a = b.fstat(&f, &h).unwrap();
    assert_eq!((a.nlink, a.size, a.mode & 0o7777), (0, 2, 0o600));
    assert_eq!(read_all(&b, &h), b"op");
    // Without the handle the unlinked file has no place: ENOENT.
    assert_eq!(b.getattr(&f).unwrap_err(), ENOENT);
    assert_eq!(b.walk(&f, &[b"x"]).unwrap_err(), ENOTDIR);
}
