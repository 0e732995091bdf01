// SPDX-License-Identifier: GPL-2.0-or-later
//! The common requests cost no heap allocation in steady state: the
//! engine's request records are reused, names are kept inline, replies are
//! encoded in place, and the native backend's hot paths allocate nothing.
//! Measured with a counting global allocator (this test binary's only
//! test, so no other test allocates meanwhile), on the calling thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs;
use std::path::PathBuf;

use p9_engine::{Config, Server};
use p9_native::{NativeBackend, SecurityModel};
use p9_wire::consts::{dotl_open, getattr};
use p9_wire::{msgtype, P9String, SgView, Tmessage};

thread_local! {
    /// Counting on this thread (off by default: the harness's threads and
    /// the set-up allocate freely).
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

fn count() {
    // `try_with`: the allocator runs during thread teardown too.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded to `System` unchanged; counting touches
// only const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    ALLOCS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    ALLOCS.with(Cell::get)
}

struct Session {
    server: Server<NativeBackend>,
    reply: Vec<u8>,
}

impl Session {
    fn ok(&mut self, req: &[u8]) {
        let n = self.server.process(req, &mut self.reply).expect("a reply");
        let typ = self.reply[4];
        assert!(
            typ != msgtype::RLERROR && typ != msgtype::RERROR && n >= 7,
            "request type {} failed",
            req[4]
        );
    }
}

fn t(msg: &Tmessage<'_>) -> Vec<u8> {
    msg.encode_to_vec(1).expect("encodable")
}

#[test]
fn common_requests_do_not_allocate() {
    let dir = PathBuf::from(format!("/dev/shm/p9-zero-alloc-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("d")).unwrap();
    fs::write(dir.join("f"), vec![7u8; 8192]).unwrap();
    for i in 0..50 {
        fs::write(dir.join(format!("d/entry-{i:03}")), b"").unwrap();
    }
    let backend = NativeBackend::new(&dir, SecurityModel::None).unwrap();
    let mut s = Session {
        server: Server::new(backend, Config::default()),
        reply: vec![0; 1 << 20],
    };
    s.ok(&t(&Tmessage::Version {
        msize: 1 << 20,
        version: P9String::from("9P2000.L"),
    }));
    s.ok(&t(&Tmessage::Attach {
        fid: 0,
        afid: u32::MAX,
        uname: P9String::from("u"),
        aname: P9String::from(""),
        n_uname: 0,
    }));
    let walk = |fid, newfid, name: &str| {
        t(&Tmessage::Walk {
            fid,
            newfid,
            wnames: vec![P9String::from(name)],
        })
    };
    // A file open for I/O, a directory open for reading.
    s.ok(&walk(0, 1, "f"));
    s.ok(&t(&Tmessage::Lopen {
        fid: 1,
        flags: dotl_open::RDWR,
    }));
    s.ok(&walk(0, 2, "d"));
    s.ok(&t(&Tmessage::Lopen { fid: 2, flags: 0 }));

    let data = [5u8; 4096];
    let requests: Vec<(&str, Vec<u8>)> = vec![
        (
            "Tgetattr",
            t(&Tmessage::Getattr {
                fid: 1,
                request_mask: getattr::BASIC,
            }),
        ),
        ("Tstatfs", t(&Tmessage::Statfs { fid: 0 })),
        (
            "Tread",
            t(&Tmessage::Read {
                fid: 1,
                offset: 0,
                count: 4096,
            }),
        ),
        (
            "Twrite",
            t(&Tmessage::Write {
                fid: 1,
                offset: 0,
                data: SgView::from_slice(&data),
            }),
        ),
        (
            "Treaddir",
            t(&Tmessage::Readdir {
                fid: 2,
                offset: 0,
                count: 64 * 1024,
            }),
        ),
        (
            "Tfsync",
            t(&Tmessage::Fsync {
                fid: 1,
                datasync: 0,
            }),
        ),
    ];
    // Warm-up: tables, free lists and buffers reach their steady size.
    for _ in 0..3 {
        for (_, r) in &requests {
            s.ok(r);
        }
    }
    for (name, r) in &requests {
        let n = allocations(|| {
            for _ in 0..20 {
                s.ok(r);
            }
        });
        assert_eq!(n, 0, "{name}: {n} allocations in 20 requests");
    }
    drop(s);
    let _ = fs::remove_dir_all(&dir);
}
