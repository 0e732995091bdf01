// SPDX-License-Identifier: GPL-2.0-or-later
//! The protocol dialect negotiated by Tversion.

use std::fmt;

/// The negotiated protocol dialect.
///
/// The decoders take it because the set of valid messages differs (see
/// [`crate::msgtype::t_allowed`]); the .u-specific layouts (Topen's mode
/// byte, Tcreate's extension, the stat struct, Rerror's errno) belong to
/// messages that only exist in 9P2000.u, so no message has two layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// No Tversion has succeeded yet: only Tversion is accepted, and errors
    /// are sent in the 9P2000.u format (9p.c's `proto_version` is then
    /// neither value, and `pdu_complete` takes the non-.L branch).
    Unnegotiated,
    /// 9P2000.u.
    DotU,
    /// 9P2000.L.
    DotL,
}

impl Proto {
    /// The protocol named by a Tversion version string.  Like 9p.c
    /// (`v9fs_version`), only the exact strings `"9P2000.u"` and
    /// `"9P2000.L"` are recognised.
    pub fn from_version(version: &[u8]) -> Option<Proto> {
        match version {
            b"9P2000.u" => Some(Proto::DotU),
            b"9P2000.L" => Some(Proto::DotL),
            _ => None,
        }
    }

    /// The version string for Rversion (`None` for
    /// [`Proto::Unnegotiated`]; 9p.c answers `"unknown"` then, see
    /// [`VERSION_UNKNOWN`]).
    pub fn version_str(self) -> Option<&'static str> {
        match self {
            Proto::Unnegotiated => None,
            Proto::DotU => Some("9P2000.u"),
            Proto::DotL => Some("9P2000.L"),
        }
    }
}

/// The Rversion version string for an unsupported version request.
pub const VERSION_UNKNOWN: &str = "unknown";

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.version_str().unwrap_or("unnegotiated protocol"))
    }
}

/// The dialects a message type exists in (a set of [`Proto`] values), as
/// the message tables list them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dialects(u8);

impl Dialects {
    /// Every state, negotiated or not: Tversion/Rversion.
    pub(crate) const ALWAYS: Dialects = Dialects(0b111);
    /// 9P2000.u and 9P2000.L.
    pub(crate) const BOTH: Dialects = Dialects(0b110);
    /// 9P2000.u only.
    pub(crate) const DOTU: Dialects = Dialects(0b010);
    /// 9P2000.L only.
    pub(crate) const DOTL: Dialects = Dialects(0b100);
    /// Everything but 9P2000.L: Rerror, the error reply before
    /// negotiation too.
    pub(crate) const NOT_DOTL: Dialects = Dialects(0b011);

    fn bit(proto: Proto) -> u8 {
        match proto {
            Proto::Unnegotiated => 0b001,
            Proto::DotU => 0b010,
            Proto::DotL => 0b100,
        }
    }

    /// Whether `proto` is one of them.
    pub(crate) fn allows(self, proto: Proto) -> bool {
        self.0 & Dialects::bit(proto) != 0
    }
}
