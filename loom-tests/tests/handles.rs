//! Loom models of the hostile orders: a handle goes while a holder is still
//! releasing, notifying or being pruned, and nobody joins the holders first.
//!
//! Each model is one of the interleavings behind a defect the crate once had
//! (`loom-tests/mutants.sh` puts each defect back and shows its model failing).
//! They rely on the loom shadow of the reference protocol (`src/core/shadow.rs`):
//! under `--cfg loom` the crate's `Arc` counts in a loom atomic, so loom
//! explores every order of the raw increments and decrements, and panics on a
//! reference taken from zero, a reference released twice, or a node touched
//! after (or concurrently with) its free.
#![cfg(loom)]

use std::time::Duration;

use loom::sync::Arc;
use loom::thread;
use loom_tests::{bounded, clone_then_write_then_drop, exhaustive, write_then_drop, Data};
use quiescent::{Shutdown, WaitGroup};

/// The group is dropped while its last token is dropped on another thread:
/// the anchor hands its reference to the tokens, or finds none alive, in one
/// step (the anchor hand-off race).
#[test]
fn group_drop_vs_last_token_drop() {
    exhaustive(|| {
        let wg = WaitGroup::new();
        let token = wg.token();
        let holder = thread::spawn(move || drop(token));
        drop(wg);
        holder.join().unwrap();
    });
}

/// `wg.wait(); drop(wg);` while the worker's drop of the last token is still
/// announcing the zero: the waiter may see zero by itself, return and free
/// the group, so the announcement must own a reference.
#[test]
fn wait_then_drop_group_vs_last_token_drop() {
    exhaustive(|| {
        let mut wg = WaitGroup::new();
        let data = Arc::new(Data::default());
        let holder = write_then_drop(&data, 1, wg.token());
        wg.wait();
        assert_eq!(data.read(), 1);
        drop(wg);
        holder.join().unwrap();
    });
}

/// The same with the async wait.
#[test]
fn wait_async_then_drop_group_vs_last_token_drop() {
    exhaustive(|| {
        let mut wg = WaitGroup::new();
        let data = Arc::new(Data::default());
        let holder = write_then_drop(&data, 1, wg.token());
        loom::future::block_on(wg.wait_async());
        assert_eq!(data.read(), 1);
        drop(wg);
        holder.join().unwrap();
    });
}

/// A wait that gives up (`Duration::ZERO` only checks, so it runs under loom)
/// withdraws its request while the last token goes, then the group is
/// dropped: the notify reference is given back exactly once, by whichever
/// side the word says owns it.
#[test]
fn zero_timeout_wait_then_drop_group_vs_last_token_drop() {
    exhaustive(|| {
        let mut wg = WaitGroup::new();
        let token = wg.token();
        let holder = thread::spawn(move || drop(token));
        if let Err(timeout) = wg.wait_timeout(Duration::ZERO) {
            assert!(timeout.remaining <= 1);
        }
        drop(wg);
        holder.join().unwrap();
    });
}

/// The only handle of an untriggered root is dropped while its last guard
/// goes on another thread.
#[test]
fn root_handle_drop_vs_last_guard_drop() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        let holder = thread::spawn(move || drop(guard));
        drop(shutdown);
        holder.join().unwrap();
    });
}

/// The same on a triggered root: the last guard's release also announces
/// the drain, while the handle goes.
#[test]
fn triggered_root_handle_drop_vs_last_guard_drop() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        shutdown.trigger();
        let holder = thread::spawn(move || drop(guard));
        drop(shutdown);
        holder.join().unwrap();
    });
}

/// `shutdown.wait_drained(); drop(shutdown);` while the last guard's release
/// is still announcing the drain.
#[test]
fn drain_then_drop_root_vs_last_guard_drop() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let data = Arc::new(Data::default());
        let holder = write_then_drop(&data, 1, shutdown.guard().unwrap());
        shutdown.trigger();
        let report = shutdown.wait_drained();
        assert_eq!(data.read(), 1);
        assert_eq!(report.panicked, 0);
        drop(shutdown);
        holder.join().unwrap();
    });
}

/// The same with the async drain, whose future owns a reference of its own.
#[test]
fn drain_async_then_drop_root_vs_last_guard_drop() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let data = Arc::new(Data::default());
        let holder = write_then_drop(&data, 1, shutdown.guard().unwrap());
        loom::future::block_on(shutdown.shutdown_async());
        assert_eq!(data.read(), 1);
        drop(shutdown);
        holder.join().unwrap();
    });
}

/// A child latch's handles (child, then root) are dropped while the child's
/// last guard goes, after the trigger: the release runs on both levels,
/// announcing on each, while both anchors let go.
#[test]
fn triggered_child_handles_drop_vs_last_child_guard_drop() {
    exhaustive(|| {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let guard = child.guard().unwrap();
        root.trigger();
        let holder = thread::spawn(move || drop(guard));
        drop(child);
        drop(root);
        holder.join().unwrap();
    });
}

/// The child is drained and its handle dropped at once, while the child's
/// last guard is still releasing (and announcing) on the parent's level.
#[test]
fn child_drain_then_drop_vs_last_child_guard_drop() {
    exhaustive(|| {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let data = Arc::new(Data::default());
        let holder = write_then_drop(&data, 1, child.guard().unwrap());
        root.trigger();
        child.wait_drained();
        assert_eq!(data.read(), 1);
        drop(child);
        drop(root);
        holder.join().unwrap();
    });
}

/// A guard of a child whose handle is gone turns into a `Triggered` future
/// and is dropped, while the parent's trigger prunes its dead children: the
/// child must not look dead, or the trigger never reaches the future (loom
/// reports the deadlock).
#[test]
fn prune_vs_guard_turned_into_future() {
    exhaustive(|| {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let guard = child.guard().unwrap();
        drop(child);
        let holder = thread::spawn(move || {
            let triggered = guard.wait_triggered_async();
            drop(guard);
            loom::future::block_on(triggered);
        });
        root.trigger();
        holder.join().unwrap();
    });
}

/// A named guard is cloned and the original dropped (after the trigger)
/// while a bounded drain gives up and takes the straggler snapshot: the names
/// listed never outnumber the count.
#[test]
fn named_clone_vs_straggler_snapshot() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard_named("worker").unwrap();
        shutdown.trigger();
        let cloner = thread::spawn(move || {
            let clone = guard.clone();
            drop(guard);
            drop(clone);
        });
        if let Err(stragglers) = shutdown.wait_drained_timeout(Duration::ZERO) {
            assert!(
                stragglers.names.len() <= stragglers.remaining,
                "named a guard that was not counted: {stragglers:?}"
            );
        }
        cloner.join().unwrap();
    });
}

/// Two guards of a latch whose handle is gone are dropped on two threads
/// while a `Triggered` future keeps a reference; the main thread joins only
/// the second and then drops the future, freeing the latch. The guard
/// released first must have finished with the latch before the free: the
/// release that gives back the collective reference must acquire every
/// other release (the fence `Arc::drop` has). Three threads: bounded.
#[test]
fn other_holder_release_happens_before_the_free() {
    bounded(|| {
        let shutdown = Shutdown::new();
        let first = shutdown.guard().unwrap();
        let second = shutdown.guard().unwrap();
        let triggered = shutdown.wait_triggered_async();
        drop(shutdown);
        let a = thread::spawn(move || drop(first));
        let b = thread::spawn(move || drop(second));
        b.join().unwrap();
        drop(triggered);
        a.join().unwrap();
    });
}

// From the adversary of the two-field word (one-`fetch_add` admission): a
// handle dropped while a release or a clone after the trigger is between
// its two RMWs.

/// The last guard's release races the close CAS while the trigger's thread
/// then drops the last handle (no drainer): freed exactly once.
#[test]
fn adv_release_vs_trigger_then_last_handle_drop() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        let holder = thread::spawn(move || drop(guard));
        shutdown.trigger();
        drop(shutdown);
        holder.join().unwrap();
    });
}

/// A clone after the trigger (two RMWs) races the unanchor (last handle).
#[test]
fn adv_clone_after_trigger_vs_last_handle_drop() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        shutdown.trigger();
        let holder = thread::spawn(move || {
            let clone = guard.clone();
            drop(guard);
            assert!(clone.is_triggered());
            drop(clone);
        });
        drop(shutdown);
        holder.join().unwrap();
    });
}

/// A clone after the trigger races a drain, then the drainer drops the
/// handle at once: the notifying release must keep the node alive.
#[test]
fn adv_clone_after_trigger_vs_drain_then_handle_drop() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let data = Arc::new(Data::default());
        let guard = shutdown.guard().unwrap();
        shutdown.trigger();
        let holder = clone_then_write_then_drop(&data, guard);
        let r = shutdown.wait_drained_timeout(Duration::ZERO);
        if r.is_ok() {
            assert_eq!(data.read(), 1);
        }
        drop(shutdown);
        holder.join().unwrap();
    });
}
