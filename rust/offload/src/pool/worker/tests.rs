// SPDX-License-Identifier: GPL-2.0-or-later
//! The spin budget.

use super::*;

#[test]
fn spin_budget_follows_the_gaps_between_jobs() {
    let mut spin = Spin::new();
    assert_eq!(spin.budget, SPIN_MAX);
    // Jobs far apart: every spin is wasted, the budget shrinks to none.
    for _ in 0..8 {
        spin.slept(SPIN_MAX * 3);
    }
    assert!(spin.budget < SPIN_MIN);
    assert!(!spin.more(), "no budget: the worker sleeps at once");
    // A job soon after the worker gave up: spinning would have paid.
    spin.slept(SPIN_MAX / 4);
    assert_eq!(spin.budget, SPIN_MAX);
    let t0 = Instant::now();
    let mut polls = 0u64;
    while spin.more() {
        polls += 1;
    }
    let spun = t0.elapsed();
    assert!(
        polls > 0 && spun >= SPIN_MAX,
        "spun {spun:?} in {polls} polls"
    );
    // The next idle period spins again from the start.
    assert!(spin.more());
}
