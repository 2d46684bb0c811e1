//! Loom models an adversarial review of the lifecycle change wrote.
#![cfg(loom)]

use loom::thread;
use loom_tests::{bounded, exhaustive};
use quiescent::{Cause, Shutdown};

/// announce on the root races the creation of a grandchild under a child
/// whose handle the maker holds: the grandchild must end announced.
#[test]
fn adv_announce_root_vs_grandchild_creation() {
    exhaustive(|| {
        let root = Shutdown::new();
        let mid = root.child().unwrap();
        let maker = thread::spawn(move || {
            let gc = mid.child().unwrap();
            drop(mid);
            gc
        });
        root.announce();
        let gc = maker.join().unwrap();
        assert!(gc.is_announced(), "a grandchild missed the notice");
        assert!(!gc.is_triggered());
    });
}

/// Three levels: the root and the middle are triggered concurrently with
/// different causes; the leaf (never triggered on its own) must report the
/// middle's cause, whoever closed it.
#[test]
fn adv_leaf_cause_is_its_parents_three_levels() {
    bounded(|| {
        let root = Shutdown::new();
        let mid = root.child().unwrap();
        let leaf = mid.child().unwrap();
        let r = root.clone();
        let a = thread::spawn(move || {
            r.trigger_with_reason("root");
        });
        let m = mid.clone();
        let b = thread::spawn(move || {
            m.trigger_with_cause(Cause::Signal(15));
        });
        drop(root);
        a.join().unwrap();
        b.join().unwrap();
        let mc = mid.cause().unwrap();
        assert!(
            mc == Cause::Signal(15) || mc == Cause::Requested(Some("root".into())),
            "{mc:?}"
        );
        assert_eq!(
            leaf.cause(),
            Some(mc.clone()),
            "leaf's cause differs from its parent's"
        );
        assert_eq!(leaf.reason(), mid.reason());
    });
}

/// announce racing trigger on the root with a child: after both, the child
/// is announced and triggered, and announce's return is true for at most
/// one of (announce call, trigger's own announcement).
#[test]
fn adv_announce_vs_trigger_child() {
    exhaustive(|| {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let r = root.clone();
        let t = thread::spawn(move || r.trigger());
        let announced = root.announce();
        assert!(t.join().unwrap());
        assert!(child.is_announced() && child.is_triggered());
        let _ = announced;
        assert!(!root.announce());
        assert!(!child.announce());
    });
}
