// SPDX-License-Identifier: GPL-2.0-or-later
//! Reading and writing: Tread, Twrite, Tfsync.  Tread and Twrite work in
//! the host's buffers, with no allocation for the usual few pieces.

use std::io::{IoSlice, IoSliceMut};

use p9_wire::errno::{Errno, EINTR, EINVAL, EIO, EMSGSIZE, ENOSPC, EOPNOTSUPP};
use p9_wire::{Proto, ReadReply, Rmessage, SgView};

use super::{bulk_size, dir, with_open_file, Ctx, Missing};
use crate::backend::{Backend, SetAttr};
use crate::convert::{S_IFMT, S_IFREG, S_ISGID, S_ISUID, S_IXGRP};
use crate::fs::{retry_eintr, Fs};
use crate::request::Reply;
use crate::state::{FidState, OpenRef};

/// I/O vectors kept on the stack up to this many pieces.
const IOV_INLINE: usize = 8;

/// The I/O vectors of a request's data: on the stack for the usual few
/// pieces (no allocation), on the heap beyond.
enum Iov<T> {
    Stack([T; IOV_INLINE], usize),
    Heap(Vec<T>),
}

impl<T> Iov<T> {
    /// The vectors `pieces` gives; `empty` fills the unused stack slots.
    fn new(mut pieces: impl Iterator<Item = T>, empty: impl Fn() -> T) -> Self {
        let mut stack: [T; IOV_INLINE] = std::array::from_fn(|_| empty());
        let mut n = 0;
        while let Some(p) = pieces.next() {
            if n == IOV_INLINE {
                let mut v: Vec<T> = stack.into_iter().collect();
                v.push(p);
                v.extend(pieces);
                return Iov::Heap(v);
            }
            stack[n] = p;
            n += 1;
        }
        Iov::Stack(stack, n)
    }

    fn as_mut_slice(&mut self) -> &mut [T] {
        match self {
            Iov::Stack(a, n) => &mut a[..*n],
            Iov::Heap(v) => v,
        }
    }
}

/// Tread: from an open file, an xattr fid, or (9P2000.u) a directory.
pub(crate) fn read<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    offset: u64,
    count: u32,
) -> Result<Reply, Errno> {
    let (fs, cancel, tag, session) = (ctx.fs, ctx.cancel, ctx.tag, ctx.session);
    // 9p.c v9fs_read: EINVAL for an unknown fid.
    let f = ctx.fid(fid, Missing::Einval)?;
    if matches!(&*f.state(), FidState::Xattr(_)) {
        // Getting the buffers may suspend (Xen waits for ring space),
        // and other requests on this home thread may need the fid's
        // state meanwhile: the state is locked only once they are
        // here.
        let out = ctx.out.get(bulk_size(session, count));
        let mut reply = ReadReply::new(out, tag, session.msize, count).map_err(|_| EMSGSIZE)?;
        let st = f.state();
        // Committed by a Tclunk meanwhile: no longer readable.
        let FidState::Xattr(x) = &*st else {
            return Err(EINVAL);
        };
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(x.value.len());
        let end = x.value.len().min(start + reply.capacity());
        let n = reply.data().write_at(0, &x.value[start..end]);
        drop(st);
        return reply.finish(n).map(Reply::Written).map_err(|_| EMSGSIZE);
    }
    let OpenRef {
        handle: h,
        flags,
        dir,
    } = f.handle().ok_or(EINVAL)?;
    let node = f.node();
    if dir {
        if session.proto != Proto::DotU {
            return Err(EOPNOTSUPP);
        }
        return dir::read_dir_dotu(ctx, &f, node, h, offset, count);
    }
    let size = bulk_size(session, count);
    ctx.throttle(false, size - p9_wire::consts::RREAD_HEADER_SIZE)?;
    let out = ctx.out.get(size);
    let mut reply = ReadReply::new(out, tag, session.msize, count).map_err(|_| EMSGSIZE)?;
    let n = {
        let mut data = reply.data();
        let mut iov = Iov::new(data.pieces_mut().map(IoSliceMut::new), || {
            IoSliceMut::new(&mut [])
        });
        let iov = iov.as_mut_slice();
        fs.offload(cancel, || {
            let h = fs.handle_or_reopen(cancel, &f, &node, h, flags, dir)?;
            if iov.iter().all(|s| s.is_empty()) {
                return Ok(0);
            }
            retry_eintr(cancel, || fs.backend.read(&h.h, offset, iov))
        })?
    };
    reply.finish(n).map(Reply::Written).map_err(|_| EMSGSIZE)
}

/// Twrite: to an open file, or into a Txattrcreate value.
pub(crate) fn write<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    offset: u64,
    data: SgView<'_>,
) -> Result<Reply, Errno> {
    let (fs, cancel) = (ctx.fs, ctx.cancel);
    // 9p.c v9fs_write: EINVAL for an unknown fid.
    let f = ctx.fid(fid, Missing::Einval)?;
    if let FidState::Xattr(x) = &mut *f.state() {
        // 9p.c v9fs_xattr_write: into the declared size, no further.
        if x.walk {
            return Err(EINVAL);
        }
        let len = x.value.len() as u64;
        if offset > len {
            return Err(ENOSPC);
        }
        let start = offset as usize;
        let n = (x.value.len() - start).min(data.len());
        let copied = data
            .slice(0, n)
            .map_or(0, |d| d.copy_to(&mut x.value[start..]));
        x.copied += copied as u64;
        return Ok(Reply::Msg(Rmessage::Write {
            count: copied as u32,
        }));
    }
    let OpenRef {
        handle: h,
        flags,
        dir,
    } = f.handle().ok_or(EINVAL)?;
    if dir {
        // 9p.c: only file and xattr fids take writes.
        return Err(EINVAL);
    }
    let node = f.node();
    let total = data.len();
    ctx.throttle(true, total)?;
    let uid = f.uid;
    let written = ctx.offload(|| {
        let h = fs.handle_or_reopen(cancel, &f, &node, h, flags, dir)?;
        if uid != 0 && fs.backend.clears_set_id_on_write() {
            clear_set_id(fs, &node, &h.h)?;
        }
        // Like 9p.c, keep writing until everything is written or the
        // backend makes no progress.
        let mut done = 0;
        loop {
            let rest = data.slice(done, total - done).ok_or(EIO)?;
            let mut iov = Iov::new(rest.pieces().map(IoSlice::new), || IoSlice::new(&[]));
            let iov = iov.as_mut_slice();
            let at = offset + done as u64;
            let n = match retry_eintr(cancel, || fs.backend.write(&h.h, at, iov)) {
                Ok(n) => n,
                // Cancelled: 9p.c drops the request, written or not.
                Err(e) if e == EINTR && cancel.is_set() => return Err(e),
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            done += n;
            if n == 0 || done >= total {
                break;
            }
        }
        Ok(done)
    })?;
    Ok(Reply::Msg(Rmessage::Write {
        count: written as u32,
    }))
}

/// Before a write by a user other than root: what the kernel does for
/// an unprivileged writer on a local file system (the backend writes
/// as a privileged process, so the host kernel would not), namely
/// clear the set-user-ID bit, and the set-group-ID bit when
/// group-execute is set, of a regular file.
fn clear_set_id<B: Backend>(fs: &Fs<B>, node: &B::Node, h: &B::Handle) -> Result<(), Errno> {
    const SGID_GX: u32 = S_ISGID | S_IXGRP;
    let mode = fs.backend.fstat(node, h)?.mode;
    if mode & S_IFMT != S_IFREG {
        return Ok(());
    }
    let mut clear = mode & S_ISUID;
    if mode & SGID_GX == SGID_GX {
        clear |= S_ISGID;
    }
    if clear == 0 {
        return Ok(());
    }
    // The whole mode, type bits included, as Linux's client sends it
    // in Tsetattr: the mapped models store it as given.
    let set = SetAttr {
        mode: Some(mode & !clear),
        ..SetAttr::default()
    };
    fs.backend.setattr(node, Some(h), &set)
}

/// Tfsync: the open file of `fid`.
pub(crate) fn fsync<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    datasync: u32,
) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    with_open_file(ctx, fid, |_, h| fs.backend.fsync(&h.h, datasync != 0))?;
    Ok(Reply::Msg(Rmessage::Fsync))
}
