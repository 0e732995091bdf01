// SPDX-License-Identifier: GPL-2.0-or-later
//! Writers for bulk replies, straight into the reply segments.
//!
//! Rread and Rreaddir are `size[4] type[1] tag[2] count[4] data[count]`.
//! Each writer reserves the 11-byte header, exposes or fills the data area,
//! and on `finish` writes the header with the real count.  The data area
//! is capped at the smallest of the request's count, `msize - 11` and the
//! output buffers' size minus 11 (9p.c `v9fs_readdir` clamps the same way
//! against the transport's response buffer).
//!
//! * [`ReadReply`]: the backend reads file data directly into
//!   [`ReadReply::data`] (e.g. `preadv` on its pieces).
//! * [`ReaddirReply`]: 9P2000.L directory entries, appended until the next
//!   one does not fit.
//! * [`StatDirReply`]: 9P2000.u directory reads (an Rread whose data is
//!   stat structures), appended the same way.
//!
//! Nothing is written to the header before `finish`; a writer dropped
//! without finishing leaves the header bytes untouched (the data area may
//! hold partial data).

use crate::consts::RREAD_HEADER_SIZE;
use crate::error::EncodeError;
use crate::msgtype as mt;
use crate::sg::{total_len_mut, SgViewMut, SgWriter, Sink, SliceWriter};
use crate::types::{Dirent, Qid, Stat};
use crate::wire::Encode;

/// Whether an entry was appended.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// The entry was appended.
    Added,
    /// The entry did not fit; nothing was written.  The engine should
    /// remember where it stopped (e.g. seek the directory back) and
    /// finish the reply.
    Full,
}

/// The shared part: output segments, tag, data capacity.
struct Counted<'o, 'b> {
    out: &'o mut [&'b mut [u8]],
    tag: u16,
    cap: usize,
}

impl<'o, 'b> Counted<'o, 'b> {
    fn new(
        out: &'o mut [&'b mut [u8]],
        tag: u16,
        msize: u32,
        count: u32,
    ) -> Result<Self, EncodeError> {
        let available = total_len_mut(out);
        if available < RREAD_HEADER_SIZE {
            return Err(EncodeError::BufferTooSmall {
                needed: RREAD_HEADER_SIZE,
                available,
            });
        }
        let cap = (count as usize)
            .min((msize as usize).saturating_sub(RREAD_HEADER_SIZE))
            .min(available - RREAD_HEADER_SIZE);
        Ok(Counted { out, tag, cap })
    }

    fn finish(self, typ: u8, count: usize) -> Result<usize, EncodeError> {
        if count > self.cap {
            return Err(EncodeError::CountExceedsCapacity {
                count,
                capacity: self.cap,
            });
        }
        // cap <= msize - 11 <= u32::MAX - 11, so both fit.
        let size = RREAD_HEADER_SIZE + count;
        let size32 = u32::try_from(size).map_err(|_| EncodeError::MessageTooLarge { size })?;
        let mut w = SgWriter::at(self.out, 0);
        w.u32(size32)?;
        w.u8(typ)?;
        w.u16(self.tag)?;
        w.u32(size32 - RREAD_HEADER_SIZE as u32)?;
        Ok(size)
    }
}

/// Rread writer: the backend writes the payload into [`ReadReply::data`].
///
/// ```
/// use p9_wire::{ReadReply, Rmessage, Proto};
///
/// let mut a = [0u8; 5];
/// let mut b = [0u8; 64];
/// let mut out: [&mut [u8]; 2] = [&mut a, &mut b];
/// let mut reply = ReadReply::new(&mut out, 7, 8192, 4).unwrap();
/// assert_eq!(reply.capacity(), 4);
/// let n = reply.data().write_at(0, b"abc");
/// let len = reply.finish(n).unwrap();
/// assert_eq!(len, 14);
///
/// let mut bytes = a.to_vec();
/// bytes.extend_from_slice(&b[..len - 5]);
/// let (tag, msg) = Rmessage::decode_slice(&bytes, Proto::DotL, 8192).unwrap();
/// assert_eq!(tag, 7);
/// match msg {
///     Rmessage::Read { data } => assert_eq!(data.to_vec(), b"abc"),
///     _ => unreachable!(),
/// }
/// ```
pub struct ReadReply<'o, 'b> {
    c: Counted<'o, 'b>,
}

impl<'o, 'b> ReadReply<'o, 'b> {
    /// Start an Rread for a Tread of `count` bytes, in `out`.  Fails only if
    /// `out` cannot hold the 11-byte header.
    pub fn new(
        out: &'o mut [&'b mut [u8]],
        tag: u16,
        msize: u32,
        count: u32,
    ) -> Result<Self, EncodeError> {
        Ok(ReadReply {
            c: Counted::new(out, tag, msize, count)?,
        })
    }

    /// Size of the data area.
    pub fn capacity(&self) -> usize {
        self.c.cap
    }

    /// The data area (`capacity()` bytes right after the header), spread
    /// over the output segments.
    pub fn data(&mut self) -> SgViewMut<'_, 'b> {
        // The constructor checked that the segments hold 11 + cap bytes.
        SgViewMut::from_parts(self.c.out, RREAD_HEADER_SIZE, self.c.cap)
    }

    /// Write the header for `count` data bytes (which the caller wrote into
    /// the data area); returns the message length.
    pub fn finish(self, count: usize) -> Result<usize, EncodeError> {
        self.c.finish(mt::RREAD, count)
    }
}

/// The part Rreaddir and .u directory reads share: a counted reply whose
/// data area is filled with whole entries until the next does not fit.
struct Entries<'o, 'b> {
    c: Counted<'o, 'b>,
    used: usize,
}

impl<'o, 'b> Entries<'o, 'b> {
    fn new(
        out: &'o mut [&'b mut [u8]],
        tag: u16,
        msize: u32,
        count: u32,
    ) -> Result<Self, EncodeError> {
        Ok(Entries {
            c: Counted::new(out, tag, msize, count)?,
            used: 0,
        })
    }

    /// Write an entry of `n` bytes, or report [`Fit::Full`] (writing
    /// nothing) if it does not fit in the remaining space.
    fn append<E: Entry + ?Sized>(&mut self, n: usize, entry: &E) -> Result<Fit, EncodeError> {
        if n > self.c.cap - self.used {
            return Ok(Fit::Full);
        }
        let at = RREAD_HEADER_SIZE + self.used;
        match self.c.out.first_mut() {
            // Within the first buffer (a reply in one buffer): plain
            // stores, no walk over the segments.
            Some(first) if at + n <= first.len() => {
                entry.encode_to(&mut SliceWriter::new(&mut first[at..at + n]))?
            }
            _ => entry.encode_to(&mut SgWriter::at(self.c.out, at))?,
        }
        self.used += n;
        Ok(Fit::Added)
    }

    fn finish(self, typ: u8) -> Result<usize, EncodeError> {
        let used = self.used;
        self.c.finish(typ, used)
    }
}

/// What [`Entries::append`] writes.
trait Entry {
    fn encode_to<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError>;
}

/// An Rreaddir entry, by its parts.
struct DirentParts<'a> {
    qid: &'a Qid,
    offset: u64,
    typ: u8,
    name: &'a [u8],
}

impl Entry for DirentParts<'_> {
    fn encode_to<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        Dirent::encode_parts(s, self.qid, self.offset, self.typ, self.name)
    }
}

impl Entry for Stat {
    fn encode_to<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        self.encode(s)
    }
}

/// Rreaddir writer: appends 9P2000.L entries (`qid[13] offset[8] type[1]
/// name[s]`) until the next one does not fit.
pub struct ReaddirReply<'o, 'b> {
    e: Entries<'o, 'b>,
}

impl<'o, 'b> ReaddirReply<'o, 'b> {
    /// Start an Rreaddir for a Treaddir of `count` bytes, in `out`.
    pub fn new(
        out: &'o mut [&'b mut [u8]],
        tag: u16,
        msize: u32,
        count: u32,
    ) -> Result<Self, EncodeError> {
        Ok(ReaddirReply {
            e: Entries::new(out, tag, msize, count)?,
        })
    }

    /// Size of the data area.
    pub fn capacity(&self) -> usize {
        self.e.c.cap
    }

    /// Bytes of entries written so far.
    pub fn len(&self) -> usize {
        self.e.used
    }

    /// Whether no entry has been written.
    pub fn is_empty(&self) -> bool {
        self.e.used == 0
    }

    /// Append an entry, or report [`Fit::Full`] (writing nothing) if it
    /// does not fit in the remaining space.  Fails only for a name over
    /// 65535 bytes.
    pub fn push(
        &mut self,
        qid: &Qid,
        offset: u64,
        typ: u8,
        name: &[u8],
    ) -> Result<Fit, EncodeError> {
        if name.len() > usize::from(u16::MAX) {
            return Err(EncodeError::StringTooLong { len: name.len() });
        }
        let n = Dirent::wire_size_for(name.len());
        self.e.append(
            n,
            &DirentParts {
                qid,
                offset,
                typ,
                name,
            },
        )
    }

    /// [`ReaddirReply::push`] for a [`Dirent`].
    pub fn push_dirent(&mut self, d: &Dirent) -> Result<Fit, EncodeError> {
        self.push(&d.qid, d.offset, d.typ, &d.name)
    }

    /// Write the header; returns the message length.
    pub fn finish(self) -> Result<usize, EncodeError> {
        self.e.finish(mt::RREADDIR)
    }
}

/// 9P2000.u directory read writer: an Rread whose data is stat structures,
/// appended until the next one does not fit (9p.c
/// `v9fs_do_readdir_with_stat`).
pub struct StatDirReply<'o, 'b> {
    e: Entries<'o, 'b>,
}

impl<'o, 'b> StatDirReply<'o, 'b> {
    /// Start the Rread for a Tread of `count` bytes on a directory.
    pub fn new(
        out: &'o mut [&'b mut [u8]],
        tag: u16,
        msize: u32,
        count: u32,
    ) -> Result<Self, EncodeError> {
        Ok(StatDirReply {
            e: Entries::new(out, tag, msize, count)?,
        })
    }

    /// Size of the data area.
    pub fn capacity(&self) -> usize {
        self.e.c.cap
    }

    /// Bytes of stats written so far.
    pub fn len(&self) -> usize {
        self.e.used
    }

    /// Whether no stat has been written.
    pub fn is_empty(&self) -> bool {
        self.e.used == 0
    }

    /// Append a stat, or report [`Fit::Full`] (writing nothing).  Fails only
    /// for a stat too large for its 16-bit size field.
    pub fn push(&mut self, stat: &Stat) -> Result<Fit, EncodeError> {
        stat.size_field()?;
        self.e.append(stat.wire_size(), stat)
    }

    /// Write the header; returns the message length.
    pub fn finish(self) -> Result<usize, EncodeError> {
        self.e.finish(mt::RREAD)
    }
}
