// SPDX-License-Identifier: GPL-2.0-or-later
//! Hooks for tests (cargo feature `test-hooks`): they force the fallback
//! code paths that the running kernel and privileges would otherwise not
//! take.  Each setting affects only the calling thread, so tests running
//! in parallel do not disturb each other.  Without the feature this module
//! does not exist and nothing can force a fallback.

use std::cell::Cell;

thread_local! {
    static FORCE_OPENAT: Cell<bool> = const { Cell::new(false) };
    static FORCE_LINK_PROC: Cell<bool> = const { Cell::new(false) };
}

/// With `true`, lookups on this thread use plain `openat` as on a
/// kernel without `openat2`.
pub fn force_openat_fallback(on: bool) {
    FORCE_OPENAT.with(|c| c.set(on));
}

/// With `true`, [`crate::link`] on this thread skips
/// `linkat(fd, "", AT_EMPTY_PATH)` and uses the `/proc/self/fd` path,
/// as without `CAP_DAC_READ_SEARCH`.
pub fn force_link_fallback(on: bool) {
    FORCE_LINK_PROC.with(|c| c.set(on));
}

/// Whether this thread's lookups must use plain `openat`.
pub(crate) fn openat_fallback_forced() -> bool {
    FORCE_OPENAT.with(Cell::get)
}

/// Whether [`crate::link`] on this thread must skip
/// `linkat(AT_EMPTY_PATH)`.
pub(crate) fn link_fallback_forced() -> bool {
    FORCE_LINK_PROC.with(Cell::get)
}
