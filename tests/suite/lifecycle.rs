//! The service lifecycle: a typed cause through every path (the first
//! trigger's wins, a child reports its ancestor's), and the readiness notice
//! (`announce`) before the trigger, with guards still admitted.
#![allow(clippy::disallowed_types)] // tests use std sync types directly

use std::time::Duration;

use crate::common::{bounded, quiet_panics, Inline};
use quiescent::{Cause, Shutdown};

#[test]
fn the_cause_of_every_path() {
    // trigger: requested, no reason.
    let s = Shutdown::new();
    s.trigger();
    assert_eq!(s.cause(), Some(Cause::Requested(None)));
    assert_eq!(s.reason(), None);
    // trigger_with_reason: the text, shared by the report.
    let s = Shutdown::new();
    s.trigger_with_reason("deploy");
    assert_eq!(s.cause(), Some(Cause::Requested(Some("deploy".into()))));
    let report = s.wait_drained();
    assert_eq!(report.cause, s.cause());
    assert_eq!(report.reason.as_deref(), Some("deploy"));
    // trigger_with_error: the error itself, by identity.
    let s = Shutdown::new();
    s.trigger_with_error(std::io::Error::new(std::io::ErrorKind::Other, "disk full"));
    let cause = s.cause().unwrap();
    assert!(cause
        .error()
        .unwrap()
        .downcast_ref::<std::io::Error>()
        .is_some());
    assert_eq!(cause, s.cause().unwrap(), "the same shared error");
    assert_eq!(s.reason().as_deref(), Some("disk full"));
    // a signal.
    let s = Shutdown::new();
    s.trigger_with_cause(Cause::Signal(2));
    assert_eq!(s.reason().as_deref(), Some("SIGINT"));
    // fail: the failure, named.
    let s = Shutdown::new();
    let line = line!() + 1;
    s.guard_named("parse").unwrap().fail("bad input");
    match s.cause() {
        Some(Cause::Failed(failure)) => {
            assert_eq!(failure.name.as_deref(), Some("parse"));
            assert_eq!(failure.reason, "bad input");
            assert_eq!(failure.site.line(), line);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.reason().unwrap(),
        format!("\"parse\" (tests/suite/lifecycle.rs:{line}) failed: bad input")
    );
    // a vital guard's panic.
    quiet_panics();
    let s = Shutdown::new();
    let vital = s.guard_named("indexer").unwrap().vital();
    let _ = std::thread::spawn(move || {
        let _vital = vital;
        panic!("deliberate");
    })
    .join();
    assert!(matches!(s.cause(), Some(Cause::Failed(f)) if f.reason == "panicked"));
    assert!(s.reason().unwrap().ends_with(" panicked"));
}

#[test]
fn the_first_cause_wins_and_a_child_reports_its_ancestors() {
    let root = Shutdown::new();
    let child = root.child().unwrap();
    let grandchild = child.child().unwrap();
    let guard = grandchild.guard().unwrap();
    drop(child); // the cascade passes through a latch with no handle
    assert!(root.trigger_with_error(std::io::Error::new(std::io::ErrorKind::Other, "first")));
    assert!(!root.trigger_with_reason("second"));
    assert!(!grandchild.trigger_with_reason("third"));
    let cause = root.cause().unwrap();
    assert_eq!(grandchild.cause(), Some(cause.clone()));
    assert_eq!(guard.cause(), Some(cause.clone()));
    assert_eq!(grandchild.reason().as_deref(), Some("first"));
    drop(guard);
    assert_eq!(grandchild.wait_drained().cause, Some(cause));
    // A child triggered first keeps its own cause.
    let root = Shutdown::new();
    let child = root.child().unwrap();
    child.trigger_with_reason("child");
    root.trigger_with_reason("root");
    assert_eq!(child.reason().as_deref(), Some("child"));
    assert_eq!(root.reason().as_deref(), Some("root"));
    // Stragglers carry it too.
    let root = Shutdown::new();
    let _stuck = root.guard().unwrap();
    root.trigger_with_cause(Cause::Signal(15));
    let stragglers = root.wait_drained_timeout(Duration::ZERO).unwrap_err();
    assert_eq!(stragglers.cause, Some(Cause::Signal(15)));
}

#[test]
fn announce_marks_the_subtree_and_still_admits() {
    let root = Shutdown::new();
    let child = root.child().unwrap();
    let guard = child.guard().unwrap();
    assert!(!root.is_announced() && !guard.is_announced());
    assert!(root.announce());
    assert!(!root.announce(), "once");
    assert!(root.is_announced() && child.is_announced() && guard.is_announced());
    assert!(!root.is_triggered());
    // Still admitted, children too; a child made now is announced at birth.
    let late = root.guard().unwrap();
    let newborn = root.child().unwrap();
    assert!(newborn.is_announced());
    assert_eq!(root.count(), 2);
    // Announcing a child reaches its subtree only.
    let other = Shutdown::new();
    let below = other.child().unwrap();
    below.announce();
    assert!(!other.is_announced());
    // A trigger announces too, and then refuses as ever.
    let fresh = Shutdown::new();
    fresh.trigger();
    assert!(fresh.is_announced());
    root.trigger();
    assert!(root.guard().is_err());
    drop((guard, late));
}

#[test]
fn announce_wakes_its_waiters_and_a_trigger_does_too() {
    bounded(10, || {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let guard = child.guard().unwrap();
        let on_child = Inline::start(guard.wait_announced_async(), false);
        let on_root = Inline::start(root.wait_announced_async(), false);
        root.announce();
        assert!(on_child.take().is_some() && on_root.take().is_some());
        // A latch that is triggered without an announcement: its waiters
        // wake at the trigger.
        let other = Shutdown::new();
        let waiting = Inline::start(other.wait_announced_async(), false);
        other.trigger();
        assert!(waiting.take().is_some());
        // Blocking code reads the flag; futures made afterwards are ready.
        futures_executor::block_on(root.wait_announced_async());
        drop(guard);
    });
}
