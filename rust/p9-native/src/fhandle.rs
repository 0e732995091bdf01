// SPDX-License-Identifier: GPL-2.0-or-later
//! File handles (`name_to_handle_at`): an identity for a file that, unlike
//! its inode number, is not reused once the file is gone.
//!
//! The backend takes a node's handle when it gives the node's descriptor
//! back (see `crate::budget`) and compares it when it finds the node again
//! by name: an inode number can be reused by a new file as soon as the old
//! one is freed, but a handle carries the file system's generation too
//! (ext4, xfs, btrfs, tmpfs: a new file gets a new one).  Only
//! `name_to_handle_at` is used, which needs no privilege; reopening by
//! handle (`open_by_handle_at`, which needs `CAP_DAC_READ_SEARCH`) would
//! find the file wherever the host moved it, which is exactly what the
//! export must not do, so files are always found again by their place
//! beneath the export root.

use std::os::fd::{AsRawFd, BorrowedFd};

/// `MAX_HANDLE_SZ` of `<linux/exportfs.h>`.
const MAX_HANDLE_SZ: usize = 128;

/// `struct file_handle` with room for the largest handle.
#[repr(C)]
struct HandleBuf {
    handle_bytes: libc::c_uint,
    handle_type: libc::c_int,
    f_handle: [u8; MAX_HANDLE_SZ],
}

/// A file's handle: its type and opaque bytes, as `name_to_handle_at`
/// reports them (comparable only with handles from the same file system,
/// which callers ensure by comparing `st_dev` first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileHandle {
    typ: i32,
    bytes: Box<[u8]>,
}

/// The handle of the file `fd` refers to (any descriptor, `O_PATH` ones
/// included: `AT_EMPTY_PATH`), or `None` when its file system has none
/// (`EOPNOTSUPP`: `/proc`, some FUSE file systems) or the call fails
/// otherwise: identity then rests on `st_dev`/`st_ino` alone.
pub(crate) fn file_handle(fd: BorrowedFd<'_>) -> Option<FileHandle> {
    let mut buf = HandleBuf {
        handle_bytes: MAX_HANDLE_SZ as libc::c_uint,
        handle_type: 0,
        f_handle: [0; MAX_HANDLE_SZ],
    };
    let mut mount_id: libc::c_int = 0;
    // SAFETY: `buf` is a `struct file_handle` whose `handle_bytes` says how
    // much room follows it, `mount_id` is writable, the empty path is
    // NUL-terminated, and `fd` is live for the call.
    let r = unsafe {
        libc::name_to_handle_at(
            fd.as_raw_fd(),
            c"".as_ptr(),
            std::ptr::addr_of_mut!(buf).cast::<libc::file_handle>(),
            &mut mount_id,
            libc::AT_EMPTY_PATH,
        )
    };
    if r != 0 {
        return None;
    }
    let len = (buf.handle_bytes as usize).min(MAX_HANDLE_SZ);
    Some(FileHandle {
        typ: buf.handle_type,
        bytes: buf.f_handle[..len].into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// A file's handle is stable; a file recreated under the same name
    /// has another one.  (That a handle tells apart files of the same,
    /// reused, inode number is tested in tests/places.rs on ext4, which
    /// reuses them at once.)
    #[test]
    fn handles_tell_recreated_files_apart() {
        let dir = std::path::PathBuf::from(format!("/dev/shm/p9-native-fh-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let p = dir.join("f");
        std::fs::write(&p, b"1").unwrap();
        let a = std::fs::File::open(&p).unwrap();
        let ha = file_handle(a.as_fd()).expect("tmpfs has file handles");
        assert_eq!(file_handle(a.as_fd()), Some(ha.clone()));
        let mut differ = false;
        for _ in 0..4 {
            drop(std::fs::remove_file(&p));
            std::fs::write(&p, b"2").unwrap();
            let b = std::fs::File::open(&p).unwrap();
            differ |= file_handle(b.as_fd()).is_some_and(|hb| hb != ha);
        }
        assert!(differ, "a new file has another handle");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
