// SPDX-License-Identifier: GPL-2.0-or-later
//! `make bench`, engine part: the cost of one 9P request through the
//! engine and the native backend on tmpfs, against the plain system calls
//! that request needs (the floor), measured in the same run.
//!
//! The engine runs in-process without a transport (`Server::process`, the
//! offload inline), so the difference to the floor is the engine's own
//! work: decoding, the fid table, the qid map, the backend's extra calls,
//! encoding.  Rounds alternate the two sides and the median round is
//! reported, since these machines are shared and noisy.
//!
//! Output: `BENCH name=<id> ours=<engine> base=<syscalls> unit=ns/op
//! speedup=<base/ours>` (below 1: the engine costs that fraction more than
//! the floor).  `P9_BENCH=getattr` runs only the comparisons whose name
//! has that substring, for profiling one request type.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Instant;

use p9_engine::{Config, Server};
use p9_native::{NativeBackend, SecurityModel};
use p9_wire::consts::dotl_open;
use p9_wire::{msgtype, P9String, Proto, Rmessage, SgView, Tmessage};

mod sockbench;

const ROUNDS: usize = 7;
const MIB: usize = 1 << 20;
const MSIZE: u32 = (2 * MIB) as u32;
const ROOT: u32 = 0;

/// The engine with one reply buffer, driven one request at a time.
struct Engine {
    server: Server<NativeBackend>,
    reply: Vec<u8>,
}

impl Engine {
    fn new(dir: &Path) -> Engine {
        let backend = NativeBackend::new(dir, SecurityModel::None).expect("backend");
        let config = Config {
            msize_max: MSIZE,
            ..Config::default()
        };
        let mut e = Engine {
            server: Server::new(backend, config),
            reply: vec![0; MSIZE as usize],
        };
        e.ok(&t(&Tmessage::Version {
            msize: MSIZE,
            version: P9String::from("9P2000.L"),
        }));
        e.ok(&t(&Tmessage::Attach {
            fid: ROOT,
            afid: u32::MAX,
            uname: P9String::from("bench"),
            aname: P9String::from(""),
            n_uname: 0,
        }));
        e
    }

    /// Send a request; the reply must not be an error.
    fn ok(&mut self, req: &[u8]) -> &[u8] {
        let n = self.server.process(req, &mut self.reply).expect("a reply");
        let reply = &self.reply[..n];
        if reply[4] == msgtype::RLERROR || reply[4] == msgtype::RERROR {
            let msg = Rmessage::decode_slice(reply, Proto::DotL, MSIZE).map(|(_, m)| m);
            panic!("request {} failed: {msg:?}", req[4]);
        }
        reply
    }
}

fn t(msg: &Tmessage<'_>) -> Vec<u8> {
    msg.encode_to_vec(1).expect("encodable request")
}

fn walk(fid: u32, newfid: u32, names: &[&str]) -> Vec<u8> {
    t(&Tmessage::Walk {
        fid,
        newfid,
        wnames: names.iter().map(|n| P9String::from(*n)).collect(),
    })
}

fn clunk(fid: u32) -> Vec<u8> {
    t(&Tmessage::Clunk { fid })
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

fn check(r: libc::c_long) -> libc::c_long {
    assert!(
        r >= 0,
        "syscall failed: {}",
        std::io::Error::last_os_error()
    );
    r
}

fn open_at(dir: &OwnedFd, name: &str, flags: i32, mode: u32) -> OwnedFd {
    let c = cstr(name);
    // SAFETY: valid descriptor and NUL-terminated name.
    let fd = check(unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags, mode) }.into());
    // SAFETY: a fresh descriptor we own.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

fn fstat(fd: &OwnedFd) {
    let mut st = std::mem::MaybeUninit::<libc::stat64>::uninit();
    // SAFETY: `st` is valid for writes; the descriptor is live.
    check(unsafe { libc::fstat64(fd.as_raw_fd(), st.as_mut_ptr()) }.into());
}

fn fstatfs(fd: &OwnedFd) {
    let mut st = std::mem::MaybeUninit::<libc::statfs64>::uninit();
    // SAFETY: `st` is valid for writes; the descriptor is live.
    check(unsafe { libc::fstatfs64(fd.as_raw_fd(), st.as_mut_ptr()) }.into());
}

/// Nanoseconds per operation of `n` runs of `f`.
fn per_op(n: usize, mut f: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Alternate rounds of the engine side and the syscall side; print the
/// median of each.  `setup` runs before each round, untimed.
fn compare(
    name: &str,
    n: usize,
    mut setup: impl FnMut(),
    mut ours: impl FnMut(usize),
    mut base: impl FnMut(usize),
) {
    // P9_BENCH=substring: only the comparisons whose name has it (to
    // profile one request type).
    if std::env::var("P9_BENCH").is_ok_and(|only| !name.contains(&only)) {
        return;
    }
    let (mut o, mut b) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        setup();
        o.push(per_op(n, &mut ours));
        setup();
        b.push(per_op(n, &mut base));
    }
    let (o, b) = (median(o), median(b));
    println!(
        "BENCH name={name} ours={o:.1} base={b:.1} unit=ns/op speedup={:.3}",
        b / o
    );
}

fn main() {
    // `socket P9SERVE`: the C API over a socket vs the same in Rust;
    // `serve-rust ...`: that Rust server (a child of `socket`).
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("socket") => return sockbench::run(args.get(1).expect("socket P9SERVE")),
        Some("serve-rust") => sockbench::serve_rust(&args[1..]),
        _ => {}
    }
    let dir = PathBuf::from(format!("/dev/shm/p9-bench-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("d1000")).expect("bench dir");
    fs::create_dir_all(dir.join("new")).expect("bench dir");
    fs::write(dir.join("f"), vec![7u8; MIB]).expect("1 MiB file");
    for i in 0..1000 {
        fs::write(dir.join(format!("d1000/file-{i:04}")), b"").expect("dir entry");
    }
    let root = {
        let c = cstr(dir.to_str().expect("utf-8 path"));
        // SAFETY: NUL-terminated path.
        let fd = check(unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY) }.into());
        // SAFETY: a fresh descriptor we own.
        unsafe { OwnedFd::from_raw_fd(fd as i32) }
    };
    let mut e = Engine::new(&dir);

    // Twalk of one name + Tclunk vs openat(O_PATH) + fstat + close.
    let (w, c) = (walk(ROOT, 1, &["f"]), clunk(1));
    let e_ptr = &mut e;
    compare(
        "engine_walk_1_name_vs_syscalls",
        20_000,
        || {},
        |_| {
            e_ptr.ok(&w);
            e_ptr.ok(&c);
        },
        |_| {
            let fd = open_at(
                &root,
                "f",
                libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0,
            );
            fstat(&fd);
        },
    );

    // Tgetattr vs fstat.
    e.ok(&walk(ROOT, 2, &["f"]));
    let g = t(&Tmessage::Getattr {
        fid: 2,
        request_mask: p9_wire::consts::getattr::BASIC,
    });
    let f_path = open_at(&root, "f", libc::O_PATH | libc::O_CLOEXEC, 0);
    let e_ptr = &mut e;
    compare(
        "engine_getattr_vs_fstat",
        50_000,
        || {},
        |_| {
            e_ptr.ok(&g);
        },
        |_| fstat(&f_path),
    );

    // Twalk (clone) + Tlcreate + Tclunk vs openat(O_CREAT|O_EXCL) + fstat
    // + fstatfs + close; the files are removed between rounds, untimed.
    let n = 3000;
    let new_dir = open_at(&root, "new", libc::O_PATH | libc::O_DIRECTORY, 0);
    let reqs: Vec<[Vec<u8>; 3]> = (0..n)
        .map(|i| {
            [
                walk(ROOT, 3, &["new"]),
                t(&Tmessage::Lcreate {
                    fid: 3,
                    name: P9String::from(format!("c{i}").as_str()),
                    flags: dotl_open::RDWR | dotl_open::EXCL,
                    mode: 0o644,
                    gid: 0,
                }),
                clunk(3),
            ]
        })
        .collect();
    let clean = || {
        for entry in fs::read_dir(dir.join("new")).expect("new dir").flatten() {
            let _ = fs::remove_file(entry.path());
        }
    };
    let e_ptr = &mut e;
    compare(
        "engine_lcreate_vs_syscalls",
        n,
        clean,
        |i| {
            for r in &reqs[i] {
                e_ptr.ok(r);
            }
        },
        |i| {
            let fd = open_at(
                &new_dir,
                &format!("c{i}"),
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC,
                0o644,
            );
            fstat(&fd);
            fstatfs(&fd);
        },
    );

    // A directory of 1000 entries: Twalk + Tlopen + Treaddir until empty +
    // Tclunk vs open + getdents64 until empty + close.
    let count = 128 * 1024;
    let open_dir = [
        walk(ROOT, 4, &["d1000"]),
        t(&Tmessage::Lopen { fid: 4, flags: 0 }),
    ];
    let c4 = clunk(4);
    let mut dents = vec![0u8; count as usize];
    let e_ptr = &mut e;
    compare(
        "engine_readdir_1000_vs_getdents64",
        300,
        || {},
        |_| {
            for r in &open_dir {
                e_ptr.ok(r);
            }
            let mut offset = 0;
            loop {
                let r = t(&Tmessage::Readdir {
                    fid: 4,
                    offset,
                    count,
                });
                let reply = e_ptr.ok(&r);
                let (_, msg) = Rmessage::decode_slice(reply, Proto::DotL, MSIZE).expect("Rreaddir");
                let Rmessage::Readdir { data } = msg else {
                    panic!("not an Rreaddir")
                };
                let mut last = None;
                for d in p9_wire::Dirent::iter(data) {
                    last = Some(d.expect("entry").offset);
                }
                match last {
                    Some(o) => offset = o,
                    None => break,
                }
            }
            e_ptr.ok(&c4);
        },
        |_| {
            let fd = open_at(
                &root,
                "d1000",
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
                0,
            );
            loop {
                // SAFETY: the buffer is valid for `count` bytes; live fd.
                let n = check(unsafe {
                    libc::syscall(
                        libc::SYS_getdents64,
                        fd.as_raw_fd(),
                        dents.as_mut_ptr(),
                        dents.len(),
                    )
                });
                if n == 0 {
                    break;
                }
            }
        },
    );

    // 1 MiB Tread / Twrite on an open fid vs pread / pwrite.
    e.ok(&walk(ROOT, 5, &["f"]));
    e.ok(&t(&Tmessage::Lopen {
        fid: 5,
        flags: dotl_open::RDWR,
    }));
    let rd = t(&Tmessage::Read {
        fid: 5,
        offset: 0,
        count: MIB as u32,
    });
    let payload = vec![9u8; MIB];
    let wr = t(&Tmessage::Write {
        fid: 5,
        offset: 0,
        data: SgView::from_slice(&payload),
    });
    let file = open_at(&root, "f", libc::O_RDWR | libc::O_CLOEXEC, 0);
    let mut buf = vec![0u8; MIB];
    let e_ptr = &mut e;
    compare(
        "engine_read_1MiB_vs_pread",
        2000,
        || {},
        |_| {
            let n = e_ptr.ok(&rd).len();
            assert_eq!(n, MIB + 11);
        },
        |_| {
            // SAFETY: the buffer is valid for MIB bytes; live fd.
            let n =
                check(
                    unsafe { libc::pread64(file.as_raw_fd(), buf.as_mut_ptr().cast(), MIB, 0) }
                        as libc::c_long,
                );
            assert_eq!(n as usize, MIB);
        },
    );
    let e_ptr = &mut e;
    compare(
        "engine_write_1MiB_vs_pwrite",
        2000,
        || {},
        |_| {
            e_ptr.ok(&wr);
        },
        |_| {
            // SAFETY: the buffer is valid for MIB bytes; live fd.
            let n =
                check(
                    unsafe { libc::pwrite64(file.as_raw_fd(), payload.as_ptr().cast(), MIB, 0) }
                        as libc::c_long,
                );
            assert_eq!(n as usize, MIB);
        },
    );

    let stats = e.server.stats();
    eprintln!(
        "engine: {} requests, {} offloads ({:.3} per request)",
        stats.requests,
        stats.offloads,
        stats.offloads as f64 / stats.requests as f64
    );
    drop(e);
    let _ = fs::remove_dir_all(&dir);
}
