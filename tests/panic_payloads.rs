//! Panics that arrive while another panic is being handled: a waker whose
//! panic payload panics when dropped, a tracing subscriber that panics, and
//! both reached from a vital guard dropped by an unwinding thread inside a
//! destructor's own `catch_unwind` (as tokio drops a runtime's futures). The
//! promise: the operation completes (every waiter woken, every count given
//! back, the whole tree triggered), the extra panic is discarded, and the
//! process never aborts. Each scenario runs in a child process, so an abort
//! fails the test instead of killing the harness. (Found by an adversary of
//! commit 64597bc, which made a guard's cold drop a function that cannot
//! unwind.)
#![allow(clippy::disallowed_types)] // tests use std sync types directly

mod common;

use std::future::Future;
use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use common::{in_child, quiet_panics};
use quiescent::{Guard, Shutdown};

/// A panic payload whose drop panics.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("deliberate: a panic payload's drop panicked");
    }
}

/// A waker that panics with a [`PanicsOnDrop`] payload.
struct PayloadPanicWaker;

impl Wake for PayloadPanicWaker {
    fn wake(self: Arc<Self>) {
        panic_any(PanicsOnDrop);
    }
}

/// A waker that panics with an ordinary payload.
struct PanicWaker;

impl Wake for PanicWaker {
    fn wake(self: Arc<Self>) {
        panic!("deliberate: a waker panicked");
    }
}

/// A waker that counts its wake-ups.
#[derive(Default)]
struct Counting(AtomicUsize);

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn poll_pending<W: Wake + Send + Sync + 'static>(
    future: &mut (impl Future + Unpin),
    waker: Arc<W>,
) {
    let waker = Waker::from(waker);
    let pending = Pin::new(future).poll(&mut Context::from_waker(&waker));
    assert!(pending.is_pending());
}

/// Three waiters of one event: the first's waker panics, the second's
/// panics with a payload that panics when dropped, the third's counts (the
/// counter returned).
fn three_waiters<F: Future + Unpin>(mut waiter: impl FnMut() -> F) -> ([F; 3], Arc<Counting>) {
    let mut waiters = [waiter(), waiter(), waiter()];
    let counter = Arc::new(Counting::default());
    poll_pending(&mut waiters[0], Arc::new(PanicWaker));
    poll_pending(&mut waiters[1], Arc::new(PayloadPanicWaker));
    poll_pending(&mut waiters[2], counter.clone());
    (waiters, counter)
}

/// A destructor that drops the guard it holds under its own `catch_unwind`
/// and counts the panics it caught.
struct CatchingDrop(Option<Guard>, Arc<AtomicUsize>);

impl Drop for CatchingDrop {
    fn drop(&mut self) {
        let guard = self.0.take();
        if catch_unwind(AssertUnwindSafe(move || drop(guard))).is_err() {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A vital guard dropped by a panic inside a destructor's `catch_unwind`;
/// the trigger wakes a waker whose payload panics when dropped.
#[test]
fn a_vital_guards_trigger_survives_a_payload_that_panics_when_dropped() {
    in_child(
        "a_vital_guards_trigger_survives_a_payload_that_panics_when_dropped",
        20,
        || {
            quiet_panics();
            let shutdown = Shutdown::new();
            let child = shutdown.child().unwrap();
            let mut triggered = shutdown.wait_triggered_async();
            poll_pending(&mut triggered, Arc::new(PayloadPanicWaker));
            let guard = shutdown.guard_named("vital").unwrap().vital();
            let caught = Arc::new(AtomicUsize::new(0));
            let counted = caught.clone();
            let joined = std::thread::spawn(move || {
                let _cleanup = CatchingDrop(Some(guard), counted);
                panic!("deliberate: the holder panics");
            })
            .join();
            assert!(joined.is_err());
            assert!(shutdown.is_triggered() && child.is_triggered());
            assert_eq!(shutdown.count(), 0);
            // The waker's panic was discarded (the thread was unwinding).
            assert_eq!(caught.load(Ordering::SeqCst), 0);
            let report = shutdown
                .wait_drained_timeout(Duration::from_secs(5))
                .unwrap();
            assert_eq!(report.failures.len(), 1);
        },
    );
}

/// The realistic shape: a current-thread tokio runtime whose task holds a
/// vital guard is dropped while its thread unwinds (tokio drops each task's
/// future under `catch_unwind`).
#[test]
fn a_runtime_dropped_while_unwinding_drops_its_vital_guards_without_abort() {
    in_child(
        "a_runtime_dropped_while_unwinding_drops_its_vital_guards_without_abort",
        20,
        || {
            quiet_panics();
            let shutdown = Shutdown::new();
            let mut triggered = shutdown.wait_triggered_async();
            poll_pending(&mut triggered, Arc::new(PayloadPanicWaker));
            let guard = shutdown.guard_named("task").unwrap().vital();
            let joined = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    tokio::spawn(guard.track(std::future::pending::<()>()));
                    tokio::task::yield_now().await;
                });
                let _runtime = runtime;
                panic!("deliberate: the thread owning the runtime panics");
            })
            .join();
            assert!(joined.is_err());
            assert!(shutdown.is_triggered());
            assert!(shutdown
                .wait_drained_timeout(Duration::from_secs(5))
                .is_ok());
        },
    );
}

/// A guard's release wakes three drain waiters; the first panics, the
/// second with a payload that panics when dropped: the third is still woken,
/// the parent's count is given back, and the first panic reaches the caller.
#[test]
fn a_second_wakers_payload_that_panics_on_drop_does_not_cut_the_release() {
    in_child(
        "a_second_wakers_payload_that_panics_on_drop_does_not_cut_the_release",
        20,
        || {
            quiet_panics();
            let parent = Shutdown::new();
            let child = parent.child().unwrap();
            let guard = child.guard().unwrap();
            parent.trigger();
            let (_waiters, counter) = three_waiters(|| child.wait_drained_async());
            let released = catch_unwind(AssertUnwindSafe(move || drop(guard)));
            let payload = released.expect_err("the first waker's panic is resumed");
            assert_eq!(
                payload.downcast_ref::<&str>(),
                Some(&"deliberate: a waker panicked")
            );
            assert_eq!(counter.0.load(Ordering::SeqCst), 1);
            assert_eq!((child.count(), parent.count()), (0, 0));
            assert!(parent.wait_drained_timeout(Duration::from_secs(5)).is_ok());
        },
    );
}

/// The same on the trigger's cascade: three trigger waiters, the second's
/// payload panics when dropped; the third is woken and the child latch is
/// triggered (it refuses guards).
#[test]
fn a_second_wakers_payload_that_panics_on_drop_does_not_cut_the_cascade() {
    in_child(
        "a_second_wakers_payload_that_panics_on_drop_does_not_cut_the_cascade",
        20,
        || {
            quiet_panics();
            let parent = Shutdown::new();
            let child = parent.child().unwrap();
            let (_waiters, counter) = three_waiters(|| parent.wait_triggered_async());
            let triggered = catch_unwind(AssertUnwindSafe(|| parent.trigger()));
            assert!(triggered.is_err(), "the first waker's panic is resumed");
            assert_eq!(counter.0.load(Ordering::SeqCst), 1);
            assert!(child.is_triggered() && child.guard().is_err());
        },
    );
}

/// A tracing subscriber that panics on the trigger's event, reached from a
/// vital guard dropped by a panic inside a destructor's `catch_unwind`: the
/// cascade completes, the subscriber's panic is discarded.
#[cfg(feature = "tracing")]
#[test]
fn a_subscriber_that_panics_on_the_trigger_does_not_cut_the_cascade() {
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    struct PanickingSubscriber;

    impl Subscriber for PanickingSubscriber {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {
            panic!("deliberate: the subscriber panicked");
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    in_child(
        "a_subscriber_that_panics_on_the_trigger_does_not_cut_the_cascade",
        20,
        || {
            quiet_panics();
            let shutdown = Shutdown::new();
            let child = shutdown.child().unwrap();
            let guard = shutdown.guard_named("vital").unwrap().vital();
            let caught = Arc::new(AtomicUsize::new(0));
            let counted = caught.clone();
            let joined = std::thread::spawn(move || {
                tracing::subscriber::with_default(PanickingSubscriber, || {
                    let _cleanup = CatchingDrop(Some(guard), counted);
                    panic!("deliberate: the holder panics");
                })
            })
            .join();
            assert!(joined.is_err());
            assert!(shutdown.is_triggered() && child.is_triggered());
            assert_eq!(caught.load(Ordering::SeqCst), 0);
            assert_eq!(shutdown.count(), 0);

            // Not unwinding: the subscriber's panic reaches the caller of
            // `trigger`, after the cascade.
            let other = Shutdown::new();
            let other_child = other.child().unwrap();
            let triggered = tracing::subscriber::with_default(PanickingSubscriber, || {
                catch_unwind(AssertUnwindSafe(|| other.trigger()))
            });
            assert!(triggered.is_err());
            assert!(other_child.is_triggered() && other_child.guard().is_err());
        },
    );
}
