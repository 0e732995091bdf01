// SPDX-License-Identifier: GPL-2.0-or-later
//! The filesystem the engine serves: the [`Backend`] trait.
//!
//! Shaped after QEMU's `FileOperations` (`fsdev/file-op-9p.h`) so that a
//! C vtable adapter can map onto it one-to-one, and so that an fd-based
//! backend fits too:
//!
//! - a [`Backend::Node`] is what a fid refers to: an `O_PATH` fd (native), a
//!   path string (QEMU's local backend, made by its `name_to_path`), a node
//!   pointer (QEMU's synth backend).  The engine never looks inside it.
//! - a [`Backend::Handle`] is an open file or directory.
//! - every method may block; the engine calls them through one offload per
//!   request (`offload::run_in_worker`), never on the home thread.
//!
//! Names passed in are single, already validated components: never empty,
//! never containing `/` or NUL.  `..` reaches [`Backend::walk`] only, which
//! must not go above the export root.  Errors are Linux errno values that
//! go to the guest as they are.  Methods a backend does not support keep
//! their default, which answers `EOPNOTSUPP` (or, for locks, what 9p.c does).

use std::io::{IoSlice, IoSliceMut};

use p9_wire::errno::{Errno, EOPNOTSUPP};
use p9_wire::types::StatFs;

use crate::qid::FileId;

/// Result of a backend call.
pub type Result<T> = std::result::Result<T, Errno>;

/// The user a request acts for (from Tattach's `n_uname`, and the gid given
/// by create-style requests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cred {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// A second and nanosecond timestamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Time {
    /// Seconds since the epoch.
    pub sec: i64,
    /// Nanoseconds.
    pub nsec: u32,
}

/// A file's attributes, as Tgetattr reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attr {
    /// Host device (for the qid mapping).
    pub dev: u64,
    /// Host inode (for the qid mapping).
    pub ino: u64,
    /// Type and permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Hard links.
    pub nlink: u64,
    /// Device number for device nodes.
    pub rdev: u64,
    /// Size in bytes.
    pub size: u64,
    /// Preferred I/O block size.
    pub blksize: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Last access.
    pub atime: Time,
    /// Last modification.
    pub mtime: Time,
    /// Last status change.
    pub ctime: Time,
    /// Creation, when the host knows it.
    pub btime: Option<Time>,
}

impl Attr {
    /// What the qid of this file is derived from.
    pub fn file_id(&self) -> FileId {
        FileId {
            dev: self.dev,
            ino: self.ino,
            mode: self.mode,
            mtime: self.mtime.sec,
            size: self.size as i64,
        }
    }
}

/// How Tsetattr sets a timestamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SetTime {
    /// Leave it.
    #[default]
    Omit,
    /// The current time.
    Now,
    /// This time.
    At(Time),
}

/// A Tsetattr/Twstat request, decoded from its `valid` bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New permission bits.
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size (truncate).
    pub size: Option<u64>,
    /// New access time.
    pub atime: SetTime,
    /// New modification time.
    pub mtime: SetTime,
}

/// One directory entry from [`Backend::readdir`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// Host inode.
    pub ino: u64,
    /// The position just after this entry: passed back to `readdir` to
    /// resume there (9P's Treaddir offset).
    pub next: u64,
    /// `DT_*` type.
    pub d_type: u8,
    /// The name (may be `.` or `..`).
    pub name: &'a [u8],
    /// The entry's attributes, when the caller asked for them (qid remap
    /// needs the device of every entry).
    pub attr: Option<Attr>,
}

/// A byte-range lock request (Tlock / Tgetlock).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lock {
    /// `P9_LOCK_TYPE_RDLCK`, `WRLCK` or `UNLCK`.
    pub typ: u8,
    /// First byte.
    pub start: u64,
    /// Length; 0 means to the end of the file.
    pub length: u64,
    /// The guest's process id (reported back by Tgetlock).
    pub proc_id: u32,
}

/// Outcome of [`Backend::lock`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockStatus {
    /// Granted.
    Success,
    /// Conflicts with another lock (the guest retries).
    Blocked,
}

/// A filesystem the engine can serve.
///
/// Implementations are shared by all requests of a server and called from
/// worker threads concurrently, hence `Send + Sync`.
pub trait Backend: Send + Sync + 'static {
    /// What a fid refers to.
    type Node: Send + Sync + 'static;
    /// An open file or directory.
    type Handle: Send + Sync + 'static;

    /// The root of the export named `aname` (Tattach).
    fn attach(&self, aname: &[u8], cred: &Cred) -> Result<(Self::Node, Attr)>;

    /// Walk from `dir` through `names` (one Twalk, one offload): return the
    /// node and attributes of each step reached.  Stops at the first step
    /// that fails; an error for the first name is returned as `Err`, a
    /// later one as a shorter list (as 9P's partial walk wants).  `..` at
    /// the export root stays at the root.
    fn walk(&self, dir: &Self::Node, names: &[&[u8]]) -> Result<Vec<(Self::Node, Attr)>>;

    /// A second reference to the same file (Twalk with no names).
    fn clone_node(&self, node: &Self::Node) -> Result<Self::Node>;

    /// Attributes (Tgetattr, Tstat).
    fn getattr(&self, node: &Self::Node) -> Result<Attr>;

    /// Attributes through the open file or directory `handle` of `node`
    /// (Tgetattr of an open fid, 9p.c's `v9fs_co_fstat`), so that an
    /// open-but-unlinked file answers.  `Err(EBADF)` means the handle
    /// cannot be used for this (QEMU: `has_valid_file_handle` is false):
    /// the engine then asks [`Backend::getattr`] of `node` instead.  The
    /// default is `getattr(node)`.
    fn fstat(&self, node: &Self::Node, _handle: &Self::Handle) -> Result<Attr> {
        self.getattr(node)
    }

    /// The inode generation (`st_gen`) of the file `node` with attributes
    /// `attr` (QEMU's `exops.get_st_gen`, `FS_IOC_GETVERSION`).  Asked only
    /// for a Tgetattr whose request mask has `P9_STATS_GEN`, after the
    /// attributes; an error leaves `P9_STATS_GEN` out of the reply (the
    /// request still succeeds), as 9p.c does.  The default reports 0, as
    /// 9p.c does for backends without the hook.
    fn generation(&self, _node: &Self::Node, _attr: &Attr) -> Result<u64> {
        Ok(0)
    }

    /// Whether the engine must clear a regular file's set-user-ID bit, and
    /// its set-group-ID bit when group-execute is set, before a write by a
    /// user other than root (the fid's attach uid), as the kernel does for
    /// an unprivileged writer on a local file system.  A backend that
    /// writes as a privileged process says yes: the host kernel keeps the
    /// bits for it.  The engine then asks [`Backend::fstat`] before such a
    /// write and [`Backend::setattr`] of the mode when a bit is set.  The
    /// default is no (upstream QEMU's `local` leaves the bits set).
    fn clears_set_id_on_write(&self) -> bool {
        false
    }

    /// Change attributes (Tsetattr, Twstat); `handle` is the fid's open file
    /// when it has one, so that open-but-unlinked files can be changed.
    fn setattr(
        &self,
        node: &Self::Node,
        handle: Option<&Self::Handle>,
        set: &SetAttr,
    ) -> Result<()>;

    /// Open a file (Tlopen, Topen) with Linux open flags.  Host special
    /// files (devices, FIFOs, sockets) must never be opened on the host.
    fn open(&self, node: &Self::Node, flags: i32) -> Result<Self::Handle>;

    /// Open a directory for reading.
    fn opendir(&self, node: &Self::Node) -> Result<Self::Handle>;

    /// Create and open a regular file (Tlcreate, Tcreate).
    fn create(
        &self,
        dir: &Self::Node,
        name: &[u8],
        flags: i32,
        mode: u32,
        cred: &Cred,
    ) -> Result<(Self::Node, Self::Handle, Attr)>;

    /// Make a directory (Tmkdir); returns its attributes for the qid.
    fn mkdir(&self, dir: &Self::Node, name: &[u8], mode: u32, cred: &Cred) -> Result<Attr>;

    /// Make a symbolic link (Tsymlink).
    fn symlink(&self, dir: &Self::Node, name: &[u8], target: &[u8], cred: &Cred) -> Result<Attr>;

    /// Make a device node, FIFO or socket (Tmknod).
    fn mknod(
        &self,
        dir: &Self::Node,
        name: &[u8],
        mode: u32,
        rdev: u64,
        cred: &Cred,
    ) -> Result<Attr>;

    /// Make a hard link to `target` (Tlink).
    fn link(&self, target: &Self::Node, dir: &Self::Node, name: &[u8]) -> Result<()>;

    /// The target of a symbolic link (Treadlink).
    fn readlink(&self, node: &Self::Node) -> Result<Vec<u8>>;

    /// Rename (Trenameat; Trename and Twstat name changes are mapped onto
    /// it by the engine).
    fn rename(
        &self,
        olddir: &Self::Node,
        oldname: &[u8],
        newdir: &Self::Node,
        newname: &[u8],
    ) -> Result<()>;

    /// Remove a name (Tunlinkat); `rmdir` for `AT_REMOVEDIR`.
    fn unlink(&self, dir: &Self::Node, name: &[u8], rmdir: bool) -> Result<()>;

    /// Remove the file a node refers to (Tremove).
    fn remove(&self, node: &Self::Node) -> Result<()>;

    /// The name of the file `node` refers to (9P2000.u Tstat's name
    /// field); the default answers `EOPNOTSUPP` and the engine then sends
    /// an empty name.
    fn name(&self, _node: &Self::Node) -> Result<Vec<u8>> {
        Err(EOPNOTSUPP)
    }

    /// Read at `offset` into `bufs` (the reply's buffers); short reads only
    /// at end of file.
    fn read(
        &self,
        handle: &Self::Handle,
        offset: u64,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Result<usize>;

    /// Write `bufs` (the request's buffers) at `offset`.
    fn write(&self, handle: &Self::Handle, offset: u64, bufs: &[IoSlice<'_>]) -> Result<usize>;

    /// Flush to stable storage (Tfsync).
    fn fsync(&self, handle: &Self::Handle, datasync: bool) -> Result<()>;

    /// Read directory entries of the open directory `handle` (opened from
    /// `dir`, the fid's node now) starting at position `offset` (0: the
    /// start, else a [`DirEntry::next`] seen before), passing each to
    /// `sink` until it returns `false` or the directory ends: one call per
    /// Treaddir.  `want_attr` asks for [`DirEntry::attr`].
    fn readdir(
        &self,
        dir: &Self::Node,
        handle: &Self::Handle,
        offset: u64,
        want_attr: bool,
        sink: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<()>;

    /// Filesystem statistics (Tstatfs).
    fn statfs(&self, node: &Self::Node) -> Result<StatFs>;

    /// Read extended attribute `name` into `buf`; an empty `buf` asks for
    /// the size.
    fn getxattr(&self, _node: &Self::Node, _name: &[u8], _buf: &mut [u8]) -> Result<usize> {
        Err(EOPNOTSUPP)
    }

    /// List extended attribute names (NUL-separated) into `buf`; an empty
    /// `buf` asks for the size.
    fn listxattr(&self, _node: &Self::Node, _buf: &mut [u8]) -> Result<usize> {
        Err(EOPNOTSUPP)
    }

    /// Set extended attribute `name` (`XATTR_CREATE`/`XATTR_REPLACE` flags).
    fn setxattr(&self, _node: &Self::Node, _name: &[u8], _value: &[u8], _flags: u32) -> Result<()> {
        Err(EOPNOTSUPP)
    }

    /// Remove extended attribute `name`.
    fn removexattr(&self, _node: &Self::Node, _name: &[u8]) -> Result<()> {
        Err(EOPNOTSUPP)
    }

    /// Take or release a byte-range lock without waiting (Tlock).  The
    /// default grants everything, which is what 9p.c does.
    fn lock(&self, _handle: &Self::Handle, _lock: &Lock) -> Result<LockStatus> {
        Ok(LockStatus::Success)
    }

    /// Test for a conflicting lock (Tgetlock): the conflicting lock, or
    /// `None`.  The default reports none, as 9p.c does.
    fn getlock(&self, _handle: &Self::Handle, _lock: &Lock) -> Result<Option<Lock>> {
        Ok(None)
    }

    /// Rename the file `node` refers to (Trename, a Twstat name change):
    /// to `newname` in `newdir`, or in its own directory when `newdir` is
    /// `None`.  Returns the node the fid holds from now on (for an
    /// fd-based backend the same file; for a path-based one the new path).
    /// The default answers `EOPNOTSUPP`.
    fn rename_node(
        &self,
        _node: &Self::Node,
        _newdir: Option<&Self::Node>,
        _newname: &[u8],
    ) -> Result<Self::Node> {
        Err(EOPNOTSUPP)
    }

    /// Whether nodes are paths that a rename of an ancestor invalidates
    /// (QEMU's local backend).  The engine then serialises renames against
    /// other requests with its rename lock (as 9p.c's `rename_lock`) and
    /// asks [`Backend::renamed`] to fix every fid; fd-based backends say no
    /// and take no lock at all.
    fn nodes_are_paths(&self) -> bool {
        false
    }

    /// After every rename, for every fid's node: what `node` must now be,
    /// or `None` to keep it.  Path-based backends move nodes at or under
    /// the renamed entry (9p.c `v9fs_fix_path`); fd-based ones may update
    /// their bookkeeping (e.g. the name a node was reached by).  Must not
    /// block: it runs for every fid under the fid table's lock.
    fn renamed(&self, _node: &Self::Node, _how: &Renamed<'_, Self::Node>) -> Option<Self::Node> {
        None
    }

    /// The most fids a session over this backend may hold, if the backend
    /// bounds it (e.g. because every fid costs it memory): the server
    /// uses the smaller of this and [`crate::Config::fids_max`].  The
    /// default is no bound of its own.
    fn fids_max(&self) -> Option<usize> {
        None
    }

    /// Path-based backends: whether `node` is the entry `name` of `dir`
    /// (so that a fid left open on an unlinked path is never reclaimed: it
    /// could not be reopened).
    fn is_entry(&self, _node: &Self::Node, _dir: &Self::Node, _name: &[u8]) -> bool {
        false
    }
}

/// A rename, as [`Backend::renamed`] sees it.
#[derive(Debug)]
pub enum Renamed<'a, N> {
    /// `oldname` in `olddir` became `newname` in `newdir` (Trenameat).
    At {
        /// Source directory.
        olddir: &'a N,
        /// Source name.
        oldname: &'a [u8],
        /// Target directory.
        newdir: &'a N,
        /// Target name.
        newname: &'a [u8],
    },
    /// The file `old` is now `new` (Trename, Twstat; `new` as
    /// [`Backend::rename_node`] returned it).
    Node {
        /// The node before the rename.
        old: &'a N,
        /// The node after it.
        new: &'a N,
    },
}
