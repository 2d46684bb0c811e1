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
    Announced, Drained, DrainedUntil, Forced, PhasedDrain, Tracked, Triggered, UntilTriggered,
};
pub use self::guard::Guard;
use self::latch::Latch;
#[cfg(all(feature = "systemd", target_os = "linux"))]
pub(crate) use self::latch::Stage;
use self::latch::Why;
#[cfg(all(feature = "signal", unix))]
use self::tree::give_up;
use self::tree::{adopt, announce, force, trigger};
use crate::core::hold::{Anchor, Hold};
use crate::core::sync::Arc;
#[cfg(all(feature = "signal", unix))]
use crate::report::Stragglers;
use crate::report::{Cause, ShutdownStarted};

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
        self.trigger_with_cause(Cause::Requested(None))
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
        self.trigger_with_cause(Cause::Requested(Some(reason.into().into())))
    }

    /// Like [`trigger`](Self::trigger), with an error as the [`Cause`]: kept
    /// only if this call starts the shutdown, passed to the children, and
    /// given back by [`cause`](Self::cause) (and in [`Report::cause`](crate::Report::cause))
    /// as itself, to `downcast_ref` (see [`Cause`]).
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let error = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "upstream gone");
    /// assert!(shutdown.trigger_with_error(error));
    /// let cause = shutdown.cause().unwrap();
    /// assert_eq!(cause.error().unwrap().to_string(), "upstream gone");
    /// ```
    pub fn trigger_with_error<E>(&self, error: E) -> bool
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        self.trigger_with_cause(Cause::Error(std::sync::Arc::new(error)))
    }

    /// Like [`trigger`](Self::trigger), with any [`Cause`]: the first
    /// trigger's cause wins, decided with the election.
    ///
    /// ```
    /// use quiescent::Cause;
    ///
    /// let shutdown = quiescent::Shutdown::new();
    /// shutdown.trigger_with_cause(Cause::Signal(15));
    /// assert_eq!(shutdown.cause(), Some(Cause::Signal(15)));
    /// assert_eq!(shutdown.reason().as_deref(), Some("SIGTERM"));
    /// ```
    pub fn trigger_with_cause(&self, cause: Cause) -> bool {
        trigger(self.latch(), &Why::new(cause))
    }

    /// Why this latch was triggered: the first trigger's cause, or its
    /// ancestor's if the trigger came from above; `None` until triggered.
    ///
    /// ```
    /// use quiescent::Cause;
    ///
    /// let server = quiescent::Shutdown::new();
    /// let jobs = server.child().unwrap();
    /// let parse = jobs.guard_named("parse").unwrap();
    /// parse.fail("bad input"); // fails its own latch, not the server
    /// assert!(matches!(jobs.cause(), Some(Cause::Failed(f)) if f.reason == "bad input"));
    /// assert_eq!(server.cause(), None);
    /// ```
    pub fn cause(&self) -> Option<Cause> {
        self.latch().cause()
    }

    /// Announces "stopping soon": marks this latch and its subtree, so that
    /// [`is_announced`](Self::is_announced) is true and
    /// [`wait_announced_async`](Self::wait_announced_async) completes, while
    /// guards are **still admitted**: in-flight and newly arriving work is
    /// served while load balancers stop sending (a readiness probe turns
    /// "not ready"). Then [`trigger`](Self::trigger) as usual. True only for
    /// the call that announced this latch; a trigger announces too.
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let child = shutdown.child().unwrap();
    /// assert!(shutdown.announce());
    /// assert!(!shutdown.announce());
    /// assert!(child.is_announced()); // a child sees its ancestors' notice
    /// assert!(shutdown.guard().is_ok()); // still admitted
    /// assert!(!shutdown.is_triggered());
    /// ```
    pub fn announce(&self) -> bool {
        announce(self.latch())
    }

    /// Whether this latch (or an ancestor) has announced "stopping soon";
    /// also true once triggered.
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// assert!(!shutdown.is_announced());
    /// shutdown.trigger();
    /// assert!(shutdown.is_announced());
    /// ```
    pub fn is_announced(&self) -> bool {
        self.latch().is_announced()
    }

    /// Tells systemd about this latch's shutdown from now on, if the service
    /// runs under it: returns whether `NOTIFY_SOCKET` is set to an address a
    /// socket can send to (a path, or `@name` for an abstract socket). Then
    /// the latch sends `STOPPING=1` with a one-line `STATUS=` at each stage:
    /// announced, triggered (with the reason and the guards to drain),
    /// forced, and at the end of a drain, drained or gave up (naming the
    /// oldest stragglers). Stages only go forward: a message of an earlier
    /// stage that loses a race with a later one is not sent. A status has no
    /// control character (a reason cannot add an assignment) and is cut to
    /// 1024 bytes. A latch announced or triggered already says so at once.
    /// With `NOTIFY_SOCKET` unset nothing is sent and nothing fails; the
    /// socket never blocks, and a send that fails (the manager gone, or not
    /// reading) is dropped.
    ///
    /// Call it on the root latch. Pair it with `TimeoutStopSec=` at least the
    /// notice, grace and hard periods together (the guide's "Running under
    /// Kubernetes or systemd").
    ///
    /// ```no_run
    /// let shutdown = quiescent::Shutdown::new();
    /// if shutdown.notify_systemd() {
    ///     // Type=notify: READY=1 is the application's to send.
    /// }
    /// ```
    ///
    /// Linux only (systemd's protocol). On Windows, a service triggers its
    /// latch from its service control handler instead (see the guide).
    #[cfg(all(feature = "systemd", target_os = "linux"))]
    #[cfg_attr(docsrs, doc(cfg(all(feature = "systemd", target_os = "linux"))))]
    pub fn notify_systemd(&self) -> bool {
        let Some(notifier) = crate::systemd::Notifier::from_env() else {
            return false;
        };
        let latch = self.latch();
        if latch.systemd.set(std::sync::Arc::new(notifier)) {
            // Catch up with where the latch is now.
            if let Some(report) = latch.drained.get_ref() {
                latch.tell_systemd(Stage::Ended, || report.to_string());
            } else if latch.is_triggered() {
                latch.tell_systemd(Stage::Triggered, || latch.shutting_down_status());
            } else if latch.is_announced() {
                latch.tell_systemd(Stage::Announced, || "stopping soon (announced)".to_owned());
            }
        }
        true
    }

    /// Waits asynchronously until the latch is announced (or triggered).
    /// The future is `'static` and outlives every handle.
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// let shutdown = quiescent::Shutdown::new();
    /// let notice = shutdown.wait_announced_async();
    /// shutdown.announce();
    /// notice.await; // e.g. turn the readiness probe to 503
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the future unregisters its waker and changes nothing else.
    pub fn wait_announced_async(&self) -> Announced {
        Announced::new(self.latch().clone())
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
    /// [`Shutdown::signals`](crate::Shutdown::signals): one stage per
    /// signal, announce, trigger, force, exit. With no notice (the default)
    /// the first signal announces and triggers at once (the cause is
    /// [`Cause::Signal`], the reason its name), a second one during the drain
    /// [forces](Self::force), a third (or a second after forcing) prints the
    /// stragglers to stderr and exits with 128 + the signal number, and once
    /// the drain has completed signals no longer exit the process. With
    /// [`Signals::notice`](crate::Signals::notice), the first signal only
    /// announces, and the notice's end (or the next signal) triggers. Same as
    /// `self.signals().install()`.
    ///
    /// ```no_run
    /// let shutdown = quiescent::Shutdown::new();
    /// shutdown.trigger_on_signals()?;
    /// // ... run; Ctrl-C triggers `shutdown` with the reason "SIGINT" ...
    /// shutdown.wait_drained();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// Unix only: signal-hook's signal iterator does not exist on Windows, so
    /// there the `signal` feature compiles and adds nothing. A Windows
    /// service triggers (or announces) its latch from its service control
    /// handler (`SERVICE_CONTROL_STOP`, `SERVICE_CONTROL_SHUTDOWN`), and a
    /// console program from a console control handler (Ctrl-C), with
    /// [`trigger_with_cause`](Self::trigger_with_cause) and
    /// [`announce`](Self::announce).
    ///
    /// # Errors
    ///
    /// As [`Signals::install`](crate::Signals::install).
    #[cfg(all(feature = "signal", unix))]
    #[cfg_attr(docsrs, doc(cfg(all(feature = "signal", unix))))]
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
    #[cfg_attr(docsrs, doc(cfg(all(feature = "signal", unix))))]
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
