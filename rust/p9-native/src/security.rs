// SPDX-License-Identifier: GPL-2.0-or-later
//! The two QEMU security models the native backend supports:
//! `passthrough` and `none` (the `mapped*` models store credentials in
//! extended attributes or metadata files and are not implemented here).

use std::os::fd::AsFd;

use crate::attr::{chmod_known, chown};
use crate::errno::{Errno, Result};
use crate::node::{file_type, fstat, Node};
use crate::resolve::lookup;
use crate::xattr;

/// How guest credentials map to the host, as QEMU's `security_model=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityModel {
    /// `security_model=passthrough`: files get the owner and mode the guest
    /// asks for; failing to set them fails the request.  Extended
    /// attributes in the `user.` and `system.posix_acl_` namespaces pass
    /// through.
    Passthrough,
    /// `security_model=none`: like passthrough, except that failing to set
    /// the owner of a *new* file is ignored (the server usually lacks the
    /// privilege), and POSIX ACL attributes are not supported.
    None,
}

impl SecurityModel {
    /// The model for a QEMU `security_model=` value: `"passthrough"` or
    /// `"none"`; `None` for anything else (including the unsupported
    /// `"mapped"`, `"mapped-xattr"` and `"mapped-file"`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<SecurityModel> {
        match name {
            "passthrough" => Some(SecurityModel::Passthrough),
            "none" => Some(SecurityModel::None),
            _ => None,
        }
    }

    /// Gives a newly created entry its owner and mode, mirroring QEMU's
    /// `local_set_cred_passthrough` (after `Tlcreate`, `Tmkdir`, `Tmknod`)
    /// and `local_symlink` (after `Tsymlink`):
    ///
    /// 1. `chown(uid, gid)` without following links; with
    ///    [`SecurityModel::None`] a failure is ignored;
    /// 2. except for a symbolic link, `chmod(mode & 0o7777)`, which also
    ///    undoes the process umask applied at creation; a failure fails
    ///    the request in both models.
    ///
    /// On failure the entry is removed again (only if `name` in `dir` still
    /// is `node`), as QEMU does, and the error is returned.
    ///
    /// # Errors
    ///
    /// The errno of `fstat` on `node`, of [`chown`] (passthrough only:
    /// `EPERM`, `EINVAL`, ...) or of [`chmod`].
    pub fn finish_create(
        self,
        dir: &Node,
        name: &[u8],
        node: &Node,
        uid: u32,
        gid: u32,
        mode: libc::mode_t,
    ) -> Result<()> {
        let st = fstat(node.as_fd())?;
        let cur = (st.st_mode, st.st_uid, st.st_gid);
        self.finish_create_known(dir, name, node, cur, uid, gid, mode)
            .map(drop)
    }

    /// [`Self::finish_create`] for a node whose `st_mode`, `st_uid` and
    /// `st_gid` (`cur`) the caller already has; returns whether the owner
    /// is `uid`/`gid` now (the `none` model carries on when it could not be
    /// changed).
    ///
    /// A change that would change nothing is not made: no `chown` when the
    /// entry already has that owner (the creator's own; it could not
    /// fail), and then no `chmod` when it already has that mode (only a
    /// `chown` could have cleared set-id bits since).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn finish_create_known(
        self,
        dir: &Node,
        name: &[u8],
        node: &Node,
        cur: (libc::mode_t, u32, u32),
        uid: u32,
        gid: u32,
        mode: libc::mode_t,
    ) -> Result<bool> {
        let (st_mode, cur_uid, cur_gid) = cur;
        let ft = file_type(st_mode);
        // u32::MAX (-1): leave as it is.
        let owned = (uid == u32::MAX || uid == cur_uid) && (gid == u32::MAX || gid == cur_gid);
        let set = || -> Result<bool> {
            let chowned = owned
                || match chown(node, Some(uid), Some(gid)) {
                    Ok(()) => true,
                    Err(e) if self == SecurityModel::Passthrough => return Err(e),
                    Err(_) => false,
                };
            let same_mode = owned && st_mode & 0o7777 == mode & 0o7777;
            if ft != libc::S_IFLNK && !same_mode {
                chmod_known(node.as_fd(), st_mode, mode & 0o7777)?;
            }
            Ok(chowned)
        };
        let r = set();
        if r.is_err() {
            if let Ok(cur) = lookup(dir, name) {
                if cur.same_inode(node) == Ok(true) {
                    // Best effort, like QEMU's unlinkat_preserve_errno.
                    let _ = crate::dirops::unlinkat(dir, name, ft == libc::S_IFDIR);
                }
            }
        }
        r
    }

    /// Whether the guest may use the extended attribute `name`, mirroring
    /// QEMU's `passthrough_xattr_ops` / `none_xattr_ops`: `user.*` in both
    /// models, `system.posix_acl_*` in passthrough only.  Everything else
    /// (`trusted.*`, `security.*` such as `security.capability`, other
    /// `system.*`) is refused: giving the guest those would let it set host
    /// file capabilities or other privileged metadata.
    ///
    /// # Errors
    ///
    /// `EOPNOTSUPP` for a name the model does not pass through (QEMU:
    /// `EOPNOTSUPP` for unknown namespaces, `ENOTSUP`, the same value on
    /// Linux, for ACLs in the `none` model).
    pub fn check_xattr_name(self, name: &[u8]) -> Result<()> {
        let ok = name.starts_with(b"user.")
            || (self == SecurityModel::Passthrough && name.starts_with(b"system.posix_acl_"));
        if ok {
            Ok(())
        } else {
            Err(Errno(libc::EOPNOTSUPP))
        }
    }

    /// [`crate::getxattr`] after [`Self::check_xattr_name`].
    ///
    /// # Errors
    ///
    /// Those of [`Self::check_xattr_name`] and [`crate::getxattr`].
    pub fn getxattr(self, node: &Node, name: &[u8], buf: &mut [u8]) -> Result<usize> {
        self.check_xattr_name(name)?;
        xattr::getxattr(node, name, buf)
    }

    /// [`crate::setxattr`] after [`Self::check_xattr_name`].
    ///
    /// # Errors
    ///
    /// Those of [`Self::check_xattr_name`] and [`crate::setxattr`].
    pub fn setxattr(
        self,
        node: &Node,
        name: &[u8],
        value: &[u8],
        flags: libc::c_int,
    ) -> Result<()> {
        self.check_xattr_name(name)?;
        xattr::setxattr(node, name, value, flags)
    }

    /// [`crate::removexattr`] after [`Self::check_xattr_name`].
    ///
    /// # Errors
    ///
    /// Those of [`Self::check_xattr_name`] and [`crate::removexattr`].
    pub fn removexattr(self, node: &Node, name: &[u8]) -> Result<()> {
        self.check_xattr_name(name)?;
        xattr::removexattr(node, name)
    }

    /// The names of [`crate::listxattr`] that [`Self::check_xattr_name`]
    /// accepts, each NUL-terminated, like QEMU's `v9fs_list_xattr`; with an
    /// empty `buf`, just the size of that list.
    ///
    /// # Errors
    ///
    /// * `ERANGE`: `buf` is not empty and too small for the filtered list;
    /// * those of [`crate::listxattr`].
    pub fn listxattr(self, node: &Node, buf: &mut [u8]) -> Result<usize> {
        let raw = list_all(node)?;
        let mut out = Vec::with_capacity(raw.len());
        for name in raw.split_inclusive(|&c| c == 0) {
            let bare = name.strip_suffix(b"\0").unwrap_or(name);
            if !bare.is_empty() && self.check_xattr_name(bare).is_ok() {
                out.extend_from_slice(bare);
                out.push(0);
            }
        }
        if buf.is_empty() {
            return Ok(out.len());
        }
        let dst = buf.get_mut(..out.len()).ok_or(Errno(libc::ERANGE))?;
        dst.copy_from_slice(&out);
        Ok(out.len())
    }
}

/// The whole raw attribute list, retrying if it grows between the size
/// query and the read.
fn list_all(node: &Node) -> Result<Vec<u8>> {
    loop {
        let size = xattr::listxattr(node, &mut [])?;
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut v = vec![0u8; size];
        match xattr::listxattr(node, &mut v) {
            Ok(n) => {
                v.truncate(n);
                return Ok(v);
            }
            Err(Errno(libc::ERANGE)) => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_xattr_policy() {
        assert_eq!(
            SecurityModel::from_name("passthrough"),
            Some(SecurityModel::Passthrough)
        );
        assert_eq!(SecurityModel::from_name("none"), Some(SecurityModel::None));
        assert_eq!(SecurityModel::from_name("mapped-xattr"), None);
        let (p, n) = (SecurityModel::Passthrough, SecurityModel::None);
        for m in [p, n] {
            assert!(m.check_xattr_name(b"user.x").is_ok());
            for bad in [
                &b"trusted.x"[..],
                b"security.capability",
                b"system.nfs4_acl",
                b"user",
                b"",
            ] {
                assert_eq!(m.check_xattr_name(bad), Err(Errno(libc::EOPNOTSUPP)));
            }
        }
        assert!(p.check_xattr_name(b"system.posix_acl_access").is_ok());
        assert_eq!(
            n.check_xattr_name(b"system.posix_acl_access"),
            Err(Errno(libc::EOPNOTSUPP))
        );
    }
}
