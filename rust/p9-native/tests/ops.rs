// SPDX-License-Identifier: GPL-2.0-or-later
//! Success paths of every operation, and the node-based guarantees:
//! unlinked files keep working, renames keep nodes valid, symbolic link
//! nodes are acted on themselves.

mod common;

use std::io::{IoSlice, IoSliceMut};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::{both_paths, drop_cap, lstat, TempDir, CAP_CHOWN, CAP_DAC_READ_SEARCH};
use p9_native::{
    chmod, chown, create_file, fsync, ftruncate, generation, getxattr, link, listxattr, lookup,
    mkdir, open, parent, pread, pwrite, readlink, removexattr, renameat, sanitize_open_flags,
    setxattr, stat, statfs, symlink, truncate, unlinkat, utimes, Errno, SecurityModel, SetTime,
    Timespec,
};

#[test]
fn create_write_read_stat() {
    both_paths(|_| {
        let t = TempDir::new("basic");
        let root = t.root();
        let (node, fd) = create_file(&root, b"f", libc::O_RDWR, 0o640).unwrap();
        assert_eq!(
            pwrite(&fd, &[IoSlice::new(b"hello "), IoSlice::new(b"world")], 0),
            Ok(11)
        );
        let (mut a, mut b) = ([0u8; 5], [0u8; 16]);
        let n = pread(
            &fd,
            &mut [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)],
            0,
        )
        .unwrap();
        assert_eq!(n, 11);
        assert_eq!(&a, b"hello");
        assert_eq!(&b[..6], b" world");
        assert_eq!(pread(&fd, &mut [IoSliceMut::new(&mut a)], 100), Ok(0));
        assert_eq!(
            pread(&fd, &mut [IoSliceMut::new(&mut a)], u64::MAX),
            Err(Errno::from_raw(libc::EINVAL))
        );
        fsync(&fd, false).unwrap();
        fsync(&fd, true).unwrap();

        let st = stat(&node).unwrap();
        let md = lstat(&t.export().join("f"));
        assert!(st.is_file());
        assert_eq!(st.size, 11);
        assert_eq!(st.ino, md.ino());
        assert_eq!(st.dev, md.dev());
        assert_eq!(st.nlink, 1);
        assert_eq!(st.mode & 0o777, 0o640 & !0o022 & 0o777);
        assert_eq!(st.mtime.sec, md.mtime());
        assert!(st.btime.is_some(), "tmpfs reports btime");

        // O_EXCL on an existing file; without it the file is opened.
        assert_eq!(
            create_file(&root, b"f", libc::O_RDWR | libc::O_EXCL, 0o644).map(drop),
            Err(Errno::from_raw(libc::EEXIST))
        );
        let (again, fd2) = create_file(&root, b"f", libc::O_RDONLY, 0o644).unwrap();
        assert!(again.same_inode(&node).unwrap());
        let mut c = [0u8; 11];
        assert_eq!(pread(&fd2, &mut [IoSliceMut::new(&mut c)], 0), Ok(11));
        // O_TRUNC on the existing file.
        let (_, _fd3) = create_file(&root, b"f", libc::O_WRONLY | libc::O_TRUNC, 0o644).unwrap();
        assert_eq!(stat(&node).unwrap().size, 0);

        // open() of a looked-up node, read-only and write-only.
        std::fs::write(t.export().join("g"), b"abc").unwrap();
        let g = lookup(&root, b"g").unwrap();
        let r = open(&g, libc::O_RDONLY).unwrap();
        let mut buf = [0u8; 3];
        assert_eq!(pread(&r, &mut [IoSliceMut::new(&mut buf)], 0), Ok(3));
        assert_eq!(
            pwrite(&r, &[IoSlice::new(b"x")], 0),
            Err(Errno::from_raw(libc::EBADF))
        );
        let w = open(&g, libc::O_WRONLY | libc::O_APPEND).unwrap();
        assert_eq!(pwrite(&w, &[IoSlice::new(b"d")], 0), Ok(1));
        assert_eq!(std::fs::read(t.export().join("g")).unwrap(), b"abcd");
        // The O_NONBLOCK used while opening is gone afterwards.
        // SAFETY: F_GETFL takes no argument.
        let fl = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&w), libc::F_GETFL) };
        assert_eq!(fl & libc::O_NONBLOCK, 0);
        assert_ne!(fl & libc::O_APPEND, 0);
        let nb = open(&g, libc::O_RDONLY | libc::O_NONBLOCK).unwrap();
        // SAFETY: F_GETFL takes no argument.
        let fl = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&nb), libc::F_GETFL) };
        assert_ne!(fl & libc::O_NONBLOCK, 0);
        // Directories: O_DIRECTORY on a file, writing a directory.
        assert_eq!(
            open(&g, libc::O_RDONLY | libc::O_DIRECTORY).map(drop),
            Err(Errno::from_raw(libc::ENOTDIR))
        );
        assert_eq!(
            open(&root, libc::O_RDWR).map(drop),
            Err(Errno::from_raw(libc::EISDIR))
        );
        open(&root, libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
        // O_NOATIME is honoured or dropped, never an error.
        open(&g, libc::O_RDONLY | libc::O_NOATIME).unwrap();
    });
}

#[test]
fn open_flag_filtering() {
    let f = sanitize_open_flags(
        libc::O_RDWR
            | libc::O_CREAT
            | libc::O_EXCL
            | libc::O_NOCTTY
            | libc::O_ASYNC
            | libc::O_DIRECT
            | libc::O_TRUNC
            | libc::O_APPEND
            | libc::O_NOFOLLOW
            | libc::O_PATH,
    );
    assert_eq!(
        f,
        libc::O_RDWR | libc::O_TRUNC | libc::O_APPEND | libc::O_CLOEXEC
    );
    assert_eq!(
        sanitize_open_flags(libc::O_TMPFILE | libc::O_RDWR),
        libc::O_DIRECTORY | libc::O_RDWR | libc::O_CLOEXEC
    );
    assert_eq!(
        sanitize_open_flags(libc::O_RDONLY | libc::O_DSYNC),
        libc::O_DSYNC | libc::O_CLOEXEC
    );
}

#[test]
fn directories_links_rename_unlink() {
    both_paths(|_| {
        let t = TempDir::new("dirops");
        let ex = t.export();
        let root = t.root();
        let d = mkdir(&root, b"d", 0o750).unwrap();
        assert!(stat(&d).unwrap().is_dir());
        assert!(ex.join("d").is_dir());
        assert_eq!(
            mkdir(&root, b"d", 0o750).map(drop),
            Err(Errno::from_raw(libc::EEXIST))
        );

        let s = symlink(&d, b"s", b"../target").unwrap();
        assert!(stat(&s).unwrap().is_symlink());
        assert_eq!(readlink(&s).unwrap(), b"../target");
        assert_eq!(
            std::fs::read_link(ex.join("d/s")).unwrap().as_os_str(),
            "../target"
        );
        assert_eq!(
            symlink(&d, b"s2", b"a\0b").map(drop),
            Err(Errno::from_raw(libc::EINVAL))
        );
        assert_eq!(readlink(&d), Err(Errno::from_raw(libc::EINVAL)));
        let long = vec![b'x'; 4000];
        let l = symlink(&d, b"long", &long).unwrap();
        assert_eq!(readlink(&l).unwrap(), long);

        let (f, _) = create_file(&d, b"f", libc::O_RDWR, 0o644).unwrap();
        link(&f, &root, b"hard").unwrap();
        assert_eq!(stat(&f).unwrap().nlink, 2);
        assert_eq!(lstat(&ex.join("hard")).ino(), stat(&f).unwrap().ino);
        assert_eq!(link(&f, &root, b"hard"), Err(Errno::from_raw(libc::EEXIST)));
        assert_eq!(
            link(&d, &root, b"dirlink"),
            Err(Errno::from_raw(libc::EPERM))
        );

        renameat(&d, b"f", &root, b"moved").unwrap();
        assert!(ex.join("moved").exists());
        assert!(!ex.join("d/f").exists());
        assert_eq!(
            renameat(&d, b"nope", &root, b"x"),
            Err(Errno::from_raw(libc::ENOENT))
        );

        assert_eq!(
            unlinkat(&root, b"d", false),
            Err(Errno::from_raw(libc::EISDIR))
        );
        assert_eq!(
            unlinkat(&root, b"moved", true),
            Err(Errno::from_raw(libc::ENOTDIR))
        );
        assert_eq!(
            unlinkat(&root, b"d", true),
            Err(Errno::from_raw(libc::ENOTEMPTY))
        );
        unlinkat(&d, b"s", false).unwrap();
        unlinkat(&d, b"long", false).unwrap();
        unlinkat(&root, b"d", true).unwrap();
        unlinkat(&root, b"moved", false).unwrap();
        assert!(!ex.join("d").exists());
        assert_eq!(stat(&f).unwrap().nlink, 1);
    });
}

fn check_link_variants(tag: &str) {
    let t = TempDir::new(tag);
    let root = t.root();
    let (f, _) = create_file(&root, b"f", libc::O_RDWR, 0o644).unwrap();
    link(&f, &root, b"f2").unwrap();
    let f2 = lookup(&root, b"f2").unwrap();
    assert!(f2.same_inode(&f).unwrap());
    // A symbolic link node is linked as the link itself.
    let s = symlink(&root, b"s", b"f").unwrap();
    link(&s, &root, b"s2").unwrap();
    let s2 = lookup(&root, b"s2").unwrap();
    assert!(stat(&s2).unwrap().is_symlink());
    assert!(s2.same_inode(&s).unwrap());
    assert_eq!(stat(&f).unwrap().nlink, 2);
    // An unlinked file cannot get a name again (no O_TMPFILE here).
    unlinkat(&root, b"f", false).unwrap();
    unlinkat(&root, b"f2", false).unwrap();
    assert_eq!(link(&f, &root, b"back"), Err(Errno::from_raw(libc::ENOENT)));
}

#[test]
fn link_with_empty_path() {
    check_link_variants("link-empty");
}

#[test]
fn link_forced_proc_fallback() {
    p9_native::testing::force_link_fallback(true);
    check_link_variants("link-proc");
    p9_native::testing::force_link_fallback(false);
}

/// The real trigger of the fallback: without `CAP_DAC_READ_SEARCH`,
/// `linkat(AT_EMPTY_PATH)` fails with `ENOENT` for a descriptor opened under
/// other credentials (Linux >= 6.10 allows it for the caller's own
/// credentials, so the nodes are made before the capability is dropped,
/// which gives this thread new credentials).
#[test]
fn link_falls_back_without_cap_dac_read_search() {
    use std::os::fd::AsRawFd;
    let t = TempDir::new("link-nocap");
    let root = t.root();
    let (f, _) = create_file(&root, b"f", libc::O_RDWR, 0o644).unwrap();
    let s = symlink(&root, b"s", b"f").unwrap();
    let _guard = drop_cap(CAP_DAC_READ_SEARCH);
    // SAFETY: both strings are NUL-terminated; the descriptors are live.
    let r = unsafe {
        libc::linkat(
            f.as_raw_fd(),
            c"".as_ptr(),
            root.as_raw_fd(),
            c"direct".as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    assert_eq!(r, -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::ENOENT)
    );
    link(&f, &root, b"f2").unwrap();
    assert!(lookup(&root, b"f2").unwrap().same_inode(&f).unwrap());
    link(&s, &root, b"s2").unwrap();
    let s2 = lookup(&root, b"s2").unwrap();
    assert!(stat(&s2).unwrap().is_symlink());
    assert!(s2.same_inode(&s).unwrap());
}

#[test]
fn attributes_of_files_and_dirs() {
    let t = TempDir::new("attrs");
    let root = t.root();
    let (f, _) = create_file(&root, b"f", libc::O_RDWR, 0o644).unwrap();
    let d = mkdir(&root, b"d", 0o755).unwrap();
    for n in [&f, &d] {
        chmod(n, 0o4711 | libc::S_IFREG).unwrap(); // type bits ignored
        assert_eq!(stat(n).unwrap().mode & 0o7777, 0o4711);
        chown(n, Some(1000), None).unwrap();
        chown(n, None, Some(2000)).unwrap();
        let st = stat(n).unwrap();
        assert_eq!((st.uid, st.gid), (1000, 2000));
        let before = stat(n).unwrap();
        let t1 = Timespec {
            sec: 1_234_567_890,
            nsec: 123_456_789,
        };
        utimes(n, SetTime::At(t1), SetTime::Omit).unwrap();
        let st = stat(n).unwrap();
        assert_eq!(st.atime, t1);
        assert_eq!(st.mtime, before.mtime);
        utimes(n, SetTime::Omit, SetTime::Now).unwrap();
        let st = stat(n).unwrap();
        assert_eq!(st.atime, t1);
        assert!(st.mtime.sec > t1.sec);
        assert_eq!(
            utimes(
                n,
                SetTime::At(Timespec {
                    sec: 0,
                    nsec: 1_000_000_000
                }),
                SetTime::Omit
            ),
            Err(Errno::from_raw(libc::EINVAL))
        );
        assert_eq!(generation(n), Ok(0)); // tmpfs has no FS_IOC_GETVERSION
    }
    truncate(&f, 4096).unwrap();
    assert_eq!(stat(&f).unwrap().size, 4096);
    truncate(&f, 1).unwrap();
    assert_eq!(stat(&f).unwrap().size, 1);
    assert_eq!(truncate(&f, u64::MAX), Err(Errno::from_raw(libc::EINVAL)));
    assert_eq!(truncate(&d, 0), Err(Errno::from_raw(libc::EISDIR)));
    let fd = open(&f, libc::O_RDWR).unwrap();
    ftruncate(&fd, 10).unwrap();
    assert_eq!(stat(&f).unwrap().size, 10);

    let sf = statfs(&root).unwrap();
    assert_eq!(sf.typ, 0x0102_1994); // TMPFS_MAGIC
    assert!(sf.bsize > 0 && sf.namelen == 255);
    let sf2 = statfs(&f).unwrap();
    assert_eq!(sf.fsid, sf2.fsid);
}

/// Symbolic link nodes: attribute changes apply to the link, never to the
/// target.
#[test]
fn symlink_nodes_are_acted_on_themselves() {
    let t = TempDir::new("symattrs");
    let root = t.root();
    let (target, _) = create_file(&root, b"target", libc::O_RDWR, 0o644).unwrap();
    chmod(&target, 0o644).unwrap();
    let old = Timespec {
        sec: 1_000,
        nsec: 0,
    };
    utimes(&target, SetTime::At(old), SetTime::At(old)).unwrap();
    let s = symlink(&root, b"s", b"target").unwrap();

    assert_eq!(chmod(&s, 0o600), Err(Errno::from_raw(libc::EOPNOTSUPP)));
    chown(&s, Some(77), Some(88)).unwrap();
    let when = Timespec {
        sec: 2_000,
        nsec: 7,
    };
    utimes(&s, SetTime::At(when), SetTime::At(when)).unwrap();
    let st = stat(&s).unwrap();
    assert!(st.is_symlink());
    assert_eq!((st.uid, st.gid), (77, 88));
    assert_eq!(st.mtime, when);
    let tst = stat(&target).unwrap();
    assert_eq!(tst.mode & 0o7777, 0o644);
    assert_eq!((tst.uid, tst.gid), (0, 0));
    assert_eq!(tst.mtime, old);
    assert_eq!(truncate(&s, 0), Err(Errno::from_raw(libc::ELOOP)));
    assert_eq!(generation(&s), Ok(0));

    // xattrs: user.* is not allowed on links (kernel rule); trusted.* is
    // set on the link, not on the target.
    assert_eq!(
        setxattr(&s, b"user.x", b"1", 0),
        Err(Errno::from_raw(libc::EPERM))
    );
    assert_eq!(
        getxattr(&s, b"user.x", &mut []),
        Err(Errno::from_raw(libc::ENODATA))
    );
    setxattr(&s, b"trusted.l", b"link", 0).unwrap();
    assert_eq!(getxattr(&s, b"trusted.l", &mut []), Ok(4));
    assert_eq!(
        getxattr(&target, b"trusted.l", &mut []),
        Err(Errno::from_raw(libc::ENODATA))
    );
    setxattr(&target, b"user.t", b"1", 0).unwrap();
    let mut list = [0u8; 64];
    let n = listxattr(&s, &mut list).unwrap();
    assert_eq!(&list[..n], b"trusted.l\0");
    removexattr(&s, b"trusted.l").unwrap();
    assert_eq!(
        removexattr(&s, b"trusted.l"),
        Err(Errno::from_raw(libc::ENODATA))
    );
}

#[test]
fn xattrs_on_files_and_dirs() {
    let t = TempDir::new("xattr");
    let root = t.root();
    let (f, _) = create_file(&root, b"f", libc::O_RDWR, 0o644).unwrap();
    // A file we could not open for reading or writing as non-root still
    // works: nothing is opened.
    chmod(&f, 0o000).unwrap();
    let d = mkdir(&root, b"d", 0o755).unwrap();
    for n in [&f, &d] {
        assert_eq!(listxattr(n, &mut []), Ok(0));
        setxattr(n, b"user.one", b"value-1", 0).unwrap();
        setxattr(n, b"user.two", b"", libc::XATTR_CREATE).unwrap();
        assert_eq!(
            setxattr(n, b"user.two", b"x", libc::XATTR_CREATE),
            Err(Errno::from_raw(libc::EEXIST))
        );
        assert_eq!(
            setxattr(n, b"user.three", b"x", libc::XATTR_REPLACE),
            Err(Errno::from_raw(libc::ENODATA))
        );
        assert_eq!(getxattr(n, b"user.one", &mut []), Ok(7));
        let mut small = [0u8; 3];
        assert_eq!(
            getxattr(n, b"user.one", &mut small),
            Err(Errno::from_raw(libc::ERANGE))
        );
        let mut buf = [0u8; 16];
        assert_eq!(getxattr(n, b"user.one", &mut buf), Ok(7));
        assert_eq!(&buf[..7], b"value-1");
        assert_eq!(getxattr(n, b"user.two", &mut buf), Ok(0));
        assert_eq!(
            getxattr(n, b"user.nope", &mut buf),
            Err(Errno::from_raw(libc::ENODATA))
        );
        assert_eq!(
            getxattr(n, b"user.a\0b", &mut buf),
            Err(Errno::from_raw(libc::EINVAL))
        );
        let size = listxattr(n, &mut []).unwrap();
        assert_eq!(size, b"user.one\0user.two\0".len());
        let mut list = vec![0u8; size];
        assert_eq!(listxattr(n, &mut list), Ok(size));
        let mut names: Vec<&[u8]> = list.split(|&c| c == 0).filter(|s| !s.is_empty()).collect();
        names.sort();
        assert_eq!(names, vec![&b"user.one"[..], b"user.two"]);
        assert_eq!(
            listxattr(n, &mut [0u8; 4]),
            Err(Errno::from_raw(libc::ERANGE))
        );
        removexattr(n, b"user.one").unwrap();
        assert_eq!(
            getxattr(n, b"user.one", &mut []),
            Err(Errno::from_raw(libc::ENODATA))
        );
    }
    // Visible on the host under the file's path.
    let mut v = [0u8; 8];
    let c = common::cstr(&t.export().join("d"));
    // SAFETY: path and name are NUL-terminated; `v` is writable.
    let r = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"user.two".as_ptr(),
            v.as_mut_ptr().cast(),
            v.len(),
        )
    };
    assert_eq!(r, 0);
}

#[test]
fn security_model_xattr_policy() {
    let t = TempDir::new("sm-xattr");
    let root = t.root();
    let (f, _) = create_file(&root, b"f", libc::O_RDWR, 0o644).unwrap();
    setxattr(&f, b"user.u", b"1", 0).unwrap();
    setxattr(&f, b"trusted.t", b"1", 0).unwrap();
    setxattr(&f, b"security.s", b"1", 0).unwrap();
    let pt = SecurityModel::Passthrough;
    let none = SecurityModel::None;
    for m in [pt, none] {
        let size = m.listxattr(&f, &mut []).unwrap();
        assert_eq!(size, b"user.u\0".len());
        let mut buf = [0u8; 32];
        assert_eq!(m.listxattr(&f, &mut buf), Ok(size));
        assert_eq!(&buf[..size], b"user.u\0");
        assert_eq!(
            m.listxattr(&f, &mut buf[..3]),
            Err(Errno::from_raw(libc::ERANGE))
        );
        assert_eq!(
            m.getxattr(&f, b"trusted.t", &mut buf),
            Err(Errno::from_raw(libc::EOPNOTSUPP))
        );
        assert_eq!(
            m.setxattr(&f, b"security.capability", b"x", 0),
            Err(Errno::from_raw(libc::EOPNOTSUPP))
        );
        assert_eq!(
            m.removexattr(&f, b"trusted.t"),
            Err(Errno::from_raw(libc::EOPNOTSUPP))
        );
        assert_eq!(m.getxattr(&f, b"user.u", &mut buf), Ok(1));
        m.setxattr(&f, b"user.v", b"2", 0).unwrap();
        m.removexattr(&f, b"user.v").unwrap();
    }
    // The raw layer itself was not changed by the refused calls.
    assert_eq!(getxattr(&f, b"trusted.t", &mut []), Ok(1));
}

#[test]
fn security_model_finish_create() {
    let t = TempDir::new("sm-create");
    let root = t.root();
    let ex = t.export();
    // Exact mode despite the umask, owner as asked.
    let (f, _) = create_file(&root, b"f", libc::O_RDWR, 0o666).unwrap();
    SecurityModel::Passthrough
        .finish_create(&root, b"f", &f, 1001, 1002, 0o2666)
        .unwrap();
    let md = lstat(&ex.join("f"));
    assert_eq!(md.permissions().mode() & 0o7777, 0o2666);
    assert_eq!((md.uid(), md.gid()), (1001, 1002));
    let d = mkdir(&root, b"d", 0o777).unwrap();
    SecurityModel::None
        .finish_create(&root, b"d", &d, 5, 6, 0o1777)
        .unwrap();
    assert_eq!(lstat(&ex.join("d")).mode() & 0o7777, 0o1777);
    let s = symlink(&root, b"s", b"f").unwrap();
    SecurityModel::Passthrough
        .finish_create(&root, b"s", &s, 7, 8, 0o777)
        .unwrap();
    let md = lstat(&ex.join("s"));
    assert_eq!((md.uid(), md.gid()), (7, 8));

    // Without CAP_CHOWN the chown fails: ignored by `none`, fatal (and the
    // entry removed) with passthrough.
    let _guard = drop_cap(CAP_CHOWN);
    let (g, _) = create_file(&root, b"g", libc::O_RDWR, 0o600).unwrap();
    SecurityModel::None
        .finish_create(&root, b"g", &g, 4242, 4242, 0o640)
        .unwrap();
    let md = lstat(&ex.join("g"));
    assert_eq!(md.uid(), 0);
    assert_eq!(md.permissions().mode() & 0o7777, 0o640);
    let (h, _) = create_file(&root, b"h", libc::O_RDWR, 0o600).unwrap();
    assert_eq!(
        SecurityModel::Passthrough.finish_create(&root, b"h", &h, 4242, 4242, 0o640),
        Err(Errno::from_raw(libc::EPERM))
    );
    assert!(!ex.join("h").exists());
    let e = mkdir(&root, b"e", 0o700).unwrap();
    assert_eq!(
        SecurityModel::Passthrough.finish_create(&root, b"e", &e, 4242, 4242, 0o755),
        Err(Errno::from_raw(libc::EPERM))
    );
    assert!(!ex.join("e").exists());
    // The name now belongs to something else: it is not removed.
    let (i, _) = create_file(&root, b"i", libc::O_RDWR, 0o600).unwrap();
    std::fs::remove_file(ex.join("i")).unwrap();
    std::fs::write(ex.join("i"), b"other").unwrap();
    assert!(SecurityModel::Passthrough
        .finish_create(&root, b"i", &i, 4242, 4242, 0o640)
        .is_err());
    assert_eq!(std::fs::read(ex.join("i")).unwrap(), b"other");
}

/// Create, unlink, and keep using the file through its node.
#[test]
fn open_but_unlinked_file_keeps_working() {
    let t = TempDir::new("unlinked");
    let root = t.root();
    let (node, fd) = create_file(&root, b"gone", libc::O_RDWR, 0o644).unwrap();
    pwrite(&fd, &[IoSlice::new(b"data")], 0).unwrap();
    unlinkat(&root, b"gone", false).unwrap();
    assert_eq!(
        lookup(&root, b"gone").map(drop),
        Err(Errno::from_raw(libc::ENOENT))
    );

    let st = stat(&node).unwrap();
    assert_eq!(st.nlink, 0);
    assert_eq!(st.size, 4);
    chmod(&node, 0o600).unwrap();
    assert_eq!(stat(&node).unwrap().mode & 0o7777, 0o600);
    chown(&node, Some(55), Some(66)).unwrap();
    assert_eq!(stat(&node).unwrap().uid, 55);
    truncate(&node, 2).unwrap();
    assert_eq!(stat(&node).unwrap().size, 2);
    let when = Timespec { sec: 42, nsec: 0 };
    utimes(&node, SetTime::At(when), SetTime::At(when)).unwrap();
    assert_eq!(stat(&node).unwrap().mtime, when);
    setxattr(&node, b"user.k", b"v", 0).unwrap();
    assert_eq!(getxattr(&node, b"user.k", &mut []), Ok(1));
    // A fresh open of the unlinked node still reaches the data.
    let fd2 = open(&node, libc::O_RDONLY).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(pread(&fd2, &mut [IoSliceMut::new(&mut buf)], 0), Ok(2));
    assert_eq!(&buf[..2], b"da");
    statfs(&node).unwrap();
}

/// Renaming a directory (even to another parent) keeps nodes inside it
/// valid, and `parent` follows the move.
#[test]
fn rename_of_directory_keeps_child_nodes() {
    both_paths(|_| {
        let t = TempDir::new("rename");
        let root = t.root();
        let a = mkdir(&root, b"a", 0o755).unwrap();
        let other = mkdir(&root, b"other", 0o755).unwrap();
        let sub = mkdir(&a, b"sub", 0o755).unwrap();
        let (f, fd) = create_file(&sub, b"f", libc::O_RDWR, 0o644).unwrap();
        pwrite(&fd, &[IoSlice::new(b"keep")], 0).unwrap();
        drop(fd);

        renameat(&root, b"a", &other, b"b").unwrap();
        assert!(t.export().join("other/b/sub/f").exists());
        assert_eq!(
            lookup(&root, b"a").map(drop),
            Err(Errno::from_raw(libc::ENOENT))
        );

        assert_eq!(stat(&f).unwrap().size, 4);
        let fd = open(&f, libc::O_RDONLY).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(pread(&fd, &mut [IoSliceMut::new(&mut buf)], 0), Ok(4));
        assert_eq!(&buf, b"keep");
        let again = lookup(&sub, b"f").unwrap();
        assert!(again.same_inode(&f).unwrap());
        let (g, _) = create_file(&a, b"new", libc::O_RDWR, 0o644).unwrap();
        assert!(t.export().join("other/b/new").exists());
        drop(g);
        assert!(parent(&a, &root).unwrap().same_inode(&other).unwrap());
        assert!(parent(&sub, &root).unwrap().same_inode(&a).unwrap());
    });
}
