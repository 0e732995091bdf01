// SPDX-License-Identifier: GPL-2.0-or-later
//! The C backend vtable: `QrsP9BackendOps`, shaped after QEMU's
//! `FileOperations` (`fsdev/file-op-9p.h`) so that a thin C file adapts it
//! one-to-one.

use std::ffi::{c_char, c_int, c_void};

use libc::{dirent, iovec, stat, statfs, timespec};

/// An opaque path, made only by the backend's `name_to_path` (QEMU's
/// `V9fsPath`: a NUL-terminated string for 9p-local, with `size` counting
/// the NUL; a node pointer for 9p-synth).  Borrowed for the duration of a
/// call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct QrsP9Path {
    /// The bytes.
    pub data: *const u8,
    /// How many.
    pub size: usize,
}

/// The credentials and creation parameters of a request (QEMU's `FsCred`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QrsP9Cred {
    /// Owner (`fc_uid`); `(uint32_t)-1` leaves it unchanged in `chown`.
    pub uid: u32,
    /// Group (`fc_gid`); `(uint32_t)-1` leaves it unchanged in `chown`.
    pub gid: u32,
    /// Mode bits (`fc_mode`): permissions, and the file type for `mknod`.
    pub mode: u32,
    /// Device number for `mknod` (`fc_rdev`).
    pub rdev: u64,
}

/// A byte-range lock (Tlock, Tgetlock).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QrsP9Lock {
    /// `P9_LOCK_TYPE_RDLCK` (0), `WRLCK` (1) or `UNLCK` (2).
    pub type_: u8,
    /// First byte.
    pub start: u64,
    /// Length; 0 means to the end of the file.
    pub length: u64,
    /// The guest's process id.
    pub proc_id: u32,
}

/// `QrsP9BackendOps.flags`: paths are `/`-separated NUL-terminated names
/// under the export (QEMU's `V9FS_PATHNAME_FSCONTEXT`, set by 9p-local).
/// The engine then serialises renames against other requests, fixes the
/// paths of every fid after a rename (9p.c `v9fs_fix_path`), and derives
/// the parent and name of a fid for Trename and Tstat from its path: the
/// path of `name` in `dir` must be `dir`'s path, `/`, `name` (9p-local:
/// the root is `.`, its entries `./name`), so that the parent's path is
/// the part before the last `/`.
/// Without it paths are opaque and Trename of a fid is `EOPNOTSUPP`.
pub const QRS_P9_BACKEND_PATHNAMES: u32 = 1;

/// Called by `readdir` for each entry, with the `ctx` given to it: return 0
/// to go on, non-zero to stop (the entry was not taken; the next Treaddir
/// resumes at it through its offset).
pub type QrsP9DirentFn = unsafe extern "C" fn(ctx: *mut c_void, entry: *const dirent) -> c_int;

/// A backend in C.  Every function gets the `opaque` given to
/// `qrs_p9_backend_c_new` first, may block (the engine calls them on worker
/// threads, never on a coroutine's home thread, and concurrently), and
/// returns 0 or a byte count on success and a negative errno on failure
/// (QEMU's functions return -1 with `errno` set: the adapter returns
/// `-errno`).  Paths are `QrsP9Path` values that `name_to_path` produced;
/// names are single NUL-terminated components, never `/`-containing, `.`
/// or `..` (except where said).  Open state is an opaque `void *` the
/// backend allocates in `open`, `opendir` or `open2` and frees in `close`
/// or `closedir` (QEMU: a `V9fsFidOpenState`).  Functions marked optional
/// may be NULL; all others are required.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct QrsP9BackendOps {
    /// `QRS_P9_BACKEND_*` bits.
    pub flags: u32,
    /// Write the path of `name` in directory `dir` into `out` (at most
    /// `out_size` bytes) and return its length; `-ENAMETOOLONG` if it does
    /// not fit (the engine retries with a larger buffer, up to 1 MiB), or
    /// another negative errno (9p-synth: `-ENOENT` for a missing name).  `dir` is NULL for the root, with `name` "/"
    /// (Tattach).  `name` may be "." or "..": `..` of the root is never
    /// asked for.  Must not block: it also runs under the fid table's lock
    /// after renames.
    pub name_to_path: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            dir: *const QrsP9Path,
            name: *const c_char,
            out: *mut u8,
            out_size: usize,
        ) -> isize,
    >,
    /// `lstat(2)` of `path`.
    pub lstat: Option<
        unsafe extern "C" fn(opaque: *mut c_void, path: *const QrsP9Path, st: *mut stat) -> c_int,
    >,
    /// Optional: the inode generation (`FS_IOC_GETVERSION`) of the file
    /// at `path` whose mode is `mode`, into `*gen` (QEMU's
    /// `exops.get_st_gen`).  Called only for a Tgetattr whose request mask
    /// has `P9_STATS_GEN`, after `lstat`/`fstat`; a negative return leaves
    /// `P9_STATS_GEN` out of the reply, which still succeeds.  NULL: the
    /// generation is reported as 0.
    pub get_st_gen: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            path: *const QrsP9Path,
            mode: u32,
            gen: *mut u64,
        ) -> c_int,
    >,
    /// `readlink(2)`: at most `size` bytes into `buf`, no NUL added;
    /// returns the length.
    pub readlink: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            path: *const QrsP9Path,
            buf: *mut c_char,
            size: usize,
        ) -> isize,
    >,
    /// `statfs(2)` of the filesystem holding `path`.
    pub statfs: Option<
        unsafe extern "C" fn(opaque: *mut c_void, path: *const QrsP9Path, st: *mut statfs) -> c_int,
    >,
    /// Set the mode of `path` to `cred->mode`.
    pub chmod: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            path: *const QrsP9Path,
            cred: *const QrsP9Cred,
        ) -> c_int,
    >,
    /// Set the owner of `path` to `cred->uid` and `cred->gid` (each
    /// `(uint32_t)-1`: unchanged).
    pub chown: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            path: *const QrsP9Path,
            cred: *const QrsP9Cred,
        ) -> c_int,
    >,
    /// Set the times of `path` (`utimensat(2)` semantics, `UTIME_NOW` and
    /// `UTIME_OMIT` included; `times[0]` is the access time).
    pub utimensat: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            path: *const QrsP9Path,
            times: *const timespec,
        ) -> c_int,
    >,
    /// `truncate(2)` of `path` to `size` bytes.
    pub truncate: Option<
        unsafe extern "C" fn(opaque: *mut c_void, path: *const QrsP9Path, size: i64) -> c_int,
    >,
    /// Make a device node, FIFO or socket `name` in `dir`, with type and
    /// permissions `cred->mode`, device `cred->rdev`, owner `cred->uid`,
    /// `cred->gid`.
    pub mknod: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            dir: *const QrsP9Path,
            name: *const c_char,
            cred: *const QrsP9Cred,
        ) -> c_int,
    >,
    /// Make directory `name` in `dir` with `cred`'s mode and owner.
    pub mkdir: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            dir: *const QrsP9Path,
            name: *const c_char,
            cred: *const QrsP9Cred,
        ) -> c_int,
    >,
    /// Make symbolic link `name` in `dir` pointing to `target`, owned by
    /// `cred`'s uid and gid.
    pub symlink: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            target: *const c_char,
            dir: *const QrsP9Path,
            name: *const c_char,
            cred: *const QrsP9Cred,
        ) -> c_int,
    >,
    /// Make hard link `name` in `dir` to the file at `target`.
    pub link: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            target: *const QrsP9Path,
            dir: *const QrsP9Path,
            name: *const c_char,
        ) -> c_int,
    >,
    /// Rename `oldname` in `olddir` to `newname` in `newdir`.
    pub renameat: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            olddir: *const QrsP9Path,
            oldname: *const c_char,
            newdir: *const QrsP9Path,
            newname: *const c_char,
        ) -> c_int,
    >,
    /// Remove `name` from `dir`; `flags` is 0 or `AT_REMOVEDIR`.
    pub unlinkat: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            dir: *const QrsP9Path,
            name: *const c_char,
            flags: c_int,
        ) -> c_int,
    >,
    /// Optional: remove the file or empty directory at `path` (Tremove;
    /// QEMU's `remove`).  When NULL, Tremove is `unlinkat` of the parent
    /// and name (`QRS_P9_BACKEND_PATHNAMES`), else `EOPNOTSUPP`.
    pub remove: Option<unsafe extern "C" fn(opaque: *mut c_void, path: *const QrsP9Path) -> c_int>,
    /// Open the file at `path` with Linux open flags `flags` (never
    /// `O_CREAT`); store the open state in `*handle`.  Must refuse to open
    /// a device, FIFO or socket on the host (`-ENXIO`; QEMU's
    /// `close_if_special_file`): the engine checks with `lstat` first, but
    /// the file can change in between.  When the engine reopens a handle
    /// that reclaim closed, `-EINTR` from `open` or `opendir` is retried
    /// until it is something else or the request is cancelled.
    pub open: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            path: *const QrsP9Path,
            flags: c_int,
            handle: *mut *mut c_void,
        ) -> c_int,
    >,
    /// Open the directory at `path` for `readdir`; store the open state in
    /// `*handle`.
    pub opendir: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            path: *const QrsP9Path,
            handle: *mut *mut c_void,
        ) -> c_int,
    >,
    /// Create and open regular file `name` in `dir` with Linux open flags
    /// `flags` (including `O_CREAT`) and `cred`'s mode and owner; store the
    /// open state in `*handle`.
    pub open2: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            dir: *const QrsP9Path,
            name: *const c_char,
            flags: c_int,
            cred: *const QrsP9Cred,
            handle: *mut *mut c_void,
        ) -> c_int,
    >,
    /// Close a file opened by `open` or `open2`, freeing `handle`.
    pub close: Option<unsafe extern "C" fn(opaque: *mut c_void, handle: *mut c_void) -> c_int>,
    /// Close a directory opened by `opendir`, freeing `handle`.
    pub closedir: Option<unsafe extern "C" fn(opaque: *mut c_void, handle: *mut c_void) -> c_int>,
    /// `preadv(2)` at `offset`; returns the bytes read (short only at end
    /// of file).  `-EINTR` is retried (9p.c) until it is something else or
    /// the request is cancelled by Tflush.
    pub preadv: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            handle: *mut c_void,
            iov: *const iovec,
            iovcnt: c_int,
            offset: i64,
        ) -> isize,
    >,
    /// `pwritev(2)` at `offset`; returns the bytes written.  `-EINTR` is
    /// retried (9p.c) until it is something else or the request is
    /// cancelled by Tflush (QEMU's synth/flush qtest relies on this).
    pub pwritev: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            handle: *mut c_void,
            iov: *const iovec,
            iovcnt: c_int,
            offset: i64,
        ) -> isize,
    >,
    /// `fsync(2)` (`fdatasync` when `datasync` is non-zero) of a file, or
    /// of a directory when `is_dir` is non-zero.
    pub fsync: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            handle: *mut c_void,
            is_dir: c_int,
            datasync: c_int,
        ) -> c_int,
    >,
    /// Read the directory `handle` from position `offset` (0: rewind; else
    /// a `d_off` it reported before: seek there), calling `emit(ctx,
    /// entry)` for each entry, `.` and `..` included, until `emit` returns
    /// non-zero or the directory ends.  Each entry's `d_off` is the
    /// position just after it.  One call per Treaddir (QEMU:
    /// `seekdir`/`rewinddir`, then `readdir` in a loop).  `emit` may call
    /// `name_to_path` and `lstat` on the same thread (when entry attributes
    /// are needed, as with `multidevs=remap`): hold no lock they take.
    pub readdir: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            handle: *mut c_void,
            offset: i64,
            emit: QrsP9DirentFn,
            ctx: *mut c_void,
        ) -> c_int,
    >,
    /// Optional: `lgetxattr(2)`: the value of `name` into `value` (at most
    /// `size` bytes; `size` 0 asks for the length); returns the length.
    /// NULL: `EOPNOTSUPP`.
    pub lgetxattr: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            path: *const QrsP9Path,
            name: *const c_char,
            value: *mut c_void,
            size: usize,
        ) -> isize,
    >,
    /// Optional: `llistxattr(2)`: NUL-separated names into `list` (`size`
    /// 0 asks for the length); returns the length.  NULL: `EOPNOTSUPP`.
    pub llistxattr: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            path: *const QrsP9Path,
            list: *mut c_void,
            size: usize,
        ) -> isize,
    >,
    /// Optional: `lsetxattr(2)` with `XATTR_CREATE`/`XATTR_REPLACE`
    /// `flags`.  NULL: `EOPNOTSUPP`.
    pub lsetxattr: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            path: *const QrsP9Path,
            name: *const c_char,
            value: *const c_void,
            size: usize,
            flags: c_int,
        ) -> c_int,
    >,
    /// Optional: `lremovexattr(2)`.  NULL: `EOPNOTSUPP`.
    pub lremovexattr: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            path: *const QrsP9Path,
            name: *const c_char,
        ) -> c_int,
    >,
    /// Optional: take or release a byte-range lock without waiting:
    /// return 0 when done, 1 when it conflicts with another lock (the guest
    /// retries), or a negative errno.  NULL grants everything after the
    /// `fstat` check, as 9p.c does.
    pub lock: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            handle: *mut c_void,
            lock: *const QrsP9Lock,
        ) -> c_int,
    >,
    /// Optional: test `*lock` for a conflict: overwrite it with the
    /// conflicting lock, or set its `type_` to `UNLCK` (2) if there is none.
    /// NULL reports none after the `fstat` check, as 9p.c does.
    pub getlock: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            handle: *mut c_void,
            lock: *mut QrsP9Lock,
        ) -> c_int,
    >,
    /// Optional: `fstat(2)` of the open file or directory `handle`
    /// (`is_dir` non-zero for one from `opendir`) into `*st` (QEMU's
    /// `fstat`), so that Tgetattr of an open fid works for an
    /// open-but-unlinked file.  Return 0; or `-EBADF` when the handle has
    /// no usable descriptor (QEMU: `has_valid_file_handle` is false): then
    /// Tgetattr uses `lstat` of the fid's path, and Tlock and Tgetlock
    /// fail with `EBADF`; or `-EOPNOTSUPP` when attributes cannot be read
    /// through the handle (9p-local's mapped-file model), leaving in `*st`
    /// what could be read: then Tgetattr uses `lstat` of the path, and
    /// `*st` as it is if that `lstat` fails with `ENOENT` (the file was
    /// unlinked), and Tlock and Tgetlock go on; or another negative errno,
    /// which fails the request.  Called for Tgetattr of a fid with an open
    /// handle (never reopened for this), and, when `lock` or `getlock` is
    /// NULL, as the check 9p.c makes before granting a lock or reporting
    /// none.  NULL: Tgetattr uses `lstat`; Tlock and Tgetlock behave as if
    /// it succeeded.
    pub fstat: Option<
        unsafe extern "C" fn(
            opaque: *mut c_void,
            handle: *mut c_void,
            is_dir: c_int,
            st: *mut stat,
        ) -> c_int,
    >,
}
