// SPDX-License-Identifier: GPL-2.0-or-later
//! Decode and encode errors, each mapped to the errno the engine replies
//! with.
//!
//! | failure | errno | why |
//! |---|---|---|
//! | fewer than 7 bytes (no header) | `EINVAL` | malformed request; no tag to answer |
//! | `size` < 7 | `EINVAL` | malformed header (Linux `p9_parse_header` uses `EINVAL`) |
//! | `size` > msize | `EMSGSIZE` | as 9p.c's Tversion msize check (`-EMSGSIZE`) |
//! | `size` ≠ bytes available | `EINVAL` | as Linux `p9_parse_header` for `pdu->size != r_size` |
//! | unknown type, or a T type sent as R (or vice versa) | `EOPNOTSUPP` | 9p.c `v9fs_op_not_supp` |
//! | type not part of the negotiated protocol | `EOPNOTSUPP` | 9p.c `v9fs_op_not_supp` / the `proto_version` checks in `v9fs_read` and `v9fs_readdir` |
//! | a field or string runs past the end | `EINVAL` | see below |
//! | bytes left after the body | `EINVAL` | see below |
//! | Twalk `nwname` / Rwalk `nwqid` > 16 | `EINVAL` | 9p.c `v9fs_walk` (`nwnames > P9_MAXWELEM`) |
//! | Tread `count` > msize − 11 (a Treaddir count is clamped instead, as 9p.c does) | `EMSGSIZE` | the reply could not fit in msize |
//! | Twrite / Rread / Rreaddir `count` ≠ bytes present | `EINVAL` | see below |
//! | NUL byte inside a string | `EINVAL` | 9p.c reads strings as C strings (silently truncating at the NUL); we refuse them |
//! | .u stat `size` field ≠ its fields' length | `EINVAL` | see below |
//!
//! 9p.c itself has no errno for a short body: `v9fs_iov_vunmarshal` fails
//! with `-ENOBUFS` and the virtio transport marks the device broken
//! (`virtio_error`).  We answer instead, with one errno for every malformed
//! body: `EINVAL` ("Invalid argument"), which is what 9p.c returns for the
//! one structural check it makes itself (too many walk names) and what the
//! Linux client uses for a bad header.  `ENOBUFS` would tell the guest the
//! host is short of buffers, and `EPROTO` is not an errno 9p.c ever sends.

use std::fmt;

use crate::errno::{self, Errno};
use crate::proto::Proto;

/// Why a message failed to decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// Fewer than 7 bytes: not even a header.
    ShortHeader {
        /// Bytes available.
        available: usize,
    },
    /// The size field is below the 7-byte header size.
    SizeTooSmall {
        /// The size field.
        size: u32,
    },
    /// The size field exceeds the negotiated msize.
    SizeExceedsMsize {
        /// The size field.
        size: u32,
        /// The msize the decoder was given.
        msize: u32,
    },
    /// The size field does not match the bytes available.
    SizeMismatch {
        /// The size field.
        size: u32,
        /// Bytes available.
        available: usize,
    },
    /// Not a message type this decoder knows (including an R type given to
    /// the T decoder and vice versa, and Tlerror/Terror which do not exist).
    UnknownType(u8),
    /// A known type that does not exist in the negotiated protocol.
    NotInProtocol {
        /// The message type.
        typ: u8,
        /// The protocol the decoder was given.
        proto: Proto,
    },
    /// A field or string runs past the end of the message.
    Truncated,
    /// Bytes left over after the body.
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// More than [`P9_MAXWELEM`](crate::consts::P9_MAXWELEM) walk elements.
    TooManyWalkElements(u16),
    /// A Tread count whose reply could not fit in msize.
    CountTooLarge {
        /// The count field.
        count: u32,
        /// The largest count allowed (msize − 11).
        max: u32,
    },
    /// A count field (Twrite, Rread, Rreaddir) that does not match the
    /// data bytes present.
    CountMismatch {
        /// The count field.
        count: u32,
        /// Data bytes present.
        available: usize,
    },
    /// A string contains a NUL byte.
    NulInString,
    /// A 9P2000.u stat's size field does not match its contents.
    BadStatSize,
}

impl DecodeErrorKind {
    /// The errno to reply with (see the module documentation).
    pub fn errno(self) -> Errno {
        match self {
            DecodeErrorKind::SizeExceedsMsize { .. } | DecodeErrorKind::CountTooLarge { .. } => {
                errno::EMSGSIZE
            }
            DecodeErrorKind::UnknownType(_) | DecodeErrorKind::NotInProtocol { .. } => {
                errno::EOPNOTSUPP
            }
            DecodeErrorKind::ShortHeader { .. }
            | DecodeErrorKind::SizeTooSmall { .. }
            | DecodeErrorKind::SizeMismatch { .. }
            | DecodeErrorKind::Truncated
            | DecodeErrorKind::TrailingBytes { .. }
            | DecodeErrorKind::TooManyWalkElements(_)
            | DecodeErrorKind::CountMismatch { .. }
            | DecodeErrorKind::NulInString
            | DecodeErrorKind::BadStatSize => errno::EINVAL,
        }
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::ShortHeader { available } => {
                write!(f, "message of {available} bytes has no 7-byte header")
            }
            DecodeErrorKind::SizeTooSmall { size } => write!(f, "size field {size} < 7"),
            DecodeErrorKind::SizeExceedsMsize { size, msize } => {
                write!(f, "size field {size} exceeds msize {msize}")
            }
            DecodeErrorKind::SizeMismatch { size, available } => {
                write!(f, "size field {size} but {available} bytes available")
            }
            DecodeErrorKind::UnknownType(t) => write!(f, "unknown message type {t}"),
            DecodeErrorKind::NotInProtocol { typ, proto } => {
                write!(f, "message type {typ} does not exist in {proto}")
            }
            DecodeErrorKind::Truncated => write!(f, "field runs past the end of the message"),
            DecodeErrorKind::TrailingBytes { extra } => {
                write!(f, "{extra} bytes after the message body")
            }
            DecodeErrorKind::TooManyWalkElements(n) => write!(f, "{n} walk elements (max 16)"),
            DecodeErrorKind::CountTooLarge { count, max } => {
                write!(f, "count {count} exceeds {max} (msize - 11)")
            }
            DecodeErrorKind::CountMismatch { count, available } => {
                write!(f, "count {count} but {available} data bytes present")
            }
            DecodeErrorKind::NulInString => write!(f, "NUL byte in string"),
            DecodeErrorKind::BadStatSize => write!(f, "stat size field does not match contents"),
        }
    }
}

/// A decode failure: what went wrong, the errno to answer with, and the
/// header fields when they were readable so the engine can still send an
/// error reply for that tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    kind: DecodeErrorKind,
    tag: Option<u16>,
    typ: Option<u8>,
}

impl DecodeError {
    pub(crate) fn new(kind: DecodeErrorKind, tag: Option<u16>, typ: Option<u8>) -> Self {
        DecodeError { kind, tag, typ }
    }

    /// What went wrong.
    pub fn kind(&self) -> DecodeErrorKind {
        self.kind
    }

    /// The errno to reply with.
    pub fn errno(&self) -> Errno {
        self.kind.errno()
    }

    /// The message's tag, if the 7-byte header was present (even when the
    /// size field in it is wrong).
    pub fn tag(&self) -> Option<u16> {
        self.tag
    }

    /// The message's type byte, if the header was present.
    pub fn msg_type(&self) -> Option<u8> {
        self.typ
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "9P decode error: {}", self.kind)?;
        if let Some(t) = self.typ {
            write!(f, " (type {t}")?;
            if let Some(tag) = self.tag {
                write!(f, ", tag {tag}")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

impl std::error::Error for DecodeError {}

/// An encode failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffers are too small for the message.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A string longer than 65535 bytes.
    StringTooLong {
        /// Its length.
        len: usize,
    },
    /// More list elements than the 16-bit count field can carry.
    TooManyElements {
        /// The number of elements.
        count: usize,
    },
    /// The message would be longer than the 32-bit size field allows, or a
    /// .u stat longer than its 16-bit size field allows.
    MessageTooLarge {
        /// The size it would have.
        size: usize,
    },
    /// A reply writer was finished with a count larger than its data area.
    CountExceedsCapacity {
        /// The count given.
        count: usize,
        /// The data area's size.
        capacity: usize,
    },
}

impl EncodeError {
    /// An errno describing the failure (`ENOBUFS` for a short buffer, as
    /// 9p.c's `v9fs_packunpack`; `ENAMETOOLONG` for a long string; `E2BIG`
    /// for too many elements; `EMSGSIZE` for an oversized message; `ERANGE`
    /// for a count beyond the data area).
    pub fn errno(&self) -> Errno {
        match self {
            EncodeError::BufferTooSmall { .. } => errno::ENOBUFS,
            EncodeError::StringTooLong { .. } => errno::ENAMETOOLONG,
            EncodeError::TooManyElements { .. } => errno::E2BIG,
            EncodeError::MessageTooLarge { .. } => errno::EMSGSIZE,
            EncodeError::CountExceedsCapacity { .. } => errno::ERANGE,
        }
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed, available } => {
                write!(f, "9P encode: need {needed} bytes, buffer has {available}")
            }
            EncodeError::StringTooLong { len } => {
                write!(f, "9P encode: string of {len} bytes exceeds 65535")
            }
            EncodeError::TooManyElements { count } => {
                write!(f, "9P encode: {count} elements exceed 65535")
            }
            EncodeError::MessageTooLarge { size } => {
                write!(f, "9P encode: message of {size} bytes is too large")
            }
            EncodeError::CountExceedsCapacity { count, capacity } => {
                write!(f, "9P encode: count {count} exceeds data area {capacity}")
            }
        }
    }
}

impl std::error::Error for EncodeError {}
