// SPDX-License-Identifier: GPL-2.0-or-later
//! The structures carried inside messages: strings, qids, the 9P2000.u
//! stat, the 9P2000.L getattr/setattr/statfs/lock records and directory
//! entries.  Each record is declared once with `wire_record!`, which
//! gives its wire encoding and decoding (its fields, in order).

use std::marker::PhantomData;

use crate::consts::{DIRENT_HEADER_SIZE, STAT_FIXED_SIZE};
use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::sg::{SgReader, SgView, Sink};
pub use crate::string::P9String;
use crate::wire::{wire_record, Decode, Encode};

wire_record! {
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
}

/// `size[2]` then the fields, which must fill it exactly.
impl Encode for Stat {
    fn encode<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        s.u16(self.size_field()?)?;
        self.typ.encode(s)?;
        self.dev.encode(s)?;
        self.qid.encode(s)?;
        self.mode.encode(s)?;
        self.atime.encode(s)?;
        self.mtime.encode(s)?;
        self.length.encode(s)?;
        [
            &self.name,
            &self.uid,
            &self.gid,
            &self.muid,
            &self.extension,
        ]
        .into_iter()
        .try_for_each(|string| string.encode(s))?;
        self.n_uid.encode(s)?;
        self.n_gid.encode(s)?;
        self.n_muid.encode(s)
    }
}

impl Decode<'_> for Stat {
    fn decode(r: &mut SgReader<'_>) -> Result<Self, DecodeErrorKind> {
        let size = r.u16()?;
        let mut b = SgReader::new(r.view(usize::from(size))?);
        let stat = Stat::decode_fields(&mut b).map_err(|k| match k {
            DecodeErrorKind::Truncated => DecodeErrorKind::BadStatSize,
            other => other,
        })?;
        if b.remaining() != 0 {
            return Err(DecodeErrorKind::BadStatSize);
        }
        Ok(stat)
    }
}

impl Stat {
    fn decode_fields(r: &mut SgReader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(Stat {
            typ: Decode::decode(r)?,
            dev: Decode::decode(r)?,
            qid: Decode::decode(r)?,
            mode: Decode::decode(r)?,
            atime: Decode::decode(r)?,
            mtime: Decode::decode(r)?,
            length: Decode::decode(r)?,
            name: Decode::decode(r)?,
            uid: Decode::decode(r)?,
            gid: Decode::decode(r)?,
            muid: Decode::decode(r)?,
            extension: Decode::decode(r)?,
            n_uid: Decode::decode(r)?,
            n_gid: Decode::decode(r)?,
            n_muid: Decode::decode(r)?,
        })
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
        EntryIter::new(data)
    }
}

/// The codec of Twstat's and Rstat's `n[2] stat[n]`: `n` is written as
/// the stat's length and ignored on decode (9p.c writes 0 there in Rstat;
/// 9p.c and Linux both discard it in Twstat).
pub(crate) struct PrefixedStat;

impl PrefixedStat {
    pub(crate) fn encode<S: Sink + ?Sized>(stat: &Stat, s: &mut S) -> Result<(), EncodeError> {
        let size = stat.wire_size();
        s.u16(u16::try_from(size).map_err(|_| EncodeError::MessageTooLarge { size })?)?;
        stat.encode(s)
    }

    pub(crate) fn decode(r: &mut SgReader<'_>) -> Result<Stat, DecodeErrorKind> {
        let _n = r.u16()?;
        Stat::decode(r)
    }
}

/// Iterator over the stats in 9P2000.u directory data; see [`Stat::iter`].
/// Stops after the first error.
pub type StatIter<'a> = EntryIter<'a, Stat>;

#[cfg(test)]
impl crate::wire::Sample for Stat {
    fn sample() -> Self {
        Stat {
            name: "name".into(),
            extension: "ext".into(),
            n_uid: 7,
            ..Stat::dont_touch()
        }
    }
}

wire_record! {
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
}

wire_record! {
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
}

wire_record! {
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
}

wire_record! {
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
}

wire_record! {
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
}

wire_record! {
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

    /// An entry by its parts, for the in-place Rreaddir writer (the name
    /// stays borrowed).
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
        self.encode(&mut v)?;
        Ok(v.0)
    }

    /// Iterate over the entries of Rreaddir data.
    pub fn iter(data: SgView<'_>) -> DirentIter<'_> {
        EntryIter::new(data)
    }
}

/// Iterator over Rreaddir entries; see [`Dirent::iter`].  Stops after
/// the first error.
pub type DirentIter<'a> = EntryIter<'a, Dirent>;

/// Iterator over the packed entries of directory data ([`StatIter`],
/// [`DirentIter`]).  Stops after the first error.
pub struct EntryIter<'a, T> {
    r: SgReader<'a>,
    failed: bool,
    entry: PhantomData<T>,
}

impl<'a, T> EntryIter<'a, T> {
    fn new(data: SgView<'a>) -> Self {
        EntryIter {
            r: SgReader::new(data),
            failed: false,
            entry: PhantomData,
        }
    }
}

impl<T: for<'x> Decode<'x>> Iterator for EntryIter<'_, T> {
    type Item = Result<T, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.r.remaining() == 0 {
            return None;
        }
        let res = T::decode(&mut self.r).map_err(|k| DecodeError::new(k, None, None));
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
