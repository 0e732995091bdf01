// SPDX-License-Identifier: GPL-2.0-or-later
//! The 9P string.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

/// A 9P string: at most 65535 bytes, not necessarily UTF-8.
///
/// 9p.c treats names as C strings and never requires UTF-8 (Linux file
/// names are byte strings), so neither do we.  Decoded strings never
/// contain a NUL byte (the decoder refuses them, see
/// [`crate::error`]); strings built for encoding are not checked, so a test
/// client can send hostile ones.
#[derive(Clone)]
pub struct P9String(Repr);

/// Bytes kept in the string itself: file names are short, and a name
/// decoded from a request then costs no allocation.
const INLINE: usize = 30;

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Vec<u8>),
}

impl P9String {
    /// A string from any bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        P9String(Repr::Heap(bytes.into()))
    }

    /// A string holding a copy of `bytes` (inline when short).
    pub fn copy_from(bytes: &[u8]) -> Self {
        if bytes.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..bytes.len()].copy_from_slice(bytes);
            P9String(Repr::Inline {
                len: bytes.len() as u8,
                buf,
            })
        } else {
            P9String(Repr::Heap(bytes.to_vec()))
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..usize::from(*len)],
            Repr::Heap(v) => v,
        }
    }

    /// The bytes, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        match self.0 {
            Repr::Heap(v) => v,
            Repr::Inline { .. } => self.as_bytes().to_vec(),
        }
    }

    /// The string as UTF-8, if it is.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()).ok()
    }

    /// The string as UTF-8, with invalid sequences replaced.
    pub fn to_string_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }

    /// Whether the string contains a NUL byte.
    pub fn has_nul(&self) -> bool {
        self.as_bytes().contains(&0)
    }

    /// Bytes on the wire: `len[2]` plus the bytes.
    pub fn wire_size(&self) -> usize {
        2 + self.as_bytes().len()
    }
}

impl Default for P9String {
    fn default() -> Self {
        P9String::copy_from(b"")
    }
}

impl PartialEq for P9String {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for P9String {}

impl PartialOrd for P9String {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for P9String {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::hash::Hash for P9String {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl Deref for P9String {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for P9String {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl From<&str> for P9String {
    fn from(s: &str) -> Self {
        P9String::copy_from(s.as_bytes())
    }
}

impl From<String> for P9String {
    fn from(s: String) -> Self {
        P9String::new(s.into_bytes())
    }
}

impl From<&[u8]> for P9String {
    fn from(s: &[u8]) -> Self {
        P9String::copy_from(s)
    }
}

impl<const N: usize> From<&[u8; N]> for P9String {
    fn from(s: &[u8; N]) -> Self {
        P9String::copy_from(s)
    }
}

impl From<Vec<u8>> for P9String {
    fn from(s: Vec<u8>) -> Self {
        P9String::new(s)
    }
}

impl PartialEq<str> for P9String {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for P9String {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<[u8]> for P9String {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

impl fmt::Debug for P9String {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.as_bytes().escape_ascii())
    }
}

impl fmt::Display for P9String {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p9string_conversions() {
        let s = P9String::from("abc");
        assert_eq!(s, "abc");
        assert_eq!(s.as_bytes(), b"abc");
        assert_eq!(s.wire_size(), 5);
        assert_eq!(s.to_str(), Some("abc"));
        assert!(!s.has_nul());
        let b = P9String::new(vec![0xff, b'/', 0]);
        assert!(b.has_nul());
        assert_eq!(b.to_str(), None);
        assert_eq!(format!("{b:?}"), "\"\\xff/\\x00\"");
        assert_eq!(b.to_string_lossy(), "\u{fffd}/\0");
        assert_eq!(P9String::from(&b"x"[..]).into_bytes(), b"x");
    }
}
