// SPDX-License-Identifier: GPL-2.0-or-later
//! The dispatch: one line per message, after the two checks every
//! request shares (the rename lock of path-based backends, the read-only
//! export).  Tversion and Tflush are the server's own; every other
//! message is an operation in [`crate::ops`].

use p9_wire::errno::{Errno, EMSGSIZE, EOPNOTSUPP};
use p9_wire::{P9String, Proto, Rmessage, Tmessage};

use super::{Request, Server};
use crate::backend::Backend;
use crate::ops::{attr, dir, entry, fid, io, lock, open, walk, xattr, Ctx};
use crate::request::{Reply, Session};

impl<B: Backend> Server<B> {
    /// Run one decoded request.
    pub(super) fn dispatch(
        &self,
        ctx: &mut Ctx<'_, '_, B>,
        own: &Request,
        msg: Tmessage<'_>,
    ) -> Result<Reply, Errno> {
        // Path-based backends: renames exclude every other request that
        // uses nodes (9p.c's rename_lock); fd-based ones take nothing.
        let _read_guard = match msg {
            Tmessage::Version { .. }
            | Tmessage::Flush { .. }
            | Tmessage::Rename { .. }
            | Tmessage::Renameat { .. }
            | Tmessage::Wstat { .. } => None,
            _ => self.fs.paths_read(),
        };
        let _write_guard = match msg {
            Tmessage::Rename { .. } | Tmessage::Renameat { .. } | Tmessage::Wstat { .. } => {
                self.fs.paths_write()
            }
            _ => None,
        };
        if refused_when_readonly(&msg) {
            self.fs.check_writable()?;
        }
        #[rustfmt::skip]
        let reply = match msg {
            Tmessage::Version { msize, version } => self.version(msize, &version),
            Tmessage::Auth { .. } => Err(EOPNOTSUPP),
            Tmessage::Flush { .. } => self.flush(own),
            Tmessage::Attach { fid, aname, n_uname, .. } => fid::attach(ctx, fid, &aname, n_uname),
            Tmessage::Walk { fid, newfid, wnames } => walk::walk(ctx, fid, newfid, &wnames),
            Tmessage::Lopen { fid, flags } => open::lopen(ctx, fid, flags),
            Tmessage::Open { fid, mode } => open::open(ctx, fid, mode),
            Tmessage::Lcreate { fid, name, flags, mode, gid } => open::lcreate(ctx, fid, &name, flags, mode, gid),
            Tmessage::Create { fid, name, perm, mode, extension } => open::create(ctx, fid, &name, perm, mode, &extension),
            Tmessage::Symlink { fid, name, symtgt, gid } => entry::symlink(ctx, fid, &name, &symtgt, gid),
            Tmessage::Mknod { dfid, name, mode, major, minor, gid } => entry::mknod(ctx, dfid, &name, mode, major, minor, gid),
            Tmessage::Mkdir { dfid, name, mode, gid } => entry::mkdir(ctx, dfid, &name, mode, gid),
            Tmessage::Link { dfid, fid, name } => entry::link(ctx, dfid, fid, &name),
            Tmessage::Readlink { fid } => entry::readlink(ctx, fid),
            Tmessage::Rename { fid, dfid, name } => entry::rename(ctx, fid, dfid, &name),
            Tmessage::Renameat { olddirfid, oldname, newdirfid, newname } => entry::renameat(ctx, olddirfid, &oldname, newdirfid, &newname),
            Tmessage::Unlinkat { dirfid, name, flags } => entry::unlinkat(ctx, dirfid, &name, flags),
            Tmessage::Remove { fid } => entry::remove(ctx, fid),
            Tmessage::Getattr { fid, request_mask } => attr::getattr(ctx, fid, request_mask),
            Tmessage::Setattr { fid, attr } => attr::setattr(ctx, fid, &attr),
            Tmessage::Statfs { fid } => attr::statfs(ctx, fid),
            Tmessage::Stat { fid } => attr::stat(ctx, fid),
            Tmessage::Wstat { fid, stat } => attr::wstat(ctx, fid, stat),
            Tmessage::Fsync { fid, datasync } => io::fsync(ctx, fid, datasync),
            Tmessage::Lock { fid, lock } => lock::lock(ctx, fid, lock),
            Tmessage::Getlock { fid, lock } => lock::getlock(ctx, fid, lock),
            Tmessage::Xattrwalk { fid, newfid, name } => xattr::xattrwalk(ctx, fid, newfid, name),
            Tmessage::Xattrcreate { fid, name, attr_size, flags } => xattr::xattrcreate(ctx, fid, name, attr_size, flags),
            Tmessage::Readdir { fid, offset, count } => dir::readdir(ctx, fid, offset, count),
            Tmessage::Read { fid, offset, count } => io::read(ctx, fid, offset, count),
            Tmessage::Write { fid, offset, data } => io::write(ctx, fid, offset, data),
            Tmessage::Clunk { fid } => fid::clunk(ctx, fid),
        };
        reply
    }

    /// Tversion: clunk every fid and negotiate the dialect and msize.
    fn version(&self, msize: u32, version: &P9String) -> Result<Reply, Errno> {
        self.fs.clunk_all();
        let msize_max = self.fs.config.msize_max;
        let proto = match version.as_bytes() {
            b"9P2000.L" => Proto::DotL,
            b"9P2000.u" => Proto::DotU,
            _ => Proto::Unnegotiated,
        };
        let proto = match proto {
            p if self.fs.config.versions.allows(p) => p,
            _ => {
                // Reporting an unknown version has priority over msize.
                self.session.set(Session {
                    proto: Proto::Unnegotiated,
                    msize: msize_max,
                });
                return Ok(Reply::Msg(Rmessage::Version {
                    msize,
                    version: P9String::from("unknown"),
                }));
            }
        };
        if msize < p9_wire::consts::P9_MIN_MSIZE {
            self.session.set(Session {
                proto: Proto::Unnegotiated,
                msize: msize_max,
            });
            // The error in the dialect the client asked for (its parser
            // expects Rlerror for 9P2000.L), as 9p.c does.
            return Ok(Reply::Msg(Rmessage::error(proto, EMSGSIZE)));
        }
        let msize = msize.min(msize_max);
        self.session.set(Session { proto, msize });
        Ok(Reply::Msg(Rmessage::Version {
            msize,
            version: version.clone(),
        }))
    }

    /// Tflush: wait until the request it named when it arrived (already
    /// cancelled then) is finished (its reply pushed, or dropped).  That
    /// request arrived earlier, so no chain of Tflushes waits in a cycle.
    /// A Tflush named by a later Tflush waits and answers all the same.
    fn flush(&self, own: &Request) -> Result<Reply, Errno> {
        if let Some(target) = &own.target {
            target.done.wait_for(|d| d.done.then_some(()));
        }
        Ok(Reply::Msg(Rmessage::Flush))
    }
}

/// The changes a read-only export refuses with `EROFS` before anything
/// else, as 9p.c checks it first in their handlers.  Three check later,
/// after their fid: Tlopen/Topen (only when the flags would write),
/// Tremove (the fid is clunked first), Twstat ("change nothing" is an
/// fsync).
fn refused_when_readonly(msg: &Tmessage<'_>) -> bool {
    matches!(
        msg,
        Tmessage::Lcreate { .. }
            | Tmessage::Create { .. }
            | Tmessage::Symlink { .. }
            | Tmessage::Mknod { .. }
            | Tmessage::Mkdir { .. }
            | Tmessage::Link { .. }
            | Tmessage::Rename { .. }
            | Tmessage::Renameat { .. }
            | Tmessage::Unlinkat { .. }
            | Tmessage::Setattr { .. }
            | Tmessage::Xattrcreate { .. }
    )
}
