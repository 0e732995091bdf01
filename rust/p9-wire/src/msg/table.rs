// SPDX-License-Identifier: GPL-2.0-or-later
//! The generator of a message table.
//!
//! Each direction (T in [`super::tmessage`], R in [`super::rmessage`])
//! lists every message once:
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
//! that is its type constant and number, its name, the dialects it exists
//! in, and its enum variant with the fields in wire order (a struct
//! variant, a one-record tuple variant `Statfs(st: StatFs)` whose binding
//! name is only used by the encoder, or a unit variant for an empty body).
//! Each field is coded by its type's [`Encode`](crate::wire::Encode) and
//! [`Decode`](crate::wire::Decode), or by the codec named after `=>`
//! (`stat: Stat => PrefixedStat`).
//!
//! From that, [`message_table!`] generates the enum, the type constants
//! (in the module it is given, which [`crate::msgtype`] re-exports), and
//! the per-type matches: type byte, name, dialects, decode and encode.
//! The matches are exhaustive over the variants, so a message cannot be
//! declared without its codec; a type number missing from the table is
//! an unknown type, as before.

/// Generate a message enum and its codec from its table; see the module
/// documentation.
macro_rules! message_table {
    (
        consts: $consts:ident,
        $(#[$meta:meta])*
        pub enum $E:ident<$lt:lifetime> {
            $(
                $(#[$doc:meta])*
                $CONST:ident = $num:literal, $name:literal, $dialects:ident => $V:ident
                $({ $( $(#[$fdoc:meta])* $f:ident : $ft:ty $(=> $codec:ty)? ),* $(,)? })?
                $(( $bind:ident : $tt:ty ))?,
            )*
        }
    ) => {
        $(#[$meta])*
        pub enum $E<$lt> {
            $(
                $(#[$doc])*
                $V $({ $( $(#[$fdoc])* $f: $ft, )* })? $(( $tt ))?,
            )*
        }

        /// The type numbers of the table.
        pub mod $consts {
            $(
                #[doc = concat!($name, ".")]
                pub const $CONST: u8 = $num;
            )*
        }

        impl<$lt> $E<$lt> {
            /// The message type byte.
            pub fn msg_type(&self) -> u8 {
                match self {
                    $( $E::$V { .. } => $num, )*
                }
            }

            /// The message name (`"Twalk"`), for logs.
            pub fn name(&self) -> &'static str {
                match self {
                    $( $E::$V { .. } => $name, )*
                }
            }

            /// The dialects type `typ` exists in, or `None` if the table
            /// does not list it.
            pub(crate) fn dialects_of(typ: u8) -> Option<$crate::proto::Dialects> {
                match typ {
                    $( $num => Some($crate::proto::Dialects::$dialects), )*
                    _ => None,
                }
            }

            /// The name of type `typ`, or `None` if the table does not
            /// list it.
            pub(crate) fn name_of(typ: u8) -> Option<&'static str> {
                match typ {
                    $( $num => Some($name), )*
                    _ => None,
                }
            }

            /// Check the type against `proto`, then decode the body.
            fn decode_body(
                typ: u8,
                proto: $crate::proto::Proto,
                r: &mut $crate::sg::SgReader<$lt>,
            ) -> Result<Self, $crate::error::DecodeErrorKind> {
                $crate::msg::frame::check_type(typ, Self::dialects_of(typ), proto)?;
                Ok(match typ {
                    $(
                        $num => $E::$V
                            $({ $( $f: $crate::msg::table::decode_field!(r, $ft $(=> $codec)?), )* })?
                            $(( <$tt as $crate::wire::Decode<$lt>>::decode(r)? ))?,
                    )*
                    // Refused by check_type already.
                    _ => return Err($crate::error::DecodeErrorKind::UnknownType(typ)),
                })
            }

            /// Decode a message that occupies exactly the bytes of `sg`
            /// ([`Framing::Exact`](crate::Framing::Exact)).  Returns the
            /// tag and the message.
            ///
            /// `msize` is the negotiated maximum message size (before
            /// negotiation: the largest message the transport accepts).
            pub fn decode(
                sg: &$lt [&$lt [u8]],
                proto: $crate::proto::Proto,
                msize: u32,
            ) -> Result<(u16, Self), $crate::error::DecodeError> {
                Self::decode_with(
                    $crate::sg::SgView::new(sg),
                    proto,
                    msize,
                    $crate::msg::Framing::Exact,
                )
            }

            /// [`Self::decode`] for one contiguous buffer.
            pub fn decode_slice(
                buf: &$lt [u8],
                proto: $crate::proto::Proto,
                msize: u32,
            ) -> Result<(u16, Self), $crate::error::DecodeError> {
                Self::decode_with(
                    $crate::sg::SgView::from_slice(buf),
                    proto,
                    msize,
                    $crate::msg::Framing::Exact,
                )
            }

            /// Decode with an explicit [`Framing`](crate::Framing).
            pub fn decode_with(
                sg: $crate::sg::SgView<$lt>,
                proto: $crate::proto::Proto,
                msize: u32,
                framing: $crate::msg::Framing,
            ) -> Result<(u16, Self), $crate::error::DecodeError> {
                let (h, mut r) = $crate::msg::frame::frame(sg, msize, framing)?;
                let body = Self::decode_body(h.typ, proto, &mut r)
                    .and_then(|msg| msg.check_limits(msize).map(|()| msg));
                $crate::msg::frame::finish(h, &r, body)
            }

            fn encode_body<S: $crate::sg::Sink + ?Sized>(
                &self,
                s: &mut S,
            ) -> Result<(), $crate::error::EncodeError> {
                match self {
                    $(
                        $E::$V $({ $($f),* })? $(( $bind ))? => {
                            $($( $crate::msg::table::encode_field!(s, $f, $ft $(=> $codec)?); )*)?
                            $( $crate::wire::Encode::encode($bind, s)?; )?
                            Ok(())
                        }
                    )*
                }
            }

            /// Encode into the output segments; returns the message length.
            pub fn encode(
                &self,
                tag: u16,
                out: &mut [&mut [u8]],
            ) -> Result<usize, $crate::error::EncodeError> {
                $crate::msg::frame::encode_msg(self, tag, out)
            }

            /// Encode into one contiguous buffer; returns the message
            /// length.
            pub fn encode_into(
                &self,
                tag: u16,
                buf: &mut [u8],
            ) -> Result<usize, $crate::error::EncodeError> {
                self.encode(tag, &mut [buf])
            }

            /// Encode into a new vector.
            pub fn encode_to_vec(&self, tag: u16) -> Result<Vec<u8>, $crate::error::EncodeError> {
                $crate::msg::frame::encode_vec(self, tag)
            }

            /// The encoded length, header included (`usize::MAX` if the
            /// message cannot be encoded, e.g. a string over 65535 bytes).
            /// Compare with msize before encoding.
            pub fn byte_size(&self) -> usize {
                $crate::msg::frame::size_of(self)
            }

            /// One message of each type, every field set (for the tests).
            #[cfg(test)]
            pub(crate) fn samples() -> Vec<Self> {
                vec![$(
                    $E::$V
                        $({ $( $f: $crate::wire::Sample::sample(), )* })?
                        $(( <$tt as $crate::wire::Sample>::sample() ))?,
                )*]
            }
        }

        impl $crate::msg::frame::Body for $E<'_> {
            fn typ(&self) -> u8 {
                self.msg_type()
            }

            fn body<S: $crate::sg::Sink + ?Sized>(
                &self,
                s: &mut S,
            ) -> Result<(), $crate::error::EncodeError> {
                self.encode_body(s)
            }
        }
    };
}

/// Decode one field, by its type or by the codec after `=>`.
macro_rules! decode_field {
    ($r:ident, $ft:ty) => {
        $crate::wire::Decode::decode($r)?
    };
    ($r:ident, $ft:ty => $codec:ty) => {
        <$codec>::decode($r)?
    };
}

/// Encode one field, by its type or by the codec after `=>`.
macro_rules! encode_field {
    ($s:ident, $v:ident, $ft:ty) => {
        $crate::wire::Encode::encode($v, $s)?
    };
    ($s:ident, $v:ident, $ft:ty => $codec:ty) => {
        <$codec>::encode($v, $s)?
    };
}

pub(crate) use {decode_field, encode_field, message_table};
