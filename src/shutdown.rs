//! `Shutdown`, `Guard`, the `Triggered`/`Drained` futures and child latches.
//!
//! Two structures, so that nothing owns itself:
//! * `Latch`: the counting core plus a strong link to the parent latch
//!   (every guard of a child also counts on each ancestor). Guards point here.
//! * `Tree`: a latch plus strong links to the child trees, so a trigger
//!   cascades down. `Shutdown` handles point here.
//!
//! Latches link upwards and trees downwards, so there is no cycle; dead
//! children (no handle, guard, future or live descendant) are pruned from
//! the list whenever it is walked or grows.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

use crate::hold::{Anchor, Hold, Node};
use crate::mutant;
use crate::report::{Failure, Holders, Registry, Report, SharedStr, ShutdownStarted, Stragglers};
use crate::state::{Core, Until, Waiting};
use crate::sync::{strong_count_acquire, Arc, AtomicUsize, Event, Mutex, OnceCell, Ordering, Weak};
use crate::wakers::{Key, WakerSet};

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
    /// Notified (all listeners) when `forced` is set.
    forced_event: Event,
    /// The wakers of [`Triggered`] futures, woken by the trigger. Blocking
    /// trigger waiters listen on the core's event instead.
    trigger_wakers: WakerSet,
    /// The tree (handle side) of this latch, so that a failing guard, which
    /// holds only the latch, can trigger the whole subtree. Weak: the tree
    /// owns the latch's anchor, and a strong link back would be a cycle.
    tree: OnceCell<Weak<Tree>>,
    /// Failures recorded by guards of this latch.
    failures: Mutex<Vec<FailureRecord>>,
    /// 1 once a failure was recorded in this latch's subtree, so that a
    /// report with no failure to list walks nothing and allocates nothing.
    failed: AtomicUsize,
}

/// A failure, with when it was recorded.
#[derive(Debug)]
struct FailureRecord {
    at: Instant,
    failure: Failure,
    /// Set (under the latch's `failures` lock) once a drain's report has
    /// copied the failure: from then on its text is fixed, so every report
    /// that shows it shows the same text. (A straggler snapshot, taken
    /// mid-drain, does not fix it.)
    shown: bool,
}

/// What copying a failure for a report does to its record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// A drain's report: the text is fixed from now on.
    Fix,
    /// A straggler snapshot: the text may still change.
    Snapshot,
}

/// Where a vital guard's panic record went: its latch and index.
type PanicRecord = (Arc<Latch>, usize);

std::thread_local! {
    /// In a thread of `Shutdown::spawn`: `Some`, and then where the panic
    /// record of a vital guard dropped by this thread's panic went, so the
    /// wrapper can put the panic's message in it.
    static SPAWNED: std::cell::RefCell<Option<Option<PanicRecord>>> =
        const { std::cell::RefCell::new(None) };
}

/// Starts the thread of `Shutdown::spawn` / `spawn_named`: `f` runs with
/// `guard`, under [`run_recording_panic`] with an extra count on its latch.
fn spawn_recording_panic<F, T>(
    guard: Guard,
    name: Option<String>,
    site: &'static Location<'static>,
    f: F,
) -> JoinHandle<T>
where
    F: FnOnce(Guard) -> T + Send + 'static,
    T: Send + 'static,
{
    let keep = guard.hold.clone();
    std::thread::spawn(move || run_recording_panic(keep, name, site, move || f(guard)))
}

/// Runs a spawned thread's body. If it panics, records the panic's message
/// as a failure (in the record a vital guard of this thread made for the
/// panic, or as a new one on the spawning latch), then resumes the panic, so
/// that the `JoinHandle` still reports it.
///
/// `keep` is an extra, unnamed count on the latch, released only after the
/// record is made: the spawning latch (and its ancestors) cannot drain (and
/// cache a report) while the panic's message is still on its way. A vital
/// guard of another latch holds no such count: that latch may drain while
/// this thread is still unwinding, and if a report shows the record first,
/// the record keeps "panicked" (its text never changes once shown, so every
/// report of it agrees). An extra count on that latch would be held across
/// the drops the unwinding still runs, and one of them may wait for that
/// very latch to drain.
fn run_recording_panic<T>(
    keep: Hold<Latch>,
    name: Option<String>,
    site: &'static Location<'static>,
    body: impl FnOnce() -> T,
) -> T {
    SPAWNED.with(|spawned| *spawned.borrow_mut() = Some(None));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    let vital_record = SPAWNED.with(|spawned| spawned.borrow_mut().take().flatten());
    match result {
        Ok(value) => value,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panicked".to_owned());
            match vital_record {
                Some((latch, index)) => {
                    if let Some(record) = latch.failures.lock().get_mut(index) {
                        if !record.shown {
                            record.failure.reason = message;
                        }
                    }
                }
                None => {
                    let latch = keep.node();
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
            drop(keep);
            std::panic::resume_unwind(payload)
        }
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
            name,
            warned: OnceCell::new(),
            forced: AtomicUsize::new(0),
            forced_event: Event::new(),
            trigger_wakers: WakerSet::default(),
            tree: OnceCell::new(),
            failures: Mutex::new(Vec::new()),
            failed: AtomicUsize::new(0),
            meta: Mutex::new(Meta::default()),
            drained: OnceCell::new(),
            registry: Mutex::new(Registry::default()),
        }
    }

    /// Elects the trigger: the first caller records time and reason, then
    /// closes the core, all under the lock, so a reader that sees `CLOSED`
    /// (Acquire) also sees them. Closing goes through the anchor, which pays
    /// the notify reference (`hold.rs`, transition C).
    fn close(latch: &Anchor<Latch>, reason: Option<SharedStr>) -> bool {
        if mutant::is("racy-election") {
            // Check-then-act without the lock: two triggers can both win.
            if latch.core.snapshot().is_closed() {
                return false;
            }
            let mut meta = latch.meta.lock();
            meta.triggered_at = Some(Instant::now());
            meta.reason = reason;
            drop(meta);
            if let Some(closing) = latch.close() {
                latch.announce(closing);
                latch.trigger_wakers.wake_all();
            }
            return true;
        }
        let mut meta = latch.meta.lock();
        if meta.triggered_at.is_some() {
            return false;
        }
        meta.triggered_at = Some(Instant::now());
        meta.reason = reason;
        // Closed under the lock, so that a losing `trigger` (which returns
        // once it sees `triggered_at`) returns only after the word is closed.
        let closing = latch.close();
        debug_assert!(closing.is_some(), "CLOSED set outside Latch::close");
        drop(meta);
        // Announced after the lock: waking runs wakers, and a waker that
        // reads the reason (or triggers again) inline must not deadlock.
        if let Some(closing) = closing {
            latch.announce(closing);
            latch.trigger_wakers.wake_all();
        }
        true
    }

    fn is_triggered(&self) -> bool {
        self.core.snapshot().is_closed()
    }

    /// `Acquire`: pairs with the `Release` of [`force`](Self::force), so a
    /// holder that sees the flag also sees what the forcing thread did first.
    fn is_forced(&self) -> bool {
        self.forced.load(Ordering::Acquire) != 0
    }

    /// Records a failure here and flags this latch and its ancestors.
    ///
    /// `Release` on the flags, after the record is pushed: a reader that sees
    /// a flag with `Acquire` finds the record. A guard records before it
    /// releases its count, so a drain that completes sees the flag.
    fn push_failure(&self, record: FailureRecord) -> usize {
        let index = {
            let mut failures = self.failures.lock();
            failures.push(record);
            failures.len() - 1
        };
        let mut level = Some(self);
        while let Some(latch) = level {
            latch.failed.fetch_or(1, Ordering::Release);
            level = latch.parent.as_deref();
        }
        index
    }

    /// Sets the forced flag and wakes its waiters; true for the call that set
    /// it. Waiters check, listen, check again: the `SeqCst` fences of
    /// `notify` and `listen` order this against their second check.
    fn force(&self) -> bool {
        if self.forced.fetch_or(1, Ordering::AcqRel) != 0 {
            return false;
        }
        self.forced_event.notify(usize::MAX);
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
    /// `failures` lists the subtree's failures (called once, by the first
    /// drainer).
    fn report(&self, failures: impl FnOnce() -> Vec<Failure>) -> Report {
        if let Some(report) = self.drained.get() {
            return report;
        }
        let report = Report {
            panicked: self.core.panicked(),
            elapsed: self.since_trigger(Instant::now()),
            reason: self.reason(),
            latch: self.path().into(),
            forced: self.is_forced(),
            failures: failures().into(),
        };
        if self.drained.set(report.clone()) {
            trace_drained(self, &report);
            report
        } else {
            // Another drainer got there first: everyone returns its report.
            self.drained.get().unwrap_or(report)
        }
    }

    fn wait_triggered(&self, deadline: Option<Instant>) -> bool {
        self.core.wait(Until::Closed, deadline)
    }
}

#[derive(Debug)]
struct Tree {
    latch: Anchor<Latch>,
    children: Mutex<Vec<Arc<Tree>>>,
}

impl Tree {
    fn new(parent: Option<Arc<Latch>>, name: Option<Cow<'static, str>>) -> Self {
        Self {
            latch: Anchor::new(Latch::new(parent, name)),
            children: Mutex::new(Vec::new()),
        }
    }

    /// A new tree whose latch links back to it (weakly).
    fn new_linked(parent: Option<Arc<Latch>>, name: Option<Cow<'static, str>>) -> Arc<Self> {
        let tree = Arc::new(Tree::new(parent, name));
        tree.latch.tree.set(Arc::downgrade(&tree));
        tree
    }

    /// Triggers this latch and, whoever won, cascades to every descendant, so
    /// that once any `trigger` call returns the whole subtree is closed.
    ///
    /// The cascade is a loop over a work list, not a recursion: a chain of
    /// any depth costs heap, not stack. Each latch is closed before its
    /// children are read, and gets its parent's reason (a latch triggered
    /// before keeps its own).
    fn trigger(&self, reason: Option<SharedStr>) -> bool {
        let first = Latch::close(&self.latch, reason);
        if first {
            // Once per trigger of a tree, not once per latch it reaches.
            trace_trigger(&self.latch);
        }
        self.for_each_below(|tree| {
            let reason = tree
                .latch
                .parent
                .as_ref()
                .and_then(|parent| parent.reason());
            Latch::close(&tree.latch, reason);
        });
        first
    }

    /// Forces this latch and every descendant (triggering first if needed);
    /// true if this call forced this latch.
    fn force(&self) -> bool {
        if !self.latch.is_triggered() {
            self.trigger(None);
        }
        let first = self.latch.force();
        self.for_each_below(|tree| {
            tree.latch.force();
        });
        first
    }

    /// Runs `f` on every live descendant, each before its children are
    /// read (so a close made by `f` is in place before the children's
    /// lists are looked at), with a work list rather than a recursion.
    fn for_each_below(&self, mut f: impl FnMut(&Tree)) {
        let mut pending = self.live_children();
        while let Some(tree) = pending.pop() {
            f(&tree);
            pending.extend(tree.live_children());
        }
    }

    /// The children still worth reaching, after pruning the dead ones.
    fn live_children(&self) -> Vec<Arc<Tree>> {
        let mut children = self.children.lock();
        prune(&mut children, Deep::OneLevel, &self.latch);
        children.clone()
    }

    /// This tree and every live descendant, parents before children,
    /// without recursion.
    fn subtree(this: &Arc<Self>) -> Vec<Arc<Tree>> {
        let mut trees = vec![this.clone()];
        let mut next = 0;
        while let Some(tree) = trees.get(next) {
            let children = tree.live_children();
            trees.extend(children);
            next += 1;
        }
        trees
    }
}

impl Drop for Tree {
    /// Drops the subtree below with a loop, not a recursion: a chain of any
    /// depth costs no stack. A child list that is not the last reference to
    /// its tree is left to its other owners.
    fn drop(&mut self) {
        let mut orphans = std::mem::take(&mut *self.children.lock());
        while let Some(child) = orphans.pop() {
            if let Some(child) = Arc::into_inner(child) {
                orphans.append(&mut child.children.lock());
            }
        }
    }
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

impl Tree {
    /// Who holds this subtree open: the count, and the named guards of the
    /// whole subtree, consistent with each other.
    ///
    /// Every registry of the subtree is locked (parents before children, the
    /// one lock order used anywhere for more than one registry) while the
    /// count is read and the names are collected. A named guard registers
    /// after taking its count and unregisters before releasing it, each under
    /// its registry's lock, so every name listed belongs to a guard whose
    /// count is in `count`: the names never outnumber the count.
    fn holders(this: &Arc<Self>, now: Instant) -> Holders {
        let core = &this.latch.core;
        let trees = Tree::subtree(this);
        let mut named = Vec::new();
        // Paths first: they read only the latches' immutable names.
        let paths: Vec<_> = trees.iter().map(|tree| tree.latch.path()).collect();
        let count = if mutant::is("names-first") || mutant::is("names-unlocked") {
            // Each registry locked on its own, names before the count (a guard
            // dropped between the reads is listed, not counted) or after it
            // (a named clone made between the reads is listed, not counted).
            let first = mutant::is("names-first");
            let names = |named: &mut Vec<_>| {
                for (tree, path) in trees.iter().zip(&paths) {
                    tree.latch.registry.lock().snapshot_into(now, path, named);
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
            let locked: Vec<_> = trees
                .iter()
                .map(|tree| tree.latch.registry.lock())
                .collect();
            let count = core.snapshot().count();
            for (registry, path) in locked.iter().zip(&paths) {
                registry.snapshot_into(now, path, &mut named);
            }
            count
        };
        named.sort_by_key(|(since, _)| *since);
        Holders {
            count,
            // Read after the count: every panicking release it saw is
            // included (the panicked counter is raised before the release).
            panicked: core.panicked(),
            named: named.into_iter().map(|(_, s)| s).collect(),
        }
    }

    /// The report of this latch's completed drain, with the subtree's
    /// failures.
    fn report(this: &Arc<Self>) -> Report {
        this.latch.report(|| Tree::failures(this, Shown::Fix))
    }

    /// The failures recorded in this subtree, oldest first.
    fn failures(this: &Arc<Self>, shown: Shown) -> Vec<Failure> {
        if this.latch.failed.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let mut all: Vec<(Instant, Failure)> = Vec::new();
        for tree in Tree::subtree(this) {
            let mut records = tree.latch.failures.lock();
            all.extend(records.iter_mut().map(|r| {
                r.shown |= shown == Shown::Fix;
                (r.at, r.failure.clone())
            }));
        }
        all.sort_by_key(|(at, _)| *at);
        all.into_iter().map(|(_, f)| f).collect()
    }

    /// A bounded drain's deadline has passed: the report if the latch drained
    /// after all (the last guard may go at the very moment), or the
    /// stragglers, from one snapshot.
    fn give_up(this: &Arc<Self>) -> Result<Report, Stragglers> {
        let latch = &this.latch;
        let now = Instant::now();
        let holders = Tree::holders(this, now);
        if holders.count == 0 && latch.is_triggered() {
            return Ok(Tree::report(this));
        }
        let stragglers = Stragglers {
            remaining: holders.count,
            names: holders.named.iter().map(|s| s.name.clone()).collect(),
            panicked: holders.panicked,
            reason: latch.reason(),
            elapsed: latch.since_trigger(now),
            forced: latch.is_forced(),
            failures: Tree::failures(this, Shown::Snapshot).into(),
            held: holders.named,
        };
        // Warn once per latch: a bounded drain polled in a loop would
        // otherwise log a warning on every attempt.
        trace_stragglers(&latch.path(), &stragglers, latch.warned.set(()));
        Err(stragglers)
    }
}

/// Drops the children nobody can reach any more: no handle (the list's is the
/// only `Tree` reference), no guard (the count is zero) and no future or child
/// latch (the tree's anchor is the only `Latch` reference). None of these can
/// come back once all three are gone, so the decision is final.
///
/// The three counts are read in the order in which reachability can move:
/// a handle makes guards (and references), a guard makes references
/// (`Guard::wait_triggered_async`), a reference makes nothing. So a guard
/// made from a handle before it went is seen by the second read, and a
/// reference made from a guard before it went is seen by the third; read the
/// other way round, a guard turned into a future between the reads makes a
/// live child look dead, and the trigger never reaches its future. Each read
/// is an `Acquire`, so what a release it observes published (the guard
/// made before the handle's drop, the reference made before the guard's)
/// is visible to the next read.
///
/// A dead child whose own list still holds dead grandchildren looks alive
/// (their latches link to its latch). `Deep::Below` prunes below such a
/// child first, bottom up ([`prune_below`]), and then looks again: what
/// `make_child`'s amortized prune does, so that a root that lives long frees
/// dead child-and-grandchild pairs (a latch per connection, one per request
/// below it). `Deep::OneLevel` does not: the walks (trigger, snapshot) visit
/// every kept child and prune its list in turn, and looking below every
/// child as well would make a walk of a deep chain quadratic.
///
/// Returns how many trees `Deep::Below` walked below kept children: the
/// caller spaces the next prune by as much, so that a dead-looking subtree
/// that stays (a future keeps its bottom alive) is not walked again every
/// few calls.
///
/// A pruned child's failures pass to `heir` (the latch whose list it was
/// in): `Report::failures` lists the failures of the whole subtree, and a
/// child that nobody can reach any more is still part of it.
fn prune(children: &mut Vec<Arc<Tree>>, deep: Deep, heir: &Latch) -> usize {
    let mut walked = 0;
    children.retain(|child| {
        if mutant::is("prune-strong-first") {
            return strong_count_acquire(child) > 1
                || strong_count_acquire(child.latch.arc()) > 1
                || child.latch.core.snapshot().count() > 0;
        }
        if strong_count_acquire(child) > 1 || child.latch.core.snapshot().count() > 0 {
            return true;
        }
        if strong_count_acquire(child.latch.arc()) == 1 {
            inherit_failures(heir, &child.latch);
            return false;
        }
        if deep == Deep::OneLevel || child.children.lock().is_empty() {
            return true;
        }
        let below = prune_below(child);
        let keep = strong_count_acquire(child.latch.arc()) > 1;
        if keep {
            // Walked for nothing: this subtree will be there next time too.
            walked += below;
        } else {
            inherit_failures(heir, &child.latch);
        }
        keep
    });
    walked
}

/// Moves the failure records of a latch being pruned to its parent. Nobody
/// else can reach `dead` (no handle, no guard, no reference), so no record
/// can be added to it meanwhile; its own pruned children passed theirs to
/// it before (a child with a child still listed is never pruned).
fn inherit_failures(heir: &Latch, dead: &Latch) {
    if dead.failed.load(Ordering::Acquire) == 0 {
        return;
    }
    let records = std::mem::take(&mut *dead.failures.lock());
    heir.failures.lock().extend(records);
}

/// How far [`prune`] looks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Deep {
    OneLevel,
    Below,
}

/// Prunes the lists of `top`'s descendants that have no handle and no guard,
/// bottom up, with loops (a chain of any depth costs no stack). The walk
/// holds a clone of each tree it collects; it pops them deepest first, so
/// when a tree's list is pruned every child of it in the walk has been
/// popped and its clone dropped: the counts read are the true ones, and a
/// grandchild freed first releases its link to the child's latch in time.
/// Returns how many trees it walked.
fn prune_below(top: &Arc<Tree>) -> usize {
    let mut walk = vec![top.clone()];
    let mut next = 0;
    while let Some(tree) = walk.get(next) {
        let found: Vec<Arc<Tree>> = tree
            .children
            .lock()
            .iter()
            .filter(|c| strong_count_acquire(c) == 1 && c.latch.core.snapshot().count() == 0)
            .cloned()
            .collect();
        walk.extend(found);
        next += 1;
    }
    let walked = walk.len();
    while let Some(tree) = walk.pop() {
        prune(&mut tree.children.lock(), Deep::OneLevel, &tree.latch);
    }
    walked
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
    tree: Arc<Tree>,
}

impl Shutdown {
    /// Creates an untriggered latch with no guards.
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// assert!(!shutdown.is_triggered());
    /// assert_eq!(shutdown.count(), 0);
    /// ```
    pub fn new() -> Self {
        Self {
            tree: Tree::new_linked(None, None),
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
            Hold::try_acquire(self.tree.latch.arc()).map_err(|_| ShutdownStarted)?,
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
        if mutant::is("unlocked-child") && self.tree.latch.is_triggered() {
            return Err(ShutdownStarted);
        }
        let mut children = self.tree.children.lock();
        // Checked under the lock the cascade takes after closing: either the
        // trigger's cascade sees this child in the list, or this check sees
        // `CLOSED`.
        if self.tree.latch.is_triggered() && !mutant::is("unlocked-child") {
            return Err(ShutdownStarted);
        }
        if children.len() == children.capacity() {
            // Amortized: prune only when the list would grow, and after a
            // prune that walked below kept children, only once as many
            // children more have come.
            let walked = prune(&mut children, Deep::Below, &self.tree.latch);
            children.reserve(walked);
        }
        let tree = Tree::new_linked(Some(self.tree.latch.arc().clone()), name);
        children.push(tree.clone());
        Ok(Shutdown { tree })
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
        self.tree.trigger(None)
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
        self.tree.trigger(Some(reason.into().into()))
    }

    /// The reason given when this latch was triggered, if any.
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// assert_eq!(shutdown.reason(), None);
    /// shutdown.trigger_with_reason("SIGTERM");
    /// assert_eq!(shutdown.reason().as_deref(), Some("SIGTERM"));
    /// ```
    pub fn reason(&self) -> Option<Cow<'static, str>> {
        self.tree.latch.reason().map(Cow::from)
    }

    /// Whether this latch has been triggered.
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let child = shutdown.child().unwrap();
    /// shutdown.trigger();
    /// assert!(shutdown.is_triggered() && child.is_triggered());
    /// ```
    pub fn is_triggered(&self) -> bool {
        self.tree.latch.is_triggered()
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
        self.tree.latch.core.snapshot().count()
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
        self.tree.latch.wait_triggered(None);
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
        self.tree
            .latch
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
        Triggered::new(self.tree.latch.arc().clone())
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
        match self.tree.latch.drained.get_ref() {
            Some(report) => report.clone(),
            None => self.wait_drained_slow(),
        }
    }

    #[cold]
    #[inline(never)]
    fn wait_drained_slow(&self) -> Report {
        self.tree.latch.core.wait(Until::Drained, None);
        Tree::report(&self.tree)
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
        match self.tree.latch.drained.get_ref() {
            Some(report) => Some(report),
            None => self.try_wait_drained_slow(),
        }
    }

    #[cold]
    #[inline(never)]
    fn try_wait_drained_slow(&self) -> Option<&Report> {
        let snapshot = self.tree.latch.core.snapshot();
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
        Tree::report(&self.tree);
        self.tree.latch.drained.get_ref()
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
        if self.tree.latch.core.wait(Until::Drained, deadline) {
            Ok(Tree::report(&self.tree))
        } else {
            Tree::give_up(&self.tree)
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
        Tree::holders(&self.tree, Instant::now())
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
            tree: self.tree.clone(),
            waiting: Waiting::default(),
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
        self.tree.force()
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
        self.tree.latch.is_forced()
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
        match self.wait_drained_timeout(grace) {
            Ok(report) => Ok(report),
            Err(_) => {
                self.force();
                self.wait_drained_timeout(hard)
            }
        }
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
        Ok(spawn_recording_panic(
            self.guard()?,
            None,
            Location::caller(),
            f,
        ))
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
        Ok(spawn_recording_panic(
            guard,
            Some(name.into_owned()),
            Location::caller(),
            f,
        ))
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
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn __loom_guard_if_busy(&self) -> Option<Guard> {
        Some(Guard::from_hold(Hold::acquire_if_busy(
            self.tree.latch.arc(),
        )?))
    }

    /// Who is still holding on right now, as a drain that gives up would
    /// report it (for the signal policy), taken while an extra, unnamed count
    /// keeps the drain from completing: `None` if the latch has no guard
    /// left (drained, or never admitted any), and otherwise the stragglers
    /// (not counting the extra one) and that count, which the caller keeps
    /// until it has decided (an exit then happens before any drain).
    #[cfg(all(feature = "signal", unix))]
    pub(crate) fn stragglers_while_held(&self) -> Option<(Stragglers, Guard)> {
        let hold = Hold::acquire_if_busy(self.tree.latch.arc())?;
        let held = Guard::from_hold(hold);
        match Tree::give_up(&self.tree) {
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
        let snapshot = self.tree.latch.core.snapshot();
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

/// What a named or vital guard carries besides its hold.
#[derive(Debug, Default)]
struct Extra {
    named: Option<Named>,
    /// Where [`vital`](Guard::vital) marked it; `None` for ordinary guards.
    vital: Option<&'static Location<'static>>,
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
            waiting: Waiting::default(),
        }
    }

    /// Marks this guard vital: if it is dropped while its thread panics, its
    /// own latch (and so its subtree) is triggered, with a reason that names
    /// the guard and its site, and the failure is recorded
    /// ([`Report::failures`]). A latch used as a group then fails fast, like
    /// errgroup's first error. Clones are not vital.
    ///
    /// The failure's text is "panicked": the panic's message is not known
    /// while the guard is dropped. In a thread of [`Shutdown::spawn`], the
    /// message replaces it once the unwinding reaches the spawn's wrapper;
    /// the spawning latch and its ancestors cannot drain before then. A
    /// guard of another latch (a child of the spawning one, say) lets its
    /// latch drain meanwhile, and a report that shows the failure first
    /// fixes its text: every report shows the same text for one failure.
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
    /// its shutdown.
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
        self.record_failure(site, reason.into_owned(), &why, false);
        // One failure per guard: its drop (maybe during unwinding) must not
        // record a second one.
        if let Some(extra) = &mut self.extra {
            extra.vital = None;
        }
    }

    /// Records a failure of this guard on its latch and triggers the latch's
    /// tree (if a handle still has it) with a reason naming the guard.
    fn record_failure(
        &self,
        fallback: &'static Location<'static>,
        reason: String,
        why: &str,
        vital_panic: bool,
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
        let trigger_reason = format!(
            "{} ({}:{}) {why}",
            failure
                .name
                .as_ref()
                .map_or_else(|| "a guard".to_owned(), |n| format!("{n:?}")),
            site.file(),
            site.line()
        );
        let index = latch.push_failure(FailureRecord {
            at: Instant::now(),
            failure,
            shown: false,
        });
        if vital_panic {
            // Inside a thread of `Shutdown::spawn`: its wrapper replaces this
            // "panicked" with the panic's message, unless a drain's report
            // has shown the record by then (see `run_recording_panic`).
            SPAWNED.with(|spawned| {
                if let Some(slot) = &mut *spawned.borrow_mut() {
                    *slot = Some((self.hold.to_arc(), index));
                }
            });
        }
        if let Some(tree) = latch.tree.get().and_then(|tree| tree.upgrade()) {
            tree.trigger(Some(trigger_reason.into()));
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
        if let Some(site) = self.vital_site() {
            if std::thread::panicking() {
                // Before the count goes: the drain cannot complete without
                // this failure in its report.
                self.record_failure(site, "panicked".into(), "panicked", true);
            }
        }
        // Unregister before the count goes (the `hold` field drops after
        // this), so a straggler list never names a guard already released.
        if let Some(named) = self.named() {
            self.latch().registry.lock().remove(named.id);
        }
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

    /// Look at the word, then register; a registration the trigger's
    /// `wake_all` has overtaken is refused, which also means triggered
    /// (`wakers.rs` has the no-lost-wake-up argument).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.latch.is_triggered() {
            return Poll::Ready(());
        }
        if this
            .latch
            .trigger_wakers
            .register(&mut this.key, cx.waker())
        {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

impl Drop for Triggered {
    fn drop(&mut self) {
        // Once the latch is triggered its `wake_all` owns the waker: a woken
        // future is dropped without taking the lock.
        if self.key.is_registered() && !self.latch.is_triggered() {
            self.latch.trigger_wakers.unregister(&mut self.key);
        }
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
    /// The subtree, not only the latch: a deadline that passes needs every
    /// registry of it for the straggler snapshot.
    tree: Arc<Tree>,
    waiting: Waiting,
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
        let latch = &this.tree.latch;
        match this.waiting.poll(&latch.core, Until::Drained, cx) {
            Poll::Ready(()) => Poll::Ready(Tree::report(&this.tree)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl fmt::Debug for Drained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.tree.latch.core.snapshot();
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
            Poll::Ready(_) => Poll::Ready(Tree::give_up(&this.drained.tree)),
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
    waiting: Waiting,
}

impl Future for Forced {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let latch = &this.latch;
        this.waiting
            .poll_with(|| latch.is_forced(), || latch.forced_event.listen(), cx)
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
            if grace.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.grace = None;
            this.drained.tree.force();
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
            Poll::Ready(Tree::give_up(&this.drained.tree))
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
        s.tree.children.lock().len()
    }

    /// A trigger future dropped before the trigger takes its waker out of
    /// the set (a `select!` loop that recreates it would otherwise grow the
    /// set without bound); one woken by the trigger leaves nothing behind.
    #[test]
    fn trigger_futures_leave_no_waker_behind() {
        let shutdown = Shutdown::new();
        let wakers = || shutdown.tree.latch.trigger_wakers.len();
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
