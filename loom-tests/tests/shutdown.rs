//! Loom models of `Shutdown`: admission vs trigger, elections, drains,
//! async waits, children and the straggler snapshot.
#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::Duration;

use loom::sync::Arc;
use loom::thread;
use loom_tests::{
    bounded, bounded_at, clone_then_write_then_drop, exhaustive, write_then_drop, Data,
};
use quiescent::Shutdown;

/// `guard()` races `trigger()`: an admitted guard's work is always waited
/// for by the drain; a refused one is never counted.
#[test]
fn guard_vs_trigger() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let data = Arc::new(Data::default());
        let worker = {
            let shutdown = shutdown.clone();
            let data = data.clone();
            thread::spawn(move || match shutdown.guard() {
                Ok(guard) => {
                    data.write(1);
                    drop(guard);
                    true
                }
                Err(_) => false,
            })
        };
        shutdown.trigger();
        assert!(shutdown.guard().is_err());
        let report = shutdown.wait_drained();
        assert_eq!(report.panicked, 0);
        // If the worker was admitted, its write happened before the drain.
        let _ = data.read();
        let admitted = worker.join().unwrap();
        assert_eq!(shutdown.count(), 0);
        if !admitted {
            assert_eq!(data.read(), 0);
        }
    });
}

/// A refused admission races the last guard's drop and a drainer: the drain
/// returns, never before the last guard's work, and never hangs. Three
/// threads: bounded (see README.md).
#[test]
fn refused_admission_vs_last_guard_drop_and_drain() {
    bounded(|| {
        let shutdown = Shutdown::new();
        let data = Arc::new(Data::default());
        let guard = shutdown.guard().unwrap();
        shutdown.trigger();
        let refused = {
            let shutdown = shutdown.clone();
            thread::spawn(move || assert!(shutdown.guard().is_err()))
        };
        let holder = {
            let data = data.clone();
            thread::spawn(move || {
                data.write(1);
                drop(guard);
            })
        };
        shutdown.wait_drained();
        assert_eq!(data.read(), 1);
        refused.join().unwrap();
        holder.join().unwrap();
        assert_eq!(shutdown.count(), 0);
    });
}

/// A refused admission never shows in the count, so the signal policy's
/// busy hold never finds a drained latch busy.
#[test]
fn busy_hold_vs_refused_admission_on_a_drained_latch() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        shutdown.trigger();
        shutdown.wait_drained();
        let refused = {
            let shutdown = shutdown.clone();
            thread::spawn(move || assert!(shutdown.guard().is_err()))
        };
        assert!(shutdown.__loom_guard_if_busy().is_none());
        refused.join().unwrap();
    });
}

// The next three are an adversary's models of a first one-`fetch_add`
// admission, which backed a refused hold out of the one count field: the
// refused hold raised the count of a drained latch for a moment, so each of
// these failed. Admission is one `fetch_add` again, but the close now moves
// the count into the drain field, and a refused increment only raises the
// open field, which nothing reads once the latch is draining.

/// The last guard dropped on this thread, a zero-timeout drain at once: the
/// drain is reported, never stragglers, whatever a refused admission does.
#[test]
fn adv_zero_timeout_after_last_drop_vs_refused() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        shutdown.trigger();
        let refused = {
            let shutdown = shutdown.clone();
            thread::spawn(move || assert!(shutdown.guard().is_err()))
        };
        drop(guard);
        let r = shutdown.wait_drained_timeout(Duration::ZERO);
        assert!(r.is_ok(), "last guard dropped by this thread, yet: {r:?}");
        refused.join().unwrap();
    });
}

/// A drained latch counts zero while admissions are refused.
#[test]
fn adv_count_after_drain_vs_refused() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        shutdown.trigger();
        shutdown.wait_drained();
        let refused = {
            let shutdown = shutdown.clone();
            thread::spawn(move || assert!(shutdown.guard().is_err()))
        };
        assert_eq!(shutdown.count(), 0, "count() on a drained latch");
        refused.join().unwrap();
    });
}

/// The busy hold is refused once the last guard is gone, even while an
/// admission is being refused.
#[test]
fn adv_busy_hold_after_last_drop_vs_refused() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        shutdown.trigger();
        let refused = {
            let shutdown = shutdown.clone();
            thread::spawn(move || assert!(shutdown.guard().is_err()))
        };
        drop(guard);
        let busy = shutdown.__loom_guard_if_busy();
        assert!(
            busy.is_none(),
            "busy hold taken on a latch with no guard left"
        );
        drop(busy);
        refused.join().unwrap();
        shutdown.wait_drained();
    });
}

/// The last guard alive before the trigger is dropped while the trigger
/// runs: its release lands in the open field before the close moves it, or
/// in the drain field after (the close's compare-exchange retries in
/// between). Either way the drain returns, never before the guard's work.
#[test]
fn last_guard_drop_vs_trigger() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let data = Arc::new(Data::default());
        let guard = shutdown.guard().unwrap();
        let holder = {
            let data = data.clone();
            thread::spawn(move || {
                data.write(1);
                drop(guard);
            })
        };
        assert!(shutdown.trigger());
        shutdown.wait_drained();
        assert_eq!(data.read(), 1);
        assert_eq!(shutdown.count(), 0);
        holder.join().unwrap();
    });
}

/// A guard cloned after the trigger (a hold taken on a draining word, in
/// two RMWs) while the original goes, against a drainer: the drain waits
/// for the clone and its work.
#[test]
fn guard_clone_after_trigger_vs_drain() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let data = Arc::new(Data::default());
        let guard = shutdown.guard().unwrap();
        shutdown.trigger();
        let holder = clone_then_write_then_drop(&data, guard);
        shutdown.wait_drained();
        assert_eq!(data.read(), 1);
        assert_eq!(shutdown.count(), 0);
        holder.join().unwrap();
    });
}

/// Two concurrent triggers elect exactly one `true`.
#[test]
fn two_triggers_elect_one() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let other = {
            let shutdown = shutdown.clone();
            thread::spawn(move || shutdown.trigger_with_reason("other"))
        };
        let mine = shutdown.trigger_with_reason("mine");
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "mine={mine} theirs={theirs}");
        let winner = if mine { "mine" } else { "other" };
        assert_eq!(shutdown.reason().as_deref(), Some(winner));
    });
}

/// A drain on another thread vs the last guard drop: returns, not early.
#[test]
fn drain_vs_last_guard_drop() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let data = Arc::new(Data::default());
        let guard = shutdown.guard().unwrap();
        shutdown.trigger();
        let drainer = {
            let shutdown = shutdown.clone();
            let data = data.clone();
            thread::spawn(move || {
                shutdown.wait_drained();
                assert_eq!(data.read(), 1);
            })
        };
        data.write(1);
        drop(guard);
        drainer.join().unwrap();
    });
}

/// `try_wait_drained` races the last guard drop: a report it returns is
/// never early (the holder's write is visible), and once the drop is
/// joined it returns the report `wait_drained` returns (the cache's
/// publication is a loom atomic, so the model sees that edge too).
#[test]
fn try_wait_drained_vs_last_guard_drop() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let data = Arc::new(Data::default());
        let guard = shutdown.guard().unwrap();
        shutdown.trigger();
        let poller = {
            let shutdown = shutdown.clone();
            let data = data.clone();
            thread::spawn(move || {
                let report = shutdown.try_wait_drained().cloned();
                if report.is_some() {
                    assert_eq!(data.read(), 1);
                }
                report
            })
        };
        data.write(1);
        drop(guard);
        let polled = poller.join().unwrap();
        let report = shutdown.try_wait_drained().cloned();
        let report = report.expect("drained once the last guard is gone");
        assert_eq!(report, shutdown.wait_drained());
        if let Some(polled) = polled {
            assert_eq!(polled, report);
        }
    });
}

/// (From an adversary.) Two pollers both fill the cache: the holder thread
/// drops the last guard and then polls (must be `Some`: its own drop was the
/// last), the other polls concurrently. Every `Some` is the very same cached report
/// (same address), never early.
#[test]
fn two_pollers_vs_last_guard_drop() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let data = Arc::new(Data::default());
        let guard = shutdown.guard().unwrap();
        shutdown.trigger_with_reason(String::from("owned"));
        let holder = {
            let shutdown = shutdown.clone();
            let data = data.clone();
            thread::spawn(move || {
                data.write(1);
                drop(guard);
                let report = shutdown.try_wait_drained().expect("own last drop");
                (report as *const quiescent::Report as usize, report.clone())
            })
        };
        let polled = shutdown.try_wait_drained().map(|r| {
            assert_eq!(data.read(), 1, "early Some");
            (r as *const quiescent::Report as usize, r.clone())
        });
        let (addr, report) = holder.join().unwrap();
        if let Some((paddr, preport)) = polled {
            assert_eq!(paddr, addr, "two cached reports");
            assert_eq!(preport, report);
        }
        let again = shutdown.try_wait_drained().unwrap();
        assert_eq!(again as *const quiescent::Report as usize, addr);
        assert_eq!(shutdown.wait_drained(), report);
        assert_eq!(report.reason.as_deref(), Some("owned"));
    });
}

/// (From an adversary.) A poller on the root races the drop of the last
/// guard of a child (two levels released child first) followed by a
/// zero-timeout drain of the child on the same thread: a root `Some` is never early, and implies the
/// child's drain; the child's two drainers (`wait_drained_timeout(ZERO)`
/// and a later poll) agree.
#[test]
fn root_poll_vs_child_last_drop_and_zero_drain() {
    exhaustive(|| {
        let root = Shutdown::new();
        let child = root.child_named("c").unwrap();
        let data = Arc::new(Data::default());
        let guard = child.guard().unwrap();
        root.trigger();
        let holder = {
            let child = child.clone();
            let data = data.clone();
            thread::spawn(move || {
                data.write(1);
                drop(guard);
                child
                    .wait_drained_timeout(Duration::ZERO)
                    .expect("own last drop")
            })
        };
        let polled = root.try_wait_drained().cloned();
        if polled.is_some() {
            assert_eq!(data.read(), 1, "early Some on the root");
            assert!(
                child.try_wait_drained().is_some(),
                "root drained, child not"
            );
        }
        let child_report = holder.join().unwrap();
        assert_eq!(child.try_wait_drained(), Some(&child_report));
        assert_eq!(child_report.latch, "c");
        let root_report = root.wait_drained();
        if let Some(polled) = polled {
            assert_eq!(polled, root_report);
        }
    });
}

/// Two drains plus the last guard drop, with the trigger before the
/// drainers start or after: both drains return, neither early.
fn two_drains_and_last_guard_drop_body(trigger_first: bool) {
    let shutdown = Shutdown::new();
    let data = Arc::new(Data::default());
    let guard = shutdown.guard().unwrap();
    if trigger_first {
        shutdown.trigger();
    }
    let drainers: Vec<_> = (0..2)
        .map(|_| {
            let shutdown = shutdown.clone();
            let data = data.clone();
            thread::spawn(move || {
                shutdown.wait_drained();
                assert_eq!(data.read(), 1);
            })
        })
        .collect();
    if !trigger_first {
        shutdown.trigger();
    }
    data.write(1);
    drop(guard);
    for d in drainers {
        d.join().unwrap();
    }
}

/// Two concurrent drains plus the last guard drop: both return, neither
/// early. Three threads: bounded, at 3 (bound 4 no longer fits the CI
/// budget since the close and the releases after it are two steps each;
/// see README.md).
#[test]
fn two_drains_and_last_guard_drop() {
    bounded_at(3, || two_drains_and_last_guard_drop_body(false));
}

/// Two drains of a triggered latch plus the last guard drop (a release in
/// two steps on the draining word), at bound 4: both return, neither early.
/// The trigger comes first, which keeps this affordable at the bound
/// `two_drains_and_last_guard_drop` no longer fits.
#[test]
fn two_drains_of_a_triggered_latch_and_last_guard_drop() {
    bounded(|| two_drains_and_last_guard_drop_body(true));
}

/// `wait_triggered_async` vs `trigger`: no lost wake-up.
#[test]
fn wait_triggered_async_vs_trigger() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        let waiter = thread::spawn(move || {
            loom::future::block_on(guard.wait_triggered_async());
            assert!(guard.is_triggered());
        });
        shutdown.trigger();
        waiter.join().unwrap();
    });
}

/// Trigger futures polled, one of them then dropped (unregistering) while
/// the trigger takes and wakes every registered waker: the set is never
/// left inconsistent, the future still registered is woken, and a future
/// made afterwards completes.
#[test]
fn triggered_future_dropped_vs_trigger() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        let trigger = {
            let shutdown = shutdown.clone();
            thread::spawn(move || shutdown.trigger())
        };
        let mut kept = Box::pin(guard.wait_triggered_async());
        {
            let mut dropped = Box::pin(guard.wait_triggered_async());
            let mut cx = Context::from_waker(Waker::noop());
            let _ = Pin::new(&mut dropped).poll(&mut cx);
            let _ = Pin::new(&mut kept).poll(&mut cx);
        }
        loom::future::block_on(&mut kept);
        loom::future::block_on(guard.wait_triggered_async());
        assert!(guard.is_triggered());
        trigger.join().unwrap();
    });
}

/// `wait_drained_async` vs the last guard drop.
#[test]
fn wait_drained_async_vs_last_drop() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let data = Arc::new(Data::default());
        let guard = shutdown.guard().unwrap();
        shutdown.trigger();
        let holder = write_then_drop(&data, 1, guard);
        let report = loom::future::block_on(shutdown.wait_drained_async());
        assert_eq!((report.panicked, data.read()), (0, 1));
        holder.join().unwrap();
    });
}

/// A drain future polled once and dropped mid-wait while the last guard goes:
/// nothing is left registered or broken, and a new future completes.
#[test]
fn drained_future_dropped_mid_wait() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        shutdown.trigger();
        let holder = thread::spawn(move || drop(guard));
        {
            let mut fut = Box::pin(shutdown.wait_drained_async());
            let mut cx = Context::from_waker(Waker::noop());
            let _ = Pin::new(&mut fut).poll(&mut cx);
        }
        loom::future::block_on(shutdown.wait_drained_async());
        holder.join().unwrap();
    });
}

/// A child's `guard()` races its parent's `trigger()`: an admitted child
/// guard holds the parent's drain open.
#[test]
fn child_guard_vs_parent_trigger() {
    exhaustive(|| {
        let parent = Shutdown::new();
        let child = parent.child().unwrap();
        let data = Arc::new(Data::default());
        let worker = {
            let data = data.clone();
            thread::spawn(move || {
                if let Ok(guard) = child.guard() {
                    data.write(1);
                    drop(guard);
                }
                child
            })
        };
        parent.trigger();
        parent.wait_drained();
        let _ = data.read();
        let child = worker.join().unwrap();
        assert!(child.is_triggered() && child.guard().is_err());
    });
}

/// A child guard dropped on another thread vs the parent's drain.
#[test]
fn child_guard_drop_vs_parent_drain() {
    exhaustive(|| {
        let parent = Shutdown::new();
        let child = parent.child().unwrap();
        let data = Arc::new(Data::default());
        let guard = child.guard().unwrap();
        parent.trigger();
        let holder = write_then_drop(&data, 1, guard);
        parent.wait_drained();
        assert_eq!(data.read(), 1);
        // The child drained before (or with) its parent.
        assert_eq!(child.count(), 0);
        holder.join().unwrap();
    });
}

/// `child()` races the parent's `trigger()`: a child created before the
/// trigger returned is triggered by it; none is created after.
#[test]
fn child_vs_parent_trigger() {
    exhaustive(|| {
        let parent = Shutdown::new();
        let maker = {
            let parent = parent.clone();
            thread::spawn(move || parent.child().ok())
        };
        parent.trigger();
        if let Some(child) = maker.join().unwrap() {
            assert!(child.is_triggered(), "a child escaped the cascade");
            assert!(!child.trigger());
        }
    });
}

/// Named guards registering and unregistering vs a straggler snapshot: every
/// name listed is also counted. An unnamed guard keeps the drain open, so the
/// snapshot is always taken (a drain that finds no guard reports the drain).
#[test]
fn named_guard_vs_straggler_snapshot() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let keep = shutdown.guard().unwrap();
        let worker = {
            let shutdown = shutdown.clone();
            thread::spawn(move || {
                if let (Ok(a), Ok(b)) = (shutdown.guard_named("a"), shutdown.guard_named("b")) {
                    drop(a);
                    drop(b);
                }
            })
        };
        shutdown.trigger();
        // Duration::ZERO only checks, so it is usable under loom.
        let stragglers = shutdown.wait_drained_timeout(Duration::ZERO).unwrap_err();
        assert!(
            stragglers.names.len() <= stragglers.remaining,
            "named a guard that was not counted: {stragglers:?}"
        );
        worker.join().unwrap();
        drop(keep);
    });
}

/// The last handle is dropped while the last guard is dropped on another
/// thread: the shared state is freed exactly once, by whichever goes last
/// (loom checks every `Arc` is released and none twice).
#[test]
fn last_handle_drop_vs_last_guard_drop() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let child = shutdown.child().unwrap();
        let guard = child.guard().unwrap();
        let holder = thread::spawn(move || {
            assert!(!guard.is_triggered());
            drop(guard);
        });
        drop(child);
        drop(shutdown);
        holder.join().unwrap();
    });
}

/// A named guard of a child latch is cloned and the original dropped while
/// the root's live view is taken, before any trigger: the names listed never
/// outnumber the count, and the view sees the child's guards.
#[test]
fn named_child_clone_vs_holders() {
    exhaustive(|| {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let guard = child.guard_named("reader").unwrap();
        let cloner = thread::spawn(move || {
            let clone = guard.clone();
            drop(guard);
            clone
        });
        let holders = root.holders();
        assert!(
            holders.named.len() <= holders.count && holders.count >= 1,
            "{holders:?}"
        );
        let clone = cloner.join().unwrap();
        assert_eq!(root.holders().named.len(), 1);
        drop(clone);
    });
}

/// `force()` on one thread while a guard's `wait_forced_async` is first
/// polled on another: the check-listen-check of the forced wait loses no
/// wake-up, and the forcing thread's write is visible once it resolves.
#[test]
fn wait_forced_async_vs_force() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let data = Arc::new(Data::default());
        let guard = shutdown.guard().unwrap();
        let forcer = {
            let (shutdown, data) = (shutdown.clone(), data.clone());
            thread::spawn(move || {
                data.write(1);
                assert!(shutdown.force());
            })
        };
        loom::future::block_on(guard.wait_forced_async());
        assert!(guard.is_forced() && guard.is_triggered());
        assert_eq!(data.read(), 1);
        forcer.join().unwrap();
    });
}

/// A guard fails (triggering its latch with its own reason) while another
/// thread triggers with a reason: exactly one reason wins, the failure is
/// recorded either way, and the drain completes.
#[test]
fn guard_fail_vs_trigger() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard_named("job").unwrap();
        let failer = thread::spawn(move || guard.fail("broken"));
        shutdown.trigger_with_reason("deploy");
        failer.join().unwrap();
        let report = shutdown.wait_drained();
        let reason = report.reason.as_deref().unwrap();
        assert!(
            reason == "deploy" || reason.contains("failed: broken"),
            "{reason}"
        );
        assert_eq!(report.failures.len(), 1);
    });
}

/// `force()` on a latch not yet triggered races `guard()`: forcing triggers
/// first, so admission is one decision with it, as with `trigger()`. A guard
/// admitted before is seen forced and counted by the drain; one asked for
/// after is refused.
#[test]
fn force_vs_guard_admission() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let data = Arc::new(Data::default());
        let admitted = {
            let (shutdown, data) = (shutdown.clone(), data.clone());
            thread::spawn(move || match shutdown.guard() {
                Ok(guard) => {
                    data.write(1);
                    drop(guard);
                    true
                }
                Err(_) => false,
            })
        };
        shutdown.force();
        assert!(shutdown.is_triggered() && shutdown.is_forced());
        assert!(shutdown.guard().is_err());
        let report = shutdown.wait_drained();
        assert!(report.forced);
        if admitted.join().unwrap() {
            assert_eq!(data.read(), 1);
        }
    });
}

/// The signal policy's look at a latch (an extra count taken only while a
/// guard is alive) races the last guard's drop on a triggered latch: either
/// it is refused (the latch drained), or the drain waits for it. It never
/// revives a drained latch.
#[test]
fn busy_hold_vs_last_guard_drop() {
    exhaustive(|| {
        let shutdown = Shutdown::new();
        let guard = shutdown.guard().unwrap();
        shutdown.trigger();
        let data = Arc::new(Data::default());
        let looker = {
            let (shutdown, data) = (shutdown.clone(), data.clone());
            thread::spawn(move || match shutdown.__loom_guard_if_busy() {
                Some(held) => {
                    data.write(1);
                    drop(held);
                    true
                }
                None => false,
            })
        };
        drop(guard);
        shutdown.wait_drained();
        if looker.join().unwrap() {
            assert_eq!(data.read(), 1);
        }
    });
}
