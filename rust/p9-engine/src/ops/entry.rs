// SPDX-License-Identifier: GPL-2.0-or-later
//! Directory entries: Tsymlink, Tmknod, Tmkdir, Tlink, Treadlink,
//! Trename, Trenameat, Tunlinkat, Tremove.
//!
//! A read-only export refuses the changes before they start (the
//! dispatch), except Tremove, where 9p.c clunks the fid first.

use std::sync::Arc;

use p9_wire::consts::AT_REMOVEDIR;
use p9_wire::errno::{Errno, EINVAL};
use p9_wire::{P9String, Rmessage};

use super::{Ctx, Missing};
use crate::backend::{Backend, Cred, Renamed};
use crate::convert;
use crate::fs::{FidOf, NodeOf};
use crate::request::Reply;

/// Tsymlink: `name` in the directory of fid `fid`, pointing at `symtgt`.
pub(crate) fn symlink<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    name: &P9String,
    symtgt: &P9String,
    gid: u32,
) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    // 9p.c v9fs_symlink: EINVAL for an unknown fid.
    let dir = ctx.fid(fid, Missing::Einval)?;
    let (dnode, cred) = (dir.node(), Cred { uid: dir.uid, gid });
    let attr = ctx.offload(|| {
        fs.backend
            .symlink(&dnode, name.as_bytes(), symtgt.as_bytes(), &cred)
    })?;
    Ok(Reply::Msg(Rmessage::Symlink {
        qid: fs.qid(&attr)?,
    }))
}

/// Tmknod: a device, FIFO or socket `name` in the directory of `dfid`.
pub(crate) fn mknod<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    dfid: u32,
    name: &P9String,
    mode: u32,
    major: u32,
    minor: u32,
    gid: u32,
) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    let dir = ctx.fid(dfid, Missing::Enoent)?;
    let (dnode, cred) = (dir.node(), Cred { uid: dir.uid, gid });
    let rdev = convert::makedev(major, minor);
    let attr = ctx.offload(|| fs.backend.mknod(&dnode, name.as_bytes(), mode, rdev, &cred))?;
    Ok(Reply::Msg(Rmessage::Mknod {
        qid: fs.qid(&attr)?,
    }))
}

/// Tmkdir: directory `name` in the directory of `dfid`.
pub(crate) fn mkdir<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    dfid: u32,
    name: &P9String,
    mode: u32,
    gid: u32,
) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    let dir = ctx.fid(dfid, Missing::Enoent)?;
    let (dnode, cred) = (dir.node(), Cred { uid: dir.uid, gid });
    let attr = ctx.offload(|| fs.backend.mkdir(&dnode, name.as_bytes(), mode, &cred))?;
    Ok(Reply::Msg(Rmessage::Mkdir {
        qid: fs.qid(&attr)?,
    }))
}

/// Tlink: a hard link `name` in the directory of `dfid` to the file of
/// `fid`.
pub(crate) fn link<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    dfid: u32,
    fid: u32,
    name: &P9String,
) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    let dir = ctx.fid(dfid, Missing::Enoent)?.node();
    let target = ctx.fid(fid, Missing::Enoent)?.node();
    ctx.offload(|| fs.backend.link(&target, &dir, name.as_bytes()))?;
    Ok(Reply::Msg(Rmessage::Link))
}

/// Treadlink.
pub(crate) fn readlink<B: Backend>(ctx: &mut Ctx<'_, '_, B>, fid: u32) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    let node = ctx.fid(fid, Missing::Enoent)?.node();
    let target = ctx.offload(|| fs.backend.readlink(&node))?;
    Ok(Reply::Msg(Rmessage::Readlink {
        target: P9String::new(target),
    }))
}

/// Trename: the file of `fid` to `name` in the directory of `dfid`.
pub(crate) fn rename<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    dfid: u32,
    name: &P9String,
) -> Result<Reply, Errno> {
    let f = ctx.fid(fid, Missing::Enoent)?;
    if !f.state().is_none() {
        return Err(EINVAL);
    }
    let newdir = ctx.fid(dfid, Missing::Enoent)?.node();
    rename_fid(ctx, &f, Some(newdir), name.as_bytes())?;
    Ok(Reply::Msg(Rmessage::Rename))
}

/// Rename the file of fid `f` (Trename, Twstat); path-based backends
/// then fix every fid under it.  Called under the rename lock.
pub(crate) fn rename_fid<B: Backend>(
    ctx: &Ctx<'_, '_, B>,
    f: &FidOf<B>,
    newdir: Option<Arc<NodeOf<B>>>,
    newname: &[u8],
) -> Result<(), Errno> {
    let fs = ctx.fs;
    let old = f.node();
    let new = ctx.offload(|| {
        let new = Arc::new(fs.backend.rename_node(&old, newdir.as_deref(), newname)?);
        fs.fix_paths(&Renamed::Node {
            old: &old,
            new: &new,
        });
        Ok(new)
    })?;
    f.set_node(new);
    Ok(())
}

/// Trenameat: `oldname` in the directory of `olddirfid` to `newname` in
/// that of `newdirfid`.
pub(crate) fn renameat<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    olddirfid: u32,
    oldname: &P9String,
    newdirfid: u32,
    newname: &P9String,
) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    let olddir = ctx.fid(olddirfid, Missing::Enoent)?.node();
    let newdir = ctx.fid(newdirfid, Missing::Enoent)?.node();
    let (oldname, newname) = (oldname.as_bytes(), newname.as_bytes());
    ctx.offload(|| {
        fs.backend.rename(&olddir, oldname, &newdir, newname)?;
        fs.fix_paths(&Renamed::At {
            olddir: &olddir,
            oldname,
            newdir: &newdir,
            newname,
        });
        Ok(())
    })?;
    Ok(Reply::Msg(Rmessage::Renameat))
}

/// Tunlinkat: `name` in the directory of `dirfid`.
pub(crate) fn unlinkat<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    dirfid: u32,
    name: &P9String,
    flags: u32,
) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    // 9p.c v9fs_unlinkat: EINVAL for an unknown fid.
    let dir = ctx.fid(dirfid, Missing::Einval)?.node();
    let name = name.as_bytes();
    if fs.backend.nodes_are_paths() {
        // A fid open on this path could not be reopened.
        fs.fids.for_each(|_, f| {
            if fs.backend.is_entry(&f.peek_node(), &dir, name) {
                f.keep_open();
            }
        });
    }
    ctx.offload(|| fs.backend.unlink(&dir, name, flags & AT_REMOVEDIR != 0))?;
    Ok(Reply::Msg(Rmessage::Unlinkat))
}

/// Tremove: the file of `fid`, which is clunked whether or not the
/// removal works.
pub(crate) fn remove<B: Backend>(ctx: &mut Ctx<'_, '_, B>, fid: u32) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    // 9p.c v9fs_remove: EINVAL for an unknown fid; the fid goes before
    // the read-only check.
    let f = ctx.remove_fid(fid, Missing::Einval)?;
    fs.check_writable()?;
    let node = f.node();
    ctx.offload(|| {
        let r = fs.backend.remove(&node);
        fs.release_now(f).and(r)
    })?;
    Ok(Reply::Msg(Rmessage::Remove))
}
