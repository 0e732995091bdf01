// SPDX-License-Identifier: GPL-2.0-or-later
//! A guest cannot make the engine allocate without bound or leak: floods
//! of hostile requests are measured with a counting global allocator.
//!
//! * Txattrcreate of 64 KiB values on fresh fids: `max_xattr` of them, then
//!   ENOSPC (9p.c `xattr_fid_count_inc`); memory grows by at most
//!   `max_xattr * 64 KiB` plus slack.
//! * Twalk to new fids: `fids_max` fids, then ENFILE.
//! * Huge Tread counts (EMSGSIZE), huge Treaddir counts (clamped to
//!   `msize - 11`, as 9p.c), size fields claiming gigabytes, 0xffff walk
//!   names, oversized xattr sizes: no allocation beyond one reply.
//! * After clunking everything or a Tversion reset, live memory is back at
//!   its starting level.
//!
//! The tests share the process-wide counters, so they run one at a time
//! (a lock), each with a one-thread host so that the engine's reply buffer
//! is allocated once, during the warm-up, before the baseline is taken.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use common::{TempDir, TestClient, TestServer, MSIZE};
use p9_engine::Config;
use p9_wire::consts::{dotl_open, getattr, NOFID, XATTR_SIZE_MAX};
use p9_wire::errno;
use p9_wire::msgtype as mt;
use p9_wire::{Rmessage, Tmessage};

/// `System`, counting live bytes and their high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(n: usize) {
    LIVE.fetch_sub(n, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments,
// so `System`'s guarantees hold; the counters have no effect on the
// memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Start a measurement: the live bytes now, which the peak restarts from.
fn baseline() -> usize {
    let now = live();
    PEAK.store(now, Ordering::Relaxed);
    now
}

fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// One measuring test at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

const ROOT: u32 = 1;
/// Per-request and bookkeeping noise allowed on top of what the limits
/// permit: a few replies of msize bytes in flight between the engine and
/// the client, hash-table growth, the client's per-request state.
const SLACK: usize = 4 * MSIZE as usize + 256 * 1024;
/// How far above the starting level live memory may stay once everything
/// is released (hash tables keep their capacity).
const TOLERANCE: usize = 64 * 1024;

struct Env {
    client: TestClient,
    /// Removed when the environment is dropped, after the client.
    _dir: TempDir,
}

impl Env {
    fn new(name: &str, config: Config) -> Env {
        let dir = TempDir::new(name);
        std::fs::write(dir.join("f"), vec![3u8; 200_000]).unwrap();
        for i in 0..500 {
            std::fs::write(dir.join(format!("entry-{i:03}-{}", "x".repeat(30))), b"").unwrap();
        }
        let client = common::serve(&dir, config, 1);
        while client.alloc_fid() < 1_000_000 {}
        let env = Env { client, _dir: dir };
        env.session();
        env.warm_up();
        env
    }

    /// Tversion and Tattach of [`ROOT`].
    fn session(&self) {
        common::session_on(&self.client, "9P2000.L", ROOT);
    }

    /// One of each request the tests make, so that one-time allocations
    /// (lazily grown tables, thread-locals) happen before the baseline.
    fn warm_up(&self) {
        for _ in 0..3 {
            let f = self.client.alloc_fid();
            self.client.walk(ROOT, f, &["f"]).unwrap();
            self.client.lopen(f, dotl_open::RDONLY).unwrap();
            self.client.read(f, 0, MSIZE - 11).unwrap();
            self.client.getattr(f, getattr::BASIC).unwrap();
            self.client.clunk(f).unwrap();
            let d = self.client.alloc_fid();
            self.client.clone_fid(ROOT, d).unwrap();
            self.client
                .lopen(d, dotl_open::RDONLY | dotl_open::DIRECTORY)
                .unwrap();
            self.client.readdir(d, 0, MSIZE - 11).unwrap();
            self.client.clunk(d).unwrap();
            let x = self.client.alloc_fid();
            self.client.clone_fid(ROOT, x).unwrap();
            self.client.xattrcreate(x, "user.warm", 4, 0).unwrap();
            self.client.write(x, 0, b"warm").unwrap();
            self.client.clunk(x).unwrap();
            let _ = self.client.xattrwalk(ROOT, 7, "");
            let _ = self.client.clunk(7);
            assert_eq!(self.client.clunk(123_456_789), Err(errno::ENOENT));
            self.session();
        }
    }

    fn server(&self) -> &Arc<TestServer> {
        self.client.transport().server()
    }
}

fn kib(n: usize) -> String {
    format!("{:.1} KiB", n as f64 / 1024.0)
}

/// 10k Txattrcreate of 64 KiB on fresh fids with `max_xattr` 16: sixteen
/// succeed, the 17th and every later one is ENOSPC, and memory grows by at
/// most the sixteen values.
#[test]
fn xattrcreate_flood_is_bounded_by_max_xattr() {
    let _serial = serial();
    let max_xattr = 16u32;
    let env = Env::new(
        "xattr",
        Config {
            max_xattr,
            ..Config::default()
        },
    );
    let start = baseline();
    let mut created = 0u32;
    let mut first_refusal = None;
    for i in 0..10_000u32 {
        let fid = 10 + i;
        env.client.walk::<&str>(ROOT, fid, &[]).unwrap();
        match env.client.xattrcreate(fid, "user.flood", XATTR_SIZE_MAX, 0) {
            Ok(()) => created += 1,
            Err(e) => {
                assert_eq!(e, errno::ENOSPC, "Txattrcreate #{}", i + 1);
                first_refusal.get_or_insert(i + 1);
                env.client.clunk(fid).unwrap();
            }
        }
    }
    assert_eq!(created, max_xattr);
    assert_eq!(first_refusal, Some(max_xattr + 1));
    let stats = env.server().stats();
    assert_eq!(stats.xattr_fids, max_xattr);
    assert_eq!(stats.fids, 1 + max_xattr as usize);
    // Txattrwalk needs a slot too.
    assert_eq!(env.client.xattrwalk(ROOT, 5, ""), Err(errno::ENOSPC));
    assert_eq!(env.client.getattr(5, getattr::BASIC), Err(errno::ENOENT));
    let grown = peak() - start;
    let bound = max_xattr as usize * XATTR_SIZE_MAX as usize + SLACK;
    eprintln!("xattr flood: peak +{}, bound {}", kib(grown), kib(bound));
    assert!(
        grown <= bound,
        "peak grew by {} (bound {})",
        kib(grown),
        kib(bound)
    );
    assert!(
        grown >= max_xattr as usize * XATTR_SIZE_MAX as usize,
        "the sixteen values were not counted ({}): is the allocator wrapper in use?",
        kib(grown)
    );

    // Tversion drops every fid and its value.
    env.client.version(MSIZE, "9P2000.L").unwrap();
    assert_eq!(env.server().stats().xattr_fids, 0);
    assert_eq!(env.server().stats().fids, 0);
    let end = live();
    eprintln!("xattr flood: live {} -> {}", kib(start), kib(end));
    assert!(
        end <= start + TOLERANCE,
        "live memory {} after the reset, {} before the flood",
        kib(end),
        kib(start)
    );
    // A slot is free again.
    env.client.attach(ROOT, NOFID, "root", "", 0).unwrap();
    env.client.walk::<&str>(ROOT, 2, &[]).unwrap();
    env.client.xattrcreate(2, "user.x", 1, 0).unwrap();
}

/// Twalk to new fids with `fids_max` 64: 63 beside the root, then ENFILE
/// for Twalk, Txattrwalk and Tattach alike.
#[test]
fn fid_flood_is_bounded_by_fids_max() {
    let _serial = serial();
    let fids_max = 64usize;
    let env = Env::new(
        "fids",
        Config {
            fids_max,
            ..Config::default()
        },
    );
    let start = baseline();
    let mut made = 0usize;
    for i in 0..10_000u32 {
        let fid = 10 + i;
        match env.client.walk(ROOT, fid, &["f"]) {
            Ok(q) => {
                assert_eq!(q.len(), 1);
                made += 1;
            }
            Err(e) => assert_eq!(e, errno::ENFILE, "Twalk #{}", i + 1),
        }
    }
    assert_eq!(made, fids_max - 1);
    assert_eq!(env.server().stats().fids, fids_max);
    assert_eq!(env.client.xattrwalk(ROOT, 5, ""), Err(errno::ENFILE));
    assert_eq!(
        env.client.attach(6, NOFID, "root", "", 0),
        Err(errno::ENFILE)
    );
    let grown = peak() - start;
    eprintln!("fid flood: peak +{}", kib(grown));
    assert!(grown <= SLACK, "peak grew by {}", kib(grown));
    // Clunking one makes room for one.
    env.client.clunk(10).unwrap();
    env.client.walk::<&str>(ROOT, 5, &[]).unwrap();
    assert_eq!(env.client.walk::<&str>(ROOT, 6, &[]), Err(errno::ENFILE));
    // Clunk everything but the root: back to the start.
    env.client.clunk(5).unwrap();
    for fid in 11..10 + fids_max as u32 - 1 {
        env.client.clunk(fid).unwrap();
    }
    assert_eq!(env.server().stats().fids, 1);
    let end = live();
    eprintln!("fid flood: live {} -> {}", kib(start), kib(end));
    assert!(
        end <= start + TOLERANCE,
        "live memory {} after clunking, {} before",
        kib(end),
        kib(start)
    );
}

/// The native backend bounds the fids of a session by itself
/// (`FIDS_MAX_DEFAULT`, 65536, however large `Config::fids_max` is; a
/// smaller configuration wins), so that one session's fid storm cannot
/// take memory without bound; beyond it, ENFILE.
#[test]
fn the_native_backend_bounds_the_fids_of_a_session() {
    let _serial = serial();
    let dir = TempDir::new("native-fids");
    std::fs::write(dir.join("f"), b"").unwrap();
    let max = |b: p9_native::NativeBackend, fids_max| {
        p9_engine::Server::new(
            b,
            Config {
                fids_max,
                ..Config::default()
            },
        )
        .config()
        .fids_max
    };
    assert_eq!(p9_native::backend::FIDS_MAX_DEFAULT, 1 << 16);
    assert_eq!(Config::default().fids_max, 1 << 20);
    assert_eq!(max(common::native_backend(&dir), 1 << 20), 1 << 16);
    assert_eq!(max(common::native_backend(&dir), 100), 100);
    let mut unbounded = common::native_backend(&dir);
    unbounded.set_fids_max(None);
    assert_eq!(max(unbounded, 1 << 20), 1 << 20);

    let mut b = common::native_backend(&dir);
    b.set_fids_max(Some(32));
    let client = p9_client::Client::new(common::host(b, Config::default(), 1));
    common::session_on(&client, "9P2000.L", ROOT);
    let mut made = 0;
    for fid in 10..200u32 {
        match client.walk(ROOT, fid, &["f"]) {
            Ok(_) => made += 1,
            Err(e) => assert_eq!(e, errno::ENFILE),
        }
    }
    assert_eq!(made, 31);
    assert_eq!(client.transport().server().stats().fids, 32);
}

/// Requests asking for huge replies or claiming huge sizes allocate no
/// more than one reply's worth.
#[test]
fn huge_counts_and_sizes_allocate_nothing_extra() {
    let _serial = serial();
    let env = Env::new("counts", Config::default());
    let f = 2;
    env.client.walk(ROOT, f, &["f"]).unwrap();
    env.client.lopen(f, dotl_open::RDONLY).unwrap();
    let d = 3;
    env.client.walk::<&str>(ROOT, d, &[]).unwrap();
    env.client
        .lopen(d, dotl_open::RDONLY | dotl_open::DIRECTORY)
        .unwrap();
    let x = 4;
    env.client.walk::<&str>(ROOT, x, &[]).unwrap();
    // Warm the paths used below once more.
    env.client.readdir(d, 0, u32::MAX).unwrap();
    let start = baseline();
    for _ in 0..2000 {
        let read = Tmessage::Read {
            fid: f,
            offset: 0,
            count: u32::MAX,
        };
        assert_eq!(
            env.client.try_call(&read).unwrap_err().errno(),
            Some(errno::EMSGSIZE)
        );
        // Treaddir: clamped to msize - 11 (9p.c v9fs_readdir).
        let entries = env.client.readdir(d, 0, u32::MAX).unwrap();
        assert!(!entries.is_empty());
        // A Twrite whose size field claims almost 4 GiB.
        let mut w = Tmessage::Write {
            fid: f,
            offset: 0,
            data: p9_wire::SgView::from_slice(b"0123456789"),
        }
        .encode_to_vec(9)
        .unwrap();
        w[..4].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        let reply = env.client.raw(w).unwrap();
        assert_eq!(
            Rmessage::decode_slice(&reply, p9_wire::Proto::DotL, MSIZE).unwrap(),
            (
                9,
                Rmessage::Lerror {
                    ecode: errno::EMSGSIZE
                }
            )
        );
        // Twalk announcing 0xffff names.
        let mut body = Vec::new();
        body.extend_from_slice(&ROOT.to_le_bytes());
        body.extend_from_slice(&99u32.to_le_bytes());
        body.extend_from_slice(&0xffffu16.to_le_bytes());
        let mut msg = vec![0u8; 7];
        msg[..4].copy_from_slice(&((7 + body.len()) as u32).to_le_bytes());
        msg[4] = mt::TWALK;
        msg[5..7].copy_from_slice(&10u16.to_le_bytes());
        msg.extend_from_slice(&body);
        let reply = env.client.raw(msg).unwrap();
        assert_eq!(
            Rmessage::decode_slice(&reply, p9_wire::Proto::DotL, MSIZE).unwrap(),
            (
                10,
                Rmessage::Lerror {
                    ecode: errno::EINVAL
                }
            )
        );
        // Txattrcreate sizes past XATTR_SIZE_MAX: E2BIG, nothing reserved.
        for size in [XATTR_SIZE_MAX + 1, u64::MAX] {
            assert_eq!(
                env.client.xattrcreate(x, "user.big", size, 0),
                Err(errno::E2BIG)
            );
        }
        // Tversion asking for a 4 GiB msize is capped by the server; not
        // sent here (it would reset the fids), see malformed.rs.
    }
    let grown = peak() - start;
    eprintln!("huge counts: peak +{}", kib(grown));
    assert!(grown <= SLACK, "peak grew by {}", kib(grown));
    let end = live();
    assert!(
        end <= start + TOLERANCE,
        "live memory {} after, {} before",
        kib(end),
        kib(start)
    );
    assert_eq!(env.server().stats().xattr_fids, 0);
}

/// Walk / open / read / clunk cycles and xattr set cycles leave nothing
/// behind.
#[test]
fn fid_cycles_do_not_leak() {
    let _serial = serial();
    let env = Env::new("cycles", Config::default());
    let start = baseline();
    for i in 0..5000u32 {
        let fid = 10 + (i % 7);
        env.client.walk(ROOT, fid, &["f"]).unwrap();
        env.client.lopen(fid, dotl_open::RDONLY).unwrap();
        assert_eq!(env.client.read(fid, 0, 4096).unwrap().len(), 4096);
        env.client.clunk(fid).unwrap();
        let d = 20;
        env.client.walk::<&str>(ROOT, d, &[]).unwrap();
        env.client
            .lopen(d, dotl_open::RDONLY | dotl_open::DIRECTORY)
            .unwrap();
        env.client.readdir(d, 0, 4096).unwrap();
        env.client.clunk(d).unwrap();
        if i % 10 == 0 {
            let x = 30;
            env.client.walk::<&str>(ROOT, x, &[]).unwrap();
            env.client.xattrcreate(x, "user.cycle", 8, 0).unwrap();
            env.client.write(x, 0, b"12345678").unwrap();
            env.client.clunk(x).unwrap();
            assert_eq!(
                env.client.xattr_get(ROOT, "user.cycle").unwrap(),
                b"12345678"
            );
        }
    }
    assert_eq!(env.server().stats().fids, 1);
    let end = live();
    let grown = peak() - start;
    eprintln!(
        "cycles: live {} -> {}, peak +{}",
        kib(start),
        kib(end),
        kib(grown)
    );
    assert!(grown <= SLACK, "peak grew by {}", kib(grown));
    assert!(
        end <= start + TOLERANCE,
        "live memory {} after 5000 cycles, {} before",
        kib(end),
        kib(start)
    );
}
