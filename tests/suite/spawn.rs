//! `Shutdown::spawn` and `spawn_named`: a spawned thread is one guard in
//! every view, its panic's message reaches every report, its guards dropped
//! by the panic are named, and the OS thread carries the name.
#![allow(clippy::disallowed_types)] // tests use std sync types directly

use crate::common;

use std::sync::mpsc;
use std::time::Duration;

use common::{bounded, quiet_panics};
use quiescent::Shutdown;

/// One thread, one guard: `count`, `holders` and a timed-out drain all say
/// one, named or not, on a root and through a tree.
#[test]
fn a_spawned_thread_counts_as_one_guard_everywhere() {
    bounded(20, || {
        let root = Shutdown::new();
        let (go, wait) = mpsc::channel::<()>();
        let wait = std::sync::Arc::new(std::sync::Mutex::new(wait));
        let worker = {
            let wait = wait.clone();
            root.spawn_named("indexer", move |_guard| {
                let _ = wait.lock().unwrap().recv();
            })
            .unwrap()
        };
        assert_eq!(root.count(), 1);
        let holders = root.holders();
        assert_eq!((holders.count, holders.named.len()), (1, 1), "{holders}");
        assert!(!holders.to_string().contains("unnamed"), "{holders}");
        let stragglers = root.shutdown_timeout(Duration::ZERO).unwrap_err();
        assert_eq!(stragglers.remaining, 1, "{stragglers}");
        assert!(!stragglers.to_string().contains("unnamed"), "{stragglers}");
        go.send(()).unwrap();
        worker.join().unwrap();
        assert!(root.wait_drained_timeout(Duration::from_secs(5)).is_ok());

        // Three spawns on a child and a grandchild: (3, 3, 1).
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let grandchild = child.child().unwrap();
        let (go, wait) = mpsc::channel::<()>();
        let wait = std::sync::Arc::new(std::sync::Mutex::new(wait));
        let mut workers = Vec::new();
        for (latch, name) in [(&child, "a"), (&child, "b"), (&grandchild, "c")] {
            let wait = wait.clone();
            workers.push(
                latch
                    .spawn_named(name, move |_guard| {
                        let _ = wait.lock().unwrap().recv();
                    })
                    .unwrap(),
            );
        }
        assert_eq!((root.count(), child.count(), grandchild.count()), (3, 3, 1));
        assert_eq!(root.holders().named.len(), 3);
        for _ in 0..3 {
            go.send(()).unwrap();
        }
        for worker in workers {
            worker.join().unwrap();
        }
        assert_eq!(root.count(), 0);
    });
}

/// A panicking spawned thread: the panic's message is in the report every
/// time, however the drain races the unwinding, and the panicked count is
/// one (the thread's one guard), not two.
#[test]
fn a_spawned_panic_is_counted_once_and_its_message_always_arrives() {
    quiet_panics();
    bounded(60, || {
        for round in 0..200 {
            let jobs = Shutdown::new();
            let worker = jobs
                .spawn_named("worker", move |guard| {
                    guard.wait_triggered();
                    panic!("deliberate: round {round}");
                })
                .unwrap();
            let report = jobs.shutdown();
            assert_eq!(report.panicked, 1, "round {round}: {report:?}");
            assert_eq!(report.failures.len(), 1, "round {round}: {report:?}");
            assert_eq!(
                report.failures[0].reason,
                format!("deliberate: round {round}")
            );
            assert_eq!(report.failures[0].name.as_deref(), Some("worker"));
            assert!(worker.join().is_err());
        }
    });
}

/// Two vital guards in one spawned thread: both records get the message.
#[test]
fn every_vital_guard_of_a_panicking_spawned_thread_gets_the_message() {
    quiet_panics();
    bounded(20, || {
        let jobs = Shutdown::new();
        let extra = jobs.guard_named("extra").unwrap().vital();
        let worker = jobs
            .spawn_named("worker", move |guard| {
                let _first = guard.vital();
                let _second = extra;
                panic!("deliberate: both");
            })
            .unwrap();
        assert!(worker.join().is_err());
        let report = jobs.wait_drained_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(report.failures.len(), 2, "{report:#}");
        for failure in &report.failures {
            assert_eq!(failure.reason, "deliberate: both", "{report:#}");
        }
    });
}

/// A named guard that is not vital, dropped by a panic, is named in the
/// report (name, site, latch) without triggering anything; in a spawned
/// thread it gets the panic's message.
#[test]
fn a_named_guard_dropped_by_a_panic_is_named_in_the_report() {
    quiet_panics();
    bounded(20, || {
        let server = Shutdown::new();
        let workers = server.child_named("workers").unwrap();
        let guard = workers.guard_named("worker-2").unwrap();
        let line = line!() - 1;
        let _ = std::thread::spawn(move || {
            let _guard = guard;
            panic!("deliberate");
        })
        .join();
        assert!(!server.is_triggered(), "not vital: nothing triggers");
        let report = server.shutdown();
        assert_eq!(report.panicked, 1);
        let failure = &report.failures[0];
        assert_eq!(failure.name.as_deref(), Some("worker-2"));
        assert_eq!(failure.latch, "workers");
        assert_eq!(
            (failure.site.file(), failure.site.line()),
            ("tests/suite/spawn.rs", line)
        );
        assert_eq!(failure.reason, "panicked");
        let text = report.to_string();
        assert!(
            text.contains("workers: \"worker-2\" (tests/suite/spawn.rs:"),
            "{text}"
        );

        let jobs = Shutdown::new();
        let inner = jobs.guard_named("inner").unwrap();
        let worker = jobs
            .spawn(move |_guard| {
                let _inner = inner;
                panic!("deliberate: disk full");
            })
            .unwrap();
        assert!(worker.join().is_err());
        jobs.trigger();
        let report = jobs.wait_drained_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(report.failures.len(), 1, "{report:#}");
        assert_eq!(report.failures[0].name.as_deref(), Some("inner"));
        assert_eq!(report.failures[0].reason, "deliberate: disk full");
    });
}

/// `spawn_named` names the OS thread; a name the OS cannot take (a NUL
/// byte) leaves the thread unnamed, and the guard still named.
#[test]
fn spawn_named_names_the_os_thread() {
    bounded(20, || {
        let shutdown = Shutdown::new();
        let worker = shutdown
            .spawn_named("indexer", |_guard| {
                std::thread::current().name().map(str::to_owned)
            })
            .unwrap();
        assert_eq!(worker.join().unwrap().as_deref(), Some("indexer"));
        assert_eq!(worker_name_of(&shutdown, "in\0dexer"), None);
        let unnamed = shutdown
            .spawn(|_guard| std::thread::current().name().map(str::to_owned))
            .unwrap();
        assert_eq!(unnamed.join().unwrap(), None);
    });
}

fn worker_name_of(shutdown: &Shutdown, name: &'static str) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    let worker = shutdown
        .spawn_named(name, move |guard| {
            tx.send(guard.name().map(str::to_owned)).unwrap();
            std::thread::current().name().map(str::to_owned)
        })
        .unwrap();
    assert_eq!(rx.recv().unwrap().as_deref(), Some(name));
    worker.join().unwrap()
}

/// A spawn guard moved to another thread and dropped there by that thread's
/// panic is released at once (no deferral outside its own thread).
#[test]
fn a_spawn_guard_dropped_elsewhere_is_released_there() {
    quiet_panics();
    bounded(20, || {
        let shutdown = Shutdown::new();
        let (tx, rx) = mpsc::channel();
        let worker = shutdown
            .spawn(move |guard| {
                tx.send(guard).unwrap();
            })
            .unwrap();
        worker.join().unwrap();
        let guard = rx.recv().unwrap();
        assert_eq!(shutdown.count(), 1);
        let other = std::thread::spawn(move || {
            let _guard = guard;
            panic!("deliberate");
        });
        assert!(other.join().is_err());
        assert_eq!(shutdown.count(), 0);
        assert_eq!(shutdown.shutdown().panicked, 1);
    });
}

/// A panic the thread's body catches itself: the spawn guard dropped by it
/// is released when the body returns, and the thread ends normally.
#[test]
fn a_panic_caught_inside_the_body_releases_the_guard_at_the_end() {
    quiet_panics();
    bounded(20, || {
        let shutdown = Shutdown::new();
        let worker = shutdown
            .spawn(|guard| {
                let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let _guard = guard;
                    panic!("deliberate");
                }));
                caught.is_err()
            })
            .unwrap();
        assert!(worker.join().unwrap());
        assert_eq!(shutdown.count(), 0);
        let report = shutdown.shutdown();
        assert_eq!(report.panicked, 1);
        assert!(report.failures.is_empty(), "the thread did not panic");
    });
}
