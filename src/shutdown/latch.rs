//! The latch: one node of the shutdown tree, its election, its flags, its
//! failures and its cached report. (The counting word and the references
//! are the core's: `core::state`, `core::hold`.)
//!
//! # Invariants of the latch
//!
//! 1. **One election.** The first trigger records the time and the reason
//!    and closes the word, all under `meta`; a later one sees `triggered_at`
//!    under the same lock and returns `false` only once the word is closed.
//!    So concurrent triggers elect exactly one `true`, and a reader that sees
//!    `CLOSED` (with `Acquire`) sees the time and the reason.
//!    *Checked by* loom `shutdown::two_triggers_elect_one` (mutants
//!    `racy-election`, `close-keeps-ref`).
//! 2. **Closed for good.** A latch's close sets `CLOSED | DRAINING` once and
//!    nothing clears them: every `guard()` after the trigger is refused, and
//!    a drained latch stays drained. *Checked by* loom
//!    `shutdown::guard_vs_trigger` (`unchecked-admission`,
//!    `close-keeps-count`), `shutdown::adv_count_after_drain_vs_refused`.
//! 3. **One report.** The first drainer to observe the drain makes the
//!    report and caches it; every later drainer, blocking, async or polling,
//!    returns that one. *Checked by* loom `shutdown::two_drains_*`,
//!    `shutdown::two_pollers_vs_last_guard_drop` (`poll-before-drain`).
//! 4. **Forced is one way, after the trigger.** `force` triggers first if
//!    needed, then sets the flag and wakes the forcing's waiters and the
//!    drain's (a phased drain's grace ends early). *Checked by* loom
//!    `shutdown::wait_forced_async_vs_force`,
//!    `promises::reentrant_waker_registers_again_during_force`;
//!    `phased::force_during_the_grace_starts_the_hard_phase_now`.
//! 5. **A failure is recorded before its guard's count goes**, in the
//!    latch's list and in every ancestor's (shared records), so a drain that
//!    completes reports it and no report misses a child freed meanwhile. Its
//!    text is fixed once a drain's report shows it. *Checked by*
//!    `policy::*`, `spawn::*`.
//! 6. **A latch frees its ancestors with a loop.** Its parent link is strong;
//!    its drop gives it up iteratively, so a chain of any depth costs no
//!    stack. *Checked by* `deep`.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use super::trace::trace_drained;
use crate::core::hold::{self, Node};
use crate::core::state::{Core, Flag, Until};
use crate::core::sync::{Arc, Mutex, OnceCell, Weak};
use crate::core::wakers::{Unwound, WaitList};
use crate::mutant;
use crate::report::{Cause, Failure, Registry, Report, SharedStr};

/// When and why a latch was triggered. Written once, under the lock, by the
/// elected trigger.
#[derive(Debug, Default)]
struct Meta {
    triggered_at: Option<Instant>,
    /// Shared with the subtree's latches and every report: an owned reason
    /// is copied once, when the trigger records it. The text of `cause`.
    reason: Option<SharedStr>,
    /// Why: the elected trigger's cause, or the ancestor's it cascaded from.
    cause: Option<Cause>,
}

#[derive(Debug)]
pub(crate) struct Latch {
    pub(super) core: Core,
    pub(super) parent: Option<Arc<Latch>>,
    /// The child latches, weakly (module docs, invariants 2 and 5).
    pub(super) children: Mutex<Vec<Weak<Latch>>>,
    meta: Mutex<Meta>,
    /// The report of the completed drain, made by the first drainer to see
    /// it. A drained latch stays drained (no guard is left to clone and no new
    /// one is admitted), so every later drainer returns the same report
    /// without a lock or a clock read.
    pub(super) drained: OnceCell<Report>,
    pub(super) registry: Mutex<Registry>,
    /// Given by [`Shutdown::child_named`](crate::Shutdown::child_named); shown in the latch path.
    pub(super) name: Option<Cow<'static, str>>,
    /// Set by the first straggler warning, so a bounded drain polled in a
    /// loop warns once and then only at debug level.
    pub(super) warned: OnceCell<()>,
    /// 1 once forced ([`Shutdown::force`](crate::Shutdown::force)): the second phase, in which
    /// holders abandon in-flight work. Not part of the counting word: it
    /// changes nothing about admission or the drain.
    pub(super) forced: Flag,
    /// Woken when `forced` is set.
    pub(super) forced_list: WaitList,
    /// Set by `announce` (and by the trigger): "stopping soon".
    pub(super) announced: Flag,
    /// Woken when `announced` is set.
    pub(super) announce_list: WaitList,
    /// The service manager to tell about each stage
    /// ([`Shutdown::notify_systemd`](crate::Shutdown::notify_systemd)).
    #[cfg(all(feature = "systemd", target_os = "linux"))]
    pub(super) systemd: OnceCell<std::sync::Arc<crate::systemd::Notifier>>,
    /// Failures recorded by guards of this latch and of its descendants
    /// (invariant 6), in the order they were recorded here.
    pub(super) failures: Mutex<Vec<SharedRecord>>,
    /// 1 once a failure was recorded in this latch's subtree, so that a
    /// report with no failure to list locks nothing and allocates nothing.
    pub(super) failed: Flag,
}

/// The stages of a shutdown the service manager is told of, in order
/// (`systemd` feature); a status never goes back to an earlier one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[allow(dead_code)] // only the `systemd` feature reads it
pub(crate) enum Stage {
    Announced,
    Triggered,
    Forced,
    /// Drained, or gave up.
    Ended,
}

/// A trigger's cause, with its text computed once (shared by the subtree's
/// latches and every report).
#[derive(Clone, Debug)]
pub(crate) struct Why {
    pub(super) cause: Cause,
    pub(super) reason: Option<SharedStr>,
}

impl Why {
    pub(crate) fn new(cause: Cause) -> Self {
        Self {
            reason: cause.reason(),
            cause,
        }
    }
}

/// A failure, with when it was recorded.
#[derive(Debug)]
pub(super) struct FailureRecord {
    pub(super) at: Instant,
    pub(super) failure: Failure,
    /// Set once a drain's report has copied the failure: from then on its
    /// text is fixed, so every report that shows it shows the same text. (A
    /// straggler snapshot, taken mid-drain, does not fix it.)
    pub(super) shown: bool,
}

/// A failure record, shared by the lists of its latch and every ancestor.
/// std's `Arc` even under loom: it only owns the memory; every read and
/// write of the record goes through the (loom-visible) mutex.
pub(super) type SharedRecord = std::sync::Arc<Mutex<FailureRecord>>;

/// What copying a failure for a report does to its record.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Shown {
    /// A drain's report: the text is fixed from now on.
    Fix,
    /// A straggler snapshot: the text may still change.
    Snapshot,
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
    pub(super) fn new(parent: Option<Arc<Latch>>, name: Option<Cow<'static, str>>) -> Self {
        Self {
            core: Core::new(),
            parent,
            children: Mutex::new(Vec::new()),
            name,
            warned: OnceCell::new(),
            forced: Flag::new(),
            forced_list: WaitList::default(),
            announced: Flag::new(),
            announce_list: WaitList::default(),
            #[cfg(all(feature = "systemd", target_os = "linux"))]
            systemd: OnceCell::new(),
            failures: Mutex::new(Vec::new()),
            failed: Flag::new(),
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
    pub(super) fn close(this: &Arc<Latch>, why: &Why, unwound: &mut Unwound) -> bool {
        if mutant::is("racy-election") {
            // Check-then-act without the lock: two triggers can both win.
            if this.core.snapshot().is_closed() {
                return false;
            }
            let mut meta = this.meta.lock();
            meta.triggered_at = Some(Instant::now());
            meta.reason.clone_from(&why.reason);
            meta.cause = Some(why.cause.clone());
            drop(meta);
            if let Some(closing) = hold::close(this) {
                unwound.keep(this.core.announce(closing));
            }
            this.announce_one(unwound);
            return true;
        }
        let mut meta = this.meta.lock();
        if meta.triggered_at.is_some() {
            return false;
        }
        meta.triggered_at = Some(Instant::now());
        // The cause is decided with the election: the first trigger's wins.
        if mutant::is("cause-after-election") {
            // Mutant: the cause is written after the lock is let go, so a
            // losing trigger can overwrite the winner's.
            drop(meta);
            let closing = hold::close(this);
            let mut meta = this.meta.lock();
            meta.reason.clone_from(&why.reason);
            meta.cause = Some(why.cause.clone());
            drop(meta);
            if let Some(closing) = closing {
                unwound.keep(this.core.announce(closing));
            }
            this.announce_one(unwound);
            return true;
        }
        meta.reason.clone_from(&why.reason);
        meta.cause = Some(why.cause.clone());
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
        // A trigger announces too (invariant 7), and the service manager
        // hears of the trigger.
        this.announce_one(unwound);
        this.tell_systemd(Stage::Triggered, || this.shutting_down_status());
        true
    }

    /// Marks this latch announced ("stopping soon") and wakes its announce
    /// waiters; true for the call that marked it. Admission is untouched:
    /// the flag is not part of the counting word, so announcing costs the
    /// guard fast path nothing.
    pub(super) fn announce_one(&self, unwound: &mut Unwound) -> bool {
        if !self.announced.set() {
            return false;
        }
        unwound.keep(self.announce_list.wake_all());
        // A trigger's own announcement leaves the telling to the trigger,
        // whose stage is later anyway.
        if self.is_triggered() {
            return true;
        }
        self.tell_systemd(Stage::Announced, || {
            let count = self.core.snapshot().count();
            format!("stopping soon (announced): {count} guards held, still admitting")
        });
        true
    }

    /// The service manager's status line while draining.
    pub(super) fn shutting_down_status(&self) -> String {
        let count = self.core.snapshot().count();
        match self.reason() {
            Some(reason) => format!("shutting down ({reason}): draining {count} guards"),
            None => format!("shutting down: draining {count} guards"),
        }
    }

    /// Tells the service manager `status` at `stage` (with `STOPPING=1`), if [`Shutdown::notify_systemd`](crate::Shutdown::notify_systemd)
    /// was called on this latch; nothing otherwise, and `status` is not made.
    #[allow(unused_variables)]
    pub(super) fn tell_systemd(&self, stage: Stage, status: impl FnOnce() -> String) {
        #[cfg(all(feature = "systemd", target_os = "linux"))]
        if let Some(notifier) = self.systemd.get_ref() {
            notifier.send(stage, &status());
        }
    }

    /// Announced, or triggered (a trigger announces; the word is read too,
    /// so a reader that sees the trigger before its announcement lands still
    /// says true), here or on an ancestor: the flags of the chain up, so a
    /// latch the cascade has not reached yet says true too. A loop, linear
    /// in the depth.
    pub(super) fn is_announced(&self) -> bool {
        let mut level = Some(self);
        while let Some(latch) = level {
            if latch.announced.is_set() || latch.is_triggered() {
                return true;
            }
            level = latch.parent.as_deref();
        }
        false
    }

    /// Why this latch was triggered (`None` before).
    pub(super) fn cause(&self) -> Option<Cause> {
        self.meta.lock().cause.clone()
    }

    /// The cause and reason this latch passes to its children in a cascade.
    pub(super) fn why(&self) -> Why {
        let meta = self.meta.lock();
        Why {
            cause: meta.cause.clone().unwrap_or(Cause::Requested(None)),
            reason: meta.reason.clone(),
        }
    }

    pub(super) fn is_triggered(&self) -> bool {
        self.core.snapshot().is_closed()
    }

    /// `Acquire`: pairs with the `Release` of [`force_one`](Self::force_one),
    /// so a holder that sees the flag also sees what the forcing thread did
    /// first.
    pub(super) fn is_forced(&self) -> bool {
        self.forced.is_set()
    }

    /// Records a failure in this latch and every ancestor (invariant 6);
    /// returns the shared record.
    ///
    /// `Release` on the flags, after the record is pushed: a reader that sees
    /// a flag with `Acquire` finds the record. A guard records before it
    /// releases its count, so a drain that completes sees the flag.
    pub(super) fn push_failure(&self, record: FailureRecord) -> SharedRecord {
        let record = std::sync::Arc::new(Mutex::new(record));
        let mut level = Some(self);
        while let Some(latch) = level {
            latch.failures.lock().push(record.clone());
            latch.failed.set();
            level = latch.parent.as_deref();
        }
        record
    }

    /// Sets the forced flag and wakes its waiters, and the drain's (a phased
    /// drain's grace ends early when forced); true for the call that set it.
    /// Waiters check under their list's lock before they register, after
    /// this RMW is visible (`wakers.rs`). A waker's panic goes to `unwound`.
    pub(super) fn force_one(&self, unwound: &mut Unwound) -> bool {
        if !self.forced.set() {
            return false;
        }
        self.tell_systemd(Stage::Forced, || {
            let count = self.core.snapshot().count();
            format!("forcing: {count} guards still held")
        });
        unwound.keep(self.forced_list.wake_all());
        unwound.keep(self.core.wake_drain_waiters());
        true
    }

    /// The names of the named latches from the root down to this one, joined
    /// by `/` (unnamed latches are left out; empty if none is named).
    pub(super) fn path(&self) -> String {
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

    pub(super) fn reason(&self) -> Option<SharedStr> {
        self.meta.lock().reason.clone()
    }

    pub(super) fn since_trigger(&self, now: Instant) -> Duration {
        self.meta
            .lock()
            .triggered_at
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at))
    }

    /// The report of a completed drain; call only once it is observed.
    pub(super) fn report(&self) -> Report {
        if let Some(report) = self.drained.get() {
            return report;
        }
        let report = Report {
            panicked: self.core.panicked(),
            elapsed: self.since_trigger(Instant::now()),
            reason: self.reason(),
            cause: self.cause(),
            latch: self.path().into(),
            forced: self.is_forced(),
            failures: self.failures(Shown::Fix).into(),
        };
        if self.drained.set(report.clone()) {
            trace_drained(self, &report);
            self.tell_systemd(Stage::Ended, || report.to_string());
            report
        } else {
            // Another drainer got there first: everyone returns its report.
            self.drained.get().unwrap_or(report)
        }
    }

    /// The failures recorded in this subtree, oldest first.
    pub(super) fn failures(&self, shown: Shown) -> Vec<Failure> {
        if !self.failed.is_set() {
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

    pub(super) fn wait_triggered(&self, deadline: Option<Instant>) -> bool {
        self.core.wait(Until::Closed, deadline)
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
