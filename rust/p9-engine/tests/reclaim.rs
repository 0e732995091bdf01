// SPDX-License-Identifier: GPL-2.0-or-later
//! Reclaiming open files under a low `RLIMIT_NOFILE` (9p.c
//! `v9fs_reclaim_fd`, `open_fd_hw = rlim_cur - MIN(400, rlim_cur / 3)`,
//! checked after every open, reopens included: `v9fs_co_open`).
//!
//! This file is its own test process with a single test, so lowering the
//! descriptor limit affects nothing else.
//!
//! Descriptor budget (with `RLIMIT_NOFILE` = 128, so the high-water mark
//! is 128 - 42 = 86 open handles):
//! * the native backend holds one `O_PATH` descriptor per walked node,
//!   clones share it: 20 files walked once each, plus the root, the
//!   O_EXCL file, the locked file and the control file, is 24 node
//!   descriptors;
//! * the test process starts with a handful (stdio, the harness), checked
//!   at run time;
//! * 300 fids (15 per file: one walked, 14 clones), each Tlopen'd: 300
//!   handles.  Nodes plus the high-water mark of handles fit under the
//!   limit; nodes plus 300 handles do not, so the engine must close idle
//!   handles and reopen them on use.

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use p9_engine::Config;
use p9_native::testing::set_nofile;
use p9_wire::consts::{dotl_open, lock_status, lock_type};
use p9_wire::{Flock, Getlock, P9String};

use common::TempDir;

const LIMIT: u64 = 128;
const FILES: usize = 20;
const PER_FILE: usize = 15;
const FIDS: usize = FILES * PER_FILE;
const SLOT: usize = 16;
const ROUNDS: usize = 4;
/// `O_PATH` in `/proc/self/fdinfo` flags (octal).
const O_PATH: u64 = 0o10000000;

/// Open descriptors of this process: (target path, fdinfo flags).
fn fds() -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd") {
        let e = e.expect("fd entry");
        let Ok(target) = std::fs::read_link(e.path()) else {
            // The directory's own descriptor, closed by now.
            continue;
        };
        let n = e.file_name();
        let Ok(info) =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", n.to_string_lossy()))
        else {
            continue;
        };
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u64::from_str_radix(f.trim(), 8).ok())
            .expect("flags in fdinfo");
        out.push((target, flags));
    }
    out
}

/// Open (non-`O_PATH`) descriptors on files under `dir`, or on `path`.
fn handles_under(dir: &Path) -> usize {
    fds()
        .iter()
        .filter(|(t, f)| t.starts_with(dir) && f & O_PATH == 0)
        .count()
}

fn handles_on(path: &Path) -> usize {
    fds()
        .iter()
        .filter(|(t, f)| t == path && f & O_PATH == 0)
        .count()
}

fn pattern(k: usize, round: usize) -> [u8; SLOT] {
    std::array::from_fn(|j| (k * 31 + round * 7 + j + 1) as u8)
}

fn flock(typ: u8) -> Flock {
    Flock {
        typ,
        flags: 0,
        start: 0,
        length: 0,
        proc_id: 1,
        client_id: P9String::from("reclaim-test"),
    }
}

#[test]
fn reclaim_under_a_low_descriptor_limit() {
    set_nofile(LIMIT);
    let high_water = (LIMIT - (LIMIT / 3).min(400)) as usize;
    let baseline = fds().len();
    let nodes = 1 + FILES + 3;
    assert!(
        baseline + nodes + high_water < LIMIT as usize,
        "test budget: {baseline} + {nodes} node fds + {high_water} handles must fit in {LIMIT}"
    );
    assert!(baseline + nodes + FIDS > LIMIT as usize);

    let dir = TempDir::new("reclaim");
    for j in 0..FILES {
        std::fs::write(dir.join(format!("f{j}")), vec![0u8; SLOT * PER_FILE]).unwrap();
    }
    std::fs::write(dir.join("locked"), b"locked-data").unwrap();
    std::fs::write(dir.join("control"), b"control-data").unwrap();
    let client = common::serve(dir.path(), Config::default(), 4);
    let server = Arc::clone(client.transport().server());
    let (root, _) = common::session(&client, "9P2000.L");

    // Created with O_EXCL: never reclaimed (9p.c FID_NON_RECLAIMABLE).
    let excl = client.alloc_fid();
    client.clone_fid(root, excl).unwrap();
    client
        .lcreate(
            excl,
            "excl",
            dotl_open::RDWR | dotl_open::CREATE | dotl_open::EXCL,
            0o644,
            0,
        )
        .expect("Tlcreate O_EXCL");
    assert_eq!(client.write(excl, 0, b"excl-data").unwrap(), 9);
    // Locked: reclaiming would drop the lock.
    let (locked, _) = client.walk_new(root, &["locked"]).unwrap();
    client.lopen(locked, dotl_open::RDWR).unwrap();
    assert_eq!(
        client.lock(locked, &flock(lock_type::WRLCK)).unwrap(),
        lock_status::SUCCESS
    );
    // Control: an ordinary open file left idle, which reclaim may close.
    let (control, _) = client.walk_new(root, &["control"]).unwrap();
    client.lopen(control, dotl_open::RDONLY).unwrap();
    let (excl_path, locked_path, control_path) =
        (dir.join("excl"), dir.join("locked"), dir.join("control"));
    assert_eq!(handles_on(&excl_path), 1);
    assert_eq!(handles_on(&locked_path), 1);
    assert_eq!(handles_on(&control_path), 1);

    let mut max_handles = 0;
    let mut check = |what: &str| {
        let open = server.stats().open_handles;
        max_handles = max_handles.max(open);
        assert!(
            open <= high_water,
            "{what}: {open} open handles, above the high-water mark {high_water} \
             (9p.c reclaims after every open, reopens included)"
        );
    };

    // 300 fids: per file one walk by name and 14 clones, all opened.
    let mut fids = Vec::with_capacity(FIDS);
    for j in 0..FILES {
        let (base, _) = client
            .walk_new(root, &[format!("f{j}")])
            .unwrap_or_else(|e| panic!("walk f{j}: {e}"));
        fids.push(base);
        for _ in 1..PER_FILE {
            let c = client.alloc_fid();
            client.clone_fid(base, c).expect("clone");
            fids.push(c);
        }
    }
    for (k, &fid) in fids.iter().enumerate() {
        client
            .lopen(fid, dotl_open::RDWR)
            .unwrap_or_else(|e| panic!("Tlopen of fid #{k}: {e}"));
        check(&format!("after Tlopen #{k}"));
    }

    // Round robin: each fid writes its slot of its file, then each reads
    // its slot back.
    for round in 0..ROUNDS {
        for (k, &fid) in fids.iter().enumerate() {
            let off = ((k % PER_FILE) * SLOT) as u64;
            let n = client
                .write(fid, off, &pattern(k, round))
                .unwrap_or_else(|e| panic!("round {round}: Twrite on fid #{k}: {e}"));
            assert_eq!(n as usize, SLOT);
            check(&format!("round {round}, Twrite #{k}"));
        }
        for (k, &fid) in fids.iter().enumerate() {
            let off = ((k % PER_FILE) * SLOT) as u64;
            let got = client
                .read(fid, off, SLOT as u32)
                .unwrap_or_else(|e| panic!("round {round}: Tread on fid #{k}: {e}"));
            assert_eq!(got, pattern(k, round), "round {round}, fid #{k}");
            check(&format!("round {round}, Tread #{k}"));
        }
        // The stats tell the truth about descriptors, and the O_EXCL and
        // locked files kept theirs (neither fid was used in between, so a
        // reclaimed handle could not have been reopened).
        assert_eq!(
            handles_under(dir.path()),
            server.stats().open_handles,
            "round {round}: open handles per stats vs descriptors"
        );
        assert_eq!(
            handles_on(&excl_path),
            1,
            "round {round}: O_EXCL file's handle closed"
        );
        assert_eq!(
            handles_on(&locked_path),
            1,
            "round {round}: locked file's handle closed"
        );
    }

    let stats = server.stats();
    eprintln!(
        "reclaimed {}, open handles at most {max_handles}, now {}",
        stats.reclaimed, stats.open_handles
    );
    assert!(stats.reclaimed > 0, "nothing was reclaimed: {stats:?}");
    // The idle control file's handle was closed (with the round robin
    // above, every reclaim's first pass finds fewer idle handles than it
    // may close and so visits every fid): so the checks of the O_EXCL and
    // locked files above did observe fids that reclaim looked at.
    assert_eq!(
        handles_on(&control_path),
        0,
        "the idle control file was never reclaimed"
    );
    assert_eq!(client.read(control, 0, 64).unwrap(), b"control-data");
    assert!(max_handles < LIMIT as usize);
    // The files hold what the last round wrote.
    for j in 0..FILES {
        let f = std::fs::File::open(dir.join(format!("f{j}"))).unwrap();
        let mut buf = vec![0u8; SLOT * PER_FILE];
        f.read_exact_at(&mut buf, 0).unwrap();
        for s in 0..PER_FILE {
            let k = j * PER_FILE + s;
            assert_eq!(
                buf[s * SLOT..(s + 1) * SLOT],
                pattern(k, ROUNDS - 1),
                "f{j} slot {s}"
            );
        }
    }

    // The O_EXCL file's fid still works.
    assert_eq!(client.read(excl, 0, 64).unwrap(), b"excl-data");
    assert_eq!(client.write(excl, 9, b"+more").unwrap(), 5);
    assert_eq!(std::fs::read(&excl_path).unwrap(), b"excl-data+more");

    // The lock survived: a second open of the locked file conflicts.
    let other = client.alloc_fid();
    client.clone_fid(locked, other).unwrap();
    client.lopen(other, dotl_open::RDWR).unwrap();
    assert_eq!(
        client.lock(other, &flock(lock_type::WRLCK)).unwrap(),
        lock_status::BLOCKED,
        "the write lock taken before the pressure is gone"
    );
    let probe = Getlock {
        typ: lock_type::WRLCK,
        start: 0,
        length: 0,
        proc_id: 2,
        client_id: P9String::from("reclaim-test"),
    };
    assert_eq!(client.getlock(other, &probe).unwrap().typ, lock_type::WRLCK);
    // Released by its owner, the lock is free for the other fid.
    assert_eq!(
        client.lock(locked, &flock(lock_type::UNLCK)).unwrap(),
        lock_status::SUCCESS
    );
    assert_eq!(
        client.lock(other, &flock(lock_type::WRLCK)).unwrap(),
        lock_status::SUCCESS
    );
    assert_eq!(client.read(locked, 0, 64).unwrap(), b"locked-data");

    for fid in fids.into_iter().chain([excl, locked, other, control]) {
        client.clunk(fid).expect("Tclunk");
    }
    drop(client);
    assert_eq!(server.stats().open_handles, 0);
}
