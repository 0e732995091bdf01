// SPDX-License-Identifier: GPL-2.0-or-later
//! p9-storm: a fid storm on one connection to a 9P server on a stream
//! socket (such as `tests/p9serve/p9serve` started with a low
//! `ulimit -n`) while a second connection keeps working; checks the
//! results against the exported host directory.
//!
//! Usage: `p9-storm (unix:PATH | tcp:HOST:PORT) HOSTDIR [FILES]`
//!
//! * connection 1 walks to `FILES` files (default 3000) and keeps every
//!   fid;
//! * meanwhile connection 2 creates, writes, reads, lists, makes
//!   directories and walks: every request must work;
//! * afterwards connection 1's fids still refer to their files (getattr
//!   matches the host's inode, walks from its directory fids, open and
//!   read), and the server still accepts a new connection.
//!
//! Prints one `ok`/`FAIL` line per check and ends with
//! `p9serve fid storm: N passed, N failed`; exits non-zero on a failure.
//! The export's root must be HOSTDIR and the sessions run as root.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use p9_client::{Client, StreamTransport};
use p9_wire::consts::{dotl_open, getattr, NOFID};
use p9_wire::Errno;

const MSIZE: u32 = 1 << 16;
const PER_DIR: usize = 150;

type Conn = Client<Arc<StreamTransport>>;

/// `Result<_, Errno>` into a message.
fn e<T>(what: &str, r: Result<T, Errno>) -> Result<T, String> {
    r.map_err(|err| format!("{what}: {err}"))
}

struct Storm {
    addr: String,
    host: PathBuf,
    work: String,
    files: usize,
    passed: u32,
    failed: u32,
}

/// Runs `f`, a panic (the client's answer to a closed connection or a
/// malformed reply) being a failure.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panic".into());
        Err(format!("panicked: {msg}"))
    })
}

impl Storm {
    fn check(&mut self, name: &str, r: Result<String, String>) {
        match r {
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

    /// A new connection with a 9P2000.L session: the client and its root.
    fn session(&self) -> Result<(Conn, u32), String> {
        guarded(|| {
            let t = StreamTransport::connect(&self.addr)
                .map_err(|err| format!("connecting to {}: {err}", self.addr))?;
            let c = Client::new(Arc::new(t));
            e("Tversion", c.version(MSIZE, "9P2000.L"))?;
            let root = c.alloc_fid();
            e("Tattach", c.attach(root, NOFID, "root", "", 0))?;
            Ok((c, root))
        })
    }

    fn rel(&self, j: usize, i: usize) -> [String; 3] {
        [self.work.clone(), format!("d{j}"), format!("f{i}")]
    }

    fn ino(&self, rel: &[String]) -> Result<u64, String> {
        let p: PathBuf = rel.iter().fold(self.host.clone(), |p, n| p.join(n));
        fs::symlink_metadata(&p)
            .map(|m| m.ino())
            .map_err(|err| format!("{}: {err}", p.display()))
    }
}

fn content(j: usize, i: usize) -> String {
    format!("file {i} of directory {j}")
}

/// Connection 2's round `k`; the first failure.
fn round(c: &Conn, root: u32, work: &str, dirs: usize, k: usize) -> Result<(), String> {
    let (w, _) = e("walk work", c.walk_new(root, &[work, "busy"]))?;
    let nf = c.alloc_fid();
    e("clone", c.clone_fid(w, nf))?;
    let name = format!("new{k}");
    e("Tlcreate", c.lcreate(nf, &name, dotl_open::RDWR, 0o644, 0))?;
    let data = format!("written in round {k}");
    let n = e("Twrite", c.write(nf, 0, data.as_bytes()))?;
    if n as usize != data.len() {
        return Err(format!("Twrite wrote {n} of {}", data.len()));
    }
    if e("Tread", c.read(nf, 0, 256))? != data.as_bytes() {
        return Err("read back other data".into());
    }
    e("Tclunk", c.clunk(nf))?;
    e("Tmkdir", c.mkdir(w, format!("dir{k}"), 0o755, 0))?;
    let (l, _) = e("walk busy", c.walk_new(root, &[work, "busy"]))?;
    e(
        "Tlopen busy",
        c.lopen(l, dotl_open::RDONLY | dotl_open::DIRECTORY),
    )?;
    let names: BTreeSet<String> = e("Treaddir", c.readdir_all(l))?
        .iter()
        .map(|d| d.name.to_string_lossy().into_owned())
        .collect();
    if !names.contains(&name) || !names.contains(&format!("dir{k}")) {
        return Err(format!("listing lacks round {k}'s entries"));
    }
    e("Tclunk", c.clunk(l))?;
    let (j, i) = (k % dirs, (k * 7) % PER_DIR);
    let (f, q) = e(
        "walk to a file",
        c.walk_new(root, &[work.to_string(), format!("d{j}"), format!("f{i}")]),
    )?;
    if q.len() != 3 {
        return Err(format!("walk to d{j}/f{i}: {} qids", q.len()));
    }
    e("Tlopen", c.lopen(f, dotl_open::RDONLY))?;
    if e("Tread", c.read(f, 0, 256))? != content(j, i).as_bytes() {
        return Err(format!("d{j}/f{i} reads other data"));
    }
    e("Tgetattr", c.getattr(f, getattr::BASIC))?;
    e("Tclunk", c.clunk(f))?;
    e("Tclunk", c.clunk(w))
}

fn prepare(dir: &Path, dirs: usize) -> std::io::Result<()> {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir(dir)?;
    fs::create_dir(dir.join("busy"))?;
    for j in 0..dirs {
        fs::create_dir(dir.join(format!("d{j}")))?;
        for i in 0..PER_DIR {
            fs::write(dir.join(format!("d{j}/f{i}")), content(j, i))?;
        }
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !(3..=4).contains(&args.len()) {
        eprintln!("usage: p9-storm (unix:PATH | tcp:HOST:PORT) HOSTDIR [FILES]");
        std::process::exit(2);
    }
    let files = match args.get(3).map(|s| s.parse::<usize>()) {
        None => 3000,
        Some(Ok(n)) if n >= PER_DIR => n - n % PER_DIR,
        Some(_) => {
            eprintln!("p9-storm: FILES must be a number of at least {PER_DIR}");
            std::process::exit(2);
        }
    };
    let mut s = Storm {
        addr: args[1].clone(),
        host: PathBuf::from(&args[2]),
        work: format!("storm-{}", std::process::id()),
        files,
        passed: 0,
        failed: 0,
    };
    // Panics are reported by the checks.
    std::panic::set_hook(Box::new(|_| {}));
    let dirs = files / PER_DIR;
    let wdir = s.host.join(&s.work);
    if let Err(err) = prepare(&wdir, dirs) {
        eprintln!("preparing {}: {err}", wdir.display());
        std::process::exit(2);
    }
    run(&mut s, dirs);
    let _ = fs::remove_dir_all(&wdir);
    println!(
        "p9serve fid storm: {} passed, {} failed",
        s.passed, s.failed
    );
    std::process::exit(i32::from(s.failed > 0));
}

fn run(s: &mut Storm, dirs: usize) {
    let (c1, root1) = match s.session() {
        Ok(x) => x,
        Err(msg) => return s.check("connection 1: version + attach", Err(msg)),
    };
    let (c2, root2) = match s.session() {
        Ok(x) => x,
        Err(msg) => return s.check("connection 2: version + attach", Err(msg)),
    };
    s.check("two connections: version + attach", Ok(String::new()));

    let storming = AtomicBool::new(true);
    let work = s.work.clone();
    let files = s.files;
    let (storm, other) = std::thread::scope(|sc| {
        let storm = sc.spawn(|| -> Result<(Vec<u32>, Vec<u32>), String> {
            let r = guarded(|| {
                let mut fids = Vec::with_capacity(files);
                let mut dir_fids = Vec::with_capacity(dirs);
                for j in 0..dirs {
                    let (d, _) = e(
                        &format!("walk d{j}"),
                        c1.walk_new(root1, &[work.clone(), format!("d{j}")]),
                    )?;
                    dir_fids.push(d);
                    for i in 0..PER_DIR {
                        let (f, q) = e(
                            &format!("walk d{j}/f{i}"),
                            c1.walk_new(d, &[format!("f{i}")]),
                        )?;
                        if q.len() != 1 {
                            return Err(format!("walk d{j}/f{i}: no qid"));
                        }
                        fids.push(f);
                    }
                }
                Ok((fids, dir_fids))
            });
            storming.store(false, Ordering::Relaxed);
            r
        });
        let other = sc.spawn(|| -> Result<usize, String> {
            let mut k = 0;
            while storming.load(Ordering::Relaxed) || k < 20 {
                guarded(|| round(&c2, root2, &work, dirs, k))
                    .map_err(|m| format!("round {k}: {m}"))?;
                k += 1;
            }
            Ok(k)
        });
        (
            storm.join().unwrap_or_else(|_| Err("panicked".into())),
            other.join().unwrap_or_else(|_| Err("panicked".into())),
        )
    });
    let (fids, dir_fids) = match storm {
        Ok(f) => {
            s.check(
                &format!("connection 1 walks to {files} fids and keeps them"),
                Ok(String::new()),
            );
            f
        }
        Err(msg) => {
            s.check(&format!("connection 1 walks to {files} fids"), Err(msg));
            (Vec::new(), Vec::new())
        }
    };
    let r = other.map(|k| format!("{k} rounds"));
    s.check(
        "connection 2 creates, writes, reads, lists, walks meanwhile",
        r,
    );
    if fids.len() == files {
        let r = guarded(|| {
            for (n, &f) in fids.iter().enumerate() {
                let (j, i) = (n / PER_DIR, n % PER_DIR);
                let st = e(
                    &format!("Tgetattr d{j}/f{i}"),
                    c1.getattr(f, getattr::BASIC),
                )?;
                if st.qid.path != s.ino(&s.rel(j, i))? {
                    return Err(format!("fid of d{j}/f{i} is another file"));
                }
            }
            Ok(String::new())
        });
        s.check("connection 1's fids still refer to their files", r);
        let r = guarded(|| {
            for (j, &d) in dir_fids.iter().enumerate() {
                let i = (j * 13) % PER_DIR;
                let (f, q) = e(
                    &format!("walk from d{j}"),
                    c1.walk_new(d, &[format!("f{i}")]),
                )?;
                if q[0].path != s.ino(&s.rel(j, i))? {
                    return Err(format!("walk from d{j} reached another file"));
                }
                e("Tclunk", c1.clunk(f))?;
            }
            for n in (0..fids.len()).step_by(97) {
                let (j, i) = (n / PER_DIR, n % PER_DIR);
                e(
                    &format!("Tlopen d{j}/f{i}"),
                    c1.lopen(fids[n], dotl_open::RDONLY),
                )?;
                let data = e(&format!("Tread d{j}/f{i}"), c1.read(fids[n], 0, 256))?;
                if data != content(j, i).as_bytes() {
                    return Err(format!("d{j}/f{i} reads other data"));
                }
            }
            Ok(String::new())
        });
        s.check("connection 1's fids: walk from them, open, read", r);
    }
    let r = s.session().and_then(|(c3, root3)| {
        guarded(|| {
            e("Tgetattr", c3.getattr(root3, getattr::BASIC))?;
            e("Tclunk", c3.clunk(root3))?;
            Ok(String::new())
        })
    });
    s.check("a new connection is still accepted and served", r);
    let r = guarded(|| {
        for f in fids.into_iter().chain(dir_fids) {
            e("Tclunk", c1.clunk(f))?;
        }
        e("Tclunk", c1.clunk(root1))?;
        e("Tclunk", c2.clunk(root2))?;
        Ok(String::new())
    });
    s.check("every fid clunked", r);
}
