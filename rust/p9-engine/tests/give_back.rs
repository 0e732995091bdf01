// SPDX-License-Identifier: GPL-2.0-or-later
//! Fids whose node descriptor the native backend gave back (as it does
//! beyond its descriptor budget) are found again at their place when used,
//! and checked to be the same file: a file the host renamed is `ENOENT`,
//! one the host replaced by another file of the same name is `ESTALE`; a
//! fid never silently refers to another file.  Untouched fids work as
//! before, and renames made through the server are followed.

mod common;

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use p9_engine::Config;
use p9_wire::consts::{dotl_open, getattr};
use p9_wire::errno::{ENOENT, ESTALE};

use common::{TempDir, TestClient, TestServer};

struct Env {
    client: TestClient,
    root: u32,
    dir: TempDir,
}

impl Env {
    fn new(name: &str) -> Env {
        let dir = TempDir::new(name);
        let client = common::serve(dir.path(), Config::default(), 4);
        let (root, _) = common::session(&client, "9P2000.L");
        Env { client, root, dir }
    }

    fn server(&self) -> &Arc<TestServer> {
        self.client.transport().server()
    }

    fn fid(&self, names: &[&str]) -> u32 {
        let (f, q) = self.client.walk_new(self.root, names).unwrap();
        assert_eq!(q.len(), names.len(), "walk {names:?}");
        f
    }

    fn ino(&self, rel: &str) -> u64 {
        std::fs::symlink_metadata(self.dir.join(rel)).unwrap().ino()
    }

    fn give_back(&self) -> usize {
        self.server().backend().give_back_idle()
    }
}

#[test]
fn given_back_fids_never_refer_to_another_file() {
    let env = Env::new("give-back");
    let c = &env.client;
    for f in ["kept", "renamed", "replaced"] {
        std::fs::write(env.dir.join(f), f).unwrap();
    }
    std::fs::create_dir_all(env.dir.join("dir/inner")).unwrap();
    std::fs::write(env.dir.join("dir/x"), b"old x").unwrap();
    let kept = env.fid(&["kept"]);
    let renamed = env.fid(&["renamed"]);
    let replaced = env.fid(&["replaced"]);
    let dir = env.fid(&["dir"]);
    let inner = env.fid(&["dir", "inner"]);
    let kept_ino = env.ino("kept");
    assert!(env.give_back() >= 5);

    // Renamed by the host within the export: its place is empty.
    std::fs::rename(env.dir.join("renamed"), env.dir.join("elsewhere")).unwrap();
    assert_eq!(c.getattr(renamed, getattr::BASIC).err(), Some(ENOENT));
    assert_eq!(c.lopen(renamed, dotl_open::RDONLY).err(), Some(ENOENT));
    // Deleted and replaced by another file of the same name.
    let old = env.ino("replaced");
    std::fs::remove_file(env.dir.join("replaced")).unwrap();
    std::fs::write(env.dir.join("replaced"), b"new file").unwrap();
    assert_ne!(
        env.ino("replaced"),
        old,
        "tmpfs does not reuse inode numbers"
    );
    assert_eq!(c.getattr(replaced, getattr::BASIC).err(), Some(ESTALE));
    assert_eq!(c.lopen(replaced, dotl_open::RDONLY).err(), Some(ESTALE));
    let clone = c.alloc_fid();
    assert_eq!(c.clone_fid(replaced, clone).err(), Some(ESTALE));
    assert_eq!(c.remove(replaced).err(), Some(ESTALE));
    assert_eq!(
        std::fs::read(env.dir.join("replaced")).unwrap(),
        b"new file"
    );
    // A directory replaced by another: nothing looked up in it, listed,
    // or reached from it.
    std::fs::rename(env.dir.join("dir"), env.dir.join("olddir")).unwrap();
    std::fs::create_dir_all(env.dir.join("dir/inner")).unwrap();
    std::fs::write(env.dir.join("dir/x"), b"new x").unwrap();
    assert_eq!(c.walk_new(dir, &["x"]).err(), Some(ESTALE));
    assert_eq!(
        c.lopen(dir, dotl_open::RDONLY | dotl_open::DIRECTORY).err(),
        Some(ESTALE)
    );
    assert_eq!(c.getattr(inner, getattr::BASIC).err(), Some(ESTALE));
    assert_eq!(c.walk_new(inner, &[".."]).err(), Some(ESTALE));
    assert_eq!(c.mkdir(dir, "made", 0o755, 0).err(), Some(ESTALE));
    assert!(!env.dir.join("dir/made").exists() && !env.dir.join("olddir/made").exists());

    // Untouched: the same file, usable as before.
    assert_eq!(c.getattr(kept, getattr::BASIC).unwrap().qid.path, kept_ino);
    c.lopen(kept, dotl_open::RDONLY).unwrap();
    assert_eq!(c.read(kept, 0, 64).unwrap(), b"kept");
    // The new files, walked anew, are reached.
    let x = env.fid(&["dir", "x"]);
    c.lopen(x, dotl_open::RDONLY).unwrap();
    assert_eq!(c.read(x, 0, 64).unwrap(), b"new x");
}

/// Renames made through the server move the records with them: fids at
/// and under a renamed directory, given back, are found at the new place.
#[test]
fn given_back_fids_follow_renames_made_through_the_server() {
    let env = Env::new("give-back-rename");
    let c = &env.client;
    std::fs::create_dir_all(env.dir.join("a/b")).unwrap();
    std::fs::write(env.dir.join("a/b/f"), b"payload").unwrap();
    let b = env.fid(&["a", "b"]);
    let f = env.fid(&["a", "b", "f"]);
    let q = c.getattr(f, getattr::BASIC).unwrap().qid;
    c.renameat(env.root, "a", env.root, "z").unwrap();
    c.renameat(b, "f", b, "g").unwrap();
    assert!(env.give_back() >= 2);
    assert_eq!(c.getattr(f, getattr::BASIC).unwrap().qid.path, q.path);
    c.lopen(f, dotl_open::RDONLY).unwrap();
    assert_eq!(c.read(f, 0, 64).unwrap(), b"payload");
    let (g, qs) = c.walk_new(b, &["g"]).unwrap();
    assert_eq!(qs[0].path, q.path);
    let up: Vec<u64> = c
        .walk_new(b, &["..", "..", "z"])
        .unwrap()
        .1
        .iter()
        .map(|q| q.path)
        .collect();
    assert_eq!(up, [env.ino("z"), env.ino("."), env.ino("z")]);
    let b2 = c.alloc_fid();
    c.clone_fid(b, b2).unwrap();
    c.rename(b2, env.root, "top").unwrap();
    assert!(env.give_back() >= 2);
    c.lopen(g, dotl_open::RDONLY).unwrap();
    assert_eq!(c.read(g, 0, 64).unwrap(), b"payload");
    assert!(env.dir.join("top/g").exists());
}
