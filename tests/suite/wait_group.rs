//! `WaitGroup` and `Token`: counting, blocking, timed waits, panics, lifetimes.
#![allow(clippy::disallowed_types)] // tests use std atomics directly

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{bounded, quiet_panics, SETTLE};
use quiescent::{Timeout, Token, WaitGroup};

#[test]
fn token_is_one_word_and_everything_is_send_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<WaitGroup>();
    send_sync::<Token>();
    fn send<T: Send>() {}
    send::<quiescent::futures::Wait<'static>>();
    assert_eq!(std::mem::size_of::<Token>(), std::mem::size_of::<usize>());
    assert_eq!(
        std::mem::size_of::<Option<Token>>(),
        std::mem::size_of::<usize>()
    );
}

#[test]
fn count_follows_tokens_and_clones() {
    let wg = WaitGroup::new();
    assert_eq!(wg.count(), 0);
    let a = wg.token();
    let b = a.clone();
    let c = wg.token();
    assert_eq!((wg.count(), a.count()), (3, 3));
    drop(b);
    assert_eq!(c.count(), 2);
    drop((a, c));
    assert_eq!(wg.count(), 0);
}

#[test]
fn wait_with_no_tokens_returns_at_once() {
    bounded(5, || {
        let mut wg = WaitGroup::new();
        wg.wait();
        assert!(wg.wait_timeout(Duration::ZERO).is_ok());
    });
}

#[test]
fn wait_blocks_until_the_last_token_drops() {
    bounded(10, || {
        let mut wg = WaitGroup::new();
        let first = wg.token();
        let second = first.clone();
        let (done_tx, done_rx) = mpsc::channel();
        let waiter = thread::spawn(move || {
            wg.wait();
            done_tx.send(wg.count()).unwrap();
            wg
        });
        thread::sleep(SETTLE);
        assert_eq!(done_rx.try_recv(), Err(mpsc::TryRecvError::Empty));
        drop(first);
        thread::sleep(SETTLE);
        assert_eq!(
            done_rx.try_recv(),
            Err(mpsc::TryRecvError::Empty),
            "wait returned while a token was still alive"
        );
        drop(second);
        assert_eq!(done_rx.recv_timeout(Duration::from_secs(5)), Ok(0));
        waiter.join().unwrap();
    });
}

#[test]
fn reusable_for_many_rounds() {
    bounded(30, || {
        let mut wg = WaitGroup::new();
        let finished = Arc::new(AtomicUsize::new(0));
        for round in 1..=300 {
            for _ in 0..4 {
                let finished = finished.clone();
                wg.spawn(move || {
                    finished.fetch_add(1, Ordering::Relaxed);
                });
            }
            wg.wait();
            assert_eq!(wg.count(), 0);
            assert_eq!(finished.load(Ordering::Relaxed), round * 4);
        }
    });
}

#[test]
fn writes_before_dropping_a_token_are_visible_after_wait() {
    bounded(30, || {
        let mut wg = WaitGroup::new();
        for _ in 0..200 {
            let slots: Arc<Vec<AtomicUsize>> =
                Arc::new((0..8).map(|_| AtomicUsize::new(0)).collect());
            for i in 0..8 {
                let slots = slots.clone();
                wg.spawn(move || slots[i].store(i + 1, Ordering::Relaxed));
            }
            wg.wait();
            // Relaxed loads: only the token's Release drop and wait's Acquire
            // load order them after the stores.
            for (i, slot) in slots.iter().enumerate() {
                assert_eq!(slot.load(Ordering::Relaxed), i + 1);
            }
        }
    });
}

#[test]
fn panicking_holders_release_and_are_counted() {
    quiet_panics();
    bounded(10, || {
        let mut wg = WaitGroup::new();
        let handles: Vec<_> = (0..8)
            .map(|i| {
                wg.spawn(move || {
                    if i % 3 == 0 {
                        panic!("deliberate panic in worker {i}");
                    }
                })
            })
            .collect();
        wg.wait();
        assert_eq!(wg.count(), 0);
        assert_eq!(wg.panicked(), 3);
        let failed = handles
            .into_iter()
            .map(|h| h.join().is_err())
            .filter(|e| *e)
            .count();
        assert_eq!(failed, 3);
    });
}

#[test]
fn timeouts_accept_zero_and_max() {
    bounded(10, || {
        let mut wg = WaitGroup::new();
        let token = wg.token();
        assert_eq!(
            wg.wait_timeout(Duration::ZERO),
            Err(Timeout { remaining: 1 })
        );
        let start = Instant::now();
        assert_eq!(
            wg.wait_timeout(Duration::from_millis(30)),
            Err(Timeout { remaining: 1 })
        );
        assert!(start.elapsed() >= Duration::from_millis(30));
        // A deadline in the past only checks.
        assert_eq!(
            wg.wait_deadline(Instant::now() - Duration::from_millis(1).min(start.elapsed())),
            Err(Timeout { remaining: 1 })
        );
        // Duration::MAX cannot be added to now: it means "no deadline".
        let dropper = thread::spawn(move || {
            thread::sleep(SETTLE);
            drop(token);
        });
        assert_eq!(wg.wait_timeout(Duration::MAX), Ok(()));
        dropper.join().unwrap();
        assert_eq!(wg.wait_timeout(Duration::ZERO), Ok(()));
        assert_eq!(wg.wait_deadline(Instant::now()), Ok(()));
    });
}

#[test]
fn tokens_outlive_the_group() {
    bounded(10, || {
        let wg = WaitGroup::new();
        let token = wg.token();
        drop(wg);
        let clone = token.clone();
        assert_eq!(clone.count(), 2);
        drop(token);
        assert_eq!(clone.count(), 1);
        let t = thread::spawn(move || drop(clone));
        t.join().unwrap();
    });
}

#[test]
fn forgetting_a_token_makes_bounded_waits_report_it() {
    // Documented behaviour: a leaked token is a live token.
    let mut wg = WaitGroup::new();
    std::mem::forget(wg.token());
    assert_eq!(
        wg.wait_timeout(Duration::from_millis(5)),
        Err(Timeout { remaining: 1 })
    );
    assert_eq!(wg.count(), 1);
}

#[test]
fn tokens_can_be_minted_from_scoped_threads() {
    bounded(10, || {
        let mut wg = WaitGroup::new();
        let total = AtomicUsize::new(0);
        let keep: Vec<Token> = thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        total.fetch_add(1, Ordering::Relaxed);
                        wg.token()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(wg.count(), 4);
        assert_eq!(total.load(Ordering::Relaxed), 4);
        drop(keep);
        wg.wait();
    });
}

#[test]
fn spawn_counts_exactly_even_when_waiting_at_once() {
    bounded(20, || {
        let mut wg = WaitGroup::new();
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let ran = ran.clone();
            wg.spawn(move || {
                thread::yield_now();
                ran.fetch_add(1, Ordering::Relaxed);
            });
        }
        wg.wait();
        assert_eq!(ran.load(Ordering::Relaxed), 100);
    });
}

#[test]
fn debug_shows_the_count() {
    let wg = WaitGroup::new();
    let token = wg.token();
    assert_eq!(format!("{wg:?}"), "WaitGroup { count: 1, panicked: 0 }");
    assert_eq!(format!("{token:?}"), "Token { count: 1 }");
}

#[test]
fn timeout_is_a_proper_error() {
    fn error<E: std::error::Error + Clone + PartialEq + Send + Sync + 'static>(_: &E) {}
    let t = Timeout { remaining: 2 };
    error(&t);
    assert_eq!(t.to_string(), "timed out with 2 tokens still alive");
}
