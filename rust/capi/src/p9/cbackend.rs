// SPDX-License-Identifier: GPL-2.0-or-later
//! `CBackend`: the engine's `Backend` over a `QrsP9BackendOps` vtable.
//! (Skeleton: being written.)

use std::ffi::c_void;
use std::io::{IoSlice, IoSliceMut};

use p9_engine::backend::{Attr, Backend, Cred, DirEntry, Result, SetAttr};
use p9_wire::errno::EOPNOTSUPP;
use p9_wire::types::StatFs;

use super::vtable::QrsP9BackendOps;

/// A backend in C.
pub(crate) struct CBackend {
    ops: QrsP9BackendOps,
    opaque: *mut c_void,
}

// SAFETY: `qrs_p9_backend_c_new`'s contract: the functions may be called
// from any thread, concurrently, with `opaque`.
unsafe impl Send for CBackend {}
// SAFETY: as above.
unsafe impl Sync for CBackend {}

impl CBackend {
    /// # Safety
    /// As `qrs_p9_backend_c_new`.
    pub(crate) unsafe fn new(
        ops: &QrsP9BackendOps,
        opaque: *mut c_void,
    ) -> std::result::Result<Self, i32> {
        Ok(CBackend { ops: *ops, opaque })
    }
}

impl Backend for CBackend {
    type Node = Box<[u8]>;
    type Handle = ();
    fn attach(&self, _: &[u8], _: &Cred) -> Result<(Self::Node, Attr)> {
        let _ = (self.ops.flags, self.opaque);
        Err(EOPNOTSUPP)
    }
    fn walk(&self, _: &Self::Node, _: &[&[u8]]) -> Result<Vec<(Self::Node, Attr)>> {
        Err(EOPNOTSUPP)
    }
    fn clone_node(&self, n: &Self::Node) -> Result<Self::Node> {
        Ok(n.clone())
    }
    fn getattr(&self, _: &Self::Node) -> Result<Attr> {
        Err(EOPNOTSUPP)
    }
    fn setattr(&self, _: &Self::Node, _: Option<&()>, _: &SetAttr) -> Result<()> {
        Err(EOPNOTSUPP)
    }
    fn open(&self, _: &Self::Node, _: i32) -> Result<()> {
        Err(EOPNOTSUPP)
    }
    fn opendir(&self, _: &Self::Node) -> Result<()> {
        Err(EOPNOTSUPP)
    }
    fn create(
        &self,
        _: &Self::Node,
        _: &[u8],
        _: i32,
        _: u32,
        _: &Cred,
    ) -> Result<(Self::Node, (), Attr)> {
        Err(EOPNOTSUPP)
    }
    fn mkdir(&self, _: &Self::Node, _: &[u8], _: u32, _: &Cred) -> Result<Attr> {
        Err(EOPNOTSUPP)
    }
    fn symlink(&self, _: &Self::Node, _: &[u8], _: &[u8], _: &Cred) -> Result<Attr> {
        Err(EOPNOTSUPP)
    }
    fn mknod(&self, _: &Self::Node, _: &[u8], _: u32, _: u64, _: &Cred) -> Result<Attr> {
        Err(EOPNOTSUPP)
    }
    fn link(&self, _: &Self::Node, _: &Self::Node, _: &[u8]) -> Result<()> {
        Err(EOPNOTSUPP)
    }
    fn readlink(&self, _: &Self::Node) -> Result<Vec<u8>> {
        Err(EOPNOTSUPP)
    }
    fn rename(&self, _: &Self::Node, _: &[u8], _: &Self::Node, _: &[u8]) -> Result<()> {
        Err(EOPNOTSUPP)
    }
    fn unlink(&self, _: &Self::Node, _: &[u8], _: bool) -> Result<()> {
        Err(EOPNOTSUPP)
    }
    fn remove(&self, _: &Self::Node) -> Result<()> {
        Err(EOPNOTSUPP)
    }
    fn read(&self, _: &(), _: u64, _: &mut [IoSliceMut<'_>]) -> Result<usize> {
        Err(EOPNOTSUPP)
    }
    fn write(&self, _: &(), _: u64, _: &[IoSlice<'_>]) -> Result<usize> {
        Err(EOPNOTSUPP)
    }
    fn fsync(&self, _: &(), _: bool) -> Result<()> {
        Err(EOPNOTSUPP)
    }
    fn readdir(
        &self,
        _: &Self::Node,
        _: &(),
        _: u64,
        _: bool,
        _: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<()> {
        Err(EOPNOTSUPP)
    }
    fn statfs(&self, _: &Self::Node) -> Result<StatFs> {
        Err(EOPNOTSUPP)
    }
}
