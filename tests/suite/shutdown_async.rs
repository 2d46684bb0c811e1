//! Async waiting on `Shutdown`: 10,000 guards woken by one trigger under tokio
//! and under futures-executor, futures dropped early, futures outliving
//! handles.
#![allow(clippy::disallowed_types)] // tests use std sync types directly

use crate::common;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::bounded;
use quiescent::Shutdown;

const TASKS: usize = 10_000;

#[test]
fn tokio_ten_thousand_guards_woken_by_one_trigger() {
    bounded(60, || {
        let rt = common::multi_thread_runtime();
        rt.block_on(async {
            let shutdown = Shutdown::new();
            let stopped = Arc::new(AtomicUsize::new(0));
            for _ in 0..TASKS {
                let guard = shutdown.guard().unwrap();
                let stopped = stopped.clone();
                tokio::spawn(async move {
                    guard.wait_triggered_async().await;
                    stopped.fetch_add(1, Ordering::Relaxed);
                    drop(guard);
                });
            }
            assert_eq!(shutdown.count(), TASKS);
            let report = tokio::time::timeout(Duration::from_secs(30), shutdown.shutdown_async())
                .await
                .expect("drain did not complete");
            assert_eq!(report.panicked, 0);
            assert_eq!(stopped.load(Ordering::Relaxed), TASKS);
            assert_eq!(shutdown.count(), 0);
        });
    });
}

#[test]
fn futures_executor_ten_thousand_guards_woken_by_one_trigger() {
    bounded(60, || {
        let pool = futures_executor::ThreadPool::builder()
            .pool_size(2)
            .create()
            .unwrap();
        let shutdown = Shutdown::new();
        let stopped = Arc::new(AtomicUsize::new(0));
        for _ in 0..TASKS {
            let guard = shutdown.guard().unwrap();
            let stopped = stopped.clone();
            pool.spawn_ok(async move {
                guard.wait_triggered_async().await;
                stopped.fetch_add(1, Ordering::Relaxed);
                drop(guard);
            });
        }
        let report = futures_executor::block_on(shutdown.shutdown_async());
        assert_eq!(report.panicked, 0);
        assert_eq!(stopped.load(Ordering::Relaxed), TASKS);
    });
}

#[test]
fn many_async_drainers_all_complete() {
    bounded(20, || {
        let rt = common::multi_thread_runtime();
        rt.block_on(async {
            let shutdown = Shutdown::new();
            let guard = shutdown.guard().unwrap();
            let drainers: Vec<_> = (0..16)
                .map(|_| tokio::spawn(shutdown.wait_drained_async()))
                .collect();
            tokio::task::yield_now().await;
            shutdown.trigger();
            tokio::task::yield_now().await;
            drop(guard);
            for d in drainers {
                assert_eq!(d.await.unwrap().panicked, 0);
            }
        });
    });
}

#[test]
fn dropped_futures_cancel_cleanly() {
    let shutdown = Shutdown::new();
    let guard = shutdown.guard().unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    {
        let mut triggered = pin!(shutdown.wait_triggered_async());
        let mut drained = pin!(shutdown.wait_drained_async());
        assert!(triggered.as_mut().poll(&mut cx).is_pending());
        assert!(drained.as_mut().poll(&mut cx).is_pending());
    }
    shutdown.trigger();
    let mut drained = pin!(shutdown.wait_drained_async());
    assert!(drained.as_mut().poll(&mut cx).is_pending());
    drop(guard);
    match drained.as_mut().poll(&mut cx) {
        Poll::Ready(report) => assert_eq!(report.panicked, 0),
        Poll::Pending => panic!("drained future not ready after the last guard"),
    }
}

#[test]
fn futures_outlive_every_handle() {
    bounded(10, || {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let triggered = child.wait_triggered_async();
        let drained = child.wait_drained_async();
        drop(child); // only the futures reach the child latch now
        root.trigger();
        futures_executor::block_on(triggered);
        let report = futures_executor::block_on(drained);
        assert_eq!(report.panicked, 0);
    });
}

#[test]
fn guard_future_outlives_the_guard() {
    bounded(10, || {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        let triggered = guard.wait_triggered_async();
        drop(guard);
        let t = std::thread::spawn(move || futures_executor::block_on(triggered));
        shutdown.trigger();
        t.join().unwrap();
    });
}

/// A waker that reads the reason, and triggers again, inline when woken: the
/// trigger wakes it after releasing its own lock, so nothing deadlocks.
#[test]
fn a_waker_that_calls_back_into_the_latch_inline_does_not_deadlock() {
    struct Inline {
        shutdown: Shutdown,
        woke: std::sync::atomic::AtomicBool,
    }
    impl std::task::Wake for Inline {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            assert_eq!(self.shutdown.reason().as_deref(), Some("deploy"));
            assert!(!self.shutdown.trigger());
            let _ = self.shutdown.wait_drained_timeout(Duration::ZERO);
            self.woke.store(true, Ordering::SeqCst);
        }
    }
    bounded(30, || {
        let shutdown = Shutdown::new();
        let inline = Arc::new(Inline {
            shutdown: shutdown.clone(),
            woke: std::sync::atomic::AtomicBool::new(false),
        });
        let waker = Waker::from(inline.clone());
        let mut cx = Context::from_waker(&waker);
        let mut triggered = pin!(shutdown.wait_triggered_async());
        assert!(triggered.as_mut().poll(&mut cx).is_pending());
        let _guard = shutdown.guard().unwrap();
        let mut drained = pin!(shutdown.wait_drained_async());
        assert!(drained.as_mut().poll(&mut cx).is_pending());
        assert!(shutdown.trigger_with_reason("deploy"));
        assert!(inline.woke.load(Ordering::SeqCst));
        assert!(triggered.as_mut().poll(&mut cx).is_ready());
    });
}
