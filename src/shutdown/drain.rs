//! Draining a latch: the blocking, bounded, phased and async drains, and
//! the snapshot of who holds it open.

use std::future::Future;
use std::time::{Duration, Instant};

use super::futures::{Drained, PhasedDrain};
use super::spawn::settle_deferred;
use super::tree::{give_up, holders};
use super::Shutdown;
use crate::core::state::Until;
use crate::core::wakers::Key;
use crate::mutant;
use crate::report::{Holders, Report, Stragglers};

impl Shutdown {
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
        settle_deferred(true);
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
        settle_deferred(true);
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
    /// [`Stragglers`](crate::Stragglers): how many guards remain and which named ones, where
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
    /// [`Stragglers`](crate::Stragglers), taken once the deadline has passed: how many guards
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
        settle_deferred(true);
        if self.latch().core.wait(Until::Drained, deadline) {
            Ok(self.latch().report())
        } else {
            give_up(self.latch())
        }
    }

    /// Who holds this latch's subtree open right now: the live count, the
    /// named guards (name, site, age) and the panicked count, consistent with
    /// each other. Usable at any time, before or after the trigger; a
    /// timed-out drain's [`Stragglers`](crate::Stragglers) is built from the same snapshot.
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
        settle_deferred(false);
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
    /// [`Stragglers`](crate::Stragglers) naming who is still holding on.
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

    /// A shutdown in two phases: triggers, waits `grace` for the drain, then
    /// [forces](Self::force) the latch and waits `hard` more. The report says
    /// whether forcing was needed ([`Report::forced`](crate::Report::forced)); the stragglers name
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
    /// [`Stragglers`](crate::Stragglers) if guards remain after both phases (`forced` is set).
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
        settle_deferred(true);
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
}
