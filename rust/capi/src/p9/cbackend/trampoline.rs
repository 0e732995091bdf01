// SPDX-License-Identifier: GPL-2.0-or-later
//! The `emit` callback the vtable's `readdir` calls for each entry: it
//! reads the C `struct dirent` and hands it, as a [`Dirent`], to the Rust
//! closure `Vtable::readdir` was given.  A panic in the closure is caught
//! here (it must not unwind into C) and resumed by `Vtable::readdir` once
//! C has returned.

use std::any::Any;
use std::ffi::{c_int, c_void};
use std::mem::{offset_of, size_of};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::addr_of;

use libc::dirent;

/// One directory entry as C reported it.
pub(crate) struct Dirent<'a> {
    /// `d_ino`.
    pub(crate) ino: u64,
    /// `d_off`: the position just after the entry.
    pub(crate) off: u64,
    /// `d_type`.
    pub(crate) d_type: u8,
    /// `d_name`, without its NUL.
    pub(crate) name: &'a [u8],
}

/// What a readdir call's trampoline works with: the closure taking each
/// entry (`None` for a NULL entry, which breaks the contract), and the
/// panic it raised, if any.
pub(super) struct EmitCtx<'a> {
    each: &'a mut dyn FnMut(Option<&Dirent<'_>>) -> bool,
    pub(super) panic: Option<Box<dyn Any + Send>>,
}

impl<'a> EmitCtx<'a> {
    pub(super) fn new(each: &'a mut dyn FnMut(Option<&Dirent<'_>>) -> bool) -> Self {
        EmitCtx { each, panic: None }
    }
}

/// The `emit` given to the vtable's `readdir`: 0 to go on, 1 to stop.
///
/// # Safety
/// `ctx` is the live `EmitCtx` that `Vtable::readdir` passed, used by no
/// one else during the call; `entry` is NULL or a readable `struct
/// dirent` with a NUL-terminated name (`QrsP9BackendOps.readdir`'s
/// contract).
#[allow(clippy::unnecessary_cast)] // d_ino's type varies by platform
pub(super) unsafe extern "C" fn emit_dirent(ctx: *mut c_void, entry: *const dirent) -> c_int {
    // SAFETY: `readdir` passes its own live, exclusively borrowed
    // EmitCtx, and C calls `emit` on the thread of that call, during it.
    let ctx = unsafe { &mut *ctx.cast::<EmitCtx<'_>>() };
    if ctx.panic.is_some() {
        return 1;
    }
    let entry = if entry.is_null() {
        None
    } else {
        // SAFETY: a readable dirent, per the contract; fields are read
        // through raw pointers because glibc's records may be shorter
        // than the struct.
        let (ino, off, d_type, name) = unsafe {
            let base = addr_of!((*entry).d_name).cast::<u8>();
            // d_name's size (and the struct's tail padding): a name
            // without a NUL in there is malformed anyway.
            let max = size_of::<dirent>() - offset_of!(dirent, d_name);
            let mut len = 0;
            while len < max && *base.add(len) != 0 {
                len += 1;
            }
            (
                addr_of!((*entry).d_ino).read_unaligned(),
                addr_of!((*entry).d_off).read_unaligned(),
                addr_of!((*entry).d_type).read_unaligned(),
                std::slice::from_raw_parts(base, len),
            )
        };
        Some(Dirent {
            ino: ino as u64,
            off: off as u64,
            d_type,
            name,
        })
    };
    match catch_unwind(AssertUnwindSafe(|| (ctx.each)(entry.as_ref()))) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(p) => {
            ctx.panic = Some(p);
            1
        }
    }
}
