// SPDX-License-Identifier: GPL-2.0-or-later
//! Directory listings: Treaddir (9P2000.L), and Tread on a directory
//! (9P2000.u stat structures).  Both encode into the host's buffers.

use std::sync::Arc;

use p9_wire::errno::{Errno, EMSGSIZE, ENOENT, ENOTDIR};
use p9_wire::{Fit, Qid, ReaddirReply, StatDirReply};

use super::{bulk_size, Ctx, Missing};
use crate::backend::{Attr, Backend};
use crate::convert::{self, S_IFLNK, S_IFMT};
use crate::fs::{FidOf, HandleOf, NodeOf};
use crate::qid::MultiDevs;
use crate::request::Reply;
use crate::state::{FidState, OpenRef};

/// Treaddir: entries of the open directory of `fid` from `offset`, as
/// many as fit in `count` bytes.
pub(crate) fn readdir<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    offset: u64,
    count: u32,
) -> Result<Reply, Errno> {
    let (fs, cancel, tag, session) = (ctx.fs, ctx.cancel, ctx.tag, ctx.session);
    // 9p.c v9fs_readdir: EINVAL for an unknown fid.
    let f = ctx.fid(fid, Missing::Einval)?;
    // 9p.c: a fid that is not an open directory is ENOTDIR.
    let OpenRef {
        handle: h,
        flags,
        dir,
    } = f.handle().ok_or(ENOTDIR)?;
    if !dir {
        return Err(ENOTDIR);
    }
    let node = f.node();
    let out = ctx.out.get(bulk_size(session, count));
    let mut reply = ReaddirReply::new(out, tag, session.msize, count).map_err(|_| EMSGSIZE)?;
    let remap = fs.config.multidevs == MultiDevs::Remap;
    fs.offload(cancel, || {
        let h = fs.handle_or_reopen(cancel, &f, &node, h, flags, dir)?;
        let mut failed = None;
        fs.backend.readdir(&node, &h.h, offset, remap, &mut |e| {
            let qid = match (remap, e.attr) {
                (true, Some(attr)) => match fs.qid(&attr) {
                    Ok(q) => q,
                    Err(err) => {
                        failed = Some(err);
                        return false;
                    }
                },
                // 9p.c: without remap only the path is filled in, to
                // spare a stat per entry.
                _ => Qid {
                    typ: 0,
                    version: 0,
                    path: e.ino,
                },
            };
            matches!(reply.push(&qid, e.next, e.d_type, e.name), Ok(Fit::Added))
        })?;
        match failed {
            Some(e) if reply.is_empty() => Err(e),
            _ => Ok(()),
        }
    })?;
    reply.finish().map(Reply::Written).map_err(|_| EMSGSIZE)
}

/// 9P2000.u Tread on a directory: stat structures from where the last
/// read stopped (offset 0 rewinds), as many as fit (9p.c
/// `v9fs_do_readdir_with_stat`), in one offload.
pub(super) fn read_dir_dotu<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    f: &FidOf<B>,
    node: Arc<NodeOf<B>>,
    h: Option<HandleOf<B>>,
    offset: u64,
    count: u32,
) -> Result<Reply, Errno> {
    let (fs, cancel, tag, session) = (ctx.fs, ctx.cancel, ctx.tag, ctx.session);
    let pos = match &*f.state() {
        FidState::Dir(_, pos) if offset != 0 => *pos,
        _ => 0,
    };
    let out = ctx.out.get(bulk_size(session, count));
    let mut reply = StatDirReply::new(out, tag, session.msize, count).map_err(|_| EMSGSIZE)?;
    let cap = reply.capacity();
    let next = fs.offload(cancel, || {
        let h = fs.handle_or_reopen(cancel, f, &node, h, 0, true)?;
        // Collect what can fit, then stat each (symlink targets need
        // calls of their own, outside the backend's readdir).
        let mut entries: Vec<(Vec<u8>, Attr, u64)> = Vec::new();
        let mut room = cap;
        fs.backend.readdir(&node, &h.h, pos, true, &mut |e| {
            let need = p9_wire::consts::STAT_FIXED_SIZE + e.name.len();
            let Some(attr) = e.attr else {
                return true;
            };
            if need > room {
                return false;
            }
            room -= need;
            entries.push((e.name.to_vec(), attr, e.next));
            true
        })?;
        let mut next = pos;
        for (name, attr, after) in entries {
            let ext = if attr.mode & S_IFMT == S_IFLNK {
                let child = fs.backend.walk(&node, &[&name])?.pop().ok_or(ENOENT)?;
                fs.backend.readlink(&child.0)?
            } else {
                convert::stat_extension(&attr)
            };
            let qid = fs.qid(&attr)?;
            let stat = convert::stat_of(&attr, qid, &name, &ext);
            match reply.push(&stat) {
                Ok(Fit::Added) => next = after,
                _ => break,
            }
        }
        Ok(next)
    })?;
    if let FidState::Dir(_, pos) = &mut *f.state() {
        *pos = next;
    }
    reply.finish().map(Reply::Written).map_err(|_| EMSGSIZE)
}
