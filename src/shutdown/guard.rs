//! `Guard`: one admitted unit of work, named, vital or plain, and what its
//! drop records when a panic drops it.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::time::{Duration, Instant};

use super::futures::{Announced, Forced, Tracked, Triggered, UntilTriggered};
use super::latch::{FailureRecord, Latch, Why};
use super::spawn::SPAWNED;
use super::tree::trigger;
use crate::core::hold::Hold;
use crate::core::sync::unique_id;
use crate::core::wakers::Key;
use crate::mutant;
use crate::report::{Cause, Failure, SharedStr};

/// One admitted unit of work on a [`Shutdown`](crate::Shutdown) latch; dropping it releases
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
    /// `None` for an unnamed, ordinary guard, which therefore never locks or
    /// allocates, and whose drop tests one word (a guard is two words, so
    /// moving one costs little more than moving a token). Declared first, so
    /// that it drops right after `Drop::drop` has taken it out (nothing in
    /// between), and the compiler sees there is nothing left to free.
    extra: Option<Box<Extra>>,
    pub(super) hold: Hold<Latch>,
}

/// What a named, vital or spawn guard carries besides its hold.
#[derive(Debug, Default)]
pub(super) struct Extra {
    named: Option<Named>,
    /// Where [`vital`](Guard::vital) marked it; `None` for ordinary guards.
    pub(super) vital: Option<&'static Location<'static>>,
    /// The identity of the guard a thread of
    /// [`Shutdown::spawn`](crate::Shutdown::spawn) was handed (0 for any
    /// other guard): if that thread's panic drops it, its release waits for
    /// the spawn's wrapper. A process-wide unique number, never an address
    /// (an address may be reused by a guard of another thread).
    pub(super) spawn: u64,
    /// A failure of this guard is recorded (`fail`): its drop records none.
    pub(super) failed: bool,
}

#[derive(Debug)]
struct Named {
    id: u64,
    name: Cow<'static, str>,
}

impl Guard {
    /// An unnamed, ordinary guard owning `hold`.
    #[inline]
    pub(super) fn from_hold(hold: Hold<Latch>) -> Self {
        Self { extra: None, hold }
    }

    pub(super) fn latch(&self) -> &Latch {
        self.hold.node()
    }

    fn named(&self) -> Option<&Named> {
        self.extra.as_ref()?.named.as_ref()
    }

    pub(super) fn vital_site(&self) -> Option<&'static Location<'static>> {
        self.extra.as_ref()?.vital
    }

    pub(super) fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    pub(super) fn register(&mut self, name: Cow<'static, str>, site: &'static Location<'static>) {
        let id = self.latch().registry.lock().insert(name.clone(), site);
        self.extra_mut().named = Some(Named { id, name });
    }

    /// Makes this the spawn guard of the thread about to start
    /// (`spawn::spawn_body`); returns its identity.
    pub(super) fn mark_spawned(&mut self) -> u64 {
        let id = unique_id();
        self.extra_mut().spawn = id;
        id
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
    /// [`Shutdown::wait_drained_timeout`](crate::Shutdown::wait_drained_timeout).
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
    /// once before the loop (see [`Shutdown::wait_triggered_async`](crate::Shutdown::wait_triggered_async)), or use
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

    /// The name given to [`Shutdown::guard_named`](crate::Shutdown::guard_named), if any.
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// assert_eq!(shutdown.guard_named("uploader").unwrap().name(), Some("uploader"));
    /// assert_eq!(shutdown.guard().unwrap().name(), None);
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.named().map(|n| &*n.name)
    }

    /// Moves this guard into a future that holds it until `fut` completes or
    /// is dropped (see [`Shutdown::track`](crate::Shutdown::track)).
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

    /// Why the latch was triggered (see [`Shutdown::cause`](crate::Shutdown::cause));
    /// `None` until triggered. Works with no handle left.
    ///
    /// ```
    /// use quiescent::Cause;
    ///
    /// let shutdown = quiescent::Shutdown::new();
    /// let guard = shutdown.guard().unwrap();
    /// shutdown.trigger_with_reason("deploy");
    /// assert_eq!(guard.cause(), Some(Cause::Requested(Some("deploy".into()))));
    /// ```
    pub fn cause(&self) -> Option<Cause> {
        self.latch().cause()
    }

    /// Whether the latch (or an ancestor) has announced "stopping soon"
    /// ([`Shutdown::announce`](crate::Shutdown::announce)), or triggered.
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let guard = shutdown.guard().unwrap();
    /// shutdown.announce();
    /// assert!(guard.is_announced() && !guard.is_triggered());
    /// ```
    pub fn is_announced(&self) -> bool {
        self.latch().is_announced()
    }

    /// Waits asynchronously until the latch is announced or triggered (see
    /// [`Shutdown::wait_announced_async`](crate::Shutdown::wait_announced_async)).
    /// The future is `'static`; it does not hold the guard.
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// let shutdown = quiescent::Shutdown::new();
    /// let guard = shutdown.guard().unwrap();
    /// let notice = guard.wait_announced_async();
    /// shutdown.announce();
    /// notice.await;
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unregisters its waker and changes nothing else.
    pub fn wait_announced_async(&self) -> Announced {
        Announced::new(self.hold.to_arc())
    }

    /// Whether the latch has been forced ([`Shutdown::force`](crate::Shutdown::force)): abandon
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

    /// Waits asynchronously until the latch is forced ([`Shutdown::force`](crate::Shutdown::force)).
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
    /// ([`Report::failures`](crate::Report::failures)). A latch used as a group then fails fast, like
    /// errgroup's first error. Clones are not vital.
    ///
    /// This works with no [`Shutdown`](crate::Shutdown) handle left: the guard reaches its
    /// latch, and the latch its subtree, by itself.
    ///
    /// The failure's text is "panicked": the panic's message is not known
    /// while the guard is dropped. In a thread of [`Shutdown::spawn`](crate::Shutdown::spawn), the
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
    /// failure ([`Report::failures`](crate::Report::failures)): errgroup's first-error cancel for a
    /// latch used as a group. The latch's reason is set only if this starts
    /// its shutdown. This works with no [`Shutdown`](crate::Shutdown) handle left.
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
        // One failure per guard: its drop (maybe during unwinding, maybe
        // the unwinding of a trigger waker's panic resumed below) must not
        // record a second one.
        self.extra_mut().failed = true;
        record_failure(
            &self.hold,
            self.named(),
            site,
            reason.into_owned(),
            true,
            false,
        );
    }
}

/// Records a failure of a guard (its hold, its name) on its latch (and its ancestors);
/// with `trigger_it`, also triggers the latch and its subtree, with the
/// failure as the cause (its text names the guard and its site): through
/// the guard's own reference, so no handle is
/// needed (module docs, invariant 2). `unwinding`: the guard is dropped
/// by a panic, and in a thread of `Shutdown::spawn` the panic's message
/// will replace "panicked".
fn record_failure(
    hold: &Hold<Latch>,
    named: Option<&Named>,
    fallback: &'static Location<'static>,
    reason: String,
    trigger_it: bool,
    unwinding: bool,
) {
    let latch = hold.node();
    let (name, site) = match named {
        Some(named) => (
            Some(SharedStr::from(named.name.clone())),
            latch.registry.lock().site(named.id).unwrap_or(fallback),
        ),
        None => (None, fallback),
    };
    let failure = Failure {
        name,
        latch: latch.path().into(),
        site,
        reason: reason.into(),
    };
    // The cause, as the failure is now (its text reads "... failed:
    // reason" or "... panicked").
    let cause = trigger_it.then(|| Cause::Failed(failure.clone()));
    let record = latch.push_failure(FailureRecord {
        at: Instant::now(),
        failure,
        shown: false,
    });
    if unwinding {
        // Inside a thread of `Shutdown::spawn`: its wrapper replaces this
        // "panicked" with the panic's message, unless a drain's report
        // has shown the record by then (see `run_recording_panic`).
        let _ = SPAWNED.try_with(|spawned| {
            if let Some(spawned) = &mut *spawned.borrow_mut() {
                spawned.records.push(record);
            }
        });
    }
    if let Some(cause) = cause {
        trigger(&hold.to_arc(), &Why::new(cause));
    }
}

impl Clone for Guard {
    /// Clones the guard; a named guard's clone is registered under the same
    /// name, at the site of the `clone` call. An unnamed guard's clone is its
    /// hold's clone alone (one atomic RMW), as a token's is.
    #[inline]
    #[track_caller]
    fn clone(&self) -> Self {
        let guard = Guard::from_hold(self.hold.clone());
        match self.named() {
            None => guard,
            Some(named) => guard.registered_as(named, Location::caller()),
        }
    }
}

impl Guard {
    /// A clone's registration under `named`'s name, at `site`: out of line,
    /// so that an unnamed guard's clone stays one RMW.
    #[cold]
    #[inline(never)]
    fn registered_as(mut self, named: &Named, site: &'static Location<'static>) -> Guard {
        self.register(named.name.clone(), site);
        self
    }
}

impl Drop for Guard {
    /// Inline: an unnamed, non-vital guard's drop is its hold's release
    /// alone (one atomic RMW), as cheap as a token's. The `extra` word is
    /// taken out here, so the field's own drop is known to have nothing left
    /// to do and the whole drop inlines.
    #[inline]
    fn drop(&mut self) {
        if let Some(extra) = self.extra.take() {
            drop_slow_nounwind(&self.hold, extra);
        }
    }
}

/// [`drop_slow`], which never unwinds, declared so: a call the compiler
/// knows cannot unwind needs no cleanup in the guard's drop glue, which is
/// then small enough to be inlined at every drop (issue 24: the landing pad
/// kept it out of line).
///
/// A panic escaping an `extern "C"` function aborts the process, so none
/// may. On its own, `drop_slow` runs user code only when the thread is
/// unwinding already: a vital guard's trigger (wakers, a tracing
/// subscriber). The trigger catches those panics and, the thread being
/// unwinding, discards them (`core::wakers::discard`, which also survives a
/// payload that panics when dropped). That matters because a thread that
/// unwinds may still catch a panic: a destructor with its own
/// `catch_unwind` (tokio drops the futures of a runtime so) runs with
/// `panicking()` true. Anything that would unwind anyway is caught here and
/// discarded too: this thread's own panic is the one it reports. Under
/// loom, a model's failure is a panic that must reach the model, so there
/// it is an ordinary call.
#[cfg(not(loom))]
#[cold]
#[inline(never)]
extern "C" fn drop_slow_nounwind(hold: &Hold<Latch>, extra: Box<Extra>) {
    let run = std::panic::AssertUnwindSafe(move || drop_slow(hold, extra));
    if let Err(payload) = std::panic::catch_unwind(run) {
        crate::core::wakers::discard(payload);
    }
}

#[cfg(loom)]
use drop_slow as drop_slow_nounwind;

/// What a named, vital or spawn guard's drop does before its hold (the
/// field dropped right after this) releases the count.
#[cold]
#[inline(never)]
fn drop_slow(hold: &Hold<Latch>, extra: Box<Extra>) {
    let unwinding = std::thread::panicking();
    if unwinding && !extra.failed {
        // Before the count goes: the drain cannot complete without this
        // failure in its report. A vital guard fails its latch; a named
        // one is only recorded, so the report says which guard the
        // panic dropped (name, site, latch).
        let named = extra.named.as_ref();
        match (extra.vital, named) {
            (Some(site), _) => record_failure(hold, named, site, "panicked".into(), true, true),
            (None, Some(named)) => {
                let site = hold.node().registry.lock().site(named.id);
                if let Some(site) = site {
                    record_failure(hold, Some(named), site, "panicked".into(), false, true);
                }
            }
            (None, None) => {}
        }
    }
    let spawn = extra.spawn != 0 && is_this_threads_spawn_guard(&extra);
    if spawn && unwinding && !mutant::is("spawn-no-defer") {
        // The spawn guard, dropped by its thread's panic: its count (and
        // its name) stay until the wrapper has put the panic's message
        // in (`run_recording_panic`); the hold's drop, right after this,
        // defers its release to it.
        let name = extra.named.as_ref().map(|named| named.id);
        let _ = SPAWNED.try_with(|spawned| {
            if let Some(spawned) = &mut *spawned.borrow_mut() {
                spawned.name = name;
            }
        });
        hold.defer_release();
        return;
    }
    // Unregister before the count goes (the `hold` field drops after
    // this), so a straggler list never names a guard already released.
    if let Some(named) = &extra.named {
        hold.node().registry.lock().remove(named.id);
    }
}

/// Whether `extra` is the spawn guard of the thread running this code; if
/// so, the thread forgets it (the guard is being dropped).
fn is_this_threads_spawn_guard(extra: &Extra) -> bool {
    // `try_with`: a guard dropped by a thread-local's destructor, after
    // this thread's spawn slot is gone, is simply not deferred.
    SPAWNED
        .try_with(|spawned| match &mut *spawned.borrow_mut() {
            Some(spawned) if spawned.guard == extra.spawn => {
                spawned.guard = 0;
                true
            }
            _ => false,
        })
        .unwrap_or(false)
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
