// SPDX-License-Identifier: GPL-2.0-or-later
//! A 9P2000.L / 9P2000.u client on the `p9-wire` codec, for tests and
//! benchmarks of the engine.
//!
//! A [`Client`] sends requests through a [`Transport`] (implemented for the
//! engine's thread-mode host, [`p9_engine::host::ThreadHost`]) and decodes
//! the replies with the session's protocol and msize.  It allocates tags
//! (never `NOTAG`, unique among the requests in flight) and fid numbers.
//!
//! # Errors and test failures
//!
//! Every request method returns `Result<_, Errno>`: an `Rlerror` or
//! `Rerror` from the server becomes `Err(errno)`.  A reply that is missing
//! (the server sent none), undecodable, tagged for another request, of a
//! type that does not answer the request, or an `Rerror` in a 9P2000.L
//! session (or `Rlerror` in 9P2000.u) is a server bug: the client
//! **panics** with a message naming the request and the reply bytes, so a
//! test fails at the point of the bug.  [`Client::try_call`] reports those
//! cases as a [`CallError`] instead, for tests that expect them.
//!
//! # Example
//!
//! ```no_run
//! # fn demo<T: p9_client::Transport>(transport: T) -> Result<(), p9_wire::Errno> {
//! use p9_client::Client;
//! use p9_wire::consts::{dotl_open, NOFID};
//!
//! let client = Client::new(transport);
//! client.version(65536, "9P2000.L")?;
//! let root = client.alloc_fid();
//! client.attach(root, NOFID, "root", "", 0)?;
//! let (file, _qids) = client.walk_new(root, &["etc", "hostname"])?;
//! client.lopen(file, dotl_open::RDONLY)?;
//! let data = client.read(file, 0, 4096)?;
//! client.clunk(file)?;
//! # let _ = data; Ok(()) }
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod client;
mod pending;
mod reply;
mod stream;
mod tags;
mod transport;

pub use client::Client;
pub use pending::Pending;
pub use reply::{CallError, Reply, Response};
pub use stream::StreamTransport;
pub use transport::Transport;

pub use p9_wire::{Errno, Proto};
