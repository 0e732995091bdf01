// SPDX-License-Identifier: GPL-2.0-or-later
//! The client: sending requests, and one typed helper per operation (the
//! 9P2000.u-only ones in the child module `dotu`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use p9_wire::consts::{NOFID, NOTAG, TWRITE_HEADER_SIZE};
use p9_wire::msgtype::TVERSION;
use p9_wire::types::StatDotl;
use p9_wire::{
    max_read_count, Dirent, Errno, Flock, Getlock, Header, P9String, Proto, Qid, Rmessage, SetAttr,
    SgView, StatFs, Tmessage,
};

use crate::pending::{Expect, Pending, SessionCell, Slot};
use crate::reply::{check, check_or_panic, CallError, Reply, Response};
use crate::tags::Tags;
use crate::transport::Transport;

/// Bound on the Treaddir / directory-read calls of one `*_all` helper:
/// more means the server's offsets do not advance.
const MAX_DIR_CALLS: usize = 1 << 20;

/// A 9P client over a [`Transport`].
///
/// Shareable between threads (`&Client` is enough to send requests), so
/// tests can keep many requests in flight.  See the crate documentation
/// for how errors and malformed replies are reported.
pub struct Client<T: Transport> {
    transport: T,
    session: Arc<SessionCell>,
    tags: Arc<Tags>,
    next_fid: AtomicU32,
}

/// Extract `$pat` from a checked reply (the type was checked, so anything
/// else is a bug here).
macro_rules! expect_msg {
    ($reply:expr, $pat:pat => $out:expr) => {{
        let reply: $crate::Reply = $reply;
        match reply.msg() {
            $pat => $out,
            other => unreachable!("reply type was checked, got {other:?}"),
        }
    }};
}

mod dotu;

impl<T: Transport> Client<T> {
    /// A client on `transport`, before any Tversion: replies are decoded as
    /// 9P2000.u errors would be (9p.c's format before negotiation) with no
    /// msize bound, until [`Client::version`] succeeds.
    pub fn new(transport: T) -> Self {
        Client {
            transport,
            session: Arc::new(SessionCell::new(Proto::Unnegotiated, u32::MAX)),
            tags: Arc::new(Tags::default()),
            next_fid: AtomicU32::new(1),
        }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The session's protocol (`Unnegotiated` before Tversion).
    pub fn proto(&self) -> Proto {
        self.session.get().0
    }

    /// The session's msize (`u32::MAX` before Tversion).
    pub fn msize(&self) -> u32 {
        self.session.get().1
    }

    /// Decode replies in `proto` and `msize` from now on, without a
    /// Tversion (for tests that drive the negotiation by hand).
    pub fn set_session(&self, proto: Proto, msize: u32) {
        self.session.set(proto, msize);
    }

    /// A fid number never handed out before by this client (never
    /// `NOFID`).
    pub fn alloc_fid(&self) -> u32 {
        loop {
            let fid = self.next_fid.fetch_add(1, Ordering::Relaxed);
            if fid != NOFID {
                return fid;
            }
        }
    }

    /// How many tags are in flight.
    pub fn tags_in_flight(&self) -> usize {
        self.tags.in_flight()
    }

    // ----- sending -----

    /// Submit `bytes`; `owned`: the tag was allocated or claimed for this
    /// request and is released when its reply arrives.
    fn submit(&self, bytes: Vec<u8>, expect: Expect, owned: bool) -> Pending {
        let slot = Arc::new(Slot::default());
        let done = {
            let slot = Arc::clone(&slot);
            let tags = Arc::clone(&self.tags);
            let tag = expect.tag;
            Box::new(move |reply: Option<Vec<u8>>| {
                if let (true, Some(tag)) = (owned, tag) {
                    tags.release(tag);
                }
                slot.fill(reply);
            })
        };
        self.transport.submit(bytes, done);
        Pending {
            slot,
            expect,
            session: Arc::clone(&self.session),
        }
    }

    fn encode(msg: &Tmessage<'_>, tag: u16) -> Vec<u8> {
        msg.encode_to_vec(tag)
            .unwrap_or_else(|e| panic!("p9-client: cannot encode {}: {e}", msg.name()))
    }

    fn expect_for(msg: &Tmessage<'_>, tag: u16) -> Expect {
        Expect {
            tag: Some(tag),
            typ: Some(msg.msg_type() + 1),
            name: msg.name(),
            session: None,
        }
    }

    /// Send `msg` with a fresh tag; the reply is collected with the
    /// returned [`Pending`].
    pub fn send(&self, msg: &Tmessage<'_>) -> Pending {
        let tag = self.tags.alloc();
        let bytes = Self::encode(msg, tag);
        self.submit(bytes, Self::expect_for(msg, tag), true)
    }

    /// Send `msg` with tag `tag`, which may be `NOTAG` or a tag already in
    /// flight (for tests of tag reuse).  A free tag is held until the reply
    /// arrives; a tag already in flight is used without being claimed.
    pub fn send_with_tag(&self, tag: u16, msg: &Tmessage<'_>) -> Pending {
        let owned = self.tags.claim(tag);
        let bytes = Self::encode(msg, tag);
        self.submit(bytes, Self::expect_for(msg, tag), owned)
    }

    /// Send arbitrary bytes (malformed requests).  The tag, if the bytes
    /// carry one, is neither allocated nor checked for being free; the
    /// reply is checked against it but may be of any type.
    pub fn send_raw(&self, bytes: Vec<u8>) -> Pending {
        let tag = Header::peek(SgView::from_slice(&bytes)).map(|h| h.tag);
        let expect = Expect {
            tag,
            typ: None,
            name: "raw request",
            session: None,
        };
        self.submit(bytes, expect, false)
    }

    /// Send arbitrary bytes and wait for the reply's bytes, unchecked
    /// (`None`: no reply).
    pub fn raw(&self, bytes: Vec<u8>) -> Option<Vec<u8>> {
        self.send_raw(bytes).wait_raw()
    }

    /// Send `msg` and wait for its reply, reporting every problem as a
    /// [`CallError`] (never panics).
    pub fn try_call(&self, msg: &Tmessage<'_>) -> Result<Reply, CallError> {
        self.send(msg).wait_checked()
    }

    /// Send `msg` and wait for its reply: the reply, or the errno of an
    /// error reply.
    ///
    /// # Panics
    /// When there is no reply, or it is malformed (undecodable in the
    /// session, wrong tag, wrong type).
    pub fn call(&self, msg: &Tmessage<'_>) -> Response {
        let name = msg.name();
        match self.send(msg).wait() {
            Some(r) => r,
            None => panic!("p9-client: no reply to {name}"),
        }
    }

    // ----- session -----

    /// Tversion (sent with tag `NOTAG`, as Linux does): the server's msize
    /// and version string.  On success the client's session follows the
    /// reply: the protocol named by the returned version (an `"unknown"`
    /// reply leaves the protocol as it was, as 9p.c leaves its own) and
    /// the returned msize.
    ///
    /// The reply is decoded in the requested dialect when it is one (9p.c
    /// switches before it can fail), else in the current one.
    ///
    /// # Panics
    /// When there is no reply or it is malformed.
    pub fn version(&self, msize: u32, version: &str) -> Result<(u32, String), Errno> {
        let msg = Tmessage::Version {
            msize,
            version: version.into(),
        };
        let proto = Proto::from_version(version.as_bytes()).unwrap_or_else(|| self.proto());
        let owned = self.tags.claim(NOTAG);
        let expect = Expect {
            tag: Some(NOTAG),
            typ: Some(TVERSION + 1),
            name: "Tversion",
            session: Some((proto, u32::MAX)),
        };
        let reply = match self.submit(Self::encode(&msg, NOTAG), expect, owned).wait() {
            Some(r) => r?,
            None => panic!("p9-client: no reply to Tversion"),
        };
        let (rmsize, rversion) = expect_msg!(reply, Rmessage::Version { msize, version } =>
            (msize, version.to_string_lossy().into_owned()));
        let proto = Proto::from_version(rversion.as_bytes()).unwrap_or_else(|| self.proto());
        self.session.set(proto, rmsize);
        Ok((rmsize, rversion))
    }

    /// Tauth: the auth file's qid (9p.c answers `EOPNOTSUPP`).
    pub fn auth(&self, afid: u32, uname: &str, aname: &str, n_uname: u32) -> Result<Qid, Errno> {
        let msg = Tmessage::Auth {
            afid,
            uname: uname.into(),
            aname: aname.into(),
            n_uname,
        };
        Ok(expect_msg!(self.call(&msg)?, Rmessage::Auth { aqid } => aqid))
    }

    /// Tattach: make `fid` the root of export `aname` for user `n_uname`
    /// (`afid` is normally `NOFID`).
    pub fn attach(
        &self,
        fid: u32,
        afid: u32,
        uname: &str,
        aname: &str,
        n_uname: u32,
    ) -> Result<Qid, Errno> {
        let msg = Tmessage::Attach {
            fid,
            afid,
            uname: uname.into(),
            aname: aname.into(),
            n_uname,
        };
        Ok(expect_msg!(self.call(&msg)?, Rmessage::Attach { qid } => qid))
    }

    /// Tflush of the request tagged `oldtag`.
    pub fn flush(&self, oldtag: u16) -> Result<(), Errno> {
        self.call(&Tmessage::Flush { oldtag }).map(drop)
    }

    // ----- fids -----

    /// Twalk from `fid` through `names` to `newfid` (which may equal
    /// `fid`): the qids of the names walked (fewer than `names` for a
    /// partial walk, in which case `newfid` is not created).
    pub fn walk<N: AsRef<[u8]>>(
        &self,
        fid: u32,
        newfid: u32,
        names: &[N],
    ) -> Result<Vec<Qid>, Errno> {
        let msg = Tmessage::Walk {
            fid,
            newfid,
            wnames: names.iter().map(|n| P9String::from(n.as_ref())).collect(),
        };
        Ok(expect_msg!(self.call(&msg)?, Rmessage::Walk { wqids } => wqids))
    }

    /// [`Client::walk`] to a newly allocated fid: the fid and the qids.
    /// The fid exists afterwards only if all names were walked.
    pub fn walk_new<N: AsRef<[u8]>>(
        &self,
        fid: u32,
        names: &[N],
    ) -> Result<(u32, Vec<Qid>), Errno> {
        let newfid = self.alloc_fid();
        self.walk(fid, newfid, names).map(|q| (newfid, q))
    }

    /// Twalk with no names: `newfid` becomes a second reference to `fid`'s
    /// file.
    pub fn clone_fid(&self, fid: u32, newfid: u32) -> Result<(), Errno> {
        let qids = self.walk::<&str>(fid, newfid, &[])?;
        assert!(qids.is_empty(), "Rwalk to a clone carries qids: {qids:?}");
        Ok(())
    }

    /// Tclunk.
    pub fn clunk(&self, fid: u32) -> Result<(), Errno> {
        self.call(&Tmessage::Clunk { fid }).map(drop)
    }

    /// Tremove (the fid is clunked whatever the outcome).
    pub fn remove(&self, fid: u32) -> Result<(), Errno> {
        self.call(&Tmessage::Remove { fid }).map(drop)
    }

    // ----- 9P2000.L -----

    /// Tlopen with [`p9_wire::consts::dotl_open`] flags: the qid and iounit.
    pub fn lopen(&self, fid: u32, flags: u32) -> Result<(Qid, u32), Errno> {
        let msg = Tmessage::Lopen { fid, flags };
        Ok(expect_msg!(self.call(&msg)?, Rmessage::Lopen { qid, iounit } => (qid, iounit)))
    }

    /// Tlcreate: create and open `name` in directory `fid`, which becomes
    /// the new file's fid.  The qid and iounit.
    pub fn lcreate(
        &self,
        fid: u32,
        name: impl AsRef<[u8]>,
        flags: u32,
        mode: u32,
        gid: u32,
    ) -> Result<(Qid, u32), Errno> {
        let msg = Tmessage::Lcreate {
            fid,
            name: name.as_ref().into(),
            flags,
            mode,
            gid,
        };
        Ok(expect_msg!(self.call(&msg)?, Rmessage::Lcreate { qid, iounit } => (qid, iounit)))
    }

    /// Tsymlink: `name` in directory `fid`, pointing to `target`.
    pub fn symlink(
        &self,
        fid: u32,
        name: impl AsRef<[u8]>,
        target: impl AsRef<[u8]>,
        gid: u32,
    ) -> Result<Qid, Errno> {
        let msg = Tmessage::Symlink {
            fid,
            name: name.as_ref().into(),
            symtgt: target.as_ref().into(),
            gid,
        };
        Ok(expect_msg!(self.call(&msg)?, Rmessage::Symlink { qid } => qid))
    }

    /// Tmknod: `name` in directory `dfid` with `mode` (type included).
    pub fn mknod(
        &self,
        dfid: u32,
        name: impl AsRef<[u8]>,
        mode: u32,
        major: u32,
        minor: u32,
        gid: u32,
    ) -> Result<Qid, Errno> {
        let msg = Tmessage::Mknod {
            dfid,
            name: name.as_ref().into(),
            mode,
            major,
            minor,
            gid,
        };
        Ok(expect_msg!(self.call(&msg)?, Rmessage::Mknod { qid } => qid))
    }

    /// Tmkdir: `name` in directory `dfid`.
    pub fn mkdir(
        &self,
        dfid: u32,
        name: impl AsRef<[u8]>,
        mode: u32,
        gid: u32,
    ) -> Result<Qid, Errno> {
        let msg = Tmessage::Mkdir {
            dfid,
            name: name.as_ref().into(),
            mode,
            gid,
        };
        Ok(expect_msg!(self.call(&msg)?, Rmessage::Mkdir { qid } => qid))
    }

    /// Tlink: a hard link `name` in directory `dfid` to the file of `fid`.
    pub fn link(&self, dfid: u32, fid: u32, name: impl AsRef<[u8]>) -> Result<(), Errno> {
        let msg = Tmessage::Link {
            dfid,
            fid,
            name: name.as_ref().into(),
        };
        self.call(&msg).map(drop)
    }

    /// Trename: move the file of `fid` to `name` in directory `dfid`.
    pub fn rename(&self, fid: u32, dfid: u32, name: impl AsRef<[u8]>) -> Result<(), Errno> {
        let msg = Tmessage::Rename {
            fid,
            dfid,
            name: name.as_ref().into(),
        };
        self.call(&msg).map(drop)
    }

    /// Trenameat.
    pub fn renameat(
        &self,
        olddirfid: u32,
        oldname: impl AsRef<[u8]>,
        newdirfid: u32,
        newname: impl AsRef<[u8]>,
    ) -> Result<(), Errno> {
        let msg = Tmessage::Renameat {
            olddirfid,
            oldname: oldname.as_ref().into(),
            newdirfid,
            newname: newname.as_ref().into(),
        };
        self.call(&msg).map(drop)
    }

    /// Tunlinkat (`flags`: 0 or [`p9_wire::consts::AT_REMOVEDIR`]).
    pub fn unlinkat(&self, dirfid: u32, name: impl AsRef<[u8]>, flags: u32) -> Result<(), Errno> {
        let msg = Tmessage::Unlinkat {
            dirfid,
            name: name.as_ref().into(),
            flags,
        };
        self.call(&msg).map(drop)
    }

    /// Treadlink: the link's target.
    pub fn readlink(&self, fid: u32) -> Result<Vec<u8>, Errno> {
        let r = self.call(&Tmessage::Readlink { fid })?;
        Ok(expect_msg!(r, Rmessage::Readlink { target } => target.into_bytes()))
    }

    /// Tgetattr with [`p9_wire::consts::getattr`] mask bits.
    pub fn getattr(&self, fid: u32, request_mask: u64) -> Result<StatDotl, Errno> {
        let r = self.call(&Tmessage::Getattr { fid, request_mask })?;
        Ok(expect_msg!(r, Rmessage::Getattr(st) => st))
    }

    /// Tsetattr.
    pub fn setattr(&self, fid: u32, attr: SetAttr) -> Result<(), Errno> {
        self.call(&Tmessage::Setattr { fid, attr }).map(drop)
    }

    /// Tstatfs.
    pub fn statfs(&self, fid: u32) -> Result<StatFs, Errno> {
        let r = self.call(&Tmessage::Statfs { fid })?;
        Ok(expect_msg!(r, Rmessage::Statfs(st) => st))
    }

    /// Tfsync.
    pub fn fsync(&self, fid: u32, datasync: bool) -> Result<(), Errno> {
        let msg = Tmessage::Fsync {
            fid,
            datasync: u32::from(datasync),
        };
        self.call(&msg).map(drop)
    }

    /// Tread: at most `count` bytes at `offset` (on a 9P2000.u directory:
    /// packed stats, see [`Client::read_dir_u`]).
    pub fn read(&self, fid: u32, offset: u64, count: u32) -> Result<Vec<u8>, Errno> {
        let r = self.call(&Tmessage::Read { fid, offset, count })?;
        Ok(expect_msg!(r, Rmessage::Read { data } => data.to_vec()))
    }

    /// Read from `offset` to the end of the file, in reads of up to the
    /// largest count msize allows.
    pub fn read_to_end(&self, fid: u32, offset: u64) -> Result<Vec<u8>, Errno> {
        let count = max_read_count(self.msize().min(1 << 24));
        let mut out = Vec::new();
        loop {
            let chunk = self.read(fid, offset + out.len() as u64, count)?;
            if chunk.is_empty() {
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
        }
    }

    /// Twrite: the count written.
    pub fn write(&self, fid: u32, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        let msg = Tmessage::Write {
            fid,
            offset,
            data: SgView::from_slice(data),
        };
        Ok(expect_msg!(self.call(&msg)?, Rmessage::Write { count } => count))
    }

    /// One Treaddir: the entries of the reply (empty at the end).
    ///
    /// # Panics
    /// When the entries do not parse.
    pub fn readdir(&self, fid: u32, offset: u64, count: u32) -> Result<Vec<Dirent>, Errno> {
        let r = self.call(&Tmessage::Readdir { fid, offset, count })?;
        let data = expect_msg!(r, Rmessage::Readdir { data } => data.to_vec());
        Ok(Dirent::iter(SgView::from_slice(&data))
            .map(|e| e.unwrap_or_else(|e| panic!("p9-client: bad Rreaddir entry: {e}")))
            .collect())
    }

    /// Treaddir from offset 0 to the end, each call continuing at the last
    /// entry's offset, with the largest count msize allows.
    pub fn readdir_all(&self, fid: u32) -> Result<Vec<Dirent>, Errno> {
        self.readdir_all_count(fid, max_read_count(self.msize().min(1 << 24)))
    }

    /// [`Client::readdir_all`] with `count` bytes per call.
    ///
    /// # Panics
    /// When the server never reaches the end.
    pub fn readdir_all_count(&self, fid: u32, count: u32) -> Result<Vec<Dirent>, Errno> {
        let mut out: Vec<Dirent> = Vec::new();
        for _ in 0..MAX_DIR_CALLS {
            let offset = out.last().map_or(0, |e| e.offset);
            let batch = self.readdir(fid, offset, count)?;
            if batch.is_empty() {
                return Ok(out);
            }
            out.extend(batch);
        }
        panic!("p9-client: Treaddir on fid {fid} never reached the end");
    }

    /// Txattrwalk: `newfid` reads attribute `name` (empty: the list of
    /// names); the value's size.
    pub fn xattrwalk(&self, fid: u32, newfid: u32, name: impl AsRef<[u8]>) -> Result<u64, Errno> {
        let msg = Tmessage::Xattrwalk {
            fid,
            newfid,
            name: name.as_ref().into(),
        };
        Ok(expect_msg!(self.call(&msg)?, Rmessage::Xattrwalk { size } => size))
    }

    /// Txattrcreate: `fid` becomes an xattr fid; the value is written to it
    /// and set at clunk.
    pub fn xattrcreate(
        &self,
        fid: u32,
        name: impl AsRef<[u8]>,
        attr_size: u64,
        flags: u32,
    ) -> Result<(), Errno> {
        let msg = Tmessage::Xattrcreate {
            fid,
            name: name.as_ref().into(),
            attr_size,
            flags,
        };
        self.call(&msg).map(drop)
    }

    /// Read attribute `name` of `fid`'s file (empty name: the NUL-separated
    /// list) with Txattrwalk, Tread and Tclunk on a fresh fid.
    pub fn xattr_get(&self, fid: u32, name: impl AsRef<[u8]>) -> Result<Vec<u8>, Errno> {
        let xfid = self.alloc_fid();
        let size = self.xattrwalk(fid, xfid, name)?;
        let data = self.read_to_end(xfid, 0);
        self.clunk(xfid)?;
        let data = data?;
        assert_eq!(
            data.len() as u64,
            size,
            "xattr read size vs Rxattrwalk size"
        );
        Ok(data)
    }

    /// Set attribute `name` of `fid`'s file to `value`: clone the fid,
    /// Txattrcreate, Twrite, Tclunk (where the server sets it).
    pub fn xattr_set(
        &self,
        fid: u32,
        name: impl AsRef<[u8]>,
        value: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        let xfid = self.alloc_fid();
        self.clone_fid(fid, xfid)?;
        if let Err(e) = self.xattrcreate(xfid, name, value.len() as u64, flags) {
            // 9p.c leaves the fid as it was; clunk the clone.
            let _ = self.clunk(xfid);
            return Err(e);
        }
        let mut off = 0;
        while off < value.len() {
            let chunk = &value[off..];
            let max = self.msize().min(1 << 24) as usize - TWRITE_HEADER_SIZE;
            let n = self.write(xfid, off as u64, &chunk[..chunk.len().min(max)]);
            match n {
                Ok(0) => break,
                Ok(n) => off += n as usize,
                Err(e) => {
                    let _ = self.clunk(xfid);
                    return Err(e);
                }
            }
        }
        self.clunk(xfid)
    }

    /// Tlock: the status ([`p9_wire::consts::lock_status`]).
    pub fn lock(&self, fid: u32, lock: &Flock) -> Result<u8, Errno> {
        let msg = Tmessage::Lock {
            fid,
            lock: lock.clone(),
        };
        Ok(expect_msg!(self.call(&msg)?, Rmessage::Lock { status } => status))
    }

    /// Tgetlock: the conflicting lock, or the request with type `UNLCK`
    /// when there is none.
    pub fn getlock(&self, fid: u32, lock: &Getlock) -> Result<Getlock, Errno> {
        let msg = Tmessage::Getlock {
            fid,
            lock: lock.clone(),
        };
        Ok(expect_msg!(self.call(&msg)?, Rmessage::Getlock(gl) => gl))
    }
}

impl<T: Transport> Client<T> {
    /// Check reply bytes received outside [`Client::send`] (e.g. from
    /// [`Client::raw`]) as a reply to a request tagged `tag` of type
    /// `req_type` (`None`: any), in the current session.
    pub fn check_reply(
        &self,
        bytes: Option<Vec<u8>>,
        tag: Option<u16>,
        req_type: Option<u8>,
    ) -> Result<Reply, CallError> {
        let (proto, msize) = self.session.get();
        check(bytes, tag, req_type.map(|t| t + 1), proto, msize)
    }

    /// As [`Client::check_reply`], panicking on anything but a reply or an
    /// error reply; `None` for no reply.
    pub fn decode_reply(
        &self,
        bytes: Option<Vec<u8>>,
        tag: Option<u16>,
        req_type: Option<u8>,
    ) -> Option<Response> {
        let (proto, msize) = self.session.get();
        check_or_panic("reply", bytes, tag, req_type.map(|t| t + 1), proto, msize)
    }
}
