//! Loom models an adversarial review of the promises change wrote: panics
//! and prunes with no handle left, across a child and its root.
#![cfg(loom)]

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Waker};

use loom::thread;
use loom_tests::{exhaustive, quiet_deliberate_panics, PanickingWaker};
use quiescent::Shutdown;

/// A panicking waker on a *child's* drain; the last guard of the child is
/// dropped while another thread blocks on the root's drain and every handle
/// is dropped: the catch path of `finish_release` must release the root's
/// count itself and give back every reference (leak check).
#[test]
fn adv_panicking_child_waker_vs_root_drainer_no_handles() {
    quiet_deliberate_panics();
    exhaustive(|| {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let guard = child.guard().unwrap();
        root.trigger();
        let mut bad = child.wait_drained_async();
        let waker = Waker::from(Arc::new(PanickingWaker));
        assert!(Pin::new(&mut bad)
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        let drainer = {
            let root = root.clone();
            thread::spawn(move || root.wait_drained())
        };
        drop(child);
        drop(root);
        let dropped = catch_unwind(AssertUnwindSafe(move || drop(guard)));
        assert!(dropped.is_err());
        assert_eq!(drainer.join().unwrap().panicked, 0);
        drop(bad);
    });
}

/// A child's spawned thread panics (its guard deferred to the wrapper) while
/// the main thread drops every handle and drains the root through a future
/// made before: the root's report has the message, and the deferred count
/// goes on the right latches.
#[test]
fn adv_child_spawn_panic_vs_root_drain_no_handles() {
    quiet_deliberate_panics();
    exhaustive(|| {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let worker = child
            .__loom_spawn_named("worker", |guard| {
                let _guard = guard;
                panic!("deliberate: boom");
            })
            .unwrap();
        root.trigger();
        drop(child);
        let report = root.wait_drained();
        drop(root);
        assert_eq!(report.panicked, 1, "{report:?}");
        assert_eq!(report.failures.len(), 1, "{report:?}");
        assert_eq!(report.failures[0].reason, "deliberate: boom");
        assert!(worker.join().unwrap().is_err());
    });
}

/// A vital guard of a middle latch fails on one thread while the main thread
/// drops the middle's only handle and creates a new child of the root
/// (pruning dead links): the grandchild's guard is triggered, the root not.
#[test]
fn adv_vital_fail_vs_middle_handle_drop_and_prune() {
    exhaustive(|| {
        let root = Shutdown::new();
        let middle = root.child().unwrap();
        let grandchild = middle.child().unwrap();
        let below = grandchild.guard().unwrap();
        drop(grandchild);
        let failing = middle.guard().unwrap().vital();
        let failer = thread::spawn(move || failing.fail("deliberate"));
        drop(middle);
        let other = root.child().unwrap();
        failer.join().unwrap();
        assert!(below.is_triggered());
        assert!(!root.is_triggered() && !other.is_triggered());
    });
}
