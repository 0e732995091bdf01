// SPDX-License-Identifier: GPL-2.0-or-later
//! Shared helpers for the integration tests: a unique export directory
//! under /dev/shm (tmpfs: user xattrs work), per-thread capability
//! dropping, and running a test on both lookup paths.

#![allow(dead_code)]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use p9_native::{testing, Node};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under /dev/shm, removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(format!(
            "/dev/shm/p9-native-test-{}-{}-{}",
            std::process::id(),
            tag,
            n
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).expect("create temp dir");
        TempDir { path }
    }

    /// The export root (a subdirectory, so that "outside" exists next to it).
    pub fn export(&self) -> PathBuf {
        let p = self.path.join("export");
        std::fs::create_dir_all(&p).expect("create export");
        p
    }

    /// A directory next to the export, standing for the rest of the host.
    pub fn outside(&self) -> PathBuf {
        let p = self.path.join("outside");
        std::fs::create_dir_all(&p).expect("create outside");
        p
    }

    pub fn root(&self) -> Node {
        Node::open_root(&self.export()).expect("open root")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// lstat through std, for checking what happened on the host.
pub fn lstat(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).expect("lstat")
}

/// Runs `f` once with openat2 lookups and once with the plain-openat
/// fallback forced (on this thread only).
pub fn both_paths(f: impl Fn(&str)) {
    testing::force_openat_fallback(false);
    f("openat2");
    testing::force_openat_fallback(true);
    f("openat");
    testing::force_openat_fallback(false);
}

pub fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL")
}

pub fn mkfifo(p: &Path) {
    let c = cstr(p);
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

pub fn mkchr(p: &Path, major: u32, minor: u32) {
    let c = cstr(p);
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    let r = unsafe {
        libc::mknod(
            c.as_ptr(),
            libc::S_IFCHR | 0o666,
            libc::makedev(major, minor),
        )
    };
    assert_eq!(r, 0, "mknod chr: {}", std::io::Error::last_os_error());
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;
pub const CAP_CHOWN: u32 = 0;
pub const CAP_DAC_READ_SEARCH: u32 = 2;

fn cap_get() -> [CapData; 2] {
    let mut h = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut d = [CapData::default(); 2];
    // SAFETY: capget reads the header and writes two CapData records,
    // which is what `d` holds (version 3 layout).
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut CapHeader, d.as_mut_ptr()) };
    assert_eq!(r, 0, "capget");
    d
}

fn cap_set(d: &[CapData; 2]) {
    let mut h = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    // SAFETY: capset reads the header and two CapData records.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut h as *mut CapHeader, d.as_ptr()) };
    assert_eq!(r, 0, "capset: {}", std::io::Error::last_os_error());
}

/// Removes capability `cap` from this thread's effective set until the
/// guard is dropped (capabilities are per thread on Linux, so other tests
/// are unaffected).
pub struct DropCap {
    saved: [CapData; 2],
}

pub fn drop_cap(cap: u32) -> DropCap {
    let saved = cap_get();
    let mut d = saved;
    d[(cap / 32) as usize].effective &= !(1 << (cap % 32));
    cap_set(&d);
    DropCap { saved }
}

impl Drop for DropCap {
    fn drop(&mut self) {
        cap_set(&self.saved);
    }
}
