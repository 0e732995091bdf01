// SPDX-License-Identifier: GPL-2.0-or-later
//! Scatter/gather buffers.
//!
//! The engine never owns guest memory: a request is a list of byte slices
//! (`&[&[u8]]`) and the reply goes into a list of mutable byte slices
//! (`&mut [&mut [u8]]`).  Segments have arbitrary lengths (zero included) and
//! any field may straddle a segment boundary.
//!
//! * [`SgView`] is a borrowed, read-only byte range over such a list; bulk
//!   payloads (Twrite data, Rread data) are exposed as views, never copied.
//! * [`SgViewMut`] is a mutable byte range over an output list; the reply
//!   writers in [`crate::reply`] hand one out so a backend can `preadv`
//!   straight into the reply buffers.
//! * The crate-internal `SgReader` and `SgWriter` are the decode and encode
//!   cursors.

use std::fmt;

use crate::error::{DecodeErrorKind, EncodeError};

/// A borrowed, read-only byte range spread over one or more segments.
///
/// Cheap to copy (three words).  The bytes are never copied unless asked
/// ([`SgView::copy_to`], [`SgView::to_vec`]); [`SgView::pieces`] yields
/// sub-slices of the original segments.
#[derive(Clone, Copy)]
pub struct SgView<'a> {
    /// The current segment, starting at the view's first byte.  May extend
    /// past `len`.
    head: &'a [u8],
    /// The segments after `head`.
    rest: &'a [&'a [u8]],
    /// Bytes in the view; never more than `head` plus `rest` hold.
    len: usize,
}

impl<'a> SgView<'a> {
    /// A view over all bytes of `segs`, in order.
    pub fn new(segs: &'a [&'a [u8]]) -> Self {
        let len = segs
            .iter()
            .fold(0usize, |acc, s| acc.saturating_add(s.len()));
        match segs.split_first() {
            Some((head, rest)) => SgView { head, rest, len },
            None => SgView::empty(),
        }
    }

    /// The view's first `n` bytes when they are contiguous (in its first
    /// segment), without copying.
    #[inline]
    pub(crate) fn prefix(&self, n: usize) -> Option<&'a [u8]> {
        if self.len < n {
            return None;
        }
        self.head.get(..n)
    }

    /// A view over one contiguous slice.
    pub fn from_slice(buf: &'a [u8]) -> Self {
        SgView {
            head: buf,
            rest: &[],
            len: buf.len(),
        }
    }

    /// An empty view.
    pub const fn empty() -> Self {
        SgView {
            head: &[],
            rest: &[],
            len: 0,
        }
    }

    /// Number of bytes in the view.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the view holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The non-empty pieces of the view, in order, as sub-slices of the
    /// original segments.
    pub fn pieces(&self) -> Pieces<'a> {
        Pieces {
            head: self.head,
            rest: self.rest,
            remaining: self.len,
        }
    }

    /// The view as one slice, if its bytes are contiguous (a single piece or
    /// empty).
    pub fn as_contiguous(&self) -> Option<&'a [u8]> {
        let mut pieces = self.pieces();
        match (pieces.next(), pieces.next()) {
            (None, _) => Some(&[]),
            (Some(p), None) => Some(p),
            (Some(_), Some(_)) => None,
        }
    }

    /// Copy the first `min(self.len(), dst.len())` bytes into `dst`; returns
    /// the number copied.
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        let mut done = 0;
        for piece in self.pieces() {
            let n = piece.len().min(dst.len() - done);
            dst[done..done + n].copy_from_slice(&piece[..n]);
            done += n;
            if done == dst.len() {
                break;
            }
        }
        done
    }

    /// Copy the whole view into a new vector (for tests and the client).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len);
        for piece in self.pieces() {
            v.extend_from_slice(piece);
        }
        v
    }

    /// The sub-view of `len` bytes starting at `start`, or `None` if it runs
    /// past the end.
    pub fn slice(&self, start: usize, len: usize) -> Option<SgView<'a>> {
        let end = start.checked_add(len)?;
        if end > self.len {
            return None;
        }
        let mut v = self.advance(start);
        v.len = len;
        Some(v)
    }

    /// Split into the first `mid` bytes and the rest, or `None` if `mid`
    /// exceeds the length.
    pub fn split_at(&self, mid: usize) -> Option<(SgView<'a>, SgView<'a>)> {
        if mid > self.len {
            return None;
        }
        let mut first = *self;
        first.len = mid;
        Some((first, self.advance(mid)))
    }

    /// Whether the view's bytes equal `other`.
    pub fn eq_bytes(&self, other: &[u8]) -> bool {
        if self.len != other.len() {
            return false;
        }
        let mut off = 0;
        for piece in self.pieces() {
            if piece != &other[off..off + piece.len()] {
                return false;
            }
            off += piece.len();
        }
        true
    }

    /// The view without its first `n` bytes (all of them if `n` exceeds the
    /// length).
    fn advance(&self, n: usize) -> SgView<'a> {
        let mut n = n.min(self.len);
        let mut v = *self;
        v.len -= n;
        loop {
            if n < v.head.len() {
                v.head = &v.head[n..];
                return v;
            }
            n -= v.head.len();
            match v.rest.split_first() {
                Some((head, rest)) => {
                    v.head = head;
                    v.rest = rest;
                }
                None => {
                    v.head = &[];
                    return v;
                }
            }
        }
    }
}

impl Default for SgView<'_> {
    fn default() -> Self {
        SgView::empty()
    }
}

impl PartialEq for SgView<'_> {
    fn eq(&self, other: &Self) -> bool {
        if self.len != other.len {
            return false;
        }
        let mut a = self.pieces().flat_map(|p| p.iter());
        let mut b = other.pieces().flat_map(|p| p.iter());
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                (Some(x), Some(y)) if x == y => {}
                _ => return false,
            }
        }
    }
}

impl Eq for SgView<'_> {}

impl fmt::Debug for SgView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOW: usize = 32;
        write!(f, "SgView({} bytes", self.len)?;
        if self.len > 0 {
            write!(f, ": ")?;
            for b in self.pieces().flat_map(|p| p.iter()).take(SHOW) {
                write!(f, "{b:02x}")?;
            }
            if self.len > SHOW {
                write!(f, "...")?;
            }
        }
        write!(f, ")")
    }
}

/// Iterator over the non-empty pieces of an [`SgView`].
#[derive(Clone)]
pub struct Pieces<'a> {
    head: &'a [u8],
    rest: &'a [&'a [u8]],
    remaining: usize,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while self.remaining > 0 {
            if !self.head.is_empty() {
                let n = self.head.len().min(self.remaining);
                let piece = &self.head[..n];
                self.remaining -= n;
                self.head = &[];
                return Some(piece);
            }
            let (head, rest) = self.rest.split_first()?;
            self.head = head;
            self.rest = rest;
        }
        None
    }
}

/// A mutable byte range over a list of output segments, for writing a
/// payload in place (e.g. the data area of an Rread).
///
/// `'s` is the borrow of the segment list, `'b` the lifetime of the
/// segments themselves.
pub struct SgViewMut<'s, 'b> {
    segs: &'s mut [&'b mut [u8]],
    /// Offset of the first byte of the range in the list.
    start: usize,
    /// Length of the range; the list holds at least `start + len` bytes.
    len: usize,
}

impl<'s, 'b> SgViewMut<'s, 'b> {
    /// The range `start..start + len` of `segs`, or `None` if the segments
    /// are too short.
    pub fn new(segs: &'s mut [&'b mut [u8]], start: usize, len: usize) -> Option<Self> {
        let end = start.checked_add(len)?;
        if total_len_mut(segs) < end {
            return None;
        }
        Some(SgViewMut { segs, start, len })
    }

    /// [`SgViewMut::new`] for a range the caller knows is in bounds.
    pub(crate) fn from_parts(segs: &'s mut [&'b mut [u8]], start: usize, len: usize) -> Self {
        SgViewMut { segs, start, len }
    }

    /// Number of bytes in the range.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The non-empty pieces of the range, in order, as mutable sub-slices of
    /// the output segments (e.g. to build `IoSliceMut`s for `preadv`).
    pub fn pieces_mut(&mut self) -> PiecesMut<'_, 'b> {
        PiecesMut {
            segs: self.segs.iter_mut(),
            skip: self.start,
            remaining: self.len,
        }
    }

    /// Copy `src` into the range at `offset`, truncated at the end of the
    /// range; returns the number of bytes copied.
    pub fn write_at(&mut self, offset: usize, src: &[u8]) -> usize {
        if offset >= self.len {
            return 0;
        }
        let n = src.len().min(self.len - offset);
        let mut w = SgWriter::at(self.segs, self.start + offset);
        match w.put(&src[..n]) {
            Ok(()) => n,
            Err(_) => 0,
        }
    }

    /// Fill the range with zero bytes.
    pub fn zero(&mut self) {
        for piece in self.pieces_mut() {
            piece.fill(0);
        }
    }
}

impl fmt::Debug for SgViewMut<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SgViewMut")
            .field("start", &self.start)
            .field("len", &self.len)
            .finish()
    }
}

/// Iterator over the non-empty pieces of an [`SgViewMut`].
pub struct PiecesMut<'s, 'b> {
    segs: std::slice::IterMut<'s, &'b mut [u8]>,
    skip: usize,
    remaining: usize,
}

impl<'s> Iterator for PiecesMut<'s, '_> {
    type Item = &'s mut [u8];

    fn next(&mut self) -> Option<&'s mut [u8]> {
        while self.remaining > 0 {
            let seg: &'s mut [u8] = self.segs.next()?;
            if self.skip >= seg.len() {
                self.skip -= seg.len();
                continue;
            }
            let seg = &mut seg[self.skip..];
            self.skip = 0;
            let n = seg.len().min(self.remaining);
            self.remaining -= n;
            return Some(&mut seg[..n]);
        }
        None
    }
}

/// Total length of a list of output segments (saturating).
pub fn total_len_mut(segs: &[&mut [u8]]) -> usize {
    segs.iter()
        .fold(0usize, |acc, s| acc.saturating_add(s.len()))
}

/// Decode cursor over an [`SgView`].
pub(crate) struct SgReader<'a> {
    view: SgView<'a>,
}

impl<'a> SgReader<'a> {
    pub(crate) fn new(view: SgView<'a>) -> Self {
        SgReader { view }
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.view.len
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeErrorKind> {
        if self.view.len < N {
            return Err(DecodeErrorKind::Truncated);
        }
        let mut out = [0u8; N];
        if self.view.head.len() >= N {
            out.copy_from_slice(&self.view.head[..N]);
        } else {
            self.view.copy_to(&mut out);
        }
        self.view = self.view.advance(N);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeErrorKind> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeErrorKind> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeErrorKind> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeErrorKind> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// The next `n` bytes as a view, without copying.
    pub(crate) fn view(&mut self, n: usize) -> Result<SgView<'a>, DecodeErrorKind> {
        let (first, rest) = self.view.split_at(n).ok_or(DecodeErrorKind::Truncated)?;
        self.view = rest;
        Ok(first)
    }

    /// A 9P string (`len[2] bytes[len]`), copied out (into the string
    /// itself when short: no allocation).  The length is checked against
    /// the remaining bytes before anything is allocated, so the allocation
    /// never exceeds the input size; embedded NUL bytes are rejected.
    pub(crate) fn p9string(&mut self) -> Result<crate::string::P9String, DecodeErrorKind> {
        let len = usize::from(self.u16()?);
        if let Some(bytes) = self.view.prefix(len) {
            if bytes.contains(&0) {
                return Err(DecodeErrorKind::NulInString);
            }
            self.view = self.view.advance(len);
            return Ok(crate::string::P9String::copy_from(bytes));
        }
        let bytes = self.view(len)?;
        if bytes.pieces().any(|p| p.contains(&0)) {
            return Err(DecodeErrorKind::NulInString);
        }
        Ok(crate::string::P9String::new(bytes.to_vec()))
    }

    /// [`SgReader::p9string`]'s bytes (for the tests).
    #[cfg(test)]
    pub(crate) fn string(&mut self) -> Result<Vec<u8>, DecodeErrorKind> {
        self.p9string().map(crate::string::P9String::into_bytes)
    }
}

/// Destination of an encoder: either a real writer or a byte counter, so
/// that sizes and encodings come from the same code.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError>;

    fn u8(&mut self, v: u8) -> Result<(), EncodeError> {
        self.put(&[v])
    }

    fn u16(&mut self, v: u16) -> Result<(), EncodeError> {
        self.put(&v.to_le_bytes())
    }

    fn u32(&mut self, v: u32) -> Result<(), EncodeError> {
        self.put(&v.to_le_bytes())
    }

    fn u64(&mut self, v: u64) -> Result<(), EncodeError> {
        self.put(&v.to_le_bytes())
    }

    /// A 9P string: `len[2] bytes[len]`.
    fn string(&mut self, s: &[u8]) -> Result<(), EncodeError> {
        let len =
            u16::try_from(s.len()).map_err(|_| EncodeError::StringTooLong { len: s.len() })?;
        self.u16(len)?;
        self.put(s)
    }

    /// The bytes of a view.
    fn view(&mut self, v: &SgView<'_>) -> Result<(), EncodeError> {
        for piece in v.pieces() {
            self.put(piece)?;
        }
        Ok(())
    }
}

/// A [`Sink`] that only counts bytes.
#[derive(Default)]
pub(crate) struct Counter(pub(crate) usize);

impl Sink for Counter {
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.0 = self.0.saturating_add(bytes.len());
        Ok(())
    }

    // Fixed sizes, so that a sizing pass is a few additions.
    #[inline]
    fn u8(&mut self, _: u8) -> Result<(), EncodeError> {
        self.0 = self.0.saturating_add(1);
        Ok(())
    }

    #[inline]
    fn u16(&mut self, _: u16) -> Result<(), EncodeError> {
        self.0 = self.0.saturating_add(2);
        Ok(())
    }

    #[inline]
    fn u32(&mut self, _: u32) -> Result<(), EncodeError> {
        self.0 = self.0.saturating_add(4);
        Ok(())
    }

    #[inline]
    fn u64(&mut self, _: u64) -> Result<(), EncodeError> {
        self.0 = self.0.saturating_add(8);
        Ok(())
    }
}

/// Encode cursor over one contiguous buffer (the common case: a reply
/// that fits in the first reply buffer), with fixed-size stores for the
/// integer fields instead of a copy loop per field.
pub(crate) struct SliceWriter<'b> {
    buf: &'b mut [u8],
    off: usize,
}

impl<'b> SliceWriter<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        SliceWriter { buf, off: 0 }
    }

    #[inline]
    fn fixed<const N: usize>(&mut self, v: [u8; N]) -> Result<(), EncodeError> {
        match self.buf.get_mut(self.off..self.off + N) {
            Some(dst) => {
                dst.copy_from_slice(&v);
                self.off += N;
                Ok(())
            }
            None => Err(EncodeError::BufferTooSmall {
                needed: N,
                available: self.buf.len() - self.off,
            }),
        }
    }
}

impl Sink for SliceWriter<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let end = self.off.saturating_add(bytes.len());
        match self.buf.get_mut(self.off..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.off = end;
                Ok(())
            }
            None => Err(EncodeError::BufferTooSmall {
                needed: bytes.len(),
                available: self.buf.len() - self.off,
            }),
        }
    }

    #[inline]
    fn u8(&mut self, v: u8) -> Result<(), EncodeError> {
        self.fixed([v])
    }

    #[inline]
    fn u16(&mut self, v: u16) -> Result<(), EncodeError> {
        self.fixed(v.to_le_bytes())
    }

    #[inline]
    fn u32(&mut self, v: u32) -> Result<(), EncodeError> {
        self.fixed(v.to_le_bytes())
    }

    #[inline]
    fn u64(&mut self, v: u64) -> Result<(), EncodeError> {
        self.fixed(v.to_le_bytes())
    }
}

/// Encode cursor over a list of output segments.
pub(crate) struct SgWriter<'o, 'b> {
    segs: &'o mut [&'b mut [u8]],
    /// Current segment.
    idx: usize,
    /// Offset in the current segment; at most its length.
    off: usize,
}

impl<'o, 'b> SgWriter<'o, 'b> {
    /// A writer positioned `pos` bytes into `segs` (at the end if `pos` is
    /// past it; writing then fails).
    pub(crate) fn at(segs: &'o mut [&'b mut [u8]], pos: usize) -> Self {
        let mut idx = 0;
        let mut pos = pos;
        while let Some(seg) = segs.get(idx) {
            if pos < seg.len() {
                break;
            }
            pos -= seg.len();
            idx += 1;
        }
        let off = if idx < segs.len() { pos } else { 0 };
        SgWriter { segs, idx, off }
    }
}

impl Sink for SgWriter<'_, '_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let mut src = bytes;
        while !src.is_empty() {
            let Some(seg) = self.segs.get_mut(self.idx) else {
                return Err(EncodeError::BufferTooSmall {
                    needed: src.len(),
                    available: 0,
                });
            };
            let room = seg.len() - self.off;
            if room == 0 {
                self.idx += 1;
                self.off = 0;
                continue;
            }
            let n = room.min(src.len());
            seg[self.off..self.off + n].copy_from_slice(&src[..n]);
            self.off += n;
            src = &src[n..];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
