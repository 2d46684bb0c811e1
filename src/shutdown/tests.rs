//! Unit tests of the latch tree and its futures: pruning, the wakers a
//! dropped future leaves behind.

use super::*;
use std::future::Future;
use std::pin::Pin;
use std::task::Context;

fn children(s: &Shutdown) -> usize {
    s.latch().children.lock().len()
}

/// A trigger future dropped before the trigger takes its waker out of
/// the set (a `select!` loop that recreates it would otherwise grow the
/// set without bound); one woken by the trigger leaves nothing behind.
#[test]
fn trigger_futures_leave_no_waker_behind() {
    let shutdown = Shutdown::new();
    let wakers = || shutdown.latch().core.listeners();
    let mut cx = Context::from_waker(std::task::Waker::noop());
    for _ in 0..1000 {
        let mut fut = shutdown.wait_triggered_async();
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        assert_eq!(wakers(), 1);
    }
    assert_eq!(wakers(), 0);
    // Polled again with another waker: replaced, not added.
    let mut fut = shutdown.wait_triggered_async();
    let (a, b) = (
        std::sync::Arc::new(Flag::default()),
        std::sync::Arc::new(Flag::default()),
    );
    let _ = Pin::new(&mut fut).poll(&mut Context::from_waker(&a.clone().into()));
    let _ = Pin::new(&mut fut).poll(&mut Context::from_waker(&b.clone().into()));
    assert_eq!(wakers(), 1);
    shutdown.trigger();
    assert_eq!(wakers(), 0);
    // Only the latest waker is woken.
    assert!(!a.0.load(std::sync::atomic::Ordering::SeqCst));
    assert!(b.0.load(std::sync::atomic::Ordering::SeqCst));
    assert!(Pin::new(&mut fut).poll(&mut cx).is_ready());
    // After the trigger nothing registers.
    let mut late = shutdown.wait_triggered_async();
    assert!(Pin::new(&mut late).poll(&mut cx).is_ready());
    assert_eq!(wakers(), 0);
}

/// A waker that records being woken (a test-only std atomic: the test
/// runs outside loom).
#[derive(Default)]
#[allow(clippy::disallowed_types)]
struct Flag(std::sync::atomic::AtomicBool);

impl std::task::Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The adversary's case: a dead child whose list holds a dead grandchild
/// looks alive at one level; the amortized prune looks below it.
#[test]
fn dead_grandchildren_are_pruned_as_the_list_grows() {
    let root = Shutdown::new();
    for _ in 0..10_000 {
        let child = root.child().unwrap();
        let grandchild = child.child().unwrap();
        drop(grandchild.child().unwrap());
        drop(grandchild);
        drop(child);
    }
    assert!(children(&root) <= 64, "{} children kept", children(&root));
    // A dead chain below a child kept alive by a future at its bottom
    // stays: the future must still see the trigger.
    let child = root.child().unwrap();
    let bottom = child.child().unwrap().child().unwrap();
    let mut future = bottom.wait_triggered_async();
    drop((child, bottom));
    for _ in 0..1_000 {
        drop(root.child().unwrap());
    }
    root.trigger();
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(Pin::new(&mut future).poll(&mut cx).is_ready());
}

#[test]
fn dead_children_are_pruned_as_the_list_grows() {
    let root = Shutdown::new();
    for _ in 0..10_000 {
        let child = root.child().unwrap();
        drop(child.guard().unwrap());
    }
    // Amortized pruning keeps the list within a small factor of the
    // live children (none here), not of every child ever made.
    assert!(children(&root) <= 64, "{} children kept", children(&root));
    root.trigger();
    assert_eq!(children(&root), 0);
}

#[test]
fn children_that_can_still_be_reached_are_kept() {
    let root = Shutdown::new();
    let with_handle = root.child().unwrap();
    let guard = root.child().unwrap().guard().unwrap();
    let future = root.child().unwrap().wait_triggered_async();
    let grandchild = root.child().unwrap().child().unwrap();
    for _ in 0..100 {
        drop(root.child().unwrap());
    }
    root.trigger();
    assert_eq!(children(&root), 4);
    assert!(with_handle.is_triggered() && guard.is_triggered() && grandchild.is_triggered());
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(
        future.as_mut().poll(&mut cx).is_ready(),
        "the cascade missed a future"
    );
}
