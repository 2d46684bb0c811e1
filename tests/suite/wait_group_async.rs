//! `WaitGroup::wait_async` under tokio's multi-thread runtime and under
//! futures-executor, an independent second executor.

#![allow(clippy::disallowed_types)] // tests use std atomics directly
use crate::common;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::bounded;
use quiescent::WaitGroup;

#[test]
fn tokio_multi_thread_waits_for_every_task() {
    bounded(20, || {
        let rt = common::multi_thread_runtime();
        rt.block_on(async {
            let mut wg = WaitGroup::new();
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            for i in 0..200 {
                let token = wg.token();
                let tx = tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(i % 7)).await;
                    tx.send(i).unwrap();
                    drop(token);
                });
            }
            drop(tx);
            tokio::time::timeout(Duration::from_secs(10), wg.wait_async())
                .await
                .expect("wait_async did not complete");
            assert_eq!(wg.count(), 0);
            // Every task finished its send before its token dropped.
            let mut seen = 0;
            while rx.try_recv().is_ok() {
                seen += 1;
            }
            assert_eq!(seen, 200);
        });
    });
}

#[test]
fn futures_executor_thread_pool_waits_for_every_task() {
    bounded(20, || {
        let pool = futures_executor::ThreadPool::builder()
            .pool_size(2)
            .create()
            .unwrap();
        let mut wg = WaitGroup::new();
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for _ in 0..100 {
            let token = wg.token();
            let done = done.clone();
            pool.spawn_ok(async move {
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                drop(token);
            });
        }
        futures_executor::block_on(wg.wait_async());
        assert_eq!(done.load(std::sync::atomic::Ordering::Relaxed), 100);
    });
}

#[test]
fn wait_async_is_ready_at_once_without_tokens() {
    let mut wg = WaitGroup::new();
    let mut fut = pin!(wg.wait_async());
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(()));
}

struct CountingWaker(std::sync::atomic::AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl CountingWaker {
    fn woken(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn a_new_waker_replaces_the_old_one() {
    let mut wg = WaitGroup::new();
    let token = wg.token();
    let first = Arc::new(CountingWaker(Default::default()));
    let second = Arc::new(CountingWaker(Default::default()));
    {
        let mut fut = pin!(wg.wait_async());
        let w1 = Waker::from(first.clone());
        let w2 = Waker::from(second.clone());
        assert!(fut
            .as_mut()
            .poll(&mut Context::from_waker(&w1))
            .is_pending());
        assert!(fut
            .as_mut()
            .poll(&mut Context::from_waker(&w2))
            .is_pending());
        drop(token);
        assert_eq!(second.woken(), 1, "the latest waker must be woken");
        assert_eq!(first.woken(), 0, "a replaced waker must not be woken");
        assert!(fut.as_mut().poll(&mut Context::from_waker(&w2)).is_ready());
    }
    assert_eq!(wg.count(), 0);
}

#[test]
fn a_dropped_wait_cancels_cleanly_and_waiting_again_works() {
    bounded(10, || {
        let mut wg = WaitGroup::new();
        let token = wg.token();
        let waker = Arc::new(CountingWaker(Default::default()));
        {
            let mut fut = pin!(wg.wait_async());
            let w = Waker::from(waker.clone());
            assert!(fut.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
        } // dropped while pending
        drop(token);
        assert_eq!(waker.woken(), 0, "a dropped future must not be woken");
        futures_executor::block_on(wg.wait_async());
        let again = wg.token();
        let t = std::thread::spawn(move || drop(again));
        futures_executor::block_on(wg.wait_async());
        t.join().unwrap();
    });
}

#[test]
fn wait_future_is_send_and_runs_on_tokio_spawn() {
    bounded(10, || {
        let rt = common::multi_thread_runtime();
        rt.block_on(async {
            let mut wg = WaitGroup::new();
            let token = wg.token();
            let waiter = tokio::spawn(async move {
                wg.wait_async().await;
                wg.count()
            });
            tokio::task::yield_now().await;
            drop(token);
            assert_eq!(waiter.await.unwrap(), 0);
        });
    });
}
