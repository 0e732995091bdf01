// SPDX-License-Identifier: GPL-2.0-or-later
//! `QrsP9Backend`: the filesystem a server serves, native or a C vtable.

use std::ffi::{c_char, c_void, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use p9_native::{HostModes, NativeBackend, SecurityModel};

use super::cbackend::{CBackend, CVtable};
use super::vtable::QrsP9BackendOps;
use crate::errno::to_neg_errno;
use crate::{ffi_guard, PANIC_ERRNO};

/// A backend, before a server takes it (opaque).
pub struct QrsP9Backend {
    pub(crate) kind: BackendKind,
}

pub(crate) enum BackendKind {
    Native(NativeBackend),
    C(Box<CBackend>),
}

/// `qrs_p9_backend_native_new`'s `model`: files get the owner and mode the
/// guest asks for; failing to set them fails the request (QEMU's
/// `security_model=passthrough`).
pub const QRS_P9_SECURITY_PASSTHROUGH: u32 = 0;
/// `qrs_p9_backend_native_new`'s `model`: like passthrough, but failing to
/// set owner or mode is ignored (`security_model=none`).
pub const QRS_P9_SECURITY_NONE: u32 = 1;
/// `qrs_p9_backend_native_new`'s `model`: QEMU's
/// `security_model=mapped-xattr` (alias `mapped`), with its on-disk format:
/// files belong to the server on the host (created mode 0600, directories
/// 0700), the guest's owner, mode and device number live in the extended
/// attributes `user.virtfs.uid`/`gid`/`mode`/`rdev` (little-endian), device
/// nodes, FIFOs, sockets and symbolic links are regular host files; the
/// guest cannot see or change `user.virtfs.*` and its POSIX ACLs are kept
/// in `user.virtfs.system.posix_acl_*`.  The export's file system needs
/// `user.` extended attributes (`-ENOTSUP` from the creating request
/// otherwise).
pub const QRS_P9_SECURITY_MAPPED_XATTR: u32 = 2;
/// `qrs_p9_backend_native_new`'s `model`: QEMU's
/// `security_model=mapped-file`, with its on-disk format: as
/// `QRS_P9_SECURITY_MAPPED_XATTR`, but the credentials are kept in
/// `.virtfs_metadata/<name>` text files (`virtfs.uid=%d` lines) beside each
/// entry, `.virtfs_metadata_root` for the export root; the guest can
/// neither see those names nor use them (`-EINVAL`).
pub const QRS_P9_SECURITY_MAPPED_FILE: u32 = 3;

fn into_handle(kind: BackendKind, out: *mut *mut QrsP9Backend) -> i32 {
    let b = Box::into_raw(Box::new(QrsP9Backend { kind }));
    // SAFETY: the caller checked `out` is non-NULL and writable.
    unsafe { *out = b };
    0
}

/// Make a native passthrough backend serving the host directory `root`
/// (a NUL-terminated path) with security model `model`
/// (`QRS_P9_SECURITY_*`): fids are places beneath `root` (names are looked
/// up from `root`, `..` is the recorded parent, so nothing outside `root`
/// is reached even when the host moves directories out of it), special
/// files are never opened.  Each fid caches an `O_PATH` descriptor; the
/// native backends of a process together hold at most `RLIMIT_NOFILE -
/// min(400, RLIMIT_NOFILE / 3)` descriptors (open files included): beyond
/// that, idle fids give theirs back and are found again when used
/// (`-ENOENT` if their file is gone, `-ESTALE` if another file took its
/// place), and new open files of a session holding its share get
/// `-EMFILE`.  A session over this backend holds at most 65536 fids (a
/// smaller `QrsP9Config.fids_max` wins; `-ENFILE` beyond).  The mapped
/// models create host files 0600 and directories 0700
/// (`qrs_p9_backend_native_new_opts` chooses).  On success `*out` is a new
/// backend owned by the caller (pass it to `qrs_p9_server_new` or
/// `qrs_p9_backend_free`).
///
/// Returns 0, `-EINVAL` if `root` or `out` is NULL or `model` is unknown,
/// or the negative errno of opening `root` (e.g. `-ENOENT`, `-ENOTDIR`).
/// Thread-safe.
///
/// # Safety
/// `root` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_backend_native_new(
    root: *const c_char,
    model: u32,
    out: *mut *mut QrsP9Backend,
) -> i32 {
    let opts = QrsP9NativeOpts {
        model,
        fmode: QRS_P9_NATIVE_FMODE_DEFAULT,
        dmode: QRS_P9_NATIVE_DMODE_DEFAULT,
    };
    // SAFETY: the same contract for `root` and `out`; `opts` is live.
    unsafe { qrs_p9_backend_native_new_opts(root, &opts, out) }
}

/// `QrsP9NativeOpts.fmode` of `qrs_p9_backend_native_new`: 0600 (QEMU's
/// default `fmode`).
pub const QRS_P9_NATIVE_FMODE_DEFAULT: u32 = 0o600;
/// `QrsP9NativeOpts.dmode` of `qrs_p9_backend_native_new`: 0700 (QEMU's
/// default `dmode`).
pub const QRS_P9_NATIVE_DMODE_DEFAULT: u32 = 0o700;

/// How `qrs_p9_backend_native_new_opts` serves its export.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct QrsP9NativeOpts {
    /// The security model, `QRS_P9_SECURITY_*`.
    pub model: u32,
    /// Permission bits (0 to 0777) of the host files the mapped models
    /// create, and of what stands there for device nodes, FIFOs, sockets
    /// and symbolic links (QEMU's `fmode`; the process's umask applies, as
    /// in 9p-local); the other models ignore it.
    pub fmode: u32,
    /// Permission bits (0 to 0777) of the host directories the mapped
    /// models create (QEMU's `dmode`, the umask applies); the other models
    /// ignore it.
    pub dmode: u32,
}

/// `qrs_p9_backend_native_new` with the options `*opts` (copied): the
/// security model and, for the mapped models, the host modes of what they
/// create (QEMU's `fmode` and `dmode`).
///
/// Returns 0, `-EINVAL` if `root`, `opts` or `out` is NULL, the model is
/// unknown or `fmode` or `dmode` has bits beyond 0777, or the negative
/// errno of opening `root`.  Thread-safe.
///
/// # Safety
/// `root` is NULL or a NUL-terminated string; `opts` is NULL or a readable
/// `QrsP9NativeOpts`; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_backend_native_new_opts(
    root: *const c_char,
    opts: *const QrsP9NativeOpts,
    out: *mut *mut QrsP9Backend,
) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        // SAFETY: NULL or readable, per the contract.
        let Some(opts) = (unsafe { opts.as_ref() }).copied() else {
            return -libc::EINVAL;
        };
        if root.is_null() || out.is_null() || (opts.fmode | opts.dmode) & !0o777 != 0 {
            return -libc::EINVAL;
        }
        let model = match opts.model {
            QRS_P9_SECURITY_PASSTHROUGH => SecurityModel::Passthrough,
            QRS_P9_SECURITY_NONE => SecurityModel::None,
            QRS_P9_SECURITY_MAPPED_XATTR => SecurityModel::MappedXattr,
            QRS_P9_SECURITY_MAPPED_FILE => SecurityModel::MappedFile,
            _ => return -libc::EINVAL,
        };
        let modes = HostModes {
            file: opts.fmode,
            dir: opts.dmode,
        };
        // SAFETY: non-NULL and NUL-terminated, per the contract.
        let root = unsafe { CStr::from_ptr(root) };
        let root = Path::new(OsStr::from_bytes(root.to_bytes()));
        match NativeBackend::new(root, model) {
            Ok(b) => into_handle(BackendKind::Native(b.with_host_modes(modes)), out),
            Err(e) => to_neg_errno(e),
        }
    })
}

/// Make a backend that calls the C functions of `ops` (copied) with
/// `opaque` as their first argument; see `QrsP9BackendOps` for what each
/// must do.  On success `*out` is a new backend owned by the caller.
///
/// Returns 0, or `-EINVAL` if `ops` or `out` is NULL or a required
/// function of `ops` is NULL.  Thread-safe.
///
/// # Safety
/// `ops` is NULL or a readable `QrsP9BackendOps` whose functions behave as
/// documented there and may be called from any thread, concurrently;
/// `opaque` stays valid until the server using the backend is freed;
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_backend_c_new(
    ops: *const QrsP9BackendOps,
    opaque: *mut c_void,
    out: *mut *mut QrsP9Backend,
) -> i32 {
    ffi_guard(PANIC_ERRNO, || {
        if out.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: NULL or readable, per the contract.
        let Some(ops) = (unsafe { ops.as_ref() }) else {
            return -libc::EINVAL;
        };
        // SAFETY: the functions and `opaque` behave as the contract says.
        match unsafe { CVtable::new(ops, opaque) } {
            Ok(vtable) => into_handle(BackendKind::C(Box::new(CBackend::new(vtable))), out),
            Err(e) => to_neg_errno(e),
        }
    })
}

/// Free a backend that no server took.  NULL is ignored.
///
/// # Safety
/// `backend` is NULL or was returned by a `qrs_p9_backend_*_new` function
/// and not passed to `qrs_p9_server_new` or freed since.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_backend_free(backend: *mut QrsP9Backend) {
    ffi_guard((), || {
        if !backend.is_null() {
            // SAFETY: ours and live, per the contract.
            drop(unsafe { Box::from_raw(backend) });
        }
    })
}
