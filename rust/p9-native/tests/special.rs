// SPDX-License-Identifier: GPL-2.0-or-later
//! Host special files (CVE-2023-2861): they can be created, held, listed
//! and have their attributes changed, but are never opened on the host.
//! inotify proves it: an `O_PATH` descriptor raises no `IN_OPEN`, a real
//! open does.

mod common;

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::sync::mpsc;
use std::time::Duration;

use common::{both_paths, cstr, mkchr, mkfifo, TempDir};
use p9_native::testing::OpenWatch;
use p9_native::{
    chmod, chown, create_file, generation, getxattr, listxattr, lookup, mknod, open, removexattr,
    setxattr, stat, truncate, utimes, DirReader, Errno, Node, SetTime, Timespec,
};

fn make_specials(t: &TempDir) {
    let ex = t.export();
    mkchr(&ex.join("null"), 1, 3);
    mkfifo(&ex.join("fifo"));
    let l = UnixListener::bind(ex.join("sock")).unwrap();
    std::mem::forget(l); // keep the socket alive; the temp dir goes anyway
}

const SPECIALS: [&[u8]; 3] = [b"null", b"fifo", b"sock"];

/// Runs `f` on another thread and fails if it does not finish quickly: an
/// open of the FIFO without O_NONBLOCK would block forever.
fn no_hang<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("operation hung")
}

#[test]
fn open_refuses_special_files_without_opening_them() {
    both_paths(|_| {
        let t = TempDir::new("special-open");
        make_specials(&t);
        let watch = OpenWatch::new(&t.export());
        let root = t.root();
        for name in SPECIALS {
            let node = lookup(&root, name).unwrap();
            assert!(stat(&node).unwrap().is_special());
            for flags in [
                libc::O_RDONLY,
                libc::O_WRONLY,
                libc::O_RDWR,
                libc::O_RDONLY | libc::O_NONBLOCK,
                libc::O_RDWR | libc::O_TRUNC,
            ] {
                let n = node.try_clone().unwrap();
                let r = no_hang(move || open(&n, flags).map(drop));
                assert_eq!(r, Err(Errno::from_raw(libc::ENXIO)), "{name:?} {flags:#x}");
            }
            assert_eq!(
                DirReader::open(&node).unwrap_err(),
                Errno::from_raw(libc::ENXIO)
            );
            // Existing special file under create_file without O_EXCL.
            let r = no_hang({
                let root = root.try_clone().unwrap();
                move || create_file(&root, name, libc::O_RDWR, 0o644).map(drop)
            });
            assert_eq!(r, Err(Errno::from_raw(libc::ENXIO)));
            assert_eq!(
                create_file(&root, name, libc::O_RDWR | libc::O_EXCL, 0o644).map(drop),
                Err(Errno::from_raw(libc::EEXIST))
            );
            // Truncate opens for writing: refused the same way, as QEMU.
            assert_eq!(truncate(&node, 0), Err(Errno::from_raw(libc::ENXIO)));
            // Generation is best effort: 0 without opening.
            assert_eq!(generation(&node), Ok(0));
        }
        let opened = watch.opened();
        for name in ["null", "fifo", "sock"] {
            assert!(
                !opened.iter().any(|n| n == name),
                "{name} was opened: {opened:?}"
            );
        }
    });
}

/// The inotify check can fail: a real open of the FIFO is seen.
#[test]
fn open_watch_sees_real_opens() {
    let t = TempDir::new("special-watch");
    mkfifo(&t.export().join("fifo"));
    let watch = OpenWatch::new(&t.export());
    let c = cstr(&t.export().join("fifo"));
    // SAFETY: `c` is NUL-terminated; O_NONBLOCK keeps a FIFO open from
    // blocking.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    assert!(fd >= 0);
    // SAFETY: we own the descriptor just returned.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    assert_eq!(watch.opened(), vec!["fifo".to_string()]);
}

#[test]
fn attributes_of_special_files_work_without_opening() {
    let t = TempDir::new("special-attr");
    make_specials(&t);
    let watch = OpenWatch::new(&t.export());
    let root = t.root();
    for name in SPECIALS {
        let node = lookup(&root, name).unwrap();
        chmod(&node, 0o600).unwrap();
        assert_eq!(stat(&node).unwrap().mode & 0o7777, 0o600);
        chown(&node, Some(1234), Some(4321)).unwrap();
        let st = stat(&node).unwrap();
        assert_eq!((st.uid, st.gid), (1234, 4321));
        let when = Timespec {
            sec: 1_000_000,
            nsec: 5,
        };
        utimes(&node, SetTime::At(when), SetTime::At(when)).unwrap();
        let st = stat(&node).unwrap();
        assert_eq!((st.atime, st.mtime), (when, when));
        // user.* attributes do not exist on special files (the kernel's
        // rule, which QEMU passes through as well).
        assert_eq!(
            setxattr(&node, b"user.a", b"1", 0),
            Err(Errno::from_raw(libc::EPERM))
        );
        assert_eq!(
            getxattr(&node, b"user.a", &mut [0; 8]),
            Err(Errno::from_raw(libc::ENODATA))
        );
        // trusted.* ones do (we run as root), on the special file itself.
        setxattr(&node, b"trusted.t", b"v", 0).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(getxattr(&node, b"trusted.t", &mut buf), Ok(1));
        assert_eq!(&buf[..1], b"v");
        let mut list = [0u8; 64];
        let n = listxattr(&node, &mut list).unwrap();
        assert_eq!(&list[..n], b"trusted.t\0");
        removexattr(&node, b"trusted.t").unwrap();
        assert_eq!(listxattr(&node, &mut []), Ok(0));
    }
    let opened = watch.opened();
    assert!(opened.is_empty(), "opened: {opened:?}");
}

#[test]
fn mknod_creates_but_never_opens() {
    let t = TempDir::new("special-mknod");
    let watch = OpenWatch::new(&t.export());
    let root = t.root();
    let dev = mknod(&root, b"zero", libc::S_IFCHR | 0o666, libc::makedev(1, 5)).unwrap();
    let st = stat(&dev).unwrap();
    assert_eq!(st.file_type(), libc::S_IFCHR);
    assert_eq!(st.rdev, libc::makedev(1, 5));
    let fifo = mknod(&root, b"p", libc::S_IFIFO | 0o644, 0).unwrap();
    let sock = mknod(&root, b"s", libc::S_IFSOCK | 0o644, 0).unwrap();
    assert_eq!(stat(&fifo).unwrap().file_type(), libc::S_IFIFO);
    assert_eq!(stat(&sock).unwrap().file_type(), libc::S_IFSOCK);
    for n in [&dev, &fifo, &sock] {
        let n2 = n.try_clone().unwrap();
        assert_eq!(
            no_hang(move || open(&n2, libc::O_RDONLY).map(drop)),
            Err(Errno::from_raw(libc::ENXIO))
        );
    }
    assert_eq!(
        mknod(&root, b"p", libc::S_IFIFO | 0o644, 0).unwrap_err(),
        Errno::from_raw(libc::EEXIST)
    );
    assert!(watch.opened().is_empty());
    let _ = Node::from_owned_fd(dev.into_owned_fd());
}
