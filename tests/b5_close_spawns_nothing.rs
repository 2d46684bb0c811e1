//! B5 — a close path spawned ~154k goroutines, and nobody could name the one
//! that was stuck (coder/websocket #434).
//!
//! Waiting here spawns nothing (the process's thread count is checked), and a
//! bounded shutdown names each stuck guard, where it was made and how long it
//! has been held.

#![allow(clippy::disallowed_types)]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::Duration;

use common::bounded;
use quiescent::{Shutdown, WaitGroup};

/// The tests here run one at a time, so the thread count is not disturbed by
/// a sibling test's threads.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

#[test]
#[cfg(target_os = "linux")]
fn ten_thousand_pending_waits_spawn_no_thread() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    bounded(20, || {
        let shutdown = Shutdown::new();
        let _stuck = shutdown.guard().unwrap();
        let mut wg = WaitGroup::new();
        let _token = wg.token();
        let before = threads();
        let mut cx = Context::from_waker(Waker::noop());
        let mut pending: Vec<Pin<Box<dyn Future<Output = ()> + Send>>> = Vec::new();
        for _ in 0..10_000 {
            let mut drained = Box::pin(shutdown.wait_drained_async());
            assert!(drained.as_mut().poll(&mut cx).is_pending());
            let mut triggered = Box::pin(shutdown.wait_triggered_async());
            assert!(triggered.as_mut().poll(&mut cx).is_pending());
            pending.push(triggered);
            pending.push(Box::pin(async move {
                drained.await;
            }));
        }
        for _ in 0..100 {
            assert!(wg.wait_timeout(Duration::ZERO).is_err());
            assert!(shutdown.wait_drained_timeout(Duration::ZERO).is_err());
        }
        // `<=`: a thread of the test harness may still be exiting from the
        // previous test; none may appear.
        let after = threads();
        assert!(
            after <= before,
            "waiting created threads: {before} -> {after}"
        );
        drop(pending);
    });
}

#[test]
fn a_bounded_shutdown_names_the_stuck_task() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    bounded(20, || {
        let conn = Shutdown::new();
        let readers: Vec<_> = (0..3)
            .map(|i| {
                let guard = conn.guard_named(format!("reader-{i}")).unwrap();
                std::thread::spawn(move || {
                    guard.wait_triggered();
                    drop(guard);
                })
            })
            .collect();
        // The one that does not listen.
        let stuck = conn.guard_named("ping-loop").unwrap();
        let err = conn
            .shutdown_timeout(Duration::from_millis(200))
            .unwrap_err();
        assert_eq!(err.remaining, 1);
        assert_eq!(err.names, ["ping-loop"]);
        assert!(err
            .to_string()
            .contains("\"ping-loop\" (tests/b5_close_spawns_nothing.rs:"));
        for r in readers {
            r.join().unwrap();
        }
        drop(stuck);
        assert!(conn.wait_drained_timeout(Duration::ZERO).is_ok());
    });
}
