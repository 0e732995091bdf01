// SPDX-License-Identifier: GPL-2.0-or-later
//! Setup shared by the integration tests: a fresh export directory on tmpfs
//! served by the native backend through the thread-mode host.
//!
//! * [`temp_dir`], [`TempDir`]: a fresh export directory on tmpfs.
//! * [`native_backend`], [`host`], [`serve`]: a backend, a host running a
//!   server over it, a client of a native export.
//! * [`session`], [`session_on`]: Tversion and Tattach as root.
//! * [`Env`]: all of the above for the 9P2000.L and .u tests.
//! * Host-side helpers (`lstat`, xattrs, `statfs`, ...) and the values
//!   9p.c derives from them.
#![allow(dead_code)]

use std::ffi::CString;
use std::ops::Deref;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use p9_client::{Client, Transport};
use p9_engine::backend::Backend;
use p9_engine::host::ThreadHost;
use p9_engine::{Config, Server};
use p9_native::{NativeBackend, SecurityModel};
use p9_wire::consts::{dotl_open, NOFID};
use p9_wire::{Errno, Qid};

/// The msize the tests negotiate.
pub const MSIZE: u32 = 65536;

/// The engine under test.
pub type TestServer = Server<NativeBackend>;
/// The client the tests use.
pub type TestClient = Client<ThreadHost<NativeBackend>>;

// ----- temporary export directories -----

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty directory on tmpfs (`/dev/shm`) named after the test,
/// unique per process and call.
pub fn temp_dir(name: &str) -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = base.join(format!("p9-client-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).expect("creating the export directory");
    dir
}

/// A [`temp_dir`] removed when dropped; it derefs to its path.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory for test `name`.
    pub fn new(name: &str) -> TempDir {
        TempDir(temp_dir(name))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ----- servers and sessions -----

/// The native backend exporting `dir` (passthrough security model).
pub fn native_backend(dir: &Path) -> NativeBackend {
    NativeBackend::new(dir, SecurityModel::Passthrough).expect("NativeBackend::new")
}

/// A server with `config` over `backend`, run by a host with `threads`
/// threads.
pub fn host<B: Backend>(backend: B, config: Config, threads: usize) -> ThreadHost<B> {
    ThreadHost::new(Arc::new(Server::new(backend, config)), threads)
}

/// A client of `dir` exported by the native backend, before Tversion.
pub fn serve(dir: &Path, config: Config, threads: usize) -> TestClient {
    Client::new(host(native_backend(dir), config, threads))
}

/// `Tversion(MSIZE, version)`, which the server must accept as is, and a
/// Tattach of fid `root` as root (uid 0): the root's qid.
pub fn session_on<T: Transport>(client: &Client<T>, version: &str, root: u32) -> Qid {
    let (msize, got) = client
        .version(MSIZE, version)
        .unwrap_or_else(|e| panic!("Tversion {version}: {e}"));
    assert_eq!((msize, got.as_str()), (MSIZE, version));
    client
        .attach(root, NOFID, "root", "", 0)
        .unwrap_or_else(|e| panic!("Tattach: {e}"))
}

/// [`session_on`] a newly allocated fid: that fid and the root's qid.
pub fn session<T: Transport>(client: &Client<T>, version: &str) -> (u32, Qid) {
    let root = client.alloc_fid();
    (root, session_on(client, version, root))
}

// ----- the 9P2000.L and .u tests' environment -----

/// A test's export directory, server and client.  Dropping it stops the
/// host, then removes the directory.
pub struct Env {
    /// The client (its transport owns the host, which owns the server).
    pub client: TestClient,
    /// The attached root fid (`NOFID` for [`Env::bare`]).
    pub root: u32,
    /// The export directory on the host.
    pub dir: TempDir,
}

impl Env {
    /// An export with a host and client, before Tversion.
    pub fn bare(name: &str) -> Env {
        Env::bare_with(name, Config::default())
    }

    /// [`Env::bare`] with a server configuration.
    pub fn bare_with(name: &str, config: Config) -> Env {
        let dir = TempDir::new(name);
        Env {
            client: serve(dir.path(), config, 4),
            root: NOFID,
            dir,
        }
    }

    /// An export after `Tversion(MSIZE, "9P2000.L")` and a Tattach as root
    /// (uid 0).
    pub fn new(name: &str) -> Env {
        Env::attached(name, "9P2000.L")
    }

    /// An export after `Tversion(MSIZE, "9P2000.u")` and a Tattach as root.
    pub fn new_dotu(name: &str) -> Env {
        Env::attached(name, "9P2000.u")
    }

    fn attached(name: &str, version: &str) -> Env {
        let mut env = Env::bare(name);
        env.root = session(&env.client, version).0;
        env
    }

    /// The server.
    pub fn server(&self) -> &Arc<TestServer> {
        self.client.transport().server()
    }

    /// Wait (up to 10 s) until no request is in flight: a reply reaches
    /// the client just before its request finishes on the server.
    pub fn wait_idle(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.server().stats().active != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "requests still active: {:?}",
                self.server().stats()
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Offloads made so far.
    pub fn offloads(&self) -> u64 {
        self.server().stats().offloads
    }

    /// A host path inside the export.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Walk from the root through `/`-separated `rel` to a new fid
    /// (`""`: a clone of the root).
    pub fn walk(&self, rel: &str) -> Result<u32, Errno> {
        let names: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
        let fid = self.client.alloc_fid();
        let qids = self.client.walk(self.root, fid, &names)?;
        if qids.len() != names.len() {
            // A partial walk: the fid was not created.
            return Err(p9_wire::errno::ENOENT);
        }
        Ok(fid)
    }

    /// Walk to `rel` and Tlopen it with `flags`.
    pub fn open(&self, rel: &str, flags: u32) -> Result<u32, Errno> {
        let fid = self.walk(rel)?;
        self.client.lopen(fid, flags)?;
        Ok(fid)
    }

    /// Walk to directory `rel` and open it for Treaddir.
    pub fn opendir(&self, rel: &str) -> Result<u32, Errno> {
        self.open(rel, dotl_open::RDONLY | dotl_open::DIRECTORY)
    }
}

// ----- the host side -----

/// Whether the tests run as root (device nodes, ownership changes).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `lstat` on the host (panics if it fails).
pub fn lstat(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()))
}

/// 9p.c `stat_to_qid`: the qid version of a host file,
/// `mtime ^ (size << 8)`.
pub fn qid_version(md: &std::fs::Metadata) -> u32 {
    (md.mtime() as u64 ^ (md.size() << 8)) as u32
}

/// `lgetxattr` on the host: the value, or the errno.
pub fn host_getxattr(path: &Path, name: &str) -> Result<Vec<u8>, i32> {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    let mut buf = vec![0u8; 65536];
    // SAFETY: both strings are NUL-terminated and the buffer is as long as
    // the length passed.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    buf.truncate(r as usize);
    Ok(buf)
}

/// `lsetxattr` on the host.
pub fn host_setxattr(path: &Path, name: &str, value: &[u8]) {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    // SAFETY: both strings are NUL-terminated and the value is as long as
    // the length passed.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(r, 0, "lsetxattr: {}", std::io::Error::last_os_error());
}

/// `mkfifo` on the host.
pub fn host_mkfifo(path: &Path) {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: the path is NUL-terminated.
    let r = unsafe { libc::mkfifo(p.as_ptr(), 0o644) };
    assert_eq!(r, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

/// `statfs` on the host.
pub fn host_statfs(path: &Path) -> libc::statfs {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: an all-zero statfs is a valid value of this plain C struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the path is NUL-terminated and `st` is a valid out-pointer.
    let r = unsafe { libc::statfs(p.as_ptr(), &mut st) };
    assert_eq!(r, 0, "statfs: {}", std::io::Error::last_os_error());
    st
}

/// The iounit 9p.c derives from a block size (`blksize_to_iounit`).
pub fn iounit_for(msize: u32, blksize: u64) -> u32 {
    let room = msize - 24;
    let blksize = blksize as u32;
    match room.checked_div(blksize) {
        Some(blocks) if blocks > 0 => blocks * blksize,
        _ => room,
    }
}
