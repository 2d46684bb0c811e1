//! B6 — work admitted after shutdown began was never waited for
//! (IBM/sarama PR #451).
//!
//! Admission and trigger are one atomic decision: every guard admitted
//! before `trigger` returns is counted by the drain, and none is admitted
//! after it. Thousands of racing rounds, on a root latch and on a child.
#![allow(clippy::disallowed_types)]

use crate::common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::bounded;
use quiescent::Shutdown;

/// One round: a producer admits guards as fast as it can while a closer
/// triggers `root`. Returns the number admitted.
fn race(root: &Shutdown, admit_on: &Shutdown) -> usize {
    let barrier = Arc::new(Barrier::new(2));
    let producer = {
        let admit_on = admit_on.clone();
        let barrier = barrier.clone();
        thread::spawn(move || {
            barrier.wait();
            let mut admitted = Vec::new();
            while let Ok(guard) = admit_on.guard() {
                admitted.push(guard);
                if admitted.len() == 1_000 {
                    // Enough racing for one round: wait for the trigger
                    // instead of filling memory, then check it refuses.
                    admit_on.wait_triggered();
                    assert!(admit_on.guard().is_err());
                    break;
                }
            }
            admitted
        })
    };
    barrier.wait();
    thread::yield_now();
    assert!(root.trigger());
    // Once trigger has returned, nothing more is admitted anywhere below.
    assert!(admit_on.guard().is_err());
    let admitted = producer.join().unwrap();
    // Every admitted guard is alive and counted by the drain.
    assert_eq!(root.count(), admitted.len());
    let drained = root
        .wait_drained_timeout(Duration::ZERO)
        .map(|_| ())
        .map_err(|s| s.remaining);
    let expected = if admitted.is_empty() {
        Ok(())
    } else {
        Err(admitted.len())
    };
    assert_eq!(drained, expected);
    let n = admitted.len();
    drop(admitted);
    assert!(root.wait_drained_timeout(Duration::ZERO).is_ok());
    n
}

#[test]
fn admission_racing_trigger_ten_thousand_times() {
    bounded(120, || {
        let mut admitted = 0;
        for _ in 0..10_000 {
            let root = Shutdown::new();
            admitted += race(&root, &root);
        }
        assert!(admitted > 0, "the race never admitted anything: not a race");
    });
}

#[test]
fn child_admission_racing_parent_trigger() {
    bounded(120, || {
        for _ in 0..2_000 {
            let root = Shutdown::new();
            let child = root.child().unwrap().child().unwrap();
            race(&root, &child);
        }
    });
}
