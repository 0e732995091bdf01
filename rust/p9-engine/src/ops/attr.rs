// SPDX-License-Identifier: GPL-2.0-or-later
//! File attributes: Tgetattr, Tsetattr, Tstatfs (9P2000.L), Tstat,
//! Twstat (9P2000.u).

use std::sync::Arc;

use p9_wire::consts::getattr;
use p9_wire::errno::{Errno, EBADF};
use p9_wire::{Rmessage, SetAttr as WireSetAttr, Stat, StatFs};

use super::{with_open_file, Ctx, Missing};
use crate::backend::{Attr, Backend, Renamed, SetAttr};
use crate::convert::{self, S_IFLNK, S_IFMT};
use crate::fs::{Fs, NodeOf};
use crate::request::Reply;

/// Tgetattr: encoded in place (the reply is large, and moving it out
/// through the callers costs more than the encoding).
pub(crate) fn getattr<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    request_mask: u64,
) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    let f = ctx.fid(fid, Missing::Enoent)?;
    let node = f.node();
    // 9p.c: fstat through the fid's open file or directory (one reclaim
    // closed is not reopened for this), else lstat.
    let handle = f.handle().and_then(|o| o.handle);
    let want_gen = request_mask & getattr::GEN != 0;
    let (attr, gen) = ctx.offload(|| {
        let attr = match &handle {
            Some(h) => match fs.backend.fstat(&node, &h.h) {
                Err(e) if e == EBADF => fs.backend.getattr(&node),
                r => r,
            },
            None => fs.backend.getattr(&node),
        }?;
        // 9p.c: st_gen only when asked; a failure just leaves
        // P9_STATS_GEN out.
        let gen = want_gen
            .then(|| fs.backend.generation(&node, &attr).ok())
            .flatten();
        Ok((attr, gen))
    })?;
    let qid = fs.qid(&attr)?;
    let mut st = convert::getattr_of(&attr, qid, gen);
    // 9p.c reports the I/O size a client should use here.
    st.blksize = convert::dotl_blksize(ctx.session.msize, attr.blksize);
    ctx.written(&Rmessage::Getattr(st))
}

/// Tsetattr.
pub(crate) fn setattr<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    attr: &WireSetAttr,
) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    // 9p.c v9fs_setattr: EINVAL for an unknown fid.
    let f = ctx.fid(fid, Missing::Einval)?;
    let node = f.node();
    let handle = f.handle().and_then(|o| o.handle);
    let mut set = convert::setattr_from_wire(attr);
    if convert::setattr_ctime_only(attr) {
        // 9p.c: chown(-1, -1), which changes nothing but ctime.
        set.uid = Some(u32::MAX);
        set.gid = Some(u32::MAX);
    }
    ctx.offload(|| {
        fs.backend
            .setattr(&node, handle.as_deref().map(|h| &h.h), &set)
    })?;
    Ok(Reply::Msg(Rmessage::Setattr))
}

/// Tstatfs.
pub(crate) fn statfs<B: Backend>(ctx: &mut Ctx<'_, '_, B>, fid: u32) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    let node = ctx.fid(fid, Missing::Enoent)?.node();
    let st = ctx.offload(|| fs.backend.statfs(&node))?;
    Ok(Reply::Msg(Rmessage::Statfs(scale_statfs(
        st,
        ctx.session.msize,
    ))))
}

/// 9p.c `v9fs_fill_statfs`: report blocks of the largest multiple of the
/// host block size that fits in one I/O (`msize - P9_IOHDRSZ`), scaling
/// the block counts to match, so that clients size their I/O to it.
fn scale_statfs(mut st: StatFs, msize: u32) -> StatFs {
    if st.bsize == 0 {
        return st;
    }
    let factor = (msize.saturating_sub(p9_wire::consts::P9_IOHDRSZ) / st.bsize).max(1);
    st.bsize = st.bsize.saturating_mul(factor);
    let f = u64::from(factor);
    st.blocks /= f;
    st.bfree /= f;
    st.bavail /= f;
    st
}

/// 9P2000.u Tstat.
pub(crate) fn stat<B: Backend>(ctx: &mut Ctx<'_, '_, B>, fid: u32) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    let node = ctx.fid(fid, Missing::Enoent)?.node();
    let (attr, ext, name) = ctx.offload(|| {
        let attr = fs.backend.getattr(&node)?;
        let ext = extension(fs, &node, &attr)?;
        let name = fs.backend.name(&node).unwrap_or_default();
        Ok((attr, ext, name))
    })?;
    let stat = convert::stat_of(&attr, fs.qid(&attr)?, &name, &ext);
    Ok(Reply::Msg(Rmessage::Stat { stat }))
}

/// 9P2000.u stat extension: symlink target, device text, or empty.
/// Runs on the worker.
pub(crate) fn extension<B: Backend>(
    fs: &Fs<B>,
    node: &NodeOf<B>,
    attr: &Attr,
) -> Result<Vec<u8>, Errno> {
    if attr.mode & S_IFMT == S_IFLNK {
        fs.backend.readlink(node)
    } else {
        Ok(convert::stat_extension(attr))
    }
}

/// 9P2000.u Twstat (9p.c `v9fs_wstat`).
pub(crate) fn wstat<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    stat: Stat,
) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    // 9p.c v9fs_wstat: EINVAL for an unknown fid, before the read-only
    // check (and "change nothing" is no change).
    let f = ctx.fid(fid, Missing::Einval)?;
    if stat.is_dont_touch() {
        // "Change nothing" means fsync (EBADF when the fid is not open).
        with_open_file(ctx, fid, |_, h| fs.backend.fsync(&h.h, false))?;
        return Ok(Reply::Msg(Rmessage::Wstat));
    }
    fs.check_writable()?;
    let node = f.node();
    // The open file, so that open-but-unlinked files can be changed.
    let handle = f.handle().and_then(|o| o.handle);
    let renamed = ctx.offload(|| {
        let attr = fs.backend.getattr(&node)?;
        let changes = convert::wstat_changes(&stat, attr.mode)?;
        fs.backend
            .setattr(&node, handle.as_deref().map(|h| &h.h), &changes.set)?;
        let renamed = match changes.rename_to {
            Some(name) => {
                let new = Arc::new(fs.backend.rename_node(&node, None, &name)?);
                fs.fix_paths(&Renamed::Node {
                    old: &node,
                    new: &new,
                });
                Some(new)
            }
            None => None,
        };
        // 9p.c truncates last, after the rename.
        if let Some(size) = changes.truncate {
            let set = SetAttr {
                size: Some(size),
                ..Default::default()
            };
            let target = renamed.as_deref().unwrap_or(&node);
            fs.backend
                .setattr(target, handle.as_deref().map(|h| &h.h), &set)?;
        }
        Ok(renamed)
    })?;
    if let Some(new) = renamed {
        f.set_node(new);
    }
    Ok(Reply::Msg(Rmessage::Wstat))
}
