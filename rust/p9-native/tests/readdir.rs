// SPDX-License-Identifier: GPL-2.0-or-later
//! Batched directory reading with resume at an offset cookie.

mod common;

use std::collections::HashMap;

use common::TempDir;
use p9_native::{create_file, lookup, mkdir, open, symlink, DirReader, Errno};

const N: usize = 1000;

fn names() -> Vec<String> {
    (0..N)
        .map(|i| format!("entry-{i:04}-{}", "x".repeat(i % 37)))
        .collect()
}

fn populate(t: &TempDir) {
    let root = t.root();
    let d = mkdir(&root, b"big", 0o755).unwrap();
    for n in names() {
        create_file(&d, n.as_bytes(), libc::O_RDONLY, 0o644).unwrap();
    }
}

fn check(seen: &HashMap<Vec<u8>, usize>) {
    for n in names() {
        assert_eq!(seen.get(n.as_bytes()), Some(&1), "{n}");
    }
    assert_eq!(seen.get(&b"."[..]), Some(&1));
    assert_eq!(seen.get(&b".."[..]), Some(&1));
    assert_eq!(seen.len(), N + 2);
}

/// Like the engine: one small batch per Treaddir, resuming from the last
/// entry's cookie with seek before each batch, and taking only part of a
/// batch sometimes (as when the reply buffer fills up).
#[test]
fn thousand_entries_in_small_batches_with_resume() {
    let t = TempDir::new("readdir");
    populate(&t);
    let root = t.root();
    let big = lookup(&root, b"big").unwrap();
    let mut reader = DirReader::open(&big).unwrap();
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut cookie = 0i64;
    let mut buf = vec![0u8; 512];
    let mut batches = 0;
    loop {
        reader.seek(cookie).unwrap();
        let batch: Vec<_> = reader.read_batch(&mut buf).unwrap().collect();
        if batch.is_empty() {
            break;
        }
        batches += 1;
        // Every other batch, keep only the first two entries.
        let keep = if batches % 2 == 0 {
            batch.len().min(2)
        } else {
            batch.len()
        };
        for e in &batch[..keep] {
            *seen.entry(e.name.to_vec()).or_default() += 1;
            if e.name.starts_with(b"entry-") {
                assert_eq!(e.d_type, libc::DT_REG);
                assert_ne!(e.ino, 0);
            }
            cookie = e.off;
        }
    }
    assert!(batches > 50, "batches were not small: {batches}");
    check(&seen);

    // Rewind and read it all again, without seeking between batches.
    reader.seek(0).unwrap();
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut big_buf = vec![0u8; 8192];
    loop {
        let mut any = false;
        for e in reader.read_batch(&mut big_buf).unwrap() {
            any = true;
            *seen.entry(e.name.to_vec()).or_default() += 1;
        }
        if !any {
            break;
        }
    }
    check(&seen);
}

/// A second reader (a new open, like a new fid) resumes from a cookie of
/// the first.
#[test]
fn cookie_resumes_on_another_reader() {
    let t = TempDir::new("readdir2");
    populate(&t);
    let root = t.root();
    let big = lookup(&root, b"big").unwrap();
    let mut first = DirReader::open(&big).unwrap();
    let mut buf = vec![0u8; 1024];
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut cookie = 0;
    for e in first.read_batch(&mut buf).unwrap() {
        *seen.entry(e.name.to_vec()).or_default() += 1;
        cookie = e.off;
    }
    let fd = open(&big, libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
    let mut second = DirReader::from_fd(fd);
    second.seek(cookie).unwrap();
    loop {
        let batch: Vec<_> = second
            .read_batch(&mut buf)
            .unwrap()
            .map(|e| e.name.to_vec())
            .collect();
        if batch.is_empty() {
            break;
        }
        for n in batch {
            *seen.entry(n).or_default() += 1;
        }
    }
    check(&seen);
}

#[test]
fn reader_errors() {
    let t = TempDir::new("readdir3");
    let root = t.root();
    let (f, _) = create_file(&root, b"f", libc::O_RDWR, 0o644).unwrap();
    assert_eq!(
        DirReader::open(&f).unwrap_err(),
        Errno::from_raw(libc::ENOTDIR)
    );
    let s = symlink(&root, b"s", b".").unwrap();
    assert_eq!(
        DirReader::open(&s).unwrap_err(),
        Errno::from_raw(libc::ENOTDIR)
    );
    let mut r = DirReader::open(&root).unwrap();
    // Too small for any entry.
    assert_eq!(
        r.read_batch(&mut [0u8; 8]).map(|b| b.count()),
        Err(Errno::from_raw(libc::EINVAL))
    );
    let mut buf = [0u8; 4096];
    let names: Vec<Vec<u8>> = r
        .read_batch(&mut buf)
        .unwrap()
        .map(|e| e.name.to_vec())
        .collect();
    assert_eq!(names.len(), 4); // . .. f s
    assert!(r.read_batch(&mut buf).unwrap().next().is_none());
    p9_native::fsync(&r, false).unwrap();
}
