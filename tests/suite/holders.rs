//! The live view of who holds a latch open (`Shutdown::holders`), bounded
//! drains with a deadline (`wait_drained_deadline`, `Drained::until`), and
//! the consistency of both with concurrent guards.
#![allow(clippy::disallowed_types)] // tests use std sync types directly

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::bounded;
use quiescent::Shutdown;

#[test]
fn holders_sees_the_whole_subtree_before_and_after_the_trigger() {
    let server = Shutdown::new();
    let readers = server.child().unwrap();
    let first = readers.guard_named("reader-1").unwrap();
    thread::sleep(Duration::from_millis(2));
    let writer = server.guard_named("writer").unwrap();
    let _anon = readers.guard().unwrap();

    let holders = server.holders();
    assert_eq!((holders.count, holders.panicked), (3, 0));
    let names: Vec<_> = holders.named.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["reader-1", "writer"], "oldest first");
    assert_eq!(holders.named[0].site.file(), file!());
    assert!(holders.named[0].held >= holders.named[1].held);
    let text = holders.to_string();
    assert!(text.starts_with("3 guards held: \"reader-1\" ("), "{text}");
    assert!(text.ends_with(", and 1 unnamed"), "{text}");

    // A child sees its own subtree only.
    let names: Vec<_> = readers
        .holders()
        .named
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["reader-1"]);

    server.trigger();
    drop(first);
    let holders = server.holders();
    assert_eq!(holders.count, 2);
    assert_eq!(holders.named.len(), 1);
    drop(writer);
    assert_eq!(server.holders().named.len(), 0);
}

#[test]
fn holders_counts_panicked_guards() {
    common::quiet_panics();
    let shutdown = Shutdown::new();
    let guard = shutdown.guard().unwrap();
    let _ = thread::spawn(move || {
        let _guard = guard;
        panic!("deliberate");
    })
    .join();
    let holders = shutdown.holders();
    assert_eq!((holders.count, holders.panicked), (0, 1));
    assert_eq!(
        holders.to_string(),
        "0 guards held; 1 dropped by a panicking thread"
    );
}

/// Named guards cloned and dropped on other threads while snapshots are
/// taken: a snapshot never names more guards than it counts.
#[test]
fn holders_never_names_more_than_it_counts_under_churn() {
    bounded(60, || {
        let root = Shutdown::new();
        let child = root.child().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let churners: Vec<_> = [&root, &child]
            .into_iter()
            .map(|latch| {
                let guard = latch.guard_named("churn").unwrap();
                let stop = stop.clone();
                thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let clone = guard.clone();
                        let another = clone.clone();
                        drop(clone);
                        drop(another);
                    }
                })
            })
            .collect();
        let start = Instant::now();
        let mut snapshots = 0;
        while start.elapsed() < Duration::from_millis(300) {
            for latch in [&root, &child] {
                let h = latch.holders();
                assert!(h.named.len() <= h.count, "{h:?}");
            }
            snapshots += 1;
        }
        root.trigger();
        // After the trigger too, through the bounded drain's snapshot.
        for _ in 0..1_000 {
            let s = root.wait_drained_timeout(Duration::ZERO).unwrap_err();
            assert!(s.names.len() <= s.remaining, "{s:?}");
        }
        stop.store(true, Ordering::Relaxed);
        for churner in churners {
            churner.join().unwrap();
        }
        assert!(snapshots > 0);
        assert!(root.wait_drained_timeout(Duration::from_secs(10)).is_ok());
    });
}

#[test]
fn wait_drained_deadline_gives_up_at_the_deadline_and_names_who() {
    bounded(30, || {
        let shutdown = Shutdown::new();
        // Untriggered: never drained, even with no guard.
        let past = Instant::now();
        assert!(shutdown.wait_drained_deadline(past).is_err());

        let stuck = shutdown.guard_named("stuck").unwrap();
        shutdown.trigger_with_reason("test");
        let start = Instant::now();
        let stragglers = shutdown
            .wait_drained_deadline(start + Duration::from_millis(20))
            .unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!((stragglers.remaining, stragglers.names.len()), (1, 1));
        assert_eq!(stragglers.reason.as_deref(), Some("test"));

        // Released from another thread before a far deadline: the report.
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            drop(stuck);
        });
        let far = Instant::now() + Duration::from_secs(20);
        let report = shutdown.wait_drained_deadline(far).unwrap();
        assert_eq!(report.reason.as_deref(), Some("test"));
        // A drained latch succeeds at once, whatever the deadline.
        assert!(shutdown.wait_drained_deadline(past).is_ok());
        t.join().unwrap();
    });
}

/// The last guard goes at the moment a bounded drain gives up: the drain
/// reports success or names at least one guard, never "0 guards still held".
#[test]
fn a_drain_that_gives_up_as_the_last_guard_goes_never_reports_zero_stragglers() {
    bounded(60, || {
        for _ in 0..500 {
            let shutdown = Shutdown::new();
            let guard = shutdown.guard().unwrap();
            shutdown.trigger();
            let t = thread::spawn(move || drop(guard));
            loop {
                match shutdown.wait_drained_timeout(Duration::ZERO) {
                    Ok(_) => break,
                    Err(s) => assert!(s.remaining >= 1, "{s}"),
                }
            }
            t.join().unwrap();
        }
    });
}

#[test]
fn until_under_tokio_deadline_before_during_and_after_the_drain() {
    bounded(30, || {
        let rt = common::multi_thread_runtime();
        rt.block_on(async {
            // Before: the deadline fires while a named guard is stuck.
            let shutdown = Shutdown::new();
            let stuck = shutdown.guard_named("stuck").unwrap();
            let s = shutdown
                .shutdown_async()
                .until(tokio::time::sleep(Duration::from_millis(20)))
                .await
                .unwrap_err();
            assert_eq!(s.names, ["stuck"]);
            assert!(s.elapsed >= Duration::from_millis(20), "{s}");

            // During: the guard goes while the drain waits.
            let task = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                drop(stuck);
            });
            let report = shutdown
                .wait_drained_async()
                .until(tokio::time::sleep(Duration::from_secs(20)))
                .await
                .unwrap();
            assert_eq!(report.panicked, 0);
            task.await.unwrap();

            // After: already drained, and the deadline is already over.
            let report = shutdown
                .wait_drained_async()
                .until(tokio::time::sleep(Duration::ZERO))
                .await;
            assert!(report.is_ok(), "a drained latch reports the drain first");
        });
    });
}

/// The second executor: futures-executor, with another latch's trigger as
/// the deadline (any future is one).
#[test]
fn until_under_futures_executor_with_any_future_as_deadline() {
    bounded(30, || {
        let shutdown = Shutdown::new();
        let stuck = shutdown.guard_named("stuck").unwrap();
        let alarm = Shutdown::new();
        let ring = alarm.clone();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            ring.trigger();
        });
        let result = futures_executor::block_on(
            shutdown
                .shutdown_async()
                .until(alarm.wait_triggered_async()),
        );
        let s = result.unwrap_err();
        assert_eq!(
            (s.remaining, s.names.as_slice()),
            (1, &["stuck".to_owned()][..])
        );
        t.join().unwrap();
        drop(stuck);
        let report = futures_executor::block_on(
            shutdown
                .wait_drained_async()
                .until(std::future::pending::<()>()),
        );
        assert!(report.is_ok());
    });
}

#[test]
fn futures_are_send_and_static() {
    fn assert_send_static<T: Send + 'static>(_: &T) {}
    let shutdown = Shutdown::new();
    let until = shutdown
        .wait_drained_async()
        .until(std::future::pending::<()>());
    assert_send_static(&until);
    drop(shutdown);
    // The future outlives every handle, and still reports the state.
    assert!(format!("{until:?}").contains("DrainedUntil"));
}

#[test]
fn stragglers_and_holders_show_the_latch_path() {
    let server = Shutdown::new();
    let conns = server.child_named("conns").unwrap();
    let unnamed = conns.child().unwrap();
    let readers = unnamed.child_named("readers").unwrap();
    let _r = readers.guard_named("reader-3").unwrap();
    let _c = conns.guard_named("acceptor").unwrap();
    let _s = server.guard_named("main").unwrap();
    let holders = server.holders();
    let paths: Vec<_> = holders
        .named
        .iter()
        .map(|s| (s.latch.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            ("conns/readers", "reader-3"),
            ("conns", "acceptor"),
            ("", "main")
        ]
    );
    let text = server
        .shutdown_timeout(Duration::ZERO)
        .unwrap_err()
        .to_string();
    assert!(
        text.starts_with("3 guards still held 0.0s after shutdown: conns/readers: \"reader-3\" ("),
        "{text}"
    );
    assert!(text.contains(", conns: \"acceptor\" ("), "{text}");
    assert!(text.contains(", \"main\" ("), "{text}");
}

/// A second runtime's own timer as the deadline: async-io's `Timer` under
/// futures-executor, firing before and after the drain.
#[test]
fn until_with_async_io_timers() {
    bounded(30, || {
        let shutdown = Shutdown::new();
        let stuck = shutdown.guard_named("stuck").unwrap();
        let start = Instant::now();
        let s = futures_executor::block_on(
            shutdown
                .shutdown_async()
                .until(async_io::Timer::after(Duration::from_millis(20))),
        )
        .unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(s.names, ["stuck"]);
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            drop(stuck);
        });
        let report = futures_executor::block_on(
            shutdown
                .wait_drained_async()
                .until(async_io::Timer::after(Duration::from_secs(20))),
        );
        assert!(report.is_ok());
        t.join().unwrap();
    });
}

#[test]
fn a_named_latchs_report_says_which_latch_drained() {
    let server = Shutdown::new();
    let readers = server.child_named("readers").unwrap();
    server.trigger();
    let report = readers.wait_drained();
    assert_eq!(report.latch, "readers");
    assert!(
        report.to_string().starts_with("readers: drained "),
        "{report}"
    );
    assert_eq!(server.wait_drained().latch, "");
}

/// 100,000 named stragglers and a 1 MiB name: the `Display` is a bounded
/// summary (the oldest named, "and N more"), the fields hold everything.
#[test]
fn reports_stay_readable_at_any_size() {
    let shutdown = quiescent::Shutdown::new();
    let huge = "n".repeat(1 << 20);
    let mut guards = vec![shutdown.guard_named(huge.clone()).unwrap()];
    guards.extend((0..100_000).map(|i| shutdown.guard_named(format!("conn-{i}")).unwrap()));
    let stragglers = shutdown
        .shutdown_timeout(std::time::Duration::ZERO)
        .unwrap_err();
    assert_eq!(stragglers.names.len(), 100_001);
    assert_eq!(stragglers.names[0].len(), 1 << 20);
    for text in [
        stragglers.to_string(),
        format!("{stragglers:#}"),
        shutdown.holders().to_string(),
    ] {
        assert!(text.len() < 4096, "{} bytes", text.len());
        assert!(text.contains("and 99991 more named"), "{text}");
        assert!(text.contains("nnnn…\" ("), "{text}");
    }
    drop(guards);
}
