// SPDX-License-Identifier: GPL-2.0-or-later
//! Making and dropping fids: Tattach, Tclunk.

use std::sync::Arc;

use p9_wire::errno::{Errno, EINTR, EINVAL};
use p9_wire::{P9String, Rmessage};

use super::{Ctx, Missing};
use crate::backend::{Backend, Cred};
use crate::qid::QidMap;
use crate::request::Reply;
use crate::state::{Fid, FidState};

/// Tattach: a fid on the export root for user `uid`.
pub(crate) fn attach<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    aname: &P9String,
    uid: u32,
) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    if fs.fids.contains(fid) {
        return Err(EINVAL);
    }
    let cred = Cred { uid, gid: u32::MAX };
    // 9p.c answers any failure to reach the root with EINVAL.
    let (node, attr) = ctx
        .offload(|| fs.backend.attach(aname.as_bytes(), &cred))
        .map_err(|e| if e == EINTR { e } else { EINVAL })?;
    fs.qids
        .get_or_init(|| QidMap::new(fs.config.multidevs, attr.dev));
    let qid = fs.qid(&attr).map_err(|_| EINVAL)?;
    fs.insert_fid(fid, true, || Fid::new(uid, Arc::new(node), FidState::None))?;
    Ok(Reply::Msg(Rmessage::Attach { qid }))
}

/// Tclunk: the fid goes; what it holds is released once unused.
pub(crate) fn clunk<B: Backend>(ctx: &mut Ctx<'_, '_, B>, fid: u32) -> Result<Reply, Errno> {
    let f = ctx.remove_fid(fid, Missing::Enoent)?;
    ctx.fs.release(f)?;
    Ok(Reply::Msg(Rmessage::Clunk))
}
