// SPDX-License-Identifier: GPL-2.0-or-later
//! Renames racing other requests, with both kinds of backend:
//!
//! * fd-based (`NativeBackend`): no rename lock; walks and directory reads
//!   racing renames see either the old or the new tree, never a mix or
//!   garbage, and fids hold their files whatever happens to the names;
//! * path-based (`PathBackend`, like QEMU's local backend): renames take
//!   the rename lock for writing and fix the path of every fid at or
//!   under the renamed entry (9p.c `v9fs_complete_rename{,at}` under
//!   `v9fs_path_write_lock`, `v9fs_fix_path`); requests using paths hold
//!   it for reading (9p.c's `v9fs_co_*` wrappers).

mod common;
mod support_backends;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use p9_client::Client;
use p9_engine::backend::Backend;
use p9_engine::host::ThreadHost;
use p9_engine::{Config, Server};
use p9_native::NativeBackend;
use p9_wire::consts::{dotl_open, getattr};
use p9_wire::errno::ENOENT;
use p9_wire::{Qid, Tmessage};

use common::TempDir;
use support_backends::{eventually, within_deadline, Call, Gated, PathBackend};

/// A served export, after Tversion and Tattach.
struct Env<B: Backend> {
    // Dropped before the directory.
    client: Client<ThreadHost<B>>,
    root: u32,
    dir: TempDir,
}

impl<B: Backend> Env<B> {
    fn with(dir: TempDir, backend: B, threads: usize) -> Env<B> {
        let client = Client::new(common::host(backend, Config::default(), threads));
        let (root, _) = common::session(&client, "9P2000.L");
        Env { client, root, dir }
    }

    fn server(&self) -> &Arc<Server<B>> {
        self.client.transport().server()
    }

    /// Walk from the root to `rel` (all of it) on a new fid.
    fn walk(&self, rel: &str) -> Result<u32, p9_wire::Errno> {
        let names = split(rel);
        let (fid, qids) = self.client.walk_new(self.root, &names)?;
        if qids.len() != names.len() {
            return Err(ENOENT);
        }
        Ok(fid)
    }

    /// The qid of `rel`, by a fresh walk (the fid is clunked).
    fn qid(&self, rel: &str) -> Qid {
        let fid = self.walk(rel).unwrap_or_else(|e| panic!("walk {rel}: {e}"));
        let q = self
            .client
            .getattr(fid, getattr::BASIC)
            .expect("Tgetattr")
            .qid;
        self.client.clunk(fid).expect("Tclunk");
        q
    }

    /// The qid a fid's Tgetattr reports.
    fn qid_of(&self, fid: u32) -> Qid {
        self.client
            .getattr(fid, getattr::BASIC)
            .unwrap_or_else(|e| panic!("Tgetattr on fid {fid}: {e}"))
            .qid
    }

    fn read_all(&self, fid: u32) -> Vec<u8> {
        self.client.lopen(fid, dotl_open::RDONLY).expect("Tlopen");
        self.client.read_to_end(fid, 0).expect("Tread")
    }

    fn list(&self, rel: &str) -> Vec<String> {
        let fid = self.walk(rel).unwrap_or_else(|e| panic!("walk {rel}: {e}"));
        self.client
            .lopen(fid, dotl_open::RDONLY | dotl_open::DIRECTORY)
            .expect("Tlopen of a directory");
        let mut names: Vec<String> = self
            .client
            .readdir_all(fid)
            .expect("Treaddir")
            .into_iter()
            .map(|d| d.name.to_string_lossy().into_owned())
            .collect();
        self.client.clunk(fid).expect("Tclunk");
        names.sort();
        names
    }
}

fn split(rel: &str) -> Vec<&str> {
    rel.split('/').filter(|s| !s.is_empty()).collect()
}

fn native(name: &str, threads: usize) -> Env<NativeBackend> {
    let dir = TempDir::new(name);
    let b = common::native_backend(dir.path());
    Env::with(dir, b, threads)
}

fn pathbased(name: &str, threads: usize) -> Env<PathBackend> {
    let dir = TempDir::new(name);
    let b = PathBackend::new(dir.path());
    Env::with(dir, b, threads)
}

fn mkdirs(dir: &TempDir, rels: &[&str]) {
    for r in rels {
        std::fs::create_dir_all(dir.join(r)).unwrap();
    }
}

/// Identity of a file as a qid gives it (the version follows mtime).
fn ident(q: &Qid) -> (u8, u64) {
    (q.typ, q.path)
}

/// fd-based backend: walks, directory reads and a held fid racing renames
/// of directories back and forth.
#[test]
fn native_walks_and_readdirs_race_renames() {
    let e = Arc::new(native("rename-race", 8));
    mkdirs(&e.dir, &["a/b", "p/m", "q"]);
    std::fs::write(e.dir.join("a/b/f"), b"payload").unwrap();
    for i in 0..10 {
        std::fs::write(e.dir.join(format!("p/e{i}")), b"").unwrap();
    }
    for n in ["x", "y", "z"] {
        std::fs::write(e.dir.join(format!("p/m/{n}")), n).unwrap();
    }
    let abf: [(u8, u64); 3] = ["a", "a/b", "a/b/f"].map(|r| ident(&e.qid(r)));
    let (qp, qq, qm, qx) = (
        ident(&e.qid("p")),
        ident(&e.qid("q")),
        ident(&e.qid("p/m")),
        ident(&e.qid("p/m/x")),
    );
    let held = e.walk("a/b/f").unwrap();
    let pdir = e.walk("p").unwrap();
    let qdir = e.walk("q").unwrap();
    let mfid = e.walk("p/m").unwrap();
    e.client
        .lopen(mfid, dotl_open::RDONLY | dotl_open::DIRECTORY)
        .unwrap();
    let plist = e.walk("p").unwrap();
    e.client
        .lopen(plist, dotl_open::RDONLY | dotl_open::DIRECTORY)
        .unwrap();

    const ROUNDS: usize = 1000;
    let env = Arc::clone(&e);
    let (walks_ok, walks_enoent) = within_deadline("renames racing walks", move || {
        let e = &*env;
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let renamers = [
                s.spawn(|| {
                    for _ in 0..ROUNDS {
                        e.client
                            .renameat(e.root, "a", e.root, "a2")
                            .expect("a -> a2");
                        e.client
                            .renameat(e.root, "a2", e.root, "a")
                            .expect("a2 -> a");
                    }
                }),
                s.spawn(|| {
                    for _ in 0..ROUNDS {
                        e.client.renameat(pdir, "m", qdir, "m").expect("p/m -> q/m");
                        e.client.renameat(qdir, "m", pdir, "m").expect("q/m -> p/m");
                    }
                }),
            ];
            let walkers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let (mut ok, mut enoent) = (0usize, 0usize);
                        // At least one round, even if the renames are
                        // already over.
                        loop {
                            for top in ["a", "a2"] {
                                match e.client.walk_new(e.root, &[top, "b", "f"]) {
                                    Ok((fid, qids)) => {
                                        let got: Vec<_> = qids.iter().map(ident).collect();
                                        assert_eq!(got, abf, "walk {top}/b/f");
                                        e.client.clunk(fid).expect("Tclunk");
                                        ok += 1;
                                    }
                                    Err(err) => {
                                        assert_eq!(err, ENOENT, "walk {top}/b/f");
                                        enoent += 1;
                                    }
                                }
                            }
                            for (top, qtop) in [("p", qp), ("q", qq)] {
                                let (fid, qids) = e
                                    .client
                                    .walk_new(e.root, &[top, "m", "x"])
                                    .unwrap_or_else(|err| panic!("walk {top}/m/x: {err}"));
                                let got: Vec<_> = qids.iter().map(ident).collect();
                                if got.len() == 3 {
                                    assert_eq!(got, [qtop, qm, qx], "walk {top}/m/x");
                                    e.client.clunk(fid).expect("Tclunk");
                                } else {
                                    // m is elsewhere: a partial walk that
                                    // stops after the top directory.
                                    assert_eq!(got, [qtop], "partial walk {top}/m/x");
                                    assert_eq!(e.client.clunk(fid), Err(ENOENT));
                                }
                            }
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                        }
                        (ok, enoent)
                    })
                })
                .collect();
            // The moving directory itself, read through a fid opened
            // before: always exactly its entries.
            let mreader = s.spawn(|| {
                let want: HashSet<String> = [".", "..", "x", "y", "z"].map(String::from).into();
                while !stop.load(Ordering::Relaxed) {
                    let names: Vec<String> = e
                        .client
                        .readdir_all(mfid)
                        .expect("Treaddir of the moving directory")
                        .into_iter()
                        .map(|d| d.name.to_string_lossy().into_owned())
                        .collect();
                    let set: HashSet<String> = names.iter().cloned().collect();
                    assert_eq!(names.len(), set.len(), "duplicates: {names:?}");
                    assert_eq!(set, want);
                }
            });
            // The directory it moves in and out of.
            let preader = s.spawn(|| {
                let fixed: HashSet<String> = (0..10)
                    .map(|i| format!("e{i}"))
                    .chain([".".into(), "..".into()])
                    .collect();
                while !stop.load(Ordering::Relaxed) {
                    let mut all = Vec::new();
                    let mut offset = 0;
                    loop {
                        let batch = e.client.readdir(plist, offset, 65000).expect("Treaddir");
                        let Some(last) = batch.last() else { break };
                        offset = last.offset;
                        let names: Vec<String> = batch
                            .iter()
                            .map(|d| d.name.to_string_lossy().into_owned())
                            .collect();
                        let set: HashSet<&String> = names.iter().collect();
                        assert_eq!(
                            set.len(),
                            names.len(),
                            "duplicates in one Rreaddir: {names:?}"
                        );
                        all.extend(names);
                    }
                    for n in &all {
                        assert!(
                            fixed.contains(n) || n == "m",
                            "garbage name {n:?} in {all:?}"
                        );
                    }
                    for f in &fixed {
                        let count = all.iter().filter(|n| *n == f).count();
                        assert_eq!(count, 1, "{f} listed {count} times: {all:?}");
                    }
                    // "m" may be missed or, when it left and came back
                    // between two Treaddirs, listed again at its new
                    // position (POSIX leaves entries added or removed
                    // during a listing unspecified); within one Rreaddir
                    // it is unique (checked above).
                }
            });
            // A fid walked before any rename keeps its file.
            let holder = s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let q = e.qid_of(held);
                    assert_eq!(ident(&q), abf[2], "held fid changed file");
                }
            });
            for r in renamers {
                r.join().expect("renamer");
            }
            stop.store(true, Ordering::Relaxed);
            let counts: Vec<(usize, usize)> = walkers
                .into_iter()
                .map(|w| w.join().expect("walker"))
                .collect();
            mreader.join().expect("reader of m");
            preader.join().expect("reader of p");
            holder.join().expect("holder");
            counts.iter().fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
        })
    });
    eprintln!("walks of a|a2/b/f: {walks_ok} complete, {walks_enoent} ENOENT");
    // Every walk of a or a2 either worked or found nothing: at any instant
    // exactly one of the two names exists, so at least one of each pair
    // may fail, and both a complete and a failed walk must have happened
    // across the pairs.
    assert!(walks_ok > 0, "no walk of a|a2/b/f ever completed");
    assert!(walks_enoent > 0, "no walk of a|a2/b/f ever failed");

    // Back where they started; the held fid still reads its file.
    assert_eq!(e.qid("a/b/f").path, abf[2].1);
    assert!(!e.dir.join("a2").exists() && e.dir.join("p/m/x").exists());
    assert_eq!(e.read_all(held), b"payload");
}

/// fd-based backend: a fid walked before its parent (and then the file
/// itself) is renamed keeps referring to the same file.
#[test]
fn native_fid_survives_rename_of_its_parent() {
    let e = native("rename-parent", 4);
    mkdirs(&e.dir, &["a/b"]);
    std::fs::write(e.dir.join("a/b/f"), b"payload").unwrap();
    let f = e.walk("a/b/f").unwrap();
    let b = e.walk("a/b").unwrap();
    let q = e.qid_of(f);

    e.client
        .renameat(e.root, "a", e.root, "z")
        .expect("Trenameat a -> z");
    assert_eq!(e.qid_of(f), q, "same file after its grandparent's rename");
    assert_eq!(e.qid("z/b/f"), q);
    assert_eq!(e.client.walk_new(e.root, &["a"]).err(), Some(ENOENT));
    // The directory fid follows too: walk from it, rename inside it.
    let (g, qs) = e
        .client
        .walk_new(b, &["f"])
        .expect("walk from the moved dir");
    assert_eq!(qs, vec![q]);
    e.client
        .renameat(b, "f", b, "g")
        .expect("Trenameat f -> g in moved dir");
    assert!(e.dir.join("z/b/g").exists());
    assert_eq!(e.qid_of(f), q);
    assert_eq!(e.read_all(f), b"payload");
    assert_eq!(e.read_all(g), b"payload");
}

/// Path-based backend: fids at and under a directory renamed with
/// Trenameat follow it (9p.c `v9fs_fix_path`), even when the old path is
/// taken by another file afterwards.
#[test]
fn path_fids_follow_renameat_of_an_ancestor() {
    let e = pathbased("rename-path-at", 4);
    mkdirs(&e.dir, &["a/b"]);
    std::fs::write(e.dir.join("a/b/c"), b"c-data").unwrap();
    let qc = e.qid("a/b/c");
    let qb = e.qid("a/b");
    let c = e.walk("a/b/c").unwrap();
    let b = e.walk("a/b").unwrap();
    let a = e.walk("a").unwrap();

    e.client
        .renameat(e.root, "a", e.root, "z")
        .expect("Trenameat a -> z");
    // A new a/b/c at the old path: a fid left on the old path would now
    // see this file.
    mkdirs(&e.dir, &["a/b"]);
    std::fs::write(e.dir.join("a/b/c"), b"impostor").unwrap();
    let impostor = e.qid("a/b/c");
    assert_ne!(ident(&impostor), ident(&qc));

    assert_eq!(
        ident(&e.qid_of(c)),
        ident(&qc),
        "fid on a/b/c follows to z/b/c"
    );
    assert_eq!(ident(&e.qid_of(b)), ident(&qb), "fid on a/b follows to z/b");
    assert_eq!(ident(&e.qid("z/b/c")), ident(&qc));
    // Walks from the moved fids, readdir under the new name.
    let (c2, qs) = e
        .client
        .walk_new(a, &["b", "c"])
        .expect("walk from moved a");
    assert_eq!(
        qs.iter().map(ident).collect::<Vec<_>>(),
        [ident(&qb), ident(&qc)]
    );
    assert_eq!(e.list("z/b"), [".", "..", "c"]);
    // Creating through the moved directory fid creates in z/b.
    let nb = e.client.alloc_fid();
    e.client.clone_fid(b, nb).unwrap();
    e.client
        .lcreate(nb, "new", dotl_open::RDWR | dotl_open::CREATE, 0o644, 0)
        .expect("Tlcreate in the moved directory");
    assert!(e.dir.join("z/b/new").exists() && !e.dir.join("a/b/new").exists());
    assert_eq!(e.read_all(c), b"c-data");
    assert_eq!(e.read_all(c2), b"c-data");
}

/// Path-based backend: Trename moves a fid and every fid under it.
#[test]
fn path_trename_moves_the_fid_and_its_descendants() {
    let e = pathbased("rename-path-fid", 4);
    mkdirs(&e.dir, &["x/d", "y"]);
    std::fs::write(e.dir.join("x/d/g"), b"g-data").unwrap();
    let (qd, qg) = (e.qid("x/d"), e.qid("x/d/g"));
    let d = e.walk("x/d").unwrap();
    let g = e.walk("x/d/g").unwrap();
    let y = e.walk("y").unwrap();

    e.client.rename(d, y, "e").expect("Trename x/d -> y/e");
    assert!(e.dir.join("y/e/g").exists() && !e.dir.join("x/d").exists());
    mkdirs(&e.dir, &["x/d"]);
    std::fs::write(e.dir.join("x/d/g"), b"impostor").unwrap();
    assert_eq!(ident(&e.qid_of(d)), ident(&qd), "renamed fid is y/e");
    assert_eq!(ident(&e.qid_of(g)), ident(&qg), "fid under it is y/e/g");

    // Rename the file fid within its (moved) directory.
    e.client.rename(g, d, "h").expect("Trename y/e/g -> y/e/h");
    assert!(e.dir.join("y/e/h").exists() && !e.dir.join("y/e/g").exists());
    assert_eq!(ident(&e.qid_of(g)), ident(&qg));
    let (h, _) = e.client.walk_new(d, &["h"]).expect("walk y/e/h");
    assert_eq!(ident(&e.qid_of(h)), ident(&qg));
    assert_eq!(e.list("y/e"), [".", "..", "h"]);
    assert_eq!(e.read_all(g), b"g-data");
}

/// Path-based backend: a rename waits for a request that is using paths
/// inside its backend call (9p.c: `v9fs_co_lstat` holds the path read
/// lock around the call; `v9fs_renameat` takes it for writing), then runs
/// and fixes the fid.
#[test]
fn path_rename_waits_for_requests_using_paths() {
    let dir = TempDir::new("rename-path-lock");
    mkdirs(&dir, &["k"]);
    std::fs::write(dir.join("k/file"), b"k").unwrap();
    let backend = Gated::new(PathBackend::new(dir.path()));
    let gate = Arc::clone(&backend.gate);
    let e = Env::with(dir, backend, 4);
    let x = e.walk("k/file").unwrap();
    let qx = e.qid_of(x);

    gate.hold(|c| *c == Call::Getattr);
    let getattr = e.client.send(&Tmessage::Getattr {
        fid: x,
        request_mask: getattr::BASIC,
    });
    gate.wait_entered(1);
    let rename = e.client.send(&Tmessage::Renameat {
        olddirfid: e.root,
        oldname: "k".into(),
        newdirfid: e.root,
        newname: "k2".into(),
    });
    // Holds however long we wait; the pause gives a wrong rename the
    // chance to happen.
    std::thread::sleep(Duration::from_millis(100));
    let renamed_early = e.dir.join("k2").exists();
    let rename_done = rename.is_done();
    gate.release();
    assert!(
        !renamed_early && !rename_done,
        "the rename ran while a Tgetattr was inside its backend call on a path \
         under it (renamed: {renamed_early}, replied: {rename_done})"
    );
    let st = getattr.wait().expect("Rgetattr").expect("Tgetattr");
    assert_eq!(ident(&reply_qid(st)), ident(&qx));
    rename.wait().expect("Rrenameat").expect("Trenameat");
    assert!(e.dir.join("k2/file").exists());
    assert_eq!(ident(&e.qid_of(x)), ident(&qx), "fid fixed to k2/file");
}

/// The qid of an Rgetattr reply.
fn reply_qid(r: p9_client::Reply) -> Qid {
    match r.msg() {
        p9_wire::Rmessage::Getattr(st) => st.qid,
        other => panic!("not an Rgetattr: {other:?}"),
    }
}

/// Path-based backend: many renames of some directories concurrent with
/// walks of others and Tgetattrs on fids under the renamed ones: all
/// complete (no deadlock), held fids never lose their file, and the
/// server counted every request.
#[test]
fn path_concurrent_renames_and_walks_complete() {
    const N: usize = 4;
    const RENAMES: usize = 101;
    const WALKS: usize = 100;
    let e = Arc::new(pathbased("rename-path-many", 8));
    for i in 0..N {
        mkdirs(&e.dir, &[&format!("r{i}/sub"), &format!("w{i}/sub")]);
        std::fs::write(e.dir.join(format!("r{i}/sub/file")), b"r").unwrap();
        std::fs::write(e.dir.join(format!("w{i}/sub/file")), b"w").unwrap();
    }
    let held: Vec<(u32, Qid)> = (0..N)
        .map(|i| {
            let rel = format!("r{i}/sub/file");
            (e.walk(&rel).unwrap(), e.qid(&rel))
        })
        .collect();
    let wq: Vec<Qid> = (0..N).map(|i| e.qid(&format!("w{i}/sub/file"))).collect();
    let before = e.server().stats().requests;

    let env = Arc::clone(&e);
    let held2 = held.clone();
    let getattrs = within_deadline("concurrent renames and walks", move || {
        let e = &*env;
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let renamers: Vec<_> = (0..N)
                .map(|i| {
                    s.spawn(move || {
                        let (a, b) = (format!("r{i}"), format!("r{i}_x"));
                        for k in 0..RENAMES {
                            let (from, to) = if k % 2 == 0 { (&a, &b) } else { (&b, &a) };
                            e.client
                                .renameat(e.root, from, e.root, to)
                                .unwrap_or_else(|err| panic!("rename {from} -> {to}: {err}"));
                        }
                    })
                })
                .collect();
            let walkers: Vec<_> = (0..N)
                .map(|i| {
                    let wq = &wq;
                    s.spawn(move || {
                        let w = format!("w{i}");
                        for _ in 0..WALKS {
                            let (fid, qids) = e
                                .client
                                .walk_new(e.root, &[w.as_str(), "sub", "file"])
                                .expect("walk of an unrelated directory");
                            assert_eq!(qids.len(), 3);
                            assert_eq!(ident(&e.qid_of(fid)), ident(&wq[i]));
                            e.client.clunk(fid).expect("Tclunk");
                        }
                    })
                })
                .collect();
            let holders: Vec<_> = held2
                .iter()
                .map(|&(fid, q)| {
                    let stop = &stop;
                    s.spawn(move || {
                        let mut n = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            // Under the rename lock, a fid's path is fixed
                            // with the rename: never a moment where it
                            // names nothing.
                            assert_eq!(ident(&e.qid_of(fid)), ident(&q));
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            for r in renamers {
                r.join().expect("renamer");
            }
            for w in walkers {
                w.join().expect("walker");
            }
            stop.store(true, Ordering::Relaxed);
            holders
                .into_iter()
                .map(|h| h.join().expect("holder"))
                .sum::<u64>()
        })
    });

    for (i, &(fid, q)) in held.iter().enumerate() {
        assert!(e.dir.join(format!("r{i}_x/sub/file")).exists());
        assert_eq!(ident(&e.qid_of(fid)), ident(&q));
        assert_eq!(ident(&e.qid(&format!("r{i}_x/sub/file"))), ident(&q));
        assert_eq!(e.read_all(fid), b"r");
    }
    // Renames + (walk, getattr, clunk) per walk + the holders' getattrs,
    // then the checks above: the server counted at least those.
    let expected = before + (N * RENAMES + N * WALKS * 3) as u64 + getattrs;
    eventually("the server counted every request", || {
        e.server().stats().requests >= expected
    });
    eventually("no request left active", || e.server().stats().active == 0);
}
