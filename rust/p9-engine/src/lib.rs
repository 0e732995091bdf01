// SPDX-License-Identifier: GPL-2.0-or-later
//! The 9P server engine: the protocol side of QEMU's `hw/9pfs/9p.c`.
//!
//! A host hands the engine one request at a time as scatter/gather buffers;
//! the engine decodes it (`p9-wire`), resolves fids in its [`fid::FidTable`],
//! calls a backend, maps inodes to qids ([`qid::QidMap`]) and encodes the
//! reply.  Blocking backend calls go through `offload::run_in_worker`, so the
//! same code runs in coroutine mode (QEMU: the request's coroutine suspends
//! while a worker makes the call) and in thread mode (the call is inline on
//! the request's pool thread).
//!
//! Layers, each using only those below it: the [`server`] (request
//! lifecycle: tags, Tflush, Tversion, reply buffers, stats) dispatches to
//! the operations (`ops`, one function per message, by family), which work
//! on the file-system state (`fs`: backend, config, fids, qids) through a
//! per-request context.
#![warn(missing_docs)]

pub mod backend;
pub mod config;
pub mod convert;
pub mod fid;
mod fs;
pub mod hash;
pub mod host;
mod ops;
pub mod qid;
mod request;
pub mod server;
mod state;

pub use server::{Config, Handled, ReplyBuffers, Server, SessionHook, Stats, Ticket, Versions};
