// SPDX-License-Identifier: GPL-2.0-or-later
//! Extended attributes: Txattrwalk (read one, or the list), Txattrcreate
//! (a value written through the fid, set when it is clunked).

use p9_wire::consts::XATTR_SIZE_MAX;
use p9_wire::errno::{Errno, E2BIG, EINVAL, ERANGE};
use p9_wire::{P9String, Rmessage};

use super::{Ctx, Missing};
use crate::backend::Backend;
use crate::request::Reply;
use crate::state::{Fid, FidState, Xattr, XattrSlot};

/// Txattrwalk: `newfid` holds the value of attribute `name` of the file
/// of `fid` (the list of names when `name` is empty).
pub(crate) fn xattrwalk<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    newfid: u32,
    name: P9String,
) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    let name = name.into_bytes();
    let f = ctx.fid(fid, Missing::Enoent)?;
    if fs.fids.contains(newfid) {
        return Err(EINVAL);
    }
    let node = f.node();
    let value = ctx.offload(|| {
        // The size may change between the two calls: retry on ERANGE.
        let read = |buf: &mut [u8]| {
            if name.is_empty() {
                fs.backend.listxattr(&node, buf)
            } else {
                fs.backend.getxattr(&node, &name, buf)
            }
        };
        let mut tries = 0;
        loop {
            let size = read(&mut [])?;
            if size as u64 > XATTR_SIZE_MAX {
                return Err(E2BIG);
            }
            let mut value = vec![0; size];
            if size == 0 {
                return Ok(value);
            }
            match read(&mut value) {
                Ok(n) => {
                    value.truncate(n);
                    return Ok(value);
                }
                Err(e) if e == ERANGE && tries < 3 => tries += 1,
                Err(e) => return Err(e),
            }
        }
    })?;
    let slot = XattrSlot::take(&fs.shared, fs.config.max_xattr)?;
    let size = value.len() as u64;
    let state = FidState::Xattr(Box::new(Xattr::new(true, name, 0, value, slot)));
    let node = f.node();
    fs.insert_fid(newfid, false, || Fid::new(f.uid, node, state))?;
    Ok(Reply::Msg(Rmessage::Xattrwalk { size }))
}

/// Txattrcreate: fid `fid` becomes a pending value of `attr_size` bytes
/// for attribute `name`.
pub(crate) fn xattrcreate<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    name: P9String,
    attr_size: u64,
    flags: u32,
) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    // 9p.c v9fs_xattrcreate: EINVAL for an unknown fid.
    let f = ctx.fid(fid, Missing::Einval)?;
    let mut st = f.state();
    if !st.is_none() {
        return Err(EINVAL);
    }
    let slot = XattrSlot::take(&fs.shared, fs.config.max_xattr)?;
    // attr_size <= XATTR_SIZE_MAX was checked by check_args.
    let size = usize::try_from(attr_size).map_err(|_| E2BIG)?;
    *st = FidState::Xattr(Box::new(Xattr::new(
        false,
        name.into_bytes(),
        flags,
        vec![0; size],
        slot,
    )));
    Ok(Reply::Msg(Rmessage::Xattrcreate))
}
