// SPDX-License-Identifier: GPL-2.0-or-later
//! From a file's host identity (device, inode) to its 9P qid.
//!
//! As 9p.c's `stat_to_qid`: the qid version is `mtime ^ (size << 8)`, the
//! type has DIR/SYMLINK bits, and the path depends on the `multidevs` mode:
//!
//! - `warn` (default) and `forbid`: the path is the inode number; a file on
//!   another device than the export root is reported once (`warn`) or
//!   refused with `ENODEV` (`forbid`).
//! - `remap`: (device, inode) pairs map to distinct paths.  9p.c uses
//!   variable-length prefix codes; we use a simpler scheme with the same
//!   guarantees: the first 32767 devices get a 15-bit index and an inode
//!   below 2^48 maps to `index << 48 | inode` (top bit clear) with no table
//!   entry per file; anything else gets a sequence number with the top bit
//!   set from a bounded full map.  When the full map is full the lookup
//!   fails with `ENFILE`, like 9p.c when it runs out of prefixes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use p9_wire::consts::qid_type;
use p9_wire::errno::{Errno, ENFILE, ENODEV};
use p9_wire::types::Qid;

use crate::convert::linux::{S_IFDIR, S_IFLNK, S_IFMT};
use crate::hash::FastMap;

/// How files on other devices than the export root are handled
/// (`-virtfs multidevs=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MultiDevs {
    /// Use inode numbers as they are; warn once about other devices.
    #[default]
    Warn,
    /// Refuse files on other devices with `ENODEV`.
    Forbid,
    /// Remap (device, inode) to distinct qid paths.
    Remap,
}

/// The host identity and the attributes a qid is derived from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileId {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// `st_mode` (file type bits are used).
    pub mode: u32,
    /// `st_mtime` in seconds.
    pub mtime: i64,
    /// `st_size`.
    pub size: i64,
}

/// Devices that get a compact 15-bit index in remap mode.
const REMAP_DEVICES: usize = 1 << 15;
/// Inodes below this fit next to a device index.
const REMAP_INO_LIMIT: u64 = 1 << 48;
/// Bound on (device, inode) pairs in the full map (about 40 MiB at most).
pub const FULL_MAP_MAX: usize = 1 << 20;
const FULL_MAP_BIT: u64 = 1 << 63;

#[derive(Default)]
struct Remap {
    devices: FastMap<u64, u64>,
    full: FastMap<(u64, u64), u64>,
}

/// Maps host file identities to qids for one export.
pub struct QidMap {
    mode: MultiDevs,
    root_dev: u64,
    full_map_max: usize,
    warned: AtomicBool,
    remap: Mutex<Remap>,
}

impl QidMap {
    /// A map for an export whose root is on device `root_dev`.
    pub fn new(mode: MultiDevs, root_dev: u64) -> Self {
        Self::with_full_map_max(mode, root_dev, FULL_MAP_MAX)
    }

    /// As [`QidMap::new`], with a smaller full-map bound (tests).
    pub fn with_full_map_max(mode: MultiDevs, root_dev: u64, full_map_max: usize) -> Self {
        QidMap {
            mode,
            root_dev,
            full_map_max,
            warned: AtomicBool::new(false),
            remap: Mutex::new(Remap::default()),
        }
    }

    /// Whether a file on another device was seen in `warn` mode.
    pub fn warned(&self) -> bool {
        self.warned.load(Ordering::Relaxed)
    }

    /// The qid of `id`.
    ///
    /// # Errors
    /// `ENODEV` for another device in `forbid` mode; `ENFILE` when the remap
    /// full map is exhausted.
    pub fn qid(&self, id: &FileId) -> Result<Qid, Errno> {
        let path = match self.mode {
            MultiDevs::Remap => self.remapped_path(id)?,
            MultiDevs::Forbid if id.dev != self.root_dev => return Err(ENODEV),
            MultiDevs::Warn if id.dev != self.root_dev => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "9p: Multiple devices detected in same VirtFS export, which might \
                         lead to file ID collisions and severe misbehaviours on guest! You \
                         should either use a separate export for each device shared from \
                         host or use virtfs option 'multidevs=remap'!"
                    );
                }
                id.ino
            }
            _ => id.ino,
        };
        let mut typ = 0;
        match id.mode & S_IFMT {
            S_IFDIR => typ |= qid_type::DIR,
            S_IFLNK => typ |= qid_type::SYMLINK,
            _ => {}
        }
        Ok(Qid {
            typ,
            version: (id.mtime ^ (id.size << 8)) as u32,
            path,
        })
    }

    fn remapped_path(&self, id: &FileId) -> Result<u64, Errno> {
        let mut remap = self.remap.lock().unwrap_or_else(|e| e.into_inner());
        if id.ino < REMAP_INO_LIMIT {
            let next = remap.devices.len() as u64;
            if let Some(&index) = remap.devices.get(&id.dev) {
                return Ok(index << 48 | id.ino);
            }
            if remap.devices.len() < REMAP_DEVICES {
                remap.devices.insert(id.dev, next);
                return Ok(next << 48 | id.ino);
            }
        }
        let next = remap.full.len() as u64;
        if let Some(&seq) = remap.full.get(&(id.dev, id.ino)) {
            return Ok(FULL_MAP_BIT | seq);
        }
        if remap.full.len() >= self.full_map_max {
            return Err(ENFILE);
        }
        remap.full.insert((id.dev, id.ino), next);
        Ok(FULL_MAP_BIT | next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dev: u64, ino: u64) -> FileId {
        FileId {
            dev,
            ino,
            mode: 0o100644,
            mtime: 1000,
            size: 3,
        }
    }

    #[test]
    fn qid_version_and_type_follow_9p_c() {
        let map = QidMap::new(MultiDevs::Warn, 1);
        let q = map.qid(&file(1, 42)).unwrap();
        assert_eq!(q.path, 42);
        assert_eq!(q.version, (1000 ^ (3 << 8)) as u32);
        assert_eq!(q.typ, 0);
        let dir = FileId {
            mode: 0o040755,
            ..file(1, 2)
        };
        assert_eq!(map.qid(&dir).unwrap().typ, qid_type::DIR);
        let link = FileId {
            mode: 0o120777,
            ..file(1, 3)
        };
        assert_eq!(map.qid(&link).unwrap().typ, qid_type::SYMLINK);
    }

    #[test]
    fn warn_keeps_inodes_and_warns_once() {
        let map = QidMap::new(MultiDevs::Warn, 1);
        assert!(!map.warned());
        assert_eq!(map.qid(&file(2, 42)).unwrap().path, 42);
        assert!(map.warned());
    }

    #[test]
    fn forbid_refuses_other_devices() {
        let map = QidMap::new(MultiDevs::Forbid, 1);
        assert_eq!(map.qid(&file(1, 7)).unwrap().path, 7);
        assert_eq!(map.qid(&file(2, 7)), Err(ENODEV));
    }

    #[test]
    fn remap_separates_devices_and_is_stable() {
        let map = QidMap::new(MultiDevs::Remap, 1);
        let a = map.qid(&file(1, 7)).unwrap().path;
        let b = map.qid(&file(2, 7)).unwrap().path;
        assert_ne!(a, b);
        assert_eq!(map.qid(&file(2, 7)).unwrap().path, b);
        assert_eq!(map.qid(&file(1, 7)).unwrap().path, a);
        // Huge inodes go through the full map, still distinct and stable.
        let big1 = map.qid(&file(1, u64::MAX)).unwrap().path;
        let big2 = map.qid(&file(2, u64::MAX)).unwrap().path;
        assert_ne!(big1, big2);
        assert_eq!(map.qid(&file(1, u64::MAX)).unwrap().path, big1);
        assert!(big1 & FULL_MAP_BIT != 0 && a & FULL_MAP_BIT == 0);
    }

    #[test]
    fn remap_full_map_is_bounded() {
        let map = QidMap::with_full_map_max(MultiDevs::Remap, 1, 4);
        for i in 0..4 {
            map.qid(&file(1, REMAP_INO_LIMIT + i)).unwrap();
        }
        assert_eq!(map.qid(&file(1, REMAP_INO_LIMIT + 9)), Err(ENFILE));
        // Known entries and compact ones still work.
        map.qid(&file(1, REMAP_INO_LIMIT)).unwrap();
        map.qid(&file(1, 5)).unwrap();
    }
}
