//! Loom models an adversarial review of the one-test clone
//! (`Core::acquire_another`) wrote: clones of child guards racing triggers
//! at every level, drains and handle drops; token clones racing a wait.
//! Four of them fail on the mutant `clone-skips-drain`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use loom_tests::{bounded, bounded_at, exhaustive, Data};
use quiescent::{Shutdown, WaitGroup};

/// A grandchild-less child guard cloned (original dropped, write, clone
/// dropped) while the root is triggered (cascade) and drained; the child
/// handle is dropped before the drain. The drain must see the write.
#[test]
fn adv_child_clone_vs_root_trigger_and_drain() {
    bounded_at(2, || {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let data = Arc::new(Data::default());
        let guard = child.guard().unwrap();
        drop(child);
        let holder = {
            let data = data.clone();
            thread::spawn(move || {
                let clone = guard.clone();
                drop(guard);
                data.write(1);
                drop(clone);
            })
        };
        root.trigger();
        let report = root.wait_drained();
        assert_eq!(report.panicked, 0);
        assert_eq!(data.read(), 1);
        assert_eq!(root.count(), 0);
        holder.join().unwrap();
    });
}

/// The child is triggered on one thread (and its handle dropped there),
/// a clone chain runs on another, and the root drains (triggered after);
/// no handle is joined first.
#[test]
fn adv_child_clone_vs_child_trigger_vs_root_drain() {
    bounded_at(2, || {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let data = Arc::new(Data::default());
        let guard = child.guard().unwrap();
        let trig = thread::spawn(move || {
            child.trigger();
            drop(child);
        });
        let holder = {
            let data = data.clone();
            thread::spawn(move || {
                let clone = guard.clone();
                drop(guard);
                data.write(1);
                drop(clone);
            })
        };
        root.trigger();
        root.wait_drained();
        assert_eq!(data.read(), 1);
        assert_eq!(root.count(), 0);
        trig.join().unwrap();
        holder.join().unwrap();
    });
}

/// Grandchild guard cloned while the middle latch is triggered: the clone's
/// three levels (node inline, ancestors out of line) vs a close in the
/// middle. The middle's drain must see the write.
#[test]
fn adv_grandchild_clone_vs_middle_trigger() {
    bounded_at(2, || {
        let root = Shutdown::new();
        let mid = root.child().unwrap();
        let leaf = mid.child().unwrap();
        let data = Arc::new(Data::default());
        let guard = leaf.guard().unwrap();
        drop(leaf);
        let holder = {
            let data = data.clone();
            thread::spawn(move || {
                let clone = guard.clone();
                drop(guard);
                data.write(1);
                drop(clone);
            })
        };
        mid.trigger();
        mid.wait_drained();
        assert_eq!(data.read(), 1);
        assert_eq!(mid.count(), 0);
        holder.join().unwrap();
        // (the root's level is released after the middle's drain is
        // announced, so only after the join)
        assert_eq!(root.count(), 0);
    });
}

/// Every handle dropped while one holder clones and another drops the last
/// other hold: no use after free, no leak (the harness checks every node
/// is freed).
#[test]
fn adv_handles_dropped_vs_clone_vs_last_drop() {
    bounded(|| {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let g1 = child.guard().unwrap();
        let g2 = g1.clone();
        child.trigger();
        let a = thread::spawn(move || {
            let c = g1.clone();
            drop(g1);
            drop(c);
        });
        let b = thread::spawn(move || drop(g2));
        drop(child);
        drop(root);
        a.join().unwrap();
        b.join().unwrap();
    });
}

/// Same without a trigger (no DRAINING: the clone's fast path), and the
/// holds outlive the handles (collective reference).
#[test]
fn adv_handles_dropped_vs_clone_untriggered() {
    exhaustive(|| {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let g1 = child.guard().unwrap();
        let a = thread::spawn(move || {
            let c = g1.clone();
            drop(g1);
            drop(c);
        });
        drop(child);
        drop(root);
        a.join().unwrap();
    });
}

/// A token cloned (original dropped, write, clone dropped) while the group
/// waits: `wait` sets CLOSED without DRAINING. Must see the write.
#[test]
fn adv_token_clone_vs_wait() {
    exhaustive(|| {
        let mut wg = WaitGroup::new();
        let data = Arc::new(Data::default());
        let token = wg.token();
        let holder = {
            let data = data.clone();
            thread::spawn(move || {
                let clone = token.clone();
                drop(token);
                data.write(1);
                drop(clone);
            })
        };
        wg.wait();
        assert_eq!(data.read(), 1);
        assert_eq!(wg.count(), 0);
        holder.join().unwrap();
    });
}

/// Token clone while the group is dropped and the original token drops on
/// another thread.
#[test]
fn adv_token_clone_vs_group_drop_vs_last_drop() {
    bounded(|| {
        let wg = WaitGroup::new();
        let t1 = wg.token();
        let t2 = t1.clone();
        let a = thread::spawn(move || {
            let c = t1.clone();
            drop(t1);
            drop(c);
        });
        let b = thread::spawn(move || drop(t2));
        drop(wg);
        a.join().unwrap();
        b.join().unwrap();
    });
}
