//! Adversarial: the spawn-guard deferral, fail() with panicking wakers,
//! JoinHandle payloads.
#![allow(clippy::disallowed_types)]

use crate::common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc};
use std::task::Waker;
use std::time::Duration;

use common::{bounded, poll_pending, quiet_panics, Panicking};
use quiescent::Shutdown;

/// A drop guard that, when its scope unwinds, shuts the latch down (bounded
/// here so the test can observe instead of hang).
struct ShutdownOnPanic(Shutdown, mpsc::Sender<Result<usize, usize>>);
impl Drop for ShutdownOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let r = self
                .0
                .shutdown_timeout(Duration::from_secs(2))
                .map(|r| r.panicked)
                .map_err(|s| s.remaining);
            let _ = self.1.send(r);
        }
    }
}

/// The spawn guard is dropped first by the unwinding (declared last); a
/// later drop in the same unwinding waits for the latch's drain. No guard of
/// the user's is alive, but the deferred count keeps the drain open: with
/// `shutdown()` (no timeout) this is a permanent hang.
#[test]
fn adv_drop_after_spawn_guard_in_unwinding_waits_for_own_latch() {
    quiet_panics();
    bounded(20, || {
        let sd = Shutdown::new();
        let sd2 = sd.clone();
        let (tx, rx) = mpsc::channel();
        let h = sd
            .spawn(move |g| {
                let _cleanup = ShutdownOnPanic(sd2, tx);
                let _g = g;
                panic!("deliberate: body");
            })
            .unwrap();
        let r = rx.recv().unwrap();
        let _ = h.join();
        assert!(
            r.is_ok(),
            "drain from a Drop after the spawn guard went: {r:?} (Err = remaining)"
        );
    });
}

/// The body catches the panic that dropped its guard, then waits for its
/// latch: count() still says 1 though the body holds no guard.
#[test]
fn adv_caught_panic_then_wait_for_own_latch() {
    quiet_panics();
    bounded(20, || {
        let sd = Shutdown::new();
        let sd2 = sd.clone();
        let h = sd
            .spawn(move |g| {
                let r = catch_unwind(AssertUnwindSafe(move || {
                    let _g = g;
                    panic!("deliberate: caught");
                }));
                assert!(r.is_err());
                let count = sd2.count();
                let drained = sd2
                    .shutdown_timeout(Duration::from_secs(2))
                    .map(|r| r.panicked)
                    .map_err(|s| (s.remaining, s.names));
                (count, drained)
            })
            .unwrap();
        let (count, drained) = h.join().unwrap();
        assert_eq!(count, 0, "count() while the user holds no guard");
        assert!(drained.is_ok(), "{drained:?}");
    });
}

/// `fail` whose trigger wakes a panicking waker: the panic is resumed
/// before `failed` is set, so the guard's drop (now unwinding) records a
/// second failure for the same guard.
#[test]
fn adv_fail_with_panicking_trigger_waker_records_once() {
    quiet_panics();
    bounded(20, || {
        let sd = Shutdown::new();
        let g = sd.guard_named("worker").unwrap();
        let mut t = sd.wait_triggered_async();
        poll_pending(&mut t, &Waker::from(Arc::new(Panicking)));
        let r = catch_unwind(AssertUnwindSafe(move || g.fail("bad input")));
        assert!(r.is_err(), "the waker's panic is resumed");
        let report = sd.wait_drained_timeout(Duration::from_secs(2)).unwrap();
        assert_eq!(report.failures.len(), 1, "{report}\n{:?}", report.failures);
        // The guard is dropped by the unwinding of the waker's panic.
        assert_eq!(report.panicked, 1, "{report}");
    });
}

/// Same with a vital guard: fail + panicking waker.
#[test]
fn adv_fail_vital_with_panicking_trigger_waker_records_once() {
    quiet_panics();
    bounded(20, || {
        let sd = Shutdown::new();
        let g = sd.guard_named("worker").unwrap().vital();
        let mut t = sd.wait_triggered_async();
        poll_pending(&mut t, &Waker::from(Arc::new(Panicking)));
        let r = catch_unwind(AssertUnwindSafe(move || g.fail("bad input")));
        assert!(r.is_err());
        let report = sd.wait_drained_timeout(Duration::from_secs(2)).unwrap();
        assert_eq!(report.failures.len(), 1, "{report}\n{:?}", report.failures);
        assert!(
            report.reason.as_deref().unwrap_or("").contains("bad input"),
            "{report}"
        );
    });
}

/// A spawned thread panics; its deferred release wakes a panicking drain
/// waker in the wrapper. The JoinHandle should report the body's panic.
#[test]
fn adv_joinhandle_reports_body_panic_not_waker_panic() {
    quiet_panics();
    bounded(20, || {
        let sd = Shutdown::new();
        let (go, wait) = mpsc::channel::<()>();
        let h = sd
            .spawn(move |_g| {
                let _ = wait.recv();
                panic!("deliberate: body");
            })
            .unwrap();
        sd.trigger();
        let mut d = sd.wait_drained_async();
        poll_pending(&mut d, &Waker::from(Arc::new(Panicking)));
        go.send(()).unwrap();
        let err = h.join().unwrap_err();
        let msg = err
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| err.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let report = sd.wait_drained_timeout(Duration::from_secs(2)).unwrap();
        assert_eq!(msg, "deliberate: body", "report: {report}");
    });
}

/// A body that returns normally but whose caught panic deferred the guard:
/// the wrapper's release wakes a panicking waker, and the Ok value is lost.
#[test]
fn adv_joinhandle_ok_value_lost_to_waker_panic() {
    quiet_panics();
    bounded(20, || {
        let sd = Shutdown::new();
        let (go, wait) = mpsc::channel::<()>();
        let h = sd
            .spawn(move |g| {
                let _ = wait.recv();
                let _ = catch_unwind(AssertUnwindSafe(move || {
                    let _g = g;
                    panic!("deliberate: caught");
                }));
                42
            })
            .unwrap();
        sd.trigger();
        let mut d = sd.wait_drained_async();
        poll_pending(&mut d, &Waker::from(Arc::new(Panicking)));
        go.send(()).unwrap();
        let r = h.join();
        assert!(
            matches!(r, Ok(42)),
            "body returned 42, join gave {:?}",
            r.map_err(|_| "panic")
        );
    });
}

/// The unbounded form of the first test: `shutdown()` from a Drop that runs
/// after the spawn guard in the same unwinding never returns.
#[test]
fn adv_unbounded_shutdown_in_unwinding_drop_hangs() {
    quiet_panics();
    struct Stop(Shutdown);
    impl Drop for Stop {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let _ = self.0.shutdown();
            }
        }
    }
    let sd = Shutdown::new();
    let sd2 = sd.clone();
    let (tx, rx) = mpsc::channel::<()>();
    let _h = sd
        .spawn(move |g| {
            let _tx = tx; // dropped last
            let _stop = Stop(sd2);
            let _g = g; // dropped first (deferred)
            panic!("deliberate: body");
        })
        .unwrap();
    // the spawned thread's channel end drops only after `Stop` returns
    let finished = rx.recv_timeout(Duration::from_secs(10));
    assert!(
        matches!(finished, Err(mpsc::RecvTimeoutError::Disconnected)),
        "spawned thread still inside shutdown() after 10s: {finished:?} (count {})",
        sd.count()
    );
}
