// SPDX-License-Identifier: GPL-2.0-or-later
//! Test backends and helpers shared by the flush, rename and reclaim tests
//! (each test file includes this module with `mod support_backends;`).
//!
//! * [`Gated`]: wraps any backend; calls matching a predicate block on a
//!   [`Gate`] until the test releases it, and report that they entered, so
//!   a test knows a request is inside its backend call (no sleeps needed);
//!   opens, reads and writes can also be made to fail on demand.
//! * [`PathBackend`]: a path-based backend (nodes are paths relative to a
//!   root directory, like QEMU's local backend), so that the engine's
//!   rename lock and fid path fixing are exercised.  Not escape-proof:
//!   tests only.
//! * [`Recorder`]: a transport wrapper that records the order in which
//!   replies (or "no reply") reach the client.
//!
//! Export directories come from `common` (`TempDir`).
#![allow(dead_code)]

use std::ffi::CString;
use std::fs::File;
use std::io::{IoSlice, IoSliceMut};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use p9_client::Transport;
use p9_engine::backend::{
    Attr, Backend, Cred, DirEntry, Lock, LockStatus, Renamed, Result, SetAttr, SetTime, Time,
};
use p9_wire::errno::{Errno, EINVAL, EIO};
use p9_wire::types::StatFs;
use p9_wire::{Header, SgView};

/// How long a test waits for something that must happen before it calls
/// the engine stuck (a deadlock detector, not a timing assumption).
pub const STUCK: Duration = Duration::from_secs(60);

// ----- the gate -----

/// A backend call, as a [`Gate`] predicate sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `attach`.
    Attach,
    /// `walk` with these names.
    Walk(Vec<Vec<u8>>),
    /// `clone_node`.
    CloneNode,
    /// `getattr`.
    Getattr,
    /// `fstat`.
    Fstat,
    /// `generation`.
    Generation,
    /// `setattr`.
    Setattr,
    /// `open`.
    Open,
    /// `opendir`.
    Opendir,
    /// `create` of this name.
    Create(Vec<u8>),
    /// `mkdir` of this name.
    Mkdir(Vec<u8>),
    /// `symlink` of this name.
    Symlink(Vec<u8>),
    /// `mknod` of this name.
    Mknod(Vec<u8>),
    /// `link` of this name.
    Link(Vec<u8>),
    /// `readlink`.
    Readlink,
    /// `rename` from the first name to the second.
    Rename(Vec<u8>, Vec<u8>),
    /// `unlink` of this name.
    Unlink(Vec<u8>),
    /// `remove`.
    Remove,
    /// `name`.
    Name,
    /// `read` at this offset.
    Read {
        /// The offset.
        offset: u64,
    },
    /// `write` at this offset.
    Write {
        /// The offset.
        offset: u64,
    },
    /// `fsync`.
    Fsync,
    /// `readdir` from this offset.
    Readdir {
        /// The offset.
        offset: u64,
    },
    /// `statfs`.
    Statfs,
    /// `getxattr`.
    Getxattr,
    /// `listxattr`.
    Listxattr,
    /// `setxattr`.
    Setxattr,
    /// `removexattr`.
    Removexattr,
    /// `lock`.
    Lock,
    /// `getlock`.
    Getlock,
    /// `rename_node` to this name.
    RenameNode(Vec<u8>),
}

type Pred = Arc<dyn Fn(&Call) -> bool + Send + Sync>;

struct GateState {
    /// While set, calls matching it block.
    held: Option<Pred>,
    /// Bumped by `release`: a blocked call waits for its generation to end.
    generation: u64,
    /// Calls that blocked since the last `hold`, in order of arrival.
    entered: Vec<Call>,
    /// Every call since the last `hold`, blocked or not (after `release`
    /// too), in order of arrival.
    seen: Vec<Call>,
    /// Calls blocked right now.
    waiting: usize,
    /// While set, calls matching it (open, opendir, read, write) fail with
    /// this errno, this many more times.
    fault: Option<(Pred, Errno, usize)>,
    /// Failures injected since the last `fail`.
    injected: usize,
}

/// Where gated calls wait.  Starts open.
pub struct Gate {
    state: Mutex<GateState>,
    cv: Condvar,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            state: Mutex::new(GateState {
                held: None,
                generation: 0,
                entered: Vec::new(),
                seen: Vec::new(),
                waiting: 0,
                fault: None,
                injected: 0,
            }),
            cv: Condvar::new(),
        }
    }
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Close the gate for calls matching `pred`; clears the `entered` and
    /// `seen` logs.
    pub fn hold(&self, pred: impl Fn(&Call) -> bool + Send + Sync + 'static) {
        let pred: Pred = Arc::new(pred);
        let mut st = self.lock();
        st.held = Some(pred);
        st.entered.clear();
        st.seen.clear();
    }

    /// Open the gate: every blocked call goes on, later calls pass (and
    /// are still logged in `seen`).
    pub fn release(&self) {
        let mut st = self.lock();
        st.held = None;
        st.generation += 1;
        self.cv.notify_all();
    }

    /// Wait until at least `n` calls blocked since the last `hold`.
    ///
    /// # Panics
    /// After [`STUCK`] without that many.
    pub fn wait_entered(&self, n: usize) {
        let deadline = Instant::now() + STUCK;
        let mut st = self.lock();
        while st.entered.len() < n {
            let now = Instant::now();
            assert!(
                now < deadline,
                "only {} of {n} gated calls entered the backend: {:?}",
                st.entered.len(),
                st.entered
            );
            st = self
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The calls that blocked since the last `hold`.
    pub fn entered(&self) -> Vec<Call> {
        self.lock().entered.clone()
    }

    /// Every call since the last `hold` (gated or not), in order.
    pub fn seen(&self) -> Vec<Call> {
        self.lock().seen.clone()
    }

    /// How many calls are blocked right now.
    pub fn waiting(&self) -> usize {
        self.lock().waiting
    }

    /// Make the next `times` calls matching `pred` among `open`,
    /// `opendir`, `read` and `write` fail with `errno` (after passing the
    /// gate) instead of reaching the backend.
    pub fn fail(
        &self,
        pred: impl Fn(&Call) -> bool + Send + Sync + 'static,
        errno: Errno,
        times: usize,
    ) {
        let mut st = self.lock();
        st.fault = Some((Arc::new(pred), errno, times));
        st.injected = 0;
        self.cv.notify_all();
    }

    /// Stop injecting failures.
    pub fn stop_failing(&self) {
        self.lock().fault = None;
    }

    /// Failures injected since the last [`Gate::fail`].
    pub fn injected(&self) -> usize {
        self.lock().injected
    }

    /// Wait until at least `n` failures were injected.
    ///
    /// # Panics
    /// After [`STUCK`] without that many.
    pub fn wait_injected(&self, n: usize) {
        let deadline = Instant::now() + STUCK;
        let mut st = self.lock();
        while st.injected < n {
            let now = Instant::now();
            assert!(
                now < deadline,
                "only {} of {n} failures injected",
                st.injected
            );
            st = self
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Called by [`Gated`] for the calls that can fail on demand.
    fn fault(&self, call: &Call) -> Result<()> {
        let mut st = self.lock();
        let Some((pred, errno, left)) = st.fault.as_mut() else {
            return Ok(());
        };
        if *left == 0 || !pred(call) {
            return Ok(());
        }
        *left -= 1;
        let e = *errno;
        st.injected += 1;
        self.cv.notify_all();
        Err(e)
    }

    /// Called by [`Gated`] before each call: block while held for it.
    fn pass(&self, call: Call) {
        let mut st = self.lock();
        st.seen.push(call.clone());
        let Some(pred) = st.held.clone() else {
            return;
        };
        if !pred(&call) {
            return;
        }
        let generation = st.generation;
        st.entered.push(call);
        st.waiting += 1;
        self.cv.notify_all();
        while st.generation == generation {
            st = self.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        st.waiting -= 1;
    }
}

/// A backend that delegates to `inner`, letting calls that match the
/// gate's predicate block until the gate is released.  The non-blocking
/// hooks (`nodes_are_paths`, `renamed`, `is_entry`) are never gated: the
/// engine calls them under its fid table lock.
pub struct Gated<B> {
    /// The backend that does the work.
    pub inner: B,
    /// The gate.
    pub gate: Arc<Gate>,
}

impl<B: Backend> Gated<B> {
    /// `inner` behind an open gate.
    pub fn new(inner: B) -> Self {
        Gated {
            inner,
            gate: Arc::new(Gate::default()),
        }
    }
}

fn names(ns: &[&[u8]]) -> Vec<Vec<u8>> {
    ns.iter().map(|n| n.to_vec()).collect()
}

impl<B: Backend> Backend for Gated<B> {
    type Node = B::Node;
    type Handle = B::Handle;

    fn attach(&self, aname: &[u8], cred: &Cred) -> Result<(B::Node, Attr)> {
        self.gate.pass(Call::Attach);
        self.inner.attach(aname, cred)
    }

    fn walk(&self, dir: &B::Node, ns: &[&[u8]]) -> Result<Vec<(B::Node, Attr)>> {
        self.gate.pass(Call::Walk(names(ns)));
        self.inner.walk(dir, ns)
    }

    fn clone_node(&self, node: &B::Node) -> Result<B::Node> {
        self.gate.pass(Call::CloneNode);
        self.inner.clone_node(node)
    }

    fn getattr(&self, node: &B::Node) -> Result<Attr> {
        self.gate.pass(Call::Getattr);
        self.inner.getattr(node)
    }

    fn fstat(&self, node: &B::Node, handle: &B::Handle) -> Result<Attr> {
        self.gate.pass(Call::Fstat);
        self.inner.fstat(node, handle)
    }

    fn generation(&self, node: &B::Node, attr: &Attr) -> Result<u64> {
        self.gate.pass(Call::Generation);
        self.inner.generation(node, attr)
    }

    fn setattr(&self, node: &B::Node, handle: Option<&B::Handle>, set: &SetAttr) -> Result<()> {
        self.gate.pass(Call::Setattr);
        self.inner.setattr(node, handle, set)
    }

    fn open(&self, node: &B::Node, flags: i32) -> Result<B::Handle> {
        self.gate.pass(Call::Open);
        self.gate.fault(&Call::Open)?;
        self.inner.open(node, flags)
    }

    fn opendir(&self, node: &B::Node) -> Result<B::Handle> {
        self.gate.pass(Call::Opendir);
        self.gate.fault(&Call::Opendir)?;
        self.inner.opendir(node)
    }

    fn create(
        &self,
        dir: &B::Node,
        name: &[u8],
        flags: i32,
        mode: u32,
        cred: &Cred,
    ) -> Result<(B::Node, B::Handle, Attr)> {
        self.gate.pass(Call::Create(name.to_vec()));
        self.inner.create(dir, name, flags, mode, cred)
    }

    fn mkdir(&self, dir: &B::Node, name: &[u8], mode: u32, cred: &Cred) -> Result<Attr> {
        self.gate.pass(Call::Mkdir(name.to_vec()));
        self.inner.mkdir(dir, name, mode, cred)
    }

    fn symlink(&self, dir: &B::Node, name: &[u8], target: &[u8], cred: &Cred) -> Result<Attr> {
        self.gate.pass(Call::Symlink(name.to_vec()));
        self.inner.symlink(dir, name, target, cred)
    }

    fn mknod(&self, dir: &B::Node, name: &[u8], mode: u32, rdev: u64, cred: &Cred) -> Result<Attr> {
        self.gate.pass(Call::Mknod(name.to_vec()));
        self.inner.mknod(dir, name, mode, rdev, cred)
    }

    fn link(&self, target: &B::Node, dir: &B::Node, name: &[u8]) -> Result<()> {
        self.gate.pass(Call::Link(name.to_vec()));
        self.inner.link(target, dir, name)
    }

    fn readlink(&self, node: &B::Node) -> Result<Vec<u8>> {
        self.gate.pass(Call::Readlink);
        self.inner.readlink(node)
    }

    fn rename(
        &self,
        olddir: &B::Node,
        oldname: &[u8],
        newdir: &B::Node,
        newname: &[u8],
    ) -> Result<()> {
        self.gate
            .pass(Call::Rename(oldname.to_vec(), newname.to_vec()));
        self.inner.rename(olddir, oldname, newdir, newname)
    }

    fn unlink(&self, dir: &B::Node, name: &[u8], rmdir: bool) -> Result<()> {
        self.gate.pass(Call::Unlink(name.to_vec()));
        self.inner.unlink(dir, name, rmdir)
    }

    fn remove(&self, node: &B::Node) -> Result<()> {
        self.gate.pass(Call::Remove);
        self.inner.remove(node)
    }

    fn name(&self, node: &B::Node) -> Result<Vec<u8>> {
        self.gate.pass(Call::Name);
        self.inner.name(node)
    }

    fn read(&self, handle: &B::Handle, offset: u64, bufs: &mut [IoSliceMut<'_>]) -> Result<usize> {
        self.gate.pass(Call::Read { offset });
        self.gate.fault(&Call::Read { offset })?;
        self.inner.read(handle, offset, bufs)
    }

    fn write(&self, handle: &B::Handle, offset: u64, bufs: &[IoSlice<'_>]) -> Result<usize> {
        self.gate.pass(Call::Write { offset });
        self.gate.fault(&Call::Write { offset })?;
        self.inner.write(handle, offset, bufs)
    }

    fn fsync(&self, handle: &B::Handle, datasync: bool) -> Result<()> {
        self.gate.pass(Call::Fsync);
        self.inner.fsync(handle, datasync)
    }

    fn readdir(
        &self,
        dir: &B::Node,
        handle: &B::Handle,
        offset: u64,
        want_attr: bool,
        sink: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<()> {
        self.gate.pass(Call::Readdir { offset });
        self.inner.readdir(dir, handle, offset, want_attr, sink)
    }

    fn statfs(&self, node: &B::Node) -> Result<StatFs> {
        self.gate.pass(Call::Statfs);
        self.inner.statfs(node)
    }

    fn getxattr(&self, node: &B::Node, name: &[u8], buf: &mut [u8]) -> Result<usize> {
        self.gate.pass(Call::Getxattr);
        self.inner.getxattr(node, name, buf)
    }

    fn listxattr(&self, node: &B::Node, buf: &mut [u8]) -> Result<usize> {
        self.gate.pass(Call::Listxattr);
        self.inner.listxattr(node, buf)
    }

    fn setxattr(&self, node: &B::Node, name: &[u8], value: &[u8], flags: u32) -> Result<()> {
        self.gate.pass(Call::Setxattr);
        self.inner.setxattr(node, name, value, flags)
    }

    fn removexattr(&self, node: &B::Node, name: &[u8]) -> Result<()> {
        self.gate.pass(Call::Removexattr);
        self.inner.removexattr(node, name)
    }

    fn lock(&self, handle: &B::Handle, lock: &Lock) -> Result<LockStatus> {
        self.gate.pass(Call::Lock);
        self.inner.lock(handle, lock)
    }

    fn getlock(&self, handle: &B::Handle, lock: &Lock) -> Result<Option<Lock>> {
        self.gate.pass(Call::Getlock);
        self.inner.getlock(handle, lock)
    }

    fn rename_node(
        &self,
        node: &B::Node,
        newdir: Option<&B::Node>,
        newname: &[u8],
    ) -> Result<B::Node> {
        self.gate.pass(Call::RenameNode(newname.to_vec()));
        self.inner.rename_node(node, newdir, newname)
    }

    fn nodes_are_paths(&self) -> bool {
        self.inner.nodes_are_paths()
    }

    fn renamed(&self, node: &B::Node, how: &Renamed<'_, B::Node>) -> Option<B::Node> {
        self.inner.renamed(node, how)
    }

    fn is_entry(&self, node: &B::Node, dir: &B::Node, name: &[u8]) -> bool {
        self.inner.is_entry(node, dir, name)
    }
}

// ----- a path-based backend -----

/// A path-based backend: a node is a path relative to the export root
/// (empty: the root), resolved by joining it to the root on every call,
/// like QEMU's local backend.  Renames therefore invalidate the nodes of
/// every fid at or under the renamed entry, which the engine must fix with
/// [`Backend::renamed`].  Not escape-proof (symlinks in the path are
/// followed by the host): tests only.
pub struct PathBackend {
    root: PathBuf,
}

/// An open file or directory of [`PathBackend`].
pub enum PathHandle {
    /// A file open for I/O.
    File(File),
    /// A directory; entries are listed through its descriptor.
    Dir(File),
}

fn errno_of(e: std::io::Error) -> Errno {
    e.raw_os_error()
        .and_then(|n| u32::try_from(n).ok())
        .map_or(EIO, Errno)
}

fn last_errno() -> Errno {
    errno_of(std::io::Error::last_os_error())
}

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| EINVAL)
}

fn attr_of(m: &std::fs::Metadata) -> Attr {
    let t = |sec: i64, nsec: i64| Time {
        sec,
        nsec: nsec as u32,
    };
    Attr {
        dev: m.dev(),
        ino: m.ino(),
        mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
        nlink: m.nlink(),
        rdev: m.rdev(),
        size: m.size(),
        blksize: m.blksize(),
        blocks: m.blocks(),
        atime: t(m.atime(), m.atime_nsec()),
        mtime: t(m.mtime(), m.mtime_nsec()),
        ctime: t(m.ctime(), m.ctime_nsec()),
        btime: None,
    }
}

fn timespec(t: SetTime) -> libc::timespec {
    match t {
        SetTime::Omit => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        SetTime::Now => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        SetTime::At(t) => libc::timespec {
            tv_sec: t.sec,
            tv_nsec: i64::from(t.nsec),
        },
    }
}

/// `node` with the prefix `old` replaced by `new`, if it is at or under
/// `old`.
fn replace_prefix(node: &Path, old: &Path, new: &Path) -> Option<PathBuf> {
    let rest = node.strip_prefix(old).ok()?;
    Some(if rest.as_os_str().is_empty() {
        new.to_path_buf()
    } else {
        new.join(rest)
    })
}

impl PathBackend {
    /// Serve `root`.
    pub fn new(root: &Path) -> PathBackend {
        PathBackend {
            root: root.to_path_buf(),
        }
    }

    /// The host path of `node`.
    pub fn host(&self, node: &Path) -> PathBuf {
        if node.as_os_str().is_empty() {
            self.root.clone()
        } else {
            self.root.join(node)
        }
    }

    fn child(dir: &Path, name: &[u8]) -> PathBuf {
        dir.join(std::ffi::OsStr::from_bytes(name))
    }

    fn lstat(&self, node: &Path) -> Result<Attr> {
        std::fs::symlink_metadata(self.host(node))
            .map(|m| attr_of(&m))
            .map_err(errno_of)
    }

    fn open_path(&self, node: &Path, flags: i32, mode: u32) -> Result<File> {
        let mut opts = std::fs::OpenOptions::new();
        match flags & libc::O_ACCMODE {
            libc::O_WRONLY => opts.write(true),
            libc::O_RDWR => opts.read(true).write(true),
            _ => opts.read(true),
        };
        let extra = flags & !(libc::O_ACCMODE | libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC);
        opts.custom_flags(extra | libc::O_NOFOLLOW)
            .mode(mode)
            .create(flags & libc::O_CREAT != 0)
            .create_new(flags & libc::O_CREAT != 0 && flags & libc::O_EXCL != 0)
            .truncate(flags & libc::O_TRUNC != 0);
        opts.open(self.host(node)).map_err(errno_of)
    }
}

impl Backend for PathBackend {
    type Node = PathBuf;
    type Handle = PathHandle;

    fn attach(&self, _aname: &[u8], _cred: &Cred) -> Result<(PathBuf, Attr)> {
        let node = PathBuf::new();
        let attr = self.lstat(&node)?;
        Ok((node, attr))
    }

    fn walk(&self, dir: &PathBuf, ns: &[&[u8]]) -> Result<Vec<(PathBuf, Attr)>> {
        let mut out: Vec<(PathBuf, Attr)> = Vec::new();
        for (i, name) in ns.iter().enumerate() {
            let cur = out.last().map_or(dir, |(n, _)| n);
            let next = match *name {
                b"." => cur.clone(),
                b".." => cur.parent().map(Path::to_path_buf).unwrap_or_default(),
                n => Self::child(cur, n),
            };
            match self.lstat(&next) {
                Ok(attr) => out.push((next, attr)),
                Err(e) if i == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(out)
    }

    fn clone_node(&self, node: &PathBuf) -> Result<PathBuf> {
        Ok(node.clone())
    }

    fn getattr(&self, node: &PathBuf) -> Result<Attr> {
        self.lstat(node)
    }

    fn setattr(&self, node: &PathBuf, handle: Option<&PathHandle>, set: &SetAttr) -> Result<()> {
        let host = self.host(node);
        if let Some(size) = set.size {
            match handle {
                Some(PathHandle::File(f)) => f.set_len(size).map_err(errno_of)?,
                _ => self
                    .open_path(node, libc::O_WRONLY, 0)?
                    .set_len(size)
                    .map_err(errno_of)?,
            }
        }
        if set.uid.is_some() || set.gid.is_some() {
            std::os::unix::fs::lchown(&host, set.uid, set.gid).map_err(errno_of)?;
        }
        if let Some(mode) = set.mode {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode & 0o7777))
                .map_err(errno_of)?;
        }
        if set.atime != SetTime::Omit || set.mtime != SetTime::Omit {
            let c = cstr(&host)?;
            let times = [timespec(set.atime), timespec(set.mtime)];
            // SAFETY: `c` is NUL-terminated and `times` holds the two
            // timespecs utimensat reads.
            let r = unsafe {
                libc::utimensat(
                    libc::AT_FDCWD,
                    c.as_ptr(),
                    times.as_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
            if r != 0 {
                return Err(last_errno());
            }
        }
        Ok(())
    }

    fn open(&self, node: &PathBuf, flags: i32) -> Result<PathHandle> {
        let attr = self.lstat(node)?;
        match attr.mode & libc::S_IFMT {
            libc::S_IFDIR => self.opendir(node),
            libc::S_IFREG => Ok(PathHandle::File(self.open_path(node, flags, 0)?)),
            _ => Err(p9_wire::errno::ENXIO),
        }
    }

    fn opendir(&self, node: &PathBuf) -> Result<PathHandle> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(self.host(node))
            .map_err(errno_of)?;
        Ok(PathHandle::Dir(f))
    }

    fn create(
        &self,
        dir: &PathBuf,
        name: &[u8],
        flags: i32,
        mode: u32,
        _cred: &Cred,
    ) -> Result<(PathBuf, PathHandle, Attr)> {
        let node = Self::child(dir, name);
        let f = self.open_path(&node, flags | libc::O_CREAT, mode & 0o7777)?;
        let attr = f.metadata().map(|m| attr_of(&m)).map_err(errno_of)?;
        Ok((node, PathHandle::File(f), attr))
    }

    fn mkdir(&self, dir: &PathBuf, name: &[u8], mode: u32, _cred: &Cred) -> Result<Attr> {
        use std::os::unix::fs::DirBuilderExt;
        let node = Self::child(dir, name);
        std::fs::DirBuilder::new()
            .mode(mode & 0o7777)
            .create(self.host(&node))
            .map_err(errno_of)?;
        self.lstat(&node)
    }

    fn symlink(&self, dir: &PathBuf, name: &[u8], target: &[u8], _cred: &Cred) -> Result<Attr> {
        let node = Self::child(dir, name);
        std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), self.host(&node))
            .map_err(errno_of)?;
        self.lstat(&node)
    }

    fn mknod(
        &self,
        dir: &PathBuf,
        name: &[u8],
        mode: u32,
        rdev: u64,
        _cred: &Cred,
    ) -> Result<Attr> {
        let node = Self::child(dir, name);
        let c = cstr(&self.host(&node))?;
        // SAFETY: `c` is a NUL-terminated path.
        let r = unsafe { libc::mknod(c.as_ptr(), mode, rdev) };
        if r != 0 {
            return Err(last_errno());
        }
        self.lstat(&node)
    }

    fn link(&self, target: &PathBuf, dir: &PathBuf, name: &[u8]) -> Result<()> {
        std::fs::hard_link(self.host(target), self.host(&Self::child(dir, name))).map_err(errno_of)
    }

    fn readlink(&self, node: &PathBuf) -> Result<Vec<u8>> {
        std::fs::read_link(self.host(node))
            .map(|p| p.into_os_string().into_vec())
            .map_err(errno_of)
    }

    fn rename(
        &self,
        olddir: &PathBuf,
        oldname: &[u8],
        newdir: &PathBuf,
        newname: &[u8],
    ) -> Result<()> {
        std::fs::rename(
            self.host(&Self::child(olddir, oldname)),
            self.host(&Self::child(newdir, newname)),
        )
        .map_err(errno_of)
    }

    fn unlink(&self, dir: &PathBuf, name: &[u8], rmdir: bool) -> Result<()> {
        let p = self.host(&Self::child(dir, name));
        if rmdir {
            std::fs::remove_dir(p)
        } else {
            std::fs::remove_file(p)
        }
        .map_err(errno_of)
    }

    fn remove(&self, node: &PathBuf) -> Result<()> {
        if node.as_os_str().is_empty() {
            return Err(p9_wire::errno::EBUSY);
        }
        let attr = self.lstat(node)?;
        let p = self.host(node);
        if attr.mode & libc::S_IFMT == libc::S_IFDIR {
            std::fs::remove_dir(p)
        } else {
            std::fs::remove_file(p)
        }
        .map_err(errno_of)
    }

    fn name(&self, node: &PathBuf) -> Result<Vec<u8>> {
        Ok(node
            .file_name()
            .map_or_else(|| b".".to_vec(), |n| n.as_bytes().to_vec()))
    }

    fn read(&self, handle: &PathHandle, offset: u64, bufs: &mut [IoSliceMut<'_>]) -> Result<usize> {
        let PathHandle::File(f) = handle else {
            return Err(p9_wire::errno::EISDIR);
        };
        let mut done = 0usize;
        for buf in bufs.iter_mut() {
            let mut filled = 0;
            while filled < buf.len() {
                let n = f
                    .read_at(&mut buf[filled..], offset + (done + filled) as u64)
                    .map_err(errno_of)?;
                if n == 0 {
                    return Ok(done + filled);
                }
                filled += n;
            }
            done += filled;
        }
        Ok(done)
    }

    fn write(&self, handle: &PathHandle, offset: u64, bufs: &[IoSlice<'_>]) -> Result<usize> {
        let PathHandle::File(f) = handle else {
            return Err(p9_wire::errno::EISDIR);
        };
        let mut done = 0usize;
        for buf in bufs {
            f.write_all_at(buf, offset + done as u64)
                .map_err(errno_of)?;
            done += buf.len();
        }
        Ok(done)
    }

    fn fsync(&self, handle: &PathHandle, datasync: bool) -> Result<()> {
        let f = match handle {
            PathHandle::File(f) | PathHandle::Dir(f) => f,
        };
        if datasync {
            f.sync_data()
        } else {
            f.sync_all()
        }
        .map_err(errno_of)
    }

    /// Lists the directory through its descriptor (`/proc/self/fd/N`), so
    /// a renamed directory keeps listing; positions are indexes into the
    /// listing (`.` and `..` first).
    fn readdir(
        &self,
        _dir: &PathBuf,
        handle: &PathHandle,
        offset: u64,
        want_attr: bool,
        sink: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<()> {
        use std::os::fd::AsRawFd;
        let PathHandle::Dir(f) = handle else {
            return Err(p9_wire::errno::EBADF);
        };
        let dir = PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()));
        let mut entries: Vec<(Vec<u8>, PathBuf)> = vec![
            (b".".to_vec(), dir.clone()),
            (b"..".to_vec(), dir.join("..")),
        ];
        for e in std::fs::read_dir(&dir).map_err(errno_of)? {
            let e = e.map_err(errno_of)?;
            entries.push((e.file_name().as_bytes().to_vec(), e.path()));
        }
        for (i, (name, path)) in entries.iter().enumerate().skip(offset as usize) {
            let m = match std::fs::symlink_metadata(path) {
                Ok(m) => m,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(errno_of(e)),
            };
            let d_type = match m.mode() & libc::S_IFMT {
                libc::S_IFDIR => libc::DT_DIR,
                libc::S_IFREG => libc::DT_REG,
                libc::S_IFLNK => libc::DT_LNK,
                _ => libc::DT_UNKNOWN,
            };
            let entry = DirEntry {
                ino: m.ino(),
                next: i as u64 + 1,
                d_type,
                name,
                attr: want_attr.then(|| attr_of(&m)),
            };
            if !sink(&entry) {
                break;
            }
        }
        Ok(())
    }

    fn statfs(&self, node: &PathBuf) -> Result<StatFs> {
        let c = cstr(&self.host(node))?;
        // SAFETY: an all-zero statfs is a valid value of this C struct.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is NUL-terminated and `st` a valid out-pointer.
        if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
            return Err(last_errno());
        }
        // SAFETY: fsid is two ints in a plain C struct.
        let fsid: [i32; 2] = unsafe { std::mem::transmute(st.f_fsid) };
        Ok(StatFs {
            typ: st.f_type as u32,
            bsize: st.f_bsize as u32,
            blocks: st.f_blocks,
            bfree: st.f_bfree,
            bavail: st.f_bavail,
            files: st.f_files,
            ffree: st.f_ffree,
            fsid: (fsid[0] as u32 as u64) | ((fsid[1] as u32 as u64) << 32),
            namelen: st.f_namelen as u32,
        })
    }

    fn rename_node(
        &self,
        node: &PathBuf,
        newdir: Option<&PathBuf>,
        newname: &[u8],
    ) -> Result<PathBuf> {
        if node.as_os_str().is_empty() {
            return Err(p9_wire::errno::EBUSY);
        }
        let dir = match newdir {
            Some(d) => d.clone(),
            None => node.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let new = Self::child(&dir, newname);
        std::fs::rename(self.host(node), self.host(&new)).map_err(errno_of)?;
        Ok(new)
    }

    fn nodes_are_paths(&self) -> bool {
        true
    }

    fn renamed(&self, node: &PathBuf, how: &Renamed<'_, PathBuf>) -> Option<PathBuf> {
        match how {
            Renamed::At {
                olddir,
                oldname,
                newdir,
                newname,
            } => replace_prefix(
                node,
                &Self::child(olddir, oldname),
                &Self::child(newdir, newname),
            ),
            Renamed::Node { old, new } => {
                if old.as_os_str().is_empty() {
                    return None;
                }
                replace_prefix(node, old, new)
            }
        }
    }

    fn is_entry(&self, node: &PathBuf, dir: &PathBuf, name: &[u8]) -> bool {
        *node == Self::child(dir, name)
    }
}

/// Host `lstat` of `path`: its inode, or `ENOENT` and friends.
pub fn host_ino(path: &Path) -> std::result::Result<u64, i32> {
    std::fs::symlink_metadata(path)
        .map(|m| m.ino())
        .map_err(|e| e.raw_os_error().unwrap_or(0))
}

// ----- a recording transport -----

/// One completion seen by a [`Recorder`], in arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The request's tag.
    pub tag: Option<u16>,
    /// The request's type.
    pub req_type: Option<u8>,
    /// The reply's type, `None` when the server sent no reply.
    pub reply_type: Option<u8>,
}

/// A transport that records, in order, each completion the inner
/// transport delivers, before handing it to the client.
pub struct Recorder<T> {
    /// The wrapped transport.
    pub inner: T,
    log: Arc<Mutex<Vec<Event>>>,
}

impl<T: Transport> Recorder<T> {
    /// Record the completions of `inner`.
    pub fn new(inner: T) -> Self {
        Recorder {
            inner,
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The completions so far, in arrival order.
    pub fn events(&self) -> Vec<Event> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forget the completions so far.
    pub fn clear(&self) {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl<T: Transport> Transport for Recorder<T> {
    fn submit(&self, req: Vec<u8>, done: Box<dyn FnOnce(Option<Vec<u8>>) + Send>) {
        let h = Header::peek(SgView::from_slice(&req));
        let tag = h.map(|h| h.tag);
        let req_type = h.map(|h| h.typ);
        let log = Arc::clone(&self.log);
        self.inner.submit(
            req,
            Box::new(move |reply: Option<Vec<u8>>| {
                let reply_type = reply
                    .as_deref()
                    .and_then(|r| Header::peek(SgView::from_slice(r)))
                    .map(|h| h.typ);
                log.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Event {
                        tag,
                        req_type,
                        reply_type,
                    });
                done(reply);
            }),
        );
    }
}

/// Poll `cond` until it holds.
///
/// # Panics
/// After [`STUCK`] (it never held): `what` says what was awaited.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + STUCK;
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Run `f` on its own thread and return its result; panics (a deadlock)
/// if it does not finish within [`STUCK`], and passes on its panic.
pub fn within_deadline<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let r = f();
        let _ = tx.send(());
        r
    });
    match rx.recv_timeout(STUCK) {
        Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match t.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: not finished after {STUCK:?} (deadlock?)")
        }
    }
}
