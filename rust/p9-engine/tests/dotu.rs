// SPDX-License-Identifier: GPL-2.0-or-later
//! 9P2000.u end to end through the engine and the native backend: Topen,
//! Tcreate of every kind of file, Tstat/Twstat, directory reads returning
//! stat structures, Tread/Twrite, Tremove, and the Rerror format.  Each
//! expectation names the `hw/9pfs/9p.c` (QEMU 10.0.13) code it follows.

mod common;

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs::FileType;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::{host_statfs, iounit_for, is_root, lstat, qid_version, TempDir, TestClient, MSIZE};
use p9_engine::Config;
use p9_wire::consts::{dm, omode, qid_type, NOFID};
use p9_wire::errno::{self, Errno};
use p9_wire::{P9String, Proto, Qid, Rmessage, SetAttr, Stat, Tmessage};

/// An export on tmpfs, a server with 4 threads, and a client in a
/// 9P2000.u session attached as root.
struct Env {
    client: TestClient,
    root: u32,
    root_qid: Qid,
    dir: TempDir,
}

impl Env {
    fn new(name: &str) -> Env {
        let dir = TempDir::new(name);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let client = common::serve(&dir, Config::default(), 4);
        let (root, root_qid) = common::session(&client, "9P2000.u");
        assert_eq!(client.proto(), Proto::DotU);
        Env {
            client,
            root,
            root_qid,
            dir,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Walk from the root through all of `names` to a new fid.
    fn walk(&self, names: &[&str]) -> u32 {
        let (fid, qids) = self.client.walk_new(self.root, names).unwrap();
        assert_eq!(qids.len(), names.len(), "partial walk to {names:?}");
        fid
    }

    /// A new fid on the root directory (for Tcreate).
    fn dirfid(&self) -> u32 {
        self.walk(&[])
    }

    /// Send `msg` and return the Rerror's errno and text (panics on any
    /// other reply).
    fn rerror(&self, msg: &Tmessage<'_>) -> (Errno, String) {
        const TAG: u16 = 0x0909;
        let reply = self
            .client
            .raw(msg.encode_to_vec(TAG).unwrap())
            .unwrap_or_else(|| panic!("no reply to {}", msg.name()));
        match Rmessage::decode_slice(&reply, Proto::DotU, MSIZE) {
            Ok((TAG, Rmessage::Error { ename, errno })) => {
                (errno, ename.to_string_lossy().into_owned())
            }
            other => panic!(
                "{}: expected Rerror for tag {TAG}, got {other:?}",
                msg.name()
            ),
        }
    }
}

/// 9p.c `get_iounit`/`blksize_to_iounit`: the largest multiple of the file
/// system's block size in `msize - P9_IOHDRSZ`, else that room.
fn expected_iounit(dir: &Path) -> u32 {
    iounit_for(MSIZE, host_statfs(dir).f_bsize as u64)
}

fn names(stats: &[Stat]) -> Vec<String> {
    stats
        .iter()
        .map(|s| s.name.to_string_lossy().into_owned())
        .collect()
}

// ---------------------------------------------------------------------------
// Session, Topen
// ---------------------------------------------------------------------------

#[test]
fn attach_gives_the_root_directory() {
    let env = Env::new("attach");
    let md = lstat(&env.dir);
    assert_eq!(env.root_qid.typ, qid_type::DIR);
    assert_eq!(
        env.root_qid.path,
        md.ino(),
        "qid path (multidevs=warn: ino)"
    );
    let st = env.client.stat(env.root).unwrap();
    assert_eq!(st.qid, env.root_qid);
    assert_eq!(st.mode, dm::DIR | 0o755);
    assert_eq!(
        st.extension.as_bytes(),
        format!("HARDLINKCOUNT {}", md.nlink()).as_bytes()
    );
    assert_eq!((st.n_uid, st.n_gid, st.n_muid), (md.uid(), md.gid(), 0));
    // 9p.c never fills the name strings.
    assert!(st.uid.is_empty() && st.gid.is_empty() && st.muid.is_empty());
}

/// 9p.c `v9fs_stat` names the file `g_path_get_basename(fidp->path)`, and
/// the local backend's root path is "." (`local_name_to_path`).
#[test]
fn stat_of_root_is_named_dot() {
    let env = Env::new("rootname");
    let st = env.client.stat(env.root).unwrap();
    assert_eq!(st.name.as_bytes(), b".");
}

#[test]
fn open_modes_read_write_rdwr_trunc() {
    let env = Env::new("open");
    std::fs::write(env.path("f"), b"0123456789").unwrap();
    let iounit = expected_iounit(&env.dir);

    // OREAD: reads work, writes fail on the O_RDONLY descriptor.
    let f = env.walk(&["f"]);
    let qid = env
        .client
        .walk(env.root, env.client.alloc_fid(), &["f"])
        .unwrap()[0];
    let (oqid, ounit) = env.client.open(f, omode::READ).unwrap();
    assert_eq!(oqid, qid);
    assert_eq!(oqid.typ, qid_type::FILE);
    assert_eq!(ounit, iounit, "Ropen iounit (9p.c get_iounit)");
    assert_eq!(env.client.read(f, 0, 100).unwrap(), b"0123456789");
    assert_eq!(env.client.read(f, 4, 3).unwrap(), b"456");
    assert_eq!(env.client.write(f, 0, b"x"), Err(errno::EBADF));
    // A second Topen of an open fid: 9p.c "fid_type != P9_FID_NONE".
    assert_eq!(env.client.open(f, omode::READ), Err(errno::EINVAL));
    env.client.clunk(f).unwrap();

    // OWRITE: writes work, reads fail.
    let f = env.walk(&["f"]);
    env.client.open(f, omode::WRITE).unwrap();
    assert_eq!(env.client.write(f, 0, b"AB").unwrap(), 2);
    assert_eq!(env.client.read(f, 0, 10), Err(errno::EBADF));
    env.client.clunk(f).unwrap();
    assert_eq!(std::fs::read(env.path("f")).unwrap(), b"AB23456789");

    // ORDWR.
    let f = env.walk(&["f"]);
    env.client.open(f, omode::RDWR).unwrap();
    assert_eq!(env.client.write(f, 8, b"yz!").unwrap(), 3);
    assert_eq!(env.client.read(f, 0, 100).unwrap(), b"AB234567yz!");
    env.client.clunk(f).unwrap();

    // OWRITE|OTRUNC truncates at open.
    let f = env.walk(&["f"]);
    env.client.open(f, omode::WRITE | omode::TRUNC).unwrap();
    assert_eq!(lstat(&env.path("f")).len(), 0);
    env.client.clunk(f).unwrap();

    // OWRITE|OAPPEND: O_APPEND, so writes land at the end whatever the
    // offset (pwrite on an O_APPEND descriptor, as 9p.c's pwritev).
    std::fs::write(env.path("f"), b"abc").unwrap();
    let f = env.walk(&["f"]);
    env.client.open(f, omode::WRITE | omode::APPEND).unwrap();
    assert_eq!(env.client.write(f, 0, b"XY").unwrap(), 2);
    env.client.clunk(f).unwrap();
    assert_eq!(std::fs::read(env.path("f")).unwrap(), b"abcXY");

    // OEXEC opens read-only (omode_to_uflags).
    std::fs::write(env.path("f"), b"abc").unwrap();
    let f = env.walk(&["f"]);
    env.client.open(f, omode::EXEC).unwrap();
    assert_eq!(env.client.read(f, 0, 10).unwrap(), b"abc");
    assert_eq!(env.client.write(f, 0, b"x"), Err(errno::EBADF));
    env.client.clunk(f).unwrap();
}

/// 9p.c `v9fs_open` opens a directory whatever the mode, with iounit 0.
#[test]
fn open_directory_any_mode_iounit_zero() {
    let env = Env::new("opendir");
    std::fs::create_dir(env.path("d")).unwrap();
    for mode in [omode::READ, omode::WRITE, omode::RDWR] {
        let d = env.walk(&["d"]);
        let (qid, iounit) = env.client.open(d, mode).unwrap();
        assert_eq!(qid.typ, qid_type::DIR);
        assert_eq!(iounit, 0);
        // Twrite on a directory fid: 9p.c v9fs_write only writes
        // P9_FID_FILE/XATTR fids, anything else is EINVAL.
        assert_eq!(env.client.write(d, 0, b"x"), Err(errno::EINVAL));
        env.client.clunk(d).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Tcreate
// ---------------------------------------------------------------------------

#[test]
fn create_regular_file_opens_the_fid() {
    let env = Env::new("create");
    let d = env.dirfid();
    let (qid, iounit) = env.client.create(d, "new", 0o640, omode::RDWR, "").unwrap();
    assert_eq!(qid.typ, qid_type::FILE);
    assert_eq!(iounit, expected_iounit(&env.dir));
    // The fid is now the new file, open for read/write.
    assert_eq!(env.client.write(d, 0, b"hello").unwrap(), 5);
    assert_eq!(env.client.read(d, 0, 100).unwrap(), b"hello");
    let md = lstat(&env.path("new"));
    assert!(md.is_file());
    assert_eq!(md.mode() & 0o7777, 0o640);
    assert_eq!(md.ino(), qid.path);
    let st = env.client.stat(d).unwrap();
    assert_eq!(st.qid.path, qid.path);
    assert_eq!(st.name.as_bytes(), b"new");
    assert_eq!(st.mode, 0o640);
    assert_eq!(st.length, 5);
    assert_eq!(st.extension.as_bytes(), b"HARDLINKCOUNT 1");
    assert_eq!((st.n_uid, st.n_gid), (0, md.gid()));
    // Tcreate on an fid that is open: EINVAL (fid_type != P9_FID_NONE).
    assert_eq!(
        env.client.create(d, "other", 0o644, omode::RDWR, ""),
        Err(errno::EINVAL)
    );
    env.client.clunk(d).unwrap();
    assert_eq!(std::fs::read(env.path("new")).unwrap(), b"hello");
}

/// 9p.c opens an existing file with `omode_to_uflags(mode) | O_CREAT`:
/// without OEXCL it succeeds on the existing file, with it the host says
/// EEXIST.
#[test]
fn create_existing_file_with_and_without_excl() {
    let env = Env::new("createx");
    std::fs::write(env.path("e"), b"keep").unwrap();
    let d = env.dirfid();
    assert_eq!(
        env.client
            .create(d, "e", 0o644, omode::RDWR | omode::EXCL, ""),
        Err(errno::EEXIST)
    );
    let (qid, _) = env.client.create(d, "e", 0o644, omode::READ, "").unwrap();
    assert_eq!(qid.path, lstat(&env.path("e")).ino());
    assert_eq!(env.client.read(d, 0, 10).unwrap(), b"keep");
    env.client.clunk(d).unwrap();
}

#[test]
fn create_directory() {
    let env = Env::new("mkdir");
    let d = env.dirfid();
    let (qid, iounit) = env
        .client
        .create(d, "sub", dm::DIR | 0o750, omode::READ, "")
        .unwrap();
    assert_eq!(qid.typ, qid_type::DIR);
    assert_eq!(iounit, expected_iounit(&env.dir));
    let md = lstat(&env.path("sub"));
    assert!(md.is_dir());
    assert_eq!(md.mode() & 0o7777, 0o750);
    assert_eq!(qid.path, md.ino());
    // The fid is the new directory, opened (P9_FID_DIR): it can be read.
    let entries = env.client.read_dir_u_all(d).unwrap();
    let got: BTreeSet<String> = names(&entries).into_iter().collect();
    assert_eq!(got, BTreeSet::from([".".into(), "..".into()]));
    let st = env.client.stat(d).unwrap();
    assert_eq!(st.mode, dm::DIR | 0o750);
    assert_eq!(st.name.as_bytes(), b"sub");
    assert_eq!(st.extension.as_bytes(), b"HARDLINKCOUNT 2");
    env.client.clunk(d).unwrap();
}

#[test]
fn create_symlink() {
    let env = Env::new("symlink");
    let d = env.dirfid();
    let (qid, _) = env
        .client
        .create(d, "ln", dm::SYMLINK | 0o777, omode::READ, "some/target")
        .unwrap();
    assert_eq!(qid.typ, qid_type::SYMLINK);
    let p = env.path("ln");
    assert!(lstat(&p).file_type().is_symlink());
    assert_eq!(std::fs::read_link(&p).unwrap(), Path::new("some/target"));
    assert_eq!(qid.path, lstat(&p).ino());
    // The fid is the link, not opened: Tread is EINVAL (9p.c: not a
    // FILE/DIR/XATTR fid).
    assert_eq!(env.client.read(d, 0, 10), Err(errno::EINVAL));
    let st = env.client.stat(d).unwrap();
    assert_eq!(st.mode & dm::SYMLINK, dm::SYMLINK);
    assert_eq!(st.mode & dm::TYPE_BITS, dm::SYMLINK);
    assert_eq!(st.extension.as_bytes(), b"some/target");
    assert_eq!(st.name.as_bytes(), b"ln");
    assert_eq!(st.length, "some/target".len() as u64);
    env.client.clunk(d).unwrap();
}

#[test]
fn create_hard_link() {
    let env = Env::new("link");
    std::fs::write(env.path("orig"), b"data").unwrap();
    let orig = env.walk(&["orig"]);
    let d = env.dirfid();
    let (qid, _) = env
        .client
        .create(d, "hl", dm::LINK | 0o644, omode::READ, orig.to_string())
        .unwrap();
    let (a, b) = (lstat(&env.path("orig")), lstat(&env.path("hl")));
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
    assert_eq!(qid.path, a.ino());
    assert_eq!(qid.typ, qid_type::FILE);
    // The fid is now "hl", not opened.
    let st = env.client.stat(d).unwrap();
    assert_eq!(st.name.as_bytes(), b"hl");
    assert_eq!(st.extension.as_bytes(), b"HARDLINKCOUNT 2");
    assert_eq!(env.client.read(d, 0, 4), Err(errno::EINVAL));
    let st = env.client.stat(orig).unwrap();
    assert_eq!(st.extension.as_bytes(), b"HARDLINKCOUNT 2");
}

/// 9p.c `v9fs_create`, DMLINK: `ofidp = get_fid(pdu, atoi(extension))`,
/// NULL -> `-EINVAL`.
#[test]
fn create_hard_link_to_unknown_fid_is_einval() {
    let env = Env::new("linkbad");
    let d = env.dirfid();
    assert_eq!(
        env.client
            .create(d, "hl", dm::LINK | 0o644, omode::READ, "987654"),
        Err(errno::EINVAL)
    );
    assert!(std::fs::symlink_metadata(env.path("hl")).is_err());
}

/// Tcreate of `name` with `dm_type | perm` and no extension makes a host
/// file that `is_kind`, with `perm`; Tstat of the fid shows that mode and
/// no extension (9p.c `stat_to_v9stat`: none for FIFOs and sockets).
fn assert_creates_special(
    test: &str,
    name: &str,
    dm_type: u32,
    perm: u32,
    is_kind: fn(&FileType) -> bool,
) {
    let env = Env::new(test);
    let d = env.dirfid();
    let (qid, _) = env
        .client
        .create(d, name, dm_type | perm, omode::READ, "")
        .unwrap();
    let md = lstat(&env.path(name));
    assert!(is_kind(&md.file_type()));
    assert_eq!(md.mode() & 0o7777, perm);
    assert_eq!(qid.path, md.ino());
    let st = env.client.stat(d).unwrap();
    assert_eq!(st.mode, dm_type | perm);
    assert!(st.extension.is_empty());
}

#[test]
fn create_named_pipe() {
    assert_creates_special("fifo", "p", dm::NAMED_PIPE, 0o600, FileType::is_fifo);
}

/// 9p.c `v9fs_create`, DMSOCKET: `mknod(S_IFSOCK | (perm & 0777))`.
#[test]
fn create_socket() {
    assert_creates_special("sock", "s", dm::SOCKET, 0o640, FileType::is_socket);
}

#[test]
fn create_char_device() {
    if !is_root() {
        eprintln!("create_char_device: skipped, not root");
        return;
    }
    let env = Env::new("chr");
    let d = env.dirfid();
    let (qid, _) = env
        .client
        .create(d, "null", dm::DEVICE | 0o600, omode::READ, "c 1 3")
        .unwrap();
    let md = lstat(&env.path("null"));
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &md.file_type()
    ));
    assert_eq!(md.rdev(), libc::makedev(1, 3));
    assert_eq!(md.mode() & 0o7777, 0o600);
    assert_eq!(qid.path, md.ino());
    let st = env.client.stat(d).unwrap();
    assert_eq!(st.mode, dm::DEVICE | 0o600);
    assert_eq!(st.extension.as_bytes(), b"c 1 3");
    // A block device description gives "b".
    let d2 = env.dirfid();
    env.client
        .create(d2, "blk", dm::DEVICE | 0o600, omode::READ, "b 7 200")
        .unwrap();
    let md = lstat(&env.path("blk"));
    assert!(std::os::unix::fs::FileTypeExt::is_block_device(
        &md.file_type()
    ));
    assert_eq!(md.rdev(), libc::makedev(7, 200));
    assert_eq!(
        env.client.stat(d2).unwrap().extension.as_bytes(),
        b"b 7 200"
    );
}

/// 9p.c `v9fs_create`: a device type letter other than 'c'/'b' is EIO.
#[test]
fn create_device_bad_type_is_eio() {
    let env = Env::new("chrbad");
    let d = env.dirfid();
    assert_eq!(
        env.client
            .create(d, "x", dm::DEVICE | 0o600, omode::READ, "x 1 3"),
        Err(errno::EIO)
    );
    assert!(std::fs::symlink_metadata(env.path("x")).is_err());
}

/// Passthrough: the new file belongs to the attaching user (`fidp->uid`).
#[test]
fn create_as_other_user_sets_owner() {
    if !is_root() {
        eprintln!("create_as_other_user_sets_owner: skipped, not root");
        return;
    }
    let env = Env::new("owner");
    let uroot = env.client.alloc_fid();
    env.client.attach(uroot, NOFID, "u", "", 1000).unwrap();
    let d = env.client.alloc_fid();
    env.client.clone_fid(uroot, d).unwrap();
    env.client.create(d, "f", 0o644, omode::RDWR, "").unwrap();
    assert_eq!(lstat(&env.path("f")).uid(), 1000);
    assert_eq!(env.client.stat(d).unwrap().n_uid, 1000);
    let d2 = env.client.alloc_fid();
    env.client.clone_fid(uroot, d2).unwrap();
    env.client
        .create(d2, "dir", dm::DIR | 0o755, omode::READ, "")
        .unwrap();
    assert_eq!(lstat(&env.path("dir")).uid(), 1000);
}

// ---------------------------------------------------------------------------
// Tstat
// ---------------------------------------------------------------------------

#[test]
fn stat_of_a_file() {
    let env = Env::new("stat");
    let p = env.path("f");
    std::fs::write(&p, vec![7u8; 1234]).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o4751)).unwrap();
    std::fs::hard_link(&p, env.path("f2")).unwrap();
    let times = [
        libc::timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: 1_200_000_000,
            tv_nsec: 0,
        },
    ];
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is NUL-terminated and `times` holds two timespecs.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
    assert_eq!(r, 0);
    let f = env.walk(&["f"]);
    let md = lstat(&p);
    let st = env.client.stat(f).unwrap();
    assert_eq!(st.name.as_bytes(), b"f");
    assert_eq!(st.length, 1234);
    assert_eq!(st.mode, dm::SETUID | 0o751);
    assert_eq!((st.atime, st.mtime), (1_000_000_000, 1_200_000_000));
    assert_eq!(st.extension.as_bytes(), b"HARDLINKCOUNT 2");
    assert_eq!((st.n_uid, st.n_gid, st.n_muid), (md.uid(), md.gid(), 0));
    assert_eq!((st.typ, st.dev), (0, 0));
    assert_eq!(st.qid.path, md.ino());
    assert_eq!(st.qid.typ, qid_type::FILE);
    assert_eq!(st.qid.version, qid_version(&md));
}

#[test]
fn stat_of_a_directory_counts_links() {
    let env = Env::new("statdir");
    std::fs::create_dir_all(env.path("d/a")).unwrap();
    std::fs::create_dir_all(env.path("d/b")).unwrap();
    std::fs::set_permissions(env.path("d"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let d = env.walk(&["d"]);
    let md = lstat(&env.path("d"));
    let st = env.client.stat(d).unwrap();
    assert_eq!(st.mode, dm::DIR | dm::SETVTX | 0o777);
    assert_eq!(md.nlink(), 4);
    assert_eq!(st.extension.as_bytes(), b"HARDLINKCOUNT 4");
    assert_eq!(st.name.as_bytes(), b"d");
}

#[test]
fn stat_of_a_symlink_has_its_target() {
    let env = Env::new("statlink");
    std::os::unix::fs::symlink("/etc/passwd", env.path("l")).unwrap();
    let l = env.walk(&["l"]);
    let st = env.client.stat(l).unwrap();
    assert_eq!(st.mode, dm::SYMLINK | 0o777);
    assert_eq!(st.extension.as_bytes(), b"/etc/passwd");
    assert_eq!(st.qid.typ, qid_type::SYMLINK);
    assert_eq!(st.length, "/etc/passwd".len() as u64);
}

// ---------------------------------------------------------------------------
// Twstat
// ---------------------------------------------------------------------------

#[test]
fn wstat_chmod_and_type_change() {
    let env = Env::new("chmod");
    std::fs::write(env.path("f"), b"x").unwrap();
    std::fs::create_dir(env.path("d")).unwrap();
    let f = env.walk(&["f"]);
    let mut s = Stat::dont_touch();
    s.mode = 0o600;
    env.client.wstat(f, &s).unwrap();
    assert_eq!(lstat(&env.path("f")).mode() & 0o7777, 0o600);
    s.mode = dm::SETGID | 0o711;
    env.client.wstat(f, &s).unwrap();
    assert_eq!(lstat(&env.path("f")).mode() & 0o7777, 0o2711);
    // Changing the type bits: 9p.c "Attempting to change the type" -> EIO.
    s.mode = dm::DIR | 0o700;
    assert_eq!(env.client.wstat(f, &s), Err(errno::EIO));
    s.mode = dm::SYMLINK | 0o700;
    assert_eq!(env.client.wstat(f, &s), Err(errno::EIO));
    assert_eq!(lstat(&env.path("f")).mode() & 0o7777, 0o2711);
    assert!(lstat(&env.path("f")).is_file());
    let d = env.walk(&["d"]);
    s.mode = 0o700;
    assert_eq!(env.client.wstat(d, &s), Err(errno::EIO));
    s.mode = dm::DIR | 0o700;
    env.client.wstat(d, &s).unwrap();
    assert_eq!(lstat(&env.path("d")).mode() & 0o7777, 0o700);
}

#[test]
fn wstat_times() {
    let env = Env::new("times");
    std::fs::write(env.path("f"), b"x").unwrap();
    let f = env.walk(&["f"]);
    let mut s = Stat::dont_touch();
    s.atime = 1_000_000_000;
    s.mtime = 1_100_000_000;
    env.client.wstat(f, &s).unwrap();
    let md = lstat(&env.path("f"));
    assert_eq!((md.atime(), md.mtime()), (1_000_000_000, 1_100_000_000));
    // Only mtime: atime is UTIME_OMIT.
    let mut s = Stat::dont_touch();
    s.mtime = 1_300_000_000;
    env.client.wstat(f, &s).unwrap();
    let md = lstat(&env.path("f"));
    assert_eq!((md.atime(), md.mtime()), (1_000_000_000, 1_300_000_000));
    let st = env.client.stat(f).unwrap();
    assert_eq!((st.atime, st.mtime), (1_000_000_000, 1_300_000_000));
}

#[test]
fn wstat_length_truncates_and_extends() {
    let env = Env::new("length");
    std::fs::write(env.path("f"), b"0123456789").unwrap();
    let f = env.walk(&["f"]);
    let mut s = Stat::dont_touch();
    s.length = 3;
    env.client.wstat(f, &s).unwrap();
    assert_eq!(std::fs::read(env.path("f")).unwrap(), b"012");
    s.length = 100;
    env.client.wstat(f, &s).unwrap();
    assert_eq!(lstat(&env.path("f")).len(), 100);
    assert_eq!(env.client.stat(f).unwrap().length, 100);
}

#[test]
fn wstat_rename_within_the_directory() {
    let env = Env::new("rename");
    std::fs::create_dir(env.path("d")).unwrap();
    std::fs::write(env.path("d/old"), b"content").unwrap();
    let f = env.walk(&["d", "old"]);
    let mut s = Stat::dont_touch();
    s.name = P9String::from("new");
    env.client.wstat(f, &s).unwrap();
    assert!(std::fs::symlink_metadata(env.path("d/old")).is_err());
    assert_eq!(std::fs::read(env.path("d/new")).unwrap(), b"content");
    // The fid follows the file.
    assert_eq!(env.client.stat(f).unwrap().name.as_bytes(), b"new");
    env.client.open(f, omode::READ).unwrap();
    assert_eq!(env.client.read(f, 0, 100).unwrap(), b"content");
    // Bad names (9p.c: name_is_illegal -> ENOENT, "."/".." -> EISDIR).
    let g = env.walk(&["d", "new"]);
    for (name, want) in [
        ("a/b", errno::ENOENT),
        (".", errno::EISDIR),
        ("..", errno::EISDIR),
    ] {
        let mut s = Stat::dont_touch();
        s.name = P9String::from(name);
        assert_eq!(env.client.wstat(g, &s), Err(want), "rename to {name:?}");
    }
    assert_eq!(std::fs::read(env.path("d/new")).unwrap(), b"content");
    // Onto an existing name: renameat replaces it.
    std::fs::write(env.path("d/other"), b"replaced").unwrap();
    let mut s = Stat::dont_touch();
    s.name = P9String::from("other");
    env.client.wstat(g, &s).unwrap();
    assert!(std::fs::symlink_metadata(env.path("d/new")).is_err());
    assert_eq!(std::fs::read(env.path("d/other")).unwrap(), b"content");
    assert_eq!(env.client.read(f, 0, 100).unwrap(), b"content");
}

#[test]
fn wstat_owner() {
    if !is_root() {
        eprintln!("wstat_owner: skipped, not root");
        return;
    }
    let env = Env::new("chown");
    std::fs::write(env.path("f"), b"x").unwrap();
    let f = env.walk(&["f"]);
    let mut s = Stat::dont_touch();
    s.n_uid = 1234;
    s.n_gid = 4321;
    env.client.wstat(f, &s).unwrap();
    let md = lstat(&env.path("f"));
    assert_eq!((md.uid(), md.gid()), (1234, 4321));
    let mut s = Stat::dont_touch();
    s.n_gid = 77;
    env.client.wstat(f, &s).unwrap();
    let md = lstat(&env.path("f"));
    assert_eq!((md.uid(), md.gid()), (1234, 77));
}

/// 9p.c `v9fs_wstat`: a stat that changes nothing (`donttouch_stat`) means
/// fsync on an open fid and EBADF on one without a file handle.
#[test]
fn wstat_dont_touch_is_fsync() {
    let env = Env::new("fsync");
    std::fs::write(env.path("f"), b"x").unwrap();
    let f = env.walk(&["f"]);
    assert_eq!(env.client.wstat(f, &Stat::dont_touch()), Err(errno::EBADF));
    env.client.open(f, omode::RDWR).unwrap();
    env.client.wstat(f, &Stat::dont_touch()).unwrap();
    let before = lstat(&env.path("f"));
    assert_eq!(before.len(), 1);
    assert_eq!(before.mode() & 0o7777, 0o644);
}

/// 9p.c's `donttouch_stat` does not look at the extension: a don't-touch
/// stat with an extension is still the fsync case (EBADF when unopened).
#[test]
fn wstat_dont_touch_ignores_the_extension() {
    let env = Env::new("fsyncext");
    std::fs::write(env.path("f"), b"x").unwrap();
    let f = env.walk(&["f"]);
    let mut s = Stat::dont_touch();
    s.extension = P9String::from("c 1 3");
    assert_eq!(env.client.wstat(f, &s), Err(errno::EBADF));
    env.client.open(f, omode::READ).unwrap();
    env.client.wstat(f, &s).unwrap();
}

// ---------------------------------------------------------------------------
// Directory reads
// ---------------------------------------------------------------------------

#[test]
fn directory_read_returns_stats_of_every_entry() {
    let env = Env::new("readdir");
    std::fs::write(env.path("a"), b"12345").unwrap();
    std::fs::write(env.path("b"), b"").unwrap();
    std::fs::create_dir(env.path("sub")).unwrap();
    std::os::unix::fs::symlink("a", env.path("ln")).unwrap();
    let d = env.walk(&[]);
    env.client.open(d, omode::READ).unwrap();
    let stats = env.client.read_dir_u_all(d).unwrap();
    let got: BTreeSet<String> = names(&stats).into_iter().collect();
    let want: BTreeSet<String> = [".", "..", "a", "b", "sub", "ln"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got, want);
    assert_eq!(stats.len(), want.len(), "duplicates in {:?}", names(&stats));
    for st in &stats {
        let name = st.name.to_string_lossy().into_owned();
        let host = if name == ".." {
            // ".." of the export root is the root itself (9p.c
            // local_name_to_path).
            env.dir.to_path_buf()
        } else {
            env.dir.join(&name)
        };
        let md = lstat(&host);
        assert_eq!(st.qid.path, md.ino(), "{name}: qid path");
        assert_eq!(st.length, md.size(), "{name}: length");
        match name.as_str() {
            "a" => {
                assert_eq!(st.mode, 0o644);
                assert_eq!(st.extension.as_bytes(), b"HARDLINKCOUNT 1");
                assert_eq!(st.qid.version, qid_version(&md));
            }
            "ln" => {
                assert_eq!(st.mode, dm::SYMLINK | 0o777);
                assert_eq!(st.extension.as_bytes(), b"a");
            }
            _ if md.is_dir() => {
                assert_eq!(st.mode & dm::DIR, dm::DIR, "{name}");
                assert_eq!(
                    st.extension.as_bytes(),
                    format!("HARDLINKCOUNT {}", md.nlink()).as_bytes(),
                    "{name}"
                );
            }
            _ => {}
        }
    }
}

/// 9p.c `v9fs_read` on a directory: offset 0 rewinds, any other offset
/// continues where the previous read stopped.
#[test]
fn directory_read_resumes_and_rewinds() {
    let env = Env::new("resume");
    for i in 0..20 {
        std::fs::write(env.path(&format!("file{i:02}")), b"").unwrap();
    }
    let d = env.walk(&[]);
    env.client.open(d, omode::READ).unwrap();
    // Room for a few entries only.
    let count = 300;
    let first = env.client.read(d, 0, count).unwrap();
    assert!(!first.is_empty() && first.len() <= count as usize);
    let first_names = names(
        &Stat::iter(p9_wire::SgView::from_slice(&first))
            .collect::<Result<Vec<_>, _>>()
            .unwrap(),
    );
    assert!(first_names.len() >= 2, "{first_names:?}");
    let second = env.client.read_dir_u(d, first.len() as u64, count).unwrap();
    let second_names = names(&second);
    assert!(!second_names.is_empty());
    for n in &second_names {
        assert!(!first_names.contains(n), "{n} returned twice");
    }
    // Offset 0 again: from the start.
    let again = env.client.read(d, 0, count).unwrap();
    assert_eq!(again, first);
}

/// Small counts paginate over 300 entries without losing or repeating any.
#[test]
fn directory_read_paginates_300_entries() {
    let env = Env::new("paginate");
    for i in 0..300 {
        std::fs::write(env.path(&format!("entry-{i:03}")), b"").unwrap();
    }
    let mut want: BTreeSet<String> = (0..300).map(|i| format!("entry-{i:03}")).collect();
    want.insert(".".into());
    want.insert("..".into());
    for count in [90u32, 200, 1000, 65536 - 11] {
        let d = env.walk(&[]);
        env.client.open(d, omode::READ).unwrap();
        let mut all = Vec::new();
        let mut offset = 0u64;
        let mut reads = 0;
        loop {
            let data = env.client.read(d, offset, count).unwrap();
            assert!(data.len() <= count as usize, "reply over count {count}");
            if data.is_empty() {
                break;
            }
            reads += 1;
            assert!(reads < 1000, "count {count}: no end");
            offset += data.len() as u64;
            let stats: Vec<Stat> = Stat::iter(p9_wire::SgView::from_slice(&data))
                .collect::<Result<_, _>>()
                .unwrap();
            all.extend(names(&stats));
        }
        let got: BTreeSet<String> = all.iter().cloned().collect();
        assert_eq!(all.len(), got.len(), "count {count}: duplicates");
        assert_eq!(got, want, "count {count}");
        env.client.clunk(d).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Tread / Twrite / Tremove / Tclunk
// ---------------------------------------------------------------------------

#[test]
fn file_read_and_write() {
    let env = Env::new("rw");
    let d = env.dirfid();
    env.client.create(d, "f", 0o644, omode::RDWR, "").unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let chunk = 60_000;
    let mut off = 0;
    while off < data.len() {
        let end = (off + chunk).min(data.len());
        let n = env.client.write(d, off as u64, &data[off..end]).unwrap();
        assert_eq!(n as usize, end - off);
        off = end;
    }
    assert_eq!(std::fs::read(env.path("f")).unwrap(), data);
    let back = env.client.read_to_end(d, 0).unwrap();
    assert_eq!(back, data);
    assert_eq!(env.client.read(d, 199_990, 100).unwrap(), &data[199_990..]);
    assert!(env.client.read(d, 500_000, 100).unwrap().is_empty());
    // A write past the end leaves a hole.
    assert_eq!(env.client.write(d, 300_000, b"end").unwrap(), 3);
    assert_eq!(lstat(&env.path("f")).len(), 300_003);
    env.client.clunk(d).unwrap();
    // Tread on an unopened fid: 9p.c EINVAL.
    let f = env.walk(&["f"]);
    assert_eq!(env.client.read(f, 0, 10), Err(errno::EINVAL));
    assert_eq!(env.client.write(f, 0, b"x"), Err(errno::EINVAL));
}

#[test]
fn remove_and_clunk() {
    let env = Env::new("remove");
    std::fs::write(env.path("f"), b"x").unwrap();
    std::fs::create_dir(env.path("full")).unwrap();
    std::fs::write(env.path("full/inner"), b"x").unwrap();
    std::fs::create_dir(env.path("empty")).unwrap();

    let f = env.walk(&["f"]);
    env.client.remove(f).unwrap();
    assert!(std::fs::symlink_metadata(env.path("f")).is_err());
    // Tremove clunks the fid: a Tclunk now finds nothing (9p.c ENOENT).
    assert_eq!(env.client.clunk(f), Err(errno::ENOENT));

    // A failing Tremove still clunks the fid (9p.c "For TREMOVE we need
    // to clunk the fid even on failed remove").
    let full = env.walk(&["full"]);
    assert_eq!(env.client.remove(full), Err(errno::ENOTEMPTY));
    assert!(env.path("full/inner").exists());
    assert_eq!(env.client.clunk(full), Err(errno::ENOENT));

    let empty = env.walk(&["empty"]);
    env.client.remove(empty).unwrap();
    assert!(!env.path("empty").exists());

    // Unknown fid: 9p.c v9fs_remove EINVAL.
    assert_eq!(env.client.remove(4_000_000), Err(errno::EINVAL));

    // Tclunk twice.
    let g = env.walk(&["full"]);
    env.client.clunk(g).unwrap();
    assert_eq!(env.client.clunk(g), Err(errno::ENOENT));
    // The root fid is still usable.
    env.client.stat(env.root).unwrap();
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// 9p.c `pdu_complete` outside 9P2000.L: Rerror carrying `strerror(err)`
/// and the errno.
#[test]
fn errors_are_rerror_with_strerror_text() {
    let env = Env::new("rerror");
    let cases: Vec<(Tmessage<'_>, Errno)> = vec![
        (
            Tmessage::Walk {
                fid: env.root,
                newfid: 77,
                wnames: vec![P9String::from("missing")],
            },
            errno::ENOENT,
        ),
        (Tmessage::Stat { fid: 999_999 }, errno::ENOENT),
        (Tmessage::Clunk { fid: 999_999 }, errno::ENOENT),
        (
            Tmessage::Open {
                fid: env.root,
                mode: omode::READ,
            },
            errno::EINVAL,
        ),
    ];
    // Open the root once so the Topen above hits "already open".
    env.client.open(env.root, omode::READ).unwrap();
    for (msg, want) in &cases {
        let (got, ename) = env.rerror(msg);
        assert_eq!(got, *want, "{}", msg.name());
        assert!(!ename.is_empty(), "{}: empty ename", msg.name());
        assert_eq!(Some(ename.as_str()), want.message(), "{}", msg.name());
    }
    let (e, text) = env.rerror(&Tmessage::Walk {
        fid: env.root,
        newfid: 78,
        wnames: vec![P9String::from("missing")],
    });
    assert_eq!(
        (e, text.as_str()),
        (errno::ENOENT, "No such file or directory")
    );
}

/// The codec refuses 9P2000.L requests in a 9P2000.u session with
/// EOPNOTSUPP (documented deviation: 9p.c would run them), as Rerror.
#[test]
fn dotl_requests_are_refused_in_dotu() {
    let env = Env::new("dotl");
    let r = env.root;
    let msgs: Vec<Tmessage<'_>> = vec![
        Tmessage::Getattr {
            fid: r,
            request_mask: 0x7ff,
        },
        Tmessage::Lopen { fid: r, flags: 0 },
        Tmessage::Readdir {
            fid: r,
            offset: 0,
            count: 1000,
        },
        Tmessage::Statfs { fid: r },
        Tmessage::Mkdir {
            dfid: r,
            name: P9String::from("nope"),
            mode: 0o755,
            gid: 0,
        },
        Tmessage::Lcreate {
            fid: r,
            name: P9String::from("nope"),
            flags: 2,
            mode: 0o644,
            gid: 0,
        },
        Tmessage::Setattr {
            fid: r,
            attr: SetAttr::default(),
        },
        Tmessage::Xattrwalk {
            fid: r,
            newfid: 50,
            name: P9String::from(""),
        },
        Tmessage::Readlink { fid: r },
        Tmessage::Fsync {
            fid: r,
            datasync: 0,
        },
        Tmessage::Unlinkat {
            dirfid: r,
            name: P9String::from("x"),
            flags: 0,
        },
    ];
    for msg in &msgs {
        let (e, text) = env.rerror(msg);
        assert_eq!(e, errno::EOPNOTSUPP, "{}", msg.name());
        assert_eq!(text, "Operation not supported", "{}", msg.name());
    }
    assert!(std::fs::symlink_metadata(env.path("nope")).is_err());
    // The session is unharmed.
    assert_eq!(env.client.stat(r).unwrap().qid, env.root_qid);
}
