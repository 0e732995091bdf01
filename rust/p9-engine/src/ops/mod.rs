// SPDX-License-Identifier: GPL-2.0-or-later
//! Every operation: the bodies of 9p.c's `v9fs_*` request handlers, one
//! function per message, in files by family.
//!
//! Each handler takes the request's [`Ctx`], resolves its fids on the
//! calling thread, makes at most one offload holding every backend call
//! the request needs (9p.c makes one per `v9fs_co_*` call: Tlopen is
//! lstat, open and statfs, three hops), then updates the fid and encodes
//! the reply.  Errors are Linux errnos; the server turns them into
//! Rlerror/Rerror.  An unknown fid is `ENOENT` or `EINVAL` as 9p.c's
//! handler answers ([`Missing`]).

use p9_wire::errno::{Errno, EBADF};

use crate::backend::{Attr, Backend};
use crate::convert::{S_IFDIR, S_IFMT};
use crate::fs::{FidOf, HandleOf};
use crate::request::Session;
use crate::state::{Handle, OpenRef};

mod ctx;

pub(crate) mod attr;
pub(crate) mod dir;
pub(crate) mod entry;
pub(crate) mod fid;
pub(crate) mod io;
pub(crate) mod lock;
pub(crate) mod open;
pub(crate) mod walk;
pub(crate) mod xattr;

pub(crate) use ctx::{Ctx, Missing};

fn is_dir(attr: &Attr) -> bool {
    attr.mode & S_IFMT == S_IFDIR
}

/// The largest reply a bulk request (Tread, Treaddir) of `count` bytes
/// can have: the 11-byte header and the data, within msize.
fn bulk_size(session: Session, count: u32) -> usize {
    p9_wire::consts::RREAD_HEADER_SIZE + count.min(p9_wire::max_read_count(session.msize)) as usize
}

/// Run `op` in one offload on the open handle of fid `fid` (reopened if
/// reclaim closed it); `EBADF` if the fid is not open (9p.c: the backend
/// call on fd -1).  An unknown fid is `ENOENT`.
fn with_open_file<B: Backend, R: Send>(
    ctx: &Ctx<'_, '_, B>,
    fid: u32,
    op: impl FnOnce(&FidOf<B>, &Handle<B::Handle>) -> Result<R, Errno> + Send,
) -> Result<R, Errno> {
    let f = ctx.fid(fid, Missing::Enoent)?;
    let OpenRef {
        handle: h,
        flags,
        dir,
    } = f.handle().ok_or(EBADF)?;
    let node = f.node();
    let (fs, cancel) = (ctx.fs, ctx.cancel);
    ctx.offload(|| {
        let h: HandleOf<B> = fs.handle_or_reopen(cancel, &f, &node, h, flags, dir)?;
        op(&f, &h)
    })
}
