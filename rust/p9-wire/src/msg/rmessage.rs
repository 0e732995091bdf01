// SPDX-License-Identifier: GPL-2.0-or-later
//! The replies: one table line (or block) per R-message, the error reply,
//! and Rwalk from borrowed qids.

use crate::errno::Errno;
use crate::error::{DecodeErrorKind, EncodeError};
use crate::msg::frame::{encode_msg, size_of, Body};
use crate::msg::table::message_table;
use crate::proto::Proto;
use crate::sg::{SgView, Sink};
use crate::types::{Getlock, P9String, PrefixedStat, Qid, Stat, StatDotl, StatFs};
use crate::wire::Encode;

message_table! {
    consts: r_types,
    /// A reply (R-message).
    ///
    /// The engine usually builds small replies with this enum and writes bulk
    /// replies (Rread, Rreaddir, .u directory reads) with the writers in
    /// [`crate::reply`]; the client decodes replies into it, with Rread and
    /// Rreaddir data borrowed from the reply segments.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Rmessage<'a> {
        /// Rlerror (.L): `ecode[4]`.
        RLERROR = 7, "Rlerror", DOTL => Lerror {
            /// Linux errno.
            ecode: Errno,
        },
        /// Rstatfs (.L).
        RSTATFS = 9, "Rstatfs", DOTL => Statfs(st: StatFs),
        /// Rlopen (.L): `qid[13] iounit[4]`.
        RLOPEN = 13, "Rlopen", DOTL => Lopen {
            /// The file's qid.
            qid: Qid,
            /// Preferred I/O size, 0 for none.
            iounit: u32,
        },
        /// Rlcreate (.L): `qid[13] iounit[4]`.
        RLCREATE = 15, "Rlcreate", DOTL => Lcreate {
            /// The new file's qid.
            qid: Qid,
            /// Preferred I/O size.
            iounit: u32,
        },
        /// Rsymlink (.L): `qid[13]`.
        RSYMLINK = 17, "Rsymlink", DOTL => Symlink {
            /// The link's qid.
            qid: Qid,
        },
        /// Rmknod (.L): `qid[13]`.
        RMKNOD = 19, "Rmknod", DOTL => Mknod {
            /// The node's qid.
            qid: Qid,
        },
        /// Rrename (.L): empty.
        RRENAME = 21, "Rrename", DOTL => Rename,
        /// Rreadlink (.L): `target[s]`.
        RREADLINK = 23, "Rreadlink", DOTL => Readlink {
            /// The link target.
            target: P9String,
        },
        /// Rgetattr (.L).
        RGETATTR = 25, "Rgetattr", DOTL => Getattr(st: StatDotl),
        /// Rsetattr (.L): empty.
        RSETATTR = 27, "Rsetattr", DOTL => Setattr,
        /// Rxattrwalk (.L): `size[8]`.
        RXATTRWALK = 31, "Rxattrwalk", DOTL => Xattrwalk {
            /// Value (or list) size.
            size: u64,
        },
        /// Rxattrcreate (.L): empty.
        RXATTRCREATE = 33, "Rxattrcreate", DOTL => Xattrcreate,
        /// Rreaddir (.L): `count[4] data[count]`, data being packed entries
        /// ([`crate::Dirent::iter`] parses them).
        RREADDIR = 41, "Rreaddir", DOTL => Readdir {
            /// The entries' bytes.
            data: SgView<'a>,
        },
        /// Rfsync (.L): empty.
        RFSYNC = 51, "Rfsync", DOTL => Fsync,
        /// Rlock (.L): `status[1]`.
        RLOCK = 53, "Rlock", DOTL => Lock {
            /// [`crate::consts::lock_status`].
            status: u8,
        },
        /// Rgetlock (.L).
        RGETLOCK = 55, "Rgetlock", DOTL => Getlock(lock: Getlock),
        /// Rlink (.L): empty.
        RLINK = 71, "Rlink", DOTL => Link,
        /// Rmkdir (.L): `qid[13]`.
        RMKDIR = 73, "Rmkdir", DOTL => Mkdir {
            /// The directory's qid.
            qid: Qid,
        },
        /// Rrenameat (.L): empty.
        RRENAMEAT = 75, "Rrenameat", DOTL => Renameat,
        /// Runlinkat (.L): empty.
        RUNLINKAT = 77, "Runlinkat", DOTL => Unlinkat,
        /// Rversion: `msize[4] version[s]`.
        RVERSION = 101, "Rversion", ALWAYS => Version {
            /// Negotiated msize.
            msize: u32,
            /// Accepted version, or `"unknown"`.
            version: P9String,
        },
        /// Rauth: `aqid[13]`.
        RAUTH = 103, "Rauth", BOTH => Auth {
            /// The auth file's qid.
            aqid: Qid,
        },
        /// Rattach: `qid[13]`.
        RATTACH = 105, "Rattach", BOTH => Attach {
            /// The root's qid.
            qid: Qid,
        },
        /// Rerror (.u): `ename[s] errno[4]`.
        RERROR = 107, "Rerror", NOT_DOTL => Error {
            /// Error text (9p.c: `strerror(errno)`).
            ename: P9String,
            /// The errno.
            errno: Errno,
        },
        /// Rflush: empty.
        RFLUSH = 109, "Rflush", BOTH => Flush,
        /// Rwalk: `nwqid[2] nwqid*(qid[13])`, at most 16.
        RWALK = 111, "Rwalk", BOTH => Walk {
            /// Qids of the elements walked.
            wqids: Vec<Qid>,
        },
        /// Ropen (.u): `qid[13] iounit[4]`.
        ROPEN = 113, "Ropen", DOTU => Open {
            /// The file's qid.
            qid: Qid,
            /// Preferred I/O size.
            iounit: u32,
        },
        /// Rcreate (.u): `qid[13] iounit[4]`.
        RCREATE = 115, "Rcreate", DOTU => Create {
            /// The new file's qid.
            qid: Qid,
            /// Preferred I/O size.
            iounit: u32,
        },
        /// Rread: `count[4] data[count]` (on a .u directory: packed stats,
        /// [`crate::Stat::iter`] parses them).
        RREAD = 117, "Rread", BOTH => Read {
            /// The bytes read.
            data: SgView<'a>,
        },
        /// Rwrite: `count[4]`.
        RWRITE = 119, "Rwrite", BOTH => Write {
            /// Bytes written.
            count: u32,
        },
        /// Rclunk: empty.
        RCLUNK = 121, "Rclunk", BOTH => Clunk,
        /// Rremove: empty.
        RREMOVE = 123, "Rremove", BOTH => Remove,
        /// Rstat (.u): `n[2] stat[n]`.  `n` is written as the stat's length
        /// and ignored on decode (9p.c writes 0 there; Linux ignores it).
        RSTAT = 125, "Rstat", DOTU => Stat {
            /// The stat.
            stat: Stat => PrefixedStat,
        },
        /// Rwstat (.u): empty.
        RWSTAT = 127, "Rwstat", DOTU => Wstat,
    }
}

impl Rmessage<'_> {
    /// Replies have no limit that depends on the session.
    fn check_limits(&self, _msize: u32) -> Result<(), DecodeErrorKind> {
        Ok(())
    }

    /// The error reply for `errno` in `proto`, as 9p.c's `pdu_complete`
    /// builds it: Rlerror with the errno in 9P2000.L; otherwise (9P2000.u,
    /// and before negotiation) Rerror with the `strerror()` text and the
    /// errno.
    pub fn error(proto: Proto, errno: Errno) -> Rmessage<'static> {
        match proto {
            Proto::DotL => Rmessage::Lerror { ecode: errno },
            Proto::DotU | Proto::Unnegotiated => Rmessage::Error {
                ename: P9String::from(errno.ename()),
                errno,
            },
        }
    }
}

/// An Rwalk whose qids are borrowed (a server's are on its stack).
struct RwalkRef<'q>(&'q [Qid]);

impl Body for RwalkRef<'_> {
    fn typ(&self) -> u8 {
        r_types::RWALK
    }

    fn body<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        self.0.encode(s)
    }
}

/// The encoded length of the Rwalk of `wqids`, header included (as
/// [`Rmessage::byte_size`] of `Rmessage::Walk`).
pub fn rwalk_size(wqids: &[Qid]) -> usize {
    size_of(&RwalkRef(wqids))
}

/// Encode the Rwalk of `wqids` (the same bytes as `Rmessage::Walk`
/// with those qids, without a vector); returns the message length.
pub fn encode_rwalk(tag: u16, wqids: &[Qid], out: &mut [&mut [u8]]) -> Result<usize, EncodeError> {
    encode_msg(&RwalkRef(wqids), tag, out)
}

/// Encode the error reply for `errno` in `proto` (see [`Rmessage::error`]);
/// returns the message length.
pub fn encode_error(
    proto: Proto,
    tag: u16,
    errno: Errno,
    out: &mut [&mut [u8]],
) -> Result<usize, EncodeError> {
    Rmessage::error(proto, errno).encode(tag, out)
}
