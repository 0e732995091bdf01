// SPDX-License-Identifier: GPL-2.0-or-later
//! The path algebra of a `QRS_P9_BACKEND_PATHNAMES` backend: how names
//! become C strings, and how the `/`-separated paths `name_to_path` makes
//! are split, renamed and compared (9p.c's string operations on
//! `V9fsPath`).  A path may count a trailing NUL (9p-local's do); what is
//! derived from a path keeps its convention.

use std::ffi::CStr;
use std::sync::Arc;

use p9_wire::errno::EINVAL;

use p9_engine::backend::Result;

/// A node: the bytes of a `QrsP9Path`.
pub(super) type Node = Arc<[u8]>;

/// Names up to this long (NUL included) go to C from a stack buffer.
const NAME_STACK: usize = 256;

/// Run `f` with `name` as a NUL-terminated C string; `EINVAL` if `name`
/// holds a NUL.
pub(super) fn with_name<R>(name: &[u8], f: impl FnOnce(&CStr) -> Result<R>) -> Result<R> {
    if name.contains(&0) {
        return Err(EINVAL);
    }
    if name.len() < NAME_STACK {
        let mut buf = [0u8; NAME_STACK];
        buf[..name.len()].copy_from_slice(name);
        f(CStr::from_bytes_until_nul(&buf).map_err(|_| EINVAL)?)
    } else {
        let mut v = Vec::with_capacity(name.len() + 1);
        v.extend_from_slice(name);
        v.push(0);
        f(CStr::from_bytes_with_nul(&v).map_err(|_| EINVAL)?)
    }
}

/// `p` without its trailing NUL, and whether it had one.
fn strip_nul(p: &[u8]) -> (&[u8], bool) {
    match p.split_last() {
        Some((0, s)) => (s, true),
        _ => (p, false),
    }
}

/// `parts` joined as a node, NUL-terminated when `nul` (the convention
/// of the path it was derived from).
fn node_of(parts: &[&[u8]], nul: bool) -> Node {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut v = Vec::with_capacity(len + 1);
    for p in parts {
        v.extend_from_slice(p);
    }
    if nul {
        v.push(0);
    }
    v.into()
}

/// The name of a path: what follows its last `/` (the whole path if it
/// has none; so the root `.` is named `.`, as in 9p.c's Tstat).
pub(super) fn basename(p: &[u8]) -> &[u8] {
    let (s, _) = strip_nul(p);
    match s.iter().rposition(|&c| c == b'/') {
        Some(i) => &s[i + 1..],
        None => s,
    }
}

/// The parent path and the name of `p` (9p.c: `g_path_get_dirname` and
/// the last component; the parent of `./a` is `.`); `None` for the root
/// or anything without a proper last component.
pub(super) fn split_path(p: &[u8]) -> Option<(Node, &[u8])> {
    let (s, nul) = strip_nul(p);
    let (parent, name): (&[u8], &[u8]) = match s.iter().rposition(|&c| c == b'/') {
        None => (b".", s),
        Some(i) => {
            let mut d = &s[..i];
            while d.len() > 1 && d.ends_with(b"/") {
                d = &d[..d.len() - 1];
            }
            (if d.is_empty() { b"/" } else { d }, &s[i + 1..])
        }
    };
    if name.is_empty() || name == b"." || name == b".." {
        return None;
    }
    Some((node_of(&[parent], nul), name))
}

/// 9p.c `v9fs_path_is_ancestor` + `v9fs_fix_path`: `node` with its prefix
/// `old` replaced by `new`, if it is `old` or under `old/`.
pub(super) fn fix_path(node: &[u8], old: &[u8], new: &[u8]) -> Option<Node> {
    let (n, _) = strip_nul(node);
    let (o, _) = strip_nul(old);
    let (nw, nw_nul) = strip_nul(new);
    if o.is_empty() || o == nw {
        return None;
    }
    let rest = n.strip_prefix(o)?;
    if !rest.is_empty() && rest[0] != b'/' {
        return None;
    }
    Some(node_of(&[nw, rest], nw_nul))
}

/// Whether `node` is the string `dir/name` (what a PATHNAMES backend's
/// `name_to_path` makes of `name` in `dir`).
pub(super) fn is_entry_path(node: &[u8], dir: &[u8], name: &[u8]) -> bool {
    let (n, _) = strip_nul(node);
    let (d, _) = strip_nul(dir);
    n.len() == d.len() + 1 + name.len()
        && n.starts_with(d)
        && n[d.len()] == b'/'
        && n.ends_with(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_helpers() {
        assert_eq!(basename(b"./a/b\0"), b"b");
        assert_eq!(basename(b".\0"), b".");
        let (p, n) = split_path(b"./a\0").unwrap();
        assert_eq!((&*p, n), (&b".\0"[..], &b"a"[..]));
        let (p, n) = split_path(b"./a/b").unwrap();
        assert_eq!((&*p, n), (&b"./a"[..], &b"b"[..]));
        let (p, n) = split_path(b"/x\0").unwrap();
        assert_eq!((&*p, n), (&b"/\0"[..], &b"x"[..]));
        assert!(split_path(b".\0").is_none());
        assert!(split_path(b"./..\0").is_none());
        let f = |n: &[u8], o: &[u8], w: &[u8]| fix_path(n, o, w).map(|p| p.to_vec());
        assert_eq!(f(b"./a\0", b"./a\0", b"./b\0"), Some(b"./b\0".to_vec()));
        assert_eq!(
            f(b"./a/x\0", b"./a\0", b"./c/d\0"),
            Some(b"./c/d/x\0".to_vec())
        );
        assert_eq!(f(b"./ab\0", b"./a\0", b"./b\0"), None);
        assert_eq!(f(b"./b\0", b"./a\0", b"./c\0"), None);
    }
}
