//! A chain of latches 10,000 deep (DESIGN.md, performance: "a chain 10,000
//! latches deep must not overflow the stack"): admission, the trigger
//! cascade, forcing, the straggler snapshot, the drain and every drop order
//! walk the chain with loops. Each body runs on a thread with a 256 KiB
//! stack, far less than one frame per latch would need, so a walk that
//! recurses crashes the test instead of passing by luck.

use crate::common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use quiescent::Shutdown;

const DEPTH: usize = 10_000;
const STACK: usize = 256 * 1024;

/// Runs `f` on a thread with a small stack, bounded in time.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    common::bounded(120, move || {
        let (tx, rx) = mpsc::channel();
        let worker = thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || {
                f();
                tx.send(()).unwrap();
            })
            .unwrap();
        rx.recv().expect("the body panicked");
        worker.join().unwrap();
    });
}

/// The root, and the latches below it, deepest last.
fn chain(named: bool) -> (Shutdown, Vec<Shutdown>) {
    let root = Shutdown::new();
    let mut levels: Vec<Shutdown> = Vec::with_capacity(DEPTH);
    for i in 0..DEPTH {
        let parent = levels.last().unwrap_or(&root);
        let child = if named {
            parent.child_named(format!("l{i}")).unwrap()
        } else {
            parent.child().unwrap()
        };
        levels.push(child);
    }
    (root, levels)
}

#[test]
fn a_guard_at_the_bottom_holds_the_root_and_sees_its_trigger() {
    on_small_stack(|| {
        let (root, mut levels) = chain(false);
        let deepest = levels.pop().unwrap();
        // The handles in between go: the chain is kept by its links alone.
        drop(levels);
        let guard = deepest.guard().unwrap();
        assert_eq!(root.count(), 1);
        assert!(root.trigger_with_reason("deep"));
        assert!(guard.is_triggered());
        assert_eq!(deepest.reason().as_deref(), Some("deep"));
        assert!(deepest.guard().is_err());
        let stragglers = root.wait_drained_timeout(Duration::ZERO).unwrap_err();
        assert_eq!(stragglers.remaining, 1);
        assert!(root.force());
        assert!(guard.is_forced());
        drop(guard);
        let report = root.wait_drained_timeout(Duration::from_secs(10)).unwrap();
        assert!(report.forced);
        assert_eq!(deepest.wait_drained().reason.as_deref(), Some("deep"));
        drop(deepest);
        drop(root);
    });
}

#[test]
fn the_root_dropped_first_frees_the_chain_when_the_bottom_goes() {
    on_small_stack(|| {
        let (root, mut levels) = chain(false);
        let deepest = levels.pop().unwrap();
        drop(levels);
        let guard = deepest.guard().unwrap();
        drop(root);
        drop(deepest);
        // The last guard's release walks all 10,000 levels; then the whole
        // chain of latches is freed from the bottom.
        drop(guard);
    });
}

#[test]
fn dropping_the_root_of_a_live_chain_frees_every_tree() {
    on_small_stack(|| {
        let (root, levels) = chain(true);
        let probe = levels[DEPTH / 2].clone();
        drop(levels);
        // A named chain: the straggler snapshot locks 10,000 registries and
        // reports the path of the guard's latch.
        let guard = probe.guard_named("middle").unwrap();
        root.trigger();
        let stragglers = root.wait_drained_timeout(Duration::ZERO).unwrap_err();
        assert_eq!(stragglers.names, ["middle"]);
        assert!(stragglers.held[0]
            .latch
            .ends_with(&format!("/l{}", DEPTH / 2)));
        drop(guard);
        drop(probe);
        drop(root);
    });
}

/// The adversary's wide tree: 100,000 children, half with a guard, three
/// quarters of the handles dropped: the cascade still reaches every guard
/// through the weak links.
#[test]
fn a_wide_tree_of_100_000_children_with_half_the_handles_dropped() {
    on_small_stack(|| {
        let root = Shutdown::new();
        let n = 100_000;
        let mut kids = Vec::with_capacity(n);
        let mut guards = Vec::with_capacity(n);
        for i in 0..n {
            let c = root.child().unwrap();
            if i % 2 == 0 {
                guards.push(c.guard().unwrap());
            }
            kids.push(c);
        }
        // drop half the handles: weak links must still cascade
        kids.truncate(n / 4);
        assert_eq!(root.holders().count, n / 2);
        root.trigger();
        assert!(guards.iter().all(|g| g.is_triggered()));
        drop(guards);
        assert_eq!(
            root.wait_drained_timeout(Duration::from_secs(10))
                .unwrap()
                .panicked,
            0
        );
        drop(kids);
    });
}

/// A 100,000-deep chain: build, guard at the bottom, trigger from the
/// root, drop in both orders.
#[test]
fn a_chain_100_000_deep_with_only_the_bottom_handle_kept() {
    on_small_stack(|| {
        for bottom_first in [false, true] {
            let root = Shutdown::new();
            let mut chain = vec![root.clone()];
            for _ in 0..100_000 {
                let next = chain.last().unwrap().child().unwrap();
                chain.push(next);
            }
            let g = chain.last().unwrap().guard().unwrap();
            let bottom = chain.last().unwrap().clone();
            if bottom_first {
                chain.reverse();
            }
            // drop every handle but the bottom's clone: guards keep the chain
            drop(chain);
            root.trigger();
            assert!(g.is_triggered());
            drop(g);
            root.wait_drained_timeout(Duration::from_secs(10)).unwrap();
            drop(bottom);
            drop(root);
        }
    });
}
