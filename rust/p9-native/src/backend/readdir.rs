// SPDX-License-Identifier: GPL-2.0-or-later
//! `Treaddir` of [`NativeBackend`]: a directory handle's entries, with
//! `..` as recorded and, on request, each entry's attributes.

use std::os::fd::AsFd;

use p9_engine::backend::{DirEntry, Result};

use super::convert::attr_of;
use super::handle::{dirent_bufs, lock_dir, DirState, HandleKind, NativeHandle, DIRENT_BUF};
use super::NativeBackend;
use crate::{errno, stat_at, Errno};

impl NativeBackend {
    /// [`Backend::readdir`](p9_engine::backend::Backend::readdir) (see its
    /// documentation on the implementation for [`NativeBackend`]).
    pub(super) fn read_dir(
        &self,
        handle: &NativeHandle,
        offset: u64,
        want_attr: bool,
        sink: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<()> {
        let HandleKind::Dir(dir) = &handle.kind else {
            return Err(errno::EBADF);
        };
        let here = self.tree.verified(&handle.rec)?;
        let mut guard = lock_dir(dir);
        let DirState { reader, at, buf } = &mut *guard;
        // Cookies are opaque: the u64 goes back to the i64 it came from.
        let offset = offset as i64;
        if at.take() != Some(offset) {
            reader.seek(offset)?;
        }
        if buf.is_empty() {
            *buf = dirent_bufs().pop().unwrap_or_else(|| vec![0; DIRENT_BUF]);
        }
        let mut pos = offset;
        let mut delivered = false;
        let fail = |e: Errno, delivered: bool| {
            if delivered {
                Ok(())
            } else {
                Err(e)
            }
        };
        loop {
            let batch = match reader.read_batch(buf) {
                Ok(b) => b,
                Err(e) => return fail(e, delivered),
            };
            let mut any = false;
            for e in batch {
                any = true;
                pos = e.off;
                if self.model.hides(e.name) {
                    continue;
                }
                let mut ino = e.ino;
                let mut attr = None;
                if e.name == b".." {
                    let up = match self.dotdot(&handle.rec) {
                        Ok(up) => up,
                        Err(err) => return fail(err, delivered),
                    };
                    ino = up.ino();
                    if want_attr {
                        match self.stat_of(&up) {
                            Ok(st) => attr = Some(attr_of(&st)),
                            Err(err) => return fail(err, delivered),
                        }
                    }
                } else if want_attr {
                    match stat_at(&*reader, e.name) {
                        Ok(st) => {
                            match self.entry_stat(&handle.rec, &here, reader.as_fd(), e.name, st) {
                                Ok(st) => attr = Some(attr_of(&st)),
                                Err(err) => return fail(err, delivered),
                            }
                        }
                        Err(errno::ENOENT) => continue,
                        Err(err) => return fail(err, delivered),
                    }
                }
                let entry = DirEntry {
                    ino,
                    next: e.off as u64,
                    // QEMU's local_readdir: the host's type is not the
                    // guest's in the mapped models.
                    d_type: if self.model.is_mapped() {
                        libc::DT_UNKNOWN
                    } else {
                        e.d_type
                    },
                    name: e.name,
                    attr,
                };
                if !sink(&entry) {
                    return Ok(());
                }
                delivered = true;
            }
            if !any {
                // At the end, where the last whole batch left it.
                *at = Some(pos);
                return Ok(());
            }
        }
    }
}
