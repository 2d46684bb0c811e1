//! The shutdown tree: the weak links from a latch to its children, the
//! trigger and force cascades, and the walks over a subtree (holders, the
//! straggler snapshot).
//!
//! Latches link upwards strongly (a child's guards count on every ancestor)
//! and downwards weakly (a trigger cascades down), so there is no cycle.
//!
//! # Invariants of the tree
//!
//! 1. **A latch lives while anything can still use it**: a handle (its
//!    anchor), a guard (the anchor's or the collective reference,
//!    `core::hold`), a future (an `Arc`), a child latch (its parent link), or
//!    a spawned thread's wrapper (an `Arc`). Nothing else keeps it: dropping
//!    handles never frees a latch that still has guards, and never triggers.
//!    *Checked by* loom `handles::*`,
//!    `shutdown::dropping_handles_in_any_order_never_triggers_or_breaks`,
//!    valgrind and ASan.
//! 2. **Every live descendant is reachable from its parent**, whether or not
//!    a handle of either is left: the parent's child list holds a `Weak` to
//!    it from [`Shutdown::child`](crate::Shutdown::child) on, and a `Weak`
//!    upgrades exactly while the latch lives (1). So the cascade (trigger,
//!    force) reaches grandchildren through intermediate latches whose handles
//!    are gone, and a guard triggers its own subtree with no handle left
//!    (`Guard::fail`, vital guards). *Checked by* loom
//!    `promises::guard_fail_with_no_handle_left`,
//!    `handles::prune_vs_guard_turned_into_future` (mutant `prune-by-count`);
//!    `policy::no_handle_left_*`.
//! 3. **A child is made only before its parent's trigger**: [`adopt`] checks
//!    `CLOSED` under the parent's child-list lock, and the cascade reads that
//!    list (under the lock) after closing the parent. Either the cascade sees
//!    the child, or the child is refused. *Checked by* loom
//!    `shutdown::child_vs_parent_trigger` (mutant `unlocked-child`).
//! 4. **Once `trigger` returns, the whole live subtree is closed**: each
//!    latch is closed before its list is read; every `trigger` call, winner
//!    or not, walks the subtree. *Checked by* loom
//!    `shutdown::child_guard_vs_parent_trigger`.
//! 5. **A dead link is final**: a `Weak` that fails to upgrade never
//!    upgrades again, so pruning it (when the list would grow, or during a
//!    walk) loses nothing. No count is read to decide it: there is no order
//!    of reads to get wrong. *Checked by* `tests/suite/deep.rs`, the prune unit
//!    tests (`shutdown/tests.rs`).
//! 6. **Walks are loops**: the cascade and the subtree walks use work
//!    lists, so a chain 10,000 latches deep costs no stack. *Checked by*
//!    `tests/suite/deep.rs`.
//!
//! # Deadlock safety
//!
//! Locks of the shutdown module: a latch's `meta`, `children`, `registry`,
//! `failures`, and a failure record. No two are held at once except the
//! registries of a subtree (taken parents before children, by [`holders`]
//! only, the one such order anywhere) and `failures` then a record. No
//! waker, user callback or `Drop` of a user type runs under any of them:
//! wakers run after their wait list is released (`core::wakers`), a close is
//! announced after `meta` is released, and the `Arc`s a walk upgrades are
//! dropped after the list's lock. So a waker may trigger, take a guard, read
//! `holders` or a reason inline.

use std::borrow::Cow;
use std::time::Instant;

use super::latch::{Latch, Shown, Stage, Why};
use super::trace::{trace_stragglers, trace_trigger};
use crate::core::hold::Anchor;
use crate::core::sync::Arc;
use crate::core::wakers::Unwound;
use crate::mutant;
use crate::report::{Cause, Holders, Report, ShutdownStarted, Stragglers};

/// Triggers `this` and, whoever won, cascades to every live descendant, so
/// that once any `trigger` call returns the whole subtree is closed
/// (invariant 4). Each latch gets its parent's reason (a latch triggered
/// before keeps its own). A waker's panic is resumed once the whole subtree
/// is closed and every other waiter woken.
pub(super) fn trigger(this: &Arc<Latch>, why: &Why) -> bool {
    let mut unwound = Unwound::default();
    let first = trigger_tree(this, why, &mut unwound);
    unwound.resume();
    first
}

/// [`trigger`], keeping a waker's panic in `unwound`.
pub(super) fn trigger_tree(this: &Arc<Latch>, why: &Why, unwound: &mut Unwound) -> bool {
    let first = Latch::close(this, why, unwound);
    if first {
        // Once per trigger of a tree, not once per latch it reaches. A
        // subscriber is user code: its panic waits, like a waker's, until
        // the cascade below is done.
        unwound.catch(|| trace_trigger(this));
    }
    for_each_below(this, |latch| {
        // The ancestor's cause: its parent was closed before its list was
        // read, so `why` is the one the election there recorded.
        if let Some(parent) = &latch.parent {
            Latch::close(latch, &parent.why(), unwound);
        }
    });
    first
}

/// Forces `this` and every live descendant (triggering first if needed);
/// true if this call forced `this`.
pub(super) fn force(this: &Arc<Latch>) -> bool {
    let mut unwound = Unwound::default();
    if !this.is_triggered() {
        trigger_tree(this, &Why::new(Cause::Requested(None)), &mut unwound);
    }
    let first = this.force_one(&mut unwound);
    for_each_below(this, |latch| {
        latch.force_one(&mut unwound);
    });
    unwound.resume();
    first
}

/// Announces `this` and every live descendant ("stopping soon"); true if
/// this call announced `this`. Guards are still admitted. A child made later
/// is announced at birth ([`adopt`], under the list's lock: invariant 3's
/// argument, for the announcement).
pub(super) fn announce(this: &Arc<Latch>) -> bool {
    let mut unwound = Unwound::default();
    let first = this.announce_one(&mut unwound);
    // Mutant: the announcement stays on this latch; a child's waiters sleep.
    if !mutant::is("announce-no-cascade") {
        for_each_below(this, |latch| {
            latch.announce_one(&mut unwound);
        });
    }
    unwound.resume();
    first
}

/// Runs `f` on every live descendant of `this`, each before its children
/// are read (so a close made by `f` is in place before the children's lists
/// are looked at), with a work list rather than a recursion (invariant 7).
pub(super) fn for_each_below(this: &Latch, mut f: impl FnMut(&Arc<Latch>)) {
    let mut pending = this.live_children();
    while let Some(latch) = pending.pop() {
        f(&latch);
        pending.extend(latch.live_children());
    }
}

/// `this` and every live descendant, parents before children, without
/// recursion, each with its path (`Latch::path`), built from its parent's
/// as the walk goes down: one walk to the root for `this`, then constant
/// work per latch, so a deep chain costs linear time.
pub(super) fn subtree_with_paths(this: &Arc<Latch>) -> Vec<(Arc<Latch>, String)> {
    let mut latches = vec![(this.clone(), this.path())];
    let mut next = 0;
    while let Some((latch, path)) = latches.get(next) {
        let children: Vec<_> = latch
            .live_children()
            .into_iter()
            .map(|child| {
                let path = match (&child.name, path.is_empty()) {
                    (None, _) => path.clone(),
                    (Some(name), true) => name.to_string(),
                    (Some(name), false) => format!("{path}/{name}"),
                };
                (child, path)
            })
            .collect();
        latches.extend(children);
        next += 1;
    }
    latches
}

/// Who holds this subtree open: the count, and the named guards of the
/// whole subtree, consistent with each other.
///
/// Every registry of the subtree is locked (parents before children, the one
/// lock order used anywhere for more than one registry) while the count is
/// read and the names are collected. A named guard registers after taking
/// its count and unregisters before releasing it, each under its registry's
/// lock, so every name listed belongs to a guard whose count is in `count`:
/// the names never outnumber the count.
pub(super) fn holders(this: &Arc<Latch>, now: Instant) -> Holders {
    let core = &this.core;
    // Paths first: they read only the latches' immutable names.
    let (latches, paths): (Vec<_>, Vec<_>) = subtree_with_paths(this).into_iter().unzip();
    let mut named = Vec::new();
    let count = if mutant::is("names-first") || mutant::is("names-unlocked") {
        // Each registry locked on its own, names before the count (a guard
        // dropped between the reads is listed, not counted) or after it (a
        // named clone made between the reads is listed, not counted).
        let first = mutant::is("names-first");
        let names = |named: &mut Vec<_>| {
            for (latch, path) in latches.iter().zip(&paths) {
                latch.registry.lock().snapshot_into(now, path, named);
            }
        };
        if first {
            names(&mut named);
        }
        let count = core.snapshot().count();
        if !first {
            names(&mut named);
        }
        count
    } else {
        let locked: Vec<_> = latches.iter().map(|latch| latch.registry.lock()).collect();
        let count = core.snapshot().count();
        for (registry, path) in locked.iter().zip(&paths) {
            registry.snapshot_into(now, path, &mut named);
        }
        count
    };
    named.sort_by_key(|(since, _)| *since);
    Holders {
        count,
        // Read after the count: every panicking release it saw is included
        // (the panicked counter is raised before the release).
        panicked: core.panicked(),
        named: named.into_iter().map(|(_, s)| s).collect(),
    }
}

/// A bounded drain's deadline has passed: the report if the latch drained
/// after all (the last guard may go at the very moment), or the stragglers,
/// from one snapshot.
pub(super) fn give_up(this: &Arc<Latch>) -> Result<Report, Stragglers> {
    let now = Instant::now();
    let holders = holders(this, now);
    if holders.count == 0 && this.is_triggered() {
        return Ok(this.report());
    }
    let stragglers = Stragglers {
        remaining: holders.count,
        names: holders.named.iter().map(|s| s.name.clone()).collect(),
        panicked: holders.panicked,
        reason: this.reason(),
        cause: this.cause(),
        elapsed: this.since_trigger(now),
        forced: this.is_forced(),
        failures: this.failures(Shown::Snapshot).into(),
        held: holders.named,
    };
    // Warn once per latch: a bounded drain polled in a loop would otherwise
    // log a warning on every attempt.
    let first = this.warned.set(());
    trace_stragglers(&this.path(), &stragglers, first);
    if first {
        this.tell_systemd(Stage::Ended, || format!("gave up: {stragglers}"));
    }
    Err(stragglers)
}

/// Makes a child latch of `parent`, linked weakly from its list, or refuses
/// once `parent` is triggered (invariant 3); the child's anchor, for its
/// first handle.
pub(super) fn adopt(
    parent: &Arc<Latch>,
    name: Option<Cow<'static, str>>,
) -> Result<Arc<Anchor<Latch>>, ShutdownStarted> {
    if mutant::is("unlocked-child") && parent.is_triggered() {
        return Err(ShutdownStarted);
    }
    let mut children = parent.children.lock();
    // Checked under the lock the cascade takes after closing (invariant 3):
    // either the trigger's cascade sees this child in the list, or this
    // check sees `CLOSED`.
    if parent.is_triggered() && !mutant::is("unlocked-child") {
        return Err(ShutdownStarted);
    }
    if children.len() == children.capacity() {
        // Amortized: drop the dead links only when the list would grow
        // (invariant 5), then leave as much room as there are live links,
        // so that the next walk of the list comes only after as many
        // children more: constant work per child, however many live.
        children.retain(|child| child.strong_count() > 0);
        let live = children.len();
        children.reserve(live.max(4));
    }
    let anchor = Arc::new(Anchor::new(Latch::new(Some(parent.clone()), name)));
    // The parent's own mark, not its ancestors': a parent is marked at birth
    // or by the cascade, so its mark stands for the chain above it (and a
    // chain of any depth costs one load here, not a walk).
    if parent.announced.is_set() {
        // Under the list's lock: either `announce`'s cascade (which marks
        // the parent first, then reads this list) finds this child, or this
        // check sees the parent's mark. Nobody can wait on the new child
        // yet, so there is no one to wake.
        let mut nobody = Unwound::default();
        anchor.announce_one(&mut nobody);
        nobody.resume();
    }
    children.push(Arc::downgrade(anchor.arc()));
    Ok(anchor)
}

impl Latch {
    /// The live child latches; drops the dead links on the way (invariant 5).
    pub(super) fn live_children(&self) -> Vec<Arc<Latch>> {
        let mut children = self.children.lock();
        let mut live = Vec::with_capacity(children.len());
        children.retain(|child| match child.upgrade() {
            // Mutant: a child with no guard is taken for dead, though a
            // future (or a grandchild) may still wait on it.
            Some(child) if mutant::is("prune-by-count") && child.core.snapshot().count() == 0 => {
                false
            }
            Some(child) => {
                live.push(child);
                true
            }
            None => false,
        });
        live
    }
}
