// SPDX-License-Identifier: GPL-2.0-or-later
//! The process-wide descriptor budget under a low `RLIMIT_NOFILE`.
//!
//! Its own test process with a single test, so that lowering the limit
//! and the process-wide counters concern nothing else.  With a limit of
//! 96: reserve 32, budget 64, ceiling 80.
//!
//! * 400 nodes of one backend are held with at most the budget's worth of
//!   descriptors, and each still refers to its file;
//! * open handles: a backend at its fair share (64 / 2 backends) is
//!   refused with `EMFILE` once the budget is used up; the other backend,
//!   below its share, still opens, up to the ceiling; the process never
//!   runs out of descriptors.

mod common;

use std::io::IoSliceMut;
use std::os::unix::fs::MetadataExt;

use common::{lstat, TempDir};
use p9_engine::backend::{Backend, Cred};
use p9_native::backend::{NativeHandle, NativeNode};
use p9_native::testing::set_nofile;
use p9_native::{budget_stats, NativeBackend, SecurityModel};
use p9_wire::errno::EMFILE;

const LIMIT: u64 = 96;
const FILES: usize = 400;
const ROOT: Cred = Cred { uid: 0, gid: 0 };

/// Descriptors open in this process.
fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .count()
        .saturating_sub(1)
}

fn walk1(b: &NativeBackend, dir: &NativeNode, name: &str) -> NativeNode {
    let mut v = b.walk(dir, &[name.as_bytes()]).expect("walk");
    assert_eq!(v.len(), 1);
    v.pop().unwrap().0
}

fn read_all(b: &NativeBackend, h: &NativeHandle) -> Vec<u8> {
    let mut buf = vec![0u8; 64];
    let n = b
        .read(h, 0, &mut [IoSliceMut::new(&mut buf)])
        .expect("read");
    buf.truncate(n);
    buf
}

#[test]
fn budget_under_a_low_descriptor_limit() {
    set_nofile(LIMIT);
    let t = TempDir::new("budget");
    let ex = t.export();
    for i in 0..FILES {
        std::fs::write(ex.join(format!("f{i}")), format!("file {i}")).unwrap();
    }
    let a = NativeBackend::new(&ex, SecurityModel::Passthrough).unwrap();
    let b = NativeBackend::new(&ex, SecurityModel::Passthrough).unwrap();
    let s = budget_stats();
    assert_eq!(
        (s.limit, s.reserve, s.budget, s.ceiling, s.backends),
        (96, 32, 64, 80, 2)
    );
    let baseline = fds();
    assert!(
        baseline + 80 < LIMIT as usize,
        "{baseline} descriptors at the start"
    );

    // Nodes: far more than the limit, with at most the budget held.
    let (ra, _) = a.attach(b"", &ROOT).unwrap();
    let mut nodes = Vec::new();
    let mut most = 0;
    for i in 0..FILES {
        nodes.push(walk1(&a, &ra, &format!("f{i}")));
        let s = budget_stats();
        most = most.max(s.nodes + s.handles);
        assert!(fds() < LIMIT as usize);
    }
    let s = budget_stats();
    eprintln!(
        "{FILES} nodes: at most {most} descriptors held, {} given back",
        s.given_back
    );
    assert!(most <= 64 + 1, "{most} descriptors held, budget 64");
    assert!(s.given_back >= (FILES - 64) as u64, "{s:?}");
    for (i, n) in nodes.iter().enumerate() {
        let ino = lstat(&ex.join(format!("f{i}"))).ino();
        assert_eq!(a.getattr(n).unwrap().ino, ino, "f{i}");
    }
    for (i, n) in nodes.iter().enumerate().step_by(37) {
        let h = a.open(n, libc::O_RDONLY).unwrap();
        assert_eq!(read_all(&a, &h), format!("file {i}").as_bytes());
    }

    // Handles: `a` opens until refused at its fair share of 32 (the
    // budget is full by then), `b` (below its share) still opens, up to
    // the ceiling.
    let mut ha = Vec::new();
    let refused = loop {
        let i = ha.len();
        assert!(i < FILES, "a was never refused");
        match a.open(&nodes[i], libc::O_RDONLY) {
            Ok(h) => ha.push(h),
            Err(e) => break e,
        }
        assert!(fds() < LIMIT as usize);
    };
    assert_eq!(refused, EMFILE);
    assert!(
        ha.len() >= 32,
        "a refused at {} handles, below its share",
        ha.len()
    );
    let s = budget_stats();
    assert!(s.nodes + s.handles >= 64 && s.refused >= 1, "{s:?}");
    let (rb, _) = b.attach(b"", &ROOT).unwrap();
    let mut hb = Vec::new();
    for i in 0..FILES {
        let n = walk1(&b, &rb, &format!("f{i}"));
        match b.open(&n, libc::O_RDONLY) {
            Ok(h) => hb.push(h),
            Err(e) => {
                assert_eq!(e, EMFILE);
                break;
            }
        }
        let s = budget_stats();
        assert!(s.nodes + s.handles <= 80 + 2, "above the ceiling: {s:?}");
        assert!(fds() < LIMIT as usize);
    }
    eprintln!("handles: a {}, b {}", ha.len(), hb.len());
    assert!(!hb.is_empty(), "b, below its share, could open nothing");
    assert!(matches!(a.open(&nodes[0], libc::O_RDONLY), Err(e) if e == EMFILE));
    // Handles closed: `a` opens again.
    ha.clear();
    hb.clear();
    let h = a.open(&nodes[1], libc::O_RDONLY).unwrap();
    assert_eq!(read_all(&a, &h), b"file 1");
}
