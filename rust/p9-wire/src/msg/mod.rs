// SPDX-License-Identifier: GPL-2.0-or-later
//! The T (request) and R (reply) message enums and their codecs.
//!
//! Each direction is one table (in the private modules `tmessage` and
//! `rmessage`, expanded by the `message_table!` generator of `table`): a
//! message is declared once, with its type number, name, dialects and
//! fields, and its enum variant, type constant, name, dialect check,
//! decoder and encoder all come from that declaration.  For example:
//!
//! ```text
//! /// Tgetattr (.L): `fid[4] request_mask[8]`.
//! TGETATTR = 24, "Tgetattr", DOTL => Getattr {
//!     /// The file.
//!     fid: u32,
//!     /// [`crate::consts::getattr`] bits.
//!     request_mask: u64,
//! },
//! ```
//!
//! # Framing
//!
//! A message is `size[4] type[1] tag[2] body`, little endian, where `size`
//! counts the whole message.  The decoder checks, in this order:
//!
//! 1. at least 7 bytes are present (else no tag can be reported);
//! 2. `size >= 7`;
//! 3. `size <= msize`;
//! 4. `size` equals the bytes present ([`Framing::Exact`], what
//!    [`Tmessage::decode`](crate::Tmessage::decode) uses: the transport hands over exactly one
//!    message, as virtio and Xen do; a size that lies in either direction
//!    is an error), or at most the bytes present ([`Framing::Prefix`]:
//!    bytes after `size` are ignored);
//! 5. the type is known, and exists in the negotiated protocol;
//! 6. the body decodes, using exactly `size - 7` bytes.
//!
//! Errors carry the errno to reply with and, from step 2 on, the tag; see
//! [`crate::error`] for the errno of each failure.

mod frame;
mod rmessage;
mod table;
mod tmessage;

pub use frame::{max_read_count, Framing, Header};
pub(crate) use rmessage::r_types;
pub use rmessage::{encode_error, encode_rwalk, rwalk_size, Rmessage};
pub(crate) use tmessage::t_types;
pub use tmessage::Tmessage;
