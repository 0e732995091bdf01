// SPDX-License-Identifier: GPL-2.0-or-later
//! Twalk.

use std::sync::Arc;

use p9_wire::consts::P9_MAXWELEM;
use p9_wire::errno::{Errno, EINVAL, EIO, ENOENT};
use p9_wire::{P9String, Qid};

use super::{Ctx, Missing};
use crate::backend::Backend;
use crate::request::Reply;
use crate::state::{Fid, FidState};

/// Twalk: from fid `fid` along `wnames` to `newfid` (which may be `fid`
/// itself).  A partial walk answers the qids reached and makes no fid.
pub(crate) fn walk<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    newfid: u32,
    wnames: &[P9String],
) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    let f = ctx.fid(fid, Missing::Enoent)?;
    if newfid != fid && fs.fids.contains(newfid) {
        return Err(EINVAL);
    }
    let node = f.node();
    // The names and the qids on the stack (a Twalk has at most
    // P9_MAXWELEM names; the decoder refuses more).
    let mut name_buf: [&[u8]; P9_MAXWELEM] = [&[]; P9_MAXWELEM];
    let names = name_buf.get_mut(..wnames.len()).ok_or(EINVAL)?;
    for (slot, w) in names.iter_mut().zip(wnames) {
        *slot = w.as_bytes();
    }
    let names = &*names;
    let steps = ctx.offload(|| {
        if names.is_empty() {
            let attr = fs.backend.getattr(&node)?;
            Ok(vec![(fs.backend.clone_node(&node)?, attr)])
        } else {
            fs.with_fd_retry(|| fs.backend.walk(&node, names))
        }
    })?;
    let mut qid_buf = [Qid::default(); P9_MAXWELEM];
    let mut nq = 0;
    let mut last = None;
    for (n, attr) in steps {
        match fs.qid(&attr) {
            Ok(q) => {
                if !names.is_empty() {
                    // A backend gives at most one step per name.
                    *qid_buf.get_mut(nq).ok_or(EIO)? = q;
                    nq += 1;
                }
                last = Some(n);
            }
            Err(e) if nq == 0 && !names.is_empty() => return Err(e),
            Err(e) if names.is_empty() => return Err(e),
            Err(_) => {
                last = None;
                break;
            }
        }
    }
    let qids = &qid_buf[..nq];
    let tag = ctx.tag;
    let rwalk = |ctx: &mut Ctx<'_, '_, B>| {
        ctx.encode_sized(p9_wire::rwalk_size(qids), |o| {
            p9_wire::encode_rwalk(tag, qids, o)
        })
        .map(Reply::Written)
    };
    if qids.len() < names.len() {
        // Partial walk: the qids reached, and newfid is not created.
        return rwalk(ctx);
    }
    let Some(last) = last else {
        return Err(ENOENT);
    };
    let last = Arc::new(last);
    if fid == newfid {
        if !f.state().is_none() {
            return Err(EINVAL);
        }
        f.set_node(last);
    } else {
        fs.insert_fid(newfid, false, || Fid::new(f.uid, last, FidState::None))?;
    }
    rwalk(ctx)
}
