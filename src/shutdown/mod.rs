//! `Shutdown`: a one-shot latch shared by every component of a program,
//! and the futures and guards it hands out.
//!
//! One concept a file:
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | the handle: admission, children, the trigger, the forcing, the signal policy's entry |
//! | `drain.rs` | the drains: blocking, bounded, phased, async; `holders` |
//! | `spawn.rs` | work started under a guard: `spawn`, `track`, and the wrapper that records a spawned thread's panic |
//! | `guard.rs` | [`Guard`](crate::Guard): plain, named, vital; what a panic's drop records |
//! | `futures.rs` | the named futures of [`crate::futures`] |
//! | `latch.rs` | the latch: election, flags, failures, the cached report (numbered invariants) |
//! | `tree.rs` | the weak child links, the cascades, the subtree walks (numbered invariants, deadlock safety) |
//! | `trace.rs` | the `tracing` feature's events |
//!
//! None of them touches the state word or the reference protocol directly:
//! that is the core's (`crate::core`), through `Core`, `Hold`, `Anchor`,
//! `hold::close`, the wait lists and `Flag`.

mod drain;
mod futures;
mod guard;
mod latch;
mod spawn;
#[cfg(all(test, not(loom)))]
mod tests;
mod trace;
mod tree;

use std::borrow::Cow;
use std::fmt;
use std::panic::Location;
use std::time::{Duration, Instant};

pub use self::futures::{
    Drained, DrainedUntil, Forced, PhasedDrain, Tracked, Triggered, UntilTriggered,
};
pub use self::guard::Guard;
use self::latch::Latch;
#[cfg(all(feature = "signal", unix))]
use self::tree::give_up;
use self::tree::{adopt, force, trigger};
use crate::core::hold::{Anchor, Hold};
use crate::core::sync::Arc;
use crate::report::ShutdownStarted;
#[cfg(all(feature = "signal", unix))]
use crate::report::Stragglers;

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
        Ok(Shutdown {
            anchor: adopt(self.latch(), name)?,
        })
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
    /// appears in [`Report`](crate::Report) and [`Stragglers`](crate::Stragglers).
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
        spawn::settle_deferred(false);
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

    /// The second phase of a shutdown: marks this latch and its whole subtree
    /// "forced" (triggering first if it was not yet triggered), which tells
    /// holders to abandon in-flight work instead of finishing it
    /// ([`Guard::is_forced`](crate::Guard::is_forced), [`Guard::wait_forced_async`](crate::Guard::wait_forced_async)). Like the
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

    /// Shuts down on SIGINT and SIGTERM with the default policy of
    /// [`Shutdown::signals`](crate::Shutdown::signals): the first signal triggers (the signal's name is
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
