// SPDX-License-Identifier: GPL-2.0-or-later
//! The structures carried inside messages: strings, qids, the 9P2000.u
//! stat, the 9P2000.L getattr/setattr/statfs/lock records and directory
//! entries.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use crate::consts::{DIRENT_HEADER_SIZE, STAT_FIXED_SIZE};
use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::sg::{SgReader, SgView, Sink};

/// A 9P string: at most 65535 bytes, not necessarily UTF-8.
///
/// 9p.c treats names as C strings and never requires UTF-8 (Linux file
/// names are byte strings), so neither do we.  Decoded strings never
/// contain a NUL byte (the decoder refuses them, see
/// [`crate::error`]); strings built for encoding are not checked, so a test
/// client can send hostile ones.
#[derive(Clone)]
pub struct P9String(Repr);

/// Bytes kept in the string itself: file names are short, and a name
/// decoded from a request then costs no allocation.
const INLINE: usize = 30;

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Vec<u8>),
}

impl P9String {
    /// A string from any bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        P9String(Repr::Heap(bytes.into()))
    }

    /// A string holding a copy of `bytes` (inline when short).
    pub fn copy_from(bytes: &[u8]) -> Self {
        if bytes.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..bytes.len()].copy_from_slice(bytes);
            P9String(Repr::Inline {
                len: bytes.len() as u8,
                buf,
            })
        } else {
            P9String(Repr::Heap(bytes.to_vec()))
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..usize::from(*len)],
            Repr::Heap(v) => v,
        }
    }

    /// The bytes, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        match self.0 {
            Repr::Heap(v) => v,
            Repr::Inline { .. } => self.as_bytes().to_vec(),
        }
    }

    /// The string as UTF-8, if it is.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()).ok()
    }

    /// The string as UTF-8, with invalid sequences replaced.
    pub fn to_string_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }

    /// Whether the string contains a NUL byte.
    pub fn has_nul(&self) -> bool {
        self.as_bytes().contains(&0)
    }

    /// Bytes on the wire: `len[2]` plus the bytes.
    pub fn wire_size(&self) -> usize {
        2 + self.as_bytes().len()
    }
}

impl Default for P9String {
    fn default() -> Self {
        P9String::copy_from(b"")
    }
}

impl PartialEq for P9String {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for P9String {}

impl PartialOrd for P9String {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for P9String {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::hash::Hash for P9String {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl Deref for P9String {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for P9String {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl From<&str> for P9String {
    fn from(s: &str) -> Self {
        P9String::copy_from(s.as_bytes())
    }
}

impl From<String> for P9String {
    fn from(s: String) -> Self {
        P9String::new(s.into_bytes())
    }
}

impl From<&[u8]> for P9String {
    fn from(s: &[u8]) -> Self {
        P9String::copy_from(s)
    }
}

impl<const N: usize> From<&[u8; N]> for P9String {
    fn from(s: &[u8; N]) -> Self {
        P9String::copy_from(s)
    }
}

impl From<Vec<u8>> for P9String {
    fn from(s: Vec<u8>) -> Self {
        P9String::new(s)
    }
}

impl PartialEq<str> for P9String {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for P9String {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<[u8]> for P9String {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

impl fmt::Debug for P9String {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.as_bytes().escape_ascii())
    }
}

impl fmt::Display for P9String {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

/// A qid: the server's unique identity of a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Qid {
    /// Type bits ([`crate::consts::qid_type`]).
    pub typ: u8,
    /// Version (9p.c: derived from mtime).
    pub version: u32,
    /// Unique path (9p.c: derived from the inode number).
    pub path: u64,
}

impl Qid {
    pub(crate) fn decode(r: &mut SgReader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(Qid {
            typ: r.u8()?,
            version: r.u32()?,
            path: r.u64()?,
        })
    }

    pub(crate) fn encode<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        s.u8(self.typ)?;
        s.u32(self.version)?;
        s.u64(self.path)
    }
}

/// The 9P2000.u stat structure (Rstat, Twstat, and .u directory reads).
///
/// On the wire it starts with its own `size[2]` (the length of what
/// follows), computed on encode and checked on decode.  Twstat uses all-ones
/// values ("don't touch") for fields it does not change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// Server type (`type[2]`).
    pub typ: u16,
    /// Server subtype (`dev[4]`).
    pub dev: u32,
    /// The qid.
    pub qid: Qid,
    /// Permissions and [`crate::consts::dm`] bits.
    pub mode: u32,
    /// Last access time (seconds).
    pub atime: u32,
    /// Last modification time (seconds).
    pub mtime: u32,
    /// Length in bytes.
    pub length: u64,
    /// Last path element.
    pub name: P9String,
    /// Owner name.
    pub uid: P9String,
    /// Group name.
    pub gid: P9String,
    /// Last modifier name.
    pub muid: P9String,
    /// .u: symlink target, device description (`"c 1 3"`) or link fid.
    pub extension: P9String,
    /// .u: numeric owner.
    pub n_uid: u32,
    /// .u: numeric group.
    pub n_gid: u32,
    /// .u: numeric last modifier.
    pub n_muid: u32,
}

impl Stat {
    /// Bytes on the wire, including the leading `size[2]`.
    pub fn wire_size(&self) -> usize {
        STAT_FIXED_SIZE
            + self.name.len()
            + self.uid.len()
            + self.gid.len()
            + self.muid.len()
            + self.extension.len()
    }

    /// The value of the `size[2]` field (the wire size minus 2), or an error
    /// if it does not fit in 16 bits.
    pub fn size_field(&self) -> Result<u16, EncodeError> {
        let size = self.wire_size();
        u16::try_from(size - 2).map_err(|_| EncodeError::MessageTooLarge { size })
    }

    /// The stat as 9p.c's `donttouch_stat` sees a Twstat that changes
    /// nothing (all numeric fields all-ones, all strings but the extension
    /// empty; 9p.c does not look at the extension): such a Twstat means
    /// "fsync".
    pub fn is_dont_touch(&self) -> bool {
        self.typ == u16::MAX
            && self.dev == u32::MAX
            && self.qid.typ == u8::MAX
            && self.qid.version == u32::MAX
            && self.qid.path == u64::MAX
            && self.mode == u32::MAX
            && self.atime == u32::MAX
            && self.mtime == u32::MAX
            && self.length == u64::MAX
            && self.name.is_empty()
            && self.uid.is_empty()
            && self.gid.is_empty()
            && self.muid.is_empty()
            && self.n_uid == u32::MAX
            && self.n_gid == u32::MAX
            && self.n_muid == u32::MAX
    }

    /// A Twstat stat that changes nothing: start from this and set the
    /// fields to change.
    pub fn dont_touch() -> Self {
        Stat {
            typ: u16::MAX,
            dev: u32::MAX,
            qid: Qid {
                typ: u8::MAX,
                version: u32::MAX,
                path: u64::MAX,
            },
            mode: u32::MAX,
            atime: u32::MAX,
            mtime: u32::MAX,
            length: u64::MAX,
            name: P9String::default(),
            uid: P9String::default(),
            gid: P9String::default(),
            muid: P9String::default(),
            extension: P9String::default(),
            n_uid: u32::MAX,
            n_gid: u32::MAX,
            n_muid: u32::MAX,
        }
    }

    /// Decode: `size[2]` delimits the stat; the fields must fill it exactly.
    pub(crate) fn decode(r: &mut SgReader<'_>) -> Result<Self, DecodeErrorKind> {
        let size = r.u16()?;
        let body = r.view(usize::from(size))?;
        let mut b = SgReader::new(body);
        let stat = Stat::decode_fields(&mut b).map_err(|k| match k {
            DecodeErrorKind::Truncated => DecodeErrorKind::BadStatSize,
            other => other,
        })?;
        if b.remaining() != 0 {
            return Err(DecodeErrorKind::BadStatSize);
        }
        Ok(stat)
    }

    fn decode_fields(r: &mut SgReader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(Stat {
            typ: r.u16()?,
            dev: r.u32()?,
            qid: Qid::decode(r)?,
            mode: r.u32()?,
            atime: r.u32()?,
            mtime: r.u32()?,
            length: r.u64()?,
            name: r.p9string()?,
            uid: r.p9string()?,
            gid: r.p9string()?,
            muid: r.p9string()?,
            extension: r.p9string()?,
            n_uid: r.u32()?,
            n_gid: r.u32()?,
            n_muid: r.u32()?,
        })
    }

    pub(crate) fn encode<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        s.u16(self.size_field()?)?;
        s.u16(self.typ)?;
        s.u32(self.dev)?;
        self.qid.encode(s)?;
        s.u32(self.mode)?;
        s.u32(self.atime)?;
        s.u32(self.mtime)?;
        s.u64(self.length)?;
        s.string(&self.name)?;
        s.string(&self.uid)?;
        s.string(&self.gid)?;
        s.string(&self.muid)?;
        s.string(&self.extension)?;
        s.u32(self.n_uid)?;
        s.u32(self.n_gid)?;
        s.u32(self.n_muid)
    }

    /// Encode into a new vector (e.g. to build .u directory data by hand).
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = VecSink(Vec::with_capacity(self.wire_size()));
        self.encode(&mut v)?;
        Ok(v.0)
    }

    /// Iterate over the stat entries of 9P2000.u directory data (the
    /// payload of an Rread on a directory).
    pub fn iter(data: SgView<'_>) -> StatIter<'_> {
        StatIter {
            r: SgReader::new(data),
            failed: false,
        }
    }
}

/// Iterator over the stats in 9P2000.u directory data; see [`Stat::iter`].
/// Stops after the first error.
pub struct StatIter<'a> {
    r: SgReader<'a>,
    failed: bool,
}

impl Iterator for StatIter<'_> {
    type Item = Result<Stat, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.r.remaining() == 0 {
            return None;
        }
        let res = Stat::decode(&mut self.r).map_err(|k| DecodeError::new(k, None, None));
        self.failed = res.is_err();
        Some(res)
    }
}

/// The Rgetattr body (9P2000.L `p9_stat_dotl`, 9p.c `V9fsStatDotl`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatDotl {
    /// Which fields are valid ([`crate::consts::getattr`] bits).
    pub valid: u64,
    /// The qid.
    pub qid: Qid,
    /// `st_mode`.
    pub mode: u32,
    /// `st_uid`.
    pub uid: u32,
    /// `st_gid`.
    pub gid: u32,
    /// `st_nlink`.
    pub nlink: u64,
    /// `st_rdev`.
    pub rdev: u64,
    /// `st_size`.
    pub size: u64,
    /// `st_blksize`.
    pub blksize: u64,
    /// `st_blocks`.
    pub blocks: u64,
    /// Access time, seconds.
    pub atime_sec: u64,
    /// Access time, nanoseconds.
    pub atime_nsec: u64,
    /// Modification time, seconds.
    pub mtime_sec: u64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: u64,
    /// Change time, seconds.
    pub ctime_sec: u64,
    /// Change time, nanoseconds.
    pub ctime_nsec: u64,
    /// Birth time, seconds.
    pub btime_sec: u64,
    /// Birth time, nanoseconds.
    pub btime_nsec: u64,
    /// Inode generation.
    pub gen: u64,
    /// Data version.
    pub data_version: u64,
}

impl StatDotl {
    pub(crate) fn decode(r: &mut SgReader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(StatDotl {
            valid: r.u64()?,
            qid: Qid::decode(r)?,
            mode: r.u32()?,
            uid: r.u32()?,
            gid: r.u32()?,
            nlink: r.u64()?,
            rdev: r.u64()?,
            size: r.u64()?,
            blksize: r.u64()?,
            blocks: r.u64()?,
            atime_sec: r.u64()?,
            atime_nsec: r.u64()?,
            mtime_sec: r.u64()?,
            mtime_nsec: r.u64()?,
            ctime_sec: r.u64()?,
            ctime_nsec: r.u64()?,
            btime_sec: r.u64()?,
            btime_nsec: r.u64()?,
            gen: r.u64()?,
            data_version: r.u64()?,
        })
    }

    pub(crate) fn encode<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        s.u64(self.valid)?;
        self.qid.encode(s)?;
        s.u32(self.mode)?;
        s.u32(self.uid)?;
        s.u32(self.gid)?;
        for v in [
            self.nlink,
            self.rdev,
            self.size,
            self.blksize,
            self.blocks,
            self.atime_sec,
            self.atime_nsec,
            self.mtime_sec,
            self.mtime_nsec,
            self.ctime_sec,
            self.ctime_nsec,
            self.btime_sec,
            self.btime_nsec,
            self.gen,
            self.data_version,
        ] {
            s.u64(v)?;
        }
        Ok(())
    }
}

/// The Tsetattr body (9p.c `V9fsIattr`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// Which fields to set ([`crate::consts::setattr`] bits).
    pub valid: u32,
    /// New mode.
    pub mode: u32,
    /// New owner.
    pub uid: u32,
    /// New group.
    pub gid: u32,
    /// New size.
    pub size: u64,
    /// New access time, seconds (with `ATIME_SET`).
    pub atime_sec: u64,
    /// New access time, nanoseconds.
    pub atime_nsec: u64,
    /// New modification time, seconds (with `MTIME_SET`).
    pub mtime_sec: u64,
    /// New modification time, nanoseconds.
    pub mtime_nsec: u64,
}

impl SetAttr {
    pub(crate) fn decode(r: &mut SgReader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(SetAttr {
            valid: r.u32()?,
            mode: r.u32()?,
            uid: r.u32()?,
            gid: r.u32()?,
            size: r.u64()?,
            atime_sec: r.u64()?,
            atime_nsec: r.u64()?,
            mtime_sec: r.u64()?,
            mtime_nsec: r.u64()?,
        })
    }

    pub(crate) fn encode<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        s.u32(self.valid)?;
        s.u32(self.mode)?;
        s.u32(self.uid)?;
        s.u32(self.gid)?;
        s.u64(self.size)?;
        s.u64(self.atime_sec)?;
        s.u64(self.atime_nsec)?;
        s.u64(self.mtime_sec)?;
        s.u64(self.mtime_nsec)
    }
}

/// The Rstatfs body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatFs {
    /// File system type (`f_type`).
    pub typ: u32,
    /// Block size (9p.c scales it to a multiple fitting msize).
    pub bsize: u32,
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Blocks available to unprivileged users.
    pub bavail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// File system id.
    pub fsid: u64,
    /// Maximum name length.
    pub namelen: u32,
}

impl StatFs {
    pub(crate) fn decode(r: &mut SgReader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(StatFs {
            typ: r.u32()?,
            bsize: r.u32()?,
            blocks: r.u64()?,
            bfree: r.u64()?,
            bavail: r.u64()?,
            files: r.u64()?,
            ffree: r.u64()?,
            fsid: r.u64()?,
            namelen: r.u32()?,
        })
    }

    pub(crate) fn encode<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        s.u32(self.typ)?;
        s.u32(self.bsize)?;
        s.u64(self.blocks)?;
        s.u64(self.bfree)?;
        s.u64(self.bavail)?;
        s.u64(self.files)?;
        s.u64(self.ffree)?;
        s.u64(self.fsid)?;
        s.u32(self.namelen)
    }
}

/// The Tlock body after the fid (9p.c `V9fsFlock`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flock {
    /// Lock type ([`crate::consts::lock_type`]).
    pub typ: u8,
    /// Flags ([`crate::consts::lock_flags`]).
    pub flags: u32,
    /// Start offset.
    pub start: u64,
    /// Length (0 = to end of file).
    pub length: u64,
    /// Owner process id.
    pub proc_id: u32,
    /// Client identifier.
    pub client_id: P9String,
}

impl Flock {
    pub(crate) fn decode(r: &mut SgReader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(Flock {
            typ: r.u8()?,
            flags: r.u32()?,
            start: r.u64()?,
            length: r.u64()?,
            proc_id: r.u32()?,
            client_id: r.p9string()?,
        })
    }

    pub(crate) fn encode<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        s.u8(self.typ)?;
        s.u32(self.flags)?;
        s.u64(self.start)?;
        s.u64(self.length)?;
        s.u32(self.proc_id)?;
        s.string(&self.client_id)
    }
}

/// The Tgetlock body after the fid, and the Rgetlock body (9p.c
/// `V9fsGetlock`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Getlock {
    /// Lock type ([`crate::consts::lock_type`]).
    pub typ: u8,
    /// Start offset.
    pub start: u64,
    /// Length.
    pub length: u64,
    /// Owner process id.
    pub proc_id: u32,
    /// Client identifier.
    pub client_id: P9String,
}

impl Getlock {
    pub(crate) fn decode(r: &mut SgReader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(Getlock {
            typ: r.u8()?,
            start: r.u64()?,
            length: r.u64()?,
            proc_id: r.u32()?,
            client_id: r.p9string()?,
        })
    }

    pub(crate) fn encode<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        s.u8(self.typ)?;
        s.u64(self.start)?;
        s.u64(self.length)?;
        s.u32(self.proc_id)?;
        s.string(&self.client_id)
    }
}

/// One Rreaddir entry: `qid[13] offset[8] type[1] name[s]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dirent {
    /// The entry's qid (9p.c fills only `path` unless inodes are remapped).
    pub qid: Qid,
    /// Offset to pass to the next Treaddir to continue after this entry.
    pub offset: u64,
    /// `d_type`.
    pub typ: u8,
    /// Entry name.
    pub name: P9String,
}

impl Dirent {
    /// Bytes on the wire for an entry whose name has `name_len` bytes (9p.c
    /// `v9fs_readdir_response_size`).
    pub fn wire_size_for(name_len: usize) -> usize {
        DIRENT_HEADER_SIZE + name_len
    }

    /// Bytes on the wire for this entry.
    pub fn wire_size(&self) -> usize {
        Dirent::wire_size_for(self.name.len())
    }

    pub(crate) fn decode(r: &mut SgReader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(Dirent {
            qid: Qid::decode(r)?,
            offset: r.u64()?,
            typ: r.u8()?,
            name: r.p9string()?,
        })
    }

    pub(crate) fn encode_parts<S: Sink + ?Sized>(
        s: &mut S,
        qid: &Qid,
        offset: u64,
        typ: u8,
        name: &[u8],
    ) -> Result<(), EncodeError> {
        qid.encode(s)?;
        s.u64(offset)?;
        s.u8(typ)?;
        s.string(name)
    }

    /// Encode into a new vector (e.g. to build Rreaddir data by hand).
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = VecSink(Vec::with_capacity(self.wire_size()));
        Dirent::encode_parts(&mut v, &self.qid, self.offset, self.typ, &self.name)?;
        Ok(v.0)
    }

    /// Iterate over the entries of Rreaddir data.
    pub fn iter(data: SgView<'_>) -> DirentIter<'_> {
        DirentIter {
            r: SgReader::new(data),
            failed: false,
        }
    }
}

/// Iterator over Rreaddir entries; see [`Dirent::iter`].  Stops after the
/// first error.
pub struct DirentIter<'a> {
    r: SgReader<'a>,
    failed: bool,
}

impl Iterator for DirentIter<'_> {
    type Item = Result<Dirent, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.r.remaining() == 0 {
            return None;
        }
        let res = Dirent::decode(&mut self.r).map_err(|k| DecodeError::new(k, None, None));
        self.failed = res.is_err();
        Some(res)
    }
}

/// A [`Sink`] appending to a vector.
pub(crate) struct VecSink(pub(crate) Vec<u8>);

impl Sink for VecSink {
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p9string_conversions() {
        let s = P9String::from("abc");
        assert_eq!(s, "abc");
        assert_eq!(s.as_bytes(), b"abc");
        assert_eq!(s.wire_size(), 5);
        assert_eq!(s.to_str(), Some("abc"));
        assert!(!s.has_nul());
        let b = P9String::new(vec![0xff, b'/', 0]);
        assert!(b.has_nul());
        assert_eq!(b.to_str(), None);
        assert_eq!(format!("{b:?}"), "\"\\xff/\\x00\"");
        assert_eq!(b.to_string_lossy(), "\u{fffd}/\0");
        assert_eq!(P9String::from(&b"x"[..]).into_bytes(), b"x");
    }

    #[test]
    fn stat_dont_touch() {
        let s = Stat::dont_touch();
        assert!(s.is_dont_touch());
        assert_eq!(s.wire_size(), STAT_FIXED_SIZE);
        assert_eq!(s.size_field(), Ok(61));
        let mut t = s.clone();
        t.mode = 0o644;
        assert!(!t.is_dont_touch());
        let mut t = s.clone();
        t.name = "x".into();
        assert!(!t.is_dont_touch());
        assert!(!Stat::default().is_dont_touch());
    }

    #[test]
    fn stat_size_limit() {
        let s = Stat {
            name: P9String::new(vec![b'a'; 65535 - 61]),
            ..Stat::default()
        };
        assert_eq!(s.size_field(), Ok(65535));
        let s = Stat {
            name: P9String::new(vec![b'a'; 65536 - 61]),
            ..Stat::default()
        };
        assert!(s.size_field().is_err());
        assert!(s.to_bytes().is_err());
    }
}
