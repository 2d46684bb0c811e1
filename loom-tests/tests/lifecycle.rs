//! Loom models of the lifecycle: the cause decided with the election, a
//! child's cause its ancestor's, and the readiness notice racing admission,
//! children and the trigger.
#![cfg(loom)]

use loom::thread;
use loom_tests::exhaustive;
use quiescent::{Cause, Shutdown};

fn requested(text: &'static str) -> Option<Cause> {
    Some(Cause::Requested(Some(text.into())))
}

/// Two triggers with different causes race on a root, a third on its child:
/// each latch's cause is the one of the call that won its election, and a
/// child that the root's cascade closed reports the root's cause.
#[test]
fn first_cause_wins_and_a_child_reports_its_ancestors() {
    exhaustive(|| {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let (r, c) = (root.clone(), child.clone());
        let other = thread::spawn(move || (r.trigger_with_reason("b"), c.trigger_with_reason("c")));
        let a_won = root.trigger_with_reason("a");
        let (b_won, c_won) = other.join().unwrap();
        assert!(a_won != b_won, "exactly one trigger of the root wins");
        let root_cause = if a_won {
            requested("a")
        } else {
            requested("b")
        };
        assert_eq!(root.cause(), root_cause);
        if c_won {
            assert_eq!(child.cause(), requested("c"));
        } else {
            assert_eq!(
                child.cause(),
                root_cause,
                "the cascade's cause is the root's"
            );
        }
    });
}

/// A guard's admission races the main thread's `announce` then `trigger`:
/// announcing refuses nothing, so the guard is admitted exactly when it came
/// before the trigger, and then the drain counts it; whatever the order, it
/// reads announced at the end.
#[test]
fn announce_then_trigger_vs_guard() {
    exhaustive(|| {
        let root = Shutdown::new();
        let admitter = {
            let root = root.clone();
            thread::spawn(move || root.guard().ok())
        };
        root.announce();
        root.trigger();
        let guard = admitter.join().unwrap();
        assert!(root.is_announced());
        if let Some(guard) = &guard {
            assert!(guard.is_announced() && guard.is_triggered());
        }
        // An admitted guard is counted by the drain: it is open while it lives.
        assert_eq!(root.try_wait_drained().is_some(), guard.is_none());
        drop(guard);
        assert!(root.try_wait_drained().is_some());
    });
}

/// `announce` races a child's creation, with no trigger: the child must be
/// announced whichever comes first (the check at birth, under the parent's
/// child-list lock, against the cascade that reads that list).
#[test]
fn announce_vs_child_creation() {
    exhaustive(|| {
        let root = Shutdown::new();
        let maker = {
            let root = root.clone();
            thread::spawn(move || root.child().unwrap())
        };
        root.announce();
        let child = maker.join().unwrap();
        assert!(child.is_announced(), "a child missed the notice");
        assert!(child.guard().is_ok(), "announcing refuses nothing");
    });
}

/// A task waits for a child's announcement while the root announces: the
/// cascade must wake it (a child's waiters are on the child's list).
#[test]
fn announced_future_on_a_child_vs_parent_announce() {
    exhaustive(|| {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let notice = child.wait_announced_async();
        let waiter = thread::spawn(move || loom::future::block_on(notice));
        root.announce();
        waiter.join().unwrap();
        assert!(child.is_announced());
    });
}
