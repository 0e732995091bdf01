// SPDX-License-Identifier: GPL-2.0-or-later
//! `QrsP9Config`: how a server behaves, its defaults, and its checked
//! translation into the engine's `Config` and thread-mode `Limits`.

use p9_engine::host::Limits;
use p9_engine::qid::MultiDevs;
use p9_engine::{Config, Versions};

use crate::ffi_guard;

/// `QrsP9Config.versions`: 9P2000.L.
pub const QRS_P9_VERSION_DOTL: u32 = 1;
/// `QrsP9Config.versions`: 9P2000.u.
pub const QRS_P9_VERSION_DOTU: u32 = 2;

/// `QrsP9Config.multidevs`: use inode numbers as they are, warn once about
/// files on other devices (QEMU's `multidevs=warn`; QEMU 10 defaults
/// to remap).
pub const QRS_P9_MULTIDEVS_WARN: u32 = 0;
/// `QrsP9Config.multidevs`: remap (device, inode) to distinct qid paths
/// (`multidevs=remap`).
pub const QRS_P9_MULTIDEVS_REMAP: u32 = 1;
/// `QrsP9Config.multidevs`: refuse files on other devices with `ENODEV`
/// (`multidevs=forbid`).
pub const QRS_P9_MULTIDEVS_FORBID: u32 = 2;

/// How a server behaves.  Fill it with `qrs_p9_config_init`, then change
/// what differs.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QrsP9Config {
    /// The largest msize the transport carries (QEMU: its `msize_limit`);
    /// Tversion caps the client's msize to it.  At least 4096.
    pub msize_max: u32,
    /// `QRS_P9_VERSION_*` bits: the dialects Tversion may negotiate.
    pub versions: u32,
    /// A `QRS_P9_MULTIDEVS_*` value.
    pub multidevs: u32,
    /// Bound on live xattr fids (`max_xattr=`); 0: unbounded.
    pub max_xattr: u32,
    /// Bound on live fids; beyond it new fids get `ENFILE`.
    pub fids_max: u32,
    /// Open files above which idle ones are closed and later reopened;
    /// 0: from `RLIMIT_NOFILE`, as 9p.c does.
    pub open_high_water: u32,
    /// 0: coroutine mode (`qrs_p9_receive`, `qrs_p9_handle`); else thread
    /// mode with a pool of this many request threads of the server's own
    /// (`qrs_p9_submit`).  Ignored by `qrs_p9_server_new_on_pool` (thread
    /// mode on that pool's threads).
    pub threads: u32,
    /// Non-zero: refuse every change with `EROFS` (`readonly=on`).
    pub readonly: u8,
    /// Thread mode: bound on the requests in flight (submitted with
    /// `qrs_p9_submit` and not yet completed); beyond it `qrs_p9_submit`
    /// returns `-EAGAIN`.  0: no bound.  Default 256
    /// (`QRS_P9_MAX_REQUESTS_DEFAULT`).  Ignored in coroutine mode (the
    /// host's queue bounds it: QEMU's virtqueue).
    pub max_requests: u32,
    /// Thread mode: bound on the bytes the requests in flight cost: each
    /// costs its length plus, for Tread and Treaddir, the count it asks
    /// (capped to msize), which its reply may take.  Beyond it
    /// `qrs_p9_submit` returns `-EAGAIN`, except that a request is always
    /// taken when none is in flight (so one bigger than the bound still
    /// runs, alone).  0: no bound.  Default 8 MiB
    /// (`QRS_P9_MAX_BYTES_DEFAULT`).  Ignored in coroutine mode.
    pub max_bytes: u64,
}

/// The default of `QrsP9Config.max_requests`.
pub const QRS_P9_MAX_REQUESTS_DEFAULT: u32 = 256;
/// The default of `QrsP9Config.max_bytes` (8 MiB).
pub const QRS_P9_MAX_BYTES_DEFAULT: u64 = 8 << 20;

/// Fill `*config` with the defaults: msize up to QEMU's virtio limit
/// (`(1024 - 2) * 4096`), both dialects, `multidevs=warn`, 1024 xattr fids,
/// the engine's fid bound, reclaim from `RLIMIT_NOFILE`, coroutine mode,
/// writable, and (thread mode) at most 256 requests and 8 MiB in flight.
/// NULL is ignored.  Thread-safe.
///
/// # Safety
/// `config` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn qrs_p9_config_init(config: *mut QrsP9Config) {
    ffi_guard((), || {
        if config.is_null() {
            return;
        }
        let d = Config::default();
        let c = QrsP9Config {
            msize_max: d.msize_max,
            versions: QRS_P9_VERSION_DOTL | QRS_P9_VERSION_DOTU,
            multidevs: QRS_P9_MULTIDEVS_WARN,
            max_xattr: d.max_xattr,
            fids_max: u32::try_from(d.fids_max).unwrap_or(u32::MAX),
            open_high_water: 0,
            threads: 0,
            readonly: 0,
            max_requests: QRS_P9_MAX_REQUESTS_DEFAULT,
            max_bytes: QRS_P9_MAX_BYTES_DEFAULT,
        };
        // SAFETY: non-NULL and writable, per the contract.
        unsafe { config.write(c) };
    })
}

/// The thread-mode bounds of `c` (0: none).
pub(super) fn limits(c: &QrsP9Config) -> Limits {
    Limits {
        max_requests: match c.max_requests {
            0 => usize::MAX,
            n => n as usize,
        },
        max_bytes: match c.max_bytes {
            0 => usize::MAX,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        },
    }
}

pub(super) fn engine_config(c: &QrsP9Config) -> Option<Config> {
    let multidevs = match c.multidevs {
        QRS_P9_MULTIDEVS_WARN => MultiDevs::Warn,
        QRS_P9_MULTIDEVS_REMAP => MultiDevs::Remap,
        QRS_P9_MULTIDEVS_FORBID => MultiDevs::Forbid,
        _ => return None,
    };
    let all = QRS_P9_VERSION_DOTL | QRS_P9_VERSION_DOTU;
    if c.versions == 0
        || c.versions & !all != 0
        || c.msize_max < p9_wire::consts::P9_MIN_MSIZE
        || c.fids_max == 0
    {
        return None;
    }
    Some(Config {
        msize_max: c.msize_max,
        multidevs,
        readonly: c.readonly != 0,
        max_xattr: c.max_xattr,
        fids_max: c.fids_max as usize,
        open_high_water: (c.open_high_water != 0).then_some(c.open_high_water as usize),
        versions: Versions {
            dotl: c.versions & QRS_P9_VERSION_DOTL != 0,
            dotu: c.versions & QRS_P9_VERSION_DOTU != 0,
        },
    })
}
