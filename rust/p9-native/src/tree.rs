// SPDX-License-Identifier: GPL-2.0-or-later
//! Where each file the backend holds is: a tree of [`Rec`]ords, one per
//! place (parent record and name) that a request reached, rooted at the
//! export root, each with the file's `O_PATH` descriptor.
//!
//! * **Identity.**  A record stands for one file: its `st_dev`/`st_ino`,
//!   fixed when it is made.  The record holds a descriptor of the file, so
//!   the inode cannot be freed and its number cannot be reused:
//!   `st_dev`/`st_ino` identify the file exactly.
//! * **Place.**  The parent record and the name, kept in step with every
//!   rename, unlink and creation made through the backend (one record per
//!   place: a directory record indexes its children by name).  Renames,
//!   unlinks and replacements made by the host are not seen: the record
//!   then names a place where its file no longer is, which the next
//!   lookup of it notices.
//! * **Finding a file** ([`Tree::verified`], whenever the place itself
//!   matters) opens the record's path from the export root's descriptor,
//!   beneath it (`crate::resolve::open_path_beneath`), and checks that the
//!   file there is the record's: `ENOENT` when nothing is there any more
//!   (or the path to it is broken), `ESTALE` when another file is.  Names
//!   are looked up the same way ([`Tree::lookup`]): from the root, along
//!   the directory's place, never from a directory's own descriptor,
//!   which may have been moved anywhere by the host.  `..` is the
//!   parent record, never the kernel's `..`.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::attr::{stat, Stat};
use crate::errno::{Errno, Result};
use crate::node::Node;
use crate::resolve::{component, open_path_beneath, NameUse};

/// Deeper than this, a chain of records is a bug (a cycle): `ELOOP`.
/// (`PATH_MAX` allows about 2048 one-letter components.)
const MAX_DEPTH: usize = 1 << 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where a record's file is.
pub(crate) enum Place {
    /// The export root.
    Root,
    /// Entry `name` of the directory `parent`.
    At {
        /// The directory.
        parent: Arc<Rec>,
        /// The entry's name (a single validated component).
        name: Arc<[u8]>,
    },
    /// Nowhere: unlinked or replaced through the backend.  Finding the
    /// file fails with `errno`; `name` is the last one it had.
    Gone { name: Arc<[u8]>, errno: i32 },
}

/// A place: the directory's record and the entry's name.
pub(crate) type Entry = (Arc<Rec>, Arc<[u8]>);

/// One file the backend holds, at one place (see the module
/// documentation).
pub(crate) struct Rec {
    place: Mutex<Place>,
    /// Directories: records of entries, by name (weak: a record lives as
    /// long as a fid or a child needs it).
    children: Mutex<HashMap<Arc<[u8]>, Weak<Rec>>>,
    dev: u64,
    ino: u64,
    /// `S_IFMT` bits.
    kind: u32,
    /// The file's descriptor.
    node: Arc<Node>,
    /// The export root.
    root: bool,
}

impl std::fmt::Debug for Rec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rec")
            .field("dev", &self.dev)
            .field("ino", &self.ino)
            .field(
                "name",
                &self
                    .name()
                    .map(|n| String::from_utf8_lossy(&n).into_owned()),
            )
            .finish_non_exhaustive()
    }
}

impl Rec {
    fn new(place: Place, st: &Stat, node: Arc<Node>, root: bool) -> Arc<Rec> {
        Arc::new(Rec {
            place: Mutex::new(place),
            children: Mutex::new(HashMap::new()),
            dev: st.dev,
            ino: st.ino,
            kind: st.file_type(),
            node,
            root,
        })
    }

    /// Whether the file is a directory.
    pub(crate) fn is_dir(&self) -> bool {
        self.kind == libc::S_IFDIR
    }

    /// `st_dev` and `st_ino` of the file.
    pub(crate) fn ino(&self) -> u64 {
        self.ino
    }

    /// Whether `st` describes this record's file.
    pub(crate) fn is(&self, st: &Stat) -> bool {
        st.dev == self.dev && st.ino == self.ino
    }

    /// The file's descriptor.
    pub(crate) fn node(&self) -> Arc<Node> {
        Arc::clone(&self.node)
    }

    /// The name of the place (`None` for the root).
    pub(crate) fn name(&self) -> Option<Arc<[u8]>> {
        match &*lock(&self.place) {
            Place::Root => None,
            Place::At { name, .. } | Place::Gone { name, .. } => Some(Arc::clone(name)),
        }
    }

    /// The parent directory and name (`Err(errno)` for a record that is
    /// gone, `Ok(None)` for the root).
    pub(crate) fn entry(&self) -> Result<Option<Entry>> {
        match &*lock(&self.place) {
            Place::Root => Ok(None),
            Place::At { parent, name } => Ok(Some((Arc::clone(parent), Arc::clone(name)))),
            Place::Gone { errno, .. } => Err(Errno(*errno)),
        }
    }

    /// Whether this record is the entry `name` of `dir`.
    pub(crate) fn is_entry_of(&self, dir: &Rec, name: &[u8]) -> bool {
        match &*lock(&self.place) {
            Place::At { parent, name: n } => std::ptr::eq(Arc::as_ptr(parent), dir) && **n == *name,
            _ => false,
        }
    }

    /// The names from the root to this record.
    fn components(self: &Arc<Self>) -> Result<Vec<Arc<[u8]>>> {
        let mut out = Vec::new();
        let mut cur = Arc::clone(self);
        loop {
            let next = match &*lock(&cur.place) {
                Place::Root => None,
                Place::At { parent, name } => {
                    out.push(Arc::clone(name));
                    Some(Arc::clone(parent))
                }
                Place::Gone { errno, .. } => return Err(Errno(*errno)),
            };
            match next {
                None => break,
                Some(p) => cur = p,
            }
            if out.len() > MAX_DEPTH {
                return Err(Errno(libc::ELOOP));
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Whether `other` is this record or one of its ancestors.
    fn has_ancestor(self: &Arc<Self>, other: &Rec) -> bool {
        let mut cur = Arc::clone(self);
        for _ in 0..=MAX_DEPTH {
            if std::ptr::eq(Arc::as_ptr(&cur), other) {
                return true;
            }
            let next = match &*lock(&cur.place) {
                Place::At { parent, .. } => Arc::clone(parent),
                _ => return false,
            };
            cur = next;
        }
        true
    }

    /// Takes the record off its place: finding it fails with `errno` from
    /// now on.
    fn detach(&self, errno: i32) {
        let old = {
            let mut place = lock(&self.place);
            let name = match &*place {
                Place::Root | Place::Gone { .. } => return,
                Place::At { name, .. } => Arc::clone(name),
            };
            std::mem::replace(&mut *place, Place::Gone { name, errno })
        };
        if let Place::At { parent, name } = &old {
            parent.forget_child(name, self);
        }
    }

    /// Removes the index entry `name` if it is `child`.
    fn forget_child(&self, name: &[u8], child: *const Rec) {
        let mut ch = lock(&self.children);
        if ch
            .get(name)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), child))
        {
            ch.remove(name);
        }
    }

    fn child(&self, name: &[u8]) -> Option<Arc<Rec>> {
        lock(&self.children).get(name).and_then(Weak::upgrade)
    }
}

impl Drop for Rec {
    /// Leaves the parent's index; parents whose last reference this was
    /// are dropped in a loop, not by recursion (chains can be deep).
    fn drop(&mut self) {
        let mut place = std::mem::replace(
            self.place
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            Place::Root,
        );
        let me: *const Rec = self;
        let mut child = me;
        loop {
            let Place::At { parent, name } = place else {
                return;
            };
            parent.forget_child(&name, child);
            child = Arc::as_ptr(&parent);
            match Arc::try_unwrap(parent) {
                Ok(mut p) => {
                    place = std::mem::replace(
                        p.place
                            .get_mut()
                            .unwrap_or_else(std::sync::PoisonError::into_inner),
                        Place::Root,
                    );
                    // `p` drops here with a root place: no recursion.
                    drop(p);
                }
                Err(_) => return,
            }
        }
    }
}

/// The records of one backend, and how its files are found.
#[derive(Debug)]
pub(crate) struct Tree {
    root: Arc<Rec>,
    /// Find files with the per-component `openat` walk even where
    /// `openat2` works.
    pub(crate) fallback: bool,
}

impl Tree {
    /// The tree of the export whose root directory is `root`.
    pub(crate) fn new(root: Node) -> Result<Tree> {
        let st = stat(&root)?;
        let root = Rec::new(Place::Root, &st, Arc::new(root), true);
        Ok(Tree {
            root,
            fallback: false,
        })
    }

    /// The export root's record.
    pub(crate) fn root(&self) -> &Arc<Rec> {
        &self.root
    }

    /// A descriptor of `rec`'s file, to act on the file itself
    /// (attributes, extended attributes, ...): the record's own.
    pub(crate) fn node(&self, rec: &Arc<Rec>) -> Result<Arc<Node>> {
        Ok(rec.node())
    }

    /// A descriptor of `rec`'s file, checked to be at its place beneath
    /// the export root now: what opening, listing, and every use as a
    /// directory (creating, removing, renaming, linking in it) need.
    pub(crate) fn verified(&self, rec: &Arc<Rec>) -> Result<Arc<Node>> {
        if rec.root {
            return Ok(rec.node());
        }
        let comps = rec.components()?;
        let node = match self.open_beneath_root(&comps) {
            Ok(n) => n,
            // Nothing at the place, or the way to it is broken (a
            // directory on it replaced by a file or a symbolic link).
            Err(Errno(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)) => {
                return Err(Errno(libc::ENOENT))
            }
            Err(e) => return Err(e),
        };
        if !rec.is(&stat(&node)?) {
            return Err(Errno(libc::ESTALE));
        }
        // The record's own descriptor was open all along (so the numbers
        // identify the file exactly): use it.
        Ok(rec.node())
    }

    /// [`open_path_beneath`] from the root.
    fn open_beneath_root(&self, comps: &[Arc<[u8]>]) -> Result<Node> {
        let fd = open_path_beneath(self.root.node.as_fd(), comps, self.fallback)?;
        Ok(Node::from_owned_fd(fd))
    }

    /// Looks up `name` in the directory `dir`: from the root, along
    /// `dir`'s place.
    ///
    /// # Errors
    ///
    /// `ENOTDIR` if `dir` is no directory; `EINVAL` for `.` and `..`
    /// (walks handle them); otherwise those of the lookup (`ENOENT`, also
    /// when the way to `dir` is broken, ...).
    pub(crate) fn lookup(&self, dir: &Arc<Rec>, name: &[u8]) -> Result<(Arc<Rec>, Stat)> {
        component(name, NameUse::Lookup)?;
        if name == b"." {
            return Err(Errno(libc::EINVAL));
        }
        if !dir.is_dir() {
            return Err(Errno(libc::ENOTDIR));
        }
        let mut comps = dir.components()?;
        comps.push(name.into());
        let node = match self.open_beneath_root(&comps) {
            // Only the way to `dir` can hold a symbolic link (the name
            // itself is opened as the link).
            Err(Errno(libc::ELOOP)) => return Err(Errno(libc::ENOENT)),
            r => r?,
        };
        let st = stat(&node)?;
        let rec = self.adopt(dir, name, Arc::new(node), &st);
        Ok((rec, st))
    }

    /// The record for `name` in `dir`, whose file (`st`) was just opened
    /// as `node`: the existing record of that place if it is the same
    /// file (its descriptor pins the inode, so the numbers are exact),
    /// else a new one (a directory record for another file at that place
    /// is detached: `ESTALE`).
    pub(crate) fn adopt(
        &self,
        dir: &Arc<Rec>,
        name: &[u8],
        node: Arc<Node>,
        st: &Stat,
    ) -> Arc<Rec> {
        if let Some(old) = dir.child(name) {
            if old.is(st) && old.is_entry_of(dir, name) {
                return old;
            }
            if old.is_dir() {
                old.detach(libc::ESTALE);
            }
        }
        let name: Arc<[u8]> = name.into();
        let place = Place::At {
            parent: Arc::clone(dir),
            name: Arc::clone(&name),
        };
        let rec = Rec::new(place, st, node, false);
        lock(&dir.children).insert(name, Arc::downgrade(&rec));
        rec
    }

    /// After `oldname` in `olddir` was renamed to `newname` in `newdir`
    /// through the backend: the record of the moved file follows (and so
    /// does everything beneath it); a directory record of the replaced
    /// target is detached (`ENOENT`).  Renames of a name onto another
    /// link of the same file change nothing, as `rename(2)`.
    pub(crate) fn moved(
        &self,
        olddir: &Arc<Rec>,
        oldname: &[u8],
        newdir: &Arc<Rec>,
        newname: &[u8],
    ) {
        if Arc::ptr_eq(olddir, newdir) && oldname == newname {
            return;
        }
        let src = olddir.child(oldname);
        let dst = newdir.child(newname);
        if let (Some(s), Some(d)) = (&src, &dst) {
            if s.dev == d.dev && s.ino == d.ino {
                return;
            }
        }
        if let Some(d) = &dst {
            if d.is_dir() {
                d.detach(libc::ENOENT);
            } else {
                // A file may have other links: its record stays where it
                // was; finding it there now fails its identity check.
                newdir.forget_child(newname, Arc::as_ptr(d));
            }
        }
        let Some(s) = src else {
            return;
        };
        olddir.forget_child(oldname, Arc::as_ptr(&s));
        if newdir.has_ancestor(&s) {
            // Records that no longer match the tree (host renames): never
            // make a cycle.
            s.detach(libc::ENOENT);
            return;
        }
        let name: Arc<[u8]> = newname.into();
        let old = std::mem::replace(
            &mut *lock(&s.place),
            Place::At {
                parent: Arc::clone(newdir),
                name: Arc::clone(&name),
            },
        );
        drop(old);
        lock(&newdir.children).insert(name, Arc::downgrade(&s));
    }

    /// After `name` in `dir` was unlinked through the backend: its record
    /// is detached (`ENOENT`).
    pub(crate) fn removed(&self, dir: &Arc<Rec>, name: &[u8]) {
        if let Some(r) = dir.child(name) {
            r.detach(libc::ENOENT);
        }
    }
}
