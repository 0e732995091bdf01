// SPDX-License-Identifier: GPL-2.0-or-later
//! p9-hostile: what a hostile client does to a 9P server on a Unix socket
//! (such as `tests/p9serve/p9serve`), checked from outside:
//!
//! * `flush`: Tflushes naming each other, chains, a cycle of three and a
//!   random burst, each sent in one write; every request ends within a
//!   bounded time (a reply, or none for a request other than a Tflush that
//!   a later Tflush named), every Tflush gets its Rflush, a flushed
//!   request's reply precedes the Rflush naming it, and later requests on
//!   the connection are answered;
//! * `slow-reader PID MAX_RSS_MIB`: Twrites sent without ever reading a
//!   reply: the server must stop reading (the client's writes block)
//!   while its resident memory (`/proc/PID/status` VmRSS) grows by less
//!   than MAX_RSS_MIB; once the client closes, a new connection is served
//!   at once;
//! * `connections PID COUNT THREADS`: COUNT idle connections (the server's
//!   connection limit) and a few active ones: the server's threads
//!   (`/proc/PID/status` Threads) stay at most THREADS, the active ones are
//!   served, one connection beyond the limit is closed at once (EOF), and
//!   once a connection ends a new one is served.
//!
//! Usage: `p9-hostile unix:PATH (flush | slow-reader PID MAX_RSS_MIB |
//! connections PID COUNT THREADS)`.  Prints one `ok`/`FAIL` line per check
//! and ends with `p9-hostile <what>: N passed, N failed`; exits non-zero on
//! a failure.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use p9_wire::consts::{dotl_open, getattr, NOFID};
use p9_wire::msgtype::RFLUSH;
use p9_wire::{P9String, SgView, Tmessage};

/// How long a reply may take before a check calls the server stuck.
const PATIENCE: Duration = Duration::from_secs(10);
const MSIZE: u32 = 1 << 20;

type CheckResult = Result<String, String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

struct Runner {
    passed: u32,
    failed: u32,
}

impl Runner {
    fn check(&mut self, name: &str, f: impl FnOnce() -> CheckResult) {
        match f() {
            Ok(note) if note.is_empty() => {
                self.passed += 1;
                println!("ok   {name}");
            }
            Ok(note) => {
                self.passed += 1;
                println!("ok   {name} ({note})");
            }
            Err(msg) => {
                self.failed += 1;
                println!("FAIL {name}: {msg}");
            }
        }
    }
}

/// A reply as it came: its type and tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reply {
    typ: u8,
    tag: u16,
}

/// A raw 9P connection: frames written as they are, replies read with a
/// deadline.
struct Raw {
    s: UnixStream,
    buf: Vec<u8>,
}

impl Raw {
    fn connect(path: &str) -> Result<Raw, String> {
        let s = UnixStream::connect(path).map_err(|e| format!("connect {path}: {e}"))?;
        Ok(Raw { s, buf: Vec::new() })
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.s
            .write_all(bytes)
            .map_err(|e| format!("writing {} bytes: {e}", bytes.len()))
    }

    /// The next reply, `Ok(None)` at EOF, `Err` on timeout.
    fn recv(&mut self, deadline: Instant) -> Result<Option<(Reply, Vec<u8>)>, String> {
        loop {
            if self.buf.len() >= 4 {
                let n = u32::from_le_bytes(self.buf[..4].try_into().unwrap()) as usize;
                ensure!((7..=MSIZE as usize).contains(&n), "reply size {n}");
                if self.buf.len() >= n {
                    let frame: Vec<u8> = self.buf.drain(..n).collect();
                    let r = Reply {
                        typ: frame[4],
                        tag: u16::from_le_bytes([frame[5], frame[6]]),
                    };
                    return Ok(Some((r, frame)));
                }
            }
            let now = Instant::now();
            ensure!(now < deadline, "no reply within {PATIENCE:?}");
            self.s
                .set_read_timeout(Some(deadline - now))
                .map_err(|e| e.to_string())?;
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading: {e}")),
            }
        }
    }

    /// Send `msg` and wait for its reply.
    fn call(&mut self, tag: u16, msg: &Tmessage<'_>) -> Result<(Reply, Vec<u8>), String> {
        self.send(&msg.encode_to_vec(tag).map_err(|e| e.to_string())?)?;
        let deadline = Instant::now() + PATIENCE;
        let (r, frame) = self
            .recv(deadline)?
            .ok_or_else(|| format!("connection closed waiting for {}", msg.name()))?;
        ensure!(r.tag == tag, "reply tag {} for {}", r.tag, msg.name());
        ensure!(
            r.typ == msg.msg_type() + 1,
            "{} got reply type {}",
            msg.name(),
            r.typ
        );
        Ok((r, frame))
    }

    /// Tversion and Tattach of fid 0 as root.
    fn session(path: &str) -> Result<Raw, String> {
        let mut c = Raw::connect(path)?;
        c.call(
            0xffff,
            &Tmessage::Version {
                msize: MSIZE,
                version: P9String::from("9P2000.L"),
            },
        )?;
        c.call(
            1,
            &Tmessage::Attach {
                fid: 0,
                afid: NOFID,
                uname: P9String::from("root"),
                aname: P9String::from(""),
                n_uname: 0,
            },
        )?;
        Ok(c)
    }

    fn getattr(&mut self, tag: u16) -> Result<(), String> {
        self.call(
            tag,
            &Tmessage::Getattr {
                fid: 0,
                request_mask: getattr::BASIC,
            },
        )
        .map(drop)
    }
}

fn tflush(tag: u16, oldtag: u16) -> Vec<u8> {
    Tmessage::Flush { oldtag }.encode_to_vec(tag).unwrap()
}

/// What one request of a flush scenario is.
#[derive(Clone, Copy, Debug)]
enum Req {
    Flush(u16),
    Getattr,
    Read,
}

/// Send `plan` (tag, request) in one write, then collect every reply.
/// Checks: each request gets at most one reply, of its type; every Tflush
/// gets one; a request that got none was named by a Tflush sent after it
/// (whose Rflush tells the client it is over); an Rflush comes after the
/// reply (if any) of the request its Tflush named; and the connection
/// then answers a Tgetattr.
fn flush_scenario(path: &str, plan: &[(u16, Req)]) -> CheckResult {
    let mut c = Raw::session(path)?;
    // A file to read: fid 1.
    c.call(
        2,
        &Tmessage::Walk {
            fid: 0,
            newfid: 1,
            wnames: vec![],
        },
    )?;
    c.call(
        3,
        &Tmessage::Lcreate {
            fid: 1,
            name: P9String::from(format!("flush-{}", std::process::id())),
            flags: dotl_open::RDWR | dotl_open::CREATE,
            mode: 0o644,
            gid: 0,
        },
    )?;
    let mut bytes = Vec::new();
    for &(tag, req) in plan {
        match req {
            Req::Flush(old) => bytes.extend(tflush(tag, old)),
            Req::Getattr => bytes.extend(
                Tmessage::Getattr {
                    fid: 0,
                    request_mask: getattr::BASIC,
                }
                .encode_to_vec(tag)
                .unwrap(),
            ),
            Req::Read => bytes.extend(
                Tmessage::Read {
                    fid: 1,
                    offset: 0,
                    count: 4096,
                }
                .encode_to_vec(tag)
                .unwrap(),
            ),
        }
    }
    c.send(&bytes)?;
    // Every request is settled by its reply, or by the Rflush of a later
    // Tflush naming it.
    let deadline = Instant::now() + PATIENCE;
    let mut order: Vec<Reply> = Vec::new();
    let settled = |order: &[Reply]| {
        plan.iter().enumerate().all(|(i, &(tag, _))| {
            order.iter().any(|r| r.tag == tag)
                || plan[i + 1..].iter().any(|&(t, q)| {
                    matches!(q, Req::Flush(o) if o == tag)
                        && order.iter().any(|r| r.tag == t && r.typ == RFLUSH)
                })
        })
    };
    while !settled(&order) {
        match c.recv(deadline) {
            Ok(Some((r, _))) => order.push(r),
            Ok(None) => return Err(format!("connection closed; replies so far {order:?}")),
            Err(e) => {
                let missing: Vec<u16> = plan
                    .iter()
                    .map(|p| p.0)
                    .filter(|t| !order.iter().any(|r| r.tag == *t))
                    .collect();
                return Err(format!("{e}: no reply for tags {missing:?}"));
            }
        }
    }
    // Later requests are answered (and late replies for the settled ones
    // would come before this one).
    c.send(
        &Tmessage::Getattr {
            fid: 0,
            request_mask: getattr::BASIC,
        }
        .encode_to_vec(9999)
        .unwrap(),
    )?;
    loop {
        match c.recv(Instant::now() + PATIENCE)? {
            Some((r, _)) if r.tag == 9999 => break,
            Some((r, _)) => order.push(r),
            None => return Err("connection closed".into()),
        }
    }
    let pos: HashMap<u16, usize> = order.iter().enumerate().map(|(i, r)| (r.tag, i)).collect();
    ensure!(pos.len() == order.len(), "a tag answered twice: {order:?}");
    for (i, &(tag, req)) in plan.iter().enumerate() {
        if let Some(&p) = pos.get(&tag) {
            let want = match req {
                Req::Flush(_) => RFLUSH,
                Req::Getattr => p9_wire::msgtype::RGETATTR,
                Req::Read => p9_wire::msgtype::RREAD,
            };
            ensure!(
                order[p].typ == want,
                "tag {tag}: reply type {}",
                order[p].typ
            );
            if let Req::Flush(old) = req {
                // The request it named: sent before it.
                if plan[..i].iter().any(|&(t, _)| t == old) {
                    if let Some(&q) = pos.get(&old) {
                        ensure!(q < p, "Rflush {tag} before the reply of {old}: {order:?}");
                    }
                }
            }
        }
    }
    for &(t, req) in plan {
        if matches!(req, Req::Flush(_)) {
            ensure!(pos.contains_key(&t), "Tflush {t} unanswered: {order:?}");
        }
    }
    let unanswered = plan.iter().filter(|p| !pos.contains_key(&p.0)).count();
    Ok(format!(
        "{} replies, {unanswered} flushed without one",
        order.len()
    ))
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn flush(r: &mut Runner, path: &str) {
    use Req::{Flush, Getattr, Read};
    r.check("two Tflushes naming each other, in one write", || {
        flush_scenario(path, &[(10, Flush(11)), (11, Flush(10))])
    });
    r.check("the same, 100 times over", || {
        for i in 0..100u16 {
            flush_scenario(path, &[(10 + i, Flush(11 + i)), (11 + i, Flush(10 + i))])?;
        }
        Ok(String::new())
    });
    r.check("a cycle of three Tflushes", || {
        flush_scenario(path, &[(20, Flush(22)), (21, Flush(20)), (22, Flush(21))])
    });
    r.check("a chain of Tflushes naming the next", || {
        let plan: Vec<(u16, Req)> = (0..16).map(|i| (30 + i, Flush(31 + i))).collect();
        flush_scenario(path, &plan)
    });
    r.check("a chain of Tflushes of a read naming the previous", || {
        let mut plan = vec![(50, Read)];
        plan.extend((0..16).map(|i| (51 + i, Flush(50 + i))));
        flush_scenario(path, &plan)
    });
    r.check("Tflushes of Tflushes of reads, interleaved", || {
        let mut plan = Vec::new();
        for k in 0..20u16 {
            let b = 100 + k * 4;
            plan.extend([
                (b, Read),
                (b + 1, Flush(b)),
                (b + 2, Flush(b + 1)),
                (b + 3, Flush(b + 2)),
            ]);
        }
        flush_scenario(path, &plan)
    });
    r.check(
        "a burst of 300 requests, 200 of them Tflushes naming any tag",
        || {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            for round in 0..5u16 {
                let base = 1000 + round * 400;
                let plan: Vec<(u16, Req)> = (0..300u16)
                    .map(|i| {
                        let tag = base + i;
                        match rng.below(3) {
                            0 if i % 2 == 0 => (tag, Getattr),
                            0 => (tag, Read),
                            _ => (tag, Flush(base + rng.below(300) as u16)),
                        }
                    })
                    .collect();
                flush_scenario(path, &plan)?;
            }
            Ok(String::new())
        },
    );
    r.check("a Tflush naming itself is answered", || {
        flush_scenario(path, &[(7, Flush(7))])
    });
    r.check("the server still serves a new connection", || {
        Raw::session(path)?.getattr(5).map(|_| String::new())
    });
}

/// A field of `/proc/PID/status` (its first number).
fn proc_status(pid: u32, field: &str) -> Result<u64, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/{pid}/status"))
}

fn slow_reader(r: &mut Runner, path: &str, pid: u32, max_rss_mib: u64) {
    const CHUNK: usize = 64 * 1024;
    const CAP: u64 = 1 << 30;
    let mut conn = None;
    r.check("slow reader: session and a file to write", || {
        let mut c = Raw::session(path)?;
        c.call(
            2,
            &Tmessage::Walk {
                fid: 0,
                newfid: 1,
                wnames: vec![],
            },
        )?;
        c.call(
            3,
            &Tmessage::Lcreate {
                fid: 1,
                name: P9String::from(format!("slow-{}", std::process::id())),
                flags: dotl_open::RDWR | dotl_open::CREATE | dotl_open::TRUNC,
                mode: 0o644,
                gid: 0,
            },
        )?;
        conn = Some(c);
        Ok(String::new())
    });
    let Some(c) = conn else { return };
    let rss0 = proc_status(pid, "VmRSS").unwrap_or(0);
    let written = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let data = vec![0x5au8; CHUNK];
    let frame = Tmessage::Write {
        fid: 1,
        offset: 0,
        data: SgView::from_slice(&data),
    }
    .encode_to_vec(100)
    .unwrap();
    let writer = {
        let mut s = c.s.try_clone().expect("clone");
        let (written, stop) = (Arc::clone(&written), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) && written.load(Ordering::Relaxed) < CAP {
                if s.write_all(&frame).is_err() {
                    return;
                }
                written.fetch_add(frame.len() as u64, Ordering::Relaxed);
            }
        })
    };
    // Watch: the writes must stall (no progress for 2 s) long before
    // 1 GiB, and the server's memory must stay bounded meanwhile.
    let start = Instant::now();
    let mut peak = rss0;
    let (mut last, mut last_change) = (0, Instant::now());
    let stalled = loop {
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(proc_status(pid, "VmRSS").unwrap_or(0));
        let w = written.load(Ordering::Relaxed);
        if w != last {
            (last, last_change) = (w, Instant::now());
        }
        if last_change.elapsed() >= Duration::from_secs(2) {
            break true;
        }
        if w >= CAP || start.elapsed() > Duration::from_secs(60) {
            break false;
        }
    };
    let total = written.load(Ordering::Relaxed);
    r.check(
        "slow reader: the server stops reading (the client's writes block)",
        || {
            ensure!(
                stalled && total < 256 << 20,
                "the server took {} MiB of requests whose replies were never read ({:.1} s)",
                total >> 20,
                start.elapsed().as_secs_f64()
            );
            Ok(format!("blocked after {} KiB", total >> 10))
        },
    );
    r.check("slow reader: the server's memory stays bounded", || {
        let grew = peak.saturating_sub(rss0) >> 10;
        ensure!(
            grew < max_rss_mib,
            "VmRSS grew by {grew} MiB (from {} MiB), bound {max_rss_mib} MiB, after {} MiB sent",
            rss0 >> 10,
            total >> 20
        );
        Ok(format!("VmRSS +{grew} MiB for {} MiB sent", total >> 20))
    });
    // Close: the writer's blocked write fails.
    stop.store(true, Ordering::Relaxed);
    let _ = c.s.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    drop(c);
    r.check(
        "slow reader gone: a new connection is served at once",
        || {
            let t = Instant::now();
            let mut n = Raw::session(path)?;
            n.getattr(5)?;
            ensure!(
                t.elapsed() < Duration::from_secs(5),
                "took {:?}",
                t.elapsed()
            );
            Ok(format!("{:?}", t.elapsed()))
        },
    );
    r.check("slow reader gone: its memory is given back", || {
        // The dropped requests are freed; allow for allocator caches.
        let deadline = Instant::now() + PATIENCE;
        loop {
            let now = proc_status(pid, "VmRSS")?;
            if now.saturating_sub(rss0) >> 10 < max_rss_mib {
                return Ok(format!("VmRSS {} MiB", now >> 10));
            }
            ensure!(Instant::now() < deadline, "VmRSS still {} MiB", now >> 10);
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

fn connections(r: &mut Runner, path: &str, pid: u32, count: usize, max_threads: u64) {
    let mut idle = Vec::new();
    r.check(
        &format!("{count} idle connections, each with a session"),
        || {
            for i in 0..count {
                let c = Raw::session(path).map_err(|e| format!("connection {i}: {e}"))?;
                idle.push(c);
            }
            Ok(String::new())
        },
    );
    r.check("the server's threads stay bounded", || {
        let t = proc_status(pid, "Threads")?;
        ensure!(
            t <= max_threads,
            "{t} threads for {} connections (bound {max_threads})",
            idle.len()
        );
        Ok(format!("{t} threads for {} connections", idle.len()))
    });
    r.check("one connection beyond the limit is closed at once", || {
        let mut c = Raw::connect(path)?;
        // Whatever is sent, nothing comes back but EOF.
        let _ = c.send(
            &Tmessage::Version {
                msize: MSIZE,
                version: P9String::from("9P2000.L"),
            }
            .encode_to_vec(0xffff)
            .unwrap(),
        );
        match c.recv(Instant::now() + PATIENCE) {
            Ok(None) => Ok(String::new()),
            Ok(Some((reply, _))) => Err(format!("got a reply {reply:?}")),
            Err(e) if e.contains("Connection reset") => Ok("reset".into()),
            Err(e) => Err(e),
        }
    });
    r.check("active connections are served meanwhile", || {
        // Make room for them: end a few idle ones.
        let active: Vec<Raw> = idle.drain(..4.min(idle.len())).collect();
        let errors: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = active
                .into_iter()
                .map(|mut c| {
                    s.spawn(move || -> Result<(), String> {
                        for i in 0..200u16 {
                            c.getattr(100 + i)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            hs.into_iter()
                .filter_map(|h| h.join().unwrap_or(Err("panicked".into())).err())
                .collect()
        });
        ensure!(errors.is_empty(), "{}", errors.join("; "));
        Ok(String::new())
    });
    r.check("a connection that ends makes room for a new one", || {
        idle.pop();
        let deadline = Instant::now() + PATIENCE;
        loop {
            match Raw::session(path) {
                Ok(mut c) => {
                    c.getattr(7)?;
                    return Ok(String::new());
                }
                Err(e) => ensure!(Instant::now() < deadline, "{e}"),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    drop(idle);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!(
            "usage: p9-hostile unix:PATH (flush | slow-reader PID MAX_RSS_MIB | \
             connections PID COUNT THREADS)"
        );
        std::process::exit(2)
    };
    let Some(path) = args.get(1).and_then(|a| a.strip_prefix("unix:")) else {
        usage()
    };
    let num = |i: usize| -> u64 {
        args.get(i)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| usage())
    };
    let mut r = Runner {
        passed: 0,
        failed: 0,
    };
    let what = args.get(2).map(String::as_str).unwrap_or("");
    match what {
        "flush" => flush(&mut r, path),
        "slow-reader" => slow_reader(&mut r, path, num(3) as u32, num(4)),
        "connections" => connections(&mut r, path, num(3) as u32, num(4) as usize, num(5)),
        _ => usage(),
    }
    println!(
        "p9-hostile {what}: {} passed, {} failed",
        r.passed, r.failed
    );
    std::process::exit(i32::from(r.failed > 0));
}
