//! Task helpers: `track`, `track_named`, `Guard::track`,
//! `Guard::run_until_triggered` and `spawn_named`, under tokio and
//! futures-executor.
#![allow(clippy::disallowed_types)] // tests use std sync types directly

use crate::common;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::bounded;
use quiescent::{Shutdown, ShutdownStarted};

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn tracked_tasks_hold_the_drain_open_until_they_complete_under_tokio() {
    bounded(30, || {
        let rt = common::multi_thread_runtime();
        rt.block_on(async {
            let shutdown = Shutdown::new();
            let done = Arc::new(AtomicUsize::new(0));
            for i in 0..100 {
                let stop = shutdown.guard().unwrap().wait_triggered_async();
                let done = done.clone();
                let task = shutdown
                    .track(async move {
                        stop.await;
                        tokio::time::sleep(Duration::from_millis(i % 5)).await;
                        done.fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap();
                tokio::spawn(task);
            }
            assert_eq!(shutdown.count(), 100);
            let report = shutdown
                .shutdown_async()
                .until(tokio::time::sleep(Duration::from_secs(20)))
                .await
                .unwrap();
            // The drain returned only after every tracked task finished.
            assert_eq!(done.load(Ordering::SeqCst), 100);
            assert_eq!(report.panicked, 0);
            assert_eq!(shutdown.track(async {}).unwrap_err(), ShutdownStarted);
        });
    });
}

#[test]
fn a_tracked_future_releases_its_guard_on_completion_drop_and_panic() {
    bounded(30, || {
        let rt = common::multi_thread_runtime();
        rt.block_on(async {
            let shutdown = Shutdown::new();
            // Completion releases at once, even while the future is kept.
            let mut done = pin!(shutdown.track(async { 7 }).unwrap());
            assert_eq!(done.as_mut().await, 7);
            assert_eq!(shutdown.count(), 0);

            // Dropped before completion.
            let pending = shutdown.track(std::future::pending::<()>()).unwrap();
            assert_eq!(shutdown.count(), 1);
            drop(pending);
            assert_eq!(shutdown.count(), 0);

            // A panicking task: tokio drops it, and the guard goes with it.
            common::quiet_panics();
            let task = tokio::spawn(
                shutdown
                    .track(async {
                        tokio::task::yield_now().await;
                        panic!("deliberate");
                    })
                    .unwrap(),
            );
            assert!(task.await.unwrap_err().is_panic());
            assert_eq!(shutdown.count(), 0);
            assert!(shutdown.shutdown_timeout(Duration::ZERO).is_ok());
        });
    });
}

#[test]
fn track_named_and_spawn_named_report_the_callers_line() {
    let shutdown = Shutdown::new();
    let task = shutdown.track_named("uploader", async {}).unwrap();
    let line = line!() - 1;
    let holders = shutdown.holders();
    assert_eq!(holders.named[0].name, "uploader");
    assert_eq!(
        (holders.named[0].site.file(), holders.named[0].site.line()),
        (file!(), line)
    );
    drop(task);

    // The worker holds its guard until told to go (after the snapshot).
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let worker = shutdown
        .spawn_named("indexer", move |_guard| {
            let _ = wait.recv_timeout(Duration::from_secs(10));
        })
        .unwrap();
    let line = line!() - 4;
    let stragglers = shutdown.shutdown_timeout(Duration::ZERO).unwrap_err();
    go.send(()).unwrap();
    assert_eq!(stragglers.names, ["indexer"]);
    assert_eq!(
        (
            stragglers.held[0].site.file(),
            stragglers.held[0].site.line()
        ),
        (file!(), line)
    );
    worker.join().unwrap();
    assert!(shutdown
        .wait_drained_timeout(Duration::from_secs(10))
        .is_ok());
    assert_eq!(
        shutdown.spawn_named("late", |_| ()).unwrap_err(),
        ShutdownStarted
    );
}

/// A helper of the user's own that makes named guards: with
/// `#[track_caller]`, the site reported is the helper's caller.
#[track_caller]
fn start_reader(shutdown: &Shutdown) -> quiescent::futures::Tracked<std::future::Pending<()>> {
    shutdown
        .track_named("reader", std::future::pending())
        .unwrap()
}

#[test]
fn track_caller_helpers_report_their_callers_line() {
    let shutdown = Shutdown::new();
    let reader = start_reader(&shutdown);
    let line = line!() - 1;
    assert_eq!(shutdown.holders().named[0].site.line(), line);
    drop(reader);
}

#[test]
fn run_until_triggered_when_the_trigger_comes_first_never_polls() {
    let shutdown = Shutdown::new();
    let guard = shutdown.guard().unwrap();
    shutdown.trigger();
    let polled = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicBool::new(false));
    let work = {
        let polled = polled.clone();
        let flag = DropFlag(dropped.clone());
        async move {
            let _flag = flag;
            polled.store(true, Ordering::SeqCst);
        }
    };
    let mut run = pin!(guard.run_until_triggered(work));
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(run.as_mut().poll(&mut cx), Poll::Ready(None));
    assert!(!polled.load(Ordering::SeqCst), "polled after the trigger");
    assert!(
        dropped.load(Ordering::SeqCst),
        "work kept after the trigger"
    );
}

#[test]
fn run_until_triggered_when_the_work_finishes_first() {
    bounded(30, || {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        let out = futures_executor::block_on(guard.run_until_triggered(async { "done" }));
        assert_eq!(out, Some("done"));
        assert!(!guard.is_triggered());
    });
}

#[test]
fn run_until_triggered_drops_the_work_when_the_trigger_comes_mid_way() {
    bounded(30, || {
        let rt = common::multi_thread_runtime();
        rt.block_on(async {
            let shutdown = Shutdown::new();
            let guard = shutdown.guard().unwrap();
            let dropped = Arc::new(AtomicBool::new(false));
            let flag = DropFlag(dropped.clone());
            let worker = tokio::spawn(async move {
                let out = guard
                    .run_until_triggered(async move {
                        let _flag = flag;
                        std::future::pending::<()>().await
                    })
                    .await;
                (out, guard)
            });
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert!(!dropped.load(Ordering::SeqCst));
            shutdown.trigger();
            let (out, guard) = worker.await.unwrap();
            assert_eq!(out, None);
            assert!(dropped.load(Ordering::SeqCst));
            drop(guard);
            assert!(shutdown.wait_drained_timeout(Duration::ZERO).is_ok());
        });
    });
}

/// The trigger races the work's completion: either outcome is allowed, and
/// the future always resolves.
#[test]
fn run_until_triggered_against_a_concurrent_trigger() {
    bounded(60, || {
        let (mut some, mut none) = (0, 0);
        for _ in 0..200 {
            let shutdown = Shutdown::new();
            let guard = shutdown.guard().unwrap();
            let trigger = {
                let shutdown = shutdown.clone();
                std::thread::spawn(move || shutdown.trigger())
            };
            let out = futures_executor::block_on(guard.run_until_triggered(async {
                std::thread::yield_now();
                1
            }));
            match out {
                Some(1) => some += 1,
                None => none += 1,
                other => panic!("unexpected {other:?}"),
            }
            trigger.join().unwrap();
            drop(guard);
            assert!(shutdown.wait_drained_timeout(Duration::ZERO).is_ok());
        }
        assert_eq!(some + none, 200);
    });
}

#[test]
fn helper_futures_are_send() {
    fn assert_send<T: Send + 'static>(_: &T) {}
    let shutdown = Shutdown::new();
    let tracked = shutdown.track(async {}).unwrap();
    assert_send(&tracked);
    let guard = shutdown.guard().unwrap();
    let until = guard.run_until_triggered(async {});
    fn assert_send_borrowed<T: Send>(_: &T) {}
    assert_send_borrowed(&until);
    assert!(format!("{tracked:?}").starts_with("Tracked"));
    assert!(format!("{until:?}").starts_with("UntilTriggered"));
}
