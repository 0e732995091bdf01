// SPDX-License-Identifier: GPL-2.0-or-later
//! Replies as the client hands them out, and what can go wrong with them.

use std::fmt;

use p9_wire::msgtype::{RERROR, RLERROR};
use p9_wire::{DecodeError, Errno, Header, Proto, Rmessage, SgView};

/// A decoded-and-checked reply that owns its bytes.
///
/// It was checked when received (it decodes in the session's protocol and
/// msize, carries the request's tag and answers the request's type), so
/// [`Reply::msg`] cannot fail.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    bytes: Vec<u8>,
    proto: Proto,
    msize: u32,
}

/// A reply or the errno of an error reply.
pub type Response = Result<Reply, Errno>;

impl Reply {
    /// The reply, decoded (borrowing Rread/Rreaddir data from the bytes).
    pub fn msg(&self) -> Rmessage<'_> {
        match Rmessage::decode_slice(&self.bytes, self.proto, self.msize) {
            Ok((_, msg)) => msg,
            // Checked in `check`, with the same protocol and msize.
            Err(e) => unreachable!("a checked reply no longer decodes: {e:?}"),
        }
    }

    /// The reply's tag.
    pub fn tag(&self) -> u16 {
        self.header().tag
    }

    /// The reply's header.
    pub fn header(&self) -> Header {
        match Header::peek(SgView::from_slice(&self.bytes)) {
            Some(h) => h,
            None => unreachable!("a checked reply has a header"),
        }
    }

    /// The reply's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The reply's bytes, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The protocol it was decoded with.
    pub fn proto(&self) -> Proto {
        self.proto
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reply({:?})", self.msg())
    }
}

/// Why a request did not give a reply of the expected type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The server answered with an error (`Rlerror`/`Rerror`).
    Errno(Errno),
    /// The server sent no reply.
    NoReply,
    /// The reply does not decode in the session's protocol and msize
    /// (this includes an `Rerror` in a 9P2000.L session and an `Rlerror`
    /// in a 9P2000.u one).
    Undecodable {
        /// The decoder's complaint.
        error: DecodeError,
        /// The reply.
        bytes: Vec<u8>,
    },
    /// The reply carries another tag than the request.
    WrongTag {
        /// The request's tag.
        expected: u16,
        /// The reply.
        bytes: Vec<u8>,
    },
    /// The reply's type does not answer the request's.
    WrongType {
        /// The reply type expected (request type + 1).
        expected: u8,
        /// The reply.
        bytes: Vec<u8>,
    },
}

impl CallError {
    /// The errno, for [`CallError::Errno`].
    pub fn errno(&self) -> Option<Errno> {
        match self {
            CallError::Errno(e) => Some(*e),
            _ => None,
        }
    }
}

/// At most the first 64 bytes, in hex.
fn hex(bytes: &[u8]) -> String {
    let mut s: String = bytes.iter().take(64).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > 64 {
        s.push_str("...");
    }
    s
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Errno(e) => write!(f, "error reply: {e}"),
            CallError::NoReply => f.write_str("no reply"),
            CallError::Undecodable { error, bytes } => write!(
                f,
                "undecodable reply ({error}); {} bytes: {}",
                bytes.len(),
                hex(bytes)
            ),
            CallError::WrongTag { expected, bytes } => write!(
                f,
                "reply for another tag (expected {expected}); {} bytes: {}",
                bytes.len(),
                hex(bytes)
            ),
            CallError::WrongType { expected, bytes } => write!(
                f,
                "reply of the wrong type (expected type {expected}); {} bytes: {}",
                bytes.len(),
                hex(bytes)
            ),
        }
    }
}

impl std::error::Error for CallError {}

/// Check reply `bytes` for a request tagged `tag` whose reply type should
/// be `expect` (`None`: any type), decoding with `proto` and `msize`.
pub(crate) fn check(
    bytes: Option<Vec<u8>>,
    tag: Option<u16>,
    expect: Option<u8>,
    proto: Proto,
    msize: u32,
) -> Result<Reply, CallError> {
    let bytes = bytes.ok_or(CallError::NoReply)?;
    let (rtag, msg) = match Rmessage::decode_slice(&bytes, proto, msize) {
        Ok(m) => m,
        Err(error) => {
            return Err(CallError::Undecodable {
                error,
                bytes: bytes.clone(),
            })
        }
    };
    if let Some(tag) = tag {
        if rtag != tag {
            return Err(CallError::WrongTag {
                expected: tag,
                bytes: bytes.clone(),
            });
        }
    }
    match msg {
        Rmessage::Lerror { ecode } => return Err(CallError::Errno(ecode)),
        Rmessage::Error { errno, .. } => return Err(CallError::Errno(errno)),
        _ => {}
    }
    let typ = msg.msg_type();
    debug_assert!(typ != RLERROR && typ != RERROR);
    if let Some(expected) = expect {
        if typ != expected {
            return Err(CallError::WrongType {
                expected,
                bytes: bytes.clone(),
            });
        }
    }
    Ok(Reply {
        bytes,
        proto,
        msize,
    })
}

/// `check`, with errors other than an error reply turned into a panic
/// naming `what`.  `Ok(None)`: no reply.
pub(crate) fn check_or_panic(
    what: &str,
    bytes: Option<Vec<u8>>,
    tag: Option<u16>,
    expect: Option<u8>,
    proto: Proto,
    msize: u32,
) -> Option<Response> {
    match check(bytes, tag, expect, proto, msize) {
        Ok(r) => Some(Ok(r)),
        Err(CallError::Errno(e)) => Some(Err(e)),
        Err(CallError::NoReply) => None,
        Err(e) => panic!("p9-client: {what} ({proto}, msize {msize}): {e}"),
    }
}
