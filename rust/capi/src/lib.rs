// SPDX-License-Identifier: GPL-2.0-or-later
//! The C ABI of the qemurs library.
//!
//! This is the only crate built as a staticlib: a C program links exactly one
//! Rust staticlib (two would each carry a copy of `std`), so everything C
//! needs is exported from here.  Conventions, for every export:
//! - errors are negative errno values; 0 is success;
//! - no panic crosses the boundary: every export runs inside the crate-private
//!   `ffi_guard`;
//! - out-parameters are written only on success;
//! - pointer contracts are in the doc comment, which cbindgen copies into
//!   `include/qemurs.h`.
#![warn(missing_docs)]

mod errno;
mod offload;
mod p9;
mod storage;

pub use offload::*;
pub use p9::*;
pub use storage::*;

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Run `f`, turning a panic into `on_panic` so that it never unwinds into C.
pub(crate) fn ffi_guard<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

/// The value an export returns when a Rust panic was caught (an internal bug).
pub(crate) const PANIC_ERRNO: i32 = -libc::ENOTRECOVERABLE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffi_guard_turns_a_panic_into_the_error_value() {
        assert_eq!(ffi_guard(PANIC_ERRNO, || 5), 5);
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {})); // keep the test output clean
        let r = ffi_guard(PANIC_ERRNO, || panic!("bug"));
        std::panic::set_hook(prev);
        assert_eq!(r, -libc::ENOTRECOVERABLE);
    }
}
