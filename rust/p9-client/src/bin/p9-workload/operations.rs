// SPDX-License-Identifier: GPL-2.0-or-later
//! The well-formed operations, checked against the exported host
//! directory, and many requests in flight on one connection.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use p9_client::Pending;
use p9_wire::consts::{dotl_open, getattr, setattr, xattr_flags, AT_REMOVEDIR, NOFID};
use p9_wire::errno::{EEXIST, ENODATA, ENOENT, ENOTEMPTY, EOPNOTSUPP};
use p9_wire::{Errno, SetAttr, Tmessage};

use crate::runner::{e, Runner, PATIENCE};

fn host_lgetxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: NUL-terminated strings; the buffer is valid for its length.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| {
        buf.truncate(r as usize);
        buf
    })
}

fn host_statvfs(path: &Path) -> Option<libc::statvfs> {
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: NUL-terminated path; `st` is valid for writes.
    let r = unsafe { libc::statvfs(p.as_ptr(), st.as_mut_ptr()) };
    // SAFETY: statvfs filled it on success.
    (r == 0).then(|| unsafe { st.assume_init() })
}

fn names(ents: &[p9_wire::Dirent]) -> BTreeSet<String> {
    ents.iter()
        .map(|d| d.name.to_string_lossy().into_owned())
        .collect()
}

/// The well-formed part: one session, then concurrency on a second one.
pub(crate) fn operations(r: &mut Runner, work: &str, wdir: &Path) {
    let session = match r.session() {
        Ok(s) => s,
        Err(msg) => {
            r.check("version + attach", |_| Err(msg));
            return;
        }
    };
    r.check("version + attach", |_| Ok(String::new()));
    let (c, root) = session;
    let c = &c;

    // The working directory's fid.
    let mut wfid = NOFID;
    r.check(
        "walk to the working directory, qid matches the host",
        |_| {
            let (fid, qids) = e("Twalk", c.walk_new(root, &[work]))?;
            wfid = fid;
            ensure!(qids.len() == 1 && qids[0].typ & 0x80 != 0, "qids {qids:?}");
            let st = e("Tgetattr", c.getattr(fid, getattr::BASIC))?;
            let md = fs::metadata(wdir).map_err(|x| x.to_string())?;
            ensure!(
                st.qid == qids[0],
                "getattr qid {:?} vs walk {:?}",
                st.qid,
                qids[0]
            );
            ensure!(
                st.mode == md.mode(),
                "mode {:o} vs host {:o}",
                st.mode,
                md.mode()
            );
            Ok(String::new())
        },
    );
    if wfid == NOFID {
        return;
    }

    r.check(
        "walk: missing name is ENOENT, partial walk returns the prefix",
        |_| {
            let missing = c.walk_new(wfid, &["no-such-file"]);
            ensure!(matches!(missing, Err(x) if x == ENOENT), "got {missing:?}");
            let qids = e(
                "partial Twalk",
                c.walk(wfid, c.alloc_fid(), &["many", "nope"]),
            )?;
            ensure!(qids.len() == 1, "partial walk gave {} qids", qids.len());
            Ok(String::new())
        },
    );

    r.check("lopen + read of a host file", |_| {
        let (f, _) = e("Twalk", c.walk_new(wfid, &["hello.txt"]))?;
        e("Tlopen", c.lopen(f, dotl_open::RDONLY))?;
        let data = e("Tread", c.read_to_end(f, 0))?;
        e("Tclunk", c.clunk(f))?;
        ensure!(data == b"hello, 9p\n", "read {data:?}");
        Ok(String::new())
    });

    r.check(
        "lcreate + write 200 KiB + read back, host sees the bytes",
        |_| {
            let f = c.alloc_fid();
            e("Twalk clone", c.clone_fid(wfid, f))?;
            e(
                "Tlcreate",
                c.lcreate(f, "new.bin", dotl_open::RDWR | dotl_open::EXCL, 0o640, 0),
            )?;
            let data: Vec<u8> = (0..200 * 1024u32).map(|i| (i % 251) as u8).collect();
            let mut off = 0;
            for chunk in data.chunks(48 * 1024) {
                let n = e("Twrite", c.write(f, off as u64, chunk))?;
                ensure!(n as usize == chunk.len(), "short write {n}");
                off += chunk.len();
            }
            let back = e("Tread", c.read_to_end(f, 0))?;
            e("Tfsync", c.fsync(f, false))?;
            e("Tclunk", c.clunk(f))?;
            ensure!(back == data, "9P read back differs ({} bytes)", back.len());
            let host = fs::read(wdir.join("new.bin")).map_err(|x| x.to_string())?;
            ensure!(host == data, "host file differs ({} bytes)", host.len());
            let f2 = c.alloc_fid();
            e("Twalk clone", c.clone_fid(wfid, f2))?;
            let again = c.lcreate(f2, "new.bin", dotl_open::RDWR | dotl_open::EXCL, 0o640, 0);
            let _ = c.clunk(f2);
            ensure!(
                matches!(again, Err(x) if x == EEXIST),
                "second O_EXCL: {again:?}"
            );
            Ok(String::new())
        },
    );

    r.check("read 64 KiB host file in 4 KiB reads", |_| {
        let (f, _) = e("Twalk", c.walk_new(wfid, &["big.bin"]))?;
        e("Tlopen", c.lopen(f, dotl_open::RDONLY))?;
        let mut got = Vec::new();
        loop {
            let chunk = e("Tread", c.read(f, got.len() as u64, 4096))?;
            if chunk.is_empty() {
                break;
            }
            got.extend(chunk);
        }
        e("Tclunk", c.clunk(f))?;
        let host = fs::read(wdir.join("big.bin")).map_err(|x| x.to_string())?;
        ensure!(got == host, "read {} bytes, differs from host", got.len());
        Ok(String::new())
    });

    r.check("mkdir, host sees a directory", |_| {
        e("Tmkdir", c.mkdir(wfid, "sub", 0o750, 0))?;
        let md = fs::metadata(wdir.join("sub")).map_err(|x| x.to_string())?;
        ensure!(md.is_dir(), "not a directory");
        ensure!(md.mode() & 0o777 == 0o750, "mode {:o}", md.mode() & 0o777);
        Ok(String::new())
    });

    r.check("readdir of 200 entries with 256-byte counts", |_| {
        let (d, _) = e("Twalk", c.walk_new(wfid, &["many"]))?;
        e("Tlopen", c.lopen(d, dotl_open::RDONLY))?;
        let ents = e("Treaddir", c.readdir_all_count(d, 256))?;
        e("Tclunk", c.clunk(d))?;
        let got = names(&ents);
        ensure!(got.len() == ents.len(), "duplicate entries");
        let mut want: BTreeSet<String> = fs::read_dir(wdir.join("many"))
            .map_err(|x| x.to_string())?
            .map(|x| x.map(|x| x.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()
            .map_err(|x| x.to_string())?;
        want.insert(".".into());
        want.insert("..".into());
        ensure!(
            got == want,
            "{} entries vs host {}: {:?}",
            got.len(),
            want.len(),
            got.symmetric_difference(&want).take(5).collect::<Vec<_>>()
        );
        Ok(format!("{} entries", ents.len()))
    });

    r.check("getattr matches the host's lstat", |_| {
        let (f, _) = e("Twalk", c.walk_new(wfid, &["big.bin"]))?;
        let st = e("Tgetattr", c.getattr(f, getattr::ALL))?;
        e("Tclunk", c.clunk(f))?;
        let md = fs::symlink_metadata(wdir.join("big.bin")).map_err(|x| x.to_string())?;
        ensure!(st.size == md.size(), "size {} vs {}", st.size, md.size());
        ensure!(
            st.mode == md.mode(),
            "mode {:o} vs {:o}",
            st.mode,
            md.mode()
        );
        ensure!(
            (st.uid, st.gid, st.nlink) == (md.uid(), md.gid(), md.nlink()),
            "uid/gid/nlink {:?} vs {:?}",
            (st.uid, st.gid, st.nlink),
            (md.uid(), md.gid(), md.nlink())
        );
        ensure!(
            st.mtime_sec == md.mtime() as u64 && st.mtime_nsec == md.mtime_nsec() as u64,
            "mtime differs"
        );
        Ok(String::new())
    });

    r.check("setattr: chmod, truncate, mtime; host sees them", |_| {
        let (f, _) = e("Twalk", c.walk_new(wfid, &["new.bin"]))?;
        let attr = SetAttr {
            valid: setattr::MODE | setattr::SIZE | setattr::MTIME | setattr::MTIME_SET,
            mode: 0o600,
            size: 1234,
            mtime_sec: 1_000_000_000,
            mtime_nsec: 5,
            ..SetAttr::default()
        };
        e("Tsetattr", c.setattr(f, attr))?;
        e("Tclunk", c.clunk(f))?;
        let md = fs::metadata(wdir.join("new.bin")).map_err(|x| x.to_string())?;
        ensure!(
            md.permissions().mode() & 0o7777 == 0o600,
            "mode {:o}",
            md.mode()
        );
        ensure!(md.size() == 1234, "size {}", md.size());
        ensure!(
            md.mtime() == 1_000_000_000 && md.mtime_nsec() == 5,
            "mtime {}.{}",
            md.mtime(),
            md.mtime_nsec()
        );
        Ok(String::new())
    });

    r.check("renameat and Trename; host sees the moves", |_| {
        e(
            "Trenameat",
            c.renameat(wfid, "new.bin", wfid, "renamed.bin"),
        )?;
        ensure!(
            !wdir.join("new.bin").exists() && wdir.join("renamed.bin").exists(),
            "host does not see renameat"
        );
        let (f, _) = e("Twalk", c.walk_new(wfid, &["renamed.bin"]))?;
        let (sub, _) = e("Twalk", c.walk_new(wfid, &["sub"]))?;
        e("Trename", c.rename(f, sub, "moved.bin"))?;
        // The fid follows the file.
        let st = e("Tgetattr after rename", c.getattr(f, getattr::BASIC))?;
        e("Tclunk", c.clunk(f))?;
        e("Tclunk", c.clunk(sub))?;
        ensure!(st.size == 1234, "size {} after rename", st.size);
        ensure!(
            wdir.join("sub/moved.bin").is_file() && !wdir.join("renamed.bin").exists(),
            "host does not see Trename"
        );
        Ok(String::new())
    });

    r.check("symlink + readlink; host sees the link", |_| {
        e("Tsymlink", c.symlink(wfid, "lnk", "sub/moved.bin", 0))?;
        let host = fs::read_link(wdir.join("lnk")).map_err(|x| x.to_string())?;
        ensure!(host == Path::new("sub/moved.bin"), "host link {host:?}");
        let (l, _) = e("Twalk", c.walk_new(wfid, &["lnk"]))?;
        let target = e("Treadlink", c.readlink(l))?;
        e("Tclunk", c.clunk(l))?;
        ensure!(target == b"sub/moved.bin", "readlink {target:?}");
        Ok(String::new())
    });

    r.check("link: hard link, nlink 2 on both sides", |_| {
        let (f, _) = e("Twalk", c.walk_new(wfid, &["hello.txt"]))?;
        e("Tlink", c.link(wfid, f, "hello.hard"))?;
        let st = e("Tgetattr", c.getattr(f, getattr::BASIC))?;
        e("Tclunk", c.clunk(f))?;
        let md = fs::metadata(wdir.join("hello.hard")).map_err(|x| x.to_string())?;
        ensure!(
            st.nlink == 2 && md.nlink() == 2,
            "nlink {} / host {}",
            st.nlink,
            md.nlink()
        );
        Ok(String::new())
    });

    r.check(
        "unlinkat: file, non-empty dir (ENOTEMPTY), empty dir",
        |_| {
            e("Tunlinkat file", c.unlinkat(wfid, "hello.hard", 0))?;
            ensure!(
                !wdir.join("hello.hard").exists(),
                "host still has hello.hard"
            );
            let busy = c.unlinkat(wfid, "sub", AT_REMOVEDIR);
            ensure!(
                matches!(busy, Err(x) if x == ENOTEMPTY),
                "rmdir non-empty: {busy:?}"
            );
            let (sub, _) = e("Twalk", c.walk_new(wfid, &["sub"]))?;
            e("Tunlinkat moved.bin", c.unlinkat(sub, "moved.bin", 0))?;
            e("Tclunk", c.clunk(sub))?;
            e("Tunlinkat dir", c.unlinkat(wfid, "sub", AT_REMOVEDIR))?;
            ensure!(!wdir.join("sub").exists(), "host still has sub");
            Ok(String::new())
        },
    );

    r.check("statfs matches the host's statvfs", |_| {
        let st = e("Tstatfs", c.statfs(wfid))?;
        let h = host_statvfs(wdir).ok_or("host statvfs failed")?;
        // 9p.c scales the block size up to what fits in one message.
        let factor = ((u64::from(c.msize()) - 24) / h.f_bsize).max(1);
        ensure!(
            u64::from(st.bsize) == h.f_bsize * factor,
            "bsize {} vs host {} x {factor}",
            st.bsize,
            h.f_bsize
        );
        ensure!(
            st.blocks == h.f_blocks / factor,
            "blocks {} vs host {} / {factor}",
            st.blocks,
            h.f_blocks
        );
        ensure!(st.namelen as u64 == h.f_namemax, "namelen {}", st.namelen);
        Ok(String::new())
    });

    r.check("xattr: set, get, list; host sees the value", |_| {
        let (f, _) = e("Twalk", c.walk_new(wfid, &["hello.txt"]))?;
        let set = c.xattr_set(f, "user.p9serve", b"value-1", xattr_flags::CREATE);
        if let Err(x) = set {
            let _ = c.clunk(f);
            if x == EOPNOTSUPP || x == Errno(95) {
                return Ok("skipped: the host filesystem has no user xattrs".into());
            }
            return Err(format!("xattr set: {x}"));
        }
        let got = e("xattr get", c.xattr_get(f, "user.p9serve"))?;
        let list = e("xattr list", c.xattr_get(f, ""))?;
        let missing = c.xattr_get(f, "user.absent");
        e("Tclunk", c.clunk(f))?;
        ensure!(got == b"value-1", "9P value {got:?}");
        let host = host_lgetxattr(&wdir.join("hello.txt"), "user.p9serve");
        ensure!(
            host.as_deref() == Some(&b"value-1"[..]),
            "host value {host:?}"
        );
        ensure!(
            list.split(|b| *b == 0).any(|n| n == b"user.p9serve"),
            "list {list:?}"
        );
        ensure!(
            matches!(missing, Err(x) if x == ENODATA),
            "absent attribute: {missing:?}"
        );
        Ok(String::new())
    });

    r.check(
        "Tflush of pipelined reads: each settles before its Rflush",
        |_| {
            let (f, _) = e("Twalk", c.walk_new(wfid, &["big.bin"]))?;
            e("Tlopen", c.lopen(f, dotl_open::RDONLY))?;
            let mut cancelled = 0;
            for _ in 0..50 {
                let p = c.send(&Tmessage::Read {
                    fid: f,
                    offset: 0,
                    count: 65536,
                });
                let tag = p.tag();
                e("Tflush", c.flush(tag))?;
                match p.wait_timeout(Duration::ZERO) {
                    None => return Err(format!("tag {tag} still in flight after its Rflush")),
                    Some(None) => cancelled += 1,
                    Some(Some(Ok(_))) => {}
                    Some(Some(Err(x))) => return Err(format!("flushed read failed: {x}")),
                }
            }
            // A Tflush of a tag nobody uses is answered too.
            e("Tflush of an unused tag", c.flush(0x7777))?;
            e("Tclunk", c.clunk(f))?;
            Ok(format!("{cancelled} of 50 cancelled"))
        },
    );

    concurrency(r, work);
    r.check("session still healthy; clunk of unknown fid fails", |_| {
        let bad = c.clunk(0x00ab_cdef);
        ensure!(bad.is_err(), "clunk of unknown fid succeeded");
        e("Tclunk", c.clunk(wfid))?;
        e("Tclunk root", c.clunk(root))?;
        Ok(String::new())
    });
}

/// Many requests from several threads on one connection, and many in
/// flight at once.
fn concurrency(r: &mut Runner, work: &str) {
    let mut conn = None;
    r.check("second connection: version + attach", |r| {
        conn = Some(r.session()?);
        Ok(String::new())
    });
    let Some((c, root)) = conn else { return };
    let c = &c;
    r.check(
        "8 threads x 300 walk/getattr/read/clunk on one connection",
        |_| {
            let errors: Vec<String> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..8)
                    .map(|t| {
                        s.spawn(move || -> Result<(), String> {
                            for i in 0..300 {
                                let (f, _) = e("Twalk", c.walk_new(root, &[work, "big.bin"]))?;
                                let st = e("Tgetattr", c.getattr(f, getattr::BASIC))?;
                                ensure!(st.size == 65536, "size {}", st.size);
                                e("Tlopen", c.lopen(f, dotl_open::RDONLY))?;
                                let off = ((t * 300 + i) % 16) as u64 * 4096;
                                let d = e("Tread", c.read(f, off, 4096))?;
                                let want: Vec<u8> = (off as u32..off as u32 + 4096)
                                    .map(|i| (i * 7) as u8)
                                    .collect();
                                ensure!(d == want, "read at {off} differs");
                                e("Tclunk", c.clunk(f))?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                hs.into_iter()
                    .filter_map(|h| match h.join() {
                        Ok(Ok(())) => None,
                        Ok(Err(msg)) => Some(msg),
                        Err(_) => Some("thread panicked".into()),
                    })
                    .collect()
            });
            ensure!(errors.is_empty(), "{}", errors.join("; "));
            Ok(String::new())
        },
    );
    r.check("1000 getattr requests in flight at once", |_| {
        let (f, _) = e("Twalk", c.walk_new(root, &[work, "many"]))?;
        let pending: Vec<Pending> = (0..1000)
            .map(|_| {
                c.send(&Tmessage::Getattr {
                    fid: f,
                    request_mask: getattr::BASIC,
                })
            })
            .collect();
        let mut ok = 0;
        for p in pending {
            match p.wait_timeout(PATIENCE) {
                Some(Some(Ok(_))) => ok += 1,
                other => return Err(format!("getattr: {other:?}")),
            }
        }
        e("Tclunk", c.clunk(f))?;
        ensure!(ok == 1000, "{ok} replies");
        ensure!(
            c.transport().stray_replies() == 0,
            "{} stray replies",
            c.transport().stray_replies()
        );
        Ok(String::new())
    });
}
