// SPDX-License-Identifier: GPL-2.0-or-later
//! Open-file-description byte-range locks.

mod common;

use common::TempDir;
use p9_native::{create_file, getlk, open, setlk, Conflict, Errno, LockType};

#[test]
fn ofd_locks_conflict_between_opens_not_within_one() {
    let t = TempDir::new("locks");
    let root = t.root();
    let (node, a) = create_file(&root, b"f", libc::O_RDWR, 0o644).unwrap();
    let b = open(&node, libc::O_RDWR).unwrap();

    setlk(&a, LockType::Write, 0, 100).unwrap();
    // Same open file description: no conflict, the lock is replaced/merged.
    setlk(&a, LockType::Write, 50, 10).unwrap();
    assert_eq!(getlk(&a, LockType::Write, 0, 200), Ok(None));
    // Another open of the same file conflicts, without blocking.
    assert_eq!(
        setlk(&b, LockType::Write, 50, 10),
        Err(Errno::from_raw(libc::EAGAIN))
    );
    assert_eq!(
        setlk(&b, LockType::Read, 99, 1),
        Err(Errno::from_raw(libc::EAGAIN))
    );
    setlk(&b, LockType::Write, 100, 10).unwrap(); // just past the range
    let c = getlk(&b, LockType::Read, 0, 10).unwrap();
    assert_eq!(
        c,
        Some(Conflict {
            typ: LockType::Write,
            start: 0,
            len: 100,
            pid: -1
        })
    );

    // Downgrade to a read lock: readers may share.
    setlk(&a, LockType::Read, 0, 100).unwrap();
    setlk(&b, LockType::Read, 0, 10).unwrap();
    assert_eq!(
        setlk(&b, LockType::Write, 0, 10),
        Err(Errno::from_raw(libc::EAGAIN))
    );
    let c = getlk(&b, LockType::Write, 0, 10).unwrap().unwrap();
    assert_eq!(c.typ, LockType::Read);

    // Unlock releases; closing the other description releases its locks.
    setlk(&a, LockType::Unlock, 0, 0).unwrap();
    setlk(&b, LockType::Write, 0, 10).unwrap();
    assert_eq!(
        setlk(&a, LockType::Write, 105, 1),
        Err(Errno::from_raw(libc::EAGAIN))
    );
    drop(b);
    setlk(&a, LockType::Write, 0, 0).unwrap(); // whole file
    assert_eq!(getlk(&a, LockType::Write, 0, 0), Ok(None));

    // Errors.
    assert_eq!(
        getlk(&a, LockType::Unlock, 0, 0),
        Err(Errno::from_raw(libc::EINVAL))
    );
    assert_eq!(
        setlk(&a, LockType::Write, u64::MAX, 1),
        Err(Errno::from_raw(libc::EINVAL))
    );
    let ro = open(&node, libc::O_RDONLY).unwrap();
    assert_eq!(
        setlk(&ro, LockType::Write, 0, 1),
        Err(Errno::from_raw(libc::EBADF))
    );
}
