// SPDX-License-Identifier: GPL-2.0-or-later
//! Running out of keys is an error, not a crash, and deleting one frees it.
//! Alone in its own test binary: it uses up the process-wide key table.

use co_storage::{Error, Key, KEYS_MAX};

const _: () = assert!(KEYS_MAX >= 128);

#[test]
fn exhausting_keys_is_an_error() {
    let keys: Vec<Key> = (0..KEYS_MAX).map(|_| Key::create(None).unwrap()).collect();
    assert_eq!(Key::create(None), Err(Error::Exhausted));
    assert_eq!(Error::Exhausted.errno(), libc::EAGAIN);
    keys[7].delete().unwrap();
    let again = Key::create(None).unwrap();
    assert_ne!(
        again, keys[7],
        "a recreated key must differ from the deleted one"
    );
    assert!(!keys[7].is_live());
    assert_eq!(Key::create(None), Err(Error::Exhausted));
    again.delete().unwrap();
    for (i, k) in keys.into_iter().enumerate() {
        if i != 7 {
            k.delete().unwrap();
        }
    }
}
