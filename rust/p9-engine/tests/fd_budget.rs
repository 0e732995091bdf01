// SPDX-License-Identifier: GPL-2.0-or-later
//! A fid storm by one session while another keeps working, under a low
//! `RLIMIT_NOFILE` (the native backend's descriptor budget).
//!
//! Its own test process with a single test, so lowering the descriptor
//! limit (256: reserve 85, budget 171, ceiling 214) affects nothing else.
//! Two sessions over the same export, each with its own backend and
//! server (as `p9serve` makes one per connection):
//!
//! * session 1 walks to 5,000 files (20 times the limit) and keeps every
//!   fid;
//! * meanwhile session 2 creates, writes, reads, lists, makes directories
//!   and walks, and every request works;
//! * the process never holds more descriptors than the ceiling, and never
//!   runs out;
//! * afterwards session 1's fids still refer to their files: getattr,
//!   walks from its directory fids, open and read.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use p9_engine::Config;
use p9_native::budget_stats;
use p9_native::testing::set_nofile;
use p9_wire::consts::{dotl_open, getattr};

use common::{TempDir, TestClient};

const LIMIT: u64 = 256;
const DIRS: usize = 40;
const PER_DIR: usize = 125;
const FILES: usize = DIRS * PER_DIR;

/// Descriptors open in this process (the directory's own one left out).
fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
        .saturating_sub(1)
}

fn content(j: usize, i: usize) -> String {
    format!("file {i} of directory {j}")
}

/// Unwrap with the round and the request in the panic message.
trait OrFail<T> {
    fn or_fail(self, k: usize, what: &str) -> T;
}

impl<T> OrFail<T> for Result<T, p9_wire::Errno> {
    fn or_fail(self, k: usize, what: &str) -> T {
        self.unwrap_or_else(|e| panic!("session 2, round {k}: {what}: {e}"))
    }
}

/// Session 2's round `k`: create, write, read back, list, mkdir, walk and
/// read an existing file, getattr; every call must work.
fn other_session_round(c: &TestClient, root: u32, k: usize) {
    let ctx = |what: &str| format!("session 2, round {k}: {what}");
    let (work, _) = c.walk_new(root, &["work"]).or_fail(k, "walk work");
    let nf = c.alloc_fid();
    c.clone_fid(work, nf).or_fail(k, "clone");
    let name = format!("new{k}");
    c.lcreate(nf, &name, dotl_open::RDWR, 0o644, 0)
        .or_fail(k, "Tlcreate");
    let data = format!("written in round {k}");
    assert_eq!(
        c.write(nf, 0, data.as_bytes()).or_fail(k, "Twrite") as usize,
        data.len()
    );
    assert_eq!(
        c.read(nf, 0, 256).or_fail(k, "Tread"),
        data.as_bytes(),
        "{}",
        ctx("read back")
    );
    c.clunk(nf).or_fail(k, "clunk");
    c.mkdir(work, format!("dir{k}"), 0o755, 0)
        .or_fail(k, "Tmkdir");
    let (ld, _) = c.walk_new(root, &["work"]).or_fail(k, "walk work again");
    c.lopen(ld, dotl_open::RDONLY | dotl_open::DIRECTORY)
        .or_fail(k, "Tlopen work");
    let names: BTreeSet<String> = c
        .readdir_all(ld)
        .or_fail(k, "Treaddir")
        .iter()
        .map(|e| e.name.to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&name) && names.contains(&format!("dir{k}")),
        "{}: {names:?}",
        ctx("listing")
    );
    c.clunk(ld).or_fail(k, "clunk");
    let (j, i) = (k % DIRS, (k * 7) % PER_DIR);
    let (f, qids) = c
        .walk_new(root, &[format!("d{j}"), format!("f{i}")])
        .or_fail(k, "walk to a file");
    assert_eq!(qids.len(), 2, "{}", ctx("walk to a file"));
    c.lopen(f, dotl_open::RDONLY).or_fail(k, "Tlopen");
    assert_eq!(
        c.read(f, 0, 256).or_fail(k, "Tread"),
        content(j, i).as_bytes()
    );
    c.getattr(f, getattr::BASIC).or_fail(k, "Tgetattr");
    c.clunk(f).or_fail(k, "clunk");
    c.clunk(work).or_fail(k, "clunk");
}

#[test]
fn a_fid_storm_does_not_starve_another_session() {
    set_nofile(LIMIT);
    let dir = TempDir::new("fd-budget");
    for j in 0..DIRS {
        std::fs::create_dir(dir.join(format!("d{j}"))).unwrap();
        for i in 0..PER_DIR {
            std::fs::write(dir.join(format!("d{j}/f{i}")), content(j, i)).unwrap();
        }
    }
    std::fs::create_dir(dir.join("work")).unwrap();
    let c1 = common::serve(dir.path(), Config::default(), 4);
    let c2 = common::serve(dir.path(), Config::default(), 4);
    let s = budget_stats();
    assert_eq!(
        (s.limit, s.reserve, s.budget, s.ceiling),
        (256, 85, 171, 214)
    );
    let baseline = fds();
    assert!(
        baseline + s.ceiling < LIMIT as usize,
        "{baseline} descriptors before the sessions"
    );
    let (root1, _) = common::session(&c1, "9P2000.L");
    let (root2, _) = common::session(&c2, "9P2000.L");

    let storming = AtomicBool::new(true);
    let (fids, dir_fids, rounds, most) = std::thread::scope(|s| {
        let storm = s.spawn(|| {
            let mut fids = Vec::with_capacity(FILES);
            let mut dir_fids = Vec::with_capacity(DIRS);
            for j in 0..DIRS {
                let (d, _) = c1
                    .walk_new(root1, &[format!("d{j}")])
                    .unwrap_or_else(|e| panic!("session 1: walk d{j}: {e}"));
                dir_fids.push(d);
                for i in 0..PER_DIR {
                    let (f, q) = c1
                        .walk_new(d, &[format!("f{i}")])
                        .unwrap_or_else(|e| panic!("session 1: walk d{j}/f{i}: {e}"));
                    assert_eq!(q.len(), 1);
                    fids.push(f);
                }
            }
            storming.store(false, Ordering::Relaxed);
            (fids, dir_fids)
        });
        let other = s.spawn(|| {
            let mut k = 0;
            let mut most = 0;
            // At least a few rounds, however fast the storm is.
            while storming.load(Ordering::Relaxed) || k < 20 {
                other_session_round(&c2, root2, k);
                let s = budget_stats();
                most = most.max(s.nodes + s.handles);
                let open = fds();
                assert!(open < LIMIT as usize, "{open} descriptors open");
                k += 1;
            }
            (k, most)
        });
        let (fids, dir_fids) = storm.join().expect("session 1");
        let (rounds, most) = other.join().expect("session 2");
        (fids, dir_fids, rounds, most)
    });
    let s = budget_stats();
    eprintln!(
        "{} fids in session 1, {rounds} rounds of session 2; at most {most} descriptors \
         held by the backends, {} given back",
        fids.len(),
        s.given_back
    );
    assert_eq!(c1.transport().server().stats().fids, FILES + DIRS + 1);
    assert!(
        most <= s.ceiling,
        "{most} descriptors held, ceiling {}",
        s.ceiling
    );
    assert!(s.given_back as usize >= FILES - s.budget, "{s:?}");

    // Session 1's fids still refer to their files.
    let started = Instant::now();
    for (n, &f) in fids.iter().enumerate() {
        let (j, i) = (n / PER_DIR, n % PER_DIR);
        let ino = std::fs::symlink_metadata(dir.join(format!("d{j}/f{i}")))
            .unwrap()
            .ino();
        let st = c1
            .getattr(f, getattr::BASIC)
            .unwrap_or_else(|e| panic!("Tgetattr of d{j}/f{i}: {e}"));
        assert_eq!(st.qid.path, ino, "d{j}/f{i}");
    }
    for (j, &d) in dir_fids.iter().enumerate() {
        let i = (j * 13) % PER_DIR;
        let (f, q) = c1
            .walk_new(d, &[format!("f{i}")])
            .unwrap_or_else(|e| panic!("walk from d{j}: {e}"));
        assert_eq!(
            q[0].path,
            c1.getattr(fids[j * PER_DIR + i], getattr::BASIC)
                .unwrap()
                .qid
                .path
        );
        c1.lopen(f, dotl_open::RDONLY).unwrap();
        assert_eq!(c1.read(f, 0, 256).unwrap(), content(j, i).as_bytes());
        c1.clunk(f).unwrap();
    }
    for n in (0..FILES).step_by(97) {
        let f = fids[n];
        c1.lopen(f, dotl_open::RDONLY)
            .unwrap_or_else(|e| panic!("Tlopen of fid #{n}: {e}"));
        assert_eq!(
            c1.read(f, 0, 256).unwrap(),
            content(n / PER_DIR, n % PER_DIR).as_bytes()
        );
    }
    eprintln!("session 1's fids checked in {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(120));
    for f in fids.into_iter().chain(dir_fids) {
        c1.clunk(f).expect("Tclunk");
    }
}
