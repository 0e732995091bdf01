// SPDX-License-Identifier: GPL-2.0-or-later
//! 9P2000.L and 9P2000.u wire codec over scatter/gather buffers.
//!
//! This crate turns 9P messages into Rust values and back, for a 9P server
//! engine replacing QEMU's `hw/9pfs/9p.c` (and for its test client).  It
//! does no I/O and knows nothing about fids or files.
//!
//! # Requests
//!
//! A request arrives as a list of byte slices (guest memory segments of any
//! length; a field may straddle them).  [`Tmessage::decode`] validates it
//! against the negotiated [`Proto`] and msize and returns its tag and a
//! [`Tmessage`].  Fixed fields and strings are copied out; Twrite's payload
//! stays in the request buffers as an [`SgView`].  On failure the
//! [`DecodeError`] carries the errno to answer with and, when the header was
//! readable, the tag to answer to.  [`Tmessage::check_args`] then applies
//! 9p.c's name and flag checks.
//!
//! # Replies
//!
//! Small replies are [`Rmessage`] values encoded with [`Rmessage::encode`]
//! into a list of mutable byte slices; [`Rmessage::byte_size`] tells whether
//! one fits msize first.  Bulk replies are written in place:
//! [`ReadReply`] hands out the Rread data area for the backend to read
//! into, [`ReaddirReply`] and [`StatDirReply`] append directory entries
//! until one does not fit.  [`Rmessage::error`] / [`encode_error`] build
//! the Rlerror or Rerror 9p.c would send.
//!
//! # Example
//!
//! ```
//! use p9_wire::{errno, Proto, Qid, Rmessage, Tmessage, P9String};
//!
//! // A client encodes a Twalk (here into a Vec, then split in two
//! // segments at an arbitrary point).
//! let walk = Tmessage::Walk {
//!     fid: 1,
//!     newfid: 2,
//!     wnames: vec![P9String::from("usr"), P9String::from("lib")],
//! };
//! let bytes = walk.encode_to_vec(5).unwrap();
//! let segs: [&[u8]; 2] = [&bytes[..10], &bytes[10..]];
//!
//! // The server decodes it...
//! let (tag, msg) = Tmessage::decode(&segs, Proto::DotL, 8192).unwrap();
//! assert_eq!((tag, &msg), (5, &walk));
//! assert_eq!(msg.check_args(), Ok(()));
//!
//! // ...and answers into two reply segments.
//! let reply = Rmessage::Walk { wqids: vec![Qid::default(); 2] };
//! assert!(reply.byte_size() <= 8192);
//! let (mut a, mut b) = ([0u8; 4], [0u8; 64]);
//! let mut out: [&mut [u8]; 2] = [&mut a, &mut b];
//! let len = reply.encode(tag, &mut out).unwrap();
//! assert_eq!(len, 7 + 2 + 2 * 13);
//!
//! // A request that is not valid in the negotiated dialect still yields
//! // the tag and the errno to answer with.
//! let getattr = Tmessage::Getattr { fid: 1, request_mask: 0x7ff };
//! let bytes = getattr.encode_to_vec(9).unwrap();
//! let err = Tmessage::decode_slice(&bytes, Proto::DotU, 8192).unwrap_err();
//! assert_eq!((err.tag(), err.errno()), (Some(9), errno::EOPNOTSUPP));
//! let rerror = Rmessage::error(Proto::DotU, err.errno());
//! assert_eq!(
//!     rerror,
//!     Rmessage::Error { ename: "Operation not supported".into(), errno: errno::EOPNOTSUPP }
//! );
//! ```
//!
//! # Modules
//!
//! * [`sg`]: scatter/gather views, readers and writers.
//! * [`msg`]: the message enums, framing and codecs.
//! * [`reply`]: in-place writers for Rread/Rreaddir.
//! * [`types`]: qid, stat (.u), getattr/setattr/statfs/lock (.L), dirent.
//! * [`validate`]: 9p.c's name rules.
//! * [`error`]: errors and their errno mapping.
//! * [`errno`]: Linux errno numbers and glibc messages.
//! * [`consts`], [`msgtype`], [`proto`]: protocol constants.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod consts;
pub mod errno;
pub mod error;
pub mod msg;
pub mod msgtype;
pub mod proto;
pub mod reply;
pub mod sg;
pub mod stream;
mod string;
pub mod types;
pub mod validate;
mod wire;

pub use errno::Errno;
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use msg::{
    encode_error, encode_rwalk, max_read_count, rwalk_size, Framing, Header, Rmessage, Tmessage,
};
pub use proto::Proto;
pub use reply::{Fit, ReadReply, ReaddirReply, StatDirReply};
pub use sg::{SgView, SgViewMut};
pub use types::{Dirent, Flock, Getlock, P9String, Qid, SetAttr, Stat, StatDotl, StatFs};
pub use validate::{name_is_illegal, NameRule};
