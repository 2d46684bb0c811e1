//! `Shutdown`, `Guard`, the futures and child latches.
//!
//! Two structures, so that nothing owns itself:
//! * `Latch`: the counting core, a strong link to the parent latch (every
//!   guard of a child also counts on each ancestor) and *weak* links to the
//!   child latches (so a trigger cascades down). Guards, futures and child
//!   latches point here.
//! * the handle: an [`Anchor`] of the latch, shared by the clones of one
//!   `Shutdown`. It keeps the latch alive while it lives and lets guards run
//!   the one-RMW fast path (`hold.rs`); nothing else depends on it.
//!
//! Latches link upwards strongly and downwards weakly, so there is no cycle.
//!
//! # Invariants of the tree
//!
//! 1. **A latch lives while anything can still use it**: a handle (its
//!    anchor), a guard (the anchor's or the collective reference, `hold.rs`),
//!    a future (an `Arc`), a child latch (its parent link), or a spawned
//!    thread's wrapper (an `Arc`). Nothing else keeps it: dropping handles
//!    never frees a latch that still has guards, and never triggers.
//!    *Checked by* `handles::*` (loom), `tests/shutdown.rs`, valgrind and ASan.
//! 2. **Every live descendant is reachable from its parent**, whether or not
//!    a handle of either is left: the parent's child list holds a `Weak` to
//!    it from [`Shutdown::child`] on, and a `Weak` upgrades exactly while the
//!    latch lives (1). So the cascade (trigger, force) reaches grandchildren
//!    through intermediate latches whose handles are gone, and a guard
//!    triggers its own subtree with no handle left ([`Guard::fail`], vital
//!    guards). *Checked by* `guard_fail_with_no_handle_left` (loom),
//!    `tests/policy.rs` (`no_handle_*`).
//! 3. **A child is made only before its parent's trigger**: `make_child`
//!    checks `CLOSED` under the parent's child-list lock, and the cascade
//!    reads that list (under the lock) after closing the parent. Either the
//!    cascade sees the child, or the child is refused. *Checked by*
//!    `child_vs_parent_trigger` (loom; mutant `unlocked-child`).
//! 4. **Once `trigger` returns, the whole live subtree is closed**: each
//!    latch is closed before its list is read; every `trigger` call, winner
//!    or not, walks the subtree. *Checked by* `child_guard_vs_parent_trigger`.
//! 5. **A dead link is final**: a `Weak` that fails to upgrade never
//!    upgrades again, so pruning it (when the list would grow, or during a
//!    walk) loses nothing. No count is read to decide it: there is no order
//!    of reads to get wrong. *Checked by* `tests/deep.rs`, the prune unit
//!    tests below.
//! 6. **Failures are recorded in every ancestor at once**, so a report reads
//!    its own latch's list and never misses the failure of a child freed
//!    meanwhile. A record is shared: its text, fixed once a drain's report
//!    shows it, is the same in every report. *Checked by* `tests/policy.rs`.
//! 7. **Walks are loops, drops are loops**: the cascade, the subtree walks
//!    and `Latch::drop` (which gives up the parent link) use work lists, so
//!    a chain 10,000 latches deep costs no stack. *Checked by*
//!    `tests/deep.rs`.
//!
//! # Deadlock safety
//!
//! Locks of this module: a latch's `meta`, `children`, `registry`,
//! `failures`, and a failure record. No two are held at once except the
//! registries of a subtree (taken parents before children, by `holders`
//! only) and `failures` then a record. No waker, user callback or `Drop` of
//! a user type runs under any of them: wakers run after `wake_all` released
//! its list (`wakers.rs`), and a close is announced after `meta` is
//! released. So a waker may trigger, take a guard, read `holders` or a
//! reason inline.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

use crate::hold::{self, Anchor, Hold, Node};
use crate::mutant;
use crate::report::{Failure, Holders, Registry, Report, SharedStr, ShutdownStarted, Stragglers};
use crate::state::{Core, Until};
use crate::sync::{Arc, AtomicUsize, Mutex, OnceCell, Ordering, Weak};
use crate::wakers::{Key, Unwound, WaitList};

/// When and why a latch was triggered. Written once, under the lock, by the
/// elected trigger.
#[derive(Debug, Default)]
struct Meta {
    triggered_at: Option<Instant>,
    /// Shared with the subtree's latches and every report: an owned reason
    /// is copied once, when the trigger records it.
    reason: Option<SharedStr>,
}

#[derive(Debug)]
pub(crate) struct Latch {
    core: Core,
    parent: Option<Arc<Latch>>,
    /// The child latches, weakly (module docs, invariants 2 and 5).
    children: Mutex<Vec<Weak<Latch>>>,
    meta: Mutex<Meta>,
    /// The report of the completed drain, made by the first drainer to see
    /// it. A drained latch stays drained (no guard is left to clone and no new
    /// one is admitted), so every later drainer returns the same report
    /// without a lock or a clock read.
    drained: OnceCell<Report>,
    registry: Mutex<Registry>,
    /// Given by [`Shutdown::child_named`]; shown in the latch path.
    name: Option<Cow<'static, str>>,
    /// Set by the first straggler warning, so a bounded drain polled in a
    /// loop warns once and then only at debug level.
    warned: OnceCell<()>,
    /// 1 once forced ([`Shutdown::force`]): the second phase, in which
    /// holders abandon in-flight work. Not part of the counting word: it
    /// changes nothing about admission or the drain.
    forced: AtomicUsize,
    /// Woken when `forced` is set.
    forced_list: WaitList,
    /// Failures recorded by guards of this latch and of its descendants
    /// (invariant 6), in the order they were recorded here.
    failures: Mutex<Vec<SharedRecord>>,
    /// 1 once a failure was recorded in this latch's subtree, so that a
    /// report with no failure to list locks nothing and allocates nothing.
    failed: AtomicUsize,
}

/// A failure, with when it was recorded.
#[derive(Debug)]
struct FailureRecord {
    at: Instant,
    failure: Failure,
    /// Set once a drain's report has copied the failure: from then on its
    /// text is fixed, so every report that shows it shows the same text. (A
    /// straggler snapshot, taken mid-drain, does not fix it.)
    shown: bool,
}

/// A failure record, shared by the lists of its latch and every ancestor.
/// std's `Arc` even under loom: it only owns the memory; every read and
/// write of the record goes through the (loom-visible) mutex.
type SharedRecord = std::sync::Arc<Mutex<FailureRecord>>;

/// What copying a failure for a report does to its record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// A drain's report: the text is fixed from now on.
    Fix,
    /// A straggler snapshot: the text may still change.
    Snapshot,
}

/// This thread's spawn ([`Shutdown::spawn`]), while its body runs.
struct Spawned {
    /// The spawn guard: the address of its [`Extra`], while it lives (0 once
    /// it is dropped, so a later allocation at that address is not taken
    /// for it).
    guard: usize,
    /// The failure records made while this thread unwinds (vital or named
    /// guards dropped by the panic): the panic's message goes into them.
    records: Vec<SharedRecord>,
    /// The spawn guard's registration, when the guard was dropped by the
    /// panic: its name stays listed until its count, deferred to the
    /// wrapper, goes.
    name: Option<u64>,
}

std::thread_local! {
    /// In a thread of `Shutdown::spawn`: its spawn (see [`Spawned`]).
    static SPAWNED: RefCell<Option<Spawned>> = const { RefCell::new(None) };
}

/// The body of a thread of `Shutdown::spawn` / `spawn_named`: `f` runs with
/// `guard` under [`run_recording_panic`].
fn spawn_body<F, T>(
    mut guard: Guard,
    name: Option<String>,
    site: &'static Location<'static>,
    f: F,
) -> impl FnOnce() -> T + Send + 'static
where
    F: FnOnce(Guard) -> T + Send + 'static,
    T: Send + 'static,
{
    let id = guard.mark_spawned();
    let latch = guard.hold.to_arc();
    // Mutant: the extra count this replaced, which every view saw.
    let hidden = mutant::is("spawn-hidden-count").then(|| guard.hold.clone());
    move || {
        let result = run_recording_panic(id, latch, name, site, move || f(guard));
        drop(hidden);
        result
    }
}

/// Starts a thread of `Shutdown::spawn`, named `name` if the OS can take it
/// (no NUL byte). Panics if the OS cannot start a thread, as
/// `std::thread::spawn` does.
fn spawn_thread<T: Send + 'static>(
    name: Option<&str>,
    body: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    let mut builder = std::thread::Builder::new();
    if let Some(name) = name.filter(|name| !name.contains('\0')) {
        builder = builder.name(name.to_owned());
    }
    builder.spawn(body).expect("failed to spawn thread")
}

/// Runs a spawned thread's body. If it panics, records the panic's message
/// as a failure (in the records the vital and named guards of this thread
/// made while it unwound, or as a new one on the spawning latch), then
/// resumes the panic, so that the `JoinHandle` still reports it.
///
/// The spawn guard is the thread's only count: no extra one, so every view
/// counts one guard per thread. If the panic drops it, its release is
/// deferred to here (`Hold::defer_release`), after the record is made: the
/// spawning latch (and its ancestors) cannot drain (and cache a report)
/// while the panic's message is still on its way. A vital guard of another
/// latch has no such deferral: that latch may drain while this thread is
/// still unwinding, and if a report shows the record first, the record
/// keeps "panicked" (its text never changes once shown, so every report of
/// it agrees). Deferring that release would hold it across the drops the
/// unwinding still runs, and one of them may wait for that very latch.
fn run_recording_panic<T>(
    guard: usize,
    latch: Arc<Latch>,
    name: Option<String>,
    site: &'static Location<'static>,
    body: impl FnOnce() -> T,
) -> T {
    SPAWNED.with(|spawned| {
        *spawned.borrow_mut() = Some(Spawned {
            guard,
            records: Vec::new(),
            name: None,
        })
    });
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    let spawned = SPAWNED.with(|spawned| spawned.borrow_mut().take());
    // The spawn guard's count, if the panic dropped it (or a panic the body
    // caught itself): still held, so the drain waits for what follows.
    let deferred = Hold::<Latch>::take_deferred();
    if let (Err(payload), Some(spawned)) = (&result, &spawned) {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panicked".to_owned());
        let mine = |record: &SharedRecord| {
            latch
                .failures
                .lock()
                .iter()
                .any(|r| std::sync::Arc::ptr_eq(r, record))
        };
        for record in &spawned.records {
            let mut record = record.lock();
            if !record.shown {
                record.failure.reason.clone_from(&message);
            }
        }
        if !spawned.records.iter().any(mine) {
            latch.push_failure(FailureRecord {
                at: Instant::now(),
                failure: Failure {
                    name,
                    latch: latch.path(),
                    site,
                    reason: message,
                },
                shown: false,
            });
        }
    }
    if let Some(id) = spawned.and_then(|spawned| spawned.name) {
        // Before the count goes: a straggler list never names a guard
        // already released.
        latch.registry.lock().remove(id);
    }
    if let Some(hold) = deferred {
        hold.release_panicked();
    }
    drop(latch);
    match result {
        Ok(value) => value,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

impl Node for Latch {
    fn core(&self) -> &Core {
        &self.core
    }

    fn parent(&self) -> Option<&Arc<Self>> {
        self.parent.as_ref()
    }
}

impl Latch {
    fn new(parent: Option<Arc<Latch>>, name: Option<Cow<'static, str>>) -> Self {
        Self {
            core: Core::new(),
            parent,
            children: Mutex::new(Vec::new()),
            name,
            warned: OnceCell::new(),
            forced: AtomicUsize::new(0),
            forced_list: WaitList::default(),
            failures: Mutex::new(Vec::new()),
            failed: AtomicUsize::new(0),
            meta: Mutex::new(Meta::default()),
            drained: OnceCell::new(),
            registry: Mutex::new(Registry::default()),
        }
    }

    /// Elects the trigger: the first caller records time and reason, then
    /// closes the core, all under the lock, so a reader that sees `CLOSED`
    /// (Acquire) also sees them. The close goes through `this`, a strong
    /// reference the caller owns, which pays the notify reference
    /// (`hold.rs`, transition C). True for the elected call. The waiters are
    /// woken after the lock; a waker's panic is kept in `unwound`.
    fn close(this: &Arc<Latch>, reason: Option<SharedStr>, unwound: &mut Unwound) -> bool {
        if mutant::is("racy-election") {
            // Check-then-act without the lock: two triggers can both win.
            if this.core.snapshot().is_closed() {
                return false;
            }
            let mut meta = this.meta.lock();
            meta.triggered_at = Some(Instant::now());
            meta.reason = reason;
            drop(meta);
            if let Some(closing) = hold::close(this) {
                unwound.keep(this.core.announce(closing));
            }
            return true;
        }
        let mut meta = this.meta.lock();
        if meta.triggered_at.is_some() {
            return false;
        }
        meta.triggered_at = Some(Instant::now());
        meta.reason = reason;
        // Closed under the lock, so that a losing `trigger` (which returns
        // once it sees `triggered_at`) returns only after the word is closed.
        let closing = hold::close(this);
        debug_assert!(closing.is_some(), "CLOSED set outside Latch::close");
        drop(meta);
        // Announced after the lock: waking runs wakers, and a waker that
        // reads the reason (or triggers again) inline must not deadlock.
        if let Some(closing) = closing {
            unwound.keep(this.core.announce(closing));
        }
        true
    }

    fn is_triggered(&self) -> bool {
        self.core.snapshot().is_closed()
    }

    /// `Acquire`: pairs with the `Release` of [`force_one`](Self::force_one),
    /// so a holder that sees the flag also sees what the forcing thread did
    /// first.
    fn is_forced(&self) -> bool {
        self.forced.load(Ordering::Acquire) != 0
    }

    /// Records a failure in this latch and every ancestor (invariant 6);
    /// returns the shared record.
    ///
    /// `Release` on the flags, after the record is pushed: a reader that sees
    /// a flag with `Acquire` finds the record. A guard records before it
    /// releases its count, so a drain that completes sees the flag.
    fn push_failure(&self, record: FailureRecord) -> SharedRecord {
        let record = std::sync::Arc::new(Mutex::new(record));
        let mut level = Some(self);
        while let Some(latch) = level {
            latch.failures.lock().push(record.clone());
            latch.failed.fetch_or(1, Ordering::Release);
            level = latch.parent.as_deref();
        }
        record
    }

    /// Sets the forced flag and wakes its waiters, and the drain's (a phased
    /// drain's grace ends early when forced); true for the call that set it.
    /// Waiters check under their list's lock before they register, after
    /// this RMW is visible (`wakers.rs`). A waker's panic goes to `unwound`.
    fn force_one(&self, unwound: &mut Unwound) -> bool {
        if self.forced.fetch_or(1, Ordering::AcqRel) != 0 {
            return false;
        }
        unwound.keep(self.forced_list.wake_all());
        unwound.keep(self.core.wake_drain_waiters());
        true
    }

    /// The names of the named latches from the root down to this one, joined
    /// by `/` (unnamed latches are left out; empty if none is named).
    fn path(&self) -> String {
        let mut names = Vec::new();
        let mut level = Some(self);
        while let Some(latch) = level {
            if let Some(name) = &latch.name {
                names.push(&**name);
            }
            level = latch.parent.as_deref();
        }
        names.reverse();
        names.join("/")
    }

    fn reason(&self) -> Option<SharedStr> {
        self.meta.lock().reason.clone()
    }

    fn since_trigger(&self, now: Instant) -> Duration {
        self.meta
            .lock()
            .triggered_at
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at))
    }

    /// The report of a completed drain; call only once it is observed.
    fn report(&self) -> Report {
        if let Some(report) = self.drained.get() {
            return report;
        }
        let report = Report {
            panicked: self.core.panicked(),
            elapsed: self.since_trigger(Instant::now()),
            reason: self.reason(),
            latch: self.path().into(),
            forced: self.is_forced(),
            failures: self.failures(Shown::Fix).into(),
        };
        if self.drained.set(report.clone()) {
            trace_drained(self, &report);
            report
        } else {
            // Another drainer got there first: everyone returns its report.
            self.drained.get().unwrap_or(report)
        }
    }

    /// The failures recorded in this subtree, oldest first.
    fn failures(&self, shown: Shown) -> Vec<Failure> {
        if self.failed.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let records = self.failures.lock().clone();
        let mut all: Vec<(Instant, Failure)> = records
            .iter()
            .map(|record| {
                let mut record = record.lock();
                record.shown |= shown == Shown::Fix;
                (record.at, record.failure.clone())
            })
            .collect();
        all.sort_by_key(|(at, _)| *at);
        all.into_iter().map(|(_, f)| f).collect()
    }

    fn wait_triggered(&self, deadline: Option<Instant>) -> bool {
        self.core.wait(Until::Closed, deadline)
    }

    /// The live child latches; drops the dead links on the way (invariant 5).
    fn live_children(&self) -> Vec<Arc<Latch>> {
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

/// Triggers `this` and, whoever won, cascades to every live descendant, so
/// that once any `trigger` call returns the whole subtree is closed
/// (invariant 4). Each latch gets its parent's reason (a latch triggered
/// before keeps its own). A waker's panic is resumed once the whole subtree
/// is closed and every other waiter woken.
fn trigger(this: &Arc<Latch>, reason: Option<SharedStr>) -> bool {
    let mut unwound = Unwound::default();
    let first = trigger_tree(this, reason, &mut unwound);
    unwound.resume();
    first
}

/// [`trigger`], keeping a waker's panic in `unwound`.
fn trigger_tree(this: &Arc<Latch>, reason: Option<SharedStr>, unwound: &mut Unwound) -> bool {
    let first = Latch::close(this, reason, unwound);
    if first {
        // Once per trigger of a tree, not once per latch it reaches.
        trace_trigger(this);
    }
    for_each_below(this, |latch| {
        let reason = latch.parent.as_ref().and_then(|parent| parent.reason());
        Latch::close(latch, reason, unwound);
    });
    first
}

/// Forces `this` and every live descendant (triggering first if needed);
/// true if this call forced `this`.
fn force(this: &Arc<Latch>) -> bool {
    let mut unwound = Unwound::default();
    if !this.is_triggered() {
        trigger_tree(this, None, &mut unwound);
    }
    let first = this.force_one(&mut unwound);
    for_each_below(this, |latch| {
        latch.force_one(&mut unwound);
    });
    unwound.resume();
    first
}

/// Runs `f` on every live descendant of `this`, each before its children
/// are read (so a close made by `f` is in place before the children's lists
/// are looked at), with a work list rather than a recursion (invariant 7).
fn for_each_below(this: &Latch, mut f: impl FnMut(&Arc<Latch>)) {
    let mut pending = this.live_children();
    while let Some(latch) = pending.pop() {
        f(&latch);
        pending.extend(latch.live_children());
    }
}

/// `this` and every live descendant, parents before children, without
/// recursion.
fn subtree(this: &Arc<Latch>) -> Vec<Arc<Latch>> {
    let mut latches = vec![this.clone()];
    let mut next = 0;
    while let Some(latch) = latches.get(next) {
        let children = latch.live_children();
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
fn holders(this: &Arc<Latch>, now: Instant) -> Holders {
    let core = &this.core;
    let latches = subtree(this);
    let mut named = Vec::new();
    // Paths first: they read only the latches' immutable names.
    let paths: Vec<_> = latches.iter().map(|latch| latch.path()).collect();
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
fn give_up(this: &Arc<Latch>) -> Result<Report, Stragglers> {
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
        elapsed: this.since_trigger(now),
        forced: this.is_forced(),
        failures: this.failures(Shown::Snapshot).into(),
        held: holders.named,
    };
    // Warn once per latch: a bounded drain polled in a loop would otherwise
    // log a warning on every attempt.
    trace_stragglers(&this.path(), &stragglers, this.warned.set(()));
    Err(stragglers)
}

impl Drop for Latch {
    /// Gives up the parent link with a loop, not a recursion: freeing the
    /// deepest latch of a chain would otherwise free its parent from inside
    /// its own drop, and so on up the chain.
    fn drop(&mut self) {
        let mut parent = self.parent.take();
        while let Some(latch) = parent {
            parent = Arc::into_inner(latch).and_then(|mut latch| latch.parent.take());
        }
    }
}

/// A one-shot shutdown latch shared by every component of a program.
///
/// Work is admitted with [`guard`](Self::guard) until the latch is
/// [triggered](Self::trigger); after that, admission is refused, every holder
/// can see it (or wait for it), and [`wait_drained`](Self::wait_drained)
/// returns once the last guard is gone. Trigger and admission are one atomic
/// decision: a guard admitted before `trigger` returns is waited for by every
/// drain; one asked for afterwards is refused with [`ShutdownStarted`].
///
/// Handles are cheap to clone and all refer to the same latch. Dropping
/// handles never triggers: guards keep working when the last handle is gone.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use quiescent::Shutdown;
///
/// let shutdown = Shutdown::new();
/// let worker = shutdown
///     .spawn(|guard| {
///         let mut ticks = 0;
///         while !guard.wait_triggered_timeout(Duration::from_millis(1)) {
///             ticks += 1; // work until told to stop
///         }
///         ticks
///     })
///     .unwrap();
///
/// let report = shutdown.shutdown_timeout(Duration::from_secs(5)).unwrap();
/// assert_eq!(report.panicked, 0);
/// assert!(shutdown.guard().is_err()); // no new work after the trigger
/// worker.join().unwrap();
/// ```
///
/// # Children
///
/// [`child`](Self::child) makes a latch triggered together with its parent
/// whose guards also keep the parent's drain open. Shutting a parent down
/// therefore waits for the children first, which orders a shutdown: make the
/// readers a child of the connection manager, and the readers are gone
/// before the manager's drain completes.
#[derive(Clone)]
pub struct Shutdown {
    /// The latch's anchor, shared by every clone of this handle.
    anchor: Arc<Anchor<Latch>>,
}

impl Shutdown {
    fn latch(&self) -> &Arc<Latch> {
        self.anchor.arc()
    }

    /// Creates an untriggered latch with no guards.
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// assert!(!shutdown.is_triggered());
    /// assert_eq!(shutdown.count(), 0);
    /// ```
    pub fn new() -> Self {
        Self {
            anchor: Arc::new(Anchor::new(Latch::new(None, None))),
        }
    }

    /// Admits one unit of work, unless shutdown has started.
    ///
    /// Unnamed guards cost one atomic operation to take and one to drop (plus
    /// one per ancestor latch for a child); no lock, no allocation.
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let guard = shutdown.guard().unwrap();
    /// assert_eq!(shutdown.count(), 1);
    /// shutdown.trigger();
    /// assert!(guard.is_triggered());
    /// assert_eq!(shutdown.guard().unwrap_err(), quiescent::ShutdownStarted);
    /// ```
    ///
    /// # Errors
    ///
    /// [`ShutdownStarted`] once this latch (or an ancestor) has been
    /// triggered.
    #[inline]
    pub fn guard(&self) -> Result<Guard, ShutdownStarted> {
        Ok(Guard::from_hold(
            Hold::try_acquire(self.latch()).map_err(|_| ShutdownStarted)?,
        ))
    }

    /// Like [`guard`](Self::guard), and records the name, where it was called
    /// from, and when, so that a drain that times out can name this guard.
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let guard = shutdown.guard_named("ws-reader").unwrap();
    /// assert_eq!(guard.name(), Some("ws-reader"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`ShutdownStarted`] once the latch has been triggered.
    #[track_caller]
    pub fn guard_named(
        &self,
        name: impl Into<Cow<'static, str>>,
    ) -> Result<Guard, ShutdownStarted> {
        let site = Location::caller();
        let mut guard = self.guard()?;
        guard.register(name.into(), site);
        Ok(guard)
    }

    /// Makes a child latch: triggered with this one (now or later), able to
    /// trigger and drain on its own, and whose guards also count here.
    ///
    /// A child handle is not a guard: a child with no guards does not hold
    /// this latch's drain open.
    ///
    /// ```
    /// let manager = quiescent::Shutdown::new();
    /// let readers = manager.child().unwrap();
    /// let reader = readers.guard().unwrap();
    /// assert_eq!(manager.count(), 1);
    /// manager.trigger();
    /// assert!(readers.is_triggered() && reader.is_triggered());
    /// ```
    ///
    /// # Errors
    ///
    /// [`ShutdownStarted`] once this latch has been triggered.
    pub fn child(&self) -> Result<Shutdown, ShutdownStarted> {
        self.make_child(None)
    }

    /// Like [`child`](Self::child), with a name: stragglers of this latch
    /// (and of its descendants) are shown with the latch path, the names of
    /// the named latches from the root down, e.g. `server/readers`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let server = quiescent::Shutdown::new();
    /// let readers = server.child_named("readers").unwrap();
    /// let _stuck = readers.guard_named("reader-3").unwrap();
    /// let stragglers = server.shutdown_timeout(Duration::ZERO).unwrap_err();
    /// assert_eq!(stragglers.held[0].latch, "readers");
    /// assert!(stragglers.to_string().contains(": readers: \"reader-3\" ("));
    /// ```
    ///
    /// # Errors
    ///
    /// [`ShutdownStarted`] once this latch has been triggered.
    pub fn child_named(
        &self,
        name: impl Into<Cow<'static, str>>,
    ) -> Result<Shutdown, ShutdownStarted> {
        self.make_child(Some(name.into()))
    }

    fn make_child(&self, name: Option<Cow<'static, str>>) -> Result<Shutdown, ShutdownStarted> {
        let parent = self.latch();
        if mutant::is("unlocked-child") && parent.is_triggered() {
            return Err(ShutdownStarted);
        }
        let mut children = parent.children.lock();
        // Checked under the lock the cascade takes after closing (invariant
        // 3): either the trigger's cascade sees this child in the list, or
        // this check sees `CLOSED`.
        if parent.is_triggered() && !mutant::is("unlocked-child") {
            return Err(ShutdownStarted);
        }
        if children.len() == children.capacity() {
            // Amortized: drop the dead links only when the list would grow
            // (invariant 5); the list then grows only if they were few.
            children.retain(|child| child.strong_count() > 0);
        }
        let anchor = Arc::new(Anchor::new(Latch::new(Some(parent.clone()), name)));
        children.push(Arc::downgrade(anchor.arc()));
        Ok(Shutdown { anchor })
    }

    /// Starts shutdown: refuses new guards and children from now on, tells
    /// every holder, and triggers every child latch. Idempotent; returns true
    /// only for the call that started the shutdown.
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// assert!(shutdown.trigger());
    /// assert!(!shutdown.trigger());
    /// ```
    pub fn trigger(&self) -> bool {
        trigger(self.latch(), None)
    }

    /// Like [`trigger`](Self::trigger), recording why; the reason is kept only
    /// if this call starts the shutdown, is inherited by the children, and
    /// appears in [`Report`] and [`Stragglers`].
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// shutdown.trigger_with_reason("SIGTERM");
    /// shutdown.trigger_with_reason("ignored: already triggered");
    /// assert_eq!(shutdown.reason().as_deref(), Some("SIGTERM"));
    /// ```
    pub fn trigger_with_reason(&self, reason: impl Into<Cow<'static, str>>) -> bool {
        trigger(self.latch(), Some(reason.into().into()))
    }

    /// The reason given when this latch was triggered, if any.
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// assert_eq!(shutdown.reason(), None);
    /// shutdown.trigger_with_reason("SIGTERM");
    /// assert_eq!(shutdown.reason().as_deref(), Some("SIGTERM"));
    /// ```
    pub fn reason(&self) -> Option<Cow<'static, str>> {
        self.latch().reason().map(Cow::from)
    }

    /// Whether this latch has been triggered.
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let child = shutdown.child().unwrap();
    /// shutdown.trigger();
    /// assert!(shutdown.is_triggered() && child.is_triggered());
    /// ```
    pub fn is_triggered(&self) -> bool {
        self.latch().is_triggered()
    }

    /// Live guards of this latch and of all its descendants (a snapshot).
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let child = shutdown.child().unwrap();
    /// let _a = shutdown.guard().unwrap();
    /// let _b = child.guard().unwrap();
    /// assert_eq!((shutdown.count(), child.count()), (2, 1));
    /// ```
    pub fn count(&self) -> usize {
        self.latch().core.snapshot().count()
    }

    /// Blocks until the latch is triggered.
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let waiter = {
    ///     let shutdown = shutdown.clone();
    ///     std::thread::spawn(move || shutdown.wait_triggered())
    /// };
    /// shutdown.trigger();
    /// waiter.join().unwrap();
    /// ```
    ///
    /// # Blocking
    ///
    /// Blocks the current thread; from async code use
    /// [`wait_triggered_async`](Self::wait_triggered_async).
    pub fn wait_triggered(&self) {
        self.latch().wait_triggered(None);
    }

    /// Blocks until the latch is triggered or `timeout` passes; true if
    /// triggered. Any duration is accepted: `Duration::ZERO` only checks, and
    /// one too large for a deadline (`Duration::MAX`) waits without one.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let shutdown = quiescent::Shutdown::new();
    /// // Serve for up to 10ms, or until someone triggers the shutdown.
    /// assert!(!shutdown.wait_triggered_timeout(Duration::from_millis(10)));
    /// shutdown.trigger();
    /// assert!(shutdown.wait_triggered_timeout(Duration::ZERO));
    /// ```
    ///
    /// # Blocking
    ///
    /// Blocks the current thread for `timeout` at most; from async code use
    /// [`wait_triggered_async`](Self::wait_triggered_async).
    ///
    /// # Loom
    ///
    /// Under `--cfg loom`, a wait that would have to park with a deadline panics
    /// (loom's parker cannot time out). `Duration::ZERO`, or a deadline already
    /// past, only checks the state and works in a model.
    pub fn wait_triggered_timeout(&self, timeout: Duration) -> bool {
        self.latch()
            .wait_triggered(Instant::now().checked_add(timeout))
    }

    /// Waits asynchronously until the latch is triggered. The future owns a
    /// reference to the latch (`'static`) and outlives every handle.
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// let shutdown = quiescent::Shutdown::new();
    /// let stop = shutdown.wait_triggered_async();
    /// shutdown.trigger();
    /// stop.await;
    /// # });
    /// ```
    ///
    /// # In a `select!` loop
    ///
    /// The first poll that finds the latch untriggered registers the task's
    /// waker with the latch (a lock, and a waker clone), and dropping the
    /// future takes it out again. Recreating the future on every iteration of
    /// a loop therefore pays both on every iteration; create it once, before
    /// the loop, and poll it by reference. (`select_loop` in
    /// `benches/benches/compare.rs`: 30.8 ns per message recreated, 20.5 ns
    /// hoisted, on a 2-core machine in one run.)
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let shutdown = quiescent::Shutdown::new();
    /// let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(8);
    /// let guard = shutdown.guard().unwrap();
    /// let consumer = tokio::spawn(async move {
    ///     let stop = guard.wait_triggered_async(); // once, not per message
    ///     tokio::pin!(stop);
    ///     let mut sum = 0;
    ///     loop {
    ///         tokio::select! {
    ///             _ = &mut stop => break sum,
    ///             Some(n) = rx.recv() => sum += n,
    ///         }
    ///     }
    /// });
    /// for n in 1..=3 {
    ///     tx.send(n).await.unwrap();
    /// }
    /// shutdown.trigger();
    /// assert!(consumer.await.unwrap() <= 6); // whatever it read before the trigger
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unregisters its waker and changes nothing else: the
    /// latch, its guards and other waiters are untouched.
    pub fn wait_triggered_async(&self) -> Triggered {
        Triggered::new(self.latch().clone())
    }

    /// Blocks until the latch is triggered and no guard is left in its
    /// subtree. Any number of threads may drain at once; each returns the
    /// report. Before the trigger this waits for the trigger: an untriggered
    /// latch is never drained, even with no guards.
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let drainer = {
    ///     let shutdown = shutdown.clone();
    ///     std::thread::spawn(move || shutdown.wait_drained())
    /// };
    /// shutdown.trigger();
    /// assert_eq!(drainer.join().unwrap().panicked, 0);
    /// ```
    ///
    /// # Blocking
    ///
    /// Blocks the current thread; from async code use
    /// [`wait_drained_async`](Self::wait_drained_async). Inside a current-thread
    /// runtime a blocking drain also stops every task that could release a guard.
    #[inline]
    pub fn wait_drained(&self) -> Report {
        // Fast path: a drain observed once is cached, and a latch stays
        // drained; one acquire load and a copy of the cached report (which
        // allocates nothing: its text and failures are shared).
        match self.latch().drained.get_ref() {
            Some(report) => report.clone(),
            None => self.wait_drained_slow(),
        }
    }

    #[cold]
    #[inline(never)]
    fn wait_drained_slow(&self) -> Report {
        self.latch().core.wait(Until::Drained, None);
        self.latch().report()
    }

    /// The report if the latch has drained (triggered, and no guard left in
    /// its subtree), without waiting; `None` otherwise.
    ///
    /// The report is borrowed from the latch, which caches the report of the
    /// first drainer to see the drain; once it is there this is one acquire
    /// load, with nothing copied: the cheapest way to poll for the end of a
    /// drain. [`wait_drained`](Self::wait_drained) returns a copy of the same
    /// report.
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let guard = shutdown.guard().unwrap();
    /// assert!(shutdown.try_wait_drained().is_none()); // not triggered
    /// shutdown.trigger_with_reason("deploy");
    /// assert!(shutdown.try_wait_drained().is_none()); // a guard is alive
    /// drop(guard);
    /// let report = shutdown.try_wait_drained().unwrap();
    /// assert_eq!(report.reason.as_deref(), Some("deploy"));
    /// assert_eq!(*report, shutdown.wait_drained());
    /// ```
    #[inline]
    pub fn try_wait_drained(&self) -> Option<&Report> {
        match self.latch().drained.get_ref() {
            Some(report) => Some(report),
            None => self.try_wait_drained_slow(),
        }
    }

    #[cold]
    #[inline(never)]
    fn try_wait_drained_slow(&self) -> Option<&Report> {
        let snapshot = self.latch().core.snapshot();
        let drained = if mutant::is("poll-before-drain") {
            // Takes the trigger for the end of the drain.
            snapshot.is_closed()
        } else {
            snapshot.is_drained()
        };
        if !drained {
            return None;
        }
        // Observed drained: make (or fetch) the report, which caches it.
        self.latch().report();
        self.latch().drained.get_ref()
    }

    /// Like [`wait_drained`](Self::wait_drained), giving up after `timeout`.
    /// Any duration is accepted: `Duration::ZERO` only checks, and one too
    /// large for a deadline (`Duration::MAX`) waits without one.
    ///
    /// # Errors
    ///
    /// [`Stragglers`]: how many guards remain and which named ones, where
    /// they were made and for how long they have been held.
    /// ```
    /// use std::time::Duration;
    ///
    /// let shutdown = quiescent::Shutdown::new();
    /// let guard = shutdown.guard_named("ws-reader").unwrap();
    /// shutdown.trigger();
    /// let stragglers = shutdown.wait_drained_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(stragglers.names, ["ws-reader"]);
    /// drop(guard);
    /// assert!(shutdown.wait_drained_timeout(Duration::ZERO).is_ok());
    /// ```
    ///
    /// # Blocking
    ///
    /// Blocks the current thread for `timeout` at most; from async code use
    /// [`wait_drained_async`](Self::wait_drained_async) with
    /// [`Drained::until`]. Called inside a current-thread runtime it would also
    /// stop every task that could release a guard.
    ///
    /// # Loom
    ///
    /// Under `--cfg loom`, a wait that would have to park with a deadline panics
    /// (loom's parker cannot time out). `Duration::ZERO`, or a deadline already
    /// past, only checks the state and works in a model.
    pub fn wait_drained_timeout(&self, timeout: Duration) -> Result<Report, Stragglers> {
        self.drain_until(Instant::now().checked_add(timeout))
    }

    /// Like [`wait_drained`](Self::wait_drained), giving up at `deadline`
    /// (a deadline already past only checks).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let shutdown = quiescent::Shutdown::new();
    /// let stuck = shutdown.guard_named("stuck").unwrap();
    /// shutdown.trigger();
    /// let deadline = Instant::now() + Duration::from_millis(10);
    /// let stragglers = shutdown.wait_drained_deadline(deadline).unwrap_err();
    /// assert_eq!(stragglers.names, ["stuck"]);
    /// drop(stuck);
    /// assert!(shutdown.wait_drained_deadline(deadline).is_ok());
    /// ```
    ///
    /// # Errors
    ///
    /// [`Stragglers`], taken once the deadline has passed: how many guards
    /// remain and which named ones. If the last guard goes at that very
    /// moment, the drain is reported instead.
    ///
    /// # Blocking
    ///
    /// Blocks the current thread until `deadline` at most; from async code use
    /// [`Drained::until`].
    ///
    /// # Loom
    ///
    /// Under `--cfg loom`, a wait that would have to park with a deadline panics
    /// (loom's parker cannot time out). `Duration::ZERO`, or a deadline already
    /// past, only checks the state and works in a model.
    pub fn wait_drained_deadline(&self, deadline: Instant) -> Result<Report, Stragglers> {
        self.drain_until(Some(deadline))
    }

    fn drain_until(&self, deadline: Option<Instant>) -> Result<Report, Stragglers> {
        if self.latch().core.wait(Until::Drained, deadline) {
            Ok(self.latch().report())
        } else {
            give_up(self.latch())
        }
    }

    /// Who holds this latch's subtree open right now: the live count, the
    /// named guards (name, site, age) and the panicked count, consistent with
    /// each other. Usable at any time, before or after the trigger; a
    /// timed-out drain's [`Stragglers`] is built from the same snapshot.
    ///
    /// ```
    /// let server = quiescent::Shutdown::new();
    /// let readers = server.child().unwrap();
    /// let _r = readers.guard_named("reader-1").unwrap();
    /// let _w = server.guard_named("writer").unwrap();
    /// let holders = server.holders();
    /// assert_eq!(holders.count, 2);
    /// assert_eq!(holders.named.len(), 2); // the child's guards too
    /// assert_eq!(readers.holders().named[0].name, "reader-1");
    /// ```
    pub fn holders(&self) -> Holders {
        holders(self.latch(), Instant::now())
    }

    /// Waits asynchronously for the drain; see [`wait_drained`](Self::wait_drained).
    /// The future is `'static` and outlives every handle.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unregisters it and changes nothing else.
    /// ```
    /// # futures_executor::block_on(async {
    /// let shutdown = quiescent::Shutdown::new();
    /// let guard = shutdown.guard().unwrap();
    /// let drained = shutdown.wait_drained_async();
    /// shutdown.trigger();
    /// drop(guard);
    /// assert_eq!(drained.await.panicked, 0);
    /// # });
    /// ```
    pub fn wait_drained_async(&self) -> Drained {
        Drained {
            latch: self.latch().clone(),
            key: Key::default(),
        }
    }

    /// Triggers, then waits for the drain.
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let guard = shutdown.guard().unwrap();
    /// std::thread::spawn(move || {
    ///     guard.wait_triggered();
    ///     drop(guard);
    /// });
    /// let report = shutdown.shutdown();
    /// assert_eq!(shutdown.count(), 0);
    /// # let _ = report;
    /// ```
    ///
    /// # Blocking
    ///
    /// Blocks the current thread; from async code use
    /// [`shutdown_async`](Self::shutdown_async).
    pub fn shutdown(&self) -> Report {
        self.trigger();
        self.wait_drained()
    }

    /// Triggers, then waits for the drain at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Stragglers`] naming who is still holding on.
    /// ```
    /// use std::time::Duration;
    ///
    /// let shutdown = quiescent::Shutdown::new();
    /// let worker = shutdown.spawn(|guard| guard.wait_triggered()).unwrap();
    /// let report = shutdown.shutdown_timeout(Duration::from_secs(5)).unwrap();
    /// assert_eq!(report.panicked, 0);
    /// worker.join().unwrap();
    /// ```
    ///
    /// # Blocking
    ///
    /// Blocks the current thread for `timeout` at most; from async code use
    /// `shutdown_async().until(deadline)` ([`Drained::until`]).
    ///
    /// # Loom
    ///
    /// Under `--cfg loom`, a wait that would have to park with a deadline panics
    /// (loom's parker cannot time out). `Duration::ZERO`, or a deadline already
    /// past, only checks the state and works in a model.
    pub fn shutdown_timeout(&self, timeout: Duration) -> Result<Report, Stragglers> {
        self.trigger();
        self.wait_drained_timeout(timeout)
    }

    /// The second phase of a shutdown: marks this latch and its whole subtree
    /// "forced" (triggering first if it was not yet triggered), which tells
    /// holders to abandon in-flight work instead of finishing it
    /// ([`Guard::is_forced`], [`Guard::wait_forced_async`]). Like the
    /// trigger, it refuses nothing more and counts nothing: the drain still
    /// waits for every guard. Idempotent; true only for the call that forced.
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let guard = shutdown.guard().unwrap();
    /// assert!(shutdown.force());
    /// assert!(shutdown.is_triggered() && guard.is_forced());
    /// assert!(!shutdown.force());
    /// ```
    pub fn force(&self) -> bool {
        force(self.latch())
    }

    /// Whether this latch has been forced ([`force`](Self::force)).
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// shutdown.trigger();
    /// assert!(!shutdown.is_forced());
    /// shutdown.force();
    /// assert!(shutdown.is_forced());
    /// ```
    pub fn is_forced(&self) -> bool {
        self.latch().is_forced()
    }

    /// A shutdown in two phases: triggers, waits `grace` for the drain, then
    /// [forces](Self::force) the latch and waits `hard` more. The report says
    /// whether forcing was needed ([`Report::forced`]); the stragglers name
    /// whoever outlived both phases.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let shutdown = quiescent::Shutdown::new();
    /// // A holder that finishes its message unless forced.
    /// let worker = shutdown.spawn(|guard| {
    ///     guard.wait_triggered();
    ///     while !guard.is_forced() {
    ///         std::thread::sleep(Duration::from_millis(1)); // a long message
    ///     }
    /// }).unwrap();
    /// let report = shutdown
    ///     .shutdown_phased(Duration::from_millis(20), Duration::from_secs(5))
    ///     .unwrap();
    /// assert!(report.forced);
    /// worker.join().unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Stragglers`] if guards remain after both phases (`forced` is set).
    ///
    /// # Blocking
    ///
    /// Blocks the current thread for `grace + hard` at most; from async code
    /// use [`shutdown_phased_async`](Self::shutdown_phased_async).
    ///
    /// # Loom
    ///
    /// Under `--cfg loom`, a phase that would have to park with a deadline
    /// panics; `Duration::ZERO` phases only check.
    pub fn shutdown_phased(&self, grace: Duration, hard: Duration) -> Result<Report, Stragglers> {
        self.trigger();
        let latch = self.latch();
        let drained = || latch.core.snapshot().is_drained();
        // The grace phase ends at its deadline, at the drain, or as soon as
        // the latch is forced (`force` wakes the drain's waiters).
        let grace_end = Instant::now().checked_add(grace);
        latch
            .core
            .wait_for(Until::Drained, || drained() || latch.is_forced(), grace_end);
        if drained() {
            return Ok(latch.report());
        }
        // The hard phase starts now: at the grace's end, or at the forcing.
        self.force();
        self.wait_drained_timeout(hard)
    }

    /// The async twin of [`shutdown_phased`](Self::shutdown_phased): triggers
    /// now, forces when `grace` completes, and gives up when the future made
    /// by `hard` completes. `hard` is called only when the second phase
    /// starts, so a timer it makes (`|| tokio::time::sleep(hard)`) counts
    /// from the forcing.
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// let shutdown = quiescent::Shutdown::new();
    /// let stuck = shutdown.guard_named("stuck").unwrap();
    /// // Deadlines already over: force at once, give up at once.
    /// let stragglers = shutdown.shutdown_phased_async(async {}, || async {}).await.unwrap_err();
    /// assert!(stragglers.forced && stuck.is_forced());
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// The trigger (and the forcing, if its phase came) have happened;
    /// dropping the future only stops waiting.
    pub fn shutdown_phased_async<G, H, HF>(&self, grace: G, hard: HF) -> PhasedDrain<G, H, HF>
    where
        G: Future,
        H: Future,
        HF: FnOnce() -> H,
    {
        PhasedDrain {
            drained: self.shutdown_async(),
            grace: Some(Box::pin(grace)),
            make_hard: Some(hard),
            hard: None,
        }
    }

    /// Triggers, then returns a future of the drain.
    ///
    /// The trigger happens here, when `shutdown_async` is called, not when
    /// the future is first polled: a future created and never awaited has
    /// still started the shutdown. Bound it with [`Drained::until`]:
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// let shutdown = quiescent::Shutdown::new();
    /// let drain = shutdown.shutdown_async();
    /// assert!(shutdown.is_triggered()); // before any poll
    /// let report = drain.until(std::future::pending::<()>()).await.unwrap();
    /// assert_eq!(report.panicked, 0);
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// The trigger has happened by the time this returns; dropping the future only
    /// unregisters the drain wait. The shutdown goes on.
    pub fn shutdown_async(&self) -> Drained {
        self.trigger();
        self.wait_drained_async()
    }

    /// Spawns a thread that is handed a guard, admitted before the thread
    /// exists.
    ///
    /// # Errors
    ///
    /// [`ShutdownStarted`] if the latch has been triggered; no thread is
    /// created then.
    ///
    /// # Panics
    ///
    /// Panics if the OS fails to create a thread, like `std::thread::spawn`.
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let worker = shutdown.spawn(|guard| {
    ///     guard.wait_triggered();
    ///     "stopped"
    /// }).unwrap();
    /// shutdown.shutdown();
    /// assert_eq!(worker.join().unwrap(), "stopped");
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, ShutdownStarted>
    where
        F: FnOnce(Guard) -> T + Send + 'static,
        T: Send + 'static,
    {
        let body = spawn_body(self.guard()?, None, Location::caller(), f);
        Ok(spawn_thread(None, body))
    }

    /// Like [`spawn`](Self::spawn), with a named guard: a drain that times
    /// out names this thread, with the caller's file and line as its site.
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let worker = shutdown
    ///     .spawn_named("indexer", |guard| guard.wait_triggered())
    ///     .unwrap();
    /// assert_eq!(shutdown.holders().named[0].name, "indexer");
    /// shutdown.shutdown();
    /// worker.join().unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`ShutdownStarted`] if the latch has been triggered; no thread is
    /// created then.
    ///
    /// # Panics
    ///
    /// Panics if the OS fails to create a thread, like `std::thread::spawn`.
    #[track_caller]
    pub fn spawn_named<F, T>(
        &self,
        name: impl Into<Cow<'static, str>>,
        f: F,
    ) -> Result<JoinHandle<T>, ShutdownStarted>
    where
        F: FnOnce(Guard) -> T + Send + 'static,
        T: Send + 'static,
    {
        let name = name.into();
        let guard = self.guard_named(name.clone())?;
        let body = spawn_body(guard, Some(name.to_string()), Location::caller(), f);
        Ok(spawn_thread(Some(&name), body))
    }

    /// Runs `fut` under a guard of this latch: the returned future holds the
    /// guard until `fut` completes or is dropped, so the drain waits for it.
    /// Refused after the trigger, atomically, like [`guard`](Self::guard).
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// let shutdown = quiescent::Shutdown::new();
    /// let task = shutdown.track(async { 6 * 7 }).unwrap();
    /// assert_eq!(shutdown.count(), 1);
    /// assert_eq!(task.await, 42);
    /// assert_eq!(shutdown.count(), 0);
    /// shutdown.trigger();
    /// assert!(shutdown.track(async {}).is_err());
    /// # });
    /// ```
    ///
    /// With tokio: `tokio::spawn(shutdown.track(handle(conn))?)`.
    ///
    /// # Errors
    ///
    /// [`ShutdownStarted`] once the latch has been triggered.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future drops `fut` and releases the guard, as a
    /// completed future does: the drain no longer waits for it.
    pub fn track<F: Future>(&self, fut: F) -> Result<Tracked<F>, ShutdownStarted> {
        Ok(self.guard()?.track(fut))
    }

    /// Like [`track`](Self::track), with a named guard; the site recorded is
    /// the caller's line (`#[track_caller]`).
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let task = shutdown.track_named("uploader", async {}).unwrap();
    /// let holders = shutdown.holders();
    /// assert_eq!(holders.named[0].name, "uploader");
    /// assert_eq!(holders.named[0].site.line(), line!() - 3);
    /// # drop(task);
    /// ```
    ///
    /// Helpers of your own that call this should be `#[track_caller]` too,
    /// or every guard they make is reported at the helper's line.
    ///
    /// # Errors
    ///
    /// [`ShutdownStarted`] once the latch has been triggered.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future drops `fut` and releases the guard, as a
    /// completed future does: the drain no longer waits for it.
    #[track_caller]
    pub fn track_named<F: Future>(
        &self,
        name: impl Into<Cow<'static, str>>,
        fut: F,
    ) -> Result<Tracked<F>, ShutdownStarted> {
        Ok(self.guard_named(name)?.track(fut))
    }

    /// Shuts down on SIGINT and SIGTERM with the default policy of
    /// [`Shutdown::signals`]: the first signal triggers (the signal's name is
    /// the reason), a second one during the drain [forces](Self::force), a
    /// third (or a second after forcing) prints the stragglers to stderr and
    /// exits with 128 + the signal number, and once the drain has completed
    /// signals no longer exit the process. Same as `self.signals().install()`.
    ///
    /// ```no_run
    /// let shutdown = quiescent::Shutdown::new();
    /// shutdown.trigger_on_signals()?;
    /// // ... run; Ctrl-C triggers `shutdown` with the reason "SIGINT" ...
    /// shutdown.wait_drained();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// Unix only: signal-hook's signal iterator does not exist on Windows,
    /// and no Windows target can be built and tested where this crate is
    /// developed, so there the `signal` feature compiles and adds nothing.
    ///
    /// # Errors
    ///
    /// As [`Signals::install`](crate::Signals::install).
    #[cfg(all(feature = "signal", unix))]
    pub fn trigger_on_signals(&self) -> std::io::Result<()> {
        self.signals().install()
    }

    /// A builder for this latch's signal policy: which signals, what a second
    /// one does, whether the stragglers are printed before an exit. Defaults
    /// as [`trigger_on_signals`](Self::trigger_on_signals).
    ///
    /// ```no_run
    /// use quiescent::SecondSignal;
    ///
    /// let shutdown = quiescent::Shutdown::new();
    /// shutdown
    ///     .signals()
    ///     .only(&[signal_hook::consts::SIGTERM])
    ///     .on_second(SecondSignal::Exit)
    ///     .print_stragglers(false)
    ///     .install()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(all(feature = "signal", unix))]
    pub fn signals(&self) -> crate::signals::Signals {
        crate::signals::Signals::new(self.clone())
    }

    /// For the loom models only: the extra count the signal policy takes to
    /// look at a latch without letting its drain complete (`None` once no
    /// guard is left). Not part of the API.
    #[cfg(all(loom, feature = "loom"))]
    #[doc(hidden)]
    pub fn __loom_guard_if_busy(&self) -> Option<Guard> {
        Some(Guard::from_hold(Hold::acquire_if_busy(self.latch())?))
    }

    /// For the loom models only: [`spawn`](Self::spawn)'s thread, as a loom
    /// thread (the same body, wrapper and panic recording); its result is
    /// the body's, or the panic it resumed. Not part of the API.
    #[cfg(all(loom, feature = "loom"))]
    #[doc(hidden)]
    #[track_caller]
    pub fn __loom_spawn_named<F, T>(
        &self,
        name: &'static str,
        f: F,
    ) -> Result<loom::thread::JoinHandle<std::thread::Result<T>>, ShutdownStarted>
    where
        F: FnOnce(Guard) -> T + Send + 'static,
        T: Send + 'static,
    {
        let guard = self.guard_named(name)?;
        let body = spawn_body(guard, Some(name.to_owned()), Location::caller(), f);
        Ok(loom::thread::spawn(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
        }))
    }

    /// Who is still holding on right now, as a drain that gives up would
    /// report it (for the signal policy), taken while an extra, unnamed count
    /// keeps the drain from completing: `None` if the latch has no guard
    /// left (drained, or never admitted any), and otherwise the stragglers
    /// (not counting the extra one) and that count, which the caller keeps
    /// until it has decided (an exit then happens before any drain).
    #[cfg(all(feature = "signal", unix))]
    pub(crate) fn stragglers_while_held(&self) -> Option<(Stragglers, Guard)> {
        let hold = Hold::acquire_if_busy(self.latch())?;
        let held = Guard::from_hold(hold);
        match give_up(self.latch()) {
            Err(mut stragglers) if stragglers.remaining > 1 => {
                stragglers.remaining -= 1;
                Some((stragglers, held))
            }
            // Only our own count: the drain completes when it goes.
            _ => None,
        }
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.latch().core.snapshot();
        f.debug_struct("Shutdown")
            .field("count", &snapshot.count())
            .field("triggered", &snapshot.is_closed())
            .finish()
    }
}

/// One admitted unit of work on a [`Shutdown`] latch; dropping it releases
/// the count (also during unwinding, where it is counted as panicked).
///
/// Cloning is allowed even after the trigger: a live guard keeps the drain
/// open anyway, so a clone changes nothing about when the drain completes.
///
/// ```
/// let shutdown = quiescent::Shutdown::new();
/// let guard = shutdown.guard_named("worker").unwrap();
/// let copy = guard.clone(); // counted too
/// assert_eq!(shutdown.count(), 2);
/// drop((guard, copy));
/// assert!(shutdown.shutdown_timeout(std::time::Duration::ZERO).is_ok());
/// ```
#[must_use = "a guard releases its count when dropped; an unused guard is released at once"]
#[clippy::has_significant_drop]
pub struct Guard {
    hold: Hold<Latch>,
    /// `None` for an unnamed, ordinary guard, which therefore never locks or
    /// allocates, and whose drop tests one word (a guard is two words, so
    /// moving one costs little more than moving a token).
    extra: Option<Box<Extra>>,
}

/// What a named, vital or spawn guard carries besides its hold.
#[derive(Debug, Default)]
struct Extra {
    named: Option<Named>,
    /// Where [`vital`](Guard::vital) marked it; `None` for ordinary guards.
    vital: Option<&'static Location<'static>>,
    /// The guard a thread of [`Shutdown::spawn`] was handed: if that
    /// thread's panic drops it, its release waits for the spawn's wrapper.
    spawn: bool,
    /// A failure of this guard is recorded (`fail`): its drop records none.
    failed: bool,
}

#[derive(Debug)]
struct Named {
    id: u64,
    name: Cow<'static, str>,
}

impl Guard {
    /// An unnamed, ordinary guard owning `hold`.
    #[inline]
    fn from_hold(hold: Hold<Latch>) -> Self {
        Self { hold, extra: None }
    }

    fn latch(&self) -> &Latch {
        self.hold.node()
    }

    fn named(&self) -> Option<&Named> {
        self.extra.as_ref()?.named.as_ref()
    }

    fn vital_site(&self) -> Option<&'static Location<'static>> {
        self.extra.as_ref()?.vital
    }

    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    fn register(&mut self, name: Cow<'static, str>, site: &'static Location<'static>) {
        let id = self.latch().registry.lock().insert(name.clone(), site);
        self.extra_mut().named = Some(Named { id, name });
    }

    /// Makes this the spawn guard of the thread about to start
    /// ([`spawn_body`]); returns its identity, the address of its `Extra`
    /// (stable while the guard lives, wherever it moves).
    fn mark_spawned(&mut self) -> usize {
        let extra = self.extra_mut();
        extra.spawn = true;
        extra as *const Extra as usize
    }

    /// Whether the latch has been triggered: time to wind down.
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let guard = shutdown.guard().unwrap();
    /// assert!(!guard.is_triggered());
    /// shutdown.trigger();
    /// assert!(guard.is_triggered());
    /// ```
    pub fn is_triggered(&self) -> bool {
        self.latch().is_triggered()
    }

    /// Blocks until the latch is triggered.
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let worker = shutdown.spawn(|guard| guard.wait_triggered()).unwrap();
    /// shutdown.trigger();
    /// worker.join().unwrap();
    /// ```
    ///
    /// # Blocking
    ///
    /// Blocks the current thread; from async code use
    /// [`wait_triggered_async`](Self::wait_triggered_async) or
    /// [`run_until_triggered`](Self::run_until_triggered).
    pub fn wait_triggered(&self) {
        self.latch().wait_triggered(None);
    }

    /// Blocks until the latch is triggered or `timeout` passes; true if
    /// triggered. Any duration is accepted, as in
    /// [`Shutdown::wait_drained_timeout`].
    /// ```
    /// use std::time::Duration;
    ///
    /// let shutdown = quiescent::Shutdown::new();
    /// let guard = shutdown.guard().unwrap();
    /// assert!(!guard.wait_triggered_timeout(Duration::from_millis(1)));
    /// shutdown.trigger();
    /// assert!(guard.wait_triggered_timeout(Duration::ZERO));
    /// ```
    ///
    /// # Blocking
    ///
    /// Blocks the current thread for `timeout` at most.
    ///
    /// # Loom
    ///
    /// Under `--cfg loom`, a wait that would have to park with a deadline panics
    /// (loom's parker cannot time out). `Duration::ZERO`, or a deadline already
    /// past, only checks the state and works in a model.
    pub fn wait_triggered_timeout(&self, timeout: Duration) -> bool {
        self.latch()
            .wait_triggered(Instant::now().checked_add(timeout))
    }

    /// Waits asynchronously until the latch is triggered. The future is
    /// `'static`; it does not hold the guard. In a `select!` loop, create it
    /// once before the loop (see [`Shutdown::wait_triggered_async`]), or use
    /// [`run_until_triggered`](Self::run_until_triggered).
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// let shutdown = quiescent::Shutdown::new();
    /// let guard = shutdown.guard().unwrap();
    /// let stop = guard.wait_triggered_async();
    /// shutdown.trigger();
    /// stop.await;
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unregisters its waker and changes nothing else: the
    /// latch, its guards and other waiters are untouched.
    pub fn wait_triggered_async(&self) -> Triggered {
        Triggered::new(self.hold.to_arc())
    }

    /// The name given to [`Shutdown::guard_named`], if any.
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// assert_eq!(shutdown.guard_named("uploader").unwrap().name(), Some("uploader"));
    /// assert_eq!(shutdown.guard().unwrap().name(), None);
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.named().map(|n| &*n.name)
    }

    /// Moves this guard into a future that holds it until `fut` completes or
    /// is dropped (see [`Shutdown::track`]).
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// let shutdown = quiescent::Shutdown::new();
    /// let guard = shutdown.guard_named("flush").unwrap();
    /// let flush = guard.track(async { "flushed" });
    /// assert_eq!(shutdown.count(), 1);
    /// assert_eq!(flush.await, "flushed");
    /// assert_eq!(shutdown.count(), 0);
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future drops `fut` and releases the guard, as a
    /// completed future does: the drain no longer waits for it.
    pub fn track<F: Future>(self, fut: F) -> Tracked<F> {
        Tracked {
            fut,
            guard: Some(self),
        }
    }

    /// Runs `fut` until shutdown is triggered: resolves to `Some(output)` if
    /// `fut` completes first, or to `None` once the latch is triggered, and
    /// then drops `fut` at once (its resources go before the drain is
    /// awaited). The trigger is checked first on every poll, so on a
    /// triggered latch `fut` is never polled.
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// let shutdown = quiescent::Shutdown::new();
    /// let guard = shutdown.guard().unwrap();
    /// assert_eq!(guard.run_until_triggered(async { 1 }).await, Some(1));
    /// shutdown.trigger();
    /// let forever = std::future::pending::<()>();
    /// assert_eq!(guard.run_until_triggered(forever).await, None);
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future drops `fut` and unregisters the trigger
    /// wait; the guard is untouched (it is borrowed, not moved).
    pub fn run_until_triggered<F: Future>(&self, fut: F) -> UntilTriggered<F> {
        UntilTriggered {
            fut: Some(fut),
            triggered: self.wait_triggered_async(),
        }
    }

    /// Whether the latch has been forced ([`Shutdown::force`]): abandon
    /// in-flight work instead of finishing it.
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let guard = shutdown.guard().unwrap();
    /// shutdown.trigger();
    /// assert!(guard.is_triggered() && !guard.is_forced());
    /// shutdown.force();
    /// assert!(guard.is_forced());
    /// ```
    pub fn is_forced(&self) -> bool {
        self.latch().is_forced()
    }

    /// Waits asynchronously until the latch is forced ([`Shutdown::force`]).
    /// The future is `'static`; it does not hold the guard.
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// let shutdown = quiescent::Shutdown::new();
    /// let guard = shutdown.guard().unwrap();
    /// let forced = guard.wait_forced_async();
    /// shutdown.force();
    /// forced.await;
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unregisters its listener and changes nothing else.
    pub fn wait_forced_async(&self) -> Forced {
        Forced {
            latch: self.hold.to_arc(),
            key: Key::default(),
        }
    }

    /// Marks this guard vital: if it is dropped while its thread panics, its
    /// own latch (and so its subtree) is triggered, with a reason that names
    /// the guard and its site, and the failure is recorded
    /// ([`Report::failures`]). A latch used as a group then fails fast, like
    /// errgroup's first error. Clones are not vital.
    ///
    /// This works with no [`Shutdown`] handle left: the guard reaches its
    /// latch, and the latch its subtree, by itself.
    ///
    /// The failure's text is "panicked": the panic's message is not known
    /// while the guard is dropped. In a thread of [`Shutdown::spawn`], the
    /// message replaces it once the unwinding reaches the spawn's wrapper;
    /// the spawning latch and its ancestors cannot drain before then (the
    /// spawn guard's count is given back after the message is in). A guard
    /// of another latch (a child of the spawning one, say) lets its latch
    /// drain meanwhile, and a report that shows the failure first fixes its
    /// text: every report shows the same text for one failure. Every vital
    /// or named guard the panic drops gets the message.
    ///
    /// ```
    /// let server = quiescent::Shutdown::new();
    /// let workers = server.child_named("workers").unwrap();
    /// let guard = workers.guard_named("indexer").unwrap().vital();
    /// let _ = std::thread::spawn(move || {
    ///     let _guard = guard;
    ///     panic!("index corrupt");
    /// })
    /// .join();
    /// assert!(workers.is_triggered() && !server.is_triggered());
    /// let reason = workers.reason().unwrap();
    /// assert!(reason.starts_with("\"indexer\" ("), "{reason}");
    /// assert!(reason.ends_with(" panicked"), "{reason}");
    /// ```
    #[track_caller]
    pub fn vital(mut self) -> Guard {
        self.extra_mut().vital = Some(Location::caller());
        self
    }

    /// Drops this guard and triggers its latch (and so its subtree), with a
    /// reason that names the guard, its site and `reason`, and records the
    /// failure ([`Report::failures`]): errgroup's first-error cancel for a
    /// latch used as a group. The latch's reason is set only if this starts
    /// its shutdown. This works with no [`Shutdown`] handle left.
    ///
    /// ```
    /// let jobs = quiescent::Shutdown::new();
    /// let a = jobs.guard_named("fetch").unwrap();
    /// let b = jobs.guard_named("parse").unwrap();
    /// b.fail("bad input");
    /// assert!(a.is_triggered()); // the others are told to stop
    /// drop(a);
    /// let report = jobs.wait_drained();
    /// assert_eq!(report.failures[0].reason, "bad input");
    /// assert!(report.reason.unwrap().contains("\"parse\" ("));
    /// ```
    #[track_caller]
    pub fn fail(mut self, reason: impl Into<Cow<'static, str>>) {
        let caller = Location::caller();
        let site = self.vital_site().unwrap_or(caller);
        let reason = reason.into();
        let why = format!("failed: {reason}");
        self.record_failure(site, reason.into_owned(), Some(&why), false);
        // One failure per guard: its drop (maybe during unwinding) must not
        // record a second one.
        self.extra_mut().failed = true;
    }

    /// Records a failure of this guard on its latch (and its ancestors);
    /// with `why`, also triggers the latch and its subtree with a reason
    /// naming the guard: through the guard's own reference, so no handle is
    /// needed (module docs, invariant 2). `unwinding`: the guard is dropped
    /// by a panic, and in a thread of `Shutdown::spawn` the panic's message
    /// will replace "panicked".
    fn record_failure(
        &self,
        fallback: &'static Location<'static>,
        reason: String,
        why: Option<&str>,
        unwinding: bool,
    ) {
        let latch = self.latch();
        let (name, site) = match self.named() {
            Some(named) => (
                Some(named.name.to_string()),
                latch.registry.lock().site(named.id).unwrap_or(fallback),
            ),
            None => (None, fallback),
        };
        let failure = Failure {
            name,
            latch: latch.path(),
            site,
            reason,
        };
        let trigger_reason = why.map(|why| {
            format!(
                "{} ({}:{}) {why}",
                failure
                    .name
                    .as_ref()
                    .map_or_else(|| "a guard".to_owned(), |n| format!("{n:?}")),
                site.file(),
                site.line()
            )
        });
        let record = latch.push_failure(FailureRecord {
            at: Instant::now(),
            failure,
            shown: false,
        });
        if unwinding {
            // Inside a thread of `Shutdown::spawn`: its wrapper replaces this
            // "panicked" with the panic's message, unless a drain's report
            // has shown the record by then (see `run_recording_panic`).
            SPAWNED.with(|spawned| {
                if let Some(spawned) = &mut *spawned.borrow_mut() {
                    spawned.records.push(record);
                }
            });
        }
        if let Some(reason) = trigger_reason {
            trigger(&self.hold.to_arc(), Some(reason.into()));
        }
    }
}

pin_project! {
    /// Future of [`Shutdown::track`], [`Shutdown::track_named`] and
    /// [`Guard::track`]: `fut`, holding a guard until it completes or is
    /// dropped.
///
/// ```
/// # futures_executor::block_on(async {
/// let shutdown = quiescent::Shutdown::new();
/// let tracked: quiescent::futures::Tracked<_> = shutdown.track(async { 1 }).unwrap();
/// assert_eq!(tracked.await, 1);
/// # });
/// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Tracked<F> {
        #[pin]
        fut: F,
        guard: Option<Guard>,
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let output = std::task::ready!(this.fut.poll(cx));
        // Completed: the work is done, release the guard now rather than
        // when the (possibly long-lived) future is dropped.
        this.guard.take();
        Poll::Ready(output)
    }
}

impl<F> fmt::Debug for Tracked<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracked")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// Future of [`Guard::run_until_triggered`].
///
/// ```
/// # futures_executor::block_on(async {
/// let shutdown = quiescent::Shutdown::new();
/// let guard = shutdown.guard().unwrap();
/// shutdown.trigger();
/// assert_eq!(guard.run_until_triggered(async { 1 }).await, None);
/// # });
/// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct UntilTriggered<F> {
        #[pin]
        fut: Option<F>,
        triggered: Triggered,
    }
}

impl<F: Future> Future for UntilTriggered<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if Pin::new(&mut *this.triggered).poll(cx).is_ready() {
            // Drop the work now, not when the caller drops this future.
            this.fut.set(None);
            return Poll::Ready(None);
        }
        match this.fut.as_pin_mut() {
            Some(fut) => fut.poll(cx).map(Some),
            // Polled again after completing: the trigger is all that is left.
            None => Poll::Pending,
        }
    }
}

impl<F> fmt::Debug for UntilTriggered<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UntilTriggered")
            .field("triggered", &self.triggered)
            .finish_non_exhaustive()
    }
}

impl Clone for Guard {
    /// Clones the guard; a named guard's clone is registered under the same
    /// name, at the site of the `clone` call.
    #[track_caller]
    fn clone(&self) -> Self {
        let mut guard = Guard::from_hold(self.hold.clone());
        if let Some(named) = self.named() {
            guard.register(named.name.clone(), Location::caller());
        }
        guard
    }
}

impl Drop for Guard {
    /// Inline: an unnamed, non-vital guard's drop is its hold's release
    /// alone (one atomic RMW), as cheap as a token's.
    #[inline]
    fn drop(&mut self) {
        if self.extra.is_some() {
            self.drop_slow();
        }
    }
}

impl Guard {
    #[cold]
    #[inline(never)]
    fn drop_slow(&mut self) {
        let Some(extra) = &self.extra else {
            return;
        };
        let unwinding = std::thread::panicking();
        if unwinding && !extra.failed {
            // Before the count goes: the drain cannot complete without this
            // failure in its report. A vital guard fails its latch; a named
            // one is only recorded, so the report says which guard the
            // panic dropped (name, site, latch).
            match (extra.vital, &extra.named) {
                (Some(site), _) => {
                    self.record_failure(site, "panicked".into(), Some("panicked"), true)
                }
                (None, Some(named)) => {
                    let site = self.latch().registry.lock().site(named.id);
                    if let Some(site) = site {
                        self.record_failure(site, "panicked".into(), None, true);
                    }
                }
                (None, None) => {}
            }
        }
        let extra = self.extra.as_deref().expect("checked above");
        let spawn = extra.spawn && self.is_this_threads_spawn_guard(extra);
        if spawn && unwinding && !mutant::is("spawn-no-defer") {
            // The spawn guard, dropped by its thread's panic: its count (and
            // its name) stay until the wrapper has put the panic's message
            // in (`run_recording_panic`); the hold's drop, right after this,
            // defers its release to it.
            let name = extra.named.as_ref().map(|named| named.id);
            SPAWNED.with(|spawned| {
                if let Some(spawned) = &mut *spawned.borrow_mut() {
                    spawned.name = name;
                }
            });
            self.hold.defer_release();
            return;
        }
        // Unregister before the count goes (the `hold` field drops after
        // this), so a straggler list never names a guard already released.
        if let Some(named) = self.named() {
            self.latch().registry.lock().remove(named.id);
        }
    }

    /// Whether this is the spawn guard of the thread running this code; if
    /// so, it forgets the guard's identity (the guard is being dropped, and
    /// its address may be reused).
    fn is_this_threads_spawn_guard(&self, extra: &Extra) -> bool {
        let me = extra as *const Extra as usize;
        SPAWNED.with(|spawned| match &mut *spawned.borrow_mut() {
            Some(spawned) if spawned.guard == me => {
                spawned.guard = 0;
                true
            }
            _ => false,
        })
    }
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.latch().core.snapshot();
        f.debug_struct("Guard")
            .field("name", &self.name())
            .field("count", &snapshot.count())
            .field("triggered", &snapshot.is_closed())
            .finish()
    }
}

/// Future of [`Shutdown::wait_triggered_async`] / [`Guard::wait_triggered_async`].
///
/// ```
/// # futures_executor::block_on(async {
/// let shutdown = quiescent::Shutdown::new();
/// let triggered: quiescent::futures::Triggered = shutdown.wait_triggered_async();
/// drop(shutdown.clone()); // the future outlives handles
/// shutdown.trigger();
/// triggered.await;
/// # });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Triggered {
    latch: Arc<Latch>,
    key: Key,
}

impl Triggered {
    fn new(latch: Arc<Latch>) -> Self {
        Self {
            latch,
            key: Key::default(),
        }
    }
}

impl Future for Triggered {
    type Output = ();

    /// Look at the word, then register, looking again under the list's
    /// lock (`wakers.rs` has the no-lost-wake-up argument).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.latch.core.poll(Until::Closed, &mut this.key, cx)
    }
}

impl Drop for Triggered {
    fn drop(&mut self) {
        // Once the latch is triggered the trigger's wake-up owns the waker:
        // a woken future is dropped without taking the lock.
        self.latch.core.cancel(Until::Closed, &mut self.key);
    }
}

impl fmt::Debug for Triggered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Triggered")
            .field("triggered", &self.latch.is_triggered())
            .finish()
    }
}

/// Future of [`Shutdown::wait_drained_async`] and [`Shutdown::shutdown_async`].
///
/// ```
/// # futures_executor::block_on(async {
/// let shutdown = quiescent::Shutdown::new();
/// let drained: quiescent::futures::Drained = shutdown.shutdown_async();
/// drop(shutdown); // the future outlives every handle
/// assert_eq!(drained.await.panicked, 0);
/// # });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Drained {
    latch: Arc<Latch>,
    key: Key,
}

impl Drained {
    /// Bounds this drain by `deadline`, any future: `tokio::time::sleep`,
    /// `async_io::Timer`, a channel's receive... The result resolves to the
    /// report once drained, or to the [`Stragglers`] captured when `deadline`
    /// completes first, from one consistent snapshot (if the last guard goes
    /// at that very moment, the report). The crate stays free of any runtime.
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// let shutdown = quiescent::Shutdown::new();
    /// let stuck = shutdown.guard_named("stuck").unwrap();
    /// // Any future is a deadline; this one is already complete.
    /// let stragglers = shutdown.shutdown_async().until(async {}).await.unwrap_err();
    /// assert_eq!(stragglers.names, ["stuck"]);
    /// drop(stuck);
    /// let report = shutdown.wait_drained_async().until(std::future::pending::<()>()).await;
    /// assert!(report.is_ok());
    /// # });
    /// ```
    ///
    /// With tokio: `shutdown.shutdown_async().until(tokio::time::sleep(grace)).await`.
    ///
    /// The deadline is boxed (one allocation per bounded drain), so that any
    /// future, `Unpin` or not, can serve.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unregisters it and drops `deadline`; nothing else
    /// changes.
    pub fn until<D: Future>(self, deadline: D) -> DrainedUntil<D> {
        DrainedUntil {
            drained: self,
            deadline: Box::pin(deadline),
        }
    }
}

impl Future for Drained {
    type Output = Report;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Report> {
        let this = self.get_mut();
        let latch = &this.latch;
        match latch.core.poll(Until::Drained, &mut this.key, cx) {
            Poll::Ready(()) => Poll::Ready(latch.report()),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Drained {
    fn drop(&mut self) {
        self.latch.core.cancel(Until::Drained, &mut self.key);
    }
}

impl fmt::Debug for Drained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.latch.core.snapshot();
        f.debug_struct("Drained")
            .field("count", &snapshot.count())
            .field("triggered", &snapshot.is_closed())
            .finish()
    }
}

/// Future of [`Drained::until`]: the drain, or the stragglers when the
/// deadline completes first.
///
/// ```
/// # futures_executor::block_on(async {
/// let shutdown = quiescent::Shutdown::new();
/// let _stuck = shutdown.guard().unwrap();
/// let bounded = shutdown.shutdown_async().until(async {});
/// assert_eq!(bounded.await.unwrap_err().remaining, 1);
/// # });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct DrainedUntil<D> {
    drained: Drained,
    deadline: Pin<Box<D>>,
}

impl<D: Future> Future for DrainedUntil<D> {
    type Output = Result<Report, Stragglers>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // The drain first: a deadline and a drain ready at the same poll
        // report the drain.
        if let Poll::Ready(report) = Pin::new(&mut this.drained).poll(cx) {
            return Poll::Ready(Ok(report));
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(_) => Poll::Ready(give_up(&this.drained.latch)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<D> fmt::Debug for DrainedUntil<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrainedUntil")
            .field("drained", &self.drained)
            .finish_non_exhaustive()
    }
}

/// Future of [`Guard::wait_forced_async`].
///
/// ```
/// # futures_executor::block_on(async {
/// let shutdown = quiescent::Shutdown::new();
/// let forced: quiescent::futures::Forced = shutdown.guard().unwrap().wait_forced_async();
/// shutdown.force();
/// forced.await;
/// # });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Forced {
    latch: Arc<Latch>,
    key: Key,
}

impl Future for Forced {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let latch = &this.latch;
        latch
            .forced_list
            .poll(&mut this.key, cx, || latch.is_forced())
    }
}

impl Drop for Forced {
    fn drop(&mut self) {
        let latch = &self.latch;
        latch
            .forced_list
            .cancel(&mut self.key, || latch.is_forced());
    }
}

impl fmt::Debug for Forced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forced")
            .field("forced", &self.latch.is_forced())
            .finish()
    }
}

/// Future of [`Shutdown::shutdown_phased_async`].
///
/// ```
/// # futures_executor::block_on(async {
/// let shutdown = quiescent::Shutdown::new();
/// let phased: quiescent::futures::PhasedDrain<_, _, _> =
///     shutdown.shutdown_phased_async(std::future::pending::<()>(), || async {});
/// assert!(!phased.await.unwrap().forced);
/// # });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct PhasedDrain<G, H, HF> {
    drained: Drained,
    /// The grace deadline, until it fires.
    grace: Option<Pin<Box<G>>>,
    /// Makes the hard deadline when the grace one fires.
    make_hard: Option<HF>,
    hard: Option<Pin<Box<H>>>,
}

impl<G, H, HF> Future for PhasedDrain<G, H, HF>
where
    G: Future,
    H: Future,
    HF: FnOnce() -> H,
{
    type Output = Result<Report, Stragglers>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(report) = Pin::new(&mut this.drained).poll(cx) {
            return Poll::Ready(Ok(report));
        }
        if let Some(grace) = &mut this.grace {
            // The grace phase ends at its deadline, or as soon as the latch
            // is forced (`force` wakes the drain's waiters, this one too).
            let forced = this.drained.latch.is_forced();
            if !forced && grace.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.grace = None;
            force(&this.drained.latch);
            if let Some(make) = this.make_hard.take() {
                this.hard = Some(Box::pin(make()));
            }
            // Forcing may have let the last guard go: look again.
            if let Poll::Ready(report) = Pin::new(&mut this.drained).poll(cx) {
                return Poll::Ready(Ok(report));
            }
        }
        let hard_over = match &mut this.hard {
            Some(hard) => hard.as_mut().poll(cx).is_ready(),
            None => false,
        };
        if hard_over {
            Poll::Ready(give_up(&this.drained.latch))
        } else {
            Poll::Pending
        }
    }
}

// The deadlines are boxed and the closure is never pinned (it is only called
// by value), so the future does not need to stay put.
impl<G, H, HF> Unpin for PhasedDrain<G, H, HF> {}

impl<G, H, HF> fmt::Debug for PhasedDrain<G, H, HF> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhasedDrain")
            .field("drained", &self.drained)
            .field("forced", &self.grace.is_none())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "tracing")]
fn trace_trigger(latch: &Latch) {
    let reason = latch.reason();
    tracing::info!(
        latch = latch.path(),
        reason = reason.as_deref().unwrap_or(""),
        guards = latch.core.snapshot().count(),
        "shutdown triggered"
    );
}

#[cfg(feature = "tracing")]
fn trace_drained(latch: &Latch, report: &Report) {
    tracing::info!(
        latch = latch.path(),
        elapsed = ?report.elapsed,
        panicked = report.panicked,
        "shutdown drained"
    );
}

#[cfg(feature = "tracing")]
fn trace_stragglers(latch: &str, stragglers: &Stragglers, first: bool) {
    if first {
        tracing::warn!(
            latch,
            remaining = stragglers.remaining,
            names = ?stragglers.names,
            "{stragglers}"
        );
    } else {
        tracing::debug!(
            latch,
            remaining = stragglers.remaining,
            names = ?stragglers.names,
            "{stragglers}"
        );
    }
}

#[cfg(not(feature = "tracing"))]
fn trace_trigger(_: &Latch) {}
#[cfg(not(feature = "tracing"))]
fn trace_drained(_: &Latch, _: &Report) {}
#[cfg(not(feature = "tracing"))]
fn trace_stragglers(_: &str, _: &Stragglers, _: bool) {}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn children(s: &Shutdown) -> usize {
        s.latch().children.lock().len()
    }

    /// A trigger future dropped before the trigger takes its waker out of
    /// the set (a `select!` loop that recreates it would otherwise grow the
    /// set without bound); one woken by the trigger leaves nothing behind.
    #[test]
    fn trigger_futures_leave_no_waker_behind() {
        let shutdown = Shutdown::new();
        let wakers = || shutdown.latch().core.listeners();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for _ in 0..1000 {
            let mut fut = shutdown.wait_triggered_async();
            assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
            assert_eq!(wakers(), 1);
        }
        assert_eq!(wakers(), 0);
        // Polled again with another waker: replaced, not added.
        let mut fut = shutdown.wait_triggered_async();
        let (a, b) = (
            std::sync::Arc::new(Flag::default()),
            std::sync::Arc::new(Flag::default()),
        );
        let _ = Pin::new(&mut fut).poll(&mut Context::from_waker(&a.clone().into()));
        let _ = Pin::new(&mut fut).poll(&mut Context::from_waker(&b.clone().into()));
        assert_eq!(wakers(), 1);
        shutdown.trigger();
        assert_eq!(wakers(), 0);
        // Only the latest waker is woken.
        assert!(!a.0.load(std::sync::atomic::Ordering::SeqCst));
        assert!(b.0.load(std::sync::atomic::Ordering::SeqCst));
        assert!(Pin::new(&mut fut).poll(&mut cx).is_ready());
        // After the trigger nothing registers.
        let mut late = shutdown.wait_triggered_async();
        assert!(Pin::new(&mut late).poll(&mut cx).is_ready());
        assert_eq!(wakers(), 0);
    }

    /// A waker that records being woken (a test-only std atomic: the test
    /// runs outside loom).
    #[derive(Default)]
    #[allow(clippy::disallowed_types)]
    struct Flag(std::sync::atomic::AtomicBool);

    impl std::task::Wake for Flag {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// The adversary's case: a dead child whose list holds a dead grandchild
    /// looks alive at one level; the amortized prune looks below it.
    #[test]
    fn dead_grandchildren_are_pruned_as_the_list_grows() {
        let root = Shutdown::new();
        for _ in 0..10_000 {
            let child = root.child().unwrap();
            let grandchild = child.child().unwrap();
            drop(grandchild.child().unwrap());
            drop(grandchild);
            drop(child);
        }
        assert!(children(&root) <= 64, "{} children kept", children(&root));
        // A dead chain below a child kept alive by a future at its bottom
        // stays: the future must still see the trigger.
        let child = root.child().unwrap();
        let bottom = child.child().unwrap().child().unwrap();
        let mut future = bottom.wait_triggered_async();
        drop((child, bottom));
        for _ in 0..1_000 {
            drop(root.child().unwrap());
        }
        root.trigger();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(Pin::new(&mut future).poll(&mut cx).is_ready());
    }

    #[test]
    fn dead_children_are_pruned_as_the_list_grows() {
        let root = Shutdown::new();
        for _ in 0..10_000 {
            let child = root.child().unwrap();
            drop(child.guard().unwrap());
        }
        // Amortized pruning keeps the list within a small factor of the
        // live children (none here), not of every child ever made.
        assert!(children(&root) <= 64, "{} children kept", children(&root));
        root.trigger();
        assert_eq!(children(&root), 0);
    }

    #[test]
    fn children_that_can_still_be_reached_are_kept() {
        let root = Shutdown::new();
        let with_handle = root.child().unwrap();
        let guard = root.child().unwrap().guard().unwrap();
        let future = root.child().unwrap().wait_triggered_async();
        let grandchild = root.child().unwrap().child().unwrap();
        for _ in 0..100 {
            drop(root.child().unwrap());
        }
        root.trigger();
        assert_eq!(children(&root), 4);
        assert!(with_handle.is_triggered() && guard.is_triggered() && grandchild.is_triggered());
        let mut future = std::pin::pin!(future);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(
            future.as_mut().poll(&mut cx).is_ready(),
            "the cascade missed a future"
        );
    }
}
