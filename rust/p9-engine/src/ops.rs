// SPDX-License-Identifier: GPL-2.0-or-later
//! Every operation: the bodies of 9p.c's `v9fs_*` request handlers.
//!
//! Each handler resolves its fids on the calling thread, makes at most one
//! offload holding every backend call the request needs (9p.c makes one per
//! `v9fs_co_*` call: Tlopen is lstat + open + statfs, three hops), then
//! updates the fid and encodes the reply.  Errors are Linux errnos; the
//! caller turns them into Rlerror/Rerror.

use std::io::{IoSlice, IoSliceMut};
use std::sync::Arc;

use p9_wire::consts::{getattr, lock_status, lock_type, AT_REMOVEDIR, P9_MAXWELEM, XATTR_SIZE_MAX};
use p9_wire::errno::{
    Errno, E2BIG, EBADF, EINTR, EINVAL, EIO, EMSGSIZE, ENOENT, ENOTDIR, EOPNOTSUPP, ERANGE, EROFS,
};
use p9_wire::{
    Fit, Getlock, P9String, Proto, Qid, ReadReply, ReaddirReply, Rmessage, SgView, Stat,
    StatDirReply, Tmessage,
};

use crate::backend::{Attr, Backend, Cred, Lock, LockStatus, Renamed, SetAttr};
use crate::convert::{self, CreateKind, O_CREAT, O_EXCL, S_IFDIR, S_IFLNK, S_IFMT};
use crate::qid::MultiDevs;
use crate::server::{ReplyBuffers, Request, Server, Session};
use crate::state::{Fid, FidState, Handle, Open, OpenRef, Xattr, XattrSlot};

/// A fid of this server.
pub(crate) type FidOf<B> = Fid<<B as Backend>::Node, <B as Backend>::Handle>;
type NodeOf<B> = <B as Backend>::Node;
type HandleOf<B> = Arc<Handle<<B as Backend>::Handle>>;

/// The reply of one request: encoded by the caller, or already written
/// into the reply buffers (bulk replies).
// One per request, on the stack: boxing the message would cost an
// allocation per request.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Reply {
    Msg(Rmessage<'static>),
    Written(usize),
}

/// The largest reply a bulk request (Tread, Treaddir) of `count` bytes
/// can have: the 11-byte header and the data, within msize.
fn bulk_size(session: Session, count: u32) -> usize {
    p9_wire::consts::RREAD_HEADER_SIZE + count.min(p9_wire::max_read_count(session.msize)) as usize
}

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

fn is_dir(attr: &Attr) -> bool {
    attr.mode & S_IFMT == S_IFDIR
}

impl<B: Backend> Server<B> {
    /// Run one decoded request.
    pub(crate) fn dispatch(
        &self,
        tag: u16,
        req: &Request,
        session: Session,
        msg: Tmessage<'_>,
        out: &mut dyn ReplyBuffers<'_>,
    ) -> Result<Reply, Errno> {
        // Path-based backends: renames exclude every other request that
        // uses nodes (9p.c's rename_lock); fd-based ones take nothing.
        let _read_guard = match msg {
            Tmessage::Version { .. }
            | Tmessage::Flush { .. }
            | Tmessage::Rename { .. }
            | Tmessage::Renameat { .. }
            | Tmessage::Wstat { .. } => None,
            _ => self.paths_read(),
        };
        let _write_guard = match msg {
            Tmessage::Rename { .. } | Tmessage::Renameat { .. } | Tmessage::Wstat { .. } => {
                self.paths_write()
            }
            _ => None,
        };
        let m = |r: Rmessage<'static>| Ok(Reply::Msg(r));
        match msg {
            Tmessage::Version { msize, version } => self.version(msize, &version),
            Tmessage::Auth { .. } => Err(EOPNOTSUPP),
            Tmessage::Flush { .. } => {
                self.flush(req);
                m(Rmessage::Flush)
            }
            Tmessage::Attach {
                fid,
                aname,
                n_uname,
                ..
            } => self.attach(req, fid, &aname, n_uname),
            Tmessage::Walk {
                fid,
                newfid,
                wnames,
            } => self.walk(req, tag, session, fid, newfid, &wnames, out),
            Tmessage::Lopen { fid, flags } => {
                self.open(req, session, fid, convert::dotl_open_flags(flags), true)
            }
            Tmessage::Open { fid, mode } => {
                self.open(req, session, fid, convert::omode_flags(mode), false)
            }
            Tmessage::Lcreate {
                fid,
                name,
                flags,
                mode,
                gid,
            } => {
                let flags = convert::dotl_open_flags(flags) | O_CREAT;
                self.lcreate(req, session, fid, name.as_bytes(), flags, mode, gid)
            }
            Tmessage::Create {
                fid,
                name,
                perm,
                mode,
                extension,
            } => self.create(req, session, fid, name.as_bytes(), perm, mode, &extension),
            Tmessage::Symlink {
                fid,
                name,
                symtgt,
                gid,
            } => {
                self.check_writable()?;
                let dir = self.fids.get(fid).map_err(|_| EINVAL)?;
                let (dnode, cred) = (dir.node(), Cred { uid: dir.uid, gid });
                let attr = self.offload(req, || {
                    self.backend
                        .symlink(&dnode, name.as_bytes(), symtgt.as_bytes(), &cred)
                })?;
                m(Rmessage::Symlink {
                    qid: self.qid(&attr)?,
                })
            }
            Tmessage::Mknod {
                dfid,
                name,
                mode,
                major,
                minor,
                gid,
            } => {
                self.check_writable()?;
                let dir = self.fids.get(dfid)?;
                let (dnode, cred) = (dir.node(), Cred { uid: dir.uid, gid });
                let rdev = convert::makedev(major, minor);
                let attr = self.offload(req, || {
                    self.backend
                        .mknod(&dnode, name.as_bytes(), mode, rdev, &cred)
                })?;
                m(Rmessage::Mknod {
                    qid: self.qid(&attr)?,
                })
            }
            Tmessage::Mkdir {
                dfid,
                name,
                mode,
                gid,
            } => {
                self.check_writable()?;
                let dir = self.fids.get(dfid)?;
                let (dnode, cred) = (dir.node(), Cred { uid: dir.uid, gid });
                let attr = self.offload(req, || {
                    self.backend.mkdir(&dnode, name.as_bytes(), mode, &cred)
                })?;
                m(Rmessage::Mkdir {
                    qid: self.qid(&attr)?,
                })
            }
            Tmessage::Link { dfid, fid, name } => {
                self.check_writable()?;
                let dir = self.fids.get(dfid)?.node();
                let target = self.fids.get(fid)?.node();
                self.offload(req, || self.backend.link(&target, &dir, name.as_bytes()))?;
                m(Rmessage::Link)
            }
            Tmessage::Readlink { fid } => {
                let node = self.fids.get(fid)?.node();
                let target = self.offload(req, || self.backend.readlink(&node))?;
                m(Rmessage::Readlink {
                    target: P9String::new(target),
                })
            }
            Tmessage::Rename { fid, dfid, name } => {
                self.check_writable()?;
                let f = self.fids.get(fid)?;
                if !f.state().is_none() {
                    return Err(EINVAL);
                }
                let newdir = self.fids.get(dfid)?.node();
                self.rename_fid(req, &f, Some(newdir), name.as_bytes())?;
                m(Rmessage::Rename)
            }
            Tmessage::Renameat {
                olddirfid,
                oldname,
                newdirfid,
                newname,
            } => {
                self.check_writable()?;
                let olddir = self.fids.get(olddirfid)?.node();
                let newdir = self.fids.get(newdirfid)?.node();
                let (oldname, newname) = (oldname.as_bytes(), newname.as_bytes());
                self.offload(req, || {
                    self.backend.rename(&olddir, oldname, &newdir, newname)?;
                    self.fix_paths(&Renamed::At {
                        olddir: &olddir,
                        oldname,
                        newdir: &newdir,
                        newname,
                    });
                    Ok(())
                })?;
                m(Rmessage::Renameat)
            }
            Tmessage::Unlinkat {
                dirfid,
                name,
                flags,
            } => {
                self.check_writable()?;
                let dir = self.fids.get(dirfid).map_err(|_| EINVAL)?.node();
                let name = name.as_bytes();
                if self.backend.nodes_are_paths() {
                    // A fid open on this path could not be reopened.
                    self.fids.for_each(|_, f| {
                        if self.backend.is_entry(&f.peek_node(), &dir, name) {
                            f.keep_open();
                        }
                    });
                }
                self.offload(req, || {
                    self.backend.unlink(&dir, name, flags & AT_REMOVEDIR != 0)
                })?;
                m(Rmessage::Unlinkat)
            }
            Tmessage::Getattr { fid, request_mask } => {
                let f = self.fids.get(fid)?;
                let node = f.node();
                // 9p.c: fstat through the fid's open file or directory
                // (one reclaim closed is not reopened for this), else lstat.
                let handle = f.handle().and_then(|o| o.handle);
                let want_gen = request_mask & getattr::GEN != 0;
                let (attr, gen) = self.offload(req, || {
                    let attr = match &handle {
                        Some(h) => match self.backend.fstat(&node, &h.h) {
                            Err(e) if e == EBADF => self.backend.getattr(&node),
                            r => r,
                        },
                        None => self.backend.getattr(&node),
                    }?;
                    // 9p.c: st_gen only when asked; a failure just leaves
                    // P9_STATS_GEN out.
                    let gen = want_gen
                        .then(|| self.backend.generation(&node, &attr).ok())
                        .flatten();
                    Ok((attr, gen))
                })?;
                let qid = self.qid(&attr)?;
                let mut st = convert::getattr_of(&attr, qid, gen);
                // 9p.c reports the I/O size a client should use here.
                st.blksize = convert::dotl_blksize(session.msize, attr.blksize);
                // Encoded here: the reply is large, and moving it out
                // through the callers costs more than the encoding.
                self.encode_reply(tag, session, &Rmessage::Getattr(st), out)
                    .map(Reply::Written)
            }
            Tmessage::Setattr { fid, attr } => {
                self.check_writable()?;
                let f = self.fids.get(fid).map_err(|_| EINVAL)?;
                let node = f.node();
                let handle = f.handle().and_then(|o| o.handle);
                let mut set = convert::setattr_from_wire(&attr);
                if convert::setattr_ctime_only(&attr) {
                    // 9p.c: chown(-1, -1), which changes nothing but ctime.
                    set.uid = Some(u32::MAX);
                    set.gid = Some(u32::MAX);
                }
                self.offload(req, || {
                    self.backend
                        .setattr(&node, handle.as_deref().map(|h| &h.h), &set)
                })?;
                m(Rmessage::Setattr)
            }
            Tmessage::Statfs { fid } => {
                let node = self.fids.get(fid)?.node();
                let st = self.offload(req, || self.backend.statfs(&node))?;
                m(Rmessage::Statfs(scale_statfs(st, session.msize)))
            }
            Tmessage::Fsync { fid, datasync } => {
                self.with_open_file(req, fid, |_, h| self.backend.fsync(&h.h, datasync != 0))?;
                m(Rmessage::Fsync)
            }
            Tmessage::Lock { fid, lock } => {
                let l = Lock {
                    typ: lock.typ,
                    start: lock.start,
                    length: lock.length,
                    proc_id: lock.proc_id,
                };
                let status = self.with_open_file(req, fid, |f, h| {
                    // A lock pins the open file: reopening would lose it.
                    if l.typ != lock_type::UNLCK {
                        f.keep_open();
                    }
                    self.backend.lock(&h.h, &l)
                })?;
                m(Rmessage::Lock {
                    status: match status {
                        LockStatus::Success => lock_status::SUCCESS,
                        LockStatus::Blocked => lock_status::BLOCKED,
                    },
                })
            }
            Tmessage::Getlock { fid, lock } => {
                let l = Lock {
                    typ: lock.typ,
                    start: lock.start,
                    length: lock.length,
                    proc_id: lock.proc_id,
                };
                let found = self.with_open_file(req, fid, |_, h| self.backend.getlock(&h.h, &l))?;
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
                m(Rmessage::Getlock(r))
            }
            Tmessage::Xattrwalk { fid, newfid, name } => {
                self.xattrwalk(req, fid, newfid, name.into_bytes())
            }
            Tmessage::Xattrcreate {
                fid,
                name,
                attr_size,
                flags,
            } => {
                self.check_writable()?;
                // 9p.c answers an unknown fid here with EINVAL.
                let f = self.fids.get(fid).map_err(|_| EINVAL)?;
                let mut st = f.state();
                if !st.is_none() {
                    return Err(EINVAL);
                }
                let slot = XattrSlot::take(&self.shared, self.config.max_xattr)?;
                // attr_size <= XATTR_SIZE_MAX was checked by check_args.
                let size = usize::try_from(attr_size).map_err(|_| E2BIG)?;
                *st = FidState::Xattr(Box::new(Xattr::new(
                    false,
                    name.into_bytes(),
                    flags,
                    vec![0; size],
                    slot,
                )));
                m(Rmessage::Xattrcreate)
            }
            Tmessage::Readdir { fid, offset, count } => {
                self.readdir(req, session, tag, fid, offset, count, out)
            }
            Tmessage::Read { fid, offset, count } => {
                self.read(req, session, tag, fid, offset, count, out)
            }
            Tmessage::Write { fid, offset, data } => self.write(req, fid, offset, data, out),
            Tmessage::Clunk { fid } => {
                let f = self.fids.remove(fid)?;
                self.fids_removed();
                self.release(f)?;
                m(Rmessage::Clunk)
            }
            Tmessage::Remove { fid } => {
                // 9p.c: an unknown fid is EINVAL here, and the fid is
                // clunked whether or not the removal works.
                let f = self.fids.remove(fid).map_err(|_| EINVAL)?;
                self.fids_removed();
                self.check_writable()?;
                let node = f.node();
                self.offload(req, || {
                    let r = self.backend.remove(&node);
                    self.release_now(f).and(r)
                })?;
                m(Rmessage::Remove)
            }
            Tmessage::Stat { fid } => {
                let node = self.fids.get(fid)?.node();
                let (attr, ext, name) = self.offload(req, || {
                    let attr = self.backend.getattr(&node)?;
                    let ext = self.extension(&node, &attr)?;
                    let name = self.backend.name(&node).unwrap_or_default();
                    Ok((attr, ext, name))
                })?;
                let stat = convert::stat_of(&attr, self.qid(&attr)?, &name, &ext);
                m(Rmessage::Stat { stat })
            }
            Tmessage::Wstat { fid, stat } => self.wstat(req, fid, stat),
        }
    }

    /// Before a write by a user other than root: what the kernel does for
    /// an unprivileged writer on a local file system (the backend writes
    /// as a privileged process, so the host kernel would not), namely
    /// clear the set-user-ID bit, and the set-group-ID bit when
    /// group-execute is set, of a regular file.
    fn clear_set_id(&self, node: &B::Node, h: &B::Handle) -> Result<(), Errno> {
        const SUID: u32 = convert::S_ISUID;
        const SGID_GX: u32 = convert::S_ISGID | convert::S_IXGRP;
        let mode = self.backend.fstat(node, h)?.mode;
        if mode & S_IFMT != convert::S_IFREG {
            return Ok(());
        }
        let mut clear = mode & SUID;
        if mode & SGID_GX == SGID_GX {
            clear |= convert::S_ISGID;
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
        self.backend.setattr(node, Some(h), &set)
    }

    fn check_writable(&self) -> Result<(), Errno> {
        if self.config.readonly {
            Err(EROFS)
        } else {
            Ok(())
        }
    }

    /// The qid of a file with attributes `attr`.
    pub(crate) fn qid(&self, attr: &Attr) -> Result<Qid, Errno> {
        self.qids.get().ok_or(EIO)?.qid(&attr.file_id())
    }

    fn version(&self, msize: u32, version: &P9String) -> Result<Reply, Errno> {
        self.clunk_all();
        let proto = match version.as_bytes() {
            b"9P2000.L" => Proto::DotL,
            b"9P2000.u" => Proto::DotU,
            _ => Proto::Unnegotiated,
        };
        let proto = match proto {
            p if self.config.versions.allows(p) => p,
            _ => {
                // Reporting an unknown version has priority over msize.
                self.set_session(Session {
                    proto: Proto::Unnegotiated,
                    msize: self.config.msize_max,
                });
                return Ok(Reply::Msg(Rmessage::Version {
                    msize,
                    version: P9String::from("unknown"),
                }));
            }
        };
        if msize < p9_wire::consts::P9_MIN_MSIZE {
            self.set_session(Session {
                proto: Proto::Unnegotiated,
                msize: self.config.msize_max,
            });
            // The error in the dialect the client asked for (its parser
            // expects Rlerror for 9P2000.L), as 9p.c does.
            return Ok(Reply::Msg(Rmessage::error(proto, EMSGSIZE)));
        }
        let msize = msize.min(self.config.msize_max);
        self.set_session(Session { proto, msize });
        Ok(Reply::Msg(Rmessage::Version {
            msize,
            version: version.clone(),
        }))
    }

    /// Drop every fid (Tversion, [`Server::reset`]), committing pending
    /// xattr writes as 9p.c's `free_fid` does; the closes run on a worker.
    pub(crate) fn clunk_all(&self) {
        let fids = self.fids.clear();
        self.fids_removed();
        if fids.is_empty() {
            return;
        }
        self.offload_uncancellable(|| {
            for f in fids {
                let _ = self.release_now(f);
            }
        });
    }

    fn attach(&self, req: &Request, fid: u32, aname: &P9String, uid: u32) -> Result<Reply, Errno> {
        if self.fids.contains(fid) {
            return Err(EINVAL);
        }
        let cred = Cred { uid, gid: u32::MAX };
        // 9p.c answers any failure to reach the root with EINVAL.
        let (node, attr) = self
            .offload(req, || self.backend.attach(aname.as_bytes(), &cred))
            .map_err(|e| {
                if e == p9_wire::errno::EINTR {
                    e
                } else {
                    EINVAL
                }
            })?;
        self.qids
            .get_or_init(|| crate::qid::QidMap::new(self.config.multidevs, attr.dev));
        let qid = self.qid(&attr).map_err(|_| EINVAL)?;
        self.insert_fid(fid, true, || Fid::new(uid, Arc::new(node), FidState::None))?;
        Ok(Reply::Msg(Rmessage::Attach { qid }))
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        req: &Request,
        tag: u16,
        session: Session,
        fid: u32,
        newfid: u32,
        wnames: &[P9String],
        out: &mut dyn ReplyBuffers<'_>,
    ) -> Result<Reply, Errno> {
        let f = self.fids.get(fid)?;
        if newfid != fid && self.fids.contains(newfid) {
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
        let steps = self.offload(req, || {
            if names.is_empty() {
                let attr = self.backend.getattr(&node)?;
                Ok(vec![(self.backend.clone_node(&node)?, attr)])
            } else {
                self.with_fd_retry(|| self.backend.walk(&node, names))
            }
        })?;
        let mut qid_buf = [Qid::default(); P9_MAXWELEM];
        let mut nq = 0;
        let mut last = None;
        for (n, attr) in steps {
            match self.qid(&attr) {
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
        let rwalk = |out: &mut dyn ReplyBuffers<'_>| {
            self.encode_sized(session, p9_wire::rwalk_size(qids), out, |o| {
                p9_wire::encode_rwalk(tag, qids, o)
            })
            .map(Reply::Written)
        };
        if qids.len() < names.len() {
            // Partial walk: the qids reached, and newfid is not created.
            return rwalk(out);
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
            self.insert_fid(newfid, false, || Fid::new(f.uid, last, FidState::None))?;
        }
        rwalk(out)
    }

    /// Tlopen / Topen.
    fn open(
        &self,
        req: &Request,
        session: Session,
        fid: u32,
        flags: i32,
        dotl: bool,
    ) -> Result<Reply, Errno> {
        let f = self.fids.get(fid)?;
        if !f.state().is_none() {
            return Err(EINVAL);
        }
        if self.config.readonly && convert::open_flags_write(flags) {
            return Err(EROFS);
        }
        let node = f.node();
        let (attr, handle, iounit) = self.offload(req, || {
            let attr = self.backend.getattr(&node)?;
            let r = if is_dir(&attr) {
                let h = self.with_fd_retry(|| self.backend.opendir(&node))?;
                (attr, h, 0)
            } else {
                let h = self.with_fd_retry(|| self.backend.open(&node, flags))?;
                (attr, h, self.iounit(&node, session))
            };
            self.reclaim_if_over();
            Ok(r)
        })?;
        let qid = self.qid(&attr)?;
        let handle = Handle::new(handle, &self.shared);
        self.install_open(&f, handle, flags, is_dir(&attr))?;
        Ok(Reply::Msg(if dotl {
            Rmessage::Lopen { qid, iounit }
        } else {
            Rmessage::Open { qid, iounit }
        }))
    }

    /// Make `f` an open file or directory, unless another request opened
    /// it meanwhile (`EINVAL`, as 9p.c's "already open" check).
    fn install_open(
        &self,
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
            flags: flags & !(O_CREAT | O_EXCL | convert::O_TRUNC),
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
    fn iounit(&self, node: &NodeOf<B>, session: Session) -> u32 {
        let room = session.msize.saturating_sub(p9_wire::consts::P9_IOHDRSZ);
        let bsize = self.backend.statfs(node).map(|s| s.bsize).unwrap_or(0);
        match bsize {
            0 => room,
            b => match room - room % b {
                0 => room,
                n => n,
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn lcreate(
        &self,
        req: &Request,
        session: Session,
        fid: u32,
        name: &[u8],
        flags: i32,
        mode: u32,
        gid: u32,
    ) -> Result<Reply, Errno> {
        self.check_writable()?;
        let f = self.fids.get(fid)?;
        if !f.state().is_none() {
            return Err(EINVAL);
        }
        let dir = f.node();
        let cred = Cred { uid: f.uid, gid };
        let (node, handle, attr, iounit) = self.offload(req, || {
            let (node, handle, attr) =
                self.with_fd_retry(|| self.backend.create(&dir, name, flags, mode, &cred))?;
            let iounit = self.iounit(&node, session);
            self.reclaim_if_over();
            Ok((node, handle, attr, iounit))
        })?;
        let qid = self.qid(&attr)?;
        self.install_open(&f, Handle::new(handle, &self.shared), flags, false)?;
        f.set_node(Arc::new(node));
        Ok(Reply::Msg(Rmessage::Lcreate { qid, iounit }))
    }

    /// 9P2000.u Tcreate: a file, directory, symlink, hard link or special
    /// file, chosen by the permission bits; the fid becomes the new file.
    #[allow(clippy::too_many_arguments)]
    fn create(
        &self,
        req: &Request,
        session: Session,
        fid: u32,
        name: &[u8],
        perm: u32,
        omode: u8,
        extension: &P9String,
    ) -> Result<Reply, Errno> {
        self.check_writable()?;
        let f = self.fids.get(fid).map_err(|_| EINVAL)?;
        if !f.state().is_none() {
            return Err(EINVAL);
        }
        let kind = convert::create_kind(perm, extension.as_bytes())?;
        let link_target = match &kind {
            CreateKind::Link(target) => Some(self.fids.get(*target).map_err(|_| EINVAL)?.node()),
            _ => None,
        };
        let dir = f.node();
        let cred = Cred {
            uid: f.uid,
            gid: u32::MAX,
        };
        let flags = convert::omode_flags(omode) | O_CREAT;
        let perm_bits = convert::create_mode(perm, &kind);
        let (node, handle, attr, iounit) = self.offload(req, || {
            let file =
                match &kind {
                    CreateKind::File => Some(self.with_fd_retry(|| {
                        self.backend.create(&dir, name, flags, perm_bits, &cred)
                    })?),
                    CreateKind::Dir => {
                        self.backend.mkdir(&dir, name, perm_bits, &cred)?;
                        None
                    }
                    CreateKind::Symlink(target) => {
                        self.backend.symlink(&dir, name, target, &cred)?;
                        None
                    }
                    CreateKind::Link(_) => {
                        let target = link_target.as_deref().ok_or(EINVAL)?;
                        self.backend.link(target, &dir, name)?;
                        None
                    }
                    CreateKind::Device { mode, rdev } => {
                        self.backend.mknod(&dir, name, *mode, *rdev, &cred)?;
                        None
                    }
                    CreateKind::Fifo | CreateKind::Socket => {
                        self.backend.mknod(&dir, name, perm_bits, 0, &cred)?;
                        None
                    }
                };
            let created = match file {
                Some((node, h, attr)) => (node, Some(h), attr),
                // Anything but a file: reach the new entry; a directory is
                // opened, as 9p.c does.
                None => {
                    let (node, attr) = self.backend.walk(&dir, &[name])?.pop().ok_or(ENOENT)?;
                    let h = if is_dir(&attr) {
                        Some(self.with_fd_retry(|| self.backend.opendir(&node))?)
                    } else {
                        None
                    };
                    (node, h, attr)
                }
            };
            let iounit = self.iounit(&created.0, session);
            self.reclaim_if_over();
            Ok((created.0, created.1, created.2, iounit))
        })?;
        let qid = self.qid(&attr)?;
        if let Some(h) = handle {
            self.install_open(&f, Handle::new(h, &self.shared), flags, is_dir(&attr))?;
        }
        f.set_node(Arc::new(node));
        Ok(Reply::Msg(Rmessage::Create { qid, iounit }))
    }

    /// Rename the file of fid `f` (Trename, Twstat); path-based backends
    /// then fix every fid under it.  Called under the rename lock.
    fn rename_fid(
        &self,
        req: &Request,
        f: &FidOf<B>,
        newdir: Option<Arc<NodeOf<B>>>,
        newname: &[u8],
    ) -> Result<(), Errno> {
        let old = f.node();
        let new = self.offload(req, || {
            let new = Arc::new(self.backend.rename_node(&old, newdir.as_deref(), newname)?);
            self.fix_paths(&Renamed::Node {
                old: &old,
                new: &new,
            });
            Ok(new)
        })?;
        f.set_node(new);
        Ok(())
    }

    /// After a rename, on the worker: let the backend move every fid at or
    /// under the renamed entry (9p.c `v9fs_fix_path` on every fid; under
    /// the rename lock for path-based backends).
    fn fix_paths(&self, how: &Renamed<'_, NodeOf<B>>) {
        self.fids.for_each(|_, f| {
            if let Some(n) = self.backend.renamed(&f.peek_node(), how) {
                f.set_node(Arc::new(n));
            }
        });
    }

    fn xattrwalk(
        &self,
        req: &Request,
        fid: u32,
        newfid: u32,
        name: Vec<u8>,
    ) -> Result<Reply, Errno> {
        let f = self.fids.get(fid)?;
        if self.fids.contains(newfid) {
            return Err(EINVAL);
        }
        let node = f.node();
        let value = self.offload(req, || {
            // The size may change between the two calls: retry on ERANGE.
            let read = |buf: &mut [u8]| {
                if name.is_empty() {
                    self.backend.listxattr(&node, buf)
                } else {
                    self.backend.getxattr(&node, &name, buf)
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
        let slot = XattrSlot::take(&self.shared, self.config.max_xattr)?;
        let size = value.len() as u64;
        let state = FidState::Xattr(Box::new(Xattr::new(true, name, 0, value, slot)));
        let node = f.node();
        self.insert_fid(newfid, false, || Fid::new(f.uid, node, state))?;
        Ok(Reply::Msg(Rmessage::Xattrwalk { size }))
    }

    #[allow(clippy::too_many_arguments)]
    fn readdir(
        &self,
        req: &Request,
        session: Session,
        tag: u16,
        fid: u32,
        offset: u64,
        count: u32,
        out: &mut dyn ReplyBuffers<'_>,
    ) -> Result<Reply, Errno> {
        let f = self.fids.get(fid).map_err(|_| EINVAL)?;
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
        let out = out.get(bulk_size(session, count));
        let mut reply = ReaddirReply::new(out, tag, session.msize, count).map_err(|_| EMSGSIZE)?;
        let remap = self.config.multidevs == MultiDevs::Remap;
        self.offload(req, || {
            let h = self.handle_or_reopen(req, &f, &node, h, flags, dir)?;
            let mut failed = None;
            self.backend.readdir(&node, &h.h, offset, remap, &mut |e| {
                let qid = match (remap, e.attr) {
                    (true, Some(attr)) => match self.qid(&attr) {
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

    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        req: &Request,
        session: Session,
        tag: u16,
        fid: u32,
        offset: u64,
        count: u32,
        out: &mut dyn ReplyBuffers<'_>,
    ) -> Result<Reply, Errno> {
        let f = self.fids.get(fid).map_err(|_| EINVAL)?;
        if matches!(&*f.state(), FidState::Xattr(_)) {
            // Getting the buffers may suspend (Xen waits for ring space),
            // and other requests on this home thread may need the fid's
            // state meanwhile: the state is locked only once they are
            // here.
            let out = out.get(bulk_size(session, count));
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
            return self.read_dir_dotu(req, session, tag, &f, node, h, offset, count, out);
        }
        let size = bulk_size(session, count);
        throttle(req, out, false, size - p9_wire::consts::RREAD_HEADER_SIZE)?;
        let out = out.get(size);
        let mut reply = ReadReply::new(out, tag, session.msize, count).map_err(|_| EMSGSIZE)?;
        let n = {
            let mut data = reply.data();
            let mut iov = Iov::new(data.pieces_mut().map(IoSliceMut::new), || {
                IoSliceMut::new(&mut [])
            });
            let iov = iov.as_mut_slice();
            self.offload(req, || {
                let h = self.handle_or_reopen(req, &f, &node, h, flags, dir)?;
                if iov.iter().all(|s| s.is_empty()) {
                    return Ok(0);
                }
                retry_eintr(req, || self.backend.read(&h.h, offset, iov))
            })?
        };
        reply.finish(n).map(Reply::Written).map_err(|_| EMSGSIZE)
    }

    /// 9P2000.u Tread on a directory: stat structures from where the last
    /// read stopped (offset 0 rewinds), as many as fit (9p.c
    /// `v9fs_do_readdir_with_stat`), in one offload.
    #[allow(clippy::too_many_arguments)]
    fn read_dir_dotu(
        &self,
        req: &Request,
        session: Session,
        tag: u16,
        f: &FidOf<B>,
        node: Arc<NodeOf<B>>,
        h: Option<HandleOf<B>>,
        offset: u64,
        count: u32,
        out: &mut dyn ReplyBuffers<'_>,
    ) -> Result<Reply, Errno> {
        let pos = match &*f.state() {
            FidState::Dir(_, pos) if offset != 0 => *pos,
            _ => 0,
        };
        let out = out.get(bulk_size(session, count));
        let mut reply = StatDirReply::new(out, tag, session.msize, count).map_err(|_| EMSGSIZE)?;
        let cap = reply.capacity();
        let next = self.offload(req, || {
            let h = self.handle_or_reopen(req, f, &node, h, 0, true)?;
            // Collect what can fit, then stat each (symlink targets need
            // calls of their own, outside the backend's readdir).
            let mut entries: Vec<(Vec<u8>, Attr, u64)> = Vec::new();
            let mut room = cap;
            self.backend.readdir(&node, &h.h, pos, true, &mut |e| {
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
                    let child = self.backend.walk(&node, &[&name])?.pop().ok_or(ENOENT)?;
                    self.backend.readlink(&child.0)?
                } else {
                    convert::stat_extension(&attr)
                };
                let qid = self.qid(&attr)?;
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

    fn write(
        &self,
        req: &Request,
        fid: u32,
        offset: u64,
        data: SgView<'_>,
        out: &mut dyn ReplyBuffers<'_>,
    ) -> Result<Reply, Errno> {
        let f = self.fids.get(fid).map_err(|_| EINVAL)?;
        if let FidState::Xattr(x) = &mut *f.state() {
            // 9p.c v9fs_xattr_write: into the declared size, no further.
            if x.walk {
                return Err(EINVAL);
            }
            let len = x.value.len() as u64;
            if offset > len {
                return Err(p9_wire::errno::ENOSPC);
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
        throttle(req, out, true, total)?;
        let uid = f.uid;
        let written = self.offload(req, || {
            let h = self.handle_or_reopen(req, &f, &node, h, flags, dir)?;
            if uid != 0 && self.backend.clears_set_id_on_write() {
                self.clear_set_id(&node, &h.h)?;
            }
            // Like 9p.c, keep writing until everything is written or the
            // backend makes no progress.
            let mut done = 0;
            loop {
                let rest = data.slice(done, total - done).ok_or(EIO)?;
                let mut iov = Iov::new(rest.pieces().map(IoSlice::new), || IoSlice::new(&[]));
                let iov = iov.as_mut_slice();
                let at = offset + done as u64;
                let n = match retry_eintr(req, || self.backend.write(&h.h, at, iov)) {
                    Ok(n) => n,
                    // Cancelled: 9p.c drops the request, written or not.
                    Err(e) if e == EINTR && req.is_cancelled() => return Err(e),
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

    /// 9P2000.u Twstat (9p.c `v9fs_wstat`).
    fn wstat(&self, req: &Request, fid: u32, stat: Stat) -> Result<Reply, Errno> {
        let f = self.fids.get(fid).map_err(|_| EINVAL)?;
        if stat.is_dont_touch() {
            // "Change nothing" means fsync (EBADF when the fid is not open).
            self.with_open_file(req, fid, |_, h| self.backend.fsync(&h.h, false))?;
            return Ok(Reply::Msg(Rmessage::Wstat));
        }
        self.check_writable()?;
        let node = f.node();
        // The open file, so that open-but-unlinked files can be changed.
        let handle = f.handle().and_then(|o| o.handle);
        let renamed = self.offload(req, || {
            let attr = self.backend.getattr(&node)?;
            let changes = convert::wstat_changes(&stat, attr.mode)?;
            self.backend
                .setattr(&node, handle.as_deref().map(|h| &h.h), &changes.set)?;
            let renamed = match changes.rename_to {
                Some(name) => {
                    let new = Arc::new(self.backend.rename_node(&node, None, &name)?);
                    self.fix_paths(&Renamed::Node {
                        old: &node,
                        new: &new,
                    });
                    Some(new)
                }
                None => None,
            };
            // 9p.c truncates last, after the rename.
            if let Some(size) = changes.truncate {
                let set = crate::backend::SetAttr {
                    size: Some(size),
                    ..Default::default()
                };
                let target = renamed.as_deref().unwrap_or(&node);
                self.backend
                    .setattr(target, handle.as_deref().map(|h| &h.h), &set)?;
            }
            Ok(renamed)
        })?;
        if let Some(new) = renamed {
            f.set_node(new);
        }
        Ok(Reply::Msg(Rmessage::Wstat))
    }

    /// 9P2000.u stat extension: symlink target, device text, or empty.
    /// Runs on the worker.
    fn extension(&self, node: &NodeOf<B>, attr: &Attr) -> Result<Vec<u8>, Errno> {
        if attr.mode & S_IFMT == S_IFLNK {
            self.backend.readlink(node)
        } else {
            Ok(convert::stat_extension(attr))
        }
    }

    /// Run `op` in one offload on the open handle of fid `fid` (reopened
    /// if reclaim closed it); `EBADF` if the fid is not open (9p.c: the
    /// backend call on fd -1).
    fn with_open_file<R: Send>(
        &self,
        req: &Request,
        fid: u32,
        op: impl FnOnce(&FidOf<B>, &Handle<B::Handle>) -> Result<R, Errno> + Send,
    ) -> Result<R, Errno> {
        let f = self.fids.get(fid)?;
        let OpenRef {
            handle: h,
            flags,
            dir,
        } = f.handle().ok_or(EBADF)?;
        let node = f.node();
        self.offload(req, || {
            let h = self.handle_or_reopen(req, &f, &node, h, flags, dir)?;
            op(&f, &h)
        })
    }

    /// The open handle of `f`, reopened if reclaim closed it (retried while
    /// it fails with `EINTR` and the request is not cancelled, as 9p.c's
    /// `v9fs_reopen_fid`).  Runs on the worker, inside the request's
    /// offload.
    fn handle_or_reopen(
        &self,
        req: &Request,
        f: &FidOf<B>,
        node: &NodeOf<B>,
        h: Option<HandleOf<B>>,
        flags: i32,
        dir: bool,
    ) -> Result<HandleOf<B>, Errno> {
        if let Some(h) = h {
            return Ok(h);
        }
        let h = self.with_fd_retry(|| {
            retry_eintr(req, || {
                if dir {
                    self.backend.opendir(node)
                } else {
                    self.backend.open(node, flags)
                }
            })
        })?;
        let h = f.reopened(Handle::new(h, &self.shared));
        self.reclaim_if_over();
        Ok(h)
    }

    /// Tclunk: commit a pending xattr write, and close what the fid holds
    /// if this was its last user, on a worker.  Nothing to do, no offload.
    fn release(&self, f: Arc<FidOf<B>>) -> Result<(), Errno> {
        let pending_xattr = matches!(&*f.state(), FidState::Xattr(x) if !x.walk);
        let holds_handle = f.handle().is_some_and(|o| o.handle.is_some());
        let last_holder = holds_handle && Arc::strong_count(&f) == 1;
        if !pending_xattr && !last_holder {
            return Ok(());
        }
        self.offload_uncancellable(|| self.release_now(f))
    }

    /// Commit a pending xattr write of `f` and drop it.  Runs on the worker.
    fn release_now(&self, f: Arc<FidOf<B>>) -> Result<(), Errno> {
        let state = std::mem::replace(&mut *f.state(), FidState::None);
        let r = match state {
            FidState::Xattr(x) if !x.walk => {
                if x.copied != x.value.len() as u64 {
                    // Clunk after a partial write.
                    Err(EINVAL)
                } else if x.value.is_empty() {
                    self.backend.removexattr(&f.node(), &x.name)
                } else {
                    self.backend.setxattr(&f.node(), &x.name, &x.value, x.flags)
                }
            }
            // Handles close here, on the worker, if this is the last use.
            other => {
                drop(other);
                Ok(())
            }
        };
        drop(f);
        r
    }

    /// Run `f`; if it fails for lack of file descriptors, reclaim idle
    /// handles and try once more.  Runs on the worker.
    pub(crate) fn with_fd_retry<T>(
        &self,
        mut f: impl FnMut() -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        match f() {
            Err(e) if e == p9_wire::errno::EMFILE || e == p9_wire::errno::ENFILE => {
                if self.reclaim(self.open_rc) > 0 {
                    f()
                } else {
                    Err(e)
                }
            }
            r => r,
        }
    }
}

/// The host's throttle before a file read or write (cofile.c: after the
/// cancellation check, before the backend call); `EINTR` if the request
/// is cancelled already.  Called in the request's coroutine or thread,
/// with no lock held.
fn throttle(
    req: &Request,
    out: &mut dyn ReplyBuffers<'_>,
    write: bool,
    bytes: usize,
) -> Result<(), Errno> {
    if req.is_cancelled() {
        return Err(EINTR);
    }
    out.throttle(write, bytes);
    Ok(())
}

/// 9p.c's `do { ... } while (err == -EINTR && !pdu->cancelled)` around
/// reads, writes and reopens: run `f` again while it fails with `EINTR`
/// and `req` is not cancelled, yielding the CPU between tries.  A
/// cancelled request ends with the `EINTR` (and, being cancelled, sends no
/// reply).  Runs on the worker.
fn retry_eintr<T>(req: &Request, mut f: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    loop {
        match f() {
            Err(e) if e == EINTR && !req.is_cancelled() => std::thread::yield_now(),
            r => return r,
        }
    }
}

/// 9p.c `v9fs_fill_statfs`: report blocks of the largest multiple of the
/// host block size that fits in one I/O (`msize - P9_IOHDRSZ`), scaling the
/// block counts to match, so that clients size their I/O to it.
fn scale_statfs(mut st: p9_wire::StatFs, msize: u32) -> p9_wire::StatFs {
    if st.bsize == 0 {
        return st;
    }
    let factor = (msize.saturating_sub(p9_wire::consts::P9_IOHDRSZ) / st.bsize).max(1);
    st.bsize = st.bsize.saturating_mul(factor);
    let f = u64::from(factor);
    st.blocks /= f;
    st.bfree /= f;
    st.bavail /= f;
    st
}
