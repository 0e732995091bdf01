// SPDX-License-Identifier: GPL-2.0-or-later
//! The 9P server: `qrs_p9_*`.
//!
//! A server is one 9P session over one transport (QEMU: one virtio-9p or
//! Xen 9pfs device), made from a config, a backend (`QrsP9Backend`: the
//! native passthrough one, or a C vtable such as QEMU's `FileOperations`
//! adapter) and a transport (`QrsP9Transport`: where replies go).
//!
//! Requests arrive as the host's scatter/gather buffers and run in one of
//! two host modes:
//! - coroutine mode (`threads == 0`): the host calls `qrs_p9_receive` when
//!   a request arrives, then `qrs_p9_handle` in a coroutine it creates for
//!   the request on its home thread; blocking backend calls go to the
//!   offload pool (`qrs_co_run_in_worker`'s), waits suspend the coroutine
//!   through the hooks of `qrs_offload_set_host`;
//! - thread mode (`threads > 0`): the host calls `qrs_p9_submit` and the
//!   server's own threads run the request; no coroutines are needed.
//!
//! Either way the transport's `reply_buffers` is asked for the reply's
//! buffers once its size is known, and `complete` is called exactly once
//! per request.

mod backend;
mod cbackend;
mod config;
mod server;
mod transport;
mod vtable;

pub use backend::*;
pub use config::*;
pub use server::*;
pub use transport::QrsP9Transport;
pub use vtable::*;
