// SPDX-License-Identifier: GPL-2.0-or-later
//! Directory reading in batches (`Treaddir`) with `getdents64`, resumable
//! at any entry's offset cookie.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::errno::{self, cvt_long, retry_eintr, Result};
use crate::node::Node;
use crate::open::open;

/// One directory entry, borrowed from the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// Inode number.
    pub ino: u64,
    /// Offset cookie of the position *after* this entry: pass it to
    /// [`DirReader::seek`] to resume with the next entry (9P's readdir
    /// offset).
    pub off: i64,
    /// Entry type (`DT_REG`, `DT_DIR`, ..., `DT_UNKNOWN`).
    pub d_type: u8,
    /// Name, without the terminating NUL.
    pub name: &'a [u8],
}

/// The entries of one [`DirReader::read_batch`], parsed from the buffer.
#[derive(Clone, Debug)]
pub struct DirBatch<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// Offsets inside `struct linux_dirent64`.
const D_INO: usize = 0;
const D_OFF: usize = 8;
const D_RECLEN: usize = 16;
const D_TYPE: usize = 18;
const D_NAME: usize = 19;

fn read_u64(b: &[u8], at: usize) -> Option<[u8; 8]> {
    b.get(at..at + 8)?.try_into().ok()
}

impl<'a> Iterator for DirBatch<'a> {
    type Item = DirEntry<'a>;

    fn next(&mut self) -> Option<DirEntry<'a>> {
        let rest = self.buf.get(self.pos..)?;
        if rest.len() < D_NAME {
            return None;
        }
        let reclen = usize::from(u16::from_ne_bytes([rest[D_RECLEN], rest[D_RECLEN + 1]]));
        if reclen <= D_NAME || reclen > rest.len() {
            // Malformed record: stop rather than read garbage.
            self.pos = self.buf.len();
            return None;
        }
        let rec = &rest[..reclen];
        let name_area = &rec[D_NAME..];
        let name_len = name_area
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(name_area.len());
        self.pos += reclen;
        Some(DirEntry {
            ino: u64::from_ne_bytes(read_u64(rec, D_INO)?),
            off: i64::from_ne_bytes(read_u64(rec, D_OFF)?),
            d_type: rec[D_TYPE],
            name: &name_area[..name_len],
        })
    }
}

/// Reads a directory in caller-sized batches, each one `getdents64` call.
///
/// The directory is open (never an `O_PATH` descriptor: `getdents64` needs a
/// real open), so it keeps its position between batches; [`seek`] moves it
/// to an entry's [`DirEntry::off`] cookie (or 0 for the start), which is
/// how a 9P `Treaddir` at an offset resumes.  `.` and `..` are returned
/// like any entry (QEMU returns them too); filtering is the engine's choice.
/// It implements [`AsFd`], so [`crate::fsync`] works on it for `Tfsync` of
/// a directory fid.
///
/// [`seek`]: DirReader::seek
#[derive(Debug)]
pub struct DirReader {
    fd: OwnedFd,
}

impl DirReader {
    /// Opens the directory held by `node` for reading (with [`open`] and
    /// `O_RDONLY | O_DIRECTORY`).
    ///
    /// # Errors
    ///
    /// The errors of [`open`]: `ENOTDIR` if `node` is not a directory (a
    /// symbolic link too, as `open(O_DIRECTORY | O_NOFOLLOW)` says; `ENXIO`
    /// for a special file), `EACCES`...
    pub fn open(node: &Node) -> Result<DirReader> {
        Ok(DirReader {
            fd: open(node, libc::O_RDONLY | libc::O_DIRECTORY)?,
        })
    }

    /// Uses `fd`, which must be a directory open for reading (e.g. from
    /// [`open`]); errors appear at the first read otherwise.
    #[must_use]
    pub fn from_fd(fd: OwnedFd) -> DirReader {
        DirReader { fd }
    }

    /// Moves to the position `cookie`: 0 for the start, or the
    /// [`DirEntry::off`] of the entry to resume after.
    ///
    /// # Errors
    ///
    /// The raw errno of `lseek` (`EINVAL` for a cookie the file system
    /// rejects).
    pub fn seek(&mut self, cookie: i64) -> Result<()> {
        // SAFETY: lseek takes only a descriptor, an offset and a whence.
        let r = unsafe { libc::lseek64(self.fd.as_raw_fd(), cookie, libc::SEEK_SET) };
        cvt_long(r as libc::c_long).map(drop)
    }

    /// Reads the next entries into `buf` (one `getdents64`) and returns
    /// them; an empty batch means the end of the directory.  Entries are
    /// whole: as many as fit.
    ///
    /// # Errors
    ///
    /// * `EINVAL`: `buf` is too small for the next entry (a few hundred
    ///   bytes always suffice: 19 bytes plus the name plus padding);
    /// * otherwise the raw errno of `getdents64` (`ENOENT` if the directory
    ///   was removed, `EIO`, ...).
    pub fn read_batch<'b>(&mut self, buf: &'b mut [u8]) -> Result<DirBatch<'b>> {
        let fd = self.fd.as_raw_fd();
        let n = retry_eintr(|| {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the
            // duration of the call; getdents64 writes at most that many.
            let r = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
            cvt_long(r)
        })?;
        let n = usize::try_from(n).map_err(|_| errno::EIO)?.min(buf.len());
        Ok(DirBatch {
            buf: &buf[..n],
            pos: 0,
        })
    }
}

impl AsFd for DirReader {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ino: u64, off: i64, t: u8, name: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&ino.to_ne_bytes());
        v.extend_from_slice(&off.to_ne_bytes());
        let reclen = (D_NAME + name.len() + 1).div_ceil(8) * 8;
        v.extend_from_slice(&(reclen as u16).to_ne_bytes());
        v.push(t);
        v.extend_from_slice(name);
        v.resize(reclen, 0);
        v
    }

    #[test]
    fn parses_records_and_stops_on_garbage() {
        let mut b = record(5, 10, libc::DT_REG, b"hello");
        b.extend(record(6, 20, libc::DT_DIR, b"d"));
        let got: Vec<_> = DirBatch { buf: &b, pos: 0 }.collect();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            DirEntry {
                ino: 5,
                off: 10,
                d_type: libc::DT_REG,
                name: b"hello"
            }
        );
        assert_eq!(got[1].name, b"d");
        assert_eq!(got[1].off, 20);

        // A record claiming to be longer than the buffer ends the batch.
        let mut bad = record(7, 30, libc::DT_REG, b"x");
        bad[D_RECLEN] = 200;
        assert_eq!(DirBatch { buf: &bad, pos: 0 }.count(), 0);
        // A zero reclen must not loop forever.
        let mut zero = record(7, 30, libc::DT_REG, b"x");
        zero[D_RECLEN] = 0;
        zero[D_RECLEN + 1] = 0;
        assert_eq!(DirBatch { buf: &zero, pos: 0 }.count(), 0);
        // Truncated header.
        assert_eq!(
            DirBatch {
                buf: &b[..10],
                pos: 0
            }
            .count(),
            0
        );
    }
}
