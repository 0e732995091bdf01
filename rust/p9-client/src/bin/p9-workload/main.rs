// SPDX-License-Identifier: GPL-2.0-or-later
//! p9-workload: drive a 9P server on a stream socket (such as
//! `tests/p9serve/p9serve`) with real operations, checking the results
//! against the exported host directory, then feed it malformed frames on
//! fresh connections and check that it answers or drops each, and still
//! serves afterwards.
//!
//! Usage: `p9-workload (unix:PATH | tcp:HOST:PORT) HOSTDIR`
//!
//! Prints one `ok`/`FAIL` line per check and ends with
//! `p9serve workload: N passed, N failed`; exits non-zero on a failure.
//! The export's root must be HOSTDIR and the session runs as root
//! (n_uname 0); the checks work in a fresh subdirectory.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use p9_client::{Client, Pending, StreamTransport, Transport};
use p9_wire::consts::{dotl_open, getattr, setattr, xattr_flags, AT_REMOVEDIR, NOFID};
use p9_wire::errno::{EEXIST, ENODATA, ENOENT, ENOTEMPTY, EOPNOTSUPP};
use p9_wire::msgtype::{RERROR, RLERROR, TVERSION, TWALK};
use p9_wire::{Errno, SetAttr, Tmessage};

const MSIZE: u32 = 1 << 20;
/// How long a reply, or the end of a connection, may take.
const PATIENCE: Duration = Duration::from_secs(10);

type Conn = Client<Arc<StreamTransport>>;

type CheckResult = Result<String, String>;

struct Runner {
    addr: String,
    host: PathBuf,
    passed: u32,
    failed: u32,
}

/// Fail the check with a message unless `cond`.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// `Result<_, Errno>` into the check's error.
fn e<T>(what: &str, r: Result<T, Errno>) -> Result<T, String> {
    r.map_err(|err| format!("{what}: {err}"))
}

impl Runner {
    fn check(&mut self, name: &str, f: impl FnOnce(&mut Self) -> CheckResult) {
        // The client panics on malformed replies: that is a failed check.
        match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(Ok(note)) if note.is_empty() => {
                self.passed += 1;
                println!("ok   {name}");
            }
            Ok(Ok(note)) => {
                self.passed += 1;
                println!("ok   {name} ({note})");
            }
            Ok(Err(msg)) => {
                self.failed += 1;
                println!("FAIL {name}: {msg}");
            }
            Err(p) => {
                self.failed += 1;
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panic".into());
                println!("FAIL {name}: panicked: {msg}");
            }
        }
    }

    fn connect(&self) -> Result<Arc<StreamTransport>, String> {
        StreamTransport::connect(&self.addr)
            .map(Arc::new)
            .map_err(|err| format!("connecting to {}: {err}", self.addr))
    }

    /// A new connection with a 9P2000.L session and `root` attached.
    fn session(&self) -> Result<(Conn, u32), String> {
        let c = Client::new(self.connect()?);
        let (msize, version) = e("Tversion", c.version(MSIZE, "9P2000.L"))?;
        ensure!(
            version == "9P2000.L" && (4096..=MSIZE).contains(&msize),
            "Rversion {version} msize {msize}"
        );
        let root = c.alloc_fid();
        e("Tattach", c.attach(root, NOFID, "root", "", 0))?;
        Ok((c, root))
    }
}

/// Wait for the outcome of raw `bytes` sent on `t`: `Some(Some(reply))`,
/// `Some(None)` for no reply (the connection ended), `None` on timeout.
fn raw_outcome(t: &StreamTransport, bytes: Vec<u8>) -> Option<Option<Vec<u8>>> {
    let (tx, rx) = mpsc::channel();
    t.submit(
        bytes,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    rx.recv_timeout(PATIENCE).ok()
}

fn frame(typ: u8, tag: u16, body: &[u8]) -> Vec<u8> {
    let size = (7 + body.len()) as u32;
    let mut v = size.to_le_bytes().to_vec();
    v.push(typ);
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(body);
    v
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn host_lgetxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: NUL-terminated strings; the buffer is valid for its length.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| {
        buf.truncate(r as usize);
        buf
    })
}

fn host_statvfs(path: &Path) -> Option<libc::statvfs> {
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: NUL-terminated path; `st` is valid for writes.
    let r = unsafe { libc::statvfs(p.as_ptr(), st.as_mut_ptr()) };
    // SAFETY: statvfs filled it on success.
    (r == 0).then(|| unsafe { st.assume_init() })
}

fn names(ents: &[p9_wire::Dirent]) -> BTreeSet<String> {
    ents.iter()
        .map(|d| d.name.to_string_lossy().into_owned())
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: p9-workload (unix:PATH | tcp:HOST:PORT) HOSTDIR");
        std::process::exit(2);
    }
    let mut r = Runner {
        addr: args[1].clone(),
        host: PathBuf::from(&args[2]),
        passed: 0,
        failed: 0,
    };
    // Replies the client cannot accept panic inside a check; the check
    // reports them, so keep the default hook quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let work = format!("workload-{}", std::process::id());
    let wdir = r.host.join(&work);
    let _ = fs::remove_dir_all(&wdir);
    if let Err(err) = fs::create_dir(&wdir) {
        eprintln!("creating {}: {err}", wdir.display());
        std::process::exit(2);
    }
    fs::write(wdir.join("hello.txt"), b"hello, 9p\n").expect("hello.txt");
    fs::create_dir(wdir.join("many")).expect("many");
    for i in 0..200 {
        fs::write(
            wdir.join(format!("many/entry-{i:03}-{}", "x".repeat(i % 40))),
            b"",
        )
        .expect("dir entry");
    }
    fs::write(
        wdir.join("big.bin"),
        (0..65536u32).map(|i| (i * 7) as u8).collect::<Vec<_>>(),
    )
    .expect("big.bin");

    operations(&mut r, &work, &wdir);
    malformed(&mut r);

    let _ = fs::remove_dir_all(&wdir);
    println!("p9serve workload: {} passed, {} failed", r.passed, r.failed);
    std::process::exit(i32::from(r.failed > 0));
}

/// The well-formed part: one session, then concurrency on a second one.
fn operations(r: &mut Runner, work: &str, wdir: &Path) {
    let session = match r.session() {
        Ok(s) => s,
        Err(msg) => {
            r.check("version + attach", |_| Err(msg));
            return;
        }
    };
    r.check("version + attach", |_| Ok(String::new()));
    let (c, root) = session;
    let c = &c;

    // The working directory's fid.
    let mut wfid = NOFID;
    r.check(
        "walk to the working directory, qid matches the host",
        |_| {
            let (fid, qids) = e("Twalk", c.walk_new(root, &[work]))?;
            wfid = fid;
            ensure!(qids.len() == 1 && qids[0].typ & 0x80 != 0, "qids {qids:?}");
            let st = e("Tgetattr", c.getattr(fid, getattr::BASIC))?;
            let md = fs::metadata(wdir).map_err(|x| x.to_string())?;
            ensure!(
                st.qid == qids[0],
                "getattr qid {:?} vs walk {:?}",
                st.qid,
                qids[0]
            );
            ensure!(
                st.mode == md.mode(),
                "mode {:o} vs host {:o}",
                st.mode,
                md.mode()
            );
            Ok(String::new())
        },
    );
    if wfid == NOFID {
        return;
    }

    r.check(
        "walk: missing name is ENOENT, partial walk returns the prefix",
        |_| {
            let missing = c.walk_new(wfid, &["no-such-file"]);
            ensure!(matches!(missing, Err(x) if x == ENOENT), "got {missing:?}");
            let qids = e(
                "partial Twalk",
                c.walk(wfid, c.alloc_fid(), &["many", "nope"]),
            )?;
            ensure!(qids.len() == 1, "partial walk gave {} qids", qids.len());
            Ok(String::new())
        },
    );

    r.check("lopen + read of a host file", |_| {
        let (f, _) = e("Twalk", c.walk_new(wfid, &["hello.txt"]))?;
        e("Tlopen", c.lopen(f, dotl_open::RDONLY))?;
        let data = e("Tread", c.read_to_end(f, 0))?;
        e("Tclunk", c.clunk(f))?;
        ensure!(data == b"hello, 9p\n", "read {data:?}");
        Ok(String::new())
    });

    r.check(
        "lcreate + write 200 KiB + read back, host sees the bytes",
        |_| {
            let f = c.alloc_fid();
            e("Twalk clone", c.clone_fid(wfid, f))?;
            e(
                "Tlcreate",
                c.lcreate(f, "new.bin", dotl_open::RDWR | dotl_open::EXCL, 0o640, 0),
            )?;
            let data: Vec<u8> = (0..200 * 1024u32).map(|i| (i % 251) as u8).collect();
            let mut off = 0;
            for chunk in data.chunks(48 * 1024) {
                let n = e("Twrite", c.write(f, off as u64, chunk))?;
                ensure!(n as usize == chunk.len(), "short write {n}");
                off += chunk.len();
            }
            let back = e("Tread", c.read_to_end(f, 0))?;
            e("Tfsync", c.fsync(f, false))?;
            e("Tclunk", c.clunk(f))?;
            ensure!(back == data, "9P read back differs ({} bytes)", back.len());
            let host = fs::read(wdir.join("new.bin")).map_err(|x| x.to_string())?;
            ensure!(host == data, "host file differs ({} bytes)", host.len());
            let f2 = c.alloc_fid();
            e("Twalk clone", c.clone_fid(wfid, f2))?;
            let again = c.lcreate(f2, "new.bin", dotl_open::RDWR | dotl_open::EXCL, 0o640, 0);
            let _ = c.clunk(f2);
            ensure!(
                matches!(again, Err(x) if x == EEXIST),
                "second O_EXCL: {again:?}"
            );
            Ok(String::new())
        },
    );

    r.check("read 64 KiB host file in 4 KiB reads", |_| {
        let (f, _) = e("Twalk", c.walk_new(wfid, &["big.bin"]))?;
        e("Tlopen", c.lopen(f, dotl_open::RDONLY))?;
        let mut got = Vec::new();
        loop {
            let chunk = e("Tread", c.read(f, got.len() as u64, 4096))?;
            if chunk.is_empty() {
                break;
            }
            got.extend(chunk);
        }
        e("Tclunk", c.clunk(f))?;
        let host = fs::read(wdir.join("big.bin")).map_err(|x| x.to_string())?;
        ensure!(got == host, "read {} bytes, differs from host", got.len());
        Ok(String::new())
    });

    r.check("mkdir, host sees a directory", |_| {
        e("Tmkdir", c.mkdir(wfid, "sub", 0o750, 0))?;
        let md = fs::metadata(wdir.join("sub")).map_err(|x| x.to_string())?;
        ensure!(md.is_dir(), "not a directory");
        ensure!(md.mode() & 0o777 == 0o750, "mode {:o}", md.mode() & 0o777);
        Ok(String::new())
    });

    r.check("readdir of 200 entries with 256-byte counts", |_| {
        let (d, _) = e("Twalk", c.walk_new(wfid, &["many"]))?;
        e("Tlopen", c.lopen(d, dotl_open::RDONLY))?;
        let ents = e("Treaddir", c.readdir_all_count(d, 256))?;
        e("Tclunk", c.clunk(d))?;
        let got = names(&ents);
        ensure!(got.len() == ents.len(), "duplicate entries");
        let mut want: BTreeSet<String> = fs::read_dir(wdir.join("many"))
            .map_err(|x| x.to_string())?
            .map(|x| x.map(|x| x.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()
            .map_err(|x| x.to_string())?;
        want.insert(".".into());
        want.insert("..".into());
        ensure!(
            got == want,
            "{} entries vs host {}: {:?}",
            got.len(),
            want.len(),
            got.symmetric_difference(&want).take(5).collect::<Vec<_>>()
        );
        Ok(format!("{} entries", ents.len()))
    });

    r.check("getattr matches the host's lstat", |_| {
        let (f, _) = e("Twalk", c.walk_new(wfid, &["big.bin"]))?;
        let st = e("Tgetattr", c.getattr(f, getattr::ALL))?;
        e("Tclunk", c.clunk(f))?;
        let md = fs::symlink_metadata(wdir.join("big.bin")).map_err(|x| x.to_string())?;
        ensure!(st.size == md.size(), "size {} vs {}", st.size, md.size());
        ensure!(
            st.mode == md.mode(),
            "mode {:o} vs {:o}",
            st.mode,
            md.mode()
        );
        ensure!(
            (st.uid, st.gid, st.nlink) == (md.uid(), md.gid(), md.nlink()),
            "uid/gid/nlink {:?} vs {:?}",
            (st.uid, st.gid, st.nlink),
            (md.uid(), md.gid(), md.nlink())
        );
        ensure!(
            st.mtime_sec == md.mtime() as u64 && st.mtime_nsec == md.mtime_nsec() as u64,
            "mtime differs"
        );
        Ok(String::new())
    });

    r.check("setattr: chmod, truncate, mtime; host sees them", |_| {
        let (f, _) = e("Twalk", c.walk_new(wfid, &["new.bin"]))?;
        let attr = SetAttr {
            valid: setattr::MODE | setattr::SIZE | setattr::MTIME | setattr::MTIME_SET,
            mode: 0o600,
            size: 1234,
            mtime_sec: 1_000_000_000,
            mtime_nsec: 5,
            ..SetAttr::default()
        };
        e("Tsetattr", c.setattr(f, attr))?;
        e("Tclunk", c.clunk(f))?;
        let md = fs::metadata(wdir.join("new.bin")).map_err(|x| x.to_string())?;
        ensure!(
            md.permissions().mode() & 0o7777 == 0o600,
            "mode {:o}",
            md.mode()
        );
        ensure!(md.size() == 1234, "size {}", md.size());
        ensure!(
            md.mtime() == 1_000_000_000 && md.mtime_nsec() == 5,
            "mtime {}.{}",
            md.mtime(),
            md.mtime_nsec()
        );
        Ok(String::new())
    });

    r.check("renameat and Trename; host sees the moves", |_| {
        e(
            "Trenameat",
            c.renameat(wfid, "new.bin", wfid, "renamed.bin"),
        )?;
        ensure!(
            !wdir.join("new.bin").exists() && wdir.join("renamed.bin").exists(),
            "host does not see renameat"
        );
        let (f, _) = e("Twalk", c.walk_new(wfid, &["renamed.bin"]))?;
        let (sub, _) = e("Twalk", c.walk_new(wfid, &["sub"]))?;
        e("Trename", c.rename(f, sub, "moved.bin"))?;
        // The fid follows the file.
        let st = e("Tgetattr after rename", c.getattr(f, getattr::BASIC))?;
        e("Tclunk", c.clunk(f))?;
        e("Tclunk", c.clunk(sub))?;
        ensure!(st.size == 1234, "size {} after rename", st.size);
        ensure!(
            wdir.join("sub/moved.bin").is_file() && !wdir.join("renamed.bin").exists(),
            "host does not see Trename"
        );
        Ok(String::new())
    });

    r.check("symlink + readlink; host sees the link", |_| {
        e("Tsymlink", c.symlink(wfid, "lnk", "sub/moved.bin", 0))?;
        let host = fs::read_link(wdir.join("lnk")).map_err(|x| x.to_string())?;
        ensure!(host == Path::new("sub/moved.bin"), "host link {host:?}");
        let (l, _) = e("Twalk", c.walk_new(wfid, &["lnk"]))?;
        let target = e("Treadlink", c.readlink(l))?;
        e("Tclunk", c.clunk(l))?;
        ensure!(target == b"sub/moved.bin", "readlink {target:?}");
        Ok(String::new())
    });

    r.check("link: hard link, nlink 2 on both sides", |_| {
        let (f, _) = e("Twalk", c.walk_new(wfid, &["hello.txt"]))?;
        e("Tlink", c.link(wfid, f, "hello.hard"))?;
        let st = e("Tgetattr", c.getattr(f, getattr::BASIC))?;
        e("Tclunk", c.clunk(f))?;
        let md = fs::metadata(wdir.join("hello.hard")).map_err(|x| x.to_string())?;
        ensure!(
            st.nlink == 2 && md.nlink() == 2,
            "nlink {} / host {}",
            st.nlink,
            md.nlink()
        );
        Ok(String::new())
    });

    r.check(
        "unlinkat: file, non-empty dir (ENOTEMPTY), empty dir",
        |_| {
            e("Tunlinkat file", c.unlinkat(wfid, "hello.hard", 0))?;
            ensure!(
                !wdir.join("hello.hard").exists(),
                "host still has hello.hard"
            );
            let busy = c.unlinkat(wfid, "sub", AT_REMOVEDIR);
            ensure!(
                matches!(busy, Err(x) if x == ENOTEMPTY),
                "rmdir non-empty: {busy:?}"
            );
            let (sub, _) = e("Twalk", c.walk_new(wfid, &["sub"]))?;
            e("Tunlinkat moved.bin", c.unlinkat(sub, "moved.bin", 0))?;
            e("Tclunk", c.clunk(sub))?;
            e("Tunlinkat dir", c.unlinkat(wfid, "sub", AT_REMOVEDIR))?;
            ensure!(!wdir.join("sub").exists(), "host still has sub");
            Ok(String::new())
        },
    );

    r.check("statfs matches the host's statvfs", |_| {
        let st = e("Tstatfs", c.statfs(wfid))?;
        let h = host_statvfs(wdir).ok_or("host statvfs failed")?;
        // 9p.c scales the block size up to what fits in one message.
        let factor = ((u64::from(c.msize()) - 24) / h.f_bsize).max(1);
        ensure!(
            u64::from(st.bsize) == h.f_bsize * factor,
            "bsize {} vs host {} x {factor}",
            st.bsize,
            h.f_bsize
        );
        ensure!(
            st.blocks == h.f_blocks / factor,
            "blocks {} vs host {} / {factor}",
            st.blocks,
            h.f_blocks
        );
        ensure!(st.namelen as u64 == h.f_namemax, "namelen {}", st.namelen);
        Ok(String::new())
    });

    r.check("xattr: set, get, list; host sees the value", |_| {
        let (f, _) = e("Twalk", c.walk_new(wfid, &["hello.txt"]))?;
        let set = c.xattr_set(f, "user.p9serve", b"value-1", xattr_flags::CREATE);
        if let Err(x) = set {
            let _ = c.clunk(f);
            if x == EOPNOTSUPP || x == Errno(95) {
                return Ok("skipped: the host filesystem has no user xattrs".into());
            }
            return Err(format!("xattr set: {x}"));
        }
        let got = e("xattr get", c.xattr_get(f, "user.p9serve"))?;
        let list = e("xattr list", c.xattr_get(f, ""))?;
        let missing = c.xattr_get(f, "user.absent");
        e("Tclunk", c.clunk(f))?;
        ensure!(got == b"value-1", "9P value {got:?}");
        let host = host_lgetxattr(&wdir.join("hello.txt"), "user.p9serve");
        ensure!(
            host.as_deref() == Some(&b"value-1"[..]),
            "host value {host:?}"
        );
        ensure!(
            list.split(|b| *b == 0).any(|n| n == b"user.p9serve"),
            "list {list:?}"
        );
        ensure!(
            matches!(missing, Err(x) if x == ENODATA),
            "absent attribute: {missing:?}"
        );
        Ok(String::new())
    });

    r.check(
        "Tflush of pipelined reads: each settles before its Rflush",
        |_| {
            let (f, _) = e("Twalk", c.walk_new(wfid, &["big.bin"]))?;
            e("Tlopen", c.lopen(f, dotl_open::RDONLY))?;
            let mut cancelled = 0;
            for _ in 0..50 {
                let p = c.send(&Tmessage::Read {
                    fid: f,
                    offset: 0,
                    count: 65536,
                });
                let tag = p.tag();
                e("Tflush", c.flush(tag))?;
                match p.wait_timeout(Duration::ZERO) {
                    None => return Err(format!("tag {tag} still in flight after its Rflush")),
                    Some(None) => cancelled += 1,
                    Some(Some(Ok(_))) => {}
                    Some(Some(Err(x))) => return Err(format!("flushed read failed: {x}")),
                }
            }
            // A Tflush of a tag nobody uses is answered too.
            e("Tflush of an unused tag", c.flush(0x7777))?;
            e("Tclunk", c.clunk(f))?;
            Ok(format!("{cancelled} of 50 cancelled"))
        },
    );

    concurrency(r, work);
    r.check("session still healthy; clunk of unknown fid fails", |_| {
        let bad = c.clunk(0x00ab_cdef);
        ensure!(bad.is_err(), "clunk of unknown fid succeeded");
        e("Tclunk", c.clunk(wfid))?;
        e("Tclunk root", c.clunk(root))?;
        Ok(String::new())
    });
}

/// Many requests from several threads on one connection, and many in
/// flight at once.
fn concurrency(r: &mut Runner, work: &str) {
    let mut conn = None;
    r.check("second connection: version + attach", |r| {
        conn = Some(r.session()?);
        Ok(String::new())
    });
    let Some((c, root)) = conn else { return };
    let c = &c;
    r.check(
        "8 threads x 300 walk/getattr/read/clunk on one connection",
        |_| {
            let errors: Vec<String> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..8)
                    .map(|t| {
                        s.spawn(move || -> Result<(), String> {
                            for i in 0..300 {
                                let (f, _) = e("Twalk", c.walk_new(root, &[work, "big.bin"]))?;
                                let st = e("Tgetattr", c.getattr(f, getattr::BASIC))?;
                                ensure!(st.size == 65536, "size {}", st.size);
                                e("Tlopen", c.lopen(f, dotl_open::RDONLY))?;
                                let off = ((t * 300 + i) % 16) as u64 * 4096;
                                let d = e("Tread", c.read(f, off, 4096))?;
                                let want: Vec<u8> = (off as u32..off as u32 + 4096)
                                    .map(|i| (i * 7) as u8)
                                    .collect();
                                ensure!(d == want, "read at {off} differs");
                                e("Tclunk", c.clunk(f))?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                hs.into_iter()
                    .filter_map(|h| match h.join() {
                        Ok(Ok(())) => None,
                        Ok(Err(msg)) => Some(msg),
                        Err(_) => Some("thread panicked".into()),
                    })
                    .collect()
            });
            ensure!(errors.is_empty(), "{}", errors.join("; "));
            Ok(String::new())
        },
    );
    r.check("1000 getattr requests in flight at once", |_| {
        let (f, _) = e("Twalk", c.walk_new(root, &[work, "many"]))?;
        let pending: Vec<Pending> = (0..1000)
            .map(|_| {
                c.send(&Tmessage::Getattr {
                    fid: f,
                    request_mask: getattr::BASIC,
                })
            })
            .collect();
        let mut ok = 0;
        for p in pending {
            match p.wait_timeout(PATIENCE) {
                Some(Some(Ok(_))) => ok += 1,
                other => return Err(format!("getattr: {other:?}")),
            }
        }
        e("Tclunk", c.clunk(f))?;
        ensure!(ok == 1000, "{ok} replies");
        ensure!(
            c.transport().stray_replies() == 0,
            "{} stray replies",
            c.transport().stray_replies()
        );
        Ok(String::new())
    });
}

/// Malformed frames, each on a fresh connection.
fn malformed(r: &mut Runner) {
    // answered_or_dropped: the outcome of `bytes` after a session is set
    // up (when `version`), and then whether the connection still works.
    fn answered_or_dropped(r: &Runner, version: bool, bytes: Vec<u8>) -> CheckResult {
        let t = r.connect()?;
        let c = Client::new(Arc::clone(&t));
        if version {
            e("Tversion", c.version(MSIZE, "9P2000.L"))?;
        }
        match raw_outcome(&t, bytes) {
            None => Err("neither a reply nor a closed connection".into()),
            Some(None) => {
                ensure!(t.is_closed(), "no reply yet the connection is open");
                Ok("connection dropped".into())
            }
            Some(Some(reply)) => {
                ensure!(
                    reply[4] == RLERROR || reply[4] == RERROR,
                    "reply of type {} is not an error",
                    reply[4]
                );
                // The connection goes on: a Tversion still works.
                let v = frame(TVERSION, 0xffff, &{
                    let mut b = 8192u32.to_le_bytes().to_vec();
                    b.extend_from_slice(&8u16.to_le_bytes());
                    b.extend_from_slice(b"9P2000.L");
                    b
                });
                match raw_outcome(&t, v) {
                    Some(Some(rv)) if rv[4] == TVERSION + 1 => {
                        Ok(format!("error reply, type {}", reply[4]))
                    }
                    other => Err(format!("after the error reply, Tversion gave {other:?}")),
                }
            }
        }
    }

    /// Send `bytes` as they are, half-close, and expect the server to end
    /// the connection (any replies before that are fine).
    fn dropped_after(r: &Runner, bytes: &[u8], half_close: bool) -> CheckResult {
        let t = r.connect()?;
        t.send_bytes(bytes).map_err(|x| x.to_string())?;
        if half_close {
            // The server sees EOF where it waits for more of the frame.
            t.shutdown_write().map_err(|x| x.to_string())?;
        }
        ensure!(t.wait_closed(PATIENCE), "connection still open");
        Ok(String::new())
    }

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    r.check("malformed: garbage body with a valid size", |r| {
        let mut body = rng.bytes(40);
        body[0] = 0xff; // a fid no one attached
        answered_or_dropped(r, true, frame(TWALK, 3, &body))
    });
    r.check(
        "malformed: truncated body (Twalk of 3 names, 1 sent)",
        |r| {
            let mut body = Vec::new();
            body.extend_from_slice(&1u32.to_le_bytes());
            body.extend_from_slice(&2u32.to_le_bytes());
            body.extend_from_slice(&3u16.to_le_bytes());
            body.extend_from_slice(&3u16.to_le_bytes());
            body.extend_from_slice(b"abc");
            answered_or_dropped(r, true, frame(TWALK, 4, &body))
        },
    );
    r.check("malformed: unknown message type 200", |r| {
        answered_or_dropped(r, true, frame(200, 5, b"\x01\x02\x03"))
    });
    r.check("malformed: request before Tversion", |r| {
        answered_or_dropped(r, false, frame(TWALK, 6, &[0; 10]))
    });
    r.check("malformed: frame cut short, then EOF", |r| {
        let mut f = frame(TWALK, 7, &[0; 93]);
        f.truncate(20);
        dropped_after(r, &f, true)
    });
    r.check("malformed: size field 3", |r| {
        dropped_after(r, &[3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], false)
    });
    r.check("malformed: size field 4 GiB - 1", |r| {
        let mut f = vec![0xff; 4];
        f.extend(rng.bytes(64));
        dropped_after(r, &f, false)
    });
    r.check("malformed: size above msize_max", |r| {
        let mut f = (64u32 << 20).to_le_bytes().to_vec();
        f.extend([TWALK, 0, 0]);
        dropped_after(r, &f, false)
    });
    for round in 0..4 {
        r.check(&format!("malformed: 4 KiB of random bytes #{round}"), |r| {
            let mut bytes = rng.bytes(4096);
            if round % 2 == 1 {
                // A plausible size, so the body gets parsed as a message.
                bytes[..4].copy_from_slice(&200u32.to_le_bytes());
            }
            dropped_after(r, &bytes, true)
        });
    }
    r.check("server still serves a new connection", |r| {
        let (c, root) = r.session()?;
        let st = e("Tgetattr", c.getattr(root, getattr::BASIC))?;
        ensure!(st.qid.typ & 0x80 != 0, "root is not a directory");
        e("Tclunk", c.clunk(root))?;
        Ok(String::new())
    });
}
