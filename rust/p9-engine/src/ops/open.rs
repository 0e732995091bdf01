// SPDX-License-Identifier: GPL-2.0-or-later
//! Opening and creating files: Tlopen, Topen, Tlcreate, Tcreate.

use std::sync::Arc;

use p9_wire::errno::{Errno, EINVAL, ENOENT, EROFS};
use p9_wire::{P9String, Rmessage};

use super::{is_dir, Ctx, Missing};
use crate::backend::{Backend, Cred};
use crate::convert::{self, CreateKind, O_CREAT, O_EXCL, O_TRUNC};
use crate::fs::{FidOf, Fs, HandleOf, NodeOf};
use crate::request::{Reply, Session};
use crate::state::{FidState, Handle, Open};

/// Tlopen, with 9P2000.L open `flags`.
pub(crate) fn lopen<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    flags: u32,
) -> Result<Reply, Errno> {
    let (qid, iounit) = open_fid(ctx, fid, convert::dotl_open_flags(flags))?;
    Ok(Reply::Msg(Rmessage::Lopen { qid, iounit }))
}

/// Topen, with a 9P2000(.u) mode byte.
pub(crate) fn open<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    mode: u8,
) -> Result<Reply, Errno> {
    let (qid, iounit) = open_fid(ctx, fid, convert::omode_flags(mode))?;
    Ok(Reply::Msg(Rmessage::Open { qid, iounit }))
}

/// Open fid `fid` with host `flags`: its qid and iounit.
fn open_fid<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    flags: i32,
) -> Result<(p9_wire::Qid, u32), Errno> {
    let fs = ctx.fs;
    let session = ctx.session;
    let f = ctx.fid(fid, Missing::Enoent)?;
    if !f.state().is_none() {
        return Err(EINVAL);
    }
    // 9p.c checks the fid before the read-only export.
    if fs.config.readonly && convert::open_flags_write(flags) {
        return Err(EROFS);
    }
    let node = f.node();
    let (attr, handle, iounit) = ctx.offload(|| {
        let attr = fs.backend.getattr(&node)?;
        let r = if is_dir(&attr) {
            let h = fs.with_fd_retry(|| fs.backend.opendir(&node))?;
            (attr, h, 0)
        } else {
            let h = fs.with_fd_retry(|| fs.backend.open(&node, flags))?;
            (attr, h, iounit(fs, &node, session))
        };
        fs.reclaim_if_over();
        Ok(r)
    })?;
    let qid = fs.qid(&attr)?;
    let handle = Handle::new(handle, &fs.shared);
    install_open::<B>(&f, handle, flags, is_dir(&attr))?;
    Ok((qid, iounit))
}

/// Make `f` an open file or directory, unless another request opened
/// it meanwhile (`EINVAL`, as 9p.c's "already open" check).
fn install_open<B: Backend>(
    f: &FidOf<B>,
    handle: HandleOf<B>,
    flags: i32,
    dir: bool,
) -> Result<(), Errno> {
    let mut st = f.state();
    if !st.is_none() {
        return Err(EINVAL);
    }
    let open = Open {
        handle: Some(handle),
        flags: flags & !(O_CREAT | O_EXCL | O_TRUNC),
        // 9p.c: the host did the O_EXCL check; such a file is never
        // reclaimed.
        reclaimable: flags & O_EXCL == 0,
    };
    *st = if dir {
        FidState::Dir(open, 0)
    } else {
        FidState::File(open)
    };
    Ok(())
}

/// 9p.c `get_iounit`: the largest multiple of the file system's block
/// size that fits in a Twrite/Rread, else msize - P9_IOHDRSZ.  Runs on
/// the worker, in the request's offload.
fn iounit<B: Backend>(fs: &Fs<B>, node: &NodeOf<B>, session: Session) -> u32 {
    let room = session.msize.saturating_sub(p9_wire::consts::P9_IOHDRSZ);
    let bsize = fs.backend.statfs(node).map(|s| s.bsize).unwrap_or(0);
    match bsize {
        0 => room,
        b => match room - room % b {
            0 => room,
            n => n,
        },
    }
}

/// Tlcreate: create and open `name` in the directory of fid `fid`, which
/// becomes the new file.
pub(crate) fn lcreate<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    name: &P9String,
    flags: u32,
    mode: u32,
    gid: u32,
) -> Result<Reply, Errno> {
    let (fs, session) = (ctx.fs, ctx.session);
    let (name, flags) = (name.as_bytes(), convert::dotl_open_flags(flags) | O_CREAT);
    let f = ctx.fid(fid, Missing::Enoent)?;
    if !f.state().is_none() {
        return Err(EINVAL);
    }
    let dir = f.node();
    let cred = Cred { uid: f.uid, gid };
    let (node, handle, attr, iounit) = ctx.offload(|| {
        let (node, handle, attr) =
            fs.with_fd_retry(|| fs.backend.create(&dir, name, flags, mode, &cred))?;
        let iounit = iounit(fs, &node, session);
        fs.reclaim_if_over();
        Ok((node, handle, attr, iounit))
    })?;
    let qid = fs.qid(&attr)?;
    install_open::<B>(&f, Handle::new(handle, &fs.shared), flags, false)?;
    f.set_node(Arc::new(node));
    Ok(Reply::Msg(Rmessage::Lcreate { qid, iounit }))
}

/// 9P2000.u Tcreate: a file, directory, symlink, hard link or special
/// file, chosen by the permission bits; the fid becomes the new file.
pub(crate) fn create<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    name: &P9String,
    perm: u32,
    omode: u8,
    extension: &P9String,
) -> Result<Reply, Errno> {
    let (fs, session) = (ctx.fs, ctx.session);
    let name = name.as_bytes();
    // 9p.c v9fs_create: EINVAL for an unknown fid, the link target's too.
    let f = ctx.fid(fid, Missing::Einval)?;
    if !f.state().is_none() {
        return Err(EINVAL);
    }
    let kind = convert::create_kind(perm, extension.as_bytes())?;
    let link_target = match &kind {
        CreateKind::Link(target) => Some(ctx.fid(*target, Missing::Einval)?.node()),
        _ => None,
    };
    let dir = f.node();
    let cred = Cred {
        uid: f.uid,
        gid: u32::MAX,
    };
    let flags = convert::omode_flags(omode) | O_CREAT;
    let perm_bits = convert::create_mode(perm, &kind);
    let (node, handle, attr, iounit) = ctx.offload(|| {
        let file = match &kind {
            CreateKind::File => {
                Some(fs.with_fd_retry(|| fs.backend.create(&dir, name, flags, perm_bits, &cred))?)
            }
            CreateKind::Dir => {
                fs.backend.mkdir(&dir, name, perm_bits, &cred)?;
                None
            }
            CreateKind::Symlink(target) => {
                fs.backend.symlink(&dir, name, target, &cred)?;
                None
            }
            CreateKind::Link(_) => {
                let target = link_target.as_deref().ok_or(EINVAL)?;
                fs.backend.link(target, &dir, name)?;
                None
            }
            CreateKind::Device { mode, rdev } => {
                fs.backend.mknod(&dir, name, *mode, *rdev, &cred)?;
                None
            }
            CreateKind::Fifo | CreateKind::Socket => {
                fs.backend.mknod(&dir, name, perm_bits, 0, &cred)?;
                None
            }
        };
        let created = match file {
            Some((node, h, attr)) => (node, Some(h), attr),
            // Anything but a file: reach the new entry; a directory is
            // opened, as 9p.c does.
            None => {
                let (node, attr) = fs.backend.walk(&dir, &[name])?.pop().ok_or(ENOENT)?;
                let h = if is_dir(&attr) {
                    Some(fs.with_fd_retry(|| fs.backend.opendir(&node))?)
                } else {
                    None
                };
                (node, h, attr)
            }
        };
        let iounit = iounit(fs, &created.0, session);
        fs.reclaim_if_over();
        Ok((created.0, created.1, created.2, iounit))
    })?;
    let qid = fs.qid(&attr)?;
    if let Some(h) = handle {
        install_open::<B>(&f, Handle::new(h, &fs.shared), flags, is_dir(&attr))?;
    }
    f.set_node(Arc::new(node));
    Ok(Reply::Msg(Rmessage::Create { qid, iounit }))
}
