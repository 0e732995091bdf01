// SPDX-License-Identifier: GPL-2.0-or-later
//! Escape attempts: every one must be refused or stay inside the export,
//! on both the openat2 and the plain-openat lookup paths.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::fs::{symlink as host_symlink, MetadataExt};

use common::{both_paths, lstat, TempDir};
use p9_native::{
    create_file, link, lookup, mkdir, mknod, open, parent, readlink, renameat, stat, symlink,
    unlinkat, Errno, Node,
};

fn errno(e: i32) -> Errno {
    Errno::from_raw(e)
}

#[test]
fn bad_names_are_refused() {
    both_paths(|_| {
        let t = TempDir::new("badnames");
        let root = t.root();
        std::fs::create_dir(t.export().join("sub")).unwrap();
        assert_eq!(lookup(&root, b"..").unwrap_err(), errno(libc::EINVAL));
        assert_eq!(lookup(&root, b"/etc").unwrap_err(), errno(libc::ENOENT));
        assert_eq!(lookup(&root, b"/").unwrap_err(), errno(libc::ENOENT));
        assert_eq!(lookup(&root, b"sub/..").unwrap_err(), errno(libc::ENOENT));
        assert_eq!(
            lookup(&root, b"../outside").unwrap_err(),
            errno(libc::ENOENT)
        );
        assert_eq!(lookup(&root, b"").unwrap_err(), errno(libc::ENOENT));
        assert_eq!(lookup(&root, b"sub\0x").unwrap_err(), errno(libc::EINVAL));
        // "." is the directory itself.
        let me = lookup(&root, b".").unwrap();
        assert!(me.same_inode(&root).unwrap());

        // Creation with a path or a special name never reaches outside.
        assert_eq!(
            mkdir(&root, b"../evil", 0o755).unwrap_err(),
            errno(libc::ENOENT)
        );
        assert_eq!(mkdir(&root, b"..", 0o755).unwrap_err(), errno(libc::EEXIST));
        assert_eq!(mkdir(&root, b".", 0o755).unwrap_err(), errno(libc::EEXIST));
        assert_eq!(
            create_file(&root, b"../evil", libc::O_RDWR, 0o644).unwrap_err(),
            errno(libc::ENOENT)
        );
        assert_eq!(
            symlink(&root, b"/tmp/evil", b"x").unwrap_err(),
            errno(libc::ENOENT)
        );
        assert_eq!(
            mknod(&root, b"..", libc::S_IFIFO | 0o644, 0).unwrap_err(),
            errno(libc::EEXIST)
        );
        let sub = lookup(&root, b"sub").unwrap();
        assert_eq!(
            link(&sub, &root, b"../evil").unwrap_err(),
            errno(libc::ENOENT)
        );
        assert_eq!(
            unlinkat(&root, b"../outside", true).unwrap_err(),
            errno(libc::ENOENT)
        );
        assert_eq!(
            unlinkat(&root, b"..", true).unwrap_err(),
            errno(libc::ENOTEMPTY)
        );
        assert_eq!(
            unlinkat(&root, b".", true).unwrap_err(),
            errno(libc::EINVAL)
        );
        assert_eq!(
            renameat(&root, b"sub", &root, b"../moved").unwrap_err(),
            errno(libc::ENOENT)
        );
        assert_eq!(
            renameat(&root, b"..", &root, b"x").unwrap_err(),
            errno(libc::EISDIR)
        );
        assert_eq!(
            renameat(&root, b"sub", &root, b".").unwrap_err(),
            errno(libc::EISDIR)
        );
        assert!(!t.path.join("evil").exists());
        assert!(!t.path.join("moved").exists());
        assert!(t.outside().exists());
    });
}

#[test]
fn parent_stops_at_the_root() {
    both_paths(|_| {
        let t = TempDir::new("parent");
        let root = t.root();
        let a = mkdir(&root, b"a", 0o755).unwrap();
        let b = mkdir(&a, b"b", 0o755).unwrap();
        assert!(parent(&b, &root).unwrap().same_inode(&a).unwrap());
        assert!(parent(&a, &root).unwrap().same_inode(&root).unwrap());
        let up = parent(&root, &root).unwrap();
        assert!(up.same_inode(&root).unwrap());
        // Walking up repeatedly never leaves the root.
        let mut n = b;
        for _ in 0..5 {
            n = parent(&n, &root).unwrap();
        }
        assert!(n.same_inode(&root).unwrap());
        let host_parent = Node::open_root(&t.path).unwrap();
        assert!(!n.same_inode(&host_parent).unwrap());
        // parent of a non-directory.
        let (f, _) = create_file(&root, b"f", libc::O_RDWR, 0o644).unwrap();
        assert_eq!(parent(&f, &root).unwrap_err(), errno(libc::ENOTDIR));
    });
}

/// Symbolic links pointing anywhere are held as links; looking up through
/// them, opening them or creating through them is refused.
#[test]
fn symlinks_are_never_followed() {
    both_paths(|_| {
        let t = TempDir::new("symlinks");
        let ex = t.export();
        let outside = t.outside();
        std::fs::write(outside.join("secret"), b"host data").unwrap();
        let host_root_fd = Node::open_root(std::path::Path::new("/")).unwrap();
        let magic_fd = format!("/proc/self/fd/{}", host_root_fd.as_raw_fd());
        let targets: Vec<(&[u8], String)> = vec![
            (b"abs", "/".to_string()),
            (b"etc", "/etc".to_string()),
            (b"rel", "../../..".to_string()),
            (b"up", "..".to_string()),
            (b"procroot", "/proc/self/root".to_string()),
            (b"procfd", magic_fd.clone()),
            (b"secret", "../outside/secret".to_string()),
        ];
        for (name, target) in &targets {
            host_symlink(target, ex.join(std::str::from_utf8(name).unwrap())).unwrap();
        }
        let root = t.root();
        let host_root = lstat(std::path::Path::new("/"));
        for (name, target) in &targets {
            let n = lookup(&root, name).unwrap();
            let st = stat(&n).unwrap();
            assert!(st.is_symlink(), "{target}: not held as a link");
            assert!(!(st.ino == host_root.ino() && st.dev == host_root.dev()));
            assert_eq!(readlink(&n).unwrap(), target.as_bytes());
            // A link node is not a directory: nothing can be looked up
            // through it.
            for child in [&b"etc"[..], b"passwd", b"."] {
                assert_eq!(
                    lookup(&n, child).unwrap_err(),
                    errno(libc::ENOTDIR),
                    "{target}/{child:?}"
                );
            }
            for flags in [libc::O_RDONLY, libc::O_RDWR] {
                assert_eq!(
                    open(&n, flags).unwrap_err(),
                    errno(libc::ELOOP),
                    "open {target}"
                );
            }
            // As open(2) with O_NOFOLLOW says when a directory is asked for.
            assert_eq!(
                open(&n, libc::O_RDONLY | libc::O_DIRECTORY).unwrap_err(),
                errno(libc::ENOTDIR),
                "open {target}"
            );
            assert_eq!(mkdir(&n, b"x", 0o755).unwrap_err(), errno(libc::ENOTDIR));
            // Creating over the link name neither follows it nor clobbers
            // the target.
            assert_eq!(
                create_file(
                    &root,
                    name,
                    libc::O_WRONLY | libc::O_TRUNC | libc::O_EXCL,
                    0o644
                )
                .unwrap_err(),
                errno(libc::EEXIST)
            );
            assert_eq!(
                create_file(&root, name, libc::O_WRONLY | libc::O_TRUNC, 0o644).unwrap_err(),
                errno(libc::ELOOP)
            );
        }
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"host data");
        // parent() refuses link nodes too.
        let abs = lookup(&root, b"abs").unwrap();
        assert_eq!(parent(&abs, &root).unwrap_err(), errno(libc::ENOTDIR));
    });
}

/// A dangling link to a path outside must not make O_CREAT create it.
#[test]
fn dangling_symlink_does_not_create_outside() {
    both_paths(|_| {
        let t = TempDir::new("dangling");
        let target = t.outside().join("created-by-guest");
        host_symlink(&target, t.export().join("dangle")).unwrap();
        let root = t.root();
        assert_eq!(
            create_file(&root, b"dangle", libc::O_WRONLY, 0o644).unwrap_err(),
            errno(libc::ELOOP)
        );
        assert_eq!(
            create_file(&root, b"dangle", libc::O_WRONLY | libc::O_EXCL, 0o644).unwrap_err(),
            errno(libc::EEXIST)
        );
        assert_eq!(
            mkdir(&root, b"dangle", 0o755).unwrap_err(),
            errno(libc::EEXIST)
        );
        assert_eq!(
            mknod(&root, b"dangle", libc::S_IFIFO | 0o644, 0).unwrap_err(),
            errno(libc::EEXIST)
        );
        assert_eq!(
            symlink(&root, b"dangle", b"x").unwrap_err(),
            errno(libc::EEXIST)
        );
        assert!(!target.exists());
        assert!(std::fs::symlink_metadata(&target).is_err());
    });
}

/// A link to /proc/self/fd/N of a host directory descriptor: a magic link
/// that openat2 and O_NOFOLLOW both keep us from following.
#[test]
fn magic_links_are_not_followed() {
    both_paths(|_| {
        let t = TempDir::new("magic");
        let outside = t.outside();
        std::fs::write(outside.join("f"), b"x").unwrap();
        let host_dir = Node::open_root(&outside).unwrap();
        host_symlink(
            format!("/proc/self/fd/{}", host_dir.as_raw_fd()),
            t.export().join("m"),
        )
        .unwrap();
        host_symlink("/proc/self/cwd", t.export().join("cwd")).unwrap();
        let root = t.root();
        for name in [&b"m"[..], b"cwd"] {
            let n = lookup(&root, name).unwrap();
            assert!(stat(&n).unwrap().is_symlink());
            assert_eq!(lookup(&n, b"f").unwrap_err(), errno(libc::ENOTDIR));
            assert_eq!(open(&n, libc::O_RDONLY).unwrap_err(), errno(libc::ELOOP));
            assert_eq!(
                p9_native::chmod(&n, 0o777).unwrap_err(),
                errno(libc::EOPNOTSUPP)
            );
        }
        assert_eq!(lstat(&outside).mode() & 0o7777, 0o755);
    });
}
