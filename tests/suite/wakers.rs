//! Wakers are user code: they may poll or drop their own future inline,
//! trigger, take a guard, read a report, or panic. None of that may deadlock
//! the thread that wakes them, lose another waiter's wake-up, leak a
//! reference or abort the process (DESIGN.md, semantics 14).
//!
//! Every test is bounded: a deadlock fails within seconds.
#![allow(clippy::disallowed_types)] // tests use std sync types directly

use crate::common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::Waker;
use std::thread;
use std::time::Duration;

use common::{bounded, poll_pending, quiet_panics, Inline, Panicking};
use quiescent::{Shutdown, WaitGroup};

/// The last guard's drop wakes a `Drained` whose waker polls it inline: the
/// drop returns, and the inline poll gets the report.
#[test]
fn a_waker_may_poll_its_drained_future_inline() {
    bounded(10, || {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        shutdown.trigger_with_reason("inline");
        let task = Inline::start(shutdown.wait_drained_async(), false);
        drop(guard);
        let report = task
            .take()
            .expect("polled to completion inside the wake-up");
        assert_eq!(report.reason.as_deref(), Some("inline"));
    });
}

/// The same, dropping the future inside the wake-up instead.
#[test]
fn a_waker_may_drop_its_future_inline() {
    bounded(10, || {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        shutdown.trigger();
        let drained = Inline::start(shutdown.wait_drained_async(), true);
        let forced = Inline::start(guard.wait_forced_async(), true);
        let triggered_root = Shutdown::new();
        let triggered = Inline::start(triggered_root.wait_triggered_async(), true);
        triggered_root.trigger();
        shutdown.force();
        drop(guard);
        for (gone, what) in [
            (drained.is_gone(), "Drained"),
            (forced.is_gone(), "Forced"),
            (triggered.is_gone(), "Triggered"),
        ] {
            assert!(gone, "{what} not dropped inside its wake-up");
        }
    });
}

/// Forcing wakes the drain's waiters (a phased drain's grace ends early), so
/// a `Drained` whose waker polls it inline finds the latch not yet drained
/// and registers again, from inside the wake-up: the registration must not
/// meet a lock held by the waking thread.
#[test]
fn a_waker_may_register_again_from_inside_its_wake_up() {
    bounded(10, || {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        let task = Inline::start(shutdown.wait_drained_async(), false);
        shutdown.force();
        assert_eq!(task.woken(), 1);
        assert!(task.take().is_none(), "not drained: still pending");
        drop(guard);
        assert_eq!(task.woken(), 2, "registered again and woken by the drain");
        assert!(task.take().unwrap().forced);
    });
}

/// Forced and Triggered futures polled inline by the forcing and
/// triggering threads, on a latch and its child.
#[test]
fn trigger_and_force_wakers_may_poll_inline() {
    bounded(10, || {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let guard = child.guard().unwrap();
        let triggered = Inline::start(guard.wait_triggered_async(), false);
        let forced = Inline::start(guard.wait_forced_async(), false);
        root.trigger();
        assert!(triggered.take().is_some());
        assert!(forced.take().is_none());
        root.force();
        assert!(forced.take().is_some());
    });
}

/// A WaitGroup's `Wait` polled inline by the last token's drop.
#[test]
fn a_waker_may_poll_a_wait_group_wait_inline() {
    bounded(10, || {
        // `Wait` borrows the group; the inline waker needs a `'static`
        // future, so the group lives in a box that is leaked for the test
        // and taken back at the end.
        let wg: &'static mut WaitGroup = Box::leak(Box::new(WaitGroup::new()));
        let token = wg.token();
        let ptr: *mut WaitGroup = wg;
        // SAFETY: `ptr` is the leaked box, still alive; the `Wait` borrows
        // it mutably, and nothing else touches it until the box is taken
        // back below, after the `Wait` is gone.
        let task = Inline::start(unsafe { &mut *ptr }.wait_async(), false);
        drop(token);
        assert!(task.take().is_some(), "polled to completion inline");
        assert!(task.is_gone());
        drop(task);
        // SAFETY: the `Wait` (the only borrow) is gone; the box was leaked
        // above and is taken back once.
        let mut wg = unsafe { Box::from_raw(ptr) };
        let again = wg.token();
        assert_eq!(wg.count(), 1, "the group works after the inline wait");
        drop(again);
        wg.wait();
    });
}

/// Wakers that act on the latch inline: trigger its parent, take a guard of
/// another latch, read holders, the reason and a bounded drain.
#[test]
fn a_waker_may_use_the_latch_inline() {
    struct Acts {
        root: Shutdown,
        child: Shutdown,
        seen: std::sync::Mutex<Vec<String>>,
    }
    impl std::task::Wake for Acts {
        fn wake(self: Arc<Self>) {
            let mut seen = self.seen.lock().unwrap();
            seen.push(format!("trigger={}", self.root.trigger()));
            seen.push(format!("guard={}", self.root.guard().is_ok()));
            seen.push(format!("holders={}", self.child.holders().count));
            seen.push(format!("reason={:?}", self.child.reason()));
            let drained = self.child.wait_drained_timeout(Duration::ZERO).is_ok();
            seen.push(format!("drained={drained}"));
        }
    }
    bounded(10, || {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let guard = child.guard().unwrap();
        let acts = Arc::new(Acts {
            root: root.clone(),
            child: child.clone(),
            seen: Default::default(),
        });
        let mut triggered = child.wait_triggered_async();
        poll_pending(&mut triggered, &Waker::from(acts.clone()));
        child.trigger_with_reason("child first");
        assert_eq!(
            *acts.seen.lock().unwrap(),
            [
                "trigger=true",
                "guard=false",
                "holders=1",
                "reason=Some(\"child first\")",
                "drained=false"
            ]
        );
        drop(guard);
        assert!(root.wait_drained_timeout(Duration::from_secs(5)).is_ok());
    });
}

/// A panicking `Drained` waker, a thread blocked in `wait_drained`, and a
/// second future: the last guard's drop resumes the waker's panic only after
/// every other waiter was woken and the references were given back.
#[test]
fn a_panicking_drain_waker_stops_no_other_waiter() {
    quiet_panics();
    bounded(10, || {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        // The panicking waker first, so the others come after it in the list.
        let mut bad = shutdown.wait_drained_async();
        poll_pending(&mut bad, &Waker::from(Arc::new(Panicking)));
        let blocked = {
            let shutdown = shutdown.clone();
            thread::spawn(move || shutdown.wait_drained())
        };
        thread::sleep(common::SETTLE); // let it block (not needed to pass)
        let good = Inline::start(shutdown.wait_drained_async(), false);
        shutdown.trigger();
        let dropped = catch_unwind(AssertUnwindSafe(move || drop(guard)));
        let panic = dropped.expect_err("the waker's panic reaches the dropping thread");
        assert_eq!(
            panic.downcast_ref::<&str>(),
            Some(&"deliberate: a waker panicked")
        );
        assert!(shutdown.try_wait_drained().is_some());
        assert_eq!(blocked.join().unwrap().panicked, 0, "blocked thread woken");
        assert!(good.take().is_some(), "the other future was woken");
        drop(bad);
    });
}

/// A child guard's release goes through the child's drain and then the
/// parent's: a panicking waker on the child's drain must not leave the
/// parent's count held (the parent would never drain).
#[test]
fn a_panicking_waker_leaves_no_count_on_an_ancestor() {
    quiet_panics();
    bounded(10, || {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let guard = child.guard().unwrap();
        root.trigger();
        let mut bad = child.wait_drained_async();
        poll_pending(&mut bad, &Waker::from(Arc::new(Panicking)));
        let root_drain = Inline::start(root.wait_drained_async(), false);
        assert!(catch_unwind(AssertUnwindSafe(move || drop(guard))).is_err());
        assert_eq!(root.count(), 0);
        assert!(root_drain.take().is_some(), "the root drained too");
        assert!(root.wait_drained_timeout(Duration::ZERO).is_ok());
    });
}

/// A panicking trigger waker: the trigger still closes the whole subtree
/// and wakes every other waiter (async and blocked) before the panic comes
/// back to the triggering thread.
#[test]
fn a_panicking_trigger_waker_stops_no_cascade() {
    quiet_panics();
    bounded(10, || {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let grandchild = child.child().unwrap();
        let mut bad = root.wait_triggered_async();
        poll_pending(&mut bad, &Waker::from(Arc::new(Panicking)));
        let mut bad_child = child.wait_triggered_async();
        poll_pending(&mut bad_child, &Waker::from(Arc::new(Panicking)));
        let good = Inline::start(grandchild.wait_triggered_async(), false);
        let blocked = {
            let grandchild = grandchild.clone();
            thread::spawn(move || grandchild.wait_triggered())
        };
        let triggered = catch_unwind(AssertUnwindSafe(|| root.trigger()));
        assert!(triggered.is_err(), "the first waker's panic comes back");
        assert!(child.is_triggered() && grandchild.is_triggered());
        assert!(good.take().is_some());
        blocked.join().unwrap();
        assert!(!root.trigger(), "the election happened once");
        assert!(root.wait_drained_timeout(Duration::ZERO).is_ok());
    });
}

/// A panicking `Forced` waker: every latch of the subtree is still forced.
#[test]
fn a_panicking_force_waker_stops_no_cascade() {
    quiet_panics();
    bounded(10, || {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let guard = child.guard().unwrap();
        let mut bad = root.guard().unwrap().wait_forced_async();
        poll_pending(&mut bad, &Waker::from(Arc::new(Panicking)));
        let good = Inline::start(guard.wait_forced_async(), false);
        assert!(catch_unwind(AssertUnwindSafe(|| root.force())).is_err());
        assert!(root.is_forced() && child.is_forced());
        assert!(good.take().is_some());
        drop(guard);
    });
}

/// A guard dropped by a panicking thread while a waker of its drain panics
/// too: a second panic during unwinding would abort the process; the
/// waker's is dropped instead, and the blocked drainer still wakes.
#[test]
fn a_panicking_waker_during_unwinding_does_not_abort() {
    quiet_panics();
    bounded(10, || {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        shutdown.trigger();
        let mut bad = shutdown.wait_drained_async();
        poll_pending(&mut bad, &Waker::from(Arc::new(Panicking)));
        let blocked = {
            let shutdown = shutdown.clone();
            thread::spawn(move || shutdown.wait_drained())
        };
        let worker = thread::spawn(move || {
            let _guard = guard;
            panic!("deliberate: the worker's own panic");
        });
        let panic = worker.join().unwrap_err();
        assert_eq!(
            panic.downcast_ref::<&str>(),
            Some(&"deliberate: the worker's own panic")
        );
        assert_eq!(blocked.join().unwrap().panicked, 1);
    });
}

/// A WaitGroup's panicking waker: the panic reaches the last token's drop,
/// and the group is usable afterwards.
#[test]
fn a_panicking_wait_group_waker_leaves_the_group_usable() {
    quiet_panics();
    bounded(10, || {
        let mut wg = WaitGroup::new();
        let token = wg.token();
        {
            let mut wait = wg.wait_async();
            poll_pending(&mut wait, &Waker::from(Arc::new(Panicking)));
            assert!(catch_unwind(AssertUnwindSafe(move || drop(token))).is_err());
        }
        assert_eq!(wg.count(), 0);
        let token = wg.token();
        let worker = thread::spawn(move || drop(token));
        wg.wait();
        worker.join().unwrap();
    });
}
