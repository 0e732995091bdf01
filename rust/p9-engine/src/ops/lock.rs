// SPDX-License-Identifier: GPL-2.0-or-later
//! POSIX locks on open files: Tlock, Tgetlock.

use p9_wire::consts::{lock_status, lock_type};
use p9_wire::errno::Errno;
use p9_wire::{Flock, Getlock, Rmessage};

use super::{with_open_file, Ctx};
use crate::backend::{Backend, Lock, LockStatus};
use crate::request::Reply;

/// Tlock: take or release a lock on the open file of `fid`.
pub(crate) fn lock<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    lock: Flock,
) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    let l = backend_lock(lock.typ, lock.start, lock.length, lock.proc_id);
    let status = with_open_file(ctx, fid, |f, h| {
        // A lock pins the open file: reopening would lose it.
        if l.typ != lock_type::UNLCK {
            f.keep_open();
        }
        fs.backend.lock(&h.h, &l)
    })?;
    Ok(Reply::Msg(Rmessage::Lock {
        status: match status {
            LockStatus::Success => lock_status::SUCCESS,
            LockStatus::Blocked => lock_status::BLOCKED,
        },
    }))
}

/// Tgetlock: the lock that would conflict with `lock`, if any.
pub(crate) fn getlock<B: Backend>(
    ctx: &mut Ctx<'_, '_, B>,
    fid: u32,
    lock: Getlock,
) -> Result<Reply, Errno> {
    let fs = ctx.fs;
    let l = backend_lock(lock.typ, lock.start, lock.length, lock.proc_id);
    let found = with_open_file(ctx, fid, |_, h| fs.backend.getlock(&h.h, &l))?;
    let r = match found {
        Some(c) => Getlock {
            typ: c.typ,
            start: c.start,
            length: c.length,
            proc_id: c.proc_id,
            client_id: lock.client_id,
        },
        None => Getlock {
            typ: lock_type::UNLCK,
            ..lock
        },
    };
    Ok(Reply::Msg(Rmessage::Getlock(r)))
}

/// The backend's view of a wire lock (Tlock's or Tgetlock's).
fn backend_lock(typ: u8, start: u64, length: u64, proc_id: u32) -> Lock {
    Lock {
        typ,
        start,
        length,
        proc_id,
    }
}
