//! The fast paths allocate nothing: token clone/drop, unnamed guard
//! admit/drop (idle and busy latch), and waits that find nothing to wait for.
//! Counted by a global allocator that counts allocations per thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use quiescent::{Shutdown, WaitGroup};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread by `f`.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn token_clone_and_drop_allocate_nothing() {
    let mut wg = WaitGroup::new();
    let base = wg.token();
    assert_eq!(
        allocations(|| {
            for _ in 0..1_000 {
                drop(base.clone());
                drop(wg.token());
            }
        }),
        0
    );
    drop(base);
    assert_eq!(
        allocations(|| wg.wait_timeout(Duration::from_secs(5)).unwrap()),
        0,
        "a wait that finds zero"
    );
    assert_eq!(
        allocations(|| assert!(wg.wait_timeout(Duration::ZERO).is_ok())),
        0
    );
    // A token leaving and re-entering zero with the group dropped still
    // allocates nothing (the holds take the group's reference).
    let t = wg.token();
    drop(wg);
    assert_eq!(allocations(|| drop(t.clone())), 0);
}

#[test]
fn unnamed_guards_allocate_nothing() {
    let shutdown = Shutdown::new();
    let child = shutdown.child().unwrap();
    assert_eq!(
        allocations(|| {
            for _ in 0..1_000 {
                drop(shutdown.guard().unwrap()); // idle latch: 0 -> 1 -> 0
                let busy = shutdown.guard().unwrap();
                drop(busy.clone());
                drop(child.guard().unwrap());
                drop(busy);
            }
        }),
        0
    );
    shutdown.trigger();
    assert_eq!(allocations(|| assert!(shutdown.guard().is_err())), 0);
    assert_eq!(
        allocations(|| {
            let report = shutdown
                .wait_drained_timeout(Duration::from_secs(5))
                .unwrap();
            assert_eq!(report.panicked, 0);
        }),
        0,
        "a drain that finds the latch drained"
    );
    // A named guard does allocate (its registry entry): that is the price
    // of being named, paid only by those who ask for it.
    let other = Shutdown::new();
    assert!(allocations(|| drop(other.guard_named("named").unwrap())) > 0);
}

/// `wait_drained` on a drained latch copies the cached report: no clock, no
/// lock and no allocation, whatever the report holds: a `&'static` reason, an
/// owned one, a latch path and failures are shared by every copy.
/// `try_wait_drained` borrows it and allocates nothing either.
#[test]
fn wait_drained_on_a_drained_latch_allocates_nothing() {
    let fixed = Shutdown::new();
    fixed.trigger_with_reason("deploy");
    let owned = Shutdown::new();
    owned.trigger_with_reason(format!("deploy {}", 7));
    let root = Shutdown::new();
    let jobs = root.child_named("jobs").unwrap();
    jobs.guard_named("parse")
        .unwrap()
        .fail(format!("bad input {}", 7));
    for (what, shutdown) in [
        ("a &'static reason", &fixed),
        ("an owned reason", &owned),
        ("a named latch with a failure", &jobs),
    ] {
        let first = shutdown.wait_drained();
        assert_eq!(
            allocations(|| {
                for _ in 0..1_000 {
                    let report = shutdown.wait_drained();
                    assert_eq!(report, first);
                    assert_eq!(shutdown.try_wait_drained(), Some(&first));
                }
            }),
            0,
            "{what}: {first}"
        );
    }
    let report = jobs.wait_drained();
    assert_eq!(report.latch, "jobs");
    assert_eq!(report.failures[0].reason, "bad input 7");
    assert!(report.reason.unwrap().contains("failed: bad input 7"));
    assert_eq!(owned.wait_drained().reason.unwrap(), "deploy 7");
}
