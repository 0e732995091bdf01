// SPDX-License-Identifier: GPL-2.0-or-later
//! The requests: one table line (or block) per T-message, and the checks
//! that are not wire format (Tread's count, 9p.c's argument checks).

use crate::consts::XATTR_SIZE_MAX;
use crate::errno::{self, Errno};
use crate::error::DecodeErrorKind;
use crate::msg::frame::max_read_count;
use crate::msg::table::message_table;
use crate::sg::SgView;
use crate::types::{Flock, Getlock, P9String, PrefixedStat, SetAttr, Stat};
use crate::validate::{check_renameat, NameRule};

message_table! {
    consts: t_types,
    /// A request (T-message), as the server decodes it.
    ///
    /// Strings are copied out (they are small); Twrite's payload is a borrowed
    /// [`SgView`] over the request segments.  Field order is wire order.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Tmessage<'a> {
        /// Tstatfs (.L): `fid[4]`.
        TSTATFS = 8, "Tstatfs", DOTL => Statfs {
            /// Any fid on the file system.
            fid: u32,
        },
        /// Tlopen (.L): `fid[4] flags[4]`.
        TLOPEN = 12, "Tlopen", DOTL => Lopen {
            /// The fid to open.
            fid: u32,
            /// [`crate::consts::dotl_open`] flags.
            flags: u32,
        },
        /// Tlcreate (.L): `fid[4] name[s] flags[4] mode[4] gid[4]`.
        TLCREATE = 14, "Tlcreate", DOTL => Lcreate {
            /// Directory fid; becomes the new file's fid.
            fid: u32,
            /// New file name.
            name: P9String,
            /// [`crate::consts::dotl_open`] flags.
            flags: u32,
            /// Permission bits.
            mode: u32,
            /// Group.
            gid: u32,
        },
        /// Tsymlink (.L): `fid[4] name[s] symtgt[s] gid[4]`.
        TSYMLINK = 16, "Tsymlink", DOTL => Symlink {
            /// Directory fid.
            fid: u32,
            /// Link name.
            name: P9String,
            /// Link target.
            symtgt: P9String,
            /// Group.
            gid: u32,
        },
        /// Tmknod (.L): `dfid[4] name[s] mode[4] major[4] minor[4] gid[4]`.
        TMKNOD = 18, "Tmknod", DOTL => Mknod {
            /// Directory fid.
            dfid: u32,
            /// Node name.
            name: P9String,
            /// Mode including the file type.
            mode: u32,
            /// Device major.
            major: u32,
            /// Device minor.
            minor: u32,
            /// Group.
            gid: u32,
        },
        /// Trename (.L): `fid[4] dfid[4] name[s]`.
        TRENAME = 20, "Trename", DOTL => Rename {
            /// File to rename.
            fid: u32,
            /// Target directory.
            dfid: u32,
            /// New name.
            name: P9String,
        },
        /// Treadlink (.L): `fid[4]`.
        TREADLINK = 22, "Treadlink", DOTL => Readlink {
            /// The symlink.
            fid: u32,
        },
        /// Tgetattr (.L): `fid[4] request_mask[8]`.
        TGETATTR = 24, "Tgetattr", DOTL => Getattr {
            /// The file.
            fid: u32,
            /// [`crate::consts::getattr`] bits.
            request_mask: u64,
        },
        /// Tsetattr (.L): `fid[4] valid[4] mode[4] uid[4] gid[4] size[8]
        /// atime_sec[8] atime_nsec[8] mtime_sec[8] mtime_nsec[8]`.
        TSETATTR = 26, "Tsetattr", DOTL => Setattr {
            /// The file.
            fid: u32,
            /// What to set.
            attr: SetAttr,
        },
        /// Txattrwalk (.L): `fid[4] newfid[4] name[s]`.
        TXATTRWALK = 30, "Txattrwalk", DOTL => Xattrwalk {
            /// The file.
            fid: u32,
            /// New xattr fid.
            newfid: u32,
            /// Attribute name; empty to list.
            name: P9String,
        },
        /// Txattrcreate (.L): `fid[4] name[s] attr_size[8] flags[4]`.
        TXATTRCREATE = 32, "Txattrcreate", DOTL => Xattrcreate {
            /// The file; becomes an xattr fid.
            fid: u32,
            /// Attribute name.
            name: P9String,
            /// Value size.
            attr_size: u64,
            /// [`crate::consts::xattr_flags`].
            flags: u32,
        },
        /// Treaddir (.L): `fid[4] offset[8] count[4]`.
        TREADDIR = 40, "Treaddir", DOTL => Readdir {
            /// Open directory fid.
            fid: u32,
            /// Offset from a previous entry (0 to start).
            offset: u64,
            /// Maximum bytes of entries (the reply is capped at msize − 11, as
            /// 9p.c clamps larger counts).
            count: u32,
        },
        /// Tfsync (.L): `fid[4] datasync[4]`.
        TFSYNC = 50, "Tfsync", DOTL => Fsync {
            /// Open fid.
            fid: u32,
            /// Non-zero for fdatasync.
            datasync: u32,
        },
        /// Tlock (.L): `fid[4] type[1] flags[4] start[8] length[8] proc_id[4]
        /// client_id[s]`.
        TLOCK = 52, "Tlock", DOTL => Lock {
            /// Open fid.
            fid: u32,
            /// The lock request.
            lock: Flock,
        },
        /// Tgetlock (.L): `fid[4] type[1] start[8] length[8] proc_id[4]
        /// client_id[s]`.
        TGETLOCK = 54, "Tgetlock", DOTL => Getlock {
            /// Open fid.
            fid: u32,
            /// The lock to test.
            lock: Getlock,
        },
        /// Tlink (.L): `dfid[4] fid[4] name[s]`.
        TLINK = 70, "Tlink", DOTL => Link {
            /// Directory for the new link.
            dfid: u32,
            /// Existing file.
            fid: u32,
            /// Link name.
            name: P9String,
        },
        /// Tmkdir (.L): `dfid[4] name[s] mode[4] gid[4]`.
        TMKDIR = 72, "Tmkdir", DOTL => Mkdir {
            /// Parent directory.
            dfid: u32,
            /// Directory name.
            name: P9String,
            /// Permission bits.
            mode: u32,
            /// Group.
            gid: u32,
        },
        /// Trenameat (.L): `olddirfid[4] oldname[s] newdirfid[4] newname[s]`.
        TRENAMEAT = 74, "Trenameat", DOTL => Renameat {
            /// Source directory.
            olddirfid: u32,
            /// Source name.
            oldname: P9String,
            /// Target directory.
            newdirfid: u32,
            /// Target name.
            newname: P9String,
        },
        /// Tunlinkat (.L): `dirfid[4] name[s] flags[4]`.
        TUNLINKAT = 76, "Tunlinkat", DOTL => Unlinkat {
            /// Directory.
            dirfid: u32,
            /// Name to remove.
            name: P9String,
            /// [`crate::consts::AT_REMOVEDIR`] or 0.
            flags: u32,
        },
        /// Tversion: `msize[4] version[s]`.
        TVERSION = 100, "Tversion", ALWAYS => Version {
            /// Proposed msize.
            msize: u32,
            /// Proposed version (`"9P2000.L"`, `"9P2000.u"`).
            version: P9String,
        },
        /// Tauth (.u/.L): `afid[4] uname[s] aname[s] n_uname[4]`.
        TAUTH = 102, "Tauth", BOTH => Auth {
            /// New auth fid.
            afid: u32,
            /// User name.
            uname: P9String,
            /// Tree to attach.
            aname: P9String,
            /// Numeric user id.
            n_uname: u32,
        },
        /// Tattach (.u/.L): `fid[4] afid[4] uname[s] aname[s] n_uname[4]`.
        TATTACH = 104, "Tattach", BOTH => Attach {
            /// New root fid.
            fid: u32,
            /// Auth fid or [`crate::consts::NOFID`].
            afid: u32,
            /// User name.
            uname: P9String,
            /// Tree to attach.
            aname: P9String,
            /// Numeric user id (9p.c reads it in both dialects).
            n_uname: u32,
        },
        /// Tflush: `oldtag[2]`.
        TFLUSH = 108, "Tflush", BOTH => Flush {
            /// Tag of the request to cancel.
            oldtag: u16,
        },
        /// Twalk: `fid[4] newfid[4] nwname[2] nwname*(wname[s])`, at most 16
        /// names.
        TWALK = 110, "Twalk", BOTH => Walk {
            /// Starting fid.
            fid: u32,
            /// New fid (may equal `fid`).
            newfid: u32,
            /// Path elements.
            wnames: Vec<P9String>,
        },
        /// Topen (.u): `fid[4] mode[1]`.
        TOPEN = 112, "Topen", DOTU => Open {
            /// The fid.
            fid: u32,
            /// [`crate::consts::omode`] byte.
            mode: u8,
        },
        /// Tcreate (.u): `fid[4] name[s] perm[4] mode[1] extension[s]`.
        TCREATE = 114, "Tcreate", DOTU => Create {
            /// Directory fid; becomes the new file's fid.
            fid: u32,
            /// New name.
            name: P9String,
            /// Permissions and [`crate::consts::dm`] type bits.
            perm: u32,
            /// [`crate::consts::omode`] byte.
            mode: u8,
            /// Symlink target, `"c|b major minor"`, or link source fid.
            extension: P9String,
        },
        /// Tread: `fid[4] offset[8] count[4]`.
        TREAD = 116, "Tread", BOTH => Read {
            /// Open fid.
            fid: u32,
            /// File offset.
            offset: u64,
            /// Maximum bytes (at most msize − 11).
            count: u32,
        },
        /// Twrite: `fid[4] offset[8] count[4] data[count]`.
        TWRITE = 118, "Twrite", BOTH => Write {
            /// Open fid.
            fid: u32,
            /// File offset.
            offset: u64,
            /// The payload, borrowed from the request segments (count is its
            /// length).
            data: SgView<'a>,
        },
        /// Tclunk: `fid[4]`.
        TCLUNK = 120, "Tclunk", BOTH => Clunk {
            /// Fid to forget.
            fid: u32,
        },
        /// Tremove: `fid[4]`.
        TREMOVE = 122, "Tremove", BOTH => Remove {
            /// Fid to remove (and clunk).
            fid: u32,
        },
        /// Tstat (.u): `fid[4]`.
        TSTAT = 124, "Tstat", DOTU => Stat {
            /// The file.
            fid: u32,
        },
        /// Twstat (.u): `fid[4] n[2] stat[n]`.  The `n` field is ignored on
        /// decode (9p.c and Linux both discard it) and written as the stat's
        /// length on encode.
        TWSTAT = 126, "Twstat", DOTU => Wstat {
            /// The file.
            fid: u32,
            /// New values; all-ones/empty fields mean "don't touch".
            stat: Stat => PrefixedStat,
        },
    }
}

impl Tmessage<'_> {
    /// Limits that depend on the session: a Tread count whose reply could
    /// not fit in msize.  (9p.c clamps a Treaddir count above msize - 11
    /// instead, a "bad client" warning; the reply writer caps it the same
    /// way.)
    fn check_limits(&self, msize: u32) -> Result<(), DecodeErrorKind> {
        match *self {
            Tmessage::Read { count, .. } => check_count(count, msize),
            _ => Ok(()),
        }
    }

    /// The argument checks 9p.c makes after decoding and before looking up
    /// any fid, returning the errno it would reply with:
    ///
    /// * name rules ([`crate::validate`]): Twalk elements (in order),
    ///   Tlcreate/Tcreate/Tsymlink/Tmknod/Tmkdir/Tlink names, Tunlinkat,
    ///   Trename, Trenameat, and a non-empty Twstat name;
    /// * Tunlinkat flags other than `AT_REMOVEDIR`: `EINVAL`;
    /// * Txattrcreate flags other than CREATE/REPLACE: `EINVAL`, then a
    ///   size over [`XATTR_SIZE_MAX`]: `E2BIG`;
    /// * Tlock flags other than `BLOCK`: `EINVAL`.
    ///
    /// 9p.c checks the Twstat name only after applying the mode, times and
    /// owner changes; checking it up front refuses the whole request
    /// instead of half-applying it.
    pub fn check_args(&self) -> Result<(), Errno> {
        use crate::consts::{lock_flags, xattr_flags, AT_REMOVEDIR};
        match self {
            Tmessage::Walk { wnames, .. } => {
                wnames.iter().try_for_each(|w| NameRule::Walk.check(w))
            }
            Tmessage::Lcreate { name, .. }
            | Tmessage::Create { name, .. }
            | Tmessage::Symlink { name, .. }
            | Tmessage::Mknod { name, .. }
            | Tmessage::Mkdir { name, .. }
            | Tmessage::Link { name, .. } => NameRule::Create.check(name),
            Tmessage::Unlinkat { name, flags, .. } => {
                NameRule::Unlink.check(name)?;
                if flags & !AT_REMOVEDIR != 0 {
                    return Err(errno::EINVAL);
                }
                Ok(())
            }
            Tmessage::Rename { name, .. } => NameRule::Rename.check(name),
            Tmessage::Renameat {
                oldname, newname, ..
            } => check_renameat(oldname, newname),
            Tmessage::Wstat { stat, .. } if !stat.name.is_empty() => {
                NameRule::Rename.check(&stat.name)
            }
            Tmessage::Xattrcreate {
                attr_size, flags, ..
            } => {
                if flags & !(xattr_flags::CREATE | xattr_flags::REPLACE) != 0 {
                    return Err(errno::EINVAL);
                }
                if *attr_size > XATTR_SIZE_MAX {
                    return Err(errno::E2BIG);
                }
                Ok(())
            }
            Tmessage::Lock { lock, .. } if lock.flags & !lock_flags::BLOCK != 0 => {
                Err(errno::EINVAL)
            }
            _ => Ok(()),
        }
    }
}

fn check_count(count: u32, msize: u32) -> Result<(), DecodeErrorKind> {
    let max = max_read_count(msize);
    if count > max {
        return Err(DecodeErrorKind::CountTooLarge { count, max });
    }
    Ok(())
}
