// SPDX-License-Identifier: GPL-2.0-or-later
//! Nothing outside the export is reachable through the engine: `..` stops
//! at the root, symbolic links (absolute, relative, `/proc` magic links)
//! are held as links and never followed, names with `/` are refused, and
//! device nodes and FIFOs are never opened on the host (CVE-2023-2861).
//!
//! Each export lives in `<base>/export`, next to `<base>/outside`, which
//! holds what a guest must never see or change.

mod common;

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{is_root, lstat, TempDir, TestClient, MSIZE};
use p9_client::Pending;
use p9_engine::Config;
use p9_native::testing::OpenWatch;
use p9_wire::consts::{dotl_open, getattr, omode, qid_type};
use p9_wire::errno::{self, Errno};
use p9_wire::{Qid, Rmessage, Tmessage};

struct Env {
    client: TestClient,
    root: u32,
    root_qid: Qid,
    dir: PathBuf,
    outside: PathBuf,
    base: TempDir,
}

impl Env {
    fn new(name: &str, version: &str) -> Env {
        Env::with_lookup(name, version, false)
    }

    /// [`Env::new`], the backend finding files with the per-component
    /// `openat` walk when `fallback` (as without `openat2`).
    fn with_lookup(name: &str, version: &str, fallback: bool) -> Env {
        let base = TempDir::new(name);
        let dir = base.join("export");
        let outside = base.join("outside");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"host secret").unwrap();
        std::fs::write(base.join("beside"), b"beside the export").unwrap();
        let mut backend = common::native_backend(&dir);
        backend.force_openat_fallback(fallback);
        let client = p9_client::Client::new(common::host(backend, Config::default(), 4));
        let (root, root_qid) = common::session(&client, version);
        Env {
            client,
            root,
            root_qid,
            dir,
            outside,
            base,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Twalk from the root to a new fid: the fid if every name was
    /// walked, and the qids.
    fn walk(&self, names: &[&[u8]]) -> Result<(Option<u32>, Vec<Qid>), Errno> {
        let fid = self.client.alloc_fid();
        let qids = self.client.walk(self.root, fid, names)?;
        Ok(((qids.len() == names.len()).then_some(fid), qids))
    }

    /// Walk all of `names` (which must succeed) to a new fid.
    fn fid(&self, names: &[&str]) -> u32 {
        let names: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
        match self.walk(&names) {
            Ok((Some(fid), _)) => fid,
            other => panic!("walk {names:?}: {other:?}"),
        }
    }

    /// The outside tree is untouched.
    fn assert_outside_intact(&self) {
        self.assert_outside_intact_but(&[]);
    }

    /// [`Env::assert_outside_intact`], `extra` entries of the base
    /// directory (made by the test) aside.
    fn assert_outside_intact_but(&self, extra: &[&str]) {
        assert_eq!(
            std::fs::read(self.outside.join("secret")).unwrap(),
            b"host secret"
        );
        let mut names: Vec<String> = std::fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["secret"]);
        let mut names: Vec<String> = std::fs::read_dir(&self.base)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.retain(|n| !extra.contains(&n.as_str()));
        names.sort();
        assert_eq!(names, ["beside", "export", "outside"]);
    }
}

// ---------------------------------------------------------------------------
// ..
// ---------------------------------------------------------------------------

/// 9p.c `v9fs_walk`: ".." at the export root stays at the root (its qid is
/// repeated).
#[test]
fn dotdot_at_the_root_stays_at_the_root() {
    let env = Env::new("dotdot", "9P2000.L");
    std::fs::create_dir(env.path("a")).unwrap();
    std::fs::write(env.path("marker"), b"inside").unwrap();
    let md = lstat(&env.dir);
    assert_eq!(env.root_qid.path, md.ino());
    // The root changed since Tattach (its qid version follows mtime).
    let root_qid = env.client.getattr(env.root, getattr::BASIC).unwrap().qid;
    assert_eq!(root_qid.path, env.root_qid.path);

    let (fid, qids) = env.walk(&[b".."]).unwrap();
    assert_eq!(qids, [root_qid]);
    let (fid3, qids) = env.walk(&[b"..", b"..", b".."]).unwrap();
    assert_eq!(qids, [root_qid; 3]);
    let a_qid = env.walk(&[b"a"]).unwrap().1[0];
    let (_, qids) = env.walk(&[b"a", b"..", b"..", b"..", b"a"]).unwrap();
    assert_eq!(qids, [a_qid, root_qid, root_qid, root_qid, a_qid]);
    // The fids are the export root: same inode, and listing it shows the
    // export's entries, not the host directory above.
    for f in [fid.unwrap(), fid3.unwrap()] {
        let st = env.client.getattr(f, getattr::BASIC).unwrap();
        assert_eq!((st.qid, st.mode & 0o170000), (root_qid, 0o040000));
        env.client
            .lopen(f, dotl_open::RDONLY | dotl_open::DIRECTORY)
            .unwrap();
        let mut names: Vec<String> = env
            .client
            .readdir_all(f)
            .unwrap()
            .iter()
            .map(|e| e.name.to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".", "..", "a", "marker"]);
    }
    // ".." from the root, then a name that exists only above the export.
    let r = env.walk(&[b"..", b"outside"]);
    assert_eq!(r.unwrap(), (None, vec![root_qid]));
    let r = env.walk(&[b"..", b"beside"]);
    assert_eq!(r.unwrap(), (None, vec![root_qid]));
    env.assert_outside_intact();
}

#[test]
fn dotdot_in_dotu_stays_at_the_root() {
    let env = Env::new("dotdotu", "9P2000.u");
    let (fid, qids) = env.walk(&[b"..", b".."]).unwrap();
    assert_eq!(qids, [env.root_qid; 2]);
    let fid = fid.unwrap();
    let st = env.client.stat(fid).unwrap();
    assert_eq!(st.qid, env.root_qid);
    env.client.open(fid, omode::READ).unwrap();
    let names: Vec<String> = env
        .client
        .read_dir_u_all(fid)
        .unwrap()
        .iter()
        .map(|s| s.name.to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n == "outside" || n == "beside"));
}

// ---------------------------------------------------------------------------
// Symbolic links
// ---------------------------------------------------------------------------

/// Links pointing outside, held as links: walking through them stops at
/// the link (ENOTDIR, as 9p.c's `openat_dir` with O_NOFOLLOW|O_DIRECTORY
/// on a link), opening them is ELOOP (O_NOFOLLOW), and their attributes
/// are the link's own.
#[test]
fn symlinks_out_of_the_export_are_not_followed() {
    let env = Env::new("links", "9P2000.L");
    let host_root = Node::open("/");
    let magic_fd = format!("/proc/self/fd/{}", host_root.0.as_raw_fd());
    let outside_secret = env.outside.join("secret");
    let targets: Vec<(&str, String)> = vec![
        ("abs", "/".into()),
        ("etc", "/etc".into()),
        ("up", "../../etc".into()),
        ("upsecret", "../outside/secret".into()),
        ("abssecret", outside_secret.to_string_lossy().into_owned()),
        ("outdir", env.outside.to_string_lossy().into_owned()),
        ("procroot", "/proc/self/root".into()),
        ("proccwd", "/proc/self/cwd".into()),
        ("procfd", magic_fd),
    ];
    for (name, target) in &targets {
        std::os::unix::fs::symlink(target, env.path(name)).unwrap();
    }
    let slash = lstat(Path::new("/"));
    for (name, target) in &targets {
        let (fid, qids) = env.walk(&[name.as_bytes()]).unwrap();
        let fid = fid.unwrap();
        assert_eq!(qids[0].typ, qid_type::SYMLINK, "{name}");
        assert_eq!(qids[0].path, lstat(&env.path(name)).ino(), "{name}");
        let st = env.client.getattr(fid, getattr::BASIC).unwrap();
        assert_eq!(st.mode & 0o170000, 0o120000, "{name}: not held as a link");
        assert!(
            !(st.qid.path == slash.ino() && st.mode & 0o170000 == 0o040000),
            "{name}: the host root"
        );
        assert_eq!(env.client.readlink(fid).unwrap(), target.as_bytes());
        // Through the link: the walk stops at it.
        for child in ["etc", "passwd", "secret", "outside", "export"] {
            assert_eq!(
                env.client.walk(fid, env.client.alloc_fid(), &[child]),
                Err(errno::ENOTDIR),
                "{name}/{child}"
            );
            let (newfid, qids) = env.walk(&[name.as_bytes(), child.as_bytes()]).unwrap();
            assert_eq!((newfid, qids.len()), (None, 1), "{name}/{child}");
        }
        // Opening the link: O_NOFOLLOW -> ELOOP.
        for flags in [dotl_open::RDONLY, dotl_open::RDWR, dotl_open::WRONLY] {
            let f = env.fid(&[name]);
            assert_eq!(
                env.client.lopen(f, flags),
                Err(errno::ELOOP),
                "Tlopen {name} {flags:#o}"
            );
        }
        // Creating through it: openat_dir on a link -> ENOTDIR.
        assert_eq!(
            env.client.mkdir(fid, "x", 0o755, 0),
            Err(errno::ENOTDIR),
            "mkdir in {name}"
        );
        let f = env.fid(&[name]);
        assert_eq!(
            env.client.lcreate(f, "x", dotl_open::RDWR, 0o644, 0),
            Err(errno::ENOTDIR),
            "lcreate in {name}"
        );
        assert_eq!(
            env.client.symlink(fid, "x", "/", 0),
            Err(errno::ENOTDIR),
            "symlink in {name}"
        );
        assert_eq!(
            env.client.readdir(fid, 0, 1000),
            Err(errno::ENOTDIR),
            "readdir of {name} (9p.c: fid_type != P9_FID_DIR)"
        );
    }
    env.assert_outside_intact();
}

/// 9p.c opens with O_NOFOLLOW: with O_DIRECTORY the kernel answers ENOTDIR
/// for a link (the O_DIRECTORY check comes before the link check).
#[test]
fn lopen_directory_of_a_symlink_is_enotdir() {
    let env = Env::new("linkdir", "9P2000.L");
    std::os::unix::fs::symlink("/", env.path("abs")).unwrap();
    let f = env.fid(&["abs"]);
    assert_eq!(
        env.client
            .lopen(f, dotl_open::RDONLY | dotl_open::DIRECTORY),
        Err(errno::ENOTDIR)
    );
}

/// Links created through the engine (Tsymlink, .u Tcreate) are no
/// different.
#[test]
fn symlinks_made_by_the_guest_are_not_followed() {
    let env = Env::new("guestlinks", "9P2000.L");
    env.client.symlink(env.root, "tohost", "/", 0).unwrap();
    env.client
        .symlink(env.root, "toproc", "/proc/self/root/etc", 0)
        .unwrap();
    env.client
        .symlink(env.root, "tooutside", "../outside", 0)
        .unwrap();
    assert_eq!(
        std::fs::read_link(env.path("tooutside")).unwrap(),
        Path::new("../outside")
    );
    for name in ["tohost", "toproc", "tooutside"] {
        let (fid, qids) = env.walk(&[name.as_bytes(), b"secret"]).unwrap();
        assert_eq!((fid, qids.len()), (None, 1), "{name}/secret");
        assert_eq!(qids[0].typ, qid_type::SYMLINK);
        let f = env.fid(&[name]);
        assert_eq!(env.client.lopen(f, dotl_open::RDONLY), Err(errno::ELOOP));
    }
    // Tlcreate onto a dangling link to a path outside: O_NOFOLLOW keeps
    // the host from creating the target (ELOOP; with O_EXCL, EEXIST).
    let target = env.outside.join("created-by-guest");
    std::os::unix::fs::symlink(&target, env.path("dangle")).unwrap();
    let d = env.fid(&[]);
    assert_eq!(
        env.client.lcreate(d, "dangle", dotl_open::WRONLY, 0o644, 0),
        Err(errno::ELOOP)
    );
    assert_eq!(
        env.client.lcreate(
            d,
            "dangle",
            dotl_open::WRONLY | dotl_open::CREATE | dotl_open::EXCL,
            0o644,
            0
        ),
        Err(errno::EEXIST)
    );
    assert!(std::fs::symlink_metadata(&target).is_err());
    // A link to the secret: its data is never read.
    std::os::unix::fs::symlink("../outside/secret", env.path("s")).unwrap();
    let f = env.fid(&["s"]);
    assert_eq!(env.client.lopen(f, dotl_open::RDONLY), Err(errno::ELOOP));
    assert_eq!(env.client.read(f, 0, 100), Err(errno::EINVAL));
    env.assert_outside_intact();
}

/// A link in a subdirectory pointing up and out: `d/l/..` is not `d`.
#[test]
fn dotdot_after_a_symlink_is_refused() {
    let env = Env::new("linkup", "9P2000.L");
    std::fs::create_dir(env.path("d")).unwrap();
    std::os::unix::fs::symlink("../../..", env.path("d/l")).unwrap();
    let (fid, qids) = env.walk(&[b"d", b"l", b"..", b"outside"]).unwrap();
    assert_eq!((fid, qids.len()), (None, 2));
    assert_eq!(qids[1].typ, qid_type::SYMLINK);
}

#[test]
fn symlinks_in_dotu_are_not_followed() {
    let env = Env::new("ulinks", "9P2000.u");
    let d = env.fid(&[]);
    env.client
        .create(
            d,
            "abs",
            p9_wire::consts::dm::SYMLINK | 0o777,
            omode::READ,
            "/",
        )
        .unwrap();
    let (fid, qids) = env.walk(&[b"abs", b"etc"]).unwrap();
    assert_eq!((fid, qids.len()), (None, 1));
    let f = env.fid(&["abs"]);
    assert_eq!(env.client.open(f, omode::READ), Err(errno::ELOOP));
    // Tstat shows the link, its target as the extension.
    let st = env.client.stat(f).unwrap();
    assert_eq!(st.extension.as_bytes(), b"/");
    assert_eq!(
        st.mode & p9_wire::consts::dm::SYMLINK,
        p9_wire::consts::dm::SYMLINK
    );
}

/// The export root itself cannot be renamed away or removed.  9p.c's local
/// backend names the root "."; a rename becomes `renameat(".", ...)`
/// (EBUSY), and Tunlinkat/Trenameat refuse ".." up front.
#[test]
fn the_export_root_cannot_be_renamed_or_unlinked() {
    let env = Env::new("rootmv", "9P2000.L");
    std::fs::write(env.path("keep"), b"x").unwrap();
    let r = env.fid(&[]);
    assert_eq!(env.client.rename(r, env.root, "moved"), Err(errno::EBUSY));
    let r = env.fid(&[".."]);
    assert_eq!(env.client.rename(r, env.root, "moved"), Err(errno::EBUSY));
    assert_eq!(
        env.client
            .unlinkat(env.root, "..", p9_wire::consts::AT_REMOVEDIR),
        Err(errno::ENOTEMPTY)
    );
    assert_eq!(
        env.client.renameat(env.root, "..", env.root, "x"),
        Err(errno::EISDIR)
    );
    assert!(env.dir.is_dir());
    assert_eq!(std::fs::read(env.path("keep")).unwrap(), b"x");
    env.client.getattr(env.root, getattr::BASIC).unwrap();
    env.assert_outside_intact();

    let env = Env::new("rootmvu", "9P2000.u");
    let r = env.fid(&[]);
    let mut st = p9_wire::Stat::dont_touch();
    st.name = "moved".into();
    assert_eq!(env.client.wstat(r, &st), Err(errno::EBUSY));
    assert!(env.dir.is_dir());
    env.assert_outside_intact();
}

/// Tremove of the export root: 9p.c `local_remove(".")` ends in
/// `unlinkat(dirfd, ".", AT_REMOVEDIR)`, which the kernel refuses with
/// EINVAL; the fid is clunked all the same.
#[test]
fn tremove_of_the_export_root_is_einval() {
    let env = Env::new("rootrm", "9P2000.L");
    std::fs::write(env.path("keep"), b"x").unwrap();
    let r = env.fid(&[]);
    let got = env.client.remove(r);
    assert!(env.dir.is_dir());
    assert_eq!(std::fs::read(env.path("keep")).unwrap(), b"x");
    assert_eq!(env.client.clunk(r), Err(errno::ENOENT), "not clunked");
    env.assert_outside_intact();
    assert_eq!(got, Err(errno::EINVAL));
}

// ---------------------------------------------------------------------------
// Names with '/'
// ---------------------------------------------------------------------------

/// 9p.c `name_is_illegal`: a walk element with '/' is ENOENT, before any
/// fid is looked at.
#[test]
fn names_with_a_slash_are_enoent() {
    let env = Env::new("slash", "9P2000.L");
    std::fs::create_dir(env.path("a")).unwrap();
    std::fs::write(env.path("a/b"), b"x").unwrap();
    for names in [
        vec![&b"a/b"[..]],
        vec![b"/"],
        vec![b"/etc"],
        vec![b"../outside"],
        vec![b"../../etc/passwd"],
        vec![b"a", b"../.."],
        vec![b"a/"],
    ] {
        assert_eq!(env.walk(&names).err(), Some(errno::ENOENT), "{names:?}");
    }
    // Unknown fid too: the name check comes first.
    assert_eq!(
        env.client.walk(0x00ba_d000, 77, &["x/y"]),
        Err(errno::ENOENT)
    );
    env.assert_outside_intact();
}

// ---------------------------------------------------------------------------
// Device nodes and FIFOs
// ---------------------------------------------------------------------------

/// A host directory descriptor (for `/proc/self/fd/N` links).
struct Node(OwnedFd);

impl Node {
    fn open(path: &str) -> Node {
        let c = CString::new(path).unwrap();
        // SAFETY: `c` is NUL-terminated.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        assert!(fd >= 0);
        // SAFETY: a fresh descriptor we own.
        Node(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

fn mknod(p: &Path, mode: u32, dev: libc::dev_t) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is NUL-terminated.
    let r = unsafe { libc::mknod(c.as_ptr(), mode, dev) };
    assert_eq!(
        r,
        0,
        "mknod {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

/// Wait for a reply that must come quickly (an open of a FIFO without
/// O_NONBLOCK would block forever); if it does not, unblock the server by
/// opening `fifo` on the host, then fail.
fn quick(pending: Pending, fifo: &Path, what: &str) -> Result<(), Errno> {
    match pending.wait_timeout(Duration::from_secs(10)) {
        Some(Some(r)) => r.map(drop),
        Some(None) => panic!("{what}: no reply"),
        None => {
            let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
            // SAFETY: `c` is NUL-terminated; O_RDWR on a FIFO never blocks.
            let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_NONBLOCK) };
            std::thread::sleep(Duration::from_millis(200));
            if fd >= 0 {
                // SAFETY: we opened it.
                unsafe { libc::close(fd) };
            }
            panic!("{what}: the server blocked opening the FIFO");
        }
    }
}

/// FIFOs made by the guest (Tmknod) and on the host: Tlopen never blocks
/// and is ENXIO (9p.c `close_if_special_file`), Tlcreate over one too; the
/// FIFO is never opened on the host.
#[test]
fn fifo_open_never_blocks_and_is_enxio() {
    let env = Env::new("fifo", "9P2000.L");
    let watch = OpenWatch::new(&env.dir);
    env.client
        .mknod(env.root, "gfifo", 0o010644, 0, 0, 0)
        .unwrap();
    mknod(&env.path("hfifo"), libc::S_IFIFO | 0o666, 0);
    for name in ["gfifo", "hfifo"] {
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(
            &lstat(&env.path(name)).file_type()
        ));
        for flags in [
            dotl_open::RDONLY,
            dotl_open::WRONLY,
            dotl_open::RDWR,
            dotl_open::RDONLY | dotl_open::NONBLOCK,
        ] {
            let f = env.fid(&[name]);
            let p = env.client.send(&Tmessage::Lopen { fid: f, flags });
            assert_eq!(
                quick(p, &env.path(name), &format!("Tlopen {name} {flags:#o}")),
                Err(errno::ENXIO),
                "Tlopen {name} {flags:#o}"
            );
        }
        let d = env.fid(&[]);
        let p = env.client.send(&Tmessage::Lcreate {
            fid: d,
            name: name.into(),
            flags: dotl_open::WRONLY,
            mode: 0o644,
            gid: 0,
        });
        assert_eq!(
            quick(p, &env.path(name), "Tlcreate over a FIFO"),
            Err(errno::ENXIO)
        );
    }
    // Listing and stat work without opening them.
    let d = env.fid(&[]);
    env.client
        .lopen(d, dotl_open::RDONLY | dotl_open::DIRECTORY)
        .unwrap();
    assert!(env.client.readdir_all(d).unwrap().len() >= 4);
    let f = env.fid(&["gfifo"]);
    assert_eq!(
        env.client.getattr(f, getattr::BASIC).unwrap().mode & 0o170000,
        0o010000
    );
    let opened = watch.opened();
    assert!(
        !opened.iter().any(|n| n == "gfifo" || n == "hfifo"),
        "FIFO opened on the host: {opened:?}"
    );
    assert_watch_sees_opens(&env, &watch);
}

/// Control: the watch does see the engine open a regular file.
fn assert_watch_sees_opens(env: &Env, watch: &OpenWatch) {
    std::fs::write(env.path("plain"), b"x").unwrap();
    let f = env.fid(&["plain"]);
    env.client.lopen(f, dotl_open::RDONLY).unwrap();
    let opened = watch.opened();
    assert!(
        opened.iter().any(|n| n == "plain"),
        "the inotify watch missed a real open: {opened:?}"
    );
}

#[test]
fn fifo_open_in_dotu_is_enxio() {
    let env = Env::new("ufifo", "9P2000.u");
    let d = env.fid(&[]);
    env.client
        .create(
            d,
            "p",
            p9_wire::consts::dm::NAMED_PIPE | 0o600,
            omode::READ,
            "",
        )
        .unwrap();
    for mode in [omode::READ, omode::WRITE] {
        let f = env.fid(&["p"]);
        let pending = env.client.send(&Tmessage::Open { fid: f, mode });
        assert_eq!(
            quick(pending, &env.path("p"), "Topen FIFO"),
            Err(errno::ENXIO)
        );
    }
}

/// Device nodes, made by the guest (Tmknod, as root) or on the host, are
/// never opened on the host: Tlopen is ENXIO and inotify sees no open.
#[test]
fn device_nodes_are_never_opened() {
    if !is_root() {
        eprintln!("device_nodes_are_never_opened: skipped, not root");
        return;
    }
    let env = Env::new("dev", "9P2000.L");
    let watch = OpenWatch::new(&env.dir);
    let qid = env
        .client
        .mknod(env.root, "null", 0o020666, 1, 3, 0)
        .unwrap();
    let md = lstat(&env.path("null"));
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &md.file_type()
    ));
    assert_eq!(md.rdev(), libc::makedev(1, 3));
    assert_eq!(qid.path, md.ino());
    // A block device made on the host (loop0's numbers).
    mknod(&env.path("blk"), libc::S_IFBLK | 0o600, libc::makedev(7, 0));
    for name in ["null", "blk"] {
        for flags in [dotl_open::RDONLY, dotl_open::WRONLY, dotl_open::RDWR] {
            let f = env.fid(&[name]);
            assert_eq!(
                env.client.lopen(f, flags),
                Err(errno::ENXIO),
                "Tlopen {name} {flags:#o}"
            );
        }
        let d = env.fid(&[]);
        assert_eq!(
            env.client.lcreate(d, name, dotl_open::RDWR, 0o644, 0),
            Err(errno::ENXIO),
            "Tlcreate over {name}"
        );
        // Attributes are readable without opening it.
        let f = env.fid(&[name]);
        let st = env.client.getattr(f, getattr::BASIC).unwrap();
        assert_eq!(st.rdev, lstat(&env.path(name)).rdev());
    }
    let opened = watch.opened();
    assert!(
        !opened.iter().any(|n| n == "null" || n == "blk"),
        "device opened on the host: {opened:?}"
    );
    assert_watch_sees_opens(&env, &watch);
}

#[test]
fn device_nodes_in_dotu_are_never_opened() {
    if !is_root() {
        eprintln!("device_nodes_in_dotu_are_never_opened: skipped, not root");
        return;
    }
    let env = Env::new("udev", "9P2000.u");
    let watch = OpenWatch::new(&env.dir);
    let d = env.fid(&[]);
    env.client
        .create(
            d,
            "null",
            p9_wire::consts::dm::DEVICE | 0o666,
            omode::READ,
            "c 1 3",
        )
        .unwrap();
    for mode in [omode::READ, omode::RDWR, omode::WRITE | omode::TRUNC] {
        let f = env.fid(&["null"]);
        assert_eq!(env.client.open(f, mode), Err(errno::ENXIO));
    }
    let opened = watch.opened();
    assert!(!opened.iter().any(|n| n == "null"), "{opened:?}");
}

// ---------------------------------------------------------------------------
// Walks
// ---------------------------------------------------------------------------

#[test]
fn a_partial_walk_creates_no_fid() {
    let env = Env::new("partial", "9P2000.L");
    std::fs::create_dir(env.path("a")).unwrap();
    let newfid = env.client.alloc_fid();
    let qids = env.client.walk(env.root, newfid, &["a", "nope"]).unwrap();
    assert_eq!(qids.len(), 1);
    assert_eq!(
        env.client.getattr(newfid, getattr::BASIC),
        Err(errno::ENOENT)
    );
    // A partial walk onto the starting fid leaves it where it was (9p.c
    // sends the qids and leaves the fid unaffected).
    let a = env.fid(&["a"]);
    let a_qid = env.client.getattr(a, getattr::BASIC).unwrap().qid;
    let qids = env.client.walk(a, a, &["..", "nope"]).unwrap();
    assert_eq!(qids.len(), 1);
    assert_eq!(env.client.getattr(a, getattr::BASIC).unwrap().qid, a_qid);
    // First element missing: an error, not an empty Rwalk.
    let msg = Tmessage::Walk {
        fid: env.root,
        newfid,
        wnames: vec!["nope".into(), "a".into()],
    };
    let reply = env.client.raw(msg.encode_to_vec(7).unwrap()).unwrap();
    assert_eq!(
        Rmessage::decode_slice(&reply, p9_wire::Proto::DotL, MSIZE).unwrap(),
        (
            7,
            Rmessage::Lerror {
                ecode: errno::ENOENT
            }
        )
    );
}

// ---------------------------------------------------------------------------
// A directory the host moves out of the export
// ---------------------------------------------------------------------------

/// Fids on `export/d`, `export/d/f`, `export/d/sub` and an open directory
/// fid of `d`; then the host moves `d` to `<base>/away/d`, next to a
/// marker.  Nothing reaches `away`: `..` is the recorded parent (the
/// export root), names from the moved directory are `ENOENT`, it is
/// neither opened nor listed nor changed, and nothing is brought back in.
fn host_moved_directory(name: &str, fallback: bool) {
    let env = Env::with_lookup(name, "9P2000.L", fallback);
    let c = &env.client;
    let away = env.base.join("away");
    std::fs::create_dir_all(env.path("d/sub")).unwrap();
    std::fs::write(env.path("d/f"), b"in d").unwrap();
    std::fs::write(env.path("d/sub/g"), b"in sub").unwrap();
    std::fs::create_dir(&away).unwrap();
    std::fs::write(away.join("marker"), b"marker next to the moved directory").unwrap();
    let root_ino = lstat(&env.dir).ino();
    let d = env.fid(&["d"]);
    let f = env.fid(&["d", "f"]);
    let sub = env.fid(&["d", "sub"]);
    let listed = env.fid(&["d"]);
    c.lopen(listed, dotl_open::RDONLY | dotl_open::DIRECTORY)
        .unwrap();
    assert!(c.readdir_all(listed).unwrap().len() == 4);

    std::fs::rename(env.path("d"), away.join("d")).unwrap();
    let outside: Vec<u64> = [away.as_path(), env.base.path()]
        .iter()
        .map(|p| lstat(p).ino())
        .collect();
    let walk = |from: u32, names: &[&str]| {
        let nf = c.alloc_fid();
        c.walk(from, nf, names)
            .map(|q| q.iter().map(|q| q.path).collect::<Vec<_>>())
    };

    // `..`, `../..`: the export root, never where `d` went.
    assert_eq!(walk(d, &[".."]), Ok(vec![root_ino]));
    assert_eq!(walk(d, &["..", ".."]), Ok(vec![root_ino; 2]));
    assert_eq!(
        walk(d, &["..", "..", "away", "marker"]),
        Ok(vec![root_ino; 2])
    );
    let up = walk(sub, &["..", "..", ".."]).unwrap();
    assert!(up.iter().all(|i| !outside.contains(i)), "{up:?}");
    assert_eq!(up[1..], [root_ino; 2]);
    // Names from the moved directory (and from under it) find nothing.
    for (from, name) in [(d, "marker"), (d, "f"), (d, "sub"), (d, "."), (sub, "g")] {
        let r = walk(from, &[name]);
        if name == "." {
            // The fid itself (no lookup): its own qid, never the marker.
            assert!(r.is_ok());
        } else {
            assert_eq!(r, Err(errno::ENOENT), "walk {name}");
        }
    }
    // Neither opened nor listed.
    let d3 = c.alloc_fid();
    c.clone_fid(d, d3).unwrap();
    assert_eq!(
        c.lopen(d3, dotl_open::RDONLY | dotl_open::DIRECTORY).err(),
        Some(errno::ENOENT)
    );
    assert_eq!(c.lopen(f, dotl_open::RDONLY).err(), Some(errno::ENOENT));
    assert_eq!(c.readdir_all(listed).err(), Some(errno::ENOENT));
    // Nothing made, removed or moved in it, nothing brought back in.
    let d2 = c.alloc_fid();
    c.clone_fid(d, d2).unwrap();
    assert_eq!(
        c.lcreate(d2, "new", dotl_open::RDWR, 0o644, 0).err(),
        Some(errno::ENOENT)
    );
    assert_eq!(c.mkdir(d, "newdir", 0o755, 0).err(), Some(errno::ENOENT));
    assert_eq!(c.symlink(d, "l", "/etc", 0).err(), Some(errno::ENOENT));
    assert_eq!(c.unlinkat(d, "f", 0).err(), Some(errno::ENOENT));
    assert_eq!(
        c.renameat(d, "f", env.root, "stolen").err(),
        Some(errno::ENOENT)
    );
    assert_eq!(c.link(env.root, f, "stolen").err(), Some(errno::ENOENT));
    assert_eq!(c.rename(f, env.root, "stolen").err(), Some(errno::ENOENT));
    let f2 = c.alloc_fid();
    c.clone_fid(f, f2).unwrap();
    assert_eq!(c.remove(f2).err(), Some(errno::ENOENT));

    let list = |p: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(list(&away), ["d", "marker"]);
    assert_eq!(list(&away.join("d")), ["f", "sub"]);
    assert_eq!(list(&env.dir), Vec::<String>::new());
    assert_eq!(
        std::fs::read(away.join("marker")).unwrap(),
        b"marker next to the moved directory"
    );
    env.assert_outside_intact_but(&["away"]);

    // Moved back, the fids work again.
    std::fs::rename(away.join("d"), env.path("d")).unwrap();
    assert_eq!(walk(d, &["f"]), Ok(vec![lstat(&env.path("d/f")).ino()]));
    c.lopen(f, dotl_open::RDONLY).unwrap();
    assert_eq!(c.read(f, 0, 64).unwrap(), b"in d");
    assert_eq!(c.readdir_all(listed).unwrap().len(), 4);
}

#[test]
fn a_directory_moved_out_by_the_host_is_no_way_out() {
    host_moved_directory("moved-openat2", false);
}

#[test]
fn a_directory_moved_out_by_the_host_is_no_way_out_without_openat2() {
    host_moved_directory("moved-openat", true);
}
