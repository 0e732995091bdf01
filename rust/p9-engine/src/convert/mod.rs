// SPDX-License-Identifier: GPL-2.0-or-later
//! Pure conversions between host file attributes and the 9P2000.u / .L wire
//! forms, as `hw/9pfs/9p.c` (QEMU 10.0) does them.
//!
//! | here | 9p.c |
//! |---|---|
//! | [`dotl_open_flags`] | `get_dotl_openflags(dotl_to_open_flags())` |
//! | [`omode_flags`] | `omode_to_uflags` |
//! | [`open_flags_write`] | the read-only export check of `v9fs_open` |
//! | [`setattr_from_wire`], [`setattr_ctime_only`] | `v9fs_setattr` |
//! | [`stat_to_v9mode`] / [`v9mode_to_mode`] | same names |
//! | [`stat_of`], [`stat_extension`], [`stat_extension_device`] | `stat_to_v9stat` |
//! | [`getattr_of`], [`blksize_to_iounit`], [`dotl_blksize`] | `stat_to_v9stat_dotl`, `v9fs_getattr` |
//! | [`create_kind`], [`create_mode`] | the dispatch of `v9fs_create` |
//! | [`wstat_changes`] | `v9fs_wstat` |
//!
//! Host numbers (`O_*`, `S_IF*`, `makedev`) are Linux/glibc ones, defined
//! once in [`linux`] for the whole engine; the 9P ones (`DM*`, `OREAD`,
//! `P9_DOTL_*`) are `p9_wire::consts`.

mod attr;
mod create;
pub mod linux;
mod open;
mod stat;

pub use attr::{
    blksize_to_iounit, dotl_blksize, getattr_of, setattr_ctime_only, setattr_from_wire,
};
pub use create::{create_kind, create_mode, CreateKind};
pub use linux::*;
pub use open::{dotl_open_flags, omode_flags, open_flags_write};
pub use stat::{
    stat_extension, stat_extension_device, stat_of, stat_to_v9mode, v9mode_to_mode, wstat_changes,
    WstatChanges,
};
