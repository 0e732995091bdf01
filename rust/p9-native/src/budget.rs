// SPDX-License-Identifier: GPL-2.0-or-later
//! The descriptor budget shared by every [`crate::NativeBackend`] of the
//! process.
//!
//! Each backend holds two kinds of descriptors: an `O_PATH` one per node
//! it keeps (a [`Held`], cached in the node's record, see `crate::tree`)
//! and one per open file or directory (a [`HandleToken`] counts it).  Both
//! count against one process-wide budget derived from `RLIMIT_NOFILE`:
//!
//! * `reserve = min(400, limit / 3)` descriptors are left to the host
//!   (listening and accepted sockets, files it opens itself, transient
//!   descriptors of this crate such as the `/proc/self/fd` reopen behind
//!   `generation`) — the margin QEMU's 9p.c keeps below its open-file
//!   mark (`open_fd_hw`);
//! * `budget = limit - reserve` is for the backends together: with the
//!   default limit of 1024, 683; with 256, 171;
//! * half the reserve is a floor the backends' handles never take:
//!   `ceiling = limit - reserve / 2` (1024: 854; 256: 214).
//!
//! Node descriptors are a cache: when the backends together hold more
//! than the budget, the least recently used node descriptors that no
//! request is using give their descriptor back (clock algorithm with a
//! second chance, in batches down to 7/8 of the budget), and the node is
//! found again by its place beneath the export root on its next use.  So
//! fids beyond the budget cost no descriptor at all, and one session's fid
//! storm only recycles descriptors.  Open handles are real file
//! descriptions (offsets, locks) and are never closed here: the engine's
//! reclaim of idle handles (9p.c semantics) stays in charge of them.  When
//! the budget is used up even after giving back every idle node
//! descriptor, a backend holding at least its fair share of handles
//! (`budget / live backends`) gets `EMFILE` for a new one, which makes its
//! engine close its own idle handles and retry; a backend below its share
//! may still open, into the reserve but never above the ceiling, so that
//! one session's open files cannot starve another's nor the host.
//!
//! The hot path costs no system call: taking a cached descriptor is a
//! short per-node lock and a reference count; accounting is two atomic
//! counters; the sweep runs only above the budget.

use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::errno::{self, Result};
use crate::node::Node;

/// The shared counters and the clock of node records holding a descriptor.
struct Budget {
    /// Node (`O_PATH`) descriptors held, by every backend.
    nodes: AtomicUsize,
    /// Open handles, by every backend.
    handles: AtomicUsize,
    /// `RLIMIT_NOFILE` as last read.
    limit: AtomicUsize,
    /// `limit - reserve`; `usize::MAX` before the first backend.
    max: AtomicUsize,
    /// Live backends (their accounts).
    backends: AtomicUsize,
    /// Node descriptors given back.
    given_back: AtomicU64,
    /// New handles refused with `EMFILE` (fair share).
    refused: AtomicU64,
    clock: Mutex<Clock>,
}

/// What a sweep did to one record ([`Reclaim::give_back`]).
pub(crate) enum GiveBack {
    /// Nothing: the record is in use, was used since the last sweep, or
    /// is the root.
    Keep,
    /// The record holds no descriptor (it may leave the clock).
    NoFd,
    /// Its descriptor, taken from it: the caller closes it.
    Taken(Arc<Held>),
}

/// A record that may cache a node descriptor, as the clock sees it (the
/// backend's tree implements it; the budget needs nothing else of it).
pub(crate) trait Reclaim: Send + Sync {
    /// Whether the record is on the clock (changed under its lock).
    fn registered(&self) -> &AtomicBool;
    /// Whether it holds a descriptor now.
    fn has_fd(&self) -> bool;
    /// Whether it belongs to the backend of `account`.
    fn belongs_to(&self, account: &Account) -> bool;
    /// Takes its descriptor if it is idle (or whatever its use, with
    /// `force`), see [`GiveBack`].
    fn give_back(&self, force: bool) -> GiveBack;
    /// Before the descriptor `held` taken from it is closed: what finds
    /// the same file again.
    fn remember_identity(&self, held: &Held);
}

/// Records that may hold a descriptor, swept round robin.
struct Clock {
    recs: Vec<Weak<dyn Reclaim>>,
    hand: usize,
}

static BUDGET: Budget = Budget {
    nodes: AtomicUsize::new(0),
    handles: AtomicUsize::new(0),
    limit: AtomicUsize::new(0),
    max: AtomicUsize::new(usize::MAX),
    backends: AtomicUsize::new(0),
    given_back: AtomicU64::new(0),
    refused: AtomicU64::new(0),
    clock: Mutex::new(Clock {
        recs: Vec::new(),
        hand: 0,
    }),
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The most a single sweep examines beyond what it must find, so that a
/// sweep that finds nothing to give back (every node in use) stays cheap.
const SWEEP_SLACK: usize = 256;

/// The budget's numbers and counters (for monitoring and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetStats {
    /// `RLIMIT_NOFILE` (soft) when last read.
    pub limit: usize,
    /// Descriptors left to the host: `min(400, limit / 3)`.
    pub reserve: usize,
    /// `limit - reserve`: what every native backend together may hold.
    pub budget: usize,
    /// `limit - reserve / 2`: open handles never take the process above
    /// it (backends below their fair share may open between `budget` and
    /// `ceiling`).
    pub ceiling: usize,
    /// Node (`O_PATH`) descriptors held now.
    pub nodes: usize,
    /// Open file and directory handles held now.
    pub handles: usize,
    /// Live backends.
    pub backends: usize,
    /// Node descriptors given back so far (they are found again by name
    /// when used).
    pub given_back: u64,
    /// New handles refused with `EMFILE` because the budget was used up
    /// and the backend held its fair share.
    pub refused: u64,
}

/// The budget's numbers and counters now (process-wide).
#[must_use]
pub fn budget_stats() -> BudgetStats {
    let limit = BUDGET.limit.load(Ordering::Relaxed);
    let max = BUDGET.max.load(Ordering::Relaxed);
    BudgetStats {
        limit,
        reserve: limit.saturating_sub(max),
        budget: max,
        ceiling: ceiling(limit, max),
        nodes: BUDGET.nodes.load(Ordering::Relaxed),
        handles: BUDGET.handles.load(Ordering::Relaxed),
        backends: BUDGET.backends.load(Ordering::Relaxed),
        given_back: BUDGET.given_back.load(Ordering::Relaxed),
        refused: BUDGET.refused.load(Ordering::Relaxed),
    }
}

/// `(limit, reserve)` for a `RLIMIT_NOFILE` of `limit`.
pub(crate) fn split(limit: usize) -> (usize, usize) {
    (limit, (limit / 3).min(400))
}

/// Reads `RLIMIT_NOFILE` again (a process may lower or raise it): at
/// backend creation and before every sweep.
fn refresh() {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid rlimit to write into.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    let limit = if r != 0 || rl.rlim_cur == libc::RLIM_INFINITY {
        1 << 20
    } else {
        usize::try_from(rl.rlim_cur).unwrap_or(1 << 20)
    };
    let (limit, reserve) = split(limit);
    BUDGET.limit.store(limit, Ordering::Relaxed);
    BUDGET.max.store(limit - reserve, Ordering::Relaxed);
}

/// `limit - reserve / 2` for a budget of `max` out of `limit`.
fn ceiling(limit: usize, max: usize) -> usize {
    limit - limit.saturating_sub(max) / 2
}

fn held() -> usize {
    BUDGET.nodes.load(Ordering::Relaxed) + BUDGET.handles.load(Ordering::Relaxed)
}

fn max() -> usize {
    BUDGET.max.load(Ordering::Relaxed)
}

/// Above the budget: give idle node descriptors back, down to 7/8 of it.
fn relieve() {
    if held() <= max() {
        return;
    }
    refresh();
    let max = max();
    let held = held();
    if held > max {
        evict(held - (max - max / 8), false, None);
    }
}

/// Gives back up to `want` node descriptors: those of records not in use,
/// not used since the sweep last passed them (unless `force`), and, with
/// `only`, belonging to that backend.  Returns how many.
fn evict(want: usize, force: bool, only: Option<&Account>) -> usize {
    let mut victims = Vec::new();
    {
        let mut c = lock(&BUDGET.clock);
        let mut steps = if force || only.is_some() {
            2 * c.recs.len()
        } else {
            (2 * c.recs.len()).min(want.saturating_mul(4).saturating_add(SWEEP_SLACK))
        };
        while victims.len() < want && steps > 0 && !c.recs.is_empty() {
            steps -= 1;
            if c.hand >= c.recs.len() {
                c.hand = 0;
            }
            let i = c.hand;
            let rec = c.recs[i].upgrade();
            let outcome = match &rec {
                None => GiveBack::NoFd,
                Some(r) if only.is_some_and(|a| !r.belongs_to(a)) => GiveBack::Keep,
                Some(r) => r.give_back(force),
            };
            match outcome {
                GiveBack::Keep => c.hand += 1,
                GiveBack::NoFd => {
                    if let Some(r) = &rec {
                        r.registered().store(false, Ordering::Relaxed);
                    }
                    c.recs.swap_remove(i);
                }
                GiveBack::Taken(h) => {
                    if let Some(r) = rec {
                        r.registered().store(false, Ordering::Relaxed);
                        victims.push((r, h));
                    }
                    c.recs.swap_remove(i);
                }
            }
        }
    }
    // Outside the clock's lock: remember each file's handle (its identity
    // when found again), then close.
    let n = victims.len();
    for (rec, h) in victims {
        rec.remember_identity(&h);
        drop(h);
    }
    BUDGET.given_back.fetch_add(n as u64, Ordering::Relaxed);
    n
}

/// Puts `rec`, which just got a descriptor, on the clock (once).
pub(crate) fn register<R: Reclaim + 'static>(rec: &Arc<R>) {
    let mut c = lock(&BUDGET.clock);
    if rec.registered().load(Ordering::Relaxed) {
        return;
    }
    let nodes = BUDGET.nodes.load(Ordering::Relaxed);
    if c.recs.len() >= 64 && c.recs.len() > 2 * nodes {
        // Dead records and records without a descriptor pile up between
        // sweeps: drop them (amortised over the pushes that made them).
        c.recs.retain(|w| match w.upgrade() {
            Some(r) if r.has_fd() => true,
            Some(r) => {
                r.registered().store(false, Ordering::Relaxed);
                false
            }
            None => false,
        });
        c.hand = 0;
    }
    rec.registered().store(true, Ordering::Relaxed);
    let weak: Weak<R> = Arc::downgrade(rec);
    c.recs.push(weak);
}

/// After a failure for lack of descriptors (`EMFILE`/`ENFILE`): give back
/// a batch of idle node descriptors; whether any was.
pub(crate) fn shed() -> bool {
    refresh();
    let max = max().max(8);
    evict(max / 8, false, None) > 0 || evict(max / 8, true, None) > 0
}

/// Gives back the descriptor of every node of `account`'s backend that no
/// request is using, recently used or not.
pub(crate) fn give_back_all(account: &Account) -> usize {
    evict(usize::MAX, true, Some(account))
}

/// An `O_PATH` node descriptor, counted against the budget while it
/// exists.  Shared (`Arc`): a request using a node holds a second
/// reference, which is what keeps the sweep away from it.
pub(crate) struct Held {
    node: Node,
}

impl Held {
    /// Counts `node` and, above the budget, gives idle ones back.
    pub(crate) fn new(node: Node) -> Arc<Held> {
        BUDGET.nodes.fetch_add(1, Ordering::Relaxed);
        let h = Arc::new(Held { node });
        relieve();
        h
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        BUDGET.nodes.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Deref for Held {
    type Target = Node;

    fn deref(&self) -> &Node {
        &self.node
    }
}

impl AsFd for Held {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.node.as_fd()
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.node.fmt(f)
    }
}

/// One backend's share of the budget: its open handles, and its place in
/// the count of live backends that fair shares divide by.
#[derive(Debug)]
pub(crate) struct Account {
    handles: AtomicUsize,
}

impl Account {
    /// A new backend's account (reads `RLIMIT_NOFILE`).
    pub(crate) fn new() -> Arc<Account> {
        refresh();
        BUDGET.backends.fetch_add(1, Ordering::Relaxed);
        Arc::new(Account {
            handles: AtomicUsize::new(0),
        })
    }

    /// Open handles of this backend.
    pub(crate) fn handles(&self) -> usize {
        self.handles.load(Ordering::Relaxed)
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        BUDGET.backends.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts one open handle of a backend while it exists.
#[derive(Debug)]
pub(crate) struct HandleToken {
    account: Arc<Account>,
}

impl HandleToken {
    /// Room for one more open handle of `account`'s backend: always when
    /// the budget has room (after giving idle node descriptors back);
    /// otherwise only below the backend's fair share and the ceiling, else
    /// `EMFILE` (its engine then closes idle handles of its own and
    /// retries).
    pub(crate) fn take(account: &Arc<Account>) -> Result<HandleToken> {
        if held() >= max() {
            refresh();
            let max = max();
            let held = held();
            if held >= max {
                evict(held.saturating_sub(max - max / 8) + 1, false, None);
            }
            let held = self::held();
            if held >= max {
                let backends = BUDGET.backends.load(Ordering::Relaxed).max(1);
                let limit = BUDGET.limit.load(Ordering::Relaxed);
                if account.handles() >= (max / backends).max(1) || held >= ceiling(limit, max) {
                    BUDGET.refused.fetch_add(1, Ordering::Relaxed);
                    return Err(errno::EMFILE);
                }
            }
        }
        BUDGET.handles.fetch_add(1, Ordering::Relaxed);
        account.handles.fetch_add(1, Ordering::Relaxed);
        Ok(HandleToken {
            account: Arc::clone(account),
        })
    }
}

impl Drop for HandleToken {
    fn drop(&mut self) {
        BUDGET.handles.fetch_sub(1, Ordering::Relaxed);
        self.account.handles.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_is_9p_c_margin() {
        assert_eq!(split(1024), (1024, 341));
        assert_eq!(split(256), (256, 85));
        assert_eq!(split(128), (128, 42));
        assert_eq!(split(65536), (65536, 400));
        assert_eq!(ceiling(1024, 683), 854);
        assert_eq!(ceiling(256, 171), 214);
    }
}
