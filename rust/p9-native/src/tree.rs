// SPDX-License-Identifier: GPL-2.0-or-later
//! Where each file the backend holds is: a tree of [`Rec`]ords, one per
//! place (parent record and name) that a request reached, rooted at the
//! export root, with the file's descriptor as a cache.
//!
//! * **Identity.**  A record stands for one file: its `st_dev`/`st_ino`,
//!   fixed when it is made, and its file handle (`crate::fhandle`), taken
//!   when its descriptor is given back.  While a record holds its
//!   descriptor the inode cannot be freed, so its number cannot be reused
//!   and `st_dev`/`st_ino` alone are exact; once the descriptor is given
//!   back the handle (which carries the file system's generation) tells a
//!   new file of the same number apart.
//! * **Place.**  The parent record and the name, kept in step with every
//!   rename, unlink and creation made through the backend (one record per
//!   place: a directory record indexes its children by name).  Renames,
//!   unlinks and replacements made by the host are not seen: the record
//!   then names a place where its file no longer is, which the next
//!   lookup of it notices.
//! * **Finding a file** ([`Tree::node`] for a record that gave its
//!   descriptor back, [`Tree::verified`] whenever the place itself
//!   matters) opens the record's path from the export root's descriptor,
//!   beneath it (`crate::resolve::open_path_beneath`), and checks that the
//!   file there is the record's: `ENOENT` when nothing is there any more
//!   (or the path to it is broken), `ESTALE` when another file is.  Names
//!   are looked up the same way ([`Tree::lookup`]): from the root, along
//!   the directory's place, never from a directory's own descriptor,
//!   which may have been moved anywhere by the host.  `..` is the
//!   parent record, never the kernel's `..`.

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use p9_engine::hash::FastMap;

use crate::budget::{self, Account, GiveBack, Held, Reclaim};
use crate::errno::{self, Errno, Result};
use crate::fhandle::{file_handle, FileHandle};
use crate::node::Node;
use crate::resolve::{component, open_path_beneath, NameUse};
use crate::stat::{stat, stat_at, Stat};

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
    /// file fails with `error`; `name` is the last one it had.
    Gone { name: Arc<[u8]>, error: Errno },
}

/// A place: the directory's record and the entry's name.
pub(crate) type Entry = (Arc<Rec>, Arc<[u8]>);

/// One file the backend holds, at one place (see the module
/// documentation).
pub(crate) struct Rec {
    place: Mutex<Place>,
    /// Directories: records of entries, by name (weak: a record lives as
    /// long as a fid or a child needs it).
    children: Mutex<FastMap<Arc<[u8]>, Weak<Rec>>>,
    dev: u64,
    ino: u64,
    /// `S_IFMT` bits.
    kind: u32,
    /// The file handle, taken when the descriptor is first given back
    /// (`None` inside: the file system has none).
    fh: OnceLock<Option<FileHandle>>,
    /// The cached descriptor.
    slot: Mutex<Option<Arc<Held>>>,
    /// Used since the sweep last passed (second chance).
    referenced: AtomicBool,
    /// On the budget's clock (changed under the clock's lock).
    pub(crate) registered: AtomicBool,
    /// The export root: its descriptor is never given back.
    root: bool,
    account: Arc<Account>,
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
    fn new(
        place: Place,
        st: &Stat,
        held: Arc<Held>,
        account: &Arc<Account>,
        root: bool,
    ) -> Arc<Rec> {
        let rec = Arc::new(Rec {
            place: Mutex::new(place),
            children: Mutex::new(FastMap::default()),
            dev: st.dev,
            ino: st.ino,
            kind: st.file_type(),
            fh: OnceLock::new(),
            slot: Mutex::new(Some(held)),
            referenced: AtomicBool::new(true),
            registered: AtomicBool::new(false),
            root,
            account: Arc::clone(account),
        });
        if !root {
            budget::register(&rec);
        }
        rec
    }

    /// Whether the file is a directory.
    pub(crate) fn is_dir(&self) -> bool {
        self.kind == libc::S_IFDIR
    }

    /// `st_dev` and `st_ino` of the file.
    pub(crate) fn ino(&self) -> u64 {
        self.ino
    }

    pub(crate) fn dev(&self) -> u64 {
        self.dev
    }

    /// The `S_IFMT` bits of the file's mode.
    pub(crate) fn kind(&self) -> u32 {
        self.kind
    }

    /// Whether `st` describes this record's file.
    pub(crate) fn is(&self, st: &Stat) -> bool {
        st.dev == self.dev && st.ino == self.ino
    }

    /// The cached descriptor, marking the record used.
    pub(crate) fn cached(&self) -> Option<Arc<Held>> {
        self.referenced.store(true, Ordering::Relaxed);
        lock(&self.slot).clone()
    }

    /// Caches `held` unless another request did first; the descriptor to
    /// use.
    fn install(self: &Arc<Self>, held: Arc<Held>) -> Arc<Held> {
        let installed = {
            let mut slot = lock(&self.slot);
            match &*slot {
                Some(h) => return Arc::clone(h),
                None => {
                    *slot = Some(Arc::clone(&held));
                    true
                }
            }
        };
        if installed && !self.root {
            budget::register(self);
        }
        held
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
            Place::Gone { error, .. } => Err(*error),
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
                Place::Gone { error, .. } => return Err(*error),
            };
            match next {
                None => break,
                Some(p) => cur = p,
            }
            if out.len() > MAX_DEPTH {
                return Err(errno::ELOOP);
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

    /// Takes the record off its place: finding it fails with `error` from
    /// now on.
    fn detach(&self, error: Errno) {
        let old = {
            let mut place = lock(&self.place);
            let name = match &*place {
                Place::Root | Place::Gone { .. } => return,
                Place::At { name, .. } => Arc::clone(name),
            };
            std::mem::replace(&mut *place, Place::Gone { name, error })
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
    root_held: Arc<Held>,
    account: Arc<Account>,
    /// Find files with the per-component `openat` walk even where
    /// `openat2` works (a test hook).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fallback: bool,
}

impl Tree {
    /// The tree of the export whose root directory is `root`.
    pub(crate) fn new(root: Node) -> Result<Tree> {
        let st = stat(&root)?;
        let account = Account::new();
        let root_held = Held::new(root);
        let root = Rec::new(Place::Root, &st, Arc::clone(&root_held), &account, true);
        Ok(Tree {
            root,
            root_held,
            account,
            #[cfg(any(test, feature = "test-hooks"))]
            fallback: false,
        })
    }

    /// Whether files are found with the per-component `openat` walk even
    /// where `openat2` works: only when a test asks.
    fn fallback(&self) -> bool {
        #[cfg(any(test, feature = "test-hooks"))]
        return self.fallback;
        #[cfg(not(any(test, feature = "test-hooks")))]
        false
    }

    /// The export root's record.
    pub(crate) fn root(&self) -> &Arc<Rec> {
        &self.root
    }

    /// This backend's account with the budget.
    pub(crate) fn account(&self) -> &Arc<Account> {
        &self.account
    }

    /// A descriptor of `rec`'s file, to act on the file itself
    /// (attributes, extended attributes, ...): the cached one (no system
    /// call), else the file found again at its place.
    pub(crate) fn node(&self, rec: &Arc<Rec>) -> Result<Arc<Held>> {
        if let Some(h) = rec.cached() {
            return Ok(h);
        }
        let h = self.find(rec, false)?;
        Ok(rec.install(h))
    }

    /// A descriptor of `rec`'s file, checked to be at its place beneath
    /// the export root now: what opening, listing, and every use as a
    /// directory (creating, removing, renaming, linking in it) need.
    pub(crate) fn verified(&self, rec: &Arc<Rec>) -> Result<Arc<Held>> {
        if rec.root {
            return Ok(Arc::clone(&self.root_held));
        }
        // The cached descriptor, if any, stays open across the check, so
        // that st_dev/st_ino identify the file exactly.
        let pin = rec.cached();
        if let Some(p) = &pin {
            // An entry of the root: one statx of that name (never
            // following a link, and no component before it that could be
            // one) tells what opening it beneath the root would find.
            if let Some(r) = self.entry_of_root(rec) {
                return r.map(|()| Arc::clone(p));
            }
        }
        let found = self.find(rec, pin.is_some())?;
        Ok(match pin {
            Some(p) => p,
            None => rec.install(found),
        })
    }

    /// For a record whose place is an entry of the root: whether that
    /// entry is `rec`'s file now (`ENOENT` if the name is gone, `ESTALE`
    /// if it is another file), by one `statx` of the name, as
    /// [`Tree::find`] would conclude for a pinned record.  `None` for
    /// other places.
    fn entry_of_root(&self, rec: &Rec) -> Option<Result<()>> {
        let name = match &*lock(&rec.place) {
            Place::At { parent, name } if parent.root => Arc::clone(name),
            _ => return None,
        };
        Some(match stat_at(self.root_held.as_fd(), &name) {
            Ok(st) if rec.is(&st) => Ok(()),
            Ok(_) => Err(errno::ESTALE),
            Err(errno::ENOENT | errno::ENOTDIR | errno::ELOOP) => Err(errno::ENOENT),
            Err(e) => Err(e),
        })
    }

    /// Opens `rec`'s path from the root and checks that it is `rec`'s
    /// file (by file handle too unless `pinned`: the record's own
    /// descriptor was open all along).
    fn find(&self, rec: &Arc<Rec>, pinned: bool) -> Result<Arc<Held>> {
        if rec.root {
            return Ok(Arc::clone(&self.root_held));
        }
        let comps = rec.components()?;
        let node = match self.open_beneath_root(&comps) {
            Ok(n) => n,
            // Nothing at the place, or the way to it is broken (a
            // directory on it replaced by a file or a symbolic link).
            Err(errno::ENOENT | errno::ENOTDIR | errno::ELOOP) => return Err(errno::ENOENT),
            Err(e) => return Err(e),
        };
        let st = stat(&node)?;
        if !rec.is(&st) {
            return Err(errno::ESTALE);
        }
        let held = Held::new(node);
        if !pinned {
            if let Some(Some(fh)) = rec.fh.get() {
                if file_handle(held.as_fd()).is_some_and(|h| h != *fh) {
                    return Err(errno::ESTALE);
                }
            }
        }
        Ok(held)
    }

    /// [`open_path_beneath`] from the root; on `EMFILE`/`ENFILE` gives
    /// idle node descriptors back and tries once more.
    fn open_beneath_root(&self, comps: &[impl AsRef<[u8]>]) -> Result<Node> {
        let open = || open_path_beneath(self.root_held.as_fd(), comps, self.fallback());
        let fd = match open() {
            Err(errno::EMFILE | errno::ENFILE) if budget::shed() => open(),
            r => r,
        }?;
        Ok(Node::from_owned_fd(fd))
    }

    /// Looks up `name` in the directory `dir`: from the root, along
    /// `dir`'s place.  A directory whose descriptor was given back is
    /// found (and checked) first, so that a replaced one is `ESTALE`.
    ///
    /// # Errors
    ///
    /// `ENOTDIR` if `dir` is no directory; `EINVAL` for `.` and `..`
    /// (walks handle them); otherwise those of the lookup (`ENOENT`, also
    /// when the way to `dir` is broken, ...).
    pub(crate) fn lookup(&self, dir: &Arc<Rec>, name: &[u8]) -> Result<(Arc<Rec>, Stat)> {
        component(name, NameUse::Lookup)?;
        if name == b"." {
            return Err(errno::EINVAL);
        }
        if !dir.is_dir() {
            return Err(errno::ENOTDIR);
        }
        let _dir = self.node(dir)?;
        let found = if dir.root {
            // In the root: the name is the whole path (no list to build).
            self.open_beneath_root(&[name])
        } else {
            let mut comps = dir.components()?;
            comps.push(name.into());
            self.open_beneath_root(&comps)
        };
        let node = match found {
            // Only the way to `dir` can hold a symbolic link (the name
            // itself is opened as the link).
            Err(errno::ELOOP) => return Err(errno::ENOENT),
            r => r?,
        };
        let st = stat(&node)?;
        let (rec, _) = self.adopt(dir, name, Held::new(node), &st);
        Ok((rec, st))
    }

    /// The record for `name` in `dir`, whose file (`st`) was just opened
    /// as `held`: the existing record of that place if it is the same
    /// file, else a new one (a directory record for another file at that
    /// place is detached: `ESTALE`).  Returns the record and its cached
    /// descriptor.
    pub(crate) fn adopt(
        &self,
        dir: &Arc<Rec>,
        name: &[u8],
        held: Arc<Held>,
        st: &Stat,
    ) -> (Arc<Rec>, Arc<Held>) {
        if let Some(old) = dir.child(name) {
            if old.is(st) && old.is_entry_of(dir, name) {
                // Unless it gave its descriptor back (and so may be
                // another file of the same number), the same file.
                let same = old.cached().is_some()
                    || match old.fh.get() {
                        Some(Some(fh)) => file_handle(held.as_fd()).map_or(true, |h| h == *fh),
                        _ => true,
                    };
                if same {
                    let h = old.install(held);
                    return (old, h);
                }
            }
            if old.is_dir() {
                old.detach(errno::ESTALE);
            }
        }
        let name: Arc<[u8]> = name.into();
        let place = Place::At {
            parent: Arc::clone(dir),
            name: Arc::clone(&name),
        };
        let rec = Rec::new(place, st, Arc::clone(&held), &self.account, false);
        lock(&dir.children).insert(name, Arc::downgrade(&rec));
        (rec, held)
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
                d.detach(errno::ENOENT);
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
            s.detach(errno::ENOENT);
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
            r.detach(errno::ENOENT);
        }
    }

    /// Gives back the descriptor of every record of this tree that no
    /// request is using.
    pub(crate) fn give_back_idle(&self) -> usize {
        budget::give_back_all(&self.account)
    }
}

/// The budget's clock sees records only through this.
impl Reclaim for Rec {
    fn registered(&self) -> &AtomicBool {
        &self.registered
    }

    fn has_fd(&self) -> bool {
        self.slot.try_lock().map_or(true, |s| s.is_some())
    }

    fn belongs_to(&self, account: &Account) -> bool {
        std::ptr::eq(Arc::as_ptr(&self.account), account)
    }

    /// The descriptor, unless the record is in use (a request holds the
    /// descriptor), was used since the last pass (unless `force`), or is
    /// the root.
    fn give_back(&self, force: bool) -> GiveBack {
        if self.root {
            return GiveBack::Keep;
        }
        let Ok(mut slot) = self.slot.try_lock() else {
            return GiveBack::Keep;
        };
        match &*slot {
            None => GiveBack::NoFd,
            Some(h) if Arc::strong_count(h) > 1 => GiveBack::Keep,
            Some(_) if self.referenced.swap(false, Ordering::Relaxed) && !force => GiveBack::Keep,
            Some(_) => slot.take().map_or(GiveBack::NoFd, GiveBack::Taken),
        }
    }

    /// Its file handle, so that the file is found again.
    fn remember_identity(&self, held: &Held) {
        self.fh.get_or_init(|| file_handle(held.as_fd()));
    }
}
