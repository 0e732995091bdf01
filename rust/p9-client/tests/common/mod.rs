// SPDX-License-Identifier: GPL-2.0-or-later
//! Setup shared by the integration tests: a fresh export directory on tmpfs
//! served by the native backend through the thread-mode host.
#![allow(dead_code)]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use p9_client::Client;
use p9_engine::host::ThreadHost;
use p9_engine::{Config, Server};
use p9_native::{NativeBackend, SecurityModel};
use p9_wire::consts::{dotl_open, NOFID};
use p9_wire::Errno;

/// The msize the tests negotiate.
pub const MSIZE: u32 = 65536;

/// The engine under test.
pub type TestServer = Server<NativeBackend>;
/// The client the tests use.
pub type TestClient = Client<ThreadHost<NativeBackend>>;

/// A test's export directory, server and client.  Dropping it stops the
/// host and removes the directory.
pub struct Env {
    /// The export directory on the host.
    pub dir: PathBuf,
    /// The client (its transport owns the host, which owns the server).
    pub client: TestClient,
    /// The attached root fid (`None` for [`Env::bare`]).
    pub root: u32,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty directory on tmpfs named after the test.
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

impl Env {
    /// An export with a host and client, before Tversion.
    pub fn bare(name: &str) -> Env {
        Env::bare_with(name, Config::default())
    }

    /// [`Env::bare`] with a server configuration.
    pub fn bare_with(name: &str, config: Config) -> Env {
        let dir = temp_dir(name);
        let backend =
            NativeBackend::new(&dir, SecurityModel::Passthrough).expect("NativeBackend::new");
        let server = Arc::new(Server::new(backend, config));
        let host = ThreadHost::new(server, 4);
        Env {
            dir,
            client: Client::new(host),
            root: NOFID,
        }
    }

    /// An export after `Tversion(MSIZE, "9P2000.L")` and a Tattach as root
    /// (uid 0).
    pub fn new(name: &str) -> Env {
        let mut env = Env::bare(name);
        let (msize, version) = env
            .client
            .version(MSIZE, "9P2000.L")
            .expect("Tversion 9P2000.L");
        assert_eq!((msize, version.as_str()), (MSIZE, "9P2000.L"));
        let root = env.client.alloc_fid();
        env.client
            .attach(root, NOFID, "root", "", 0)
            .expect("Tattach");
        env.root = root;
        env
    }

    /// An export after `Tversion(MSIZE, "9P2000.u")` and a Tattach as root.
    pub fn new_dotu(name: &str) -> Env {
        let mut env = Env::bare(name);
        let (msize, version) = env
            .client
            .version(MSIZE, "9P2000.u")
            .expect("Tversion 9P2000.u");
        assert_eq!((msize, version.as_str()), (MSIZE, "9P2000.u"));
        let root = env.client.alloc_fid();
        env.client
            .attach(root, NOFID, "root", "", 0)
            .expect("Tattach");
        env.root = root;
        env
    }

    /// The server.
    pub fn server(&self) -> &Arc<TestServer> {
        self.client.transport().server()
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

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
