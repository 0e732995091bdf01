// SPDX-License-Identifier: GPL-2.0-or-later
//! The engine's attribute, time and lock types to and from this crate's:
//! what [`NativeBackend`](super::NativeBackend) passes across.

use std::os::fd::BorrowedFd;

use p9_engine::backend::{Attr, Result, SetAttr, SetTime as EngineSetTime, Time};
use p9_wire::consts::lock_type;

use crate::errno;
use crate::{chmod, chown, utimes, LockType, SetTime, Stat, Timespec};

/// The engine's time from the layer's.
fn time(t: Timespec) -> Time {
    Time {
        sec: t.sec,
        nsec: t.nsec,
    }
}

/// The engine's attributes from the layer's.
pub(super) fn attr_of(st: &Stat) -> Attr {
    Attr {
        dev: st.dev,
        ino: st.ino,
        mode: st.mode,
        uid: st.uid,
        gid: st.gid,
        nlink: st.nlink,
        rdev: st.rdev,
        size: st.size,
        blksize: st.blksize,
        blocks: st.blocks,
        atime: time(st.atime),
        mtime: time(st.mtime),
        ctime: time(st.ctime),
        btime: st.btime.map(time),
    }
}

/// The layer's time to set from the engine's.
fn set_time(t: EngineSetTime) -> SetTime {
    match t {
        EngineSetTime::Omit => SetTime::Omit,
        EngineSetTime::Now => SetTime::Now,
        EngineSetTime::At(t) => SetTime::At(Timespec {
            sec: t.sec,
            nsec: t.nsec,
        }),
    }
}

/// Owner, mode and times of `set` (in that order) on the file `fd` is a
/// descriptor of.
pub(super) fn set_attrs(fd: BorrowedFd<'_>, set: &SetAttr) -> crate::Result<()> {
    if set.uid.is_some() || set.gid.is_some() {
        chown(fd, set.uid, set.gid)?;
    }
    if let Some(mode) = set.mode {
        chmod(fd, mode)?;
    }
    if set.atime != EngineSetTime::Omit || set.mtime != EngineSetTime::Omit {
        utimes(fd, set_time(set.atime), set_time(set.mtime))?;
    }
    Ok(())
}

/// The layer's lock type for a 9P `P9_LOCK_TYPE_*`; `EINVAL` otherwise.
pub(super) fn lock_kind(typ: u8) -> Result<LockType> {
    match typ {
        lock_type::RDLCK => Ok(LockType::Read),
        lock_type::WRLCK => Ok(LockType::Write),
        lock_type::UNLCK => Ok(LockType::Unlock),
        _ => Err(errno::EINVAL),
    }
}
