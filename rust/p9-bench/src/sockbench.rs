// SPDX-License-Identifier: GPL-2.0-or-later
//! `make bench`, socket part: requests per second of `tests/p9serve`
//! (the C API: thread mode, native backend) against the same server
//! written in Rust on the engine directly (`serve_rust`), both serving a
//! tmpfs directory over a Unix socket with plain 9P framing.
//!
//! Both servers are child processes with one server (session) per
//! connection, all on one shared pool of the same thread count, with the
//! same bounds in flight, and one epoll thread reading every connection;
//! p9serve writes replies without blocking (the loop sends what a socket
//! could not take), serve-rust under a per-connection mutex.  The
//! difference is mostly the C boundary (the transport callbacks, malloc'd
//! buffers).  The clients are threads of
//! this process, one connection each, one request at a time.  Rounds
//! alternate the servers; medians are reported.
//!
//! A last line compares p9serve's design, one pool for 256 concurrent
//! connections, with the one it replaced (`--private-pools`: a pool of
//! the same size per connection), both p9serve in this run.
//!
//! Output: `BENCH name=p9serve_<op>_<n>client[s]_vs_rust ours=<C API req/s>
//! base=<Rust req/s> unit=req/s speedup=<ours/base>`, and
//! `BENCH name=p9serve_getattr_256conns_one_pool_vs_pool_per_conn ...`.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::time::{Duration, Instant};

use p9_engine::host::{Limits, Pool, ThreadHost};
use p9_engine::{Config, Server};
use p9_native::{NativeBackend, SecurityModel};
use p9_wire::consts::{dotl_open, getattr};
use p9_wire::{msgtype, P9String, Tmessage};

/// Request threads per server (p9serve `--threads`).
const THREADS: u32 = 2;
const ROUNDS: usize = 9;
const WINDOW: Duration = Duration::from_millis(400);
const MSIZE: u32 = 1 << 20;

// ----- the Rust server -----

/// `p9-bench serve-rust --threads N --unix PATH DIR`: p9serve's
/// counterpart on the engine's own `ThreadHost`s, built the same way: one
/// shared pool, and one epoll thread that accepts and reads every
/// connection (level-triggered, one `recv` per readiness), so that the
/// ratio with p9serve is what the C boundary costs, not a difference of
/// design.  Replies are written by the pool's threads under a
/// per-connection mutex.  Runs until killed.
pub fn serve_rust(args: &[String]) -> ! {
    let (mut threads, mut path, mut dir) = (THREADS as usize, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--threads" => threads = it.next().and_then(|v| v.parse().ok()).expect("--threads N"),
            "--unix" => path = it.next().cloned(),
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let (path, dir) = (path.expect("--unix PATH"), dir.expect("DIR"));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("bind");
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let pool = Pool::new(threads).expect("pool");
    let ep = Epoll::new();
    ep.add(listener.as_raw_fd(), u64::MAX);
    println!("serve-rust: listening on unix:{path}");
    let _ = io::stdout().flush();
    let mut conns: HashMap<u64, Connection> = HashMap::new();
    let mut next_id = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        for key in ep.wait() {
            if key == u64::MAX {
                while let Ok((conn, _)) = listener.accept() {
                    next_id += 1;
                    ep.add(conn.as_raw_fd(), next_id);
                    conns.insert(next_id, Connection::new(conn, &dir, &pool));
                }
                continue;
            }
            let Some(c) = conns.get_mut(&key) else {
                continue;
            };
            if !c.readable(&mut buf) {
                ep.del(c.stream.as_raw_fd());
                // Dropping the host waits for its requests in flight, as
                // qrs_p9_server_free does.
                conns.remove(&key);
            }
        }
    }
}

/// One connection of serve-rust: its session, and the bytes of a request
/// not yet read whole.
struct Connection {
    stream: UnixStream,
    host: ThreadHost<NativeBackend>,
    writer: Arc<Mutex<UnixStream>>,
    pending: Vec<u8>,
    msize_max: u32,
}

impl Connection {
    fn new(stream: UnixStream, dir: &Path, pool: &Pool) -> Connection {
        let backend = NativeBackend::new(dir, SecurityModel::None).expect("backend");
        // p9serve's config: qrs_p9_config_init's defaults (submit_job waits
        // for room at the same bounds).
        let config = Config::default();
        let msize_max = config.msize_max;
        let server = Arc::new(Server::new(backend, config));
        let host = ThreadHost::on_pool(server, pool, Limits::default());
        let writer = Arc::new(Mutex::new(stream.try_clone().expect("clone")));
        Connection {
            stream,
            host,
            writer,
            pending: Vec::new(),
            msize_max,
        }
    }

    /// Read what is there (one `recv`) and submit every whole request;
    /// false once the peer is gone or sent a bad frame.
    fn readable(&mut self, buf: &mut [u8]) -> bool {
        // SAFETY: `buf` is writable for its length; MSG_DONTWAIT keeps the
        // (blocking, for the writers) socket from blocking the loop.
        let n = unsafe {
            libc::recv(
                self.stream.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error().kind();
            return matches!(e, io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted);
        }
        if n == 0 {
            return false;
        }
        self.pending.extend_from_slice(&buf[..n as usize]);
        let mut at = 0;
        while self.pending.len() - at >= 4 {
            let size = u32::from_le_bytes(self.pending[at..at + 4].try_into().expect("4 bytes"));
            if !(7..=self.msize_max).contains(&size) {
                return false;
            }
            let size = size as usize;
            if self.pending.len() - at < size {
                break;
            }
            let req = self.pending[at..at + size].to_vec();
            at += size;
            let w = Arc::clone(&self.writer);
            self.host.submit(req, move |reply| {
                if let Some(reply) = reply {
                    let mut w = w.lock().unwrap_or_else(PoisonError::into_inner);
                    let _ = w.write_all(&reply);
                }
            });
        }
        self.pending.drain(..at);
        true
    }
}

/// A level-triggered epoll set keyed by `u64`.
struct Epoll(OwnedFd);

impl Epoll {
    fn new() -> Epoll {
        // SAFETY: no pointer arguments; a new descriptor or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(fd >= 0, "epoll_create1: {}", io::Error::last_os_error());
        // SAFETY: a descriptor just made and owned by nobody else.
        Epoll(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn add(&self, fd: i32, key: u64) {
        let mut e = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: key,
        };
        // SAFETY: `e` is a valid event for the duration of the call.
        let r = unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut e) };
        assert_eq!(r, 0, "epoll_ctl: {}", io::Error::last_os_error());
    }

    fn del(&self, fd: i32) {
        // SAFETY: EPOLL_CTL_DEL ignores the event pointer.
        unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
    }

    /// The keys of the ready descriptors (waits until there is one).
    fn wait(&self) -> Vec<u64> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
        // SAFETY: `evs` is writable for 64 events.
        let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), evs.as_mut_ptr(), 64, -1) };
        let n = usize::try_from(n).unwrap_or(0);
        evs[..n].iter().map(|e| e.u64).collect()
    }
}

// ----- clients -----

fn t(msg: &Tmessage<'_>) -> Vec<u8> {
    msg.encode_to_vec(1).expect("encodable request")
}

/// One connection with a session: fid 0 the root, fid 1 the open file.
struct Conn {
    s: UnixStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(sock: &Path) -> Conn {
        let mut c = Conn {
            s: UnixStream::connect(sock).expect("connect"),
            buf: vec![0; MSIZE as usize],
        };
        c.call(&t(&Tmessage::Version {
            msize: MSIZE,
            version: P9String::from("9P2000.L"),
        }));
        c.call(&t(&Tmessage::Attach {
            fid: 0,
            afid: u32::MAX,
            uname: P9String::from("bench"),
            aname: P9String::from(""),
            n_uname: 0,
        }));
        c.call(&walk(0, 1, "f"));
        c.call(&t(&Tmessage::Lopen {
            fid: 1,
            flags: dotl_open::RDONLY,
        }));
        c
    }

    /// Send one request and read its reply, which must not be an error.
    fn call(&mut self, req: &[u8]) -> usize {
        self.s.write_all(req).expect("write");
        let mut hdr = [0u8; 4];
        self.s.read_exact(&mut hdr).expect("reply size");
        let n = u32::from_le_bytes(hdr) as usize;
        self.s.read_exact(&mut self.buf[4..n]).expect("reply");
        let typ = self.buf[4];
        assert!(
            typ == req[4] + 1 && typ != msgtype::RLERROR,
            "request type {} got reply type {typ}",
            req[4]
        );
        n
    }
}

fn walk(fid: u32, newfid: u32, name: &str) -> Vec<u8> {
    t(&Tmessage::Walk {
        fid,
        newfid,
        wnames: vec![P9String::from(name)],
    })
}

#[derive(Clone, Copy)]
enum Op {
    Getattr,
    WalkClunk,
    Read4k,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Getattr => "getattr",
            Op::WalkClunk => "walk_clunk",
            Op::Read4k => "read_4KiB",
        }
    }

    /// The requests of one iteration.
    fn requests(self, i: u64) -> Vec<Vec<u8>> {
        match self {
            Op::Getattr => vec![t(&Tmessage::Getattr {
                fid: 1,
                request_mask: getattr::BASIC,
            })],
            Op::WalkClunk => vec![walk(0, 2, "f"), t(&Tmessage::Clunk { fid: 2 })],
            Op::Read4k => vec![t(&Tmessage::Read {
                fid: 1,
                offset: (i % 256) * 4096,
                count: 4096,
            })],
        }
    }
}

/// Requests per second of `clients` connections to `sock` doing `op` for
/// [`WINDOW`].
fn measure(sock: &Path, op: Op, clients: usize) -> f64 {
    let mut conns: Vec<Conn> = (0..clients).map(|_| Conn::open(sock)).collect();
    let reqs: Vec<Vec<u8>> = (0..256).flat_map(|i| op.requests(i)).collect();
    let start = Barrier::new(clients + 1);
    let (total, elapsed) = std::thread::scope(|s| {
        let hs: Vec<_> = conns
            .iter_mut()
            .map(|c| {
                let (start, reqs) = (&start, &reqs);
                s.spawn(move || {
                    start.wait();
                    let t0 = Instant::now();
                    let mut n = 0u64;
                    while t0.elapsed() < WINDOW {
                        for r in reqs.iter().take(32) {
                            c.call(r);
                            n += 1;
                        }
                    }
                    (n, t0.elapsed())
                })
            })
            .collect();
        start.wait();
        let res: Vec<(u64, Duration)> = hs.into_iter().map(|h| h.join().expect("client")).collect();
        let total: u64 = res.iter().map(|r| r.0).sum();
        let longest = res.iter().map(|r| r.1).max().unwrap_or(WINDOW);
        (total, longest)
    });
    total as f64 / elapsed.as_secs_f64()
}

// ----- servers -----

struct Served {
    child: Child,
    sock: PathBuf,
}

impl Served {
    /// Start `cmd`, whose first stdout line says it is listening.
    fn start(mut cmd: Command, sock: PathBuf) -> Served {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        let mut line = String::new();
        let out = child.stdout.take().expect("stdout");
        BufReader::new(out)
            .read_line(&mut line)
            .expect("ready line");
        assert!(line.contains("listening on"), "{cmd:?} said {line:?}");
        Served { child, sock }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // SIGTERM: p9serve stops cleanly on it.
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `p9-bench socket P9SERVE`: the comparison, BENCH lines on stdout.
pub fn run(p9serve: &str) {
    let dir = PathBuf::from(format!("/dev/shm/p9-sockbench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let export = dir.join("export");
    std::fs::create_dir_all(&export).expect("bench dir");
    std::fs::write(export.join("f"), vec![7u8; 1 << 20]).expect("1 MiB file");

    let threads = THREADS.to_string();
    let c_sock = dir.join("c.sock");
    let mut cmd = Command::new(p9serve);
    cmd.args(["--threads", &threads, "--unix"])
        .arg(&c_sock)
        .arg(&export);
    let ours = Served::start(cmd, c_sock);
    let r_sock = dir.join("rust.sock");
    let mut cmd = Command::new(std::env::current_exe().expect("own path"));
    cmd.args(["serve-rust", "--threads", &threads, "--unix"])
        .arg(&r_sock)
        .arg(&export);
    let base = Served::start(cmd, r_sock);

    // Warm both up (page cache, allocator, first connections).
    measure(&ours.sock, Op::Getattr, 4);
    measure(&base.sock, Op::Getattr, 4);
    for op in [Op::Getattr, Op::WalkClunk, Op::Read4k] {
        for clients in [1, 32] {
            let (mut o, mut b) = (Vec::new(), Vec::new());
            for round in 0..ROUNDS {
                // Alternate which goes first, too.
                if round % 2 == 0 {
                    o.push(measure(&ours.sock, op, clients));
                    b.push(measure(&base.sock, op, clients));
                } else {
                    b.push(measure(&base.sock, op, clients));
                    o.push(measure(&ours.sock, op, clients));
                }
            }
            let (o, b) = (median(o), median(b));
            let plural = if clients == 1 { "" } else { "s" };
            println!(
                "BENCH name=p9serve_{}_{clients}client{plural}_vs_rust ours={o:.0} base={b:.0} unit=req/s speedup={:.3}",
                op.name(),
                o / b
            );
        }
    }
    drop(ours);
    drop(base);

    // One pool for every connection against a pool per connection.
    const CONNS: usize = 256;
    let shared_sock = dir.join("shared.sock");
    let mut cmd = Command::new(p9serve);
    cmd.args(["--threads", &threads, "--unix"])
        .arg(&shared_sock)
        .arg(&export);
    let shared = Served::start(cmd, shared_sock);
    let private_sock = dir.join("private.sock");
    let mut cmd = Command::new(p9serve);
    cmd.args(["--threads", &threads, "--private-pools", "--unix"])
        .arg(&private_sock)
        .arg(&export);
    let private = Served::start(cmd, private_sock);
    measure(&shared.sock, Op::Getattr, CONNS);
    measure(&private.sock, Op::Getattr, CONNS);
    let (mut o, mut b) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            o.push(measure(&shared.sock, Op::Getattr, CONNS));
            b.push(measure(&private.sock, Op::Getattr, CONNS));
        } else {
            b.push(measure(&private.sock, Op::Getattr, CONNS));
            o.push(measure(&shared.sock, Op::Getattr, CONNS));
        }
    }
    let (o, b) = (median(o), median(b));
    println!(
        "BENCH name=p9serve_getattr_{CONNS}conns_one_pool_vs_pool_per_conn ours={o:.0} base={b:.0} unit=req/s speedup={:.3}",
        o / b
    );
    drop(shared);
    drop(private);
    let _ = std::fs::remove_dir_all(&dir);
}
