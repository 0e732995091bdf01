// SPDX-License-Identifier: GPL-2.0-or-later
//! Message framing: the header, its checks, and the encoders every
//! message shares (the order of the checks is in [`crate::msg`]).

use crate::consts::{HEADER_SIZE, RREAD_HEADER_SIZE};
use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::proto::{Dialects, Proto};
use crate::sg::{total_len_mut, Counter, SgReader, SgView, SgWriter, Sink, SliceWriter};
use crate::types::VecSink;

/// A message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The size field: the whole message's length.
    pub size: u32,
    /// The message type.
    pub typ: u8,
    /// The tag.
    pub tag: u16,
}

impl Header {
    /// Read the header of a message without validating anything, or `None`
    /// if fewer than 7 bytes are present.
    pub fn peek(sg: SgView<'_>) -> Option<Header> {
        if let Some(b) = sg.prefix(HEADER_SIZE) {
            return Some(Header {
                size: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                typ: b[4],
                tag: u16::from_le_bytes([b[5], b[6]]),
            });
        }
        let mut r = SgReader::new(sg);
        Some(Header {
            size: r.u32().ok()?,
            typ: r.u8().ok()?,
            tag: r.u16().ok()?,
        })
    }
}

/// How the size field must relate to the bytes given to the decoder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Framing {
    /// The bytes are exactly one message: `size` must equal their length.
    #[default]
    Exact,
    /// The message is a prefix of the bytes: `size` may be less than their
    /// length and the excess is ignored.
    Prefix,
}

/// Validate the header (steps 1–4 of the module documentation) and return
/// it with a reader over the body.
pub(super) fn frame(
    sg: SgView<'_>,
    msize: u32,
    framing: Framing,
) -> Result<(Header, SgReader<'_>), DecodeError> {
    let available = sg.len();
    let Some(h) = Header::peek(sg) else {
        return Err(DecodeError::new(
            DecodeErrorKind::ShortHeader { available },
            None,
            None,
        ));
    };
    let err = |kind| DecodeError::new(kind, Some(h.tag), Some(h.typ));
    let size = h.size as usize;
    if size < HEADER_SIZE {
        return Err(err(DecodeErrorKind::SizeTooSmall { size: h.size }));
    }
    if h.size > msize {
        return Err(err(DecodeErrorKind::SizeExceedsMsize {
            size: h.size,
            msize,
        }));
    }
    let fits = match framing {
        Framing::Exact => size == available,
        Framing::Prefix => size <= available,
    };
    if !fits {
        return Err(err(DecodeErrorKind::SizeMismatch {
            size: h.size,
            available,
        }));
    }
    match sg.slice(HEADER_SIZE, size - HEADER_SIZE) {
        Some(body) => Ok((h, SgReader::new(body))),
        None => Err(err(DecodeErrorKind::Truncated)),
    }
}

/// Step 5 of the module documentation: `dialects` are those of the
/// message type `typ` (`None` for a type its table does not list).
pub(super) fn check_type(
    typ: u8,
    dialects: Option<Dialects>,
    proto: Proto,
) -> Result<(), DecodeErrorKind> {
    match dialects {
        None => Err(DecodeErrorKind::UnknownType(typ)),
        Some(d) if !d.allows(proto) => Err(DecodeErrorKind::NotInProtocol { typ, proto }),
        Some(_) => Ok(()),
    }
}

/// Finish a body decode: attach the header to errors and refuse trailing
/// bytes.
pub(super) fn finish<T>(
    h: Header,
    r: &SgReader<'_>,
    body: Result<T, DecodeErrorKind>,
) -> Result<(u16, T), DecodeError> {
    let err = |kind| DecodeError::new(kind, Some(h.tag), Some(h.typ));
    let msg = body.map_err(err)?;
    if r.remaining() != 0 {
        return Err(err(DecodeErrorKind::TrailingBytes {
            extra: r.remaining(),
        }));
    }
    Ok((h.tag, msg))
}

/// The largest Tread/Treaddir count whose reply fits in `msize`.
pub fn max_read_count(msize: u32) -> u32 {
    msize.saturating_sub(RREAD_HEADER_SIZE as u32)
}

/// A message that can be encoded: its type byte and its body.
pub(super) trait Body {
    fn typ(&self) -> u8;
    fn body<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError>;

    /// Total encoded size, or an error if the body cannot be encoded.
    fn checked_size(&self) -> Result<(usize, u32), EncodeError> {
        let mut c = Counter::default();
        self.body(&mut c)?;
        let size = c.0.saturating_add(HEADER_SIZE);
        let size32 = u32::try_from(size).map_err(|_| EncodeError::MessageTooLarge { size })?;
        Ok((size, size32))
    }

    fn encode_sink<S: Sink + ?Sized>(
        &self,
        tag: u16,
        size: u32,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        s.u32(size)?;
        s.u8(self.typ())?;
        s.u16(tag)?;
        self.body(s)
    }
}

pub(super) fn encode_msg<B: Body>(
    b: &B,
    tag: u16,
    out: &mut [&mut [u8]],
) -> Result<usize, EncodeError> {
    let (size, size32) = b.checked_size()?;
    let available = total_len_mut(out);
    if available < size {
        return Err(EncodeError::BufferTooSmall {
            needed: size,
            available,
        });
    }
    match out.first_mut() {
        // The whole message fits in the first buffer: plain stores.
        Some(first) if first.len() >= size => {
            b.encode_sink(tag, size32, &mut SliceWriter::new(&mut first[..size]))?
        }
        _ => b.encode_sink(tag, size32, &mut SgWriter::at(out, 0))?,
    }
    Ok(size)
}

pub(super) fn encode_vec<B: Body>(b: &B, tag: u16) -> Result<Vec<u8>, EncodeError> {
    let (size, size32) = b.checked_size()?;
    let mut v = VecSink(Vec::with_capacity(size));
    b.encode_sink(tag, size32, &mut v)?;
    Ok(v.0)
}

pub(super) fn size_of<B: Body>(b: &B) -> usize {
    b.checked_size().map_or(usize::MAX, |(size, _)| size)
}
