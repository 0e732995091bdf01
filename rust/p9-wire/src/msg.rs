// SPDX-License-Identifier: GPL-2.0-or-later
//! The T (request) and R (reply) message enums and their codecs.
//!
//! # Framing
//!
//! A message is `size[4] type[1] tag[2] body`, little endian, where `size`
//! counts the whole message.  The decoder checks, in this order:
//!
//! 1. at least 7 bytes are present (else no tag can be reported);
//! 2. `size >= 7`;
//! 3. `size <= msize`;
//! 4. `size` equals the bytes present ([`Framing::Exact`], what
//!    [`Tmessage::decode`] uses: the transport hands over exactly one
//!    message, as virtio and Xen do; a size that lies in either direction
//!    is an error), or at most the bytes present ([`Framing::Prefix`]:
//!    bytes after `size` are ignored);
//! 5. the type is known, and exists in the negotiated protocol;
//! 6. the body decodes, using exactly `size - 7` bytes.
//!
//! Errors carry the errno to reply with and, from step 2 on, the tag; see
//! [`crate::error`] for the errno of each failure.

use crate::consts::{HEADER_SIZE, P9_MAXWELEM, RREAD_HEADER_SIZE, XATTR_SIZE_MAX};
use crate::errno::{self, Errno};
use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::msgtype::{self as mt};
use crate::proto::Proto;
use crate::sg::{total_len_mut, Counter, SgReader, SgView, SgWriter, Sink, SliceWriter};
use crate::types::{Flock, Getlock, P9String, Qid, SetAttr, Stat, StatDotl, StatFs, VecSink};
use crate::validate::{check_renameat, NameRule};

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
fn frame(
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

/// Finish a body decode: attach the header to errors and refuse trailing
/// bytes.
fn finish<T>(
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

fn string(r: &mut SgReader<'_>) -> Result<P9String, DecodeErrorKind> {
    r.p9string()
}

/// The rest of the message as `count` bytes of data: `count` must match
/// exactly.
fn counted_data<'a>(r: &mut SgReader<'a>, count: u32) -> Result<SgView<'a>, DecodeErrorKind> {
    let available = r.remaining();
    if count as usize != available {
        return Err(DecodeErrorKind::CountMismatch { count, available });
    }
    r.view(available)
}

fn data_count(data: &SgView<'_>) -> Result<u32, EncodeError> {
    u32::try_from(data.len()).map_err(|_| EncodeError::MessageTooLarge { size: data.len() })
}

/// A message that can be encoded: its type byte and its body.
trait Body {
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

fn encode_msg<B: Body>(b: &B, tag: u16, out: &mut [&mut [u8]]) -> Result<usize, EncodeError> {
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

fn encode_vec<B: Body>(b: &B, tag: u16) -> Result<Vec<u8>, EncodeError> {
    let (size, size32) = b.checked_size()?;
    let mut v = VecSink(Vec::with_capacity(size));
    b.encode_sink(tag, size32, &mut v)?;
    Ok(v.0)
}

fn size_of<B: Body>(b: &B) -> usize {
    b.checked_size().map_or(usize::MAX, |(size, _)| size)
}

/// A request (T-message), as the server decodes it.
///
/// Strings are copied out (they are small); Twrite's payload is a borrowed
/// [`SgView`] over the request segments.  Field order is wire order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tmessage<'a> {
    /// Tstatfs (.L): `fid[4]`.
    Statfs {
        /// Any fid on the file system.
        fid: u32,
    },
    /// Tlopen (.L): `fid[4] flags[4]`.
    Lopen {
        /// The fid to open.
        fid: u32,
        /// [`crate::consts::dotl_open`] flags.
        flags: u32,
    },
    /// Tlcreate (.L): `fid[4] name[s] flags[4] mode[4] gid[4]`.
    Lcreate {
        /// Directory fid; becomes the new file's fid.
        fid: u32,
        /// New file name.
        name: P9String,
        /// [`crate::consts::dotl_open`] flags.
        flags: u32,
        /// Permission bits.
        mode: u32,
        /// Group.
        gid: u32,
    },
    /// Tsymlink (.L): `fid[4] name[s] symtgt[s] gid[4]`.
    Symlink {
        /// Directory fid.
        fid: u32,
        /// Link name.
        name: P9String,
        /// Link target.
        symtgt: P9String,
        /// Group.
        gid: u32,
    },
    /// Tmknod (.L): `dfid[4] name[s] mode[4] major[4] minor[4] gid[4]`.
    Mknod {
        /// Directory fid.
        dfid: u32,
        /// Node name.
        name: P9String,
        /// Mode including the file type.
        mode: u32,
        /// Device major.
        major: u32,
        /// Device minor.
        minor: u32,
        /// Group.
        gid: u32,
    },
    /// Trename (.L): `fid[4] dfid[4] name[s]`.
    Rename {
        /// File to rename.
        fid: u32,
        /// Target directory.
        dfid: u32,
        /// New name.
        name: P9String,
    },
    /// Treadlink (.L): `fid[4]`.
    Readlink {
        /// The symlink.
        fid: u32,
    },
    /// Tgetattr (.L): `fid[4] request_mask[8]`.
    Getattr {
        /// The file.
        fid: u32,
        /// [`crate::consts::getattr`] bits.
        request_mask: u64,
    },
    /// Tsetattr (.L): `fid[4] valid[4] mode[4] uid[4] gid[4] size[8]
    /// atime_sec[8] atime_nsec[8] mtime_sec[8] mtime_nsec[8]`.
    Setattr {
        /// The file.
        fid: u32,
        /// What to set.
        attr: SetAttr,
    },
    /// Txattrwalk (.L): `fid[4] newfid[4] name[s]`.
    Xattrwalk {
        /// The file.
        fid: u32,
        /// New xattr fid.
        newfid: u32,
        /// Attribute name; empty to list.
        name: P9String,
    },
    /// Txattrcreate (.L): `fid[4] name[s] attr_size[8] flags[4]`.
    Xattrcreate {
        /// The file; becomes an xattr fid.
        fid: u32,
        /// Attribute name.
        name: P9String,
        /// Value size.
        attr_size: u64,
        /// [`crate::consts::xattr_flags`].
        flags: u32,
    },
    /// Treaddir (.L): `fid[4] offset[8] count[4]`.
    Readdir {
        /// Open directory fid.
        fid: u32,
        /// Offset from a previous entry (0 to start).
        offset: u64,
        /// Maximum bytes of entries (the reply is capped at msize − 11, as
        /// 9p.c clamps larger counts).
        count: u32,
    },
    /// Tfsync (.L): `fid[4] datasync[4]`.
    Fsync {
        /// Open fid.
        fid: u32,
        /// Non-zero for fdatasync.
        datasync: u32,
    },
    /// Tlock (.L): `fid[4] type[1] flags[4] start[8] length[8] proc_id[4]
    /// client_id[s]`.
    Lock {
        /// Open fid.
        fid: u32,
        /// The lock request.
        lock: Flock,
    },
    /// Tgetlock (.L): `fid[4] type[1] start[8] length[8] proc_id[4]
    /// client_id[s]`.
    Getlock {
        /// Open fid.
        fid: u32,
        /// The lock to test.
        lock: Getlock,
    },
    /// Tlink (.L): `dfid[4] fid[4] name[s]`.
    Link {
        /// Directory for the new link.
        dfid: u32,
        /// Existing file.
        fid: u32,
        /// Link name.
        name: P9String,
    },
    /// Tmkdir (.L): `dfid[4] name[s] mode[4] gid[4]`.
    Mkdir {
        /// Parent directory.
        dfid: u32,
        /// Directory name.
        name: P9String,
        /// Permission bits.
        mode: u32,
        /// Group.
        gid: u32,
    },
    /// Trenameat (.L): `olddirfid[4] oldname[s] newdirfid[4] newname[s]`.
    Renameat {
        /// Source directory.
        olddirfid: u32,
        /// Source name.
        oldname: P9String,
        /// Target directory.
        newdirfid: u32,
        /// Target name.
        newname: P9String,
    },
    /// Tunlinkat (.L): `dirfid[4] name[s] flags[4]`.
    Unlinkat {
        /// Directory.
        dirfid: u32,
        /// Name to remove.
        name: P9String,
        /// [`crate::consts::AT_REMOVEDIR`] or 0.
        flags: u32,
    },
    /// Tversion: `msize[4] version[s]`.
    Version {
        /// Proposed msize.
        msize: u32,
        /// Proposed version (`"9P2000.L"`, `"9P2000.u"`).
        version: P9String,
    },
    /// Tauth (.u/.L): `afid[4] uname[s] aname[s] n_uname[4]`.
    Auth {
        /// New auth fid.
        afid: u32,
        /// User name.
        uname: P9String,
        /// Tree to attach.
        aname: P9String,
        /// Numeric user id.
        n_uname: u32,
    },
    /// Tattach (.u/.L): `fid[4] afid[4] uname[s] aname[s] n_uname[4]`.
    Attach {
        /// New root fid.
        fid: u32,
        /// Auth fid or [`crate::consts::NOFID`].
        afid: u32,
        /// User name.
        uname: P9String,
        /// Tree to attach.
        aname: P9String,
        /// Numeric user id (9p.c reads it in both dialects).
        n_uname: u32,
    },
    /// Tflush: `oldtag[2]`.
    Flush {
        /// Tag of the request to cancel.
        oldtag: u16,
    },
    /// Twalk: `fid[4] newfid[4] nwname[2] nwname*(wname[s])`, at most 16
    /// names.
    Walk {
        /// Starting fid.
        fid: u32,
        /// New fid (may equal `fid`).
        newfid: u32,
        /// Path elements.
        wnames: Vec<P9String>,
    },
    /// Topen (.u): `fid[4] mode[1]`.
    Open {
        /// The fid.
        fid: u32,
        /// [`crate::consts::omode`] byte.
        mode: u8,
    },
    /// Tcreate (.u): `fid[4] name[s] perm[4] mode[1] extension[s]`.
    Create {
        /// Directory fid; becomes the new file's fid.
        fid: u32,
        /// New name.
        name: P9String,
        /// Permissions and [`crate::consts::dm`] type bits.
        perm: u32,
        /// [`crate::consts::omode`] byte.
        mode: u8,
        /// Symlink target, `"c|b major minor"`, or link source fid.
        extension: P9String,
    },
    /// Tread: `fid[4] offset[8] count[4]`.
    Read {
        /// Open fid.
        fid: u32,
        /// File offset.
        offset: u64,
        /// Maximum bytes (at most msize − 11).
        count: u32,
    },
    /// Twrite: `fid[4] offset[8] count[4] data[count]`.
    Write {
        /// Open fid.
        fid: u32,
        /// File offset.
        offset: u64,
        /// The payload, borrowed from the request segments (count is its
        /// length).
        data: SgView<'a>,
    },
    /// Tclunk: `fid[4]`.
    Clunk {
        /// Fid to forget.
        fid: u32,
    },
    /// Tremove: `fid[4]`.
    Remove {
        /// Fid to remove (and clunk).
        fid: u32,
    },
    /// Tstat (.u): `fid[4]`.
    Stat {
        /// The file.
        fid: u32,
    },
    /// Twstat (.u): `fid[4] n[2] stat[n]`.  The `n` field is ignored on
    /// decode (9p.c and Linux both discard it) and written as the stat's
    /// length on encode.
    Wstat {
        /// The file.
        fid: u32,
        /// New values; all-ones/empty fields mean "don't touch".
        stat: Stat,
    },
}

impl<'a> Tmessage<'a> {
    /// Decode a request that occupies exactly the bytes of `sg`
    /// ([`Framing::Exact`]).  Returns the tag and the message.
    ///
    /// `msize` is the negotiated maximum message size (before negotiation:
    /// the largest message the transport accepts).
    pub fn decode(
        sg: &'a [&'a [u8]],
        proto: Proto,
        msize: u32,
    ) -> Result<(u16, Tmessage<'a>), DecodeError> {
        Tmessage::decode_with(SgView::new(sg), proto, msize, Framing::Exact)
    }

    /// [`Tmessage::decode`] for one contiguous buffer.
    pub fn decode_slice(
        buf: &'a [u8],
        proto: Proto,
        msize: u32,
    ) -> Result<(u16, Tmessage<'a>), DecodeError> {
        Tmessage::decode_with(SgView::from_slice(buf), proto, msize, Framing::Exact)
    }

    /// Decode with an explicit [`Framing`].
    pub fn decode_with(
        sg: SgView<'a>,
        proto: Proto,
        msize: u32,
        framing: Framing,
    ) -> Result<(u16, Tmessage<'a>), DecodeError> {
        let (h, mut r) = frame(sg, msize, framing)?;
        let body = if !mt::is_t_type(h.typ) {
            Err(DecodeErrorKind::UnknownType(h.typ))
        } else if !mt::t_allowed(h.typ, proto) {
            Err(DecodeErrorKind::NotInProtocol { typ: h.typ, proto })
        } else {
            Tmessage::decode_body(h.typ, &mut r, msize)
        };
        finish(h, &r, body)
    }

    fn decode_body(
        typ: u8,
        r: &mut SgReader<'a>,
        msize: u32,
    ) -> Result<Tmessage<'a>, DecodeErrorKind> {
        Ok(match typ {
            mt::TSTATFS => Tmessage::Statfs { fid: r.u32()? },
            mt::TLOPEN => Tmessage::Lopen {
                fid: r.u32()?,
                flags: r.u32()?,
            },
            mt::TLCREATE => Tmessage::Lcreate {
                fid: r.u32()?,
                name: string(r)?,
                flags: r.u32()?,
                mode: r.u32()?,
                gid: r.u32()?,
            },
            mt::TSYMLINK => Tmessage::Symlink {
                fid: r.u32()?,
                name: string(r)?,
                symtgt: string(r)?,
                gid: r.u32()?,
            },
            mt::TMKNOD => Tmessage::Mknod {
                dfid: r.u32()?,
                name: string(r)?,
                mode: r.u32()?,
                major: r.u32()?,
                minor: r.u32()?,
                gid: r.u32()?,
            },
            mt::TRENAME => Tmessage::Rename {
                fid: r.u32()?,
                dfid: r.u32()?,
                name: string(r)?,
            },
            mt::TREADLINK => Tmessage::Readlink { fid: r.u32()? },
            mt::TGETATTR => Tmessage::Getattr {
                fid: r.u32()?,
                request_mask: r.u64()?,
            },
            mt::TSETATTR => Tmessage::Setattr {
                fid: r.u32()?,
                attr: SetAttr::decode(r)?,
            },
            mt::TXATTRWALK => Tmessage::Xattrwalk {
                fid: r.u32()?,
                newfid: r.u32()?,
                name: string(r)?,
            },
            mt::TXATTRCREATE => Tmessage::Xattrcreate {
                fid: r.u32()?,
                name: string(r)?,
                attr_size: r.u64()?,
                flags: r.u32()?,
            },
            // 9p.c clamps a Treaddir count above msize - 11 (a "bad
            // client" warning); the reply writer caps it the same way.
            mt::TREADDIR => Tmessage::Readdir {
                fid: r.u32()?,
                offset: r.u64()?,
                count: r.u32()?,
            },
            mt::TFSYNC => Tmessage::Fsync {
                fid: r.u32()?,
                datasync: r.u32()?,
            },
            mt::TLOCK => Tmessage::Lock {
                fid: r.u32()?,
                lock: Flock::decode(r)?,
            },
            mt::TGETLOCK => Tmessage::Getlock {
                fid: r.u32()?,
                lock: Getlock::decode(r)?,
            },
            mt::TLINK => Tmessage::Link {
                dfid: r.u32()?,
                fid: r.u32()?,
                name: string(r)?,
            },
            mt::TMKDIR => Tmessage::Mkdir {
                dfid: r.u32()?,
                name: string(r)?,
                mode: r.u32()?,
                gid: r.u32()?,
            },
            mt::TRENAMEAT => Tmessage::Renameat {
                olddirfid: r.u32()?,
                oldname: string(r)?,
                newdirfid: r.u32()?,
                newname: string(r)?,
            },
            mt::TUNLINKAT => Tmessage::Unlinkat {
                dirfid: r.u32()?,
                name: string(r)?,
                flags: r.u32()?,
            },
            mt::TVERSION => Tmessage::Version {
                msize: r.u32()?,
                version: string(r)?,
            },
            mt::TAUTH => Tmessage::Auth {
                afid: r.u32()?,
                uname: string(r)?,
                aname: string(r)?,
                n_uname: r.u32()?,
            },
            mt::TATTACH => Tmessage::Attach {
                fid: r.u32()?,
                afid: r.u32()?,
                uname: string(r)?,
                aname: string(r)?,
                n_uname: r.u32()?,
            },
            mt::TFLUSH => Tmessage::Flush { oldtag: r.u16()? },
            mt::TWALK => {
                let fid = r.u32()?;
                let newfid = r.u32()?;
                let n = r.u16()?;
                if usize::from(n) > P9_MAXWELEM {
                    return Err(DecodeErrorKind::TooManyWalkElements(n));
                }
                let mut wnames = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    wnames.push(string(r)?);
                }
                Tmessage::Walk {
                    fid,
                    newfid,
                    wnames,
                }
            }
            mt::TOPEN => Tmessage::Open {
                fid: r.u32()?,
                mode: r.u8()?,
            },
            mt::TCREATE => Tmessage::Create {
                fid: r.u32()?,
                name: string(r)?,
                perm: r.u32()?,
                mode: r.u8()?,
                extension: string(r)?,
            },
            mt::TREAD => {
                let (fid, offset, count) = (r.u32()?, r.u64()?, r.u32()?);
                check_count(count, msize)?;
                Tmessage::Read { fid, offset, count }
            }
            mt::TWRITE => {
                let (fid, offset, count) = (r.u32()?, r.u64()?, r.u32()?);
                let data = counted_data(r, count)?;
                Tmessage::Write { fid, offset, data }
            }
            mt::TCLUNK => Tmessage::Clunk { fid: r.u32()? },
            mt::TREMOVE => Tmessage::Remove { fid: r.u32()? },
            mt::TSTAT => Tmessage::Stat { fid: r.u32()? },
            mt::TWSTAT => {
                let fid = r.u32()?;
                let _n = r.u16()?;
                Tmessage::Wstat {
                    fid,
                    stat: Stat::decode(r)?,
                }
            }
            _ => return Err(DecodeErrorKind::UnknownType(typ)),
        })
    }

    /// The message type byte.
    pub fn msg_type(&self) -> u8 {
        match self {
            Tmessage::Statfs { .. } => mt::TSTATFS,
            Tmessage::Lopen { .. } => mt::TLOPEN,
            Tmessage::Lcreate { .. } => mt::TLCREATE,
            Tmessage::Symlink { .. } => mt::TSYMLINK,
            Tmessage::Mknod { .. } => mt::TMKNOD,
            Tmessage::Rename { .. } => mt::TRENAME,
            Tmessage::Readlink { .. } => mt::TREADLINK,
            Tmessage::Getattr { .. } => mt::TGETATTR,
            Tmessage::Setattr { .. } => mt::TSETATTR,
            Tmessage::Xattrwalk { .. } => mt::TXATTRWALK,
            Tmessage::Xattrcreate { .. } => mt::TXATTRCREATE,
            Tmessage::Readdir { .. } => mt::TREADDIR,
            Tmessage::Fsync { .. } => mt::TFSYNC,
            Tmessage::Lock { .. } => mt::TLOCK,
            Tmessage::Getlock { .. } => mt::TGETLOCK,
            Tmessage::Link { .. } => mt::TLINK,
            Tmessage::Mkdir { .. } => mt::TMKDIR,
            Tmessage::Renameat { .. } => mt::TRENAMEAT,
            Tmessage::Unlinkat { .. } => mt::TUNLINKAT,
            Tmessage::Version { .. } => mt::TVERSION,
            Tmessage::Auth { .. } => mt::TAUTH,
            Tmessage::Attach { .. } => mt::TATTACH,
            Tmessage::Flush { .. } => mt::TFLUSH,
            Tmessage::Walk { .. } => mt::TWALK,
            Tmessage::Open { .. } => mt::TOPEN,
            Tmessage::Create { .. } => mt::TCREATE,
            Tmessage::Read { .. } => mt::TREAD,
            Tmessage::Write { .. } => mt::TWRITE,
            Tmessage::Clunk { .. } => mt::TCLUNK,
            Tmessage::Remove { .. } => mt::TREMOVE,
            Tmessage::Stat { .. } => mt::TSTAT,
            Tmessage::Wstat { .. } => mt::TWSTAT,
        }
    }

    /// The message name (`"Twalk"`), for logs.
    pub fn name(&self) -> &'static str {
        mt::name(self.msg_type()).unwrap_or("T?")
    }

    fn encode_body<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        match self {
            Tmessage::Statfs { fid }
            | Tmessage::Readlink { fid }
            | Tmessage::Clunk { fid }
            | Tmessage::Remove { fid }
            | Tmessage::Stat { fid } => s.u32(*fid),
            Tmessage::Lopen { fid, flags } => {
                s.u32(*fid)?;
                s.u32(*flags)
            }
            Tmessage::Lcreate {
                fid,
                name,
                flags,
                mode,
                gid,
            } => {
                s.u32(*fid)?;
                s.string(name)?;
                s.u32(*flags)?;
                s.u32(*mode)?;
                s.u32(*gid)
            }
            Tmessage::Symlink {
                fid,
                name,
                symtgt,
                gid,
            } => {
                s.u32(*fid)?;
                s.string(name)?;
                s.string(symtgt)?;
                s.u32(*gid)
            }
            Tmessage::Mknod {
                dfid,
                name,
                mode,
                major,
                minor,
                gid,
            } => {
                s.u32(*dfid)?;
                s.string(name)?;
                s.u32(*mode)?;
                s.u32(*major)?;
                s.u32(*minor)?;
                s.u32(*gid)
            }
            Tmessage::Rename { fid, dfid, name } => {
                s.u32(*fid)?;
                s.u32(*dfid)?;
                s.string(name)
            }
            Tmessage::Getattr { fid, request_mask } => {
                s.u32(*fid)?;
                s.u64(*request_mask)
            }
            Tmessage::Setattr { fid, attr } => {
                s.u32(*fid)?;
                attr.encode(s)
            }
            Tmessage::Xattrwalk { fid, newfid, name } => {
                s.u32(*fid)?;
                s.u32(*newfid)?;
                s.string(name)
            }
            Tmessage::Xattrcreate {
                fid,
                name,
                attr_size,
                flags,
            } => {
                s.u32(*fid)?;
                s.string(name)?;
                s.u64(*attr_size)?;
                s.u32(*flags)
            }
            Tmessage::Readdir { fid, offset, count } | Tmessage::Read { fid, offset, count } => {
                s.u32(*fid)?;
                s.u64(*offset)?;
                s.u32(*count)
            }
            Tmessage::Fsync { fid, datasync } => {
                s.u32(*fid)?;
                s.u32(*datasync)
            }
            Tmessage::Lock { fid, lock } => {
                s.u32(*fid)?;
                lock.encode(s)
            }
            Tmessage::Getlock { fid, lock } => {
                s.u32(*fid)?;
                lock.encode(s)
            }
            Tmessage::Link { dfid, fid, name } => {
                s.u32(*dfid)?;
                s.u32(*fid)?;
                s.string(name)
            }
            Tmessage::Mkdir {
                dfid,
                name,
                mode,
                gid,
            } => {
                s.u32(*dfid)?;
                s.string(name)?;
                s.u32(*mode)?;
                s.u32(*gid)
            }
            Tmessage::Renameat {
                olddirfid,
                oldname,
                newdirfid,
                newname,
            } => {
                s.u32(*olddirfid)?;
                s.string(oldname)?;
                s.u32(*newdirfid)?;
                s.string(newname)
            }
            Tmessage::Unlinkat {
                dirfid,
                name,
                flags,
            } => {
                s.u32(*dirfid)?;
                s.string(name)?;
                s.u32(*flags)
            }
            Tmessage::Version { msize, version } => {
                s.u32(*msize)?;
                s.string(version)
            }
            Tmessage::Auth {
                afid,
                uname,
                aname,
                n_uname,
            } => {
                s.u32(*afid)?;
                s.string(uname)?;
                s.string(aname)?;
                s.u32(*n_uname)
            }
            Tmessage::Attach {
                fid,
                afid,
                uname,
                aname,
                n_uname,
            } => {
                s.u32(*fid)?;
                s.u32(*afid)?;
                s.string(uname)?;
                s.string(aname)?;
                s.u32(*n_uname)
            }
            Tmessage::Flush { oldtag } => s.u16(*oldtag),
            Tmessage::Walk {
                fid,
                newfid,
                wnames,
            } => {
                s.u32(*fid)?;
                s.u32(*newfid)?;
                let n = u16::try_from(wnames.len()).map_err(|_| EncodeError::TooManyElements {
                    count: wnames.len(),
                })?;
                s.u16(n)?;
                for w in wnames {
                    s.string(w)?;
                }
                Ok(())
            }
            Tmessage::Open { fid, mode } => {
                s.u32(*fid)?;
                s.u8(*mode)
            }
            Tmessage::Create {
                fid,
                name,
                perm,
                mode,
                extension,
            } => {
                s.u32(*fid)?;
                s.string(name)?;
                s.u32(*perm)?;
                s.u8(*mode)?;
                s.string(extension)
            }
            Tmessage::Write { fid, offset, data } => {
                s.u32(*fid)?;
                s.u64(*offset)?;
                s.u32(data_count(data)?)?;
                s.view(data)
            }
            Tmessage::Wstat { fid, stat } => {
                s.u32(*fid)?;
                let n =
                    u16::try_from(stat.wire_size()).map_err(|_| EncodeError::MessageTooLarge {
                        size: stat.wire_size(),
                    })?;
                s.u16(n)?;
                stat.encode(s)
            }
        }
    }

    /// Encode into the output segments; returns the message length.
    pub fn encode(&self, tag: u16, out: &mut [&mut [u8]]) -> Result<usize, EncodeError> {
        encode_msg(self, tag, out)
    }

    /// Encode into one contiguous buffer; returns the message length.
    pub fn encode_into(&self, tag: u16, buf: &mut [u8]) -> Result<usize, EncodeError> {
        self.encode(tag, &mut [buf])
    }

    /// Encode into a new vector.
    pub fn encode_to_vec(&self, tag: u16) -> Result<Vec<u8>, EncodeError> {
        encode_vec(self, tag)
    }

    /// The encoded length, header included (`usize::MAX` if the message
    /// cannot be encoded, e.g. a string over 65535 bytes).
    pub fn byte_size(&self) -> usize {
        size_of(self)
    }

    /// The argument checks 9p.c makes after decoding and before looking up
    /// any fid, returning the errno it would reply with:
    ///
    /// * name rules ([`crate::validate`]): Twalk elements (in order),
    ///   Tlcreate/Tcreate/Tsymlink/Tmknod/Tmkdir/Tlink names, Tunlinkat,
    ///   Trename, Trenameat, and a non-empty Twstat name;
    /// * Tunlinkat flags other than `AT_REMOVEDIR`: `EINVAL`;
    /// * Txattrcreate flags other than CREATE/REPLACE: `EINVAL`, then a
    ///   size over [`XATTR_SIZE_MAX`]: `E2BIG`;
    /// * Tlock flags other than `BLOCK`: `EINVAL`.
    ///
    /// 9p.c checks the Twstat name only after applying the mode, times and
    /// owner changes; checking it up front refuses the whole request
    /// instead of half-applying it.
    pub fn check_args(&self) -> Result<(), Errno> {
        use crate::consts::{lock_flags, xattr_flags, AT_REMOVEDIR};
        match self {
            Tmessage::Walk { wnames, .. } => {
                wnames.iter().try_for_each(|w| NameRule::Walk.check(w))
            }
            Tmessage::Lcreate { name, .. }
            | Tmessage::Create { name, .. }
            | Tmessage::Symlink { name, .. }
            | Tmessage::Mknod { name, .. }
            | Tmessage::Mkdir { name, .. }
            | Tmessage::Link { name, .. } => NameRule::Create.check(name),
            Tmessage::Unlinkat { name, flags, .. } => {
                NameRule::Unlink.check(name)?;
                if flags & !AT_REMOVEDIR != 0 {
                    return Err(errno::EINVAL);
                }
                Ok(())
            }
            Tmessage::Rename { name, .. } => NameRule::Rename.check(name),
            Tmessage::Renameat {
                oldname, newname, ..
            } => check_renameat(oldname, newname),
            Tmessage::Wstat { stat, .. } if !stat.name.is_empty() => {
                NameRule::Rename.check(&stat.name)
            }
            Tmessage::Xattrcreate {
                attr_size, flags, ..
            } => {
                if flags & !(xattr_flags::CREATE | xattr_flags::REPLACE) != 0 {
                    return Err(errno::EINVAL);
                }
                if *attr_size > XATTR_SIZE_MAX {
                    return Err(errno::E2BIG);
                }
                Ok(())
            }
            Tmessage::Lock { lock, .. } if lock.flags & !lock_flags::BLOCK != 0 => {
                Err(errno::EINVAL)
            }
            _ => Ok(()),
        }
    }
}

fn check_count(count: u32, msize: u32) -> Result<(), DecodeErrorKind> {
    let max = max_read_count(msize);
    if count > max {
        return Err(DecodeErrorKind::CountTooLarge { count, max });
    }
    Ok(())
}

/// A reply (R-message).
///
/// The engine usually builds small replies with this enum and writes bulk
/// replies (Rread, Rreaddir, .u directory reads) with the writers in
/// [`crate::reply`]; the client decodes replies into it, with Rread and
/// Rreaddir data borrowed from the reply segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rmessage<'a> {
    /// Rlerror (.L): `ecode[4]`.
    Lerror {
        /// Linux errno.
        ecode: Errno,
    },
    /// Rstatfs (.L).
    Statfs(StatFs),
    /// Rlopen (.L): `qid[13] iounit[4]`.
    Lopen {
        /// The file's qid.
        qid: Qid,
        /// Preferred I/O size, 0 for none.
        iounit: u32,
    },
    /// Rlcreate (.L): `qid[13] iounit[4]`.
    Lcreate {
        /// The new file's qid.
        qid: Qid,
        /// Preferred I/O size.
        iounit: u32,
    },
    /// Rsymlink (.L): `qid[13]`.
    Symlink {
        /// The link's qid.
        qid: Qid,
    },
    /// Rmknod (.L): `qid[13]`.
    Mknod {
        /// The node's qid.
        qid: Qid,
    },
    /// Rrename (.L): empty.
    Rename,
    /// Rreadlink (.L): `target[s]`.
    Readlink {
        /// The link target.
        target: P9String,
    },
    /// Rgetattr (.L).
    Getattr(StatDotl),
    /// Rsetattr (.L): empty.
    Setattr,
    /// Rxattrwalk (.L): `size[8]`.
    Xattrwalk {
        /// Value (or list) size.
        size: u64,
    },
    /// Rxattrcreate (.L): empty.
    Xattrcreate,
    /// Rreaddir (.L): `count[4] data[count]`, data being packed entries
    /// ([`crate::Dirent::iter`] parses them).
    Readdir {
        /// The entries' bytes.
        data: SgView<'a>,
    },
    /// Rfsync (.L): empty.
    Fsync,
    /// Rlock (.L): `status[1]`.
    Lock {
        /// [`crate::consts::lock_status`].
        status: u8,
    },
    /// Rgetlock (.L).
    Getlock(Getlock),
    /// Rlink (.L): empty.
    Link,
    /// Rmkdir (.L): `qid[13]`.
    Mkdir {
        /// The directory's qid.
        qid: Qid,
    },
    /// Rrenameat (.L): empty.
    Renameat,
    /// Runlinkat (.L): empty.
    Unlinkat,
    /// Rversion: `msize[4] version[s]`.
    Version {
        /// Negotiated msize.
        msize: u32,
        /// Accepted version, or `"unknown"`.
        version: P9String,
    },
    /// Rauth: `aqid[13]`.
    Auth {
        /// The auth file's qid.
        aqid: Qid,
    },
    /// Rattach: `qid[13]`.
    Attach {
        /// The root's qid.
        qid: Qid,
    },
    /// Rerror (.u): `ename[s] errno[4]`.
    Error {
        /// Error text (9p.c: `strerror(errno)`).
        ename: P9String,
        /// The errno.
        errno: Errno,
    },
    /// Rflush: empty.
    Flush,
    /// Rwalk: `nwqid[2] nwqid*(qid[13])`, at most 16.
    Walk {
        /// Qids of the elements walked.
        wqids: Vec<Qid>,
    },
    /// Ropen (.u): `qid[13] iounit[4]`.
    Open {
        /// The file's qid.
        qid: Qid,
        /// Preferred I/O size.
        iounit: u32,
    },
    /// Rcreate (.u): `qid[13] iounit[4]`.
    Create {
        /// The new file's qid.
        qid: Qid,
        /// Preferred I/O size.
        iounit: u32,
    },
    /// Rread: `count[4] data[count]` (on a .u directory: packed stats,
    /// [`crate::Stat::iter`] parses them).
    Read {
        /// The bytes read.
        data: SgView<'a>,
    },
    /// Rwrite: `count[4]`.
    Write {
        /// Bytes written.
        count: u32,
    },
    /// Rclunk: empty.
    Clunk,
    /// Rremove: empty.
    Remove,
    /// Rstat (.u): `n[2] stat[n]`.  `n` is written as the stat's length
    /// and ignored on decode (9p.c writes 0 there; Linux ignores it).
    Stat {
        /// The stat.
        stat: Stat,
    },
    /// Rwstat (.u): empty.
    Wstat,
}

impl<'a> Rmessage<'a> {
    /// Decode a reply that occupies exactly the bytes of `sg`.  Returns the
    /// tag and the message.
    pub fn decode(
        sg: &'a [&'a [u8]],
        proto: Proto,
        msize: u32,
    ) -> Result<(u16, Rmessage<'a>), DecodeError> {
        Rmessage::decode_with(SgView::new(sg), proto, msize, Framing::Exact)
    }

    /// [`Rmessage::decode`] for one contiguous buffer.
    pub fn decode_slice(
        buf: &'a [u8],
        proto: Proto,
        msize: u32,
    ) -> Result<(u16, Rmessage<'a>), DecodeError> {
        Rmessage::decode_with(SgView::from_slice(buf), proto, msize, Framing::Exact)
    }

    /// Decode with an explicit [`Framing`].
    pub fn decode_with(
        sg: SgView<'a>,
        proto: Proto,
        msize: u32,
        framing: Framing,
    ) -> Result<(u16, Rmessage<'a>), DecodeError> {
        let (h, mut r) = frame(sg, msize, framing)?;
        let body = if !mt::is_r_type(h.typ) {
            Err(DecodeErrorKind::UnknownType(h.typ))
        } else if !mt::r_allowed(h.typ, proto) {
            Err(DecodeErrorKind::NotInProtocol { typ: h.typ, proto })
        } else {
            Rmessage::decode_body(h.typ, &mut r)
        };
        finish(h, &r, body)
    }

    fn decode_body(typ: u8, r: &mut SgReader<'a>) -> Result<Rmessage<'a>, DecodeErrorKind> {
        Ok(match typ {
            mt::RLERROR => Rmessage::Lerror {
                ecode: Errno(r.u32()?),
            },
            mt::RSTATFS => Rmessage::Statfs(StatFs::decode(r)?),
            mt::RLOPEN => Rmessage::Lopen {
                qid: Qid::decode(r)?,
                iounit: r.u32()?,
            },
            mt::RLCREATE => Rmessage::Lcreate {
                qid: Qid::decode(r)?,
                iounit: r.u32()?,
            },
            mt::RSYMLINK => Rmessage::Symlink {
                qid: Qid::decode(r)?,
            },
            mt::RMKNOD => Rmessage::Mknod {
                qid: Qid::decode(r)?,
            },
            mt::RRENAME => Rmessage::Rename,
            mt::RREADLINK => Rmessage::Readlink { target: string(r)? },
            mt::RGETATTR => Rmessage::Getattr(StatDotl::decode(r)?),
            mt::RSETATTR => Rmessage::Setattr,
            mt::RXATTRWALK => Rmessage::Xattrwalk { size: r.u64()? },
            mt::RXATTRCREATE => Rmessage::Xattrcreate,
            mt::RREADDIR => {
                let count = r.u32()?;
                Rmessage::Readdir {
                    data: counted_data(r, count)?,
                }
            }
            mt::RFSYNC => Rmessage::Fsync,
            mt::RLOCK => Rmessage::Lock { status: r.u8()? },
            mt::RGETLOCK => Rmessage::Getlock(Getlock::decode(r)?),
            mt::RLINK => Rmessage::Link,
            mt::RMKDIR => Rmessage::Mkdir {
                qid: Qid::decode(r)?,
            },
            mt::RRENAMEAT => Rmessage::Renameat,
            mt::RUNLINKAT => Rmessage::Unlinkat,
            mt::RVERSION => Rmessage::Version {
                msize: r.u32()?,
                version: string(r)?,
            },
            mt::RAUTH => Rmessage::Auth {
                aqid: Qid::decode(r)?,
            },
            mt::RATTACH => Rmessage::Attach {
                qid: Qid::decode(r)?,
            },
            mt::RERROR => Rmessage::Error {
                ename: string(r)?,
                errno: Errno(r.u32()?),
            },
            mt::RFLUSH => Rmessage::Flush,
            mt::RWALK => {
                let n = r.u16()?;
                if usize::from(n) > P9_MAXWELEM {
                    return Err(DecodeErrorKind::TooManyWalkElements(n));
                }
                let mut wqids = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    wqids.push(Qid::decode(r)?);
                }
                Rmessage::Walk { wqids }
            }
            mt::ROPEN => Rmessage::Open {
                qid: Qid::decode(r)?,
                iounit: r.u32()?,
            },
            mt::RCREATE => Rmessage::Create {
                qid: Qid::decode(r)?,
                iounit: r.u32()?,
            },
            mt::RREAD => {
                let count = r.u32()?;
                Rmessage::Read {
                    data: counted_data(r, count)?,
                }
            }
            mt::RWRITE => Rmessage::Write { count: r.u32()? },
            mt::RCLUNK => Rmessage::Clunk,
            mt::RREMOVE => Rmessage::Remove,
            mt::RSTAT => {
                let _n = r.u16()?;
                Rmessage::Stat {
                    stat: Stat::decode(r)?,
                }
            }
            mt::RWSTAT => Rmessage::Wstat,
            _ => return Err(DecodeErrorKind::UnknownType(typ)),
        })
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

    /// The message type byte.
    pub fn msg_type(&self) -> u8 {
        match self {
            Rmessage::Lerror { .. } => mt::RLERROR,
            Rmessage::Statfs(_) => mt::RSTATFS,
            Rmessage::Lopen { .. } => mt::RLOPEN,
            Rmessage::Lcreate { .. } => mt::RLCREATE,
            Rmessage::Symlink { .. } => mt::RSYMLINK,
            Rmessage::Mknod { .. } => mt::RMKNOD,
            Rmessage::Rename => mt::RRENAME,
            Rmessage::Readlink { .. } => mt::RREADLINK,
            Rmessage::Getattr(_) => mt::RGETATTR,
            Rmessage::Setattr => mt::RSETATTR,
            Rmessage::Xattrwalk { .. } => mt::RXATTRWALK,
            Rmessage::Xattrcreate => mt::RXATTRCREATE,
            Rmessage::Readdir { .. } => mt::RREADDIR,
            Rmessage::Fsync => mt::RFSYNC,
            Rmessage::Lock { .. } => mt::RLOCK,
            Rmessage::Getlock(_) => mt::RGETLOCK,
            Rmessage::Link => mt::RLINK,
            Rmessage::Mkdir { .. } => mt::RMKDIR,
            Rmessage::Renameat => mt::RRENAMEAT,
            Rmessage::Unlinkat => mt::RUNLINKAT,
            Rmessage::Version { .. } => mt::RVERSION,
            Rmessage::Auth { .. } => mt::RAUTH,
            Rmessage::Attach { .. } => mt::RATTACH,
            Rmessage::Error { .. } => mt::RERROR,
            Rmessage::Flush => mt::RFLUSH,
            Rmessage::Walk { .. } => mt::RWALK,
            Rmessage::Open { .. } => mt::ROPEN,
            Rmessage::Create { .. } => mt::RCREATE,
            Rmessage::Read { .. } => mt::RREAD,
            Rmessage::Write { .. } => mt::RWRITE,
            Rmessage::Clunk => mt::RCLUNK,
            Rmessage::Remove => mt::RREMOVE,
            Rmessage::Stat { .. } => mt::RSTAT,
            Rmessage::Wstat => mt::RWSTAT,
        }
    }

    /// The message name (`"Rwalk"`), for logs.
    pub fn name(&self) -> &'static str {
        mt::name(self.msg_type()).unwrap_or("R?")
    }

    fn encode_body<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        match self {
            Rmessage::Lerror { ecode } => s.u32(ecode.raw()),
            Rmessage::Statfs(st) => st.encode(s),
            Rmessage::Lopen { qid, iounit }
            | Rmessage::Lcreate { qid, iounit }
            | Rmessage::Open { qid, iounit }
            | Rmessage::Create { qid, iounit } => {
                qid.encode(s)?;
                s.u32(*iounit)
            }
            Rmessage::Symlink { qid }
            | Rmessage::Mknod { qid }
            | Rmessage::Mkdir { qid }
            | Rmessage::Attach { qid }
            | Rmessage::Auth { aqid: qid } => qid.encode(s),
            Rmessage::Rename
            | Rmessage::Setattr
            | Rmessage::Xattrcreate
            | Rmessage::Fsync
            | Rmessage::Link
            | Rmessage::Renameat
            | Rmessage::Unlinkat
            | Rmessage::Flush
            | Rmessage::Clunk
            | Rmessage::Remove
            | Rmessage::Wstat => Ok(()),
            Rmessage::Readlink { target } => s.string(target),
            Rmessage::Getattr(st) => st.encode(s),
            Rmessage::Xattrwalk { size } => s.u64(*size),
            Rmessage::Readdir { data } | Rmessage::Read { data } => {
                s.u32(data_count(data)?)?;
                s.view(data)
            }
            Rmessage::Lock { status } => s.u8(*status),
            Rmessage::Getlock(gl) => gl.encode(s),
            Rmessage::Version { msize, version } => {
                s.u32(*msize)?;
                s.string(version)
            }
            Rmessage::Error { ename, errno } => {
                s.string(ename)?;
                s.u32(errno.raw())
            }
            Rmessage::Walk { wqids } => {
                let n = u16::try_from(wqids.len())
                    .map_err(|_| EncodeError::TooManyElements { count: wqids.len() })?;
                s.u16(n)?;
                for q in wqids {
                    q.encode(s)?;
                }
                Ok(())
            }
            Rmessage::Write { count } => s.u32(*count),
            Rmessage::Stat { stat } => {
                let n =
                    u16::try_from(stat.wire_size()).map_err(|_| EncodeError::MessageTooLarge {
                        size: stat.wire_size(),
                    })?;
                s.u16(n)?;
                stat.encode(s)
            }
        }
    }

    /// Encode into the output segments; returns the message length.
    pub fn encode(&self, tag: u16, out: &mut [&mut [u8]]) -> Result<usize, EncodeError> {
        encode_msg(self, tag, out)
    }

    /// Encode into one contiguous buffer; returns the message length.
    pub fn encode_into(&self, tag: u16, buf: &mut [u8]) -> Result<usize, EncodeError> {
        self.encode(tag, &mut [buf])
    }

    /// Encode into a new vector.
    pub fn encode_to_vec(&self, tag: u16) -> Result<Vec<u8>, EncodeError> {
        encode_vec(self, tag)
    }

    /// The encoded length, header included (`usize::MAX` if the message
    /// cannot be encoded).  Compare with msize before encoding.
    pub fn byte_size(&self) -> usize {
        size_of(self)
    }
}

/// An Rwalk whose qids are borrowed (a server's are on its stack).
struct RwalkRef<'q>(&'q [Qid]);

impl Body for RwalkRef<'_> {
    fn typ(&self) -> u8 {
        mt::RWALK
    }

    fn body<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        let n = u16::try_from(self.0.len()).map_err(|_| EncodeError::TooManyElements {
            count: self.0.len(),
        })?;
        s.u16(n)?;
        for q in self.0 {
            q.encode(s)?;
        }
        Ok(())
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

impl Body for Tmessage<'_> {
    fn typ(&self) -> u8 {
        self.msg_type()
    }

    fn body<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        self.encode_body(s)
    }
}

impl Body for Rmessage<'_> {
    fn typ(&self) -> u8 {
        self.msg_type()
    }

    fn body<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        self.encode_body(s)
    }
}
