//! Fail fast with the cause kept: `Guard::fail`, vital guards, and the panic
//! messages of spawned threads, in `Report::failures`, `Stragglers::failures`
//! and the latch's reason.
#![allow(clippy::disallowed_types)] // tests use std sync types directly

use crate::common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use quiescent::{Report, Shutdown};

#[test]
fn fail_triggers_its_own_latch_and_keeps_the_cause() {
    let server = Shutdown::new();
    let jobs = server.child_named("jobs").unwrap();
    let fetch = jobs.guard_named("fetch").unwrap();
    let parse = jobs.guard_named("parse").unwrap();
    let line = line!() - 1;
    parse.fail("bad input");
    assert!(jobs.is_triggered() && fetch.is_triggered());
    assert!(
        !server.is_triggered(),
        "a child's failure stays in its subtree"
    );
    assert_eq!(
        jobs.reason().as_deref(),
        Some(format!("\"parse\" (tests/suite/policy.rs:{line}) failed: bad input").as_str())
    );
    drop(fetch);
    let report = jobs.wait_drained();
    assert_eq!(report.failures.len(), 1);
    let failure = &report.failures[0];
    assert_eq!(
        (
            failure.name.as_deref(),
            failure.latch.as_str(),
            failure.reason.as_str()
        ),
        (Some("parse"), "jobs", "bad input")
    );
    assert_eq!(
        (failure.site.file(), failure.site.line()),
        ("tests/suite/policy.rs", line)
    );
    let text = report.to_string();
    assert!(
        text.contains(&format!(
            "; failed: jobs: \"parse\" (tests/suite/policy.rs:{line}): bad input"
        )),
        "{text}"
    );
    // The parent's report lists the subtree's failures too.
    server.trigger();
    assert_eq!(server.wait_drained().failures.len(), 1);
}

#[test]
fn a_later_failure_keeps_the_first_reason() {
    let jobs = Shutdown::new();
    let a = jobs.guard().unwrap();
    let b = jobs.guard().unwrap();
    jobs.trigger_with_reason("deploy");
    a.fail("late");
    assert_eq!(jobs.reason().as_deref(), Some("deploy"));
    drop(b);
    let report = jobs.wait_drained();
    assert_eq!(report.failures[0].reason, "late");
    assert_eq!(report.failures[0].name, None);
    assert!(
        report
            .to_string()
            .contains("; failed: a guard (tests/suite/policy.rs:"),
        "{report}"
    );
}

#[test]
fn a_vital_guard_dropped_by_a_panic_fails_its_latch() {
    common::quiet_panics();
    let jobs = Shutdown::new();
    let other = jobs.guard().unwrap();
    let guard = jobs.guard().unwrap().vital();
    let line = line!() - 1;
    let result = thread::spawn(move || {
        let _guard = guard;
        panic!("deliberate: index corrupt");
    })
    .join();
    assert!(result.is_err());
    assert!(other.is_triggered());
    assert_eq!(
        jobs.reason().as_deref(),
        Some(format!("a guard (tests/suite/policy.rs:{line}) panicked").as_str())
    );
    drop(other);
    let report = jobs.wait_drained();
    assert_eq!(report.panicked, 1);
    assert_eq!(report.failures[0].reason, "panicked");
}

#[test]
fn a_guard_that_is_not_vital_does_not_trigger_on_panic() {
    common::quiet_panics();
    let jobs = Shutdown::new();
    let guard = jobs.guard().unwrap();
    let _ = thread::spawn(move || {
        let _guard = guard;
        panic!("deliberate");
    })
    .join();
    assert!(!jobs.is_triggered());
    jobs.trigger();
    assert!(jobs.wait_drained().failures.is_empty());
}

#[test]
fn spawn_named_records_the_panic_message_and_still_reports_the_panic() {
    common::quiet_panics();
    let jobs = Shutdown::new();
    let worker = jobs
        .spawn_named("worker", |guard| {
            let _guard = guard.vital();
            panic!("deliberate: disk full");
        })
        .unwrap();
    let line = line!() - 5;
    let panic = worker.join().unwrap_err();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"deliberate: disk full"));
    assert!(jobs.is_triggered());
    let report = jobs.wait_drained_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(report.failures.len(), 1, "{report:?}");
    let failure = &report.failures[0];
    assert_eq!(failure.name.as_deref(), Some("worker"));
    assert_eq!(failure.reason, "deliberate: disk full");
    assert_eq!(failure.site.line(), line);
    // The latch's reason (from the vital guard's drop) names the worker.
    let reason = jobs.reason().unwrap();
    assert!(
        reason.starts_with("\"worker\" (tests/suite/policy.rs:"),
        "{reason}"
    );

    // A thread that is not vital: the message is recorded, nothing triggers.
    let other = Shutdown::new();
    let worker = other
        .spawn(|_guard| -> () { std::panic::panic_any(format!("deliberate: {}", 42)) })
        .unwrap();
    assert!(worker.join().is_err());
    assert!(!other.is_triggered());
    other.trigger();
    let report = other.wait_drained();
    assert_eq!(report.failures[0].reason, "deliberate: 42");
    assert_eq!(report.failures[0].name, None);
}

#[test]
fn stragglers_list_the_failures_too() {
    let jobs = Shutdown::new();
    let stuck = jobs.guard_named("stuck").unwrap();
    jobs.guard_named("broken").unwrap().fail("oops");
    let s = jobs.wait_drained_timeout(Duration::ZERO).unwrap_err();
    assert_eq!(s.failures.len(), 1);
    assert!(
        s.to_string()
            .contains("; failed: \"broken\" (tests/suite/policy.rs:"),
        "{s}"
    );
    drop(stuck);
}

#[test]
fn a_failure_with_no_handle_left_is_recorded_without_panicking() {
    let jobs = Shutdown::new();
    let guard = jobs.guard_named("orphan").unwrap();
    let drained = jobs.wait_drained_async();
    drop(jobs);
    // The future keeps the tree, so the failure still triggers it.
    guard.fail("after the handles");
    let report = futures_executor::block_on(drained);
    assert_eq!(report.failures[0].reason, "after the handles");
}

/// A vital guard's panic races a trigger (loom cannot model a thread that
/// unwinds, so this runs the race for real): one reason wins, the failure is
/// always recorded, and the drain always completes.
#[test]
fn a_vital_panic_racing_a_trigger() {
    common::quiet_panics();
    common::bounded(60, || {
        for _ in 0..300 {
            let jobs = Shutdown::new();
            let guard = jobs.guard_named("job").unwrap().vital();
            let worker = thread::spawn(move || {
                let _guard = guard;
                panic!("deliberate");
            });
            jobs.trigger_with_reason("deploy");
            assert!(worker.join().is_err());
            let report = jobs.wait_drained_timeout(Duration::from_secs(10)).unwrap();
            let reason = report.reason.as_deref().unwrap();
            assert!(
                reason == "deploy" || reason.ends_with(" panicked"),
                "{reason}"
            );
            assert_eq!(report.failures.len(), 1);
            assert_eq!(report.panicked, 1);
        }
    });
}

/// Runs `f` when dropped.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// A spawned thread's panic is in the report even when the drain runs while
/// the thread is still unwinding (its guard already released): spawn keeps
/// the drain open until the panic is recorded.
#[test]
fn a_spawned_panic_is_in_every_report_even_when_the_drain_races_the_unwinding() {
    common::quiet_panics();
    common::bounded(60, || {
        for _ in 0..500 {
            let s = Shutdown::new();
            let w = s
                .spawn(|g| {
                    g.wait_triggered();
                    panic!("deliberate");
                })
                .unwrap();
            let report = s.shutdown();
            assert_eq!(report.failures.len(), 1, "{report:?}");
            assert_eq!(report.failures[0].reason, "deliberate");
            assert!(w.join().is_err());
        }
        // Deterministically: the thread's guard is released, then the thread
        // waits for the drain before finishing its unwinding.
        let s = Shutdown::new();
        let (drained_tx, drained_rx) = std::sync::mpsc::channel::<()>();
        let w = s
            .spawn_named("slow-unwinder", move |g| {
                let _wait = OnDrop(move || {
                    let _ = drained_rx.recv_timeout(Duration::from_millis(200));
                });
                let _g = g.vital();
                panic!("deliberate disk full");
            })
            .unwrap();
        let report = s.wait_drained_timeout(Duration::from_secs(10)).unwrap();
        let _ = drained_tx.send(());
        assert!(w.join().is_err());
        assert_eq!(report.failures.len(), 1, "{report:?}");
        assert_eq!(report.failures[0].reason, "deliberate disk full");
        assert_eq!(s.wait_drained().failures[0].reason, "deliberate disk full");
    });
}

/// A panic does not overwrite an earlier, unrelated failure of the same
/// thread; and a vital guard that fails during unwinding records one
/// failure, not two.
#[test]
fn one_failure_per_cause() {
    common::quiet_panics();
    let s = Shutdown::new();
    let w = s
        .spawn(|g| {
            let other = g.clone();
            other.fail("bad input");
            drop(g);
            panic!("deliberate later bug");
        })
        .unwrap();
    assert!(w.join().is_err());
    let reasons: Vec<_> = s
        .wait_drained()
        .failures
        .into_iter()
        .map(|f| f.reason)
        .collect();
    assert_eq!(reasons, ["bad input", "deliberate later bug"]);

    let s = Shutdown::new();
    let g = std::sync::Mutex::new(Some(s.guard_named("x").unwrap().vital()));
    let _ = thread::spawn(move || {
        let _d = OnDrop(move || {
            if let Some(g) = g.lock().unwrap_or_else(|e| e.into_inner()).take() {
                g.fail("cleanup failed");
            }
        });
        panic!("deliberate");
    })
    .join();
    let report = s.wait_drained();
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert_eq!(report.failures[0].reason, "cleanup failed");
}

/// A failure on a child latch whose handles are all gone stays in the
/// parent's report after the child is pruned (found by an adversary: the
/// pruned child took its records with it), also two levels down and through
/// the amortized prune of `child()`.
#[test]
fn failures_of_pruned_children_stay_in_the_report() {
    // The child's handle goes before the failure.
    let root = Shutdown::new();
    let child = root.child().unwrap();
    let guard = child.guard().unwrap();
    drop(child);
    guard.fail("boom");
    root.trigger();
    let report = root.wait_drained();
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert_eq!(report.failures[0].reason, "boom");

    // After the trigger, and two levels down.
    let root = Shutdown::new();
    let child = root.child().unwrap();
    let grandchild = child.child().unwrap();
    let guard = grandchild.guard().unwrap();
    root.trigger();
    drop((child, grandchild));
    guard.fail("deep");
    let report = root.wait_drained();
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert_eq!(report.failures[0].reason, "deep");

    // Pruned by `child()` calls on a root that lives on, before any report.
    let root = Shutdown::new();
    let child = root.child().unwrap();
    child.guard().unwrap().fail("early");
    drop(child);
    let more: Vec<_> = (0..64).map(|_| root.child().unwrap()).collect();
    root.trigger();
    let report = root.wait_drained();
    let reasons: Vec<_> = report.failures.iter().map(|f| f.reason.as_str()).collect();
    assert_eq!(reasons, ["early"], "{report:?}");
    drop(more);
}

/// Dropped during an unwinding: says so, then holds the thread until told
/// to go on (or 5 s).
struct WaitOnDrop(mpsc::Sender<()>, mpsc::Receiver<()>);

impl Drop for WaitOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
        let _ = self.1.recv_timeout(Duration::from_secs(5));
    }
}

/// A vital guard of a child latch, dropped by a panic in a thread spawned
/// on the parent. The wrapper's extra count holds the parent, not the child,
/// so the child may drain before the panic's message arrives: the failure
/// then says "panicked" in every report, the child's and the parent's alike.
/// (Found by an adversary: the record was rewritten after the child's
/// report had shown it, so the two reports disagreed.) A local dropped after
/// the vital guard in the unwind holds the thread until the child's report
/// has been taken, which opens that window every time.
#[test]
fn a_failure_reads_the_same_in_every_report() {
    common::quiet_panics();
    common::bounded(20, || {
        let root = Shutdown::new();
        let child = root.child_named("workers").unwrap();
        let (polled_tx, polled_rx) = mpsc::channel::<()>();
        let (dropped_tx, dropped_rx) = mpsc::channel::<()>();
        let spawned = {
            let child = child.clone();
            root.spawn(move |_root_guard| {
                let _blocker = WaitOnDrop(dropped_tx, polled_rx);
                let _vital = child.guard_named("indexer").unwrap().vital();
                panic!("deliberate: index corrupt");
            })
            .unwrap()
        };
        dropped_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let early = child.try_wait_drained().expect("the child drained").clone();
        assert_eq!(early.failures[0].reason, "panicked");
        polled_tx.send(()).unwrap();
        assert!(spawned.join().is_err());
        root.trigger();
        assert_eq!(root.wait_drained().failures, early.failures);
        assert_eq!(child.wait_drained(), early);
    });
}

/// The same race without help, and the guard of the spawning latch for
/// contrast: its failure always carries the message.
#[test]
fn a_vital_guard_racing_a_drain_of_its_latch() {
    /// Spawns on `spawner` a thread that panics while holding a vital guard
    /// of `latch`; drains `latch`, then joins the thread.
    fn vital_panic_then_drain(spawner: &Shutdown, latch: &Shutdown, round: usize) -> Report {
        let vital = latch.guard_named("indexer").unwrap().vital();
        let spawned = spawner
            .spawn(move |_guard| {
                let _vital = vital;
                panic!("deliberate {round}");
            })
            .unwrap();
        let report = latch.wait_drained();
        assert!(spawned.join().is_err());
        report
    }

    common::quiet_panics();
    common::bounded(30, || {
        for round in 0..200 {
            let root = Shutdown::new();
            let child = root.child_named("workers").unwrap();
            let child_report = vital_panic_then_drain(&root, &child, round);
            let root_report = root.shutdown();
            assert_eq!(child_report.failures, root_report.failures, "round {round}");
            let reason = &child_report.failures[0].reason;
            assert!(
                *reason == format!("deliberate {round}") || reason == "panicked",
                "{reason}"
            );

            let root = Shutdown::new();
            let report = vital_panic_then_drain(&root, &root, round);
            assert_eq!(report.failures[0].reason, format!("deliberate {round}"));
        }
    });
}

/// A straggler snapshot taken while the message is on its way does not fix
/// the failure's text: the spawning latch's report still gets the message.
#[test]
fn a_straggler_snapshot_mid_unwinding_leaves_the_message_to_come() {
    common::quiet_panics();
    common::bounded(20, || {
        let root = Shutdown::new();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (dropped_tx, dropped_rx) = mpsc::channel::<()>();
        let spawned = {
            let vital = root.guard_named("indexer").unwrap().vital();
            root.spawn(move |_guard| {
                let _blocker = WaitOnDrop(dropped_tx, go_rx);
                let _vital = vital;
                panic!("deliberate: index corrupt");
            })
            .unwrap()
        };
        dropped_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let stragglers = root.wait_drained_timeout(Duration::ZERO).unwrap_err();
        assert_eq!(stragglers.failures[0].reason, "panicked");
        go_tx.send(()).unwrap();
        assert!(spawned.join().is_err());
        let report = root.wait_drained();
        assert_eq!(report.failures[0].reason, "deliberate: index corrupt");
    });
}

/// `Guard::fail` with every handle gone: the guard reaches its latch, and
/// the latch its subtree (the README's "a failing holder stops the rest").
#[test]
fn no_handle_left_fail_still_triggers_the_latch() {
    let s = Shutdown::new();
    let (a, b) = (s.guard().unwrap(), s.guard().unwrap());
    drop(s);
    b.fail("x");
    assert!(a.is_triggered());
    assert!(a.wait_triggered_timeout(Duration::ZERO));
}

/// The same on a child latch whose handle and whose root's handle are gone,
/// with a grandchild below it: the failure triggers the child and the
/// grandchild (not the root), and the grandchild's guard still works.
#[test]
fn no_handle_left_fail_reaches_the_whole_subtree() {
    let root = Shutdown::new();
    let child = root.child_named("jobs").unwrap();
    let grandchild = child.child().unwrap();
    let (a, b) = (child.guard().unwrap(), child.guard_named("parse").unwrap());
    let below = grandchild.guard().unwrap();
    let above = root.guard().unwrap();
    drop((root, child, grandchild));
    b.fail("bad input");
    assert!(a.is_triggered() && below.is_triggered());
    assert!(!above.is_triggered(), "the failure stays in its subtree");
}

/// A vital guard's panic with no handle left triggers its latch.
#[test]
fn no_handle_left_a_vital_panic_still_triggers_the_latch() {
    common::quiet_panics();
    let root = Shutdown::new();
    let child = root.child().unwrap();
    let survivor = child.guard().unwrap();
    let vital = child.guard_named("indexer").unwrap().vital();
    drop((root, child));
    let _ = thread::spawn(move || {
        let _vital = vital;
        panic!("deliberate");
    })
    .join();
    assert!(survivor.is_triggered());
}

/// A child whose handles are all gone keeps its latch while its guards live:
/// the root's drain still waits for them, and its report still lists the
/// child's failure once they are gone.
#[test]
fn no_handle_left_a_childs_guards_still_hold_the_root() {
    let root = Shutdown::new();
    let child = root.child_named("jobs").unwrap();
    let a = child.guard().unwrap();
    let b = child.guard_named("parse").unwrap();
    drop(child);
    b.fail("bad input");
    root.trigger();
    assert!(root.wait_drained_timeout(Duration::ZERO).is_err());
    drop(a);
    let report = root.wait_drained_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(report.failures.len(), 1, "{report:#}");
    assert_eq!(report.failures[0].latch, "jobs");
}
