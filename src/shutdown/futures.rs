//! The named futures of the latch: `Triggered`, `Drained`, `DrainedUntil`,
//! `Forced`, `PhasedDrain`, `Tracked`, `UntilTriggered`. Each waits through a
//! core wait list (`core::wakers`): registered under the list's lock after
//! a look at the word, woken outside every lock, cancelled on drop.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::guard::Guard;
use super::latch::Latch;
use super::spawn::settle_deferred;
use super::tree::{force, give_up};
use crate::core::state::Until;
use crate::core::sync::Arc;
use crate::core::wakers::Key;
use crate::report::{Report, Stragglers};

pin_project! {
    /// Future of [`Shutdown::track`](crate::Shutdown::track), [`Shutdown::track_named`](crate::Shutdown::track_named) and
    /// [`Guard::track`](crate::Guard::track): `fut`, holding a guard until it completes or is
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
        pub(super) fut: F,
        pub(super) guard: Option<Guard>,
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
    /// Future of [`Guard::run_until_triggered`](crate::Guard::run_until_triggered).
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
        pub(super) fut: Option<F>,
        pub(super) triggered: Triggered,
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

/// Future of [`Shutdown::wait_triggered_async`](crate::Shutdown::wait_triggered_async) / [`Guard::wait_triggered_async`](crate::Guard::wait_triggered_async).
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
    pub(super) latch: Arc<Latch>,
    pub(super) key: Key,
}

impl Triggered {
    pub(super) fn new(latch: Arc<Latch>) -> Self {
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

/// Future of [`Shutdown::wait_announced_async`](crate::Shutdown::wait_announced_async)
/// and [`Guard::wait_announced_async`](crate::Guard::wait_announced_async):
/// completes once the latch (or an ancestor) is announced or triggered.
///
/// ```
/// # futures_executor::block_on(async {
/// let shutdown = quiescent::Shutdown::new();
/// let notice: quiescent::futures::Announced = shutdown.wait_announced_async();
/// drop(shutdown.clone()); // the future outlives handles
/// shutdown.trigger(); // a trigger announces too
/// notice.await;
/// # });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Announced {
    latch: Arc<Latch>,
    key: Key,
}

impl Announced {
    pub(super) fn new(latch: Arc<Latch>) -> Self {
        Self {
            latch,
            key: Key::default(),
        }
    }
}

impl Future for Announced {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let latch = &this.latch;
        latch
            .announce_list
            .poll(&mut this.key, cx, || latch.is_announced())
    }
}

impl Drop for Announced {
    fn drop(&mut self) {
        let latch = &self.latch;
        latch
            .announce_list
            .cancel(&mut self.key, || latch.is_announced());
    }
}

impl fmt::Debug for Announced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Announced")
            .field("announced", &self.latch.is_announced())
            .finish()
    }
}

impl fmt::Debug for Triggered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Triggered")
            .field("triggered", &self.latch.is_triggered())
            .finish()
    }
}

/// Future of [`Shutdown::wait_drained_async`](crate::Shutdown::wait_drained_async) and [`Shutdown::shutdown_async`](crate::Shutdown::shutdown_async).
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
    pub(super) latch: Arc<Latch>,
    pub(super) key: Key,
}

impl Drained {
    /// Bounds this drain by `deadline`, any future: `tokio::time::sleep`,
    /// `async_io::Timer`, a channel's receive... The result resolves to the
    /// report once drained, or to the [`Stragglers`](crate::Stragglers) captured when `deadline`
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
        settle_deferred(true);
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

/// Future of [`Guard::wait_forced_async`](crate::Guard::wait_forced_async).
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
    pub(super) latch: Arc<Latch>,
    pub(super) key: Key,
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

/// Future of [`Shutdown::shutdown_phased_async`](crate::Shutdown::shutdown_phased_async).
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
    pub(super) drained: Drained,
    /// The grace deadline, until it fires.
    pub(super) grace: Option<Pin<Box<G>>>,
    /// Makes the hard deadline when the grace one fires.
    pub(super) make_hard: Option<HF>,
    pub(super) hard: Option<Pin<Box<H>>>,
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
