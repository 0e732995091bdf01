// SPDX-License-Identifier: GPL-2.0-or-later
//! The QEMU security models of the native backend: `passthrough`,
//! `none`, `mapped-xattr` and `mapped-file` (the latter two with exactly
//! the on-disk format of QEMU's `local` driver, see `crate::mapped`).

use std::os::fd::AsFd;

use crate::attr::{chmod_known, chown};
use crate::errno::{self, Result};
use crate::mapped;
use crate::node::{file_type, fstat, Node};
use crate::resolve::lookup;
use crate::xattr;

/// An entry just created, to which [`SecurityModel::finish_create_dev`]
/// gives the guest's credentials: `name` in the directory `dir`, which is
/// the file `node`.
#[derive(Clone, Copy, Debug)]
pub struct NewEntry<'a> {
    /// The directory the entry was created in.
    pub dir: &'a Node,
    /// The entry's name in `dir`.
    pub name: &'a [u8],
    /// The new file, held by its descriptor.
    pub node: &'a Node,
}

/// The host permission bits of what the mapped models create (QEMU's
/// `fmode` and `dmode` options of `local`); the other models create with
/// the guest's mode and ignore them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostModes {
    /// Regular files, and what stands for device nodes, FIFOs, sockets
    /// and symbolic links (`fmode`, 0600 by default).
    pub file: libc::mode_t,
    /// Directories (`dmode`, 0700 by default).
    pub dir: libc::mode_t,
}

impl Default for HostModes {
    /// 9p-local's defaults, 0600 and 0700.
    fn default() -> HostModes {
        HostModes {
            file: mapped::FILE_MODE,
            dir: mapped::DIR_MODE,
        }
    }
}

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
    /// `security_model=mapped-xattr` (alias `mapped`): files belong to the
    /// server on the host (new ones mode 0600, directories 0700); the
    /// guest's owner, mode (with the file type) and device number live in
    /// the extended attributes `user.virtfs.{uid,gid,mode,rdev}`.  Device
    /// nodes, FIFOs, sockets and symbolic links are regular files on the
    /// host (a link's target is its content).  The guest can neither see
    /// nor change `user.virtfs.*`; its POSIX ACLs are stored as
    /// `user.virtfs.system.posix_acl_{access,default}`.
    MappedXattr,
    /// `security_model=mapped-file`: as [`SecurityModel::MappedXattr`],
    /// but the credentials are kept in `.virtfs_metadata/<name>` beside
    /// each entry (`.virtfs_metadata_root` for the export root), names
    /// the guest can neither see nor use.  Extended attributes as in
    /// passthrough.
    MappedFile,
}

impl SecurityModel {
    /// The model for a QEMU `security_model=` value: `"passthrough"`,
    /// `"none"`, `"mapped-xattr"` (or `"mapped"`), `"mapped-file"`; `None`
    /// for anything else.
    #[must_use]
    pub fn from_name(name: &str) -> Option<SecurityModel> {
        match name {
            "passthrough" => Some(SecurityModel::Passthrough),
            "none" => Some(SecurityModel::None),
            "mapped" | "mapped-xattr" => Some(SecurityModel::MappedXattr),
            "mapped-file" => Some(SecurityModel::MappedFile),
            _ => None,
        }
    }

    /// Whether guest credentials are mapped (kept in extended attributes
    /// or metadata files) rather than applied to the host files.
    #[must_use]
    pub fn is_mapped(self) -> bool {
        matches!(self, SecurityModel::MappedXattr | SecurityModel::MappedFile)
    }

    /// `EINVAL` for a name the model keeps for itself (`mapped-file`:
    /// `.virtfs_metadata` and `.virtfs_metadata_root`, as QEMU's
    /// `local_is_mapped_file_metadata` checks in every call taking a name
    /// from the guest).
    ///
    /// # Errors
    ///
    /// `EINVAL` as above.
    pub fn check_name(self, name: &[u8]) -> Result<()> {
        if self == SecurityModel::MappedFile && mapped::is_metadata_name(name) {
            Err(errno::EINVAL)
        } else {
            Ok(())
        }
    }

    /// Whether a directory entry is hidden from the guest (`mapped-file`'s
    /// metadata, QEMU's `local_readdir`).
    #[must_use]
    pub fn hides(self, name: &[u8]) -> bool {
        self.check_name(name).is_err()
    }

    /// The host permission bits to create a file with, given the guest's
    /// (`modes.file`, QEMU's `fmode`, in the mapped models).
    #[must_use]
    pub fn host_file_mode(self, mode: libc::mode_t, modes: HostModes) -> libc::mode_t {
        if self.is_mapped() {
            modes.file
        } else {
            mode
        }
    }

    /// The host permission bits to create a directory with
    /// (`modes.dir`, QEMU's `dmode`, in the mapped models).
    #[must_use]
    pub fn host_dir_mode(self, mode: libc::mode_t, modes: HostModes) -> libc::mode_t {
        if self.is_mapped() {
            modes.dir
        } else {
            mode
        }
    }

    /// The host mode and device number for `Tmknod`: in the mapped models
    /// a regular file (QEMU: `fmode | S_IFREG`, device 0).
    #[must_use]
    pub fn host_mknod(
        self,
        mode: libc::mode_t,
        rdev: u64,
        modes: HostModes,
    ) -> (libc::mode_t, u64) {
        if self.is_mapped() {
            (libc::S_IFREG | modes.file, 0)
        } else {
            (mode, rdev)
        }
    }

    /// Creates the symbolic link `name` in `dir` (`Tsymlink`): in the
    /// mapped models a new regular file (mode `modes.file`) holding
    /// `target`, as QEMU's `local_symlink` (removed again if writing fails).
    ///
    /// # Errors
    ///
    /// Those of [`crate::symlink`], or of [`crate::create_file`] and the
    /// write (`EIO` for a short one).
    pub fn symlink(self, dir: &Node, name: &[u8], target: &[u8], modes: HostModes) -> Result<Node> {
        if !self.is_mapped() {
            return crate::dirops::symlink(dir, name, target);
        }
        if target.contains(&0) {
            return Err(errno::EINVAL);
        }
        let (node, fd) = crate::create_file(
            dir,
            name,
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
            modes.file,
        )?;
        let wrote = crate::io::pwrite(fd.as_fd(), &[std::io::IoSlice::new(target)], 0);
        if wrote != Ok(target.len()) {
            let _ = crate::dirops::unlinkat(dir, name, false);
            return Err(wrote.err().unwrap_or(errno::EIO));
        }
        Ok(node)
    }

    /// Reads the symbolic link `node` (`Treadlink`): in the mapped models
    /// the content of the regular file standing for it, at most
    /// `PATH_MAX - 1` bytes (QEMU's `v9fs_co_readlink`); a host symbolic
    /// link there is `ELOOP`, as QEMU's `O_NOFOLLOW` open.
    ///
    /// # Errors
    ///
    /// Those of [`crate::readlink`], or of [`crate::open()`] and the read.
    pub fn readlink(self, node: &Node) -> Result<Vec<u8>> {
        if !self.is_mapped() {
            return crate::readlink(node);
        }
        let fd = crate::open(node, libc::O_RDONLY)?;
        let mut buf = vec![0u8; libc::PATH_MAX as usize - 1];
        let n = crate::io::pread(fd.as_fd(), &mut [std::io::IoSliceMut::new(&mut buf)], 0)?;
        buf.truncate(n);
        Ok(buf)
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
    /// In the mapped models, instead, `uid`, `gid`, `mode` (the mode QEMU
    /// stores, file type included: `Tlcreate` `(mode & 0o7777) | S_IFREG`,
    /// `Tmkdir` `mode | S_IFDIR`, `Tsymlink` `0o777 | S_IFLNK`, `Tmknod`
    /// the request's) and `rdev` (`Tmknod` only) are stored as QEMU's
    /// `local_set_xattrat` / `local_set_mapped_file_attrat` do; a `uid` or
    /// `gid` of `u32::MAX` is QEMU's `-1` and not stored.
    ///
    /// On failure the entry is removed again (only if `name` in `dir` still
    /// is `node`), as QEMU does, and the error is returned.
    ///
    /// # Errors
    ///
    /// The errno of `fstat` on `node`, of [`chown`] (passthrough only:
    /// `EPERM`, `EINVAL`, ...) or of [`crate::chmod`]; in the mapped models that
    /// of storing the credentials (`ENOTSUP` where the file system has no
    /// `user.` attributes, `ENOSPC`, ...).
    pub fn finish_create(
        self,
        dir: &Node,
        name: &[u8],
        node: &Node,
        uid: u32,
        gid: u32,
        mode: libc::mode_t,
    ) -> Result<()> {
        let entry = NewEntry { dir, name, node };
        self.finish_create_dev(entry, uid, gid, mode, None)
    }

    /// [`Self::finish_create`] with the device number the mapped models
    /// store for `Tmknod` (QEMU's `fc_rdev`; ignored in `passthrough` and
    /// `none`, where `mknod` made the device).
    ///
    /// # Errors
    ///
    /// Those of [`Self::finish_create`].
    pub fn finish_create_dev(
        self,
        entry: NewEntry<'_>,
        uid: u32,
        gid: u32,
        mode: libc::mode_t,
        rdev: Option<u64>,
    ) -> Result<()> {
        let st = fstat(entry.node.as_fd())?;
        let cur = (st.st_mode, st.st_uid, st.st_gid);
        self.finish_create_known(entry, cur, uid, gid, mode, rdev)
            .map(drop)
    }

    /// [`Self::finish_create_dev`] for a node whose `st_mode`, `st_uid` and
    /// `st_gid` (`cur`) the caller already has; returns whether the host
    /// owner is `uid`/`gid` now (the `none` model carries on when it could
    /// not be changed; the mapped models never change it: they store the
    /// credentials, and answer `false`).
    ///
    /// A change that would change nothing is not made: no `chown` when the
    /// entry already has that owner (the creator's own; it could not
    /// fail), and then no `chmod` when it already has that mode (only a
    /// `chown` could have cleared set-id bits since).
    pub(crate) fn finish_create_known(
        self,
        NewEntry { dir, name, node }: NewEntry<'_>,
        cur: (libc::mode_t, u32, u32),
        uid: u32,
        gid: u32,
        mode: libc::mode_t,
        rdev: Option<u64>,
    ) -> Result<bool> {
        let (st_mode, cur_uid, cur_gid) = cur;
        let ft = file_type(st_mode);
        // u32::MAX (-1): leave as it is.
        let owned = (uid == u32::MAX || uid == cur_uid) && (gid == u32::MAX || gid == cur_gid);
        let set = || -> Result<bool> {
            let cred = mapped::Cred::new(Some(uid), Some(gid), Some(mode), rdev);
            match self {
                SecurityModel::MappedXattr => {
                    return mapped::set_xattr_cred(node.as_fd(), &cred).map(|()| false)
                }
                SecurityModel::MappedFile => {
                    return mapped::set_file_cred(dir, name, &cred).map(|()| false)
                }
                SecurityModel::Passthrough | SecurityModel::None => {}
            }
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
    ///
    /// `mapped-file` passes through as `passthrough` (QEMU uses
    /// `passthrough_xattr_ops` for it); `mapped-xattr` is QEMU's
    /// `mapped_xattr_ops`: `user.*` and the names beginning with
    /// `system.posix_acl_access` or `system.posix_acl_default` (see
    /// [`Self::getxattr`] for what they map to).
    pub fn check_xattr_name(self, name: &[u8]) -> Result<()> {
        if self == SecurityModel::MappedXattr {
            return mapped_xattr_name(name).map(drop);
        }
        let ok = name.starts_with(b"user.")
            || (matches!(self, SecurityModel::Passthrough | SecurityModel::MappedFile)
                && name.starts_with(b"system.posix_acl_"));
        if ok {
            Ok(())
        } else {
            Err(errno::EOPNOTSUPP)
        }
    }

    /// [`crate::getxattr`] after [`Self::check_xattr_name`].
    ///
    /// In `mapped-xattr` (QEMU's `mp_user_getxattr`, `mp_pacl_getxattr`,
    /// `mp_dacl_getxattr`): `user.virtfs.*` is `ENODATA` (the model's own
    /// attributes), and a name beginning with `system.posix_acl_access`
    /// (`_default`) reads `user.virtfs.system.posix_acl_access`
    /// (`_default`).
    ///
    /// # Errors
    ///
    /// Those of [`Self::check_xattr_name`] and [`crate::getxattr`].
    pub fn getxattr(self, node: &Node, name: &[u8], buf: &mut [u8]) -> Result<usize> {
        if self == SecurityModel::MappedXattr {
            if name.starts_with(VIRTFS_PREFIX) {
                return Err(errno::ENODATA);
            }
            return xattr::getxattr(node, mapped_xattr_name(name)?, buf);
        }
        self.check_xattr_name(name)?;
        xattr::getxattr(node, name, buf)
    }

    /// [`crate::setxattr`] after [`Self::check_xattr_name`]; in
    /// `mapped-xattr`, `user.virtfs.*` is `EACCES` and ACLs are mapped as
    /// for [`Self::getxattr`] (QEMU's `mp_*_setxattr`).
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
        if self == SecurityModel::MappedXattr {
            if name.starts_with(VIRTFS_PREFIX) {
                return Err(errno::EACCES);
            }
            return xattr::setxattr(node, mapped_xattr_name(name)?, value, flags);
        }
        self.check_xattr_name(name)?;
        xattr::setxattr(node, name, value, flags)
    }

    /// [`crate::removexattr`] after [`Self::check_xattr_name`]; in
    /// `mapped-xattr`, `user.virtfs.*` is `EACCES`, ACLs are mapped as for
    /// [`Self::getxattr`] and removing a missing one succeeds (QEMU's
    /// `mp_*_removexattr`).
    ///
    /// # Errors
    ///
    /// Those of [`Self::check_xattr_name`] and [`crate::removexattr`].
    pub fn removexattr(self, node: &Node, name: &[u8]) -> Result<()> {
        if self == SecurityModel::MappedXattr {
            if name.starts_with(VIRTFS_PREFIX) {
                return Err(errno::EACCES);
            }
            let host = mapped_xattr_name(name)?;
            return match xattr::removexattr(node, host) {
                // QEMU's mp_pacl_removexattr: a missing ACL is no error.
                Err(errno::ENODATA) if host != name => Ok(()),
                r => r,
            };
        }
        self.check_xattr_name(name)?;
        xattr::removexattr(node, name)
    }

    /// The names of [`crate::listxattr`] that [`Self::check_xattr_name`]
    /// accepts, each NUL-terminated, like QEMU's `v9fs_list_xattr`; with an
    /// empty `buf`, just the size of that list.  In `mapped-xattr` (QEMU's
    /// `mp_user_listxattr`): `user.*` but `user.virtfs.*`, and
    /// `user.virtfs.system.posix_acl_*` as `system.posix_acl_*`.  (Host
    /// `system.posix_acl_*` attributes are not listed: QEMU's
    /// `mp_pacl_listxattr` counts them in the size but copies none into
    /// the list.)
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
            if self == SecurityModel::MappedXattr {
                if let Some(shown) = mapped_listed(bare) {
                    out.extend_from_slice(shown);
                    out.push(0);
                }
            } else if !bare.is_empty() && self.check_xattr_name(bare).is_ok() {
                out.extend_from_slice(bare);
                out.push(0);
            }
        }
        if buf.is_empty() {
            return Ok(out.len());
        }
        let dst = buf.get_mut(..out.len()).ok_or(errno::ERANGE)?;
        dst.copy_from_slice(&out);
        Ok(out.len())
    }
}

/// `user.virtfs.`: the attributes of the mapped-xattr model.
const VIRTFS_PREFIX: &[u8] = b"user.virtfs.";
/// Where mapped-xattr keeps the guest's POSIX ACLs (9p-posix-acl.c).
const MAP_ACL_ACCESS: &[u8] = b"user.virtfs.system.posix_acl_access";
const MAP_ACL_DEFAULT: &[u8] = b"user.virtfs.system.posix_acl_default";

/// The host name of the guest attribute `name` in mapped-xattr, by QEMU's
/// prefix match over `mapped_xattr_ops` (`user.`, then
/// `system.posix_acl_access`, then `system.posix_acl_default`);
/// `EOPNOTSUPP` for any other name.
fn mapped_xattr_name(name: &[u8]) -> Result<&[u8]> {
    if name.starts_with(b"user.") {
        Ok(name)
    } else if name.starts_with(b"system.posix_acl_access") {
        Ok(MAP_ACL_ACCESS)
    } else if name.starts_with(b"system.posix_acl_default") {
        Ok(MAP_ACL_DEFAULT)
    } else {
        Err(errno::EOPNOTSUPP)
    }
}

/// What mapped-xattr lists for the host attribute `name` (QEMU's
/// `mp_user_listxattr`): `user.*` as is, `user.virtfs.system.posix_acl_*`
/// without `user.virtfs.`, nothing for the rest.
fn mapped_listed(name: &[u8]) -> Option<&[u8]> {
    if !name.starts_with(b"user.") {
        return None;
    }
    if name.starts_with(VIRTFS_PREFIX) {
        if name.starts_with(b"user.virtfs.system.posix_acl_") {
            return Some(&name[VIRTFS_PREFIX.len()..]);
        }
        return None;
    }
    Some(name)
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
            Err(errno::ERANGE) => continue,
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
        assert_eq!(
            SecurityModel::from_name("mapped-xattr"),
            Some(SecurityModel::MappedXattr)
        );
        assert_eq!(
            SecurityModel::from_name("mapped"),
            Some(SecurityModel::MappedXattr)
        );
        assert_eq!(
            SecurityModel::from_name("mapped-file"),
            Some(SecurityModel::MappedFile)
        );
        assert_eq!(SecurityModel::from_name("Mapped"), None);
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
                assert_eq!(m.check_xattr_name(bad), Err(errno::EOPNOTSUPP));
            }
        }
        let (mx, mf) = (SecurityModel::MappedXattr, SecurityModel::MappedFile);
        assert!(mf.check_xattr_name(b"system.posix_acl_access").is_ok());
        assert!(mx.check_xattr_name(b"system.posix_acl_access").is_ok());
        assert_eq!(
            mx.check_xattr_name(b"system.posix_acl_other"),
            Err(errno::EOPNOTSUPP)
        );
        // QEMU's prefix match: a longer name maps too.
        assert_eq!(
            mapped_xattr_name(b"system.posix_acl_defaultX"),
            Ok(&b"user.virtfs.system.posix_acl_default"[..])
        );
        assert_eq!(mapped_xattr_name(b"user.a"), Ok(&b"user.a"[..]));
        assert_eq!(mapped_listed(b"user.a"), Some(&b"user.a"[..]));
        assert_eq!(mapped_listed(b"user.virtfs.uid"), None);
        assert_eq!(
            mapped_listed(b"user.virtfs.system.posix_acl_access"),
            Some(&b"system.posix_acl_access"[..])
        );
        assert_eq!(mapped_listed(b"system.posix_acl_access"), None);
        assert_eq!(mapped_listed(b"security.selinux"), None);
        assert_eq!(mf.check_name(b".virtfs_metadata"), Err(errno::EINVAL));
        assert!(mx.check_name(b".virtfs_metadata").is_ok());
        assert!(p.check_name(b".virtfs_metadata_root").is_ok());
        assert!(p.check_xattr_name(b"system.posix_acl_access").is_ok());
        assert_eq!(
            n.check_xattr_name(b"system.posix_acl_access"),
            Err(errno::EOPNOTSUPP)
        );
    }
}
