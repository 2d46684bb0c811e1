//! Loom models of the promises at the edges (issue "promises"): wakers that
//! reenter or panic, a failing guard with no handle left, and a spawned
//! thread that is one guard and whose panic's message always reaches the
//! drain. Each has a mutant in `mutants.sh` that puts the defect back.
#![cfg(loom)]

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Waker};

use loom::thread;
use loom_tests::{exhaustive, quiet_deliberate_panics, InlineTask, PanickingWaker};
use quiescent::Shutdown;

/// A drain waiter whose waker polls it inline, while another thread forces
/// the latch (which wakes the drain's waiters before the drain) and the
/// main thread drops the last guard. Woken by the force, the inline poll
/// finds the latch not drained and registers again from inside the wake-up:
/// a wake-up that ran under the list's lock would deadlock there.
#[test]
fn reentrant_waker_registers_again_during_force() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        let task = InlineTask::start(shutdown.wait_drained_async());
        let forcer = {
            let shutdown = shutdown.clone();
            thread::spawn(move || {
                shutdown.force();
            })
        };
        drop(guard);
        forcer.join().unwrap();
        assert!(task.is_done(), "the drain woke the inline task");
    });
}

/// A waker that panics, and a thread blocked in `wait_drained` on the same
/// latch: the last guard's drop must wake the blocked thread (and give back
/// every reference: the model's leak check) before the panic comes back.
#[test]
fn panicking_waker_vs_blocked_drainer() {
    quiet_deliberate_panics();
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        shutdown.trigger();
        let mut bad = shutdown.wait_drained_async();
        let waker = Waker::from(Arc::new(PanickingWaker));
        assert!(Pin::new(&mut bad)
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        let drainer = {
            let shutdown = shutdown.clone();
            thread::spawn(move || shutdown.wait_drained())
        };
        let dropped = catch_unwind(AssertUnwindSafe(move || drop(guard)));
        assert!(dropped.is_err(), "the waker's panic reaches the dropper");
        assert_eq!(drainer.join().unwrap().panicked, 0);
        drop(bad);
    });
}

/// `Guard::fail` on a child while every handle of the tree is dropped on the
/// main thread: the cascade still reaches the grandchild's guard.
#[test]
fn guard_fail_with_no_handle_left() {
    exhaustive(|| {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let grandchild = child.child().unwrap();
        let below = grandchild.guard().unwrap();
        let failing = child.guard().unwrap();
        let failer = thread::spawn(move || failing.fail("deliberate"));
        drop((root, child, grandchild));
        failer.join().unwrap();
        assert!(below.is_triggered());
    });
}

/// A spawned thread (the real spawn body and wrapper, on a loom thread) is
/// one guard: `count` says 1 while it runs, and the drain waits for it.
#[test]
fn spawned_thread_is_one_guard() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let worker = shutdown
            .__loom_spawn_named("worker", |guard| guard.wait_triggered())
            .unwrap();
        assert_eq!(shutdown.count(), 1);
        assert_eq!(shutdown.holders().count, 1);
        shutdown.trigger();
        assert_eq!(shutdown.wait_drained().panicked, 0);
        worker.join().unwrap().unwrap();
    });
}

/// A spawned thread's named guard is dropped by its panic while the main
/// thread triggers and drains: whatever the order, the drain's report has
/// the panic's message (the spawn guard's release waits for it).
#[test]
fn spawned_panic_message_reaches_the_drain() {
    quiet_deliberate_panics();
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let worker = shutdown
            .__loom_spawn_named("worker", |guard| {
                let _guard = guard;
                panic!("deliberate: boom");
            })
            .unwrap();
        shutdown.trigger();
        let report = shutdown.wait_drained();
        assert_eq!(report.panicked, 1);
        assert_eq!(report.failures.len(), 1, "{report:?}");
        assert_eq!(report.failures[0].reason, "deliberate: boom");
        assert!(worker.join().unwrap().is_err());
    });
}

/// Drains its latch when dropped (during the unwinding of a panic, here).
struct DrainOnDrop(Shutdown);

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        self.0.wait_drained();
    }
}

/// A spawned thread's panic drops its guard, then a `Drop` of the same
/// unwinding drains the thread's own latch: the deferred count must not hold
/// that drain up (it would wait for itself).
///
/// The trigger comes from the thread itself, and the main thread only joins:
/// loom runs a model's threads on one OS thread, so a thread that ran (and
/// took a lock) while another is mid-unwinding would see `panicking()` and
/// poison loom's inner mutex, a limit of loom, not of the crate.
#[test]
fn spawned_unwinding_drains_its_own_latch() {
    quiet_deliberate_panics();
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let inner = shutdown.clone();
        let worker = shutdown
            .__loom_spawn_named("worker", move |guard| {
                inner.trigger();
                let _drain = DrainOnDrop(inner);
                let _guard = guard;
                panic!("deliberate: boom");
            })
            .unwrap();
        assert!(worker.join().unwrap().is_err());
        assert_eq!(shutdown.wait_drained().panicked, 1);
    });
}
