// SPDX-License-Identifier: GPL-2.0-or-later
//! How each field type goes on the wire (crosvm's `WireFormat` habit):
//! one [`Encode`] and one [`Decode`] per type, from which the records of
//! [`crate::types`] and the messages of [`crate::msg`] are assembled.
//!
//! The size of anything is its encoding into a byte counter (the crate's
//! `Counter` sink), so sizes and encodings come from the same code.

use crate::consts::P9_MAXWELEM;
use crate::errno::Errno;
use crate::error::{DecodeErrorKind, EncodeError};
use crate::sg::{SgReader, SgView, Sink};
use crate::string::P9String;

/// A value that can be written to a [`Sink`].
pub(crate) trait Encode {
    /// Append the wire bytes of `self`.
    fn encode<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError>;
}

/// A value that can be read from the body of a message whose bytes live
/// for `'a` (borrowed payloads keep that lifetime).
pub(crate) trait Decode<'a>: Sized {
    /// Read the value, advancing the reader.
    fn decode(r: &mut SgReader<'a>) -> Result<Self, DecodeErrorKind>;
}

/// Fixed-width little-endian integers.
macro_rules! wire_int {
    ($($t:ident),*) => {$(
        impl Encode for $t {
            #[inline]
            fn encode<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
                s.$t(*self)
            }
        }

        impl Decode<'_> for $t {
            #[inline]
            fn decode(r: &mut SgReader<'_>) -> Result<Self, DecodeErrorKind> {
                r.$t()
            }
        }
    )*};
}

wire_int!(u8, u16, u32, u64);

/// An errno travels as its `u32` value (Rlerror, Rerror).
impl Encode for Errno {
    fn encode<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        s.u32(self.raw())
    }
}

impl Decode<'_> for Errno {
    fn decode(r: &mut SgReader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(Errno(r.u32()?))
    }
}

/// `len[2] bytes[len]`.
impl Encode for P9String {
    #[inline]
    fn encode<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        s.string(self)
    }
}

impl Decode<'_> for P9String {
    #[inline]
    fn decode(r: &mut SgReader<'_>) -> Result<Self, DecodeErrorKind> {
        r.p9string()
    }
}

/// Bulk data, `count[4] data[count]`, always the last field of its
/// message (Twrite, Rread, Rreaddir): the count must equal the bytes left,
/// and the data stays borrowed from the message segments.
impl Encode for SgView<'_> {
    fn encode<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        let count = u32::try_from(self.len())
            .map_err(|_| EncodeError::MessageTooLarge { size: self.len() })?;
        s.u32(count)?;
        s.view(self)
    }
}

impl<'a> Decode<'a> for SgView<'a> {
    fn decode(r: &mut SgReader<'a>) -> Result<Self, DecodeErrorKind> {
        let count = r.u32()?;
        let available = r.remaining();
        if count as usize != available {
            return Err(DecodeErrorKind::CountMismatch { count, available });
        }
        r.view(available)
    }
}

/// A walk list, `n[2] n*(elem)`: the only lists in 9P are Twalk's names
/// and Rwalk's qids, both limited to [`P9_MAXWELEM`] on decode (checked
/// before anything is allocated).
impl<T: Encode> Encode for [T] {
    fn encode<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        let n = u16::try_from(self.len())
            .map_err(|_| EncodeError::TooManyElements { count: self.len() })?;
        s.u16(n)?;
        self.iter().try_for_each(|e| e.encode(s))
    }
}

impl<T: Encode> Encode for Vec<T> {
    #[inline]
    fn encode<S: Sink + ?Sized>(&self, s: &mut S) -> Result<(), EncodeError> {
        self.as_slice().encode(s)
    }
}

impl<'a, T: Decode<'a>> Decode<'a> for Vec<T> {
    fn decode(r: &mut SgReader<'a>) -> Result<Self, DecodeErrorKind> {
        let n = r.u16()?;
        if usize::from(n) > P9_MAXWELEM {
            return Err(DecodeErrorKind::TooManyWalkElements(n));
        }
        // One allocation of the exact size (collecting a Result would
        // grow the vector step by step).
        let mut list = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            list.push(T::decode(r)?);
        }
        Ok(list)
    }
}

/// Declare a record: a struct whose wire form is its fields in order,
/// with its [`Encode`] and [`Decode`] (and, for the tests, a sample value
/// in which every field is set).
macro_rules! wire_record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::wire::Encode for $name {
            fn encode<S: $crate::sg::Sink + ?Sized>(
                &self,
                s: &mut S,
            ) -> Result<(), $crate::error::EncodeError> {
                $( $crate::wire::Encode::encode(&self.$field, s)?; )*
                Ok(())
            }
        }

        impl $crate::wire::Decode<'_> for $name {
            fn decode(
                r: &mut $crate::sg::SgReader<'_>,
            ) -> Result<Self, $crate::error::DecodeErrorKind> {
                // Struct expressions evaluate their fields in the order
                // written: wire order.
                Ok($name { $( $field: $crate::wire::Decode::decode(r)?, )* })
            }
        }

        #[cfg(test)]
        impl $crate::wire::Sample for $name {
            fn sample() -> Self {
                $name { $( $field: $crate::wire::Sample::sample(), )* }
            }
        }
    };
}

pub(crate) use wire_record;

/// A value with every field set to something non-zero, for the tests that
/// round-trip every message of the tables.
#[cfg(test)]
pub(crate) trait Sample {
    /// The sample value.
    fn sample() -> Self;
}

#[cfg(test)]
mod samples {
    use super::*;

    macro_rules! sample_int {
        ($($t:ident = $v:expr),*) => {$(
            impl Sample for $t {
                fn sample() -> Self {
                    $v
                }
            }
        )*};
    }

    sample_int!(
        u8 = 0x12,
        u16 = 0x1234,
        u32 = 0x1234_5678,
        u64 = 0x1234_5678_9abc_def0
    );

    impl Sample for Errno {
        fn sample() -> Self {
            crate::errno::EIO
        }
    }

    impl Sample for P9String {
        fn sample() -> Self {
            P9String::from("sample")
        }
    }

    impl Sample for SgView<'_> {
        fn sample() -> Self {
            SgView::from_slice(b"payload")
        }
    }

    impl<T: Sample> Sample for Vec<T> {
        fn sample() -> Self {
            vec![T::sample(), T::sample()]
        }
    }
}
