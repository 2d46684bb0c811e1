//! The second phase: `force`, `Guard::is_forced` / `wait_forced_async`, and
//! `shutdown_phased` (blocking and async), under threads, tokio and
//! futures-executor.
#![allow(clippy::disallowed_types)] // tests use std sync types directly

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::bounded;
use quiescent::Shutdown;

#[test]
fn force_triggers_first_and_reaches_the_whole_subtree() {
    let root = Shutdown::new();
    let child = root.child().unwrap();
    let grandchild = child.child().unwrap();
    let guard = grandchild.guard().unwrap();
    drop(child); // the cascade reaches the grandchild without the middle handle
    assert!(!root.is_triggered() && !guard.is_forced());
    assert!(root.force());
    assert!(root.is_triggered() && root.is_forced());
    assert!(grandchild.is_forced() && guard.is_forced());
    assert!(!root.force(), "forcing is idempotent");
    // Forcing refuses nothing more than the trigger and counts nothing:
    assert!(root.guard().is_err());
    assert_eq!(root.count(), 1);
    drop(guard);
    let report = root.wait_drained_timeout(Duration::from_secs(5)).unwrap();
    assert!(report.forced);
}

#[test]
fn a_child_forced_alone_leaves_its_parent_unforced() {
    let root = Shutdown::new();
    let child = root.child().unwrap();
    child.force();
    assert!(child.is_forced() && !root.is_forced() && !root.is_triggered());
}

#[test]
fn shutdown_phased_does_not_force_when_the_grace_is_enough() {
    bounded(30, || {
        let shutdown = Shutdown::new();
        let worker = shutdown.spawn(|guard| guard.wait_triggered()).unwrap();
        let report = shutdown
            .shutdown_phased(Duration::from_secs(10), Duration::from_secs(10))
            .unwrap();
        assert!(!report.forced);
        assert!(!shutdown.is_forced());
        assert!(!report.to_string().contains("forced"), "{report}");
        worker.join().unwrap();
    });
}

#[test]
fn shutdown_phased_forces_a_holder_stuck_mid_message() {
    bounded(30, || {
        let shutdown = Shutdown::new();
        let abandoned = Arc::new(AtomicBool::new(false));
        let worker = {
            let abandoned = abandoned.clone();
            shutdown
                .spawn_named("writer", move |guard| {
                    guard.wait_triggered();
                    // A long message: finished only if not forced.
                    while !guard.is_forced() {
                        thread::sleep(Duration::from_millis(1));
                    }
                    abandoned.store(true, Ordering::SeqCst);
                })
                .unwrap()
        };
        let report = shutdown
            .shutdown_phased(Duration::from_millis(20), Duration::from_secs(10))
            .unwrap();
        assert!(report.forced);
        assert!(abandoned.load(Ordering::SeqCst));
        assert!(report.to_string().contains(", forced"), "{report}");
        worker.join().unwrap();
    });
}

#[test]
fn shutdown_phased_names_who_outlived_both_phases() {
    bounded(30, || {
        let shutdown = Shutdown::new();
        let stuck = shutdown.guard_named("ignores-everything").unwrap();
        let s = shutdown
            .shutdown_phased(Duration::from_millis(5), Duration::from_millis(5))
            .unwrap_err();
        assert!(s.forced);
        assert_eq!(s.names, ["ignores-everything"]);
        assert!(
            s.to_string()
                .contains("after shutdown even after forcing: \"ignores-everything\""),
            "{s}"
        );
        drop(stuck);
        // Zero phases only check.
        assert!(shutdown
            .shutdown_phased(Duration::ZERO, Duration::ZERO)
            .is_ok());
    });
}

#[test]
fn wait_forced_async_under_tokio_abandons_work_in_the_hard_phase() {
    bounded(30, || {
        let rt = common::multi_thread_runtime();
        rt.block_on(async {
            let shutdown = Shutdown::new();
            let guard = shutdown.guard_named("conn").unwrap();
            let conn = tokio::spawn(async move {
                guard.wait_triggered_async().await;
                // Finish the message in flight, unless forced.
                tokio::select! {
                    _ = guard.wait_forced_async() => "abandoned",
                    _ = std::future::pending::<()>() => "finished",
                }
            });
            let grace = tokio::time::sleep(Duration::from_millis(20));
            let report = shutdown
                .shutdown_phased_async(grace, || tokio::time::sleep(Duration::from_secs(10)))
                .await
                .unwrap();
            assert!(report.forced);
            assert_eq!(conn.await.unwrap(), "abandoned");
        });
    });
}

#[test]
fn shutdown_phased_async_without_forcing_and_with_stragglers() {
    bounded(30, || {
        // Drained within the grace: never forced, the hard deadline never made.
        let shutdown = Shutdown::new();
        let made = Arc::new(AtomicBool::new(false));
        let m = made.clone();
        let report = futures_executor::block_on(shutdown.shutdown_phased_async(
            std::future::pending::<()>(),
            move || {
                m.store(true, Ordering::SeqCst);
                std::future::pending::<()>()
            },
        ))
        .unwrap();
        assert!(!report.forced && !made.load(Ordering::SeqCst));

        // Both phases over: the stragglers, forced.
        let shutdown = Shutdown::new();
        let _stuck = shutdown.guard_named("stuck").unwrap();
        let s = futures_executor::block_on(shutdown.shutdown_phased_async(async {}, || async {}))
            .unwrap_err();
        assert!(s.forced && shutdown.is_forced());
        assert_eq!(s.names, ["stuck"]);
    });
}

#[test]
fn a_forced_wait_registered_before_the_force_is_woken() {
    bounded(30, || {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        let forced = guard.wait_forced_async();
        let t = {
            let shutdown = shutdown.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(10));
                shutdown.force();
            })
        };
        futures_executor::block_on(forced);
        t.join().unwrap();
        assert!(format!("{:?}", guard.wait_forced_async()).contains("forced: true"));
    });
}

/// `force` during the grace phase starts the hard phase at once: a holder
/// that stops only when forced lets a 60 s grace end within the test's
/// bound, blocking and async (the signal policy's second signal relies on
/// it). Without it, the grace would run out first and the test time out.
#[test]
fn force_during_the_grace_starts_the_hard_phase_now() {
    bounded(20, || {
        let shutdown = Shutdown::new();
        let worker = shutdown
            .spawn(|guard| {
                while !guard.is_forced() {
                    thread::sleep(Duration::from_millis(1));
                }
            })
            .unwrap();
        let forcer = {
            let shutdown = shutdown.clone();
            thread::spawn(move || {
                shutdown.wait_triggered();
                thread::sleep(common::SETTLE);
                shutdown.force();
            })
        };
        let report = shutdown
            .shutdown_phased(Duration::from_secs(60), Duration::MAX)
            .unwrap();
        assert!(report.forced);
        worker.join().unwrap();
        forcer.join().unwrap();

        // The hard phase counts from the forcing: zero gives up at once.
        let shutdown = Shutdown::new();
        let _stuck = shutdown.guard_named("stuck").unwrap();
        let forcer = {
            let shutdown = shutdown.clone();
            thread::spawn(move || {
                shutdown.wait_triggered();
                shutdown.force();
            })
        };
        let stragglers = shutdown
            .shutdown_phased(Duration::from_secs(60), Duration::ZERO)
            .unwrap_err();
        assert!(stragglers.forced);
        assert_eq!(stragglers.names, ["stuck"]);
        forcer.join().unwrap();

        // Async: a grace that never completes ends at the forcing.
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        let holder = thread::spawn(move || {
            futures_executor::block_on(guard.wait_forced_async());
            drop(guard);
        });
        let forcer = {
            let shutdown = shutdown.clone();
            thread::spawn(move || {
                shutdown.wait_triggered();
                thread::sleep(common::SETTLE);
                shutdown.force();
            })
        };
        let report = futures_executor::block_on(
            shutdown
                .shutdown_phased_async(std::future::pending::<()>(), std::future::pending::<()>),
        )
        .unwrap();
        assert!(report.forced);
        holder.join().unwrap();
        forcer.join().unwrap();
    });
}
