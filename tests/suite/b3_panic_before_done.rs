//! B3 — a task panics before `Done` and `Wait` blocks forever (an order
//! service stalled ~15 minutes).
//!
//! A token or guard is released by `Drop`, which runs while unwinding, so the
//! waiter never hangs; and the waiter learns the work did not finish cleanly
//! (`panicked`), unlike Go 1.25's `wg.Go`, which let `Wait` return as if all
//! were well (golang/go #76126).

use crate::common;

use std::time::Duration;

use common::{bounded, quiet_panics};
use quiescent::{Shutdown, WaitGroup};

fn handle(order: u32) {
    if order % 5 == 0 {
        panic!("deliberate: order {order} is malformed");
    }
}

#[test]
fn wait_group_does_not_hang_and_counts_the_panics() {
    quiet_panics();
    bounded(10, || {
        let mut wg = WaitGroup::new();
        let workers: Vec<_> = (1..=20)
            .map(|order| wg.spawn(move || handle(order)))
            .collect();
        wg.wait();
        assert_eq!(wg.panicked(), 4);
        assert_eq!(
            workers
                .into_iter()
                .map(|w| w.join())
                .filter(Result::is_err)
                .count(),
            4
        );
    });
}

#[test]
fn shutdown_reports_panicked_guards() {
    quiet_panics();
    bounded(10, || {
        let shutdown = Shutdown::new();
        let workers: Vec<_> = (1..=10)
            .map(|order| shutdown.spawn(move |_guard| handle(order)).unwrap())
            .collect();
        for w in workers {
            let _ = w.join();
        }
        let report = shutdown.shutdown_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(report.panicked, 2);
    });
}
