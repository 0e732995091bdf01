// SPDX-License-Identifier: GPL-2.0-or-later
//! Name rules, as 9p.c applies them before touching any fid.
//!
//! | rule | used by (9p.c) | empty or `/` | NUL | `.` | `..` |
//! |---|---|---|---|---|---|
//! | [`NameRule::Walk`] | `v9fs_walk` (each element) | `ENOENT` | `EINVAL` | allowed | allowed |
//! | [`NameRule::Create`] | `v9fs_lcreate`, `v9fs_create`, `v9fs_symlink` (the name, not the target), `v9fs_mknod`, `v9fs_mkdir`, `v9fs_link` | `ENOENT` | `EINVAL` | `EEXIST` | `EEXIST` |
//! | [`NameRule::Unlink`] | `v9fs_unlinkat` | `ENOENT` | `EINVAL` | `EINVAL` | `ENOTEMPTY` |
//! | [`NameRule::Rename`] | `v9fs_rename`, `v9fs_renameat` (both names), `v9fs_wstat` (a non-empty new name) | `ENOENT` | `EINVAL` | `EISDIR` | `EISDIR` |
//!
//! Names are byte strings: 9p.c never requires UTF-8.  9p.c reads them as
//! C strings, so a name with a NUL byte is silently cut at the NUL; we
//! refuse it with `EINVAL` instead (the decoder already does, so
//! [`NameRule::check`] only sees a NUL in names built by other means).
//! `v9fs_xattrwalk` and `v9fs_xattrcreate` apply no name rule (an empty
//! xattrwalk name means "list"), nor do Tattach's uname/aname or Tsymlink's
//! target.
//!
//! [`crate::Tmessage::check_args`] applies these rules, and the other
//! argument checks 9p.c makes before its fid lookup, to a decoded request.

use crate::errno::{self, Errno};

/// 9p.c's `name_is_illegal`: empty, or containing `/`.
pub fn name_is_illegal(name: &[u8]) -> bool {
    name.is_empty() || name.contains(&b'/')
}

/// Whether `name` is `.` or `..`.
pub fn is_dot_or_dotdot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

/// Which 9p.c name rule applies (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// A Twalk element.
    Walk,
    /// A name to create (Tlcreate, Tcreate, Tsymlink, Tmknod, Tmkdir,
    /// Tlink).
    Create,
    /// A name to remove (Tunlinkat).
    Unlink,
    /// A rename source or target (Trename, Trenameat, Twstat).
    Rename,
}

impl NameRule {
    /// Check `name` against the rule, returning the errno 9p.c would reply
    /// with.  The NUL check comes first, then `name_is_illegal`, then the
    /// dot rules, in 9p.c's order.
    pub fn check(self, name: &[u8]) -> Result<(), Errno> {
        if name.contains(&0) {
            return Err(errno::EINVAL);
        }
        if name_is_illegal(name) {
            return Err(errno::ENOENT);
        }
        match self {
            NameRule::Walk => Ok(()),
            NameRule::Create if is_dot_or_dotdot(name) => Err(errno::EEXIST),
            NameRule::Unlink if name == b"." => Err(errno::EINVAL),
            NameRule::Unlink if name == b".." => Err(errno::ENOTEMPTY),
            NameRule::Rename if is_dot_or_dotdot(name) => Err(errno::EISDIR),
            _ => Ok(()),
        }
    }
}

/// 9p.c's `v9fs_renameat` order: first `name_is_illegal` on either name
/// (`ENOENT`), then `.`/`..` on either (`EISDIR`).
pub fn check_renameat(old: &[u8], new: &[u8]) -> Result<(), Errno> {
    if old.contains(&0) || new.contains(&0) {
        return Err(errno::EINVAL);
    }
    if name_is_illegal(old) || name_is_illegal(new) {
        return Err(errno::ENOENT);
    }
    if is_dot_or_dotdot(old) || is_dot_or_dotdot(new) {
        return Err(errno::EISDIR);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::*;

    #[test]
    fn illegal() {
        assert!(name_is_illegal(b""));
        assert!(name_is_illegal(b"/"));
        assert!(name_is_illegal(b"a/b"));
        assert!(!name_is_illegal(b"a"));
        assert!(!name_is_illegal(b".."));
        assert!(!name_is_illegal(b"\xff\xfe"));
    }

    #[test]
    fn rules() {
        use NameRule::*;
        let cases: &[(NameRule, &[u8], Result<(), Errno>)] = &[
            (Walk, b"a", Ok(())),
            (Walk, b".", Ok(())),
            (Walk, b"..", Ok(())),
            (Walk, b"", Err(ENOENT)),
            (Walk, b"a/b", Err(ENOENT)),
            (Walk, b"a\0b", Err(EINVAL)),
            (Create, b"a", Ok(())),
            (Create, b"...", Ok(())),
            (Create, b".", Err(EEXIST)),
            (Create, b"..", Err(EEXIST)),
            (Create, b"/", Err(ENOENT)),
            (Create, b"\0", Err(EINVAL)),
            (Unlink, b"a", Ok(())),
            (Unlink, b".", Err(EINVAL)),
            (Unlink, b"..", Err(ENOTEMPTY)),
            (Unlink, b"", Err(ENOENT)),
            (Rename, b"a", Ok(())),
            (Rename, b".", Err(EISDIR)),
            (Rename, b"..", Err(EISDIR)),
            (Rename, b"x/", Err(ENOENT)),
        ];
        for (rule, name, want) in cases {
            assert_eq!(
                rule.check(name),
                *want,
                "{rule:?} {:?}",
                name.escape_ascii()
            );
        }
    }

    #[test]
    fn renameat_order() {
        assert_eq!(check_renameat(b"a", b"b"), Ok(()));
        assert_eq!(check_renameat(b".", b""), Err(ENOENT));
        assert_eq!(check_renameat(b"a", b".."), Err(EISDIR));
        assert_eq!(check_renameat(b"..", b"a/b"), Err(ENOENT));
        assert_eq!(check_renameat(b"a", b"b\0"), Err(EINVAL));
    }
}
