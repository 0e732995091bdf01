// SPDX-License-Identifier: GPL-2.0-or-later
//! How a server behaves ([`Config`]) and what it tells its host about its
//! session ([`SessionHook`]).

use std::sync::Arc;

use p9_wire::errno::Errno;
use p9_wire::Proto;

use crate::fid::FIDS_MAX;
use crate::qid::MultiDevs;

/// QEMU's virtio transport limit: `(VIRTQUEUE_MAX_SIZE - 2) * 4096`.
pub const MSIZE_MAX_DEFAULT: u32 = (1024 - 2) * 4096;

/// 10.0.13's default bound on xattr fids (`max_xattr`,
/// `V9FS_MAX_XATTR_DEFAULT`).
pub const MAX_XATTR_DEFAULT: u32 = 1024;

/// How a server behaves (QEMU: the `-fsdev`/`-virtfs` options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The largest msize the transport can carry; Tversion caps the
    /// client's msize to it.
    pub msize_max: u32,
    /// Files on other devices than the export root (`multidevs=`).
    pub multidevs: MultiDevs,
    /// Refuse every change with `EROFS` (`readonly=on`).
    pub readonly: bool,
    /// Bound on live xattr fids (`max_xattr=`; 0: unbounded); beyond it
    /// Txattrwalk/Txattrcreate get `ENOSPC`.
    pub max_xattr: u32,
    /// Bound on live fids; beyond it new fids get `ENFILE`.  A backend
    /// may bound it lower
    /// ([`Backend::fids_max`](crate::backend::Backend::fids_max));
    /// [`Server::config`](crate::Server::config) reports the bound in
    /// force.
    pub fids_max: usize,
    /// Open files and directories above which idle ones are closed (to be
    /// reopened on next use); `None`: from `RLIMIT_NOFILE` as 9p.c does
    /// (`rlim_cur - min(400, rlim_cur / 3)`).
    pub open_high_water: Option<usize>,
    /// The dialects Tversion may negotiate; any other gets "unknown".
    pub versions: Versions,
}

/// A set of 9P dialects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Versions {
    /// 9P2000.L.
    pub dotl: bool,
    /// 9P2000.u.
    pub dotu: bool,
}

impl Versions {
    /// Both dialects (QEMU's behaviour).
    pub const ALL: Versions = Versions {
        dotl: true,
        dotu: true,
    };

    /// Whether `proto` is in the set.
    pub fn allows(&self, proto: Proto) -> bool {
        match proto {
            Proto::DotL => self.dotl,
            Proto::DotU => self.dotu,
            Proto::Unnegotiated => false,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            msize_max: MSIZE_MAX_DEFAULT,
            multidevs: MultiDevs::Warn,
            readonly: false,
            max_xattr: MAX_XATTR_DEFAULT,
            fids_max: FIDS_MAX,
            open_high_water: None,
            versions: Versions::ALL,
        }
    }
}

/// Told when a server's session gains its first fid or loses its last one
/// (QEMU adds and removes its migration blocker there).  Set with
/// [`Server::with_session_hook`](crate::Server::with_session_hook).
///
/// Calls alternate strictly, `attached` first, and are never concurrent
/// with each other for one server.  They run with the server's session
/// lock held (see
/// [`Server::with_session_hook`](crate::Server::with_session_hook)), so
/// they must not block, suspend, or call back into the server.
pub trait SessionHook: Send + Sync {
    /// A Tattach is about to create the session's first fid.  An error
    /// fails that Tattach with it, and no fid is created (and the call
    /// counts as none: the next is `attached` again).
    fn attached(&self) -> Result<(), Errno>;

    /// The session's last fid is gone (Tclunk, Tremove, the clunk of every
    /// fid by Tversion or [`Server::reset`](crate::Server::reset), or a
    /// Tattach that failed after [`SessionHook::attached`]).
    fn detached(&self);
}

/// A shared hook (the host keeps a reference, e.g. to inspect it).
impl<T: SessionHook + ?Sized> SessionHook for Arc<T> {
    fn attached(&self) -> Result<(), Errno> {
        (**self).attached()
    }

    fn detached(&self) {
        (**self).detached();
    }
}
