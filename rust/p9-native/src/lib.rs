// SPDX-License-Identifier: GPL-2.0-or-later
//! Native passthrough filesystem layer for the 9P engine: the system-call
//! side of a Rust replacement for QEMU's `hw/9pfs/9p-local.c`, for
//! hypervisors without QEMU's own backends.
//!
//! Everything is descriptor based and escape-proof:
//!
//! * every file the engine holds is a [`Node`], an `O_PATH | O_NOFOLLOW`
//!   descriptor; names from the guest are only ever used as one validated
//!   component beneath a directory node ([`lookup`], with
//!   `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` where available),
//!   `..` goes through [`parent`], which stops at the export root, and
//!   symbolic links are never followed;
//! * host special files (devices, FIFOs, sockets) may be created and held
//!   but are never opened ([`open`], CVE-2023-2861);
//! * attribute operations ([`stat`], [`chmod`], [`chown`], [`utimes`],
//!   [`truncate`], extended attributes) work on the node, so files that are
//!   open but unlinked, or renamed, keep working.
//!
//! Errors are raw Linux errnos ([`Errno`]), ready to go to the guest.
//!
//! The [`SecurityModel`] says how guest credentials meet the host:
//! applied to the files (`passthrough`, `none`), or kept beside them in
//! QEMU's own on-disk format (`mapped-xattr`: `user.virtfs.*` extended
//! attributes; `mapped-file`: `.virtfs_metadata` files), so that exports
//! move between QEMU's `local` driver and this crate.
//!
//! [`NativeBackend`] (module [`backend`]) puts this layer behind the
//! engine's `p9_engine::backend::Backend` trait.  There a fid is a place
//! beneath the export root, with its `O_PATH` descriptor as a cache: names
//! are looked up from the root's descriptor along the directory's place
//! (`openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, or one
//! `openat(O_NOFOLLOW)` per component), `..` is the recorded parent, and
//! opening, listing and using a directory first check the file is still
//! at its place, so a directory the host moves out of the export is no
//! way out.  Descriptors of every backend of the process share one budget
//! derived from `RLIMIT_NOFILE` ([`budget_stats`]): beyond it idle nodes
//! give theirs back and are found again (and checked to be the same file)
//! when used.
//!
//! `/proc` must be mounted: re-opening a node for I/O, `chmod`, extended
//! attributes and the [`link`] fallback go through `/proc/self/fd/N`, the
//! magic link of our own descriptor (never a name from the guest).

mod attr;
pub mod backend;
mod budget;
mod dir;
mod dirops;
mod errno;
mod fhandle;
mod io;
mod lock;
mod mapped;
mod node;
mod open;
mod resolve;
mod security;
mod stat;
#[cfg(any(test, feature = "test-hooks"))]
pub mod testing;
mod tree;
mod xattr;

pub use attr::{
    chmod, chown, generation, readlink, statfs, truncate, utimes, wire_statfs, SetTime,
};
pub use backend::NativeBackend;
pub use budget::{budget_stats, BudgetStats};
pub use dir::{DirBatch, DirEntry, DirReader};
pub use dirops::{link, mkdir, mknod, renameat, symlink, unlinkat};
pub use errno::{Errno, Result};
pub use io::{fsync, ftruncate, pread, pwrite};
pub use lock::{getlk, setlk, Conflict, LockType};
pub use node::Node;
pub use open::{create_file, open, sanitize_open_flags};
pub use resolve::{lookup, openat2_supported, parent};
pub use security::{HostModes, NewEntry, SecurityModel};
pub use stat::{stat, stat_at, Stat, Timespec};
pub use xattr::{getxattr, listxattr, removexattr, setxattr};
